package state

import (
	"sync/atomic"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// BenchmarkAssignUnassign measures the store alone (no HTTP) on a VPC of 1,000 instances with
// 3 interfaces each: one op is an assign of one address followed by its unassign.
func BenchmarkAssignUnassign(b *testing.B) {
	s, err := Open(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	v, _ := s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "10.0.0.0/16"})
	sn, _ := s.CreateSubnet(admin(), &api.CreateSubnetRequest{VpcID: v.Vpc.VpcID, CidrBlock: "10.0.0.0/16"})
	var enis []string
	for range 10 {
		out, err := s.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: sn.Subnet.SubnetID, InstanceType: "m5.large", Count: 100})
		if err != nil {
			b.Fatal(err)
		}
		for _, inst := range out.Instances {
			enis = append(enis, primaryENI(inst))
			for idx := 1; idx <= 2; idx++ {
				e, err := s.CreateNetworkInterface(admin(), &api.CreateNetworkInterfaceRequest{SubnetID: sn.Subnet.SubnetID})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.AttachNetworkInterface(admin(), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: e.NetworkInterface.NetworkInterfaceID, InstanceID: inst.InstanceID, DeviceIndex: idx}); err != nil {
					b.Fatal(err)
				}
				enis = append(enis, e.NetworkInterface.NetworkInterfaceID)
			}
		}
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			eni := enis[int(next.Add(1))%len(enis)]
			r, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.UnassignPrivateIPAddresses(admin(), &api.UnassignPrivateIPAddressesRequest{NetworkInterfaceID: eni, PrivateIPAddresses: r.AssignedPrivateIPAddresses}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
