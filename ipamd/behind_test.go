package ipamd_test

import (
	"context"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// TestRecordBehindCloudHealsAtOnce: the cloud holds addresses on an interface that ipamd's
// record lacks (as after an unassign that failed once the record had forgotten them), so the
// growth ipamd plans exceeds the interface's limit and the cloud refuses it. ipamd resyncs at
// once, adopts them and serves the waiting allocation from them: a refusal that only says
// "your record is behind" is not waited out like a cloud saying no, while a pod waits.
func TestRecordBehindCloudHealsAtOnce(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.small") // 4 addresses per interface: the primary and 3 secondaries
	cfg := n.config(t.TempDir())
	cfg.Pool.WarmLow, cfg.Pool.WarmHigh = 0, 0 // no warm pool: the allocation makes ipamd grow
	cfg.Pool.MaxInterfaces = 1                 // the primary interface only
	cfg.ResyncInterval = time.Hour             // no periodic resync comes to the rescue
	// Shorter than the 1 s a failed pool action otherwise waits before the next plan.
	cfg.AllocWait = 700 * time.Millisecond
	start(t, cfg)
	ctx := context.Background()

	out, err := env.Admin.DescribeInstances(ctx, &api.DescribeInstancesRequest{InstanceIDs: []string{n.id}})
	if err != nil {
		t.Fatal(err)
	}
	eni := out.Instances[0].NetworkInterfaces[0].NetworkInterfaceID
	behind, err := env.Admin.AssignPrivateIPAddresses(ctx, &api.AssignPrivateIPAddressesRequest{
		NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 3})
	if err != nil {
		t.Fatalf("fill the interface behind ipamd's back: %v", err)
	}

	alloc, err := allocate(ctx, cfg.SocketPath, owner(1))
	if err != nil {
		t.Fatalf("allocation while the record is behind the cloud: %v", err)
	}
	got := alloc.IP
	adopted := false
	for _, a := range behind.AssignedPrivateIPAddresses {
		adopted = adopted || a == got.String()
	}
	if !adopted {
		t.Errorf("allocated %s; want one of the addresses the record lacked, %v (the interface holds no other)", got, behind.AssignedPrivateIPAddresses)
	}
}
