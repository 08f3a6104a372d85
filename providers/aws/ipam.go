package aws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flatnet/flatnet/providers"
)

// TagNode marks the interfaces ipamd created (and may delete); its value is the instance ID.
// The IAM policy (docs/providers.md) lets ipamd create interfaces only with it, and delete,
// detach and change only interfaces that carry it.
const TagNode = "flatnet.io/node"

// pageSize of the describes the driver pages through (EC2 allows 5..1000); tests lower it.
var pageSize int32 = 1000

// IPAM implements providers.IPAM on EC2.
type IPAM struct {
	c       *ec2.Client
	observe func(string, time.Duration, error)

	mu      sync.Mutex
	types   map[string]types.NetworkInfo
	subnets map[string]netip.Prefix
	vpcs    map[string][]netip.Prefix

	assigned assignMemo
}

var _ providers.IPAM = (*IPAM)(nil)

// NewIPAM builds ipamd's driver from the AWS configuration chain and c.
func NewIPAM(ctx context.Context, c Config) (*IPAM, error) {
	cfg, err := load(ctx, c)
	if err != nil {
		return nil, err
	}
	obs := c.Observe
	if obs == nil {
		obs = func(string, time.Duration, error) {}
	}
	return &IPAM{
		c: newClients(cfg).ec2, observe: obs,
		types: map[string]types.NetworkInfo{}, subnets: map[string]netip.Prefix{}, vpcs: map[string][]netip.Prefix{},
	}, nil
}

// call runs one EC2 operation, classifies its error and tells the observer.
func call[In, Out any](ctx context.Context, obs func(string, time.Duration, error), op string,
	fn func(context.Context, *In, ...func(*ec2.Options)) (*Out, error), in *In,
) (*Out, error) {
	start := time.Now()
	out, err := fn(ctx, in)
	err = classify(err)
	obs(op, time.Since(start), err)
	return out, err
}

// DescribeInstance implements providers.IPAM: the instance (DescribeInstances), its type's
// limits (DescribeInstanceTypes, cached), its attached interfaces and the ones ipamd created for
// it that are not attached (DescribeNetworkInterfaces, paged), subnet and VPC CIDRs (cached).
func (d *IPAM) DescribeInstance(ctx context.Context, id string) (*providers.Instance, error) {
	out, err := call(ctx, d.observe, "DescribeInstances", d.c.DescribeInstances, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return nil, err
	}
	var in *types.Instance
	for i := range out.Reservations {
		for j := range out.Reservations[i].Instances {
			if aws.ToString(out.Reservations[i].Instances[j].InstanceId) == id {
				in = &out.Reservations[i].Instances[j]
			}
		}
	}
	if in == nil {
		return nil, notFound("InvalidInstanceID.NotFound", "instance %s not found", id)
	}
	limits, err := d.instanceType(ctx, string(in.InstanceType))
	if err != nil {
		return nil, err
	}
	vpc, err := d.vpcCIDRs(ctx, aws.ToString(in.VpcId))
	if err != nil {
		return nil, err
	}
	inst := &providers.Instance{
		ID: id, Type: string(in.InstanceType), SubnetID: aws.ToString(in.SubnetId), VPCCIDRs: vpc,
		MaxInterfaces: int(aws.ToInt32(limits.MaximumNetworkInterfaces)), IPv4PerInterface: int(aws.ToInt32(limits.Ipv4AddressesPerInterface)),
	}
	attached, err := d.describeInterfaces(ctx, []types.Filter{filter("attachment.instance-id", id)})
	if err != nil {
		return nil, err
	}
	for i := range attached {
		ni, err := d.convert(ctx, &attached[i])
		if err != nil {
			return nil, err
		}
		if ni.DeviceIndex == 0 {
			for _, g := range attached[i].Groups {
				inst.SecurityGroups = append(inst.SecurityGroups, aws.ToString(g.GroupId))
			}
		}
		inst.Interfaces = append(inst.Interfaces, *ni)
	}
	detached, err := d.describeInterfaces(ctx, []types.Filter{filter("tag:"+TagNode, id), filter("status", string(types.NetworkInterfaceStatusAvailable))})
	if err != nil {
		return nil, err
	}
	for i := range detached {
		ni, err := d.convert(ctx, &detached[i])
		if err != nil {
			return nil, err
		}
		inst.Detached = append(inst.Detached, *ni)
	}
	sortByDevice(inst.Interfaces)
	return inst, nil
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

// describeInterfaces pages through DescribeNetworkInterfaces with filters.
func (d *IPAM) describeInterfaces(ctx context.Context, filters []types.Filter) ([]types.NetworkInterface, error) {
	in := &ec2.DescribeNetworkInterfacesInput{Filters: filters, MaxResults: aws.Int32(pageSize)}
	var all []types.NetworkInterface
	for {
		out, err := call(ctx, d.observe, "DescribeNetworkInterfaces", d.c.DescribeNetworkInterfaces, in)
		if err != nil {
			return nil, err
		}
		all = append(all, out.NetworkInterfaces...)
		if aws.ToString(out.NextToken) == "" {
			return all, nil
		}
		in.NextToken = out.NextToken
	}
}

// describeOne describes one interface by ID.
func (d *IPAM) describeOne(ctx context.Context, id string) (*types.NetworkInterface, error) {
	out, err := call(ctx, d.observe, "DescribeNetworkInterfaces", d.c.DescribeNetworkInterfaces,
		&ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(out.NetworkInterfaces) != 1 {
		return nil, notFound("InvalidNetworkInterfaceID.NotFound", "network interface %s not found", id)
	}
	return &out.NetworkInterfaces[0], nil
}

func (d *IPAM) instanceType(ctx context.Context, name string) (types.NetworkInfo, error) {
	d.mu.Lock()
	t, ok := d.types[name]
	d.mu.Unlock()
	if ok {
		return t, nil
	}
	out, err := call(ctx, d.observe, "DescribeInstanceTypes", d.c.DescribeInstanceTypes,
		&ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(name)}})
	if err != nil {
		return t, err
	}
	if len(out.InstanceTypes) != 1 || out.InstanceTypes[0].NetworkInfo == nil {
		return t, invalid("InvalidInstanceType", "instance type %s is unknown to EC2 or has no network information", name)
	}
	t = *out.InstanceTypes[0].NetworkInfo
	d.mu.Lock()
	d.types[name] = t
	d.mu.Unlock()
	return t, nil
}

func (d *IPAM) subnetCIDR(ctx context.Context, id string) (netip.Prefix, error) {
	d.mu.Lock()
	p, ok := d.subnets[id]
	d.mu.Unlock()
	if ok {
		return p, nil
	}
	out, err := call(ctx, d.observe, "DescribeSubnets", d.c.DescribeSubnets, &ec2.DescribeSubnetsInput{SubnetIds: []string{id}})
	if err != nil {
		return p, err
	}
	if len(out.Subnets) != 1 {
		return p, notFound("InvalidSubnetID.NotFound", "subnet %s not found", id)
	}
	if p, err = netip.ParsePrefix(aws.ToString(out.Subnets[0].CidrBlock)); err != nil {
		return p, fmt.Errorf("subnet %s has the CIDR %q: %w", id, aws.ToString(out.Subnets[0].CidrBlock), err)
	}
	d.mu.Lock()
	d.subnets[id] = p
	d.mu.Unlock()
	return p, nil
}

// vpcCIDRs are the VPC's associated IPv4 blocks (the primary one first).
func (d *IPAM) vpcCIDRs(ctx context.Context, id string) ([]netip.Prefix, error) {
	d.mu.Lock()
	ps, ok := d.vpcs[id]
	d.mu.Unlock()
	if ok {
		return ps, nil
	}
	out, err := call(ctx, d.observe, "DescribeVpcs", d.c.DescribeVpcs, &ec2.DescribeVpcsInput{VpcIds: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(out.Vpcs) != 1 {
		return nil, notFound("InvalidVpcID.NotFound", "vpc %s not found", id)
	}
	v := out.Vpcs[0]
	blocks := []string{aws.ToString(v.CidrBlock)}
	for _, a := range v.CidrBlockAssociationSet {
		if a.CidrBlockState != nil && a.CidrBlockState.State == types.VpcCidrBlockStateCodeAssociated && aws.ToString(a.CidrBlock) != blocks[0] {
			blocks = append(blocks, aws.ToString(a.CidrBlock))
		}
	}
	for _, b := range blocks {
		p, err := netip.ParsePrefix(b)
		if err != nil {
			return nil, fmt.Errorf("vpc %s has the CIDR %q: %w", id, b, err)
		}
		ps = append(ps, p)
	}
	d.mu.Lock()
	d.vpcs[id] = ps
	d.mu.Unlock()
	return ps, nil
}

// convert turns an EC2 interface into the seam's.
func (d *IPAM) convert(ctx context.Context, ni *types.NetworkInterface) (*providers.Interface, error) {
	id := aws.ToString(ni.NetworkInterfaceId)
	cidr, err := d.subnetCIDR(ctx, aws.ToString(ni.SubnetId))
	if err != nil {
		return nil, err
	}
	out := &providers.Interface{ID: id, MAC: aws.ToString(ni.MacAddress), SubnetID: aws.ToString(ni.SubnetId), SubnetCIDR: cidr, DeviceIndex: -1}
	if a := ni.Attachment; a != nil && a.Status != types.AttachmentStatusDetached {
		out.DeviceIndex = int(aws.ToInt32(a.DeviceIndex))
		out.Ready = a.Status == types.AttachmentStatusAttached
	}
	for _, t := range ni.TagSet {
		if aws.ToString(t.Key) == TagNode {
			out.Managed = true
		}
	}
	for _, a := range ni.PrivateIpAddresses {
		ip, err := netip.ParseAddr(aws.ToString(a.PrivateIpAddress))
		if err != nil {
			return nil, fmt.Errorf("interface %s lists the address %q: %w", id, aws.ToString(a.PrivateIpAddress), err)
		}
		if aws.ToBool(a.Primary) {
			out.PrimaryIP = ip
		} else {
			out.IPs = append(out.IPs, ip)
		}
	}
	for _, p := range ni.Ipv4Prefixes {
		pfx, err := netip.ParsePrefix(aws.ToString(p.Ipv4Prefix))
		if err != nil {
			return nil, fmt.Errorf("interface %s lists the prefix %q: %w", id, aws.ToString(p.Ipv4Prefix), err)
		}
		out.Prefixes = append(out.Prefixes, pfx)
	}
	return out, nil
}

func sortByDevice(ifs []providers.Interface) {
	for i := 1; i < len(ifs); i++ {
		for j := i; j > 0 && ifs[j].DeviceIndex < ifs[j-1].DeviceIndex; j-- {
			ifs[j], ifs[j-1] = ifs[j-1], ifs[j]
		}
	}
}

// Assign implements providers.IPAM with AssignPrivateIpAddresses. EC2 takes no client token
// here: a repeat with the request's token answers what the first got (assignMemo); a retry
// after a lost answer may assign a second set, which ipamd's resync finds as addresses it does
// not know and gives back.
func (d *IPAM) Assign(ctx context.Context, req providers.AssignRequest) (*providers.Assigned, error) {
	if got, ok := d.assigned.get(req.ClientToken, req.InterfaceID); ok {
		return got, nil
	}
	in := &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(req.InterfaceID), PrivateIpAddresses: strs(req.IPs)}
	if req.IPCount > 0 {
		in.SecondaryPrivateIpAddressCount = aws.Int32(int32(req.IPCount))
	}
	if req.PrefixCount > 0 {
		in.Ipv4PrefixCount = aws.Int32(int32(req.PrefixCount))
	}
	out, err := call(ctx, d.observe, "AssignPrivateIpAddresses", d.c.AssignPrivateIpAddresses, in)
	if err != nil {
		return nil, err
	}
	res := &providers.Assigned{}
	for _, a := range out.AssignedPrivateIpAddresses {
		ip, err := netip.ParseAddr(aws.ToString(a.PrivateIpAddress))
		if err != nil {
			return nil, fmt.Errorf("EC2 assigned %q: %w", aws.ToString(a.PrivateIpAddress), err)
		}
		res.IPs = append(res.IPs, ip)
	}
	for _, p := range out.AssignedIpv4Prefixes {
		pfx, err := netip.ParsePrefix(aws.ToString(p.Ipv4Prefix))
		if err != nil {
			return nil, fmt.Errorf("EC2 assigned the prefix %q: %w", aws.ToString(p.Ipv4Prefix), err)
		}
		res.Prefixes = append(res.Prefixes, pfx)
	}
	d.assigned.put(req.ClientToken, req.InterfaceID, res)
	return res, nil
}

// Unassign implements providers.IPAM. EC2 refuses the whole call when one address is no longer
// assigned; then it is repeated with those still there. A gone interface took its addresses.
func (d *IPAM) Unassign(ctx context.Context, req providers.UnassignRequest) error {
	err := d.unassign(ctx, req.InterfaceID, req.IPs, req.Prefixes)
	if err == nil || errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	if codeOf(err) != "InvalidParameterValue" {
		return err
	}
	ni, derr := d.describeOne(ctx, req.InterfaceID)
	if errors.Is(derr, providers.ErrNotFound) {
		return nil
	}
	if derr != nil {
		return errors.Join(err, derr)
	}
	have := map[string]bool{}
	for _, a := range ni.PrivateIpAddresses {
		have[aws.ToString(a.PrivateIpAddress)] = true
	}
	for _, p := range ni.Ipv4Prefixes {
		have[aws.ToString(p.Ipv4Prefix)] = true
	}
	var ips []netip.Addr
	for _, ip := range req.IPs {
		if have[ip.String()] {
			ips = append(ips, ip)
		}
	}
	var pfx []netip.Prefix
	for _, p := range req.Prefixes {
		if have[p.String()] {
			pfx = append(pfx, p)
		}
	}
	if len(ips)+len(pfx) == 0 {
		return nil
	}
	return d.unassign(ctx, req.InterfaceID, ips, pfx)
}

func (d *IPAM) unassign(ctx context.Context, id string, ips []netip.Addr, pfx []netip.Prefix) error {
	if len(ips)+len(pfx) == 0 {
		return nil
	}
	_, err := call(ctx, d.observe, "UnassignPrivateIpAddresses", d.c.UnassignPrivateIpAddresses, &ec2.UnassignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(id), PrivateIpAddresses: strs(ips), Ipv4Prefixes: strs(pfx),
	})
	return err
}

func strs[T interface{ String() string }](xs []T) []string {
	if len(xs) == 0 {
		return nil
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}
