#!/usr/bin/env bash
# Prints (last stdout line) the absolute path of a livekit-server binary of the pinned version, for
# the end-to-end tests against a real server. Built from source with `go install` (the Go module
# proxy) only when the cached copy is missing; concurrent callers wait on a lock instead of
# building twice. Cache: ${FRONTDESK_CACHE_DIR:-$HOME/.cache/frontdesk}/livekit-server-<version>/.
# Exits non-zero, with go's own error on stderr, when go is missing or the build fails.
set -euo pipefail

version=v1.13.5
cache=${FRONTDESK_CACHE_DIR:-$HOME/.cache/frontdesk}
dir=$cache/livekit-server-$version
bin=$dir/livekit-server

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
bin=$dir/livekit-server
exec 9>"$dir/.lock"
if ! flock -n 9; then
  echo "livekit-server.sh: another build of livekit-server $version is running; waiting for it" >&2
  flock 9
fi
if [ -x "$bin" ]; then # built by whoever held the lock
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null; then
  echo "livekit-server.sh: error: go not found on PATH; it is needed to build livekit-server $version" >&2
  exit 1
fi

tmp=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "livekit-server.sh: building livekit-server $version with $(go version) (GOPROXY=$(go env GOPROXY))" >&2
start=$(date +%s)
# From a neutral directory so no go.mod/go.work around the checkout changes the build.
if ! (cd "$tmp" && GOBIN=$tmp GOFLAGS=-buildvcs=false \
  go install "github.com/livekit/livekit-server/cmd/server@$version" >&2); then
  echo "livekit-server.sh: error: 'go install github.com/livekit/livekit-server/cmd/server@$version' failed (go's error above)" >&2
  exit 1
fi
"$tmp/server" --version >&2
mv -f "$tmp/server" "$bin" # same directory: an atomic rename
echo "livekit-server.sh: built $bin in $(($(date +%s) - start))s" >&2
echo "$bin"
