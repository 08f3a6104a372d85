package gateway

import (
	"fmt"
	"os"
	"testing"

	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// BenchmarkTranslate1000Routes is one translation of testdata/http-basic with its first
// HTTPRoute copied to 1,000 routes, each its own path prefix: what every Gateway pass of a
// Gateway with 1,000 routes does (twice when the cloud's answer changed the load balancers'
// state); by Translate, and by a Translator after one route's change.
func BenchmarkTranslate1000Routes(b *testing.B) {
	data, err := os.ReadFile("testdata/http-basic.in.yaml")
	if err != nil {
		b.Fatal(err)
	}
	in, err := decodeInput(data)
	if err != nil {
		b.Fatal(err)
	}
	if len(in.HTTPRoutes) == 0 {
		b.Fatal("testdata/http-basic has no HTTPRoute")
	}
	proto := in.HTTPRoutes[0]
	in.HTTPRoutes = nil
	for i := range 1000 {
		r := *proto.DeepCopy()
		r.Name = fmt.Sprintf("r%04d", i)
		r.Spec.Rules = r.Spec.Rules[:1]
		r.Spec.Rules[0].Matches = []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To(fmt.Sprintf("/r%04d", i))}}}
		in.HTTPRoutes = append(in.HTTPRoutes, r)
	}
	b.Run("Translate", func(b *testing.B) {
		for b.Loop() {
			out := Translate(in)
			if len(out.Routes) != 1000 {
				b.Fatalf("%d routes translated, want 1000", len(out.Routes))
			}
		}
	})
	// The controller's case: a Translator, and one route's change between translations.
	b.Run("Translator-one-change", func(b *testing.B) {
		versioned(&in)
		tr := NewTranslator()
		tr.Translate(in)
		r := &in.HTTPRoutes[500]
		for b.Loop() {
			bump(&r.ObjectMeta, true)
			out := tr.Translate(in)
			if len(out.Routes) != 1000 {
				b.Fatalf("%d routes translated, want 1000", len(out.Routes))
			}
		}
	})
}
