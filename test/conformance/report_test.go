package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/features"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
)

// TestClaimsFile checks the committed claims: make conformance reads them.
func TestClaimsFile(t *testing.T) {
	c, err := LoadClaims("../../conformance/claims.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.SuiteProfiles(), "GATEWAY-HTTP,GATEWAY-GRPC,GATEWAY-TLS,GATEWAY-TCP,GATEWAY-UDP"; got != want {
		t.Errorf("profiles %q, want %q", got, want)
	}
}

// TestClaimsAreTheSupportedFeatures: what a GatewayClass of ours shows in
// status.supportedFeatures (lbcontroller/gateway) is what make conformance runs the suite with,
// and each name is one of the suite's features.
func TestClaimsAreTheSupportedFeatures(t *testing.T) {
	c, err := LoadClaims("../../conformance/claims.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var status []string
	known := features.SetsToNamesSet(features.AllFeatures)
	for _, f := range gateway.SupportedFeatures() {
		status = append(status, string(f.Name))
		if !known.Has(features.FeatureName(f.Name)) {
			t.Errorf("GatewayClass status names %q, which is not a feature of the suite", f.Name)
		}
	}
	if diff := cmp.Diff(strings.Split(c.SupportedFeatures(), ","), status); diff != "" {
		t.Errorf("the suite's -supported-features (conformance/claims.yaml; -) and the GatewayClass's status.supportedFeatures (lbcontroller/gateway; +) differ:\n%s", diff)
	}
}

func TestParseClaims(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, errPart, features string
	}{
		{name: "core only", yaml: "profiles: [GATEWAY-HTTP]\n", features: "Gateway,HTTPRoute,ReferenceGrant"},
		{name: "extended and reported", yaml: "profiles: [GATEWAY-HTTP, GATEWAY-GRPC]\nreported: [GATEWAY-TLS]\nextendedFeatures: [HTTPRouteMethodMatching]\n",
			features: "GRPCRoute,Gateway,HTTPRoute,HTTPRouteMethodMatching,ReferenceGrant,TLSRoute"},
		{name: "no profile", yaml: "reported: [GATEWAY-TLS]\n", errPart: "claim at least one profile"},
		{name: "unknown profile", yaml: "profiles: [MESH-HTTP]\n", errPart: `profile "MESH-HTTP" is not a Gateway profile`},
		{name: "unknown feature", yaml: "profiles: [GATEWAY-HTTP]\nextendedFeatures: [Teleport]\n", errPart: `extended feature "Teleport"`},
		{name: "both lists", yaml: "profiles: [GATEWAY-HTTP]\nreported: [GATEWAY-HTTP]\n", errPart: "both claimed and only reported"},
		{name: "unknown field", yaml: "profiles: [GATEWAY-HTTP]\nfeatures: []\n", errPart: `unknown field "features"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseClaims([]byte(tc.yaml))
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("ParseClaims = %+v, %v; want an error with %q", c, err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.SupportedFeatures(); got != tc.features {
				t.Errorf("SupportedFeatures() = %q, want %q", got, tc.features)
			}
		})
	}
}

func FuzzParseClaims(f *testing.F) {
	f.Add([]byte("profiles: [GATEWAY-HTTP]\nreported: [GATEWAY-TLS]\nextendedFeatures: [HTTPRouteMethodMatching]\n"))
	f.Add([]byte("profiles: [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClaims(b)
		if err == nil && len(c.Profiles) == 0 {
			t.Errorf("accepted claims without a profile: %q", b)
		}
	})
}

var claims = Claims{Profiles: []string{"GATEWAY-HTTP", "GATEWAY-GRPC"}, Reported: []string{"GATEWAY-TLS"}}

func report(profiles ...confv1.ProfileReport) *confv1.ConformanceReport {
	return &confv1.ConformanceReport{GatewayAPIVersion: "v1.6.3", GatewayAPIChannel: "standard", Date: "2026-12-04T12:00:00Z",
		Implementation: confv1.Implementation{Version: "v0.1.0"}, ProfileReports: profiles}
}

func status(result confv1.Result, passed, failed, skipped uint32, failedTests ...string) confv1.Status {
	return confv1.Status{Result: result, Statistics: confv1.Statistics{Passed: passed, Failed: failed, Skipped: skipped}, FailedTests: failedTests}
}

func TestVerdict(t *testing.T) {
	grpcOK := confv1.ProfileReport{Name: "GATEWAY-GRPC", Core: status(confv1.Success, 14, 0, 0)}
	httpOK := confv1.ProfileReport{Name: "GATEWAY-HTTP", Core: status(confv1.Success, 36, 0, 0)}
	tlsBad := confv1.ProfileReport{Name: "GATEWAY-TLS", Core: status(confv1.Failure, 10, 9, 0, "TLSRouteSimpleSameNamespace")}
	for _, tc := range []struct {
		name    string
		report  *confv1.ConformanceReport
		runTest string
		want    []string
	}{
		{name: "claims hold, a reported profile fails", report: report(httpOK, grpcOK, tlsBad)},
		{name: "setup failed", report: report(), want: []string{
			"GATEWAY-HTTP: no test ran (did the suite's setup fail? see its log)",
			"GATEWAY-GRPC: no test ran (did the suite's setup fail? see its log)"}},
		{name: "core failure", report: report(confv1.ProfileReport{Name: "GATEWAY-HTTP", Core: status(confv1.Failure, 34, 2, 0, "HTTPRouteSimpleSameNamespace", "GatewayInvalidTLSConfiguration")}, grpcOK),
			want: []string{"GATEWAY-HTTP core: 2 failed: HTTPRouteSimpleSameNamespace, GatewayInvalidTLSConfiguration"}},
		{name: "core skipped", report: report(confv1.ProfileReport{Name: "GATEWAY-HTTP", Core: confv1.Status{Result: confv1.Partial,
			Statistics: confv1.Statistics{Passed: 35, Skipped: 1}, SkippedTests: []string{"HTTPRouteHostnameIntersection"}}}, grpcOK),
			want: []string{"GATEWAY-HTTP core: 1 skipped: HTTPRouteHostnameIntersection"}},
		{name: "claimed extended feature fails", report: report(confv1.ProfileReport{Name: "GATEWAY-HTTP", Core: status(confv1.Success, 36, 0, 0),
			Extended: &confv1.ExtendedStatus{Status: status(confv1.Failure, 3, 1, 0, "HTTPRouteMethodMatching")}}, grpcOK),
			want: []string{"GATEWAY-HTTP extended: 1 failed: HTTPRouteMethodMatching"}},
		{name: "one test passes", runTest: "HTTPRouteSimpleSameNamespace",
			report: report(confv1.ProfileReport{Name: "GATEWAY-HTTP", Core: confv1.Status{Result: confv1.Partial, Statistics: confv1.Statistics{Passed: 1, Skipped: 35}}})},
		{name: "one test fails", runTest: "HTTPRouteSimpleSameNamespace",
			report: report(confv1.ProfileReport{Name: "GATEWAY-HTTP", Core: status(confv1.Failure, 0, 1, 35, "HTTPRouteSimpleSameNamespace")}),
			want:   []string{"GATEWAY-HTTP core: 1 failed: HTTPRouteSimpleSameNamespace"}},
		{name: "one test, in no claimed profile", runTest: "TLSRouteSimpleSameNamespace", report: report(tlsBad),
			want: []string{"test TLSRouteSimpleSameNamespace ran in no claimed profile (GATEWAY-HTTP, GATEWAY-GRPC)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Verdict(tc.report, claims, tc.runTest)); diff != "" {
				t.Errorf("Verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummaryTable(t *testing.T) {
	r := report(
		confv1.ProfileReport{Name: "GATEWAY-HTTP", Core: status(confv1.Failure, 34, 2, 0, "A", "B"),
			Extended: &confv1.ExtendedStatus{Status: status(confv1.Success, 3, 0, 0)}},
		confv1.ProfileReport{Name: "GATEWAY-TLS", Core: confv1.Status{Result: confv1.Partial, Statistics: confv1.Statistics{Passed: 18, Skipped: 1}}},
	)
	want := `Gateway API v1.6.3 (standard channel), flatnet v0.1.0, 2026-12-04T12:00:00Z: [report](conformance/reports/r.yaml).

| profile | claimed | core | extended | failed tests |
|---|---|---|---|---|
| GATEWAY-HTTP | yes | failure: 34 passed, 2 failed | success: 3 passed | A, B |
| GATEWAY-GRPC | yes | did not run | | |
| GATEWAY-TLS | reported only | partial: 18 passed, 1 skipped | none claimed |  |
`
	if diff := cmp.Diff(want, SummaryTable(r, claims, "conformance/reports/r.yaml")); diff != "" {
		t.Errorf("SummaryTable (-want +got):\n%s", diff)
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# x\n\n" + BeginMarker + "\nold\nlines\n" + EndMarker + "\n\nrest\n"
	got, err := ReplaceSection(doc, "new table\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# x\n\n" + BeginMarker + "\nnew table\n" + EndMarker + "\n\nrest\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReplaceSection (-want +got):\n%s", diff)
	}
	if _, err := ReplaceSection("# no markers\n", "t"); err == nil || !strings.Contains(err.Error(), "no conformance section") {
		t.Errorf("a README without markers: %v", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReplaceSection(string(readme), "t"); err != nil {
		t.Errorf("the project's README: %v", err)
	}
}

func TestReadReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.yaml")
	raw := `apiVersion: gateway.networking.k8s.io/v1
kind: ConformanceReport
gatewayAPIVersion: v1.6.3
profiles:
- name: GATEWAY-HTTP
  core:
    result: failure
    statistics: {Passed: 35, Failed: 1, Skipped: 0}
    failedTests: [HTTPRouteSimpleSameNamespace]
`
	if err := os.WriteFile(path, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"GATEWAY-HTTP core: 1 failed: HTTPRouteSimpleSameNamespace"}, Verdict(r, Claims{Profiles: []string{"GATEWAY-HTTP"}}, "")); diff != "" {
		t.Errorf("Verdict of the read report (-want +got):\n%s", diff)
	}
	if _, err := ReadReport(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "did the suite start") {
		t.Errorf("a missing report: %v", err)
	}
}
