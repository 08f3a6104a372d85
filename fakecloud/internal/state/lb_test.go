package state

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// lbWorld is a VPC with one subnet, a load balancer in it, and a target group.
type lbWorld struct {
	world
	lb api.LoadBalancer
	tg api.TargetGroup
}

func newLBWorld(t *testing.T, s *Store, scheme string) lbWorld {
	t.Helper()
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	lb, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "web", Scheme: scheme, SubnetID: w.subnet})
	mustOK(t, err)
	tg, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "web-tg", Protocol: api.ProtocolTCP, Port: 8080, VpcID: w.vpc})
	mustOK(t, err)
	return lbWorld{world: w, lb: lb.LoadBalancer, tg: tg.TargetGroup}
}

func (w lbWorld) listen(t *testing.T, port int) api.Listener {
	t.Helper()
	l, err := w.s.CreateListener(admin(), &api.CreateListenerRequest{
		LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolTCP, Port: port,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: w.tg.TargetGroupID}},
	})
	mustOK(t, err)
	return l.Listener
}

func (w lbWorld) health(t *testing.T) map[string]api.TargetHealthDescription {
	t.Helper()
	out, err := w.s.DescribeTargetHealth(admin(), &api.DescribeTargetHealthRequest{TargetGroupID: w.tg.TargetGroupID})
	mustOK(t, err)
	m := map[string]api.TargetHealthDescription{}
	for _, d := range out.TargetHealthDescriptions {
		m[fmt.Sprintf("%s:%d", d.Target.IP, d.Target.Port)] = d
	}
	return m
}

func freeIn(t *testing.T, s *Store, subnet string) int {
	t.Helper()
	out, err := s.DescribeSubnets(admin(), &api.DescribeSubnetsRequest{SubnetIDs: []string{subnet}})
	mustOK(t, err)
	return out.Subnets[0].AvailableIPAddressCount
}

func TestLoadBalancerAddresses(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	before := freeIn(t, s, w.subnet)
	in, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "in", Scheme: api.SchemeInternal, SubnetID: w.subnet})
	mustOK(t, err)
	out, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "out", SubnetID: w.subnet})
	mustOK(t, err)
	if got := freeIn(t, s, w.subnet); got != before-2 {
		t.Fatalf("subnet has %d free addresses after two load balancers, want %d", got, before-2)
	}
	sub := netip.MustParsePrefix("10.0.0.0/24")
	for _, lb := range []api.LoadBalancer{in.LoadBalancer, out.LoadBalancer} {
		if !sub.Contains(netip.MustParseAddr(lb.PrivateIPAddress)) {
			t.Errorf("%s private address %s is outside its subnet", lb.LoadBalancerName, lb.PrivateIPAddress)
		}
	}
	if in.LoadBalancer.PublicIPAddress != "" || in.LoadBalancer.VIP != in.LoadBalancer.PrivateIPAddress {
		t.Errorf("internal load balancer: public %q, VIP %q; want no public address and the private one as VIP", in.LoadBalancer.PublicIPAddress, in.LoadBalancer.VIP)
	}
	if out.LoadBalancer.Scheme != api.SchemeInternetFacing || !publicPool.Contains(netip.MustParseAddr(out.LoadBalancer.PublicIPAddress)) || out.LoadBalancer.VIP != out.LoadBalancer.PublicIPAddress {
		t.Errorf("internet-facing load balancer: %+v; want a VIP from %s", out.LoadBalancer, publicPool)
	}
	// The load balancer's address is taken: an interface cannot claim it.
	_, err = s.CreateNetworkInterface(admin(), &api.CreateNetworkInterfaceRequest{SubnetID: w.subnet, PrivateIPAddress: in.LoadBalancer.PrivateIPAddress})
	wantCode(t, err, api.ErrInvalidIPAddressInUse)
	// The subnet cannot go while a load balancer lives in it.
	_, err = s.DeleteSubnet(admin(), &api.DeleteSubnetRequest{SubnetID: w.subnet})
	wantCode(t, err, &api.Error{Code: api.CodeDependencyViolation})

	for _, id := range []string{in.LoadBalancer.LoadBalancerID, out.LoadBalancer.LoadBalancerID} {
		_, err := s.DeleteLoadBalancer(admin(), &api.DeleteLoadBalancerRequest{LoadBalancerID: id})
		mustOK(t, err)
	}
	if got := freeIn(t, s, w.subnet); got != before {
		t.Fatalf("subnet has %d free addresses after deleting the load balancers, want %d back", got, before)
	}
	again, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "again", SubnetID: w.subnet})
	mustOK(t, err)
	if again.LoadBalancer.PublicIPAddress != out.LoadBalancer.PublicIPAddress {
		t.Errorf("public address %s was not reused after delete (got %s)", out.LoadBalancer.PublicIPAddress, again.LoadBalancer.PublicIPAddress)
	}
	// Deleting what is gone succeeds, as in ELBv2.
	_, err = s.DeleteLoadBalancer(admin(), &api.DeleteLoadBalancerRequest{LoadBalancerID: in.LoadBalancer.LoadBalancerID})
	mustOK(t, err)
}

// TestLoadBalancerStaticAddresses: a load balancer may ask for its addresses (a fakecloud
// extension): a free public pool address for an internet-facing one, a free subnet address for
// either; any other is AddressUnavailable naming why, a malformed one or a public address for an
// internal load balancer ValidationError. A repeat by name matches only the same addresses.
func TestLoadBalancerStaticAddresses(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	create := func(name, scheme, public, private string) (api.LoadBalancer, error) {
		r, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: name, Scheme: scheme, Type: api.LoadBalancerTypeApplication,
			SubnetID: w.subnet, PublicIPv4Address: public, PrivateIPv4Address: private})
		if err != nil {
			return api.LoadBalancer{}, err
		}
		return r.LoadBalancer, nil
	}
	gw, err := create("gw", "", "198.51.100.200", "10.0.0.200")
	mustOK(t, err)
	if gw.VIP != "198.51.100.200" || gw.PublicIPAddress != "198.51.100.200" || gw.PrivateIPAddress != "10.0.0.200" {
		t.Errorf("load balancer %+v; want public 198.51.100.200 (the VIP) and private 10.0.0.200", gw)
	}
	in, err := create("in", api.SchemeInternal, "", "10.0.0.201")
	mustOK(t, err)
	if in.VIP != "10.0.0.201" {
		t.Errorf("internal load balancer's VIP %s, want 10.0.0.201", in.VIP)
	}
	again, err := create("gw", "", "198.51.100.200", "")
	if err != nil || again.LoadBalancerID != gw.LoadBalancerID {
		t.Errorf("the same name and address again: %+v, %v; want %s", again, err, gw.LoadBalancerID)
	}
	_, err = create("gw", "", "198.51.100.201", "")
	wantCode(t, err, &api.Error{Code: api.CodeDuplicateLoadBalancerName})
	for _, tc := range []struct {
		name, scheme, public, private string
		code                          string
		says                          string
	}{
		{"held", "", "198.51.100.200", "", api.CodeAddressUnavailable, "holds it"},
		{"outside", "", "203.0.113.5", "", api.CodeAddressUnavailable, "not an address of the public pool"},
		{"broadcast", "", "198.51.100.255", "", api.CodeAddressUnavailable, "not an address of the public pool"},
		{"private-held", "", "", "10.0.0.201", api.CodeAddressUnavailable, "already assigned"},
		{"private-outside", "", "", "10.1.0.5", api.CodeAddressUnavailable, "outside"},
		{"private-reserved", "", "", "10.0.0.1", api.CodeAddressUnavailable, "reserved"},
		{"private-scheme-public", api.SchemeInternal, "198.51.100.9", "", api.CodeValidationError, "internet-facing load balancers only"},
		{"malformed", "", "not-an-ip", "", api.CodeValidationError, "PublicIpv4Address"},
		{"v6", "", "", "2001:db8::1", api.CodeValidationError, "PrivateIpv4Address"},
	} {
		_, err := create(tc.name, tc.scheme, tc.public, tc.private)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want %s saying %q", tc.name, err, tc.code, tc.says)
		}
	}
	// Nothing refused holds an address: the held ones free up with their load balancers.
	_, err = s.DeleteLoadBalancer(admin(), &api.DeleteLoadBalancerRequest{LoadBalancerID: gw.LoadBalancerID})
	mustOK(t, err)
	if _, err := create("gw2", "", "198.51.100.200", "10.0.0.200"); err != nil {
		t.Errorf("the addresses of a deleted load balancer: %v", err)
	}
}

func TestLoadBalancerNamesAndTokens(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	req := &api.CreateLoadBalancerRequest{Name: "web", Scheme: api.SchemeInternal, SubnetID: w.subnet}
	a, err := s.CreateLoadBalancer(admin(), req)
	mustOK(t, err)
	b, err := s.CreateLoadBalancer(admin(), req)
	mustOK(t, err)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same name and settings must answer the same load balancer (-first +second):\n%s", diff)
	}
	_, err = s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "web", SubnetID: w.subnet})
	wantCode(t, err, api.ErrDuplicateLoadBalancerName)

	tok := &api.CreateLoadBalancerRequest{Name: "tok", SubnetID: w.subnet, ClientToken: "t1"}
	c, err := s.CreateLoadBalancer(admin(), tok)
	mustOK(t, err)
	d, err := s.CreateLoadBalancer(admin(), tok)
	mustOK(t, err)
	if c.LoadBalancer.LoadBalancerID != d.LoadBalancer.LoadBalancerID {
		t.Errorf("a repeated client token made a second load balancer")
	}
	_, err = s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "other", SubnetID: w.subnet, ClientToken: "t1"})
	wantCode(t, err, api.ErrIdempotentParameterMismatch)
	_, err = s.CreateLoadBalancer(as("i-1"), &api.CreateLoadBalancerRequest{Name: "x", SubnetID: w.subnet})
	wantCode(t, err, api.ErrUnauthorizedOperation)
}

func TestLoadBalancerLimits(t *testing.T) {
	s := openT(t, Config{})
	w := newLBWorld(t, s, api.SchemeInternal)
	for i := 1; i < maxLoadBalancers; i++ {
		_, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: fmt.Sprintf("lb%d", i), SubnetID: w.subnet})
		mustOK(t, err)
	}
	_, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "one-too-many", SubnetID: w.subnet})
	wantCode(t, err, api.ErrTooManyLoadBalancers)

	for p := 1; p <= maxListenersPerLB; p++ {
		w.listen(t, p)
	}
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 999,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: w.tg.TargetGroupID}}})
	wantCode(t, err, api.ErrTooManyListeners)

	targets := make([]api.Target, maxTargetsPerGroup)
	for i := range targets {
		targets[i] = api.Target{IP: u32ToAddr(addrToU32(netip.MustParseAddr("10.0.8.0")) + uint32(i)).String()}
	}
	_, err = s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: w.tg.TargetGroupID, Targets: targets})
	mustOK(t, err)
	_, err = s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: w.tg.TargetGroupID, Targets: []api.Target{{IP: "10.0.100.1"}}})
	wantCode(t, err, api.ErrTooManyTargets)
	// Registering one already there is not one more.
	_, err = s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: w.tg.TargetGroupID, Targets: targets[:1]})
	mustOK(t, err)
}

func TestListenerRules(t *testing.T) {
	s := openT(t, Config{})
	w := newLBWorld(t, s, api.SchemeInternal)
	l := w.listen(t, 80)
	if again := w.listen(t, 80); again.ListenerID != l.ListenerID {
		t.Errorf("the same listener twice must answer the first")
	}
	other, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "other", Protocol: api.ProtocolUDP, Port: 53, VpcID: w.vpc})
	mustOK(t, err)
	fwd := func(tg string) []api.Action { return []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg}} }
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 80, DefaultActions: fwd(other.TargetGroup.TargetGroupID)})
	wantCode(t, err, api.ErrDuplicateListener)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 81, DefaultActions: fwd(other.TargetGroup.TargetGroupID)})
	wantCode(t, err, api.ErrIncompatibleProtocols)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolUDP, Port: 53, DefaultActions: fwd(other.TargetGroup.TargetGroupID)})
	mustOK(t, err)

	lb2, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "second", SubnetID: w.subnet})
	mustOK(t, err)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: lb2.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 80, DefaultActions: fwd(w.tg.TargetGroupID)})
	wantCode(t, err, api.ErrTargetGroupAssociationLimit)

	_, err = s.DeleteTargetGroup(admin(), &api.DeleteTargetGroupRequest{TargetGroupID: w.tg.TargetGroupID})
	wantCode(t, err, api.ErrResourceInUse)
	_, err = s.DeleteListener(admin(), &api.DeleteListenerRequest{ListenerID: l.ListenerID})
	mustOK(t, err)
	_, err = s.DeleteTargetGroup(admin(), &api.DeleteTargetGroupRequest{TargetGroupID: w.tg.TargetGroupID})
	mustOK(t, err)
	_, err = s.DeleteListener(admin(), &api.DeleteListenerRequest{ListenerID: l.ListenerID})
	wantCode(t, err, api.ErrListenerNotFound)
}

func TestTargetHealthTransitions(t *testing.T) {
	s := openT(t, Config{})
	w := newLBWorld(t, s, api.SchemeInternal)
	tg := w.tg.TargetGroupID
	_, err := s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: "10.0.1.5"}, {IP: "10.0.1.6", Port: 9090}}})
	mustOK(t, err)
	_, err = s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: "192.168.0.1"}}})
	wantCode(t, err, api.ErrInvalidTarget)

	state := func(key string) api.TargetHealth { t.Helper(); return w.health(t)[key].TargetHealth }
	if got := state("10.0.1.5:8080"); got.State != api.TargetHealthUnused || got.Reason != api.ReasonNotInUse {
		t.Fatalf("a target of a group no listener uses shows %+v, want unused/Target.NotInUse", got)
	}
	since := s.Seq()
	w.listen(t, 80)
	if got := state("10.0.1.5:8080"); got.State != api.TargetHealthInitial || got.Reason != api.ReasonRegistrationInProgress {
		t.Fatalf("once a listener forwards, the target shows %+v, want initial/Elb.RegistrationInProgress", got)
	}
	ch, err := s.WaitChanges(context.Background(), since)
	mustOK(t, err)
	if !hasTargetChange(ch.Changes, api.TargetID(tg, "10.0.1.5", 8080), api.TargetHealthInitial) {
		t.Errorf("creating the listener did not publish the targets' new state: %+v", ch.Changes)
	}

	since = s.Seq()
	mustOK(t, s.ReportTargetHealth([]api.TargetHealthReport{
		{TargetGroupID: tg, IP: "10.0.1.5", Port: 8080, State: api.TargetHealthHealthy},
		{TargetGroupID: tg, IP: "10.0.1.6", Port: 9090, State: api.TargetHealthUnhealthy, Reason: api.ReasonTimeout},
		{TargetGroupID: tg, IP: "10.0.9.9", Port: 1, State: api.TargetHealthHealthy}, // gone: ignored
	}))
	if got := state("10.0.1.6:9090"); got.State != api.TargetHealthUnhealthy || got.Reason != api.ReasonTimeout {
		t.Errorf("reported unhealthy target shows %+v", got)
	}
	ch, err = s.WaitChanges(context.Background(), since)
	mustOK(t, err)
	if !hasTargetChange(ch.Changes, api.TargetID(tg, "10.0.1.5", 8080), api.TargetHealthHealthy) {
		t.Errorf("the healthy report is not in the change stream: %+v", ch.Changes)
	}
	seq := s.Seq()
	mustOK(t, s.ReportTargetHealth([]api.TargetHealthReport{{TargetGroupID: tg, IP: "10.0.1.5", Port: 8080, State: api.TargetHealthHealthy}}))
	if s.Seq() != seq {
		t.Errorf("repeating a verdict wrote a change")
	}
	// Two verdicts on one target in one batch: the later one wins.
	mustOK(t, s.ReportTargetHealth([]api.TargetHealthReport{
		{TargetGroupID: tg, IP: "10.0.1.6", Port: 9090, State: api.TargetHealthHealthy},
		{TargetGroupID: tg, IP: "10.0.1.6", Port: 9090, State: api.TargetHealthUnhealthy, Reason: api.ReasonTimeout},
	}))
	if got := state("10.0.1.6:9090"); got.State != api.TargetHealthUnhealthy || got.Reason != api.ReasonTimeout {
		t.Errorf("after healthy then unhealthy in one batch the target shows %+v, want unhealthy", got)
	}
	if err := s.ReportTargetHealth([]api.TargetHealthReport{{TargetGroupID: tg, IP: "10.0.1.5", Port: 8080, State: api.TargetHealthDraining}}); err == nil {
		t.Errorf("a health check reporting draining was accepted")
	}

	_, err = s.DeregisterTargets(admin(), &api.DeregisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: "10.0.1.5"}}})
	mustOK(t, err)
	d := w.health(t)["10.0.1.5:8080"]
	if d.TargetHealth.State != api.TargetHealthDraining || d.TargetHealth.Reason != api.ReasonDeregistrationInProgress {
		t.Fatalf("deregistered target shows %+v, want draining", d.TargetHealth)
	}
	if left := time.Until(d.DrainDeadline); left < 290*time.Second || left > 300*time.Second {
		t.Errorf("drain deadline is %v away, want the default 300 s", left)
	}
	// Registered again: live again, with its last verdict.
	_, err = s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: "10.0.1.5"}}})
	mustOK(t, err)
	if d := w.health(t)["10.0.1.5:8080"]; d.TargetHealth.State != api.TargetHealthHealthy || !d.DrainDeadline.IsZero() {
		t.Errorf("re-registered target shows %+v (deadline %v), want healthy and no deadline", d.TargetHealth, d.DrainDeadline)
	}
	_, err = s.DeregisterTargets(admin(), &api.DeregisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: "10.0.3.3"}}})
	wantCode(t, err, api.ErrInvalidTarget)

	snap := s.Snapshot()
	if len(snap.LoadBalancers) != 1 || len(snap.Listeners) != 1 || len(snap.TargetGroups) != 1 || len(snap.Targets) != 2 {
		t.Errorf("snapshot holds %d LBs, %d listeners, %d groups, %d targets; want 1, 1, 1, 2",
			len(snap.LoadBalancers), len(snap.Listeners), len(snap.TargetGroups), len(snap.Targets))
	}
}

func hasTargetChange(changes []api.Change, id, state string) bool {
	for _, c := range changes {
		if c.Kind == api.KindTarget && c.ID == id && c.Target != nil && c.Target.TargetHealth.State == state {
			return true
		}
	}
	return false
}

// waitGone waits (bounded) for a target to leave the group, following the change stream.
func waitGone(t *testing.T, s *Store, tg, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	since := uint64(0)
	for {
		out, err := s.DescribeTargetHealth(admin(), &api.DescribeTargetHealthRequest{TargetGroupID: tg})
		mustOK(t, err)
		found := false
		for _, d := range out.TargetHealthDescriptions {
			found = found || api.TargetID(tg, d.Target.IP, d.Target.Port) == id
		}
		if !found {
			return
		}
		ch, err := s.WaitChanges(ctx, since)
		mustOK(t, err)
		if ctx.Err() != nil {
			t.Fatalf("draining target %s was not removed within 30 s", id)
		}
		since = ch.Seq
	}
}

func TestDrainingTargetIsRemovedAndSurvivesRestart(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := openT(t, Config{StateFile: path})
	w := newLBWorld(t, s, api.SchemeInternetFacing)
	tg := w.tg.TargetGroupID
	w.listen(t, 80)
	_, err := s.ModifyTargetGroupAttributes(admin(), &api.ModifyTargetGroupAttributesRequest{TargetGroupID: tg,
		Attributes: []api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: "1"}}})
	mustOK(t, err)
	_, err = s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: "10.0.1.5"}, {IP: "10.0.1.6"}, {IP: "10.0.1.7"}}})
	mustOK(t, err)
	_, err = s.DeregisterTargets(admin(), &api.DeregisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: "10.0.1.5"}}})
	mustOK(t, err)
	waitGone(t, s, tg, api.TargetID(tg, "10.0.1.5", 8080))

	// A drain pending at shutdown completes after restart, from the persisted deadline.
	_, err = s.DeregisterTargets(admin(), &api.DeregisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: "10.0.1.6"}}})
	mustOK(t, err)
	before := s.Snapshot()
	mustOK(t, s.Close())
	s2 := openT(t, Config{StateFile: path})
	after := s2.Snapshot()
	if diff := cmp.Diff(before.LoadBalancers, after.LoadBalancers); diff != "" {
		t.Errorf("load balancers changed across restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(before.TargetGroups, after.TargetGroups); diff != "" {
		t.Errorf("target groups changed across restart (-before +after):\n%s", diff)
	}
	if len(after.Listeners) != 1 || len(after.Targets) < 2 {
		t.Errorf("after restart: %d listeners, %d targets; want 1 and at least 2", len(after.Listeners), len(after.Targets))
	}
	waitGone(t, s2, tg, api.TargetID(tg, "10.0.1.6", 8080))
	if d := (lbWorld{world: world{s: s2}, tg: w.tg}).health(t); len(d) != 1 {
		t.Errorf("after the drains, %d targets are left, want 1: %v", len(d), d)
	}
}

func TestTargetGroupHealthCheckDefaultsAndModify(t *testing.T) {
	s := openT(t, Config{})
	w := newLBWorld(t, s, api.SchemeInternal)
	want := api.HealthCheck{Protocol: "TCP", Port: "traffic-port", IntervalSeconds: 10, TimeoutSeconds: 10, HealthyThresholdCount: 3, UnhealthyThresholdCount: 3}
	if diff := cmp.Diff(want, w.tg.HealthCheck); diff != "" {
		t.Errorf("default health check (-want +got):\n%s", diff)
	}
	if w.tg.DeregistrationDelaySeconds != 300 {
		t.Errorf("default deregistration delay %d, want 300", w.tg.DeregistrationDelaySeconds)
	}
	out, err := s.ModifyTargetGroup(admin(), &api.ModifyTargetGroupRequest{TargetGroupID: w.tg.TargetGroupID,
		HealthCheck: api.HealthCheck{Protocol: "HTTP", Path: "/healthz", IntervalSeconds: 5, TimeoutSeconds: 2}})
	mustOK(t, err)
	want = api.HealthCheck{Protocol: "HTTP", Port: "traffic-port", Path: "/healthz", IntervalSeconds: 5, TimeoutSeconds: 2,
		HealthyThresholdCount: 3, UnhealthyThresholdCount: 3, Matcher: "200-399"}
	if diff := cmp.Diff(want, out.TargetGroup.HealthCheck); diff != "" {
		t.Errorf("modified health check (-want +got):\n%s", diff)
	}
	_, err = s.ModifyTargetGroup(admin(), &api.ModifyTargetGroupRequest{TargetGroupID: w.tg.TargetGroupID, HealthCheck: api.HealthCheck{TimeoutSeconds: 9}})
	wantCode(t, err, api.ErrValidationError)
}

func TestLoadBalancerTagsAndDescribe(t *testing.T) {
	s := openT(t, Config{})
	w := newLBWorld(t, s, api.SchemeInternal)
	ids := []string{w.lb.LoadBalancerID, w.tg.TargetGroupID}
	_, err := s.AddTags(admin(), &api.AddTagsRequest{ResourceIDs: ids, Tags: []api.Tag{{Key: "owner", Value: "flatnet"}, {Key: "svc", Value: "web"}}})
	mustOK(t, err)
	_, err = s.RemoveTags(admin(), &api.RemoveTagsRequest{ResourceIDs: ids, TagKeys: []string{"svc"}})
	mustOK(t, err)
	tags, err := s.DescribeTags(admin(), &api.DescribeTagsRequest{ResourceIDs: ids})
	mustOK(t, err)
	for _, d := range tags.TagDescriptions {
		if diff := cmp.Diff([]api.Tag{{Key: "owner", Value: "flatnet"}}, d.Tags); diff != "" {
			t.Errorf("%s tags (-want +got):\n%s", d.ResourceID, diff)
		}
	}
	lbs, err := s.DescribeLoadBalancers(admin(), &api.DescribeLoadBalancersRequest{Filters: []api.Filter{{Name: "tag:owner", Values: []string{"flatnet"}}}})
	mustOK(t, err)
	if len(lbs.LoadBalancers) != 1 {
		t.Errorf("tag filter found %d load balancers, want 1", len(lbs.LoadBalancers))
	}
	_, err = s.DescribeLoadBalancers(admin(), &api.DescribeLoadBalancersRequest{Names: []string{"nope"}})
	wantCode(t, err, api.ErrLoadBalancerNotFound)
	_, err = s.DescribeTags(admin(), &api.DescribeTagsRequest{ResourceIDs: []string{"tg-00000000000000000"}})
	wantCode(t, err, api.ErrTargetGroupNotFound)
	many := make([]api.Tag, 0, 51)
	for i := range 51 {
		many = append(many, api.Tag{Key: fmt.Sprint("k", i)})
	}
	_, err = s.AddTags(admin(), &api.AddTagsRequest{ResourceIDs: ids, Tags: many})
	wantCode(t, err, api.ErrTooManyTags)
}

// TestLoadBalancerState: with a data plane a new load balancer is provisioning until the data
// plane reports it; its verdicts (active, failed with a reason) show in describes and in the
// change stream, a repeated verdict writes nothing, bad reports are refused naming the field,
// and the state survives a restart. Without a data plane a load balancer is active at once.
func TestLoadBalancerState(t *testing.T) {
	if lb := newLBWorld(t, openT(t, Config{}), api.SchemeInternal).lb; lb.State != api.LoadBalancerStateActive {
		t.Errorf("without a data plane a new load balancer is %s, want active", lb.State)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	s := openT(t, Config{StateFile: path, DataPlane: true})
	w := newLBWorld(t, s, api.SchemeInternal)
	id := w.lb.LoadBalancerID
	if w.lb.State != api.LoadBalancerStateProvisioning {
		t.Fatalf("with a data plane a new load balancer is %s, want provisioning", w.lb.State)
	}
	describe := func() api.LoadBalancer {
		t.Helper()
		out, err := s.DescribeLoadBalancers(admin(), &api.DescribeLoadBalancersRequest{LoadBalancerIDs: []string{id}})
		mustOK(t, err)
		return out.LoadBalancers[0]
	}
	const why = "DataPlane.ProgramLoadBalancer lb-1: netlink receive: operation not permitted"
	since := s.Seq()
	mustOK(t, s.ReportLoadBalancerState([]api.LoadBalancerStateReport{
		{LoadBalancerID: id, State: api.LoadBalancerStateFailed, Reason: why},
		{LoadBalancerID: "lb-gone", State: api.LoadBalancerStateActive}, // gone: ignored
	}))
	if lb := describe(); lb.State != api.LoadBalancerStateFailed || lb.StateReason != why {
		t.Errorf("after a failed report: %s %q", lb.State, lb.StateReason)
	}
	ch, err := s.WaitChanges(context.Background(), since)
	mustOK(t, err)
	if len(ch.Changes) != 1 || ch.Changes[0].LoadBalancer == nil || ch.Changes[0].LoadBalancer.State != api.LoadBalancerStateFailed {
		t.Errorf("the change stream after a failed report: %+v, want one load balancer upsert showing failed", ch.Changes)
	}
	seq := s.Seq()
	mustOK(t, s.ReportLoadBalancerState([]api.LoadBalancerStateReport{{LoadBalancerID: id, State: api.LoadBalancerStateFailed, Reason: why}}))
	if s.Seq() != seq {
		t.Errorf("repeating a verdict wrote a change")
	}
	for _, bad := range []struct {
		rep  api.LoadBalancerStateReport
		want string
	}{
		{api.LoadBalancerStateReport{State: api.LoadBalancerStateActive}, "LoadBalancerId"},
		{api.LoadBalancerStateReport{LoadBalancerID: id, State: api.LoadBalancerStateProvisioning}, "active, active_impaired or failed"},
		{api.LoadBalancerStateReport{LoadBalancerID: id, State: api.LoadBalancerStateFailed}, "needs a Reason"},
		{api.LoadBalancerStateReport{LoadBalancerID: id, State: api.LoadBalancerStateActiveImpaired}, "needs a Reason"},
		{api.LoadBalancerStateReport{LoadBalancerID: id, State: api.LoadBalancerStateActive, Reason: "x"}, "no Reason"},
		{api.LoadBalancerStateReport{LoadBalancerID: id, State: api.LoadBalancerStateFailed, Reason: strings.Repeat("x", 2000)}, "at most"},
	} {
		err := s.ReportLoadBalancerState([]api.LoadBalancerStateReport{bad.rep})
		wantCode(t, err, api.ErrValidationError)
		if err != nil && !strings.Contains(err.Error(), bad.want) {
			t.Errorf("report %+v refused with %q, want it to say %q", bad.rep, err, bad.want)
		}
	}
	if s.Seq() != seq {
		t.Errorf("refused reports wrote a change")
	}
	mustOK(t, s.ReportLoadBalancerState([]api.LoadBalancerStateReport{{LoadBalancerID: id, State: api.LoadBalancerStateActiveImpaired, Reason: "access log"}}))
	if lb := describe(); lb.State != api.LoadBalancerStateActiveImpaired || lb.StateReason != "access log" {
		t.Errorf("after an active_impaired report: %s %q", lb.State, lb.StateReason)
	}
	mustOK(t, s.ReportLoadBalancerState([]api.LoadBalancerStateReport{{LoadBalancerID: id, State: api.LoadBalancerStateActive}}))
	if lb := describe(); lb.State != api.LoadBalancerStateActive || lb.StateReason != "" {
		t.Errorf("after an active report: %s %q", lb.State, lb.StateReason)
	}
	mustOK(t, s.Close())
	s = openT(t, Config{StateFile: path, DataPlane: true})
	if lb := describe(); lb.State != api.LoadBalancerStateActive {
		t.Errorf("after a restart the load balancer is %s, want active as reported", lb.State)
	}
}
