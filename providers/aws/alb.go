package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/flatnet/flatnet/providers"
)

// The application load balancer side of the driver: ELBv2's application load balancers, their
// HTTP/HTTPS listeners and rules (alb_rules.go maps rules and actions), and ACM's certificates
// (alb_certs.go). Certificate IDs are ACM ARNs, as every other ID of the driver is an ARN.

var _ providers.ApplicationLoadBalancing = (*LoadBalancing)(nil)

// ListApplicationLoadBalancers implements providers.ApplicationLoadBalancers: every load
// balancer (paged), the application ones' tags, and for those carrying tags their listeners
// with every certificate. One deleted meanwhile is left out.
func (d *LoadBalancing) ListApplicationLoadBalancers(ctx context.Context, tags map[string]string) ([]providers.ApplicationLoadBalancer, error) {
	lbs, err := d.loadBalancers(ctx)
	if err != nil {
		return nil, err
	}
	var arns []string
	for _, lb := range lbs {
		if lb.Type == elbtypes.LoadBalancerTypeEnumApplication {
			arns = append(arns, aws.ToString(lb.LoadBalancerArn))
		}
	}
	tagged, err := d.tagsOf(ctx, arns)
	if err != nil {
		return nil, err
	}
	out := []providers.ApplicationLoadBalancer{}
	for i := range lbs {
		ts, ok := tagged[aws.ToString(lbs[i].LoadBalancerArn)]
		if !ok || !hasTags(ts, tags) {
			continue
		}
		p, err := d.completeALB(ctx, &lbs[i], ts)
		if errors.Is(err, providers.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// loadBalancers describes every load balancer, page by page.
func (d *LoadBalancing) loadBalancers(ctx context.Context) ([]elbtypes.LoadBalancer, error) {
	var lbs []elbtypes.LoadBalancer
	in := &elbv2.DescribeLoadBalancersInput{PageSize: aws.Int32(400)}
	for {
		resp, err := lbCall(ctx, d, "DescribeLoadBalancers", d.c.DescribeLoadBalancers, in)
		if err != nil {
			return nil, err
		}
		lbs = append(lbs, resp.LoadBalancers...)
		if aws.ToString(resp.NextMarker) == "" {
			return lbs, nil
		}
		in.Marker = resp.NextMarker
	}
}

func (d *LoadBalancing) completeALB(ctx context.Context, lb *elbtypes.LoadBalancer, tags []elbtypes.Tag) (providers.ApplicationLoadBalancer, error) {
	n, err := fromLB(lb)
	p := providers.ApplicationLoadBalancer{ID: n.ID, Name: n.Name, Internal: n.Internal, VIP: n.VIP, Tags: fromTags(tags), State: n.State, StateReason: n.StateReason}
	if err != nil {
		return p, err
	}
	in := &elbv2.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn}
	for {
		ls, err := lbCall(ctx, d, "DescribeListeners", d.c.DescribeListeners, in)
		if err != nil {
			return p, err
		}
		for i := range ls.Listeners {
			l, err := d.fromHTTPListener(ctx, &ls.Listeners[i], true)
			if err != nil {
				return p, err
			}
			p.Listeners = append(p.Listeners, l)
		}
		if aws.ToString(ls.NextMarker) == "" {
			return p, nil
		}
		in.Marker = ls.NextMarker
	}
}

// fromHTTPListener reads a listener; with all, an HTTPS listener's certificates beyond the
// default one (which alone ELBv2 shows with the listener) are described too.
func (d *LoadBalancing) fromHTTPListener(ctx context.Context, l *elbtypes.Listener, all bool) (providers.HTTPListener, error) {
	p := providers.HTTPListener{ID: aws.ToString(l.ListenerArn), Protocol: string(l.Protocol), Port: int(aws.ToInt32(l.Port))}
	if len(l.DefaultActions) > 0 {
		a, err := fromELBAction(&l.DefaultActions[0])
		if err != nil {
			return p, fmt.Errorf("listener %s: %w", p.ID, err)
		}
		p.DefaultAction = a
	}
	for _, c := range l.Certificates {
		p.Certificates = append(p.Certificates, aws.ToString(c.CertificateArn))
	}
	if !all || l.Protocol != elbtypes.ProtocolEnumHttps {
		return p, nil
	}
	certs, err := d.listenerCertificates(ctx, p.ID)
	if err != nil {
		return p, err
	}
	p.Certificates = certs
	return p, nil
}

// listenerCertificates are a listener's certificates: the default first, then the others
// sorted.
func (d *LoadBalancing) listenerCertificates(ctx context.Context, id string) ([]string, error) {
	var def string
	var others []string
	in := &elbv2.DescribeListenerCertificatesInput{ListenerArn: aws.String(id)}
	for {
		resp, err := lbCall(ctx, d, "DescribeListenerCertificates", d.c.DescribeListenerCertificates, in)
		if err != nil {
			return nil, err
		}
		for _, c := range resp.Certificates {
			if aws.ToBool(c.IsDefault) {
				def = aws.ToString(c.CertificateArn)
			} else {
				others = append(others, aws.ToString(c.CertificateArn))
			}
		}
		if aws.ToString(resp.NextMarker) == "" {
			break
		}
		in.Marker = resp.NextMarker
	}
	slices.Sort(others)
	if def == "" {
		return others, nil
	}
	return append([]string{def}, others...), nil
}

// CreateApplicationLoadBalancer implements providers.ApplicationLoadBalancers; ELBv2 answers
// the existing load balancer to a create of the same name and settings.
func (d *LoadBalancing) CreateApplicationLoadBalancer(ctx context.Context, spec providers.LoadBalancerSpec) (providers.ApplicationLoadBalancer, error) {
	if spec.Address.IsValid() {
		return providers.ApplicationLoadBalancer{}, invalid(codeUnsupported, "an application load balancer at a chosen address (%s): ELBv2 gives application load balancers no static addresses", spec.Address)
	}
	scheme := elbtypes.LoadBalancerSchemeEnumInternetFacing
	if spec.Internal {
		scheme = elbtypes.LoadBalancerSchemeEnumInternal
	}
	resp, err := lbCall(ctx, d, "CreateLoadBalancer", d.c.CreateLoadBalancer, &elbv2.CreateLoadBalancerInput{
		Name: aws.String(spec.Name), Type: elbtypes.LoadBalancerTypeEnumApplication, Scheme: scheme,
		Subnets: []string{d.subnetID}, IpAddressType: elbtypes.IpAddressTypeIpv4, Tags: toTags(spec.Tags),
	})
	if err != nil {
		return providers.ApplicationLoadBalancer{}, err
	}
	if len(resp.LoadBalancers) != 1 {
		return providers.ApplicationLoadBalancer{}, fmt.Errorf("ELBv2 answered CreateLoadBalancer %s with %d load balancers", spec.Name, len(resp.LoadBalancers))
	}
	n, err := fromLB(&resp.LoadBalancers[0])
	return providers.ApplicationLoadBalancer{ID: n.ID, Name: n.Name, Internal: n.Internal, VIP: n.VIP, Tags: spec.Tags, State: n.State, StateReason: n.StateReason}, err
}

// defaultCertificate is the listener parameter naming the first certificate, if any.
func defaultCertificate(ids []string) []elbtypes.Certificate {
	if len(ids) == 0 {
		return nil
	}
	return []elbtypes.Certificate{{CertificateArn: aws.String(ids[0])}}
}

// CreateHTTPListener implements providers.ApplicationLoadBalancers: the default certificate
// with the listener, the others added after (a crash between the two leaves a listener that
// the next ModifyHTTPListener completes). ELBv2 answers an identical listener that exists.
func (d *LoadBalancing) CreateHTTPListener(ctx context.Context, lbID string, spec providers.HTTPListenerSpec) (providers.HTTPListener, error) {
	if err := listenerUnsupported(spec); err != nil {
		return providers.HTTPListener{}, err
	}
	act, err := toELBAction(spec.DefaultAction)
	if err != nil {
		return providers.HTTPListener{}, err
	}
	resp, err := lbCall(ctx, d, "CreateListener", d.c.CreateListener, &elbv2.CreateListenerInput{
		LoadBalancerArn: aws.String(lbID), Protocol: elbtypes.ProtocolEnum(spec.Protocol), Port: aws.Int32(int32(spec.Port)),
		DefaultActions: []elbtypes.Action{act}, Certificates: defaultCertificate(spec.Certificates),
	})
	if err != nil {
		return providers.HTTPListener{}, err
	}
	if len(resp.Listeners) != 1 {
		return providers.HTTPListener{}, fmt.Errorf("ELBv2 answered CreateListener with %d listeners", len(resp.Listeners))
	}
	l, err := d.fromHTTPListener(ctx, &resp.Listeners[0], false)
	if err != nil || len(spec.Certificates) < 2 {
		return l, err
	}
	if err := d.syncExtraCertificates(ctx, l.ID, spec.Certificates); err != nil {
		return l, err
	}
	l.Certificates = sortedCertificates(spec.Certificates)
	return l, nil
}

// ModifyHTTPListener implements providers.ApplicationLoadBalancers.
func (d *LoadBalancing) ModifyHTTPListener(ctx context.Context, id string, spec providers.HTTPListenerSpec) (providers.HTTPListener, error) {
	if err := listenerUnsupported(spec); err != nil {
		return providers.HTTPListener{}, err
	}
	act, err := toELBAction(spec.DefaultAction)
	if err != nil {
		return providers.HTTPListener{}, err
	}
	resp, err := lbCall(ctx, d, "ModifyListener", d.c.ModifyListener, &elbv2.ModifyListenerInput{
		ListenerArn: aws.String(id), Protocol: elbtypes.ProtocolEnum(spec.Protocol), Port: aws.Int32(int32(spec.Port)),
		DefaultActions: []elbtypes.Action{act}, Certificates: defaultCertificate(spec.Certificates),
	})
	if err != nil {
		return providers.HTTPListener{}, err
	}
	if len(resp.Listeners) != 1 {
		return providers.HTTPListener{}, fmt.Errorf("ELBv2 answered ModifyListener with %d listeners", len(resp.Listeners))
	}
	l, err := d.fromHTTPListener(ctx, &resp.Listeners[0], false)
	if err != nil {
		return l, err
	}
	if spec.Protocol == string(elbtypes.ProtocolEnumHttps) {
		if err := d.syncExtraCertificates(ctx, id, spec.Certificates); err != nil {
			return l, err
		}
	}
	l.Certificates = sortedCertificates(spec.Certificates)
	return l, nil
}

func sortedCertificates(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := slices.Clone(ids)
	slices.Sort(out[1:])
	return out
}

// syncExtraCertificates makes a listener's certificates besides the default want[1:].
func (d *LoadBalancing) syncExtraCertificates(ctx context.Context, id string, want []string) error {
	have, err := d.listenerCertificates(ctx, id)
	if err != nil {
		return err
	}
	var haveExtra, wantExtra []string
	if len(have) > 1 {
		haveExtra = have[1:]
	}
	if len(want) > 1 {
		wantExtra = want[1:]
	}
	var add, remove []elbtypes.Certificate
	for _, c := range wantExtra {
		if !slices.Contains(haveExtra, c) {
			add = append(add, elbtypes.Certificate{CertificateArn: aws.String(c)})
		}
	}
	for _, c := range haveExtra {
		if !slices.Contains(wantExtra, c) {
			remove = append(remove, elbtypes.Certificate{CertificateArn: aws.String(c)})
		}
	}
	if len(remove) > 0 {
		if _, err := lbCall(ctx, d, "RemoveListenerCertificates", d.c.RemoveListenerCertificates,
			&elbv2.RemoveListenerCertificatesInput{ListenerArn: aws.String(id), Certificates: remove}); err != nil {
			return err
		}
	}
	if len(add) > 0 {
		if _, err := lbCall(ctx, d, "AddListenerCertificates", d.c.AddListenerCertificates,
			&elbv2.AddListenerCertificatesInput{ListenerArn: aws.String(id), Certificates: add}); err != nil {
			return err
		}
	}
	return nil
}

// ListRules implements providers.Rules: the listener's rules by priority (paged), without its
// default rule.
func (d *LoadBalancing) ListRules(ctx context.Context, listenerID string) ([]providers.Rule, error) {
	var out []providers.Rule
	in := &elbv2.DescribeRulesInput{ListenerArn: aws.String(listenerID), PageSize: aws.Int32(400)}
	for {
		resp, err := lbCall(ctx, d, "DescribeRules", d.c.DescribeRules, in)
		if err != nil {
			return nil, err
		}
		for i := range resp.Rules {
			if aws.ToBool(resp.Rules[i].IsDefault) {
				continue
			}
			r, err := fromELBRule(&resp.Rules[i])
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		if aws.ToString(resp.NextMarker) == "" {
			break
		}
		in.Marker = resp.NextMarker
	}
	slices.SortFunc(out, func(a, b providers.Rule) int { return a.Priority - b.Priority })
	return out, nil
}

func fromELBRule(r *elbtypes.Rule) (providers.Rule, error) {
	id := aws.ToString(r.RuleArn)
	prio, err := strconv.Atoi(aws.ToString(r.Priority))
	if err != nil {
		return providers.Rule{}, fmt.Errorf("rule %s has the priority %q, not a number", id, aws.ToString(r.Priority))
	}
	p := providers.Rule{ID: id, Priority: prio}
	if p.Conditions, err = fromELBConditions(r.Conditions); err != nil {
		return p, fmt.Errorf("rule %s: %w", id, err)
	}
	if len(r.Actions) > 0 {
		if p.Action, err = fromELBAction(&r.Actions[0]); err != nil {
			return p, fmt.Errorf("rule %s: %w", id, err)
		}
	}
	if p.Action.Rewrite, err = fromELBTransforms(r.Transforms, p.Conditions.Path); err != nil {
		return p, fmt.Errorf("rule %s: %w", id, err)
	}
	return p, nil
}

// oneRule reads the one rule of an answer.
func oneRule(op string, rules []elbtypes.Rule) (providers.Rule, error) {
	if len(rules) != 1 {
		return providers.Rule{}, fmt.Errorf("ELBv2 answered %s with %d rules", op, len(rules))
	}
	return fromELBRule(&rules[0])
}

// CreateRule implements providers.Rules (ELBv2's PriorityInUse is providers.ErrConflict).
func (d *LoadBalancing) CreateRule(ctx context.Context, listenerID string, spec providers.RuleSpec) (providers.Rule, error) {
	conds, act, ts, err := toELBRule(spec)
	if err != nil {
		return providers.Rule{}, err
	}
	resp, err := lbCall(ctx, d, "CreateRule", d.c.CreateRule, &elbv2.CreateRuleInput{
		ListenerArn: aws.String(listenerID), Priority: aws.Int32(int32(spec.Priority)), Conditions: conds, Actions: []elbtypes.Action{act}, Transforms: ts,
	})
	if err != nil {
		return providers.Rule{}, err
	}
	return oneRule("CreateRule", resp.Rules)
}

// ModifyRule implements providers.Rules: the rule's transforms are replaced, or reset when
// spec has no rewrite (ELBv2 keeps them when none are given).
func (d *LoadBalancing) ModifyRule(ctx context.Context, id string, spec providers.RuleSpec) (providers.Rule, error) {
	conds, act, ts, err := toELBRule(spec)
	if err != nil {
		return providers.Rule{}, err
	}
	in := &elbv2.ModifyRuleInput{RuleArn: aws.String(id), Conditions: conds, Actions: []elbtypes.Action{act}, Transforms: ts}
	if len(ts) == 0 {
		in.ResetTransforms = aws.Bool(true)
	}
	resp, err := lbCall(ctx, d, "ModifyRule", d.c.ModifyRule, in)
	if err != nil {
		return providers.Rule{}, err
	}
	return oneRule("ModifyRule", resp.Rules)
}

// DeleteRule implements providers.Rules; a rule already gone is done.
func (d *LoadBalancing) DeleteRule(ctx context.Context, id string) error {
	_, err := lbCall(ctx, d, "DeleteRule", d.c.DeleteRule, &elbv2.DeleteRuleInput{RuleArn: aws.String(id)})
	return goneOK(err)
}

// SetRulePriorities implements providers.Rules: one SetRulePriorities, which ELBv2 applies
// all at once.
func (d *LoadBalancing) SetRulePriorities(ctx context.Context, priorities map[string]int) error {
	if len(priorities) == 0 {
		return nil
	}
	ids := make([]string, 0, len(priorities))
	for id := range priorities {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	pairs := make([]elbtypes.RulePriorityPair, 0, len(ids))
	for _, id := range ids {
		pairs = append(pairs, elbtypes.RulePriorityPair{RuleArn: aws.String(id), Priority: aws.Int32(int32(priorities[id]))})
	}
	_, err := lbCall(ctx, d, "SetRulePriorities", d.c.SetRulePriorities, &elbv2.SetRulePrioritiesInput{RulePriorities: pairs})
	return err
}

// passthroughUnsupported refuses TLS-passthrough, TCP and UDP listeners: an ELBv2 application
// load balancer serves HTTP and HTTPS only (those need a network load balancer there).
func passthroughUnsupported(protocol string) error {
	if protocol == providers.ProtocolTLS || protocol == providers.ProtocolTCP || protocol == providers.ProtocolUDP {
		return unsupported("%s listeners on an application load balancer (ELBv2 serves TLS, TCP and UDP on network load balancers only)", protocol)
	}
	return nil
}

// listenerUnsupported refuses what ELBv2 listeners cannot be: TLS-passthrough, TCP and UDP
// listeners on an application load balancer, and hostname scopes; and what the driver does not
// set up yet: client certificate validation.
func listenerUnsupported(spec providers.HTTPListenerSpec) error {
	if len(spec.HostnameScopes) > 0 {
		return unsupported("hostname scopes on a listener (ELBv2 has no such setting, so it cannot answer 421 to misdirected requests)")
	}
	if spec.ClientValidation != nil {
		return invalid(codeUnsupported, "client certificate validation on %s listener %d: ELBv2 has it (mutual authentication with a trust store), but the AWS driver does not manage trust stores yet", spec.Protocol, spec.Port)
	}
	return passthroughUnsupported(spec.Protocol)
}

// Capabilities: ELBv2 application load balancers serve HTTP and HTTPS only, so a Gateway's
// TLS-passthrough, TCP and UDP listeners go on a network load balancer; they have no hostname
// scopes.
func (d *LoadBalancing) Capabilities() providers.Capabilities {
	return providers.Capabilities{L4OnApplicationLB: false, RuleLimits: true}
}

// CheckRule answers what CreateRule would refuse of spec before any call: the rule features
// ELBv2 lacks (alb_rules.go).
func (d *LoadBalancing) CheckRule(spec providers.RuleSpec) error {
	_, _, _, err := toELBRule(spec)
	return err
}
