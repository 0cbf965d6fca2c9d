#!/usr/bin/env bash
# Prints (last stdout line) the python of the SDK conformance suite's venv
# (tests/support/sdk/requirements.txt: the vendors' official Python SDKs, pytest); see py-venv.sh.
set -euo pipefail
exec bash "$(dirname "$0")/py-venv.sh" sdk-venv tests/support/sdk/requirements.txt \
  'import openai, deepgram, cartesia, pytest'
