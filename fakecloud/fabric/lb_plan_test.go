package fabric

import (
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/fakecloud/api"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func tgt(ip string, port int, state string) api.TargetHealthDescription {
	return api.TargetHealthDescription{TargetGroupID: "tg-1", Target: api.Target{IP: ip, Port: port},
		TargetHealth: api.TargetHealth{State: state}}
}

// lbSnap is a VPC with one subnet, a load balancer with a TCP and a UDP listener on one target
// group, and the given targets.
func lbSnap(scheme string, ranges []string, targets ...api.TargetHealthDescription) *api.Snapshot {
	lb := api.LoadBalancer{LoadBalancerID: "lb-1", Scheme: scheme, VpcID: "vpc-1", SubnetID: "subnet-1",
		PrivateIPAddress: "10.0.1.9", SourceRanges: ranges}
	if scheme == api.SchemeInternetFacing {
		lb.PublicIPAddress = "198.51.100.1"
	}
	fwd := []api.Action{{Type: api.ActionTypeForward, TargetGroupID: "tg-1"}}
	return &api.Snapshot{
		Vpcs:          []api.Vpc{{VpcID: "vpc-1", CidrBlock: "10.0.0.0/16"}},
		Subnets:       []api.Subnet{{SubnetID: "subnet-1", VpcID: "vpc-1", CidrBlock: "10.0.1.0/24"}},
		LoadBalancers: []api.LoadBalancer{lb},
		Listeners: []api.Listener{
			{ListenerID: "l-2", LoadBalancerID: "lb-1", Protocol: "UDP", Port: 53, DefaultActions: fwd},
			{ListenerID: "l-1", LoadBalancerID: "lb-1", Protocol: "TCP", Port: 80, DefaultActions: fwd},
		},
		TargetGroups: []api.TargetGroup{{TargetGroupID: "tg-1", Protocol: api.ProtocolTCPUDP, Port: 8080, VpcID: "vpc-1",
			HealthCheck: api.HealthCheck{Protocol: api.ProtocolHTTP, Path: "/healthz", IntervalSeconds: 5}}},
		Targets: targets,
	}
}

func desiredLBOf(t *testing.T, snap *api.Snapshot) *LB {
	t.Helper()
	w, err := Desired(snap)
	if err != nil {
		t.Fatal(err)
	}
	return w.LBs["lb-1"]
}

func TestDesiredLBTargets(t *testing.T) {
	a, b, c := tgt("10.0.1.101", 8080, "healthy"), tgt("10.0.1.102", 8080, "initial"), tgt("10.0.2.103", 8080, "draining")
	unhealthy := tgt("10.0.1.104", 8080, "unhealthy")
	for _, tc := range []struct {
		name    string
		targets []api.TargetHealthDescription
		want    []string
	}{
		{"healthy only", []api.TargetHealthDescription{a, b, c}, []string{"10.0.1.101:8080"}},
		{"fail open to every non-draining target", []api.TargetHealthDescription{unhealthy, b, c}, []string{"10.0.1.102:8080", "10.0.1.104:8080"}},
		{"fail open over initial and unhealthy", []api.TargetHealthDescription{tgt("10.0.1.101", 8080, "unhealthy"), b}, []string{"10.0.1.101:8080", "10.0.1.102:8080"}},
		{"draining only: nothing", []api.TargetHealthDescription{c}, nil},
		{"no targets", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := desiredLBOf(t, lbSnap(api.SchemeInternetFacing, nil, tc.targets...))
			for _, l := range lb.Program.Listeners {
				var got []string
				for _, x := range l.Targets {
					got = append(got, x.String())
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s/%d targets (-want +got):\n%s", l.Protocol, l.Port, diff)
				}
			}
			// Draining targets stay registered: their connections are kept.
			if len(lb.Keep) != 2*len(tc.targets) { // tcp and udp listeners
				t.Errorf("keep %v, want all %d registered targets per protocol", lb.Keep, len(tc.targets))
			}
		})
	}
}

func TestDesiredLBSources(t *testing.T) {
	for _, tc := range []struct {
		name, scheme string
		ranges       []string
		want         []string
	}{
		{"internet-facing, everyone", api.SchemeInternetFacing, nil, nil},
		{"internet-facing, ranges", api.SchemeInternetFacing, []string{"203.0.113.0/24"}, []string{"203.0.113.0/24"}},
		{"internal: the VPC", api.SchemeInternal, nil, []string{"10.0.0.0/16"}},
		{"internal: ranges inside the VPC", api.SchemeInternal, []string{"10.0.2.0/24", "203.0.113.0/24"}, []string{"10.0.2.0/24"}},
		{"internal: a range around the VPC", api.SchemeInternal, []string{"10.0.0.0/8"}, []string{"10.0.0.0/16"}},
		{"internal: nothing inside", api.SchemeInternal, []string{"203.0.113.0/24"}, []string{"0.0.0.0/32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := desiredLBOf(t, lbSnap(tc.scheme, tc.ranges))
			var got []string
			for _, p := range lb.Program.Allowed {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("allowed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredLBRejectsBadInput(t *testing.T) {
	snap := lbSnap(api.SchemeInternetFacing, []string{"not-a-cidr"})
	w, err := Desired(snap)
	if err == nil || w.LBs["lb-1"] != nil {
		t.Errorf("a bad source range: err %v, lb %v; want an error and no load balancer", err, w.LBs["lb-1"])
	}
	snap = lbSnap(api.SchemeInternal, nil)
	snap.Listeners[0].Protocol = "SCTP"
	if w, err = Desired(snap); err == nil || w.LBs["lb-1"] != nil {
		t.Errorf("an SCTP listener: err %v; want an error and no load balancer", err)
	}
}

// TestRenderLBProgram compares the nft script with testdata/lb-program.nft (-update rewrites it).
func TestRenderLBProgram(t *testing.T) {
	lb := desiredLBOf(t, lbSnap(api.SchemeInternetFacing, []string{"203.0.113.0/24", "10.0.0.0/16"},
		tgt("10.0.1.101", 8080, "healthy"), tgt("10.0.1.102", 8080, "healthy"), tgt("10.0.2.103", 8080, "draining")))
	script, hash := RenderLBProgram(lb.Program)
	golden := filepath.Join("testdata", "lb-program.nft")
	if *update {
		if err := os.WriteFile(golden, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRenderLBProgram -update ./fakecloud/fabric/ to create it)", err)
	}
	if diff := cmp.Diff(string(want), script); diff != "" {
		t.Errorf("program (-golden +got):\n%s", diff)
	}
	if hash != lb.Program.Hash || parseProgramHash(script) != hash {
		t.Errorf("hash %q, program's %q, in script %q", hash, lb.Program.Hash, parseProgramHash(script))
	}
	other := lb.Program
	other.Listeners = other.Listeners[:1]
	if _, h := RenderLBProgram(other); h == hash {
		t.Errorf("a different program has the same hash")
	}
}

func TestDiffLBs(t *testing.T) {
	two := lbSnap(api.SchemeInternetFacing, nil, tgt("10.0.1.101", 8080, "healthy"), tgt("10.0.1.102", 8080, "healthy"))
	one := lbSnap(api.SchemeInternetFacing, nil, tgt("10.0.1.101", 8080, "healthy"))
	d2, d1 := desiredLBOf(t, two), desiredLBOf(t, one)
	programmed := func(lb *LB) *LB { c := *lb; c.Ready = true; return &c }
	world := func(lbs ...*LB) *World {
		w := NewWorld()
		for _, lb := range lbs {
			w.LBs[lb.ID] = lb
		}
		return w
	}
	ids := func(lbs []*LB) []string {
		var out []string
		for _, lb := range lbs {
			out = append(out, lb.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name                          string
		desired, actual               *World
		del, ensure, program, flushes []string
	}{
		{"new", world(d2), world(), nil, []string{"lb-1"}, []string{"lb-1"}, nil},
		{"in sync", world(d2), world(programmed(d2)), nil, nil, nil, nil},
		{"target removed: reprogram and cut", world(d1), world(programmed(d2)), nil, nil, []string{"lb-1"}, []string{"lb-1"}},
		{"target added: reprogram only", world(d2), world(programmed(d1)), nil, nil, []string{"lb-1"}, nil},
		{"adopted with the same program: ensure and cut", world(d2), world(&LB{ID: "lb-1", Program: LBProgram{Hash: d2.Program.Hash}}),
			nil, []string{"lb-1"}, nil, []string{"lb-1"}},
		{"adopted, other program", world(d2), world(&LB{ID: "lb-1"}), nil, []string{"lb-1"}, []string{"lb-1"}, []string{"lb-1"}},
		{"deleted", world(), world(programmed(d2)), []string{"lb-1"}, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{}
			p.diffLBs(tc.desired, tc.actual)
			got := [][]string{ids(p.DelLBs), ids(p.EnsureLBs), ids(p.ProgramLBs), ids(p.FlushLBs)}
			if diff := cmp.Diff([][]string{tc.del, tc.ensure, tc.program, tc.flushes}, got); diff != "" {
				t.Errorf("del, ensure, program, flush (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStaleFlows(t *testing.T) {
	vip, priv := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("10.0.1.9")
	s := staleFlows{vips: []netip.Addr{priv, vip}, keep: []string{"tcp 10.0.1.101:8080"}}
	flow := func(dst, peer string, port uint16) *netlink.ConntrackFlow {
		f := &netlink.ConntrackFlow{}
		f.Forward.Protocol = unix.IPPROTO_TCP
		f.Forward.DstIP, f.Reverse.SrcIP, f.Reverse.SrcPort = net.ParseIP(dst).To4(), net.ParseIP(peer).To4(), port
		return f
	}
	udp := flow("198.51.100.1", "10.0.1.101", 8080)
	udp.Forward.Protocol = unix.IPPROTO_UDP
	withState := func(f *netlink.ConntrackFlow, state uint8) *netlink.ConntrackFlow {
		f.ProtoInfo = &netlink.ProtoInfoTCP{State: state}
		return f
	}
	for _, tc := range []struct {
		name string
		f    *netlink.ConntrackFlow
		want bool
	}{
		{"to a kept target", flow("198.51.100.1", "10.0.1.101", 8080), false},
		{"to a removed target", flow("198.51.100.1", "10.0.1.102", 8080), true},
		{"kept ip, other port", flow("10.0.1.9", "10.0.1.101", 9090), true},
		{"not forwarded (answered by the load balancer)", flow("10.0.1.9", "10.0.1.9", 80), false},
		{"a health check of the load balancer's own", flow("10.0.1.102", "10.0.1.102", 8080), false},
		{"kept for tcp, not udp", udp, true},
		{"established to a removed target", withState(flow("198.51.100.1", "10.0.1.102", 8080), 3), true},
		// A closed connection's entry stays: the client may already reuse its port, and the
		// kernel would hold the new connection under the same tuple.
		{"time-wait to a removed target", withState(flow("198.51.100.1", "10.0.1.102", 8080), ctTCPTimeWait), false},
		{"closed to a removed target", withState(flow("198.51.100.1", "10.0.1.102", 8080), ctTCPClose), false},
	} {
		if got := s.MatchConntrackFlow(tc.f); got != tc.want {
			t.Errorf("%s: match %t, want %t", tc.name, got, tc.want)
		}
	}
}
