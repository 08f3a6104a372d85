package lbcontroller

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
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
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
)

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// gatewayAPIRequired are the Gateway API resources the controller cannot run without; the other
// route kinds are served when their CRDs are installed.
var gatewayAPIRequired = []string{"gatewayclasses", "gateways", "httproutes", "referencegrants"}

// setupGateway adds a runnable that starts the Gateway controller once the API server serves
// the Gateway API's CRDs (at once when they are installed; when they are installed later, within
// gatewayAPIPoll).
func setupGateway(mgr manager.Manager, cfg Config, st *state, log logr.Logger) error {
	if cfg.GatewayAPI == GatewayAPIOff {
		return nil
	}
	if err := gwv1.Install(mgr.GetScheme()); err != nil {
		return fmt.Errorf("lbcontroller: register the Gateway API types: %w", err)
	}
	return mgr.Add(&gatewayStarter{mgr: mgr, cfg: cfg, state: st, log: log.WithName("gateway")})
}

const gatewayAPIPoll = 15 * time.Second

type gatewayStarter struct {
	mgr   manager.Manager
	cfg   Config
	state *state
	log   logr.Logger
}

// NeedLeaderElection: the Gateway controller writes to the cloud, so only the leader runs it.
func (s *gatewayStarter) NeedLeaderElection() bool { return true }

func (s *gatewayStarter) Start(ctx context.Context) error {
	dc, err := discovery.NewDiscoveryClientForConfig(s.mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("lbcontroller: discovery client: %w", err)
	}
	logged := false
	for {
		kinds, missing, err := servedGatewayKinds(dc)
		switch {
		case err == nil && len(missing) == 0:
			if err := s.start(ctx, kinds); err != nil {
				return err
			}
			s.log.Info("serving the Gateway API", "controllerName", "flatnet.io/gateway-controller", "grpcRoutes", kinds.GRPC, "tlsRoutes", kinds.TLS, "tcpRoutes", kinds.TCP, "udpRoutes", kinds.UDP, "backendTLSPolicies", kinds.BackendTLS, "listenerSets", kinds.ListenerSet)
			return nil
		case !logged:
			if err != nil {
				s.log.Info("the Gateway API is not served; the Gateway controller starts once its CRDs are installed", "reason", err.Error())
			} else {
				s.log.Info("the Gateway API is not served; the Gateway controller starts once its CRDs are installed", "missing", missing)
			}
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(gatewayAPIPoll):
		}
	}
}

// servedGatewayKinds asks the API server which Gateway API v1 resources it serves.
func servedGatewayKinds(dc discovery.DiscoveryInterface) (routeKinds, []string, error) {
	list, err := dc.ServerResourcesForGroupVersion(gwv1.GroupVersion.String())
	if apierrors.IsNotFound(err) {
		return routeKinds{}, gatewayAPIRequired, nil
	}
	if err != nil {
		return routeKinds{}, nil, err
	}
	served := map[string]bool{}
	for _, r := range list.APIResources {
		served[r.Name] = true
	}
	var missing []string
	for _, r := range gatewayAPIRequired {
		if !served[r] {
			missing = append(missing, r)
		}
	}
	return routeKinds{GRPC: served["grpcroutes"], TLS: served["tlsroutes"], TCP: served["tcproutes"], UDP: served["udproutes"],
		BackendTLS: served["backendtlspolicies"], ListenerSet: served["listenersets"]}, missing, nil
}

func (s *gatewayStarter) start(ctx context.Context, kinds routeKinds) error {
	mgr := s.mgr
	r := &gatewayReconciler{
		client: mgr.GetClient(), reader: mgr.GetAPIReader(), events: mgr.GetEventRecorder(Component),
		cfg: s.cfg, alb: s.cfg.alb, kinds: kinds, state: s.state, log: s.log, now: time.Now,
		records: map[string]*gatewayRecord{}, emitted: map[string]bool{}, tokenSeed: rand.Text()[:8],
		translator: gateway.NewTranslator(),
	}
	r.statuses = newStatusWriter(r.writeOutput, s.log.WithName("status"))
	go r.statuses.run(ctx)
	if r.alb != nil {
		// Each listener's rules are kept between passes (deploy.RuleCache): a route change
		// among 1,000 routes does not list the 1,000 rules again.
		r.rules = deploy.NewRuleCache(r.alb, r.cfg.Resync, nil)
		r.alb = r.rules
	}
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{gatewayKey}
	})
	watched := []client.Object{
		&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.HTTPRoute{}, &gwv1.ReferenceGrant{},
		&corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Secret{}, &corev1.Namespace{},
	}
	for _, k := range []struct {
		on bool
		o  client.Object
	}{{kinds.GRPC, &gwv1.GRPCRoute{}}, {kinds.TLS, &gwv1.TLSRoute{}}, {kinds.TCP, &gwv1.TCPRoute{}}, {kinds.UDP, &gwv1.UDPRoute{}},
		{kinds.BackendTLS, &gwv1.BackendTLSPolicy{}}, {kinds.ListenerSet, &gwv1.ListenerSet{}}, {true, &corev1.ConfigMap{}}} {
		if k.on {
			watched = append(watched, k.o)
		}
	}
	// A Gateway's load balancer changing state in the cloud (failed, active again) brings a
	// pass (cloudStates), so that its conditions follow the cloud without polling.
	wake := make(chan event.GenericEvent, 1)
	r.wake = wake
	b := builder.ControllerManagedBy(mgr).Named("gateway").
		WithOptions(controller.Options{
			MaxConcurrentReconciles: 1,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](100*time.Millisecond, 30*time.Second),
		})
	for _, o := range slices.Clone(watched) {
		if _, ok := o.(*corev1.ConfigMap); ok {
			// Metadata only: the CA ConfigMaps are read by name when they change
			// (caConfigMaps), and no other ConfigMap's data is kept.
			b = b.WatchesMetadata(o, all, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				refs := r.caRefs.Load()
				return refs != nil && (*refs)[types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}]
			})))
			continue
		}
		b = b.Watches(o, all, builder.WithPredicates(ignoreOwnStatus(o)))
	}
	b = b.WatchesRawSource(source.Channel(wake, all))
	s.state.onLoadBalancerStates(r.cloudStates)
	// Gated pods whose containers turn ready are registered before they are Ready.
	b = b.Watches(&corev1.Pod{}, all, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return hasGate(o.(*corev1.Pod)) })))
	return b.Complete(r)
}

// ignoreOwnStatus keeps a pass from waking the next one: the Gateway API objects' status is what
// a pass writes, so for them only a change of the spec (a new generation), a creation or a
// deletion is news. Everything else (Services, EndpointSlices, Secrets, Namespaces and their
// labels) wakes a pass on any change.
func ignoreOwnStatus(o client.Object) predicate.Predicate {
	switch o.(type) {
	case *gwv1.GatewayClass, *gwv1.Gateway, *gwv1.HTTPRoute, *gwv1.GRPCRoute, *gwv1.TLSRoute, *gwv1.TCPRoute, *gwv1.UDPRoute, *gwv1.BackendTLSPolicy, *gwv1.ListenerSet:
		return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
				!slices.Equal(o.GetFinalizers(), n.GetFinalizers()) ||
				!maps.Equal(o.GetLabels(), n.GetLabels()) || !maps.Equal(o.GetAnnotations(), n.GetAnnotations())
		}}
	}
	return predicate.Funcs{}
}
