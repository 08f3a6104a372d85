package cli

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/internal/httpserve/httpservetest"
)

// Finding 4 of the hardening issue: the API server set only ReadHeaderTimeout, so an idle
// keep-alive connection and a request whose body never came stayed open. Its long-poll change
// stream must still outlast the write timeout: it moves its own deadline.
func TestAPIServerTimeouts(t *testing.T) {
	st, err := server.OpenStore(server.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	const admin = "timeouts-admin"
	srv, err := server.New(server.Config{Store: st, AdminToken: admin, Throttle: server.ThrottleConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- listenAndServe(ctx, addr, srv, srv, httpservetest.Short, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	up := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !up; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			up = true
		}
	}
	if !up {
		t.Fatal("the API server did not come up")
	}

	httpservetest.CheckTimeouts(t, addr, "/healthz")
	httpservetest.CheckTimeouts(t, addr, "/api/"+api.ActionDescribeVpcs)

	// A long poll waiting past the write timeout still gets its (empty) answer.
	c := client.New("http://"+addr, admin)
	snap, err := c.GetSnapshot(context.Background(), &api.GetSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wait := 2 * httpservetest.Short.Write
	resp, err := c.GetChanges(context.Background(), &api.GetChangesRequest{Since: snap.Snapshot.Seq, WaitMillis: int(wait.Milliseconds())})
	if err != nil {
		t.Fatalf("GetChanges waiting %v, past the write timeout of %v: %v", wait, httpservetest.Short.Write, err)
	}
	if len(resp.Changes) != 0 {
		t.Errorf("changes on an idle cloud: %v", resp.Changes)
	}
}
