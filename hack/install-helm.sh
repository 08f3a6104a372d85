#!/usr/bin/env bash
# Installs the pinned helm into ./bin with go install, reusing a cached copy when one of the right
# version is there, and leaving a copy in the cache after a fresh install so the next run skips it.
#
# hack/prereqs.sh, which holds the pin, runs it (make prereqs, make tools, make chart-test).
#
# Usage: hack/install-helm.sh [--check] VERSION DEST_DIR
#        --check installs nothing: the exit status says whether DEST_DIR has that version.
# Env:   FLATNET_CACHE (default $HOME/.cache/flatnet)
#
# `go install` leaves helm's own version string at its default ("v4.3"), so the build stamps it
# with -ldflags; the check reads the module version Go recorded in the binary (go version -m),
# which no flag can fake.
set -euo pipefail

check=
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
version=${1:?usage: $0 [--check] VERSION DEST_DIR}
dest=${2:?usage: $0 [--check] VERSION DEST_DIR}
cache=${FLATNET_CACHE:-$HOME/.cache/flatnet}/tools-helm
bin=$dest/helm
module=helm.sh/helm/v4

is_pinned() { # is $1 an executable helm built from the pinned module version?
	[ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"
}

if is_pinned "$bin"; then
	exit 0
fi
[ -z "$check" ] || exit 1
mkdir -p "$dest"
if is_pinned "$cache/helm"; then
	echo "helm $version: copied from $cache"
	cp "$cache/helm" "$bin.tmp" && mv "$bin.tmp" "$bin"
	exit 0
fi

echo "helm $version: installing with go install (a few minutes on 2 cores)"
GOBIN=$(cd "$dest" && pwd) CGO_ENABLED=0 go install \
	-ldflags "-X $module/internal/version.version=$version" "$module/cmd/helm@$version"
is_pinned "$bin" || { echo "installed helm is not built from $module $version" >&2; exit 1; }
if mkdir -p "$cache" 2>/dev/null && cp "$bin" "$cache/helm.tmp" 2>/dev/null; then
	mv "$cache/helm.tmp" "$cache/helm"
fi
