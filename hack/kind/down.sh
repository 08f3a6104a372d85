#!/usr/bin/env bash
# hack/kind/down.sh: removes what hack/kind/up.sh made, also after a failed or interrupted up:
# the chart (its uninstall hook deletes the cluster's cloud load balancers, so fakecloud must
# still run), fakecloud (SIGTERM; with --fabric-teardown it unplugs its links from the kind nodes
# and removes its namespaces), whatever a crashed fakecloud left (fakecloud fabric down), the kind
# cluster, and FLATNET_KIND_DIR. Every step runs even when one before it failed; the exit status
# says whether all succeeded. Settings: hack/kind/lib.sh.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=hack/kind/lib.sh
. hack/kind/lib.sh

need_root
failed=()
have_kind=false
if command -v kind >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	have_kind=true
fi

if $have_kind && cluster_exists && [ -f "$kubeconfig" ] && command -v helm >/dev/null 2>&1; then
	say "uninstalling the chart"
	if helm status "$release" --namespace "$release_ns" --kubeconfig "$kubeconfig" >/dev/null 2>&1; then
		helm uninstall "$release" --namespace "$release_ns" --kubeconfig "$kubeconfig" --wait --timeout 5m ||
			failed+=("helm uninstall (its hook deletes the cloud load balancers)")
	fi
fi

if pid=$(fakecloud_pid); then
	say "stopping fakecloud (pid $pid)"
	kill -TERM "$pid"
	for _ in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		failed+=("fakecloud did not stop within 30s of SIGTERM: killed")
	fi
fi
if [ -x "$fakecloud" ]; then
	say "removing what the fabric left (prefix $prefix; attached namespaces are never deleted)"
	"$fakecloud" fabric down --prefix "$prefix" || failed+=("fakecloud fabric down --prefix $prefix")
fi

if $have_kind; then
	if cluster_exists; then
		say "deleting the kind cluster $cluster"
		kind delete cluster --name "$cluster" || failed+=("kind delete cluster --name $cluster")
	fi
else
	failed+=("kind and docker are needed to delete the kind cluster $cluster; nothing else is left")
fi

if [ ${#failed[@]} -eq 0 ]; then
	rm -rf "$state"
	say "removed"
	exit 0
fi
echo "hack/kind/down.sh: incomplete (state kept in $state):" >&2
printf '  - %s\n' "${failed[@]}" >&2
exit 1
