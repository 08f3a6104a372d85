package lbcontroller

import (
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/providers"
)

// featureProbes are, for each extended feature that needs more of a cloud's rules than
// forwarding does, a rule using it: a cloud whose driver refuses the rule
// (providers.CheckRule) does not have the feature, and the GatewayClass does not list it.
// The core features are listed whatever the cloud: a rule the cloud refuses is left out of its
// route (deploy.RefusedRules), which says so.
var featureProbes = func() map[gwv1.FeatureName]providers.RuleAction {
	fwd := []providers.WeightedTargetGroup{{TargetGroupID: "probe", Weight: 1}}
	set := &providers.HeaderModifier{Set: []providers.Header{{Name: "X-Probe", Value: "1"}}}
	redirect := func(code int) providers.RuleAction {
		return providers.RuleAction{Redirect: &providers.Redirect{StatusCode: code}}
	}
	retry := providers.RuleAction{Forward: fwd, Retry: &providers.Retry{Codes: []int{503}, Attempts: 1}}
	mirror := providers.RuleAction{Forward: fwd, Mirrors: []providers.Mirror{{TargetGroupID: "probe-mirror", Percent: 100}}}
	return map[gwv1.FeatureName]providers.RuleAction{
		"HTTPRoute303RedirectStatusCode":            redirect(303),
		"HTTPRoute307RedirectStatusCode":            redirect(307),
		"HTTPRoute308RedirectStatusCode":            redirect(308),
		"HTTPRoutePathRedirect":                     {Redirect: &providers.Redirect{StatusCode: 302, Path: &providers.PathModifier{Type: providers.ReplacePrefixMatch, Value: "/probe"}}},
		"HTTPRouteBackendRequestHeaderModification": {Forward: []providers.WeightedTargetGroup{{TargetGroupID: "probe", Weight: 1, RequestHeaders: set}}},
		"HTTPRouteResponseHeaderModification":       {Forward: fwd, ResponseHeaders: set},
		"HTTPRouteHostRewrite":                      {Forward: fwd, Rewrite: &providers.Rewrite{Host: "probe.example"}},
		"HTTPRoutePathRewrite":                      {Forward: fwd, Rewrite: &providers.Rewrite{Path: &providers.PathModifier{Type: providers.ReplacePrefixMatch, Value: "/probe"}}},
		"HTTPRouteRequestMirror":                    mirror,
		"HTTPRouteRequestMultipleMirrors":           mirror,
		"HTTPRouteRequestPercentageMirror":          mirror,
		"HTTPRouteRequestTimeout":                   {Forward: fwd, RequestTimeout: time.Second},
		"HTTPRouteBackendTimeout":                   {Forward: fwd, BackendTimeout: time.Second},
		"HTTPRouteRetry":                            retry,
		"HTTPRouteRetryBackendTimeout":              retry,
		"HTTPRouteRetryConnectionError":             retry,
		"HTTPRouteCORS":                             {Forward: fwd, CORS: &providers.CORS{AllowOrigins: []string{"https://probe.example"}}},
		"TLSRouteModeMixed":                         {Forward: fwd, TLSPassthrough: true},
	}
}()

// refusedFeatures are the features of featureProbes whose rule p refuses, in no order.
func refusedFeatures(p any) []gwv1.FeatureName {
	if !providers.CapabilitiesOf(p).RuleLimits {
		return nil
	}
	var out []gwv1.FeatureName
	for f, a := range featureProbes {
		spec := providers.RuleSpec{Priority: 1, Conditions: providers.RuleConditions{Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/probe"}}, Action: a}
		if providers.CheckRule(p, spec) != nil {
			out = append(out, f)
		}
	}
	return out
}
