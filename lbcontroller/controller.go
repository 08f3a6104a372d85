package lbcontroller

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/flatnet/flatnet/providers"
)

// Setup adds the Service and readiness-gate controllers, the Gateway controller (once the
// Gateway API is served), the health watch and garbage collection to mgr. Everything that talks to the cloud runs on the leader only.
func Setup(mgr manager.Manager, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	registerMetrics()
	st := newState()
	log := mgr.GetLogger().WithName("lbcontroller")
	svcs := &serviceReconciler{client: mgr.GetClient(), events: mgr.GetEventRecorder(Component), cfg: cfg, state: st, now: time.Now, tokens: newTokenPasses()}
	// A load balancer's state changing in the cloud (failed, active again) brings its Service
	// back, so the Service's condition follows the cloud without polling.
	svcWake := make(chan event.TypedGenericEvent[*corev1.Service], 1024)
	// Cloud errors back off from 100 ms to 30 s: throttling clears in seconds, and a person
	// fixing a quota should not wait 16 minutes for the controller to notice.
	limiter := workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](100*time.Millisecond, 30*time.Second)
	err := builder.ControllerManagedBy(mgr).
		Named("service").
		For(&corev1.Service{}).
		Watches(&discoveryv1.EndpointSlice{}, sliceHandler(st)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(servicesOfGatedPod(mgr.GetClient(), cfg.DefaultClass)),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return hasGate(o.(*corev1.Pod)) }))).
		WatchesRawSource(source.Channel(svcWake, &handler.TypedEnqueueRequestForObject[*corev1.Service]{})).
		WithOptions(controller.Options{RateLimiter: limiter, MaxConcurrentReconciles: 4}).
		Complete(svcs)
	if err != nil {
		return err
	}
	gates := &gateReconciler{client: mgr.GetClient(), cfg: cfg, state: st, now: time.Now}
	wake := make(chan event.TypedGenericEvent[*corev1.Pod], 1024)
	err = builder.ControllerManagedBy(mgr).
		Named("readiness-gate").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return hasGate(o.(*corev1.Pod)) }))).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(gatedPodsOfService(mgr.GetClient()))).
		WatchesRawSource(source.Channel(wake, &handler.TypedEnqueueRequestForObject[*corev1.Pod]{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(gates)
	if err != nil {
		return err
	}
	if err := mgr.Add(&wakeForwarder[*corev1.Pod]{from: st.wake, to: wake, object: func() *corev1.Pod { return &corev1.Pod{} }}); err != nil {
		return err
	}
	if err := mgr.Add(&wakeForwarder[*corev1.Service]{from: st.svcWake, to: svcWake, object: func() *corev1.Service { return &corev1.Service{} }}); err != nil {
		return err
	}
	if err := setupGateway(mgr, cfg, st, log); err != nil {
		return err
	}
	if err := mgr.Add(&healthWatch{p: cfg.Provider, state: st, log: log.WithName("health")}); err != nil {
		return err
	}
	return mgr.Add(&collector{reader: mgr.GetAPIReader(), cfg: cfg, log: log.WithName("gc")})
}

// sliceHandler maps an EndpointSlice to its Service and notes when the change was seen.
func sliceHandler(st *state) handler.EventHandler {
	enqueue := func(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		name := o.GetLabels()[discoveryv1.LabelServiceName]
		if name == "" {
			return
		}
		key := types.NamespacedName{Namespace: o.GetNamespace(), Name: name}
		st.sawSliceChange(key, time.Now())
		q.Add(reconcile.Request{NamespacedName: key})
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.ObjectNew, q)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q)
		},
	}
}

// servicesOfGatedPod maps a gated pod to the Services of ours selecting it: whether its
// containers are ready decides whether it is registered before it is Ready.
func servicesOfGatedPod(c client.Client, defaultClass bool) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var svcs corev1.ServiceList
		if err := c.List(ctx, &svcs, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range svcs.Items {
			svc := &svcs.Items[i]
			if ours(svc, defaultClass) && len(svc.Spec.Selector) > 0 && selects(svc, o.GetLabels()) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}})
			}
		}
		return out
	}
}

// gatedPodsOfService maps a Service to the gated pods it selects: a Service appearing, changing
// or going changes their verdict.
func gatedPodsOfService(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		svc := o.(*corev1.Service)
		if len(svc.Spec.Selector) == 0 {
			return nil
		}
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(svc.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range pods.Items {
			if hasGate(&pods.Items[i]) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pods.Items[i].Namespace, Name: pods.Items[i].Name}})
			}
		}
		return out
	}
}

func selects(svc *corev1.Service, podLabels map[string]string) bool {
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			return false
		}
	}
	return true
}

// wakeForwarder turns object keys from the shared state into events for a controller: pods
// for the gate controller, Services for the Service controller.
type wakeForwarder[T client.Object] struct {
	from   <-chan types.NamespacedName
	to     chan<- event.TypedGenericEvent[T]
	object func() T
}

func (w *wakeForwarder[T]) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case k := <-w.from:
			o := w.object()
			o.SetNamespace(k.Namespace)
			o.SetName(k.Name)
			select {
			case w.to <- event.TypedGenericEvent[T]{Object: o}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// healthWatch follows target health through the provider's change stream.
type healthWatch struct {
	p     providers.LoadBalancing
	state *state
	log   logr.Logger
}

// NeedLeaderElection: only the leader reads health (it alone programs the targets).
func (h *healthWatch) NeedLeaderElection() bool { return true }

func (h *healthWatch) Start(ctx context.Context) error {
	for {
		err := h.p.WatchHealth(ctx, func(ev providers.HealthEvent) {
			h.state.notify(h.state.applyHealth(ev))
			h.state.notifyServices(h.state.servicesOfLBs(ev.LoadBalancers))
			h.state.loadBalancerStates(ev.Full, ev.LoadBalancers)
		})
		if ctx.Err() != nil {
			return nil
		}
		h.log.Error(err, "target health watch stopped; restarting it")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}
