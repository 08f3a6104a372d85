package gateway

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestIntersect(t *testing.T) {
	tests := []struct {
		route    []gwv1.Hostname
		listener string
		kind     string
		want     []string
		ok       bool
	}{
		{nil, "", KindHTTPRoute, nil, true},
		{nil, "foo.example.com", KindHTTPRoute, []string{"foo.example.com"}, true},
		{[]gwv1.Hostname{"a.example.com"}, "", KindHTTPRoute, []string{"a.example.com"}, true},
		{[]gwv1.Hostname{"foo.example.com"}, "foo.example.com", KindHTTPRoute, []string{"foo.example.com"}, true},
		{[]gwv1.Hostname{"foo.example.com", "bar.example.net"}, "*.example.com", KindHTTPRoute, []string{"foo.example.com"}, true},
		{[]gwv1.Hostname{"a.b.example.com"}, "*.example.com", KindHTTPRoute, []string{"a.b.example.com"}, true},
		{[]gwv1.Hostname{"example.com"}, "*.example.com", KindHTTPRoute, nil, false},
		{[]gwv1.Hostname{"*.example.com"}, "foo.example.com", KindHTTPRoute, []string{"foo.example.com"}, true},
		{[]gwv1.Hostname{"*.example.com"}, "example.com", KindHTTPRoute, nil, false},
		{[]gwv1.Hostname{"*.foo.example.com"}, "*.example.com", KindHTTPRoute, []string{"*.foo.example.com"}, true},
		{[]gwv1.Hostname{"*.example.com"}, "*.foo.example.com", KindHTTPRoute, []string{"*.foo.example.com"}, true},
		{[]gwv1.Hostname{"*.com"}, "*.example.com", KindTLSRoute, []string{"*.example.com"}, true},
		{[]gwv1.Hostname{"*.example.org"}, "*.example.com", KindTLSRoute, nil, false},
		{[]gwv1.Hostname{"foo.example.org"}, "foo.example.com", KindGRPCRoute, nil, false},
		{nil, "foo.example.com", KindTCPRoute, nil, true},
	}
	for _, tt := range tests {
		got, ok := intersect(tt.route, tt.listener, tt.kind)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("intersect(%v, %q, %s) = %v, %v; want %v, %v", tt.route, tt.listener, tt.kind, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCompareHosts(t *testing.T) {
	hosts := []string{"", "*.example.com", "a.example.com", "*.a.example.com", "b.example.com", "long.name.example.com"}
	slices.SortFunc(hosts, compareHosts)
	want := []string{"long.name.example.com", "a.example.com", "b.example.com", "*.a.example.com", "*.example.com", ""}
	if d := cmp.Diff(want, hosts); d != "" {
		t.Errorf("order (-want +got):\n%s", d)
	}
}

// TestTranslateLeavesInputAlone: Translate reads the snapshot (shared with a cache) and never
// writes to it.
func TestTranslateLeavesInputAlone(t *testing.T) {
	ins, _ := filepath.Glob("testdata/*.in.yaml")
	for _, path := range ins {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		in, err := decodeInput(data)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := decodeInput(data)
		Translate(in)
		if d := cmp.Diff(before, in); d != "" {
			t.Errorf("%s: Translate changed its input (-before +after):\n%s", path, d)
		}
	}
}

// TestSupportedFeaturesSorted: the API asks for status.supportedFeatures sorted by name, with
// no name twice (it is a map list).
func TestSupportedFeaturesSorted(t *testing.T) {
	if !slices.IsSorted(supportedFeatures) || len(slices.Compact(slices.Clone(supportedFeatures))) != len(supportedFeatures) {
		t.Fatalf("supportedFeatures is not sorted or repeats a name: %v", supportedFeatures)
	}
	if len(supportedFeatures) > 64 {
		t.Fatalf("%d supported features; the GatewayClass CRD takes 64", len(supportedFeatures))
	}
}

// TestWithoutKinds: the features of a route kind whose CRD is missing are dropped, the rest
// kept in order.
func TestWithoutKinds(t *testing.T) {
	names := func(fs []gwv1.SupportedFeature) []string {
		var out []string
		for _, f := range fs {
			out = append(out, string(f.Name))
		}
		return out
	}
	all := SupportedFeatures()
	if got := WithoutKinds(all); len(got) != len(all) {
		t.Fatalf("no kinds dropped %d of %d features", len(all)-len(got), len(all))
	}
	got := names(WithoutKinds(all, KindGRPCRoute, KindUDPRoute))
	for _, gone := range []string{"GRPCRoute", "GRPCRouteNamedRouteRule", "UDPRoute"} {
		if slices.Contains(got, gone) {
			t.Errorf("%s kept without its CRD: %v", gone, got)
		}
	}
	if len(got) != len(all)-3 || !slices.Contains(got, "TCPRoute") || !slices.IsSorted(got) {
		t.Errorf("WithoutKinds(GRPCRoute, UDPRoute) = %v", got)
	}
	got = names(Without(all, MisdirectedRequests))
	if len(got) != len(all)-1 || slices.Contains(got, string(MisdirectedRequests)) || !slices.Contains(names(all), string(MisdirectedRequests)) {
		t.Errorf("Without(%s) = %v", MisdirectedRequests, got)
	}
	if n := names(all); !slices.Contains(n, "GRPCRoute") {
		t.Errorf("WithoutKinds changed its input: %v", n)
	}
}

// TestCABundleBound: a CA ConfigMap whose certificates exceed what the load balancer takes is
// refused at translation, naming the size, not passed on for the cloud to refuse.
func TestCABundleBound(t *testing.T) {
	crt, err := os.ReadFile("testdata/backend-tls.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := decodeInput(crt)
	if err != nil {
		t.Fatal(err)
	}
	one := in.ConfigMaps[0].Data[caCertificateKey] // the "ca" ConfigMap
	tr := &translation{configMaps: map[string]*corev1.ConfigMap{}}
	fits := strings.Repeat(one, maxCABundle/len(one))
	big := fits + one
	tr.configMaps["ns/fits"] = &corev1.ConfigMap{Data: map[string]string{caCertificateKey: fits}}
	tr.configMaps["ns/big"] = &corev1.ConfigMap{Data: map[string]string{caCertificateKey: big}}
	if got, err := tr.caBundle("ns", "fits"); err != nil || len(got) != len(fits) {
		t.Errorf("a bundle of %d bytes: %d bytes, %v", len(fits), len(got), err)
	}
	if _, err := tr.caBundle("ns", "big"); err == nil || !strings.Contains(err.Error(), "at most 65536") {
		t.Errorf("a bundle of %d bytes: %v, want refused for its size", len(big), err)
	}
}

// TestPathModifierPrefix: a ReplacePrefixMatch of "" is "/" (Gateway API makes them the same
// rewrite), so that a cloud reads back the one spelling; not given is "/" too.
func TestPathModifierPrefix(t *testing.T) {
	matches := []compiledMatch{{cond: Conditions{Path: &PathMatch{Type: MatchPrefix, Value: "/foo"}}}}
	for _, tc := range []struct {
		value *string
		want  string
	}{{nil, "/"}, {ptrTo(""), "/"}, {ptrTo("/"), "/"}, {ptrTo("/xyz"), "/xyz"}, {ptrTo("/xyz/"), "/xyz/"}} {
		pm, err := pathModifier(&gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: tc.value}, matches)
		if err != nil || pm == nil || *pm != (PathModifier{Type: ReplacePrefixMatch, Value: tc.want}) {
			given := "not given"
			if tc.value != nil {
				given = "\"" + *tc.value + "\""
			}
			t.Errorf("replacePrefixMatch %s: %+v, %v; want %s", given, pm, err, tc.want)
		}
	}
}

// TestPrefixPathOneSpelling: a PathPrefix's trailing slashes are dropped from the condition
// ("/" stays), since a prefix matches whole segments; the precedence keeps the written length.
func TestPrefixPathOneSpelling(t *testing.T) {
	for in, want := range map[string]string{"/": "/", "//": "/", "/x": "/x", "/x/": "/x", "/x//": "/x", "/x/y/": "/x/y"} {
		c, err := httpMatch(gwv1.HTTPRouteMatch{Path: &gwv1.HTTPPathMatch{Type: ptrTo(gwv1.PathMatchPathPrefix), Value: ptrTo(in)}})
		if err != nil || c.cond.Path == nil || *c.cond.Path != (PathMatch{Type: MatchPrefix, Value: want}) || c.prec.pathLen != len(in) {
			t.Errorf("PathPrefix %q: %+v (length %d), %v; want Prefix %q, length %d", in, c.cond.Path, c.prec.pathLen, err, want, len(in))
		}
	}
	c, err := httpMatch(gwv1.HTTPRouteMatch{Path: &gwv1.HTTPPathMatch{Type: ptrTo(gwv1.PathMatchExact), Value: ptrTo("/x/")}})
	if err != nil || c.cond.Path.Value != "/x/" {
		t.Errorf("Exact /x/: %+v, %v; an exact path keeps its slash", c.cond.Path, err)
	}
}

// TestPathModifierRefusesNonPaths: a replacement that is no path is refused, for either type.
func TestPathModifierRefusesNonPaths(t *testing.T) {
	matches := []compiledMatch{{cond: Conditions{Path: &PathMatch{Type: MatchPrefix, Value: "/foo"}}}}
	for _, v := range []string{"xyz", "/a?b=1", "/a#f", "/a b", "/a\tb", "/a\x7f"} {
		for _, pm := range []gwv1.HTTPPathModifier{{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: ptrTo(v)}, {Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptrTo(v)}} {
			if got, err := pathModifier(&pm, matches); err == nil {
				t.Errorf("%s %q: %+v, want an error", pm.Type, v, got)
			}
		}
	}
	if _, err := pathModifier(&gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: ptrTo("")}, nil); err == nil {
		t.Error("ReplaceFullPath \"\": taken, want an error")
	}
	if got, err := pathModifier(&gwv1.HTTPPathModifier{Type: gwv1.FullPathHTTPPathModifier, ReplaceFullPath: ptrTo("/a/b.html")}, nil); err != nil || got.Value != "/a/b.html" {
		t.Errorf("ReplaceFullPath /a/b.html: %+v, %v", got, err)
	}
}

func ptrTo[T any](v T) *T { return &v }
