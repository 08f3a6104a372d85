package lbcontroller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
)

// statusWriter writes the Gateway passes' statuses beside the passes, so that a pass ends with
// its deploys and the next change's pass need not wait for status writes (each an API call: with
// 1,000 routes the write-back took as long as the translation). It keeps only the latest pass's
// output: a newer pass supersedes whatever of an older one is still unwritten, since it computed
// every status again. Each write compares against the cache's object at that moment, not the
// pass's, so it neither repeats what it wrote nor writes over a newer object with an older one.
// A failed write-back (a conflict with another writer, the API server away) is tried again,
// with backoff from statusRetryBase to statusRetryMax, unless a newer pass's output comes first.
type statusWriter struct {
	write func(ctx context.Context, out gateway.Output) error
	log   logr.Logger
	// retryBase is the first retry's wait (statusRetryBase).
	retryBase time.Duration

	mu   sync.Mutex
	next *gateway.Output // the latest output not yet taken
	wake chan struct{}
	// idle is closed and replaced whenever the writer has nothing left to write (for tests).
	idle chan struct{}
	busy bool
}

const (
	statusRetryBase = 100 * time.Millisecond
	statusRetryMax  = 10 * time.Second
)

func newStatusWriter(write func(ctx context.Context, out gateway.Output) error, log logr.Logger) *statusWriter {
	return &statusWriter{write: write, log: log, retryBase: statusRetryBase, wake: make(chan struct{}, 1), idle: make(chan struct{})}
}

// submit hands over a pass's output (the writer owns it from then on).
func (w *statusWriter) submit(out gateway.Output) {
	w.mu.Lock()
	w.next, w.busy = &out, true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns the latest output not yet taken, or nil.
func (w *statusWriter) take() *gateway.Output {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.next
	w.next = nil
	return out
}

// settled marks the writer idle when nothing new came meanwhile.
func (w *statusWriter) settled() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == nil && w.busy {
		w.busy = false
		close(w.idle)
		w.idle = make(chan struct{})
	}
}

// run writes until ctx ends.
func (w *statusWriter) run(ctx context.Context) {
	var (
		cur     *gateway.Output // being written, or to be tried again
		backoff time.Duration
		retry   *time.Timer
		retryC  <-chan time.Time
	)
	for {
		select {
		case <-ctx.Done():
			if retry != nil {
				retry.Stop()
			}
			return
		case <-w.wake:
		case <-retryC:
			retryC = nil
		}
		if next := w.take(); next != nil {
			cur, backoff = next, 0
			if retry != nil {
				retry.Stop()
				retryC = nil
			}
		}
		if cur == nil || retryC != nil {
			continue
		}
		start := time.Now()
		err := w.write(ctx, *cur)
		if err == nil {
			w.log.V(1).Info("gateway statuses written", "took", time.Since(start).String())
			cur = nil
			w.settled()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, w.retryBase), statusRetryMax)
		if apierrors.IsConflict(err) {
			// Another writer (or the user) changed an object since the cache saw it: the
			// retry compares against the newer object.
			w.log.V(1).Info("a status changed meanwhile; writing again", "after", backoff.String(), "error", err.Error())
		} else {
			w.log.Error(err, "write the Gateway API statuses; retrying", "after", backoff.String())
		}
		retry = time.NewTimer(backoff)
		retryC = retry.C
	}
}

// writeOutput writes a pass's statuses against the cache's current objects.
func (r *gatewayReconciler) writeOutput(ctx context.Context, out gateway.Output) error {
	objs, err := r.statusObjects(ctx)
	if err != nil {
		return err
	}
	return r.writeStatuses(ctx, out, objs)
}

// statusObjects indexes the cache's GatewayClasses, Gateways and routes (its own objects, not
// copies: a status is written on a copy).
func (r *gatewayReconciler) statusObjects(ctx context.Context) (*gatewayObjects, error) {
	var (
		classes gwv1.GatewayClassList
		gws     gwv1.GatewayList
		https   gwv1.HTTPRouteList
		grpcs   gwv1.GRPCRouteList
		tlss    gwv1.TLSRouteList
		tcps    gwv1.TCPRouteList
		udps    gwv1.UDPRouteList
		tlsps   gwv1.BackendTLSPolicyList
		sets    gwv1.ListenerSetList
	)
	lists := []struct {
		on   bool
		list client.ObjectList
	}{{true, &classes}, {true, &gws}, {true, &https}, {r.kinds.GRPC, &grpcs}, {r.kinds.TLS, &tlss}, {r.kinds.TCP, &tcps}, {r.kinds.UDP, &udps}, {r.kinds.BackendTLS, &tlsps},
		{r.kinds.ListenerSet, &sets}}
	for _, l := range lists {
		if !l.on {
			continue
		}
		if err := r.client.List(ctx, l.list, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list %T: %w", l.list, err)
		}
	}
	return indexObjects(classes.Items, gws.Items, sets.Items, https.Items, grpcs.Items, tlss.Items, tcps.Items, udps.Items, tlsps.Items), nil
}

// indexObjects indexes the objects of a pass, to write statuses and events on.
func indexObjects(classes []gwv1.GatewayClass, gws []gwv1.Gateway, sets []gwv1.ListenerSet, https []gwv1.HTTPRoute, grpcs []gwv1.GRPCRoute,
	tlss []gwv1.TLSRoute, tcps []gwv1.TCPRoute, udps []gwv1.UDPRoute, policies []gwv1.BackendTLSPolicy) *gatewayObjects {
	objs := &gatewayObjects{classes: map[string]*gwv1.GatewayClass{}, gateways: map[string]*gwv1.Gateway{}, routes: map[string]client.Object{},
		policies: map[string]*gwv1.BackendTLSPolicy{}, listenerSets: map[string]*gwv1.ListenerSet{}}
	for i := range sets {
		objs.listenerSets[sets[i].Namespace+"/"+sets[i].Name] = &sets[i]
	}
	for i := range policies {
		objs.policies[policies[i].Namespace+"/"+policies[i].Name] = &policies[i]
	}
	for i := range classes {
		objs.classes[classes[i].Name] = &classes[i]
	}
	for i := range gws {
		objs.gateways[gws[i].Namespace+"/"+gws[i].Name] = &gws[i]
	}
	addRoutes := func(kind string, n int, at func(int) client.Object) {
		for i := range n {
			o := at(i)
			objs.routes[kind+"/"+o.GetNamespace()+"/"+o.GetName()] = o
		}
	}
	addRoutes("HTTPRoute", len(https), func(i int) client.Object { return &https[i] })
	addRoutes("GRPCRoute", len(grpcs), func(i int) client.Object { return &grpcs[i] })
	addRoutes("TLSRoute", len(tlss), func(i int) client.Object { return &tlss[i] })
	addRoutes("TCPRoute", len(tcps), func(i int) client.Object { return &tcps[i] })
	addRoutes("UDPRoute", len(udps), func(i int) client.Object { return &udps[i] })
	return objs
}
