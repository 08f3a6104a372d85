package l7

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// noRule labels requests no rule matched.
const noRule = "-"

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatnet_l7_requests_total",
			Help: "Requests the L7 load balancer answered, by listener port, rule (\"-\": none matched) and status code.",
		}, []string{"listener", "rule", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flatnet_l7_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by listener port and rule.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"listener", "rule"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// forget deletes the series of (listener, rule) pairs the new snapshot no longer has, so rules
// renamed or removed over many Applies do not pile up; it returns the pairs s has.
func (m *metrics) forget(old map[[2]string]bool, s *snapshot) map[[2]string]bool {
	now := map[[2]string]bool{}
	for port, l := range s.listeners {
		p := strconv.Itoa(port)
		now[[2]string{p, noRule}] = true
		for _, r := range l.rules {
			now[[2]string{p, r.name}] = true
		}
	}
	for k := range old {
		if !now[k] {
			labels := prometheus.Labels{"listener": k[0], "rule": k[1]}
			m.requests.DeletePartialMatch(labels)
			m.latency.DeletePartialMatch(labels)
		}
	}
	return now
}

// observe counts a finished request and writes its access-log line.
func (e *Engine) observe(r *http.Request, port int, ru *rule, f *flight, rec *recorder, d time.Duration) {
	name := noRule
	if ru != nil {
		name = ru.name
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing answered 200
	}
	listener := strconv.Itoa(port)
	e.metrics.requests.WithLabelValues(listener, name, strconv.Itoa(status)).Inc()
	e.metrics.latency.WithLabelValues(listener, name).Observe(d.Seconds())
	if e.opts.AccessLog == nil {
		return
	}
	attrs := []slog.Attr{
		slog.Int("listener", port), slog.String("rule", name),
		slog.String("client", r.RemoteAddr), slog.String("proto", r.Proto),
		slog.String("method", r.Method), slog.String("host", r.Host), slog.String("path", r.URL.RequestURI()),
		slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", d),
	}
	if f != nil && f.target != nil {
		attrs = append(attrs, slog.String("targetGroup", f.backend.group.name), slog.String("target", f.target.hostport))
	}
	if f != nil && f.err != nil {
		attrs = append(attrs, slog.String("err", f.err.Error()))
	}
	e.opts.AccessLog.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}
