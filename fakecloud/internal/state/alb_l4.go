package state

import (
	"fmt"
	"reflect"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// An application load balancer's TLS and TCP listeners (a fakecloud extension) pass
// connections through without terminating them: a TLS listener routes by the SNI name of the
// client's ClientHello (rules whose only condition is host-header), a TCP listener forwards
// every connection to its default action's target groups. Both forward to TCP target groups;
// a TLS listener with certificates terminates TLS, and its forwards that do not pass TLS
// through may also name TLS target groups (below).
// A UDP listener (a fakecloud extension too: ELBv2 puts UDP on network load balancers) relays
// each client flow's datagrams to a target of its default action's UDP target groups.

// isL4Protocol tells whether an application listener of this protocol passes connections
// or datagrams through (TLS, TCP, UDP) rather than serving HTTP.
func isL4Protocol(protocol string) bool {
	return protocol == api.ProtocolTLS || protocol == api.ProtocolTCP || protocol == api.ProtocolUDP
}

// l4GroupProtocol is the protocol of the target groups a listener of the protocol forwards
// to: UDP for UDP listeners, TCP for TLS and TCP ones, "" for HTTP and HTTPS.
func l4GroupProtocol(protocol string) string {
	switch protocol {
	case api.ProtocolUDP:
		return api.ProtocolUDP
	case api.ProtocolTLS, api.ProtocolTCP:
		return api.ProtocolTCP
	}
	return ""
}

// validateL4Actions checks the default actions or a rule's actions of a TLS or TCP listener:
// one weighted forward without HTTP features. A TLS listener's DefaultActions may be empty:
// connections no rule matches are then refused. A TLS listener's forward may be TlsPassthrough
// (kept undecrypted where the listener terminates the rest). A TLS rule's forward may name no target group
// (ForwardConfig with empty TargetGroups): it refuses the names it matches, so that they do not
// reach a later, less specific rule.
func validateL4Actions(field, protocol string, acts []api.Action, isDefault bool, lim ALBLimits) ([]api.Action, []string, error) {
	if len(acts) == 0 && isDefault && protocol == api.ProtocolTLS {
		return nil, nil, nil
	}
	if len(acts) == 1 && !isDefault && protocol == api.ProtocolTLS && acts[0].Type == api.ActionTypeForward && acts[0].TargetGroupID == "" &&
		acts[0].ForwardConfig != nil && len(acts[0].ForwardConfig.TargetGroups) == 0 && reflect.DeepEqual(acts[0], api.Action{Type: acts[0].Type, ForwardConfig: acts[0].ForwardConfig}) {
		return []api.Action{{Type: api.ActionTypeForward, ForwardConfig: &api.ForwardActionConfig{TargetGroups: []api.TargetGroupTuple{}}}}, nil, nil
	}
	if len(acts) == 1 && acts[0].Type != api.ActionTypeForward {
		return nil, nil, invalid("%s[0].Type %.30q: a %s listener forwards connections; it takes forward actions only", field, acts[0].Type, protocol)
	}
	pass := len(acts) == 1 && acts[0].TLSPassthrough
	if pass && protocol != api.ProtocolTLS {
		return nil, nil, invalid("%s[0].TlsPassthrough applies to TLS listeners only; a %s listener has no TLS to pass through or terminate", field, protocol)
	}
	if pass {
		acts = []api.Action{acts[0]}
		acts[0].TLSPassthrough = false // validateActions refuses it: it is an HTTP listener's check
	}
	out, tgs, err := validateActions(field, acts, ruleShape{isDefault: isDefault}, lim)
	if err != nil {
		return nil, nil, err
	}
	out[0].TLSPassthrough = pass
	a := out[0]
	for _, x := range []struct {
		name string
		on   bool
	}{
		{"RequestHeaderModifications", a.RequestHeaderModifications != nil}, {"ResponseHeaderModifications", a.ResponseHeaderModifications != nil},
		{"UrlRewriteConfig", a.URLRewriteConfig != nil}, {"RequestMirrors", len(a.RequestMirrors) > 0}, {"TimeoutConfig", a.TimeoutConfig != nil},
		{"RetryConfig", a.RetryConfig != nil}, {"CorsConfig", a.CorsConfig != nil},
	} {
		if x.on {
			return nil, nil, invalid("%s[0].%s applies to HTTP and HTTPS listeners only; a %s listener does not see requests", field, x.name, protocol)
		}
	}
	for i, g := range a.ForwardConfig.TargetGroups {
		if g.RequestHeaderModifications != nil || g.ResponseHeaderModifications != nil {
			return nil, nil, invalid("%s[0].ForwardConfig.TargetGroups[%d]: header modifications apply to HTTP and HTTPS listeners only; a %s listener does not see requests", field, i, protocol)
		}
	}
	return out, tgs, nil
}

// checkL4Rule checks that a rule fits a listener of the protocol: an HTTP or HTTPS listener
// takes any rule forwarding to HTTP or HTTPS groups (checkALBTargets), a TLS listener rules
// whose only condition is host-header (the SNI names; validateRuleActions checks the action),
// a TCP listener no rules.
func checkL4Rule(l *listenerRec, conds []api.RuleCondition) error {
	switch l.Protocol {
	case api.ProtocolTCP, api.ProtocolUDP:
		return api.Errorf(api.CodeInvalidConfigurationRequest, "listener %s is %s: a %s listener takes no rules, only its default forward", l.ID, l.Protocol, l.Protocol)
	case api.ProtocolTLS:
		for i, c := range conds {
			if c.Field != api.ConditionHostHeader {
				return invalid("Conditions[%d].Field %s: a TLS listener routes by the SNI server name only; its rules take host-header conditions only", i, c.Field)
			}
		}
	}
	return nil
}

// validateRuleActions checks a rule's actions as its listener's protocol wants them.
func validateRuleActions(l *listenerRec, acts []api.Action, shape ruleShape, lim ALBLimits) ([]api.Action, []string, error) {
	if isL4Protocol(l.Protocol) {
		return validateL4Actions("Actions", l.Protocol, acts, false, lim)
	}
	return validateActions("Actions", acts, shape, lim)
}

// listenerClass names what a listener of the protocol forwards to, for errors.
func listenerClass(protocol string) string {
	switch protocol {
	case api.ProtocolUDP:
		return "a UDP listener forwards datagrams to UDP target groups"
	case api.ProtocolTLS:
		return "a TLS listener forwards connections to TCP target groups (and, where it terminates TLS, to TLS target groups)"
	case api.ProtocolTCP:
		return "a TCP listener forwards connections to TCP target groups"
	}
	return fmt.Sprintf("an %s listener forwards requests to HTTP or HTTPS target groups", protocol)
}

// A TLS target group (a fakecloud extension; ELBv2 has TLS groups behind its network load
// balancers' TLS listeners) is one whose targets the load balancer speaks TLS to over TCP:
// it dials a target and starts TLS itself, verifying the target as the group's
// TlsVerification says and presenting its ClientCertificateId. Only an action that holds a
// decrypted stream to send can forward to one: a forward of a TLS listener that terminates
// TLS (it has certificates) and does not pass TLS through (Gateway API's BackendTLSPolicy on
// a TLSRoute of mode Terminate).

// tlsGroupRefusal says why an action of a listener of the protocol cannot forward to a TLS
// target group, or "" when it can. terminating tells whether the listener terminates TLS (a
// TLS listener with certificates); acts are the action as validated (TlsPassthrough kept);
// isDefault whether they are the listener's default actions.
func tlsGroupRefusal(protocol string, terminating bool, acts []api.Action, isDefault bool) string {
	switch protocol {
	case api.ProtocolTLS:
		switch {
		case !terminating:
			return "this TLS listener has no certificates, so it passes TLS through: give it Certificates to terminate TLS"
		case len(acts) == 1 && acts[0].TLSPassthrough && isDefault:
			return "this default action passes TLS through"
		case len(acts) == 1 && acts[0].TLSPassthrough:
			return "this rule passes TLS through"
		}
		return ""
	case api.ProtocolTCP:
		return "a TCP listener passes connections on as they come; it has no TLS to terminate"
	case api.ProtocolUDP:
		return "a UDP listener relays datagrams"
	}
	return listenerClass(protocol)
}

// tlsGroupError is the refusal of a TLS target group (tlsGroupRefusal's reason).
func tlsGroupError(tgID, reason string) error {
	return invalid("target group %s is a TLS group: only a TLS listener's rule that terminates TLS can forward to it (%s)", tgID, reason)
}

// terminatesTLS tells whether a listener is a TLS listener that terminates TLS.
func terminatesTLS(l *listenerRec) bool {
	return l.Protocol == api.ProtocolTLS && len(l.CertificateIDs) > 0
}

// checkRulesKeepTLSGroups refuses a change that makes a terminating TLS listener (old) stop
// terminating TLS (n) while one of its rules forwards to a TLS target group: the rule would
// have no decrypted stream to send. (No API path does that today, a terminating listener
// keeps its default certificate, but the invariant is this function's, not theirs.)
func checkRulesKeepTLSGroups(t *tx, old, n *listenerRec) error {
	if !terminatesTLS(old) || terminatesTLS(n) {
		return nil
	}
	for _, r := range listBy[ruleRec](t.Txn, tableRules, indexListener, old.ID) {
		reason := tlsGroupRefusal(n.Protocol, false, r.Actions, false)
		for _, id := range r.TargetGroupIDs {
			if tg := first[tgRec](t.Txn, tableTargetGroups, indexID, id); tg != nil && tg.Protocol == api.ProtocolTLS {
				return invalid("listener %s: rule %s forwards to TLS target group %s, which only a TLS listener's rule that terminates TLS can do (%s); change or delete the rule first",
					old.ID, r.ID, id, reason)
			}
		}
	}
	return nil
}
