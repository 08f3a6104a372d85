#!/usr/bin/env bash
# make demo, until the lab lands (issue 6): starts fakecloud on loopback and walks through its API
# with the CLI: a VPC and subnet, an m5.large, secondary IPs and prefixes up to the interface's
# limit, the limit error, an injected fault, and the final state.
#
# Every step checks what it shows: a step whose outcome is not the expected one fails the demo.
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
# expect_error CODE ARGS... runs the CLI, shows its output, and fails the demo unless the call
# failed with CODE.
expect_error() {
	local code=$1 out
	shift
	printf '$ fakecloud %s\n' "$*"
	if out=$("$fakecloud" "$@" 2>&1); then
		echo "$out"
		echo "demo: expected $code, but the call succeeded" >&2
		exit 1
	fi
	echo "$out"
	grep -q "$code" <<<"$out" || { echo "demo: expected $code" >&2; exit 1; }
}
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
subnet=$(fc subnet create --vpc "$vpc" --cidr 10.0.1.0/24 -o json | field SubnetId)
show subnet list
echo "(251 usable: a subnet loses its first four addresses and its last one to the provider)"

step "an m5.large: at most 3 interfaces, 10 IPv4 slots each"
show instance-types list | sed -n '1p;/^m5.large /p'
instance=$(fc instance run --subnet "$subnet" --type m5.large -o json | field InstanceId)
show instance list

step "two more interfaces attached at device indexes 1 and 2"
for idx in 1 2; do
	e=$(fc eni create --subnet "$subnet" -o json | field NetworkInterfaceId)
	fc eni attach "$e" --instance "$instance" --device-index "$idx" >/dev/null
done
show eni list

step "a 4th interface is over the m5.large's limit: AttachmentLimitExceeded"
e4=$(fc eni create --subnet "$subnet" -o json | field NetworkInterfaceId)
expect_error AttachmentLimitExceeded eni attach "$e4" --instance "$instance" --device-index 3
fc eni delete "$e4" >/dev/null

eni=$(fc eni list --instance "$instance" -o json | sed -n 's/.*"NetworkInterfaceId": *"\([^"]*\)".*/\1/p' | head -n 1)
step "secondary IPs and /28 prefixes on the primary interface $eni: 1 primary + 5 IPs + 4 prefixes = 10 slots"
show eni assign-ips "$eni" --count 5
show eni assign-prefixes "$eni" --count 4

step "one more address does not fit: PrivateIpAddressLimitExceeded"
expect_error PrivateIpAddressLimitExceeded eni assign-ips "$eni" --count 1

step "a burst of 8 RunInstances calls: the bucket holds 5 and refills 2 per second, the rest are throttled"
ok=0 throttled=0
for _ in $(seq 8); do
	if out=$(fc instance run --subnet "$subnet" --type t3.nano 2>&1); then
		ok=$((ok + 1))
	elif grep -q RequestLimitExceeded <<<"$out"; then
		throttled=$((throttled + 1))
	else
		echo "demo: unexpected failure: $out" >&2
		exit 1
	fi
done
echo "served: $ok   RequestLimitExceeded: $throttled"
[ "$throttled" -gt 0 ] || { echo "demo: expected some calls to be throttled" >&2; exit 1; }

step "fault injection: every AssignPrivateIpAddresses fails with InternalError until cleared"
show fault set --action AssignPrivateIpAddresses --error-rate 1 --error-code InternalError
show fault list
eni2=$(fc eni list -o json | sed -n 's/.*"NetworkInterfaceId": *"\([^"]*\)".*/\1/p' | sed -n 2p)
expect_error InternalError eni assign-ips "$eni2" --count 1
show fault clear
show eni assign-ips "$eni2" --count 1

step "final state"
show instance list
show eni list
show subnet list

printf '\n%sdemo done%s: fakecloud stops now. Run it yourself: %s serve  (then %s --help)\n' \
	"$bold" "$plain" "$fakecloud" "$fakecloud"
