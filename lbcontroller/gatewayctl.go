package lbcontroller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// Ownership tags of a Gateway's cloud resources, beside model.TagCluster (and deploy.TagLayer).
const (
	TagGateway    = "flatnet.io/gateway"     // namespace/name
	TagGatewayUID = "flatnet.io/gateway-uid" // a re-created Gateway is another owner
)

// gatewayKey is the one work item of the Gateway controller: every pass reads the whole Gateway
// API state from the cache and translates it at once, because a route, a ReferenceGrant, a
// Secret or a Namespace's labels can change what any Gateway serves. A burst of changes
// collapses into one queued pass.
var gatewayKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "gateway-api"}}

// gatewayRecord is what the controller last did to one Gateway's load balancers.
type gatewayRecord struct {
	uid string
	// model is the Gateway's model of the latest pass, version its number: it moves on when a
	// pass's model differs (compared field by field: with 1,000 routes, hashing the model's
	// encoding cost as much as the rest of the deploy). deployed is the version the cloud
	// serves (0: none, or not known to), since deployedAt: a pass after Config.Resync from
	// then deploys the model again, which compares it with the cloud.
	model             *gateway.GatewayLoadBalancers
	version, deployed uint64
	deployedAt        time.Time
	// passes counts the deploy passes that ended without a retryable error: every create they
	// made was answered, so the next pass's creates are new requests (see clientTokens).
	passes uint64
	// state as the translation's next pass should see it.
	state gateway.LoadBalancerState
	// cloud is the state the last deploy pass saw of each of the Gateway's load balancers
	// (application, and network where the driver needs one), by ID: a different state from
	// the change stream brings a pass (cloudStates).
	cloud map[string]providers.LoadBalancerState
	// unserved are the routes, and route rules, the cloud cannot serve (deploy.RefusedRules,
	// deploy.SplitGateway): their conditions say so (markUnserved).
	unserved []deploy.Unserved
}

// gatewayReconciler translates the Gateway API objects (lbcontroller/gateway.Translate), makes
// the cloud match each Gateway's model (lbcontroller/deploy) and writes back every status.
type gatewayReconciler struct {
	client client.Client
	reader client.Reader // the API server, uncached (CRD bundle version)
	events events.EventRecorder
	cfg    Config
	alb    providers.ApplicationLoadBalancing // nil: the driver has no application load balancers
	rules  *deploy.RuleCache                  // alb's rule cache (alb is it), nil without alb
	kinds  routeKinds
	state  *state // shared with the readiness-gate reconciler
	log    logr.Logger
	// translator remembers each route's compilation between passes (a change to one route
	// among 1,000 compiles one).
	translator *gateway.Translator
	// caRefs are the ConfigMaps the BackendTLSPolicies named at the last pass: a change to one
	// of them wakes a pass, a change to any other ConfigMap does not.
	caRefs atomic.Pointer[map[types.NamespacedName]bool]
	// statuses writes each pass's statuses (Reconcile hands them over).
	statuses *statusWriter
	// wake starts a pass (cloudStates); nil in tests that call Reconcile themselves.
	wake chan<- event.GenericEvent
	now  func() time.Time

	mu      sync.Mutex
	records map[string]*gatewayRecord // namespace/name -> last deploy
	// reports are the change stream's reports of load balancer states: a pass during which
	// one of its own load balancers was reported does not count as deployed (what it read may
	// be from before the report).
	reports deploy.StateReports
	// known is every load balancer's state as the change stream last reported it.
	known map[string]providers.LoadBalancerState
	// tokenSeed tells this process's client tokens from an earlier one's (clientTokens).
	tokenSeed string
	emitted   map[string]bool // events already recorded, while the translation keeps giving them
	lastGC    time.Time
	bundle    string
	bundleAt  time.Time
	// caMemo are the CA ConfigMaps the last pass read (caConfigMaps), by name.
	caMemo map[types.NamespacedName]*corev1.ConfigMap
	// setsWritten are the ListenerSets (namespace/name) whose status the status writer last
	// wrote: one that drops out of the translation (its Gateway gone, or no longer ours) gets
	// its status reset. Only the status writer's goroutine uses it.
	setsWritten map[string]bool
	// secretLookups: what untypedSecrets last read of Secrets the cache does not hold.
	secretLookups map[types.NamespacedName]secretLookup
}

// routeKinds says which route kinds the API server serves (installed CRDs).
type routeKinds struct {
	GRPC, TLS, TCP, UDP bool
	// BackendTLS: BackendTLSPolicies are served (not a route kind, but optional in the same way).
	BackendTLS bool
	// ListenerSet: ListenerSets are served (likewise).
	ListenerSet bool
}

// missing names the route kinds the API server does not serve.
func (k routeKinds) missing() []string {
	var out []string
	for _, x := range []struct {
		on   bool
		kind string
	}{{k.GRPC, gateway.KindGRPCRoute}, {k.TLS, gateway.KindTLSRoute}, {k.TCP, gateway.KindTCPRoute}, {k.UDP, gateway.KindUDPRoute},
		{k.BackendTLS, gateway.KindBackendTLSPolicy}, {k.ListenerSet, gateway.KindListenerSet}} {
		if !x.on {
			out = append(out, x.kind)
		}
	}
	return out
}

// Reconcile is one pass over every Gateway of ours.
func (r *gatewayReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	start := r.now()
	in, objs, err := r.input(ctx)
	if err != nil {
		reconciles.WithLabelValues("gateway", "error").Inc()
		return reconcile.Result{}, err
	}
	read := r.now()
	out := r.translator.Translate(in)
	translated := r.now()
	requeue := r.deployAll(ctx, out)
	deployed := r.now()
	r.collect(ctx, out)
	// Translate again with what the cloud now shows (addresses and Programmed come from it),
	// unless it shows what the first translation had: a route change to a served Gateway
	// leaves its state as it was, and with 1,000 routes a translation costs milliseconds.
	if now := r.lbStates(); !reflect.DeepEqual(now, in.LoadBalancers) {
		in.LoadBalancers = now
		out = r.translator.Translate(in)
	}
	r.markUnserved(&out)
	r.recordEvents(out, objs)
	if objs.secretUncached && (requeue == 0 || requeue > secretLookupTTL) {
		// A certificate Secret the cache does not hold may be created, or deleted, unseen.
		requeue = secretLookupTTL
	}
	// The statuses are written beside the next passes (statusWriter).
	r.statuses.submit(out)
	reconciles.WithLabelValues("gateway", "ok").Inc()
	// Where the pass's time went: reading the cache, the first translation, the cloud's
	// deploys.
	r.log.V(1).Info("gateway pass", "gateways", len(out.Gateways), "routes", len(out.Routes), "took", r.now().Sub(start).String(),
		"read", read.Sub(start).String(), "translate", translated.Sub(read).String(), "deploy", deployed.Sub(translated).String(),
		"requeue", requeue.String())
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// gatewayObjects indexes the objects of a pass, to write statuses and events on.
type gatewayObjects struct {
	classes  map[string]*gwv1.GatewayClass
	gateways map[string]*gwv1.Gateway
	routes   map[string]client.Object // kind/namespace/name
	policies map[string]*gwv1.BackendTLSPolicy
	// listenerSets by namespace/name
	listenerSets map[string]*gwv1.ListenerSet
	// secretUncached: a certificate Secret a Gateway names is not in the cache (untypedSecrets).
	secretUncached bool
}

func (r *gatewayReconciler) input(ctx context.Context) (gateway.Input, *gatewayObjects, error) {
	in := gateway.Input{Cluster: r.cfg.Cluster, ControllerName: gateway.ControllerName, BundleVersion: r.bundleVersion(ctx),
		NoTLSRouteTermination:       r.alb != nil && !providers.CapabilitiesOf(r.alb).L4OnApplicationLB,
		NoStaticAddresses:           r.alb != nil && !providers.CapabilitiesOf(r.alb).StaticAddresses,
		NoBackendTLSVerification:    r.alb != nil && !providers.CapabilitiesOf(r.alb).BackendTLSVerification,
		NoBackendClientCertificates: r.alb != nil && !providers.CapabilitiesOf(r.alb).BackendClientCertificates,
		NoFrontendClientValidation:  r.alb != nil && !providers.CapabilitiesOf(r.alb).FrontendClientValidation}
	var (
		classes  gwv1.GatewayClassList
		gws      gwv1.GatewayList
		https    gwv1.HTTPRouteList
		grpcs    gwv1.GRPCRouteList
		tlss     gwv1.TLSRouteList
		tcps     gwv1.TCPRouteList
		udps     gwv1.UDPRouteList
		policies gwv1.BackendTLSPolicyList
		sets     gwv1.ListenerSetList
		grants   gwv1.ReferenceGrantList
		svcs     corev1.ServiceList
		slices   discoveryv1.EndpointSliceList
		secrets  corev1.SecretList
		nss      corev1.NamespaceList
		toList   = []client.ObjectList{&classes, &gws, &https, &grants, &svcs, &slices, &secrets, &nss}
		optional = []struct {
			on   bool
			list client.ObjectList
		}{{r.kinds.GRPC, &grpcs}, {r.kinds.TLS, &tlss}, {r.kinds.TCP, &tcps}, {r.kinds.UDP, &udps}, {r.kinds.BackendTLS, &policies},
			{r.kinds.ListenerSet, &sets}}
	)
	for _, o := range optional {
		if o.on {
			toList = append(toList, o.list)
		}
	}
	// The cache's own objects, not copies (1,000 HTTPRoutes took milliseconds to copy each
	// pass): nothing of a pass changes them. Translate leaves its input alone
	// (gateway.TestTranslateLeavesInputAlone), and a status is written on a copy.
	for _, l := range toList {
		if err := r.client.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return in, nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	in.GatewayClasses, in.Gateways, in.HTTPRoutes, in.GRPCRoutes = classes.Items, gws.Items, https.Items, grpcs.Items
	in.TLSRoutes, in.TCPRoutes, in.UDPRoutes, in.ReferenceGrants = tlss.Items, tcps.Items, udps.Items, grants.Items
	in.Services, in.EndpointSlices, in.Secrets, in.Namespaces = svcs.Items, slices.Items, secrets.Items, nss.Items
	in.BackendTLSPolicies, in.ListenerSets = policies.Items, sets.Items
	cms, err := r.caConfigMaps(ctx, policies.Items, gws.Items)
	if err != nil {
		return in, nil, err
	}
	in.ConfigMaps = cms
	other, uncached := r.untypedSecrets(ctx, classes.Items, gws.Items, sets.Items, secrets.Items, grants.Items)
	if len(other) > 0 {
		in.Secrets = append(in.Secrets, other...) // the list's own slice, not the cache's
	}
	in.LoadBalancers = r.lbStates()
	in.Registrable = r.registrable(ctx, in.EndpointSlices)

	objs := indexObjects(in.GatewayClasses, in.Gateways, in.ListenerSets, in.HTTPRoutes, in.GRPCRoutes, in.TLSRoutes, in.TCPRoutes, in.UDPRoutes, in.BackendTLSPolicies)
	objs.secretUncached = uncached
	return in, objs, nil
}

// registrable finds the pods behind unready endpoints that carry our readiness gate with their
// containers ready: they are registered before they are Ready (their gate waits for the target
// to turn healthy), as on the Service path.
func (r *gatewayReconciler) registrable(ctx context.Context, slices []discoveryv1.EndpointSlice) map[string]bool {
	out := map[string]bool{}
	for _, sl := range slices {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready || ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			var pod corev1.Pod
			key := types.NamespacedName{Namespace: sl.Namespace, Name: ep.TargetRef.Name}
			if err := r.client.Get(ctx, key, &pod); err != nil {
				continue // gone or not cached yet: the pod's own event brings a pass
			}
			if registrableWhileUnready(&pod) {
				out[key.String()] = true
			}
		}
	}
	return out
}

// bundleVersion reads the gateway.networking.k8s.io/bundle-version annotation of the installed
// Gateway CRD (once a minute): the GatewayClass's SupportedVersion condition follows it.
func (r *gatewayReconciler) bundleVersion(ctx context.Context) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.bundleAt.IsZero() && r.now().Sub(r.bundleAt) < time.Minute {
		return r.bundle
	}
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(crdGVK)
	if err := r.reader.Get(ctx, types.NamespacedName{Name: "gateways.gateway.networking.k8s.io"}, crd); err != nil {
		r.log.V(1).Info("cannot read the Gateway CRD's bundle version", "error", err.Error())
		return r.bundle
	}
	r.bundle, r.bundleAt = crd.GetAnnotations()["gateway.networking.k8s.io/bundle-version"], r.now()
	return r.bundle
}

func (r *gatewayReconciler) lbStates() []gateway.LoadBalancerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]gateway.LoadBalancerState, 0, len(r.records))
	for _, rec := range r.records {
		out = append(out, rec.state)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}

// gatewayTags are the ownership tags of one Gateway incarnation's resources.
// deleteGateway deletes a Gateway's application load balancer and its companion network load
// balancer (if the driver needed one) by the Gateway's tags.
func (r *gatewayReconciler) deleteGateway(ctx context.Context, tags map[string]string) error {
	if err := deploy.DeleteApplicationLoadBalancer(ctx, r.alb, tags, nil); err != nil {
		return err
	}
	return deploy.DeleteNetworkLoadBalancer(ctx, r.alb, tags)
}

func (r *gatewayReconciler) gatewayTags(ns, name, uid string) map[string]string {
	t := map[string]string{model.TagCluster: r.cfg.Cluster, TagGateway: ns + "/" + name}
	if uid != "" {
		t[TagGatewayUID] = uid
	}
	return t
}

// deployAll makes the cloud match every Gateway's model, a few Gateways at a time, and returns
// when the next pass should look again (0: only on the next change).
func (r *gatewayReconciler) deployAll(ctx context.Context, out gateway.Output) time.Duration {
	want := map[string]bool{}
	var (
		wg      sync.WaitGroup
		sem     = make(chan struct{}, 4)
		mu      sync.Mutex
		requeue time.Duration
	)
	later := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if requeue == 0 || d < requeue {
			requeue = d
		}
	}
	for i := range out.LoadBalancers {
		gw := &out.LoadBalancers[i]
		key := gw.Namespace + "/" + gw.Name
		want[key] = true
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if d := r.deployOne(ctx, gw); d > 0 {
				later(d)
			}
		}()
	}
	wg.Wait()
	// Gateways gone (or no longer ours): their load balancers go.
	r.mu.Lock()
	var gone []string
	for key := range r.records {
		if !want[key] {
			gone = append(gone, key)
		}
	}
	r.mu.Unlock()
	for _, key := range gone {
		ns, name, _ := strings.Cut(key, "/")
		if r.alb != nil {
			if err := r.deleteGateway(ctx, r.gatewayTags(ns, name, "")); err != nil {
				r.log.Error(err, "delete the load balancer of a deleted Gateway; retrying", "gateway", key)
				later(2 * time.Second)
				continue
			}
		}
		r.log.Info("deleted the load balancer of a Gateway that is gone or no longer ours", "gateway", key)
		r.mu.Lock()
		delete(r.records, key)
		r.mu.Unlock()
		r.state.notify(r.state.recordGateway(key, nil, nil))
	}
	return requeue
}

// deployOne deploys one Gateway's model unless the cloud already serves it, and records the
// result as the Gateway's load balancer state.
func (r *gatewayReconciler) deployOne(ctx context.Context, gw *gateway.GatewayLoadBalancers) time.Duration {
	key := gw.Namespace + "/" + gw.Name
	r.mu.Lock()
	rec := r.records[key]
	if rec == nil || rec.uid != gw.UID {
		rec = &gatewayRecord{uid: gw.UID}
		r.records[key] = rec
	}
	last := rec.model
	r.mu.Unlock()
	prepareStart := time.Now()
	// One pass deploys a Gateway at most once, and passes run one at a time: rec's model is
	// only this call's to change.
	same := last != nil && reflect.DeepEqual(last, gw)
	r.mu.Lock()
	if !same {
		rec.model, rec.version = gw, rec.version+1
	}
	version := rec.version
	// Resync: the model is deployed again (and the rule cache lists the rules anew) once
	// Config.Resync has passed, to repair what was changed in the cloud out of band.
	resync := rec.deployedAt.Add(r.cfg.Resync).Sub(r.now())
	done := rec.deployed == version && rec.state.Programmed && resync > 0
	reports := r.reports.Count()
	r.mu.Unlock()
	if done {
		return resync
	}
	st := gateway.LoadBalancerState{Namespace: gw.Namespace, Name: gw.Name}
	var (
		cloud   map[string]providers.LoadBalancerState
		requeue time.Duration
	)
	if gw.L7 == nil || r.alb == nil {
		r.mu.Lock()
		rec.unserved = nil
		r.mu.Unlock()
	}
	switch {
	case gw.Hold:
		// The Gateway asks for addresses it cannot have: what serves stays as it is, and its
		// addresses stay in the status.
		r.mu.Lock()
		st.Addresses = slices.Clone(rec.state.Addresses)
		r.mu.Unlock()
	case gw.L7 == nil:
		// Nothing the application load balancer serves (not accepted, no valid listener):
		// nothing of it in the cloud.
		r.state.notify(r.state.recordGateway(key, nil, nil))
		if r.alb != nil {
			if err := r.deleteGateway(ctx, r.gatewayTags(gw.Namespace, gw.Name, "")); err != nil {
				st.Message = "delete the load balancer: " + err.Error()
				requeue = 2 * time.Second
				break
			}
		}
	case r.alb == nil:
		st.Message = fmt.Sprintf("the cloud driver %T has no application load balancers (providers.ApplicationLoadBalancing)", r.cfg.Provider)
	default:
		tags := r.gatewayTags(gw.Namespace, gw.Name, gw.UID)
		// The rules the cloud cannot express are left out, each route's status saying so;
		// the rest of the Gateway is served.
		l7, unserved := deploy.RefusedRules(r.alb, gw.L7)
		nlb := (*model.LoadBalancer)(nil)
		split := !providers.CapabilitiesOf(r.alb).L4OnApplicationLB
		if split {
			owner := model.Owner{Cluster: r.cfg.Cluster, Namespace: gw.Namespace, Name: gw.Name, UID: gw.UID}
			var l4 []deploy.Unserved
			l7, nlb, l4 = deploy.SplitGateway(l7, deploy.NetworkLoadBalancerName(l7.Name), owner, tags)
			unserved = append(unserved, l4...)
		}
		r.mu.Lock()
		rec.unserved = unserved
		r.mu.Unlock()
		r.mu.Lock()
		token := clientTokens(r.tokenSeed, gw.UID+"/"+strconv.FormatUint(version, 10), rec.passes)
		r.mu.Unlock()
		deployStart := time.Now()
		res, err := deploy.ApplicationLoadBalancer(ctx, r.alb, l7, tags, token)
		deployed := time.Now()
		defer func() {
			r.log.V(1).Info("gateway deployed", "gateway", key, "took", deployed.Sub(deployStart).String(), "ruleCalls", res.RuleCalls.String(),
				"changes", len(res.Changes), "prepare", deployStart.Sub(prepareStart).String(), "after", time.Since(deployed).String())
		}()
		if res.LoadBalancerID != "" && res.State != "" {
			cloud = map[string]providers.LoadBalancerState{res.LoadBalancerID: {ID: res.LoadBalancerID, State: res.State, Reason: res.StateReason}}
		}
		if res.VIP.IsValid() {
			st.Addresses = []string{res.VIP.String()}
		}
		if err == nil && split {
			// The L4 listeners' network load balancer, at the Gateway's second address.
			var nres deploy.Result
			nres, err = deploy.NetworkLoadBalancer(ctx, r.alb, nlb, tags, token)
			for name, id := range nres.TargetGroups {
				res.TargetGroups[name] = id
			}
			if nres.VIP.IsValid() {
				st.Addresses = append(st.Addresses, nres.VIP.String())
			}
			if nres.LoadBalancerID != "" && nres.State != "" && cloud != nil {
				cloud[nres.LoadBalancerID] = providers.LoadBalancerState{ID: nres.LoadBalancerID, State: nres.State, Reason: nres.StateReason}
			}
			if err == nil && nlb != nil && nres.State != providers.LBActive {
				res.Programmed, res.State, res.StateReason = false, nres.State, "network load balancer: "+nres.StateReason
			}
		}
		switch {
		case err != nil:
			st.Message = err.Error()
			st.AddressNotUsable = errors.Is(err, providers.ErrAddressUnusable)
			requeue = retryAfter(err)
			if r.rules != nil {
				// The retry lists every listener's rules from the cloud again.
				r.rules.Invalidate()
			}
			r.log.Error(err, "deploy the Gateway's load balancer; retrying", "gateway", key)
		case !res.Programmed:
			st.Message = "the load balancer is " + res.State
			if res.StateReason != "" {
				st.Message += ": " + res.StateReason
			}
			requeue = 500 * time.Millisecond
			if res.State == providers.LBFailed {
				// The cloud retries a failed load balancer by itself, and the change stream
				// brings the Gateway back when it recovers (cloudStates): this is a safety net.
				requeue = failedRecheck
			}
		default:
			st.Programmed = true
		}
		if !providers.Retryable(err) {
			r.mu.Lock()
			rec.passes++
			r.mu.Unlock()
		}
		if err == nil {
			backends, groups := gatewayBackends(gw.L7, res)
			r.state.notify(r.state.recordGateway(key, backends, groups))
		}
		if len(res.Changes) > 0 {
			r.log.Info("deployed the Gateway's application load balancer", "gateway", key, "changes", len(res.Changes), "registered", res.Registered, "deregistered", res.Deregistered, "state", res.State)
		}
	}
	r.mu.Lock()
	rec.state, rec.cloud = st, cloud
	recheck := r.recheckLocked(cloud, reports)
	if (st.Programmed || (gw.L7 == nil && requeue == 0)) && recheck == 0 {
		rec.deployed, rec.deployedAt = version, r.now()
		if requeue == 0 {
			requeue = r.cfg.Resync
		}
	} else {
		rec.deployed = 0
	}
	r.mu.Unlock()
	if recheck > 0 && (requeue == 0 || requeue > recheck) {
		requeue = recheck
	}
	return requeue
}

// gatewayBackends maps the deployed model's target groups to their cloud IDs: by backend
// Service, and with the pods behind their targets, for the readiness gates.
func gatewayBackends(alb *gateway.ApplicationLoadBalancer, res deploy.GatewayResult) (map[types.NamespacedName][]string, map[string][]podTarget) {
	backends := map[types.NamespacedName][]string{}
	groups := map[string][]podTarget{}
	for _, tg := range alb.TargetGroups {
		id := res.TargetGroups[tg.Name]
		if id == "" {
			continue
		}
		ns, name, _ := strings.Cut(tg.Service, "/")
		svc := types.NamespacedName{Namespace: ns, Name: name}
		backends[svc] = append(backends[svc], id)
		var ts []podTarget
		for _, t := range tg.Targets {
			pt := podTarget{target: providers.Target{IP: t.IP, Port: t.Port}}
			if pns, pname, ok := cutPod(t.Pod); ok {
				pt.pod = types.NamespacedName{Namespace: pns, Name: pname}
			}
			ts = append(ts, pt)
		}
		groups[id] = ts
	}
	return backends, groups
}

// retryAfter spaces out retries of a failed deploy: throttling and transient errors soon, the
// cloud refusing longer (a person has to fix something; the next change retries at once).
func retryAfter(err error) time.Duration {
	if providers.Retryable(err) {
		return time.Second
	}
	return 10 * time.Second
}

// clientTokens is the intent a deploy pass derives its client tokens from (deploy's token): the
// model (the Gateway's UID and the model's version), the process's seed and the Gateway's count
// of passes (see tokenPasses for when it moves on).
func clientTokens(seed, model string, passes uint64) string {
	return model + "/" + seed + "/" + strconv.FormatUint(passes, 10)
}

// collect deletes the application load balancers of Gateways that are gone (deleted while the
// controller was down, or re-created with another UID): at the first pass and every minute.
func (r *gatewayReconciler) collect(ctx context.Context, out gateway.Output) {
	if r.alb == nil {
		return
	}
	r.mu.Lock()
	due := r.lastGC.IsZero() || r.now().Sub(r.lastGC) >= r.cfg.GCInterval
	if due {
		r.lastGC = r.now()
	}
	r.mu.Unlock()
	if !due {
		return
	}
	live := map[string]bool{}
	for _, gw := range out.LoadBalancers {
		if gw.L7 != nil || gw.Hold { // a held Gateway's load balancer serves on
			live[gw.Namespace+"/"+gw.Name+"/"+gw.UID] = true
		}
	}
	tags := map[string]string{model.TagCluster: r.cfg.Cluster, deploy.TagLayer: deploy.LayerL7}
	owners := map[[2]string]bool{}
	lbs, err := r.alb.ListApplicationLoadBalancers(ctx, tags)
	if err != nil {
		r.log.Error(err, "list the application load balancers to collect")
		return
	}
	for _, lb := range lbs {
		owners[[2]string{lb.Tags[TagGateway], lb.Tags[TagGatewayUID]}] = true
	}
	tgs, err := r.alb.ListTargetGroups(ctx, tags)
	if err != nil {
		r.log.Error(err, "list the target groups to collect")
		return
	}
	for _, tg := range tgs {
		owners[[2]string{tg.Tags[TagGateway], tg.Tags[TagGatewayUID]}] = true
	}
	// The companion network load balancers (drivers without L4 listeners on application ones).
	l4 := map[string]string{model.TagCluster: r.cfg.Cluster, deploy.TagLayer: deploy.LayerL4}
	nlbs, err := r.alb.ListLoadBalancers(ctx, l4)
	if err != nil {
		r.log.Error(err, "list the network load balancers to collect")
		return
	}
	for _, lb := range nlbs {
		owners[[2]string{lb.Tags[TagGateway], lb.Tags[TagGatewayUID]}] = true
	}
	l4tgs, err := r.alb.ListTargetGroups(ctx, l4)
	if err != nil {
		r.log.Error(err, "list the network target groups to collect")
		return
	}
	for _, tg := range l4tgs {
		owners[[2]string{tg.Tags[TagGateway], tg.Tags[TagGatewayUID]}] = true
	}
	for o := range owners {
		if o[0] == "" || live[o[0]+"/"+o[1]] {
			continue
		}
		ns, name, _ := strings.Cut(o[0], "/")
		if err := r.deleteGateway(ctx, r.gatewayTags(ns, name, o[1])); err != nil {
			r.log.Error(err, "delete an orphaned Gateway load balancer", "gateway", o[0], "uid", o[1])
			continue
		}
		gcDeleted.Inc()
		r.log.Info("deleted an orphaned Gateway load balancer", "gateway", o[0], "uid", o[1])
	}
}
