package lbcontroller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/flatnet/flatnet/internal/httpserve"
)

// webhookServer serves the readiness-gate webhook over TLS (tls.crt and tls.key of certDir,
// reloaded when they change) on port. It is controller-runtime's webhook.Server, but its HTTP
// server has every timeout set (httpserve): controller-runtime's bounds neither a request's body
// nor, for 90 s, an idle connection.
type webhookServer struct {
	port    int
	certDir string
	to      httpserve.Timeouts
	mux     *http.ServeMux
	started atomic.Bool
	// addr is where it listens, once started (for tests that ask for port 0).
	addr atomic.Pointer[string]
}

var _ webhook.Server = (*webhookServer)(nil)

func newWebhookServer(port int, certDir string, to httpserve.Timeouts) *webhookServer {
	return &webhookServer{port: port, certDir: certDir, to: to, mux: http.NewServeMux()}
}

// NeedLeaderElection is false: every replica serves the webhook.
func (s *webhookServer) NeedLeaderElection() bool { return false }

// Register serves hook at path.
func (s *webhookServer) Register(path string, hook http.Handler) { s.mux.Handle(path, hook) }

// WebhookMux is the server's mux.
func (s *webhookServer) WebhookMux() *http.ServeMux { return s.mux }

// StartedChecker is healthy once the server listens.
func (s *webhookServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("the webhook server has not started yet")
		}
		return nil
	}
}

// Start serves until ctx ends.
func (s *webhookServer) Start(ctx context.Context) error {
	cw, err := certwatcher.New(filepath.Join(s.certDir, "tls.crt"), filepath.Join(s.certDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("lbcontroller: the webhook's certificate in %s: %w", s.certDir, err)
	}
	go func() { _ = cw.Start(ctx) }()
	ln, err := tls.Listen("tcp", net.JoinHostPort("", strconv.Itoa(s.port)),
		&tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cw.GetCertificate, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return fmt.Errorf("lbcontroller: listen for the webhook on port %d: %w", s.port, err)
	}
	addr := ln.Addr().String()
	s.addr.Store(&addr)
	srv := httpserve.New(s.mux, s.to)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.started.Store(true)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("lbcontroller: serve the webhook: %w", err)
	}
	<-stopped
	return nil
}
