package ipamd_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// TestDatastoreFailureStopsAllocations: after the datastore fails a write, allocations get an
// internal error, STATUS and /readyz say not ready, /healthz fails (a restart is the cure); a
// restart finds every acknowledged allocation and none of the refused ones.
func TestDatastoreFailureStopsAllocations(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.small")
	cfg := n.config(t.TempDir())
	cfg.IntrospectAddr = freePort(t)
	ctx := context.Background()
	d, stop := startWith(t, cfg, ipamd.Deps{Clouds: clouds})
	held, err := allocate(ctx, cfg.SocketPath, owner(0))
	if err != nil {
		t.Fatal(err)
	}
	ipamd.BreakStore(d)
	for i := 1; i <= 2; i++ {
		if a, err := allocate(ctx, cfg.SocketPath, owner(i)); !isCode(err, wire.CodeInternal) {
			t.Fatalf("allocation %d after the datastore failed: %v %v; want an internal error", i, a, err)
		}
	}
	resp, err := wire.Call(ctx, cfg.SocketPath, &wire.Request{Op: wire.OpStatus})
	if err != nil || resp.Status.Ready || resp.Status.Code != 50 {
		t.Fatalf("status after the datastore failed: %+v %v; want not ready, code 50", resp.Status, err)
	}
	for path, want := range map[string]int{"/healthz": http.StatusInternalServerError, "/readyz": http.StatusServiceUnavailable} {
		r, err := http.Get("http://" + cfg.IntrospectAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Fatalf("%s answers %d after the datastore failed; want %d", path, r.StatusCode, want)
		}
	}
	stop()

	startWith(t, cfg, ipamd.Deps{Clouds: clouds})
	if a, err := check(ctx, cfg.SocketPath, owner(0)); err != nil || a.IP != held.IP {
		t.Fatalf("after restart the acknowledged allocation is %v (%v); want %s", a, err, held.IP)
	}
	for i := 1; i <= 2; i++ {
		if a, err := check(ctx, cfg.SocketPath, owner(i)); !isCode(err, wire.CodeNotFound) {
			t.Fatalf("after restart refused allocation %d holds %v (%v)", i, a, err)
		}
	}
}
