package lab

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayClassName is the GatewayClass the chart creates for lbcontroller (values
// lbcontroller.gatewayAPI.gatewayClassName).
const GatewayClassName = "flatnet"

var quietControllerRuntime sync.Once

// GatewayClient is a client of the lab's cluster that knows the Gateway API's types (and the
// core ones), through the host's port-forward, as the admin.
func (l *Lab) GatewayClient() (client.Client, error) {
	rc, err := l.restConfig()
	if err != nil {
		return nil, err
	}
	// controller-runtime's client logs through its global logger, and complains when none is
	// set: the lab has nothing to say through it.
	quietControllerRuntime.Do(func() { crlog.SetLogger(logr.Discard()) })
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := gwv1.Install(s); err != nil {
		return nil, err
	}
	return client.New(rc, client.Options{Scheme: s})
}

// HTTPGateway is a Gateway of the chart's class with one HTTP listener on port 80 that takes
// routes from its own namespace.
func HTTPGateway(namespace, name string) *gwv1.Gateway {
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: GatewayClassName,
			Listeners:        []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}
}

// WeightedRoute is an HTTPRoute on the Gateway sending every request to the Services of weights
// (name -> weight), port 80 each.
func WeightedRoute(namespace, name, gateway string, weights map[string]int32) *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: gwv1.ObjectName(gateway)}}},
			Rules:           []gwv1.HTTPRouteRule{{}},
		},
	}
	SetWeights(r, weights)
	return r
}

// SetWeights replaces the route's first rule's backends with weights (sorted by name, so
// equal weights give equal specs).
func SetWeights(r *gwv1.HTTPRoute, weights map[string]int32) {
	var refs []gwv1.HTTPBackendRef
	for _, svc := range slices.Sorted(maps.Keys(weights)) {
		refs = append(refs, gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptr.To(gwv1.PortNumber(80))},
			Weight:                 ptr.To(weights[svc]),
		}})
	}
	r.Spec.Rules[0].BackendRefs = refs
}

// WaitGatewayProgrammed waits until the Gateway's Programmed condition is True for its current
// generation with an address, and returns the address.
func WaitGatewayProgrammed(ctx context.Context, c client.Client, namespace, name string, timeout time.Duration) (string, error) {
	var addr string
	err := poll(ctx, timeout, 200*time.Millisecond, func() (bool, string) {
		var g gwv1.Gateway
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &g); err != nil {
			return false, err.Error()
		}
		p := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		if p == nil || p.Status != metav1.ConditionTrue || p.ObservedGeneration != g.Generation || len(g.Status.Addresses) == 0 {
			return false, fmt.Sprintf("status %+v", g.Status)
		}
		addr = g.Status.Addresses[0].Value
		return true, ""
	})
	if err != nil {
		return "", fmt.Errorf("gateway %s/%s is not Programmed: %w", namespace, name, err)
	}
	return addr, nil
}

// GRPCHealthRoute is a GRPCRoute on the Gateway sending grpc.health.v1.Health to the Service svc
// (port 80): the echo workload answers it over h2c.
func GRPCHealthRoute(namespace, name, gateway, svc string) *gwv1.GRPCRoute {
	return &gwv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: gwv1.GRPCRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: gwv1.ObjectName(gateway)}}},
			Rules: []gwv1.GRPCRouteRule{{
				Matches: []gwv1.GRPCRouteMatch{{Method: &gwv1.GRPCMethodMatch{Service: ptr.To("grpc.health.v1.Health")}}},
				BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: gwv1.BackendRef{
					BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptr.To(gwv1.PortNumber(80))},
				}}},
			}},
		},
	}
}

// WaitRouteAccepted waits until the route's status says every parent Accepted it and resolved
// its backends, for the route's current generation.
func WaitRouteAccepted(ctx context.Context, c client.Client, route client.Object, timeout time.Duration) error {
	return poll(ctx, timeout, 200*time.Millisecond, func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(route), route); err != nil {
			return false, err.Error()
		}
		var parents []gwv1.RouteParentStatus
		switch r := route.(type) {
		case *gwv1.HTTPRoute:
			parents = r.Status.Parents
		case *gwv1.GRPCRoute:
			parents = r.Status.Parents
		case *gwv1.TCPRoute:
			parents = r.Status.Parents
		default:
			return false, fmt.Sprintf("%T is not a route this waits for", route)
		}
		if len(parents) == 0 {
			return false, "no parent status yet"
		}
		for _, p := range parents {
			for _, t := range []gwv1.RouteConditionType{gwv1.RouteConditionAccepted, gwv1.RouteConditionResolvedRefs} {
				c := meta.FindStatusCondition(p.Conditions, string(t))
				if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != route.GetGeneration() {
					return false, fmt.Sprintf("parent %s: %s is %+v", p.ParentRef.Name, t, c)
				}
			}
		}
		return true, ""
	})
}
