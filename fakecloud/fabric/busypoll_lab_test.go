package fabric

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
)

// TestALBLinkBusyPolled checks what busy polling of an application load balancer's link rests
// on (busypoll.go): the link's offloads, the process's epoll instance, and that packets into
// the load balancer's namespace come through a NAPI context (a socket there learns its ID),
// which is what epoll polls. Then the same with busy polling off, on a fabric that adopts the
// namespaces: the link is back to a veth's defaults and no packet has a NAPI context.
func TestALBLinkBusyPolled(t *testing.T) {
	if err := busyPollSupported(); err != nil {
		t.Fatalf("this kernel cannot busy-poll per epoll instance: %v (flatnet needs Linux 6.9 or later for it; the fabric then logs so and does not poll)", err)
	}
	// Another fabric of this test binary may have set the process's instance: start from none.
	if _, err := enableBusyPoll(0); err != nil {
		t.Fatal(err)
	}
	poll := time.Duration(0) // the default
	l := newLabTuned(t, nil, state.Config{DataPlane: true}, func(c *Config) { c.LBBusyPoll = poll })
	lb := must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "alb", SubnetID: l.subA.SubnetID,
		Type: api.LoadBalancerTypeApplication})).LoadBalancer
	must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: lb.LoadBalancerID,
		Protocol: api.ProtocolHTTP, Port: 80, DefaultActions: []api.Action{fixedAction(200, "hi")}}))
	l.converge()
	lns, rns, port := LBNetns(l.prefix, lb.LoadBalancerID), RouterNetns(l.prefix, l.vpc), lbPortName(lb.LoadBalancerID)
	internet := InternetNetns(l.prefix, l.vpc)
	client := nsClient(internet)
	eventually(t, 10*time.Second, "the load balancer to answer", func() bool {
		resp, err := client.Get("http://" + lb.PublicIPAddress + "/")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	check := func(t *testing.T, polled bool) {
		t.Helper()
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
			t.Errorf("with busy polling off a socket in the load balancer's namespace got NAPI ID %d: the link kept its GRO", id)
		}
	}

	t.Run("on", func(t *testing.T) {
		check(t, true)
		fds, err := epollFDs()
		if err != nil {
			t.Fatal(err)
		}
		var got []epollParams
		for _, fd := range fds {
			p, err := epollGetParams(fd)
			if err != nil {
				t.Fatalf("EPIOCGPARAMS on %d: %v", fd, err)
			}
			if p.BusyPollUsecs == uint32(DefaultLBBusyPoll/time.Microsecond) && p.BusyPollBudget == busyPollBudget && p.PreferBusyPoll == 1 {
				return
			}
			got = append(got, p)
		}
		t.Errorf("no epoll instance of the process busy-polls %v: %+v", DefaultLBBusyPoll, got)
	})

	t.Run("off, on a fabric that adopts the namespaces", func(t *testing.T) {
		l.stop()
		poll = -1
		l.start()
		check(t, false)
	})
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
