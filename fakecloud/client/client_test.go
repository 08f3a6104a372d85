package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// m5large launches one m5.large in a fresh VPC and returns it.
func m5large(t *testing.T, c *client.Client) api.Instance {
	t.Helper()
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: "10.0.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: vpc.Vpc.VpcID, CidrBlock: "10.0.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: sn.Subnet.SubnetID, InstanceType: "m5.large"})
	if err != nil {
		t.Fatal(err)
	}
	return run.Instances[0]
}

func TestServerErrorsRoundTrip(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	inst := m5large(t, env.Admin)

	// An m5.large takes 3 interfaces: the primary plus two.
	var lastErr error
	for idx := 1; idx <= 3; idx++ {
		eni, err := env.Admin.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: inst.SubnetID})
		if err != nil {
			t.Fatal(err)
		}
		_, lastErr = env.Admin.AttachNetworkInterface(ctx, &api.AttachNetworkInterfaceRequest{
			NetworkInterfaceID: eni.NetworkInterface.NetworkInterfaceID, InstanceID: inst.InstanceID, DeviceIndex: idx,
		})
		if idx < 3 && lastErr != nil {
			t.Fatalf("attach at %d: %v", idx, lastErr)
		}
	}
	if !errors.Is(lastErr, api.ErrAttachmentLimitExceeded) {
		t.Fatalf("4th interface: %v, want AttachmentLimitExceeded", lastErr)
	}
	if errors.Is(lastErr, api.ErrPrivateIPAddressLimitExceeded) || api.Retryable(lastErr) {
		t.Errorf("%v matches another code or is retryable", lastErr)
	}
	var e *api.Error
	if !errors.As(lastErr, &e) || e.RequestID == "" || e.Message == "" {
		t.Errorf("errors.As: %#v, want an *api.Error with message and request id", e)
	}

	_, err := env.Client("not-a-token").DescribeVpcs(ctx, nil)
	if !errors.Is(err, api.ErrAuthFailure) {
		t.Errorf("bad token: %v, want AuthFailure", err)
	}
}

func TestNonFakecloudAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"proxy 502", http.StatusBadGateway, "<html>bad gateway</html>", api.ErrServiceUnavailable},
		{"plain 500", http.StatusInternalServerError, "oops", api.ErrInternalError},
		{"429", http.StatusTooManyRequests, "slow down", api.ErrRequestLimitExceeded},
		{"404 html", http.StatusNotFound, "not here", &api.Error{Code: api.CodeInvalidRequest}},
		{"error body", http.StatusConflict, `{"Error":{"Code":"InvalidIPAddress.InUse","Message":"taken"}}`, api.ErrInvalidIPAddressInUse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set(api.HeaderRequestID, "req-1")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer hs.Close()
			_, err := client.New(hs.URL, "t").DescribeVpcs(context.Background(), nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var e *api.Error
			if !errors.As(err, &e) || e.RequestID != "req-1" {
				t.Errorf("request id not kept: %#v", e)
			}
		})
	}
}

func TestTransportErrorsAreWrapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	_, err = client.New("http://"+addr, "t").DescribeVpcs(context.Background(), nil)
	var opErr *net.OpError
	if err == nil || !errors.As(err, &opErr) {
		t.Errorf("connection refused: %v, want a wrapped *net.OpError", err)
	}
	var apiErr *api.Error
	if errors.As(err, &apiErr) || api.Retryable(err) {
		t.Errorf("a transport error posed as an API error: %v", err)
	}

	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hang.Close()
	defer close(release) // before Close, which waits for the handler
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := client.New(hang.URL, "t").DescribeVpcs(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v, want context.DeadlineExceeded", err)
	}
}

func TestNoRetries(t *testing.T) {
	calls := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls++
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"Error":{"Code":"RequestLimitExceeded","Message":"slow down"}}`))
	}))
	defer hs.Close()
	_, err := client.New(hs.URL, "t").AssignPrivateIPAddresses(context.Background(), &api.AssignPrivateIPAddressesRequest{})
	if !api.Retryable(err) || calls != 1 {
		t.Errorf("err %v after %d calls; want one call and a retryable error", err, calls)
	}
}

func TestSnapshotAndChanges(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	inst := m5large(t, env.Admin)
	snap, err := env.Admin.GetSnapshot(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, i := range snap.Snapshot.Instances {
		got = append(got, i.InstanceID)
	}
	if diff := cmp.Diff([]string{inst.InstanceID}, got); diff != "" {
		t.Errorf("snapshot instances (-want +got):\n%s", diff)
	}
	ch, err := env.Admin.WaitChanges(ctx, 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Seq != snap.Snapshot.Seq || len(ch.Changes) == 0 {
		t.Errorf("changes since 0: seq %d with %d changes, want seq %d", ch.Seq, len(ch.Changes), snap.Snapshot.Seq)
	}
}

// TestLargeAnswerKeepsConnection: after an answer of 1,000 targets the next call goes out on
// the same connection. A body closed before its end made the transport drop the connection, so
// every call after a large answer (a describe, a change-stream batch) dialled again.
func TestLargeAnswerKeepsConnection(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	sn, _ := env.Launch(t, "10.0.0.0/16", "10.0.0.0/20", "t3.small", 1)
	ctx := context.Background()
	c := env.Admin
	tg, err := c.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{Name: "big", Protocol: "TCP", Port: 80, VpcID: sn.VpcID})
	if err != nil {
		t.Fatal(err)
	}
	id := tg.TargetGroup.TargetGroupID
	var ts []api.Target
	for i := range 1000 {
		ts = append(ts, api.Target{IP: fmt.Sprintf("10.0.%d.%d", 1+i/250, 1+i%250)})
	}
	if _, err := c.RegisterTargets(ctx, &api.RegisterTargetsRequest{TargetGroupID: id, Targets: ts}); err != nil {
		t.Fatal(err)
	}
	var conns []string
	for range 3 {
		var addr string
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { addr = i.Conn.LocalAddr().String() }}
		resp, err := c.DescribeTargetHealth(httptrace.WithClientTrace(ctx, trace), &api.DescribeTargetHealthRequest{TargetGroupID: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.TargetHealthDescriptions) != 1000 {
			t.Fatalf("%d targets described, want 1000", len(resp.TargetHealthDescriptions))
		}
		conns = append(conns, addr)
	}
	if conns[1] != conns[0] || conns[2] != conns[0] {
		t.Errorf("calls after a large answer went out on connections %v, want one connection", conns)
	}
}
