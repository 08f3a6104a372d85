#!/usr/bin/env bash
# hack/kind/up.sh: flatnet on a kind cluster whose nodes are fakecloud instances (docs/kind.md).
#
#  1. creates the kind cluster of hack/kind/cluster.yaml (no default CNI: flatnet is the CNI; the
#     VPC as the pod range);
#  2. builds fakecloud and the images (make images) and loads them into the nodes;
#  3. starts fakecloud on the host with the fabric on and every kind node's network namespace
#     (/proc/<pid of the node container>/ns/net) attached to the instance named after the node:
#     each node gets vpc0 with its VPC address beside Docker's eth0, and keeps Docker's default
#     route (the fabric's attach mode, fakecloud/fabric/attach.go);
#  4. creates the VPC, the subnet and one instance per node (tag Name=<node>), and waits until
#     `fakecloud fabric attachments` says every node is attached;
#  5. masquerades VPC sources leaving a node through Docker's eth0 (nftables in the node's
#     namespace): the kind nodes reach the internet and each other's API through Docker, where a
#     VPC address means nothing;
#  6. creates lbcontroller's load-balancer token (`fakecloud token create-lb`: load balancer actions
#     only, never the admin token) and installs charts/flatnet with the cluster's name, the subnet,
#     fakecloud's in-VPC endpoint and that token, and waits for the DaemonSet, the controller and
#     every node Ready.
#
# fakecloud keeps running in the background (its pid, log, state and token in FLATNET_KIND_DIR);
# hack/kind/down.sh removes everything. Settings: hack/kind/lib.sh. Needs root, kind, docker,
# helm, kubectl, nsenter, nft, go and make.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=hack/kind/lib.sh
. hack/kind/lib.sh

need_kind_and_docker
need helm kubectl nsenter nft go make
need_root
cidr_check VPC_CIDR "$vpc_cidr"
cidr_check SUBNET_CIDR "$subnet_cidr"
if ! cidrs_overlap "$vpc_cidr" "$subnet_cidr" || [ "${subnet_cidr#*/}" -lt "${vpc_cidr#*/}" ]; then
	die "SUBNET_CIDR=$subnet_cidr is not inside VPC_CIDR=$vpc_cidr"
fi
case $listen in
127.*:* | localhost:*) ;;
*) die "FAKECLOUD_LISTEN must be a loopback address (the host reaches fakecloud, nobody else), got $listen" ;;
esac
if cluster_exists; then
	die "a kind cluster named $cluster exists already: remove it with hack/kind/down.sh, or pick another KIND_CLUSTER"
fi
if pid=$(fakecloud_pid); then
	die "the fakecloud of a previous run still runs (pid $pid, $state): hack/kind/down.sh first"
fi

# check_docker_network fails when Docker's network for kind (there once kind made a cluster)
# overlaps the VPC: a node routes the VPC through vpc0 and Docker's network through eth0, and
# the fabric refuses to shadow a node's own routes.
check_docker_network() {
	local net
	for net in $(docker network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null); do
		case $net in *:*) continue ;; esac
		if cidrs_overlap "$net" "$vpc_cidr"; then
			die "Docker's kind network $net overlaps VPC_CIDR=$vpc_cidr: run again with another VPC_CIDR (and SUBNET_CIDR inside it)"
		fi
	done
}
check_docker_network

say "building fakecloud and the images ($image_registry/*:$image_tag)"
mkdir -p "$state"
CGO_ENABLED=0 go build -trimpath -o bin/ ./cmd/fakecloud
make images PLATFORMS="linux/$(go env GOARCH)"
archives=()
for name in flatnet-ipamd flatnet-lbcontroller; do
	archive=bin/images/$name-$image_tag.tar
	[ -f "$archive" ] || die "make images wrote no $archive (IMAGE_TAG=$image_tag; ls bin/images to see what it wrote)"
	archives+=("$archive")
done

say "creating the kind cluster $cluster"
sed "s#^\(  podSubnet:\).*#\1 $vpc_cidr#" hack/kind/cluster.yaml >"$state/cluster.yaml"
create=(kind create cluster --name "$cluster" --config "$state/cluster.yaml" --kubeconfig "$kubeconfig")
[ -z "${KIND_NODE_IMAGE:-}" ] || create+=(--image "$KIND_NODE_IMAGE")
"${create[@]}"
export KUBECONFIG=$kubeconfig
check_docker_network # kind made the network if it was not there yet
for archive in "${archives[@]}"; do
	kind load image-archive --name "$cluster" "$archive"
done

mapfile -t nodes < <(kind get nodes --name "$cluster" | sort)
[ ${#nodes[@]} -gt 0 ] || die "kind lists no nodes for $cluster"
attach=()
for node in "${nodes[@]}"; do
	pid=$(docker inspect -f '{{.State.Pid}}' "$node")
	[ "${pid:-0}" -gt 0 ] || die "node container $node is not running (docker inspect gives pid '$pid')"
	attach+=(--fabric-attach "$node=/proc/$pid/ns/net")
done

say "starting fakecloud on $listen with ${#nodes[@]} kind nodes attached"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/admin-token"
chmod 600 "$state/admin-token"
nohup "$fakecloud" serve --listen "$listen" --admin-token-file "$state/admin-token" \
	--state-file "$state/fakecloud.state" --fabric netns --fabric-prefix "$prefix" --fabric-mtu "$mtu" \
	--fabric-teardown "${attach[@]}" >"$state/fakecloud.log" 2>&1 &
echo $! >"$state/fakecloud.pid"
for _ in $(seq 100); do
	fc vpc list >/dev/null 2>&1 && break
	fakecloud_pid >/dev/null || { tail -n 20 "$state/fakecloud.log" >&2; die "fakecloud exited (log above, $state/fakecloud.log)"; }
	sleep 0.2
done
fc vpc list >/dev/null || die "fakecloud does not answer on $listen ($state/fakecloud.log)"

say "creating the VPC $vpc_cidr, the subnet $subnet_cidr and an instance per node"
vpc=$(fc vpc create --cidr "$vpc_cidr" --tag "Name=$cluster" -o json | field VpcId)
subnet=$(fc subnet create --vpc "$vpc" --cidr "$subnet_cidr" -o json | field SubnetId)
if [ -z "$vpc" ] || [ -z "$subnet" ]; then
	die "could not create the VPC and subnet ($state/fakecloud.log)"
fi
for node in "${nodes[@]}"; do
	fc instance run --subnet "$subnet" --type "$instance_type" --tag "Name=$node" -o json | field InstanceId
done
if ! fc fabric attachments --wait 60s; then
	tail -n 20 "$state/fakecloud.log" >&2
	die "not every kind node got its VPC interface (reasons above; $state/fakecloud.log)"
fi

say "masquerading VPC sources that leave the nodes through Docker's eth0"
for node in "${nodes[@]}"; do
	pid=$(docker inspect -f '{{.State.Pid}}' "$node")
	# Priority 99, just before srcnat (100), where ipamd SNATs pod traffic leaving the VPC to the
	# node's primary IP: through eth0 that address means nothing, the node's Docker one does.
	nsenter --net="/proc/$pid/ns/net" nft -f - <<EOF
table ip flatnet_kind
delete table ip flatnet_kind
table ip flatnet_kind {
	chain postrouting {
		type nat hook postrouting priority 99; policy accept;
		oifname "eth0" ip saddr $vpc_cidr ip daddr != $vpc_cidr masquerade
	}
}
EOF
done

say "creating lbcontroller's load-balancer token"
rm -f "$state/lb-token"
fc token create-lb --description "lbcontroller of kind cluster $cluster" --token-out "$state/lb-token" >/dev/null ||
	die "could not create lbcontroller's load-balancer token ($state/fakecloud.log)"

say "installing charts/flatnet"
helm upgrade --install "$release" charts/flatnet --namespace "$release_ns" --create-namespace \
	--set "cluster.name=$cluster" --set "cloud.subnetID=$subnet" \
	--set "cloud.fakecloud.endpoint=http://169.254.169.254:7474" \
	--set-file "cloud.credentials.token=$state/lb-token" \
	--set "image.registry=$image_registry" --set "image.tag=$image_tag" --set image.pullPolicy=IfNotPresent \
	--set "ipamd.mtu=$mtu" --set lbcontroller.defaultClass=true \
	--wait --timeout 10m
for ds in $(kubectl -n "$release_ns" get daemonset -l "app.kubernetes.io/instance=$release" -o name); do
	kubectl -n "$release_ns" rollout status "$ds" --timeout 5m
done
kubectl wait --for=condition=Ready node --all --timeout 5m

cat >"$state/env" <<EOF
export KUBECONFIG=$PWD/$kubeconfig
export FAKECLOUD_ENDPOINT=http://$listen
export FAKECLOUD_TOKEN=\$(cat $PWD/$state/admin-token)
EOF
say "flatnet runs on kind cluster $cluster"
echo "  . $state/env            # kubectl and fakecloud for this cluster"
echo "  bin/fakecloud fabric attachments; kubectl get pods -A -o wide"
echo "  hack/kind/down.sh       # remove the cluster, fakecloud and the fabric"
