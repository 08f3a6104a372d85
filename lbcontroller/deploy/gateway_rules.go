package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
)

// syncRules makes a listener's rules the model's, in as few writes as it can:
//
//  1. a wanted rule whose conditions and action some rule already has keeps that rule (moved
//     if its priority changed);
//  2. a wanted rule at a priority whose rule is not kept is that rule, modified in place
//     (a weight change is one ModifyRule);
//  3. rules neither kept nor modified are deleted;
//  4. the moved rules get their priorities in one SetRulePriorities call (so rules can swap);
//  5. the remaining wanted rules are created, at priorities free by now.
func syncRules(ctx context.Context, p providers.Rules, listenerID, where string, want []providers.RuleSpec, sources []string, token string, res *GatewayResult) error {
	start := time.Now()
	have, err := p.ListRules(ctx, listenerID)
	res.RuleCalls += time.Since(start)
	if err != nil {
		return fmt.Errorf("list the rules of listener %s (%s): %w", listenerID, where, err)
	}

	plan := planRules(want, have)
	defer func(start time.Time) { res.RuleCalls += time.Since(start) }(time.Now())
	for _, m := range plan.modify {
		if _, err := p.ModifyRule(ctx, have[m.have].ID, want[m.want]); err != nil {
			return fmt.Errorf("modify rule %d of %s: %w", want[m.want].Priority, where, err)
		}
		res.ruleChanges++
		res.did("modify rule %d on %s", want[m.want].Priority, where)
	}
	for _, h := range plan.remove {
		if err := p.DeleteRule(ctx, have[h].ID); err != nil {
			return fmt.Errorf("delete rule %d of %s: %w", have[h].Priority, where, err)
		}
		res.ruleChanges++
		res.did("delete rule %d on %s", have[h].Priority, where)
	}
	if len(plan.move) > 0 {
		moves := map[string]int{}
		for _, m := range plan.move {
			moves[have[m.have].ID] = want[m.want].Priority
		}
		if err := p.SetRulePriorities(ctx, moves); err != nil {
			return fmt.Errorf("reorder %d rules of %s: %w", len(moves), where, err)
		}
		res.ruleChanges++
		res.did("move %d rules on %s", len(moves), where)
	}
	for _, w := range plan.create {
		spec := want[w]
		spec.ClientToken = clientToken(token, fmt.Sprintf("%s/%d/%s", listenerID, spec.Priority, ruleKey(spec.Conditions, spec.Action)))
		if _, err := p.CreateRule(ctx, listenerID, spec); err != nil {
			return fmt.Errorf("create rule %d of %s (%s): %w", spec.Priority, where, sources[w], err)
		}
		res.ruleChanges++
		res.did("create rule %d on %s", spec.Priority, where)
	}
	return nil
}

// httpRuleSpecs are the cloud's rules of an HTTP or HTTPS listener's model rules, a rule split
// by host where it exceeds the condition quota, with the source of each.
func httpRuleSpecs(rules []gateway.Rule, tgIDs map[string]string) ([]providers.RuleSpec, []string, error) {
	// Sized for one cloud rule per model rule (a rule whose hosts are split takes more).
	want := make([]providers.RuleSpec, 0, len(rules))
	sources := make([]string, 0, len(rules))
	for _, r := range rules {
		spec, err := ruleSpec(r, tgIDs)
		if err != nil {
			return nil, nil, fmt.Errorf("rule %d (%s): %w", r.Priority, r.Source, err)
		}
		for _, s := range splitHosts(spec) {
			want = append(want, s)
			sources = append(sources, r.Source)
		}
	}
	for i := range want { // the cloud's priorities are positions, as the model's
		want[i].Priority = i + 1
	}
	return want, sources, nil
}

// maxConditionValues is how many condition values a cloud rule may hold (ELBv2's quota, and
// fakecloud's default).
const maxConditionValues = 5

// splitHosts keeps a rule whole when its conditions fit in one cloud rule, and otherwise makes
// one rule per host (hosts are alternatives, so the rules together match what it matched, at
// consecutive priorities). A header regex counts its top-level alternatives: ELBv2 holds each
// as a value (the gRPC content type is three).
func splitHosts(spec providers.RuleSpec) []providers.RuleSpec {
	c := spec.Conditions
	n := len(c.Hosts) + len(c.Query)
	for _, h := range c.Headers {
		if h.Type == providers.MatchRegex {
			n += len(providers.Alternatives(h.Value))
		} else {
			n++
		}
	}
	if c.Path != nil {
		n++
	}
	if c.Method != "" {
		n++
	}
	if n <= maxConditionValues || len(c.Hosts) < 2 {
		return []providers.RuleSpec{spec}
	}
	out := make([]providers.RuleSpec, len(c.Hosts))
	for i, h := range c.Hosts {
		out[i] = spec
		out[i].Conditions.Hosts = []string{h}
	}
	return out
}

// rulePlan says, by index into the wanted and the existing rules, what to do.
type rulePlan struct {
	modify, move []rulePair
	remove       []int // existing rules
	create       []int // wanted rules
}

type rulePair struct{ want, have int }

// planRules diffs wanted against existing rules without side effects (see syncRules).
func planRules(want []providers.RuleSpec, have []providers.Rule) rulePlan {
	var plan rulePlan
	byPriority := map[int]int{}
	for i, h := range have {
		byPriority[h.Priority] = i
	}
	matched := make([]int, len(want)) // wanted -> existing, -1 none
	used := make([]bool, len(have))
	for i := range matched {
		matched[i] = -1
	}
	// Unchanged rules where they are: compared field by field (a route change among 1,000
	// rules leaves 999 of them here, and their keys need not be built).
	for i, w := range want {
		if h, ok := byPriority[w.Priority]; ok && sameRule(w, have[h]) {
			matched[i], used[h] = h, true
		}
	}
	// Unchanged rules elsewhere: moved, to the first unused rule of the same key.
	byKey := map[string][]int{} // key -> unused existing rules, in order
	for h := range have {
		if !used[h] {
			k := ruleKey(have[h].Conditions, have[h].Action)
			byKey[k] = append(byKey[k], h)
		}
	}
	for i := range want {
		if matched[i] >= 0 {
			continue
		}
		k := ruleKey(want[i].Conditions, want[i].Action)
		if hs := byKey[k]; len(hs) > 0 {
			h := hs[0]
			byKey[k] = hs[1:]
			matched[i], used[h] = h, true
			plan.move = append(plan.move, rulePair{i, h})
		}
	}
	// Changed rules at their priority: modified in place.
	for i, w := range want {
		if matched[i] >= 0 {
			continue
		}
		if h, ok := byPriority[w.Priority]; ok && !used[h] {
			matched[i], used[h] = h, true
			plan.modify = append(plan.modify, rulePair{i, h})
		}
	}
	for h := range have {
		if !used[h] {
			plan.remove = append(plan.remove, h)
		}
	}
	for i := range want {
		if matched[i] < 0 {
			plan.create = append(plan.create, i)
		}
	}
	return plan
}

// sameRule says whether w and h have the same conditions and action: reflect.DeepEqual's answer
// (a nil slice or pointer is not an empty one, as in ruleKey), without reflection: a pass
// compares every rule of a listener, and with 1,000 rules the reflective comparison cost more
// than the rest of the plan. TestSameRuleIsDeepEqual holds it to reflect.DeepEqual's answers
// and to the types' fields.
func sameRule(w providers.RuleSpec, h providers.Rule) bool {
	return sameConditions(w.Conditions, h.Conditions) && sameAction(w.Action, h.Action)
}

func sameConditions(a, b providers.RuleConditions) bool {
	return eqSlice(a.Hosts, b.Hosts) && eqPtr(a.Path, b.Path) && a.Method == b.Method &&
		eqSlice(a.Headers, b.Headers) && eqSlice(a.Query, b.Query)
}

func sameAction(a, b providers.RuleAction) bool {
	return eqSliceFunc(a.Forward, b.Forward, sameForward) && eqPtrFunc(a.Redirect, b.Redirect, sameRedirect) &&
		eqPtr(a.FixedResponse, b.FixedResponse) && eqPtrFunc(a.RequestHeaders, b.RequestHeaders, sameHeaders) &&
		eqPtrFunc(a.ResponseHeaders, b.ResponseHeaders, sameHeaders) && eqPtrFunc(a.Rewrite, b.Rewrite, sameRewrite) &&
		eqSlice(a.Mirrors, b.Mirrors) && a.RequestTimeout == b.RequestTimeout && a.BackendTimeout == b.BackendTimeout &&
		eqPtrFunc(a.Retry, b.Retry, sameRetry) && eqPtrFunc(a.CORS, b.CORS, sameCORS) && a.TLSPassthrough == b.TLSPassthrough
}

func sameCORS(a, b providers.CORS) bool {
	return eqSlice(a.AllowOrigins, b.AllowOrigins) && eqSlice(a.AllowMethods, b.AllowMethods) && eqSlice(a.AllowHeaders, b.AllowHeaders) &&
		eqSlice(a.ExposeHeaders, b.ExposeHeaders) && a.AllowCredentials == b.AllowCredentials && a.MaxAge == b.MaxAge
}

func sameRetry(a, b providers.Retry) bool {
	return eqSlice(a.Codes, b.Codes) && a.Attempts == b.Attempts && a.Backoff == b.Backoff
}

func sameForward(a, b providers.WeightedTargetGroup) bool {
	return a.TargetGroupID == b.TargetGroupID && a.Weight == b.Weight &&
		eqPtrFunc(a.RequestHeaders, b.RequestHeaders, sameHeaders) && eqPtrFunc(a.ResponseHeaders, b.ResponseHeaders, sameHeaders)
}

func sameRedirect(a, b providers.Redirect) bool {
	return a.Scheme == b.Scheme && a.Host == b.Host && a.Port == b.Port && eqPtr(a.Path, b.Path) && a.StatusCode == b.StatusCode
}

func sameHeaders(a, b providers.HeaderModifier) bool {
	return eqSlice(a.Set, b.Set) && eqSlice(a.Add, b.Add) && eqSlice(a.Remove, b.Remove)
}

func sameRewrite(a, b providers.Rewrite) bool { return a.Host == b.Host && eqPtr(a.Path, b.Path) }

// eqSlice, eqSliceFunc, eqPtr and eqPtrFunc are reflect.DeepEqual's rules for slices and
// pointers: nil equals only nil.
func eqSlice[T comparable](a, b []T) bool { return (a == nil) == (b == nil) && slices.Equal(a, b) }

func eqSliceFunc[T any](a, b []T, eq func(T, T) bool) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, eq)
}

func eqPtr[T comparable](a, b *T) bool { return a == b || a != nil && b != nil && *a == *b }

func eqPtrFunc[T any](a, b *T, eq func(T, T) bool) bool {
	return a == b || a != nil && b != nil && eq(*a, *b)
}

// ruleKey is a rule's conditions and action as a comparable string.
func ruleKey(c providers.RuleConditions, a providers.RuleAction) string {
	b, err := json.Marshal(struct {
		C providers.RuleConditions
		A providers.RuleAction
	}{c, a})
	if err != nil { // plain data: cannot happen
		panic(err)
	}
	return string(b)
}

// ruleSpec turns one model rule into the cloud's, target group names into IDs.
func ruleSpec(r gateway.Rule, tgIDs map[string]string) (providers.RuleSpec, error) {
	c := r.Conditions
	spec := providers.RuleSpec{Priority: r.Priority, Conditions: providers.RuleConditions{Hosts: c.Hosts, Method: c.Method}}
	if c.Path != nil {
		spec.Conditions.Path = &providers.StringMatch{Type: c.Path.Type, Value: c.Path.Value}
	}
	for _, h := range c.Headers {
		spec.Conditions.Headers = append(spec.Conditions.Headers, providers.StringMatch{Name: h.Name, Type: h.Type, Value: h.Value})
	}
	for _, q := range c.Query {
		spec.Conditions.Query = append(spec.Conditions.Query, providers.StringMatch{Name: q.Name, Type: q.Type, Value: q.Value})
	}
	a, err := ruleAction(r.Action, tgIDs)
	spec.Action = a
	return spec, err
}

func ruleAction(m gateway.Action, tgIDs map[string]string) (providers.RuleAction, error) {
	a := providers.RuleAction{RequestHeaders: headers(m.RequestHeaders), ResponseHeaders: headers(m.ResponseHeaders), CORS: corsPolicy(m.CORS)}
	switch {
	case m.Redirect != nil:
		r := m.Redirect
		a.Redirect = &providers.Redirect{Scheme: strings.ToUpper(r.Scheme), Host: r.Hostname, Port: r.Port, StatusCode: r.StatusCode, Path: pathModifier(r.Path)}
		// The Gateway API's port for a scheme change is the scheme's; the cloud's empty port
		// would keep the request's.
		if a.Redirect.Port == 0 {
			switch a.Redirect.Scheme {
			case "HTTP":
				a.Redirect.Port = 80
			case "HTTPS":
				a.Redirect.Port = 443
			}
		}
		a.RequestHeaders = nil // request headers are changed on forwarded requests only
		return a, nil
	case m.FixedResponse != nil:
		a.FixedResponse = &providers.FixedResponse{StatusCode: m.FixedResponse.StatusCode, Body: m.FixedResponse.Body}
		a.RequestHeaders = nil
		return a, nil
	}
	if m.Forward != nil {
		for _, b := range m.Forward.Backends {
			if b.TargetGroup == "" {
				// An unresolvable backend: the cloud's forward has no "answer 500" share,
				// so its share goes to the resolved backends (all unresolved: 500 below).
				continue
			}
			id, ok := tgIDs[b.TargetGroup]
			if !ok {
				return a, fmt.Errorf("forward to %s: %w", b.TargetGroup, errUnknownGroup)
			}
			a.Forward = append(a.Forward, providers.WeightedTargetGroup{TargetGroupID: id, Weight: b.Weight,
				RequestHeaders: headers(b.RequestHeaders), ResponseHeaders: headers(b.ResponseHeaders)})
		}
	}
	if len(a.Forward) == 0 {
		return providers.RuleAction{ResponseHeaders: a.ResponseHeaders, CORS: a.CORS,
			FixedResponse: &providers.FixedResponse{StatusCode: 500, Body: "no backend of the route could be resolved"}}, nil
	}
	if m.Rewrite != nil {
		a.Rewrite = &providers.Rewrite{Host: m.Rewrite.Hostname, Path: pathModifier(m.Rewrite.Path)}
	}
	for _, mi := range m.Mirrors {
		id, ok := tgIDs[mi.TargetGroup]
		if !ok {
			return a, fmt.Errorf("mirror to %s: %w", mi.TargetGroup, errUnknownGroup)
		}
		// The cloud mirrors to a group once per rule: two mirrors to one group become one,
		// at the larger percentage.
		if i := slices.IndexFunc(a.Mirrors, func(x providers.Mirror) bool { return x.TargetGroupID == id }); i >= 0 {
			a.Mirrors[i].Percent = max(a.Mirrors[i].Percent, mi.Percent)
			continue
		}
		a.Mirrors = append(a.Mirrors, providers.Mirror{TargetGroupID: id, Percent: mi.Percent})
	}
	if t := m.Timeouts; t != nil {
		var err error
		if a.RequestTimeout, err = duration(t.Request); err != nil {
			return a, err
		}
		if a.BackendTimeout, err = duration(t.BackendRequest); err != nil {
			return a, err
		}
	}
	if r := m.Retry; r != nil {
		backoff, err := duration(r.Backoff)
		if err != nil {
			return a, err
		}
		a.Retry = &providers.Retry{Codes: slices.Clone(r.Codes), Attempts: r.Attempts, Backoff: backoff}
	}
	return a, nil
}

func corsPolicy(c *gateway.CORS) *providers.CORS {
	if c == nil {
		return nil
	}
	return &providers.CORS{AllowOrigins: slices.Clone(c.AllowOrigins), AllowMethods: slices.Clone(c.AllowMethods), AllowHeaders: slices.Clone(c.AllowHeaders),
		ExposeHeaders: slices.Clone(c.ExposeHeaders), AllowCredentials: c.AllowCredentials, MaxAge: time.Duration(c.MaxAge) * time.Second}
}

func duration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("timeout %q: %w", s, err)
	}
	return d, nil
}

func pathModifier(p *gateway.PathModifier) *providers.PathModifier {
	if p == nil {
		return nil
	}
	return &providers.PathModifier{Type: p.Type, Value: p.Value}
}

func headers(h *gateway.HeaderModifier) *providers.HeaderModifier {
	if h == nil {
		return nil
	}
	out := &providers.HeaderModifier{Remove: h.Remove}
	for _, s := range h.Set {
		out.Set = append(out.Set, providers.Header{Name: s.Name, Value: s.Value})
	}
	for _, s := range h.Add {
		out.Add = append(out.Add, providers.Header{Name: s.Name, Value: s.Value})
	}
	return out
}
