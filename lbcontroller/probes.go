package lbcontroller

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flatnet/flatnet/internal/httpserve"
)

// probeShutdown bounds how long the metrics and probe servers finish their answers on stop.
const probeShutdown = 5 * time.Second

// probeServers are the /metrics server (at o.MetricsAddr; "0" or "" turns it off) and the
// /healthz and /readyz server (at o.ProbeAddr; likewise), listening already. Run serves them
// itself instead of through controller-runtime's, which bound neither a request's body nor (for
// 90 s) an idle connection: these have every timeout set (httpserve).
func probeServers(o RunOptions, to httpserve.Timeouts) ([]*manager.Server, error) {
	var out []*manager.Server
	add := func(name, addr string, h http.Handler) error {
		if addr == "" || addr == "0" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, s := range out {
				_ = s.Listener.Close()
			}
			return fmt.Errorf("lbcontroller: listen for %s on %s: %w", name, addr, err)
		}
		grace := probeShutdown
		out = append(out, &manager.Server{Name: name, Server: httpserve.New(h, to), Listener: ln, ShutdownTimeout: &grace})
		return nil
	}
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
	if err := add("metrics", o.MetricsAddr, metrics); err != nil {
		return nil, err
	}
	checks := &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}
	probes := http.NewServeMux()
	for _, p := range []string{"/healthz", "/readyz"} {
		probes.Handle(p, http.StripPrefix(p, checks))
		probes.Handle(p+"/", http.StripPrefix(p, checks))
	}
	if err := add("health probes", o.ProbeAddr, probes); err != nil {
		return nil, err
	}
	return out, nil
}
