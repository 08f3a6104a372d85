package fabric

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
	"github.com/flatnet/flatnet/internal/netns"
)

// TestALBLinkBusyPolled checks busy polling of an application load balancer's link
// (busypoll.go): the link's offloads, the process's epoll instances and the fabric's gauge, that
// packets into the load balancer's namespace come through a NAPI context (a socket there learns
// its ID), and that the engine's traffic is in fact polled (the namespace's
// TcpExtBusyPollRxPackets grows). Then a fabric with polling off, adopting the namespaces:
// the first fabric's stop left the process's epoll instances without polling, and a load
// balancer made now has a plain link, whose packets have no NAPI context.
func TestALBLinkBusyPolled(t *testing.T) {
	if err := busyPollSupported(); err != nil {
		t.Fatalf("this kernel cannot busy-poll per epoll instance: %v (flatnet needs Linux 6.9 or later for it; the fabric then logs so and does not poll)", err)
	}
	// Another fabric of this test binary may have set the process's instance: start from none,
	// and leave none.
	reset := func() {
		if _, err := enableBusyPoll(0); err != nil {
			t.Fatal(err)
		}
	}
	reset()
	t.Cleanup(reset)
	poll := time.Duration(0) // the default
	l := newLabTuned(t, nil, state.Config{DataPlane: true}, func(c *Config) { c.LBBusyPoll = poll })
	internet := InternetNetns(l.prefix, l.vpc)
	client := nsClient(internet)
	newALB := func(t *testing.T, name string) api.LoadBalancer {
		t.Helper()
		lb := must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: name, SubnetID: l.subA.SubnetID,
			Type: api.LoadBalancerTypeApplication})).LoadBalancer
		must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: lb.LoadBalancerID,
			Protocol: api.ProtocolHTTP, Port: 80, DefaultActions: []api.Action{fixedAction(200, "hi")}}))
		l.converge()
		eventually(t, 10*time.Second, "load balancer "+name+" to answer", func() bool {
			resp, err := client.Get("http://" + lb.PublicIPAddress + "/")
			if err == nil {
				_ = resp.Body.Close()
			}
			return err == nil && resp.StatusCode == http.StatusOK
		})
		return lb
	}
	check := func(t *testing.T, lb api.LoadBalancer, polled bool) {
		t.Helper()
		lns, rns, port := LBNetns(l.prefix, lb.LoadBalancerID), RouterNetns(l.prefix, l.vpc), lbPortName(lb.LoadBalancerID)
		if on, err := linkFeatureOn(lns, "eth0", featureGRO); err != nil || on != polled {
			t.Errorf("GRO of the load balancer's eth0 = %v (err %v), want %v", on, err, polled)
		}
		if on, err := linkFeatureOn(rns, port, featureTSO); err != nil || on == polled {
			t.Errorf("TSO of the router's %s = %v (err %v), want %v", port, on, err, !polled)
		}
		id := incomingNAPIID(t, lns, internet, netip.MustParseAddr(lb.PublicIPAddress))
		if polled && id == 0 {
			t.Errorf("a socket in the load balancer's namespace got no NAPI ID: its packets bypass NAPI, so epoll cannot poll them")
		}
		if !polled && id != 0 {
			t.Errorf("with busy polling off a socket in the load balancer's namespace got NAPI ID %d", id)
		}
	}
	pollTimes := func(t *testing.T) []uint32 {
		t.Helper()
		fds, err := epollFDs()
		if err != nil {
			t.Fatal(err)
		}
		var us []uint32
		for _, fd := range fds {
			p, err := epollGetParams(fd)
			if err != nil {
				t.Fatalf("EPIOCGPARAMS on %d: %v", fd, err)
			}
			if p.BusyPollUsecs != 0 && (p.BusyPollBudget != busyPollBudget || p.PreferBusyPoll != 1) {
				t.Errorf("epoll instance %d: %+v, want budget %d and prefer busy poll", fd, p, busyPollBudget)
			}
			us = append(us, p.BusyPollUsecs)
		}
		return us
	}
	lb := newALB(t, "alb")

	t.Run("on", func(t *testing.T) {
		check(t, lb, true)
		want := uint32(DefaultLBBusyPoll / time.Microsecond)
		if us := pollTimes(t); !slices.Contains(us, want) {
			t.Errorf("busy-poll times of the process's epoll instances %v, want one of %d µs", us, want)
		}
		if g := gaugeValue(t, l, "flatnet_fabric_lb_busy_poll_microseconds"); g != float64(want) {
			t.Errorf("flatnet_fabric_lb_busy_poll_microseconds = %v, want %d", g, want)
		}
		// Whether a packet is polled is a race between the engine's thread, polling before it
		// sleeps, and the sender's CPU, which processes what it sent itself when it gets there
		// first. One client at a time leaves the engine waiting most often (here 30 to 130
		// packets in 200 requests are polled; with four clients at once, 1 or 2), but on a busy
		// machine (CI runs other packages beside this one) 200 requests can all lose it. So
		// requests go on until a packet was polled or 20 s have passed. With polling off, none
		// ever is.
		lns := LBNetns(l.prefix, lb.LoadBalancerID)
		before := busyPollRxPackets(t, lns)
		deadline := time.Now().Add(20 * time.Second)
		requests := 0
		for {
			for range 200 {
				resp, err := client.Get("http://" + lb.PublicIPAddress + "/")
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
			}
			requests += 200
			after := busyPollRxPackets(t, lns)
			if after > before {
				t.Logf("%d packets polled over %d requests", after-before, requests)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("TcpExtBusyPollRxPackets in the load balancer's namespace stayed at %d over %d requests: nothing was polled", after, requests)
			}
		}
	})

	t.Run("off, on a fabric that adopts the namespaces", func(t *testing.T) {
		l.stop()
		if us := pollTimes(t); slices.Contains(us, uint32(DefaultLBBusyPoll/time.Microsecond)) {
			t.Errorf("after the fabric stopped, the process's epoll instances busy-poll: %v µs", us)
		}
		poll = -1
		l.start()
		if g := gaugeValue(t, l, "flatnet_fabric_lb_busy_poll_microseconds"); g != 0 {
			t.Errorf("flatnet_fabric_lb_busy_poll_microseconds = %v with polling off, want 0", g)
		}
		check(t, newALB(t, "alb-plain"), false)
		if us := pollTimes(t); slices.Contains(us, uint32(DefaultLBBusyPoll/time.Microsecond)) {
			t.Errorf("with polling off, the process's epoll instances busy-poll: %v µs", us)
		}
	})
}

// gaugeValue reads a gauge of the lab's fabric.
func gaugeValue(t *testing.T, l *lab, name string) float64 {
	t.Helper()
	mfs, err := l.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge() != nil {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// busyPollRxPackets reads TcpExtBusyPollRxPackets of namespace ns: the packets busy polling
// took there.
func busyPollRxPackets(t *testing.T, ns string) int64 {
	t.Helper()
	var text []byte
	if err := netns.Do(ns, func() error {
		var err error
		text, err = os.ReadFile("/proc/thread-self/net/netstat")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(text), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) {
			continue
		}
		for j, n := range names {
			if n == "BusyPollRxPackets" {
				v, err := strconv.ParseInt(values[j], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	t.Fatalf("no TcpExt BusyPollRxPackets in %s's netstat", ns)
	return 0
}

// incomingNAPIID accepts a connection from namespace from to addr:9099 in namespace ns, reads
// a byte over it and returns the NAPI ID the accepted socket learnt (0: none).
func incomingNAPIID(t *testing.T, ns, from string, addr netip.Addr) int {
	t.Helper()
	ln := listenTCPIn(t, ns, netip.AddrPortFrom(netip.IPv4Unspecified(), 9099))
	defer ln.Close()
	c, err := dialIn(from, "tcp", netip.AddrPortFrom(addr, 9099).String(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial the load balancer's namespace: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := s.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	raw, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var id int
	var serr error
	if err := raw.Control(func(fd uintptr) { id, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_INCOMING_NAPI_ID) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("SO_INCOMING_NAPI_ID: %v", serr)
	}
	return id
}
