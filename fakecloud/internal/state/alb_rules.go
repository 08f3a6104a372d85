package state

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// defaultRuleSuffix makes the ID of a listener's implicit default rule: <listener>/default.
const defaultRuleSuffix = "/default"

// CreateRule adds a rule to an HTTP or HTTPS listener at a priority no other rule of the
// listener holds.
func (s *Store) CreateRule(c Call, req *api.CreateRuleRequest) (*api.CreateRuleResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionCreateRule); err != nil {
		return nil, err
	}
	if err := validatePriority("Priority", req.Priority); err != nil {
		return nil, err
	}
	lim := s.cfg.ALBLimits
	conds, shape, err := validateConditions(req.Conditions, lim)
	if err != nil {
		return nil, err
	}
	trs, err := validateTransforms(req.Transforms)
	if err != nil {
		return nil, err
	}
	return write(s, c, api.ActionCreateRule, req.ClientToken, req, func(t *tx) (*api.CreateRuleResponse, error) {
		l, lb, err := getALBListener(t.Txn, req.ListenerID)
		if err != nil {
			return nil, err
		}
		acts, tgs, err := validateRuleActions(l, req.Actions, shape, lim)
		if err != nil {
			return nil, err
		}
		if old := first[ruleRec](t.Txn, tableRules, indexRulePriority, rulePriorityKey(l.ID, req.Priority)); old != nil {
			return nil, api.Errorf(api.CodePriorityInUse, "priority %d is taken by rule %s of listener %s; pick another or move that rule with SetRulePriorities", req.Priority, old.ID, l.ID)
		}
		if n := count(t.Txn, tableRules, indexLoadBalancer, lb.ID); n >= lim.RulesPerLoadBalancer {
			return nil, api.Errorf(api.CodeTooManyRules, "load balancer %s has %d rules, the most it may hold (default rules not counted); delete one first", lb.ID, n)
		}
		if err := checkL4Rule(l, conds); err != nil {
			return nil, err
		}
		if err := checkTransformsFit(l.Protocol, trs, acts); err != nil {
			return nil, err
		}
		if err := checkALBTargets(t, lb, l.Protocol, tlsGroupRefusal(l.Protocol, terminatesTLS(l), acts, false), tgs); err != nil {
			return nil, err
		}
		r := &ruleRec{
			ID: newID(t.Txn, tableRules, "rule"), ListenerID: l.ID, LoadBalancerID: lb.ID,
			PriorityKey: rulePriorityKey(l.ID, req.Priority), Priority: req.Priority,
			Conditions: conds, Actions: acts, Transforms: trs, TargetGroupIDs: tgs, Created: c.Now,
		}
		if err := t.putRule(nil, r); err != nil {
			return nil, err
		}
		return &api.CreateRuleResponse{Rule: ruleView(r)}, nil
	})
}

func validatePriority(field string, p int) error {
	if p < 1 || p > maxRulePriority {
		return invalid("%s %d is outside 1..%d", field, p, maxRulePriority)
	}
	return nil
}

// getALBListener finds a listener of an application load balancer, with its load balancer.
func getALBListener(txn *memdb.Txn, id string) (*listenerRec, *lbRec, error) {
	l, err := getListener(txn, id)
	if err != nil {
		return nil, nil, err
	}
	lb, err := getLB(txn, l.LoadBalancerID)
	if err != nil {
		return nil, nil, err
	}
	if lb.Type != api.LoadBalancerTypeApplication {
		return nil, nil, api.Errorf(api.CodeInvalidConfigurationRequest, "listener %s belongs to network load balancer %s; rules belong to listeners of application load balancers", l.ID, lb.ID)
	}
	return l, lb, nil
}

func getRule(txn *memdb.Txn, id string) (*ruleRec, error) {
	if id == "" {
		return nil, invalid("RuleId is required")
	}
	if r := first[ruleRec](txn, tableRules, indexID, id); r != nil {
		return r, nil
	}
	if l, ok := strings.CutSuffix(id, defaultRuleSuffix); ok && first[listenerRec](txn, tableListeners, indexID, l) != nil {
		return nil, api.Errorf(api.CodeOperationNotPermitted, "%s is listener %s's default rule: change it with ModifyListener's DefaultActions", id, l)
	}
	return nil, api.Errorf(api.CodeRuleNotFound, "rule %q does not exist", id)
}

// putRule stores a new or changed rule and marks the target groups it used or uses changed.
func (t *tx) putRule(old, r *ruleRec) error {
	if err := t.put(tableRules, api.KindRule, r.ID, r); err != nil {
		return err
	}
	var tgs []string
	if old != nil {
		tgs = old.TargetGroupIDs
	}
	for _, id := range append(slices.Clone(tgs), r.TargetGroupIDs...) {
		t.touchGroup(id)
	}
	return nil
}

func (t *tx) deleteRule(r *ruleRec) error {
	if err := t.Delete(tableRules, r); err != nil {
		return internal(err)
	}
	t.touch(api.KindRule, r.ID)
	for _, id := range r.TargetGroupIDs {
		t.touchGroup(id)
	}
	return nil
}

// ModifyRule replaces a rule's conditions, actions or transforms (any of them), or removes its
// transforms (ResetTransforms).
func (s *Store) ModifyRule(c Call, req *api.ModifyRuleRequest) (*api.ModifyRuleResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionModifyRule); err != nil {
		return nil, err
	}
	if req.ResetTransforms && len(req.Transforms) > 0 {
		return nil, invalid("give Transforms or ResetTransforms, not both: Transforms replace the rule's transforms, ResetTransforms removes them")
	}
	if len(req.Conditions) == 0 && len(req.Actions) == 0 && len(req.Transforms) == 0 && !req.ResetTransforms {
		return nil, invalid("give Conditions, Actions, Transforms or ResetTransforms to change")
	}
	newTrs, err := validateTransforms(req.Transforms)
	if err != nil {
		return nil, err
	}
	lim := s.cfg.ALBLimits
	return write(s, c, api.ActionModifyRule, "", req, func(t *tx) (*api.ModifyRuleResponse, error) {
		old, err := getRule(t.Txn, req.RuleID)
		if err != nil {
			return nil, err
		}
		condsIn, actsIn, trs := old.Conditions, old.Actions, old.Transforms
		if len(req.Conditions) > 0 {
			condsIn = req.Conditions
		}
		if len(req.Actions) > 0 {
			actsIn = req.Actions
		}
		switch {
		case req.ResetTransforms:
			trs = nil
		case len(newTrs) > 0:
			trs = newTrs
		}
		// Kept actions are checked again: new conditions may take away the Prefix path
		// match a ReplacePrefixMatch needs.
		conds, shape, err := validateConditions(condsIn, lim)
		if err != nil {
			return nil, err
		}
		l, lb, err := getALBListener(t.Txn, old.ListenerID)
		if err != nil {
			return nil, err
		}
		acts, tgs, err := validateRuleActions(l, actsIn, shape, lim)
		if err != nil {
			return nil, err
		}
		if err := checkL4Rule(l, conds); err != nil {
			return nil, err
		}
		// Kept transforms too: new actions may not forward, or may rewrite what they rewrite.
		if err := checkTransformsFit(l.Protocol, trs, acts); err != nil {
			return nil, err
		}
		if err := checkALBTargets(t, lb, l.Protocol, tlsGroupRefusal(l.Protocol, terminatesTLS(l), acts, false), tgs); err != nil {
			return nil, err
		}
		n := *old
		n.Conditions, n.Actions, n.Transforms, n.TargetGroupIDs = conds, acts, trs, tgs
		if !reflect.DeepEqual(&n, old) {
			if err := t.putRule(old, &n); err != nil {
				return nil, err
			}
		}
		return &api.ModifyRuleResponse{Rule: ruleView(&n)}, nil
	})
}

// DeleteRule deletes a rule (not a default one). Unlike a load balancer, a rule that does not
// exist is RuleNotFound, as in ELBv2.
func (s *Store) DeleteRule(c Call, req *api.DeleteRuleRequest) (*api.DeleteRuleResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDeleteRule); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionDeleteRule, "", req, func(t *tx) (*api.DeleteRuleResponse, error) {
		r, err := getRule(t.Txn, req.RuleID)
		if err != nil {
			return nil, err
		}
		return &api.DeleteRuleResponse{}, t.deleteRule(r)
	})
}

// DescribeRules lists a listener's rules by priority and then its default rule, or the
// named rules (a listener's default rule by its ID, <listener>/default).
func (s *Store) DescribeRules(c Call, req *api.DescribeRulesRequest) (*api.DescribeRulesResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDescribeRules); err != nil {
		return nil, err
	}
	if (req.ListenerID == "") == (len(req.RuleIDs) == 0) {
		return nil, invalid("give ListenerId or RuleIds (one of them)")
	}
	txn := s.read()
	out := &api.DescribeRulesResponse{Rules: []api.Rule{}}
	if req.ListenerID != "" {
		l, _, err := getALBListener(txn, req.ListenerID)
		if err != nil {
			return nil, err
		}
		out.Rules = append(listenerRules(txn, l.ID), defaultRuleView(l))
		return out, nil
	}
	for _, id := range req.RuleIDs {
		if r := first[ruleRec](txn, tableRules, indexID, id); r != nil {
			out.Rules = append(out.Rules, ruleView(r))
			continue
		}
		lid, isDefault := strings.CutSuffix(id, defaultRuleSuffix)
		if l := first[listenerRec](txn, tableListeners, indexID, lid); isDefault && l != nil && l.Actions != nil {
			out.Rules = append(out.Rules, defaultRuleView(l))
			continue
		}
		return nil, api.Errorf(api.CodeRuleNotFound, "rule %q does not exist", id)
	}
	return out, nil
}

// listenerRules are a listener's rules by ascending priority.
func listenerRules(txn *memdb.Txn, listenerID string) []api.Rule {
	recs := listBy[ruleRec](txn, tableRules, indexListener, listenerID)
	slices.SortFunc(recs, func(a, b *ruleRec) int { return a.Priority - b.Priority })
	out := make([]api.Rule, 0, len(recs)+1)
	for _, r := range recs {
		out = append(out, ruleView(r))
	}
	return out
}

// SetRulePriorities changes the priorities of rules in one step: the result, not each step,
// must keep priorities unique per listener, so two rules can swap.
func (s *Store) SetRulePriorities(c Call, req *api.SetRulePrioritiesRequest) (*api.SetRulePrioritiesResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionSetRulePriorities); err != nil {
		return nil, err
	}
	if len(req.RulePriorities) == 0 {
		return nil, invalid("RulePriorities is required")
	}
	for i, p := range req.RulePriorities {
		if err := validatePriority(fmt.Sprintf("RulePriorities[%d].Priority", i), p.Priority); err != nil {
			return nil, err
		}
		if slices.IndexFunc(req.RulePriorities, func(q api.RulePriorityPair) bool { return q.RuleID == p.RuleID }) != i {
			return nil, invalid("RulePriorities[%d].RuleId %s is listed twice", i, p.RuleID)
		}
	}
	return write(s, c, api.ActionSetRulePriorities, "", req, func(t *tx) (*api.SetRulePrioritiesResponse, error) {
		moved := map[string]*ruleRec{} // rule ID -> its new record
		var order []string
		for _, p := range req.RulePriorities {
			old, err := getRule(t.Txn, p.RuleID)
			if err != nil {
				return nil, err
			}
			n := *old
			n.Priority, n.PriorityKey = p.Priority, rulePriorityKey(old.ListenerID, p.Priority)
			moved[n.ID] = &n
			order = append(order, n.ID)
		}
		// The final priorities of every listener involved: the rules not moved keep theirs.
		taken := map[string]string{} // priority key -> rule ID
		for _, id := range order {
			for _, r := range listBy[ruleRec](t.Txn, tableRules, indexListener, moved[id].ListenerID) {
				if moved[r.ID] == nil {
					taken[r.PriorityKey] = r.ID
				}
			}
		}
		for i, id := range order {
			n := moved[id]
			if other, dup := taken[n.PriorityKey]; dup {
				return nil, api.Errorf(api.CodePriorityInUse, "RulePriorities[%d]: priority %d of listener %s would be held by both %s and %s", i, n.Priority, n.ListenerID, other, id)
			}
			taken[n.PriorityKey] = id
		}
		// Delete first, then insert, so the unique priority index never holds two rules.
		for _, id := range order {
			if err := t.Delete(tableRules, first[ruleRec](t.Txn, tableRules, indexID, id)); err != nil {
				return nil, internal(err)
			}
		}
		out := &api.SetRulePrioritiesResponse{Rules: []api.Rule{}}
		for _, id := range order {
			if err := t.put(tableRules, api.KindRule, id, moved[id]); err != nil {
				return nil, err
			}
			out.Rules = append(out.Rules, ruleView(moved[id]))
		}
		return out, nil
	})
}

// ruleViews memoizes the rules' views of Snapshot by record. A stored record is never changed
// (a change stores a copy, putRule), so its view stays right as long as the same record is
// stored: a snapshot after one rule's change copies that rule's conditions and actions, not
// every rule's (with 1,000 rules the copies were a third of the fabric's work per change).
// Snapshots therefore share the conditions and actions of unchanged rules: their readers (the
// fabric, GetSnapshot's encoding) only read them. Only the last snapshot's views are kept.
type ruleViews struct {
	mu   sync.Mutex
	last map[*ruleRec]api.Rule
}

// views returns the views of rules, in their order.
func (m *ruleViews) views(rules []*ruleRec) []api.Rule {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.Rule, 0, len(rules))
	next := make(map[*ruleRec]api.Rule, len(rules))
	for _, r := range rules {
		v, ok := m.last[r]
		if !ok {
			v = ruleView(r)
		}
		next[r] = v
		out = append(out, v)
	}
	m.last = next
	return out
}

func ruleView(r *ruleRec) api.Rule {
	return api.Rule{
		RuleID: r.ID, ListenerID: r.ListenerID, LoadBalancerID: r.LoadBalancerID, Priority: r.Priority,
		Conditions: clonePlain(r.Conditions), Actions: clonePlain(r.Actions), Transforms: clonePlain(r.Transforms),
	}
}

// defaultRuleView is an application listener's implicit default rule.
func defaultRuleView(l *listenerRec) api.Rule {
	return api.Rule{
		RuleID: l.ID + defaultRuleSuffix, ListenerID: l.ID, LoadBalancerID: l.LoadBalancerID, IsDefault: true,
		Conditions: []api.RuleCondition{}, Actions: cloneJSON(l.Actions),
	}
}
