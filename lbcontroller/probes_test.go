package lbcontroller

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/flatnet/flatnet/internal/httpserve/httpservetest"
)

// Finding 4 of the hardening issue: lbcontroller's metrics and probe servers (controller-runtime's)
// bounded neither a request's body nor, for 90 s, an idle connection. Its own servers close idle
// connections and cut slow bodies, and still answer /metrics, /healthz and /readyz.
func TestProbeServerTimeouts(t *testing.T) {
	servers, err := probeServers(RunOptions{MetricsAddr: "127.0.0.1:0", ProbeAddr: "127.0.0.1:0"}, httpservetest.Short)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 {
		t.Fatalf("%d servers; want metrics and probes", len(servers))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(servers))
	for _, s := range servers {
		go func() { done <- s.Start(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range servers {
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		}
	})
	for i, path := range []string{"/metrics", "/healthz"} {
		addr := servers[i].Listener.Addr().String()
		for _, p := range []string{path, "/readyz"}[:1+i] {
			resp, err := http.Get("http://" + addr + p)
			if err != nil {
				t.Fatalf("GET %s: %v", p, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d", p, resp.StatusCode)
			}
		}
		httpservetest.CheckTimeouts(t, addr, path)
	}
	off, err := probeServers(RunOptions{MetricsAddr: "0", ProbeAddr: ""}, httpservetest.Short)
	if err != nil || len(off) != 0 {
		t.Errorf("both turned off: %d servers, %v", len(off), err)
	}
}
