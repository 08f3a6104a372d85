package awsapi

import (
	"strconv"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// The ELBv2 actions that change a load balancer or target group after its creation: its
// attributes (fakecloud's source_ranges.cidr_blocks on load balancers, which stands in for a
// real NLB's security groups, its access_logs.enabled on application load balancers, and
// deregistration_delay.timeout_seconds on target groups) and a
// target group's health check.

type elbAttribute struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type attributesResult struct {
	Attributes members[elbAttribute] `xml:"Attributes"`
}

func attributesXML(as []api.Attribute) *attributesResult {
	out := &attributesResult{Attributes: members[elbAttribute]{Items: []elbAttribute{}}}
	for _, a := range as {
		out.Attributes.Items = append(out.Attributes.Items, elbAttribute(a))
	}
	return out
}

// elbAttributes reads Attributes.member.N.Key / .Value.
func elbAttributes(v query.View) []api.Attribute {
	var out []api.Attribute
	for _, a := range v.MemberStructs("Attributes") {
		val, _ := a.String("Value")
		out = append(out, api.Attribute{Key: a.Required("Key"), Value: val})
	}
	return out
}

func elbModifyLoadBalancerAttributes(x *exchange, v query.View) (any, error) {
	req := &api.ModifyLoadBalancerAttributesRequest{LoadBalancerID: x.arn(v, "LoadBalancerArn", arnLoadBalancer), Attributes: elbAttributes(v)}
	resp, err := call[api.ModifyLoadBalancerAttributesResponse](x, api.ActionModifyLoadBalancerAttributes, req)
	if err != nil {
		return nil, err
	}
	return attributesXML(resp.Attributes), nil
}

// elbDescribeLoadBalancerAttributes answers the attributes fakecloud keeps, read from the load
// balancer (a describe, throttled and faulted as one).
func elbDescribeLoadBalancerAttributes(x *exchange, v query.View) (any, error) {
	id := x.arn(v, "LoadBalancerArn", arnLoadBalancer)
	resp, err := call[api.DescribeLoadBalancersResponse](x, api.ActionDescribeLoadBalancers, &api.DescribeLoadBalancersRequest{LoadBalancerIDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(resp.LoadBalancers) != 1 {
		return nil, api.Errorf(api.CodeLoadBalancerNotFound, "load balancer %s not found", id)
	}
	lb := resp.LoadBalancers[0]
	attrs := []api.Attribute{{Key: api.AttributeSourceRanges, Value: strings.Join(lb.SourceRanges, ",")}}
	if lb.Type == api.LoadBalancerTypeApplication {
		attrs = append(attrs, api.Attribute{Key: api.AttributeAccessLogs, Value: strconv.FormatBool(lb.AccessLogs)})
	}
	return attributesXML(attrs), nil
}

func elbModifyTargetGroupAttributes(x *exchange, v query.View) (any, error) {
	req := &api.ModifyTargetGroupAttributesRequest{TargetGroupID: x.arn(v, "TargetGroupArn", arnTargetGroup), Attributes: elbAttributes(v)}
	resp, err := call[api.ModifyTargetGroupAttributesResponse](x, api.ActionModifyTargetGroupAttributes, req)
	if err != nil {
		return nil, err
	}
	return attributesXML(resp.Attributes), nil
}

func elbDescribeTargetGroupAttributes(x *exchange, v query.View) (any, error) {
	id := x.arn(v, "TargetGroupArn", arnTargetGroup)
	resp, err := call[api.DescribeTargetGroupsResponse](x, api.ActionDescribeTargetGroups, &api.DescribeTargetGroupsRequest{TargetGroupIDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(resp.TargetGroups) != 1 {
		return nil, api.Errorf(api.CodeTargetGroupNotFound, "target group %s not found", id)
	}
	return attributesXML([]api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: strconv.Itoa(resp.TargetGroups[0].DeregistrationDelaySeconds)}}), nil
}

// elbModifyTargetGroup changes a target group's health check. As in ELBv2, a setting not given
// keeps its value: the group is read first (an internal read, like the ARNs' names).
func elbModifyTargetGroup(x *exchange, v query.View) (any, error) {
	id := x.arn(v, "TargetGroupArn", arnTargetGroup)
	var set []func(*api.HealthCheck)
	str := func(name string, dst func(*api.HealthCheck) *string) {
		if s, ok := v.String(name); ok {
			set = append(set, func(hc *api.HealthCheck) { *dst(hc) = s })
		}
	}
	num := func(name string, dst func(*api.HealthCheck) *int) {
		if n, ok := v.Int(name); ok {
			set = append(set, func(hc *api.HealthCheck) { *dst(hc) = n })
		}
	}
	str("HealthCheckProtocol", func(hc *api.HealthCheck) *string { return &hc.Protocol })
	str("HealthCheckPort", func(hc *api.HealthCheck) *string { return &hc.Port })
	str("HealthCheckPath", func(hc *api.HealthCheck) *string { return &hc.Path })
	str("Matcher.HttpCode", func(hc *api.HealthCheck) *string { return &hc.Matcher })
	str("Matcher.GrpcCode", func(hc *api.HealthCheck) *string { return &hc.Matcher })
	if v.Has("Matcher.HttpCode") && v.Has("Matcher.GrpcCode") {
		x.params.Fail(api.CodeValidationError, "Matcher: give HttpCode or GrpcCode, not both")
	}
	num("HealthCheckIntervalSeconds", func(hc *api.HealthCheck) *int { return &hc.IntervalSeconds })
	num("HealthCheckTimeoutSeconds", func(hc *api.HealthCheck) *int { return &hc.TimeoutSeconds })
	num("HealthyThresholdCount", func(hc *api.HealthCheck) *int { return &hc.HealthyThresholdCount })
	num("UnhealthyThresholdCount", func(hc *api.HealthCheck) *int { return &hc.UnhealthyThresholdCount })
	if on, ok := v.Bool("HealthCheckEnabled"); ok && !on {
		x.params.Fail(api.CodeValidationError, "HealthCheckEnabled=false is not supported: fakecloud checks every IP target")
	}
	if err := x.complete(); err != nil {
		return nil, err
	}
	hc, ok := x.h.cfg.Backend.HealthCheck(id)
	if !ok {
		return nil, api.Errorf(api.CodeTargetGroupNotFound, "target group %s not found", id)
	}
	if p, ok := v.String("HealthCheckProtocol"); ok && p != api.ProtocolHTTP && p != api.ProtocolHTTPS {
		hc.Path, hc.Matcher = "", ""
	}
	for _, f := range set {
		f(&hc)
	}
	resp, err := call[api.ModifyTargetGroupResponse](x, api.ActionModifyTargetGroup, &api.ModifyTargetGroupRequest{TargetGroupID: id, HealthCheck: hc})
	if err != nil {
		return nil, err
	}
	tg := &resp.TargetGroup
	return &targetGroupsResult{TargetGroups: members[elbTargetGroup]{Items: []elbTargetGroup{x.targetGroupXML(tg, x.names(tg.LoadBalancerIDs))}}}, nil
}
