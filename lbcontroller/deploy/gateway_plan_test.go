package deploy

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
)

func TestPlanRules(t *testing.T) {
	rule := func(prio int, path string, weight int) (providers.RuleSpec, providers.Rule) {
		c := providers.RuleConditions{Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: path}}
		a := providers.RuleAction{Forward: []providers.WeightedTargetGroup{{TargetGroupID: "tg-1", Weight: weight}}}
		return providers.RuleSpec{Priority: prio, Conditions: c, Action: a}, providers.Rule{ID: path, Priority: prio, Conditions: c, Action: a}
	}
	w := func(specs ...providers.RuleSpec) []providers.RuleSpec { return specs }
	h := func(rules ...providers.Rule) []providers.Rule { return rules }
	a1, A1 := rule(1, "/a", 1)
	b2, B2 := rule(2, "/b", 1)
	a2, _ := rule(2, "/a", 1)
	b1, B1 := rule(1, "/b", 1)
	a1w, _ := rule(1, "/a", 5)
	_, C3 := rule(3, "/c", 1)
	c1, _ := rule(1, "/c", 1)
	c2, _ := rule(2, "/c", 1)
	for _, tc := range []struct {
		name string
		want []providers.RuleSpec
		have []providers.Rule
		plan rulePlan
	}{
		{"unchanged", w(a1, b2), h(A1, B2), rulePlan{}},
		{"created", w(a1, b2), nil, rulePlan{create: []int{0, 1}}},
		{"weight changed in place", w(a1w, b2), h(A1, B2), rulePlan{modify: []rulePair{{0, 0}}}},
		{"swapped", w(b1, a2), h(A1, B2), rulePlan{move: []rulePair{{0, 1}, {1, 0}}}},
		{"removed first: the rest move up", w(b1), h(A1, B2), rulePlan{move: []rulePair{{0, 1}}, remove: []int{0}}},
		{"inserted first: the rest move down", w(c1, a2), h(A1), rulePlan{move: []rulePair{{1, 0}}, create: []int{0}}},
		{"another rule at its priority: modified", w(a1, c2), h(A1, B2), rulePlan{modify: []rulePair{{1, 1}}}},
		{"the last removed", w(a1, b2), h(A1, B2, C3), rulePlan{remove: []int{2}}},
		{"all gone", nil, h(A1, B1), rulePlan{remove: []int{0, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planRules(tc.want, tc.have)
			if diff := cmp.Diff(tc.plan, got, cmp.AllowUnexported(rulePlan{}, rulePair{})); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSplitHostsCountsAlternatives: a gRPC rule's content type is three ELBv2 values, so two
// hosts with it and a path are over the five a rule holds: one rule per host.
func TestSplitHostsCountsAlternatives(t *testing.T) {
	ct := gateway.GRPCContentType()
	spec := providers.RuleSpec{Conditions: providers.RuleConditions{
		Path:    &providers.StringMatch{Type: providers.MatchPrefix, Value: "/svc"},
		Headers: []providers.StringMatch{{Name: ct.Name, Type: ct.Type, Value: ct.Value}},
	}}
	one, two := spec, spec
	one.Conditions.Hosts = []string{"a.example.com"}
	two.Conditions.Hosts = []string{"a.example.com", "b.example.com"}
	if got := splitHosts(one); len(got) != 1 {
		t.Errorf("one host: %d rules, want the rule whole", len(got))
	}
	got := splitHosts(two)
	if len(got) != 2 || !cmp.Equal(got[0].Conditions.Hosts, []string{"a.example.com"}) || !cmp.Equal(got[1].Conditions.Hosts, []string{"b.example.com"}) {
		t.Errorf("two hosts: %+v, want one rule per host", got)
	}
}
