package server

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus series, registered on the server's own registry.
type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	injected  *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fakecloud_requests_total",
			Help: "API requests by action and answer code (OK for success).",
		}, []string{"action", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fakecloud_request_duration_seconds",
			Help:    "Time to answer an API request, by action.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"action"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fakecloud_throttled_requests_total",
			Help: "Requests answered RequestLimitExceeded, by action.",
		}, []string{"action"}),
		injected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fakecloud_injected_faults_total",
			Help: "Faults injected, by action and kind (error, latency, visibility_lag).",
		}, []string{"action", "kind"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.throttled, m.injected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register fakecloud metrics: %w", err)
		}
	}
	return m, nil
}
