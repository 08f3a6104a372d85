package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// versioned gives every object of in a UID and a resourceVersion, as objects from the API
// server have (the golden inputs have none, which a Translator compiles afresh each time).
func versioned(in *Input) {
	n := 0
	set := func(m *metav1.ObjectMeta) {
		n++
		m.UID, m.ResourceVersion = types.UID(fmt.Sprint("uid-", n)), fmt.Sprint(n)
	}
	for i := range in.HTTPRoutes {
		set(&in.HTTPRoutes[i].ObjectMeta)
	}
	for i := range in.GRPCRoutes {
		set(&in.GRPCRoutes[i].ObjectMeta)
	}
	for i := range in.TLSRoutes {
		set(&in.TLSRoutes[i].ObjectMeta)
	}
	for i := range in.TCPRoutes {
		set(&in.TCPRoutes[i].ObjectMeta)
	}
	for i := range in.UDPRoutes {
		set(&in.UDPRoutes[i].ObjectMeta)
	}
	for i := range in.Services {
		set(&in.Services[i].ObjectMeta)
	}
	for i := range in.ReferenceGrants {
		set(&in.ReferenceGrants[i].ObjectMeta)
	}
}

// bump gives an object a new resourceVersion and, for a spec change, generation.
func bump(m *metav1.ObjectMeta, spec bool) {
	m.ResourceVersion += "+"
	if spec {
		m.Generation++
	}
}

// TestTranslatorMatchesTranslate: for every golden input, a Translator's output is
// Translate's, cold and again from its memory, and stays so as routes, Services and
// ReferenceGrants change, come and go; the memory is used when nothing a route's compilation
// reads changed, and not otherwise.
func TestTranslatorMatchesTranslate(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, path := range ins {
		name := strings.TrimSuffix(filepath.Base(path), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			in, err := decodeInput(data)
			if err != nil {
				t.Fatal(err)
			}
			versioned(&in)
			routes := len(in.HTTPRoutes) + len(in.GRPCRoutes) + len(in.TLSRoutes) + len(in.TCPRoutes) + len(in.UDPRoutes)
			tr := NewTranslator()
			same := func(step string, wantHits int) {
				t.Helper()
				before := tr.hits
				got, err := yaml.Marshal(tr.Translate(in))
				if err != nil {
					t.Fatal(err)
				}
				want, err := yaml.Marshal(Translate(in))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Fatalf("%s: the Translator's output differs from Translate's (-Translate +Translator):\n%s", step, diff)
				}
				if hits := tr.hits - before; wantHits >= 0 && hits != wantHits {
					t.Errorf("%s: %d routes taken from memory, want %d", step, hits, wantHits)
				}
			}
			same("cold", 0)
			same("warm", routes)
			if len(in.HTTPRoutes) > 0 {
				// One route's spec changes: it alone is compiled again.
				r := &in.HTTPRoutes[0]
				if len(r.Spec.Rules) > 0 {
					r.Spec.Rules[0].Matches = append(r.Spec.Rules[0].Matches, gwv1.HTTPRouteMatch{
						Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchExact), Value: ptr.To("/memo-test")}})
				}
				bump(&r.ObjectMeta, true)
				same("one route changed", routes-1)
				// Its status written: a new resourceVersion, the same generation and spec.
				bump(&r.ObjectMeta, false)
				same("one route's status written", routes)
				// The same name, a new object (deleted and created again).
				r.UID += "-again"
				same("one route re-created", routes-1)
				// A route gone.
				in.HTTPRoutes = in.HTTPRoutes[1:]
				routes--
				same("one route deleted", routes)
			}
			if len(in.Services) > 0 {
				// A Service's ports change: every route is compiled again (its backends may
				// resolve otherwise).
				s := &in.Services[0]
				// Its status or labels written: nothing a compilation reads.
				bump(&s.ObjectMeta, false)
				s.Labels = map[string]string{"touched": "yes"}
				same("a Service's labels changed", routes)
				if len(s.Spec.Ports) > 0 {
					s.Spec.Ports[0].Port += 1000
				} else {
					s.Spec.Ports = []corev1.ServicePort{{Port: 1234}}
				}
				bump(&s.ObjectMeta, true)
				same("a Service changed", 0)
				same("after the Service's change", routes)
				in.Services = in.Services[1:]
				same("a Service deleted", 0)
			}
			if len(in.ReferenceGrants) > 0 {
				in.ReferenceGrants = in.ReferenceGrants[1:]
				same("a ReferenceGrant deleted", 0)
			}
			// An object without a resourceVersion: nothing is remembered.
			if len(in.Services) > 0 {
				in.Services[0].ResourceVersion = ""
				same("unversioned", 0)
				same("unversioned again", 0)
			}
		})
	}
}
