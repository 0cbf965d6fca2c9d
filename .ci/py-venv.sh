#!/usr/bin/env bash
# Usage: py-venv.sh NAME REQUIREMENTS IMPORT-CHECK
# Prints (last stdout line) the python of a venv holding exactly the pinned packages of
# REQUIREMENTS (relative to the project root). The venv lives at
# ${FRONTDESK_CACHE_DIR:-$HOME/.cache/frontdesk}/NAME and is rebuilt only when the requirements
# file changes (its hash is stored in the venv, written last, so a half-built venv is never
# reused) or the venv's interpreter no longer runs (its base was removed). Which python3 runs
# this script does not matter once the venv exists: two shells with different PATHs (pyenv,
# Debian's) must not rebuild it under each other. Concurrent builds wait on a lock. IMPORT-CHECK
# is python run in the finished venv. The base interpreter is $PYTHON, else python3.
set -euo pipefail

name=$1
root=$(cd "$(dirname "$0")/.." && pwd -P)
req=$root/$2
check=$3
cache=${FRONTDESK_CACHE_DIR:-$HOME/.cache/frontdesk}
venv=$cache/$name
stamp=$venv/.frontdesk-requirements.sha256
python=${PYTHON:-python3}

want=$(sha256sum <"$req" | cut -d' ' -f1)

fresh() {
  [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
    "$venv/bin/python" -c 'import sys' 2>/dev/null
}

if fresh; then
  echo "$venv/bin/python"
  exit 0
fi
if ! command -v "$python" >/dev/null; then
  echo "py-venv.sh($name): error: $python not found on PATH" >&2
  exit 1
fi
base=$("$python" -c 'import sys; print(sys.executable, sys.version.replace("\n", " "))')

mkdir -p "$cache"
exec 9>"$cache/$name.lock"
if ! flock -n 9; then
  echo "py-venv.sh($name): another py-venv.sh is building the venv; waiting for it" >&2
  flock 9
fi
if fresh; then # built by whoever held the lock
  echo "$venv/bin/python"
  exit 0
fi

echo "py-venv.sh($name): creating $venv from $req with $base" >&2
start=$(date +%s)
rm -f "$stamp"
rm -rf "$venv"
if ! "$python" -m venv "$venv" >&2; then
  echo "py-venv.sh($name): error: '$python -m venv' failed (on Debian: apt-get install python3-venv)" >&2
  rm -rf "$venv"
  exit 1
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
# Every package is pinned in the file, so --no-deps installs exactly that set; `pip check` then
# proves the set is complete. Wheels only: nothing is compiled here.
if ! "${pip[@]}" install -q --no-deps --only-binary=:all: -r "$req" >&2 || ! "${pip[@]}" check >&2; then
  echo "py-venv.sh($name): error: installing $req failed (pip's error above)" >&2
  rm -rf "$venv"
  exit 1
fi
"$venv/bin/python" -c "$check" >&2
echo "$want" >"$stamp"
echo "py-venv.sh($name): venv ready in $(($(date +%s) - start))s" >&2
echo "$venv/bin/python"
