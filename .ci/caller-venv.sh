#!/usr/bin/env bash
# Prints (last stdout line) the python of the end-to-end test caller's venv
# (tests/support/caller/requirements.txt: the official LiveKit Python SDK, numpy); see py-venv.sh.
set -euo pipefail
exec bash "$(dirname "$0")/py-venv.sh" caller-venv tests/support/caller/requirements.txt \
  'from livekit import api, rtc; import numpy'
