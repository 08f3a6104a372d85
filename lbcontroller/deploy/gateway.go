package deploy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
)

// Tags the Gateway deploy step adds to the ownership tags it is given.
const (
	// TagLayer separates a Gateway's application resources ("l7") from its network ones, so
	// that each deploy step lists, and collects, only its own.
	TagLayer = "flatnet.io/layer"
	// TagCertificate is the SHA-256 of an imported certificate's leaf (the model's
	// Fingerprint): a certificate is imported once and found again by it.
	TagCertificate = "flatnet.io/certificate-sha256"
)

// LayerL7 is TagLayer's value on application load balancer resources.
const LayerL7 = "l7"

// gatewayDeregistrationDelay is how long a target that left stays draining: the Service path's
// default, long enough for in-flight requests to finish.
const gatewayDeregistrationDelay = 300 * time.Second

// GatewayResult is what a Gateway deploy pass left in the cloud and did to it.
type GatewayResult struct {
	LoadBalancerID string
	VIP            netip.Addr
	// State and StateReason are the load balancer's state as the cloud showed it after the
	// pass (providers.LB*). Programmed is State == active: the cloud serves the model.
	State, StateReason string
	Programmed         bool
	// TargetGroups maps each model target group's name to its cloud ID.
	TargetGroups map[string]string
	// Changes lists every write the pass made, in order ("create rule 3 on HTTP/80"); empty
	// when the cloud already matched.
	Changes []string
	// Registered and Deregistered count the targets this pass changed.
	Registered, Deregistered int
	// ruleChanges counts the Changes that were rule writes.
	ruleChanges int
	// RuleCalls is the time the pass spent in the cloud's rule calls (listing and writing
	// rules), for the controller's debug log: the rest of a pass is its own work.
	RuleCalls time.Duration
}

func (r *GatewayResult) did(format string, args ...any) {
	r.Changes = append(r.Changes, fmt.Sprintf(format, args...))
}

// ApplicationLoadBalancer makes the cloud match one Gateway's application load balancer model
// (nil: the Gateway wants none, and everything of it goes). tags are the Gateway's ownership
// tags (cluster, Gateway, UID); every resource is created with them and TagLayer, and found by
// them again, so a pass cut short anywhere is completed by the next. token distinguishes one
// intent from another (the Gateway's generation and the inputs' versions, say): client tokens
// derive from it.
//
// The order keeps traffic flowing: the certificate the target groups present to their targets
// (if any), target groups and their targets, the listeners' certificates, then listeners and their rules (changed in place where the priority stays, moved with one
// SetRulePriorities call, created, or deleted), and only then what nothing uses any more:
// listeners, target groups, certificates.
func ApplicationLoadBalancer(ctx context.Context, p providers.ApplicationLoadBalancing, alb *gateway.ApplicationLoadBalancer, tags map[string]string, token string) (GatewayResult, error) {
	res := GatewayResult{TargetGroups: map[string]string{}}
	tags = withLayer(tags)
	if alb == nil {
		return res, DeleteApplicationLoadBalancer(ctx, p, tags, &res)
	}
	rc, _ := p.(*RuleCache)
	if rc == nil {
		return applicationLoadBalancer(ctx, p, alb, tags, token, nil)
	}
	shape := passShape(alb, tags)
	m := rc.recall(alb.Name, shape)
	if m != nil {
		err := rememberedPass(ctx, p, alb, m, token, &res)
		if err != nil || len(res.Changes) > res.ruleChanges || !res.Programmed {
			m = nil
		}
		// (The memo's state is what the pass answered: nothing of it to write back. The memo
		// is the cache's, read under its lock by LoadBalancerStates.)
		rc.remember(alb.Name, m)
		return res, err
	}
	m = &passMemo{shape: shape}
	rc.begin(m)
	res, err := applicationLoadBalancer(ctx, p, alb, tags, token, m)
	if err != nil || len(res.Changes) > res.ruleChanges || !res.Programmed {
		m = nil
	} else {
		m.cur.State, m.cur.StateReason = res.State, res.StateReason
		m.groups = maps.Clone(res.TargetGroups)
	}
	rc.remember(alb.Name, m)
	return res, err
}

// rememberedPass is a pass of a load balancer whose last pass, of the same shape (passShape),
// read it and changed no more than rules: the load balancer, its listeners, target groups and
// their targets and certificates are what that pass read, and only the rules are planned
// against the cloud (through the RuleCache). Nothing besides rules can need a change: the
// model's part that decides them is the same, and so is the cloud's, unless changed out of
// band, which the resync period or an error's invalidation repairs, as for rules.
func rememberedPass(ctx context.Context, p providers.ApplicationLoadBalancing, alb *gateway.ApplicationLoadBalancer, m *passMemo, token string, res *GatewayResult) error {
	cur := m.cur
	cur.Listeners = slices.Clone(m.cur.Listeners)
	res.LoadBalancerID, res.VIP = cur.ID, cur.VIP
	maps.Copy(res.TargetGroups, m.groups)
	if err := ensureHTTPListeners(ctx, p, alb, &cur, m.certs, token, res); err != nil {
		return err
	}
	// The state is the memo's, not read again after the rule writes: a rule write does not
	// change it, and reading it at once would show the state from before the data plane took
	// the rules anyway. A change of state reaches the memo through the change stream
	// (RuleCache.LoadBalancerStates), which drops it, and the next pass reads it all.
	res.State, res.StateReason, res.Programmed = cur.State, cur.StateReason, cur.State == providers.LBActive
	return nil
}

// passShape is the model without its HTTP(S) listeners' rules, and the tags: two passes of one
// shape differ in rules only.
func passShape(alb *gateway.ApplicationLoadBalancer, tags map[string]string) string {
	shape := *alb
	shape.Listeners = make([]gateway.HTTPListener, len(alb.Listeners))
	for i, l := range alb.Listeners {
		l.Rules = nil
		shape.Listeners[i] = l
	}
	b, err := json.Marshal(struct {
		M    gateway.ApplicationLoadBalancer
		Tags map[string]string
	}{shape, tags})
	if err != nil { // plain data: cannot happen
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// keptLoadBalancer is which of the Gateway's load balancers serves on (kept: every one listed
// by the Gateway's tags fits); nil: one is to be created.
func keptLoadBalancer(lbs []providers.ApplicationLoadBalancer, name string, address netip.Addr) *providers.ApplicationLoadBalancer {
	cs := make([]keptCandidate, len(lbs))
	for i, l := range lbs {
		cs[i] = keptCandidate{id: l.ID, name: l.Name, vip: l.VIP, listeners: len(l.Listeners), fits: true}
	}
	if i := kept(cs, name, address); i >= 0 {
		return &lbs[i]
	}
	return nil
}

// applicationLoadBalancer is ApplicationLoadBalancer's pass that reads everything; m (non-nil)
// is filled with what it read.
func applicationLoadBalancer(ctx context.Context, p providers.ApplicationLoadBalancing, alb *gateway.ApplicationLoadBalancer, tags map[string]string, token string, m *passMemo) (GatewayResult, error) {
	res := GatewayResult{TargetGroups: map[string]string{}}
	lbs, err := p.ListApplicationLoadBalancers(ctx, tags)
	if err != nil {
		return res, fmt.Errorf("list the application load balancers of %s: %w", alb.Name, err)
	}
	var address netip.Addr
	if alb.Address != "" {
		if address, err = netip.ParseAddr(alb.Address); err != nil {
			return res, fmt.Errorf("the model's address %q: %w", alb.Address, err)
		}
	}
	cur := keptLoadBalancer(lbs, alb.Name, address)
	var retag []taggedResource // what existed before this pass: its tags may be stale
	if cur != nil {
		retag = append(retag, taggedResource{kind: "load balancer", id: cur.ID, tags: cur.Tags})
	}
	if cur == nil {
		if serving := keptLoadBalancer(lbs, alb.Name, netip.Addr{}); serving != nil {
			// Until its replacement exists, the one serving is the Gateway's (should the
			// create fail, its address is still the Gateway's).
			res.LoadBalancerID, res.VIP = serving.ID, serving.VIP
		}
		// A load balancer's address is fixed when it is created: a new static address gets a
		// new load balancer (named after the address, so that it does not collide with the one
		// serving), and the old one is deleted only once it exists. Should the cloud refuse
		// the address, the old one goes on serving.
		created, err := p.CreateApplicationLoadBalancer(ctx, providers.LoadBalancerSpec{Name: alb.Name, Address: address, Tags: withUserTags(tags, alb.Tags),
			ClientToken: clientToken(token, alb.Name+"@"+alb.Address)})
		if err != nil {
			return res, fmt.Errorf("create application load balancer %s: %w", alb.Name, err)
		}
		cur = &created
		res.did("create load balancer %s", created.ID)
	}
	for _, lb := range lbs {
		if lb.ID == cur.ID {
			continue
		}
		if err := p.DeleteLoadBalancer(ctx, lb.ID); err != nil {
			return res, fmt.Errorf("delete application load balancer %s (replaced by %s): %w", lb.ID, cur.ID, err)
		}
		res.did("delete load balancer %s", lb.ID)
	}
	res.LoadBalancerID, res.VIP = cur.ID, cur.VIP

	tgs, err := p.ListTargetGroups(ctx, tags)
	if err != nil {
		return res, fmt.Errorf("list the target groups of %s: %w", alb.Name, err)
	}
	// The client certificate first, as the target groups name it; the listeners' after the
	// groups, so that a certificate the cloud refuses does not keep targets from registering.
	var clientCert []gateway.Certificate
	if alb.BackendClientCertificate != nil {
		clientCert = []gateway.Certificate{*alb.BackendClientCertificate}
	}
	certs, err := ensureCertificates(ctx, p, alb, clientCert, tags, token, &retag, &res)
	if err != nil {
		return res, err
	}
	if err := ensureHTTPTargetGroups(ctx, p, alb, tgs, certs, tags, token, &res); err != nil {
		return res, err
	}
	if certs, err = ensureCertificates(ctx, p, alb, modelCertificates(alb), tags, token, &retag, &res); err != nil {
		return res, err
	}
	if m != nil {
		m.cur = *cur
		m.cur.Listeners = slices.Clone(cur.Listeners)
		m.certs = certs
	}
	if err := ensureHTTPListeners(ctx, p, alb, cur, certs, token, &res); err != nil {
		return res, err
	}
	for _, tg := range tgs {
		if id, ok := res.TargetGroups[tg.Name]; ok && id == tg.ID {
			retag = append(retag, taggedResource{kind: "target group", id: tg.ID, tags: tg.Tags})
			continue
		}
		if err := p.DeleteTargetGroup(ctx, tg.ID); err != nil {
			return res, fmt.Errorf("delete target group %s, no longer used: %w", tg.ID, err)
		}
		res.did("delete target group %s", tg.ID)
	}
	if err := deleteUnusedCertificates(ctx, p, tags, servedCertificates(alb, certs), &res); err != nil {
		return res, err
	}
	// Last: tags change nothing that serves.
	if err := syncUserTags(ctx, p, retag, alb.Tags, &res); err != nil {
		return res, err
	}
	return res, refreshState(ctx, p, tags, cur, &res)
}

func withLayer(tags map[string]string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		out[k] = v
	}
	out[TagLayer] = LayerL7
	return out
}

func copyTags(tags map[string]string, extra ...string) map[string]string {
	out := make(map[string]string, len(tags)+len(extra)/2)
	for k, v := range tags {
		out[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = extra[i+1]
	}
	return out
}

// refreshState reads the load balancer's state again when the pass changed something: the
// state listed at the start describes the configuration before the change.
func refreshState(ctx context.Context, p providers.ApplicationLoadBalancing, tags map[string]string, cur *providers.ApplicationLoadBalancer, res *GatewayResult) error {
	state, reason := cur.State, cur.StateReason
	if len(res.Changes) > 0 {
		lbs, err := p.ListApplicationLoadBalancers(ctx, tags)
		if err != nil {
			return fmt.Errorf("read the state of application load balancer %s: %w", cur.ID, err)
		}
		state, reason = providers.LBProvisioning, ""
		for _, lb := range lbs {
			if lb.ID == cur.ID {
				state, reason = lb.State, lb.StateReason
			}
		}
	}
	res.State, res.StateReason, res.Programmed = state, reason, state == providers.LBActive
	return nil
}

// targetGroupProtocol maps a model group's protocol onto the cloud's protocol and version. An
// H2C group is GRPC: the model gives H2C to gRPC backends (and to HTTPRoute backends whose
// appProtocol is kubernetes.io/h2c), and a gRPC server answers the gRPC health check. An HTTPS
// group speaks TLS to its targets, verifying them as its TLS says (a BackendTLSPolicy) or, without
// (appProtocol https), not at all, as ELBv2's; a GRPCS group is gRPC over TLS. A TCP
// group (behind TLS-passthrough and TCP listeners) and a UDP group (behind UDP listeners; the
// cloud checks it over TCP on the traffic port) have no version.
func targetGroupProtocol(proto string) (string, string, error) {
	switch proto {
	case gateway.ProtocolHTTP:
		return gateway.ProtocolHTTP, providers.ProtocolVersionHTTP1, nil
	case gateway.ProtocolH2C:
		return gateway.ProtocolHTTP, providers.ProtocolVersionGRPC, nil
	case gateway.ProtocolHTTPS:
		return gateway.ProtocolHTTPS, providers.ProtocolVersionHTTP1, nil
	case gateway.ProtocolGRPCS:
		return gateway.ProtocolHTTPS, providers.ProtocolVersionGRPC, nil
	case gateway.ProtocolTCP, gateway.ProtocolUDP:
		return proto, "", nil
	case gateway.ProtocolTLS: // TCP to the targets, TLS begun by the load balancer
		return providers.ProtocolTLS, "", nil
	}
	return "", "", fmt.Errorf("target group protocol %q cannot serve an application load balancer", proto)
}

// backendTLS is the cloud's form of a target group's TLS verification (nil: none).
func backendTLS(t *gateway.BackendTLS) *providers.BackendTLS {
	if t == nil {
		return nil
	}
	out := &providers.BackendTLS{ServerName: t.ServerName, SystemRoots: t.SystemRoots}
	if t.CAPEM != "" {
		out.CAPEM = []byte(t.CAPEM)
	}
	for _, san := range t.SubjectAltNames {
		out.SubjectAltNames = append(out.SubjectAltNames, providers.SubjectAltName{Type: san.Type, Value: san.Value})
	}
	return out
}

func ensureHTTPTargetGroups(ctx context.Context, p providers.ApplicationLoadBalancing, alb *gateway.ApplicationLoadBalancer, actual []providers.TargetGroup,
	certs map[string]string, tags map[string]string, token string, res *GatewayResult) error {
	for _, want := range alb.TargetGroups {
		proto, version, err := targetGroupProtocol(want.Protocol)
		if err != nil {
			return fmt.Errorf("target group %s of %s: %w", want.Name, want.Service, err)
		}
		clientCert := ""
		if want.ClientCertificate != "" {
			if clientCert = certs[want.ClientCertificate]; clientCert == "" {
				return fmt.Errorf("target group %s of %s: its client certificate %s is not imported", want.Name, want.Service, want.ClientCertificate)
			}
		}
		i := slices.IndexFunc(actual, func(tg providers.TargetGroup) bool { return tg.Name == want.Name })
		var id string
		if i < 0 {
			tg, err := p.CreateTargetGroup(ctx, providers.TargetGroupSpec{
				Name: want.Name, Protocol: proto, ProtocolVersion: version, Port: want.Port,
				DeregistrationDelay: gatewayDeregistrationDelay, TLS: backendTLS(want.TLS), ClientCertificateID: clientCert,
				Tags:        withUserTags(copyTags(tags, "flatnet.io/service-ref", want.Service), alb.Tags),
				ClientToken: clientToken(token, want.Name),
			})
			if err != nil {
				return fmt.Errorf("create target group %s for %s port %d: %w", want.Name, want.Service, want.Port, err)
			}
			id = tg.ID
			res.did("create target group %s", tg.ID)
		} else {
			tg := actual[i]
			id = tg.ID
			if tg.DeregistrationDelay != gatewayDeregistrationDelay {
				if err := p.UpdateTargetGroup(ctx, tg.ID, tg.HealthCheck, gatewayDeregistrationDelay); err != nil {
					return fmt.Errorf("set the deregistration delay of target group %s: %w", tg.ID, err)
				}
				res.did("update target group %s", tg.ID)
			}
		}
		res.TargetGroups[want.Name] = id
		reg, dereg, err := syncTargets(ctx, p, id, want.Targets)
		res.Registered += reg
		res.Deregistered += dereg
		if reg > 0 {
			res.did("register %d targets in %s", reg, id)
		}
		if dereg > 0 {
			res.did("deregister %d targets from %s", dereg, id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureCertificates imports each of want not in the cloud yet (by fingerprint), adds those
// already there to retag (their user tags are kept in step at the end of the pass), and
// answers fingerprint -> certificate ID for all of ours.
func ensureCertificates(ctx context.Context, p providers.ApplicationLoadBalancing, alb *gateway.ApplicationLoadBalancer, want []gateway.Certificate, tags map[string]string, token string,
	retag *[]taggedResource, res *GatewayResult) (map[string]string, error) {
	have, err := p.ListCertificates(ctx, tags)
	if err != nil {
		return nil, fmt.Errorf("list the certificates of %s: %w", alb.Name, err)
	}
	ids := map[string]string{}
	byID := map[string]providers.Certificate{}
	for _, c := range have {
		if fp := c.Tags[TagCertificate]; fp != "" && ids[fp] == "" {
			ids[fp] = c.ID
			byID[c.ID] = c
		}
	}
	for _, c := range want {
		if id := ids[c.Fingerprint]; id != "" {
			if !slices.ContainsFunc(*retag, func(r taggedResource) bool { return r.id == id }) {
				*retag = append(*retag, taggedResource{kind: "certificate", id: id, tags: byID[id].Tags})
			}
			continue
		}
		imported, err := p.ImportCertificate(ctx, providers.CertificateSpec{
			CertificatePEM: c.CertPEM, PrivateKeyPEM: c.KeyPEM,
			Tags:        withUserTags(copyTags(tags, TagCertificate, c.Fingerprint), alb.Tags),
			ClientToken: clientToken(token, "certificate/"+c.Fingerprint),
		})
		if err != nil {
			return nil, fmt.Errorf("import the certificate of Secret %s: %w", c.Secret, err)
		}
		ids[c.Fingerprint] = imported.ID
		res.did("import certificate %s from %s", imported.ID, c.Secret)
	}
	return ids, nil
}

// modelCertificates are the certificates of every listener of the model that terminates TLS
// (HTTPS listeners, and TLS ones in mode Terminate), and the one the load balancer presents to
// its targets.
func modelCertificates(alb *gateway.ApplicationLoadBalancer) []gateway.Certificate {
	var out []gateway.Certificate
	if alb.BackendClientCertificate != nil {
		out = append(out, *alb.BackendClientCertificate)
	}
	for _, l := range alb.Listeners {
		out = append(out, l.Certificates...)
	}
	for _, l := range alb.Passthrough {
		out = append(out, l.Certificates...)
	}
	return out
}

// listenerCertificates are the certificate IDs of a model listener's certificates, the default
// first (the first certificate marked Default, else the first), then the others sorted, each
// once: the order the cloud lists them in.
func listenerCertificates(certs []gateway.Certificate, ids map[string]string) []string {
	var out []string
	def := slices.IndexFunc(certs, func(c gateway.Certificate) bool { return c.Default })
	if def < 0 && len(certs) > 0 {
		def = 0
	}
	if def >= 0 {
		out = append(out, ids[certs[def].Fingerprint])
	}
	var others []string
	for _, c := range certs {
		if id := ids[c.Fingerprint]; !slices.Contains(out, id) && !slices.Contains(others, id) {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	return append(out, others...)
}

// defaultAction answers requests no rule matches: the model's "no rule matched" 404.
var defaultAction = providers.RuleAction{FixedResponse: &providers.FixedResponse{StatusCode: 404}}

// listenerPlan is one wanted listener of the cloud's load balancer with its rules.
type listenerPlan struct {
	spec    providers.HTTPListenerSpec
	rules   []providers.RuleSpec
	sources []string
}

// wantedListeners turns the model's HTTP(S) and passthrough listeners into the cloud's, target
// group names into IDs. Hostname scopes go only to a cloud that has them (scopes); elsewhere a
// misdirected request is routed by its Host, as before the feature.
func wantedListeners(alb *gateway.ApplicationLoadBalancer, certs, tgIDs map[string]string, scopes bool) ([]listenerPlan, error) {
	var out []listenerPlan
	for _, l := range alb.Listeners {
		lp := listenerPlan{spec: providers.HTTPListenerSpec{Protocol: l.Protocol, Port: l.Port, DefaultAction: defaultAction, Certificates: listenerCertificates(l.Certificates, certs)}}
		if scopes {
			lp.spec.HostnameScopes = l.HostnameScopes
		}
		if cv := l.ClientValidation; cv != nil {
			lp.spec.ClientValidation = &providers.ClientValidation{Verify: cv.Verify, CAPEM: []byte(cv.CAPEM)}
		}
		var err error
		if lp.rules, lp.sources, err = httpRuleSpecs(l.Rules, tgIDs); err != nil {
			return nil, fmt.Errorf("listener %s/%d: %w", l.Protocol, l.Port, err)
		}
		out = append(out, lp)
	}
	for _, l := range alb.Passthrough {
		lp, err := passthroughListener(l, tgIDs)
		lp.spec.Certificates = listenerCertificates(l.Certificates, certs) // TLS in mode Terminate
		switch {
		case errors.Is(err, errNoTCPDefault):
			// The cloud's TCP listener always forwards: without a usable route there is
			// nothing to forward to, and no listener refuses the connections.
		case err != nil:
			return nil, fmt.Errorf("listener %s/%d: %w", l.Protocol, l.Port, err)
		default:
			out = append(out, lp)
		}
	}
	return out, nil
}

// passthroughListener is a TLS-passthrough, TCP or UDP listener: the model's Default is the default
// forward (none: connections no rule takes are refused), and each SNI route of a TLS listener
// a rule whose Hosts are the route's names, in the model's order.
func passthroughListener(l gateway.L4Listener, tgIDs map[string]string) (listenerPlan, error) {
	lp := listenerPlan{spec: providers.HTTPListenerSpec{Protocol: l.Protocol, Port: l.Port}}
	switch l.Protocol {
	case gateway.ProtocolTLS, gateway.ProtocolTCP, gateway.ProtocolUDP:
	default:
		return lp, fmt.Errorf("protocol %q cannot be passed through by an application load balancer (TLS, TCP or UDP)", l.Protocol)
	}
	if l.Protocol != gateway.ProtocolTLS && len(l.SNI) > 0 {
		return lp, fmt.Errorf("a %s listener has no SNI routes; %d given", l.Protocol, len(l.SNI))
	}
	var err error
	if lp.spec.DefaultAction, err = l4Forward(l.Default, tgIDs); err != nil {
		return lp, fmt.Errorf("default: %w", err)
	}
	lp.spec.DefaultAction.TLSPassthrough = l.DefaultPassthrough && len(lp.spec.DefaultAction.Forward) > 0
	if l.Protocol != gateway.ProtocolTLS && len(lp.spec.DefaultAction.Forward) == 0 {
		return lp, errNoTCPDefault
	}
	for _, r := range l.SNI {
		a, err := l4Forward(r.Forward, tgIDs)
		if err != nil {
			return lp, fmt.Errorf("%s: %w", r.Source, err)
		}
		a.TLSPassthrough = r.Passthrough && len(a.Forward) > 0 // a refusal needs no mode
		lp.rules = append(lp.rules, providers.RuleSpec{Priority: len(lp.rules) + 1, Conditions: providers.RuleConditions{Hosts: r.Hostnames}, Action: a})
		lp.sources = append(lp.sources, r.Source)
	}
	return lp, nil
}

// errNoTCPDefault: a TCP or UDP listener without a usable route (or with its backends all invalid)
// has nothing to forward to; an empty default is a TLS listener's only.
var errNoTCPDefault = errors.New("no route to forward to")

// l4Forward is a passthrough forward: the resolved backends by weight. Unresolved backends
// have no share in the cloud's forward; with none resolved (or no forward) the action is an
// empty forward, which refuses the connection, as the Gateway API wants for a route whose
// backends are invalid.
func l4Forward(fw *gateway.Forward, tgIDs map[string]string) (providers.RuleAction, error) {
	var a providers.RuleAction
	if fw == nil {
		return a, nil
	}
	for _, b := range fw.Backends {
		if b.TargetGroup == "" {
			continue
		}
		id, ok := tgIDs[b.TargetGroup]
		if !ok {
			return a, fmt.Errorf("forward to %s: %w", b.TargetGroup, errUnknownGroup)
		}
		a.Forward = append(a.Forward, providers.WeightedTargetGroup{TargetGroupID: id, Weight: b.Weight})
	}
	if !slices.ContainsFunc(a.Forward, func(g providers.WeightedTargetGroup) bool { return g.Weight > 0 }) {
		a.Forward = nil // every resolved share has weight 0: refused as well
	}
	return a, nil
}

// passthrough tells whether a listener protocol passes connections or datagrams through (TLS,
// TCP, UDP).
func passthrough(protocol string) bool {
	return protocol == providers.ProtocolTLS || protocol == providers.ProtocolTCP || protocol == providers.ProtocolUDP
}

// listenerSlot is where a listener sits on the load balancer: ports are per transport, so a
// port holds one stream listener (HTTP, HTTPS, TLS or TCP) and one UDP listener.
type listenerSlot struct {
	port int
	udp  bool
}

func slotOf(protocol string, port int) listenerSlot {
	return listenerSlot{port: port, udp: protocol == providers.ProtocolUDP}
}

func ensureHTTPListeners(ctx context.Context, p providers.ApplicationLoadBalancing, alb *gateway.ApplicationLoadBalancer, cur *providers.ApplicationLoadBalancer, certs map[string]string, token string, res *GatewayResult) error {
	want, err := wantedListeners(alb, certs, res.TargetGroups, providers.CapabilitiesOf(p).HostnameScopes)
	if err != nil {
		return err
	}
	wanted := map[listenerSlot]bool{}
	for _, w := range want {
		wanted[slotOf(w.spec.Protocol, w.spec.Port)] = true
	}
	// A listener whose kind changes (HTTP to TLS on the same port, say: its rules would not
	// fit), a TLS listener losing its default forward (modifying a listener keeps a default
	// it does not replace) or its certificates is deleted first and created again below.
	var keep []providers.HTTPListener
	for _, have := range cur.Listeners {
		i := slices.IndexFunc(want, func(w listenerPlan) bool {
			return slotOf(w.spec.Protocol, w.spec.Port) == slotOf(have.Protocol, have.Port)
		})
		recreate := i >= 0 && (passthrough(have.Protocol) != passthrough(want[i].spec.Protocol) ||
			(passthrough(have.Protocol) && len(have.DefaultAction.Forward) > 0 && len(want[i].spec.DefaultAction.Forward) == 0) ||
			// A TLS listener turning to pass TLS through: a modify keeps certificates it is
			// not given.
			(have.Protocol == providers.ProtocolTLS && len(have.Certificates) > 0 && len(want[i].spec.Certificates) == 0))
		if !recreate {
			keep = append(keep, have)
			continue
		}
		if err := p.DeleteListener(ctx, have.ID); err != nil {
			return fmt.Errorf("delete listener %s (%s/%d) of %s, to create it again as %s: %w", have.ID, have.Protocol, have.Port, cur.ID, want[i].spec.Protocol, err)
		}
		res.did("delete listener %s/%d", have.Protocol, have.Port)
	}
	for _, w := range want {
		spec, where := w.spec, fmt.Sprintf("%s/%d", w.spec.Protocol, w.spec.Port)
		i := slices.IndexFunc(keep, func(h providers.HTTPListener) bool {
			return slotOf(h.Protocol, h.Port) == slotOf(spec.Protocol, spec.Port)
		})
		var id string
		switch {
		case i < 0:
			spec.ClientToken = clientToken(token, fmt.Sprintf("%s/%s/%d", cur.ID, spec.Protocol, spec.Port))
			created, err := p.CreateHTTPListener(ctx, cur.ID, spec)
			if err != nil {
				return fmt.Errorf("create listener %s on %s: %w", where, cur.ID, err)
			}
			id = created.ID
			res.did("create listener %s", where)
		default:
			have := keep[i]
			id = have.ID
			if have.Protocol != spec.Protocol || !sameAction(have.DefaultAction, spec.DefaultAction) || !slices.Equal(have.Certificates, spec.Certificates) ||
				!slices.Equal(have.HostnameScopes, spec.HostnameScopes) || !sameClientValidation(have.ClientValidation, spec.ClientValidation) {
				if have.Protocol == providers.ProtocolTLS && spec.Protocol == providers.ProtocolTLS && len(have.Certificates) == 0 && len(spec.Certificates) > 0 {
					// A passthrough TLS listener starting to terminate (a Gateway listener in mode
					// Terminate joins its port): its rules first, so that the names passed
					// through are marked so before the certificates make the rest terminate.
					if err := syncRules(ctx, p, id, where, w.rules, w.sources, token, res); err != nil {
						return err
					}
				}
				if _, err := p.ModifyHTTPListener(ctx, have.ID, spec); err != nil {
					return fmt.Errorf("modify listener %s (%s) of %s: %w", have.ID, where, cur.ID, err)
				}
				res.did("modify listener %s", where)
			}
		}
		if err := syncRules(ctx, p, id, where, w.rules, w.sources, token, res); err != nil {
			return err
		}
	}
	slices.SortFunc(keep, func(a, b providers.HTTPListener) int { // in port order, as the cloud lists them in any
		return cmp.Or(cmp.Compare(a.Port, b.Port), strings.Compare(a.Protocol, b.Protocol))
	})
	for _, have := range keep {
		if wanted[slotOf(have.Protocol, have.Port)] {
			continue
		}
		if err := p.DeleteListener(ctx, have.ID); err != nil {
			return fmt.Errorf("delete listener %s (%s/%d) of %s, no longer wanted: %w", have.ID, have.Protocol, have.Port, cur.ID, err)
		}
		res.did("delete listener %s/%d", have.Protocol, have.Port)
	}
	return nil
}

func sameClientValidation(a, b *providers.ClientValidation) bool {
	return a == b || a != nil && b != nil && a.Verify == b.Verify && bytes.Equal(a.CAPEM, b.CAPEM)
}

// servedCertificates maps the fingerprints the model's listeners serve to their IDs.
func servedCertificates(alb *gateway.ApplicationLoadBalancer, ids map[string]string) map[string]string {
	out := map[string]string{}
	for _, c := range modelCertificates(alb) {
		out[c.Fingerprint] = ids[c.Fingerprint]
	}
	return out
}

// deleteUnusedCertificates deletes our certificates no wanted listener serves (after the
// listeners moved off them).
func deleteUnusedCertificates(ctx context.Context, p providers.ApplicationLoadBalancing, tags map[string]string, keep map[string]string, res *GatewayResult) error {
	have, err := p.ListCertificates(ctx, tags)
	if err != nil {
		return fmt.Errorf("list certificates to collect: %w", err)
	}
	for _, c := range have {
		if keep[c.Tags[TagCertificate]] == c.ID {
			continue
		}
		if err := p.DeleteCertificate(ctx, c.ID); err != nil {
			return fmt.Errorf("delete certificate %s, no longer served: %w", c.ID, err)
		}
		res.did("delete certificate %s", c.ID)
	}
	return nil
}

// DeleteApplicationLoadBalancer removes every application load balancer, target group and
// certificate carrying all of tags (with TagLayer l7 added): load balancers first, which frees
// the groups and certificates.
func DeleteApplicationLoadBalancer(ctx context.Context, p providers.ApplicationLoadBalancing, tags map[string]string, res *GatewayResult) error {
	tags = withLayer(tags)
	if res == nil {
		res = &GatewayResult{}
	}
	lbs, err := p.ListApplicationLoadBalancers(ctx, tags)
	if err != nil {
		return fmt.Errorf("list application load balancers to delete: %w", err)
	}
	for _, lb := range lbs {
		if err := p.DeleteLoadBalancer(ctx, lb.ID); err != nil {
			return fmt.Errorf("delete application load balancer %s: %w", lb.ID, err)
		}
		res.did("delete load balancer %s", lb.ID)
	}
	tgs, err := p.ListTargetGroups(ctx, tags)
	if err != nil {
		return fmt.Errorf("list target groups to delete: %w", err)
	}
	for _, tg := range tgs {
		if err := p.DeleteTargetGroup(ctx, tg.ID); err != nil {
			return fmt.Errorf("delete target group %s: %w", tg.ID, err)
		}
		res.did("delete target group %s", tg.ID)
	}
	return deleteUnusedCertificates(ctx, p, tags, nil, res)
}

var errUnknownGroup = errors.New("no such target group in the model")
