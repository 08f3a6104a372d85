package ipamd

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flatnet/flatnet/providers"
)

type metrics struct {
	reg        *prometheus.Registry
	pool       *prometheus.GaugeVec
	capacity   prometheus.Gauge
	allocLat   *prometheus.HistogramVec
	allocs     *prometheus.CounterVec
	cloudCalls *prometheus.CounterVec
	cloudErrs  *prometheus.CounterVec
	cloudLat   *prometheus.HistogramVec
	reconcile  *prometheus.CounterVec
	spool      prometheus.Gauge
	waiting    prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		pool: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flatnet_ipamd_pool_addresses",
			Help: "Pod addresses the node holds, by state (free, cooling, assigned)."}, []string{"state"}),
		capacity: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flatnet_ipamd_pool_capacity",
			Help: "Pod addresses the node may hold under its instance type and the pool settings."}),
		allocLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flatnet_ipamd_allocation_seconds",
			Help:    "Time to answer an allocation, split into pool hit and pool miss.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"result"}),
		allocs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flatnet_ipamd_requests_total",
			Help: "Plugin requests by op and outcome code (ok or a wire error code)."}, []string{"op", "code"}),
		cloudCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flatnet_ipamd_cloud_calls_total",
			Help: "Cloud API calls by action."}, []string{"action"}),
		cloudErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flatnet_ipamd_cloud_errors_total",
			Help: "Cloud API errors by action and code."}, []string{"action", "code"}),
		cloudLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flatnet_ipamd_cloud_call_seconds",
			Help: "Cloud API call latency by action.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"action"}),
		reconcile: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flatnet_ipamd_reconcile_total",
			Help: "Reconcile outcomes: adopted (cloud had, record lacked), dropped (record had, cloud lacked), released (pod gone), restored, leaked (could not be restored), interface_deleted."},
			[]string{"outcome"}),
		spool: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flatnet_ipamd_spool_depth",
			Help: "Releases waiting in the plugin's spool at the last replay."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flatnet_ipamd_allocations_waiting",
			Help: "Allocations waiting for the pool to grow."}),
	}
	m.reg.MustRegister(m.pool, m.capacity, m.allocLat, m.allocs, m.cloudCalls, m.cloudErrs, m.cloudLat, m.reconcile, m.spool, m.waiting,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeCloud is the providers.Observer.
func (m *metrics) observeCloud(action string, took time.Duration, err error) {
	m.cloudCalls.WithLabelValues(action).Inc()
	m.cloudLat.WithLabelValues(action).Observe(took.Seconds())
	if err != nil {
		m.cloudErrs.WithLabelValues(action, providers.Code(err)).Inc()
	}
}
