package fabric

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric/l7"
)

// CertificateSource reads an imported certificate with its private key, for HTTPS listeners.
// *state.Store satisfies it in-process (the key never crosses the API).
type CertificateSource interface {
	CertificateKeyPair(id string) (api.CertificateKeyPair, bool)
}

// albSnapshot adds the application parts to the load-balancer index of a snapshot.
type albSnapshot struct {
	lbSnapshot
	rules map[string][]*api.Rule // by listener, by ascending priority (into the snapshot)
	// accessLogs are the load balancers whose access log is on (api.AttributeAccessLogs).
	accessLogs map[string]bool
}

func indexALBs(snap *api.Snapshot) albSnapshot {
	ix := albSnapshot{lbSnapshot: indexLBs(snap), rules: map[string][]*api.Rule{}, accessLogs: map[string]bool{}}
	for i := range snap.LoadBalancers {
		if lb := &snap.LoadBalancers[i]; lb.AccessLogs {
			ix.accessLogs[lb.LoadBalancerID] = true
		}
	}
	// Each listener's slice sized once: growing them copied 1,000 rules several times a change.
	count := map[string]int{}
	for i := range snap.Rules {
		if r := &snap.Rules[i]; !r.IsDefault {
			count[r.ListenerID]++
		}
	}
	for i := range snap.Rules {
		r := &snap.Rules[i]
		if r.IsDefault {
			continue
		}
		rs := ix.rules[r.ListenerID]
		if rs == nil {
			rs = make([]*api.Rule, 0, count[r.ListenerID])
		}
		ix.rules[r.ListenerID] = append(rs, r)
	}
	// Pointers into the snapshot, sorted: sorting the rules themselves moved 1,000 structs
	// of a hundred bytes and more about each change.
	for _, rs := range ix.rules {
		slices.SortFunc(rs, func(a, b *api.Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	}
	return ix
}

// clientAuth is an HTTPS listener's MutualAuthentication as the engine takes it (nil: no
// client certificate asked for).
func clientAuth(m *api.MutualAuthentication) *l7.ClientAuth {
	if m == nil {
		return nil
	}
	ca := &l7.ClientAuth{Verify: m.Mode == api.MutualAuthenticationVerify}
	if m.CACertificatesPEM != "" {
		ca.CAPEM = []byte(m.CACertificatesPEM)
	}
	return ca
}

// albConfig builds the L7 engine's configuration of an application load balancer from the
// snapshot: each listener's rules by ascending priority, then its default actions as a last
// rule without conditions (none for a TLS listener without default actions); every target group an action names, with its targets' states.
// Certificates are read through certs. It is pure but for certs and revs (nil: every rule
// compiled, without revisions); Apply validates the result.
func albConfig(lbID string, ix albSnapshot, certs CertificateSource, revs *ruleRevisions) (l7.Config, error) {
	var cfg l7.Config
	groups := map[string]bool{}
	listeners := slices.Clone(ix.listeners[lbID])
	slices.SortFunc(listeners, func(a, b api.Listener) int { // 53/TCP before 53/UDP
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	for _, al := range listeners {
		l := l7.Listener{Port: al.Port, Protocol: l7.Protocol(al.Protocol), HostnameScopes: al.HostnameScopes,
			ClientAuth: clientAuth(al.MutualAuthentication), Rules: make([]l7.Rule, 0, len(ix.rules[al.ListenerID])+1)}
		for i, c := range al.Certificates {
			if certs == nil {
				return cfg, fmt.Errorf("listener %s: HTTPS needs certificates, and the fabric has no certificate source", al.ListenerID)
			}
			kp, ok := certs.CertificateKeyPair(c.CertificateID)
			if !ok {
				return cfg, fmt.Errorf("listener %s: certificate %s does not exist", al.ListenerID, c.CertificateID)
			}
			l.Certificates = append(l.Certificates, l7.Certificate{Name: c.CertificateID,
				CertPEM: []byte(kp.CertificatePem), KeyPEM: []byte(kp.PrivateKeyPem), Default: i == 0})
		}
		for _, r := range ix.rules[al.ListenerID] {
			rules, err := revs.rules(r, groups)
			if err != nil {
				return cfg, fmt.Errorf("rule %s: %w", r.RuleID, err)
			}
			l.Rules = append(l.Rules, rules...)
		}
		if len(al.DefaultActions) == 0 && al.Protocol == api.ProtocolTLS {
			cfg.Listeners = append(cfg.Listeners, l) // no default: what no rule takes is refused
			continue
		}
		def, err := albRules(al.ListenerID+"/default", nil, al.DefaultActions, nil, groups)
		if err != nil {
			return cfg, fmt.Errorf("listener %s default actions: %w", al.ListenerID, err)
		}
		l.Rules = append(l.Rules, def...)
		cfg.Listeners = append(cfg.Listeners, l)
	}
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		tg, err := albGroup(id, ix, certs)
		if err != nil {
			return cfg, err
		}
		cfg.TargetGroups = append(cfg.TargetGroups, tg)
	}
	return cfg, nil
}

// ruleRevisions gives the engine's rules of a snapshot's rule, built once while the rule
// keeps its conditions, actions and transforms, with a Revision naming them (l7.Rule.Revision):
// with 1,000 rules, a change to one builds and compiles one. A rule is unchanged when its
// conditions, actions and transforms are the very slices built from before (snapshots share those of an
// unchanged rule, the store's ruleViews, and never change them: Source), or, when they are
// other slices, equal ones (a rule moved by SetRulePriorities, a Source that shares
// nothing). Holding the slices keeps their memory from being reused for another rule's.
// Rules the snapshot no longer holds are forgotten (forget).
type ruleRevisions struct {
	last uint64 // the last revision given
	byID map[string]*revisedRule
}

type revisedRule struct {
	conds      []api.RuleCondition
	actions    []api.Action
	transforms []api.RuleTransform
	rules      []l7.Rule
	groups     []string // the target groups rules name
}

func newRuleRevisions() *ruleRevisions { return &ruleRevisions{byID: map[string]*revisedRule{}} }

// forget drops the rules snap does not hold. (Those of a load balancer a convergence
// skipped, not ready or failing, are kept for when it comes back.)
func (m *ruleRevisions) forget(snap *api.Snapshot) {
	if len(m.byID) == 0 {
		return
	}
	held := make(map[string]bool, len(snap.Rules))
	for i := range snap.Rules {
		held[snap.Rules[i].RuleID] = true
	}
	for id := range m.byID {
		if !held[id] {
			delete(m.byID, id)
		}
	}
}

// rules is albRules for r, from memory when r is unchanged; groups gets the target groups
// the rules name either way.
func (m *ruleRevisions) rules(r *api.Rule, groups map[string]bool) ([]l7.Rule, error) {
	if m == nil {
		return albRules(r.RuleID, r.Conditions, r.Actions, r.Transforms, groups)
	}
	if k := m.byID[r.RuleID]; k != nil {
		same := sameSlice(k.conds, r.Conditions) && sameSlice(k.actions, r.Actions) && sameSlice(k.transforms, r.Transforms)
		if !same && reflect.DeepEqual(k.conds, r.Conditions) && reflect.DeepEqual(k.actions, r.Actions) && reflect.DeepEqual(k.transforms, r.Transforms) {
			k.conds, k.actions, k.transforms, same = r.Conditions, r.Actions, r.Transforms, true // the next snapshot shares these
		}
		if same {
			for _, g := range k.groups {
				groups[g] = true
			}
			return k.rules, nil
		}
	}
	own := map[string]bool{}
	rules, err := albRules(r.RuleID, r.Conditions, r.Actions, r.Transforms, own)
	if err != nil {
		return nil, err
	}
	m.last++
	rev := strconv.FormatUint(m.last, 10)
	for i := range rules {
		rules[i].Revision = rev
	}
	k := &revisedRule{conds: r.Conditions, actions: r.Actions, transforms: r.Transforms, rules: rules}
	for g := range own {
		groups[g] = true
		k.groups = append(k.groups, g)
	}
	m.byID[r.RuleID] = k
	return rules, nil
}

// sameSlice reports whether a and b are the same slice: the same elements in memory.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// albGroup is a target group as the engine takes it. A group the snapshot lacks has no
// targets (the control plane refuses actions naming unknown groups; it may be mid-delete). An
// HTTPS or TLS group's client certificate is read through certs, as a listener's certificates are.
// A TLS group (the stream of a terminating TLS listener, encrypted again) is verified and
// presents its certificate as an HTTPS group does.
func albGroup(id string, ix albSnapshot, certs CertificateSource) (l7.TargetGroup, error) {
	g := ix.groups[id]
	tg := l7.TargetGroup{Name: id, Protocol: l7.ProtocolHTTP}
	switch {
	case g.Protocol == api.ProtocolTCP: // behind TLS-passthrough and TCP listeners
		tg.Protocol = l7.ProtocolTCP
	case g.Protocol == api.ProtocolUDP: // behind UDP listeners
		tg.Protocol = l7.ProtocolUDP
	case g.Protocol == api.ProtocolHTTPS || g.Protocol == api.ProtocolTLS:
		tg.Protocol, tg.TLS = l7.Protocol(g.Protocol), albBackendTLS(g.TLSVerification)
		if g.ClientCertificateID != "" {
			kp, err := clientCertificate(g, certs)
			if err != nil {
				return tg, err
			}
			tg.TLS.ClientCertPEM, tg.TLS.ClientKeyPEM = []byte(kp.CertificatePem), []byte(kp.PrivateKeyPem)
		}
	case g.ProtocolVersion == api.ProtocolVersionHTTP2 || g.ProtocolVersion == api.ProtocolVersionGRPC:
		tg.Protocol = l7.ProtocolH2C
	}
	for _, t := range ix.targets[id] {
		if a, ok := parseTarget(t.Target); ok {
			tg.Targets = append(tg.Targets, l7.Target{Addr: a.AddrPort(), State: l7.TargetState(dataPlaneState(t.TargetHealth))})
		}
	}
	return tg, nil
}

// clientCertificate reads the certificate (chain and key) an HTTPS or TLS group presents to
// its targets.
func clientCertificate(g api.TargetGroup, certs CertificateSource) (api.CertificateKeyPair, error) {
	if certs == nil {
		return api.CertificateKeyPair{}, fmt.Errorf("target group %s: its client certificate needs a certificate source, and the fabric has none", g.TargetGroupID)
	}
	kp, ok := certs.CertificateKeyPair(g.ClientCertificateID)
	if !ok {
		return api.CertificateKeyPair{}, fmt.Errorf("target group %s: client certificate %s does not exist", g.TargetGroupID, g.ClientCertificateID)
	}
	return kp, nil
}

// albBackendTLS is how the engine verifies an HTTPS or TLS group's targets: as its TlsVerification
// says (no CA PEM: the system's roots), or not at all without one, as an ALB does. (A client
// certificate is presented either way: albGroup adds it.)
func albBackendTLS(v *api.TLSVerification) *l7.BackendTLS {
	if v == nil {
		return &l7.BackendTLS{InsecureSkipVerify: true}
	}
	out := &l7.BackendTLS{ServerName: v.ServerName}
	if !v.UseSystemRoots {
		out.CAPEM = []byte(v.CACertificatesPEM)
	}
	for _, san := range v.SubjectAltNames {
		out.SubjectAltNames = append(out.SubjectAltNames, l7.SubjectAltName{Type: l7.SANType(san.Type), Value: san.Value})
	}
	return out
}

// dataPlaneState is a target's state as the engine and its checker should take it. A target
// the fabric marked unavailable because its load balancer failed (reason InternalError) is
// initial again once the engine runs the load balancer's configuration: requests fail open to
// it and its checks decide its health, as for a new target. (The engine would never send to an
// unavailable target, and its checker leaves those to the control plane.)
func dataPlaneState(h api.TargetHealth) string {
	if h.State == api.TargetHealthUnavailable && h.Reason == api.ReasonInternalError {
		return api.TargetHealthInitial
	}
	return h.State
}

// albRules turns one rule into the engine's rules: a condition with several path, method,
// header or query values expands into one rule per combination (the values of a condition are
// ORed, the engine's conditions ANDed); host values stay one list, which the engine ORs. The
// rule's transforms go with its action.
func albRules(name string, conds []api.RuleCondition, actions []api.Action, transforms []api.RuleTransform, groups map[string]bool) ([]l7.Rule, error) {
	if len(actions) != 1 {
		return nil, fmt.Errorf("has %d actions, want exactly one", len(actions))
	}
	act, err := albAction(actions[0], groups)
	if err != nil {
		return nil, err
	}
	if act.Transforms, err = albTransforms(transforms); err != nil {
		return nil, err
	}
	rules := []l7.Rule{{Name: name, Action: act}}
	// each replaces every rule so far by one copy per value of a condition.
	each := func(n int, set func(r *l7.Rule, i int)) {
		if n == 1 { // the usual case: each rule keeps its one copy (its slices are its own)
			for i := range rules {
				set(&rules[i], 0)
			}
			return
		}
		out := make([]l7.Rule, 0, len(rules)*n)
		for _, r := range rules {
			for i := range n {
				c := r
				c.Headers, c.Query = slices.Clone(r.Headers), slices.Clone(r.Query)
				set(&c, i)
				out = append(out, c)
			}
		}
		rules = out
	}
	for _, c := range conds {
		switch {
		case c.HostHeaderConfig != nil:
			for i := range rules {
				rules[i].Hosts = append(rules[i].Hosts, c.HostHeaderConfig.Values...)
			}
		case c.PathPatternConfig != nil:
			p := c.PathPatternConfig
			typ := l7.MatchType(cmp.Or(p.MatchType, api.MatchTypeExact))
			each(len(p.Values), func(r *l7.Rule, i int) { r.Path = &l7.PathMatch{Type: typ, Value: p.Values[i]} })
		case c.HTTPHeaderConfig != nil:
			h := c.HTTPHeaderConfig
			typ := l7.MatchType(cmp.Or(h.MatchType, api.MatchTypeExact))
			each(len(h.Values), func(r *l7.Rule, i int) {
				r.Headers = append(r.Headers, l7.HeaderMatch{Name: h.HTTPHeaderName, Type: typ, Value: h.Values[i]})
			})
		case c.QueryStringConfig != nil:
			q := c.QueryStringConfig
			typ := l7.MatchType(cmp.Or(q.MatchType, api.MatchTypeExact))
			each(len(q.Values), func(r *l7.Rule, i int) {
				r.Query = append(r.Query, l7.QueryMatch{Name: q.Values[i].Key, Type: typ, Value: q.Values[i].Value})
			})
		case c.HTTPRequestMethodConfig != nil:
			m := c.HTTPRequestMethodConfig
			each(len(m.Values), func(r *l7.Rule, i int) { r.Method = m.Values[i] })
		default:
			return nil, fmt.Errorf("condition %q has no values", c.Field)
		}
	}
	if len(rules) > 1 {
		for i := range rules {
			rules[i].Name = fmt.Sprintf("%s#%d", name, i)
		}
	}
	return rules, nil
}

// albTransforms are a rule's transforms as the engine's: each its one rewrite.
func albTransforms(ts []api.RuleTransform) ([]l7.Transform, error) {
	var out []l7.Transform
	for _, t := range ts {
		rc := t.HostHeaderRewriteConfig
		if t.Type == api.TransformTypeURLRewrite {
			rc = t.URLRewriteConfig
		}
		if rc == nil || len(rc.Rewrites) != 1 {
			return nil, fmt.Errorf("transform %q has no config of its type with exactly one rewrite", t.Type)
		}
		rw := rc.Rewrites[0]
		out = append(out, l7.Transform{Type: l7.TransformType(t.Type), Regex: rw.Regex, Replace: rw.Replace})
	}
	return out, nil
}

// actionGroups adds the target groups a forwards or mirrors to to groups.
func actionGroups(a api.Action, groups map[string]bool) {
	if a.Type != api.ActionTypeForward {
		return
	}
	if a.ForwardConfig != nil {
		for _, g := range a.ForwardConfig.TargetGroups {
			groups[g.TargetGroupID] = true
		}
	} else if a.TargetGroupID != "" {
		groups[a.TargetGroupID] = true
	}
	for _, m := range a.RequestMirrors {
		groups[m.TargetGroupID] = true
	}
}

// albAction is an API action as the engine's, recording the target groups it names.
func albAction(a api.Action, groups map[string]bool) (l7.Action, error) {
	actionGroups(a, groups)
	out := l7.Action{TLSPassthrough: a.TLSPassthrough}
	out.RequestHeaders = headerEdit(a.RequestHeaderModifications)
	out.ResponseHeaders = headerEdit(a.ResponseHeaderModifications)
	if c := a.CorsConfig; c != nil {
		out.CORS = &l7.CORS{AllowOrigins: slices.Clone(c.AllowOrigins), AllowMethods: slices.Clone(c.AllowMethods), AllowHeaders: slices.Clone(c.AllowHeaders),
			ExposeHeaders: slices.Clone(c.ExposeHeaders), AllowCredentials: c.AllowCredentials, MaxAge: c.MaxAgeSeconds}
	}
	switch a.Type {
	case api.ActionTypeForward:
		fw := &l7.Forward{}
		if a.ForwardConfig != nil {
			for _, g := range a.ForwardConfig.TargetGroups {
				w := 1
				if g.Weight != nil {
					w = *g.Weight
				}
				fw.Backends = append(fw.Backends, l7.Backend{TargetGroup: g.TargetGroupID, Weight: w,
					RequestHeaders: headerEdit(g.RequestHeaderModifications), ResponseHeaders: headerEdit(g.ResponseHeaderModifications)})
			}
		} else if a.TargetGroupID != "" {
			fw.Backends = []l7.Backend{{TargetGroup: a.TargetGroupID, Weight: 1}}
		}
		out.Forward = fw
		if rw := a.URLRewriteConfig; rw != nil {
			out.Rewrite = &l7.Rewrite{Hostname: rw.Host, Path: pathModifier(rw.PathModification)}
		}
		for _, m := range a.RequestMirrors {
			pct := 100.0
			if m.Percent != nil {
				pct = *m.Percent
			}
			out.Mirrors = append(out.Mirrors, l7.Mirror{TargetGroup: m.TargetGroupID, Percent: pct})
		}
		if t := a.TimeoutConfig; t != nil {
			out.Timeouts = l7.Timeouts{Request: time.Duration(t.RequestMillis) * time.Millisecond,
				BackendRequest: time.Duration(t.BackendRequestMillis) * time.Millisecond}
		}
		if r := a.RetryConfig; r != nil {
			out.Retry = &l7.Retry{Codes: slices.Clone(r.Codes), Attempts: r.Attempts, Backoff: time.Duration(r.BackoffMillis) * time.Millisecond}
		}
	case api.ActionTypeRedirect:
		if a.RedirectConfig == nil {
			return out, fmt.Errorf("redirect without RedirectConfig")
		}
		rd, err := albRedirect(*a.RedirectConfig)
		if err != nil {
			return out, err
		}
		out.Redirect = rd
	case api.ActionTypeFixedResponse:
		fr := a.FixedResponseConfig
		if fr == nil {
			return out, fmt.Errorf("fixed-response without FixedResponseConfig")
		}
		code, err := strconv.Atoi(fr.StatusCode)
		if err != nil {
			return out, fmt.Errorf("fixed-response status code %q is not a number", fr.StatusCode)
		}
		out.FixedResponse = &l7.FixedResponse{StatusCode: code, ContentType: fr.ContentType, Body: fr.MessageBody}
	default:
		return out, fmt.Errorf("action type %q is not forward, redirect or fixed-response", a.Type)
	}
	return out, nil
}

// albRedirect maps a redirect; ELBv2's placeholders (#{protocol}, #{host}, /#{path}) and empty
// fields keep the request's value, which is what the engine's zero values mean.
func albRedirect(rc api.RedirectActionConfig) (*l7.Redirect, error) {
	rd := &l7.Redirect{Port: rc.Port}
	if p := rc.Protocol; p != "" && p != "#{protocol}" {
		rd.Scheme = strings.ToLower(p)
	}
	if h := rc.Host; h != "" && h != "#{host}" {
		rd.Hostname = h
	}
	switch {
	case rc.PathModification != nil:
		rd.Path = pathModifier(rc.PathModification)
	case rc.Path != "" && rc.Path != "/#{path}":
		rd.Path = &l7.PathModifier{Type: l7.ReplaceFullPath, Value: rc.Path}
	}
	if rc.StatusCode != "" {
		code, err := strconv.Atoi(strings.TrimPrefix(rc.StatusCode, "HTTP_"))
		if err != nil {
			return nil, fmt.Errorf("redirect status code %q is not HTTP_30x", rc.StatusCode)
		}
		rd.StatusCode = code
	}
	return rd, nil
}

func pathModifier(pm *api.PathModification) *l7.PathModifier {
	if pm == nil {
		return nil
	}
	return &l7.PathModifier{Type: l7.PathModifierType(pm.Type), Value: pm.Value}
}

func headerEdit(hm *api.HeaderModifications) l7.HeaderEdit {
	if hm == nil {
		return l7.HeaderEdit{}
	}
	var e l7.HeaderEdit
	for _, h := range hm.Set {
		e.Set = append(e.Set, l7.Header{Name: h.Name, Value: h.Value})
	}
	for _, h := range hm.Add {
		e.Add = append(e.Add, l7.Header{Name: h.Name, Value: h.Value})
	}
	e.Remove = slices.Clone(hm.Remove)
	return e
}

// albChecks lists the health checks of an application load balancer: every registered target
// that is not draining or unused, of every group its listeners' actions name.
func albChecks(lb *LB, ix albSnapshot) []Check {
	groups := map[string]bool{}
	for _, l := range ix.listeners[lb.ID] {
		for _, r := range ix.rules[l.ListenerID] {
			for _, a := range r.Actions {
				actionGroups(a, groups)
			}
		}
		for _, a := range l.DefaultActions {
			actionGroups(a, groups)
		}
	}
	var out []Check
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		g, ok := ix.groups[id]
		if !ok {
			continue
		}
		for _, t := range ix.targets[id] {
			addr, ok := parseTarget(t.Target)
			if !ok || t.TargetHealth.State == api.TargetHealthDraining || t.TargetHealth.State == api.TargetHealthUnused {
				continue
			}
			c := Check{LB: lb.ID, Source: lb.Addr.Addr(), TargetGroupID: id, Target: addr,
				HealthCheck: g.HealthCheck, State: t.TargetHealth.State, Reason: t.TargetHealth.Reason,
				App: true, GRPC: g.ProtocolVersion == api.ProtocolVersionGRPC}
			if g.Protocol == api.ProtocolHTTPS || g.Protocol == api.ProtocolTLS {
				c.ClientCertificateID = g.ClientCertificateID
			}
			if g.Protocol == api.ProtocolTLS {
				c.TLSGroup, c.TLSVerification = true, g.TLSVerification
			}
			out = append(out, c)
		}
	}
	return out
}

// l7Check is an application target group's check as the engine's checker runs it.
func l7Check(c Check) l7.HealthCheck {
	hc := c.HealthCheck
	out := l7.HealthCheck{Protocol: l7.HealthProtocol(cmp.Or(strings.ToUpper(hc.Protocol), api.ProtocolHTTP)),
		Path: hc.Path, Matcher: hc.Matcher,
		Interval: seconds(cmp.Or(hc.IntervalSeconds, 15)), Timeout: seconds(cmp.Or(hc.TimeoutSeconds, 5)),
		HealthyThreshold: cmp.Or(hc.HealthyThresholdCount, 2), UnhealthyThreshold: cmp.Or(hc.UnhealthyThresholdCount, 2)}
	if c.GRPC {
		// gRPC over TLS to an HTTPS group's targets, over h2c to an HTTP group's.
		out.Protocol, out.GRPCTLS = l7.HealthGRPC, out.Protocol == l7.HealthHTTPS
	}
	if p, err := strconv.Atoi(hc.Port); err == nil {
		out.Port = p
	}
	return out
}
