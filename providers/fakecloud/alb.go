package fakecloud

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/providers"
)

var _ providers.ApplicationLoadBalancing = (*LoadBalancing)(nil)

// ListApplicationLoadBalancers implements providers.ApplicationLoadBalancers.
func (d *LoadBalancing) ListApplicationLoadBalancers(ctx context.Context, tags map[string]string) ([]providers.ApplicationLoadBalancer, error) {
	resp, err := do(d, api.ActionDescribeLoadBalancers, func() (*api.DescribeLoadBalancersResponse, error) {
		return d.c.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{
			Filters: append(tagFilters(tags), api.Filter{Name: "type", Values: []string{api.LoadBalancerTypeApplication}})})
	})
	if err != nil {
		return nil, err
	}
	out := make([]providers.ApplicationLoadBalancer, 0, len(resp.LoadBalancers))
	for _, lb := range resp.LoadBalancers {
		ls, err := do(d, api.ActionDescribeListeners, func() (*api.DescribeListenersResponse, error) {
			return d.c.DescribeListeners(ctx, &api.DescribeListenersRequest{LoadBalancerID: lb.LoadBalancerID})
		})
		if errors.Is(err, providers.ErrNotFound) {
			continue // deleted between the two calls: gone
		}
		if err != nil {
			return nil, err
		}
		p, err := fromALB(lb)
		if err != nil {
			return nil, err
		}
		for _, l := range ls.Listeners {
			p.Listeners = append(p.Listeners, fromHTTPListener(l))
		}
		out = append(out, p)
	}
	return out, nil
}

func fromALB(lb api.LoadBalancer) (providers.ApplicationLoadBalancer, error) {
	n, err := fromLB(lb)
	return providers.ApplicationLoadBalancer{
		ID: n.ID, Name: n.Name, Internal: n.Internal, VIP: n.VIP, Tags: n.Tags, State: n.State, StateReason: n.StateReason,
	}, err
}

// CreateApplicationLoadBalancer implements providers.ApplicationLoadBalancers.
func (d *LoadBalancing) CreateApplicationLoadBalancer(ctx context.Context, spec providers.LoadBalancerSpec) (providers.ApplicationLoadBalancer, error) {
	scheme := api.SchemeInternetFacing
	if spec.Internal {
		scheme = api.SchemeInternal
	}
	resp, err := do(d, api.ActionCreateLoadBalancer, func() (*api.CreateLoadBalancerResponse, error) {
		req := &api.CreateLoadBalancerRequest{
			Name: spec.Name, Scheme: scheme, Type: api.LoadBalancerTypeApplication, SubnetID: d.subnetID,
			Tags: toTags(spec.Tags), ClientToken: spec.ClientToken,
		}
		requestAddress(req, spec)
		return d.c.CreateLoadBalancer(ctx, req)
	})
	if err != nil {
		return providers.ApplicationLoadBalancer{}, err
	}
	return fromALB(resp.LoadBalancer)
}

func fromHTTPListener(l api.Listener) providers.HTTPListener {
	p := providers.HTTPListener{ID: l.ListenerID, Protocol: l.Protocol, Port: l.Port}
	if len(l.DefaultActions) > 0 {
		p.DefaultAction = fromAction(l.DefaultActions[0])
	}
	p.Certificates = certIDs(l.Certificates)
	p.HostnameScopes = l.HostnameScopes
	if m := l.MutualAuthentication; m != nil {
		p.ClientValidation = &providers.ClientValidation{Verify: m.Mode == api.MutualAuthenticationVerify}
		if m.CACertificatesPEM != "" {
			p.ClientValidation.CAPEM = []byte(m.CACertificatesPEM)
		}
	}
	return p
}

// toMutualAuthentication is a listener's ClientValidation as fakecloud's MutualAuthentication
// (nil for none).
func toMutualAuthentication(v *providers.ClientValidation) *api.MutualAuthentication {
	if v == nil {
		return nil
	}
	m := &api.MutualAuthentication{Mode: api.MutualAuthenticationPassthrough, CACertificatesPEM: string(v.CAPEM)}
	if v.Verify {
		m.Mode = api.MutualAuthenticationVerify
	}
	return m
}

// certIDs lists a listener's certificates, the default first, then the others sorted.
func certIDs(cs []api.ListenerCertificate) []string {
	var def string
	var others []string
	for _, c := range cs {
		if c.IsDefault {
			def = c.CertificateID
		} else {
			others = append(others, c.CertificateID)
		}
	}
	if def == "" && len(others) == 0 {
		return nil
	}
	slices.Sort(others)
	if def == "" { // fakecloud always marks one; keep the order it gave otherwise
		return others
	}
	return append([]string{def}, others...)
}

// CreateHTTPListener implements providers.ApplicationLoadBalancers: the default certificate
// with the listener, the others added after (a crash between the two leaves a listener that
// the next ModifyHTTPListener completes).
func (d *LoadBalancing) CreateHTTPListener(ctx context.Context, lbID string, spec providers.HTTPListenerSpec) (providers.HTTPListener, error) {
	req := &api.CreateListenerRequest{
		LoadBalancerID: lbID, Protocol: spec.Protocol, Port: spec.Port, ClientToken: spec.ClientToken,
		DefaultActions: listenerDefault(spec), HostnameScopes: spec.HostnameScopes, MutualAuthentication: toMutualAuthentication(spec.ClientValidation),
	}
	if len(spec.Certificates) > 0 {
		req.Certificates = []api.ListenerCertificate{{CertificateID: spec.Certificates[0]}}
	}
	resp, err := do(d, api.ActionCreateListener, func() (*api.CreateListenerResponse, error) { return d.c.CreateListener(ctx, req) })
	if err != nil {
		return providers.HTTPListener{}, err
	}
	l := fromHTTPListener(resp.Listener)
	if len(spec.Certificates) > 1 {
		if err := d.syncExtraCertificates(ctx, l.ID, l.Certificates, spec.Certificates); err != nil {
			return l, err
		}
		l.Certificates = sortedCertificates(spec.Certificates)
	}
	return l, nil
}

// ModifyHTTPListener implements providers.ApplicationLoadBalancers.
func (d *LoadBalancing) ModifyHTTPListener(ctx context.Context, id string, spec providers.HTTPListenerSpec) (providers.HTTPListener, error) {
	req := &api.ModifyListenerRequest{
		ListenerID: id, Protocol: spec.Protocol, Port: spec.Port, DefaultActions: listenerDefault(spec),
	}
	if spec.Protocol == api.ProtocolHTTPS {
		scopes := slices.Clone(spec.HostnameScopes)
		if scopes == nil {
			scopes = []string{} // the spec is the whole listener: none means none
		}
		req.HostnameScopes = &scopes
		req.MutualAuthentication = toMutualAuthentication(spec.ClientValidation)
		if req.MutualAuthentication == nil {
			req.MutualAuthentication = &api.MutualAuthentication{Mode: "off"} // none means none, as for scopes
		}
	} else if spec.ClientValidation != nil {
		req.MutualAuthentication = toMutualAuthentication(spec.ClientValidation) // fakecloud names what is wrong
	}
	if len(spec.Certificates) > 0 {
		req.Certificates = []api.ListenerCertificate{{CertificateID: spec.Certificates[0]}}
	}
	resp, err := do(d, api.ActionModifyListener, func() (*api.ModifyListenerResponse, error) { return d.c.ModifyListener(ctx, req) })
	if err != nil {
		return providers.HTTPListener{}, err
	}
	l := fromHTTPListener(resp.Listener)
	if err := d.syncExtraCertificates(ctx, id, l.Certificates, spec.Certificates); err != nil {
		return l, err
	}
	l.Certificates = sortedCertificates(spec.Certificates)
	return l, nil
}

func sortedCertificates(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := append([]string{ids[0]}, ids[1:]...)
	slices.Sort(out[1:])
	return out
}

// syncExtraCertificates makes a listener's non-default certificates want[1:], given have
// (the listener as fakecloud answered, its default first).
func (d *LoadBalancing) syncExtraCertificates(ctx context.Context, id string, have, want []string) error {
	var haveExtra, wantExtra []string
	if len(have) > 1 {
		haveExtra = have[1:]
	}
	if len(want) > 1 {
		wantExtra = want[1:]
	}
	var add, remove []api.ListenerCertificate
	for _, c := range wantExtra {
		if !slices.Contains(haveExtra, c) {
			add = append(add, api.ListenerCertificate{CertificateID: c})
		}
	}
	for _, c := range haveExtra {
		if !slices.Contains(wantExtra, c) {
			remove = append(remove, api.ListenerCertificate{CertificateID: c})
		}
	}
	if len(remove) > 0 {
		if _, err := do(d, api.ActionRemoveListenerCertificates, func() (*api.RemoveListenerCertificatesResponse, error) {
			return d.c.RemoveListenerCertificates(ctx, &api.RemoveListenerCertificatesRequest{ListenerID: id, Certificates: remove})
		}); err != nil {
			return err
		}
	}
	if len(add) > 0 {
		if _, err := do(d, api.ActionAddListenerCertificates, func() (*api.AddListenerCertificatesResponse, error) {
			return d.c.AddListenerCertificates(ctx, &api.AddListenerCertificatesRequest{ListenerID: id, Certificates: add})
		}); err != nil {
			return err
		}
	}
	return nil
}

// ListRules implements providers.Rules.
func (d *LoadBalancing) ListRules(ctx context.Context, listenerID string) ([]providers.Rule, error) {
	resp, err := do(d, api.ActionDescribeRules, func() (*api.DescribeRulesResponse, error) {
		return d.c.DescribeRules(ctx, &api.DescribeRulesRequest{ListenerID: listenerID})
	})
	if err != nil {
		return nil, err
	}
	var out []providers.Rule
	for _, r := range resp.Rules {
		if !r.IsDefault {
			out = append(out, fromRule(r))
		}
	}
	return out, nil
}

// CreateRule implements providers.Rules.
func (d *LoadBalancing) CreateRule(ctx context.Context, listenerID string, spec providers.RuleSpec) (providers.Rule, error) {
	resp, err := do(d, api.ActionCreateRule, func() (*api.CreateRuleResponse, error) {
		return d.c.CreateRule(ctx, &api.CreateRuleRequest{
			ListenerID: listenerID, Priority: spec.Priority, Conditions: toConditions(spec.Conditions),
			Actions: []api.Action{toAction(spec.Action)}, ClientToken: spec.ClientToken,
		})
	})
	if err != nil {
		return providers.Rule{}, err
	}
	return fromRule(resp.Rule), nil
}

// ModifyRule implements providers.Rules.
func (d *LoadBalancing) ModifyRule(ctx context.Context, id string, spec providers.RuleSpec) (providers.Rule, error) {
	resp, err := do(d, api.ActionModifyRule, func() (*api.ModifyRuleResponse, error) {
		return d.c.ModifyRule(ctx, &api.ModifyRuleRequest{
			RuleID: id, Conditions: toConditions(spec.Conditions), Actions: []api.Action{toAction(spec.Action)},
		})
	})
	if err != nil {
		return providers.Rule{}, err
	}
	return fromRule(resp.Rule), nil
}

// DeleteRule implements providers.Rules; a rule already gone is done.
func (d *LoadBalancing) DeleteRule(ctx context.Context, id string) error {
	_, err := do(d, api.ActionDeleteRule, func() (*api.DeleteRuleResponse, error) {
		return d.c.DeleteRule(ctx, &api.DeleteRuleRequest{RuleID: id})
	})
	return gone(err)
}

// SetRulePriorities implements providers.Rules.
func (d *LoadBalancing) SetRulePriorities(ctx context.Context, priorities map[string]int) error {
	if len(priorities) == 0 {
		return nil
	}
	pairs := make([]api.RulePriorityPair, 0, len(priorities))
	for _, id := range sortedKeysInt(priorities) {
		pairs = append(pairs, api.RulePriorityPair{RuleID: id, Priority: priorities[id]})
	}
	_, err := do(d, api.ActionSetRulePriorities, func() (*api.SetRulePrioritiesResponse, error) {
		return d.c.SetRulePriorities(ctx, &api.SetRulePrioritiesRequest{RulePriorities: pairs})
	})
	return err
}

func sortedKeysInt(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ListCertificates implements providers.Certificates. fakecloud describes certificates by ID
// only, so the tags are matched here.
func (d *LoadBalancing) ListCertificates(ctx context.Context, tags map[string]string) ([]providers.Certificate, error) {
	resp, err := do(d, api.ActionDescribeCertificates, func() (*api.DescribeCertificatesResponse, error) {
		return d.c.DescribeCertificates(ctx, &api.DescribeCertificatesRequest{})
	})
	if err != nil {
		return nil, err
	}
	var out []providers.Certificate
	for _, c := range resp.Certificates {
		p := fromCertificate(c)
		if hasTags(p.Tags, tags) {
			out = append(out, p)
		}
	}
	return out, nil
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func fromCertificate(c api.Certificate) providers.Certificate {
	names := slices.Clone(c.SubjectAlternativeNames)
	if len(names) == 0 && c.DomainName != "" {
		names = []string{c.DomainName}
	}
	return providers.Certificate{ID: c.CertificateID, DNSNames: names, NotAfter: c.NotAfter, Tags: fromTags(c.Tags), InUseBy: c.InUseBy}
}

// ImportCertificate implements providers.Certificates.
func (d *LoadBalancing) ImportCertificate(ctx context.Context, spec providers.CertificateSpec) (providers.Certificate, error) {
	resp, err := do(d, api.ActionImportCertificate, func() (*api.ImportCertificateResponse, error) {
		return d.c.ImportCertificate(ctx, &api.ImportCertificateRequest{
			Certificate: string(spec.CertificatePEM), PrivateKey: string(spec.PrivateKeyPEM),
			Tags: toTags(spec.Tags), ClientToken: spec.ClientToken,
		})
	})
	if err != nil {
		return providers.Certificate{}, err
	}
	return fromCertificate(resp.Certificate), nil
}

// DeleteCertificate implements providers.Certificates; one already gone is done.
func (d *LoadBalancing) DeleteCertificate(ctx context.Context, id string) error {
	_, err := do(d, api.ActionDeleteCertificate, func() (*api.DeleteCertificateResponse, error) {
		return d.c.DeleteCertificate(ctx, &api.DeleteCertificateRequest{CertificateID: id})
	})
	return gone(err)
}

// --- rules and actions, seam <-> fakecloud

func toConditions(c providers.RuleConditions) []api.RuleCondition {
	var out []api.RuleCondition
	if len(c.Hosts) > 0 {
		out = append(out, api.RuleCondition{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: c.Hosts}})
	}
	if c.Path != nil {
		out = append(out, api.RuleCondition{Field: api.ConditionPathPattern,
			PathPatternConfig: &api.PathPatternConditionConfig{Values: []string{c.Path.Value}, MatchType: c.Path.Type}})
	}
	if c.Method != "" {
		out = append(out, api.RuleCondition{Field: api.ConditionHTTPRequestMethod,
			HTTPRequestMethodConfig: &api.HTTPRequestMethodConditionConfig{Values: []string{c.Method}}})
	}
	for _, h := range c.Headers {
		out = append(out, api.RuleCondition{Field: api.ConditionHTTPHeader,
			HTTPHeaderConfig: &api.HTTPHeaderConditionConfig{HTTPHeaderName: h.Name, Values: []string{h.Value}, MatchType: h.Type}})
	}
	for _, q := range c.Query {
		out = append(out, api.RuleCondition{Field: api.ConditionQueryString,
			QueryStringConfig: &api.QueryStringConditionConfig{Values: []api.QueryStringKeyValue{{Key: q.Name, Value: q.Value}}, MatchType: q.Type}})
	}
	return out
}

// fromConditions reads conditions back; a condition with several values (not written by
// toConditions) keeps its first, so that a rule someone else changed reads as different.
func fromConditions(cs []api.RuleCondition) providers.RuleConditions {
	var c providers.RuleConditions
	for _, rc := range cs {
		switch {
		case rc.HostHeaderConfig != nil:
			c.Hosts = append(c.Hosts, rc.HostHeaderConfig.Values...)
		case rc.PathPatternConfig != nil && len(rc.PathPatternConfig.Values) > 0:
			t := rc.PathPatternConfig.MatchType
			if t == "" {
				t = api.MatchTypeExact
			}
			c.Path = &providers.StringMatch{Type: t, Value: rc.PathPatternConfig.Values[0]}
		case rc.HTTPRequestMethodConfig != nil && len(rc.HTTPRequestMethodConfig.Values) > 0:
			c.Method = rc.HTTPRequestMethodConfig.Values[0]
		case rc.HTTPHeaderConfig != nil && len(rc.HTTPHeaderConfig.Values) > 0:
			c.Headers = append(c.Headers, providers.StringMatch{Name: rc.HTTPHeaderConfig.HTTPHeaderName,
				Type: orExact(rc.HTTPHeaderConfig.MatchType), Value: rc.HTTPHeaderConfig.Values[0]})
		case rc.QueryStringConfig != nil && len(rc.QueryStringConfig.Values) > 0:
			kv := rc.QueryStringConfig.Values[0]
			c.Query = append(c.Query, providers.StringMatch{Name: kv.Key, Type: orExact(rc.QueryStringConfig.MatchType), Value: kv.Value})
		}
	}
	return c
}

func orExact(t string) string {
	if t == "" {
		return api.MatchTypeExact
	}
	return t
}

func fromRule(r api.Rule) providers.Rule {
	p := providers.Rule{ID: r.RuleID, Priority: r.Priority, Conditions: fromConditions(r.Conditions)}
	if len(r.Actions) > 0 {
		p.Action = fromAction(r.Actions[0])
	}
	return p
}

// listenerDefault is a listener's default actions: none for a TLS-passthrough listener
// without a default forward (it refuses what no rule takes).
func listenerDefault(spec providers.HTTPListenerSpec) []api.Action {
	if spec.Protocol == providers.ProtocolTLS && len(spec.DefaultAction.Forward) == 0 {
		return nil
	}
	return []api.Action{toAction(spec.DefaultAction)}
}

func toAction(a providers.RuleAction) api.Action {
	out := api.Action{
		RequestHeaderModifications:  toHeaders(a.RequestHeaders),
		ResponseHeaderModifications: toHeaders(a.ResponseHeaders),
		TLSPassthrough:              a.TLSPassthrough,
	}
	if c := a.CORS; c != nil {
		out.CorsConfig = &api.CorsConfig{AllowOrigins: slices.Clone(c.AllowOrigins), AllowMethods: slices.Clone(c.AllowMethods), AllowHeaders: slices.Clone(c.AllowHeaders),
			ExposeHeaders: slices.Clone(c.ExposeHeaders), AllowCredentials: c.AllowCredentials, MaxAgeSeconds: int(c.MaxAge / time.Second)}
	}
	switch {
	case a.Redirect != nil:
		r := a.Redirect
		out.Type = api.ActionTypeRedirect
		out.RedirectConfig = &api.RedirectActionConfig{Protocol: r.Scheme, Host: r.Host, Port: r.Port,
			PathModification: toPathMod(r.Path), StatusCode: "HTTP_" + strconv.Itoa(r.StatusCode)}
	case a.FixedResponse != nil:
		out.Type = api.ActionTypeFixedResponse
		out.FixedResponseConfig = &api.FixedResponseActionConfig{StatusCode: strconv.Itoa(a.FixedResponse.StatusCode), MessageBody: a.FixedResponse.Body}
		if a.FixedResponse.Body != "" {
			out.FixedResponseConfig.ContentType = "text/plain"
		}
	default:
		out.Type = api.ActionTypeForward
		out.ForwardConfig = &api.ForwardActionConfig{}
		for _, g := range a.Forward {
			w := g.Weight
			out.ForwardConfig.TargetGroups = append(out.ForwardConfig.TargetGroups, api.TargetGroupTuple{
				TargetGroupID: g.TargetGroupID, Weight: &w,
				RequestHeaderModifications: toHeaders(g.RequestHeaders), ResponseHeaderModifications: toHeaders(g.ResponseHeaders),
			})
		}
		if a.Rewrite != nil {
			out.URLRewriteConfig = &api.URLRewriteConfig{Host: a.Rewrite.Host, PathModification: toPathMod(a.Rewrite.Path)}
		}
		for _, m := range a.Mirrors {
			pct := m.Percent
			out.RequestMirrors = append(out.RequestMirrors, api.RequestMirrorConfig{TargetGroupID: m.TargetGroupID, Percent: &pct})
		}
		if a.RequestTimeout > 0 || a.BackendTimeout > 0 {
			out.TimeoutConfig = &api.TimeoutConfig{RequestMillis: int(a.RequestTimeout / time.Millisecond), BackendRequestMillis: int(a.BackendTimeout / time.Millisecond)}
		}
		if r := a.Retry; r != nil {
			out.RetryConfig = &api.RetryConfig{Codes: slices.Clone(r.Codes), Attempts: r.Attempts, BackoffMillis: int(r.Backoff / time.Millisecond)}
		}
	}
	return out
}

func fromAction(a api.Action) providers.RuleAction {
	out := providers.RuleAction{
		RequestHeaders:  fromHeaders(a.RequestHeaderModifications),
		ResponseHeaders: fromHeaders(a.ResponseHeaderModifications),
		TLSPassthrough:  a.TLSPassthrough,
	}
	if c := a.CorsConfig; c != nil {
		out.CORS = &providers.CORS{AllowOrigins: slices.Clone(c.AllowOrigins), AllowMethods: slices.Clone(c.AllowMethods), AllowHeaders: slices.Clone(c.AllowHeaders),
			ExposeHeaders: slices.Clone(c.ExposeHeaders), AllowCredentials: c.AllowCredentials, MaxAge: time.Duration(c.MaxAgeSeconds) * time.Second}
	}
	switch a.Type {
	case api.ActionTypeRedirect:
		if r := a.RedirectConfig; r != nil {
			code, _ := strconv.Atoi(strings.TrimPrefix(r.StatusCode, "HTTP_"))
			out.Redirect = &providers.Redirect{Scheme: r.Protocol, Host: r.Host, Port: r.Port, Path: fromPathMod(r.PathModification), StatusCode: code}
			if r.Path != "" && out.Redirect.Path == nil {
				out.Redirect.Path = &providers.PathModifier{Type: providers.ReplaceFullPath, Value: r.Path}
			}
		}
	case api.ActionTypeFixedResponse:
		if f := a.FixedResponseConfig; f != nil {
			code, _ := strconv.Atoi(f.StatusCode)
			out.FixedResponse = &providers.FixedResponse{StatusCode: code, Body: f.MessageBody}
		}
	default:
		if a.ForwardConfig != nil {
			for _, g := range a.ForwardConfig.TargetGroups {
				w := 1
				if g.Weight != nil {
					w = *g.Weight
				}
				out.Forward = append(out.Forward, providers.WeightedTargetGroup{TargetGroupID: g.TargetGroupID, Weight: w,
					RequestHeaders: fromHeaders(g.RequestHeaderModifications), ResponseHeaders: fromHeaders(g.ResponseHeaderModifications)})
			}
		} else if a.TargetGroupID != "" {
			out.Forward = []providers.WeightedTargetGroup{{TargetGroupID: a.TargetGroupID, Weight: 1}}
		}
		if u := a.URLRewriteConfig; u != nil {
			out.Rewrite = &providers.Rewrite{Host: u.Host, Path: fromPathMod(u.PathModification)}
		}
		for _, m := range a.RequestMirrors {
			pct := 100.0
			if m.Percent != nil {
				pct = *m.Percent
			}
			out.Mirrors = append(out.Mirrors, providers.Mirror{TargetGroupID: m.TargetGroupID, Percent: pct})
		}
		if t := a.TimeoutConfig; t != nil {
			out.RequestTimeout = time.Duration(t.RequestMillis) * time.Millisecond
			out.BackendTimeout = time.Duration(t.BackendRequestMillis) * time.Millisecond
		}
		if r := a.RetryConfig; r != nil {
			out.Retry = &providers.Retry{Codes: slices.Clone(r.Codes), Attempts: r.Attempts, Backoff: time.Duration(r.BackoffMillis) * time.Millisecond}
		}
	}
	return out
}

func toPathMod(p *providers.PathModifier) *api.PathModification {
	if p == nil {
		return nil
	}
	return &api.PathModification{Type: p.Type, Value: p.Value}
}

func fromPathMod(p *api.PathModification) *providers.PathModifier {
	if p == nil {
		return nil
	}
	return &providers.PathModifier{Type: p.Type, Value: p.Value}
}

func toHeaders(h *providers.HeaderModifier) *api.HeaderModifications {
	if h == nil {
		return nil
	}
	out := &api.HeaderModifications{Remove: h.Remove}
	for _, s := range h.Set {
		out.Set = append(out.Set, api.HTTPHeader{Name: s.Name, Value: s.Value})
	}
	for _, s := range h.Add {
		out.Add = append(out.Add, api.HTTPHeader{Name: s.Name, Value: s.Value})
	}
	return out
}

func fromHeaders(h *api.HeaderModifications) *providers.HeaderModifier {
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

// Capabilities: fakecloud's application load balancers also serve TLS-passthrough, TCP and UDP
// listeners, their HTTPS listeners take hostname scopes and validate client certificates
// (MutualAuthentication), their HTTPS target groups verify
// their targets when asked (TlsVerification) and present a client certificate to them
// (ClientCertificateId), and a load balancer may be created at an address of the caller's
// choosing.
func (d *LoadBalancing) Capabilities() providers.Capabilities {
	return providers.Capabilities{L4OnApplicationLB: true, HostnameScopes: true, StaticAddresses: true, BackendTLSVerification: true,
		BackendClientCertificates: true, FrontendClientValidation: true}
}
