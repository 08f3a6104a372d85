package awsapi

import (
	"strconv"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// ELBv2's XML for listeners, their actions and certificates, and rules.

type elbTargetGroupTuple struct {
	TargetGroupArn string `xml:"TargetGroupArn"`
	Weight         int    `xml:"Weight"`
}

type elbForwardConfig struct {
	TargetGroups members[elbTargetGroupTuple] `xml:"TargetGroups"`
}

type elbRedirectConfig struct {
	Protocol   string `xml:"Protocol"`
	Host       string `xml:"Host"`
	Port       string `xml:"Port"`
	Path       string `xml:"Path"`
	Query      string `xml:"Query"`
	StatusCode string `xml:"StatusCode"`
}

type elbFixedResponseConfig struct {
	StatusCode  string `xml:"StatusCode"`
	ContentType string `xml:"ContentType,omitempty"`
	MessageBody string `xml:"MessageBody,omitempty"`
}

type elbAction struct {
	Type                string                  `xml:"Type"`
	Order               int                     `xml:"Order,omitempty"`
	TargetGroupArn      string                  `xml:"TargetGroupArn,omitempty"`
	ForwardConfig       *elbForwardConfig       `xml:"ForwardConfig,omitempty"`
	RedirectConfig      *elbRedirectConfig      `xml:"RedirectConfig,omitempty"`
	FixedResponseConfig *elbFixedResponseConfig `xml:"FixedResponseConfig,omitempty"`
}

type elbCertificate struct {
	CertificateArn string `xml:"CertificateArn"`
	IsDefault      *bool  `xml:"IsDefault,omitempty"`
}

type elbListener struct {
	ListenerArn     string                   `xml:"ListenerArn"`
	LoadBalancerArn string                   `xml:"LoadBalancerArn"`
	Port            int                      `xml:"Port"`
	Protocol        string                   `xml:"Protocol"`
	SSLPolicy       string                   `xml:"SslPolicy,omitempty"`
	Certificates    *members[elbCertificate] `xml:"Certificates,omitempty"`
	DefaultActions  members[elbAction]       `xml:"DefaultActions"`
}

// listenerLBType is the type of a listener's load balancer, told by its protocol.
func listenerLBType(protocol string) string {
	if listenerKind(protocol) == "app/" {
		return api.LoadBalancerTypeApplication
	}
	return api.LoadBalancerTypeNetwork
}

func (x *exchange) listenerXML(l *api.Listener, names map[string]string) elbListener {
	lbName := nameOr(names, l.LoadBalancerID)
	out := elbListener{
		ListenerArn:     x.listenerARN(l.Protocol, lbName, l.LoadBalancerID, l.ListenerID),
		LoadBalancerArn: x.loadBalancerARN(listenerLBType(l.Protocol), lbName, l.LoadBalancerID),
		Port:            l.Port, Protocol: l.Protocol, SSLPolicy: l.SSLPolicy,
		DefaultActions: x.actionsXML(l.DefaultActions, names),
	}
	// As ELBv2, a listener shows its default certificate only (DescribeListenerCertificates
	// lists them all).
	for _, c := range l.Certificates {
		if c.IsDefault {
			out.Certificates = &members[elbCertificate]{Items: []elbCertificate{{CertificateArn: x.certificateARN(c.CertificateID)}}}
		}
	}
	return out
}

// actionsXML shows actions as ELBv2 does: a forward always with its ForwardConfig, and its
// TargetGroupArn too when it forwards to one group.
func (x *exchange) actionsXML(acts []api.Action, names map[string]string) members[elbAction] {
	out := members[elbAction]{Items: []elbAction{}}
	for i, a := range acts {
		e := elbAction{Type: a.Type, Order: i + 1}
		switch a.Type {
		case api.ActionTypeForward:
			tuples := forwardTuples(&a)
			e.ForwardConfig = &elbForwardConfig{TargetGroups: members[elbTargetGroupTuple]{Items: []elbTargetGroupTuple{}}}
			for _, t := range tuples {
				w := 1
				if t.Weight != nil {
					w = *t.Weight
				}
				arn := x.targetGroupARN(nameOr(names, t.TargetGroupID), t.TargetGroupID)
				e.ForwardConfig.TargetGroups.Items = append(e.ForwardConfig.TargetGroups.Items, elbTargetGroupTuple{TargetGroupArn: arn, Weight: w})
			}
			if len(tuples) == 1 {
				e.TargetGroupArn = e.ForwardConfig.TargetGroups.Items[0].TargetGroupArn
			}
		case api.ActionTypeRedirect:
			if r := a.RedirectConfig; r != nil {
				e.RedirectConfig = redirectXML(r)
			}
		case api.ActionTypeFixedResponse:
			if f := a.FixedResponseConfig; f != nil {
				e.FixedResponseConfig = &elbFixedResponseConfig{StatusCode: f.StatusCode, ContentType: f.ContentType, MessageBody: f.MessageBody}
			}
		}
		out.Items = append(out.Items, e)
	}
	return out
}

// redirectXML fills the fields a redirect keeps with ELBv2's placeholders, as ELBv2 shows them.
func redirectXML(r *api.RedirectActionConfig) *elbRedirectConfig {
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	port := "#{port}"
	if r.Port != 0 {
		port = strconv.Itoa(r.Port)
	}
	path := r.Path
	if path == "" && r.PathModification != nil && r.PathModification.Type == api.PathReplaceFull {
		path = r.PathModification.Value
	}
	return &elbRedirectConfig{
		Protocol: or(r.Protocol, "#{protocol}"), Host: or(r.Host, "#{host}"), Port: port,
		Path: or(path, "/#{path}"), Query: or(r.Query, "#{query}"), StatusCode: r.StatusCode,
	}
}

// forwardTuples are a forward's groups whichever way it names them.
func forwardTuples(a *api.Action) []api.TargetGroupTuple {
	if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
		return a.ForwardConfig.TargetGroups
	}
	if a.TargetGroupID != "" {
		return []api.TargetGroupTuple{{TargetGroupID: a.TargetGroupID}}
	}
	return nil
}

// actionRefs are the target groups actions name, for their names.
func actionRefs(acts []api.Action) []string {
	var ids []string
	for i := range acts {
		for _, t := range forwardTuples(&acts[i]) {
			ids = append(ids, t.TargetGroupID)
		}
	}
	return ids
}

type elbKeyValue struct {
	Key   string `xml:"Key,omitempty"`
	Value string `xml:"Value"`
}

type elbValues struct {
	Values      members[string]  `xml:"Values"`
	RegexValues *members[string] `xml:"RegexValues,omitempty"`
}

func ptr[T any](v T) *T { return &v }

type elbHTTPHeaderConfig struct {
	HTTPHeaderName string          `xml:"HttpHeaderName"`
	Values         members[string] `xml:"Values"`
}

type elbQueryStringConfig struct {
	Values members[elbKeyValue] `xml:"Values"`
}

type elbCondition struct {
	Field                   string                `xml:"Field"`
	Values                  *members[string]      `xml:"Values,omitempty"`
	HostHeaderConfig        *elbValues            `xml:"HostHeaderConfig,omitempty"`
	PathPatternConfig       *elbValues            `xml:"PathPatternConfig,omitempty"`
	HTTPHeaderConfig        *elbHTTPHeaderConfig  `xml:"HttpHeaderConfig,omitempty"`
	QueryStringConfig       *elbQueryStringConfig `xml:"QueryStringConfig,omitempty"`
	HTTPRequestMethodConfig *elbValues            `xml:"HttpRequestMethodConfig,omitempty"`
}

type elbRewrite struct {
	Regex   string `xml:"Regex"`
	Replace string `xml:"Replace"`
}

type elbRewriteConfig struct {
	Rewrites members[elbRewrite] `xml:"Rewrites"`
}

type elbTransform struct {
	Type                    string            `xml:"Type"`
	HostHeaderRewriteConfig *elbRewriteConfig `xml:"HostHeaderRewriteConfig,omitempty"`
	URLRewriteConfig        *elbRewriteConfig `xml:"UrlRewriteConfig,omitempty"`
}

type elbRule struct {
	RuleArn    string                 `xml:"RuleArn"`
	Priority   string                 `xml:"Priority"`
	Conditions members[elbCondition]  `xml:"Conditions"`
	Actions    members[elbAction]     `xml:"Actions"`
	Transforms *members[elbTransform] `xml:"Transforms,omitempty"`
	IsDefault  bool                   `xml:"IsDefault"`
}

// transformsXML shows a rule's transforms in ELBv2's shape; none when it has none.
func transformsXML(ts []api.RuleTransform) *members[elbTransform] {
	if len(ts) == 0 {
		return nil
	}
	cfg := func(c *api.RewriteConfig) *elbRewriteConfig {
		if c == nil {
			return nil
		}
		out := &elbRewriteConfig{Rewrites: members[elbRewrite]{Items: []elbRewrite{}}}
		for _, r := range c.Rewrites {
			out.Rewrites.Items = append(out.Rewrites.Items, elbRewrite(r))
		}
		return out
	}
	out := &members[elbTransform]{}
	for _, t := range ts {
		out.Items = append(out.Items, elbTransform{Type: t.Type, HostHeaderRewriteConfig: cfg(t.HostHeaderRewriteConfig), URLRewriteConfig: cfg(t.URLRewriteConfig)})
	}
	return out
}

func list(vs []string) members[string] {
	return members[string]{Items: append([]string{}, vs...)}
}

// conditionXML shows a condition in ELBv2's terms: patterns back as wildcards (wildcards.go),
// and host and path values in the legacy Values too, as ELBv2 answers them.
func conditionXML(c *api.RuleCondition) elbCondition {
	out := elbCondition{Field: c.Field}
	switch {
	case c.HostHeaderConfig != nil:
		vs := list(c.HostHeaderConfig.Values)
		out.Values, out.HostHeaderConfig = &vs, &elbValues{Values: vs}
	case c.PathPatternConfig != nil && isRegexOnly(c.PathPatternConfig.Values, c.PathPatternConfig.MatchType):
		// Regexes no wildcard pattern makes: ELBv2's RegexValues.
		out.PathPatternConfig = &elbValues{RegexValues: ptr(list(c.PathPatternConfig.Values))}
	case c.PathPatternConfig != nil:
		vs := list(toWildcards(c.PathPatternConfig.Values, c.PathPatternConfig.MatchType))
		out.Values, out.PathPatternConfig = &vs, &elbValues{Values: vs}
	case c.HTTPHeaderConfig != nil:
		out.HTTPHeaderConfig = &elbHTTPHeaderConfig{HTTPHeaderName: c.HTTPHeaderConfig.HTTPHeaderName, Values: list(toWildcards(c.HTTPHeaderConfig.Values, c.HTTPHeaderConfig.MatchType))}
	case c.QueryStringConfig != nil:
		q := &elbQueryStringConfig{Values: members[elbKeyValue]{Items: []elbKeyValue{}}}
		for _, kv := range c.QueryStringConfig.Values {
			q.Values.Items = append(q.Values.Items, elbKeyValue{Key: kv.Key, Value: toWildcards([]string{kv.Value}, c.QueryStringConfig.MatchType)[0]})
		}
		out.QueryStringConfig = q
	case c.HTTPRequestMethodConfig != nil:
		out.HTTPRequestMethodConfig = &elbValues{Values: list(c.HTTPRequestMethodConfig.Values)}
	}
	return out
}

func (x *exchange) ruleXML(r *api.Rule, names map[string]string) elbRule {
	out := elbRule{
		RuleArn:  x.ruleARN(nameOr(names, r.LoadBalancerID), r.LoadBalancerID, r.ListenerID, r.RuleID),
		Priority: strconv.Itoa(r.Priority), IsDefault: r.IsDefault,
		Conditions: members[elbCondition]{Items: []elbCondition{}},
		Actions:    x.actionsXML(r.Actions, names), Transforms: transformsXML(r.Transforms),
	}
	if r.IsDefault {
		out.Priority = "default"
	}
	for i := range r.Conditions {
		out.Conditions.Items = append(out.Conditions.Items, conditionXML(&r.Conditions[i]))
	}
	return out
}

type rulesResult struct {
	Rules      members[elbRule] `xml:"Rules"`
	NextMarker string           `xml:"NextMarker,omitempty"`
}

type certificatesResult struct {
	Certificates members[elbCertificate] `xml:"Certificates"`
	NextMarker   string                  `xml:"NextMarker,omitempty"`
}
