package l7

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// corsPolicy is a compiled CORS.
type corsPolicy struct {
	anyOrigin   bool
	origins     []originPattern
	anyMethod   bool
	methods     string // joined, for Access-Control-Allow-Methods
	anyHeader   bool
	headers     string // joined, for Access-Control-Allow-Headers
	expose      string // joined, for Access-Control-Expose-Headers ("*" last when anyExpose)
	exposeNamed string // the names alone
	anyExpose   bool
	credentials bool
	maxAge      string
}

// originPattern is one allowed origin: scheme, and host exact or (wildcard) a suffix that
// one or more labels precede, and port ("" for none).
type originPattern struct {
	scheme, host, port string
	wildcard           bool // host is a suffix: one or more labels before it
	anyHost            bool // scheme://*: any host
}

// defaultCORSMaxAge is Gateway API's default maxAge, in seconds.
const defaultCORSMaxAge = 5

// maxCORSMaxAge bounds MaxAge: a day (browsers cap it lower).
const maxCORSMaxAge = 86400

func (c *checker) cors(f string, in *CORS) *corsPolicy {
	if in == nil {
		return nil
	}
	p := &corsPolicy{credentials: in.AllowCredentials}
	if len(in.AllowOrigins) == 0 {
		c.bad(f+".allowOrigins", "is empty: give the origins allowed (scheme://host[:port], a host may start with *.) or *")
	}
	for i, o := range in.AllowOrigins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		op, err := parseOriginPattern(o)
		if err != nil {
			c.bad(f+".allowOrigins["+strconv.Itoa(i)+"]", "%q: %v", o, err)
			continue
		}
		p.origins = append(p.origins, op)
	}
	var methods []string
	for i, m := range in.AllowMethods {
		switch {
		case m == "*":
			p.anyMethod = true
		case !validToken(m):
			c.bad(f+".allowMethods["+strconv.Itoa(i)+"]", "%q is not an HTTP method", m)
		default:
			methods = append(methods, m)
		}
	}
	p.methods = strings.Join(methods, ", ")
	p.headers = c.corsHeaders(f+".allowHeaders", in.AllowHeaders, &p.anyHeader)
	p.exposeNamed = c.corsHeaders(f+".exposeHeaders", in.ExposeHeaders, &p.anyExpose)
	p.expose = p.exposeNamed
	if p.anyExpose {
		p.expose = strings.TrimPrefix(p.expose+", *", ", ")
	}
	switch {
	case in.MaxAge == 0:
		p.maxAge = strconv.Itoa(defaultCORSMaxAge)
	case in.MaxAge < 0 || in.MaxAge > maxCORSMaxAge:
		c.bad(f+".maxAge", "%d is not 1 to %d seconds (0: the default, %d)", in.MaxAge, maxCORSMaxAge, defaultCORSMaxAge)
	default:
		p.maxAge = strconv.Itoa(in.MaxAge)
	}
	return p
}

// corsHeaders checks header names ("*" sets any) and joins them.
func (c *checker) corsHeaders(f string, names []string, anyName *bool) string {
	var out []string
	for i, h := range names {
		switch {
		case h == "*":
			*anyName = true
		case !validToken(h):
			c.bad(f+"["+strconv.Itoa(i)+"]", "%q is not a header name", h)
		default:
			out = append(out, h)
		}
	}
	return strings.Join(out, ", ")
}

// validToken is an HTTP token (RFC 9110): a method or header name.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// parseOriginPattern reads scheme://host[:port], the host exact, *.suffix or * (any).
func parseOriginPattern(s string) (originPattern, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || strings.ContainsAny(rest, "/?#@") {
		return originPattern{}, errBadOrigin
	}
	op := originPattern{scheme: strings.ToLower(scheme)}
	host := rest
	if h, port, ok := strings.Cut(rest, ":"); ok {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return originPattern{}, errBadOrigin
		}
		host, op.port = h, explicitPort(op.scheme, strconv.Itoa(n))
	}
	if host == "*" {
		op.anyHost = true
		return op, nil
	}
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		op.wildcard, host = true, suffix
	}
	if host == "" || strings.Contains(host, "*") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
		return originPattern{}, errBadOrigin
	}
	op.host = strings.ToLower(host)
	return op, nil
}

var errBadOrigin = errors.New("want scheme://host[:port] (the host exact, *. and a domain, or *; the port 1-65535), or * for any origin")

// allows reports whether origin (a request's Origin header) is allowed.
func (p *corsPolicy) allows(origin string) bool {
	if origin == "" || origin == "null" {
		return p.anyOrigin && origin != ""
	}
	if p.anyOrigin {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	port := explicitPort(scheme, u.Port())
	for _, op := range p.origins {
		if op.scheme != scheme || op.port != port {
			continue
		}
		if op.anyHost {
			return true
		}
		if op.wildcard {
			if strings.HasSuffix(host, "."+op.host) && len(host) > len(op.host)+1 {
				return true
			}
		} else if host == op.host {
			return true
		}
	}
	return false
}

// explicitPort is port, or "" for the scheme's default (80 for http, 443 for https): an origin
// written with it is the origin written without, as browsers send it.
func explicitPort(scheme, port string) string {
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return ""
	}
	return port
}

// addVary adds each token to the Vary header unless it is there already (or Vary is "*").
func addVary(h http.Header, tokens ...string) {
	have := map[string]bool{}
	for _, v := range h.Values("Vary") {
		for t := range strings.SplitSeq(v, ",") {
			have[strings.ToLower(strings.TrimSpace(t))] = true
		}
	}
	if have["*"] {
		return
	}
	for _, t := range tokens {
		if !have[strings.ToLower(t)] {
			h.Add("Vary", t)
			have[strings.ToLower(t)] = true
		}
	}
}

// preflight reports whether r is a CORS preflight request: OPTIONS with an Origin and the
// method the real request will use.
func preflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// answerPreflight answers a preflight without forwarding it: 204 with the policy's headers
// when the origin is allowed, 403 without them when it is not (the browser then refuses the
// real request).
func (p *corsPolicy) answerPreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	origin := r.Header.Get("Origin")
	addVary(h, "Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
	if !p.allows(origin) {
		http.Error(w, "CORS: origin "+strconv.Quote(origin)+" is not allowed", http.StatusForbidden)
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if p.anyMethod {
		h.Set("Access-Control-Allow-Methods", r.Header.Get("Access-Control-Request-Method"))
	} else if p.methods != "" {
		h.Set("Access-Control-Allow-Methods", p.methods)
	}
	if p.anyHeader {
		if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" {
			h.Set("Access-Control-Allow-Headers", asked)
		}
	} else if p.headers != "" {
		h.Set("Access-Control-Allow-Headers", p.headers)
	}
	switch {
	case p.credentials && p.anyExpose: // "*" would name a header "*"
		if p.exposeNamed != "" {
			h.Set("Access-Control-Expose-Headers", p.exposeNamed)
		}
	case p.expose != "":
		h.Set("Access-Control-Expose-Headers", p.expose)
	}
	h.Set("Access-Control-Max-Age", p.maxAge)
	w.WriteHeader(http.StatusNoContent)
}

// apply sets the CORS headers of an answer to a request from origin (none when the request
// has no Origin, or one the policy does not allow): the target's own are replaced. Every
// answer varies on Origin, so that a shared cache never serves one origin's to another. With
// credentials, a browser takes "*" in Access-Control-Expose-Headers for a header named "*": the
// answer's own header names stand in for it.
func (p *corsPolicy) apply(h http.Header, origin string) {
	addVary(h, "Origin")
	if origin == "" || !p.allows(origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	} else {
		h.Del("Access-Control-Allow-Credentials")
	}
	switch {
	case p.credentials && p.anyExpose:
		var names []string
		for k := range h {
			if !strings.HasPrefix(k, "Access-Control-") && k != "Vary" {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		if p.exposeNamed != "" {
			names = append([]string{p.exposeNamed}, names...)
		}
		if len(names) > 0 {
			h.Set("Access-Control-Expose-Headers", strings.Join(names, ", "))
		}
	case p.expose != "":
		h.Set("Access-Control-Expose-Headers", p.expose)
	}
}
