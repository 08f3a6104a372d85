package client

import (
	"context"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// One method per API action; see docs/fakecloud-api.md for what each does.

// CreateVpc calls CreateVpc.
func (c *Client) CreateVpc(ctx context.Context, req *api.CreateVpcRequest) (*api.CreateVpcResponse, error) {
	return call[api.CreateVpcRequest, api.CreateVpcResponse](ctx, c, api.ActionCreateVpc, req)
}

// DescribeVpcs calls DescribeVpcs.
func (c *Client) DescribeVpcs(ctx context.Context, req *api.DescribeVpcsRequest) (*api.DescribeVpcsResponse, error) {
	return call[api.DescribeVpcsRequest, api.DescribeVpcsResponse](ctx, c, api.ActionDescribeVpcs, req)
}

// DeleteVpc calls DeleteVpc.
func (c *Client) DeleteVpc(ctx context.Context, req *api.DeleteVpcRequest) (*api.DeleteVpcResponse, error) {
	return call[api.DeleteVpcRequest, api.DeleteVpcResponse](ctx, c, api.ActionDeleteVpc, req)
}

// CreateSubnet calls CreateSubnet.
func (c *Client) CreateSubnet(ctx context.Context, req *api.CreateSubnetRequest) (*api.CreateSubnetResponse, error) {
	return call[api.CreateSubnetRequest, api.CreateSubnetResponse](ctx, c, api.ActionCreateSubnet, req)
}

// DescribeSubnets calls DescribeSubnets.
func (c *Client) DescribeSubnets(ctx context.Context, req *api.DescribeSubnetsRequest) (*api.DescribeSubnetsResponse, error) {
	return call[api.DescribeSubnetsRequest, api.DescribeSubnetsResponse](ctx, c, api.ActionDescribeSubnets, req)
}

// DeleteSubnet calls DeleteSubnet.
func (c *Client) DeleteSubnet(ctx context.Context, req *api.DeleteSubnetRequest) (*api.DeleteSubnetResponse, error) {
	return call[api.DeleteSubnetRequest, api.DeleteSubnetResponse](ctx, c, api.ActionDeleteSubnet, req)
}

// DescribeInstanceTypes calls DescribeInstanceTypes.
func (c *Client) DescribeInstanceTypes(ctx context.Context, req *api.DescribeInstanceTypesRequest) (*api.DescribeInstanceTypesResponse, error) {
	return call[api.DescribeInstanceTypesRequest, api.DescribeInstanceTypesResponse](ctx, c, api.ActionDescribeInstanceTypes, req)
}

// RunInstances calls RunInstances.
func (c *Client) RunInstances(ctx context.Context, req *api.RunInstancesRequest) (*api.RunInstancesResponse, error) {
	return call[api.RunInstancesRequest, api.RunInstancesResponse](ctx, c, api.ActionRunInstances, req)
}

// DescribeInstances calls DescribeInstances.
func (c *Client) DescribeInstances(ctx context.Context, req *api.DescribeInstancesRequest) (*api.DescribeInstancesResponse, error) {
	return call[api.DescribeInstancesRequest, api.DescribeInstancesResponse](ctx, c, api.ActionDescribeInstances, req)
}

// TerminateInstances calls TerminateInstances.
func (c *Client) TerminateInstances(ctx context.Context, req *api.TerminateInstancesRequest) (*api.TerminateInstancesResponse, error) {
	return call[api.TerminateInstancesRequest, api.TerminateInstancesResponse](ctx, c, api.ActionTerminateInstances, req)
}

// CreateNetworkInterface calls CreateNetworkInterface.
func (c *Client) CreateNetworkInterface(ctx context.Context, req *api.CreateNetworkInterfaceRequest) (*api.CreateNetworkInterfaceResponse, error) {
	return call[api.CreateNetworkInterfaceRequest, api.CreateNetworkInterfaceResponse](ctx, c, api.ActionCreateNetworkInterface, req)
}

// DescribeNetworkInterfaces calls DescribeNetworkInterfaces.
func (c *Client) DescribeNetworkInterfaces(ctx context.Context, req *api.DescribeNetworkInterfacesRequest) (*api.DescribeNetworkInterfacesResponse, error) {
	return call[api.DescribeNetworkInterfacesRequest, api.DescribeNetworkInterfacesResponse](ctx, c, api.ActionDescribeNetworkInterfaces, req)
}

// AttachNetworkInterface calls AttachNetworkInterface.
func (c *Client) AttachNetworkInterface(ctx context.Context, req *api.AttachNetworkInterfaceRequest) (*api.AttachNetworkInterfaceResponse, error) {
	return call[api.AttachNetworkInterfaceRequest, api.AttachNetworkInterfaceResponse](ctx, c, api.ActionAttachNetworkInterface, req)
}

// DetachNetworkInterface calls DetachNetworkInterface.
func (c *Client) DetachNetworkInterface(ctx context.Context, req *api.DetachNetworkInterfaceRequest) (*api.DetachNetworkInterfaceResponse, error) {
	return call[api.DetachNetworkInterfaceRequest, api.DetachNetworkInterfaceResponse](ctx, c, api.ActionDetachNetworkInterface, req)
}

// DeleteNetworkInterface calls DeleteNetworkInterface.
func (c *Client) DeleteNetworkInterface(ctx context.Context, req *api.DeleteNetworkInterfaceRequest) (*api.DeleteNetworkInterfaceResponse, error) {
	return call[api.DeleteNetworkInterfaceRequest, api.DeleteNetworkInterfaceResponse](ctx, c, api.ActionDeleteNetworkInterface, req)
}

// ModifyNetworkInterfaceAttribute calls ModifyNetworkInterfaceAttribute.
func (c *Client) ModifyNetworkInterfaceAttribute(ctx context.Context, req *api.ModifyNetworkInterfaceAttributeRequest) (*api.ModifyNetworkInterfaceAttributeResponse, error) {
	return call[api.ModifyNetworkInterfaceAttributeRequest, api.ModifyNetworkInterfaceAttributeResponse](ctx, c, api.ActionModifyNetworkInterfaceAttribute, req)
}

// AssignPrivateIPAddresses calls AssignPrivateIPAddresses.
func (c *Client) AssignPrivateIPAddresses(ctx context.Context, req *api.AssignPrivateIPAddressesRequest) (*api.AssignPrivateIPAddressesResponse, error) {
	return call[api.AssignPrivateIPAddressesRequest, api.AssignPrivateIPAddressesResponse](ctx, c, api.ActionAssignPrivateIPAddresses, req)
}

// UnassignPrivateIPAddresses calls UnassignPrivateIPAddresses.
func (c *Client) UnassignPrivateIPAddresses(ctx context.Context, req *api.UnassignPrivateIPAddressesRequest) (*api.UnassignPrivateIPAddressesResponse, error) {
	return call[api.UnassignPrivateIPAddressesRequest, api.UnassignPrivateIPAddressesResponse](ctx, c, api.ActionUnassignPrivateIPAddresses, req)
}

// CreateTags calls CreateTags.
func (c *Client) CreateTags(ctx context.Context, req *api.CreateTagsRequest) (*api.CreateTagsResponse, error) {
	return call[api.CreateTagsRequest, api.CreateTagsResponse](ctx, c, api.ActionCreateTags, req)
}

// DeleteTags calls DeleteTags.
func (c *Client) DeleteTags(ctx context.Context, req *api.DeleteTagsRequest) (*api.DeleteTagsResponse, error) {
	return call[api.DeleteTagsRequest, api.DeleteTagsResponse](ctx, c, api.ActionDeleteTags, req)
}

// SetFault calls SetFault.
func (c *Client) SetFault(ctx context.Context, req *api.SetFaultRequest) (*api.SetFaultResponse, error) {
	return call[api.SetFaultRequest, api.SetFaultResponse](ctx, c, api.ActionSetFault, req)
}

// ListFaults calls ListFaults.
func (c *Client) ListFaults(ctx context.Context, req *api.ListFaultsRequest) (*api.ListFaultsResponse, error) {
	return call[api.ListFaultsRequest, api.ListFaultsResponse](ctx, c, api.ActionListFaults, req)
}

// ClearFaults calls ClearFaults.
func (c *Client) ClearFaults(ctx context.Context, req *api.ClearFaultsRequest) (*api.ClearFaultsResponse, error) {
	return call[api.ClearFaultsRequest, api.ClearFaultsResponse](ctx, c, api.ActionClearFaults, req)
}

// GetChanges returns the changes after req.Since, waiting up to req.WaitMillis (capped by the
// server) for one when there are none yet. Admin, or a load-balancer token (which sees the load
// balancer changes only).
func (c *Client) GetChanges(ctx context.Context, req *api.GetChangesRequest) (*api.GetChangesResponse, error) {
	return call[api.GetChangesRequest, api.GetChangesResponse](ctx, c, api.ActionGetChanges, req)
}

// GetSnapshot calls GetSnapshot.
func (c *Client) GetSnapshot(ctx context.Context, req *api.GetSnapshotRequest) (*api.GetSnapshotResponse, error) {
	return call[api.GetSnapshotRequest, api.GetSnapshotResponse](ctx, c, api.ActionGetSnapshot, req)
}

// WaitChanges long-polls for the changes after since, waiting up to wait for one.
func (c *Client) WaitChanges(ctx context.Context, since uint64, wait time.Duration) (*api.GetChangesResponse, error) {
	return c.GetChanges(ctx, &api.GetChangesRequest{Since: since, WaitMillis: int(wait.Milliseconds())})
}

// CreateLoadBalancerToken calls CreateLoadBalancerToken. Admin only.
func (c *Client) CreateLoadBalancerToken(ctx context.Context, req *api.CreateLoadBalancerTokenRequest) (*api.CreateLoadBalancerTokenResponse, error) {
	return call[api.CreateLoadBalancerTokenRequest, api.CreateLoadBalancerTokenResponse](ctx, c, api.ActionCreateLoadBalancerToken, req)
}

// DescribeLoadBalancerTokens calls DescribeLoadBalancerTokens. Admin only.
func (c *Client) DescribeLoadBalancerTokens(ctx context.Context, req *api.DescribeLoadBalancerTokensRequest) (*api.DescribeLoadBalancerTokensResponse, error) {
	return call[api.DescribeLoadBalancerTokensRequest, api.DescribeLoadBalancerTokensResponse](ctx, c, api.ActionDescribeLoadBalancerTokens, req)
}

// DeleteLoadBalancerToken calls DeleteLoadBalancerToken. Admin only.
func (c *Client) DeleteLoadBalancerToken(ctx context.Context, req *api.DeleteLoadBalancerTokenRequest) (*api.DeleteLoadBalancerTokenResponse, error) {
	return call[api.DeleteLoadBalancerTokenRequest, api.DeleteLoadBalancerTokenResponse](ctx, c, api.ActionDeleteLoadBalancerToken, req)
}
