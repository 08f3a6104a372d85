package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestRuleValidationNamesTheField: every refused condition or action answers the right code
// with a message naming the field at fault, and changes nothing.
func TestRuleValidationNamesTheField(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	tg := w.tg.TargetGroupID
	host := func(vs ...string) api.RuleCondition {
		return api.RuleCondition{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: vs}}
	}
	path := func(mt string, vs ...string) api.RuleCondition {
		return api.RuleCondition{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{Values: vs, MatchType: mt}}
	}
	header := func(name, mt string, vs ...string) api.RuleCondition {
		return api.RuleCondition{Field: api.ConditionHTTPHeader, HTTPHeaderConfig: &api.HTTPHeaderConditionConfig{HTTPHeaderName: name, Values: vs, MatchType: mt}}
	}
	query := func(mt string, kvs ...api.QueryStringKeyValue) api.RuleCondition {
		return api.RuleCondition{Field: api.ConditionQueryString, QueryStringConfig: &api.QueryStringConditionConfig{Values: kvs, MatchType: mt}}
	}
	method := func(vs ...string) api.RuleCondition {
		return api.RuleCondition{Field: api.ConditionHTTPRequestMethod, HTTPRequestMethodConfig: &api.HTTPRequestMethodConditionConfig{Values: vs}}
	}
	fwd := forwardTo(tg)
	withFwd := func(mod func(*api.Action)) []api.Action {
		a := forwardTo(tg)[0]
		mod(&a)
		return []api.Action{a}
	}
	redirect := func(rc api.RedirectActionConfig) []api.Action {
		return []api.Action{{Type: api.ActionTypeRedirect, RedirectConfig: &rc}}
	}
	fixed := func(fr api.FixedResponseActionConfig) []api.Action {
		return []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &fr}}
	}
	prefix := []api.RuleCondition{path(api.MatchTypePrefix, "/p")}
	exact := []api.RuleCondition{path("", "/p")}
	pct := func(p float64) *float64 { return &p }
	for _, tc := range []struct {
		name  string
		conds []api.RuleCondition
		acts  []api.Action
		code  string
		field string
	}{
		{"no conditions", nil, fwd, api.CodeValidationError, "Conditions"},
		{"unknown field", []api.RuleCondition{{Field: "source-ip"}}, fwd, api.CodeValidationError, "Conditions[0].Field"},
		{"config of another field", []api.RuleCondition{{Field: api.ConditionHostHeader, PathPatternConfig: &api.PathPatternConditionConfig{Values: []string{"/"}}}}, fwd, api.CodeValidationError, "HostHeaderConfig"},
		{"two configs", []api.RuleCondition{{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: []string{"a"}}, PathPatternConfig: &api.PathPatternConditionConfig{}}}, fwd, api.CodeValidationError, "PathPatternConfig"},
		{"host empty", []api.RuleCondition{host()}, fwd, api.CodeValidationError, "Conditions[0].HostHeaderConfig.Values"},
		{"host bad", []api.RuleCondition{host("a..b")}, fwd, api.CodeValidationError, "Conditions[0].HostHeaderConfig.Values[0]"},
		{"host inner wildcard", []api.RuleCondition{host("ok.com", "a.*.com")}, fwd, api.CodeValidationError, "Conditions[0].HostHeaderConfig.Values[1]"},
		{"host twice", []api.RuleCondition{host("a.com"), host("b.com")}, fwd, api.CodeValidationError, "Conditions[1]"},
		{"host duplicate value", []api.RuleCondition{host("a.com", "a.com")}, fwd, api.CodeValidationError, "Conditions[0].HostHeaderConfig.Values"},
		{"path relative", []api.RuleCondition{path("", "api")}, fwd, api.CodeValidationError, "Conditions[0].PathPatternConfig.Values[0]"},
		{"path match type", []api.RuleCondition{path("Glob", "/a")}, fwd, api.CodeValidationError, "Conditions[0].PathPatternConfig.MatchType"},
		{"path regex", []api.RuleCondition{path(api.MatchTypeRegex, "/a(")}, fwd, api.CodeValidationError, "Conditions[0].PathPatternConfig.Values[0]"},
		{"path regex not RE2", []api.RuleCondition{path(api.MatchTypeRegex, `/(?=a)`)}, fwd, api.CodeValidationError, "RE2"},
		{"header name", []api.RuleCondition{header("X Bad", "", "v")}, fwd, api.CodeValidationError, "Conditions[0].HttpHeaderConfig.HttpHeaderName"},
		{"header match type", []api.RuleCondition{header("X-A", api.MatchTypePrefix, "v")}, fwd, api.CodeValidationError, "Conditions[0].HttpHeaderConfig.MatchType"},
		{"header regex", []api.RuleCondition{header("X-A", api.MatchTypeRegex, "[")}, fwd, api.CodeValidationError, "Conditions[0].HttpHeaderConfig.Values[0]"},
		{"header twice", []api.RuleCondition{header("X-A", "", "1"), header("x-a", "", "2")}, fwd, api.CodeValidationError, "Conditions[1]"},
		{"header value control", []api.RuleCondition{header("X-A", "", "a\nb")}, fwd, api.CodeValidationError, "Conditions[0].HttpHeaderConfig.Values[0]"},
		{"query no values", []api.RuleCondition{query("")}, fwd, api.CodeValidationError, "Conditions[0].QueryStringConfig.Values"},
		{"query no key", []api.RuleCondition{query("", api.QueryStringKeyValue{Value: "v"})}, fwd, api.CodeValidationError, "Conditions[0].QueryStringConfig.Values[0].Key"},
		{"query regex", []api.RuleCondition{query(api.MatchTypeRegex, api.QueryStringKeyValue{Key: "k", Value: "("})}, fwd, api.CodeValidationError, "Conditions[0].QueryStringConfig.Values[0].Value"},
		{"method lower case", []api.RuleCondition{method("get")}, fwd, api.CodeValidationError, "Conditions[0].HttpRequestMethodConfig.Values[0]"},
		{"too many values", []api.RuleCondition{host("a.com", "b.com", "c.com"), path("", "/a", "/b", "/c")}, fwd, api.CodeValidationError, "Conditions hold 6 values"},

		{"no actions", exact, nil, api.CodeValidationError, "Actions"},
		{"two actions", exact, append(forwardTo(tg), forwardTo(tg)...), api.CodeTooManyActions, "Actions"},
		{"action type", exact, []api.Action{{Type: "authenticate-oidc"}}, api.CodeValidationError, "Actions[0].Type"},
		{"forward nothing", exact, []api.Action{{Type: api.ActionTypeForward}}, api.CodeValidationError, "Actions[0]"},
		{"forward with redirect", exact, withFwd(func(a *api.Action) { a.RedirectConfig = &api.RedirectActionConfig{} }), api.CodeValidationError, "Actions[0]"},
		{"forward empty config", exact, []api.Action{{Type: api.ActionTypeForward, ForwardConfig: &api.ForwardActionConfig{}}}, api.CodeValidationError, "Actions[0].ForwardConfig.TargetGroups"},
		{"weight", exact, withFwd(func(a *api.Action) { a.ForwardConfig.TargetGroups[0].Weight = intp(1000) }), api.CodeValidationError, "Actions[0].ForwardConfig.TargetGroups[0].Weight"},
		{"negative weight", exact, withFwd(func(a *api.Action) { a.ForwardConfig.TargetGroups[0].Weight = intp(-1) }), api.CodeValidationError, "Actions[0].ForwardConfig.TargetGroups[0].Weight"},
		{"group twice", exact, forwardTo(tg, tg), api.CodeValidationError, "Actions[0].ForwardConfig.TargetGroups[1].TargetGroupId"},
		{"too many groups", exact, forwardTo("tg-1", "tg-2", "tg-3", "tg-4", "tg-5", "tg-6"), api.CodeTooManyTargetGroups, "Actions[0].ForwardConfig.TargetGroups"},
		{"group and config differ", exact, withFwd(func(a *api.Action) { a.TargetGroupID = w.tg2.TargetGroupID }), api.CodeValidationError, "TargetGroupId"},
		{"unknown group", exact, forwardTo("tg-nope"), api.CodeTargetGroupNotFound, "tg-nope"},
		{"backend header name", exact, withFwd(func(a *api.Action) {
			a.ForwardConfig.TargetGroups[0].RequestHeaderModifications = &api.HeaderModifications{Set: []api.HTTPHeader{{Name: "", Value: "v"}}}
		}), api.CodeValidationError, "Actions[0].ForwardConfig.TargetGroups[0].RequestHeaderModifications.Set[0].Name"},
		{"header set twice", exact, withFwd(func(a *api.Action) {
			a.RequestHeaderModifications = &api.HeaderModifications{Set: []api.HTTPHeader{{Name: "X-A", Value: "1"}}, Remove: []string{"x-a"}}
		}), api.CodeValidationError, "Actions[0].RequestHeaderModifications.Remove[0]"},
		{"header value CRLF", exact, withFwd(func(a *api.Action) {
			a.ResponseHeaderModifications = &api.HeaderModifications{Add: []api.HTTPHeader{{Name: "X-A", Value: "1\r\nX-Evil: 1"}}}
		}), api.CodeValidationError, "Actions[0].ResponseHeaderModifications.Add[0].Value"},
		{"rewrite empty", exact, withFwd(func(a *api.Action) { a.URLRewriteConfig = &api.URLRewriteConfig{} }), api.CodeValidationError, "Actions[0].UrlRewriteConfig"},
		{"rewrite host", exact, withFwd(func(a *api.Action) { a.URLRewriteConfig = &api.URLRewriteConfig{Host: "*.a.com"} }), api.CodeValidationError, "Actions[0].UrlRewriteConfig.Host"},
		{"rewrite prefix without prefix match", exact, withFwd(func(a *api.Action) {
			a.URLRewriteConfig = &api.URLRewriteConfig{PathModification: &api.PathModification{Type: api.PathReplacePrefixMatch, Value: "/x"}}
		}), api.CodeInvalidLoadBalancerAction, "Actions[0].UrlRewriteConfig.PathModification.Type"},
		{"rewrite path type", prefix, withFwd(func(a *api.Action) {
			a.URLRewriteConfig = &api.URLRewriteConfig{PathModification: &api.PathModification{Type: "Strip", Value: "/x"}}
		}), api.CodeValidationError, "Actions[0].UrlRewriteConfig.PathModification.Type"},
		{"rewrite full path relative", prefix, withFwd(func(a *api.Action) {
			a.URLRewriteConfig = &api.URLRewriteConfig{PathModification: &api.PathModification{Type: api.PathReplaceFull, Value: "x"}}
		}), api.CodeValidationError, "Actions[0].UrlRewriteConfig.PathModification.Value"},
		{"mirror percent", exact, withFwd(func(a *api.Action) {
			a.RequestMirrors = []api.RequestMirrorConfig{{TargetGroupID: tg, Percent: pct(101)}}
		}), api.CodeValidationError, "Actions[0].RequestMirrors[0].Percent"},
		{"mirror no group", exact, withFwd(func(a *api.Action) { a.RequestMirrors = []api.RequestMirrorConfig{{}} }), api.CodeValidationError, "Actions[0].RequestMirrors[0].TargetGroupId"},
		{"mirror unknown group", exact, withFwd(func(a *api.Action) { a.RequestMirrors = []api.RequestMirrorConfig{{TargetGroupID: "tg-gone"}} }), api.CodeTargetGroupNotFound, "tg-gone"},
		{"timeout negative", exact, withFwd(func(a *api.Action) { a.TimeoutConfig = &api.TimeoutConfig{RequestMillis: -1} }), api.CodeValidationError, "Actions[0].TimeoutConfig.RequestMillis"},
		{"backend timeout above request", exact, withFwd(func(a *api.Action) {
			a.TimeoutConfig = &api.TimeoutConfig{RequestMillis: 100, BackendRequestMillis: 200}
		}), api.CodeValidationError, "Actions[0].TimeoutConfig.BackendRequestMillis"},
		{"retry no attempts", exact, withFwd(func(a *api.Action) { a.RetryConfig = &api.RetryConfig{} }), api.CodeValidationError, "Actions[0].RetryConfig.Attempts"},
		{"retry too many attempts", exact, withFwd(func(a *api.Action) { a.RetryConfig = &api.RetryConfig{Attempts: 11} }), api.CodeValidationError, "Actions[0].RetryConfig.Attempts"},
		{"retry backoff", exact, withFwd(func(a *api.Action) { a.RetryConfig = &api.RetryConfig{Attempts: 1, BackoffMillis: -1} }), api.CodeValidationError, "Actions[0].RetryConfig.BackoffMillis"},
		{"retry code", exact, withFwd(func(a *api.Action) { a.RetryConfig = &api.RetryConfig{Attempts: 1, Codes: []int{200}} }), api.CodeValidationError, "200"},
		{"retry code twice", exact, withFwd(func(a *api.Action) { a.RetryConfig = &api.RetryConfig{Attempts: 1, Codes: []int{502, 502}} }), api.CodeValidationError, "twice"},
		{"cors no origin", exact, withFwd(func(a *api.Action) { a.CorsConfig = &api.CorsConfig{} }), api.CodeValidationError, "Actions[0].CorsConfig.AllowOrigins is empty"},
		{"cors origin with a path", exact, withFwd(func(a *api.Action) { a.CorsConfig = &api.CorsConfig{AllowOrigins: []string{"https://a.com/x"}} }), api.CodeValidationError, "Actions[0].CorsConfig.AllowOrigins[0]"},
		{"cors origin port", exact, withFwd(func(a *api.Action) { a.CorsConfig = &api.CorsConfig{AllowOrigins: []string{"https://a.com:70000"}} }), api.CodeValidationError, "Actions[0].CorsConfig.AllowOrigins[0]"},
		{"cors method", exact, withFwd(func(a *api.Action) {
			a.CorsConfig = &api.CorsConfig{AllowOrigins: []string{"*"}, AllowMethods: []string{"GE T"}}
		}), api.CodeValidationError, "Actions[0].CorsConfig.AllowMethods[0]"},
		{"cors header", exact, withFwd(func(a *api.Action) {
			a.CorsConfig = &api.CorsConfig{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"x:y"}}
		}), api.CodeValidationError, "Actions[0].CorsConfig.ExposeHeaders[0]"},
		{"cors max age", exact, withFwd(func(a *api.Action) { a.CorsConfig = &api.CorsConfig{AllowOrigins: []string{"*"}, MaxAgeSeconds: 86401} }), api.CodeValidationError, "Actions[0].CorsConfig.MaxAgeSeconds"},
		{"redirect no status", exact, redirect(api.RedirectActionConfig{Host: "a.com"}), api.CodeValidationError, "Actions[0].RedirectConfig.StatusCode"},
		{"redirect status", exact, redirect(api.RedirectActionConfig{Host: "a.com", StatusCode: "HTTP_304"}), api.CodeValidationError, "Actions[0].RedirectConfig.StatusCode"},
		{"redirect protocol", exact, redirect(api.RedirectActionConfig{Protocol: "FTP", StatusCode: api.RedirectHTTP302}), api.CodeValidationError, "Actions[0].RedirectConfig.Protocol"},
		{"redirect port", exact, redirect(api.RedirectActionConfig{Port: 70000, StatusCode: api.RedirectHTTP302}), api.CodeValidationError, "Actions[0].RedirectConfig.Port"},
		{"redirect path", exact, redirect(api.RedirectActionConfig{Path: "x", StatusCode: api.RedirectHTTP302}), api.CodeValidationError, "Actions[0].RedirectConfig.Path"},
		{"redirect path twice", prefix, redirect(api.RedirectActionConfig{Path: "/x", PathModification: &api.PathModification{Type: api.PathReplaceFull, Value: "/y"}, StatusCode: api.RedirectHTTP302}), api.CodeValidationError, "Actions[0].RedirectConfig"},
		{"redirect query", exact, redirect(api.RedirectActionConfig{Query: "?a=1", StatusCode: api.RedirectHTTP302}), api.CodeValidationError, "Actions[0].RedirectConfig.Query"},
		{"redirect with target group", exact, []api.Action{{Type: api.ActionTypeRedirect, TargetGroupID: tg, RedirectConfig: &api.RedirectActionConfig{StatusCode: api.RedirectHTTP302}}}, api.CodeValidationError, "Actions[0]"},
		{"redirect request headers", exact, []api.Action{{Type: api.ActionTypeRedirect, RedirectConfig: &api.RedirectActionConfig{StatusCode: api.RedirectHTTP302},
			RequestHeaderModifications: &api.HeaderModifications{Remove: []string{"X"}}}}, api.CodeValidationError, "Actions[0].RequestHeaderModifications"},
		{"fixed status", exact, fixed(api.FixedResponseActionConfig{StatusCode: "302"}), api.CodeValidationError, "Actions[0].FixedResponseConfig.StatusCode"},
		{"fixed content type", exact, fixed(api.FixedResponseActionConfig{StatusCode: "503", ContentType: "image/png"}), api.CodeValidationError, "Actions[0].FixedResponseConfig.ContentType"},
		{"fixed body", exact, fixed(api.FixedResponseActionConfig{StatusCode: "503", MessageBody: strings.Repeat("x", 1025)}), api.CodeValidationError, "Actions[0].FixedResponseConfig.MessageBody"},
		{"fixed mirror", exact, []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "200"},
			RequestMirrors: []api.RequestMirrorConfig{{TargetGroupID: tg}}}}, api.CodeValidationError, "Actions[0].RequestMirrors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 1, Conditions: tc.conds, Actions: tc.acts})
			var e *api.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("got %v, want code %s", err, tc.code)
			}
			if !strings.Contains(e.Message, tc.field) {
				t.Errorf("message %q does not name %q", e.Message, tc.field)
			}
		})
	}
	if n := len(w.rules(t)); n != 1 {
		t.Errorf("%d rules after refusals, want the default one only", n)
	}
	// Listener default actions have no conditions: ReplacePrefixMatch cannot apply.
	_, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: w.listener.ListenerID, DefaultActions: redirect(api.RedirectActionConfig{
		PathModification: &api.PathModification{Type: api.PathReplacePrefixMatch, Value: "/"}, StatusCode: api.RedirectHTTP301})})
	wantCode(t, err, api.ErrInvalidLoadBalancerAction)
	if !strings.Contains(err.Error(), "DefaultActions[0].RedirectConfig.PathModification") {
		t.Errorf("error %q does not name the field", err)
	}
}

// ruleInput is what the fuzzer feeds validation: a rule's conditions, actions and transforms
// as JSON.
type ruleInput struct {
	Conditions []api.RuleCondition `json:"Conditions"`
	Actions    []api.Action        `json:"Actions"`
	Transforms []api.RuleTransform `json:"Transforms"`
}

// FuzzRuleValidation: validation never panics, and what it accepts it accepts again
// unchanged (normalising is idempotent), so a stored rule always re-validates.
func FuzzRuleValidation(f *testing.F) {
	seeds, err := filepath.Glob("testdata/rules/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range seeds {
		body, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	lim := ALBLimits{}.withDefaults()
	f.Fuzz(func(t *testing.T, body []byte) {
		var in ruleInput
		if json.Unmarshal(body, &in) != nil {
			return
		}
		conds, shape, err := validateConditions(in.Conditions, lim)
		if err != nil {
			requireAPIError(t, err)
			return
		}
		acts, tgs, err := validateActions("Actions", in.Actions, shape, lim)
		if err != nil {
			requireAPIError(t, err)
			return
		}
		conds2, shape2, err := validateConditions(conds, lim)
		if err != nil || shape2 != shape || !reflect.DeepEqual(conds, conds2) {
			t.Fatalf("normalised conditions do not re-validate unchanged: %v\n%+v\n%+v", err, conds, conds2)
		}
		acts2, tgs2, err := validateActions("Actions", acts, shape, lim)
		if err != nil || !reflect.DeepEqual(acts, acts2) || !reflect.DeepEqual(tgs, tgs2) {
			t.Fatalf("normalised actions do not re-validate unchanged: %v\n%+v\n%+v", err, acts, acts2)
		}
		trs, err := validateTransforms(in.Transforms)
		if err == nil {
			err = checkTransformsFit(api.ProtocolHTTP, trs, acts)
		}
		if err != nil {
			requireAPIError(t, err)
			return
		}
		trs2, err := validateTransforms(trs)
		if err != nil || !reflect.DeepEqual(trs, trs2) {
			t.Fatalf("normalised transforms do not re-validate unchanged: %v\n%+v\n%+v", err, trs, trs2)
		}
	})
}

func requireAPIError(t *testing.T, err error) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("validation failed with %v, want an *api.Error with a message", err)
	}
}

// TestALBSurvivesRestart: rules, certificates (keys included) and listener certificate lists
// come back after a restart, from the log and from a compacted snapshot.
func TestALBSurvivesRestart(t *testing.T) {
	for _, compact := range []bool{false, true} {
		path := t.TempDir() + "/state.json"
		s := openT(t, Config{StateFile: path})
		w := newALBWorld(t, s)
		c := importCert(t, s, "a.example.com")
		l, err := s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTPS, Port: 443,
			DefaultActions: forwardTo(w.tg.TargetGroupID), Certificates: []api.ListenerCertificate{{CertificateID: c.CertificateID}}})
		mustOK(t, err)
		r := w.rule(t, 3, pathRule(api.MatchTypePrefix, "/api"), withMirror(forwardTo(w.tg2.TargetGroupID), w.tg.TargetGroupID))
		kp, _ := s.CertificateKeyPair(c.CertificateID)
		before := s.Snapshot()
		if compact {
			s.compact()
		}
		mustOK(t, s.Close())

		s2 := openT(t, Config{StateFile: path})
		after := s2.Snapshot()
		for what, pair := range map[string][2]any{
			"rules": {before.Rules, after.Rules}, "certificates": {before.Certificates, after.Certificates}, "listeners": {before.Listeners, after.Listeners},
		} {
			if diff := cmp.Diff(pair[0], pair[1]); diff != "" {
				t.Fatalf("compact=%v: restart changed the %s (-before +after):\n%s", compact, what, diff)
			}
		}
		if kp2, ok := s2.CertificateKeyPair(c.CertificateID); !ok || !reflect.DeepEqual(kp, kp2) {
			t.Errorf("compact=%v: the key pair did not survive", compact)
		}
		// The indexes came back too: the certificate is in use, the priority taken.
		_, err = s2.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: c.CertificateID})
		wantCode(t, err, api.ErrResourceInUse)
		_, err = s2.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 3, Conditions: pathRule("", "/x"), Actions: forwardTo(w.tg.TargetGroupID)})
		wantCode(t, err, api.ErrPriorityInUse)
		_, err = s2.DeleteTargetGroup(admin(), &api.DeleteTargetGroupRequest{TargetGroupID: w.tg2.TargetGroupID})
		wantCode(t, err, api.ErrResourceInUse)
		if len(after.Listeners) != 2 || len(after.Rules) != 1 || after.Rules[0].RuleID != r.RuleID || l.Listener.Certificates[0].CertificateID != c.CertificateID {
			t.Errorf("compact=%v: after restart %d listeners, rules %+v", compact, len(after.Listeners), after.Rules)
		}
	}
}

func withMirror(acts []api.Action, tg string) []api.Action {
	acts[0].RequestMirrors = []api.RequestMirrorConfig{{TargetGroupID: tg}}
	return acts
}

// TestALBChangeStream: rules and certificates are in the change stream, never with a key.
func TestALBChangeStream(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	seq := s.Seq()
	r := w.rule(t, 1, pathRule("", "/a"), forwardTo(w.tg2.TargetGroupID))
	c := importCert(t, s, "a.example.com")
	_, err := s.DeleteRule(admin(), &api.DeleteRuleRequest{RuleID: r.RuleID})
	mustOK(t, err)
	resp, err := s.WaitChanges(t.Context(), seq)
	mustOK(t, err)
	kinds := map[string][]string{}
	for _, ch := range resp.Changes {
		kinds[ch.Kind] = append(kinds[ch.Kind], ch.Op)
		if ch.Kind == api.KindRule && ch.Op == api.ChangeUpsert && (ch.Rule == nil || ch.Rule.RuleID != r.RuleID) {
			t.Errorf("rule upsert %+v does not carry the rule", ch)
		}
		if ch.Kind == api.KindCertificate && (ch.Certificate == nil || ch.Certificate.CertificateID != c.CertificateID) {
			t.Errorf("certificate change %+v does not carry the certificate", ch)
		}
	}
	if got := strings.Join(kinds[api.KindRule], ","); got != "upsert,delete" {
		t.Errorf("rule changes %q, want upsert,delete", got)
	}
	if len(kinds[api.KindTargetGroup]) != 2 {
		t.Errorf("target group changes %v: using and releasing the group should each mark it", kinds[api.KindTargetGroup])
	}
}
