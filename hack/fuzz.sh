#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 10s), one at a time, in its own
# package: `go test -fuzz` accepts one target in one package per run. Fails if any target fails;
# a failing input is saved under the package's testdata/fuzz/ and replays in every plain `go test`.
#
# Usage: hack/fuzz.sh [package pattern ...]   (default ./...)
# Env:   FUZZTIME (default 10s)
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
patterns=("$@")
[ ${#patterns[@]} -gt 0 ] || patterns=(./...)

# `go test -list` prints the matching names of each package, then "ok <pkg> <time>".
targets=()
while read -r pkg; do
	while read -r name; do
		targets+=("$pkg $name")
	done < <(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
done < <(go list -f '{{if .TestGoFiles}}{{.ImportPath}}{{else if .XTestGoFiles}}{{.ImportPath}}{{end}}' "${patterns[@]}")

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found in ${patterns[*]}"
	exit 0
fi

failed=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "fuzz: $name in $pkg for $fuzztime"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		failed+=("$pkg $name")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} target(s) passed"
