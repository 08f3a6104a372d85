package aws

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
)

// TestIPAMLifecycle drives ipamd's driver through a node's life against fakecloud's EC2
// endpoint with the instance's own credentials: limits from DescribeInstanceTypes, an interface
// created with addresses and a prefix, a repeat with the same token answering the same
// interface, assign and unassign of addresses and prefixes, delete.
func TestIPAMLifecycle(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large", 1)
	d := w.ipam(t, 0)
	id := w.instances[0].InstanceID
	inst, err := d.DescribeInstance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inst.MaxInterfaces != 3 || inst.IPv4PerInterface != 10 || inst.Type != "m5.large" {
		t.Fatalf("limits %d x %d of %s; want m5.large's 3 x 10", inst.MaxInterfaces, inst.IPv4PerInterface, inst.Type)
	}
	if len(inst.Interfaces) != 1 || inst.Interfaces[0].DeviceIndex != 0 || !inst.Interfaces[0].Ready || inst.Interfaces[0].Managed {
		t.Fatalf("interfaces %+v; want the primary, attached, not ipamd's", inst.Interfaces)
	}
	if inst.SubnetID != w.subnet.SubnetID || len(inst.VPCCIDRs) != 1 || inst.VPCCIDRs[0] != netip.MustParsePrefix("10.0.0.0/16") {
		t.Fatalf("subnet %s, VPC %v", inst.SubnetID, inst.VPCCIDRs)
	}
	req := providers.CreateInterfaceRequest{InstanceID: id, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups,
		DeviceIndex: 1, IPCount: 2, PrefixCount: 1, ClientToken: providers.NewToken()}
	ni, err := d.CreateInterface(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ni.Managed || !ni.Ready || ni.DeviceIndex != 1 || len(ni.IPs) != 2 || len(ni.Prefixes) != 1 || !ni.SubnetCIDR.Contains(ni.PrimaryIP) {
		t.Fatalf("created %+v; want a managed, attached interface at 1 with 2 addresses and a prefix", ni)
	}
	again, err := d.CreateInterface(ctx, req)
	if err != nil {
		t.Fatalf("a repeat with the same token: %v", err)
	}
	if again.ID != ni.ID {
		t.Fatalf("a repeat with the same token created %s besides %s", again.ID, ni.ID)
	}
	// Deleted with the instance: DeleteOnTermination was set.
	out, err := ec2.New(ec2.Options{Region: testRegion, BaseEndpoint: aws.String(w.URL), Credentials: w.config(servertest.AWSKey, "test").AWS.Credentials}).
		DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{ni.ID}})
	if err != nil || len(out.NetworkInterfaces) != 1 || out.NetworkInterfaces[0].Attachment == nil || !aws.ToBool(out.NetworkInterfaces[0].Attachment.DeleteOnTermination) {
		t.Fatalf("the interface is not deleted on termination: %+v %v", out, err)
	}
	got, err := d.Assign(ctx, providers.AssignRequest{InterfaceID: ni.ID, IPCount: 3, PrefixCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.IPs) != 3 || len(got.Prefixes) != 2 {
		t.Fatalf("assigned %v; want 3 addresses and 2 prefixes", got)
	}
	// Giving back addresses among which one is gone already still gives back the others.
	if err := d.Unassign(ctx, providers.UnassignRequest{InterfaceID: ni.ID, IPs: got.IPs[:1]}); err != nil {
		t.Fatal(err)
	}
	if err := d.Unassign(ctx, providers.UnassignRequest{InterfaceID: ni.ID, IPs: got.IPs, Prefixes: got.Prefixes[:1]}); err != nil {
		t.Fatalf("unassign with an address gone already: %v", err)
	}
	inst, err = d.DescribeInstance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.Interfaces) != 2 || len(inst.Interfaces[1].IPs) != 2 || len(inst.Interfaces[1].Prefixes) != 2 {
		t.Fatalf("after unassigning: %+v; want the created interface's 2 first addresses and 2 prefixes", inst.Interfaces)
	}
	if _, err := d.Assign(ctx, providers.AssignRequest{InterfaceID: ni.ID, IPCount: 100}); !errors.Is(err, providers.ErrAddressLimit) {
		t.Fatalf("assign beyond the type's limit: %v; want ErrAddressLimit", err)
	}
	if err := d.DeleteInterface(ctx, ni.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteInterface(ctx, ni.ID); err != nil {
		t.Fatalf("deleting a gone interface: %v", err)
	}
	if err := d.Unassign(ctx, providers.UnassignRequest{InterfaceID: ni.ID, IPs: got.IPs}); err != nil {
		t.Fatalf("unassigning from a gone interface: %v", err)
	}
	if _, err := d.DescribeInstance(ctx, "i-00000000000000000"); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("describe of an unknown instance: %v; want ErrNotFound", err)
	}
}

// TestAttachConflictLeavesNothing: an attach at a device index taken is a conflict (the
// caller's record is behind) and deletes the interface it created.
func TestAttachConflictLeavesNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "t3.small", 1)
	d := w.ipam(t, 0)
	id := w.instances[0].InstanceID
	_, err := d.CreateInterface(ctx, providers.CreateInterfaceRequest{InstanceID: id, SubnetID: w.subnet.SubnetID, DeviceIndex: 0, IPCount: 1})
	if !errors.Is(err, providers.ErrConflict) {
		t.Fatalf("attach at the primary's index: %v; want ErrConflict", err)
	}
	inst, err := d.DescribeInstance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.Interfaces) != 1 || len(inst.Detached) != 0 {
		t.Fatalf("after the refused attach: %d attached, %d detached; want the primary only", len(inst.Interfaces), len(inst.Detached))
	}
}

// TestDescribePages: the interfaces ipamd left unattached are found across pages (NextToken).
func TestDescribePages(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "m5.large", 1)
	id := w.instances[0].InstanceID
	for range 7 {
		if _, err := w.Admin.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{
			SubnetID: w.subnet.SubnetID, Tags: []api.Tag{{Key: TagNode, Value: id}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	d := w.ipam(t, 0)
	old := pageSize
	pageSize = 5
	t.Cleanup(func() { pageSize = old })
	inst, err := d.DescribeInstance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.Detached) != 7 {
		t.Fatalf("%d detached interfaces; want the 7 over two pages", len(inst.Detached))
	}
	for _, ni := range inst.Detached {
		if !ni.Managed || ni.Ready || ni.DeviceIndex != -1 {
			t.Fatalf("detached %+v; want managed, not ready, no device index", ni)
		}
	}
}
