// Package conformance runs the official Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance) against flatnet in the lab, for make conformance
// (docs/conformance.md). The suite itself is conformance_test.go, built only with the
// "conformance" tag into a test binary that hack/conformance runs inside the lab's internet
// namespace, where every Gateway's address is reachable. This package holds what surrounds it
// as pure functions: what flatnet claims (conformance/claims.yaml), the verdict on a report, and
// the README's summary table.
package conformance
