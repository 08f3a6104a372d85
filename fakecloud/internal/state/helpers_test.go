package state

import (
	"errors"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func admin() Call { return Call{Principal: Principal{Admin: true}, Now: time.Now()} }

func as(inst string) Call { return Call{Principal: Principal{InstanceID: inst}, Now: time.Now()} }

func openT(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// world is a VPC with one subnet.
type world struct {
	s      *Store
	vpc    string
	subnet string
}

func newWorld(t *testing.T, s *Store, vpcCIDR, subnetCIDR string) world {
	t.Helper()
	v, err := s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: vpcCIDR})
	if err != nil {
		t.Fatalf("create vpc: %v", err)
	}
	sn, err := s.CreateSubnet(admin(), &api.CreateSubnetRequest{VpcID: v.Vpc.VpcID, CidrBlock: subnetCIDR})
	if err != nil {
		t.Fatalf("create subnet: %v", err)
	}
	return world{s: s, vpc: v.Vpc.VpcID, subnet: sn.Subnet.SubnetID}
}

func (w world) run(t *testing.T, typ string, n int) []api.Instance {
	t.Helper()
	out, err := w.s.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: w.subnet, InstanceType: typ, Count: n})
	if err != nil {
		t.Fatalf("run instances: %v", err)
	}
	return out.Instances
}

func (w world) eni(t *testing.T) api.NetworkInterface {
	t.Helper()
	out, err := w.s.CreateNetworkInterface(admin(), &api.CreateNetworkInterfaceRequest{SubnetID: w.subnet})
	if err != nil {
		t.Fatalf("create eni: %v", err)
	}
	return out.NetworkInterface
}

func wantCode(t *testing.T, err error, sentinel *api.Error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got error %v, want code %s", err, sentinel.Code)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func primaryENI(inst api.Instance) string { return inst.NetworkInterfaces[0].NetworkInterfaceID }
