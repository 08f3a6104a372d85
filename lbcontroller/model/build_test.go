package model

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func service(mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "6f1c2a9e-0000-4000-8000-000000000001"},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

type ep struct {
	ip                          string
	pod                         string
	ready, serving, terminating *bool
}

func slice(name, portName string, port int32, proto corev1.Protocol, eps ...ep) discoveryv1.EndpointSlice {
	sl := discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: name},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(port), Protocol: ptr(proto)}},
	}
	for _, e := range eps {
		d := discoveryv1.Endpoint{
			Addresses:  []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating},
		}
		if e.pod != "" {
			d.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: e.pod}
		}
		sl.Endpoints = append(sl.Endpoints, d)
	}
	return sl
}

var (
	yes = ptr(true)
	no  = ptr(false)
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name string
		in   Input
	}{
		{
			name: "ready-terminating-and-gated",
			in: Input{
				Cluster: "lab",
				Service: service(),
				Slices: []discoveryv1.EndpointSlice{
					slice("web-a", "http", 8080, corev1.ProtocolTCP,
						ep{ip: "10.0.1.12", pod: "web-2", ready: yes},
						ep{ip: "10.0.1.10", pod: "web-0"}, // conditions unset: ready
						ep{ip: "10.0.1.11", pod: "web-1", ready: no, serving: yes, terminating: yes},
						ep{ip: "10.0.1.13", pod: "web-3", ready: no, serving: no, terminating: yes},
						ep{ip: "10.0.1.14", pod: "web-4", ready: no}, // not ready, no gate: left out
						ep{ip: "10.0.1.15", pod: "web-5", ready: no}, // not ready, gated: registered
					),
					slice("web-b", "http", 8080, corev1.ProtocolTCP,
						ep{ip: "10.0.1.10", pod: "web-0", ready: yes}, // duplicate across slices
						ep{ip: "10.0.1.16", ready: yes},
					),
					{ObjectMeta: metav1.ObjectMeta{Name: "web-v6"}, AddressType: discoveryv1.AddressTypeIPv6,
						Ports:     []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080))}},
						Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}}},
				},
				Registrable: map[string]bool{"shop/web-5": true},
			},
		},
		{
			// Tags for the load balancer and its groups: spaces dropped, an empty value kept.
			name: "tags-annotation",
			in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
				s.Annotations = map[string]string{AnnotationTags: " team = payments, example.com/env=prod ,empty="}
			})},
		},
		{
			name: "invalid-tags-annotation",
			in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
				s.Annotations = map[string]string{AnnotationTags: "team=a,no-equals,team=b,flatnet.io/cluster=x,aws:cost=1,=v,url=x?y"}
			})},
		},
		{
			name: "internal-http-health-udp-source-ranges",
			in: Input{
				Cluster: "lab",
				Service: service(func(s *corev1.Service) {
					s.Annotations = map[string]string{
						AnnotationScheme: "internal", AnnotationHCProtocol: "http", AnnotationHCPath: "/healthz",
						AnnotationHCPort: "8081", AnnotationHCInterval: "5s", AnnotationHCTimeout: "2",
						AnnotationHCHealthy: "2", AnnotationHCUnhealthy: "4", AnnotationDeregistration: "30",
						AnnotationTargetType: "ip",
					}
					s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.7/24", "10.0.0.0/16", "203.0.113.0/24"}
					s.Spec.AllocateLoadBalancerNodePorts = ptr(false)
					s.Spec.Ports = []corev1.ServicePort{
						{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53},
						{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53},
					}
				}),
				Slices: []discoveryv1.EndpointSlice{
					slice("dns-udp", "dns", 5353, corev1.ProtocolUDP, ep{ip: "10.0.2.20", ready: yes}),
					slice("dns-tcp", "dns-tcp", 5353, corev1.ProtocolTCP, ep{ip: "10.0.2.20", ready: yes}),
				},
			},
		},
		{
			name: "legacy-source-ranges-no-endpoints",
			in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
				s.Annotations = map[string]string{AnnotationLegacySourceRanges: "198.18.0.0/15, 192.0.2.0/24"}
			})},
		},
		{name: "invalid-sctp", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "sig", Protocol: corev1.ProtocolSCTP, Port: 9})
		})}},
		{name: "invalid-annotations", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Annotations = map[string]string{
				AnnotationScheme: "public", AnnotationHCPort: "70000", AnnotationHCPath: "/x",
				AnnotationHCInterval: "soon", AnnotationHCHealthy: "1", AnnotationDeregistration: "2h",
				AnnotationTargetType: "instance", AnnotationPrefix + "healthcheck-intreval": "10",
			}
		})}},
		{name: "invalid-timeout-over-interval", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Annotations = map[string]string{AnnotationHCInterval: "5", AnnotationHCTimeout: "6"}
		})}},
		{name: "invalid-source-ranges", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/33", "everyone", "2001:db8::/32"}
		})}},
		{name: "invalid-too-many-ports", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Spec.Ports = nil
			for i := range MaxListeners + 1 {
				s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Protocol: corev1.ProtocolTCP, Port: int32(1000 + i)})
			}
		})}},
		{name: "invalid-port-out-of-range", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Spec.Ports[0].Port = 0
		})}},
		{name: "address-annotation", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Annotations = map[string]string{AnnotationAddress: "198.51.100.7"}
		})}},
		{name: "address-field-internal", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Annotations = map[string]string{AnnotationScheme: SchemeInternal}
			s.Spec.LoadBalancerIP = "10.0.0.200"
		})}},
		{name: "invalid-address", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Annotations = map[string]string{AnnotationAddress: "198.51.100.7"}
			s.Spec.LoadBalancerIP = "198.51.100.8"
		})}},
		{name: "invalid-address-v6", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Spec.LoadBalancerIP = "2001:db8::7"
		})}},
		{name: "invalid-address-malformed", in: Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			s.Annotations = map[string]string{AnnotationAddress: "198.51.100.300"}
		})}},
		{name: "invalid-address-no-static", in: Input{Cluster: "lab", NoStaticAddresses: true, Service: service(func(s *corev1.Service) {
			s.Spec.LoadBalancerIP = "198.51.100.7"
		})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, err := Build(tt.in)
			var got []byte
			if err != nil {
				var inv *InvalidError
				if !errors.As(err, &inv) {
					t.Fatalf("Build: %v is not an *InvalidError", err)
				}
				got = []byte("invalid:\n- " + strings.Join(inv.Problems, "\n- ") + "\n")
			} else {
				checkNames(t, lb)
				got, err = json.MarshalIndent(lb, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./lbcontroller/model -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Build differs from %s (-want +got; -update rewrites it):\n%s", golden, diff)
			}
		})
	}
}

var cloudName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

// checkNames asserts what the cloud demands of names: at most 32 letters, digits and hyphens.
func checkNames(t *testing.T, lb *LoadBalancer) {
	t.Helper()
	names := []string{lb.Name}
	for _, tg := range lb.TargetGroups {
		names = append(names, tg.Name)
	}
	for _, n := range names {
		if !cloudName.MatchString(n) {
			t.Errorf("name %q is not a valid cloud name", n)
		}
	}
}

// TestNamesStable checks that names depend on the Service's identity and scheme only, so a
// repeated pass finds what an earlier one created, and a scheme change gets a new load balancer.
func TestNamesStable(t *testing.T) {
	a, err := Build(Input{Cluster: "lab", Service: service()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
		s.Annotations = map[string]string{AnnotationHCInterval: "30", AnnotationDeregistration: "0"}
	})})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != b.Name || a.TargetGroups[0].Name != b.TargetGroups[0].Name {
		t.Errorf("settings changed the names: %s/%s vs %s/%s", a.Name, a.TargetGroups[0].Name, b.Name, b.TargetGroups[0].Name)
	}
	c, err := Build(Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
		s.Annotations = map[string]string{AnnotationScheme: SchemeInternal}
	})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name == a.Name {
		t.Errorf("a scheme change kept the load balancer's name %s", a.Name)
	}
	d, err := Build(Input{Cluster: "other", Service: service()})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name == a.Name {
		t.Errorf("two clusters share the name %s", a.Name)
	}
	// An address is fixed when a load balancer is created: another address, another load
	// balancer; the same address given either way, the same one. Target groups keep their
	// names (the new load balancer's listeners take them over).
	addressed := func(ann, field string) *LoadBalancer {
		lb, err := Build(Input{Cluster: "lab", Service: service(func(s *corev1.Service) {
			if ann != "" {
				s.Annotations = map[string]string{AnnotationAddress: ann}
			}
			s.Spec.LoadBalancerIP = field
		})})
		if err != nil {
			t.Fatal(err)
		}
		return lb
	}
	e, f, g := addressed("198.51.100.7", ""), addressed("", "198.51.100.7"), addressed("198.51.100.8", "198.51.100.8")
	if e.Name == a.Name || e.Name == g.Name || e.Name != f.Name {
		t.Errorf("names by address: none %s, .7 %s and %s, .8 %s: want .7 twice and three different", a.Name, e.Name, f.Name, g.Name)
	}
	if e.TargetGroups[0].Name != a.TargetGroups[0].Name {
		t.Errorf("an address renamed the target group: %s vs %s", e.TargetGroups[0].Name, a.TargetGroups[0].Name)
	}
}

// FuzzBuild feeds arbitrary annotation values and source ranges: Build must never panic, and
// whatever it accepts must be a load balancer the cloud can take.
func FuzzBuild(f *testing.F) {
	f.Add("internal", "HTTP", "/healthz", "8081", "10", "5", "3", "300", "10.0.0.0/8", "")
	f.Add("internet-facing", "TCP", "", "traffic-port", "5s", "2s", "2", "0", "203.0.113.0/24,198.51.100.7/32", "198.51.100.7")
	f.Add("x", "sctp", "no-slash", "-1", "1h", "0", "11", "3601", "not-a-cidr", "10.0.0.256")
	f.Fuzz(func(t *testing.T, scheme, proto, path, port, interval, timeout, threshold, dereg, ranges, address string) {
		ann := map[string]string{
			AnnotationScheme: scheme, AnnotationHCProtocol: proto, AnnotationHCPort: port,
			AnnotationHCInterval: interval, AnnotationHCTimeout: timeout, AnnotationHCHealthy: threshold,
			AnnotationDeregistration: dereg, AnnotationLegacySourceRanges: ranges,
		}
		if path != "" {
			ann[AnnotationHCPath] = path
		}
		if address != "" {
			ann[AnnotationAddress] = address
		}
		lb, err := Build(Input{Cluster: "fuzz", Service: service(func(s *corev1.Service) { s.Annotations = ann })})
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || len(inv.Problems) == 0 {
				t.Fatalf("Build failed without saying why: %v", err)
			}
			return
		}
		checkNames(t, lb)
		hc := lb.TargetGroups[0].HealthCheck
		if hc.IntervalSeconds < 5 || hc.IntervalSeconds > 300 || hc.TimeoutSeconds < 2 || hc.TimeoutSeconds > hc.IntervalSeconds ||
			hc.Port < 0 || hc.Port > 65535 || (hc.Protocol == ProtocolHTTP) != (hc.Path != "") {
			t.Fatalf("accepted a health check the cloud refuses: %+v", hc)
		}
		if d := lb.TargetGroups[0].DeregistrationDelaySeconds; d < 0 || d > 3600 {
			t.Fatalf("accepted a deregistration delay of %d s", d)
		}
		for _, r := range lb.SourceRanges {
			if !r.Addr().Is4() || r != r.Masked() {
				t.Fatalf("accepted source range %s", r)
			}
		}
		if address != "" && (!lb.Address.Is4() || lb.Address.String() != address) {
			t.Fatalf("address %q accepted as %s", address, lb.Address)
		}
	})
}

// TestDefaultScheme: a Service without the scheme annotation gets the cluster's default
// (internet-facing when none is set: model.DefaultScheme says why), and the annotation wins
// over the cluster's default either way.
func TestDefaultScheme(t *testing.T) {
	annotated := func(scheme string) *corev1.Service {
		return service(func(s *corev1.Service) { s.Annotations = map[string]string{AnnotationScheme: scheme} })
	}
	for _, tc := range []struct {
		clusterDefault string
		svc            *corev1.Service
		want           string
	}{
		{"", service(), SchemeInternetFacing},
		{SchemeInternal, service(), SchemeInternal},
		{SchemeInternetFacing, service(), SchemeInternetFacing},
		{SchemeInternal, annotated(SchemeInternetFacing), SchemeInternetFacing},
		{SchemeInternetFacing, annotated(SchemeInternal), SchemeInternal},
	} {
		lb, err := Build(Input{Cluster: "lab", DefaultScheme: tc.clusterDefault, Service: tc.svc})
		if err != nil {
			t.Fatal(err)
		}
		if lb.Scheme != tc.want {
			t.Errorf("cluster default %q, annotations %v: scheme %s, want %s", tc.clusterDefault, tc.svc.Annotations, lb.Scheme, tc.want)
		}
	}
}

// FuzzTagsAnnotation: the tags annotation is either taken, every tag one the cloud takes and
// none of flatnet's, or refused with problems naming the annotation.
func FuzzTagsAnnotation(f *testing.F) {
	f.Add("team=a,env=prod")
	f.Add(" a = b , c= ,d=e=f")
	f.Add("no-equals,flatnet.io/x=1,aws:y=2,=v,a=1,a=2")
	f.Add("url=x?y,note=a&b")
	f.Fuzz(func(t *testing.T, v string) {
		lb, err := Build(Input{Cluster: "fuzz", Service: service(func(s *corev1.Service) {
			s.Annotations = map[string]string{AnnotationTags: v}
		})})
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || len(inv.Problems) == 0 || !strings.Contains(err.Error(), AnnotationTags) {
				t.Fatalf("refused without naming the annotation: %v", err)
			}
			return
		}
		if len(lb.UserTags) > maxServiceTags {
			t.Fatalf("took %d tags", len(lb.UserTags))
		}
		for k, val := range lb.UserTags {
			if problem := UserTagProblem(k, val); problem != "" {
				t.Fatalf("took tag %q=%q: %s", k, val, problem)
			}
			if lb.Tags[k] != "" {
				t.Fatalf("tag %q is also an ownership tag", k)
			}
		}
	})
}
