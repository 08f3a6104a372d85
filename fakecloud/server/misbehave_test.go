package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

func TestThrottlingFollowsTheBucketMath(t *testing.T) {
	clk := &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, servertest.Options{Throttle: &server.ThrottleConfig{}, Clock: clk.Now})
	ctx := context.Background()
	// The fixture ran instances once; RunInstances holds 5 and gains 2 per second.
	run := func() error {
		_, err := f.Admin.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: f.subnet.SubnetID, InstanceType: "t3.nano"})
		return err
	}
	for i := range 4 {
		if err := run(); err != nil {
			t.Fatalf("run %d within the burst: %v", i+2, err)
		}
	}
	before := f.snapshot(t)
	if err := run(); !errors.Is(err, api.ErrRequestLimitExceeded) {
		t.Fatalf("6th run in the same instant: %v, want RequestLimitExceeded", err)
	}
	mustUnchanged(t, before, f.snapshot(t))
	clk.Advance(499 * time.Millisecond)
	if err := run(); !errors.Is(err, api.ErrRequestLimitExceeded) {
		t.Fatalf("after 499ms: %v, want RequestLimitExceeded", err)
	}
	clk.Advance(time.Millisecond)
	if err := run(); err != nil {
		t.Fatalf("after 500ms a token is back: %v", err)
	}

	// Unfiltered describes have a smaller bucket than filtered ones, and callers have their own.
	describe := func(c interface {
		DescribeInstances(context.Context, *api.DescribeInstancesRequest) (*api.DescribeInstancesResponse, error)
	}, req *api.DescribeInstancesRequest) error {
		_, err := c.DescribeInstances(ctx, req)
		return err
	}
	for i := range 50 {
		if err := describe(f.Admin, &api.DescribeInstancesRequest{}); err != nil {
			t.Fatalf("unfiltered describe %d: %v", i+1, err)
		}
	}
	if err := describe(f.Admin, &api.DescribeInstancesRequest{}); !errors.Is(err, api.ErrRequestLimitExceeded) {
		t.Errorf("51st unfiltered describe: %v, want RequestLimitExceeded", err)
	}
	filtered := &api.DescribeInstancesRequest{InstanceIDs: []string{f.instances[0].InstanceID}}
	if err := describe(f.Admin, filtered); err != nil {
		t.Errorf("filtered describe after the unfiltered bucket ran dry: %v", err)
	}
	if err := describe(f.Client(f.instances[0].Token), &api.DescribeInstancesRequest{}); err != nil {
		t.Errorf("another caller's unfiltered describe: %v", err)
	}
	// Control actions are never throttled.
	for range 200 {
		f.snapshot(t)
	}
	if got := scrape(t, f.URL); !containsLine(got, `fakecloud_throttled_requests_total{action="RunInstances"} 2`) {
		t.Errorf("throttled counter missing from metrics:\n%s", got)
	}
}

func TestFaultInjectionIsReproducibleWithASeed(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	ctx := context.Background()
	pattern := func() []bool {
		if _, err := f.Admin.SetFault(ctx, &api.SetFaultRequest{
			Fault: api.Fault{Action: api.ActionDescribeVpcs, ErrorRate: 0.5, ErrorCode: api.CodeServiceUnavailable},
			Seed:  99,
		}); err != nil {
			t.Fatalf("SetFault: %v", err)
		}
		out := make([]bool, 64)
		for i := range out {
			_, err := f.Admin.DescribeVpcs(ctx, nil)
			if err != nil && !errors.Is(err, api.ErrServiceUnavailable) {
				t.Fatalf("call %d: %v, want success or the injected ServiceUnavailable", i, err)
			}
			out[i] = err != nil
		}
		return out
	}
	first := pattern()
	if diff := cmp.Diff(first, pattern()); diff != "" {
		t.Errorf("the same seed gave another sequence (-first +second):\n%s", diff)
	}
	failed := 0
	for _, fail := range first {
		if fail {
			failed++
		}
	}
	if failed == 0 || failed == len(first) {
		t.Errorf("%d of %d calls failed at rate 0.5", failed, len(first))
	}
	// Other actions are untouched; clearing ends the fault.
	if _, err := f.Admin.DescribeSubnets(ctx, nil); err != nil {
		t.Errorf("DescribeSubnets under a DescribeVpcs fault: %v", err)
	}
	if _, err := f.Admin.ClearFaults(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := f.Admin.DescribeVpcs(ctx, nil); err != nil {
			t.Fatalf("after ClearFaults: %v", err)
		}
	}
}

func TestFaultKinds(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	ctx := context.Background()
	set := func(fl api.Fault) {
		t.Helper()
		if _, err := f.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: fl}); err != nil {
			t.Fatalf("SetFault(%+v): %v", fl, err)
		}
	}

	// A certain error on every action still leaves the control actions working.
	set(api.Fault{Action: "*", ErrorRate: 1})
	before := f.snapshot(t)
	_, err := f.Admin.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: "10.9.0.0/16"})
	if !errors.Is(err, api.ErrInternalError) || !api.Retryable(err) {
		t.Errorf("CreateVpc under a certain fault: %v, want a retryable InternalError", err)
	}
	mustUnchanged(t, before, f.snapshot(t))
	if got := f.listFaults(t); len(got) != 1 || got[0].ErrorCode != api.CodeInternalError {
		t.Errorf("ListFaults = %+v", got)
	}
	if _, err := f.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{Action: "*"}); err != nil {
		t.Fatal(err)
	}

	set(api.Fault{Action: api.ActionDescribeSubnets, LatencyMillis: 80})
	start := time.Now()
	if _, err := f.Admin.DescribeSubnets(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("DescribeSubnets took %v under 80ms of injected latency", took)
	}

	// A visibility lag hides a new interface from the calls that name it.
	set(api.Fault{Action: api.ActionDescribeNetworkInterfaces, VisibilityLagMillis: 60_000})
	created, err := f.Admin.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: f.subnet.SubnetID})
	if err != nil {
		t.Fatal(err)
	}
	byID := &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{created.NetworkInterface.NetworkInterfaceID}}
	if _, err := f.Admin.DescribeNetworkInterfaces(ctx, byID); !api.IsNotFound(err) {
		t.Errorf("describing a new interface under a visibility lag: %v, want NotFound", err)
	}
	if _, err := f.Admin.ClearFaults(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Admin.DescribeNetworkInterfaces(ctx, byID); err != nil {
		t.Errorf("describing it without the lag: %v", err)
	}

	// After commit: the change is made, the answer is lost; a retry with the same client token
	// gets the first answer, so nothing is done twice.
	set(api.Fault{Action: api.ActionAssignPrivateIPAddresses, ErrorRate: 1, ErrorCode: api.CodeServiceUnavailable, AfterCommit: true})
	eni := created.NetworkInterface.NetworkInterfaceID
	req := &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1, ClientToken: "lost-1"}
	if _, err := f.Admin.AssignPrivateIPAddresses(ctx, req); !errors.Is(err, api.ErrServiceUnavailable) {
		t.Fatalf("assign under an after-commit fault: %v, want ServiceUnavailable", err)
	}
	if _, err := f.Admin.ClearFaults(ctx, nil); err != nil {
		t.Fatal(err)
	}
	d, err := f.Admin.DescribeNetworkInterfaces(ctx, byID)
	if err != nil || len(d.NetworkInterfaces[0].PrivateIPAddresses) != 2 {
		t.Fatalf("after a lost reply the interface holds %+v (%v); want the primary and the assigned address", d, err)
	}
	again, err := f.Admin.AssignPrivateIPAddresses(ctx, req)
	if err != nil || len(again.AssignedPrivateIPAddresses) != 1 || again.AssignedPrivateIPAddresses[0] != d.NetworkInterfaces[0].PrivateIPAddresses[1].PrivateIPAddress {
		t.Fatalf("retry with the same token: %+v, %v; want the address assigned the first time", again, err)
	}

	metrics := scrape(t, f.URL)
	for _, line := range []string{
		`fakecloud_injected_faults_total{action="AssignPrivateIpAddresses",kind="lost_reply"} 1`,
		`fakecloud_injected_faults_total{action="CreateVpc",kind="error"} 1`,
		`fakecloud_injected_faults_total{action="DescribeSubnets",kind="latency"} 1`,
		`fakecloud_injected_faults_total{action="DescribeNetworkInterfaces",kind="visibility_lag"} 1`,
	} {
		if !containsLine(metrics, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

func TestChangesLongPoll(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	ctx := context.Background()
	since := f.snapshot(t).Seq

	start := time.Now()
	empty, err := f.Admin.WaitChanges(ctx, since, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 5*time.Second {
		t.Errorf("an empty poll of 100ms took %v", took)
	}
	if len(empty.Changes) != 0 || empty.Seq != since {
		t.Errorf("empty poll = %+v, want no changes at seq %d", empty, since)
	}

	type result struct {
		resp *api.GetChangesResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		r, err := f.Admin.WaitChanges(ctx, since, 20*time.Second)
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("the poll returned before any change: %+v, %v", r.resp, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	vpc, err := f.Admin.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: "10.7.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the poll did not return after a change")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.resp.Seq <= since || len(r.resp.Changes) == 0 {
		t.Fatalf("poll = %+v, want changes after %d", r.resp, since)
	}
	c := r.resp.Changes[0]
	if c.Kind != api.KindVpc || c.ID != vpc.Vpc.VpcID || c.Op != api.ChangeUpsert || c.Vpc == nil {
		t.Errorf("change = %+v, want an upsert of %s", c, vpc.Vpc.VpcID)
	}
}

func TestCloseEndsLongPolls(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	since := f.snapshot(t).Seq
	done := make(chan error, 1)
	go func() {
		_, err := f.Admin.WaitChanges(context.Background(), since, 20*time.Second)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	f.Server.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("poll ended by Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the long poll")
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	req, err := http.NewRequest(http.MethodGet, f.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := send(t, req); a.status != http.StatusOK {
		t.Errorf("/healthz: %d %s", a.status, a.body)
	}
	_, _ = f.Admin.DeleteVpc(context.Background(), &api.DeleteVpcRequest{VpcID: "vpc-nope"})
	m := scrape(t, f.URL)
	for _, line := range []string{
		`fakecloud_requests_total{action="CreateVpc",code="OK"} 1`,
		`fakecloud_requests_total{action="RunInstances",code="OK"} 1`,
		`fakecloud_requests_total{action="DeleteVpc",code="InvalidVpcID.NotFound"} 1`,
		`fakecloud_request_duration_seconds_count{action="CreateVpc"} 1`,
	} {
		if !containsLine(m, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}
