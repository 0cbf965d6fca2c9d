#!/usr/bin/env bash
# Prints (last stdout line) the python of a venv holding the end-to-end test caller's pinned
# dependencies (tests/support/caller/requirements.txt: the official LiveKit Python SDK, numpy).
# The venv lives at ${FRONTDESK_CACHE_DIR:-$HOME/.cache/frontdesk}/caller-venv and is rebuilt only
# when the requirements file or the base interpreter changes (their hash is stored in the venv,
# written last, so a half-built venv is never reused). Concurrent callers wait on a lock.
# The base interpreter is $PYTHON, else python3.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd -P)
req=$root/tests/support/caller/requirements.txt
cache=${FRONTDESK_CACHE_DIR:-$HOME/.cache/frontdesk}
venv=$cache/caller-venv
stamp=$venv/.frontdesk-requirements.sha256
python=${PYTHON:-python3}

if ! command -v "$python" >/dev/null; then
  echo "caller-venv.sh: error: $python not found on PATH" >&2
  exit 1
fi
base=$("$python" -c 'import sys; print(sys.executable, sys.version.replace("\n", " "))')
want=$( (cat "$req"; echo "$base") | sha256sum | cut -d' ' -f1)

fresh() { [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; }

if fresh; then
  echo "$venv/bin/python"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/caller-venv.lock"
if ! flock -n 9; then
  echo "caller-venv.sh: another caller-venv.sh is building the venv; waiting for it" >&2
  flock 9
fi
if fresh; then # built by whoever held the lock
  echo "$venv/bin/python"
  exit 0
fi

echo "caller-venv.sh: creating $venv from $req with $base" >&2
start=$(date +%s)
rm -f "$stamp"
rm -rf "$venv"
if ! "$python" -m venv "$venv" >&2; then
  echo "caller-venv.sh: error: '$python -m venv' failed (on Debian: apt-get install python3-venv)" >&2
  rm -rf "$venv"
  exit 1
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
# Every package is pinned in the file, so --no-deps installs exactly that set; `pip check` then
# proves the set is complete. Wheels only: nothing is compiled here.
if ! "${pip[@]}" install -q --no-deps --only-binary=:all: -r "$req" >&2 || ! "${pip[@]}" check >&2; then
  echo "caller-venv.sh: error: installing $req failed (pip's error above)" >&2
  rm -rf "$venv"
  exit 1
fi
"$venv/bin/python" -c 'from livekit import api, rtc; import numpy' >&2
echo "$want" >"$stamp"
echo "caller-venv.sh: venv ready in $(($(date +%s) - start))s" >&2
echo "$venv/bin/python"
