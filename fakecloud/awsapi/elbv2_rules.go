package awsapi

import (
	"strconv"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// The ELBv2 rule actions, on fakecloud's rules of application load balancers' listeners.

// elbConditions reads Conditions.member.N in ELBv2's shapes: Field with the legacy Values
// (host-header and path-pattern), or Field with its <Field>Config. Patterns become fakecloud's
// match types (wildcards.go).
func (x *exchange) elbConditions(v query.View) []api.RuleCondition {
	var out []api.RuleCondition
	for _, c := range v.MemberStructs("Conditions") {
		cond := api.RuleCondition{Field: c.Required("Field")}
		legacy := c.Members("Values")
		values := func(cfg string) []string {
			vs := c.Members(cfg + ".Values")
			if len(legacy) > 0 && len(vs) > 0 {
				x.params.Fail(api.CodeValidationError, "%s: give Values or %s.Values, not both", c.Name("Values"), cfg)
			}
			if len(vs) == 0 {
				return legacy
			}
			return vs
		}
		switch cond.Field {
		case api.ConditionHostHeader:
			cond.HostHeaderConfig = &api.HostHeaderConditionConfig{Values: values("HostHeaderConfig")}
		case api.ConditionPathPattern:
			vs, mt := fromWildcards(values("PathPatternConfig"))
			if res := c.Members("PathPatternConfig.RegexValues"); len(res) > 0 {
				// RE2 regexes, each matching the whole path (fakecloud's Regex).
				if len(vs) > 0 {
					x.params.Fail(api.CodeValidationError, "%s: give Values or RegexValues, not both", c.Name("PathPatternConfig"))
				}
				vs, mt = res, api.MatchTypeRegex
			}
			cond.PathPatternConfig = &api.PathPatternConditionConfig{Values: vs, MatchType: mt}
		case api.ConditionHTTPHeader:
			vs, mt := fromWildcards(c.Members("HttpHeaderConfig.Values"))
			cond.HTTPHeaderConfig = &api.HTTPHeaderConditionConfig{HTTPHeaderName: c.Required("HttpHeaderConfig.HttpHeaderName"), Values: vs, MatchType: mt}
		case api.ConditionQueryString:
			cond.QueryStringConfig = elbQueryString(c)
		case api.ConditionHTTPRequestMethod:
			cond.HTTPRequestMethodConfig = &api.HTTPRequestMethodConditionConfig{Values: c.Members("HttpRequestMethodConfig.Values")}
		case "":
		default:
			x.params.Fail(api.CodeValidationError, "%s %q is not supported: fakecloud's conditions are host-header, path-pattern, http-header, query-string and http-request-method (no source-ip)", c.Name("Field"), truncate(cond.Field, 40))
		}
		if len(legacy) > 0 && cond.HostHeaderConfig == nil && cond.PathPatternConfig == nil && x.params.Err() == nil {
			x.params.Fail(api.CodeValidationError, "%s: the legacy Values are for host-header and path-pattern; give %s's own config", c.Name("Values"), truncate(cond.Field, 40))
		}
		out = append(out, cond)
	}
	return out
}

// elbQueryString reads QueryStringConfig.Values.member.N.Key/Value; a value with a wildcard
// makes the whole list Regex, as for paths.
func elbQueryString(c query.View) *api.QueryStringConditionConfig {
	q := &api.QueryStringConditionConfig{}
	var vals []string
	for _, kv := range c.MemberStructs("QueryStringConfig.Values") {
		k, _ := kv.String("Key")
		q.Values = append(q.Values, api.QueryStringKeyValue{Key: k, Value: kv.Required("Value")})
		vals = append(vals, q.Values[len(q.Values)-1].Value)
	}
	vals, q.MatchType = fromWildcards(vals)
	for i := range q.Values {
		q.Values[i].Value = vals[i]
	}
	return q
}

// elbTransforms reads Transforms.member.N: a Type and the one config of that type, whose
// Rewrites.member.M.Regex/Replace hold one rewrite (as ELBv2 takes). The regex itself, the
// lengths and one transform of each type are fakecloud's store's to check.
func (x *exchange) elbTransforms(v query.View) []api.RuleTransform {
	var out []api.RuleTransform
	for _, t := range v.MemberStructs("Transforms") {
		tr := api.RuleTransform{Type: t.Required("Type")}
		var want, other string
		switch tr.Type {
		case api.TransformTypeHostHeaderRewrite:
			want, other = "HostHeaderRewriteConfig", "UrlRewriteConfig"
		case api.TransformTypeURLRewrite:
			want, other = "UrlRewriteConfig", "HostHeaderRewriteConfig"
		case "":
		default:
			x.params.Fail(api.CodeValidationError, "%s %q is not a transform type: give host-header-rewrite or url-rewrite", t.Name("Type"), truncate(tr.Type, 40))
		}
		switch {
		case want == "":
		case t.Has(other):
			x.params.Fail(api.CodeValidationError, "%s: a %s transform takes %s, not %s", t.Name(other), tr.Type, want, other)
		case !t.Has(want):
			x.params.Fail(api.CodeValidationError, "%s: a %s transform needs %s.Rewrites.member.1.Regex and .Replace", t.Name(want), tr.Type, want)
		case tr.Type == api.TransformTypeHostHeaderRewrite:
			tr.HostHeaderRewriteConfig = x.rewriteConfig(t, want)
		default:
			tr.URLRewriteConfig = x.rewriteConfig(t, want)
		}
		out = append(out, tr)
	}
	return out
}

// rewriteConfig reads name.Rewrites.member.N: exactly one rewrite, with its Regex and its
// Replace (which may be empty: the match is removed).
func (x *exchange) rewriteConfig(t query.View, name string) *api.RewriteConfig {
	c := &api.RewriteConfig{}
	rs := t.MemberStructs(name + ".Rewrites")
	for _, r := range rs {
		rw := api.RegexRewrite{Regex: r.Required("Regex")}
		var ok bool
		if rw.Replace, ok = r.String("Replace"); !ok {
			r.Required("Replace")
		}
		c.Rewrites = append(c.Rewrites, rw)
	}
	if len(rs) != 1 && x.params.Err() == nil {
		x.params.Fail(api.CodeValidationError, "%s.Rewrites has %d rewrites: a transform takes exactly one (Rewrites.member.1.Regex and .Replace)", t.Name(name), len(rs))
	}
	return c
}

// priority reads a rule's priority (1..50000) from name.
func (x *exchange) priority(v query.View, name string) int {
	p, ok := v.Int(name)
	if ok && (p < 1 || p > 50000) {
		x.params.Fail(api.CodeValidationError, "%s %d must be between 1 and 50000", v.Name(name), p)
	} else if !ok {
		v.Required(name)
	}
	return p
}

func elbCreateRule(x *exchange, v query.View) (any, error) {
	req := &api.CreateRuleRequest{
		ListenerID: x.arn(v, "ListenerArn", arnListener), Priority: x.priority(v, "Priority"),
		Conditions: x.elbConditions(v), Actions: x.elbActions(v, "Actions"), Transforms: x.elbTransforms(v),
	}
	x.noRuleTags(v)
	resp, err := call[api.CreateRuleResponse](x, api.ActionCreateRule, req)
	if err != nil {
		return nil, err
	}
	return x.rulesXML([]api.Rule{resp.Rule}, ""), nil
}

// noRuleTags refuses Tags on a rule: fakecloud's rules have none.
func (x *exchange) noRuleTags(v query.View) {
	if v.Has("Tags") {
		elbTags(v)
		x.params.Fail(api.CodeValidationError, "rule tags are not supported: tag the load balancer or the target group")
	}
}

func elbModifyRule(x *exchange, v query.View) (any, error) {
	req := &api.ModifyRuleRequest{RuleID: x.arn(v, "RuleArn", arnRule), Conditions: x.elbConditions(v), Actions: x.elbActions(v, "Actions"), Transforms: x.elbTransforms(v)}
	req.ResetTransforms, _ = v.Bool("ResetTransforms")
	if req.ResetTransforms && len(req.Transforms) > 0 && x.params.Err() == nil {
		x.params.Fail(api.CodeValidationError, "give Transforms or ResetTransforms=true, not both: Transforms replace the rule's transforms, ResetTransforms removes them")
	}
	resp, err := call[api.ModifyRuleResponse](x, api.ActionModifyRule, req)
	if err != nil {
		return nil, err
	}
	return x.rulesXML([]api.Rule{resp.Rule}, ""), nil
}

func elbDeleteRule(x *exchange, v query.View) (any, error) {
	req := &api.DeleteRuleRequest{RuleID: x.arn(v, "RuleArn", arnRule)}
	if _, err := call[api.DeleteRuleResponse](x, api.ActionDeleteRule, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

// elbDescribeRules lists a listener's rules by priority and then its default rule, or the
// named rules; Marker is the position to go on from.
func elbDescribeRules(x *exchange, v query.View) (any, error) {
	ids, _ := x.arns(v, "RuleArns", arnRule)
	req := &api.DescribeRulesRequest{RuleIDs: ids}
	if _, ok := v.String("ListenerArn"); ok {
		req.ListenerID = x.arn(v, "ListenerArn", arnListener)
	}
	if (req.ListenerID == "") == (len(ids) == 0) && x.params.Err() == nil {
		x.params.Fail(api.CodeValidationError, "give either ListenerArn or RuleArns")
	}
	size, marker := elbPage(x, v)
	from := 0
	if marker != "" {
		n, err := strconv.Atoi(marker)
		if err != nil || n < 0 {
			x.params.Fail(api.CodeValidationError, "Marker %q is not one fakecloud gave", truncate(marker, 40))
		}
		from = n
	}
	resp, err := call[api.DescribeRulesResponse](x, api.ActionDescribeRules, req)
	if err != nil {
		return nil, err
	}
	rules := resp.Rules[min(from, len(resp.Rules)):]
	next := ""
	if size > 0 && len(rules) > size {
		rules, next = rules[:size], strconv.Itoa(from+size)
	}
	return x.rulesXML(rules, next), nil
}

func elbSetRulePriorities(x *exchange, v query.View) (any, error) {
	req := &api.SetRulePrioritiesRequest{}
	for _, p := range v.MemberStructs("RulePriorities") {
		req.RulePriorities = append(req.RulePriorities, api.RulePriorityPair{RuleID: x.arn(p, "RuleArn", arnRule), Priority: x.priority(p, "Priority")})
	}
	if len(req.RulePriorities) == 0 && x.params.Err() == nil {
		x.params.Fail(api.CodeValidationError, "RulePriorities: give at least one rule and its priority")
	}
	resp, err := call[api.SetRulePrioritiesResponse](x, api.ActionSetRulePriorities, req)
	if err != nil {
		return nil, err
	}
	return x.rulesXML(resp.Rules, ""), nil
}

func (x *exchange) rulesXML(rules []api.Rule, next string) *rulesResult {
	var refs []string
	for i := range rules {
		refs = append(refs, rules[i].LoadBalancerID)
		refs = append(refs, actionRefs(rules[i].Actions)...)
	}
	names := x.names(refs)
	out := &rulesResult{Rules: members[elbRule]{Items: []elbRule{}}, NextMarker: next}
	for i := range rules {
		out.Rules.Items = append(out.Rules.Items, x.ruleXML(&rules[i], names))
	}
	return out
}
