package deploy

import (
	"fmt"
	"strings"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
)

// RefusedRules takes out of alb the rules the cloud behind p cannot express, as its driver's
// providers.CheckRule answers before any call (ELBv2 has no header changes, rewrites,
// mirrors, timeouts or retries, for one): a route rule is served whole or not at all, so every
// model rule of a route rule the cloud refuses one of goes, on every listener. The answer is
// the model to deploy (alb itself when nothing is refused; a copy otherwise) and one Unserved
// entry per refused route rule, Dropped, with the cloud's reason; a route of which no rule is
// left on the load balancer gets one entry, not Dropped: the route is not served. Rules that no
// route made (a listener's fallback) are never taken out: a cloud refusing one fails the
// deploy, which says so.
func RefusedRules(p any, alb *gateway.ApplicationLoadBalancer) (*gateway.ApplicationLoadBalancer, []Unserved) {
	if alb == nil {
		return nil, nil
	}
	if !providers.CapabilitiesOf(p).RuleLimits {
		return alb, nil // every rule is taken: no rule to convert and ask about
	}
	// The check needs no real target group IDs: the names stand in for them.
	ids := make(map[string]string, len(alb.TargetGroups))
	for _, tg := range alb.TargetGroups {
		ids[tg.Name] = tg.Name
	}
	refused := map[string]string{} // route rule -> the cloud's reason
	var order []string
	for _, l := range alb.Listeners {
		for _, r := range l.Rules {
			rr, ok := routeRule(r.Source)
			if !ok {
				continue
			}
			if _, done := refused[rr]; done {
				continue
			}
			spec, err := ruleSpec(r, ids)
			if err == nil {
				err = providers.CheckRule(p, spec)
			}
			if err != nil {
				refused[rr] = err.Error()
				order = append(order, rr)
			}
		}
	}
	if len(refused) == 0 {
		return alb, nil
	}
	out := *alb
	out.Listeners = make([]gateway.HTTPListener, len(alb.Listeners))
	kept := map[string]bool{} // routes with a rule left
	for i, l := range alb.Listeners {
		rules := make([]gateway.Rule, 0, len(l.Rules))
		for _, r := range l.Rules {
			rr, ok := routeRule(r.Source)
			if ok {
				if _, gone := refused[rr]; gone {
					continue
				}
				kept[routeOf(rr)] = true
			}
			r.Priority = len(rules) + 1 // priorities are positions
			rules = append(rules, r)
		}
		l.Rules = rules
		out.Listeners[i] = l
	}
	var unserved []Unserved
	whole := map[string][]string{} // routes none of whose rules is left -> the reasons
	var wholeOrder []string
	for _, rr := range order {
		route := routeOf(rr)
		msg := fmt.Sprintf("%s: %s", strings.TrimPrefix(rr, route+" "), refused[rr])
		if kept[route] {
			unserved = append(unserved, Unserved{Source: rr, Message: msg, Dropped: true})
			continue
		}
		if _, ok := whole[route]; !ok {
			wholeOrder = append(wholeOrder, route)
		}
		whole[route] = append(whole[route], msg)
	}
	for _, route := range wholeOrder {
		unserved = append(unserved, Unserved{Source: route, Message: "the cloud's load balancer cannot express any rule of the route: " + strings.Join(whole[route], "; ")})
	}
	return &out, unserved
}

// routeRule is the route rule a model rule's Source names ("HTTPRoute ns/name rule 0 (name)"),
// without the match ("match 1"); false for a rule no route made.
func routeRule(source string) (string, bool) {
	f := strings.Fields(source)
	if len(f) < 4 || !strings.HasSuffix(f[0], "Route") || f[2] != "rule" {
		return "", false
	}
	if i := strings.LastIndex(source, " match "); i > 0 {
		source = source[:i]
	}
	return source, true
}

// routeOf is the route ("HTTPRoute ns/name") of a route rule.
func routeOf(rr string) string {
	f := strings.SplitN(rr, " ", 3)
	return f[0] + " " + f[1]
}
