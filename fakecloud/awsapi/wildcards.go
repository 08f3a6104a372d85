package awsapi

import (
	"regexp"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// ELBv2's path-pattern, http-header and query-string values are case-sensitive patterns where
// "*" matches any run of characters and "?" exactly one, compared with the whole value.
// fakecloud compares values exactly or by an RE2 regex matching the whole value, so a list of
// values without wildcards stays Exact, and a list where any value has one becomes Regex, every
// value translated: literal text quoted, "*" as ".*", "?" as ".". The translation is undone in
// answers, so a client reads back what it sent.

// fromWildcards returns the values and match type fakecloud compares an ELBv2 pattern list with.
func fromWildcards(values []string) ([]string, string) {
	if !hasWildcard(values) {
		return values, ""
	}
	out := make([]string, len(values))
	for i, v := range values {
		var b strings.Builder
		for _, r := range v {
			switch r {
			case '*':
				b.WriteString(".*")
			case '?':
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		out[i] = b.String()
	}
	return out, api.MatchTypeRegex
}

func hasWildcard(values []string) bool {
	for _, v := range values {
		if strings.ContainsAny(v, "*?") {
			return true
		}
	}
	return false
}

// toWildcards shows fakecloud's values as ELBv2 patterns: Exact ones as they are, a Regex that
// fromWildcards made as the wildcards it came from. Conditions made with fakecloud's own API
// beyond ELBv2's patterns are shown as near as ELBv2 can say it: a Prefix path "/p" as "/p" and
// "/p/*"; any other regex as it is.
func toWildcards(values []string, matchType string) []string {
	switch matchType {
	case api.MatchTypeRegex:
		out := make([]string, len(values))
		for i, v := range values {
			out[i] = unquoteWildcards(v)
		}
		return out
	case api.MatchTypePrefix:
		var out []string
		for _, v := range values {
			out = append(out, v, strings.TrimSuffix(v, "/")+"/*")
		}
		return out
	}
	return values
}

// isRegexOnly reports path values that are regexes no ELBv2 pattern makes (made with
// RegexValues, or fakecloud's own API): answers show them as RegexValues.
func isRegexOnly(values []string, matchType string) bool {
	if matchType != api.MatchTypeRegex {
		return false
	}
	for _, v := range values {
		u := unquoteWildcards(v)
		back, mt := fromWildcards([]string{u})
		if mt == api.MatchTypeRegex && back[0] == v {
			continue
		}
		if mt == "" && regexp.QuoteMeta(u) == v {
			continue
		}
		return true
	}
	return false
}

// unquoteWildcards undoes fromWildcards on one value, or returns re unchanged when it is no
// translation of a pattern.
func unquoteWildcards(re string) string {
	var b strings.Builder
	for i := 0; i < len(re); i++ {
		switch c := re[i]; {
		case c == '.' && i+1 < len(re) && re[i+1] == '*':
			b.WriteByte('*')
			i++
		case c == '.':
			b.WriteByte('?')
		case c == '\\' && i+1 < len(re) && strings.IndexByte(`\.+*?()|[]{}^$`, re[i+1]) >= 0:
			b.WriteByte(re[i+1])
			i++
		case strings.IndexByte(`\+*?()|[]{}^$`, c) >= 0:
			return re // regex syntax no pattern makes
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
