package httpserve_test

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/flatnet/flatnet/internal/httpserve"
	"github.com/flatnet/flatnet/internal/httpserve/httpservetest"
)

// serve runs h on a loopback listener with timeouts t until the test ends.
func serve(t *testing.T, h http.Handler, to httpserve.Timeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpserve.New(h, to)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func TestTimeouts(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	httpservetest.CheckTimeouts(t, serve(t, h, httpservetest.Short), "/")
}

func TestDefaultsFillZeroFields(t *testing.T) {
	srv := httpserve.New(http.NotFoundHandler(), httpserve.Timeouts{Idle: time.Minute})
	if srv.IdleTimeout != time.Minute || srv.ReadHeaderTimeout != httpserve.Default.ReadHeader ||
		srv.ReadTimeout != httpserve.Default.Read || srv.WriteTimeout != httpserve.Default.Write {
		t.Errorf("server timeouts %v %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
}

// A long poll extends its own write deadline past the server's WriteTimeout and still answers.
func TestExtendWrite(t *testing.T) {
	to := httpservetest.Short
	to.Write = 200 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/poll" && !httpserve.ExtendWrite(w, 10*time.Second) {
			http.Error(w, "cannot extend", http.StatusInternalServerError)
			return
		}
		time.Sleep(2 * to.Write)
		_, _ = w.Write([]byte("late"))
	})
	addr := serve(t, h, to)
	resp, err := http.Get("http://" + addr + "/poll")
	if err != nil {
		t.Fatalf("long poll: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "late" {
		t.Errorf("long poll answered %d %q; want late", resp.StatusCode, b)
	}
	// Without the extension the answer is lost: the connection is closed under it.
	resp, err = http.Get("http://" + addr + "/plain")
	if err == nil {
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil && string(b) == "late" {
		t.Errorf("a late answer without ExtendWrite got through; WriteTimeout is not in force")
	}
}
