package ipamd_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// TestAllocationOfAPluginThatHungUp: the plugin gives up (its timeout) while its allocation
// waits for the cloud; the address the cloud then delivers is not left held by that owner.
func TestAllocationOfAPluginThatHungUp(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.small")
	cfg := n.config(t.TempDir())
	cfg.Pool.WarmLow, cfg.Pool.WarmHigh = 0, 0 // no warm pool: every allocation waits for the cloud
	start(t, cfg)
	ctx := context.Background()
	if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{
		Action: api.ActionAssignPrivateIPAddresses, LatencyMillis: 1500,
	}}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	o := owner(1)
	req := &wire.Request{Version: wire.Version, Op: wire.OpAllocate, Allocate: &wire.AllocateRequest{Owner: o, Pod: wire.PodRef{Namespace: "default", Name: "p"}}}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.UnixConn).CloseWrite() // as wire.Call does
	time.Sleep(300 * time.Millisecond)
	conn.Close() // the plugin's timeout
	time.Sleep(2500 * time.Millisecond)
	if a, err := check(ctx, cfg.SocketPath, o); !isCode(err, wire.CodeNotFound) {
		t.Fatalf("the owner whose plugin hung up holds %v (%v); want nothing", a, err)
	}
	// The pool grew meanwhile; the next plugin that waits gets the address.
	a, err := allocate(ctx, cfg.SocketPath, owner(2))
	if err != nil || !a.IP.IsValid() {
		t.Fatalf("next allocation: %v %v", a, err)
	}
}
