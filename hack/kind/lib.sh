# shellcheck shell=bash disable=SC2034 # the settings are read by the scripts that source this
# Settings and helpers shared by hack/kind/up.sh, down.sh and e2e.sh (sourced, not run).
# docs/kind.md explains the whole flow.
#
# Env (every one has a default):
#   KIND_CLUSTER       name of the kind cluster (default flatnet)
#   KIND_NODE_IMAGE    kind's node image (default: the one the installed kind uses)
#   FLATNET_KIND_DIR   where up.sh keeps fakecloud's state, token, log and pid, and the
#                      cluster's kubeconfig (default bin/kind/$KIND_CLUSTER)
#   FAKECLOUD_LISTEN   fakecloud's API on the host, loopback only (default 127.0.0.1:7474)
#   FABRIC_PREFIX      name prefix of the fabric's namespaces (default fck-)
#   FABRIC_MTU         MTU of the fabric's links and of pods (default 1500, as Docker's network)
#   VPC_CIDR           the VPC (default 10.0.0.0/16); must not overlap Docker's kind network
#   SUBNET_CIDR        the nodes' and pods' subnet, inside VPC_CIDR (default 10.0.1.0/24)
#   INSTANCE_TYPE      the nodes' instance type (default m5.large: 3 interfaces, 10 addresses each)
#   IMAGE_REGISTRY     where make images names the images (default ghcr.io/flatnet, its default)
#   IMAGE_TAG          their tag (default the contents of VERSION, make images' default)
#   HELM_RELEASE       the chart's release name (default flatnet), in namespace flatnet-system

cluster=${KIND_CLUSTER:-flatnet}
state=${FLATNET_KIND_DIR:-bin/kind/$cluster}
listen=${FAKECLOUD_LISTEN:-127.0.0.1:7474}
prefix=${FABRIC_PREFIX:-fck-}
mtu=${FABRIC_MTU:-1500}
vpc_cidr=${VPC_CIDR:-10.0.0.0/16}
subnet_cidr=${SUBNET_CIDR:-10.0.1.0/24}
instance_type=${INSTANCE_TYPE:-m5.large}
image_registry=${IMAGE_REGISTRY:-ghcr.io/flatnet}
image_tag=${IMAGE_TAG:-$(tr -d '[:space:]' <VERSION)}
release=${HELM_RELEASE:-flatnet}
release_ns=flatnet-system
fakecloud=bin/fakecloud
kubeconfig=$state/kubeconfig

die() {
	echo "hack/kind: $*" >&2
	exit 1
}
say() { printf '\n==> %s\n' "$*"; }

# need_kind_and_docker fails with one clear message unless kind is on PATH and a Docker daemon
# answers: nothing of the kind flow can run without both.
need_kind_and_docker() {
	local missing=()
	command -v kind >/dev/null 2>&1 || missing+=("kind is not on PATH (https://kind.sigs.k8s.io)")
	if ! command -v docker >/dev/null 2>&1; then
		missing+=("docker is not on PATH")
	elif ! docker info >/dev/null 2>&1; then
		missing+=("docker is installed but no Docker daemon answers (docker info failed)")
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		echo "hack/kind: kind and docker are needed: this runs flatnet on a kind cluster (Kubernetes nodes in Docker containers)." >&2
		printf '  - %s\n' "${missing[@]}" >&2
		echo "  On a machine without them, make e2e runs the same stack on network namespaces (docs/kind.md)." >&2
		exit 1
	fi
}

# need CMD... fails naming every command that is not on PATH.
need() {
	local c missing=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	[ ${#missing[@]} -eq 0 ] || die "needs ${missing[*]} on PATH (docs/kind.md lists what the kind flow uses)"
}

need_root() {
	[ "$(id -u)" = 0 ] || die "needs root: fakecloud's fabric creates network namespaces and wires the kind nodes' (run: sudo -E env \"PATH=\$PATH\" $0)"
}

# fc runs the fakecloud CLI against the server up.sh started (the token in its environment, not
# on its command line, where ps shows it).
fc() { FAKECLOUD_TOKEN=$(cat "$state/admin-token") "$fakecloud" --endpoint "http://$listen" "$@"; }

# field NAME reads JSON on stdin and prints the first string value of key NAME.
field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1; }

# fakecloud_pid prints the pid of the fakecloud up.sh started, if it still runs.
fakecloud_pid() {
	local pid
	[ -f "$state/fakecloud.pid" ] || return 1
	pid=$(cat "$state/fakecloud.pid")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$cluster"; }

# ip4 ADDRESS prints an IPv4 address as a number, failing on anything else.
ip4() {
	local IFS=. a b c d
	[[ $1 =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || return 1
	read -r a b c d <<<"$1"
	((a < 256 && b < 256 && c < 256 && d < 256)) || return 1
	echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# cidr_check NAME CIDR fails unless CIDR is IPv4 address/length.
cidr_check() {
	if ! [[ $2 =~ ^[0-9.]+/([0-9]|[12][0-9]|3[0-2])$ ]] || ! ip4 "${2%/*}" >/dev/null; then
		die "$1=$2 is not an IPv4 CIDR such as 10.0.0.0/16"
	fi
}

# cidrs_overlap A B succeeds when two IPv4 CIDRs share an address.
cidrs_overlap() {
	local a b al=${1#*/} bl=${2#*/} l mask
	a=$(ip4 "${1%/*}") && b=$(ip4 "${2%/*}") || return 1
	l=$((al < bl ? al : bl))
	mask=$(((0xffffffff << (32 - l)) & 0xffffffff))
	((l == 0 || (a & mask) == (b & mask)))
}
