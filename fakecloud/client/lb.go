package client

import (
	"context"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// The load balancer actions, one method each; see docs/fakecloud-api.md.

// CreateLoadBalancer calls CreateLoadBalancer.
func (c *Client) CreateLoadBalancer(ctx context.Context, req *api.CreateLoadBalancerRequest) (*api.CreateLoadBalancerResponse, error) {
	return call[api.CreateLoadBalancerRequest, api.CreateLoadBalancerResponse](ctx, c, api.ActionCreateLoadBalancer, req)
}

// DescribeLoadBalancers calls DescribeLoadBalancers.
func (c *Client) DescribeLoadBalancers(ctx context.Context, req *api.DescribeLoadBalancersRequest) (*api.DescribeLoadBalancersResponse, error) {
	return call[api.DescribeLoadBalancersRequest, api.DescribeLoadBalancersResponse](ctx, c, api.ActionDescribeLoadBalancers, req)
}

// DeleteLoadBalancer calls DeleteLoadBalancer.
func (c *Client) DeleteLoadBalancer(ctx context.Context, req *api.DeleteLoadBalancerRequest) (*api.DeleteLoadBalancerResponse, error) {
	return call[api.DeleteLoadBalancerRequest, api.DeleteLoadBalancerResponse](ctx, c, api.ActionDeleteLoadBalancer, req)
}

// ModifyLoadBalancerAttributes calls ModifyLoadBalancerAttributes.
func (c *Client) ModifyLoadBalancerAttributes(ctx context.Context, req *api.ModifyLoadBalancerAttributesRequest) (*api.ModifyLoadBalancerAttributesResponse, error) {
	return call[api.ModifyLoadBalancerAttributesRequest, api.ModifyLoadBalancerAttributesResponse](ctx, c, api.ActionModifyLoadBalancerAttributes, req)
}

// CreateTargetGroup calls CreateTargetGroup.
func (c *Client) CreateTargetGroup(ctx context.Context, req *api.CreateTargetGroupRequest) (*api.CreateTargetGroupResponse, error) {
	return call[api.CreateTargetGroupRequest, api.CreateTargetGroupResponse](ctx, c, api.ActionCreateTargetGroup, req)
}

// DescribeTargetGroups calls DescribeTargetGroups.
func (c *Client) DescribeTargetGroups(ctx context.Context, req *api.DescribeTargetGroupsRequest) (*api.DescribeTargetGroupsResponse, error) {
	return call[api.DescribeTargetGroupsRequest, api.DescribeTargetGroupsResponse](ctx, c, api.ActionDescribeTargetGroups, req)
}

// ModifyTargetGroup calls ModifyTargetGroup.
func (c *Client) ModifyTargetGroup(ctx context.Context, req *api.ModifyTargetGroupRequest) (*api.ModifyTargetGroupResponse, error) {
	return call[api.ModifyTargetGroupRequest, api.ModifyTargetGroupResponse](ctx, c, api.ActionModifyTargetGroup, req)
}

// ModifyTargetGroupAttributes calls ModifyTargetGroupAttributes.
func (c *Client) ModifyTargetGroupAttributes(ctx context.Context, req *api.ModifyTargetGroupAttributesRequest) (*api.ModifyTargetGroupAttributesResponse, error) {
	return call[api.ModifyTargetGroupAttributesRequest, api.ModifyTargetGroupAttributesResponse](ctx, c, api.ActionModifyTargetGroupAttributes, req)
}

// DeleteTargetGroup calls DeleteTargetGroup.
func (c *Client) DeleteTargetGroup(ctx context.Context, req *api.DeleteTargetGroupRequest) (*api.DeleteTargetGroupResponse, error) {
	return call[api.DeleteTargetGroupRequest, api.DeleteTargetGroupResponse](ctx, c, api.ActionDeleteTargetGroup, req)
}

// RegisterTargets calls RegisterTargets.
func (c *Client) RegisterTargets(ctx context.Context, req *api.RegisterTargetsRequest) (*api.RegisterTargetsResponse, error) {
	return call[api.RegisterTargetsRequest, api.RegisterTargetsResponse](ctx, c, api.ActionRegisterTargets, req)
}

// DeregisterTargets calls DeregisterTargets.
func (c *Client) DeregisterTargets(ctx context.Context, req *api.DeregisterTargetsRequest) (*api.DeregisterTargetsResponse, error) {
	return call[api.DeregisterTargetsRequest, api.DeregisterTargetsResponse](ctx, c, api.ActionDeregisterTargets, req)
}

// DescribeTargetHealth calls DescribeTargetHealth.
func (c *Client) DescribeTargetHealth(ctx context.Context, req *api.DescribeTargetHealthRequest) (*api.DescribeTargetHealthResponse, error) {
	return call[api.DescribeTargetHealthRequest, api.DescribeTargetHealthResponse](ctx, c, api.ActionDescribeTargetHealth, req)
}

// ReportTargetHealth calls the admin action ReportTargetHealth (a data plane's health checker
// running outside the fakecloud process reports through it).
func (c *Client) ReportTargetHealth(ctx context.Context, req *api.ReportTargetHealthRequest) (*api.ReportTargetHealthResponse, error) {
	return call[api.ReportTargetHealthRequest, api.ReportTargetHealthResponse](ctx, c, api.ActionReportTargetHealth, req)
}

// CreateListener calls CreateListener.
func (c *Client) CreateListener(ctx context.Context, req *api.CreateListenerRequest) (*api.CreateListenerResponse, error) {
	return call[api.CreateListenerRequest, api.CreateListenerResponse](ctx, c, api.ActionCreateListener, req)
}

// DescribeListeners calls DescribeListeners.
func (c *Client) DescribeListeners(ctx context.Context, req *api.DescribeListenersRequest) (*api.DescribeListenersResponse, error) {
	return call[api.DescribeListenersRequest, api.DescribeListenersResponse](ctx, c, api.ActionDescribeListeners, req)
}

// DeleteListener calls DeleteListener.
func (c *Client) DeleteListener(ctx context.Context, req *api.DeleteListenerRequest) (*api.DeleteListenerResponse, error) {
	return call[api.DeleteListenerRequest, api.DeleteListenerResponse](ctx, c, api.ActionDeleteListener, req)
}

// AddTags calls AddTags.
func (c *Client) AddTags(ctx context.Context, req *api.AddTagsRequest) (*api.AddTagsResponse, error) {
	return call[api.AddTagsRequest, api.AddTagsResponse](ctx, c, api.ActionAddTags, req)
}

// RemoveTags calls RemoveTags.
func (c *Client) RemoveTags(ctx context.Context, req *api.RemoveTagsRequest) (*api.RemoveTagsResponse, error) {
	return call[api.RemoveTagsRequest, api.RemoveTagsResponse](ctx, c, api.ActionRemoveTags, req)
}

// DescribeTags calls DescribeTags.
func (c *Client) DescribeTags(ctx context.Context, req *api.DescribeTagsRequest) (*api.DescribeTagsResponse, error) {
	return call[api.DescribeTagsRequest, api.DescribeTagsResponse](ctx, c, api.ActionDescribeTags, req)
}

// ReportLoadBalancerState calls the admin action ReportLoadBalancerState (a data plane's
// verdict on load balancers: active, or failed with the reason).
func (c *Client) ReportLoadBalancerState(ctx context.Context, req *api.ReportLoadBalancerStateRequest) (*api.ReportLoadBalancerStateResponse, error) {
	return call[api.ReportLoadBalancerStateRequest, api.ReportLoadBalancerStateResponse](ctx, c, api.ActionReportLoadBalancerState, req)
}
