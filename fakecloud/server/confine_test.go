package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// Finding 2 of the hardening issue: an instance token could create interfaces in any VPC's
// subnet, and as many as it liked, so one node could squat or exhaust another VPC's addresses.
// An instance is now confined to its own VPC and to a quota of interfaces it created.
func TestInstanceTokenConfinedToItsVPC(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	ctx := context.Background()
	other := otherVPC(t, f)
	mine := f.Client(f.instances[0].Token)
	before := f.snapshot(t)
	_, err := mine.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: other.SubnetID})
	if !errors.Is(err, api.ErrUnauthorizedOperation) {
		t.Errorf("CreateNetworkInterface in another VPC's subnet: %v; want UnauthorizedOperation", err)
	}
	mustUnchanged(t, before, f.snapshot(t))
	if _, err := mine.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: f.subnet.SubnetID}); err != nil {
		t.Errorf("CreateNetworkInterface in its own subnet: %v", err)
	}
	if _, err := f.Admin.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: other.SubnetID}); err != nil {
		t.Errorf("the admin creating an interface in any VPC: %v", err)
	}
}

func TestInstanceInterfaceQuota(t *testing.T) {
	const quota = 3
	f := newFixture(t, servertest.Options{InterfacesPerInstance: quota})
	ctx := context.Background()
	mine := f.Client(f.instances[0].Token)
	var ids []string
	for range quota {
		r, err := mine.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: f.subnet.SubnetID})
		if err != nil {
			t.Fatalf("interface %d of %d: %v", len(ids)+1, quota, err)
		}
		ids = append(ids, r.NetworkInterface.NetworkInterfaceID)
	}
	before := f.snapshot(t)
	_, err := mine.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: f.subnet.SubnetID})
	if !errors.Is(err, api.ErrNetworkInterfaceLimitExceeded) {
		t.Fatalf("interface %d with a quota of %d: %v; want NetworkInterfaceLimitExceeded", quota+1, quota, err)
	}
	mustUnchanged(t, before, f.snapshot(t))
	// Attached interfaces the instance created still count: attaching frees no quota.
	if _, err := mine.AttachNetworkInterface(ctx, &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: ids[0], InstanceID: f.instances[0].InstanceID, DeviceIndex: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: f.subnet.SubnetID}); !errors.Is(err, api.ErrNetworkInterfaceLimitExceeded) {
		t.Errorf("after attaching one: %v; want NetworkInterfaceLimitExceeded", err)
	}
	// The quota is per instance, and deleting one gives its place back.
	if _, err := f.Client(f.instances[1].Token).CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: f.subnet.SubnetID}); err != nil {
		t.Errorf("another instance: %v", err)
	}
	if _, err := f.Admin.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: f.subnet.SubnetID}); err != nil {
		t.Errorf("the admin: %v", err)
	}
	if _, err := mine.DeleteNetworkInterface(ctx, &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: ids[1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: f.subnet.SubnetID}); err != nil {
		t.Errorf("after deleting one: %v", err)
	}
}

// otherVPC creates a second VPC with a subnet, through the admin.
func otherVPC(t *testing.T, f *fixture) api.Subnet {
	t.Helper()
	ctx := context.Background()
	vpc, err := f.Admin.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: "10.1.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := f.Admin.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: vpc.Vpc.VpcID, CidrBlock: "10.1.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	return sn.Subnet
}
