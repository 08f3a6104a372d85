package deploy

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// planModel builds the model of Service ns/web (UID uid-uid), mutated, with the given
// targets (port 8080) in each group.
func planModel(t *testing.T, uid string, mutate func(*corev1.Service), ips ...string) *model.LoadBalancer {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: k8stypes.UID("uid-" + uid)},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{
			{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80},
		}},
	}
	if mutate != nil {
		mutate(svc)
	}
	lb, err := model.Build(model.Input{Cluster: "test", Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	for i := range lb.TargetGroups {
		for _, ip := range ips {
			lb.TargetGroups[i].Targets = append(lb.TargetGroups[i].Targets, model.Target{IP: netip.MustParseAddr(ip), Port: 8080})
		}
	}
	return lb
}

// observedFor is the cloud as a complete deploy of lb left it, with ids lb-1, tg-1..., li-1...
func observedFor(lb *model.LoadBalancer, health map[string]string) Observed {
	obs := Observed{Targets: map[string][]providers.TargetHealth{}}
	cur := providers.LoadBalancer{ID: "lb-1", Name: lb.Name, Internal: lb.Scheme == model.SchemeInternal,
		VIP: lb.Address, SourceRanges: lb.SourceRanges, Tags: lb.Tags, State: providers.LBActive}
	if !cur.VIP.IsValid() {
		cur.VIP = netip.MustParseAddr("198.51.100.1") // the cloud's pick
	}
	ids := map[string]string{}
	for i, tg := range lb.TargetGroups {
		id := fmt.Sprintf("tg-%d", i+1)
		ids[tg.Name] = id
		obs.TargetGroups = append(obs.TargetGroups, providers.TargetGroup{ID: id, Name: tg.Name, Protocol: tg.Protocol, Port: tg.Port,
			HealthCheck: healthCheck(tg.HealthCheck), DeregistrationDelay: time.Duration(tg.DeregistrationDelaySeconds) * time.Second, Tags: tg.Tags})
		for _, t := range tg.Targets {
			state := providers.HealthHealthy
			if s, ok := health[t.IP.String()]; ok {
				state = s
			}
			obs.Targets[id] = append(obs.Targets[id], providers.TargetHealth{TargetGroupID: id, Target: providers.Target{IP: t.IP, Port: t.Port}, State: state})
		}
	}
	for i, l := range lb.Listeners {
		cur.Listeners = append(cur.Listeners, providers.Listener{ID: fmt.Sprintf("li-%d", i+1), Protocol: l.Protocol, Port: l.Port, TargetGroupID: ids[l.TargetGroup]})
	}
	obs.LoadBalancers = []providers.LoadBalancer{cur}
	return obs
}

func TestPlanDeploy(t *testing.T) {
	internal := func(s *corev1.Service) {
		s.Annotations = map[string]string{model.AnnotationScheme: model.SchemeInternal}
	}
	at := func(addr string) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Annotations = map[string]string{model.AnnotationAddress: addr} }
	}
	twoPorts := func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53})
	}
	for _, tc := range []struct {
		name string
		want *model.LoadBalancer
		obs  Observed
	}{
		{"create", planModel(t, "1", twoPorts, "10.0.1.10", "10.0.1.11"), Observed{}},
		{"unchanged", planModel(t, "1", nil, "10.0.1.10"), observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)},
		{"scale", planModel(t, "1", nil, "10.0.1.11", "10.0.1.12"), observedFor(planModel(t, "1", nil, "10.0.1.10", "10.0.1.11"), nil)},
		{"draining-wanted-again", planModel(t, "1", nil, "10.0.1.10", "10.0.1.11"),
			observedFor(planModel(t, "1", nil, "10.0.1.10", "10.0.1.11", "10.0.1.12"), map[string]string{"10.0.1.11": providers.HealthDraining, "10.0.1.12": providers.HealthDraining})},
		{"port-added", planModel(t, "1", twoPorts, "10.0.1.10"), observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)},
		{"port-removed", planModel(t, "1", nil, "10.0.1.10"), observedFor(planModel(t, "1", twoPorts, "10.0.1.10"), nil)},
		{"scheme-changed", planModel(t, "1", internal, "10.0.1.10"), observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)},
		{"other-incarnation", planModel(t, "2", nil, "10.0.1.10"), observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)},
		// A new static address: the new load balancer first (one the cloud refuses leaves the
		// old serving), then the old one goes, which frees the groups for the new listeners.
		{"address-new", planModel(t, "1", at("198.51.100.7"), "10.0.1.10"), observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)},
		{"address-changed", planModel(t, "1", at("198.51.100.8"), "10.0.1.10"), observedFor(planModel(t, "1", at("198.51.100.7"), "10.0.1.10"), nil)},
		// Pinning the address the cloud gave keeps the load balancer; so does dropping one.
		{"address-pinned-as-is", planModel(t, "1", at("198.51.100.1"), "10.0.1.10"), observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)},
		{"address-dropped", planModel(t, "1", nil, "10.0.1.10"), observedFor(planModel(t, "1", at("198.51.100.7"), "10.0.1.10"), nil)},
		// The earlier incarnation's load balancer holding the address goes before the create.
		{"address-other-incarnation", planModel(t, "2", at("198.51.100.7"), "10.0.1.10"), observedFor(planModel(t, "1", at("198.51.100.7"), "10.0.1.10"), nil)},
		// A move cut short (created at .7, the old one not yet deleted), then the address dropped:
		// the one with the listeners is kept, wherever the cloud lists it.
		{"address-dropped-after-cut-move", planModel(t, "1", nil, "10.0.1.10"), func() Observed {
			obs := observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)
			moved := planModel(t, "1", at("198.51.100.7"))
			obs.LoadBalancers = append([]providers.LoadBalancer{{ID: "lb-0", Name: moved.Name, VIP: moved.Address, Tags: moved.Tags,
				State: providers.LBActive}}, obs.LoadBalancers...)
			return obs
		}()},
		// An address on another scheme is another load balancer, even at the same VIP.
		{"address-scheme-changed", planModel(t, "1", func(s *corev1.Service) {
			s.Annotations = map[string]string{model.AnnotationAddress: "198.51.100.1", model.AnnotationScheme: model.SchemeInternal}
		}, "10.0.1.10"), observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)},
		// The owner's tags changed: the load balancer and its group get one call each way;
		// a tag someone else added stays.
		{"user-tags-changed", func() *model.LoadBalancer {
			lb := planModel(t, "1", nil, "10.0.1.10")
			lb.UserTags = map[string]string{"team": "b", "env": "prod"}
			return lb
		}(), func() Observed {
			before := planModel(t, "1", nil, "10.0.1.10")
			before.Tags = withUserTags(before.Tags, map[string]string{"team": "a", "old": "x"})
			before.Tags["cost-center"] = "42"
			for i := range before.TargetGroups {
				before.TargetGroups[i].Tags = withUserTags(before.TargetGroups[i].Tags, map[string]string{"team": "a", "old": "x"})
			}
			return observedFor(before, nil)
		}()},
		{"source-ranges-and-health-check", planModel(t, "1", func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
			s.Annotations = map[string]string{model.AnnotationHCInterval: "5", model.AnnotationHCTimeout: "3"}
		}, "10.0.1.10"), observedFor(planModel(t, "1", nil, "10.0.1.10"), nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := PlanDeploy(tc.want, tc.obs, "gen1")
			var b strings.Builder
			for _, op := range pl.Ops {
				b.WriteString(op.String())
				b.WriteByte('\n')
			}
			golden := filepath.Join("testdata", "plan", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("plan (-%s +got):\n%s", golden, diff)
			}
		})
	}
}
