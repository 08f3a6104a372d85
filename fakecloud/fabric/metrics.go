package fabric

import (
	"cmp"
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatnet/flatnet/fakecloud/api"
)

type metrics struct {
	lag    prometheus.Histogram
	errors prometheus.Counter
	// lbStates counts the load balancers by data-plane state (provisioning, active, failed).
	lbStates *prometheus.GaugeVec
	// attachStates counts the attachments by state (waiting, attaching, attached, failed).
	attachStates *prometheus.GaugeVec
	routes       atomic.Int64
	neighs       atomic.Int64
	ports        atomic.Int64
	nodes        atomic.Int64
	routers      atomic.Int64
	// busyPoll is the busy-poll time in effect, in µs (busypoll.go); linkErrors counts links of
	// application load balancers that could not be set for it.
	busyPoll   atomic.Int64
	linkErrors prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flatnet_fabric_convergence_seconds",
			Help:    "Time from the control plane's change sequence advancing to the kernel converged on it.",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flatnet_fabric_convergence_errors_total",
			Help: "Convergences that left operations to retry.",
		}),
		lbStates: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flatnet_fabric_load_balancers",
			Help: "Load balancers by data-plane state: provisioning (not programmed yet), active, failed (a step failed; retried with backoff).",
		}, []string{"state"}),
		linkErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flatnet_fabric_lb_busy_poll_link_errors_total",
			Help: "Times an application load balancer's link could not be set for busy polling (its load balancer forwards, without it).",
		}),
		attachStates: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flatnet_fabric_attachments",
			Help: "Attachments of instances to existing namespaces by state: waiting (no instance matches yet), attaching, attached, failed (retried with backoff).",
		}, []string{"state"}),
	}
}

func (m *metrics) gauge(name, help string, v *atomic.Int64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
		func() float64 { return float64(v.Load()) })
}

func (m *metrics) register(r prometheus.Registerer) error {
	cs := []prometheus.Collector{
		m.lag, m.errors, m.lbStates, m.attachStates, m.linkErrors,
		m.gauge("flatnet_fabric_lb_busy_poll_microseconds", "How long the process's network poller busy-polls before it sleeps, "+
			"for the application load balancers; 0 when off, unsupported by the kernel, or failed (logged).", &m.busyPoll),
		m.gauge("flatnet_fabric_routes", "Routes the VPC routers hold towards interfaces.", &m.routes),
		m.gauge("flatnet_fabric_neighbours", "Permanent neighbour entries the VPC routers hold.", &m.neighs),
		m.gauge("flatnet_fabric_ports", "Attached interfaces plugged into nodes.", &m.ports),
		m.gauge("flatnet_fabric_nodes", "Node namespaces.", &m.nodes),
		m.gauge("flatnet_fabric_routers", "VPC router namespaces.", &m.routers),
	}
	var errs []error
	for _, c := range cs {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

func (m *metrics) setCounts(w *World) {
	routes, neighs := w.Counts()
	ports := 0
	for _, r := range w.Routers {
		ports += len(r.Ports)
	}
	m.routes.Store(int64(routes))
	m.neighs.Store(int64(neighs))
	m.ports.Store(int64(ports))
	m.nodes.Store(int64(len(w.Nodes)))
	m.routers.Store(int64(len(w.Routers)))
}

// setLBStates counts the desired load balancers by the verdict of the last convergence; those
// without one yet are provisioning.
func (m *metrics) setLBStates(desired *World, st map[string]lbStatus) {
	n := map[string]int{api.LoadBalancerStateProvisioning: 0, api.LoadBalancerStateActive: 0, api.LoadBalancerStateActiveImpaired: 0,
		api.LoadBalancerStateFailed: 0}
	for id := range desired.LBs {
		n[cmp.Or(st[id].state, api.LoadBalancerStateProvisioning)]++
	}
	for id := range desired.LBFailures {
		if _, ok := desired.LBs[id]; !ok {
			n[api.LoadBalancerStateFailed]++
		}
	}
	for state, v := range n {
		m.lbStates.WithLabelValues(state).Set(float64(v))
	}
}

// setAttachments counts the attachments by state.
func (m *metrics) setAttachments(st map[string]AttachmentStatus) {
	n := map[string]int{AttachmentWaiting: 0, AttachmentAttaching: 0, AttachmentAttached: 0, AttachmentFailed: 0}
	for _, s := range st {
		n[s.State]++
	}
	for state, v := range n {
		m.attachStates.WithLabelValues(state).Set(float64(v))
	}
}
