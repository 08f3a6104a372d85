package state

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// ALBLimits are the quotas of application load balancers, AWS's defaults unless set (zero
// fields take the default). They are settable so tests and labs can reach them cheaply.
type ALBLimits struct {
	// RulesPerLoadBalancer counts the rules of all listeners, not the default ones (100).
	RulesPerLoadBalancer int
	// ConditionValuesPerRule counts every value of every condition of a rule (5).
	ConditionValuesPerRule int
	// TargetGroupsPerAction bounds a forward's weighted groups and, apart, its mirrors (5).
	TargetGroupsPerAction int
	// CertificatesPerListener counts an HTTPS listener's certificates besides the default (25).
	CertificatesPerListener int
	// Certificates bounds the account's imported certificates (2500, ACM's quota).
	Certificates int
}

// Defaults of ALBLimits.
const (
	defaultRulesPerLB          = 100
	defaultConditionValues     = 5
	defaultTargetGroupsPerAct  = 5
	defaultCertsPerListener    = 25
	defaultCertificates        = 2500
	maxRulePriority            = 50000
	maxFixedResponseBody       = 1024
	maxHeaderEdits             = 16 // per list, as Gateway API allows
	maxConditionValueLen       = 128
	maxPathLen                 = 1024
	maxHeaderValueLen          = 4096
	maxTimeoutMillis           = 3_600_000
	defaultALBHCInterval       = 15
	defaultALBHCTimeout        = 5
	defaultALBHCThreshold      = 2
	defaultGRPCHealthCheckPath = "/grpc.health.v1.Health/Check"
	defaultGRPCMatcher         = "0-99"
)

// withDefaults fills in the zero fields.
func (l ALBLimits) withDefaults() ALBLimits {
	l.RulesPerLoadBalancer = orDefault(l.RulesPerLoadBalancer, defaultRulesPerLB)
	l.ConditionValuesPerRule = orDefault(l.ConditionValuesPerRule, defaultConditionValues)
	l.TargetGroupsPerAction = orDefault(l.TargetGroupsPerAction, defaultTargetGroupsPerAct)
	l.CertificatesPerListener = orDefault(l.CertificatesPerListener, defaultCertsPerListener)
	l.Certificates = orDefault(l.Certificates, defaultCertificates)
	return l
}

// fixedResponseContentTypes are the content types ELBv2 allows in fixed responses.
var fixedResponseContentTypes = []string{"text/plain", "text/css", "text/html", "application/javascript", "application/json"}

// ruleShape is what action validation needs to know of the rule holding the action.
type ruleShape struct {
	// isDefault: a listener's default actions, which have no conditions.
	isDefault bool
	// prefixPath: the rule has a path-pattern condition of type Prefix (ReplacePrefixMatch
	// needs one).
	prefixPath bool
}

// validateConditions checks a rule's conditions and returns them normalised (default match
// types filled in) with the rule's shape.
func validateConditions(conds []api.RuleCondition, lim ALBLimits) ([]api.RuleCondition, ruleShape, error) {
	var shape ruleShape
	if len(conds) == 0 {
		return nil, shape, invalid("Conditions is required: a rule needs at least one condition (the listener's default actions serve what no rule matches)")
	}
	out := make([]api.RuleCondition, len(conds))
	seen := map[string]string{} // single-use field or header name -> where it was first given
	values := 0
	for i, c := range conds {
		f := fmt.Sprintf("Conditions[%d]", i)
		n, err := validateCondition(f, c, seen)
		if err != nil {
			return nil, shape, err
		}
		values += n.valueCount()
		if p := n.cond.PathPatternConfig; p != nil && p.MatchType == api.MatchTypePrefix {
			shape.prefixPath = true
		}
		out[i] = n.cond
	}
	if values > lim.ConditionValuesPerRule {
		return nil, shape, invalid("Conditions hold %d values; a rule may hold at most %d", values, lim.ConditionValuesPerRule)
	}
	return out, shape, nil
}

type normCondition struct{ cond api.RuleCondition }

func (n normCondition) valueCount() int {
	c := n.cond
	switch {
	case c.HostHeaderConfig != nil:
		return len(c.HostHeaderConfig.Values)
	case c.PathPatternConfig != nil:
		return len(c.PathPatternConfig.Values)
	case c.HTTPHeaderConfig != nil:
		return len(c.HTTPHeaderConfig.Values)
	case c.QueryStringConfig != nil:
		return len(c.QueryStringConfig.Values)
	case c.HTTPRequestMethodConfig != nil:
		return len(c.HTTPRequestMethodConfig.Values)
	}
	return 0
}

// conditionConfigs lists which config fields a condition sets, by JSON name.
func conditionConfigs(c api.RuleCondition) []string {
	var set []string
	for _, x := range []struct {
		name string
		on   bool
	}{
		{"HostHeaderConfig", c.HostHeaderConfig != nil}, {"PathPatternConfig", c.PathPatternConfig != nil},
		{"HttpHeaderConfig", c.HTTPHeaderConfig != nil}, {"QueryStringConfig", c.QueryStringConfig != nil},
		{"HttpRequestMethodConfig", c.HTTPRequestMethodConfig != nil},
	} {
		if x.on {
			set = append(set, x.name)
		}
	}
	return set
}

func validateCondition(f string, c api.RuleCondition, seen map[string]string) (normCondition, error) {
	want := map[string]string{
		api.ConditionHostHeader: "HostHeaderConfig", api.ConditionPathPattern: "PathPatternConfig",
		api.ConditionHTTPHeader: "HttpHeaderConfig", api.ConditionQueryString: "QueryStringConfig",
		api.ConditionHTTPRequestMethod: "HttpRequestMethodConfig",
	}[c.Field]
	if want == "" {
		return normCondition{}, invalid("%s.Field %.40q is not a condition: use host-header, path-pattern, http-header, query-string or http-request-method", f, c.Field)
	}
	if set := conditionConfigs(c); len(set) != 1 || set[0] != want {
		return normCondition{}, invalid("%s: a %s condition needs %s and no other config (got %s)", f, c.Field, want, strings.Join(orNone(set), ", "))
	}
	// host-header, path-pattern and http-request-method appear once a rule, http-header once
	// per header name.
	key := c.Field
	if c.HTTPHeaderConfig != nil {
		if err := validateHeaderName(f+".HttpHeaderConfig.HttpHeaderName", c.HTTPHeaderConfig.HTTPHeaderName); err != nil {
			return normCondition{}, err
		}
		key = "header " + strings.ToLower(c.HTTPHeaderConfig.HTTPHeaderName)
	}
	if c.QueryStringConfig == nil {
		if prev, dup := seen[key]; dup {
			return normCondition{}, invalid("%s repeats %s: a rule holds one (merge the values into one condition)", f, prev)
		}
		seen[key] = f + " (" + key + ")"
	}
	n := normCondition{cond: api.RuleCondition{Field: c.Field}}
	var err error
	switch {
	case c.HostHeaderConfig != nil:
		var vals []string
		vals, err = checkValues(f+".HostHeaderConfig.Values", c.HostHeaderConfig.Values, func(fj, v string) error { return validateHostName(fj, v, true) })
		n.cond.HostHeaderConfig = &api.HostHeaderConditionConfig{Values: vals}
	case c.PathPatternConfig != nil:
		p := *c.PathPatternConfig
		p.MatchType = cmp.Or(p.MatchType, api.MatchTypeExact)
		p.Values, err = checkValues(f+".PathPatternConfig.Values", p.Values, func(fj, v string) error { return validatePathValue(f+".PathPatternConfig", fj, p.MatchType, v) })
		n.cond.PathPatternConfig = &p
	case c.HTTPHeaderConfig != nil:
		h := *c.HTTPHeaderConfig
		if h.MatchType, err = valueMatchType(f+".HttpHeaderConfig.MatchType", h.MatchType); err == nil {
			h.Values, err = checkValues(f+".HttpHeaderConfig.Values", h.Values, func(fj, v string) error { return validateMatchValue(fj, h.MatchType, v) })
		}
		n.cond.HTTPHeaderConfig = &h
	case c.QueryStringConfig != nil:
		var q *api.QueryStringConditionConfig
		q, err = validateQueryCondition(f+".QueryStringConfig", *c.QueryStringConfig)
		n.cond.QueryStringConfig = q
	case c.HTTPRequestMethodConfig != nil:
		var vals []string
		vals, err = checkValues(f+".HttpRequestMethodConfig.Values", c.HTTPRequestMethodConfig.Values, func(fj, v string) error {
			if !isMethod(v) {
				return invalid("%s %.40q must be an upper-case method of at most 40 letters, '-' or '_' (GET, POST, ...)", fj, v)
			}
			return nil
		})
		n.cond.HTTPRequestMethodConfig = &api.HTTPRequestMethodConditionConfig{Values: vals}
	}
	return n, err
}

// checkValues checks a condition's value list (at least one, no duplicates) and each value.
func checkValues(field string, vals []string, check func(fieldJ, v string) error) ([]string, error) {
	vals, err := nonEmptyValues(field, vals)
	if err != nil {
		return nil, err
	}
	for j, v := range vals {
		if err := check(fmt.Sprintf("%s[%d]", field, j), v); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

func validateQueryCondition(f string, q api.QueryStringConditionConfig) (*api.QueryStringConditionConfig, error) {
	mt, err := valueMatchType(f+".MatchType", q.MatchType)
	if err != nil {
		return nil, err
	}
	if len(q.Values) == 0 {
		return nil, invalid("%s.Values is required", f)
	}
	q.Values = slices.Clone(q.Values)
	for j, kv := range q.Values {
		fj := fmt.Sprintf("%s.Values[%d]", f, j)
		if kv.Key == "" || len(kv.Key) > maxConditionValueLen || strings.ContainsAny(kv.Key, "&=#") || hasControl(kv.Key) {
			return nil, invalid("%s.Key %.40q must be a query parameter name of 1..%d characters without &, =, # or control characters", fj, kv.Key, maxConditionValueLen)
		}
		if err := validateMatchValue(fj+".Value", mt, kv.Value); err != nil {
			return nil, err
		}
	}
	q.MatchType = mt
	return &q, nil
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

// nonEmptyValues checks a condition's value list: at least one, no duplicates.
func nonEmptyValues(field string, vals []string) ([]string, error) {
	if len(vals) == 0 {
		return nil, invalid("%s is required: give at least one value", field)
	}
	if err := noDuplicates(field, vals); err != nil {
		return nil, invalid("%s lists a value twice", field)
	}
	return slices.Clone(vals), nil
}

func valueMatchType(field, mt string) (string, error) {
	switch mt {
	case "":
		return api.MatchTypeExact, nil
	case api.MatchTypeExact, api.MatchTypeRegex:
		return mt, nil
	}
	return "", invalid("%s %.20q must be Exact or Regex", field, mt)
}

func validateMatchValue(field, mt, v string) error {
	if mt == api.MatchTypeRegex {
		return validateRegex(field, v)
	}
	if len(v) > maxConditionValueLen || hasControl(v) {
		return invalid("%s %.40q must hold at most %d characters and no control characters", field, v, maxConditionValueLen)
	}
	return nil
}

func validateRegex(field, expr string) error {
	if expr == "" || len(expr) > maxPathLen {
		return invalid("%s must be an RE2 regular expression of 1..%d characters", field, maxPathLen)
	}
	if _, err := regexp.Compile(expr); err != nil {
		return invalid("%s %.60q is not a valid RE2 regular expression: %v", field, expr, err)
	}
	return nil
}

// validatePathValue checks the path value at fv of a path-pattern whose config is at field.
func validatePathValue(field, fv, mt, v string) error {
	switch mt {
	case api.MatchTypeExact, api.MatchTypePrefix:
		if !strings.HasPrefix(v, "/") || len(v) > maxPathLen || hasControl(v) || strings.ContainsAny(v, " ?#") {
			return invalid("%s %.60q must be a path beginning with / of at most %d characters, without spaces, '?', '#' or control characters", fv, v, maxPathLen)
		}
		return nil
	case api.MatchTypeRegex:
		return validateRegex(fv, v)
	}
	return invalid("%s.MatchType %.20q must be Exact, Prefix or Regex", field, mt)
}

// validateHostName checks a DNS name; with wildcard, a leading "*." label is allowed.
func validateHostName(field, v string, wildcard bool) error {
	name := v
	if wildcard {
		name = strings.TrimPrefix(v, "*.")
	}
	bad := func() error {
		how := "a DNS name (letters, digits, hyphens and dots)"
		if wildcard {
			how += ", optionally with a leading \"*.\" label"
		}
		return invalid("%s %.60q must be %s of at most %d characters", field, v, how, maxConditionValueLen)
	}
	if name == "" || len(v) > maxConditionValueLen {
		return bad()
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad()
		}
		for _, r := range label {
			if !isAlnum(r) && r != '-' {
				return bad()
			}
		}
	}
	return nil
}

// validateHeaderName checks an HTTP header name (an RFC 9110 token).
func validateHeaderName(field, name string) error {
	if name == "" || len(name) > 256 || !isToken(name) {
		return invalid("%s %.60q must be an HTTP header name: 1..256 letters, digits or !#$%%&'*+-.^_`|~", field, name)
	}
	return nil
}

func isToken(s string) bool {
	for _, r := range s {
		if !isAlnum(r) && !strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			return false
		}
	}
	return s != ""
}

func isMethod(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
