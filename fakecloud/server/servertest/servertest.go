// Package servertest runs a real fakecloud (store, server, HTTP listener) inside a test, so that
// any component's tests can talk to the cloud through the real client instead of a mock.
package servertest

import (
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/server"
)

// AdminToken is the admin token of every test server.
const AdminToken = "test-admin-token"

// Options tune a test server; the zero value disables throttling and keeps state in memory.
type Options struct {
	// Throttle enables throttling with this configuration; nil disables it.
	Throttle *server.ThrottleConfig
	// Clock is the server's clock; default time.Now.
	Clock func() time.Time
	// StateFile makes the store durable.
	StateFile string
	// AttachDelay keeps attachments in their transitional states this long.
	AttachDelay time.Duration
	FaultSeed   int64
	Logger      *slog.Logger
}

// Env is a running fakecloud.
type Env struct {
	URL    string
	Server *server.Server
	// Admin is a client with the admin token.
	Admin *client.Client
}

// Client returns a client of the test server that authenticates with token.
func (e *Env) Client(token string) *client.Client { return client.New(e.URL, token) }

// Start runs a fakecloud until the test ends.
func Start(tb testing.TB, o Options) *Env {
	tb.Helper()
	st, err := server.OpenStore(server.StoreConfig{StateFile: o.StateFile, AttachDelay: o.AttachDelay, Logger: o.Logger})
	if err != nil {
		tb.Fatalf("open fakecloud store: %v", err)
	}
	throttle := server.ThrottleConfig{Disabled: true}
	if o.Throttle != nil {
		throttle = *o.Throttle
	}
	srv, err := server.New(server.Config{
		Store: st, AdminToken: AdminToken, Throttle: throttle, Clock: o.Clock, FaultSeed: o.FaultSeed, Logger: o.Logger,
	})
	if err != nil {
		tb.Fatalf("new fakecloud server: %v", err)
	}
	hs := httptest.NewServer(srv)
	tb.Cleanup(func() {
		srv.Close()
		hs.Close()
		if err := st.Close(); err != nil {
			tb.Errorf("close fakecloud store: %v", err)
		}
	})
	return &Env{URL: hs.URL, Server: srv, Admin: client.New(hs.URL, AdminToken)}
}
