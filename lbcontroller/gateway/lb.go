package gateway

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/flatnet/flatnet/lbcontroller/model"
)

// targetGroups collects the target groups of one load balancer, by name.
type targetGroups struct {
	t  *translation
	gw string // the Gateway, ns/name (BackendTLSPolicy ancestors)
	// clientCert is presented to the targets of the TLS groups (nil: none).
	clientCert *Certificate
	prefix     []string // cluster, Gateway UID, layer
	byName     map[string]*TargetGroup
	// names memoizes the names of the groups added (a hash each): 1,000 routes to one Service
	// add its group 1,000 times.
	names map[tgKey]string
}

// tgKey is what a target group's name is derived from, besides the prefix.
type tgKey struct {
	ns, svc  string
	port     int32
	protocol string
}

// add gives the name of backend b's target group, adding the group if it is new; "" when b
// must not be sent to: a BackendTLSPolicy that cannot be used targets it (its backends get a
// 500, or their connections are refused, never unverified traffic). terminated: b is the
// backend of a TLS listener that ends TLS on the load balancer (a TLSRoute in mode Terminate),
// whose TCP stream a BackendTLSPolicy on b encrypts again (a TLS group).
func (s *targetGroups) add(b backend, terminated bool) string {
	k := tgKey{b.svc.Namespace, b.svc.Name, b.port.Port, b.protocol}
	if terminated && b.protocol == ProtocolTCP {
		k.protocol = classTLSTerminate // its own group: the same backend passed through is another
	}
	if name, ok := s.names[k]; ok {
		return name
	}
	protocol, parts := b.protocol, []string{}
	var tls *BackendTLS
	if b.protocol == ProtocolHTTP || b.protocol == ProtocolHTTPS || b.protocol == ProtocolH2C || k.protocol == classTLSTerminate {
		if p := s.t.backendPolicy(s.gw, b); p != nil {
			if p.tls == nil {
				if s.names == nil {
					s.names = map[tgKey]string{}
				}
				s.names[k] = ""
				return ""
			}
			tls, protocol = p.tls, ProtocolHTTPS
			switch b.protocol {
			case ProtocolH2C:
				protocol = ProtocolGRPCS
			case ProtocolTCP:
				protocol = ProtocolTLS
			}
			parts = tls.nameParts()
		}
	}
	clientCert := ""
	if s.clientCert != nil && (protocol == ProtocolHTTPS || protocol == ProtocolGRPCS || protocol == ProtocolTLS) {
		clientCert = s.clientCert.Fingerprint
		parts = append(parts, "client", clientCert)
	}
	svc := key(b.svc.Namespace, b.svc.Name)
	name := cloudName(append(append(slices.Clone(s.prefix), svc, strconv.Itoa(int(b.port.Port)), protocol), parts...)...)
	if s.names == nil {
		s.names = map[tgKey]string{}
	}
	s.names[k] = name
	if s.byName[name] != nil {
		return name
	}
	proto := cmp.Or(b.port.Protocol, corev1.ProtocolTCP)
	live, draining := model.Endpoints(s.t.slices[svc], b.svc.Namespace, b.port.Name, proto, s.t.in.Registrable)
	if live == nil {
		live = []model.Target{}
	}
	s.byName[name] = &TargetGroup{Name: name, Service: svc, Port: int(b.port.Port), Protocol: protocol, TLS: tls, ClientCertificate: clientCert, Targets: live, Draining: draining}
	return name
}

func (s *targetGroups) list() []TargetGroup {
	out := make([]TargetGroup, 0, len(s.byName))
	for _, tg := range s.byName {
		out = append(out, *tg)
	}
	slices.SortFunc(out, func(a, b TargetGroup) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// loadBalancers builds the Gateway's load balancers from its serving listeners and their
// attached routes: neither when the Gateway is not accepted, asks for addresses it cannot have
// (Hold), or has nothing to serve.
func (t *translation) loadBalancers(g *gateway) GatewayLoadBalancers {
	uid := string(g.obj.UID)
	out := GatewayLoadBalancers{Namespace: g.obj.Namespace, Name: g.obj.Name, UID: uid}
	// What serves stays as it is: asking for addresses it cannot have does not take an
	// accepted Gateway down.
	out.Hold = g.acceptReason == "" && g.addressReason != ""
	if g.acceptReason != "" || g.addressReason != "" {
		return out
	}
	l7 := map[int][]*listener{}
	type l4key struct {
		port     int
		protocol string
	}
	// TLS-passthrough, TCP and UDP listeners go on the application load balancer too: one
	// address for the Gateway.
	pass := map[l4key][]*listener{}
	for _, l := range g.allListeners() {
		if !l.serving() {
			continue
		}
		port := int(l.spec.Port)
		k := l4key{port, portClass(l.class, !t.in.NoTLSRouteTermination)}
		switch l.class {
		case ProtocolHTTP, ProtocolHTTPS:
			l7[port] = append(l7[port], l)
		default:
			pass[k] = append(pass[k], l)
		}
	}
	l4Listeners := func(m map[l4key][]*listener, tgs *targetGroups) []L4Listener {
		keys := make([]l4key, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b l4key) int {
			return cmp.Or(cmp.Compare(a.port, b.port), strings.Compare(a.protocol, b.protocol))
		})
		var out []L4Listener
		for _, k := range keys {
			out = append(out, l4Listener(k.port, k.protocol, m[k], tgs))
		}
		return out
	}
	if len(l7) > 0 || len(pass) > 0 {
		tgs := &targetGroups{t: t, gw: g.key(), clientCert: g.clientCert, prefix: []string{t.in.Cluster, uid, "l7"}, byName: map[string]*TargetGroup{}}
		alb := &ApplicationLoadBalancer{Name: cloudName(t.in.Cluster, uid, "l7"), Address: g.address, Tags: g.tags}
		if g.address != "" {
			// A load balancer at another address is another load balancer: it is created
			// beside the one serving, before that one goes (deploy.ApplicationLoadBalancer).
			alb.Name = cloudName(t.in.Cluster, uid, "l7", g.address)
		}
		for _, port := range sortedKeys(l7) {
			alb.Listeners = append(alb.Listeners, httpListener(port, l7[port], tgs))
		}
		alb.Passthrough = l4Listeners(pass, tgs)
		alb.TargetGroups = tgs.list()
		if slices.ContainsFunc(alb.TargetGroups, func(tg TargetGroup) bool { return tg.ClientCertificate != "" }) {
			alb.BackendClientCertificate = g.clientCert
		}
		out.L7 = alb
	}
	return out
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// compareHosts orders hostnames most specific first: exact names before wildcards, longer
// before shorter (of two overlapping wildcards the longer has more labels), "" (any) last.
func compareHosts(a, b string) int {
	exact := func(h string) int {
		if h == "" || strings.HasPrefix(h, "*") {
			return 0
		}
		return len(h)
	}
	return cmp.Or(cmp.Compare(exact(b), exact(a)), cmp.Compare(len(b), len(a)), strings.Compare(a, b))
}

func sortListeners(ls []*listener) []*listener {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b *listener) int {
		return cmp.Or(compareHosts(a.hostname(), b.hostname()), strings.Compare(string(a.spec.Name), string(b.spec.Name)))
	})
	return ls
}

// candidate is one (hostname, route rule, match) before ordering.
type candidate struct {
	host  string
	route *route
	rule  *compiledRule
	match int
}

// compareCandidates is the Gateway API's precedence: hostname, then (gRPC before HTTP, each
// kind by its own criteria), then the oldest route, then namespace/name, then rule and match
// order.
func compareCandidates(a, b candidate) int {
	pa, pb := a.rule.matches[a.match].prec, b.rule.matches[b.match].prec
	boolDesc := func(x, y bool) int {
		switch {
		case x == y:
			return 0
		case x:
			return -1
		}
		return 1
	}
	c := cmp.Or(compareHosts(a.host, b.host), boolDesc(pa.grpc, pb.grpc))
	if c != 0 {
		return c
	}
	if pa.grpc {
		c = cmp.Or(cmp.Compare(pb.serviceLen, pa.serviceLen), cmp.Compare(pb.methodLen, pa.methodLen), cmp.Compare(pb.headers, pa.headers))
	} else {
		c = cmp.Or(cmp.Compare(pa.pathRank, pb.pathRank), cmp.Compare(pb.pathLen, pa.pathLen), boolDesc(pa.method, pb.method),
			cmp.Compare(pb.headers, pa.headers), cmp.Compare(pb.query, pa.query))
	}
	return cmp.Or(c,
		a.route.created.Compare(b.route.created.Time),
		strings.Compare(a.route.fullName(), b.route.fullName()),
		strings.Compare(a.route.kind, b.route.kind),
		cmp.Compare(a.rule.index, b.rule.index),
		cmp.Compare(a.match, b.match))
}

// candidates is an upper bound of the rule candidates of a listener: each usable attached
// route's matches times its hostnames there.
func candidates(l *listener) int {
	n := 0
	for _, a := range l.attached {
		if !a.route.usable() {
			continue
		}
		m := 0
		for _, cr := range a.route.rules {
			m += len(cr.matches)
		}
		n += m * max(len(a.hostnames), 1)
	}
	return n
}

// httpListener merges the Gateway listeners on one port into the load balancer's listener:
// each Gateway listener's rules in precedence order, most specific listener hostname first,
// each closed by a 404 for its hostname so that its requests never reach a less specific
// listener's routes (listener isolation).
func httpListener(port int, ls []*listener, tgs *targetGroups) HTTPListener {
	hl := HTTPListener{Port: port, Protocol: ls[0].class}
	sorted := sortListeners(ls)
	// Sized once: with 1,000 routes, growing these took a fifth of a translation.
	total := 0
	for _, l := range sorted {
		total += 1 + candidates(l)
	}
	hl.Rules = make([]Rule, 0, total)
	for _, l := range sorted {
		hl.Certificates = append(hl.Certificates, l.certs...)
		if hl.ClientValidation == nil {
			hl.ClientValidation = l.clientValidation // per port: the same for every listener of the port
		}
		if h := l.hostname(); h != "" && hl.Protocol == ProtocolHTTPS {
			hl.HostnameScopes = append(hl.HostnameScopes, h)
		}
		cands := make([]candidate, 0, candidates(l))
		for _, a := range l.attached {
			if !a.route.usable() {
				continue
			}
			hosts := a.hostnames
			if hosts == nil {
				hosts = []string{""}
			}
			for _, h := range hosts {
				for _, cr := range a.route.rules {
					for m := range cr.matches {
						cands = append(cands, candidate{host: h, route: a.route, rule: cr, match: m})
					}
				}
			}
		}
		slices.SortFunc(cands, compareCandidates)
		for _, c := range cands {
			cond := c.rule.matches[c.match].cond
			if c.host != "" {
				cond.Hosts = []string{c.host}
			}
			src := c.rule.source
			if len(c.rule.matches) > 1 {
				src += fmt.Sprintf(" match %d", c.match)
			}
			hl.Rules = append(hl.Rules, Rule{Source: src, Conditions: cond, Action: c.rule.httpActions(tgs)})
		}
		if h := l.hostname(); h != "" {
			hl.Rules = append(hl.Rules, Rule{
				Source:     l.label() + ": no route matches",
				Conditions: Conditions{Hosts: []string{h}},
				Action:     Action{FixedResponse: &FixedResponse{StatusCode: 404}},
			})
		}
	}
	for i := range hl.Rules {
		hl.Rules[i].Priority = i + 1
	}
	slices.SortStableFunc(hl.Certificates, func(a, b Certificate) int {
		return compareHosts(strings.Join(a.Hostnames, ""), strings.Join(b.Hostnames, ""))
	})
	return hl
}

// httpActions are the rule's actions with target group names for this load balancer.
func (cr *compiledRule) httpActions(tgs *targetGroups) Action {
	a := cr.actions
	switch {
	case cr.fixed != nil:
		a.FixedResponse, a.Redirect = cr.fixed, nil
	case a.Redirect != nil:
	default:
		for _, m := range cr.mirrors {
			if tg := tgs.add(m.backend, false); tg != "" {
				a.Mirrors = append(a.Mirrors, Mirror{TargetGroup: tg, Percent: m.percent})
			}
		}
		fw := forward(cr.backends, tgs, false)
		if fw == nil {
			a.FixedResponse = &FixedResponse{StatusCode: 500, Body: "every backendRef has weight 0"}
		} else {
			a.Forward = fw
		}
	}
	if a.Forward == nil { // what only forwarding does
		a.Rewrite, a.Mirrors, a.Timeouts, a.Retry = nil, nil, nil, nil
	}
	return a
}

// forward is the weighted split over backends, an unresolved backend standing without a target
// group (see WeightedBackend); nil when no backend has weight. A resolved backend of weight 0
// stays in the split with weight 0, as ELB does: its target group takes no request but keeps its
// targets registered and health-checked, so that a weight change shifts traffic to pods already
// healthy, and their readiness gates wait for that health.
func forward(bs []backend, tgs *targetGroups, terminated bool) *Forward {
	if !slices.ContainsFunc(bs, func(b backend) bool { return b.weight > 0 }) {
		return nil
	}
	var fw Forward
	for _, b := range bs {
		if b.weight <= 0 && !b.ok {
			continue
		}
		wb := WeightedBackend{Weight: max(b.weight, 0), RequestHeaders: b.requestHeaders, ResponseHeaders: b.responseHeaders}
		if b.ok {
			wb.TargetGroup = tgs.add(b, terminated)
		}
		if wb.Weight == 0 && slices.ContainsFunc(fw.Backends, func(o WeightedBackend) bool { return o.TargetGroup == wb.TargetGroup }) {
			continue // the group is in the split already
		}
		fw.Backends = append(fw.Backends, wb)
	}
	return &fw
}

// l4Listener is one passthrough listener of a listener class. A TCP or UDP listener forwards to
// the oldest attached route (the others are accepted but wait, as the spec allows); a TLS
// listener routes by SNI, the oldest route winning each hostname, with the same listener
// isolation as HTTP; one in mode Terminate also carries the Gateway listeners' certificates.
// Where TLS listeners of both modes share the port, the routes of those in mode Passthrough are
// marked Passthrough: the cloud's listener terminates the rest.
func l4Listener(port int, class string, ls []*listener, tgs *targetGroups) L4Listener {
	protocol := class
	if class == classTLSTerminate {
		protocol = ProtocolTLS
	}
	out := L4Listener{Port: port, Protocol: protocol}
	terminating := slices.ContainsFunc(ls, func(l *listener) bool { return l.class == classTLSTerminate })
	oldest := func(a, b *attachment) int {
		return cmp.Or(a.route.created.Compare(b.route.created.Time), strings.Compare(a.route.fullName(), b.route.fullName()))
	}
	var all []*attachment
	for _, l := range ls {
		all = append(all, l.attached...)
	}
	slices.SortStableFunc(all, oldest)
	for _, a := range all {
		if a.route.usable() && !slices.Contains(out.RouteOrder, a.route.rules[0].source) {
			out.RouteOrder = append(out.RouteOrder, a.route.rules[0].source)
		}
	}
	for _, l := range sortListeners(ls) {
		if l.class == classTLSTerminate {
			out.Certificates = append(out.Certificates, l.certs...) // most specific listener first
		}
		pass := terminating && l.class == ProtocolTLS // passed through beside terminated names
		attached := slices.Clone(l.attached)
		slices.SortStableFunc(attached, oldest)
		if protocol != ProtocolTLS {
			for _, a := range attached {
				if a.route.usable() {
					out.Default = forward(a.route.rules[0].backends, tgs, false)
					out.DefaultSource = a.route.rules[0].source
					break
				}
			}
			continue
		}
		claimed := map[string]bool{}
		var sni []SNIRoute
		for _, a := range attached {
			if !a.route.usable() {
				continue
			}
			hosts := a.hostnames
			if hosts == nil {
				hosts = []string{""}
			}
			for _, h := range hosts {
				if claimed[h] {
					continue
				}
				claimed[h] = true
				fw := forward(a.route.rules[0].backends, tgs, l.class == classTLSTerminate)
				if h == "" {
					out.Default, out.DefaultSource, out.DefaultPassthrough = fw, a.route.rules[0].source, pass
					continue
				}
				sni = append(sni, SNIRoute{Hostnames: []string{h}, Source: a.route.rules[0].source, Forward: fw, Passthrough: pass})
			}
		}
		if h := l.hostname(); h != "" && !claimed[h] {
			sni = append(sni, SNIRoute{Hostnames: []string{h}, Source: l.label() + ": no route matches"})
		}
		slices.SortStableFunc(sni, func(a, b SNIRoute) int { return compareHosts(a.Hostnames[0], b.Hostnames[0]) })
		out.SNI = append(out.SNI, sni...)
	}
	return out
}
