package awsapi

import (
	"encoding/xml"
	"net/http"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// elbv2Version is the Elastic Load Balancing (v2) API version served.
const elbv2Version = "2015-12-01"

const elbv2Namespace = "http://elasticloadbalancing.amazonaws.com/doc/" + elbv2Version + "/"

// ELBv2's own codes for what fakecloud names otherwise.
const (
	codeAccessDenied    = "AccessDenied"
	codeThrottling      = "Throttling"
	codeInternalFailure = "InternalFailure"
	codeSubnetNotFound  = "SubnetNotFound"
)

func elbv2Service() *service {
	return &service{
		name: "elbv2", title: "ELBv2", version: elbv2Version, signingName: "elasticloadbalancing", namespace: elbv2Namespace,
		ops: map[string]op{
			"CreateLoadBalancer":    {api.ActionCreateLoadBalancer, elbCreateLoadBalancer},
			"DescribeLoadBalancers": {api.ActionDescribeLoadBalancers, elbDescribeLoadBalancers},
			"DeleteLoadBalancer":    {api.ActionDeleteLoadBalancer, elbDeleteLoadBalancer},
			"CreateTargetGroup":     {api.ActionCreateTargetGroup, elbCreateTargetGroup},
			"DescribeTargetGroups":  {api.ActionDescribeTargetGroups, elbDescribeTargetGroups},
			"DeleteTargetGroup":     {api.ActionDeleteTargetGroup, elbDeleteTargetGroup},
			"CreateListener":        {api.ActionCreateListener, elbCreateListener},
			"DescribeListeners":     {api.ActionDescribeListeners, elbDescribeListeners},
			"DeleteListener":        {api.ActionDeleteListener, elbDeleteListener},
			"RegisterTargets":       {api.ActionRegisterTargets, elbRegisterTargets},
			"DeregisterTargets":     {api.ActionDeregisterTargets, elbDeregisterTargets},
			"DescribeTargetHealth":  {api.ActionDescribeTargetHealth, elbDescribeTargetHealth},
			"AddTags":               {api.ActionAddTags, elbAddTags},
			"RemoveTags":            {api.ActionRemoveTags, elbRemoveTags},
			"DescribeTags":          {api.ActionDescribeTags, elbDescribeTags},

			"ModifyLoadBalancerAttributes":   {api.ActionModifyLoadBalancerAttributes, elbModifyLoadBalancerAttributes},
			"DescribeLoadBalancerAttributes": {api.ActionDescribeLoadBalancers, elbDescribeLoadBalancerAttributes},
			"ModifyTargetGroup":              {api.ActionModifyTargetGroup, elbModifyTargetGroup},
			"ModifyTargetGroupAttributes":    {api.ActionModifyTargetGroupAttributes, elbModifyTargetGroupAttributes},
			"DescribeTargetGroupAttributes":  {api.ActionDescribeTargetGroups, elbDescribeTargetGroupAttributes},

			"ModifyListener":               {api.ActionModifyListener, elbModifyListener},
			"AddListenerCertificates":      {api.ActionAddListenerCertificates, elbAddListenerCertificates},
			"RemoveListenerCertificates":   {api.ActionRemoveListenerCertificates, elbRemoveListenerCertificates},
			"DescribeListenerCertificates": {api.ActionDescribeListeners, elbDescribeListenerCertificates},
			"CreateRule":                   {api.ActionCreateRule, elbCreateRule},
			"ModifyRule":                   {api.ActionModifyRule, elbModifyRule},
			"DeleteRule":                   {api.ActionDeleteRule, elbDeleteRule},
			"DescribeRules":                {api.ActionDescribeRules, elbDescribeRules},
			"SetRulePriorities":            {api.ActionSetRulePriorities, elbSetRulePriorities},
		},
		authCode: queryAuthCode, code: elbv2Code, status: elbv2Status,
		writeOK: elbv2WriteOK, writeError: elbv2WriteError,
	}
}

// queryAuthCode: the Query services other than EC2 tell an unknown key or token from a wrong
// signature, and report an expired one as a signature that does not match.
func queryAuthCode(f authFailure) string {
	switch f {
	case authMissing:
		return codeMissingAuthenticationToken
	case authMalformed:
		return codeIncompleteSignature
	case authUnknownKey, authBadToken:
		return codeInvalidClientTokenID
	}
	return codeSignatureDoesNotMatch
}

// elbv2Code renames fakecloud's codes as ELBv2 names them; its own load balancer codes (and
// ELBv2's) pass unchanged.
func elbv2Code(code string) string {
	switch code {
	case api.CodeInvalidParameterValue, api.CodeInvalidParameterCombination, api.CodeMissingParameter,
		codeUnknownParameter, api.CodeInvalidVpcIDNotFound, api.CodeInvalidRequest:
		return api.CodeValidationError
	case api.CodeInvalidSubnetIDNotFound:
		return codeSubnetNotFound
	case api.CodeUnauthorizedOperation:
		return codeAccessDenied
	case api.CodeRequestLimitExceeded:
		return codeThrottling
	case api.CodeInternalError:
		return codeInternalFailure
	}
	return code
}

func elbv2Status(code string) int {
	switch code {
	case codeInternalFailure:
		return http.StatusInternalServerError
	case api.CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case codeAccessDenied, codeMissingAuthenticationToken, codeInvalidClientTokenID, codeSignatureDoesNotMatch:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

type elbv2Meta struct {
	RequestID string `xml:"RequestId"`
}

func elbv2WriteOK(enc *xml.Encoder, action, requestID string, body any) error {
	root := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{xmlns(elbv2Namespace)}}
	if err := enc.EncodeToken(root); err != nil {
		return err
	}
	if err := enc.EncodeElement(body, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
		return err
	}
	if err := enc.EncodeElement(elbv2Meta{RequestID: requestID}, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
		return err
	}
	return enc.EncodeToken(root.End())
}

type elbv2ErrorXML struct {
	XMLName   xml.Name       `xml:"ErrorResponse"`
	Xmlns     string         `xml:"xmlns,attr"`
	Error     elbv2ErrorBody `xml:"Error"`
	RequestID string         `xml:"RequestId"`
}

type elbv2ErrorBody struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func elbv2WriteError(enc *xml.Encoder, e *api.Error, status int, requestID string) error {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	return enc.Encode(elbv2ErrorXML{Xmlns: elbv2Namespace, Error: elbv2ErrorBody{Type: typ, Code: e.Code, Message: e.Message}, RequestID: requestID})
}

// arns reads a list of ARNs of the kinds into fakecloud IDs, recording a bad one, and returns
// the IDs with a map back to the ARNs as given.
func (x *exchange) arns(v query.View, name string, kinds ...arnKind) ([]string, map[string]string) {
	var ids []string
	given := map[string]string{}
	for _, a := range v.Members(name) {
		id, err := parseARN(a, kinds...)
		if err != nil {
			x.params.Fail(api.CodeValidationError, "%s", err.Message)
			continue
		}
		ids = append(ids, id)
		given[id] = a
	}
	return ids, given
}

// arn reads one required ARN.
func (x *exchange) arn(v query.View, name string, kind arnKind) string {
	a := v.Required(name)
	if a == "" {
		return ""
	}
	id, err := parseARN(a, kind)
	if err != nil {
		x.params.Fail(api.CodeValidationError, "%s", err.Message)
	}
	return id
}

func elbTags(v query.View) []api.Tag {
	var out []api.Tag
	for _, t := range v.MemberStructs("Tags") {
		val, _ := t.String("Value")
		out = append(out, api.Tag{Key: t.Required("Key"), Value: val})
	}
	return out
}

// elbPage reads PageSize (1..400) and Marker.
func elbPage(x *exchange, v query.View) (int, string) {
	size, given := v.Int("PageSize")
	if given && (size < 1 || size > 400) {
		x.params.Fail(api.CodeValidationError, "PageSize must be between 1 and 400 (got %d)", size)
	}
	marker, _ := v.String("Marker")
	return size, marker
}

// elbTargets reads Targets.member.N: an IP address and an optional port.
func (x *exchange) elbTargets(v query.View) []api.Target {
	var out []api.Target
	for _, t := range v.MemberStructs("Targets") {
		tgt := api.Target{IP: t.Required("Id")}
		if p, ok := t.Int("Port"); ok {
			tgt.Port = p
		}
		if az, ok := t.String("AvailabilityZone"); ok && az != "all" {
			x.params.Fail(api.CodeValidationError, "%s %q: fakecloud's targets are in the target group's VPC; give all or nothing", t.Name("AvailabilityZone"), truncate(az, 40))
		}
		out = append(out, tgt)
	}
	return out
}
