package ipamd

import (
	"net"
	"net/http"
	"testing"

	"github.com/flatnet/flatnet/internal/httpserve/httpservetest"
)

// Finding 4 of the hardening issue: ipamd's introspection and metrics servers set only
// ReadHeaderTimeout. The server they are built with now closes idle connections and cuts slow
// bodies.
func TestHTTPServerTimeouts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := httpServer(mux, httpservetest.Short)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	httpservetest.CheckTimeouts(t, ln.Addr().String(), "/healthz")
}
