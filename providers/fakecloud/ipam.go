package fakecloud

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/providers"
)

// TagNode marks interfaces ipamd created; its value is the instance ID.
const TagNode = "flatnet.io/node"

// IPAM implements providers.IPAM against fakecloud, with an instance's token.
type IPAM struct {
	c       *client.Client
	observe providers.Observer

	mu      sync.Mutex
	types   map[string]api.InstanceTypeInfo
	subnets map[string]netip.Prefix
	vpcs    map[string]netip.Prefix
}

var _ providers.IPAM = (*IPAM)(nil)

// NewIPAM builds the IPAM driver: endpoint and the instance's token (or a client).
func NewIPAM(cfg Config) (*IPAM, error) {
	c, err := cfg.client("pass --cloud-endpoint or run where the metadata service answers")
	if err != nil {
		return nil, err
	}
	return &IPAM{
		c: c, observe: cfg.observer(),
		types: map[string]api.InstanceTypeInfo{}, subnets: map[string]netip.Prefix{}, vpcs: map[string]netip.Prefix{},
	}, nil
}

// call runs one API call and tells the observer.
func call[Req, Resp any](ctx context.Context, d *IPAM, action string, fn func(context.Context, *Req) (*Resp, error), req *Req) (*Resp, error) {
	start := time.Now()
	resp, err := fn(ctx, req)
	err = classify(err)
	d.observe(action, time.Since(start), err)
	return resp, err
}

// DescribeInstance implements providers.IPAM.
func (d *IPAM) DescribeInstance(ctx context.Context, id string) (*providers.Instance, error) {
	inst, err := d.describeInstance(ctx, id)
	return inst, classify(err)
}

func (d *IPAM) describeInstance(ctx context.Context, id string) (*providers.Instance, error) {
	out, err := call(ctx, d, api.ActionDescribeInstances, d.c.DescribeInstances, &api.DescribeInstancesRequest{InstanceIDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(out.Instances) != 1 {
		return nil, api.Errorf(api.CodeInvalidInstanceIDNotFound, "instance %s not found", id)
	}
	in := out.Instances[0]
	limits, err := d.instanceType(ctx, in.InstanceType)
	if err != nil {
		return nil, err
	}
	vpc, err := d.vpcCIDR(ctx, in.VpcID)
	if err != nil {
		return nil, err
	}
	inst := &providers.Instance{
		ID: in.InstanceID, Type: in.InstanceType, SubnetID: in.SubnetID, VPCCIDRs: []netip.Prefix{vpc},
		MaxInterfaces: limits.MaximumNetworkInterfaces, IPv4PerInterface: limits.Ipv4AddressesPerInterface,
	}
	for i := range in.NetworkInterfaces {
		ni, err := d.convert(ctx, &in.NetworkInterfaces[i])
		if err != nil {
			return nil, err
		}
		if in.NetworkInterfaces[i].Attachment != nil && in.NetworkInterfaces[i].Attachment.DeviceIndex == 0 {
			inst.SecurityGroups = in.NetworkInterfaces[i].Groups
		}
		inst.Interfaces = append(inst.Interfaces, *ni)
	}
	det, err := call(ctx, d, api.ActionDescribeNetworkInterfaces, d.c.DescribeNetworkInterfaces, &api.DescribeNetworkInterfacesRequest{
		Filters: []api.Filter{{Name: "tag:" + TagNode, Values: []string{id}}, {Name: "status", Values: []string{api.ENIStatusAvailable}}},
	})
	if err != nil {
		return nil, err
	}
	for i := range det.NetworkInterfaces {
		ni, err := d.convert(ctx, &det.NetworkInterfaces[i])
		if err != nil {
			return nil, err
		}
		inst.Detached = append(inst.Detached, *ni)
	}
	return inst, nil
}

func (d *IPAM) instanceType(ctx context.Context, name string) (api.InstanceTypeInfo, error) {
	d.mu.Lock()
	t, ok := d.types[name]
	d.mu.Unlock()
	if ok {
		return t, nil
	}
	out, err := call(ctx, d, api.ActionDescribeInstanceTypes, d.c.DescribeInstanceTypes, &api.DescribeInstanceTypesRequest{InstanceTypes: []string{name}})
	if err != nil {
		return t, err
	}
	if len(out.InstanceTypes) != 1 {
		return t, api.Errorf(api.CodeInvalidParameterValue, "instance type %s is unknown to the cloud", name)
	}
	d.mu.Lock()
	d.types[name] = out.InstanceTypes[0]
	d.mu.Unlock()
	return out.InstanceTypes[0], nil
}

func (d *IPAM) subnetCIDR(ctx context.Context, id string) (netip.Prefix, error) {
	d.mu.Lock()
	p, ok := d.subnets[id]
	d.mu.Unlock()
	if ok {
		return p, nil
	}
	out, err := call(ctx, d, api.ActionDescribeSubnets, d.c.DescribeSubnets, &api.DescribeSubnetsRequest{SubnetIDs: []string{id}})
	if err != nil {
		return p, err
	}
	if len(out.Subnets) != 1 {
		return p, api.Errorf(api.CodeInvalidSubnetIDNotFound, "subnet %s not found", id)
	}
	if p, err = netip.ParsePrefix(out.Subnets[0].CidrBlock); err != nil {
		return p, fmt.Errorf("subnet %s has CIDR %q: %w", id, out.Subnets[0].CidrBlock, err)
	}
	d.mu.Lock()
	d.subnets[id] = p
	d.mu.Unlock()
	return p, nil
}

func (d *IPAM) vpcCIDR(ctx context.Context, id string) (netip.Prefix, error) {
	d.mu.Lock()
	p, ok := d.vpcs[id]
	d.mu.Unlock()
	if ok {
		return p, nil
	}
	out, err := call(ctx, d, api.ActionDescribeVpcs, d.c.DescribeVpcs, &api.DescribeVpcsRequest{VpcIDs: []string{id}})
	if err != nil {
		return p, err
	}
	if len(out.Vpcs) != 1 {
		return p, api.Errorf(api.CodeInvalidVpcIDNotFound, "vpc %s not found", id)
	}
	if p, err = netip.ParsePrefix(out.Vpcs[0].CidrBlock); err != nil {
		return p, fmt.Errorf("vpc %s has CIDR %q: %w", id, out.Vpcs[0].CidrBlock, err)
	}
	d.mu.Lock()
	d.vpcs[id] = p
	d.mu.Unlock()
	return p, nil
}

func (d *IPAM) convert(ctx context.Context, ni *api.NetworkInterface) (*providers.Interface, error) {
	cidr, err := d.subnetCIDR(ctx, ni.SubnetID)
	if err != nil {
		return nil, err
	}
	out := &providers.Interface{ID: ni.NetworkInterfaceID, MAC: ni.MacAddress, SubnetID: ni.SubnetID, SubnetCIDR: cidr, DeviceIndex: -1}
	if ni.Attachment != nil {
		out.DeviceIndex = ni.Attachment.DeviceIndex
		out.Ready = ni.Attachment.Status == api.AttachmentStatusAttached
	}
	for _, t := range ni.Tags {
		if t.Key == TagNode {
			out.Managed = true
		}
	}
	for _, a := range ni.PrivateIPAddresses {
		ip, err := netip.ParseAddr(a.PrivateIPAddress)
		if err != nil {
			return nil, fmt.Errorf("interface %s lists address %q: %w", ni.NetworkInterfaceID, a.PrivateIPAddress, err)
		}
		if a.Primary {
			out.PrimaryIP = ip
		} else {
			out.IPs = append(out.IPs, ip)
		}
	}
	for _, p := range ni.Ipv4Prefixes {
		pfx, err := netip.ParsePrefix(p.Ipv4Prefix)
		if err != nil {
			return nil, fmt.Errorf("interface %s lists prefix %q: %w", ni.NetworkInterfaceID, p.Ipv4Prefix, err)
		}
		out.Prefixes = append(out.Prefixes, pfx)
	}
	return out, nil
}

func describeOne(ctx context.Context, d *IPAM, id string) (*api.NetworkInterface, error) {
	out, err := call(ctx, d, api.ActionDescribeNetworkInterfaces, d.c.DescribeNetworkInterfaces, &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(out.NetworkInterfaces) != 1 {
		return nil, api.Errorf(api.CodeInvalidNetworkInterfaceIDNotFound, "network interface %s not found", id)
	}
	return &out.NetworkInterfaces[0], nil
}

func strs[T interface{ String() string }](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}

// keep returns the elements of want that are also in have.
func keep[T comparable](want, have []T) []T {
	var out []T
	for _, w := range want {
		if slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}
