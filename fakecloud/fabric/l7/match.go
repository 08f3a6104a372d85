package l7

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// hostPattern is an exact name or, with a leading "*.", a suffix; both lowercase.
type hostPattern struct {
	name     string // "www.example.com", or ".example.com" for "*.example.com"
	wildcard bool
}

func parseHostPattern(s string) hostPattern {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if rest, ok := strings.CutPrefix(s, "*"); ok {
		return hostPattern{name: rest, wildcard: true}
	}
	return hostPattern{name: s}
}

// matches reports whether host (lowercase, no port) is the name or, for a wildcard, ends in
// its suffix with at least one label before it ("*.example.com" does not match "example.com").
func (p hostPattern) matches(host string) bool {
	if p.wildcard {
		return len(host) > len(p.name) && strings.HasSuffix(host, p.name)
	}
	return host == p.name
}

// requestHost is the request's host without port or trailing dot, lowercase.
func requestHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// pathMatcher is a compiled PathMatch.
type pathMatcher struct {
	typ   MatchType
	value string // exact path, or the prefix without its trailing "/" ("" for "/")
	re    *regexp.Regexp
}

func (m *pathMatcher) matches(path string) bool {
	switch m.typ {
	case MatchExact:
		return path == m.value
	case MatchPrefix:
		return prefixMatches(m.value, path)
	default:
		return m.re.MatchString(path)
	}
}

// trimPrefix normalises a PathPrefix value: a trailing "/" is ignored, so "/" becomes "".
func trimPrefix(p string) string { return strings.TrimRight(p, "/") }

// prefixMatches reports whether path starts with the whole segments of prefix (already trimmed
// by trimPrefix): "/foo" matches "/foo", "/foo/" and "/foo/bar" but not "/foobar".
func prefixMatches(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// replacePrefix swaps the matched prefix (trimmed) of path for repl with Gateway API's
// trailing-slash rules: "/foo/bar" with prefix "/foo" and "/xyz/" gives "/xyz/bar"; "/foo" with
// "" gives "/".
func replacePrefix(path, prefix, repl string) string {
	out := strings.TrimRight(repl, "/") + path[len(prefix):]
	if out == "" || out[0] != '/' {
		out = "/" + out
	}
	return out
}

// valueMatcher compares a header or query value.
type valueMatcher struct {
	name  string // canonical header name, or the query parameter's name as given
	exact string
	re    *regexp.Regexp
}

func (m *valueMatcher) matches(v string, present bool) bool {
	if !present {
		return false
	}
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.exact
}

func headerValue(r *http.Request, canonical string) (string, bool) {
	if canonical == "Host" {
		return r.Host, r.Host != ""
	}
	vs, ok := r.Header[canonical]
	if !ok {
		return "", false
	}
	return strings.Join(vs, ","), true
}

func queryValue(q url.Values, name string) (string, bool) {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// compileRegex anchors an RE2 expression so that it must match the whole value.
func compileRegex(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// matches reports whether every condition of the rule holds for the request. host is
// requestHost(r.Host) and path r.URL.EscapedPath(), computed once per request.
func (r *rule) matches(req *http.Request, host, path string, query func() url.Values) bool {
	if len(r.hosts) > 0 {
		ok := false
		for _, h := range r.hosts {
			if h.matches(host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.path != nil && !r.path.matches(path) {
		return false
	}
	if r.method != "" && req.Method != r.method {
		return false
	}
	for i := range r.headers {
		v, ok := headerValue(req, r.headers[i].name)
		if !r.headers[i].matches(v, ok) {
			return false
		}
	}
	if len(r.query) > 0 {
		q := query()
		for i := range r.query {
			v, ok := queryValue(q, r.query[i].name)
			if !r.query[i].matches(v, ok) {
				return false
			}
		}
	}
	return true
}
