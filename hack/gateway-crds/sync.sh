#!/usr/bin/env bash
# Copies the Gateway API CRDs of the sigs.k8s.io/gateway-api version go.mod pins (its standard
# channel, which serves every kind flatnet implements at v1) into the chart's crds/ directory,
# or with --check fails when the chart's copy differs from the module's. Only the
# CustomResourceDefinitions: the bundle's ValidatingAdmissionPolicy (safe-upgrades) is left to
# the cluster's owner, since it would refuse a later switch to the experimental channel.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)/config/crd/standard
dst=charts/flatnet/crds
if [ ! -d "$src" ]; then
	echo "gateway-crds: $src is missing: run go mod download sigs.k8s.io/gateway-api" >&2
	exit 1
fi
if [ "${1:-}" = --check ]; then
	if ! diff -r -q -x kustomization.yaml -x '*_vap_*' "$src" "$dst" >/dev/null; then
		diff -r -q -x kustomization.yaml -x '*_vap_*' "$src" "$dst" >&2 || true
		echo "charts/flatnet/crds differs from the Gateway API CRDs of $(go list -m sigs.k8s.io/gateway-api): run hack/gateway-crds/sync.sh" >&2
		exit 1
	fi
	exit 0
fi
rm -f "$dst"/*.yaml
for f in "$src"/*.yaml; do
	case "$(basename "$f")" in kustomization.yaml | *_vap_*) continue ;; esac
	install -m 0644 "$f" "$dst/"
done
echo "copied the Gateway API CRDs of $(go list -m sigs.k8s.io/gateway-api) into $dst"
