package aws

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/flatnet/flatnet/providers"
)

// Rules and actions, seam <-> ELBv2. ELBv2 says less than the seam: its conditions are
// case-sensitive wildcard patterns (* any run, ? one character, no escape), its actions
// forward (weighted), redirect (301/302) or answer, and a forwarding rule's transforms rewrite
// the Host header and the URL (alb_transforms.go: the rule's rewrite). What it cannot say is
// refused with providers.ErrInvalid naming the feature, before any call: header changes,
// mirrors, timeouts, retries, CORS, a redirect replacing a path prefix, a rewrite on a
// listener's default action or holding $, exact values holding * or ?, and regular expressions
// beyond ELBv2's wildcards (literal text, .* and .; for a header, up to three alternatives of
// those, one value each).

// codeUnsupported is the code of a refusal by the driver itself.
const codeUnsupported = "UnsupportedByELBv2"

func unsupported(format string, args ...any) error {
	return invalid(codeUnsupported, "ELBv2 cannot express "+format+" (the AWS driver carries ELBv2's rule features only; docs/providers.md)", args...)
}

// toELBRule is ELBv2's conditions, action and transforms (the action's rewrite) for a rule.
func toELBRule(spec providers.RuleSpec) ([]elbtypes.RuleCondition, elbtypes.Action, []elbtypes.RuleTransform, error) {
	conds, err := toELBConditions(spec.Conditions)
	if err != nil {
		return nil, elbtypes.Action{}, nil, err
	}
	a := spec.Action
	a.Rewrite = nil // a rule's rewrite is its transforms
	act, err := toELBAction(a)
	if err != nil {
		return nil, elbtypes.Action{}, nil, err
	}
	ts, err := toELBTransforms(spec.Action, spec.Conditions.Path)
	return conds, act, ts, err
}

func toELBConditions(c providers.RuleConditions) ([]elbtypes.RuleCondition, error) {
	var out []elbtypes.RuleCondition
	if len(c.Hosts) > 0 {
		out = append(out, elbtypes.RuleCondition{Field: aws.String("host-header"), HostHeaderConfig: &elbtypes.HostHeaderConditionConfig{Values: c.Hosts}})
	}
	if c.Path != nil {
		pc, err := pathCondition(*c.Path)
		if err != nil {
			return nil, err
		}
		out = append(out, elbtypes.RuleCondition{Field: aws.String("path-pattern"), PathPatternConfig: pc})
	}
	if c.Method != "" {
		out = append(out, elbtypes.RuleCondition{Field: aws.String("http-request-method"), HttpRequestMethodConfig: &elbtypes.HttpRequestMethodConditionConfig{Values: []string{c.Method}}})
	}
	for _, h := range c.Headers {
		vs, err := headerPatterns(h)
		if err != nil {
			return nil, err
		}
		out = append(out, elbtypes.RuleCondition{Field: aws.String("http-header"), HttpHeaderConfig: &elbtypes.HttpHeaderConditionConfig{HttpHeaderName: aws.String(h.Name), Values: vs}})
	}
	for _, q := range c.Query {
		v, err := pattern("query parameter "+q.Name, q)
		if err != nil {
			return nil, err
		}
		out = append(out, elbtypes.RuleCondition{Field: aws.String("query-string"), QueryStringConfig: &elbtypes.QueryStringConditionConfig{
			Values: []elbtypes.QueryStringKeyValuePair{{Key: aws.String(q.Name), Value: aws.String(v)}}}})
	}
	return out, nil
}

// pathCondition is ELBv2's path condition for a path match: Exact as a pattern; a Prefix /p
// (whole segments) as the regex ^/p(/.*)?$ (one value: ELBv2 allows five per rule), "/" as
// /*; a Regex as ELBv2's RegexValues.
func pathCondition(m providers.StringMatch) (*elbtypes.PathPatternConditionConfig, error) {
	switch m.Type {
	case providers.MatchPrefix:
		if m.Value == "/" {
			return &elbtypes.PathPatternConditionConfig{Values: []string{"/*"}}, nil
		}
		return &elbtypes.PathPatternConditionConfig{RegexValues: []string{prefixRegex(m.Value)}}, nil
	case providers.MatchRegex:
		return &elbtypes.PathPatternConditionConfig{RegexValues: []string{m.Value}}, nil
	}
	v, err := pattern("path", m)
	return &elbtypes.PathPatternConditionConfig{Values: []string{v}}, err
}

func prefixRegex(p string) string {
	return "^" + regexp.QuoteMeta(strings.TrimSuffix(p, "/")) + "(/.*)?$"
}

// pattern is ELBv2's pattern for an Exact or Regex match.
func pattern(what string, m providers.StringMatch) (string, error) {
	switch m.Type {
	case providers.MatchExact, "":
		if strings.ContainsAny(m.Value, "*?") {
			return "", unsupported("the exact %s %q: * and ? are wildcards in ELBv2's patterns", what, m.Value)
		}
		return m.Value, nil
	case providers.MatchRegex:
		w, ok := regexToWildcard(m.Value)
		if !ok {
			return "", unsupported("the %s regex %q: ELBv2's patterns are literal text with * and ?", what, m.Value)
		}
		return w, nil
	}
	return "", unsupported("the %s match %q", what, m.Type)
}

// maxHeaderValues is how many values ELBv2 takes in one header condition (its quota: three).
const maxHeaderValues = 3

// headerPatterns is ELBv2's values for a header match. A header condition's values are
// alternatives, so a regex of up to three alternatives (a|b|c) each of literal text, .* and .
// is one value each (lbcontroller's gRPC content type is one); anything else is pattern's.
func headerPatterns(m providers.StringMatch) ([]string, error) {
	alts := providers.Alternatives(m.Value)
	if m.Type != providers.MatchRegex || len(alts) < 2 {
		v, err := pattern("header "+m.Name, m)
		return []string{v}, err
	}
	if len(alts) > maxHeaderValues {
		return nil, unsupported("the header %s regex %q: more than %d alternatives", m.Name, m.Value, maxHeaderValues)
	}
	var out []string
	for _, a := range alts {
		w, ok := regexToWildcard(a)
		if !ok {
			return nil, unsupported("the header %s regex %q: ELBv2's patterns are alternatives of literal text with * and ?", m.Name, m.Value)
		}
		out = append(out, w)
	}
	return out, nil
}

// fromHeaderPatterns reads headerPatterns' values back: one value as fromPattern, several as
// the regex of their alternatives.
func fromHeaderPatterns(name string, vs []string) providers.StringMatch {
	if len(vs) == 1 {
		return fromPattern(name, vs[0])
	}
	alts := make([]string, len(vs))
	for i, v := range vs {
		alts[i] = wildcardToRegex(v)
	}
	return providers.StringMatch{Name: name, Type: providers.MatchRegex, Value: strings.Join(alts, "|")}
}

// regexToWildcard turns a regex of literal text, .* and . (the whole value) into an ELBv2
// pattern; ok is false for anything else.
func regexToWildcard(re string) (string, bool) {
	re = strings.TrimSuffix(strings.TrimPrefix(re, "^"), "$")
	var b strings.Builder
	for i := 0; i < len(re); i++ {
		switch c := re[i]; {
		case c == '.' && i+1 < len(re) && re[i+1] == '*':
			b.WriteByte('*')
			i++
		case c == '.':
			b.WriteByte('?')
		case c == '\\' && i+1 < len(re) && strings.IndexByte(`.+()|[]{}^$\/-`, re[i+1]) >= 0:
			b.WriteByte(re[i+1])
			i++
		case strings.IndexByte(`\+*?()|[]{}^$`, c) >= 0:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// wildcardToRegex is the inverse: literal text quoted, * as .*, ? as .
func wildcardToRegex(w string) string {
	var b strings.Builder
	for _, r := range w {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteByte('.')
		default:
			if strings.ContainsRune(`.+()|[]{}^$\`, r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fromPattern reads a pattern back: without wildcards Exact, with them Regex.
func fromPattern(name, v string) providers.StringMatch {
	if strings.ContainsAny(v, "*?") {
		return providers.StringMatch{Name: name, Type: providers.MatchRegex, Value: wildcardToRegex(v)}
	}
	return providers.StringMatch{Name: name, Type: providers.MatchExact, Value: v}
}

// fromPathCondition reads pathCondition's shapes back.
func fromPathCondition(c *elbtypes.PathPatternConditionConfig) (*providers.StringMatch, error) {
	switch {
	case len(c.RegexValues) == 1 && len(c.Values) == 0:
		re := c.RegexValues[0]
		if inner, ok := strings.CutPrefix(re, "^"); ok && strings.HasSuffix(inner, "(/.*)?$") {
			p := strings.TrimSuffix(inner, "(/.*)?$")
			if prefixRegex(unquoteMeta(p)) == re {
				return &providers.StringMatch{Type: providers.MatchPrefix, Value: unquoteMeta(p)}, nil
			}
		}
		return &providers.StringMatch{Type: providers.MatchRegex, Value: re}, nil
	case len(c.Values) == 1 && len(c.RegexValues) == 0 && c.Values[0] == "/*":
		return &providers.StringMatch{Type: providers.MatchPrefix, Value: "/"}, nil
	case len(c.Values) == 1 && len(c.RegexValues) == 0:
		m := fromPattern("", c.Values[0])
		return &m, nil
	}
	return nil, fmt.Errorf("a path condition %q %q, which the driver does not write", c.Values, c.RegexValues)
}

// unquoteMeta undoes regexp.QuoteMeta.
func unquoteMeta(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func fromELBConditions(cs []elbtypes.RuleCondition) (providers.RuleConditions, error) {
	var c providers.RuleConditions
	for _, rc := range cs {
		switch {
		case rc.HostHeaderConfig != nil:
			c.Hosts = append(c.Hosts, rc.HostHeaderConfig.Values...)
		case rc.PathPatternConfig != nil:
			p, err := fromPathCondition(rc.PathPatternConfig)
			if err != nil {
				return c, err
			}
			c.Path = p
		case rc.HttpRequestMethodConfig != nil && len(rc.HttpRequestMethodConfig.Values) > 0:
			c.Method = rc.HttpRequestMethodConfig.Values[0]
		case rc.HttpHeaderConfig != nil && len(rc.HttpHeaderConfig.Values) > 0:
			c.Headers = append(c.Headers, fromHeaderPatterns(aws.ToString(rc.HttpHeaderConfig.HttpHeaderName), rc.HttpHeaderConfig.Values))
		case rc.QueryStringConfig != nil && len(rc.QueryStringConfig.Values) > 0:
			kv := rc.QueryStringConfig.Values[0]
			c.Query = append(c.Query, fromPattern(aws.ToString(kv.Key), aws.ToString(kv.Value)))
		default:
			return c, fmt.Errorf("a %s condition the driver does not write", aws.ToString(rc.Field))
		}
	}
	return c, nil
}

func toELBAction(a providers.RuleAction) (elbtypes.Action, error) {
	switch {
	case a.RequestHeaders != nil || a.ResponseHeaders != nil:
		return elbtypes.Action{}, unsupported("request or response header changes")
	case a.Rewrite != nil:
		// A rule's rewrite is taken out before (toELBRule): this is a listener's default action.
		return elbtypes.Action{}, unsupported("a URL rewrite on a listener's default action: ELBv2 takes no transform on a listener's default rule")
	case len(a.Mirrors) > 0:
		return elbtypes.Action{}, unsupported("request mirrors")
	case a.RequestTimeout > 0 || a.BackendTimeout > 0:
		return elbtypes.Action{}, unsupported("per-rule timeouts")
	case a.Retry != nil:
		return elbtypes.Action{}, unsupported("retries")
	case a.CORS != nil:
		return elbtypes.Action{}, unsupported("CORS policies")
	case a.TLSPassthrough:
		return elbtypes.Action{}, unsupported("TLS passthrough beside termination on one listener")
	case a.Redirect != nil:
		return toELBRedirect(a.Redirect)
	case a.FixedResponse != nil:
		f := &elbtypes.FixedResponseActionConfig{StatusCode: aws.String(strconv.Itoa(a.FixedResponse.StatusCode))}
		if a.FixedResponse.Body != "" {
			f.MessageBody, f.ContentType = aws.String(a.FixedResponse.Body), aws.String("text/plain")
		}
		return elbtypes.Action{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: f}, nil
	}
	fc := &elbtypes.ForwardActionConfig{}
	for _, g := range a.Forward {
		if g.RequestHeaders != nil || g.ResponseHeaders != nil {
			return elbtypes.Action{}, unsupported("header changes per target group")
		}
		fc.TargetGroups = append(fc.TargetGroups, elbtypes.TargetGroupTuple{TargetGroupArn: aws.String(g.TargetGroupID), Weight: aws.Int32(int32(g.Weight))})
	}
	return elbtypes.Action{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: fc}, nil
}

func toELBRedirect(r *providers.Redirect) (elbtypes.Action, error) {
	if r.StatusCode != 301 && r.StatusCode != 302 {
		return elbtypes.Action{}, unsupported("a redirect with status %d (ELBv2 redirects with 301 or 302)", r.StatusCode)
	}
	c := &elbtypes.RedirectActionConfig{StatusCode: elbtypes.RedirectActionStatusCodeEnum("HTTP_" + strconv.Itoa(r.StatusCode))}
	if r.Scheme != "" {
		c.Protocol = aws.String(strings.ToUpper(r.Scheme))
	}
	if r.Host != "" {
		c.Host = aws.String(r.Host)
	}
	if r.Port != 0 {
		c.Port = aws.String(strconv.Itoa(r.Port))
	}
	if p := r.Path; p != nil {
		if p.Type != providers.ReplaceFullPath {
			return elbtypes.Action{}, unsupported("a redirect replacing the matched path prefix")
		}
		c.Path = aws.String(p.Value)
	}
	return elbtypes.Action{Type: elbtypes.ActionTypeEnumRedirect, RedirectConfig: c}, nil
}

// ELBv2's placeholders keep the request's value: what an empty seam field means.
func placeholder(v *string, keep string) string {
	if s := aws.ToString(v); s != keep {
		return s
	}
	return ""
}

func fromELBAction(a *elbtypes.Action) (providers.RuleAction, error) {
	var out providers.RuleAction
	switch a.Type {
	case elbtypes.ActionTypeEnumForward:
		if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
			for _, g := range a.ForwardConfig.TargetGroups {
				w := 1
				if g.Weight != nil {
					w = int(*g.Weight)
				}
				out.Forward = append(out.Forward, providers.WeightedTargetGroup{TargetGroupID: aws.ToString(g.TargetGroupArn), Weight: w})
			}
		} else if a.TargetGroupArn != nil {
			out.Forward = []providers.WeightedTargetGroup{{TargetGroupID: aws.ToString(a.TargetGroupArn), Weight: 1}}
		}
	case elbtypes.ActionTypeEnumRedirect:
		r := a.RedirectConfig
		if r == nil {
			return out, fmt.Errorf("a redirect without its RedirectConfig")
		}
		code, _ := strconv.Atoi(strings.TrimPrefix(string(r.StatusCode), "HTTP_"))
		port, _ := strconv.Atoi(placeholder(r.Port, "#{port}"))
		out.Redirect = &providers.Redirect{Scheme: placeholder(r.Protocol, "#{protocol}"), Host: placeholder(r.Host, "#{host}"), Port: port, StatusCode: code}
		if p := placeholder(r.Path, "/#{path}"); p != "" {
			out.Redirect.Path = &providers.PathModifier{Type: providers.ReplaceFullPath, Value: p}
		}
	case elbtypes.ActionTypeEnumFixedResponse:
		f := a.FixedResponseConfig
		if f == nil {
			return out, fmt.Errorf("a fixed response without its FixedResponseConfig")
		}
		code, _ := strconv.Atoi(aws.ToString(f.StatusCode))
		out.FixedResponse = &providers.FixedResponse{StatusCode: code, Body: aws.ToString(f.MessageBody)}
	default:
		return out, fmt.Errorf("a %s action, which the driver does not write", a.Type)
	}
	return out, nil
}
