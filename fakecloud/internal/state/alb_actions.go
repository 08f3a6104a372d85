package state

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// validateActions checks a rule's or listener's actions (exactly one) and returns them
// normalised, with the target groups they forward or mirror to.
func validateActions(field string, acts []api.Action, shape ruleShape, lim ALBLimits) ([]api.Action, []string, error) {
	switch {
	case len(acts) == 0:
		return nil, nil, invalid("%s is required: one forward, redirect or fixed-response action", field)
	case len(acts) > 1:
		return nil, nil, api.Errorf(api.CodeTooManyActions, "%s holds %d actions; give exactly one forward, redirect or fixed-response action", field, len(acts))
	}
	if acts[0].TLSPassthrough {
		return nil, nil, invalid("%s[0].TlsPassthrough applies to TLS listeners only: an HTTP or HTTPS listener serves requests, it has no TLS to pass through", field)
	}
	a, tgs, err := validateAction(field+"[0]", acts[0], shape, lim)
	if err != nil {
		return nil, nil, err
	}
	return []api.Action{a}, tgs, nil
}

func validateAction(f string, a api.Action, shape ruleShape, lim ALBLimits) (api.Action, []string, error) {
	out, tgs, err := validateActionKind(f, a, shape, lim)
	if err != nil {
		return out, nil, err
	}
	if err := validateModifiers(f, a, &out, shape, lim); err != nil {
		return out, nil, err
	}
	for _, m := range out.RequestMirrors {
		if !slices.Contains(tgs, m.TargetGroupID) {
			tgs = append(tgs, m.TargetGroupID)
		}
	}
	return out, tgs, nil
}

// validateActionKind checks what the action's type needs (its one config) and returns the
// normalised action with the groups a forward names.
func validateActionKind(f string, a api.Action, shape ruleShape, lim ALBLimits) (api.Action, []string, error) {
	out := api.Action{Type: a.Type}
	var tgs []string
	switch a.Type {
	case api.ActionTypeForward:
		if a.RedirectConfig != nil || a.FixedResponseConfig != nil {
			return out, nil, invalid("%s: a forward action takes TargetGroupId or ForwardConfig, not RedirectConfig or FixedResponseConfig", f)
		}
		fc, err := validateForward(f, a, lim)
		if err != nil {
			return out, nil, err
		}
		out.ForwardConfig = fc
		if len(fc.TargetGroups) == 1 {
			out.TargetGroupID = fc.TargetGroups[0].TargetGroupID
		}
		for _, g := range fc.TargetGroups {
			tgs = append(tgs, g.TargetGroupID)
		}
	case api.ActionTypeRedirect:
		if a.TargetGroupID != "" || a.ForwardConfig != nil || a.FixedResponseConfig != nil || a.RedirectConfig == nil {
			return out, nil, invalid("%s: a redirect action takes RedirectConfig only", f)
		}
		rc, err := validateRedirect(f+".RedirectConfig", *a.RedirectConfig, shape)
		if err != nil {
			return out, nil, err
		}
		out.RedirectConfig = &rc
	case api.ActionTypeFixedResponse:
		if a.TargetGroupID != "" || a.ForwardConfig != nil || a.RedirectConfig != nil || a.FixedResponseConfig == nil {
			return out, nil, invalid("%s: a fixed-response action takes FixedResponseConfig only", f)
		}
		fr, err := validateFixedResponse(f+".FixedResponseConfig", *a.FixedResponseConfig)
		if err != nil {
			return out, nil, err
		}
		out.FixedResponseConfig = &fr
	case "":
		return out, nil, invalid("%s.Type is required: forward, redirect or fixed-response", f)
	default:
		return out, nil, invalid("%s.Type %.30q is not supported: use forward, redirect or fixed-response", f, a.Type)
	}
	return out, tgs, nil
}

// validateModifiers checks the extensions (header changes, rewrite, mirrors, timeouts) and
// sets them, normalised, on out.
func validateModifiers(f string, a api.Action, out *api.Action, shape ruleShape, lim ALBLimits) error {
	if a.Type != api.ActionTypeForward {
		for _, x := range []struct {
			name string
			on   bool
		}{
			{"RequestHeaderModifications", a.RequestHeaderModifications != nil}, {"UrlRewriteConfig", a.URLRewriteConfig != nil},
			{"RequestMirrors", len(a.RequestMirrors) > 0}, {"TimeoutConfig", a.TimeoutConfig != nil}, {"RetryConfig", a.RetryConfig != nil},
		} {
			if x.on {
				return invalid("%s.%s applies to forward actions only, not %s", f, x.name, a.Type)
			}
		}
	}
	var err error
	if out.RequestHeaderModifications, err = validateHeaderMods(f+".RequestHeaderModifications", a.RequestHeaderModifications); err != nil {
		return err
	}
	if out.ResponseHeaderModifications, err = validateHeaderMods(f+".ResponseHeaderModifications", a.ResponseHeaderModifications); err != nil {
		return err
	}
	if out.URLRewriteConfig, err = validateRewrite(f+".UrlRewriteConfig", a.URLRewriteConfig, shape); err != nil {
		return err
	}
	if out.RequestMirrors, err = validateMirrors(f+".RequestMirrors", a.RequestMirrors, lim); err != nil {
		return err
	}
	if out.TimeoutConfig, err = validateTimeouts(f+".TimeoutConfig", a.TimeoutConfig); err != nil {
		return err
	}
	if out.RetryConfig, err = validateRetry(f+".RetryConfig", a.RetryConfig); err != nil {
		return err
	}
	out.CorsConfig, err = validateCORS(f+".CorsConfig", a.CorsConfig)
	return err
}

// The bounds of a CorsConfig.
const (
	maxCORSEntries = 64
	maxCORSMaxAge  = 86400
)

func validateCORS(f string, cc *api.CorsConfig) (*api.CorsConfig, error) {
	if cc == nil {
		return nil, nil
	}
	if len(cc.AllowOrigins) == 0 {
		return nil, invalid("%s.AllowOrigins is empty: give the origins allowed (scheme://host[:port], the host exact or *. and a domain) or *", f)
	}
	for _, l := range []struct {
		name string
		vals []string
	}{{"AllowOrigins", cc.AllowOrigins}, {"AllowMethods", cc.AllowMethods}, {"AllowHeaders", cc.AllowHeaders}, {"ExposeHeaders", cc.ExposeHeaders}} {
		if len(l.vals) > maxCORSEntries {
			return nil, invalid("%s.%s holds %d values; at most %d", f, l.name, len(l.vals), maxCORSEntries)
		}
		for i, v := range l.vals {
			var ok bool
			if l.name == "AllowOrigins" {
				ok = v == "*" || corsOrigin.MatchString(v) && originPortOK(v)
			} else {
				ok = v == "*" || httpToken.MatchString(v)
			}
			if !ok {
				want := "a token (RFC 9110) or *"
				if l.name == "AllowOrigins" {
					want = "scheme://host[:port] (the host exact, or *. and a domain) or *"
				}
				return nil, invalid("%s.%s[%d] %.80q is not %s", f, l.name, i, v, want)
			}
		}
	}
	if cc.MaxAgeSeconds < 0 || cc.MaxAgeSeconds > maxCORSMaxAge {
		return nil, invalid("%s.MaxAgeSeconds %d is outside 0..%d", f, cc.MaxAgeSeconds, maxCORSMaxAge)
	}
	c := *cc
	c.AllowOrigins, c.AllowMethods = slices.Clone(cc.AllowOrigins), slices.Clone(cc.AllowMethods)
	c.AllowHeaders, c.ExposeHeaders = slices.Clone(cc.AllowHeaders), slices.Clone(cc.ExposeHeaders)
	return &c, nil
}

// originPortOK: an origin's port, if any, is at most 65535.
func originPortOK(o string) bool {
	_, hostPort, _ := strings.Cut(o, "://")
	_, port, ok := strings.Cut(hostPort, ":")
	if !ok {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n <= 65535
}

var (
	// corsOrigin is scheme://host[:port], the host labels, "*." first allowed, or "*" (any
	// host); the port is checked against 65535 apart.
	corsOrigin = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://(\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)(:[1-9][0-9]{0,4})?$`)
	// httpToken is an RFC 9110 token: a method or header name.
	httpToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// The bounds of a RetryConfig, the L7 engine's.
const (
	maxRetryAttempts      = 10
	maxRetryBackoffMillis = 60000
)

func validateRetry(f string, rc *api.RetryConfig) (*api.RetryConfig, error) {
	if rc == nil {
		return nil, nil
	}
	if rc.Attempts < 1 || rc.Attempts > maxRetryAttempts {
		return nil, invalid("%s.Attempts %d is outside 1..%d", f, rc.Attempts, maxRetryAttempts)
	}
	if rc.BackoffMillis < 0 || rc.BackoffMillis > maxRetryBackoffMillis {
		return nil, invalid("%s.BackoffMillis %d is outside 0..%d", f, rc.BackoffMillis, maxRetryBackoffMillis)
	}
	c := *rc
	c.Codes = slices.Clone(rc.Codes)
	slices.Sort(c.Codes)
	for i, code := range c.Codes {
		if code < 400 || code > 599 {
			return nil, invalid("%s.Codes: %d is not a status code a retry is made for (400-599)", f, code)
		}
		if i > 0 && c.Codes[i-1] == code {
			return nil, invalid("%s.Codes: %d is given twice", f, code)
		}
	}
	return &c, nil
}

func validateRewrite(f string, rw *api.URLRewriteConfig, shape ruleShape) (*api.URLRewriteConfig, error) {
	if rw == nil {
		return nil, nil
	}
	out := *rw
	if out.Host == "" && out.PathModification == nil {
		return nil, invalid("%s needs Host, PathModification or both", f)
	}
	if out.Host != "" {
		if err := validateHostName(f+".Host", out.Host, false); err != nil {
			return nil, err
		}
	}
	var err error
	if out.PathModification, err = validatePathMod(f+".PathModification", out.PathModification, shape); err != nil {
		return nil, err
	}
	return &out, nil
}

func validateTimeouts(f string, tc *api.TimeoutConfig) (*api.TimeoutConfig, error) {
	if tc == nil {
		return nil, nil
	}
	for _, x := range []struct {
		name string
		v    int
	}{{"RequestMillis", tc.RequestMillis}, {"BackendRequestMillis", tc.BackendRequestMillis}} {
		if x.v < 0 || x.v > maxTimeoutMillis {
			return nil, invalid("%s.%s %d is outside 0..%d", f, x.name, x.v, maxTimeoutMillis)
		}
	}
	if tc.RequestMillis > 0 && tc.BackendRequestMillis > tc.RequestMillis {
		return nil, invalid("%s.BackendRequestMillis %d must not exceed RequestMillis %d", f, tc.BackendRequestMillis, tc.RequestMillis)
	}
	if *tc == (api.TimeoutConfig{}) {
		return nil, nil
	}
	c := *tc
	return &c, nil
}

func validateForward(f string, a api.Action, lim ALBLimits) (*api.ForwardActionConfig, error) {
	if a.ForwardConfig == nil {
		if a.TargetGroupID == "" {
			return nil, invalid("%s: a forward action needs TargetGroupId or ForwardConfig.TargetGroups", f)
		}
		w := 1
		return &api.ForwardActionConfig{TargetGroups: []api.TargetGroupTuple{{TargetGroupID: a.TargetGroupID, Weight: &w}}}, nil
	}
	groups := a.ForwardConfig.TargetGroups
	switch {
	case len(groups) == 0:
		return nil, invalid("%s.ForwardConfig.TargetGroups is required: at least one target group", f)
	case len(groups) > lim.TargetGroupsPerAction:
		return nil, api.Errorf(api.CodeTooManyTargetGroups, "%s.ForwardConfig.TargetGroups holds %d groups; an action forwards to at most %d", f, len(groups), lim.TargetGroupsPerAction)
	}
	if a.TargetGroupID != "" && (len(groups) != 1 || groups[0].TargetGroupID != a.TargetGroupID) {
		return nil, invalid("%s: TargetGroupId %s and ForwardConfig must name the same single group when both are given", f, a.TargetGroupID)
	}
	out := &api.ForwardActionConfig{TargetGroups: make([]api.TargetGroupTuple, len(groups))}
	seen := map[string]bool{}
	for i, g := range groups {
		fg := fmt.Sprintf("%s.ForwardConfig.TargetGroups[%d]", f, i)
		if g.TargetGroupID == "" {
			return nil, invalid("%s.TargetGroupId is required", fg)
		}
		if seen[g.TargetGroupID] {
			return nil, invalid("%s.TargetGroupId %s is listed twice in the action", fg, g.TargetGroupID)
		}
		seen[g.TargetGroupID] = true
		w := 1
		if g.Weight != nil {
			w = *g.Weight
		}
		if w < 0 || w > 999 {
			return nil, invalid("%s.Weight %d is outside 0..999", fg, w)
		}
		t := api.TargetGroupTuple{TargetGroupID: g.TargetGroupID, Weight: &w}
		var err error
		if t.RequestHeaderModifications, err = validateHeaderMods(fg+".RequestHeaderModifications", g.RequestHeaderModifications); err != nil {
			return nil, err
		}
		if t.ResponseHeaderModifications, err = validateHeaderMods(fg+".ResponseHeaderModifications", g.ResponseHeaderModifications); err != nil {
			return nil, err
		}
		out.TargetGroups[i] = t
	}
	return out, nil
}

// redirectKeep are ELBv2's placeholders that keep the request's value, by field.
var redirectKeep = map[string]string{"Protocol": "#{protocol}", "Host": "#{host}", "Path": "/#{path}", "Query": "#{query}"}

func validateRedirect(f string, rc api.RedirectActionConfig, shape ruleShape) (api.RedirectActionConfig, error) {
	out := rc
	for _, x := range []struct {
		name string
		v    *string
	}{{"Protocol", &out.Protocol}, {"Host", &out.Host}, {"Path", &out.Path}, {"Query", &out.Query}} {
		if *x.v == redirectKeep[x.name] {
			*x.v = ""
		}
	}
	switch out.Protocol {
	case "", api.ProtocolHTTP, api.ProtocolHTTPS:
	default:
		return out, invalid("%s.Protocol %.20q must be HTTP, HTTPS or #{protocol}", f, rc.Protocol)
	}
	if out.Host != "" {
		if err := validateHostName(f+".Host", out.Host, false); err != nil {
			return out, err
		}
	}
	if out.Port != 0 {
		if err := validatePort(f+".Port", out.Port); err != nil {
			return out, err
		}
	}
	if out.Path != "" {
		if out.PathModification != nil {
			return out, invalid("%s: give Path or PathModification, not both", f)
		}
		if !strings.HasPrefix(out.Path, "/") || len(out.Path) > maxPathLen || hasControl(out.Path) {
			return out, invalid("%s.Path %.60q must begin with / and hold at most %d characters", f, rc.Path, maxPathLen)
		}
	}
	var err error
	if out.PathModification, err = validatePathMod(f+".PathModification", out.PathModification, shape); err != nil {
		return out, err
	}
	if strings.HasPrefix(out.Query, "?") || len(out.Query) > maxConditionValueLen || hasControl(out.Query) {
		return out, invalid("%s.Query %.40q must hold at most %d characters and not begin with '?'", f, rc.Query, maxConditionValueLen)
	}
	switch out.StatusCode {
	case api.RedirectHTTP301, api.RedirectHTTP302, api.RedirectHTTP303, api.RedirectHTTP307, api.RedirectHTTP308:
	case "":
		return out, invalid("%s.StatusCode is required: HTTP_301, HTTP_302, HTTP_303, HTTP_307 or HTTP_308", f)
	default:
		return out, invalid("%s.StatusCode %.20q must be HTTP_301, HTTP_302, HTTP_303, HTTP_307 or HTTP_308", f, rc.StatusCode)
	}
	return out, nil
}

func validatePathMod(f string, pm *api.PathModification, shape ruleShape) (*api.PathModification, error) {
	if pm == nil {
		return nil, nil
	}
	switch pm.Type {
	case api.PathReplaceFull:
		if !strings.HasPrefix(pm.Value, "/") {
			return nil, invalid("%s.Value %.60q must begin with /", f, pm.Value)
		}
	case api.PathReplacePrefixMatch:
		if pm.Value != "" && !strings.HasPrefix(pm.Value, "/") {
			return nil, invalid("%s.Value %.60q must be empty or begin with /", f, pm.Value)
		}
		if !shape.prefixPath {
			where := "the rule has no path-pattern condition of MatchType Prefix"
			if shape.isDefault {
				where = "a listener's default actions have no conditions"
			}
			return nil, api.Errorf(api.CodeInvalidLoadBalancerAction, "%s.Type ReplacePrefixMatch replaces the prefix a Prefix path-pattern matched, but %s", f, where)
		}
	default:
		return nil, invalid("%s.Type %.30q must be ReplaceFullPath or ReplacePrefixMatch", f, pm.Type)
	}
	if len(pm.Value) > maxPathLen || hasControl(pm.Value) || strings.ContainsAny(pm.Value, "?#") {
		return nil, invalid("%s.Value %.60q must hold at most %d characters, without '?', '#' or control characters", f, pm.Value, maxPathLen)
	}
	c := *pm
	return &c, nil
}

func validateFixedResponse(f string, fr api.FixedResponseActionConfig) (api.FixedResponseActionConfig, error) {
	n, err := strconv.Atoi(fr.StatusCode)
	if err != nil || len(fr.StatusCode) != 3 || n < 200 || n >= 300 && n < 400 || n > 599 {
		return fr, invalid("%s.StatusCode %.20q must be an HTTP status code in 2XX, 4XX or 5XX", f, fr.StatusCode)
	}
	if fr.ContentType != "" && !slices.Contains(fixedResponseContentTypes, fr.ContentType) {
		return fr, invalid("%s.ContentType %.40q must be one of %s", f, fr.ContentType, strings.Join(fixedResponseContentTypes, ", "))
	}
	if len(fr.MessageBody) > maxFixedResponseBody {
		return fr, invalid("%s.MessageBody is %d bytes; at most %d", f, len(fr.MessageBody), maxFixedResponseBody)
	}
	return fr, nil
}

func validateHeaderMods(f string, hm *api.HeaderModifications) (*api.HeaderModifications, error) {
	if hm == nil {
		return nil, nil
	}
	seen := map[string]string{}
	name := func(field, n string) error {
		if err := validateHeaderName(field, n); err != nil {
			return err
		}
		k := strings.ToLower(n)
		if prev, dup := seen[k]; dup {
			return invalid("%s: header %s is already modified by %s; modify each header once", field, n, prev)
		}
		seen[k] = field
		return nil
	}
	for _, list := range []struct {
		field string
		hs    []api.HTTPHeader
	}{{f + ".Set", hm.Set}, {f + ".Add", hm.Add}} {
		if len(list.hs) > maxHeaderEdits {
			return nil, invalid("%s holds %d headers; at most %d", list.field, len(list.hs), maxHeaderEdits)
		}
		for i, h := range list.hs {
			fi := fmt.Sprintf("%s[%d]", list.field, i)
			if err := name(fi+".Name", h.Name); err != nil {
				return nil, err
			}
			if len(h.Value) > maxHeaderValueLen || strings.ContainsAny(h.Value, "\r\n\x00") {
				return nil, invalid("%s.Value must hold at most %d characters and no CR, LF or NUL", fi, maxHeaderValueLen)
			}
		}
	}
	if len(hm.Remove) > maxHeaderEdits {
		return nil, invalid("%s.Remove holds %d headers; at most %d", f, len(hm.Remove), maxHeaderEdits)
	}
	for i, n := range hm.Remove {
		if err := name(fmt.Sprintf("%s.Remove[%d]", f, i), n); err != nil {
			return nil, err
		}
	}
	if len(hm.Set)+len(hm.Add)+len(hm.Remove) == 0 {
		return nil, nil
	}
	return &api.HeaderModifications{Set: slices.Clone(hm.Set), Add: slices.Clone(hm.Add), Remove: slices.Clone(hm.Remove)}, nil
}

func validateMirrors(f string, ms []api.RequestMirrorConfig, lim ALBLimits) ([]api.RequestMirrorConfig, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	if len(ms) > lim.TargetGroupsPerAction {
		return nil, api.Errorf(api.CodeTooManyTargetGroups, "%s holds %d mirrors; an action mirrors to at most %d target groups", f, len(ms), lim.TargetGroupsPerAction)
	}
	out := make([]api.RequestMirrorConfig, len(ms))
	seen := map[string]bool{}
	for i, m := range ms {
		fi := fmt.Sprintf("%s[%d]", f, i)
		if m.TargetGroupID == "" {
			return nil, invalid("%s.TargetGroupId is required", fi)
		}
		if seen[m.TargetGroupID] {
			return nil, invalid("%s.TargetGroupId %s is mirrored to twice", fi, m.TargetGroupID)
		}
		seen[m.TargetGroupID] = true
		p := 100.0
		if m.Percent != nil {
			p = *m.Percent
		}
		if !(p >= 0 && p <= 100) {
			return nil, invalid("%s.Percent %v is outside 0..100", fi, p)
		}
		out[i] = api.RequestMirrorConfig{TargetGroupID: m.TargetGroupID, Percent: &p}
	}
	return out, nil
}
