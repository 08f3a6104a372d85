package state

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func hostTransform(regex, replace string) api.RuleTransform {
	return api.RuleTransform{Type: api.TransformTypeHostHeaderRewrite, HostHeaderRewriteConfig: &api.RewriteConfig{Rewrites: []api.RegexRewrite{{Regex: regex, Replace: replace}}}}
}

func urlTransform(regex, replace string) api.RuleTransform {
	return api.RuleTransform{Type: api.TransformTypeURLRewrite, URLRewriteConfig: &api.RewriteConfig{Rewrites: []api.RegexRewrite{{Regex: regex, Replace: replace}}}}
}

// TestRuleTransformsRoundTrip: CreateRule stores transforms, every view shows them (copies),
// ModifyRule keeps them unless given new ones or ResetTransforms, and they survive a restart.
func TestRuleTransformsRoundTrip(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := openT(t, Config{StateFile: path})
	w := newALBWorld(t, s)
	trs := []api.RuleTransform{hostTransform("^.*$", "new.example"), urlTransform(`^/dp/([a-z0-9]+)/?$`, "/dp.html?asin=$1")}
	c, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 1, Conditions: pathRule(api.MatchTypePrefix, "/dp"),
		Actions: forwardTo(w.tg.TargetGroupID), Transforms: trs})
	mustOK(t, err)
	id := c.Rule.RuleID
	want := func(step string, want []api.RuleTransform) {
		t.Helper()
		d, err := s.DescribeRules(admin(), &api.DescribeRulesRequest{RuleIDs: []string{id, w.listener.ListenerID + defaultRuleSuffix}})
		mustOK(t, err)
		if diff := cmp.Diff(want, d.Rules[0].Transforms); diff != "" {
			t.Errorf("%s: DescribeRules' transforms (-want +got):\n%s", step, diff)
		}
		if d.Rules[1].Transforms != nil {
			t.Errorf("%s: the default rule has transforms %+v", step, d.Rules[1].Transforms)
		}
		for _, r := range s.Snapshot().Rules {
			if r.RuleID == id {
				if diff := cmp.Diff(want, r.Transforms); diff != "" {
					t.Errorf("%s: the snapshot's transforms (-want +got):\n%s", step, diff)
				}
			}
		}
	}
	if diff := cmp.Diff(trs, c.Rule.Transforms); diff != "" {
		t.Errorf("CreateRule's answer (-want +got):\n%s", diff)
	}
	// A view is a copy: changing it changes nothing stored.
	c.Rule.Transforms[1].URLRewriteConfig.Rewrites[0].Replace = "/changed"
	want("created", trs)

	m, err := s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: id, Actions: forwardTo(w.tg2.TargetGroupID)})
	mustOK(t, err)
	if diff := cmp.Diff(trs, m.Rule.Transforms); diff != "" {
		t.Errorf("ModifyRule of the actions changed the transforms (-want +got):\n%s", diff)
	}
	want("actions modified", trs)

	repl := []api.RuleTransform{urlTransform("^/dp", "/item")}
	_, err = s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: id, Transforms: repl})
	mustOK(t, err)
	want("transforms replaced", repl)

	_, err = s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: id, Transforms: trs, ResetTransforms: true})
	wantCode(t, err, api.ErrValidationError)
	want("both given", repl)

	mustOK(t, s.Close())
	s = openT(t, Config{StateFile: path})
	want("restarted", repl)

	_, err = s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: id, ResetTransforms: true})
	mustOK(t, err)
	want("reset", nil)
}

// TestRuleTransformValidation: every refused transform answers ValidationError naming the
// field or the reason, on CreateRule and, against a stored rule, on ModifyRule.
func TestRuleTransformValidation(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	tg := w.tg.TargetGroupID
	prefix := pathRule(api.MatchTypePrefix, "/p")
	fwd := forwardTo(tg)
	rewriting := func(rw api.URLRewriteConfig) []api.Action {
		a := forwardTo(tg)
		a[0].URLRewriteConfig = &rw
		return a
	}
	fixed := []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "404"}}}
	redirect := []api.Action{{Type: api.ActionTypeRedirect, RedirectConfig: &api.RedirectActionConfig{Host: "a.example", StatusCode: api.RedirectHTTP301}}}
	two := hostTransform("a", "b")
	two.HostHeaderRewriteConfig.Rewrites = append(two.HostHeaderRewriteConfig.Rewrites, api.RegexRewrite{Regex: "c", Replace: "d"})
	both := hostTransform("a", "b")
	both.URLRewriteConfig = &api.RewriteConfig{Rewrites: []api.RegexRewrite{{Regex: "a", Replace: "/b"}}}
	for _, tc := range []struct {
		name string
		acts []api.Action
		trs  []api.RuleTransform
		says string
	}{
		{"no type", fwd, []api.RuleTransform{{URLRewriteConfig: &api.RewriteConfig{}}}, "Transforms[0].Type is required"},
		{"unknown type", fwd, []api.RuleTransform{{Type: "path-rewrite"}}, "Transforms[0].Type"},
		{"config of the other type", fwd, []api.RuleTransform{{Type: api.TransformTypeURLRewrite, HostHeaderRewriteConfig: &api.RewriteConfig{}}}, "Transforms[0]: a url-rewrite transform takes UrlRewriteConfig only"},
		{"both configs", fwd, []api.RuleTransform{both}, "Transforms[0]: a host-header-rewrite transform takes HostHeaderRewriteConfig only"},
		{"no rewrite", fwd, []api.RuleTransform{{Type: api.TransformTypeURLRewrite, URLRewriteConfig: &api.RewriteConfig{}}}, "Transforms[0].UrlRewriteConfig.Rewrites holds 0"},
		{"two rewrites", fwd, []api.RuleTransform{two}, "Transforms[0].HostHeaderRewriteConfig.Rewrites holds 2"},
		{"empty regex", fwd, []api.RuleTransform{urlTransform("", "/")}, "Transforms[0].UrlRewriteConfig.Rewrites[0].Regex"},
		{"long regex", fwd, []api.RuleTransform{urlTransform(strings.Repeat("a", 1025), "/")}, "Transforms[0].UrlRewriteConfig.Rewrites[0].Regex"},
		{"bad regex", fwd, []api.RuleTransform{urlTransform("^/(a", "/")}, "Transforms[0].UrlRewriteConfig.Rewrites[0].Regex \"^/(a\" is not a valid RE2 regular expression: error parsing regexp: missing closing )"},
		{"lookahead", fwd, []api.RuleTransform{hostTransform("(?=a)", "b")}, "Transforms[0].HostHeaderRewriteConfig.Rewrites[0].Regex \"(?=a)\" is not a valid RE2"},
		{"long replace", fwd, []api.RuleTransform{urlTransform("^/", "/"+strings.Repeat("a", 1024))}, "Transforms[0].UrlRewriteConfig.Rewrites[0].Replace holds 1025 characters"},
		{"named reference", fwd, []api.RuleTransform{urlTransform("^/(?P<x>a)", "/$x")}, "Transforms[0].UrlRewriteConfig.Rewrites[0].Replace \"/$x\": a $ must be followed by a group number"},
		{"braced name", fwd, []api.RuleTransform{urlTransform("^/(a)", "/${x}")}, "Rewrites[0].Replace \"/${x}\": a $ must be followed"},
		{"unclosed brace", fwd, []api.RuleTransform{urlTransform("^/(a)", "/${1")}, "Rewrites[0].Replace \"/${1\": a $ must be followed"},
		{"trailing $", fwd, []api.RuleTransform{urlTransform("^/(a)", "/a$")}, "Rewrites[0].Replace \"/a$\": a $ must be followed"},
		{"missing group", fwd, []api.RuleTransform{urlTransform("^/(a)", "/$2")}, "Rewrites[0].Replace \"/$2\" refers to group 2, but the Regex has 1 groups"},
		{"missing braced group", fwd, []api.RuleTransform{hostTransform("^(a)(b)", "${3}x")}, "refers to group 3, but the Regex has 2 groups"},
		{"two of one type", fwd, []api.RuleTransform{urlTransform("^/a", "/b"), hostTransform("a", "b"), urlTransform("^/c", "/d")}, "Transforms[2] repeats Transforms[0]'s type url-rewrite"},
		{"fixed response", fixed, []api.RuleTransform{urlTransform("^/a", "/b")}, "a rule with transforms must forward (its action is fixed-response)"},
		{"redirect", redirect, []api.RuleTransform{hostTransform("a", "b")}, "a rule with transforms must forward (its action is redirect)"},
		{"url twice", rewriting(api.URLRewriteConfig{PathModification: &api.PathModification{Type: api.PathReplacePrefixMatch, Value: "/q"}}),
			[]api.RuleTransform{urlTransform("^/p", "/q")}, "a rule rewrites its URL with a url-rewrite transform or its action's PathModification, not both"},
		{"host twice", rewriting(api.URLRewriteConfig{Host: "b.example"}),
			[]api.RuleTransform{hostTransform("a", "b")}, "Transforms[0]: a rule rewrites its Host with a host-header-rewrite transform or its action's UrlRewriteConfig.Host, not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 1, Conditions: prefix, Actions: tc.acts, Transforms: tc.trs})
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.CodeValidationError {
				t.Fatalf("got %v, want code %s", err, api.CodeValidationError)
			}
			if !strings.Contains(e.Message, tc.says) {
				t.Errorf("message %q does not say %q", e.Message, tc.says)
			}
		})
	}
	if n := len(w.rules(t)); n != 1 {
		t.Errorf("%d rules after refusals, want the default one only", n)
	}
	// What the two rewrite conflicts allow: a host transform beside a path modification.
	r, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 1, Conditions: prefix,
		Actions:    rewriting(api.URLRewriteConfig{PathModification: &api.PathModification{Type: api.PathReplacePrefixMatch, Value: "/q"}}),
		Transforms: []api.RuleTransform{hostTransform(`^(\w+)\.(a)$`, "$$${2}$1$0x")}})
	mustOK(t, err)
	// ModifyRule checks kept transforms against new actions, kept actions against new transforms.
	for name, req := range map[string]*api.ModifyRuleRequest{
		"kept transforms, fixed response": {Actions: fixed},
		"kept transforms, host rewrite":   {Actions: rewriting(api.URLRewriteConfig{Host: "b.example"})},
		"kept actions, url transform":     {Transforms: []api.RuleTransform{urlTransform("^/p", "/q")}},
		"both given":                      {Transforms: []api.RuleTransform{urlTransform("^/p", "/q")}, ResetTransforms: true},
		"bad regex":                       {Transforms: []api.RuleTransform{urlTransform("(", "/q")}},
		"nothing given":                   {},
	} {
		req.RuleID = r.Rule.RuleID
		_, err := s.ModifyRule(admin(), req)
		if !errors.Is(err, api.ErrValidationError) {
			t.Errorf("%s: got %v, want a ValidationError", name, err)
		}
	}
	d, err := s.DescribeRules(admin(), &api.DescribeRulesRequest{RuleIDs: []string{r.Rule.RuleID}})
	mustOK(t, err)
	if diff := cmp.Diff(r.Rule, d.Rules[0]); diff != "" {
		t.Errorf("refused modifications changed the rule (-want +got):\n%s", diff)
	}
}
