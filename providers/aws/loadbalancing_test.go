package aws

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flatnet/flatnet/providers"
)

// TestLoadBalancingLifecycle drives lbcontroller's driver against fakecloud's ELBv2 endpoint:
// a network load balancer with a listener to an ip target group, found by its tags with its
// listener, source ranges and deregistration delay; targets registered and described; repeats
// answering what exists; deletes, twice.
func TestLoadBalancingLifecycle(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large", 1)
	d := w.lb(t, time.Second)
	tags := map[string]string{"flatnet.io/cluster": "c1", "flatnet.io/service": "default/web"}
	spec := providers.LoadBalancerSpec{Name: "web", Tags: tags}
	lb, err := d.CreateLoadBalancer(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !lb.VIP.IsValid() || lb.Internal || lb.ID == "" {
		t.Fatalf("created %+v; want an internet-facing load balancer with a VIP", lb)
	}
	if again, err := d.CreateLoadBalancer(ctx, spec); err != nil || again.ID != lb.ID {
		t.Fatalf("a repeated create: %+v, %v; want %s", again, err, lb.ID)
	}
	hc := providers.HealthCheck{Protocol: "TCP", Interval: 5 * time.Second, Timeout: 5 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2}
	tgSpec := providers.TargetGroupSpec{Name: "web-80", Protocol: "TCP", Port: 80, HealthCheck: hc, DeregistrationDelay: 7 * time.Second, Tags: tags}
	tg, err := d.CreateTargetGroup(ctx, tgSpec)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := d.CreateTargetGroup(ctx, tgSpec); err != nil || again.ID != tg.ID {
		t.Fatalf("a repeated create: %+v, %v; want %s", again, err, tg.ID)
	}
	// ELBv2 verifies no target's certificate: a group asking for it is refused, not created
	// unverified.
	verified := providers.TargetGroupSpec{Name: "web-443", Protocol: "HTTPS", Port: 443, HealthCheck: hc,
		TLS: &providers.BackendTLS{ServerName: "web.example", SystemRoots: true}}
	var pe *providers.Error
	if _, err := d.CreateTargetGroup(ctx, verified); !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
		t.Fatalf("a group verifying its targets: %v; want ErrInvalid %s", err, codeUnsupported)
	}
	// Nor does it present a client certificate to its targets.
	mtls := providers.TargetGroupSpec{Name: "web-443", Protocol: "HTTPS", Port: 443, HealthCheck: hc, ClientCertificateID: "arn:aws:acm:us-east-1:000000000000:certificate/lb"}
	if _, err := d.CreateTargetGroup(ctx, mtls); !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
		t.Fatalf("a group presenting a client certificate: %v; want ErrInvalid %s", err, codeUnsupported)
	}
	if got, err := d.ListTargetGroups(ctx, nil); err != nil || slices.ContainsFunc(got, func(g providers.TargetGroup) bool { return g.Name == "web-443" }) {
		t.Fatalf("groups after the refusals: %+v, %v; want no web-443", got, err)
	}
	l, err := d.CreateListener(ctx, lb.ID, providers.ListenerSpec{Protocol: "TCP", Port: 80, TargetGroupID: tg.ID})
	if err != nil {
		t.Fatal(err)
	}
	if l.TargetGroupID != tg.ID || l.Port != 80 {
		t.Fatalf("listener %+v", l)
	}
	ranges := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	if err := d.SetSourceRanges(ctx, lb.ID, ranges); err != nil {
		t.Fatal(err)
	}
	lbs, err := d.ListLoadBalancers(ctx, map[string]string{"flatnet.io/cluster": "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(lbs) != 1 || lbs[0].ID != lb.ID || len(lbs[0].Listeners) != 1 || lbs[0].Listeners[0].ID != l.ID ||
		len(lbs[0].SourceRanges) != 1 || lbs[0].SourceRanges[0] != ranges[0] || lbs[0].Tags["flatnet.io/service"] != "default/web" {
		t.Fatalf("listed %+v", lbs)
	}
	if other, err := d.ListLoadBalancers(ctx, map[string]string{"flatnet.io/cluster": "c2"}); err != nil || len(other) != 0 {
		t.Fatalf("another cluster's load balancers: %+v, %v", other, err)
	}
	hc.Interval = 10 * time.Second
	if err := d.UpdateTargetGroup(ctx, tg.ID, hc, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	tgs, err := d.ListTargetGroups(ctx, tags)
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs) != 1 || tgs[0].DeregistrationDelay != 3*time.Second || tgs[0].HealthCheck.Interval != 10*time.Second || tgs[0].HealthCheck.HealthyThreshold != 2 {
		t.Fatalf("target groups %+v; want the updated health check and delay", tgs)
	}
	targets := []providers.Target{{IP: netip.MustParseAddr("10.0.0.50"), Port: 8080}, {IP: netip.MustParseAddr("10.0.0.51"), Port: 8080}}
	if err := d.RegisterTargets(ctx, tg.ID, targets); err != nil {
		t.Fatal(err)
	}
	hs, err := d.DescribeTargets(ctx, tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].TargetGroupID != tg.ID || hs[0].State == "" {
		t.Fatalf("targets %+v", hs)
	}
	if err := d.DeregisterTargets(ctx, tg.ID, targets[:1]); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteTargetGroup(ctx, tg.ID); !errors.Is(err, providers.ErrConflict) {
		t.Fatalf("deleting a group a listener forwards to: %v; want ErrConflict (ResourceInUse)", err)
	}
	if err := d.DeleteListener(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.DeleteLoadBalancer(ctx, lb.ID); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteTargetGroup(ctx, tg.ID); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteListener(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.DescribeTargets(ctx, tg.ID); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("describing a deleted group: %v; want ErrNotFound", err)
	}
}

// TestWatchHealthPolls: the first poll delivers everything, later ones what changed: a new
// target, then a deregistered one leaving (draining, then gone with its group).
func TestWatchHealthPolls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorld(t, "m5.large", 1)
	d := w.lb(t, 50*time.Millisecond)
	tg, err := d.CreateTargetGroup(ctx, providers.TargetGroupSpec{Name: "g", Protocol: "TCP", Port: 80, Tags: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	a := providers.Target{IP: netip.MustParseAddr("10.0.0.60"), Port: 80}
	if err := d.RegisterTargets(ctx, tg.ID, []providers.Target{a}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []providers.HealthEvent
	done := make(chan error, 1)
	go func() {
		done <- d.WatchHealth(ctx, func(ev providers.HealthEvent) {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		})
	}()
	waitFor := func(what string, ok func(providers.HealthEvent) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			for _, ev := range events {
				if ok(ev) {
					mu.Unlock()
					return
				}
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no event %s in %+v", what, events)
	}
	waitFor("full with the target", func(ev providers.HealthEvent) bool {
		return ev.Full && len(ev.Targets) == 1 && ev.Targets[0].Target == a && ev.Targets[0].TargetGroupID == tg.ID
	})
	b := providers.Target{IP: netip.MustParseAddr("10.0.0.61"), Port: 80}
	if err := d.RegisterTargets(ctx, tg.ID, []providers.Target{b}); err != nil {
		t.Fatal(err)
	}
	waitFor("the new target", func(ev providers.HealthEvent) bool {
		return !ev.Full && len(ev.Targets) == 1 && ev.Targets[0].Target == b && !ev.Targets[0].Gone
	})
	if err := d.DeleteTargetGroup(ctx, tg.ID); err != nil {
		t.Fatal(err)
	}
	waitFor("the targets gone", func(ev providers.HealthEvent) bool {
		return !ev.Full && len(ev.Targets) == 2 && ev.Targets[0].Gone && ev.Targets[1].Gone
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the watch ended with %v; want context.Canceled", err)
	}
}
