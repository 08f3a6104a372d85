package fabric

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// lbState is a load balancer's state and reason in the store.
func (l *lbLab) lbState(t *testing.T, id string) (string, string) {
	t.Helper()
	out := must(l.st.DescribeLoadBalancers(admin(), &api.DescribeLoadBalancersRequest{LoadBalancerIDs: []string{id}}))
	if len(out.LoadBalancers) != 1 {
		t.Fatalf("load balancer %s: %d found", id, len(out.LoadBalancers))
	}
	return out.LoadBalancers[0].State, out.LoadBalancers[0].StateReason
}

// lbGauge is the fabric's count of load balancers in a state.
func (l *lbLab) lbGauge(t *testing.T, state string) float64 {
	t.Helper()
	mfs, err := l.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "flatnet_fabric_load_balancers" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "state" && lp.GetValue() == state {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestLBFailsHonestly: a load balancer whose forwarding program the kernel refuses is never
// reported active: it is failed with the reason, its targets are unavailable (and not health
// checked, so they cannot turn healthy), nothing answers on its VIP, and the failure is counted;
// once the cause is gone it recovers by itself: active, targets healthy, traffic through it. A
// load balancer that was already programmed keeps working throughout.
func TestLBFailsHonestly(t *testing.T) {
	l := newLBLab(t)
	a, b, c := l.pods[0], l.pods[1], l.pods[2]
	l.waitHealth(t, l.tcpTG, api.TargetHealthHealthy, a, b, c)
	if st, reason := l.lbState(t, l.lb.LoadBalancerID); st != api.LoadBalancerStateActive || reason != "" {
		t.Fatalf("programmed load balancer is %s (%q), want active", st, reason)
	}

	// The fault is the new load balancer's alone: the programmed one may be reprogrammed at any
	// time (its other target groups' health turning), and that must not race the test.
	l.faults.spare(l.lb.LoadBalancerID)
	l.faults.set(api.DataPlaneProgramLoadBalancer, errors.New("netlink receive: operation not permitted"))
	lb2 := must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "api", SubnetID: l.subA.SubnetID})).LoadBalancer
	if lb2.State != api.LoadBalancerStateProvisioning {
		t.Errorf("a new load balancer with a data plane is %s, want provisioning", lb2.State)
	}
	hc := api.HealthCheck{Protocol: api.ProtocolTCP, Port: fmt.Sprint(podHealthPort), IntervalSeconds: 5, TimeoutSeconds: 2,
		HealthyThresholdCount: 2, UnhealthyThresholdCount: 2}
	tg := must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "api-tcp", Protocol: api.ProtocolTCP,
		Port: podPort, VpcID: l.vpc, HealthCheck: hc})).TargetGroup.TargetGroupID
	must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{
		{IP: a.ip.String(), Port: podPort}, {IP: c.ip.String(), Port: podPort}}}))
	must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: lb2.LoadBalancerID, Protocol: api.ProtocolTCP,
		Port: 80, DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg}}}))

	eventually(t, 20*time.Second, "the load balancer to be reported failed", func() bool {
		st, _ := l.lbState(t, lb2.LoadBalancerID)
		return st == api.LoadBalancerStateFailed
	})
	_, reason := l.lbState(t, lb2.LoadBalancerID)
	for _, want := range []string{api.DataPlaneProgramLoadBalancer, lb2.LoadBalancerID, "operation not permitted"} {
		if !strings.Contains(reason, want) {
			t.Errorf("failure reason %q does not name %q", reason, want)
		}
	}
	eventually(t, 10*time.Second, "the failed load balancer's targets to be unavailable", func() bool {
		for _, p := range []*pod{a, c} {
			if st, r := l.health(tg, p.ip); st != api.TargetHealthUnavailable || r != api.ReasonInternalError {
				return false
			}
		}
		return true
	})
	// Health checks would turn them healthy with their second probe, 5 s after the first, if
	// they ran.
	time.Sleep(7 * time.Second)
	for _, p := range []*pod{a, c} {
		if st, r := l.health(tg, p.ip); st != api.TargetHealthUnavailable {
			t.Errorf("target %s of the failed load balancer is %s (%s), want unavailable", p.ip, st, r)
		}
	}
	if st, _ := l.lbState(t, lb2.LoadBalancerID); st != api.LoadBalancerStateFailed {
		t.Errorf("load balancer is %s while its program still fails, want failed", st)
	}
	vip2 := netip.AddrPortFrom(addr(lb2.PublicIPAddress), 80)
	if name, _, err := askTCP(l.internet, vip2); err == nil {
		t.Errorf("the failed load balancer's VIP %s answered (by %s)", vip2, name)
	}
	if got := l.lbGauge(t, api.LoadBalancerStateFailed); got != 1 {
		t.Errorf("flatnet_fabric_load_balancers{state=failed} = %v, want 1", got)
	}
	// The programmed load balancer is untouched.
	priv := l.lb.PrivateIPAddress
	if got := spread(t, askTCP, l.internet, netip.AddrPortFrom(addr(l.lb.PublicIPAddress), 80), 9, priv); len(got) != 3 {
		t.Errorf("the healthy load balancer's answers by pod: %v, want all three", got)
	}
	if st, _ := l.lbState(t, l.lb.LoadBalancerID); st != api.LoadBalancerStateActive {
		t.Errorf("the untouched load balancer is %s, want active", st)
	}

	// The cause goes: the fabric's retry programs it, without any change in the control plane.
	l.faults.set(api.DataPlaneProgramLoadBalancer, nil)
	eventually(t, 20*time.Second, "the load balancer to recover", func() bool {
		st, reason := l.lbState(t, lb2.LoadBalancerID)
		return st == api.LoadBalancerStateActive && reason == ""
	})
	l.waitHealth(t, tg, api.TargetHealthHealthy, a, c)
	got := spread(t, askTCP, l.internet, vip2, 10, lb2.PrivateIPAddress)
	if names := sortedNames(got); !slices.Equal(names, podNames(a, c)) {
		t.Errorf("answers through the recovered load balancer by pod: %v, want %v", got, podNames(a, c))
	}
	if got := l.lbGauge(t, api.LoadBalancerStateActive); got != 2 {
		t.Errorf("flatnet_fabric_load_balancers{state=active} = %v, want 2", got)
	}
}

// TestLBBaseFailure: when the load balancer's namespace, link or addresses cannot be set up, it
// is failed too, and recovers the same way.
func TestLBBaseFailure(t *testing.T) {
	l := newLBLab(t)
	l.faults.set(api.DataPlaneEnsureLoadBalancer, errors.New("create link: file exists"))
	lb2 := must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "base", SubnetID: l.subA.SubnetID})).LoadBalancer
	eventually(t, 20*time.Second, "the load balancer to be reported failed", func() bool {
		st, reason := l.lbState(t, lb2.LoadBalancerID)
		return st == api.LoadBalancerStateFailed && strings.Contains(reason, api.DataPlaneEnsureLoadBalancer)
	})
	l.faults.set(api.DataPlaneEnsureLoadBalancer, nil)
	eventually(t, 20*time.Second, "the load balancer to recover", func() bool {
		st, _ := l.lbState(t, lb2.LoadBalancerID)
		return st == api.LoadBalancerStateActive
	})
}

// TestBackoff: retries of a failed convergence wait longer each time, up to the cap.
func TestBackoff(t *testing.T) {
	base, limit := 500*time.Millisecond, 8*time.Second
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, backoff(base, limit, n))
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("backoff: %v, want %v", got, want)
	}
	if d := backoff(base, limit, 0); d != base {
		t.Errorf("backoff with no failure: %v, want %v", d, base)
	}
}
