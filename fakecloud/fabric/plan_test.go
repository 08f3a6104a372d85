package fabric

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// snapshot is a VPC 10.0.0.0/16 with subnet 10.0.1.0/24 and instance i-1 whose primary
// interface eni-0 holds 10.0.1.10; mutate adjusts it per case.
func snapshot(mutate ...func(*api.Snapshot)) *api.Snapshot {
	s := &api.Snapshot{
		Vpcs:    []api.Vpc{{VpcID: "vpc-1", CidrBlock: "10.0.0.0/16"}},
		Subnets: []api.Subnet{{SubnetID: "subnet-1", VpcID: "vpc-1", CidrBlock: "10.0.1.0/24", Gateway: "10.0.1.1"}},
		Instances: []api.Instance{{InstanceID: "i-1", VpcID: "vpc-1", SubnetID: "subnet-1",
			State: api.InstanceStateRunning, PrivateIPAddress: "10.0.1.10"}},
		NetworkInterfaces: []api.NetworkInterface{eni("eni-0", "i-1", 0, "10.0.1.10")},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func eni(id, instance string, device int, primary string, secondaries ...string) api.NetworkInterface {
	e := api.NetworkInterface{
		NetworkInterfaceID: id, SubnetID: "subnet-1", VpcID: "vpc-1", MacAddress: "02:00:00:00:00:0" + id[len(id)-1:],
		PrivateIPAddress: primary, SourceDestCheck: true,
		PrivateIPAddresses: []api.PrivateIPAddress{{PrivateIPAddress: primary, Primary: true}},
		Attachment:         &api.Attachment{InstanceID: instance, DeviceIndex: device, Status: api.AttachmentStatusAttached},
	}
	for _, s := range secondaries {
		e.PrivateIPAddresses = append(e.PrivateIPAddresses, api.PrivateIPAddress{PrivateIPAddress: s})
	}
	return e
}

// converged is the World a fabric holds after applying s.
func converged(t *testing.T, s *api.Snapshot) *World {
	t.Helper()
	w, err := Desired(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range w.Routers {
		r.Ready = true
	}
	return w
}

var (
	pfx   = netip.MustParsePrefix
	port0 = Port{ENI: "eni-0", Instance: "i-1", Device: 0, MAC: "02:00:00:00:00:00", SourceDestCheck: true,
		Addr: pfx("10.0.1.10/24"), Gateway: netip.MustParseAddr("10.0.1.1")}
)

func TestDiff(t *testing.T) {
	base := snapshot()
	cases := []struct {
		name    string
		desired *api.Snapshot
		actual  func(t *testing.T) *World
		want    *Plan
	}{
		{
			name: "nothing", desired: &api.Snapshot{}, actual: func(*testing.T) *World { return NewWorld() },
			want: &Plan{},
		},
		{
			name: "fresh vpc and instance", desired: base, actual: func(*testing.T) *World { return NewWorld() },
			want: &Plan{
				EnsureRouters: []RouterRef{{VpcID: "vpc-1", CIDR: pfx("10.0.0.0/16")}},
				AddNodes:      []Node{{Instance: "i-1", VpcID: "vpc-1"}},
				AddLocals:     []LocalOp{{VpcID: "vpc-1", Addr: netip.MustParseAddr("10.0.1.1")}},
				AddPorts:      []PortOp{{VpcID: "vpc-1", Port: port0}},
				SetNeighs: []NeighOp{{VpcID: "vpc-1", Key: NeighKey{ENI: "eni-0", Addr: netip.MustParseAddr("10.0.1.10")},
					MAC: "02:00:00:00:00:00"}},
				SetRoutes: []RouteOp{{VpcID: "vpc-1", Dst: pfx("10.0.1.10/32"), ENI: "eni-0"}},
			},
		},
		{
			name: "converged does nothing", desired: base,
			actual: func(t *testing.T) *World { return converged(t, base) },
			want:   &Plan{},
		},
		{
			name:    "adopted router is ensured again, nothing else",
			desired: base,
			actual: func(t *testing.T) *World {
				w := converged(t, base)
				w.Routers["vpc-1"].Ready = false
				return w
			},
			want: &Plan{EnsureRouters: []RouterRef{{VpcID: "vpc-1", CIDR: pfx("10.0.0.0/16")}}},
		},
		{
			name:    "unassign deletes only the route and neighbour",
			desired: base,
			actual: func(t *testing.T) *World {
				return converged(t, snapshot(func(s *api.Snapshot) {
					s.NetworkInterfaces[0] = eni("eni-0", "i-1", 0, "10.0.1.10", "10.0.1.20")
				}))
			},
			want: &Plan{
				DelRoutes: []RouteOp{{VpcID: "vpc-1", Dst: pfx("10.0.1.20/32")}},
				DelNeighs: []NeighOp{{VpcID: "vpc-1", Key: NeighKey{ENI: "eni-0", Addr: netip.MustParseAddr("10.0.1.20")}}},
			},
		},
		{
			name:    "source/dest check off fixes the port in place",
			desired: snapshot(func(s *api.Snapshot) { s.NetworkInterfaces[0].SourceDestCheck = false }),
			actual:  func(t *testing.T) *World { return converged(t, base) },
			want: &Plan{FixPorts: []PortOp{{VpcID: "vpc-1",
				Port: func() Port { p := port0; p.SourceDestCheck = false; return p }(), Old: port0}}},
		},
		{
			name:    "terminated instance: the namespace goes, its routes with it",
			desired: snapshot(func(s *api.Snapshot) { s.Instances = nil; s.NetworkInterfaces = nil }),
			actual:  func(t *testing.T) *World { return converged(t, base) },
			want:    &Plan{DelNodes: []string{"i-1"}},
		},
		{
			name: "interface moved to another instance is recreated with its routes",
			desired: snapshot(func(s *api.Snapshot) {
				s.Instances = append(s.Instances, api.Instance{InstanceID: "i-2", VpcID: "vpc-1", State: api.InstanceStateRunning})
				s.NetworkInterfaces = append(s.NetworkInterfaces, eni("eni-5", "i-2", 1, "10.0.1.50"))
			}),
			actual: func(t *testing.T) *World {
				return converged(t, snapshot(func(s *api.Snapshot) {
					s.Instances = append(s.Instances, api.Instance{InstanceID: "i-2", VpcID: "vpc-1", State: api.InstanceStateRunning})
					s.NetworkInterfaces = append(s.NetworkInterfaces, eni("eni-5", "i-1", 1, "10.0.1.50"))
				}))
			},
			want: &Plan{
				DelPorts: []PortOp{{VpcID: "vpc-1", Old: Port{ENI: "eni-5", Instance: "i-1", Device: 1,
					MAC: "02:00:00:00:00:05", SourceDestCheck: true, Addr: pfx("10.0.1.50/32")}}},
				AddPorts: []PortOp{{VpcID: "vpc-1", Port: Port{ENI: "eni-5", Instance: "i-2", Device: 1,
					MAC: "02:00:00:00:00:05", SourceDestCheck: true, Addr: pfx("10.0.1.50/32")}}},
				SetNeighs: []NeighOp{{VpcID: "vpc-1", Key: NeighKey{ENI: "eni-5", Addr: netip.MustParseAddr("10.0.1.50")},
					MAC: "02:00:00:00:00:05"}},
				SetRoutes: []RouteOp{{VpcID: "vpc-1", Dst: pfx("10.0.1.50/32"), ENI: "eni-5"}},
			},
		},
		{
			name: "detached (attaching) interface is unplugged",
			desired: snapshot(func(s *api.Snapshot) {
				s.NetworkInterfaces = append(s.NetworkInterfaces, eni("eni-5", "i-1", 1, "10.0.1.50"))
				s.NetworkInterfaces[1].Attachment.Status = api.AttachmentStatusDetaching
			}),
			actual: func(t *testing.T) *World {
				return converged(t, snapshot(func(s *api.Snapshot) {
					s.NetworkInterfaces = append(s.NetworkInterfaces, eni("eni-5", "i-1", 1, "10.0.1.50"))
				}))
			},
			want: &Plan{DelPorts: []PortOp{{VpcID: "vpc-1", Old: Port{ENI: "eni-5", Instance: "i-1", Device: 1,
				MAC: "02:00:00:00:00:05", SourceDestCheck: true, Addr: pfx("10.0.1.50/32")}}}},
		},
		{
			name: "vpc deleted", desired: &api.Snapshot{},
			actual: func(t *testing.T) *World {
				return converged(t, snapshot(func(s *api.Snapshot) { s.Instances = nil; s.NetworkInterfaces = nil }))
			},
			want: &Plan{DelRouters: []string{"vpc-1"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Desired(c.desired)
			if err != nil {
				t.Fatal(err)
			}
			got := Diff(d, c.actual(t))
			if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredPrefixDeliversEveryAddress(t *testing.T) {
	s := snapshot(func(s *api.Snapshot) {
		s.NetworkInterfaces[0].Ipv4Prefixes = []api.Ipv4Prefix{{Ipv4Prefix: "10.0.1.32/28"}}
	})
	w, err := Desired(s)
	if err != nil {
		t.Fatal(err)
	}
	r := w.Routers["vpc-1"]
	if got := r.Routes[pfx("10.0.1.32/28")]; got != "eni-0" {
		t.Errorf("route of the prefix goes to %q, want eni-0", got)
	}
	if len(r.Neighs) != 17 { // the primary and the 16 addresses of the prefix
		t.Errorf("got %d neighbour entries, want 17", len(r.Neighs))
	}
}

func TestDesiredSkipsMalformed(t *testing.T) {
	s := snapshot(func(s *api.Snapshot) {
		s.Vpcs = append(s.Vpcs, api.Vpc{VpcID: "vpc-bad", CidrBlock: "nope"})
	})
	w, err := Desired(s)
	if err == nil {
		t.Errorf("want an error naming the malformed vpc")
	}
	if _, ok := w.Routers["vpc-1"]; !ok {
		t.Errorf("the valid vpc was dropped")
	}
}

func TestNames(t *testing.T) {
	if n := portName("eni-0123456789abcdef0"); len(n) > 15 {
		t.Errorf("port name %q longer than IFNAMSIZ-1", n)
	}
	for _, netns := range []string{"", "/proc/42/ns/net"} {
		eni, inst, dev, ns, ok := parseAlias(portAlias("eni-1", "i-2", 3, netns))
		if diff := cmp.Diff([]any{"eni-1", "i-2", 3, netns, true}, []any{eni, inst, dev, ns, ok}); diff != "" {
			t.Errorf("alias round trip (-want +got):\n%s", diff)
		}
	}
	// An alias of a fabric from before attachments (four fields) still reads as a port.
	if _, _, _, ns, ok := parseAlias("flatnet-fabric eni-1 i-2 0"); !ok || ns != "" {
		t.Errorf("four-field alias: ok %v netns %q", ok, ns)
	}
	for _, bad := range []string{"", "flatnet-fabric eni-1 i-2", "flatnet-fabric eni-1 i-2 x", "other eni-1 i-2 0", "flatnet-fabric a b 0 /p extra"} {
		if _, _, _, _, ok := parseAlias(bad); ok {
			t.Errorf("parseAlias(%q) accepted", bad)
		}
	}
	for _, c := range []struct {
		name string
		kind byte
		id   string
		ok   bool
	}{
		{"fc-r-vpc-1", 'r', "vpc-1", true}, {"fc-n-i-1", 'n', "i-1", true}, {"fc-i-vpc-1", 'i', "vpc-1", true},
		{"fc-x-1", 0, "", false}, {"other", 0, "", false},
	} {
		k, id, ok := nsKind("fc-", c.name)
		if k != c.kind || id != c.id || ok != c.ok {
			t.Errorf("nsKind(%q) = %c %q %v", c.name, k, id, ok)
		}
	}
}
