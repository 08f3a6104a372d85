package deploy_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/aws"
)

// TestRefusedRules: with the AWS driver (ELBv2 has no timeouts or response header changes), a
// route rule the cloud cannot express leaves the model on every listener and match, the rest
// stays with priorities renumbered; a route with a rule left gets a Dropped entry per refused
// rule, one with none left gets one entry that it is not served; a listener's fallback rule
// stays. A driver without rule limits takes the model as it is, behind the rule cache too.
func TestRefusedRules(t *testing.T) {
	timeout := gateway.Action{Forward: fwd("web", 1), Timeouts: &gateway.Timeouts{Request: "5s"}}
	headers := gateway.Action{Forward: fwd("web", 1), ResponseHeaders: &gateway.HeaderModifier{Set: []gateway.Header{{Name: "X-A", Value: "1"}}}}
	plain := gateway.Action{Forward: fwd("web", 1)}
	prefix := func(p string) gateway.Conditions {
		return gateway.Conditions{Path: &gateway.PathMatch{Type: gateway.MatchPrefix, Value: p}}
	}
	alb := &gateway.ApplicationLoadBalancer{
		Name: "alb",
		Listeners: []gateway.HTTPListener{
			{Port: 80, Protocol: gateway.ProtocolHTTP, Rules: []gateway.Rule{
				{Priority: 1, Source: "HTTPRoute ns/mixed rule 0 match 0", Conditions: prefix("/a"), Action: timeout},
				{Priority: 2, Source: "HTTPRoute ns/mixed rule 0 match 1", Conditions: prefix("/b"), Action: plain},
				{Priority: 3, Source: "HTTPRoute ns/mixed rule 1 (kept)", Conditions: prefix("/c"), Action: plain},
				{Priority: 4, Source: "HTTPRoute ns/gone rule 0", Conditions: prefix("/d"), Action: headers},
				{Priority: 5, Source: "listener http: no route matches", Action: gateway.Action{FixedResponse: &gateway.FixedResponse{StatusCode: 404}}},
			}},
			{Port: 8080, Protocol: gateway.ProtocolHTTP, Rules: []gateway.Rule{
				{Priority: 1, Source: "HTTPRoute ns/mixed rule 0 match 0", Conditions: prefix("/a"), Action: timeout},
				{Priority: 2, Source: "HTTPRoute ns/other rule 0", Conditions: prefix("/e"), Action: plain},
			}},
		},
		TargetGroups: []gateway.TargetGroup{{Name: "web"}},
	}
	before := cloneALB(t, alb)

	for _, p := range []any{&providerWithoutChecks{}, deploy.NewRuleCache(&providerWithoutChecks{}, 0, nil)} {
		same, unserved := deploy.RefusedRules(p, alb)
		if same != alb || unserved != nil {
			t.Errorf("%T, a driver without rule limits: %p %+v; want the model itself and nothing unserved", p, same, unserved)
		}
	}

	got, unserved := deploy.RefusedRules(&aws.LoadBalancing{}, alb)
	if diff := cmp.Diff(before, alb); diff != "" {
		t.Errorf("RefusedRules changed its input (-before +after):\n%s", diff)
	}
	var sources [][]string
	for _, l := range got.Listeners {
		var s []string
		for i, r := range l.Rules {
			if r.Priority != i+1 {
				t.Errorf("port %d rule %q has priority %d at position %d", l.Port, r.Source, r.Priority, i+1)
			}
			s = append(s, r.Source)
		}
		sources = append(sources, s)
	}
	want := [][]string{
		{"HTTPRoute ns/mixed rule 1 (kept)", "listener http: no route matches"},
		{"HTTPRoute ns/other rule 0"},
	}
	if diff := cmp.Diff(want, sources); diff != "" {
		t.Errorf("rules left (-want +got):\n%s", diff)
	}
	const elb = " (the AWS driver carries ELBv2's rule features only; docs/providers.md)"
	wantUnserved := []deploy.Unserved{
		{Source: "HTTPRoute ns/mixed rule 0", Dropped: true, Message: "rule 0: ELBv2 cannot express per-rule timeouts" + elb},
		{Source: "HTTPRoute ns/gone", Message: "the cloud's load balancer cannot express any rule of the route: rule 0: ELBv2 cannot express request or response header changes" + elb},
	}
	if diff := cmp.Diff(wantUnserved, unserved); diff != "" {
		t.Errorf("unserved (-want +got):\n%s", diff)
	}
}

// providerWithoutChecks is a driver that reports no rule limits (providers.Capabilities.RuleLimits).
type providerWithoutChecks struct {
	providers.ApplicationLoadBalancing
}

func cloneALB(t *testing.T, a *gateway.ApplicationLoadBalancer) *gateway.ApplicationLoadBalancer {
	t.Helper()
	c := *a
	c.Listeners = nil
	for _, l := range a.Listeners {
		l.Rules = append([]gateway.Rule(nil), l.Rules...)
		c.Listeners = append(c.Listeners, l)
	}
	return &c
}
