#!/usr/bin/env bash
# Installs the pinned golangci-lint into ./bin, reusing a cached copy when one of the right version
# is there, and leaving a copy in the cache after a fresh install so the next machine run skips it.
#
# hack/prereqs.sh, which holds the pin, runs it (make prereqs, make tools, make lint).
#
# Usage: hack/install-golangci-lint.sh [--check] VERSION DEST_DIR
#        --check installs nothing: the exit status says whether DEST_DIR has that version.
# Env:   FLATNET_CACHE (default $HOME/.cache/flatnet)
set -euo pipefail

check=
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
version=${1:?usage: $0 [--check] VERSION DEST_DIR}
dest=${2:?usage: $0 [--check] VERSION DEST_DIR}
cache=${FLATNET_CACHE:-$HOME/.cache/flatnet}/tools-golangci
bin=$dest/golangci-lint

is_pinned() { # is $1 an executable golangci-lint of the pinned version?
	[ -x "$1" ] && "$1" version 2>/dev/null | grep -q "version ${version#v} "
}

if is_pinned "$bin"; then
	exit 0
fi
[ -z "$check" ] || exit 1
mkdir -p "$dest"
if is_pinned "$cache/golangci-lint"; then
	echo "golangci-lint $version: copied from $cache"
	cp "$cache/golangci-lint" "$bin.tmp" && mv "$bin.tmp" "$bin"
	exit 0
fi

echo "golangci-lint $version: installing with go install (a few minutes on 2 cores)"
GOBIN=$(cd "$dest" && pwd) go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
is_pinned "$bin" || { echo "installed golangci-lint does not report version $version" >&2; exit 1; }
if mkdir -p "$cache" 2>/dev/null && cp "$bin" "$cache/golangci-lint.tmp" 2>/dev/null; then
	mv "$cache/golangci-lint.tmp" "$cache/golangci-lint"
fi
