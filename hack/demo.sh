#!/usr/bin/env bash
# make demo, until the lab lands (issue 6): starts fakecloud on loopback and walks through its API
# with the CLI: a VPC and subnet, an m5.large, secondary IPs and prefixes up to the interface's
# limit, the limit error, an injected fault, and the final state.
#
# PLACEHOLDER: written ahead of the CLI; the fakecloud engineer owns this script from here and
# adjusts flags and output to the CLI as it lands. The skeleton (start, wait, trap, cleanup) stays.
#
# Env: FAKECLOUD_LISTEN (default 127.0.0.1:7474), FAKECLOUD_BIN (default bin/fakecloud)
set -euo pipefail
cd "$(dirname "$0")/.."

listen=${FAKECLOUD_LISTEN:-127.0.0.1:7474}
fakecloud=${FAKECLOUD_BIN:-bin/fakecloud}
case $listen in
127.*:* | localhost:*) ;;
*) echo "demo: FAKECLOUD_LISTEN must be a loopback address, got $listen" >&2; exit 1 ;;
esac
if [ ! -x "$fakecloud" ]; then
	echo "demo: $fakecloud not found; run make demo (it builds first) or make build" >&2
	exit 1
fi

work=$(mktemp -d -t flatnet-demo.XXXXXX)
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold=$(tput bold 2>/dev/null || true)
plain=$(tput sgr0 2>/dev/null || true)
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ fakecloud %s\n' "$*"; "$fakecloud" "$@"; }
fc() { "$fakecloud" "$@"; }
# field NAME reads JSON on stdin and prints the first string value of key NAME.
field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1; }

step "starting fakecloud on $listen"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/admin-token"
"$fakecloud" serve --listen "$listen" --admin-token-file "$work/admin-token" >"$work/server.log" 2>&1 &
server_pid=$!
export FAKECLOUD_ENDPOINT="http://$listen"
FAKECLOUD_TOKEN=$(cat "$work/admin-token")
export FAKECLOUD_TOKEN
for _ in $(seq 100); do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "demo: fakecloud exited at start; its log:" >&2
		cat "$work/server.log" >&2
		exit 1
	fi
	fc vpc list >/dev/null 2>&1 && break
	sleep 0.1
done
fc vpc list >/dev/null || { echo "demo: fakecloud did not answer on $listen within 10s" >&2; cat "$work/server.log" >&2; exit 1; }

step "a VPC and a subnet"
vpc=$(fc vpc create --cidr 10.0.0.0/16 -o json | field VpcId)
show vpc list -o table
subnet=$(fc subnet create --vpc "$vpc" --cidr 10.0.1.0/24 -o json | field SubnetId)
show subnet list -o table

step "an m5.large: 3 interfaces, 10 IPv4 slots each (the primary IP takes one, a /28 prefix one)"
instance=$(fc instance run --subnet "$subnet" --type m5.large -o json | field InstanceId)
show instance list -o table
eni=$(fc eni list -o json | field NetworkInterfaceId)
show eni list -o table

step "secondary IPs and prefixes on $eni: 1 primary + 5 IPs + 4 prefixes = 10 slots"
show eni assign-ips "$eni" --count 5 -o table
show eni assign-prefixes "$eni" --count 4 -o table

step "one more address is over the limit: the cloud says PrivateIpAddressLimitExceeded"
if show eni assign-ips "$eni" --count 1; then
	echo "demo: expected PrivateIpAddressLimitExceeded, but the call succeeded" >&2
	exit 1
fi

step "fault injection: every AssignPrivateIpAddresses fails with InternalError"
show fault set --action AssignPrivateIpAddresses --rate 1 --code InternalError
show fault list -o table
eni2=$(fc eni create --subnet "$subnet" -o json | field NetworkInterfaceId)
if show eni assign-ips "$eni2" --count 1; then
	echo "demo: expected the injected InternalError, but the call succeeded" >&2
	exit 1
fi
show fault clear

step "final state (instance $instance)"
show eni list -o table

printf '\n%sdemo done%s: fakecloud stops now. Run it yourself with: %s serve --listen %s --admin-token-file FILE\n' \
	"$bold" "$plain" "$fakecloud" "$listen"
