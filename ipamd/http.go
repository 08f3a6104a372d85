package ipamd

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flatnet/flatnet/ipamd/store"
)

// serveHTTP starts the introspection and metrics listeners; the returned func stops them.
func (d *Daemon) serveHTTP(ctx context.Context, wg *sync.WaitGroup) func() {
	var servers []*http.Server
	start := func(addr string, h http.Handler) {
		if addr == "" {
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			d.log.Error("listen failed; continuing without it", "addr", addr, "err", err)
			return
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Warn("http server stopped", "addr", addr, "err", err)
			}
		}()
	}
	start(d.cfg.IntrospectAddr, d.introspection())
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", d.healthz)
	mux.HandleFunc("GET /readyz", d.readyz)
	start(d.cfg.MetricsAddr, mux)
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
	}
}

func (d *Daemon) introspection() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/interfaces", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, d.store.Interfaces()) })
	mux.HandleFunc("GET /v1/addresses", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, d.addressViews()) })
	mux.HandleFunc("GET /v1/pool", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, d.poolView()) })
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, d.configView()) })
	mux.HandleFunc("GET /v1/fastpath", d.serveFastPath)
	mux.HandleFunc("GET /healthz", d.healthz)
	mux.HandleFunc("GET /readyz", d.readyz)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// healthz fails once the datastore stopped writing: only a restart (reloading it from disk)
// brings ipamd back, which is what a liveness probe does.
func (d *Daemon) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := d.store.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (d *Daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	st := d.Status()
	if !d.ready.Load() || d.store.Err() != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	writeJSON(w, st)
}

// AddressView is one address as /v1/addresses shows it.
type AddressView struct {
	store.Address
	State string `json:"state"`
}

func (d *Daemon) addressViews() []AddressView {
	now := time.Now()
	as := d.store.Addresses()
	out := make([]AddressView, len(as))
	for i, a := range as {
		out[i] = AddressView{Address: a, State: a.State(now, d.cfg.Cooldown)}
	}
	return out
}

// PoolView is /v1/pool.
type PoolView struct {
	Free, Cooling, Assigned, Capacity, Waiting, RecentDemand int
	Full                                                     string `json:",omitempty"`
	LastCloudError                                           string `json:",omitempty"`
	InstanceType                                             string
	MaxInterfaces, IPv4PerInterface                          int
}

func (d *Daemon) poolView() PoolView {
	c := d.counts(time.Now())
	d.mu.Lock()
	defer d.mu.Unlock()
	v := PoolView{Free: c.free, Cooling: c.cooling, Assigned: c.assigned, Capacity: d.cfg.Pool.Capacity(d.limits),
		Waiting: d.waiting, RecentDemand: len(d.recent), Full: d.full, InstanceType: d.inst.Type,
		MaxInterfaces: d.limits.MaxInterfaces, IPv4PerInterface: d.limits.IPv4PerInterface}
	if d.lastErr != nil {
		v.LastCloudError = d.lastErr.Error()
	}
	return v
}

func (d *Daemon) configView() any {
	c := d.cfg
	c.CloudToken = "(redacted)"
	c.Logger = nil
	return struct {
		Config
		PoolMode    string
		IdleRelease string
	}{c, string(c.Pool.Mode), c.Pool.IdleRelease.String()}
}
