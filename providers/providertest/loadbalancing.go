package providertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/providers"
)

// RunLoadBalancing runs the load balancing contract: every subtest gets a fresh cloud (a VPC, a
// subnet, one instance) and driver from newEnv.
func RunLoadBalancing(t *testing.T, newEnv func(t *testing.T) LoadBalancingEnv) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *lbScene)
	}{
		{"CreateLoadBalancerIdempotent", lbCreate},
		{"SourceRanges", lbSourceRanges},
		{"Listeners", lbListeners},
		{"TargetGroups", lbTargetGroups},
		{"RegisterDeregisterAndHealth", lbTargets},
		{"ListByTags", lbListByTags},
		{"Tagging", lbTagging},
		{"DeleteGoneSucceeds", lbDeleteGone},
		{"NotFound", lbNotFound},
		{"WatchHealthStartsFull", lbWatch},
		{"ThrottleIsRetryable", lbThrottled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			sn, _ := env.Cloud.Launch(t, vpcCIDR, "10.0.0.0/20", "m5.large", 1)
			tc.run(t, &lbScene{env: env, d: env.New(t, sn)})
		})
	}
}

type lbScene struct {
	env LoadBalancingEnv
	d   providers.LoadBalancing
}

// The tags of the suite's resources: ownership, as lbcontroller sets it.
func owner(svc string) map[string]string {
	return map[string]string{"flatnet.io/cluster": "contract", "flatnet.io/service": svc}
}

func (s *lbScene) lb(t *testing.T, name string, internal bool) providers.LoadBalancer {
	t.Helper()
	lb, err := s.d.CreateLoadBalancer(bg(), providers.LoadBalancerSpec{Name: name, Internal: internal, Tags: owner(name), ClientToken: providers.NewToken()})
	if err != nil {
		t.Fatalf("create load balancer %s: %v", name, err)
	}
	return lb
}

var healthCheck = providers.HealthCheck{Protocol: "TCP", Interval: 10 * time.Second, Timeout: 10 * time.Second, HealthyThreshold: 3, UnhealthyThreshold: 3}

func tgSpec(name string, port int) providers.TargetGroupSpec {
	return providers.TargetGroupSpec{Name: name, Protocol: "TCP", Port: port, HealthCheck: healthCheck,
		DeregistrationDelay: 30 * time.Second, Tags: owner(name), ClientToken: providers.NewToken()}
}

func (s *lbScene) tg(t *testing.T, name string, port int) providers.TargetGroup {
	t.Helper()
	tg, err := s.d.CreateTargetGroup(bg(), tgSpec(name, port))
	if err != nil {
		t.Fatalf("create target group %s: %v", name, err)
	}
	return tg
}

// listed returns the one load balancer tagged as name's.
func (s *lbScene) listed(t *testing.T, name string) providers.LoadBalancer {
	t.Helper()
	lbs, err := s.d.ListLoadBalancers(bg(), owner(name))
	if err != nil || len(lbs) != 1 {
		t.Fatalf("list load balancers of %s: %d, %v; want one", name, len(lbs), err)
	}
	return lbs[0]
}

func lbCreate(t *testing.T, s *lbScene) {
	spec := providers.LoadBalancerSpec{Name: "web", Tags: owner("web"), ClientToken: providers.NewToken()}
	first, err := s.d.CreateLoadBalancer(bg(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" || first.Name != "web" || first.Internal {
		t.Errorf("created %+v; want an internet-facing load balancer named web", first)
	}
	if !slices.Contains([]string{providers.LBProvisioning, providers.LBActive}, first.State) {
		t.Errorf("a new load balancer is %q", first.State)
	}
	again, err := s.d.CreateLoadBalancer(bg(), spec)
	if err != nil || again.ID != first.ID {
		t.Fatalf("the same create again: %s, %v; want %s", again.ID, err, first.ID)
	}
	spec.ClientToken = providers.NewToken()
	if other, err := s.d.CreateLoadBalancer(bg(), spec); err != nil || other.ID != first.ID {
		t.Errorf("the same name and settings with another token: %s, %v; want %s", other.ID, err, first.ID)
	}
	got := s.listed(t, "web")
	if got.ID != first.ID || got.Name != "web" || got.Tags["flatnet.io/service"] != "web" {
		t.Errorf("listed %+v", got)
	}
	internal := s.lb(t, "private", true)
	if !internal.Internal || internal.ID == first.ID {
		t.Errorf("internal load balancer %+v", internal)
	}
	eventually(t, 30*time.Second, "the load balancer's address", func() error {
		if lb := s.listed(t, "web"); !lb.VIP.IsValid() {
			return fmt.Errorf("no VIP (state %s)", lb.State)
		}
		return nil
	})
}

func lbSourceRanges(t *testing.T, s *lbScene) {
	lb := s.lb(t, "web", false)
	ranges := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.1.0.0/16")}
	if err := s.d.SetSourceRanges(bg(), lb.ID, ranges); err != nil {
		t.Fatal(err)
	}
	if got := s.listed(t, "web").SourceRanges; !samePrefixes(got, ranges) {
		t.Errorf("source ranges %v; want %v", got, ranges)
	}
	if err := s.d.SetSourceRanges(bg(), lb.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.listed(t, "web").SourceRanges; len(got) != 0 {
		t.Errorf("source ranges %v after clearing them", got)
	}
}

func lbListeners(t *testing.T, s *lbScene) {
	lb := s.lb(t, "web", false)
	tg := s.tg(t, "web-80", 8080)
	spec := providers.ListenerSpec{Protocol: "TCP", Port: 80, TargetGroupID: tg.ID, ClientToken: providers.NewToken()}
	l, err := s.d.CreateListener(bg(), lb.ID, spec)
	if err != nil {
		t.Fatal(err)
	}
	if l.ID == "" || l.Protocol != "TCP" || l.Port != 80 || l.TargetGroupID != tg.ID {
		t.Errorf("created listener %+v", l)
	}
	if again, err := s.d.CreateListener(bg(), lb.ID, spec); err != nil || again.ID != l.ID {
		t.Errorf("the same create again: %+v, %v; want %s", again, err, l.ID)
	}
	if got := s.listed(t, "web").Listeners; len(got) != 1 || got[0] != l {
		t.Errorf("listed listeners %+v; want %+v", got, l)
	}
	if err := s.d.DeleteListener(bg(), l.ID); err != nil {
		t.Fatal(err)
	}
	if got := s.listed(t, "web").Listeners; len(got) != 0 {
		t.Errorf("listeners after the delete: %+v", got)
	}
}

func lbTargetGroups(t *testing.T, s *lbScene) {
	spec := tgSpec("web-80", 8080)
	tg, err := s.d.CreateTargetGroup(bg(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if tg.ID == "" || tg.Name != spec.Name || tg.Protocol != "TCP" || tg.Port != 8080 || tg.HealthCheck != healthCheck || tg.DeregistrationDelay != spec.DeregistrationDelay {
		t.Errorf("created %+v; want %+v", tg, spec)
	}
	spec.ClientToken = providers.NewToken()
	if again, err := s.d.CreateTargetGroup(bg(), spec); err != nil || again.ID != tg.ID {
		t.Errorf("the same name and settings again: %s, %v; want %s", again.ID, err, tg.ID)
	}
	hc := healthCheck
	hc.Protocol, hc.Path, hc.Port, hc.Interval = "HTTP", "/healthz", 9000, 30*time.Second
	if err := s.d.UpdateTargetGroup(bg(), tg.ID, hc, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	tgs, err := s.d.ListTargetGroups(bg(), owner("web-80"))
	if err != nil || len(tgs) != 1 {
		t.Fatalf("list: %+v, %v", tgs, err)
	}
	if got := tgs[0]; got.ID != tg.ID || got.HealthCheck != hc || got.DeregistrationDelay != 5*time.Second || got.Tags["flatnet.io/service"] != "web-80" {
		t.Errorf("after the update: %+v; want health check %+v, delay 5s", got, hc)
	}
	if err := s.d.DeleteTargetGroup(bg(), tg.ID); err != nil {
		t.Fatal(err)
	}
	if tgs, err := s.d.ListTargetGroups(bg(), owner("web-80")); err != nil || len(tgs) != 0 {
		t.Errorf("after the delete: %+v, %v", tgs, err)
	}
}

func lbTargets(t *testing.T, s *lbScene) {
	tg := s.tg(t, "web-80", 8080)
	a := providers.Target{IP: netip.MustParseAddr("10.0.1.10"), Port: 8080}
	b := providers.Target{IP: netip.MustParseAddr("10.0.1.11"), Port: 8081}
	if err := s.d.RegisterTargets(bg(), tg.ID, []providers.Target{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := s.d.RegisterTargets(bg(), tg.ID, []providers.Target{a}); err != nil {
		t.Errorf("registering a registered target again: %v", err)
	}
	health := func() map[providers.Target]providers.TargetHealth {
		t.Helper()
		ths, err := s.d.DescribeTargets(bg(), tg.ID)
		if err != nil {
			t.Fatal(err)
		}
		out := map[providers.Target]providers.TargetHealth{}
		for _, th := range ths {
			if th.TargetGroupID != tg.ID {
				t.Errorf("target %v of group %q; want %s", th.Target, th.TargetGroupID, tg.ID)
			}
			out[th.Target] = th
		}
		return out
	}
	known := []string{providers.HealthInitial, providers.HealthHealthy, providers.HealthUnhealthy, providers.HealthUnused}
	h := health()
	if len(h) != 2 || !slices.Contains(known, h[a].State) || !slices.Contains(known, h[b].State) {
		t.Fatalf("targets %+v; want a and b, registered", h)
	}
	if err := s.d.DeregisterTargets(bg(), tg.ID, []providers.Target{b}); err != nil {
		t.Fatal(err)
	}
	h = health()
	if th, ok := h[b]; ok && th.State != providers.HealthDraining {
		t.Errorf("a deregistered target is %q; want draining or gone", th.State)
	}
	if !slices.Contains(known, h[a].State) {
		t.Errorf("the target left registered is %+v", h[a])
	}
	if err := s.d.RegisterTargets(bg(), tg.ID, []providers.Target{b}); err != nil {
		t.Fatal(err)
	}
	if th := health()[b]; !slices.Contains(known, th.State) {
		t.Errorf("a draining target registered again is %q; want live", th.State)
	}
}

func lbListByTags(t *testing.T, s *lbScene) {
	for _, name := range []string{"a", "b"} {
		s.lb(t, name, false)
		s.tg(t, name, 80)
	}
	cluster := map[string]string{"flatnet.io/cluster": "contract"}
	for _, tc := range []struct {
		tags map[string]string
		want int
	}{
		{cluster, 2},
		{owner("a"), 1},
		{map[string]string{"flatnet.io/cluster": "other"}, 0},
		{map[string]string{"flatnet.io/cluster": "contract", "flatnet.io/service": "c"}, 0},
	} {
		lbs, err := s.d.ListLoadBalancers(bg(), tc.tags)
		if err != nil || len(lbs) != tc.want {
			t.Errorf("load balancers tagged %v: %d, %v; want %d", tc.tags, len(lbs), err, tc.want)
		}
		tgs, err := s.d.ListTargetGroups(bg(), tc.tags)
		if err != nil || len(tgs) != tc.want {
			t.Errorf("target groups tagged %v: %d, %v; want %d", tc.tags, len(tgs), err, tc.want)
		}
	}
}

// lbTagging: TagResources adds a key and overwrites another on a load balancer and a target
// group in one call, and lists by the new key find exactly them; UntagResources removes a key
// (one a resource lacks is no error); a deleted resource is ErrNotFound for both; a reserved or
// too long key, a too long value, a character outside the cloud's set and one tag over MaxTags
// are ErrInvalid and change nothing.
func lbTagging(t *testing.T, s *lbScene) {
	withTeam := func(name, team string, more map[string]string) map[string]string {
		m := owner(name)
		m["team"] = team
		maps.Copy(m, more)
		return m
	}
	lbSpec := providers.LoadBalancerSpec{Name: "web", Tags: withTeam("web", "a", nil), ClientToken: providers.NewToken()}
	lb, err := s.d.CreateLoadBalancer(bg(), lbSpec)
	if err != nil {
		t.Fatal(err)
	}
	tgs := tgSpec("web-80", 8080)
	tgs.Tags = withTeam("web-80", "a", nil)
	tg, err := s.d.CreateTargetGroup(bg(), tgs)
	if err != nil {
		t.Fatal(err)
	}
	s.lb(t, "other", false) // untouched: the lists below must leave them out
	s.tg(t, "other", 80)
	ids := []string{lb.ID, tg.ID}
	// tagsNow checks that the lists by tags find exactly lb and tg, holding the tags want gives them.
	tagsNow := func(what string, tags map[string]string, want func(name string) map[string]string) {
		t.Helper()
		lbs, err := s.d.ListLoadBalancers(bg(), tags)
		if err != nil || len(lbs) != 1 || lbs[0].ID != lb.ID {
			t.Fatalf("%s: load balancers tagged %v: %+v, %v; want %s alone", what, tags, lbs, err, lb.ID)
		}
		if d := cmp.Diff(want("web"), lbs[0].Tags); d != "" {
			t.Errorf("%s: the load balancer's tags (-want +got):\n%s", what, d)
		}
		groups, err := s.d.ListTargetGroups(bg(), tags)
		if err != nil || len(groups) != 1 || groups[0].ID != tg.ID {
			t.Fatalf("%s: target groups tagged %v: %+v, %v; want %s alone", what, tags, groups, err, tg.ID)
		}
		if d := cmp.Diff(want("web-80"), groups[0].Tags); d != "" {
			t.Errorf("%s: the target group's tags (-want +got):\n%s", what, d)
		}
	}

	if err := s.d.TagResources(bg(), ids, map[string]string{"team": "b", "env": "prod"}); err != nil {
		t.Fatal(err)
	}
	prod := map[string]string{"env": "prod"}
	tagsNow("tagged", prod, func(name string) map[string]string { return withTeam(name, "b", prod) })
	if err := s.d.UntagResources(bg(), ids, []string{"team", "missing"}); err != nil {
		t.Fatal(err)
	}
	untagged := func(name string) map[string]string { m := owner(name); m["env"] = "prod"; return m }
	tagsNow("untagged", prod, untagged)

	tooMany := map[string]string{} // new keys: with those the resources hold, one over MaxTags
	for i := range providers.MaxTags + 1 - len(untagged("web")) {
		tooMany["k"+strconv.Itoa(i)] = "v"
	}
	for _, tc := range []struct {
		name string
		tags map[string]string
	}{
		{"a reserved key", map[string]string{"aws:team": "b"}},
		{"a key too long", map[string]string{strings.Repeat("k", providers.MaxTagKeyLength+1): "v"}},
		{"a value too long", map[string]string{"team": strings.Repeat("v", providers.MaxTagValueLength+1)}},
		{"a character the cloud refuses", map[string]string{"team": "a&b"}},
		{"one tag over MaxTags", tooMany},
	} {
		wantKind(t, "tag with "+tc.name, s.d.TagResources(bg(), ids, tc.tags), providers.ErrInvalid)
	}
	tagsNow("after the refusals", prod, untagged)

	gone := s.lb(t, "gone", false)
	goneTG := s.tg(t, "gone", 80)
	if err := s.d.DeleteLoadBalancer(bg(), gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.d.DeleteTargetGroup(bg(), goneTG.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{gone.ID, goneTG.ID} {
		wantKind(t, "tag "+id+", deleted", s.d.TagResources(bg(), []string{id}, prod), providers.ErrNotFound)
		wantKind(t, "untag "+id+", deleted", s.d.UntagResources(bg(), []string{id}, []string{"env"}), providers.ErrNotFound)
	}
	if err := s.d.TagResources(bg(), nil, prod); err != nil {
		t.Errorf("tag nothing: %v", err)
	}
	if err := s.d.UntagResources(bg(), ids, nil); err != nil {
		t.Errorf("untag no keys: %v", err)
	}
}

func lbDeleteGone(t *testing.T, s *lbScene) {
	lb := s.lb(t, "web", false)
	tg := s.tg(t, "web-80", 8080)
	l, err := s.d.CreateListener(bg(), lb.ID, providers.ListenerSpec{Protocol: "TCP", Port: 80, TargetGroupID: tg.ID, ClientToken: providers.NewToken()})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time everything is gone already
		if err := s.d.DeleteListener(bg(), l.ID); err != nil {
			t.Errorf("delete listener: %v", err)
		}
		if err := s.d.DeleteLoadBalancer(bg(), lb.ID); err != nil {
			t.Errorf("delete load balancer: %v", err)
		}
		if err := s.d.DeleteTargetGroup(bg(), tg.ID); err != nil {
			t.Errorf("delete target group: %v", err)
		}
	}
	if lbs, err := s.d.ListLoadBalancers(bg(), owner("web")); err != nil || len(lbs) != 0 {
		t.Errorf("after the deletes: %+v, %v", lbs, err)
	}
}

// lbNotFound: using what was deleted is ErrNotFound (IDs come from the driver, so the suite does
// not make up one in a format some cloud would refuse as invalid).
func lbNotFound(t *testing.T, s *lbScene) {
	lb := s.lb(t, "web", false)
	tg := s.tg(t, "web-80", 8080)
	if err := s.d.DeleteLoadBalancer(bg(), lb.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.d.DeleteTargetGroup(bg(), tg.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.d.DescribeTargets(bg(), tg.ID)
	wantKind(t, "describe targets of a deleted group", err, providers.ErrNotFound)
	err = s.d.RegisterTargets(bg(), tg.ID, []providers.Target{{IP: netip.MustParseAddr("10.0.1.10"), Port: 80}})
	wantKind(t, "register into a deleted group", err, providers.ErrNotFound)
	_, err = s.d.CreateListener(bg(), lb.ID, providers.ListenerSpec{Protocol: "TCP", Port: 80, TargetGroupID: tg.ID, ClientToken: providers.NewToken()})
	if !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("listener on a deleted load balancer: %v; want providers.ErrNotFound", err)
	}
}

// lbWatch: the health watch starts with a Full event holding every registered target and the
// load balancers, and ends with its context.
func lbWatch(t *testing.T, s *lbScene) {
	lb := s.lb(t, "web", false)
	tg := s.tg(t, "web-80", 8080)
	target := providers.Target{IP: netip.MustParseAddr("10.0.1.10"), Port: 8080}
	if err := s.d.RegisterTargets(bg(), tg.ID, []providers.Target{target}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg())
	events := make(chan providers.HealthEvent, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.d.WatchHealth(ctx, func(ev providers.HealthEvent) {
			select {
			case events <- ev:
			default:
			}
		})
	}()
	select {
	case ev := <-events:
		if !ev.Full {
			t.Errorf("the first event is not Full: %+v", ev)
		}
		if !slices.ContainsFunc(ev.Targets, func(th providers.TargetHealth) bool { return th.TargetGroupID == tg.ID && th.Target == target }) {
			t.Errorf("the Full event lacks %v of %s: %+v", target, tg.ID, ev.Targets)
		}
		if !slices.ContainsFunc(ev.LoadBalancers, func(st providers.LoadBalancerState) bool { return st.ID == lb.ID }) {
			t.Errorf("the Full event lacks load balancer %s: %+v", lb.ID, ev.LoadBalancers)
		}
	case err := <-done:
		t.Fatalf("the watch ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no event in 30s")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the watch ended with %v; want its context's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watch did not end with its context")
	}
}

// lbThrottled: a throttle injected into the cloud surfaces as the seam's retryable
// ErrThrottled, and the driver works again once it is lifted.
func lbThrottled(t *testing.T, s *lbScene) {
	throttleEverything(t, s.env.Cloud)
	_, err := s.d.ListLoadBalancers(bg(), owner("web"))
	wantThrottled(t, "list load balancers", err)
	_, err = s.d.CreateTargetGroup(bg(), tgSpec("web-80", 8080))
	wantThrottled(t, "create target group", err)
	p := providers.NewPolicy(providers.PolicyConfig{MaxAttempts: 2, BreakerThreshold: -1})
	_, err = p.LoadBalancing(s.d).ListTargetGroups(bg(), owner("web"))
	wantThrottled(t, "list target groups through the policy", err)
	clearFaults(t, s.env.Cloud)
	s.lb(t, "web", false)
}
