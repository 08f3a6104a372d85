#!/usr/bin/env bash
# Builds the lab's Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler), kubectl and etcd from the Go module proxy into a cache outside the tree:
#
#   $FLATNET_CACHE/k8s/<kubernetes version>/bin      (FLATNET_CACHE defaults to ~/.cache/flatnet)
#
# and prints that directory on its last line. Idempotent: when every binary of that version is
# already there and runs, nothing is built. The versions come from this folder's go.mod (the
# wrapper module): k8s.io/kubernetes and the etcd server it requires.
#
# The build is static (CGO_ENABLED=0), -trimpath, niced, and one `go build` for all five so the
# shared packages compile once; -p (K8S_BUILD_P, default 2) keeps a shared machine usable.
# The version is stamped into k8s.io/component-base/version and k8s.io/client-go/pkg/version so
# `kubectl version` and the API server's /version report it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

cache=${FLATNET_CACHE:-$HOME/.cache/flatnet}
procs=${K8S_BUILD_P:-2}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
export GOWORK=off

k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_time=$(go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
etcd_version=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
out=$cache/k8s/$k8s_version/bin
kube=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

# complete: every binary exists, runs, and reports the pinned version.
complete() {
	local b
	for b in "${kube[@]}"; do
		[ -x "$out/$b" ] || return 1
	done
	[ -x "$out/etcd" ] || return 1
	# Matched on captured output: grep -q in a pipe would exit early and, under pipefail, fail
	# the check with the writer's SIGPIPE.
	[[ $("$out/kube-apiserver" --version 2>/dev/null) == *"Kubernetes $k8s_version"* ]] || return 1
	[[ $("$out/kubectl" version --client 2>/dev/null) == *"Client Version: $k8s_version"* ]] || return 1
	[[ $("$out/etcd" --version 2>/dev/null) == *"etcd Version: ${etcd_version#v}"* ]] || return 1
}

mkdir -p "$cache/k8s"
# One build per cache at a time: CI and a person (or two sessions) may start it together.
exec 9>"$cache/k8s/.lock"
flock 9

if complete; then
	echo "k8s-bins: kubernetes $k8s_version and etcd $etcd_version already built" >&2
	echo "$out"
	exit 0
fi

minor=${k8s_version#v1.}
minor=${minor%%.*}
pkg=k8s.io/component-base/version
cgpkg=k8s.io/client-go/pkg/version
ldflags="-s -w"
for p in $pkg $cgpkg; do
	ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
	# The module proxy has no git metadata: the commit is a placeholder, the date the release's.
	ldflags+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.gitTreeState=clean"
	ldflags+=" -X $p.buildDate=${k8s_time:-1970-01-01T00:00:00Z}"
done

tmp=$(mktemp -d "$cache/k8s/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "k8s-bins: building kubernetes $k8s_version (${kube[*]}) and etcd $etcd_version into $out" >&2
echo "k8s-bins: the first build takes long (kube-apiserver alone is minutes); later runs reuse it" >&2
start=$SECONDS
CGO_ENABLED=0 nice -n 10 go build -p "$procs" -trimpath -ldflags "$ldflags" -o "$tmp/" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl ./etcd
# Replace the whole directory at once: a half-finished build never looks complete.
chmod 755 "$tmp"
mkdir -p "$(dirname "$out")"
rm -rf "$out.old"
[ ! -d "$out" ] || mv "$out" "$out.old"
mv "$tmp" "$out"
rm -rf "$out.old"
trap - EXIT
if ! complete; then
	echo "k8s-bins: built into $out, but the binaries do not report kubernetes $k8s_version / etcd $etcd_version" >&2
	exit 1
fi
echo "k8s-bins: built in $((SECONDS - start))s" >&2
echo "$out"
