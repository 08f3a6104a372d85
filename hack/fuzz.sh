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

# Only packages whose test files mention a fuzz function are asked, so that listing does not
# compile every test binary of the module; the package's test binary, asked with -test.list, then
# has the final word (below, where a package that fails to compile fails).
candidates=()
while read -r pkg dir files; do
	[ -n "$files" ] || continue
	if (cd "$dir" && grep -qE '^func Fuzz[A-Z0-9_]' $files); then
		candidates+=("$pkg")
	fi
done < <(go list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' "${patterns[@]}")

# Go 1.26's fuzzing coordinator can fail a target that found nothing when -fuzztime runs out: it
# reads the deadline on its own context before the workers' child context is cancelled, and
# reports a bare "context deadline exceeded" (go.dev/issue/75804, fixed in Go 1.27). Such a run
# wrote no failing input and printed nothing else under its FAIL line, so it is run again, at most
# twice; any other failure, and any run that wrote an input, fails at once.
coordinator_race() {
	! grep -q 'Failing input written to' "$out" &&
		[ "$(sed -n "/^--- FAIL: $1 /,/^FAIL\$/p" "$out" | sed '1d;$d' | tr -d '[:space:]')" = contextdeadlineexceeded ]
}

# Each package's test binary is built once, instrumented for fuzzing (`go test -c -fuzz`), and
# serves both the listing and every target's run: `go test -fuzz` per target would link it again
# each time, and `go test -list` would build an uninstrumented one besides (most of this script's
# time on two cores). The binary runs in the package's directory, where its seed corpus is and
# where a failing input is written, with go test's fuzz cache and flags; it is removed once its
# package is done, as go test removes its binaries (they are large, and TMPDIR may be in memory).
work=$(cd "$(mktemp -d)" && pwd) # absolute: the binaries run from the packages' directories
out=$work/out
trap 'rm -rf "$work"' EXIT
fuzzcache=$(go env GOCACHE)/fuzz
failed=()
ntargets=0
build_secs=0
run_secs=0
for pkg in "${candidates[@]}"; do
	t0=$SECONDS
	bin=$work/$(printf '%s' "$pkg" | tr '/.' '__').test
	go test -c -fuzz=. -o "$bin" "$pkg" || { echo "fuzz: cannot build the test binary of $pkg" >&2; exit 1; }
	dir=$(go list -f '{{.Dir}}' "$pkg")
	names=$(cd "$dir" && "$bin" -test.list '^Fuzz') || { echo "fuzz: cannot list the fuzz targets of $pkg" >&2; exit 1; }
	build_secs=$((build_secs + SECONDS - t0))
	t0=$SECONDS
	while read -r name; do
		[[ $name == Fuzz* ]] || continue
		ntargets=$((ntargets + 1))
		for attempt in 1 2 3; do
			echo "fuzz: $name in $pkg for $fuzztime"
			if (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$fuzztime" \
				-test.fuzzcachedir "$fuzzcache/$pkg" -test.timeout 10m -test.paniconexit0 </dev/null) 2>&1 | tee "$out"; then
				break
			fi
			if [ "$attempt" -lt 3 ] && coordinator_race "$name"; then
				echo "fuzz: $name: the coordinator's deadline race (go.dev/issue/75804), no input failed; again"
				continue
			fi
			failed+=("$pkg $name")
			break
		done
	done <<<"$names"
	run_secs=$((run_secs + SECONDS - t0))
	rm -f "$bin"
done

if [ "$ntargets" -eq 0 ]; then
	echo "fuzz: no fuzz targets found in ${patterns[*]}"
	exit 0
fi
echo "fuzz: ${#candidates[@]} test binaries built in ${build_secs}s, ${ntargets} target(s) run in ${run_secs}s"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: ${ntargets} target(s) passed"
