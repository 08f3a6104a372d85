package l7

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ConfigError is one problem Apply found in a Config: Field is the path to the offending field,
// such as "listeners[1].rules[0].path.value".
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string { return "l7 config: " + e.Field + ": " + e.Problem }

// Validate reports every problem in cfg (each a *ConfigError, joined), or nil when Apply would
// take it.
func Validate(cfg Config) error {
	_, _, err := compile(cfg, nil)
	return err
}

// snapshot is a validated Config in the form requests read, immutable once built; Apply hands
// each listener its part.
type snapshot struct {
	listeners map[portKey]*listener
	groups    map[string]*group
}

type listener struct {
	port   int
	proto  Protocol
	certs  *certSet
	scopes *scopeSet // nil: requests are not checked for misdirection
	// clientAuth and clientCAs are an HTTPS listener's client certificate handling
	// (tls.NoClientCert: none asked for).
	clientAuth tls.ClientAuthType
	clientCAs  *x509.CertPool
	rules      []*rule
	index      ruleIndex
	scheme     string // "http" or "https"
	portText   string // port in decimal, for X-Forwarded-Port
	// unmatched are the metrics of requests no rule matched (set by Apply).
	unmatched *series
}

type rule struct {
	name     string
	revision string // Rule.Revision, on a rule kept for reuse
	hosts    []hostPattern
	path     *pathMatcher
	method   string
	headers  []valueMatcher
	query    []valueMatcher
	action   action
	series   *series // set by Apply
}

type action struct {
	backends    []backend
	totalWeight int
	redirect    *Redirect
	fixed       *FixedResponse
	reqEdit     HeaderEdit
	respEdit    HeaderEdit
	rewrite     *Rewrite
	mirrors     []mirror
	timeout     time.Duration // the tighter of the timeouts (0: none): a try's without retries
	// With retries: requestTimeout bounds the tries together, backendTimeout each (0: none).
	requestTimeout, backendTimeout time.Duration
	retry                          *retryPolicy
	cors                           *corsPolicy
	prefixMatched                  string // the rule's trimmed Prefix path, for ReplacePrefixMatch
	tlsPassthrough                 bool   // TLS listeners: pass through, not terminate
	// Decided once here rather than per request:
	dropsContentType bool     // respEdit removes Content-Type
	reserved         []string // headers reqEdit names that the proxy owns (edits of them are undone)
	// hostTransform and urlTransform are the rule's Transforms (nil: none).
	hostTransform, urlTransform *transform
}

type backend struct {
	group            *group // nil: an invalid backend (500)
	weight           int
	reqEdit          HeaderEdit
	respEdit         HeaderEdit
	dropsContentType bool
	reserved         []string
}

type mirror struct {
	group   *group
	percent float64
}

type group struct {
	name      string
	proto     Protocol
	tls       *tls.Config // HTTPS and TLS only
	tlsKey    string      // what tls was made from, to tell transports apart
	healthy   []*target   // where new requests go
	failOpen  []*target   // where they go when no target is healthy
	targets   []*target
	next      atomic.Uint64 // round-robin position
	transport http.RoundTripper
}

type target struct {
	hostport string
	state    TargetState
	inflight *atomic.Int64 // the engine's count for hostport, set by Apply
	pool     *backendPool  // the fast path's idle connections to it for its group, set by Apply
}

// checker accumulates ConfigErrors. With prev, it reuses what it compiled for the last
// configuration the engine took; next collects this one's, for the next.
type checker struct {
	errs       []error
	prev, next *compiled
}

func (c *checker) bad(field, format string, args ...any) {
	c.errs = append(c.errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// portKey is a listener's socket: its port and transport. A UDP listener takes a port
// apart from the stream listener (HTTP, HTTPS, TLS or TCP) that may share its number.
type portKey struct {
	port int
	udp  bool
}

func (k portKey) String() string {
	if k.udp {
		return strconv.Itoa(k.port) + "/udp"
	}
	return strconv.Itoa(k.port)
}

// compile validates and compiles cfg. prev is what was compiled for the configuration the
// engine runs (nil: nothing reused); the second result is this configuration's, to be kept
// if it is taken.
func compile(cfg Config, prev *compiled) (*snapshot, *compiled, error) {
	if prev == nil {
		prev = newCompiled()
	}
	c := &checker{prev: prev, next: newCompiled()}
	s := &snapshot{listeners: map[portKey]*listener{}, groups: map[string]*group{}}
	for i, tg := range cfg.TargetGroups {
		if g := c.keptGroup(fmt.Sprintf("targetGroups[%d]", i), tg, s.groups); g != nil {
			s.groups[g.name] = g
		}
	}
	for i, l := range cfg.Listeners {
		f := fmt.Sprintf("listeners[%d]", i)
		k := portKey{port: l.Port, udp: l.Protocol == ProtocolUDP}
		if _, dup := s.listeners[k]; dup {
			c.bad(f+".port", "%s is taken by another listener", k)
			continue
		}
		if cl := c.listener(f, k, l, s.groups); cl != nil {
			s.listeners[k] = cl
		}
	}
	if len(c.errs) > 0 {
		return nil, nil, errors.Join(c.errs...)
	}
	return s, c.next, nil
}

func (c *checker) listener(f string, k portKey, l Listener, groups map[string]*group) *listener {
	cl := &listener{port: l.Port, proto: l.Protocol, portText: strconv.Itoa(l.Port)}
	if l.Port < 1 || l.Port > 65535 {
		c.bad(f+".port", "%d is not a port (1-65535)", l.Port)
	}
	switch l.Protocol {
	case ProtocolHTTP:
		cl.scheme = "http"
		if len(l.Certificates) > 0 {
			c.bad(f+".certificates", "an HTTP listener takes no certificates; use HTTPS")
		}
	case ProtocolHTTPS:
		cl.scheme = "https"
		cl.certs = c.certificates(f+".certificates", l.Certificates)
		cl.scopes = c.scopes(f+".hostnameScopes", l.HostnameScopes)
		cl.clientAuth, cl.clientCAs = c.clientAuth(f+".clientAuth", l.ClientAuth)
	case ProtocolTLS:
		if len(l.Certificates) > 0 { // terminates TLS
			cl.certs = c.certificates(f+".certificates", l.Certificates)
		}
	case ProtocolTCP, ProtocolUDP:
		if len(l.Certificates) > 0 {
			c.bad(f+".certificates", "a %s listener passes connections through and takes no certificates; use TLS or HTTPS to terminate TLS", l.Protocol)
		}
		if len(l.Rules) != 1 || len(l.Rules[0].Hosts) > 0 {
			c.bad(f+".rules", "a %s listener takes exactly one rule, without hosts (%d given)", l.Protocol, len(l.Rules))
		}
	default:
		c.bad(f+".protocol", "%q is not a listener protocol (HTTP, HTTPS, TLS, TCP or UDP)", l.Protocol)
	}
	if len(l.HostnameScopes) > 0 && l.Protocol != ProtocolHTTPS {
		c.bad(f+".hostnameScopes", "only an HTTPS listener has hostname scopes (the SNI name they compare a request's Host with); this one is %s", l.Protocol)
	}
	if l.ClientAuth != nil && l.Protocol != ProtocolHTTPS {
		c.bad(f+".clientAuth", "only an HTTPS listener asks clients for certificates; this one is %s", l.Protocol)
	}
	passthrough := l.Protocol == ProtocolTLS || l.Protocol == ProtocolTCP || l.Protocol == ProtocolUDP
	cl.rules = make([]*rule, 0, len(l.Rules))
	lk := listenerKey{k, l.Protocol, l.Protocol == ProtocolTLS && len(l.Certificates) > 0}
	prev, next := c.prev.rules[lk], make(map[string]*rule, len(c.prev.rules[lk]))
	c.next.rules[lk] = next
	for i := range l.Rules {
		r := &l.Rules[i]
		if cr := unchanged(prev, next, r, groups); cr != nil {
			cl.rules = append(cl.rules, cr) // checked as it is when it was compiled
			continue
		}
		rf := f + ".rules[" + strconv.Itoa(i) + "]" // each rule's: concatenated, not formatted
		if passthrough {
			c.passthroughRule(rf, l.Protocol, len(l.Certificates) > 0, r, groups)
		} else {
			c.httpRule(rf, r, groups)
		}
		if cr := c.revisedRule(rf, prev, next, r, groups); cr != nil {
			cl.rules = append(cl.rules, cr)
		}
	}
	cl.index = indexRules(cl.rules)
	return cl
}

// passthroughRule checks a rule of a TLS, TCP or UDP listener: host names (TLS) and a plain
// forward to TCP groups (UDP groups from a UDP listener), nothing that needs a request. A
// TLS listener that terminates TLS may also forward to TLS groups, from rules that do not
// pass TLS through: those have a decrypted stream to encrypt again.
func (c *checker) passthroughRule(f string, proto Protocol, terminating bool, r *Rule, groups map[string]*group) {
	a := r.Action
	if r.Path != nil || len(r.Headers) > 0 || len(r.Query) > 0 || r.Method != "" {
		c.bad(f, "a %s listener sees no requests: its rules match hosts (SNI names) only", proto)
	}
	if a.Forward == nil || a.Redirect != nil || a.FixedResponse != nil || a.Rewrite != nil || len(a.Transforms) > 0 || len(a.Mirrors) > 0 ||
		a.Timeouts != (Timeouts{}) || a.Retry != nil || a.CORS != nil || !a.RequestHeaders.empty() || !a.ResponseHeaders.empty() {
		c.bad(f+".action", "a %s listener's rules forward only, without header edits, rewrites, transforms, mirrors, timeouts, retries or CORS", proto)
	}
	if a.TLSPassthrough && proto != ProtocolTLS {
		c.bad(f+".action.tlsPassthrough", "a %s listener has no TLS to pass through or terminate: only a TLS listener's rules take it", proto)
	}
	if a.Forward != nil {
		for i, b := range a.Forward.Backends {
			ff := fmt.Sprintf("%s.action.forward.backends[%d]", f, i)
			if !b.RequestHeaders.empty() || !b.ResponseHeaders.empty() {
				c.bad(ff, "a %s listener's backends take no header edits", proto)
			}
			want := ProtocolTCP
			if proto == ProtocolUDP {
				want = ProtocolUDP
			}
			g := groups[b.TargetGroup]
			switch {
			case g == nil || g.proto == want:
			case g.proto == ProtocolTLS && proto == ProtocolTLS && !terminating:
				c.bad(ff+".targetGroup", "%q is a TLS group, which takes a decrypted stream to encrypt again; this TLS listener passes TLS through (it has no certificates)", b.TargetGroup)
			case g.proto == ProtocolTLS && proto == ProtocolTLS && a.TLSPassthrough:
				c.bad(ff+".targetGroup", "%q is a TLS group, which takes a decrypted stream to encrypt again; this rule passes TLS through", b.TargetGroup)
			case g.proto == ProtocolTLS && proto == ProtocolTLS:
			default:
				c.bad(ff+".targetGroup", "%q is a %s group; a %s listener forwards to %s groups", b.TargetGroup, g.proto, proto, want)
			}
		}
	}
}

// httpRule checks that an HTTP or HTTPS listener's rule forwards and mirrors to HTTP groups
// only.
func (c *checker) httpRule(f string, r *Rule, groups map[string]*group) {
	if r.Action.TLSPassthrough {
		c.bad(f+".action.tlsPassthrough", "an HTTP or HTTPS listener serves requests; only a TLS listener's rules pass TLS through")
	}
	notHTTP := func(name string) (*group, bool) {
		g := groups[name]
		return g, g != nil && (g.proto == ProtocolTCP || g.proto == ProtocolUDP || g.proto == ProtocolTLS)
	}
	if r.Action.Forward != nil {
		for i, b := range r.Action.Forward.Backends {
			if g, bad := notHTTP(b.TargetGroup); bad {
				c.bad(fmt.Sprintf("%s.action.forward.backends[%d].targetGroup", f, i), "%q is a %s group; HTTP and HTTPS listeners forward to HTTP, HTTPS or H2C groups", b.TargetGroup, g.proto)
			}
		}
	}
	for i, m := range r.Action.Mirrors {
		if g, bad := notHTTP(m.TargetGroup); bad {
			c.bad(fmt.Sprintf("%s.action.mirrors[%d].targetGroup", f, i), "%q is a %s group; HTTP and HTTPS listeners mirror to HTTP, HTTPS or H2C groups", m.TargetGroup, g.proto)
		}
	}
}

func (c *checker) rule(f string, r *Rule, groups map[string]*group) *rule {
	cr := &rule{name: r.Name, method: r.Method}
	if r.Name == "" {
		cr.name = f
	}
	for i, h := range r.Hosts {
		if err := checkHostPattern(h); err != nil {
			c.bad(fmt.Sprintf("%s.hosts[%d]", f, i), "%v", err)
		}
		cr.hosts = append(cr.hosts, parseHostPattern(h))
	}
	if r.Path != nil {
		cr.path = c.path(f+".path", *r.Path)
	}
	if r.Method != "" && !isToken(r.Method) {
		c.bad(f+".method", "%q is not an HTTP method", r.Method)
	}
	for i, h := range r.Headers {
		ff := fmt.Sprintf("%s.headers[%d]", f, i)
		if !isToken(h.Name) {
			c.bad(ff+".name", "%q is not a header name", h.Name)
		}
		cr.headers = append(cr.headers, c.value(ff, http.CanonicalHeaderKey(h.Name), h.Type, h.Value))
	}
	for i, q := range r.Query {
		ff := fmt.Sprintf("%s.query[%d]", f, i)
		if q.Name == "" {
			c.bad(ff+".name", "empty; name the query parameter")
		}
		cr.query = append(cr.query, c.value(ff, q.Name, q.Type, q.Value))
	}
	cr.action = c.action(f+".action", r, cr, groups)
	return cr
}

func (c *checker) path(f string, p PathMatch) *pathMatcher {
	m := &pathMatcher{typ: p.Type, value: p.Value}
	switch p.Type {
	case MatchExact, MatchPrefix:
		if !strings.HasPrefix(p.Value, "/") {
			c.bad(f+".value", "%q does not start with /", p.Value)
		} else if strings.ContainsAny(p.Value, "?# \t\r\n") {
			c.bad(f+".value", "%q holds a character a path cannot (?, #, space or control)", p.Value)
		}
		if p.Type == MatchPrefix {
			m.value = trimPrefix(p.Value)
		}
	case MatchRegex:
		re, err := compileRegex(p.Value)
		if err != nil {
			c.bad(f+".value", "not a regular expression (RE2): %v", err)
		}
		m.re = re
	default:
		c.bad(f+".type", "%q is not a path match type (Exact, Prefix or Regex)", p.Type)
	}
	return m
}

func (c *checker) value(f, name string, typ MatchType, value string) valueMatcher {
	m := valueMatcher{name: name, exact: value}
	switch typ {
	case MatchExact:
	case MatchRegex:
		re, err := compileRegex(value)
		if err != nil {
			c.bad(f+".value", "not a regular expression (RE2): %v", err)
			re = regexp.MustCompile(`^$`)
		}
		m.re = re
	default:
		c.bad(f+".type", "%q is not a value match type (Exact or Regex)", typ)
	}
	return m
}

func (c *checker) action(f string, r *Rule, cr *rule, groups map[string]*group) action {
	a := r.Action
	ca := action{redirect: cloneRedirect(a.Redirect), fixed: clonePtr(a.FixedResponse), rewrite: cloneRewrite(a.Rewrite), timeout: timeoutOf(a.Timeouts),
		requestTimeout: a.Timeouts.Request, backendTimeout: a.Timeouts.BackendRequest, retry: c.retry(f+".retry", a.Retry),
		reqEdit: c.edit(f+".requestHeaders", a.RequestHeaders), respEdit: c.edit(f+".responseHeaders", a.ResponseHeaders),
		cors: c.cors(f+".cors", a.CORS), tlsPassthrough: a.TLSPassthrough}
	ca.dropsContentType, ca.reserved = ca.respEdit.removes("Content-Type"), ca.reqEdit.reservedNames()
	ca.hostTransform, ca.urlTransform = c.transforms(f, a.Transforms)
	if cr.path != nil && cr.path.typ == MatchPrefix {
		ca.prefixMatched = cr.path.value
	}
	kinds := 0
	for _, set := range []bool{a.Forward != nil, a.Redirect != nil, a.FixedResponse != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		c.bad(f, "give exactly one of forward, redirect and fixedResponse (%d given)", kinds)
	}
	if ca.urlTransform != nil && a.Rewrite != nil && a.Rewrite.Path != nil {
		c.bad(f+".rewrite.path", "a rule rewrites its URL with a url-rewrite transform or rewrite.path, not both")
	}
	if ca.hostTransform != nil && a.Rewrite != nil && a.Rewrite.Hostname != "" {
		c.bad(f+".rewrite.hostname", "a rule rewrites its Host with a host-header-rewrite transform or rewrite.hostname, not both")
	}
	if a.Forward == nil && (a.Rewrite != nil || len(a.Transforms) > 0 || len(a.Mirrors) > 0 || a.Timeouts != (Timeouts{}) || a.Retry != nil) {
		c.bad(f, "rewrite, transforms, mirrors, timeouts and retry apply to forward only")
	}
	if a.Forward != nil {
		for i, b := range a.Forward.Backends {
			ff := f + ".forward.backends[" + strconv.Itoa(i) + "]"
			cb := backend{weight: b.Weight, reqEdit: c.edit(ff+".requestHeaders", b.RequestHeaders),
				respEdit: c.edit(ff+".responseHeaders", b.ResponseHeaders)}
			cb.dropsContentType, cb.reserved = cb.respEdit.removes("Content-Type"), cb.reqEdit.reservedNames()
			if b.Weight < 0 {
				c.bad(ff+".weight", "%d is negative", b.Weight)
			}
			if b.TargetGroup != "" {
				if cb.group = groups[b.TargetGroup]; cb.group == nil {
					c.bad(ff+".targetGroup", "no target group %q in targetGroups", b.TargetGroup)
				}
			}
			ca.backends = append(ca.backends, cb)
			ca.totalWeight += max(b.Weight, 0)
		}
	}
	if a.Redirect != nil {
		c.redirect(f+".redirect", *a.Redirect, cr.path)
	}
	if a.Rewrite != nil {
		if a.Rewrite.Hostname != "" && checkHostname(a.Rewrite.Hostname) != nil {
			c.bad(f+".rewrite.hostname", "%v", checkHostname(a.Rewrite.Hostname))
		}
		if a.Rewrite.Path != nil {
			c.modifier(f+".rewrite.path", *a.Rewrite.Path, cr.path)
		}
	}
	if fr := a.FixedResponse; fr != nil && (fr.StatusCode < 200 || fr.StatusCode > 599) {
		c.bad(f+".fixedResponse.statusCode", "%d is not a status code a response can carry (200-599)", fr.StatusCode)
	}
	for i, m := range a.Mirrors {
		ff := fmt.Sprintf("%s.mirrors[%d]", f, i)
		g := groups[m.TargetGroup]
		if g == nil {
			c.bad(ff+".targetGroup", "no target group %q in targetGroups", m.TargetGroup)
		}
		if m.Percent < 0 || m.Percent > 100 || m.Percent != m.Percent {
			c.bad(ff+".percent", "%v is not a percentage (0-100)", m.Percent)
		}
		ca.mirrors = append(ca.mirrors, mirror{group: g, percent: m.Percent})
	}
	t := a.Timeouts
	if t.Request < 0 || t.BackendRequest < 0 {
		c.bad(f+".timeouts", "negative timeout")
	}
	if t.Request > 0 && t.BackendRequest > t.Request {
		c.bad(f+".timeouts.backendRequest", "%v exceeds the request timeout %v", t.BackendRequest, t.Request)
	}
	return ca
}

// The bounds of a Retry.
const (
	maxRetryAttempts = 10
	maxRetryBackoff  = time.Minute
)

// retryPolicy is a compiled Retry.
type retryPolicy struct {
	codes    [2]uint64 // bit c-400 of the status codes 400-527, bit c-528 of the next word up to 599
	attempts int
	backoff  time.Duration
}

func (p *retryPolicy) retriesCode(code int) bool {
	if code < 400 || code > 599 {
		return false
	}
	i := code - 400
	return p.codes[i/64]&(1<<(i%64)) != 0
}

func (c *checker) retry(f string, r *Retry) *retryPolicy {
	if r == nil {
		return nil
	}
	p := &retryPolicy{attempts: r.Attempts, backoff: r.Backoff}
	if r.Attempts < 1 || r.Attempts > maxRetryAttempts {
		c.bad(f+".attempts", "%d is not between 1 and %d", r.Attempts, maxRetryAttempts)
	}
	if r.Backoff < 0 || r.Backoff > maxRetryBackoff {
		c.bad(f+".backoff", "%v is not between 0 and %v", r.Backoff, maxRetryBackoff)
	}
	for i, code := range r.Codes {
		switch {
		case code < 400 || code > 599:
			c.bad(fmt.Sprintf("%s.codes[%d]", f, i), "%d is not a status code a retry is made for (400-599)", code)
		case p.retriesCode(code):
			c.bad(fmt.Sprintf("%s.codes[%d]", f, i), "%d is given twice", code)
		default:
			n := code - 400
			p.codes[n/64] |= 1 << (n % 64)
		}
	}
	return p
}

func (c *checker) redirect(f string, r Redirect, pm *pathMatcher) {
	switch r.Scheme {
	case "", "http", "https":
	default:
		c.bad(f+".scheme", "%q is not http or https", r.Scheme)
	}
	if r.Hostname != "" && checkHostname(r.Hostname) != nil {
		c.bad(f+".hostname", "%v", checkHostname(r.Hostname))
	}
	if r.Port < 0 || r.Port > 65535 {
		c.bad(f+".port", "%d is not a port (1-65535, or 0 to derive it)", r.Port)
	}
	switch r.StatusCode {
	case 0, 301, 302, 303, 307, 308:
	default:
		c.bad(f+".statusCode", "%d is not a redirect code (301, 302, 303, 307 or 308)", r.StatusCode)
	}
	if r.Path != nil {
		c.modifier(f+".path", *r.Path, pm)
	}
}

func (c *checker) modifier(f string, m PathModifier, pm *pathMatcher) {
	switch m.Type {
	case ReplaceFullPath:
		if !strings.HasPrefix(m.Value, "/") {
			c.bad(f+".value", "%q does not start with /", m.Value)
		}
	case ReplacePrefixMatch:
		if m.Value != "" && !strings.HasPrefix(m.Value, "/") {
			c.bad(f+".value", "%q does not start with / (or is empty, to strip the prefix)", m.Value)
		}
		if pm == nil || pm.typ != MatchPrefix {
			c.bad(f+".type", "ReplacePrefixMatch needs the rule to match a path Prefix")
		}
	default:
		c.bad(f+".type", "%q is not a path modifier (ReplaceFullPath or ReplacePrefixMatch)", m.Type)
	}
	if strings.ContainsAny(m.Value, "?# \t\r\n") {
		c.bad(f+".value", "%q holds a character a path cannot (?, #, space or control)", m.Value)
	}
}

// edit checks a HeaderEdit and returns it with canonical header names.
func (c *checker) edit(f string, e HeaderEdit) HeaderEdit {
	out := HeaderEdit{}
	canon := func(ff, name, value string) string {
		if !isToken(name) {
			c.bad(ff+".name", "%q is not a header name", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			c.bad(ff+".value", "holds CR, LF or NUL")
		}
		return http.CanonicalHeaderKey(name)
	}
	for i, h := range e.Set {
		out.Set = append(out.Set, Header{canon(fmt.Sprintf("%s.set[%d]", f, i), h.Name, h.Value), h.Value})
	}
	for i, h := range e.Add {
		out.Add = append(out.Add, Header{canon(fmt.Sprintf("%s.add[%d]", f, i), h.Name, h.Value), h.Value})
	}
	for i, n := range e.Remove {
		out.Remove = append(out.Remove, canon(fmt.Sprintf("%s.remove[%d]", f, i), n, ""))
	}
	return out
}

func (c *checker) group(f string, tg TargetGroup, seen map[string]*group) *group {
	g := &group{name: tg.Name, proto: tg.Protocol}
	if tg.Name == "" {
		c.bad(f+".name", "empty; name the target group")
		return nil
	}
	if seen[tg.Name] != nil {
		c.bad(f+".name", "%q names another target group too", tg.Name)
		return nil
	}
	switch tg.Protocol {
	case ProtocolHTTP, ProtocolH2C:
		if tg.TLS != nil {
			c.bad(f+".tls", "TLS settings need protocol HTTPS or TLS")
		}
	case ProtocolTCP, ProtocolUDP:
		if tg.TLS != nil {
			c.bad(f+".tls", "a %s group's targets speak for themselves: TLS settings need protocol HTTPS or TLS", tg.Protocol)
		}
	case ProtocolHTTPS:
		g.tls, g.tlsKey = c.backendTLS(f+".tls", tg.TLS), backendTLSKey(tg.TLS)
	case ProtocolTLS:
		if tg.TLS == nil {
			c.bad(f+".tls", "a TLS group needs TLS settings: the server name and roots its targets are verified with, or InsecureSkipVerify")
			break
		}
		// Compiled once here, as an HTTPS group's: each connection's handshake takes it as it is.
		g.tls, g.tlsKey = c.backendTLS(f+".tls", tg.TLS), backendTLSKey(tg.TLS)
		g.tls.NextProtos = nil
	default:
		c.bad(f+".protocol", "%q is not a target protocol (HTTP, HTTPS, H2C, TLS, TCP or UDP)", tg.Protocol)
	}
	addrs := map[string]bool{}
	for i, t := range tg.Targets {
		ff := fmt.Sprintf("%s.targets[%d]", f, i)
		if !t.Addr.IsValid() || t.Addr.Port() == 0 {
			c.bad(ff+".addr", "%q is not an ip:port with a port", t.Addr)
			continue
		}
		switch t.State {
		case StateInitial, StateHealthy, StateUnhealthy, StateDraining, StateUnused, StateUnavailable:
		default:
			c.bad(ff+".state", "%q is not a target state (initial, healthy, unhealthy, draining, unused, unavailable)", t.State)
		}
		hp := t.Addr.String()
		if addrs[hp] {
			c.bad(ff+".addr", "%s is listed twice", hp)
		}
		addrs[hp] = true
		ct := &target{hostport: hp, state: t.State}
		g.targets = append(g.targets, ct)
		switch t.State {
		case StateHealthy:
			g.healthy = append(g.healthy, ct)
		case StateInitial, StateUnhealthy:
			g.failOpen = append(g.failOpen, ct)
		}
	}
	return g
}

func (e HeaderEdit) empty() bool { return len(e.Set) == 0 && len(e.Add) == 0 && len(e.Remove) == 0 }

func (e HeaderEdit) removes(name string) bool { return slices.Contains(e.Remove, name) }

// reservedNames lists the reserved headers (reservedHeaders) the edit names (canonical names).
func (e HeaderEdit) reservedNames() []string {
	var out []string
	add := func(n string) {
		if reservedHeaders[n] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, h := range e.Set {
		add(h.Name)
	}
	for _, h := range e.Add {
		add(h.Name)
	}
	for _, n := range e.Remove {
		add(n)
	}
	return out
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			continue
		}
		return false
	}
	return true
}

// checkHostname accepts a DNS name of letters, digits, '-' and '.' labels.
func checkHostname(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%q is not a hostname", h)
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a hostname: label %q", h, label)
		}
		for i := 0; i < len(label); i++ {
			b := label[i] | 0x20 // lowercase for letters
			letter, digit := b >= 'a' && b <= 'z', label[i] >= '0' && label[i] <= '9'
			if !letter && !digit && label[i] != '-' {
				return fmt.Errorf("%q is not a hostname: %q in label %q", h, label[i], label)
			}
		}
	}
	return nil
}

// checkHostPattern accepts a hostname or "*." followed by one.
func checkHostPattern(h string) error {
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		h = rest
	}
	return checkHostname(h)
}

// clonePtr, cloneRedirect and cloneRewrite copy what an action keeps of the caller's
// configuration, so that the caller changing its structures after Apply (or reusing them for
// the next configuration) cannot change what serves.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func cloneRedirect(r *Redirect) *Redirect {
	c := clonePtr(r)
	if c != nil {
		c.Path = clonePtr(r.Path)
	}
	return c
}

func cloneRewrite(r *Rewrite) *Rewrite {
	c := clonePtr(r)
	if c != nil {
		c.Path = clonePtr(r.Path)
	}
	return c
}
