package gateway

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml and the fuzz seeds from the inputs")

// inputKind is the document of an .in.yaml that carries Input's own fields (cluster,
// loadBalancers, ...); every other document is a Kubernetes object.
const inputKind = "TranslateInput"

// decodeInput reads a multi-document YAML stream of Kubernetes objects into an Input.
func decodeInput(data []byte) (Input, error) {
	var in Input
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var u unstructured.Unstructured
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return in, nil
		}
		if err != nil {
			return in, err
		}
		if u.Object == nil {
			continue
		}
		doc, err := yaml.Marshal(u.Object)
		if err != nil {
			return in, err
		}
		if err := decodeObject(&in, u.GetKind(), doc); err != nil {
			return in, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
}

func decodeObject(in *Input, kind string, doc []byte) error {
	var err error
	appendAs := func(dst any) { err = yaml.UnmarshalStrict(doc, dst) }
	switch kind {
	case inputKind:
		var extra struct {
			Kind string `json:"kind"`
			Input
		}
		appendAs(&extra)
		in.Cluster, in.ControllerName, in.BundleVersion = extra.Cluster, extra.ControllerName, extra.BundleVersion
		in.NoTLSRouteTermination, in.NoBackendTLSVerification = extra.NoTLSRouteTermination, extra.NoBackendTLSVerification
		in.NoBackendClientCertificates, in.NoFrontendClientValidation = extra.NoBackendClientCertificates, extra.NoFrontendClientValidation
		in.LoadBalancers, in.Registrable = extra.LoadBalancers, extra.Registrable
	case "GatewayClass":
		var o gwv1.GatewayClass
		appendAs(&o)
		in.GatewayClasses = append(in.GatewayClasses, o)
	case "Gateway":
		var o gwv1.Gateway
		appendAs(&o)
		in.Gateways = append(in.Gateways, o)
	case KindListenerSet:
		var o gwv1.ListenerSet
		appendAs(&o)
		in.ListenerSets = append(in.ListenerSets, o)
	case KindHTTPRoute:
		var o gwv1.HTTPRoute
		appendAs(&o)
		in.HTTPRoutes = append(in.HTTPRoutes, o)
	case KindGRPCRoute:
		var o gwv1.GRPCRoute
		appendAs(&o)
		in.GRPCRoutes = append(in.GRPCRoutes, o)
	case KindTLSRoute:
		var o gwv1.TLSRoute
		appendAs(&o)
		in.TLSRoutes = append(in.TLSRoutes, o)
	case KindTCPRoute:
		var o gwv1.TCPRoute
		appendAs(&o)
		in.TCPRoutes = append(in.TCPRoutes, o)
	case KindUDPRoute:
		var o gwv1.UDPRoute
		appendAs(&o)
		in.UDPRoutes = append(in.UDPRoutes, o)
	case "ReferenceGrant":
		var o gwv1.ReferenceGrant
		appendAs(&o)
		in.ReferenceGrants = append(in.ReferenceGrants, o)
	case "Service":
		var o corev1.Service
		appendAs(&o)
		in.Services = append(in.Services, o)
	case "EndpointSlice":
		var o discoveryv1.EndpointSlice
		appendAs(&o)
		in.EndpointSlices = append(in.EndpointSlices, o)
	case "Secret":
		var o corev1.Secret
		appendAs(&o)
		for k, v := range o.StringData { // as the API server does
			if o.Data == nil {
				o.Data = map[string][]byte{}
			}
			o.Data[k] = []byte(v)
		}
		o.StringData = nil
		in.Secrets = append(in.Secrets, o)
	case KindBackendTLSPolicy:
		var o gwv1.BackendTLSPolicy
		appendAs(&o)
		in.BackendTLSPolicies = append(in.BackendTLSPolicies, o)
	case KindConfigMap:
		var o corev1.ConfigMap
		appendAs(&o)
		in.ConfigMaps = append(in.ConfigMaps, o)
	case "Namespace":
		var o corev1.Namespace
		appendAs(&o)
		in.Namespaces = append(in.Namespaces, o)
	default:
		return fmt.Errorf("kind %q is not an input of Translate", kind)
	}
	return err
}

// TestTranslate runs every testdata/NAME.in.yaml through Translate and compares the model,
// statuses and events with testdata/NAME.out.yaml (go test -update rewrites those).
func TestTranslate(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no inputs in testdata: %v", err)
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
				t.Fatalf("decode %s: %v", path, err)
			}
			got, err := yaml.Marshal(Translate(in))
			if err != nil {
				t.Fatal(err)
			}
			// Translating twice gives the same bytes: nothing depends on map order.
			again, _ := yaml.Marshal(Translate(in))
			if !bytes.Equal(got, again) {
				t.Fatalf("two translations of the same input differ:\n%s", cmp.Diff(string(got), string(again)))
			}
			golden := filepath.Join("testdata", name+".out.yaml")
			if *update {
				writeFile(t, golden, got)
				writeFile(t, filepath.Join("testdata", "fuzz", "FuzzTranslate", "seed-"+name),
					fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data))
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", golden, d)
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzTranslate feeds arbitrary documents (decoded as the golden inputs are): Translate must
// never panic, must be deterministic, and every rule it emits must be numbered in order.
func FuzzTranslate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := decodeInput(data)
		if err != nil {
			return
		}
		out := Translate(in)
		a, err := yaml.Marshal(out)
		if err != nil {
			t.Fatalf("output does not marshal: %v", err)
		}
		if b, _ := yaml.Marshal(Translate(in)); !bytes.Equal(a, b) {
			t.Fatal("two translations of the same input differ")
		}
		for _, lb := range out.LoadBalancers {
			if lb.L7 == nil {
				continue
			}
			for _, l := range lb.L7.Listeners {
				for i, r := range l.Rules {
					if r.Priority != i+1 {
						t.Fatalf("listener %d rule %d has priority %d", l.Port, i, r.Priority)
					}
				}
			}
		}
	})
}
