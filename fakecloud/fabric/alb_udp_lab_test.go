package fabric

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
)

// UDP flows of TestALBUDP idle out this soon, and a listener holds this many at most.
const (
	albUDPIdle     = time.Second
	albUDPMaxFlows = 6
)

// udpFlow is a client socket in a namespace: one flow through the load balancer.
type udpFlow struct {
	t  *testing.T
	pc *net.UDPConn
	to *net.UDPAddr
}

func newUDPFlow(t *testing.T, ns string, to netip.AddrPort) *udpFlow {
	t.Helper()
	return &udpFlow{t: t, pc: udpListen(t, ns, "0.0.0.0:0"), to: net.UDPAddrFromAddrPort(to)}
}

// ask sends a datagram and returns the answering pod, the peer it saw and the reply's source;
// "" when no reply comes (a datagram may be lost while the path warms up: it tries three times).
func (f *udpFlow) ask() (name, peer string, from netip.AddrPort) {
	buf := make([]byte, 256)
	for range 3 {
		if _, err := f.pc.WriteToUDP([]byte("?"), f.to); err != nil {
			f.t.Fatal(err)
		}
		_ = f.pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, src, err := f.pc.ReadFromUDPAddrPort(buf)
		if err == nil {
			name, peer, _ = strings.Cut(string(buf[:n]), " ")
			return name, peer, netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		}
	}
	return "", "", netip.AddrPort{}
}

// TestALBUDP runs an application load balancer's UDP listener on 53 (beside a TCP listener on
// 53, as DNS has) to pods a and b, through its behaviours in order: replies from the VIP and
// port, pods seeing the load balancer, flows spread and sticky, unhealthy and draining targets
// getting no new flows while a draining target's flows go on until idle, the flow limit (counted)
// freed by the idle timeout, and the listener's removal leaving TCP 53 and freeing the socket.
func TestALBUDP(t *testing.T) {
	l := &lbLab{lab: newLabTuned(t, nil, state.Config{DataPlane: true}, func(c *Config) {
		c.albUDPIdleTimeout, c.albUDPMaxFlows = albUDPIdle, albUDPMaxFlows
	})}
	l.internet = InternetNetns(l.prefix, l.vpc)
	l.pods = []*pod{newPod(t, l.lab, l.n1, "pod-a", "10.0.1.101"), newPod(t, l.lab, l.n2, "pod-b", "10.0.1.102")}
	a, b := l.pods[0], l.pods[1]
	l.lb = must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "dns", SubnetID: l.subA.SubnetID,
		Type: api.LoadBalancerTypeApplication})).LoadBalancer
	// Both groups check TCP on the pods' health port (a UDP group's check is TCP).
	hc := api.HealthCheck{Protocol: api.ProtocolTCP, Port: fmt.Sprint(podHealthPort), IntervalSeconds: 5, TimeoutSeconds: 2,
		HealthyThresholdCount: 2, UnhealthyThresholdCount: 2}
	targets := []api.Target{{IP: a.ip.String(), Port: podPort}, {IP: b.ip.String(), Port: podPort}}
	for _, g := range []struct {
		proto string
		tg    *string
	}{{api.ProtocolUDP, &l.udpTG}, {api.ProtocolTCP, &l.tcpTG}} {
		*g.tg = must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "dns-" + strings.ToLower(g.proto),
			Protocol: g.proto, Port: podPort, VpcID: l.vpc, HealthCheck: hc})).TargetGroup.TargetGroupID
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: *g.tg, Targets: targets}))
		// Long enough that a deregistered target stays draining through the test.
		must(l.st.ModifyTargetGroupAttributes(admin(), &api.ModifyTargetGroupAttributesRequest{TargetGroupID: *g.tg,
			Attributes: []api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: "120"}}}))
		must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID, Protocol: g.proto,
			Port: 53, DefaultActions: []api.Action{forwardAction(*g.tg)}}))
	}
	l.converge()
	alb := &albLab{lbLab: l}
	if reason := alb.waitState(t, api.LoadBalancerStateActive); reason != "" {
		t.Fatalf("active with reason %q", reason)
	}
	l.waitHealth(t, l.udpTG, api.TargetHealthHealthy, a, b)
	l.waitHealth(t, l.tcpTG, api.TargetHealthHealthy, a, b)
	vip := netip.AddrPortFrom(addr(l.lb.PublicIPAddress), 53)
	lbAddr := l.lb.PrivateIPAddress

	// flows opens n client flows and returns them by the pod each reached, checking each reply
	// came from the VIP and port and each pod saw the load balancer.
	flows := func(t *testing.T, n int) map[string][]*udpFlow {
		t.Helper()
		out := map[string][]*udpFlow{}
		for range n {
			f := newUDPFlow(t, l.internet, vip)
			name, peer, from := f.ask()
			if name == "" {
				t.Fatalf("no reply from %s", vip)
			}
			if peer != lbAddr || from != vip {
				t.Errorf("%s saw peer %s and replied from %s; want the load balancer's %s, and the reply from %s", name, peer, from, lbAddr, vip)
			}
			out[name] = append(out[name], f)
		}
		return out
	}
	// idle waits for the flows of the subtest before to idle out.
	idle := func() { time.Sleep(albUDPIdle + 500*time.Millisecond) }

	t.Run("UDP and TCP on 53 reach the pods, which see the load balancer; flows spread and stick", func(t *testing.T) {
		got := flows(t, 4)
		if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, podNames(a, b)) {
			t.Errorf("4 flows reached %v, want both pods", names)
		}
		for name, fs := range got {
			for _, f := range fs {
				for range 3 {
					if again, _, _ := f.ask(); again != name {
						t.Errorf("a flow on %s was answered by %q", name, again)
					}
				}
			}
		}
		if got := spread(t, askTCP, l.internet, vip, 10, lbAddr); !slices.Equal(sortedNames(got), podNames(a, b)) {
			t.Errorf("TCP 53 answers by pod %v, want both", got)
		}
		idle()
	})

	t.Run("an unhealthy target gets no new flows", func(t *testing.T) {
		a.closeHealth()
		l.waitHealth(t, l.udpTG, api.TargetHealthUnhealthy, a)
		if got := flows(t, 4); len(got[a.name]) != 0 || len(got[b.name]) != 4 {
			t.Errorf("new flows with pod-a unhealthy: %d to a, %d to b; want all 4 to b", len(got[a.name]), len(got[b.name]))
		}
		a.openHealth()
		l.waitHealth(t, l.udpTG, api.TargetHealthHealthy, a)
		idle()
	})

	t.Run("a draining target gets no new flows; its flows go on until idle", func(t *testing.T) {
		var onA *udpFlow
		for range 10 {
			if fs := flows(t, 1)[a.name]; len(fs) > 0 {
				onA = fs[0]
				break
			}
		}
		if onA == nil {
			t.Fatal("no flow reached pod-a")
		}
		must(l.st.DeregisterTargets(admin(), &api.DeregisterTargetsRequest{TargetGroupID: l.udpTG, Targets: targets[:1]}))
		l.converge()
		if s, _ := l.health(l.udpTG, a.ip); s != api.TargetHealthDraining {
			t.Fatalf("pod-a deregistered is %s, want draining", s)
		}
		if got := flows(t, 3); len(got[a.name]) != 0 {
			t.Errorf("%d new flows went to the draining pod-a", len(got[a.name]))
		}
		if name, _, _ := onA.ask(); name != a.name {
			t.Errorf("pod-a's flow, draining, was answered by %q; want pod-a still", name)
		}
		idle()
		if name, _, _ := onA.ask(); name != b.name {
			t.Errorf("pod-a's flow after it idled out was answered by %q; want a new flow to pod-b", name)
		}
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: l.udpTG, Targets: targets[:1]}))
		l.waitHealth(t, l.udpTG, api.TargetHealthHealthy, a)
		idle()
	})

	t.Run("the flow limit refuses new flows, counted, until flows idle out", func(t *testing.T) {
		flows(t, albUDPMaxFlows)
		over := newUDPFlow(t, l.internet, vip)
		if name, _, _ := over.ask(); name != "" {
			t.Errorf("a flow over the limit of %d was answered by %s", albUDPMaxFlows, name)
		}
		if n := l.udpRefused(t); n < 1 {
			t.Errorf("flatnet_l7_udp_flows_refused_total = %v, want the refused flow counted", n)
		}
		idle()
		if name, _, _ := over.ask(); name == "" {
			t.Error("no reply once the flows had idled out")
		}
	})

	t.Run("removing the UDP listener leaves TCP 53 and frees the socket", func(t *testing.T) {
		live := newUDPFlow(t, l.internet, vip)
		if name, _, _ := live.ask(); name == "" {
			t.Fatal("no reply before the removal")
		}
		ls := must(l.st.DescribeListeners(admin(), &api.DescribeListenersRequest{LoadBalancerID: l.lb.LoadBalancerID})).Listeners
		for _, x := range ls {
			if x.Protocol == api.ProtocolUDP {
				must(l.st.DeleteListener(admin(), &api.DeleteListenerRequest{ListenerID: x.ListenerID}))
			}
		}
		l.converge()
		if name, _, _ := live.ask(); name != "" {
			t.Errorf("a flow of the removed listener was answered by %s", name)
		}
		if got := spread(t, askTCP, l.internet, vip, 4, lbAddr); len(got) == 0 {
			t.Error("TCP 53 stopped with the UDP listener")
		}
		// The port is free again in the load balancer's namespace: the relay closed its socket.
		pc, err := listenPacketIn(LBNetns(l.prefix, l.lb.LoadBalancerID), "0.0.0.0:53")
		if err != nil {
			t.Fatalf("UDP 53 still taken after the listener's removal: %v", err)
		}
		_ = pc.Close()
	})
}

// udpRefused is the fabric's count of UDP flows refused at the flow limit, over its engines.
func (l *lbLab) udpRefused(t *testing.T) float64 {
	t.Helper()
	mfs, err := l.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "flatnet_l7_udp_flows_refused_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
