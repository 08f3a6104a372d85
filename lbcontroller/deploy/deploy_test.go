package deploy_test

import (
	"time"

	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

// calls counts the cloud calls a driver makes, by action.
type calls struct {
	mu sync.Mutex
	n  map[string]int
	// after, when set, runs after each call (outside the lock): a test's way into a pass.
	after func(action string)
}

func (c *calls) observe(action string, _ time.Duration, _ error) {
	c.mu.Lock()
	c.n[action]++
	after := c.after
	c.mu.Unlock()
	if after != nil {
		after(action)
	}
}

// onCall sets (nil: clears) what runs after each call.
func (c *calls) onCall(fn func(action string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.after = fn
}

func (c *calls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

func setup(t *testing.T) (*servertest.Env, *fakecloud.LoadBalancing, *calls) {
	t.Helper()
	env := servertest.Start(t, servertest.Options{})
	sn, _ := env.Launch(t, "10.0.0.0/16", "10.0.0.0/20", "t3.small", 1)
	c := &calls{n: map[string]int{}}
	d, err := fakecloud.NewLoadBalancing(context.Background(), fakecloud.Config{Client: env.Client(env.LoadBalancerToken(t).Token), Settings: providers.Settings{SubnetID: sn.SubnetID, Observe: c.observe}})
	if err != nil {
		t.Fatal(err)
	}
	c.take()
	return env, d, c
}

func build(t *testing.T, uid string, ips ...string) *model.LoadBalancer {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: k8stypes.UID("uid-" + uid)},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
	}
	lb, err := model.Build(model.Input{Cluster: "test", Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range ips {
		lb.TargetGroups[0].Targets = append(lb.TargetGroups[0].Targets, model.Target{IP: netip.MustParseAddr(ip), Port: 8080})
	}
	return lb
}

func live(t *testing.T, d *fakecloud.LoadBalancing, tgID string) []string {
	t.Helper()
	ths, err := d.DescribeTargets(context.Background(), tgID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, th := range ths {
		if th.State != providers.HealthDraining {
			out = append(out, netip.AddrPortFrom(th.Target.IP, uint16(th.Target.Port)).String())
		}
	}
	slices.Sort(out)
	return out
}

func TestDeployConvergesAndRepeatsWithoutChanges(t *testing.T) {
	_, d, c := setup(t)
	ctx := context.Background()
	lb := build(t, "1", "10.0.1.10", "10.0.1.11")
	res, err := deploy.Deploy(ctx, d, lb, "gen1")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || !res.VIP.IsValid() || res.Registered != 2 {
		t.Fatalf("first deploy: %+v", res)
	}
	tgID := res.TargetGroups[lb.TargetGroups[0].Name]
	if diff := cmp.Diff([]string{"10.0.1.10:8080", "10.0.1.11:8080"}, live(t, d, tgID)); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	c.take()

	// Nothing changed: only reads.
	again, err := deploy.Deploy(ctx, d, lb, "gen1")
	if err != nil {
		t.Fatal(err)
	}
	if again.LoadBalancerID != res.LoadBalancerID || again.Created {
		t.Errorf("second deploy made another load balancer: %+v", again)
	}
	for action := range c.take() {
		switch action {
		case api.ActionDescribeLoadBalancers, api.ActionDescribeListeners, api.ActionDescribeTargetGroups, api.ActionDescribeTargetHealth:
		default:
			t.Errorf("an unchanged model called %s", action)
		}
	}

	// Scale: one target goes (draining), two arrive, in one call each way.
	lb = build(t, "1", "10.0.1.11", "10.0.1.12", "10.0.1.13")
	res, err = deploy.Deploy(ctx, d, lb, "gen2")
	if err != nil {
		t.Fatal(err)
	}
	n := c.take()
	if res.Registered != 2 || res.Deregistered != 1 || n[api.ActionRegisterTargets] != 1 || n[api.ActionDeregisterTargets] != 1 {
		t.Errorf("scaling: %+v, calls %v", res, n)
	}
	if diff := cmp.Diff([]string{"10.0.1.11:8080", "10.0.1.12:8080", "10.0.1.13:8080"}, live(t, d, tgID)); diff != "" {
		t.Errorf("targets after scaling (-want +got):\n%s", diff)
	}

	found, err := deploy.Delete(ctx, d, lb.Owner.Tags())
	if err != nil || !found {
		t.Fatalf("delete: found %v, %v", found, err)
	}
	lbs, _ := d.ListLoadBalancers(ctx, lb.Owner.Tags())
	tgs, _ := d.ListTargetGroups(ctx, lb.Owner.Tags())
	if len(lbs)+len(tgs) != 0 {
		t.Errorf("left after delete: %v %v", lbs, tgs)
	}
}

// TestDeployAfterLostAnswers: every create's answer is lost once (the call was carried out);
// repeating the pass converges on exactly one of each resource.
func TestDeployAfterLostAnswers(t *testing.T) {
	env, d, _ := setup(t)
	ctx := context.Background()
	lb := build(t, "2", "10.0.1.10")
	for _, action := range []string{api.ActionCreateLoadBalancer, api.ActionCreateTargetGroup, api.ActionCreateListener, api.ActionRegisterTargets} {
		if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: action, ErrorRate: 1, ErrorCode: api.CodeInternalError, AfterCommit: true}}); err != nil {
			t.Fatal(err)
		}
		_, err := deploy.Deploy(ctx, d, lb, "gen1")
		if !providers.Retryable(err) {
			t.Fatalf("with %s's answer lost: %v, want a retryable error", action, err)
		}
		if _, err := env.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := deploy.Deploy(ctx, d, lb, "gen1")
	if err != nil {
		t.Fatal(err)
	}
	lbs, _ := d.ListLoadBalancers(ctx, lb.Owner.Tags())
	tgs, _ := d.ListTargetGroups(ctx, lb.Owner.Tags())
	if len(lbs) != 1 || len(tgs) != 1 || len(lbs[0].Listeners) != 1 {
		t.Fatalf("after repeated passes: %d load balancers, %d target groups, listeners %v", len(lbs), len(tgs), lbs)
	}
	if got := live(t, d, res.TargetGroups[lb.TargetGroups[0].Name]); !slices.Equal(got, []string{"10.0.1.10:8080"}) {
		t.Errorf("targets %v", got)
	}
}

// TestDeployReplacesOtherIncarnations: resources of an earlier Service of the same name (another
// UID) are removed when the new one deploys.
func TestDeployReplacesOtherIncarnations(t *testing.T) {
	_, d, _ := setup(t)
	ctx := context.Background()
	old := build(t, "old", "10.0.1.10")
	if _, err := deploy.Deploy(ctx, d, old, "g"); err != nil {
		t.Fatal(err)
	}
	cur := build(t, "new", "10.0.1.10")
	if _, err := deploy.Deploy(ctx, d, cur, "g"); err != nil {
		t.Fatal(err)
	}
	lbs, _ := d.ListLoadBalancers(ctx, map[string]string{model.TagService: "ns/web"})
	tgs, _ := d.ListTargetGroups(ctx, map[string]string{model.TagService: "ns/web"})
	if len(lbs) != 1 || len(tgs) != 1 || lbs[0].Tags[model.TagServiceUID] != "uid-new" || tgs[0].Tags[model.TagServiceUID] != "uid-new" {
		t.Errorf("after the new incarnation deployed: %+v %+v", lbs, tgs)
	}
}
