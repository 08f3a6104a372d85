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

	"github.com/flatnet/flatnet/internal/httpserve"
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
		srv := httpServer(h, httpserve.Default)
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

// httpServer is the server of ipamd's introspection and metrics listeners, with every timeout
// set (httpserve).
func httpServer(h http.Handler, to httpserve.Timeouts) *http.Server { return httpserve.New(h, to) }

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

// PoolView is /v1/pool. Every introspection answer keys its fields in lowerCamel case.
type PoolView struct {
	Free         int `json:"free"`
	Cooling      int `json:"cooling"`
	Assigned     int `json:"assigned"`
	Capacity     int `json:"capacity"`
	Waiting      int `json:"waiting"`
	RecentDemand int `json:"recentDemand"`
	// Full says why the pool cannot grow ("" when it can).
	Full             string `json:"full,omitempty"`
	LastCloudError   string `json:"lastCloudError,omitempty"`
	InstanceType     string `json:"instanceType"`
	MaxInterfaces    int    `json:"maxInterfaces"`
	IPv4PerInterface int    `json:"ipv4PerInterface"`
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

// ConfigView is /v1/config: the settings in force (durations as Go writes them, the token
// redacted).
type ConfigView struct {
	Cloud           string         `json:"cloud"`
	InstanceID      string         `json:"instanceID"`
	CloudEndpoint   string         `json:"cloudEndpoint"`
	CloudToken      string         `json:"cloudToken"`
	MetadataURL     string         `json:"metadataURL"`
	StateDir        string         `json:"stateDir"`
	StateSync       string         `json:"stateSync"`
	SocketPath      string         `json:"socketPath"`
	SpoolDir        string         `json:"spoolDir"`
	CNIConfDir      string         `json:"cniConfDir"`
	CNILogFile      string         `json:"cniLogFile"`
	IntrospectAddr  string         `json:"introspectAddr"`
	MetricsAddr     string         `json:"metricsAddr"`
	Pool            PoolConfigView `json:"pool"`
	Cooldown        string         `json:"cooldown"`
	AllocWait       string         `json:"allocWait"`
	Coalesce        string         `json:"coalesce"`
	DemandWindow    string         `json:"demandWindow"`
	ResyncInterval  string         `json:"resyncInterval"`
	VisibilityGrace string         `json:"visibilityGrace"`
	SubnetID        string         `json:"subnetID"`
	SecurityGroups  []string       `json:"securityGroups"`
	Datapath        bool           `json:"datapath"`
	FastPath        string         `json:"fastPath"`
	MTU             int            `json:"mtu"`
	TableBase       int            `json:"tableBase"`
	ExternalSNAT    bool           `json:"externalSNAT"`
	SNATExclusions  []string       `json:"snatExclusions"`
	PodCheck        string         `json:"podCheck"`
	PodCheckGrace   string         `json:"podCheckGrace"`
}

// PoolConfigView is the warm-pool policy in /v1/config.
type PoolConfigView struct {
	Mode          string `json:"mode"`
	WarmLow       int    `json:"warmLow"`
	WarmHigh      int    `json:"warmHigh"`
	MaxBatch      int    `json:"maxBatch"`
	IdleRelease   string `json:"idleRelease"`
	MaxAddresses  int    `json:"maxAddresses"`
	MaxInterfaces int    `json:"maxInterfaces"`
}

func (d *Daemon) configView() ConfigView {
	c := d.cfg
	v := ConfigView{
		Cloud: c.Cloud, InstanceID: c.InstanceID, CloudEndpoint: c.CloudEndpoint, CloudToken: "(redacted)",
		MetadataURL: c.MetadataURL, StateDir: c.StateDir, StateSync: c.StateSync.String(), SocketPath: c.SocketPath,
		SpoolDir: c.SpoolDir, CNIConfDir: c.CNIConfDir, CNILogFile: c.CNILogFile, IntrospectAddr: c.IntrospectAddr,
		MetricsAddr: c.MetricsAddr,
		Pool: PoolConfigView{Mode: string(c.Pool.Mode), WarmLow: c.Pool.WarmLow, WarmHigh: c.Pool.WarmHigh,
			MaxBatch: c.Pool.MaxBatch, IdleRelease: c.Pool.IdleRelease.String(), MaxAddresses: c.Pool.MaxAddresses,
			MaxInterfaces: c.Pool.MaxInterfaces},
		Cooldown: c.Cooldown.String(), AllocWait: c.AllocWait.String(), Coalesce: c.Coalesce.String(),
		DemandWindow: c.DemandWindow.String(), ResyncInterval: c.ResyncInterval.String(),
		VisibilityGrace: c.VisibilityGrace.String(), SubnetID: c.SubnetID, SecurityGroups: c.SecurityGroups,
		Datapath: c.Datapath, FastPath: c.FastPath, MTU: c.MTU, TableBase: c.TableBase, ExternalSNAT: c.ExternalSNAT,
		PodCheck: c.PodCheck, PodCheckGrace: c.PodCheckGrace.String(),
	}
	for _, p := range c.SNATExclusions {
		v.SNATExclusions = append(v.SNATExclusions, p.String())
	}
	return v
}
