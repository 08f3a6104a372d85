package awsapi_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// TestEC2Interfaces walks an interface's life through the SDK, checking each step through
// fakecloud's JSON API as well: both protocols act on the same state.
func TestEC2Interfaces(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 2)
	ctx := context.Background()
	c := w.admin()
	inst := w.instances[0]

	created := must(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(w.subnet.SubnetID), Description: aws.String("pods"), SecondaryPrivateIpAddressCount: aws.Int32(2),
		Groups: []string{"sg-1"}, ClientToken: aws.String("create-1"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("cluster"), Value: aws.String("blue")}}}},
	})).of(t)
	eni := created.NetworkInterface
	id := aws.ToString(eni.NetworkInterfaceId)
	if aws.ToString(eni.SubnetId) != w.subnet.SubnetID || eni.Status != types.NetworkInterfaceStatusAvailable || len(eni.PrivateIpAddresses) != 3 ||
		aws.ToString(eni.Description) != "pods" || len(eni.TagSet) != 1 || aws.ToString(created.ClientToken) != "create-1" {
		t.Fatalf("created %+v", eni)
	}
	again := must(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(w.subnet.SubnetID), Description: aws.String("pods"), SecondaryPrivateIpAddressCount: aws.Int32(2),
		Groups: []string{"sg-1"}, ClientToken: aws.String("create-1"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("cluster"), Value: aws.String("blue")}}}},
	})).of(t)
	if aws.ToString(again.NetworkInterface.NetworkInterfaceId) != id {
		t.Fatalf("the same client token created another interface: %s then %s", id, aws.ToString(again.NetworkInterface.NetworkInterfaceId))
	}
	json := w.jsonENI(t, id)
	if json.Description != "pods" || len(json.PrivateIPAddresses) != 3 || json.PrivateIPAddress != aws.ToString(eni.PrivateIpAddress) ||
		!cmp.Equal(json.Tags, []api.Tag{{Key: "cluster", Value: "blue"}}) || !cmp.Equal(json.Groups, []string{"sg-1"}) {
		t.Fatalf("the JSON API sees %+v", json)
	}

	att := must(c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(id), InstanceId: aws.String(inst.InstanceID), DeviceIndex: aws.Int32(1),
	})).of(t)
	if json := w.jsonENI(t, id); json.Attachment == nil || json.Attachment.AttachmentID != aws.ToString(att.AttachmentId) || json.Attachment.InstanceID != inst.InstanceID {
		t.Fatalf("after attach the JSON API sees %+v", json.Attachment)
	}

	assigned := must(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(2),
	})).of(t)
	if aws.ToString(assigned.NetworkInterfaceId) != id || len(assigned.AssignedPrivateIpAddresses) != 2 {
		t.Fatalf("assigned %+v", assigned)
	}
	explicit := must(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(id), PrivateIpAddresses: []string{"10.0.0.200"}, Ipv4Prefixes: []string{"10.0.0.208/28"},
	})).of(t)
	prefixes := must(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(1)})).of(t)
	if aws.ToString(explicit.AssignedPrivateIpAddresses[0].PrivateIpAddress) != "10.0.0.200" || aws.ToString(explicit.AssignedIpv4Prefixes[0].Ipv4Prefix) != "10.0.0.208/28" ||
		len(prefixes.AssignedIpv4Prefixes) != 1 {
		t.Fatalf("explicit %+v, by count %+v", explicit, prefixes)
	}
	json = w.jsonENI(t, id)
	if len(json.PrivateIPAddresses) != 6 || len(json.Ipv4Prefixes) != 2 {
		t.Fatalf("after assigning the JSON API sees %d addresses and %d prefixes; want 6 and 2", len(json.PrivateIPAddresses), len(json.Ipv4Prefixes))
	}
	must(c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(id), PrivateIpAddresses: []string{"10.0.0.200"}, Ipv4Prefixes: []string{"10.0.0.208/28"},
	})).of(t)

	got := must(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})).of(t).NetworkInterfaces
	if len(got) != 1 || len(got[0].PrivateIpAddresses) != 5 || len(got[0].Ipv4Prefixes) != 1 || got[0].Attachment == nil ||
		aws.ToInt32(got[0].Attachment.DeviceIndex) != 1 || aws.ToString(got[0].Attachment.InstanceId) != inst.InstanceID ||
		got[0].Status != types.NetworkInterfaceStatusInUse || !aws.ToBool(got[0].SourceDestCheck) || aws.ToString(got[0].OwnerId) == "" {
		t.Fatalf("described %+v", got)
	}
	if d := cmp.Diff(w.jsonENI(t, id), fromSDK(got[0])); d != "" {
		t.Fatalf("the SDK and the JSON API disagree about the interface (-json +sdk):\n%s", d)
	}

	must(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(id), SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}})).of(t)
	must(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(id), Description: &types.AttributeValue{Value: aws.String("pods of node 1")}})).of(t)
	must(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(id), Attachment: &types.NetworkInterfaceAttachmentChanges{
		AttachmentId: att.AttachmentId, DeleteOnTermination: aws.Bool(true)}})).of(t)
	must(c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(id), Groups: []string{"sg-2", "sg-3"}})).of(t)
	json = w.jsonENI(t, id)
	if json.SourceDestCheck || json.Description != "pods of node 1" || !json.Attachment.DeleteOnTermination || !cmp.Equal(json.Groups, []string{"sg-2", "sg-3"}) {
		t.Fatalf("after modifying the JSON API sees %+v", json)
	}

	must(c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id, inst.InstanceID}, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("net")}, {Key: aws.String("empty")}}})).of(t)
	if json := w.jsonENI(t, id); !cmp.Equal(json.Tags, []api.Tag{{Key: "cluster", Value: "blue"}, {Key: "empty"}, {Key: "team", Value: "net"}}) {
		t.Fatalf("after CreateTags: %+v", json.Tags)
	}
	must(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("cluster")}, {Key: aws.String("team"), Value: aws.String("other")}}})).of(t)
	if json := w.jsonENI(t, id); !cmp.Equal(json.Tags, []api.Tag{{Key: "empty"}, {Key: "team", Value: "net"}}) {
		t.Fatalf("after DeleteTags (team has another value, so it stays): %+v", json.Tags)
	}

	must(c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId})).of(t)
	must(c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})).of(t)
	_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	wantAPIError(t, err, "InvalidNetworkInterfaceID.NotFound", 400)
	if _, err := w.Admin.DescribeNetworkInterfaces(ctx, &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{id}}); !api.IsNotFound(err) {
		t.Fatalf("the JSON API still finds the deleted interface: %v", err)
	}

	// And the other way: what the JSON API makes, the SDK sees.
	made, err := w.Admin.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: w.subnet.SubnetID, Tags: []api.Tag{{Key: "via", Value: "json"}}})
	if err != nil {
		t.Fatal(err)
	}
	seen := must(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("tag:via"), Values: []string{"json"}}}})).of(t)
	if len(seen.NetworkInterfaces) != 1 || aws.ToString(seen.NetworkInterfaces[0].NetworkInterfaceId) != made.NetworkInterface.NetworkInterfaceID {
		t.Fatalf("the SDK sees %+v; want the interface the JSON API made", seen.NetworkInterfaces)
	}
}

// TestEC2DescribeFilters: the filters a node agent and the VPC CNI use.
func TestEC2DescribeFilters(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 2)
	ctx := context.Background()
	c := w.admin()
	a, b := w.instances[0], w.instances[1]
	extra := must(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("node.k8s.amazonaws.com/instance_id"), Value: aws.String(a.InstanceID)}}}}})).of(t)
	extraID := aws.ToString(extra.NetworkInterface.NetworkInterfaceId)
	ids := func(f ...types.Filter) []string {
		out := must(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: f})).of(t)
		var s []string
		for _, n := range out.NetworkInterfaces {
			s = append(s, aws.ToString(n.NetworkInterfaceId))
		}
		slices.Sort(s)
		return s
	}
	filter := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	primaryA, primaryB := a.NetworkInterfaces[0].NetworkInterfaceID, b.NetworkInterfaces[0].NetworkInterfaceID
	cases := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"attachment.instance-id", []types.Filter{filter("attachment.instance-id", a.InstanceID)}, []string{primaryA}},
		{"two instances", []types.Filter{filter("attachment.instance-id", a.InstanceID, b.InstanceID)}, sorted(primaryA, primaryB)},
		{"subnet-id", []types.Filter{filter("subnet-id", w.subnet.SubnetID)}, sorted(primaryA, primaryB, extraID)},
		{"tag", []types.Filter{filter("tag:node.k8s.amazonaws.com/instance_id", a.InstanceID)}, []string{extraID}},
		{"tag-key", []types.Filter{filter("tag-key", "node.k8s.amazonaws.com/instance_id")}, []string{extraID}},
		{"network-interface-id", []types.Filter{filter("network-interface-id", extraID, primaryB)}, sorted(extraID, primaryB)},
		{"status and subnet (ANDed)", []types.Filter{filter("status", "available"), filter("subnet-id", w.subnet.SubnetID)}, []string{extraID}},
		{"nothing matches", []types.Filter{filter("subnet-id", "subnet-00000000000000000")}, nil},
	}
	for _, tc := range cases {
		if got := ids(tc.filters...); !cmp.Equal(got, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
		}
	}
	_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("no-such-filter", "x")}})
	wantAPIError(t, err, "InvalidParameterValue", 400)

	subnets := must(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{w.subnet.SubnetID}})).of(t).Subnets
	if len(subnets) != 1 || aws.ToString(subnets[0].CidrBlock) != "10.0.0.0/24" || aws.ToString(subnets[0].VpcId) != w.subnet.VpcID ||
		aws.ToString(subnets[0].AvailabilityZone) != w.subnet.AvailabilityZone || subnets[0].State != types.SubnetStateAvailable ||
		aws.ToInt32(subnets[0].AvailableIpAddressCount) != int32(w.jsonSubnet(t).AvailableIPAddressCount) {
		t.Fatalf("subnets %+v", subnets)
	}
	_, err = c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-00000000000000000"}})
	wantAPIError(t, err, "InvalidSubnetID.NotFound", 400)

	insts := must(c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{a.InstanceID}})).of(t).Reservations
	if len(insts) != 1 || len(insts[0].Instances) != 1 {
		t.Fatalf("reservations %+v", insts)
	}
	in := insts[0].Instances[0]
	if aws.ToString(in.InstanceId) != a.InstanceID || in.InstanceType != types.InstanceTypeM5Large || in.State.Name != types.InstanceStateNameRunning ||
		aws.ToInt32(in.State.Code) != 16 || aws.ToString(in.PrivateIpAddress) != a.PrivateIPAddress || aws.ToString(in.SubnetId) != w.subnet.SubnetID ||
		aws.ToString(in.Placement.AvailabilityZone) != a.AvailabilityZone || len(in.NetworkInterfaces) != 1 || in.LaunchTime == nil ||
		aws.ToString(in.NetworkInterfaces[0].MacAddress) != a.NetworkInterfaces[0].MacAddress || aws.ToInt32(in.NetworkInterfaces[0].Attachment.DeviceIndex) != 0 {
		t.Fatalf("instance %+v", in)
	}

	typesOut := must(c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceTypeM5Large, types.InstanceTypeT3Nano}})).of(t)
	limits := map[types.InstanceType][2]int32{}
	for _, it := range typesOut.InstanceTypes {
		limits[it.InstanceType] = [2]int32{aws.ToInt32(it.NetworkInfo.MaximumNetworkInterfaces), aws.ToInt32(it.NetworkInfo.Ipv4AddressesPerInterface)}
		if it.Hypervisor != types.InstanceTypeHypervisorNitro || len(it.NetworkInfo.NetworkCards) != 1 {
			t.Errorf("%s: hypervisor %s, %d network cards", it.InstanceType, it.Hypervisor, len(it.NetworkInfo.NetworkCards))
		}
	}
	if want := map[types.InstanceType][2]int32{types.InstanceTypeM5Large: {3, 10}, types.InstanceTypeT3Nano: {2, 2}}; !cmp.Equal(limits, want) {
		t.Fatalf("limits %v; want %v", limits, want)
	}
	byFilter := must(c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{Filters: []types.Filter{filter("instance-type", "c5.large")}})).of(t)
	if len(byFilter.InstanceTypes) != 1 || byFilter.InstanceTypes[0].InstanceType != types.InstanceTypeC5Large {
		t.Fatalf("by filter %+v", byFilter.InstanceTypes)
	}
}

// TestEC2Pagination pages every paginated describe with the SDK's paginators, five at a time.
func TestEC2Pagination(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 7)
	ctx := context.Background()
	c := w.admin()
	for i := range 6 {
		if _, err := w.Admin.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: w.subnet.VpcID, CidrBlock: "10.0." + string(rune('1'+i)) + ".0/24"}); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(next func() (int, bool, error)) (items, n int) {
		for {
			got, more, err := next()
			if err != nil {
				t.Fatal(err)
			}
			if got > 5 {
				t.Fatalf("a page of %d; MaxResults is 5", got)
			}
			items, n = items+got, n+1
			if !more {
				return items, n
			}
		}
	}
	check := func(what string, items, n, wantItems int) {
		t.Helper()
		if items != wantItems || n != (wantItems+4)/5 {
			t.Errorf("%s: %d items in %d pages; want %d in %d", what, items, n, wantItems, (wantItems+4)/5)
		}
	}
	inst := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	items, n := pages(func() (int, bool, error) {
		p, err := inst.NextPage(ctx)
		if err != nil {
			return 0, false, err
		}
		return len(p.Reservations), inst.HasMorePages(), nil
	})
	check("DescribeInstances", items, n, 7)
	enis := ec2.NewDescribeNetworkInterfacesPaginator(c, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5)})
	items, n = pages(func() (int, bool, error) {
		p, err := enis.NextPage(ctx)
		if err != nil {
			return 0, false, err
		}
		return len(p.NetworkInterfaces), enis.HasMorePages(), nil
	})
	check("DescribeNetworkInterfaces", items, n, 7)
	subnets := ec2.NewDescribeSubnetsPaginator(c, &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(5)})
	items, n = pages(func() (int, bool, error) {
		p, err := subnets.NextPage(ctx)
		if err != nil {
			return 0, false, err
		}
		return len(p.Subnets), subnets.HasMorePages(), nil
	})
	check("DescribeSubnets", items, n, 7)
	all := must(w.Admin.DescribeInstanceTypes(ctx, &api.DescribeInstanceTypesRequest{})).of(t)
	typ := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	items, n = pages(func() (int, bool, error) {
		p, err := typ.NextPage(ctx)
		if err != nil {
			return 0, false, err
		}
		return len(p.InstanceTypes), typ.HasMorePages(), nil
	})
	check("DescribeInstanceTypes", items, n, len(all.InstanceTypes))

	_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(4)})
	wantAPIError(t, err, "InvalidParameterValue", 400)
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(101)})
	wantAPIError(t, err, "InvalidParameterValue", 400)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), InstanceIds: []string{w.instances[0].InstanceID}})
	wantAPIError(t, err, "InvalidParameterCombination", 400)
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// jsonENI is an interface as fakecloud's JSON API shows it.
func (w *world) jsonENI(t *testing.T, id string) api.NetworkInterface {
	t.Helper()
	out, err := w.Admin.DescribeNetworkInterfaces(context.Background(), &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return out.NetworkInterfaces[0]
}

func (w *world) jsonSubnet(t *testing.T) api.Subnet {
	t.Helper()
	out, err := w.Admin.DescribeSubnets(context.Background(), &api.DescribeSubnetsRequest{SubnetIDs: []string{w.subnet.SubnetID}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Subnets[0]
}

// fromSDK converts the SDK's view of an interface into fakecloud's, to compare the two.
func fromSDK(n types.NetworkInterface) api.NetworkInterface {
	out := api.NetworkInterface{
		NetworkInterfaceID: aws.ToString(n.NetworkInterfaceId), SubnetID: aws.ToString(n.SubnetId), VpcID: aws.ToString(n.VpcId),
		AvailabilityZone: aws.ToString(n.AvailabilityZone), Description: aws.ToString(n.Description), MacAddress: aws.ToString(n.MacAddress),
		Status: string(n.Status), PrivateIPAddress: aws.ToString(n.PrivateIpAddress), SourceDestCheck: aws.ToBool(n.SourceDestCheck),
		PrivateIPAddresses: []api.PrivateIPAddress{},
	}
	for _, a := range n.PrivateIpAddresses {
		out.PrivateIPAddresses = append(out.PrivateIPAddresses, api.PrivateIPAddress{PrivateIPAddress: aws.ToString(a.PrivateIpAddress), Primary: aws.ToBool(a.Primary)})
	}
	for _, p := range n.Ipv4Prefixes {
		out.Ipv4Prefixes = append(out.Ipv4Prefixes, api.Ipv4Prefix{Ipv4Prefix: aws.ToString(p.Ipv4Prefix)})
	}
	for _, g := range n.Groups {
		out.Groups = append(out.Groups, aws.ToString(g.GroupId))
	}
	for _, tg := range n.TagSet {
		out.Tags = append(out.Tags, api.Tag{Key: aws.ToString(tg.Key), Value: aws.ToString(tg.Value)})
	}
	if a := n.Attachment; a != nil {
		out.Attachment = &api.Attachment{AttachmentID: aws.ToString(a.AttachmentId), InstanceID: aws.ToString(a.InstanceId),
			DeviceIndex: int(aws.ToInt32(a.DeviceIndex)), Status: string(a.Status), DeleteOnTermination: aws.ToBool(a.DeleteOnTermination)}
	}
	return out
}
