package awsapi

import (
	"strconv"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// The ELBv2 actions of application load balancers' listeners and their certificates, and the
// readers of ELBv2's actions and certificates shared with rules (elbv2_rules.go).

// elbActions reads a list of ELBv2 actions (DefaultActions or Actions). Actions are given in
// their Order (fakecloud takes one, but keeps the list's order).
func (x *exchange) elbActions(v query.View, name string) []api.Action {
	var out []api.Action
	for _, a := range v.MemberStructs(name) {
		a.Int("Order")
		act := api.Action{Type: a.Required("Type")}
		switch act.Type {
		case api.ActionTypeForward:
			x.elbForward(a, &act)
		case api.ActionTypeRedirect:
			act.RedirectConfig = x.elbRedirect(a)
		case api.ActionTypeFixedResponse:
			f := &api.FixedResponseActionConfig{StatusCode: a.Required("FixedResponseConfig.StatusCode")}
			f.ContentType, _ = a.String("FixedResponseConfig.ContentType")
			f.MessageBody, _ = a.String("FixedResponseConfig.MessageBody")
			act.FixedResponseConfig = f
		case "":
		default:
			x.params.Fail(api.CodeValidationError, "%s %q is not supported: fakecloud's actions are forward, redirect and fixed-response (no authenticate-oidc or authenticate-cognito)", a.Name("Type"), truncate(act.Type, 40))
		}
		out = append(out, act)
	}
	return out
}

func (x *exchange) elbForward(a query.View, act *api.Action) {
	if _, ok := a.String("TargetGroupArn"); ok {
		act.TargetGroupID = x.arn(a, "TargetGroupArn", arnTargetGroup)
	}
	if on, ok := a.Bool("ForwardConfig.TargetGroupStickinessConfig.Enabled"); ok && on {
		x.params.Fail(api.CodeValidationError, "%s: target group stickiness is not emulated; leave it disabled", a.Name("ForwardConfig.TargetGroupStickinessConfig.Enabled"))
	}
	a.Int("ForwardConfig.TargetGroupStickinessConfig.DurationSeconds")
	groups := a.MemberStructs("ForwardConfig.TargetGroups")
	if len(groups) == 0 {
		if act.TargetGroupID == "" && x.params.Err() == nil {
			x.params.Fail(api.CodeValidationError, "%s: a forward action needs TargetGroupArn or ForwardConfig.TargetGroups", a.Name("Type"))
		}
		return
	}
	fc := &api.ForwardActionConfig{}
	for _, g := range groups {
		t := api.TargetGroupTuple{TargetGroupID: x.arn(g, "TargetGroupArn", arnTargetGroup)}
		if w, ok := g.Int("Weight"); ok {
			t.Weight = &w
		}
		fc.TargetGroups = append(fc.TargetGroups, t)
	}
	// As ELBv2: TargetGroupArn with a ForwardConfig must be its one group.
	if act.TargetGroupID != "" && (len(fc.TargetGroups) != 1 || fc.TargetGroups[0].TargetGroupID != act.TargetGroupID) {
		x.params.Fail(api.CodeValidationError, "%s: TargetGroupArn and ForwardConfig must name the same one target group; give ForwardConfig alone for several", a.Name("ForwardConfig"))
	}
	// One group is fakecloud's TargetGroupId, which network listeners take (its weight alone
	// changes nothing unless 0).
	if t := fc.TargetGroups[0]; len(fc.TargetGroups) == 1 && (t.Weight == nil || *t.Weight > 0) {
		act.TargetGroupID = t.TargetGroupID
		return
	}
	act.TargetGroupID, act.ForwardConfig = "", fc
}

// elbRedirect reads a RedirectConfig; ELBv2's placeholders (#{protocol}, #{host}, #{port},
// /#{path}, #{query}) keep the request's value, as fakecloud's empty fields do.
func (x *exchange) elbRedirect(a query.View) *api.RedirectActionConfig {
	r := &api.RedirectActionConfig{StatusCode: a.Required("RedirectConfig.StatusCode")}
	r.Protocol, _ = a.String("RedirectConfig.Protocol")
	r.Host, _ = a.String("RedirectConfig.Host")
	r.Path, _ = a.String("RedirectConfig.Path")
	r.Query, _ = a.String("RedirectConfig.Query")
	if r.Path == "/#{path}" {
		r.Path = ""
	}
	if p, ok := a.String("RedirectConfig.Port"); ok && p != "#{port}" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			x.params.Fail(api.CodeValidationError, "%s %q must be a port 1..65535 or #{port}", a.Name("RedirectConfig.Port"), truncate(p, 20))
		}
		r.Port = n
	}
	return r
}

// elbCertificates reads Certificates.member.N.CertificateArn: ACM-shaped ARNs of fakecloud
// certificates (elbv2_arn.go).
func (x *exchange) elbCertificates(v query.View) []api.ListenerCertificate {
	var out []api.ListenerCertificate
	for _, c := range v.MemberStructs("Certificates") {
		arn := c.Required("CertificateArn")
		c.Bool("IsDefault")
		if arn == "" {
			continue
		}
		id, ok := parseCertificateARN(arn)
		if !ok {
			x.params.Fail(api.CodeValidationError, "%s '%s' is not a fakecloud certificate's ARN: import the certificate with fakecloud's ImportCertificate and give arn:aws:acm:<region>:<account>:certificate/<its cert- ID>", c.Name("CertificateArn"), truncate(arn, 200))
			continue
		}
		out = append(out, api.ListenerCertificate{CertificateID: id})
	}
	return out
}

func elbModifyListener(x *exchange, v query.View) (any, error) {
	req := &api.ModifyListenerRequest{ListenerID: x.arn(v, "ListenerArn", arnListener)}
	req.Port, _ = v.Int("Port")
	req.Protocol, _ = v.String("Protocol")
	arn, _ := v.String("ListenerArn")
	x.refusePassthrough(req.Protocol, strings.Contains(arn, ":listener/app/"))
	req.SSLPolicy, _ = v.String("SslPolicy")
	req.Certificates = x.elbCertificates(v)
	req.DefaultActions = x.elbActions(v, "DefaultActions")
	if v.Has("AlpnPolicy") {
		v.Members("AlpnPolicy")
		x.params.Fail(api.CodeValidationError, "AlpnPolicy is not emulated (it is for TLS listeners of network load balancers)")
	}
	resp, err := call[api.ModifyListenerResponse](x, api.ActionModifyListener, req)
	if err != nil {
		return nil, err
	}
	l := &resp.Listener
	return &listenersResult{Listeners: members[elbListener]{Items: []elbListener{x.listenerXML(l, x.names(listenerRefs(l)))}}}, nil
}

func elbAddListenerCertificates(x *exchange, v query.View) (any, error) {
	req := &api.AddListenerCertificatesRequest{ListenerID: x.arn(v, "ListenerArn", arnListener), Certificates: x.elbCertificates(v)}
	if len(req.Certificates) == 0 && x.params.Err() == nil {
		x.params.Fail(api.CodeValidationError, "Certificates: give at least one certificate")
	}
	resp, err := call[api.AddListenerCertificatesResponse](x, api.ActionAddListenerCertificates, req)
	if err != nil {
		return nil, err
	}
	return x.certificatesXML(resp.Certificates, ""), nil
}

func elbRemoveListenerCertificates(x *exchange, v query.View) (any, error) {
	req := &api.RemoveListenerCertificatesRequest{ListenerID: x.arn(v, "ListenerArn", arnListener), Certificates: x.elbCertificates(v)}
	if len(req.Certificates) == 0 && x.params.Err() == nil {
		x.params.Fail(api.CodeValidationError, "Certificates: give at least one certificate")
	}
	if _, err := call[api.RemoveListenerCertificatesResponse](x, api.ActionRemoveListenerCertificates, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

// elbDescribeListenerCertificates lists a listener's certificates, the default one marked.
func elbDescribeListenerCertificates(x *exchange, v query.View) (any, error) {
	req := &api.DescribeListenersRequest{ListenerIDs: []string{x.arn(v, "ListenerArn", arnListener)}}
	size, marker := elbPage(x, v)
	resp, err := call[api.DescribeListenersResponse](x, api.ActionDescribeListeners, req)
	if err != nil {
		return nil, err
	}
	var certs []api.ListenerCertificate
	if len(resp.Listeners) == 1 {
		certs = resp.Listeners[0].Certificates
	}
	page, next := pageOf(certs, func(c *api.ListenerCertificate) string { return c.CertificateID }, size, marker)
	return x.certificatesXML(page, next), nil
}

func (x *exchange) certificatesXML(cs []api.ListenerCertificate, next string) *certificatesResult {
	out := &certificatesResult{Certificates: members[elbCertificate]{Items: []elbCertificate{}}, NextMarker: next}
	for _, c := range cs {
		def := c.IsDefault
		out.Certificates.Items = append(out.Certificates.Items, elbCertificate{CertificateArn: x.certificateARN(c.CertificateID), IsDefault: &def})
	}
	return out
}

// refusePassthrough refuses TLS and TCP listeners on an application load balancer: ELBv2's
// application load balancers serve HTTP and HTTPS only. fakecloud's native API has them
// (TLS passthrough routed by SNI, TCP forwarding).
func (x *exchange) refusePassthrough(protocol string, application bool) {
	if application && (protocol == api.ProtocolTLS || protocol == api.ProtocolTCP) {
		x.params.Fail(api.CodeValidationError, "an ELBv2 application load balancer takes HTTP and HTTPS listeners only, not %s; fakecloud's native API serves TLS-passthrough and TCP listeners on application load balancers", protocol)
	}
}
