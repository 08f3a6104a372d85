package lbcontroller

import (
	"time"

	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flatnet/flatnet/providers"
)

var (
	reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flatnet_lb_reconciles_total",
		Help: "Reconciles by controller (service, readiness-gate, gc) and outcome (ok, invalid, error).",
	}, []string{"controller", "outcome"})
	cloudCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flatnet_lb_cloud_calls_total",
		Help: "Cloud calls by action and outcome (ok, or the cloud's error code).",
	}, []string{"action", "outcome"})
	endpointsProgrammed = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flatnet_lb_endpoints_programmed_seconds",
		Help:    "From the controller seeing an EndpointSlice change to the Service's targets being programmed in the cloud.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	gcDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flatnet_lb_gc_deleted_total",
		Help: "Orphaned owners (a Service gone, or re-created with another UID) whose cloud resources GC removed.",
	})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(reconciles, cloudCalls, endpointsProgrammed, gcDeleted)
	})
}

// ObserveCloudCall counts one cloud call; it is a providers.Observer, set as the driver's
// Settings.Observe.
func ObserveCloudCall(action string, _ time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = providers.Code(err)
	}
	cloudCalls.WithLabelValues(action, outcome).Inc()
}
