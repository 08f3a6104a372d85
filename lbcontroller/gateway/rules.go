package gateway

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// compiledRule is one valid route rule, checked and with its backends resolved; hostnames and
// target group names are added per Gateway listener when the load balancers are built.
type compiledRule struct {
	index    int
	source   string
	matches  []compiledMatch
	actions  Action // everything but Forward and Mirrors
	backends []backend
	mirrors  []mirrorRef
	// fixed answers every request (a rule with no backendRefs, or an unresolvable filter).
	fixed *FixedResponse
}

type compiledMatch struct {
	cond Conditions
	prec precedence
}

type mirrorRef struct {
	backend backend
	percent float64
}

// precedence holds what the Gateway API orders matches by, after the hostname.
type precedence struct {
	grpc bool
	// HTTP: Exact path first, then RegularExpression (the spec leaves its place to us), then
	// Prefix; longer values first.
	pathRank, pathLen int
	method            bool
	headers, query    int
	// gRPC: characters in the service and method.
	serviceLen, methodLen int
}

// gatewayDuration is the Gateway API's Duration syntax (GEP-2257).
var gatewayDuration = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// grpcContentType keeps gRPC rules to gRPC requests (no method condition: gRPC is POST, and the
// content type says gRPC already): an HTTPRoute on the same hostname still gets everything else.
// It is written as alternatives of literal text and .*, so that a cloud whose header conditions
// are a few wildcard values (ELBv2: three, OR'd) carries it as one value each.
var grpcContentType = StringMatch{Name: "content-type", Type: MatchRegex, Value: `application/grpc|application/grpc\+.*|application/grpc;.*`}

func ruleSource(r *route, i int, name *gwv1.SectionName) string {
	// Concatenated, not formatted: a translation names every rule of every route.
	s := r.kind + " " + r.ns + "/" + r.name + " rule " + strconv.Itoa(i)
	if name != nil && *name != "" {
		s += " (" + string(*name) + ")"
	}
	return s
}

func (t *translation) compileHTTP(r *route, o *gwv1.HTTPRoute) {
	r.ruleCount = len(o.Spec.Rules)
	for i, rule := range o.Spec.Rules {
		cr := &compiledRule{index: i, source: ruleSource(r, i, rule.Name)}
		where := "rule " + strconv.Itoa(i)
		bad := func(reason, format string, args ...any) {
			r.dropRule(reason, where+": "+format, args...)
		}
		ok := true
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.HTTPRouteMatch{{}}
		}
		for _, m := range matches {
			c, err := httpMatch(m)
			if err != nil {
				bad(string(gwv1.RouteReasonUnsupportedValue), "%v", err)
				ok = false
				break
			}
			cr.matches = append(cr.matches, c)
		}
		if ok {
			ok = t.httpFilters(r, cr, where, rule.Filters, bad)
		}
		if !ok {
			continue
		}
		for j, br := range rule.BackendRefs {
			b := t.resolveBackend(r, where+" backendRef "+strconv.Itoa(j), br.BackendObjectReference, br.Weight)
			if !backendFilters(&b, br.Filters, func(format string, args ...any) {
				bad(string(gwv1.RouteReasonUnsupportedValue), "backendRef %d: "+format, append([]any{j}, args...)...)
			}) {
				ok = false
			}
			cr.backends = append(cr.backends, b)
		}
		if rule.Timeouts != nil {
			to, err := timeouts(rule.Timeouts)
			if err != nil {
				bad(string(gwv1.RouteReasonUnsupportedValue), "%v", err)
				ok = false
			}
			cr.actions.Timeouts = to
		}
		if rule.Retry != nil {
			rt, err := retry(rule.Retry)
			if err != nil {
				bad(string(gwv1.RouteReasonUnsupportedValue), "%v", err)
				ok = false
			}
			cr.actions.Retry = rt
		}
		if !ok {
			continue
		}
		if len(rule.BackendRefs) == 0 && cr.actions.Redirect == nil && cr.fixed == nil {
			cr.fixed = &FixedResponse{StatusCode: 500, Body: "no backendRefs"}
		}
		r.rules = append(r.rules, cr)
	}
}

// trimPrefixSlash drops a prefix path's trailing slashes; "/" stays.
func trimPrefixSlash(p string) string {
	if t := strings.TrimRight(p, "/"); t != "" {
		return t
	}
	return "/"
}

func httpMatch(m gwv1.HTTPRouteMatch) (compiledMatch, error) {
	var c compiledMatch
	typ, val := gwv1.PathMatchPathPrefix, "/"
	if m.Path != nil {
		typ = ptrOr(m.Path.Type, gwv1.PathMatchPathPrefix)
		val = ptrOr(m.Path.Value, "/")
	}
	switch typ {
	case gwv1.PathMatchExact, gwv1.PathMatchPathPrefix:
		if !strings.HasPrefix(val, "/") {
			return c, fmt.Errorf("path %q must begin with /", val)
		}
		c.cond.Path = &PathMatch{Type: MatchExact, Value: val}
		c.prec.pathRank, c.prec.pathLen = 0, len(val)
		if typ == gwv1.PathMatchPathPrefix {
			// A prefix matches whole segments, so a trailing "/" changes nothing ("/x/" matches
			// "/x" too); one spelling, which a cloud reads back the same. The precedence keeps
			// the length as written.
			c.cond.Path.Type = MatchPrefix
			c.cond.Path.Value = trimPrefixSlash(val)
			c.prec.pathRank = 2
		}
	case gwv1.PathMatchRegularExpression:
		if _, err := regexp.Compile(val); err != nil {
			return c, fmt.Errorf("path regular expression %q is not valid RE2: %w", val, err)
		}
		c.cond.Path = &PathMatch{Type: MatchRegex, Value: val}
		c.prec.pathRank, c.prec.pathLen = 1, len(val)
	default:
		return c, fmt.Errorf("path match type %q is not supported: use Exact, PathPrefix or RegularExpression", typ)
	}
	if m.Method != nil {
		c.cond.Method = string(*m.Method)
		c.prec.method = true
	}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		name := strings.ToLower(string(h.Name))
		if seen[name] {
			continue // the spec: only the first match of a name counts
		}
		seen[name] = true
		sm, err := stringMatch("header", string(h.Name), string(ptrOr(h.Type, gwv1.HeaderMatchExact)), h.Value)
		if err != nil {
			return c, err
		}
		c.cond.Headers = append(c.cond.Headers, sm)
	}
	c.prec.headers = len(c.cond.Headers)
	seen = map[string]bool{}
	for _, q := range m.QueryParams {
		if seen[string(q.Name)] {
			continue
		}
		seen[string(q.Name)] = true
		sm, err := stringMatch("query parameter", string(q.Name), string(ptrOr(q.Type, gwv1.QueryParamMatchExact)), q.Value)
		if err != nil {
			return c, err
		}
		c.cond.Query = append(c.cond.Query, sm)
	}
	c.prec.query = len(c.cond.Query)
	return c, nil
}

// stringMatch checks a header or query match; typ is the Gateway API's (Exact or
// RegularExpression).
func stringMatch(what, name, typ, value string) (StringMatch, error) {
	switch typ {
	case "Exact":
		typ = MatchExact
	case "RegularExpression":
		typ = MatchRegex
		if _, err := regexp.Compile(value); err != nil {
			return StringMatch{}, fmt.Errorf("%s %s regular expression %q is not valid RE2: %w", what, name, value, err)
		}
	default:
		return StringMatch{}, fmt.Errorf("%s %s match type %q is not supported: use Exact or RegularExpression", what, name, typ)
	}
	return StringMatch{Name: name, Type: typ, Value: value}, nil
}

// httpFilters translates a rule's filters into cr; false: the rule is dropped.
func (t *translation) httpFilters(r *route, cr *compiledRule, where string, filters []gwv1.HTTPRouteFilter, bad func(string, string, ...any)) bool {
	unsupported := string(gwv1.RouteReasonUnsupportedValue)
	for _, f := range filters {
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			if f.RequestHeaderModifier == nil {
				bad(unsupported, "filter RequestHeaderModifier needs requestHeaderModifier")
				return false
			}
			cr.actions.RequestHeaders = headerModifier(f.RequestHeaderModifier)
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			if f.ResponseHeaderModifier == nil {
				bad(unsupported, "filter ResponseHeaderModifier needs responseHeaderModifier")
				return false
			}
			cr.actions.ResponseHeaders = headerModifier(f.ResponseHeaderModifier)
		case gwv1.HTTPRouteFilterRequestRedirect:
			rd, err := redirect(f.RequestRedirect, cr.matches)
			if err != nil {
				bad(unsupported, "%v", err)
				return false
			}
			cr.actions.Redirect = rd
		case gwv1.HTTPRouteFilterURLRewrite:
			if f.URLRewrite == nil {
				bad(unsupported, "filter URLRewrite needs urlRewrite")
				return false
			}
			pm, err := pathModifier(f.URLRewrite.Path, cr.matches)
			if err != nil {
				bad(unsupported, "%v", err)
				return false
			}
			// A filter that changes nothing is no rewrite: the cloud would read back none.
			if rw := (Rewrite{Hostname: string(ptrOr(f.URLRewrite.Hostname, "")), Path: pm}); rw != (Rewrite{}) {
				cr.actions.Rewrite = &rw
			}
		case gwv1.HTTPRouteFilterRequestMirror:
			m, err := t.mirror(r, where, f.RequestMirror)
			if err != nil {
				bad(unsupported, "%v", err)
				return false
			}
			if m.backend.ok {
				cr.mirrors = append(cr.mirrors, m)
			}
		case gwv1.HTTPRouteFilterCORS:
			c, err := cors(f.CORS)
			if err != nil {
				bad(unsupported, "%v", err)
				return false
			}
			cr.actions.CORS = c
		case gwv1.HTTPRouteFilterExtensionRef:
			// The spec: an extension that cannot be resolved is not skipped; its requests fail.
			cr.fixed = &FixedResponse{StatusCode: 500, Body: "unsupported extensionRef filter"}
			r.refProblem(string(gwv1.RouteReasonInvalidKind), "%s: extensionRef filters are not supported", where)
		default:
			bad(unsupported, "filter %s is not supported", f.Type)
			return false
		}
	}
	if cr.actions.Redirect != nil && cr.actions.Rewrite != nil {
		bad(string(gwv1.RouteReasonIncompatibleFilters), "filters RequestRedirect and URLRewrite cannot be used together")
		return false
	}
	return true
}

// maxCORSMaxAge is the longest maxAge the cloud takes: a day (browsers cap it lower).
const maxCORSMaxAge = 86400

// cors is a CORS filter as the model's: origins, methods and headers as given (the CRD checks
// their syntax), an origin's port written without leading zeros, maxAge at most a day (a
// longer one is cut to a day).
func cors(f *gwv1.HTTPCORSFilter) (*CORS, error) {
	if f == nil {
		return nil, fmt.Errorf("filter CORS needs cors")
	}
	if len(f.AllowOrigins) == 0 {
		return nil, fmt.Errorf("filter CORS allows no origin: give cors.allowOrigins")
	}
	if f.MaxAge < 0 {
		return nil, fmt.Errorf("CORS maxAge %d is negative: use 1 to %d seconds", f.MaxAge, maxCORSMaxAge)
	}
	c := &CORS{AllowCredentials: ptrOr(f.AllowCredentials, false), MaxAge: int(min(f.MaxAge, maxCORSMaxAge))}
	for _, o := range f.AllowOrigins {
		origin := string(o)
		// The CRD checks the syntax, but takes any port of up to five digits.
		if scheme, hostPort, ok := strings.Cut(origin, "://"); ok {
			if host, port, ok := strings.Cut(hostPort, ":"); ok {
				n, err := strconv.Atoi(port)
				if err != nil || n < 1 || n > 65535 {
					return nil, fmt.Errorf("CORS origin %q: port %s is not 1 to 65535", o, port)
				}
				origin = scheme + "://" + host + ":" + strconv.Itoa(n)
			}
		}
		c.AllowOrigins = append(c.AllowOrigins, origin)
	}
	for _, m := range f.AllowMethods {
		c.AllowMethods = append(c.AllowMethods, string(m))
	}
	for _, h := range f.AllowHeaders {
		c.AllowHeaders = append(c.AllowHeaders, string(h))
	}
	for _, h := range f.ExposeHeaders {
		c.ExposeHeaders = append(c.ExposeHeaders, string(h))
	}
	return c, nil
}

func headerModifier(f *gwv1.HTTPHeaderFilter) *HeaderModifier {
	hm := &HeaderModifier{Remove: f.Remove}
	for _, h := range f.Set {
		hm.Set = append(hm.Set, Header{Name: string(h.Name), Value: h.Value})
	}
	for _, h := range f.Add {
		hm.Add = append(hm.Add, Header{Name: string(h.Name), Value: h.Value})
	}
	return hm
}

var redirectCodes = map[int]bool{301: true, 302: true, 303: true, 307: true, 308: true}

func redirect(f *gwv1.HTTPRequestRedirectFilter, matches []compiledMatch) (*Redirect, error) {
	if f == nil {
		return nil, fmt.Errorf("filter RequestRedirect needs requestRedirect")
	}
	rd := &Redirect{
		Scheme:     ptrOr(f.Scheme, ""),
		Hostname:   string(ptrOr(f.Hostname, "")),
		Port:       int(ptrOr(f.Port, 0)),
		StatusCode: ptrOr(f.StatusCode, 302),
	}
	if !redirectCodes[rd.StatusCode] {
		return nil, fmt.Errorf("redirect status code %d is not supported: use 301, 302, 303, 307 or 308", rd.StatusCode)
	}
	if rd.Scheme != "" && rd.Scheme != "http" && rd.Scheme != "https" {
		return nil, fmt.Errorf("redirect scheme %q is not supported: use http or https", rd.Scheme)
	}
	pm, err := pathModifier(f.Path, matches)
	if err != nil {
		return nil, err
	}
	rd.Path = pm
	return rd, nil
}

// modifierPath refuses a replacement path that is no path: one not starting with "/", or
// holding "?" or "#" (which would make part of it a query or fragment), a space or a control
// character. The CRD bounds only its length; a cloud would answer every request 500 or change
// the query.
func modifierPath(field, v string) error {
	if !strings.HasPrefix(v, "/") {
		return fmt.Errorf("path modifier %s %q does not start with /", field, v)
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return r == '?' || r == '#' || r <= ' ' || r == 0x7f }); i >= 0 {
		return fmt.Errorf("path modifier %s %q holds %q, which a path cannot", field, v, v[i])
	}
	return nil
}

func pathModifier(p *gwv1.HTTPPathModifier, matches []compiledMatch) (*PathModifier, error) {
	if p == nil {
		return nil, nil
	}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		v := ptrOr(p.ReplaceFullPath, "/")
		if err := modifierPath("replaceFullPath", v); err != nil {
			return nil, err
		}
		return &PathModifier{Type: ReplaceFullPath, Value: v}, nil
	case gwv1.PrefixMatchHTTPPathModifier:
		for _, m := range matches {
			if m.cond.Path == nil || m.cond.Path.Type != MatchPrefix {
				return nil, fmt.Errorf("path modifier ReplacePrefixMatch needs every match of the rule to be a PathPrefix path match")
			}
		}
		// "" is "/": Gateway API makes them the same ("/foo/bar" under /foo becomes "/bar", "/foo"
		// becomes "/"), and one spelling lets a cloud's read-back equal what was written.
		v := ptrOr(p.ReplacePrefixMatch, "/")
		if v == "" {
			v = "/"
		}
		if err := modifierPath("replacePrefixMatch", v); err != nil {
			return nil, err
		}
		return &PathModifier{Type: ReplacePrefixMatch, Value: v}, nil
	}
	return nil, fmt.Errorf("path modifier type %q is not supported: use ReplaceFullPath or ReplacePrefixMatch", p.Type)
}

func (t *translation) mirror(r *route, where string, f *gwv1.HTTPRequestMirrorFilter) (mirrorRef, error) {
	if f == nil {
		return mirrorRef{}, fmt.Errorf("filter RequestMirror needs requestMirror")
	}
	m := mirrorRef{percent: 100}
	switch {
	case f.Percent != nil:
		m.percent = float64(*f.Percent)
	case f.Fraction != nil:
		den := ptrOr(f.Fraction.Denominator, 100)
		if den <= 0 || f.Fraction.Numerator < 0 || f.Fraction.Numerator > den {
			return m, fmt.Errorf("mirror fraction %d/%d is not a fraction between 0 and 1", f.Fraction.Numerator, den)
		}
		m.percent = 100 * float64(f.Fraction.Numerator) / float64(den)
	}
	if m.percent < 0 || m.percent > 100 {
		return m, fmt.Errorf("mirror percent %v is not between 0 and 100", m.percent)
	}
	m.backend = t.resolveBackend(r, where+" mirror", f.BackendRef, nil)
	return m, nil
}

// backendFilters applies a backendRef's own filters (header modifiers only).
func backendFilters(b *backend, filters []gwv1.HTTPRouteFilter, bad func(string, ...any)) bool {
	for _, f := range filters {
		switch {
		case f.Type == gwv1.HTTPRouteFilterRequestHeaderModifier && f.RequestHeaderModifier != nil:
			b.requestHeaders = headerModifier(f.RequestHeaderModifier)
		case f.Type == gwv1.HTTPRouteFilterResponseHeaderModifier && f.ResponseHeaderModifier != nil:
			b.responseHeaders = headerModifier(f.ResponseHeaderModifier)
		default:
			bad("filter %s is not supported on a backendRef: use RequestHeaderModifier or ResponseHeaderModifier", f.Type)
			return false
		}
	}
	return true
}

func timeouts(to *gwv1.HTTPRouteTimeouts) (*Timeouts, error) {
	var out Timeouts
	var req, be time.Duration
	for _, x := range []struct {
		name string
		in   *gwv1.Duration
		out  *string
		d    *time.Duration
	}{{"request", to.Request, &out.Request, &req}, {"backendRequest", to.BackendRequest, &out.BackendRequest, &be}} {
		if x.in == nil {
			continue
		}
		d, err := time.ParseDuration(string(*x.in))
		if !gatewayDuration.MatchString(string(*x.in)) || err != nil {
			return nil, fmt.Errorf("timeouts.%s %q is not a Gateway API duration (like 10s, 1m30s or 500ms)", x.name, *x.in)
		}
		*x.out, *x.d = d.String(), d
	}
	if req > 0 && be > req {
		return nil, fmt.Errorf("timeouts.backendRequest %s is longer than timeouts.request %s", be, req)
	}
	if out == (Timeouts{}) {
		return nil, nil
	}
	return &out, nil
}

// The bounds of a retry policy the load balancer takes (fakecloud's RetryConfig).
const (
	maxRetryAttempts = 10
	maxRetryBackoff  = time.Minute
	// defaultRetryAttempts is what a retry stanza without attempts gets (the spec leaves it
	// to the implementation).
	defaultRetryAttempts = 1
)

// retry translates a rule's retry stanza: codes 400-599 (the API's bounds; sorted), attempts
// 1-10, backoff a Gateway API duration of at most a minute.
func retry(in *gwv1.HTTPRouteRetry) (*Retry, error) {
	out := &Retry{Attempts: defaultRetryAttempts}
	if in.Attempts != nil {
		if *in.Attempts < 1 || *in.Attempts > maxRetryAttempts {
			return nil, fmt.Errorf("retry.attempts %d: the load balancer makes 1 to %d retries", *in.Attempts, maxRetryAttempts)
		}
		out.Attempts = *in.Attempts
	}
	if in.Backoff != nil {
		d, err := time.ParseDuration(string(*in.Backoff))
		if !gatewayDuration.MatchString(string(*in.Backoff)) || err != nil {
			return nil, fmt.Errorf("retry.backoff %q is not a Gateway API duration (like 100ms or 1s)", *in.Backoff)
		}
		if d > maxRetryBackoff {
			return nil, fmt.Errorf("retry.backoff %s: the load balancer waits at most %s between tries", d, maxRetryBackoff)
		}
		if d > 0 {
			out.Backoff = d.String()
		}
	}
	for _, c := range in.Codes {
		if c < 400 || c > 599 {
			return nil, fmt.Errorf("retry.codes: %d is not a status code a retry is made for (400-599)", c)
		}
		if !slices.Contains(out.Codes, int(c)) {
			out.Codes = append(out.Codes, int(c))
		}
	}
	slices.Sort(out.Codes)
	return out, nil
}

func (t *translation) compileGRPC(r *route, o *gwv1.GRPCRoute) {
	r.ruleCount = len(o.Spec.Rules)
	unsupported := string(gwv1.RouteReasonUnsupportedValue)
	for i, rule := range o.Spec.Rules {
		cr := &compiledRule{index: i, source: ruleSource(r, i, rule.Name)}
		where := "rule " + strconv.Itoa(i)
		ok := true
		bad := func(format string, args ...any) {
			r.dropRule(unsupported, where+": "+format, args...)
			ok = false
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.GRPCRouteMatch{{}}
		}
		for _, m := range matches {
			c, err := grpcMatch(m)
			if err != nil {
				bad("%v", err)
				break
			}
			cr.matches = append(cr.matches, c)
		}
		for _, f := range rule.Filters {
			if !ok {
				break
			}
			switch {
			case f.Type == gwv1.GRPCRouteFilterRequestHeaderModifier && f.RequestHeaderModifier != nil:
				cr.actions.RequestHeaders = headerModifier(f.RequestHeaderModifier)
			case f.Type == gwv1.GRPCRouteFilterResponseHeaderModifier && f.ResponseHeaderModifier != nil:
				cr.actions.ResponseHeaders = headerModifier(f.ResponseHeaderModifier)
			case f.Type == gwv1.GRPCRouteFilterRequestMirror:
				m, err := t.mirror(r, where, f.RequestMirror)
				if err != nil {
					bad("%v", err)
				} else if m.backend.ok {
					cr.mirrors = append(cr.mirrors, m)
				}
			case f.Type == gwv1.GRPCRouteFilterExtensionRef:
				cr.fixed = &FixedResponse{StatusCode: 500, Body: "unsupported extensionRef filter"}
				r.refProblem(string(gwv1.RouteReasonInvalidKind), "%s: extensionRef filters are not supported", where)
			default:
				bad("filter %s is not supported", f.Type)
			}
		}
		if !ok {
			continue
		}
		for j, br := range rule.BackendRefs {
			b := t.resolveBackend(r, where+" backendRef "+strconv.Itoa(j), br.BackendObjectReference, br.Weight)
			for _, f := range br.Filters {
				switch {
				case f.Type == gwv1.GRPCRouteFilterRequestHeaderModifier && f.RequestHeaderModifier != nil:
					b.requestHeaders = headerModifier(f.RequestHeaderModifier)
				case f.Type == gwv1.GRPCRouteFilterResponseHeaderModifier && f.ResponseHeaderModifier != nil:
					b.responseHeaders = headerModifier(f.ResponseHeaderModifier)
				default:
					bad("backendRef %d: filter %s is not supported on a backendRef", j, f.Type)
				}
			}
			cr.backends = append(cr.backends, b)
		}
		if !ok {
			continue
		}
		if len(rule.BackendRefs) == 0 && cr.fixed == nil {
			cr.fixed = &FixedResponse{StatusCode: 500, Body: "no backendRefs"}
		}
		r.rules = append(r.rules, cr)
	}
}

// grpcMatch turns a gRPC method match into a path condition (/service/method) plus headers.
func grpcMatch(m gwv1.GRPCRouteMatch) (compiledMatch, error) {
	c := compiledMatch{prec: precedence{grpc: true}}
	if mm := m.Method; mm != nil {
		svc, meth := ptrOr(mm.Service, ""), ptrOr(mm.Method, "")
		c.prec.serviceLen, c.prec.methodLen = len(svc), len(meth)
		switch ptrOr(mm.Type, gwv1.GRPCMethodMatchExact) {
		case gwv1.GRPCMethodMatchExact:
			if strings.Contains(svc, "/") || strings.Contains(meth, "/") {
				return c, fmt.Errorf("gRPC service %q or method %q contains a /", svc, meth)
			}
			switch {
			case svc != "" && meth != "":
				c.cond.Path = &PathMatch{Type: MatchExact, Value: "/" + svc + "/" + meth}
			case svc != "":
				c.cond.Path = &PathMatch{Type: MatchPrefix, Value: "/" + svc}
			case meth != "":
				c.cond.Path = &PathMatch{Type: MatchRegex, Value: "/[^/]+/" + regexp.QuoteMeta(meth)}
			}
		case gwv1.GRPCMethodMatchRegularExpression:
			for _, part := range []string{svc, meth} {
				if _, err := regexp.Compile(part); err != nil {
					return c, fmt.Errorf("gRPC method regular expression %q is not valid RE2: %w", part, err)
				}
			}
			c.cond.Path = &PathMatch{Type: MatchRegex, Value: "/(" + orAny(svc) + ")/(" + orAny(meth) + ")"}
		default:
			return c, fmt.Errorf("gRPC method match type %q is not supported: use Exact or RegularExpression", *mm.Type)
		}
	}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		name := strings.ToLower(string(h.Name))
		if seen[name] {
			continue
		}
		seen[name] = true
		sm, err := stringMatch("header", string(h.Name), string(ptrOr(h.Type, gwv1.GRPCHeaderMatchExact)), h.Value)
		if err != nil {
			return c, err
		}
		c.cond.Headers = append(c.cond.Headers, sm)
	}
	c.prec.headers = len(c.cond.Headers)
	if !seen["content-type"] {
		c.cond.Headers = append(c.cond.Headers, grpcContentType)
	}
	return c, nil
}

func orAny(re string) string {
	if re == "" {
		return "[^/]+"
	}
	return re
}

// compileL4 resolves the backends of a TLS, TCP or UDP route rule.
func (t *translation) compileL4(r *route, i int, name *gwv1.SectionName, refs []gwv1.BackendRef) {
	r.ruleCount++
	cr := &compiledRule{index: i, source: ruleSource(r, i, name)}
	for j, br := range refs {
		cr.backends = append(cr.backends, t.resolveBackend(r, fmt.Sprintf("rule %d backendRef %d", i, j), br.BackendObjectReference, br.Weight))
	}
	r.rules = append(r.rules, cr)
}

// GRPCContentType is the header match every gRPC rule carries (for the drivers' tests: each
// cloud must carry it).
func GRPCContentType() StringMatch { return grpcContentType }
