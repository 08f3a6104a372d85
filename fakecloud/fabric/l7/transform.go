package l7

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// transform is a compiled Transform: its regex and its replacement cut into literal text and
// group references.
type transform struct {
	re    *regexp.Regexp
	parts []replacePart
	size  int // the literal text's length, to size the result
}

// replacePart is literal text, or (group >= 0) a group of the match.
type replacePart struct {
	lit   string
	group int
}

// transforms compiles an action's transforms: the host's and the URL's (nil: none).
func (c *checker) transforms(f string, ts []Transform) (hostT, urlT *transform) {
	for i, t := range ts {
		ff := f + ".transforms[" + strconv.Itoa(i) + "]"
		var slot **transform
		switch t.Type {
		case TransformHost:
			slot = &hostT
		case TransformURL:
			slot = &urlT
		default:
			c.bad(ff+".type", "%q is not a transform type (host-header-rewrite or url-rewrite)", t.Type)
			continue
		}
		if *slot != nil {
			c.bad(ff+".type", "a rule has at most one %s transform", t.Type)
			continue
		}
		re, err := regexp.Compile(t.Regex)
		if err != nil {
			c.bad(ff+".regex", "not a regular expression (RE2): %v", err)
			continue
		}
		parts, err := parseReplace(t.Replace, re.NumSubexp())
		if err != nil {
			c.bad(ff+".replace", "%v", err)
			continue
		}
		ct := &transform{re: re, parts: parts}
		for _, p := range parts {
			ct.size += len(p.lit)
		}
		*slot = ct
	}
	return hostT, urlT
}

// parseReplace cuts a replacement into its parts (api.ScanReplace's syntax: $n and ${n} are
// group n, $$ is a $).
func parseReplace(s string, groups int) ([]replacePart, error) {
	var parts []replacePart
	err := api.ScanReplace(s, groups,
		func(lit string) { parts = append(parts, replacePart{lit: lit, group: -1}) },
		func(n int) { parts = append(parts, replacePart{group: n}) })
	if errors.Is(err, api.ErrReplaceSyntax) {
		return nil, fmt.Errorf("%q: %w", s, err)
	} else if err != nil {
		return nil, fmt.Errorf("%q %w", s, err)
	}
	return parts, nil
}

// apply replaces the first match of t's regex in s; false when nothing matched.
func (t *transform) apply(s string) (string, bool) {
	m := t.re.FindStringSubmatchIndex(s)
	if m == nil {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s) - (m[1] - m[0]) + t.size + 16)
	b.WriteString(s[:m[0]])
	for _, p := range t.parts {
		if p.group < 0 {
			b.WriteString(p.lit)
		} else if g := 2 * p.group; m[g] >= 0 {
			b.WriteString(s[m[g]:m[g+1]])
		}
	}
	b.WriteString(s[m[1]:])
	return b.String(), true
}

// rewritten is what a rule's transforms made of a request (flight.rewritten).
type rewritten struct {
	host  string // "": the request's
	url   bool   // the URL was rewritten: flight.path, and query, are the new ones
	query string
}

// Why a transform's result is refused (in the access log with the result).
var (
	errTransformHost = errors.New("the host-header-rewrite transform made an invalid Host")
	errTransformURL  = errors.New("the url-rewrite transform made an invalid URL")
)

// applyTransforms rewrites the flight's request as its rule's transforms say: into
// f.rewritten, and f.path for the URL. A result that is not a valid Host or URL is answered
// 500 (false).
func applyTransforms(w http.ResponseWriter, r *http.Request, f *flight) bool {
	a := &f.rule.action
	rw := &rewritten{}
	if t := a.hostTransform; t != nil {
		if h, ok := t.apply(r.Host); ok {
			if !validHost(h) {
				return refuseTransform(w, f, fmt.Errorf("%w: %.100q", errTransformHost, h))
			}
			rw.host = h
		}
	}
	if t := a.urlTransform; t != nil {
		u := f.path
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		if nu, ok := t.apply(u); ok {
			p, q, _ := strings.Cut(nu, "?")
			// The query is checked only when the transform changed it: one it passed on as the
			// client sent it is served as it is without transforms.
			if !validPath(p) || (q != r.URL.RawQuery && !urlChars(q)) {
				return refuseTransform(w, f, fmt.Errorf("%w: %.100q", errTransformURL, nu))
			}
			f.path, rw.url, rw.query = p, true, q
		}
	}
	f.rewritten = rw
	return true
}

func refuseTransform(w http.ResponseWriter, f *flight, err error) bool {
	f.err = err
	msg := errTransformURL.Error()
	if errors.Is(err, errTransformHost) {
		msg = errTransformHost.Error()
	}
	http.Error(w, msg, http.StatusInternalServerError)
	return false
}

// validHost reports whether h may be a Host header: what net/http's server accepts (letters,
// digits and -._~!$&'()*+,;=:[]%), not empty.
func validHost(h string) bool {
	if h == "" || len(h) > 1024 {
		return false
	}
	for i := 0; i < len(h); i++ {
		b := h[i] | 0x20 // lowercase for letters
		letter, digit := b >= 'a' && b <= 'z', h[i] >= '0' && h[i] <= '9'
		if !letter && !digit && strings.IndexByte("-._~!$&'()*+,;=:[]%", h[i]) < 0 {
			return false
		}
	}
	return true
}

// validPath reports whether p is an escaped path a request can carry: it begins with "/",
// unescapes, and holds no character urlChars refuses.
func validPath(p string) bool {
	if !strings.HasPrefix(p, "/") || !urlChars(p) {
		return false
	}
	_, err := url.PathUnescape(p)
	return err == nil
}

// urlChars reports whether s holds only printable ASCII other than "#": no space, control or
// non-ASCII character (which a request line cannot carry unescaped) and no fragment.
func urlChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '#' {
			return false
		}
	}
	return true
}
