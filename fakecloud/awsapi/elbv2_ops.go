package awsapi

import (
	"sort"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// The ELBv2 actions, on fakecloud's network and application load balancers.

func elbCreateLoadBalancer(x *exchange, v query.View) (any, error) {
	req := &api.CreateLoadBalancerRequest{Name: v.Required("Name"), Tags: elbTags(v)}
	req.Scheme, _ = v.String("Scheme")
	typ, ok := v.String("Type")
	if !ok {
		typ = api.LoadBalancerTypeApplication // ELBv2's default
	}
	if typ != api.LoadBalancerTypeNetwork && typ != api.LoadBalancerTypeApplication {
		x.params.Fail(api.CodeValidationError, "Type %q is not supported: fakecloud serves network and application load balancers", truncate(typ, 20))
	}
	req.Type = typ
	subnets := v.Members("Subnets")
	for _, m := range v.MemberStructs("SubnetMappings") {
		subnets = append(subnets, m.Required("SubnetId"))
	}
	if len(subnets) != 1 {
		x.params.Fail(api.CodeValidationError, "give exactly one subnet (Subnets or SubnetMappings): a fakecloud load balancer lives in one subnet (got %d)", len(subnets))
	} else {
		req.SubnetID = subnets[0]
	}
	if t, ok := v.String("IpAddressType"); ok && t != "ipv4" {
		x.params.Fail(api.CodeValidationError, "IpAddressType %q is not supported: fakecloud's load balancers are ipv4", truncate(t, 20))
	}
	if v.Has("SecurityGroups") {
		v.Members("SecurityGroups")
		x.params.Fail(api.CodeValidationError, "SecurityGroups are not emulated: restrict clients with fakecloud's source_ranges.cidr_blocks attribute")
	}
	resp, err := call[api.CreateLoadBalancerResponse](x, api.ActionCreateLoadBalancer, req)
	if err != nil {
		return nil, err
	}
	return &loadBalancersResult{LoadBalancers: members[elbLoadBalancer]{Items: []elbLoadBalancer{x.loadBalancerXML(&resp.LoadBalancer)}}}, nil
}

func elbDescribeLoadBalancers(x *exchange, v query.View) (any, error) {
	ids, _ := x.arns(v, "LoadBalancerArns", arnLoadBalancer)
	req := &api.DescribeLoadBalancersRequest{LoadBalancerIDs: ids, Names: v.Members("Names")}
	size, marker := elbPage(x, v)
	resp, err := call[api.DescribeLoadBalancersResponse](x, api.ActionDescribeLoadBalancers, req)
	if err != nil {
		return nil, err
	}
	page, next := pageOf(resp.LoadBalancers, func(lb *api.LoadBalancer) string { return lb.LoadBalancerID }, size, marker)
	out := &loadBalancersResult{LoadBalancers: members[elbLoadBalancer]{Items: []elbLoadBalancer{}}, NextMarker: next}
	for i := range page {
		out.LoadBalancers.Items = append(out.LoadBalancers.Items, x.loadBalancerXML(&page[i]))
	}
	return out, nil
}

func elbDeleteLoadBalancer(x *exchange, v query.View) (any, error) {
	req := &api.DeleteLoadBalancerRequest{LoadBalancerID: x.arn(v, "LoadBalancerArn", arnLoadBalancer)}
	if _, err := call[api.DeleteLoadBalancerResponse](x, api.ActionDeleteLoadBalancer, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func elbCreateTargetGroup(x *exchange, v query.View) (any, error) {
	req := &api.CreateTargetGroupRequest{Name: v.Required("Name"), Tags: elbTags(v)}
	req.Protocol = v.Required("Protocol")
	req.ProtocolVersion, _ = v.String("ProtocolVersion")
	req.VpcID = v.Required("VpcId")
	req.Port, _ = v.Int("Port")
	typ, ok := v.String("TargetType")
	if !ok || typ != api.TargetTypeIP {
		x.params.Fail(api.CodeValidationError, "fakecloud's target groups hold IP targets: give TargetType=ip (ELBv2's default is instance)")
	}
	req.TargetType = typ
	hc := &req.HealthCheck
	hc.Protocol, _ = v.String("HealthCheckProtocol")
	hc.Port, _ = v.String("HealthCheckPort")
	hc.Path, _ = v.String("HealthCheckPath")
	hc.IntervalSeconds, _ = v.Int("HealthCheckIntervalSeconds")
	hc.TimeoutSeconds, _ = v.Int("HealthCheckTimeoutSeconds")
	hc.HealthyThresholdCount, _ = v.Int("HealthyThresholdCount")
	hc.UnhealthyThresholdCount, _ = v.Int("UnhealthyThresholdCount")
	hc.Matcher, _ = v.String("Matcher.HttpCode")
	if grpc, ok := v.String("Matcher.GrpcCode"); ok {
		if hc.Matcher != "" {
			x.params.Fail(api.CodeValidationError, "Matcher: give HttpCode or GrpcCode, not both")
		}
		hc.Matcher = grpc
	}
	if on, ok := v.Bool("HealthCheckEnabled"); ok && !on {
		x.params.Fail(api.CodeValidationError, "HealthCheckEnabled=false is not supported: fakecloud checks every IP target")
	}
	if t, ok := v.String("IpAddressType"); ok && t != "ipv4" {
		x.params.Fail(api.CodeValidationError, "IpAddressType %q is not supported: fakecloud's target groups are ipv4", truncate(t, 20))
	}
	resp, err := call[api.CreateTargetGroupResponse](x, api.ActionCreateTargetGroup, req)
	if err != nil {
		return nil, err
	}
	tg := &resp.TargetGroup
	return &targetGroupsResult{TargetGroups: members[elbTargetGroup]{Items: []elbTargetGroup{x.targetGroupXML(tg, x.names(tg.LoadBalancerIDs))}}}, nil
}

func elbDescribeTargetGroups(x *exchange, v query.View) (any, error) {
	ids, _ := x.arns(v, "TargetGroupArns", arnTargetGroup)
	req := &api.DescribeTargetGroupsRequest{TargetGroupIDs: ids, Names: v.Members("Names")}
	if _, ok := v.String("LoadBalancerArn"); ok {
		req.LoadBalancerID = x.arn(v, "LoadBalancerArn", arnLoadBalancer)
	}
	size, marker := elbPage(x, v)
	resp, err := call[api.DescribeTargetGroupsResponse](x, api.ActionDescribeTargetGroups, req)
	if err != nil {
		return nil, err
	}
	page, next := pageOf(resp.TargetGroups, func(tg *api.TargetGroup) string { return tg.TargetGroupID }, size, marker)
	var lbs []string
	for _, tg := range page {
		lbs = append(lbs, tg.LoadBalancerIDs...)
	}
	names := x.names(lbs)
	out := &targetGroupsResult{TargetGroups: members[elbTargetGroup]{Items: []elbTargetGroup{}}, NextMarker: next}
	for i := range page {
		out.TargetGroups.Items = append(out.TargetGroups.Items, x.targetGroupXML(&page[i], names))
	}
	return out, nil
}

func elbDeleteTargetGroup(x *exchange, v query.View) (any, error) {
	req := &api.DeleteTargetGroupRequest{TargetGroupID: x.arn(v, "TargetGroupArn", arnTargetGroup)}
	if _, err := call[api.DeleteTargetGroupResponse](x, api.ActionDeleteTargetGroup, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func elbCreateListener(x *exchange, v query.View) (any, error) {
	req := &api.CreateListenerRequest{LoadBalancerID: x.arn(v, "LoadBalancerArn", arnLoadBalancer), Protocol: v.Required("Protocol")}
	req.Port, _ = v.Int("Port")
	req.DefaultActions = x.elbActions(v, "DefaultActions")
	req.SSLPolicy, _ = v.String("SslPolicy")
	req.Certificates = x.elbCertificates(v)
	arn, _ := v.String("LoadBalancerArn")
	x.refusePassthrough(req.Protocol, strings.Contains(arn, ":loadbalancer/app/"))
	if v.Has("AlpnPolicy") {
		v.Members("AlpnPolicy")
		x.params.Fail(api.CodeValidationError, "AlpnPolicy is not emulated (it is for TLS listeners of network load balancers)")
	}
	if v.Has("Tags") {
		elbTags(v)
		x.params.Fail(api.CodeValidationError, "listener tags are not supported: tag the load balancer or the target group")
	}
	resp, err := call[api.CreateListenerResponse](x, api.ActionCreateListener, req)
	if err != nil {
		return nil, err
	}
	l := &resp.Listener
	return &listenersResult{Listeners: members[elbListener]{Items: []elbListener{x.listenerXML(l, x.names(listenerRefs(l)))}}}, nil
}

func listenerRefs(l *api.Listener) []string {
	return append([]string{l.LoadBalancerID}, actionRefs(l.DefaultActions)...)
}

func elbDescribeListeners(x *exchange, v query.View) (any, error) {
	ids, _ := x.arns(v, "ListenerArns", arnListener)
	req := &api.DescribeListenersRequest{ListenerIDs: ids}
	if _, ok := v.String("LoadBalancerArn"); ok {
		req.LoadBalancerID = x.arn(v, "LoadBalancerArn", arnLoadBalancer)
	}
	if (req.LoadBalancerID == "") == (len(ids) == 0) && x.params.Err() == nil {
		x.params.Fail(api.CodeValidationError, "give either LoadBalancerArn or ListenerArns")
	}
	size, marker := elbPage(x, v)
	resp, err := call[api.DescribeListenersResponse](x, api.ActionDescribeListeners, req)
	if err != nil {
		return nil, err
	}
	page, next := pageOf(resp.Listeners, func(l *api.Listener) string { return l.ListenerID }, size, marker)
	var refs []string
	for i := range page {
		refs = append(refs, listenerRefs(&page[i])...)
	}
	names := x.names(refs)
	out := &listenersResult{Listeners: members[elbListener]{Items: []elbListener{}}, NextMarker: next}
	for i := range page {
		out.Listeners.Items = append(out.Listeners.Items, x.listenerXML(&page[i], names))
	}
	return out, nil
}

func elbDeleteListener(x *exchange, v query.View) (any, error) {
	req := &api.DeleteListenerRequest{ListenerID: x.arn(v, "ListenerArn", arnListener)}
	if _, err := call[api.DeleteListenerResponse](x, api.ActionDeleteListener, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func elbRegisterTargets(x *exchange, v query.View) (any, error) {
	req := &api.RegisterTargetsRequest{TargetGroupID: x.arn(v, "TargetGroupArn", arnTargetGroup), Targets: x.elbTargets(v)}
	if _, err := call[api.RegisterTargetsResponse](x, api.ActionRegisterTargets, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func elbDeregisterTargets(x *exchange, v query.View) (any, error) {
	req := &api.DeregisterTargetsRequest{TargetGroupID: x.arn(v, "TargetGroupArn", arnTargetGroup), Targets: x.elbTargets(v)}
	if _, err := call[api.DeregisterTargetsResponse](x, api.ActionDeregisterTargets, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func elbDescribeTargetHealth(x *exchange, v query.View) (any, error) {
	req := &api.DescribeTargetHealthRequest{TargetGroupID: x.arn(v, "TargetGroupArn", arnTargetGroup), Targets: x.elbTargets(v)}
	resp, err := call[api.DescribeTargetHealthResponse](x, api.ActionDescribeTargetHealth, req)
	if err != nil {
		return nil, err
	}
	out := &targetHealthResult{TargetHealthDescriptions: members[elbTargetHealthDescription]{Items: []elbTargetHealthDescription{}}}
	for _, d := range resp.TargetHealthDescriptions {
		out.TargetHealthDescriptions.Items = append(out.TargetHealthDescriptions.Items, elbTargetHealthDescription{
			Target:       elbTargetDescription{ID: d.Target.IP, Port: d.Target.Port},
			TargetHealth: elbTargetHealth{State: d.TargetHealth.State, Reason: d.TargetHealth.Reason, Description: d.TargetHealth.Description},
		})
	}
	return out, nil
}

func elbAddTags(x *exchange, v query.View) (any, error) {
	ids, _ := x.arns(v, "ResourceArns", arnLoadBalancer, arnTargetGroup)
	req := &api.AddTagsRequest{ResourceIDs: ids, Tags: elbTags(v)}
	if _, err := call[api.AddTagsResponse](x, api.ActionAddTags, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func elbRemoveTags(x *exchange, v query.View) (any, error) {
	ids, _ := x.arns(v, "ResourceArns", arnLoadBalancer, arnTargetGroup)
	req := &api.RemoveTagsRequest{ResourceIDs: ids, TagKeys: v.Members("TagKeys")}
	if _, err := call[api.RemoveTagsResponse](x, api.ActionRemoveTags, req); err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func elbDescribeTags(x *exchange, v query.View) (any, error) {
	ids, given := x.arns(v, "ResourceArns", arnLoadBalancer, arnTargetGroup)
	resp, err := call[api.DescribeTagsResponse](x, api.ActionDescribeTags, &api.DescribeTagsRequest{ResourceIDs: ids})
	if err != nil {
		return nil, err
	}
	out := &tagsResult{TagDescriptions: members[elbTagDescription]{Items: []elbTagDescription{}}}
	for _, d := range resp.TagDescriptions {
		tags := append([]api.Tag(nil), d.Tags...)
		sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
		out.TagDescriptions.Items = append(out.TagDescriptions.Items, elbTagDescription{ResourceArn: given[d.ResourceID], Tags: elbTagsXML(tags)})
	}
	return out, nil
}

// names looks up the names of load balancers and target groups for their ARNs.
func (x *exchange) names(ids []string) map[string]string {
	if len(ids) == 0 {
		return nil
	}
	return x.h.cfg.Backend.Names(ids)
}
