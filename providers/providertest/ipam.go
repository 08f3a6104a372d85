package providertest

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/providers"
)

// The suite's instance type and its limits: t3.small, 3 interfaces of 4 IPv4 addresses each (the
// primary address included; a /28 prefix takes one slot), as in EC2.
const (
	instanceType     = "t3.small"
	maxInterfaces    = 3
	ipv4PerInterface = 4
	vpcCIDR          = "10.0.0.0/16"
	subnetCIDR       = "10.0.0.0/24"
)

// RunIPAM runs the IPAM contract: every subtest gets a fresh cloud and driver from newEnv.
func RunIPAM(t *testing.T, newEnv func(t *testing.T) IPAMEnv) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *ipamScene)
	}{
		{"DescribeInstanceAndLimits", ipamDescribe},
		{"CreateAndDeleteInterface", ipamCreateDelete},
		{"CreateInterfaceIdempotent", ipamCreateIdempotent},
		{"AssignAndUnassignIPs", ipamAssignIPs},
		{"AssignIdempotent", ipamAssignIdempotent},
		{"AssignAndUnassignPrefixes", ipamPrefixes},
		{"AddressLimit", ipamAddressLimit},
		{"InterfaceLimit", ipamInterfaceLimit},
		{"DeviceIndexTakenIsConflict", ipamConflict},
		{"DetachedInterfacesListed", ipamDetached},
		{"NotFoundAndGone", ipamNotFound},
		{"ThrottleIsRetryable", ipamThrottled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			sn, insts := env.Cloud.Launch(t, vpcCIDR, subnetCIDR, instanceType, 1)
			node := Node{Instance: insts[0], Subnet: sn}
			tc.run(t, &ipamScene{env: env, node: node, d: env.New(t, node)})
		})
	}
}

// ipamScene is one subtest's cloud, instance and driver.
type ipamScene struct {
	env  IPAMEnv
	node Node
	d    providers.IPAM
}

func (s *ipamScene) id() string { return s.node.Instance.InstanceID }

func (s *ipamScene) describe(t *testing.T) *providers.Instance {
	t.Helper()
	inst, err := s.d.DescribeInstance(bg(), s.id())
	if err != nil {
		t.Fatalf("describe instance %s: %v", s.id(), err)
	}
	return inst
}

// iface returns the attached interface at index from a fresh describe.
func (s *ipamScene) iface(t *testing.T, index int) providers.Interface {
	t.Helper()
	inst := s.describe(t)
	for _, ni := range inst.Interfaces {
		if ni.DeviceIndex == index {
			return ni
		}
	}
	t.Fatalf("no interface at device index %d: %+v", index, inst.Interfaces)
	return providers.Interface{}
}

func (s *ipamScene) create(t *testing.T, index, ips, prefixes int) *providers.Interface {
	t.Helper()
	ni, err := s.d.CreateInterface(bg(), providers.CreateInterfaceRequest{
		InstanceID: s.id(), SubnetID: s.node.Subnet.SubnetID, DeviceIndex: index, IPCount: ips, PrefixCount: prefixes,
		ClientToken: providers.NewToken(),
	})
	if err != nil {
		t.Fatalf("create an interface at device index %d: %v", index, err)
	}
	return ni
}

func ipamDescribe(t *testing.T, s *ipamScene) {
	inst := s.describe(t)
	if inst.ID != s.id() || inst.Type != instanceType || inst.SubnetID != s.node.Subnet.SubnetID {
		t.Errorf("instance %s of type %q in %s; want %s, %s, %s", inst.ID, inst.Type, inst.SubnetID, s.id(), instanceType, s.node.Subnet.SubnetID)
	}
	if inst.MaxInterfaces != maxInterfaces || inst.IPv4PerInterface != ipv4PerInterface {
		t.Errorf("limits %d interfaces of %d addresses; want %d of %d", inst.MaxInterfaces, inst.IPv4PerInterface, maxInterfaces, ipv4PerInterface)
	}
	if !slices.Contains(inst.VPCCIDRs, netip.MustParsePrefix(vpcCIDR)) {
		t.Errorf("VPC CIDRs %v; want %s among them", inst.VPCCIDRs, vpcCIDR)
	}
	if len(inst.Interfaces) != 1 || len(inst.Detached) != 0 {
		t.Fatalf("%d interfaces, %d detached; want the primary only", len(inst.Interfaces), len(inst.Detached))
	}
	eth0 := inst.Interfaces[0]
	sub := netip.MustParsePrefix(subnetCIDR)
	if eth0.ID == "" || eth0.MAC == "" || eth0.DeviceIndex != 0 || !eth0.Ready || eth0.Managed {
		t.Errorf("primary interface %+v: want an ID, a MAC, device index 0, ready, not managed", eth0)
	}
	if eth0.SubnetID != s.node.Subnet.SubnetID || eth0.SubnetCIDR != sub || !sub.Contains(eth0.PrimaryIP) {
		t.Errorf("primary interface in %s (%s) with %s; want %s (%s) and an address in it", eth0.SubnetID, eth0.SubnetCIDR, eth0.PrimaryIP, s.node.Subnet.SubnetID, sub)
	}
	if len(eth0.IPs)+len(eth0.Prefixes) != 0 {
		t.Errorf("a fresh instance's primary interface has %v %v", eth0.IPs, eth0.Prefixes)
	}
}

func ipamCreateDelete(t *testing.T, s *ipamScene) {
	ni := s.create(t, 1, 2, 0)
	sub := netip.MustParsePrefix(subnetCIDR)
	if ni.ID == "" || ni.DeviceIndex != 1 || !ni.Managed || ni.SubnetCIDR != sub || len(ni.IPs) != 2 || !sub.Contains(ni.PrimaryIP) {
		t.Fatalf("created %+v; want a managed interface at index 1 in %s with a primary and 2 addresses", ni, sub)
	}
	for _, ip := range ni.IPs {
		if !sub.Contains(ip) || ip == ni.PrimaryIP {
			t.Errorf("secondary address %s: want a second address in %s", ip, sub)
		}
	}
	got := s.iface(t, 1)
	if got.ID != ni.ID || !got.Managed || !sameAddrs(got.IPs, ni.IPs) {
		t.Errorf("described %+v; want what was created, %+v", got, ni)
	}
	if err := s.d.DeleteInterface(bg(), ni.ID); err != nil {
		t.Fatalf("delete %s: %v", ni.ID, err)
	}
	inst := s.describe(t)
	if len(inst.Interfaces) != 1 || len(inst.Detached) != 0 {
		t.Errorf("after the delete: %d interfaces, %d detached; want the primary only", len(inst.Interfaces), len(inst.Detached))
	}
	if err := s.d.DeleteInterface(bg(), ni.ID); err != nil {
		t.Errorf("delete of an interface already gone: %v; want success", err)
	}
}

func ipamCreateIdempotent(t *testing.T, s *ipamScene) {
	req := providers.CreateInterfaceRequest{InstanceID: s.id(), SubnetID: s.node.Subnet.SubnetID, DeviceIndex: 1, IPCount: 1, ClientToken: providers.NewToken()}
	first, err := s.d.CreateInterface(bg(), req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.d.CreateInterface(bg(), req)
	if err != nil {
		t.Fatalf("the same create again (a retry after a lost answer): %v", err)
	}
	if again.ID != first.ID {
		t.Errorf("the same client token created %s, then %s", first.ID, again.ID)
	}
	if inst := s.describe(t); len(inst.Interfaces) != 2 || len(inst.Detached) != 0 {
		t.Errorf("%d interfaces, %d detached; want 2 and none", len(inst.Interfaces), len(inst.Detached))
	}
}

func ipamAssignIPs(t *testing.T, s *ipamScene) {
	eth0 := s.iface(t, 0)
	got, err := s.d.Assign(bg(), providers.AssignRequest{InterfaceID: eth0.ID, IPCount: 1, ClientToken: providers.NewToken()})
	if err != nil || len(got.IPs) != 1 {
		t.Fatalf("assign 1: %+v, %v", got, err)
	}
	// A chosen address: one the subnet has free (the last of it before the broadcast).
	want := netip.MustParseAddr("10.0.0.250")
	chosen, err := s.d.Assign(bg(), providers.AssignRequest{InterfaceID: eth0.ID, IPs: []netip.Addr{want}, ClientToken: providers.NewToken()})
	if err != nil || !sameAddrs(chosen.IPs, []netip.Addr{want}) {
		t.Fatalf("assign %s: %+v, %v", want, chosen, err)
	}
	all := append(slices.Clone(got.IPs), want)
	if have := s.iface(t, 0).IPs; !sameAddrs(have, all) {
		t.Fatalf("described %v; want %v", have, all)
	}
	if err := s.d.Unassign(bg(), providers.UnassignRequest{InterfaceID: eth0.ID, IPs: all, ClientToken: providers.NewToken()}); err != nil {
		t.Fatalf("unassign %v: %v", all, err)
	}
	if have := s.iface(t, 0).IPs; len(have) != 0 {
		t.Fatalf("after the unassign: %v", have)
	}
	if err := s.d.Unassign(bg(), providers.UnassignRequest{InterfaceID: eth0.ID, IPs: all, ClientToken: providers.NewToken()}); err != nil {
		t.Errorf("unassign of addresses no longer assigned: %v; want success", err)
	}
}

func ipamAssignIdempotent(t *testing.T, s *ipamScene) {
	eth0 := s.iface(t, 0)
	req := providers.AssignRequest{InterfaceID: eth0.ID, IPCount: 1, ClientToken: providers.NewToken()}
	first, err := s.d.Assign(bg(), req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.d.Assign(bg(), req)
	if err != nil {
		t.Fatalf("the same assign again (a retry after a lost answer): %v", err)
	}
	if !sameAddrs(first.IPs, again.IPs) {
		t.Errorf("the same client token assigned %v, then %v", first.IPs, again.IPs)
	}
	if have := s.iface(t, 0).IPs; len(have) != 1 {
		t.Errorf("the interface has %v; want one address", have)
	}
}

func ipamPrefixes(t *testing.T, s *ipamScene) {
	ni := s.create(t, 1, 0, 1)
	sub := netip.MustParsePrefix(subnetCIDR)
	if len(ni.Prefixes) != 1 || ni.Prefixes[0].Bits() != 28 || !sub.Contains(ni.Prefixes[0].Addr()) {
		t.Fatalf("created with prefixes %v; want one /28 of %s", ni.Prefixes, sub)
	}
	got, err := s.d.Assign(bg(), providers.AssignRequest{InterfaceID: ni.ID, PrefixCount: 1, ClientToken: providers.NewToken()})
	if err != nil || len(got.Prefixes) != 1 || got.Prefixes[0].Bits() != 28 || got.Prefixes[0] == ni.Prefixes[0] {
		t.Fatalf("assign a prefix: %+v, %v; want a second /28", got, err)
	}
	all := []netip.Prefix{ni.Prefixes[0], got.Prefixes[0]}
	if have := s.iface(t, 1).Prefixes; !samePrefixes(have, all) {
		t.Fatalf("described prefixes %v; want %v", have, all)
	}
	if err := s.d.Unassign(bg(), providers.UnassignRequest{InterfaceID: ni.ID, Prefixes: all, ClientToken: providers.NewToken()}); err != nil {
		t.Fatalf("unassign the prefixes: %v", err)
	}
	if have := s.iface(t, 1).Prefixes; len(have) != 0 {
		t.Fatalf("after the unassign: %v", have)
	}
}

func ipamAddressLimit(t *testing.T, s *ipamScene) {
	eth0 := s.iface(t, 0)
	_, err := s.d.Assign(bg(), providers.AssignRequest{InterfaceID: eth0.ID, IPCount: ipv4PerInterface, ClientToken: providers.NewToken()})
	wantKind(t, "assign beyond the type's addresses per interface", err, providers.ErrAddressLimit)
	if !errors.Is(err, providers.ErrLimit) {
		t.Errorf("%v is not a limit", err)
	}
	if have := s.iface(t, 0).IPs; len(have) != 0 {
		t.Errorf("a refused assign left %v behind: want all or nothing", have)
	}
	if _, err := s.d.Assign(bg(), providers.AssignRequest{InterfaceID: eth0.ID, IPCount: ipv4PerInterface - 1, ClientToken: providers.NewToken()}); err != nil {
		t.Errorf("assign up to the limit: %v", err)
	}
}

func ipamInterfaceLimit(t *testing.T, s *ipamScene) {
	for index := 1; index < maxInterfaces; index++ {
		s.create(t, index, 0, 0)
	}
	_, err := s.d.CreateInterface(bg(), providers.CreateInterfaceRequest{
		InstanceID: s.id(), SubnetID: s.node.Subnet.SubnetID, DeviceIndex: maxInterfaces, ClientToken: providers.NewToken(),
	})
	wantKind(t, "create beyond the type's interfaces", err, providers.ErrInterfaceLimit)
	if !errors.Is(err, providers.ErrLimit) {
		t.Errorf("%v is not a limit", err)
	}
	if inst := s.describe(t); len(inst.Interfaces) != maxInterfaces || len(inst.Detached) != 0 {
		t.Errorf("after the refused create: %d attached, %d detached; want %d and none left behind", len(inst.Interfaces), len(inst.Detached), maxInterfaces)
	}
}

func ipamConflict(t *testing.T, s *ipamScene) {
	_, err := s.d.CreateInterface(bg(), providers.CreateInterfaceRequest{
		InstanceID: s.id(), SubnetID: s.node.Subnet.SubnetID, DeviceIndex: 0, IPCount: 1, ClientToken: providers.NewToken(),
	})
	wantKind(t, "create at the primary's device index", err, providers.ErrConflict)
	if inst := s.describe(t); len(inst.Interfaces) != 1 || len(inst.Detached) != 0 {
		t.Errorf("after the refused attach: %d attached, %d detached; want the primary only", len(inst.Interfaces), len(inst.Detached))
	}
}

// ipamDetached: an interface the driver created for the instance but did not attach (a crash
// between create and attach: made here with the instance's own credentials and the driver's
// tag) is listed as Detached and managed, and DeleteInterface deletes it.
func ipamDetached(t *testing.T, s *ipamScene) {
	left, err := s.env.Cloud.Client(s.node.Instance.Token).CreateNetworkInterface(bg(), &api.CreateNetworkInterfaceRequest{
		SubnetID: s.node.Subnet.SubnetID, Tags: []api.Tag{{Key: ManagedTag, Value: s.id()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := left.NetworkInterface.NetworkInterfaceID
	inst := s.describe(t)
	if len(inst.Detached) != 1 || inst.Detached[0].ID != id || !inst.Detached[0].Managed || inst.Detached[0].Ready {
		t.Fatalf("detached %+v; want %s, managed and not ready", inst.Detached, id)
	}
	if err := s.d.DeleteInterface(bg(), id); err != nil {
		t.Fatal(err)
	}
	if inst := s.describe(t); len(inst.Detached) != 0 {
		t.Errorf("after the delete: detached %+v", inst.Detached)
	}
}

// ipamNotFound: what does not exist is ErrNotFound to describe and to assign, and already done
// to delete and to unassign.
func ipamNotFound(t *testing.T, s *ipamScene) {
	_, err := s.d.DescribeInstance(bg(), "i-0000000000000000f")
	wantKind(t, "describe of an unknown instance", err, providers.ErrNotFound)
	gone := s.create(t, 1, 0, 0)
	if err := s.d.DeleteInterface(bg(), gone.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.d.Assign(bg(), providers.AssignRequest{InterfaceID: gone.ID, IPCount: 1, ClientToken: providers.NewToken()})
	wantKind(t, "assign on a deleted interface", err, providers.ErrNotFound)
	if err := s.d.Unassign(bg(), providers.UnassignRequest{InterfaceID: gone.ID, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}}); err != nil {
		t.Errorf("unassign on a deleted interface: %v; want success (its addresses are gone with it)", err)
	}
	if err := s.d.DeleteInterface(bg(), gone.ID); err != nil {
		t.Errorf("delete of a deleted interface: %v; want success", err)
	}
}

// ipamThrottled: a throttle injected into the cloud surfaces as the seam's retryable
// ErrThrottled, and the driver works again once it is lifted.
func ipamThrottled(t *testing.T, s *ipamScene) {
	eth0 := s.iface(t, 0)
	throttleEverything(t, s.env.Cloud)
	_, err := s.d.DescribeInstance(bg(), s.id())
	wantThrottled(t, "describe instance", err)
	_, err = s.d.Assign(bg(), providers.AssignRequest{InterfaceID: eth0.ID, IPCount: 1, ClientToken: providers.NewToken()})
	wantThrottled(t, "assign", err)
	// Through the call policy: retried, and still the same error when attempts run out.
	p := providers.NewPolicy(providers.PolicyConfig{MaxAttempts: 2, BreakerThreshold: -1})
	_, err = p.IPAM(s.d).DescribeInstance(bg(), s.id())
	wantThrottled(t, "describe instance through the policy", err)
	clearFaults(t, s.env.Cloud)
	s.describe(t)
}

func sameAddrs(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

func samePrefixes(a, b []netip.Prefix) bool {
	key := func(p netip.Prefix) string { return fmt.Sprint(p) }
	as, bs := make([]string, len(a)), make([]string, len(b))
	for i, p := range a {
		as[i] = key(p)
	}
	for i, p := range b {
		bs[i] = key(p)
	}
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}
