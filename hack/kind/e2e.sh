#!/usr/bin/env bash
# hack/kind/e2e.sh (make kind-e2e): hack/kind/up.sh, checks that the cluster's pods get VPC
# addresses and reach each other across nodes, then hack/kind/down.sh (KEEP=1 keeps it all for
# a look; hack/kind/down.sh removes it later). Settings: hack/kind/lib.sh; E2E_IMAGE is the image
# of the two test pods (default busybox:1.36, pulled by the nodes).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=hack/kind/lib.sh
. hack/kind/lib.sh

need_kind_and_docker
need_root
image=${E2E_IMAGE:-busybox:1.36}

finish() {
	local rc=$?
	if [ "${KEEP:-}" = 1 ]; then
		echo "KEEP=1: the cluster and fakecloud stay; hack/kind/down.sh removes them" >&2
	else
		hack/kind/down.sh || rc=1
	fi
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

hack/kind/up.sh
export KUBECONFIG=$kubeconfig

# in_subnet IP succeeds when IP lies in SUBNET_CIDR.
in_subnet() { cidrs_overlap "$1/32" "$subnet_cidr"; }

say "check: CoreDNS runs with VPC addresses (its pods need the CNI and reach the API server)"
kubectl -n kube-system wait --for=condition=Ready pod -l k8s-app=kube-dns --timeout 5m
for ip in $(kubectl -n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{.items[*].status.podIP}'); do
	in_subnet "$ip" || die "CoreDNS pod address $ip is not in the subnet $subnet_cidr"
	echo "  CoreDNS at $ip"
done

say "check: pods on two workers reach each other over the VPC"
mapfile -t workers < <(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
[ ${#workers[@]} -ge 2 ] || die "want two workers, kind made ${#workers[@]}"
kubectl create namespace flatnet-e2e --dry-run=client -o yaml | kubectl apply -f -
for i in 0 1; do
	kubectl -n flatnet-e2e run "p$i" --image "$image" --restart Never \
		--overrides "{\"spec\":{\"nodeName\":\"${workers[$i]}\"}}" -- sleep 3600
done
kubectl -n flatnet-e2e wait --for=condition=Ready pod/p0 pod/p1 --timeout 5m
ip1=$(kubectl -n flatnet-e2e get pod p1 -o jsonpath='{.status.podIP}')
in_subnet "$ip1" || die "pod address $ip1 is not in the subnet $subnet_cidr"
kubectl -n flatnet-e2e exec p0 -- ping -c 3 -W 2 "$ip1" || die "a pod on ${workers[0]} does not reach $ip1 on ${workers[1]}"
kubectl delete namespace flatnet-e2e --wait=false

say "kind e2e passed"
