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
	if strings.IndexByte(hostport, ':') >= 0 { // else SplitHostPort's error costs an allocation
		if host, _, err := net.SplitHostPort(hostport); err == nil {
			h = host
		}
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
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok { // not the path the rule matched (the checker refuses what would lead here)
		return path
	}
	out := strings.TrimRight(repl, "/") + rest
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

// maxCandidateLists bounds the lists of candidate rules a request merges (the rules without an
// indexed path, its exact path's, and one per segment boundary of its path with prefix rules);
// a path with more falls back to evaluating every rule.
const maxCandidateLists = 16

// ruleIndex narrows a listener's rules to those whose path condition can hold for a request's
// path, so a table of many path rules costs a request a few map lookups instead of an
// evaluation of every rule. Each rule is in exactly one place; positions are ascending.
type ruleIndex struct {
	exact  map[string][]int32 // rules with an Exact path, by the path
	prefix map[string][]int32 // rules with a Prefix path, by the trimmed prefix ("" for "/")
	rest   []int32            // rules with a Regex path or none: candidates for every path
}

func indexRules(rules []*rule) ruleIndex {
	exact, prefix := 0, 0
	for _, r := range rules {
		if r.path != nil && r.path.typ == MatchExact {
			exact++
		} else if r.path != nil && r.path.typ == MatchPrefix {
			prefix++
		}
	}
	ix := ruleIndex{exact: make(map[string][]int32, exact), prefix: make(map[string][]int32, prefix)}
	for i, r := range rules {
		switch {
		case r.path != nil && r.path.typ == MatchExact:
			ix.exact[r.path.value] = append(ix.exact[r.path.value], int32(i))
		case r.path != nil && r.path.typ == MatchPrefix:
			ix.prefix[r.path.value] = append(ix.prefix[r.path.value], int32(i))
		default:
			ix.rest = append(ix.rest, int32(i))
		}
	}
	return ix
}

// match returns the first rule whose conditions all hold, or nil; the query is parsed only if
// a rule asks for it. host is requestHost(r.Host) and path r.URL.EscapedPath().
func (l *listener) match(r *http.Request, host, path string) *rule {
	var q url.Values
	query := func() url.Values {
		if q == nil {
			q = r.URL.Query()
		}
		return q
	}
	var lists [maxCandidateLists][]int32
	k, ok := l.index.candidates(path, &lists)
	if !ok {
		for _, cand := range l.rules {
			if cand.matches(r, host, path, query) {
				return cand
			}
		}
		return nil
	}
	// Merge the ascending lists: the rules are tried in the listener's order.
	var pos [maxCandidateLists]int
	for {
		best, at := -1, int32(0)
		for i := range k {
			if pos[i] < len(lists[i]) && (best < 0 || lists[i][pos[i]] < at) {
				best, at = i, lists[i][pos[i]]
			}
		}
		if best < 0 {
			return nil
		}
		pos[best]++
		if cand := l.rules[at]; cand.matches(r, host, path, query) {
			return cand
		}
	}
}

// candidates fills lists with the index's lists of rules whose path condition can hold for
// path: every prefix that prefixMatches accepts is path cut at a "/" or at its end. It reports
// false when there would be more than maxCandidateLists lists.
func (ix *ruleIndex) candidates(path string, lists *[maxCandidateLists][]int32) (int, bool) {
	k := 0
	add := func(l []int32) bool {
		if len(l) == 0 {
			return true
		}
		if k == len(lists) {
			return false
		}
		lists[k] = l
		k++
		return true
	}
	if !add(ix.rest) || !add(ix.exact[path]) {
		return 0, false
	}
	if len(ix.prefix) == 0 {
		return k, true
	}
	for j := 0; j <= len(path); j++ {
		if (j == len(path) || path[j] == '/') && !add(ix.prefix[path[:j]]) {
			return 0, false
		}
	}
	return k, true
}
