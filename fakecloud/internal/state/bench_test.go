package state

import (
	"fmt"
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

// BenchmarkReplaceTargets measures the store alone on the worst case of a Service's rollout: one
// op deregisters all 1,000 targets of a group (no deregistration delay) and registers 1,000 others,
// two transactions, as the load-balancer controller does.
func BenchmarkReplaceTargets(b *testing.B) {
	s, err := Open(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	v, _ := s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "10.0.0.0/16"})
	tg, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "bench", Protocol: "TCP", Port: 80, VpcID: v.Vpc.VpcID})
	if err != nil {
		b.Fatal(err)
	}
	id := tg.TargetGroup.TargetGroupID
	if _, err := s.ModifyTargetGroupAttributes(admin(), &api.ModifyTargetGroupAttributesRequest{TargetGroupID: id, Attributes: []api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: "0"}}}); err != nil {
		b.Fatal(err)
	}
	var sets [2][]api.Target
	for i := range 1000 {
		sets[0] = append(sets[0], api.Target{IP: fmt.Sprintf("10.0.%d.%d", 16+i/250, 1+i%250), Port: 80})
		sets[1] = append(sets[1], api.Target{IP: fmt.Sprintf("10.0.%d.%d", 32+i/250, 1+i%250), Port: 80})
	}
	if _, err := s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: id, Targets: sets[0]}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := s.DeregisterTargets(admin(), &api.DeregisterTargetsRequest{TargetGroupID: id, Targets: sets[i%2]}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: id, Targets: sets[(i+1)%2]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
