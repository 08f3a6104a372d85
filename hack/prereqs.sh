#!/usr/bin/env bash
# The one list of what flatnet needs on a machine, and the one step that installs what is missing
# from it. make prereqs, make demo, make test and .ci/run all run this script; the Kubernetes
# binaries are the other, longer step (make k8s-bins, hack/k8s-bins/build.sh).
#
#   - Go, at least the version go.mod names: checked, never installed (https://go.dev/dl);
#   - Debian packages, each with a command it provides: installed with apt-get, as root;
#   - pinned tools in ./bin: installed with go install by hack/install-<tool>.sh, no root needed.
#
# Idempotent: a machine that has everything is only probed (one `go env`, one dpkg-query, one
# `<tool> version` each), needs no root and changes nothing; apt-get update runs only when a
# package is missing. It says what it installs, and refuses with the reason and what to do when
# it cannot: a package is missing and it is not root, there is no apt-get, Go is missing or older
# than go.mod's.
#
# Usage: hack/prereqs.sh [--system | --tools]
#   (none)    everything: Go, the Debian packages and the tools (make prereqs, make test, .ci/run)
#   --system  Go and the Debian packages (make demo: it runs no linter)
#   --tools   Go and the tools (make tools, make lint)
#
# Env: FLATNET_PREREQS_SBIN  where else to look for a package's command when there is no
#      dpkg-query to ask (default /usr/local/sbin:/usr/sbin:/sbin, often not on a user's PATH)
#
# Every program it runs (id, go, dpkg-query, apt-get) is found on PATH, so that tests can put
# fakes in front (hack/prereqs/prereqs_test.go).
set -euo pipefail
here=${BASH_SOURCE[0]%/*}
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
cd "$here/.."

# Debian package, then a command it provides. On Debian, dpkg-query says whether the package is
# installed; elsewhere the command does.
packages=(
	"iproute2 ip"                              # ip netns/link/route: the lab, the fabric, the tests
	"nftables nft"                             # test helpers only (ipamd's node tests, the fabric's nft comparison); the product uses netlink
	"iptables iptables"                        # with conntrack and ps: looking into a lab node
	"conntrack conntrack"
	"procps ps"
	"iputils-ping ping"                        # the CNI plugin's tests
	"awscli aws"                               # fakecloud's AWS API tests: Debian's aws CLI against it (fakecloud/awsapi)
	"util-linux flock"                         # hack/k8s-bins/build.sh: one build per cache at a time
	"make make"
	"git git"
	"ca-certificates update-ca-certificates"   # TLS roots for the Go module proxy
)

# Pinned tools in ./bin: name, version. hack/install-NAME.sh VERSION DIR installs one (a no-op when
# DIR has it); with --check it only says, by its exit status, whether DIR has it.
tools=(
	"golangci-lint v2.15.0"
	"helm v4.3.2"                              # make chart-test: helm lint of charts/flatnet
)

say() { printf 'prereqs: %s\n' "$*"; }
refuse() { # refuse LINE...: print the lines on stderr and exit 1
	local line
	for line in "$@"; do printf 'prereqs: %s\n' "$line" >&2; done
	exit 1
}

do_system=1 do_tools=1
case ${1:-} in
"") ;;
--system) do_tools= ;;
--tools) do_system= ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' hack/prereqs.sh
	exit 0
	;;
*) refuse "unknown argument $1 (usage: hack/prereqs.sh [--system | --tools])" ;;
esac

# version_ge A B: is Go version A (1.26.8, 1.27rc1, 1.26) at least B? A missing patch is 0 and a
# pre-release comes before its release (1.27rc1 < 1.27 = 1.27.0).
version_ge() {
	local -a a b
	local i
	IFS=. read -r -a a <<<"$(norm_version "$1")"
	IFS=. read -r -a b <<<"$(norm_version "$2")"
	for i in 0 1 2 3; do
		if ((a[i] != b[i])); then
			((a[i] > b[i]))
			return
		fi
	done
	return 0
}
# norm_version prints a Go version as major.minor.patch.stage, all numbers: the stage is 1000 for
# a release, 100+n for alphaN, 200+n for betaN, 300+n for rcN; 0.0.0.0 when it is no version.
norm_version() {
	local v=$1 pre= stage=1000 major minor patch
	if [[ $v =~ ^([0-9]+)\.([0-9]+)(\.([0-9]+))?((alpha|beta|rc)([0-9]*))?$ ]]; then
		major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} patch=${BASH_REMATCH[4]:-0} pre=${BASH_REMATCH[6]}
		case $pre in
		alpha) stage=$((100 + ${BASH_REMATCH[7]:-0})) ;;
		beta) stage=$((200 + ${BASH_REMATCH[7]:-0})) ;;
		rc) stage=$((300 + ${BASH_REMATCH[7]:-0})) ;;
		esac
		echo "$major.$minor.$patch.$stage"
	else
		echo "0.0.0.0"
	fi
}

# --- Go ------------------------------------------------------------------------------------------
want_go=
while read -r key value _; do
	if [ "$key" = go ]; then want_go=$value; break; fi
done <go.mod
[ -n "$want_go" ] || refuse "go.mod has no go line"

if ! command -v go >/dev/null; then
	if [ -x /usr/local/go/bin/go ]; then
		refuse "Go is not on PATH, but /usr/local/go/bin/go is: add /usr/local/go/bin to PATH" \
			"(sudo resets PATH: sudo env \"PATH=\$PATH\" make ...)."
	fi
	refuse "Go is not on PATH: flatnet needs Go $want_go or newer (go.mod)." \
		"Install it from https://go.dev/dl (Debian's golang-go is too old) and put its bin directory on PATH."
fi
# The local toolchain's own version: outside the module, so that go.mod's go line neither refuses
# it nor makes it switch to another toolchain.
have_go=$(cd / && GOTOOLCHAIN=local GOFLAGS= go env GOVERSION 2>/dev/null) ||
	refuse "\`go env GOVERSION\` failed with $(command -v go)"
if [[ $have_go =~ ^go([0-9][0-9a-z.]*) ]]; then
	if ! version_ge "${BASH_REMATCH[1]}" "$want_go"; then
		refuse "$(command -v go) is $have_go, older than the go $want_go go.mod needs." \
			"Install Go $want_go or newer from https://go.dev/dl and put it first on PATH."
	fi
else
	say "Go reports version '$have_go' (a development build?); not checked against go.mod's go $want_go"
fi

installed=()

# --- Debian packages -----------------------------------------------------------------------------
# probe_packages sets missing to the packages of the list that are not installed.
probe_packages() {
	local entry pkg cmd name status
	local -A ok=()
	missing=()
	if command -v dpkg-query >/dev/null; then
		local names=()
		for entry in "${packages[@]}"; do names+=("${entry%% *}"); done
		# One call for all; unknown packages are complained about on stderr and left out.
		while read -r name status; do
			# db:Status-Abbrev: desired, current, error flag; current "i" is installed.
			[ "${status:1:1}" = i ] && ok[$name]=1
		done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${names[@]}" 2>/dev/null || true)
		for entry in "${packages[@]}"; do
			pkg=${entry%% *}
			[ -n "${ok[$pkg]:-}" ] || missing+=("$pkg")
		done
	else
		local sbin=${FLATNET_PREREQS_SBIN-/usr/local/sbin:/usr/sbin:/sbin} search=$PATH
		search+=${sbin:+:$sbin}
		for entry in "${packages[@]}"; do
			read -r pkg cmd <<<"$entry"
			PATH=$search command -v "$cmd" >/dev/null || missing+=("$pkg")
		done
	fi
}

if [ -n "$do_system" ]; then
	probe_packages
	if [ ${#missing[@]} -gt 0 ]; then
		if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
			lines=("missing: ${missing[*]}, and there is no apt-get and dpkg-query to install them with."
				"Install these by hand (Debian's package names; the command each must provide):")
			for entry in "${packages[@]}"; do
				read -r pkg cmd <<<"$entry"
				[[ " ${missing[*]} " == *" $pkg "* ]] && lines+=("  $pkg ($cmd)")
			done
			refuse "${lines[@]}"
		fi
		if [ "$(id -u)" != 0 ]; then
			refuse "missing Debian packages: ${missing[*]}; installing them needs root." \
				"Run this as root (sudo env \"PATH=\$PATH\" make prereqs), or install them yourself:" \
				"  sudo apt-get install --no-install-recommends ${missing[*]}"
		fi
		say "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		# Wait for another apt or dpkg (unattended-upgrades on a fresh machine) instead of failing.
		lock=(-o DPkg::Lock::Timeout=300)
		apt-get "${lock[@]}" update -qq
		apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}"
		want=("${missing[@]}")
		probe_packages
		[ ${#missing[@]} -eq 0 ] || refuse "apt-get installed, but these are still not installed: ${missing[*]}"
		installed+=("${want[@]}")
	else
		say "Debian packages: all present"
	fi
fi

# --- tools ---------------------------------------------------------------------------------------
if [ -n "$do_tools" ]; then
	bin=$PWD/bin
	tools_missing=()
	for entry in "${tools[@]}"; do
		read -r name version <<<"$entry"
		"hack/install-$name.sh" --check "$version" "$bin" || tools_missing+=("$name")
	done
	if [ ${#tools_missing[@]} -gt 0 ]; then
		say "installing: ${tools_missing[*]} (into $bin)"
		for entry in "${tools[@]}"; do
			read -r name version <<<"$entry"
			[[ " ${tools_missing[*]} " == *" $name "* ]] || continue
			"hack/install-$name.sh" "$version" "$bin"
			"hack/install-$name.sh" --check "$version" "$bin" ||
				refuse "hack/install-$name.sh ran, but $bin/$name is not version $version"
			installed+=("$name")
		done
	else
		say "tools: all present (${tools[*]})"
	fi
fi

if [ ${#installed[@]} -gt 0 ]; then
	say "installed: ${installed[*]}"
else
	say "all present ($have_go), nothing to install"
fi
