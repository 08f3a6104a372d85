package l7

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startUDPEcho answers each datagram with "<who> <the datagram>".
func startUDPEcho(t *testing.T, who string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(who+" "+string(buf[:n])), from)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// udpAsk sends msg on c and returns the answer ("" when none comes within a second).
func udpAsk(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func udpConfig(weights map[string]int, targets map[string][]Target) Config {
	cfg := Config{Listeners: []Listener{{Port: 53, Protocol: ProtocolUDP, Rules: []Rule{{Name: "udp", Action: Action{Forward: &Forward{}}}}}}}
	for _, g := range []string{"a", "b"} {
		if w, ok := weights[g]; ok {
			cfg.Listeners[0].Rules[0].Action.Forward.Backends = append(cfg.Listeners[0].Rules[0].Action.Forward.Backends, Backend{TargetGroup: g, Weight: w})
			cfg.TargetGroups = append(cfg.TargetGroups, TargetGroup{Name: g, Protocol: ProtocolUDP, Targets: targets[g]})
		}
	}
	return cfg
}

func TestUDPRelay(t *testing.T) {
	a1, a2, b := startUDPEcho(t, "a1"), startUDPEcho(t, "a2"), startUDPEcho(t, "b")
	e := newEngine(t, Options{})
	targets := map[string][]Target{"a": {{Addr: a1, State: StateHealthy}, {Addr: a2, State: StateHealthy}}, "b": {{Addr: b, State: StateHealthy}}}
	apply(t, e, udpConfig(map[string]int{"a": 1, "b": 0}, targets))
	vip := e.Addr(53).String()
	dial := func() net.Conn {
		c, err := net.Dial("udp4", vip)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	// A flow stays on the target its first datagram chose; new flows go round the targets of
	// the weighted group (b has weight 0).
	seen := map[string]int{}
	var flows []net.Conn
	for range 4 {
		c := dial()
		flows = append(flows, c)
		first := udpAsk(t, c, "q1")
		who, _, _ := strings.Cut(first, " ")
		if first != who+" q1" {
			t.Fatalf("answer %q, want \"<target> q1\"", first)
		}
		if again := udpAsk(t, c, "q2"); again != who+" q2" {
			t.Errorf("second datagram of a flow answered %q, want %q (the same target)", again, who+" q2")
		}
		seen[who]++
	}
	if seen["a1"] != 2 || seen["a2"] != 2 || seen["b"] != 0 {
		t.Errorf("flows per target = %v, want a1 and a2 two each, b none", seen)
	}
	if n := e.InFlight(a1) + e.InFlight(a2); n != 4 {
		t.Errorf("flows in flight = %d, want 4", n)
	}

	// a2 draining: new flows go to a1 only; a2's flows go on.
	targets["a"][1].State = StateDraining
	apply(t, e, udpConfig(map[string]int{"a": 1, "b": 0}, targets))
	for range 4 {
		if got := udpAsk(t, dial(), "q"); got != "a1 q" {
			t.Errorf("new flow with a2 draining answered %q, want a1", got)
		}
	}
	for _, c := range flows {
		if got := udpAsk(t, c, "q3"); !strings.HasSuffix(got, " q3") {
			t.Errorf("an existing flow got %q after a2 started draining, want its target's answer", got)
		}
	}

	// All weight on b.
	apply(t, e, udpConfig(map[string]int{"a": 0, "b": 1}, targets))
	if got := udpAsk(t, dial(), "q"); got != "b q" {
		t.Errorf("with all weight on b: %q", got)
	}
}

func TestUDPRelayIdleAndLimit(t *testing.T) {
	a := startUDPEcho(t, "a")
	reg := prometheus.NewRegistry()
	e := newEngine(t, Options{UDPIdleTimeout: 200 * time.Millisecond, UDPMaxFlows: 2, Registerer: reg})
	apply(t, e, udpConfig(map[string]int{"a": 1}, map[string][]Target{"a": {{Addr: a, State: StateHealthy}}}))
	vip := e.Addr(53).String()
	var cs []net.Conn
	for range 3 {
		c, err := net.Dial("udp4", vip)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	if udpAsk(t, cs[0], "1") != "a 1" || udpAsk(t, cs[1], "2") != "a 2" {
		t.Fatal("the first two flows were not relayed")
	}
	if got := udpAsk(t, cs[2], "3"); got != "" {
		t.Errorf("a third flow over the limit of 2 got %q, want its datagram dropped", got)
	}
	if n := gathered(t, reg)["flatnet_l7_udp_flows_refused_total{listener=53/udp}"]; n != 1 {
		t.Errorf("flatnet_l7_udp_flows_refused_total{listener=53/udp} = %v, want 1", n)
	}
	// Idle flows end and free their places.
	deadline := time.Now().Add(5 * time.Second)
	for e.InFlight(a) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.InFlight(a); n != 0 {
		t.Fatalf("%d flows left after the idle timeout", n)
	}
	if got := udpAsk(t, cs[2], "3"); got != "a 3" {
		t.Errorf("after the idle flows ended, a new flow got %q", got)
	}
	// The listener's count goes with it.
	apply(t, e, Config{})
	if n, ok := gathered(t, reg)["flatnet_l7_udp_flows_refused_total{listener=53/udp}"]; ok {
		t.Errorf("the removed listener's refused flows are still exported (%v)", n)
	}
}

func TestUDPConfigErrors(t *testing.T) {
	udp, tcp := TargetGroup{Name: "udp", Protocol: ProtocolUDP}, TargetGroup{Name: "tcp", Protocol: ProtocolTCP}
	for name, tc := range map[string]struct {
		l    Listener
		says string
	}{
		"UDP to TCP group":  {Listener{Port: 53, Protocol: ProtocolUDP, Rules: []Rule{{Action: forwardTo("tcp")}}}, "forwards to UDP groups"},
		"TCP to UDP group":  {Listener{Port: 53, Protocol: ProtocolTCP, Rules: []Rule{{Action: forwardTo("udp")}}}, "forwards to TCP groups"},
		"HTTP to UDP group": {Listener{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("udp")}}}, "is a UDP group"},
		"UDP two rules":     {Listener{Port: 53, Protocol: ProtocolUDP, Rules: []Rule{{Action: forwardTo("udp")}, {Action: forwardTo("udp")}}}, "exactly one rule"},
		"UDP with hosts":    {Listener{Port: 53, Protocol: ProtocolUDP, Rules: []Rule{{Hosts: []string{"a.example.com"}, Action: forwardTo("udp")}}}, "exactly one rule"},
		"UDP header edit":   {Listener{Port: 53, Protocol: ProtocolUDP, Rules: []Rule{{Action: Action{Forward: forwardTo("udp").Forward, RequestHeaders: HeaderEdit{Remove: []string{"x"}}}}}}, "forward only"},
	} {
		err := Validate(Config{Listeners: []Listener{tc.l}, TargetGroups: []TargetGroup{udp, tcp}})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v, want %q", name, err, tc.says)
		}
	}
	if err := Validate(Config{TargetGroups: []TargetGroup{{Name: "u", Protocol: ProtocolUDP, TLS: &BackendTLS{}}}}); err == nil {
		t.Error("a UDP group with TLS settings was valid")
	}
}

func TestUDPRelayUnhealthyAndRemoved(t *testing.T) {
	a1, a2 := startUDPEcho(t, "a1"), startUDPEcho(t, "a2")
	e := newEngine(t, Options{})
	targets := map[string][]Target{"a": {{Addr: a1, State: StateHealthy}, {Addr: a2, State: StateUnhealthy}}}
	apply(t, e, udpConfig(map[string]int{"a": 1}, targets))
	vip := e.UDPAddr(53).String()
	var cs []net.Conn
	for range 4 {
		c, err := net.Dial("udp4", vip)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
		if got := udpAsk(t, c, "q"); got != "a1 q" {
			t.Errorf("a new flow with a2 unhealthy answered %q, want a1", got)
		}
	}
	if n := e.InFlight(a1); n != 4 {
		t.Errorf("flows in flight to a1 = %d, want 4", n)
	}
	// Removing the listener closes its socket and every flow (the drain waits for no datagram).
	apply(t, e, Config{})
	if e.UDPAddr(53) != nil {
		t.Error("the UDP listener is still open after its removal")
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.InFlight(a1) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.InFlight(a1); n != 0 {
		t.Errorf("flows in flight after the listener's removal = %d, want 0", n)
	}
	if got := udpAsk(t, cs[0], "q"); got != "" {
		t.Errorf("a flow of the removed listener got %q", got)
	}
}

// TestTCPAndUDPOnOnePort: a TCP and a UDP listener share a port (as DNS does); each reaches its
// own targets, and removing one leaves the other.
func TestTCPAndUDPOnOnePort(t *testing.T) {
	u, tcp := startUDPEcho(t, "u"), startTCPEcho(t)
	e := newEngine(t, Options{})
	cfg := udpConfig(map[string]int{"a": 1}, map[string][]Target{"a": {{Addr: u, State: StateHealthy}}})
	cfg.Listeners = append(cfg.Listeners, Listener{Port: 53, Protocol: ProtocolTCP, Rules: []Rule{{Name: "tcp", Action: forwardTo("t")}}})
	cfg.TargetGroups = append(cfg.TargetGroups, TargetGroup{Name: "t", Protocol: ProtocolTCP, Targets: []Target{{Addr: tcp, State: StateHealthy}}})
	apply(t, e, cfg)
	tcpAsk := func() string {
		a := e.Addr(53)
		if a == nil {
			return "no TCP listener"
		}
		c, err := net.Dial("tcp", a.String())
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "tq")
		_ = c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		return string(b)
	}
	udpOnce := func() string {
		a := e.UDPAddr(53)
		if a == nil {
			return "no UDP listener"
		}
		c, err := net.Dial("udp4", a.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return udpAsk(t, c, "uq")
	}
	if got := tcpAsk(); got != "tq" {
		t.Errorf("TCP on 53: %q, want the echo", got)
	}
	if got := udpOnce(); got != "u uq" {
		t.Errorf("UDP on 53: %q, want u's answer", got)
	}
	if _, ok := e.Addr(53).(*net.TCPAddr); !ok {
		t.Errorf("Addr(53) = %v, want the TCP listener's", e.Addr(53))
	}
	// Without the TCP listener, UDP goes on.
	cfg.Listeners = cfg.Listeners[:1]
	apply(t, e, cfg)
	if got := udpOnce(); got != "u uq" {
		t.Errorf("UDP on 53 after the TCP listener's removal: %q", got)
	}
	if _, ok := e.Addr(53).(*net.UDPAddr); !ok {
		t.Errorf("Addr(53) with only UDP = %v, want the UDP listener's", e.Addr(53))
	}
}

func TestOnePortTwoListeners(t *testing.T) {
	groups := []TargetGroup{{Name: "udp", Protocol: ProtocolUDP}, {Name: "tcp", Protocol: ProtocolTCP}}
	udp := Listener{Port: 53, Protocol: ProtocolUDP, Rules: []Rule{{Action: forwardTo("udp")}}}
	tcp := Listener{Port: 53, Protocol: ProtocolTCP, Rules: []Rule{{Action: forwardTo("tcp")}}}
	httpL := Listener{Port: 53, Protocol: ProtocolHTTP}
	if err := Validate(Config{Listeners: []Listener{tcp, udp}, TargetGroups: groups}); err != nil {
		t.Errorf("TCP and UDP on 53: %v", err)
	}
	for name, ls := range map[string][]Listener{"two UDP": {udp, udp}, "HTTP and TCP": {httpL, tcp}} {
		err := Validate(Config{Listeners: ls, TargetGroups: groups})
		if err == nil || !strings.Contains(err.Error(), "listeners[1].port") {
			t.Errorf("%s on one port: %v, want listeners[1].port taken", name, err)
		}
	}
}
