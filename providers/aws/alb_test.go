package aws

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/providertest"
)

// TestApplicationLoadBalancingContract runs the application load balancing contract against
// fakecloud's ELBv2 and ACM endpoints, signing with a load-balancer token's keys (in this package,
// so that the IAM policy test sees every operation the contract makes the driver call). ELBv2
// carries the core actions only: the suite checks that the driver refuses the others.
func TestApplicationLoadBalancingContract(t *testing.T) {
	providertest.RunApplicationLoadBalancing(t, func(t *testing.T) providertest.ApplicationLoadBalancingEnv {
		w := &world{Env: servertest.Start(t, servertest.Options{}), ops: &opLog{seen: map[string]bool{}}}
		key := servertest.LoadBalancerAWSKey(w.LoadBalancerToken(t))
		return providertest.ApplicationLoadBalancingEnv{Cloud: w.Env, CoreActionsOnly: true, New: func(t *testing.T, sn api.Subnet) providers.ApplicationLoadBalancing {
			d, err := NewLoadBalancing(context.Background(), LBConfig{Config: w.config(key, "lbcontroller"), SubnetID: sn.SubnetID, PollInterval: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}}
	})
}

// TestConditionsRoundTrip: what the driver writes as ELBv2 conditions reads back as the same
// seam conditions; what ELBv2 cannot say is refused before any call, naming it.
func TestConditionsRoundTrip(t *testing.T) {
	grpcCT := gateway.GRPCContentType()
	for _, c := range []providers.RuleConditions{
		{Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/"}},
		{Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/api"}},
		{Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/a.b+c"}},
		{Path: &providers.StringMatch{Type: providers.MatchExact, Value: "/old"}},
		{Path: &providers.StringMatch{Type: providers.MatchRegex, Value: "/v[0-9]+/.*"}},
		{Hosts: []string{"a.example.com", "*.example.com"}, Method: "POST"},
		{Headers: []providers.StringMatch{{Name: "x-v", Type: providers.MatchExact, Value: "1"}, {Name: "x-w", Type: providers.MatchRegex, Value: `a.*b\.c.`}}},
		{Query: []providers.StringMatch{{Name: "q", Type: providers.MatchRegex, Value: "a.*"}}},
		{Headers: []providers.StringMatch{{Name: "x", Type: providers.MatchRegex, Value: `a|b\.c.*|\|d`}}},
		// What lbcontroller gives every GRPCRoute rule: the gRPC content type, the method's path,
		// one host (five values, ELBv2's quota).
		{Hosts: []string{"grpc.example.com"}, Path: &providers.StringMatch{Type: providers.MatchExact, Value: "/grpc.health.v1.Health/Check"},
			Headers: []providers.StringMatch{{Name: grpcCT.Name, Type: grpcCT.Type, Value: grpcCT.Value}}},
	} {
		conds, err := toELBConditions(c)
		if err != nil {
			t.Errorf("%+v: %v", c, err)
			continue
		}
		back, err := fromELBConditions(conds)
		if err != nil {
			t.Errorf("%+v read back: %v", c, err)
			continue
		}
		if d := cmp.Diff(c, back); d != "" {
			t.Errorf("round trip (-wrote +read):\n%s", d)
		}
	}
	for name, c := range map[string]providers.RuleConditions{
		"exact with a wildcard": {Path: &providers.StringMatch{Type: providers.MatchExact, Value: "/a*"}},
		"header regex":          {Headers: []providers.StringMatch{{Name: "x", Type: providers.MatchRegex, Value: "(a|b)c"}}},
		"four alternatives":     {Headers: []providers.StringMatch{{Name: "x", Type: providers.MatchRegex, Value: "a|b|c|d"}}},
		"query class":           {Query: []providers.StringMatch{{Name: "q", Type: providers.MatchRegex, Value: "[0-9]+"}}},
	} {
		_, err := toELBConditions(c)
		var pe *providers.Error
		if !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
			t.Errorf("%s: %v; want ErrInvalid (%s)", name, err, codeUnsupported)
		}
	}
	for _, p := range []string{providers.ProtocolTLS, providers.ProtocolTCP, providers.ProtocolUDP} {
		_, err := (&LoadBalancing{}).CreateHTTPListener(context.Background(), "lb", providers.HTTPListenerSpec{Protocol: p, Port: 443})
		var pe *providers.Error
		if !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
			t.Errorf("%s listener: %v; want ErrInvalid (%s)", p, err, codeUnsupported)
		}
		if err == nil || !strings.Contains(err.Error(), p+" listeners on an application load balancer") || !strings.Contains(err.Error(), "network load balancers") {
			t.Errorf("%s listener: %v; want it to name the protocol and point to network load balancers", p, err)
		}
	}
	// ELBv2 validates client certificates against trust stores, which the driver does not
	// manage: a listener asking for it is refused before any call, on create and modify.
	mtls := providers.HTTPListenerSpec{Protocol: "HTTPS", Port: 443, Certificates: []string{"cert"},
		ClientValidation: &providers.ClientValidation{Verify: true, CAPEM: []byte("-----BEGIN CERTIFICATE-----")}}
	for op, call := range map[string]func() error{
		"CreateHTTPListener": func() error {
			_, err := (&LoadBalancing{}).CreateHTTPListener(context.Background(), "lb", mtls)
			return err
		},
		"ModifyHTTPListener": func() error {
			_, err := (&LoadBalancing{}).ModifyHTTPListener(context.Background(), "listener", mtls)
			return err
		},
	} {
		err := call()
		var pe *providers.Error
		if !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
			t.Errorf("%s with ClientValidation: %v; want ErrInvalid (%s)", op, err, codeUnsupported)
		}
		if err == nil || !strings.Contains(err.Error(), "client certificate validation on HTTPS listener 443") || !strings.Contains(err.Error(), "trust stores") {
			t.Errorf("%s with ClientValidation: %v; want it to name the listener and the trust stores the driver lacks", op, err)
		}
	}
	for name, a := range map[string]providers.RuleAction{
		"redirect 307":    {Redirect: &providers.Redirect{StatusCode: 307}},
		"prefix redirect": {Redirect: &providers.Redirect{StatusCode: 302, Path: &providers.PathModifier{Type: providers.ReplacePrefixMatch, Value: "/x"}}},
		"mirror":          {Forward: []providers.WeightedTargetGroup{{TargetGroupID: "tg", Weight: 1}}, Mirrors: []providers.Mirror{{TargetGroupID: "m", Percent: 1}}},
		"TLS passthrough": {Forward: []providers.WeightedTargetGroup{{TargetGroupID: "tg", Weight: 1}}, TLSPassthrough: true},
		"CORS":            {Forward: []providers.WeightedTargetGroup{{TargetGroupID: "tg", Weight: 1}}, CORS: &providers.CORS{AllowOrigins: []string{"*"}}},
	} {
		if _, err := toELBAction(a); !errors.Is(err, providers.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
}

// TestRewriteTransforms: a rule's rewrite is ELBv2's transforms in the driver's fixed shapes,
// and reads back as the same rewrite; what ELBv2 cannot say is refused, and transforms the
// driver does not write are an error on reading.
func TestRewriteTransforms(t *testing.T) {
	fwd := []providers.WeightedTargetGroup{{TargetGroupID: "tg", Weight: 1}}
	prefix := func(p string) *providers.StringMatch {
		return &providers.StringMatch{Type: providers.MatchPrefix, Value: p}
	}
	full := func(v string) *providers.PathModifier {
		return &providers.PathModifier{Type: providers.ReplaceFullPath, Value: v}
	}
	repl := func(v string) *providers.PathModifier {
		return &providers.PathModifier{Type: providers.ReplacePrefixMatch, Value: v}
	}
	host := func(re, to string) elbtypes.RuleTransform {
		return elbtypes.RuleTransform{Type: elbtypes.TransformTypeEnumHostHeaderRewrite, HostHeaderRewriteConfig: &elbtypes.HostHeaderRewriteConfig{Rewrites: oneRewrite(re, to)}}
	}
	url := func(re, to string) elbtypes.RuleTransform {
		return elbtypes.RuleTransform{Type: elbtypes.TransformTypeEnumUrlRewrite, UrlRewriteConfig: &elbtypes.UrlRewriteConfig{Rewrites: oneRewrite(re, to)}}
	}
	for _, tc := range []struct {
		name string
		path *providers.StringMatch
		rw   providers.Rewrite
		want []elbtypes.RuleTransform
		// requests: path?query -> what the rewrite makes of it (as ELBv2 applies the regex)
		requests map[string]string
	}{
		{name: "host", path: prefix("/"), rw: providers.Rewrite{Host: "backend.internal"}, want: []elbtypes.RuleTransform{host("^.*$", "backend.internal")}},
		{name: "full path", path: &providers.StringMatch{Type: providers.MatchExact, Value: "/old"}, rw: providers.Rewrite{Path: full("/new")},
			want: []elbtypes.RuleTransform{url("^[^?]*", "/new")}, requests: map[string]string{"/old": "/new", "/old?a=1": "/new?a=1"}},
		{name: "host and prefix", path: prefix("/foo"), rw: providers.Rewrite{Host: "h.example", Path: repl("/xyz")},
			want:     []elbtypes.RuleTransform{host("^.*$", "h.example"), url("^/foo", "/xyz")},
			requests: map[string]string{"/foo/bar": "/xyz/bar", "/foo": "/xyz", "/foo/": "/xyz/", "/foo?q=1": "/xyz?q=1"}},
		{name: "prefix with a trailing slash", path: prefix("/foo"), rw: providers.Rewrite{Path: repl("/xyz/")},
			want:     []elbtypes.RuleTransform{url("^/foo/?", "/xyz/")},
			requests: map[string]string{"/foo/bar": "/xyz/bar", "/foo": "/xyz/", "/foo/?q=1": "/xyz/?q=1"}},
		{name: "prefix replaced by /", path: prefix("/foo/"), rw: providers.Rewrite{Path: repl("/")},
			want:     []elbtypes.RuleTransform{url("^/foo/?", "/")},
			requests: map[string]string{"/foo/bar": "/bar", "/foo": "/", "/foo/": "/", "/foo?q=1": "/?q=1"}},
		{name: "the prefix /", path: prefix("/"), rw: providers.Rewrite{Path: repl("/xyz")},
			want:     []elbtypes.RuleTransform{url("^", "/xyz")},
			requests: map[string]string{"/bar": "/xyz/bar", "/": "/xyz/"}},
		{name: "the prefix / with a trailing slash", path: prefix("/"), rw: providers.Rewrite{Path: repl("/xyz/")},
			want:     []elbtypes.RuleTransform{url("^/?", "/xyz/")},
			requests: map[string]string{"/bar": "/xyz/bar", "/": "/xyz/"}},
		{name: "a prefix with regex characters", path: prefix("/a.b+c"), rw: providers.Rewrite{Path: repl("/d")},
			want:     []elbtypes.RuleTransform{url(`^/a\.b\+c`, "/d")},
			requests: map[string]string{"/a.b+c/e": "/d/e", "/a.b+c": "/d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := providers.RuleSpec{Priority: 1, Conditions: providers.RuleConditions{Path: tc.path}, Action: providers.RuleAction{Forward: fwd, Rewrite: &tc.rw}}
			conds, act, ts, err := toELBRule(spec)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, ts, cmpopts.IgnoreUnexported(elbtypes.RuleTransform{}, elbtypes.HostHeaderRewriteConfig{}, elbtypes.UrlRewriteConfig{}, elbtypes.RewriteConfig{})); d != "" {
				t.Errorf("transforms (-want +got):\n%s", d)
			}
			r, err := fromELBRule(&elbtypes.Rule{RuleArn: aws.String("rule"), Priority: aws.String("1"), Conditions: conds, Actions: []elbtypes.Action{act}, Transforms: ts})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(spec.Action, r.Action); d != "" {
				t.Errorf("read back (-wrote +read):\n%s", d)
			}
			for in, want := range tc.requests {
				re := regexp.MustCompile(aws.ToString(ts[len(ts)-1].UrlRewriteConfig.Rewrites[0].Regex))
				got := in
				if loc := re.FindStringIndex(in); loc != nil {
					got = in[:loc[0]] + aws.ToString(ts[len(ts)-1].UrlRewriteConfig.Rewrites[0].Replace) + in[loc[1]:]
				}
				if got != want {
					t.Errorf("%s becomes %s; want %s", in, got, want)
				}
			}
		})
	}

	// "" replaces a prefix as "/" does, and is written so (lbcontroller's translator gives "/").
	ts, err := toELBTransforms(providers.RuleAction{Forward: fwd, Rewrite: &providers.Rewrite{Path: repl("")}}, prefix("/foo"))
	if err != nil || len(ts) != 1 || aws.ToString(ts[0].UrlRewriteConfig.Rewrites[0].Regex) != "^/foo/?" || aws.ToString(ts[0].UrlRewriteConfig.Rewrites[0].Replace) != "/" {
		t.Errorf("ReplacePrefixMatch \"\": %+v, %v; want ^/foo/? -> /", ts, err)
	}

	for name, spec := range map[string]providers.RuleSpec{
		"$ in the host":    {Conditions: providers.RuleConditions{Path: prefix("/")}, Action: providers.RuleAction{Forward: fwd, Rewrite: &providers.Rewrite{Host: "a$1"}}},
		"$ in the path":    {Conditions: providers.RuleConditions{Path: prefix("/foo")}, Action: providers.RuleAction{Forward: fwd, Rewrite: &providers.Rewrite{Path: repl("/x$")}}},
		"$ in a full path": {Conditions: providers.RuleConditions{Path: prefix("/foo")}, Action: providers.RuleAction{Forward: fwd, Rewrite: &providers.Rewrite{Path: full("/$$")}}},
		"prefix without a Prefix condition": {Conditions: providers.RuleConditions{Path: &providers.StringMatch{Type: providers.MatchExact, Value: "/foo"}},
			Action: providers.RuleAction{Forward: fwd, Rewrite: &providers.Rewrite{Path: repl("/x")}}},
		"an empty rewrite": {Conditions: providers.RuleConditions{Path: prefix("/foo")}, Action: providers.RuleAction{Forward: fwd, Rewrite: &providers.Rewrite{}}},
		"rewrite on a redirect": {Conditions: providers.RuleConditions{Path: prefix("/foo")},
			Action: providers.RuleAction{Redirect: &providers.Redirect{StatusCode: 302}, Rewrite: &providers.Rewrite{Host: "h"}}},
	} {
		err := (&LoadBalancing{}).CheckRule(spec)
		var pe *providers.Error
		if !errors.Is(err, providers.ErrInvalid) || !errors.As(err, &pe) || pe.Code != codeUnsupported {
			t.Errorf("%s: %v; want ErrInvalid (%s)", name, err, codeUnsupported)
		}
	}
	// A listener's default rule takes no transform.
	_, err = (&LoadBalancing{}).CreateHTTPListener(context.Background(), "lb", providers.HTTPListenerSpec{Protocol: "HTTP", Port: 80,
		DefaultAction: providers.RuleAction{Forward: fwd, Rewrite: &providers.Rewrite{Host: "h"}}})
	if !errors.Is(err, providers.ErrInvalid) || err == nil || !strings.Contains(err.Error(), "default rule") {
		t.Errorf("a listener's default action with a rewrite: %v; want ErrInvalid naming the default rule", err)
	}

	// Transforms the driver does not write are an error, naming them.
	for name, ts := range map[string][]elbtypes.RuleTransform{
		"another host regex":        {host("^(.*)\\.example$", "x")},
		"a group in the host":       {host("^.*$", "$1")},
		"two host rewrites":         {host("^.*$", "a"), host("^.*$", "b")},
		"another url regex":         {url("^/api", "/v2")},
		"a prefix with its slash":   {url("^/foo/?", "/xyz")},
		"a prefix without":          {url("^/foo", "/xyz/")},
		"a group in the url":        {url("^[^?]*", "/x$1")},
		"two url rewrites":          {url("^[^?]*", "/a"), url("^[^?]*", "/b")},
		"an unknown type":           {{Type: "header-rewrite", HostHeaderRewriteConfig: &elbtypes.HostHeaderRewriteConfig{Rewrites: oneRewrite("^.*$", "a")}}},
		"a type without its config": {{Type: elbtypes.TransformTypeEnumUrlRewrite, HostHeaderRewriteConfig: &elbtypes.HostHeaderRewriteConfig{Rewrites: oneRewrite("^.*$", "a")}}},
	} {
		_, err := fromELBRule(&elbtypes.Rule{RuleArn: aws.String("rule"), Priority: aws.String("1"), Conditions: []elbtypes.RuleCondition{
			{Field: aws.String("path-pattern"), PathPatternConfig: &elbtypes.PathPatternConditionConfig{RegexValues: []string{prefixRegex("/foo")}}}},
			Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String("tg")}}, Transforms: ts})
		if err == nil || !strings.Contains(err.Error(), "the driver does not write") {
			t.Errorf("%s read back: %v; want an error naming the transform", name, err)
		}
	}
}
