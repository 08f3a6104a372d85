//go:build conformance

package conformance_test

import (
	"testing"

	gwconformance "sigs.k8s.io/gateway-api/conformance"
)

// TestConformance is the official suite, configured by its own flags (-gateway-class,
// -conformance-profiles, -supported-features, -report-output, -run-test, ...). hack/conformance
// builds it with -tags conformance and runs it inside the lab's internet namespace with the
// lab's kubeconfig; it is never part of go test ./... (it needs the lab and its controller).
func TestConformance(t *testing.T) {
	gwconformance.RunConformance(t)
}
