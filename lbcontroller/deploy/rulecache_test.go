package deploy_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
)

// fakeClock is a clock a test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// cachedRules are the rules the cache answers for each listener of the load balancer, IDs
// cleared, by port (as cloudRules).
func cachedRules(t *testing.T, rc *deploy.RuleCache, tags map[string]string) map[int][]providers.Rule {
	t.Helper()
	albs, err := rc.ListApplicationLoadBalancers(context.Background(), tags)
	if err != nil || len(albs) != 1 {
		t.Fatalf("application load balancers: %+v, %v", albs, err)
	}
	out := map[int][]providers.Rule{}
	for _, l := range albs[0].Listeners {
		rules, err := rc.ListRules(context.Background(), l.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rules {
			rules[i].ID = ""
		}
		out[udpKey(l.Protocol, l.Port)] = rules
	}
	return out
}

// A deploy through the cache after the first lists no rules: the cache holds what the writes
// made, exactly what the cloud lists (a deploy of the same model again writes nothing).
func TestRuleCacheKeepsRulesBetweenDeploys(t *testing.T) {
	_, d, c := setup(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	rc := deploy.NewRuleCache(d, 5*time.Minute, clock.now)
	gw := golden(t, "http-precedence")[0]
	tags := gatewayTags(gw)
	if _, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	if c.take()[api.ActionDescribeRules] == 0 {
		t.Fatal("the first deploy listed no rules")
	}
	l := &gw.L7.Listeners[0]
	// A route removed: its rule deleted, the others moved up.
	l.Rules = l.Rules[1:]
	renumber(l.Rules)
	used := usedGroups(gw.L7)
	gw.L7.TargetGroups = slices.DeleteFunc(gw.L7.TargetGroups, func(tg gateway.TargetGroup) bool { return !used[tg.Name] })
	res, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g2")
	if err != nil {
		t.Fatal(err)
	}
	n := c.take()
	if n[api.ActionDescribeRules] != 0 || n[api.ActionDeleteRule] != 1 || n[api.ActionSetRulePriorities] != 1 {
		t.Errorf("the second deploy's calls: %v (%v)", n, res.Changes)
	}
	cloud := cloudRules(t, d, tags)
	c.take()
	if diff := cmp.Diff(cloud, cachedRules(t, rc, tags)); diff != "" {
		t.Errorf("cache and cloud differ (-cloud +cache):\n%s", diff)
	}
	if diff := cmp.Diff(modelSummary(l.Rules), ruleSummary(cloud[l.Port])); diff != "" {
		t.Errorf("rules (-model +cloud):\n%s", diff)
	}
	res, err = deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g3")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.take(); len(writes(n)) != 0 || n[api.ActionDescribeRules] != 0 {
		t.Errorf("the same model again: calls %v (%v)", n, res.Changes)
	}
}

// Rules changed out of band stay unseen until the resync period has passed; then a deploy lists
// them again and repairs them.
func TestRuleCacheResyncRepairsOutOfBandChanges(t *testing.T) {
	_, d, c := setup(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	rc := deploy.NewRuleCache(d, 5*time.Minute, clock.now)
	gw := golden(t, "http-precedence")[0]
	tags := gatewayTags(gw)
	if _, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	want := cloudRules(t, d, tags)
	deleteFirstRule(t, d, tags)
	c.take()
	if _, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	if n := c.take(); len(writes(n)) != 0 {
		t.Errorf("before the resync the cache cannot know of the out-of-band delete, yet the deploy wrote: %v", n)
	}
	clock.t = clock.t.Add(5 * time.Minute)
	// (Another token: the first one's create would answer the deleted rule, as idempotent.)
	if _, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g2"); err != nil {
		t.Fatal(err)
	}
	if n := c.take(); n[api.ActionDescribeRules] == 0 || n[api.ActionCreateRule] != 1 {
		t.Errorf("after the resync period the deploy's calls: %v", n)
	}
	if diff := cmp.Diff(want, cloudRules(t, d, tags)); diff != "" {
		t.Errorf("rules after the resync (-want +cloud):\n%s", diff)
	}
}

// A write that fails drops the listener's cached rules: the deploy after it lists them from
// the cloud and converges.
func TestRuleCacheErrorInvalidates(t *testing.T) {
	_, d, c := setup(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	rc := deploy.NewRuleCache(d, time.Hour, clock.now)
	gw := golden(t, "http-weights")[0]
	tags := gatewayTags(gw)
	if _, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	// The rule the change modifies is deleted out of band: the modify fails.
	deleteFirstRule(t, d, tags)
	gw.L7.Listeners[0].Rules[0].Action.Forward.Backends[0].Weight = 0
	gw.L7.Listeners[0].Rules[0].Action.Forward.Backends[1].Weight = 100
	if _, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g2"); err == nil {
		t.Fatal("modifying a rule deleted out of band succeeded")
	}
	c.take()
	if _, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, "g2"); err != nil {
		t.Fatal(err)
	}
	if n := c.take(); n[api.ActionDescribeRules] == 0 || n[api.ActionCreateRule] != 1 {
		t.Errorf("the deploy after the error: calls %v", n)
	}
	l := gw.L7.Listeners[0]
	if diff := cmp.Diff(modelSummary(l.Rules), ruleSummary(cloudRules(t, d, tags)[l.Port])); diff != "" {
		t.Errorf("rules after the error (-model +cloud):\n%s", diff)
	}
	c.take()
	if diff := cmp.Diff(cloudRules(t, d, tags), cachedRules(t, rc, tags)); diff != "" {
		t.Errorf("cache and cloud differ (-cloud +cache):\n%s", diff)
	}
}

// deleteFirstRule deletes the first listener's first rule behind the cache's back.
func deleteFirstRule(t *testing.T, d providers.ApplicationLoadBalancing, tags map[string]string) {
	t.Helper()
	ctx := context.Background()
	albs, err := d.ListApplicationLoadBalancers(ctx, tags)
	if err != nil || len(albs) != 1 {
		t.Fatalf("application load balancers: %+v, %v", albs, err)
	}
	rules, err := d.ListRules(ctx, albs[0].Listeners[0].ID)
	if err != nil || len(rules) == 0 {
		t.Fatalf("rules: %+v, %v", rules, err)
	}
	if err := d.DeleteRule(ctx, rules[0].ID); err != nil {
		t.Fatal(err)
	}
}

// A pass that changes only rules, after a pass that read the load balancer and changed no more
// than rules, reads nothing of it before the rule writes: the load balancer, listeners, target
// groups, targets and certificates are the earlier pass's (its one read is the state after the
// writes). A target registered out of band is left alone until the resync period has passed or
// the cache was invalidated; then a pass reads everything and deregisters it.
func TestRuleCacheRemembersPasses(t *testing.T) {
	env, d, c := setup(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	rc := deploy.NewRuleCache(d, 5*time.Minute, clock.now)
	gw := golden(t, "http-precedence")[0]
	tags := gatewayTags(gw)
	l := &gw.L7.Listeners[0]
	// pass swaps the listener's first two rules (a rule-only change) and deploys.
	pass := func(what string) deploy.GatewayResult {
		t.Helper()
		l.Rules[0], l.Rules[1] = l.Rules[1], l.Rules[0]
		renumber(l.Rules)
		res, err := deploy.ApplicationLoadBalancer(ctx, rc, gw.L7, tags, what)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res
	}
	// The first pass creates everything; passes until one finds it all active and in place.
	res := pass("create")
	for i := 0; !res.Programmed || len(res.Changes) > 0; i++ {
		if i == 100 {
			t.Fatalf("not active after 100 passes: %+v", res)
		}
		time.Sleep(10 * time.Millisecond)
		l.Rules[0], l.Rules[1] = l.Rules[1], l.Rules[0] // the same model again
		renumber(l.Rules)
		res = pass("settle")
	}
	c.take()
	res = pass("rules only")
	n := c.take()
	for action, k := range n {
		if strings.HasPrefix(action, "Describe") {
			t.Errorf("a rule-only pass made %d %s calls; want none (the state is the memo's, kept by the change stream): %v", k, action, n)
		}
	}
	if len(res.Changes) == 0 || !res.Programmed {
		t.Fatalf("rule-only pass: %+v", res)
	}

	// The change stream reports the load balancer failed: the memo is forgotten, and the next
	// pass reads the load balancer again and says it is not programmed; once the stream
	// reports it active again, a pass reads it again and says it is.
	report := func(state, reason string) {
		t.Helper()
		if _, err := env.Admin.ReportLoadBalancerState(ctx, &api.ReportLoadBalancerStateRequest{Reports: []api.LoadBalancerStateReport{
			{LoadBalancerID: res.LoadBalancerID, State: state, Reason: reason}}}); err != nil {
			t.Fatal(err)
		}
		rc.LoadBalancerStates([]providers.LoadBalancerState{{ID: res.LoadBalancerID, State: state, Reason: reason}})
	}
	report(api.LoadBalancerStateFailed, "the data plane refused the rules")
	res = pass("after the failure")
	if n := c.take(); n["DescribeLoadBalancers"] == 0 {
		t.Errorf("the pass after a reported failure did not read the load balancer: %v", n)
	}
	if res.Programmed || res.State != providers.LBFailed {
		t.Errorf("after the failure: programmed %v, state %q; want not programmed, failed", res.Programmed, res.State)
	}
	report(api.LoadBalancerStateActive, "")
	res = pass("after the recovery")
	if n := c.take(); n["DescribeLoadBalancers"] == 0 {
		t.Errorf("the pass after the recovery did not read the load balancer: %v", n)
	}
	if !res.Programmed {
		t.Errorf("after the recovery: not programmed, state %q", res.State)
	}
	// Another load balancer's report drops no memo of this one.
	pass("remembered")
	c.take()
	rc.LoadBalancerStates([]providers.LoadBalancerState{{ID: "lb-another", State: providers.LBFailed}})
	pass("after another load balancer's report")
	if n := c.take(); n["DescribeLoadBalancers"] != 0 {
		t.Errorf("another load balancer's report made the next pass read this one: %v", n)
	}
	// duringPass reports lb while the next pass writes its rules.
	duringPass := func(lb providers.LoadBalancerState) {
		c.onCall(func(action string) {
			if action == "ModifyRule" || action == "SetRulePriorities" || action == "CreateRule" || action == "DeleteRule" {
				c.onCall(nil)
				rc.LoadBalancerStates([]providers.LoadBalancerState{lb})
			}
		})
	}
	// Another load balancer's report while a pass runs: the pass leaves its memo.
	duringPass(providers.LoadBalancerState{ID: "lb-another", State: providers.LBActive})
	pass("another load balancer's report during it")
	c.onCall(nil)
	c.take()
	pass("after another load balancer's report during a pass")
	if n := c.take(); n["DescribeLoadBalancers"] != 0 {
		t.Errorf("another load balancer's report during a pass made the next pass read this one: %v", n)
	}
	// A report of its own load balancer while a pass runs (here: the state it had): that pass
	// leaves no memo (what it read may be from before the report), the next reads again.
	duringPass(providers.LoadBalancerState{ID: res.LoadBalancerID, State: providers.LBActive})
	pass("a report of its load balancer during it")
	c.onCall(nil)
	c.take()
	pass("after a pass a report of its load balancer came during")
	if n := c.take(); n["DescribeLoadBalancers"] == 0 {
		t.Errorf("the pass after one its load balancer's report came during answered from its memo: %v", n)
	}

	// A stray target, out of band.
	tgName := gw.L7.TargetGroups[0].Name
	tgID := res.TargetGroups[tgName]
	if tgID == "" {
		t.Fatalf("no ID for target group %s: %v", tgName, res.TargetGroups)
	}
	stray := providers.Target{IP: netip.MustParseAddr("10.0.9.9"), Port: 8080}
	if err := d.RegisterTargets(ctx, tgID, []providers.Target{stray}); err != nil {
		t.Fatal(err)
	}
	if res := pass("before the resync"); res.Deregistered != 0 {
		t.Errorf("the stray target was seen before the resync: %v", res.Changes)
	}
	clock.t = clock.t.Add(5 * time.Minute)
	if res := pass("after the resync"); res.Deregistered != 1 {
		t.Errorf("after the resync the stray target is still there: %v", res.Changes)
	}
	// And after an invalidation (the controller's answer to an error).
	pass("remembered again")
	if err := d.RegisterTargets(ctx, tgID, []providers.Target{stray}); err != nil {
		t.Fatal(err)
	}
	rc.Invalidate()
	if res := pass("after the invalidation"); res.Deregistered != 1 {
		t.Errorf("after the invalidation the stray target is still there: %v", res.Changes)
	}
}
