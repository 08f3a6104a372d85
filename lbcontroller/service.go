package lbcontroller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// serviceReconciler gives each Service of ours its load balancer.
type serviceReconciler struct {
	client client.Client
	events recorder.EventRecorder
	cfg    Config
	state  *state
	now    func() time.Time
	tokens *tokenPasses
}

// ours says whether the controller serves svc.
func ours(svc *corev1.Service, defaultClass bool) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil {
		return defaultClass
	}
	return *svc.Spec.LoadBalancerClass == Class
}

func (r *serviceReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, err error) {
	outcome := "ok"
	defer func() {
		if err != nil {
			outcome = "error"
		}
		reconciles.WithLabelValues("service", outcome).Inc()
	}()
	var svc corev1.Service
	if err := r.client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.state.notify(r.state.forgetService(req.NamespacedName))
			r.tokens.forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !svc.DeletionTimestamp.IsZero() || !ours(&svc, r.cfg.DefaultClass) {
		return reconcile.Result{}, r.release(ctx, &svc)
	}
	lb, err := r.build(ctx, &svc)
	if err != nil {
		var inv *model.InvalidError
		if errors.As(err, &inv) {
			outcome = "invalid"
			return reconcile.Result{}, r.invalid(ctx, &svc, inv)
		}
		return reconcile.Result{}, err
	}
	// The finalizer goes on before anything exists in the cloud, so nothing can be created
	// that a deletion would not wait for.
	if !controllerutil.ContainsFinalizer(&svc, Finalizer) {
		patch := client.MergeFromWithOptions(svc.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(&svc, Finalizer)
		if err := r.client.Patch(ctx, &svc, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("add finalizer %s: %w", Finalizer, err)
		}
	}
	since := r.state.takePending(req.NamespacedName)
	token := r.tokens.token(req.NamespacedName, string(svc.UID)+"/"+strconv.FormatInt(svc.Generation, 10))
	result, err := deploy.Deploy(ctx, r.cfg.Provider, lb, token)
	r.tokens.done(req.NamespacedName, err)
	if err != nil && errors.Is(err, providers.ErrAddressUnusable) && complete(lb, result) {
		// The address was refused, but the load balancer serving the Service was brought in
		// step with it (deploy.Deploy): the readiness gates follow its targets meanwhile.
		r.state.notify(r.state.recordService(req.NamespacedName, result.LoadBalancerID, podTargets(lb, result)))
	}
	if err != nil {
		r.state.restorePending(req.NamespacedName, since)
		return reconcile.Result{}, r.cloudFailed(ctx, &svc, err)
	}
	if !since.IsZero() {
		endpointsProgrammed.Observe(r.now().Sub(since).Seconds())
	}
	r.state.notify(r.state.recordService(req.NamespacedName, result.LoadBalancerID, podTargets(lb, result)))
	if result.Created {
		r.events.Eventf(&svc, nil, corev1.EventTypeNormal, ReasonCreated, "Provision",
			"created load balancer %s (%s, %s) with VIP %s", result.LoadBalancerID, lb.Name, lb.Scheme, result.VIP)
	}
	log.FromContext(ctx).V(1).Info("deployed", "loadBalancer", result.LoadBalancerID, "state", result.State, "registered", result.Registered, "deregistered", result.Deregistered)
	return r.reportState(ctx, &svc, lb, result)
}

// Requeue periods while a load balancer is not active, under the cloud's change stream (which
// brings the Service back as soon as the state changes): a safety net, not the way back.
const (
	provisioningRecheck = 5 * time.Second
	failedRecheck       = 30 * time.Second
)

// reportState turns the load balancer's state in the cloud into the Service's status: only an
// active load balancer publishes its address and a true condition; a provisioning one waits;
// a failed one says why, with a Warning event when it fails and a Normal one when it recovers.
// The cloud keeps retrying a failed load balancer by itself, so nothing here re-creates it.
func (r *serviceReconciler) reportState(ctx context.Context, svc *corev1.Service, lb *model.LoadBalancer, res deploy.Result) (reconcile.Result, error) {
	prev := meta.FindStatusCondition(svc.Status.Conditions, ConditionReady)
	switch res.State {
	case providers.LBActive:
		if prev != nil && prev.Reason == ReasonLBFailed {
			r.events.Eventf(svc, nil, corev1.EventTypeNormal, ReasonLBRecovered, "Provision",
				"load balancer %s is active again: the cloud programmed it", res.LoadBalancerID)
		}
		// Compared with the cloud again after Config.Resync though nothing changed: what was
		// changed out of band is repaired.
		return reconcile.Result{RequeueAfter: r.cfg.Resync}, r.setStatus(ctx, svc, &res.VIP, metav1.ConditionTrue, ReasonProvisioned,
			fmt.Sprintf("load balancer %s serves %d port(s) at %s", res.LoadBalancerID, len(lb.Listeners), res.VIP))
	case providers.LBFailed:
		msg := fmt.Sprintf("load balancer %s failed in the cloud: %s (the cloud retries with backoff; the Service turns ready by itself once the cause is gone)",
			res.LoadBalancerID, res.StateReason)
		if prev == nil || prev.Reason != ReasonLBFailed || prev.Message != truncate(msg, maxMessage) {
			r.events.Eventf(svc, nil, corev1.EventTypeWarning, ReasonLBFailed, "Provision", "%s", msg)
		}
		return reconcile.Result{RequeueAfter: failedRecheck}, r.setStatus(ctx, svc, nil, metav1.ConditionFalse, ReasonLBFailed, msg)
	default:
		msg := fmt.Sprintf("load balancer %s is %s: the cloud has not programmed it yet", res.LoadBalancerID, res.State)
		if res.StateReason != "" {
			msg += " (" + res.StateReason + ")"
		}
		return reconcile.Result{RequeueAfter: provisioningRecheck}, r.setStatus(ctx, svc, nil, metav1.ConditionFalse, ReasonLBProvisioning, msg)
	}
}

// build reads the Service's slices (and the gated pods among their unready endpoints) and
// translates it all into the desired load balancer.
func (r *serviceReconciler) build(ctx context.Context, svc *corev1.Service) (*model.LoadBalancer, error) {
	var slices discoveryv1.EndpointSliceList
	if err := r.client.List(ctx, &slices, client.InNamespace(svc.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return nil, fmt.Errorf("list the EndpointSlices of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	registrable := map[string]bool{}
	for _, sl := range slices.Items {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready || ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			var pod corev1.Pod
			key := types.NamespacedName{Namespace: svc.Namespace, Name: ep.TargetRef.Name}
			if err := r.client.Get(ctx, key, &pod); err != nil {
				continue // gone or not cached yet: the pod's own event brings us back
			}
			if registrableWhileUnready(&pod) {
				registrable[key.String()] = true
			}
		}
	}
	return model.Build(model.Input{Cluster: r.cfg.Cluster, DefaultScheme: r.cfg.DefaultScheme, Service: svc, Slices: slices.Items, Registrable: registrable,
		NoStaticAddresses: !providers.CapabilitiesOf(r.cfg.Provider).StaticAddresses})
}

// registrableWhileUnready: a pod carrying our gate whose containers are ready is registered
// before it is Ready, since Ready waits for its health in the load balancer.
func registrableWhileUnready(pod *corev1.Pod) bool {
	if !hasGate(pod) || !pod.DeletionTimestamp.IsZero() {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.ContainersReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// complete: res names a load balancer and a cloud ID for every target group of lb.
func complete(lb *model.LoadBalancer, res deploy.Result) bool {
	if res.LoadBalancerID == "" {
		return false
	}
	for _, tg := range lb.TargetGroups {
		if res.TargetGroups[tg.Name] == "" {
			return false
		}
	}
	return true
}

func podTargets(lb *model.LoadBalancer, res deploy.Result) map[string][]podTarget {
	out := map[string][]podTarget{}
	for _, tg := range lb.TargetGroups {
		id := res.TargetGroups[tg.Name]
		var ts []podTarget
		for _, t := range tg.Targets {
			pt := podTarget{target: providers.Target{IP: t.IP, Port: t.Port}}
			if ns, name, ok := cutPod(t.Pod); ok {
				pt.pod = types.NamespacedName{Namespace: ns, Name: name}
			}
			ts = append(ts, pt)
		}
		out[id] = ts
	}
	return out
}

func cutPod(key string) (string, string, bool) {
	for i := range len(key) {
		if key[i] == '/' {
			return key[:i], key[i+1:], true
		}
	}
	return "", "", false
}

// invalid reports a Service the controller cannot build: nothing is created; what an earlier
// good configuration built stays as it was.
func (r *serviceReconciler) invalid(ctx context.Context, svc *corev1.Service, inv *model.InvalidError) error {
	msg := "the load balancer cannot be built: " + inv.Error()
	if controllerutil.ContainsFinalizer(svc, Finalizer) {
		msg += " (the existing load balancer keeps its last good configuration)"
	} else {
		msg += " (nothing was created in the cloud)"
	}
	r.events.Eventf(svc, nil, corev1.EventTypeWarning, ReasonInvalid, "Validate", "%s", msg)
	return r.setStatus(ctx, svc, nil, metav1.ConditionFalse, ReasonInvalid, msg)
}

// cloudFailed reports a failed deploy and returns the error, so the request is retried with
// backoff; the next pass converges from whatever this one left (everything is found by tags).
func (r *serviceReconciler) cloudFailed(ctx context.Context, svc *corev1.Service, err error) error {
	reason := ReasonCloudError
	hint := "retrying with backoff"
	switch {
	case errors.Is(err, providers.ErrThrottled):
		reason = ReasonThrottled
	case errors.Is(err, providers.ErrLimit):
		reason, hint = ReasonQuota, "free some load balancers or targets, or raise the quota; retrying with backoff"
	case errors.Is(err, providers.ErrAddressUnusable):
		reason, hint = ReasonAddressNotUsable, "the load balancer at the old address, if any, serves on; "+
			"pin an address that is free, or free this one; retrying with backoff"
	case errors.Is(err, providers.ErrInvalid), errors.Is(err, providers.ErrConflict):
		reason, hint = ReasonCloudRefused, "retrying with backoff; what was created is reconciled or removed on the next pass"
	}
	msg := fmt.Sprintf("%v (%s)", err, hint)
	r.events.Eventf(svc, nil, corev1.EventTypeWarning, reason, "Provision", "%s", msg)
	if serr := r.setStatus(ctx, svc, nil, metav1.ConditionFalse, reason, msg); serr != nil {
		log.FromContext(ctx).Error(serr, "write the Service's condition")
	}
	return err
}

// setStatus writes the Service's ingress (when vip is given) and our condition, if they changed.
func (r *serviceReconciler) setStatus(ctx context.Context, svc *corev1.Service, vip *netip.Addr, status metav1.ConditionStatus, reason, msg string) error {
	old := svc.DeepCopy()
	if vip != nil {
		mode := corev1.LoadBalancerIPModeVIP
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: vip.String(), IPMode: &mode}}
	}
	meta.SetStatusCondition(&svc.Status.Conditions, metav1.Condition{
		Type: ConditionReady, Status: status, Reason: reason, Message: truncate(msg, maxMessage), ObservedGeneration: svc.Generation,
	})
	if equality.Semantic.DeepEqual(old.Status, svc.Status) {
		return nil
	}
	if err := r.client.Status().Patch(ctx, svc, client.MergeFrom(old)); err != nil {
		return fmt.Errorf("write the status of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// maxMessage is the most a condition message holds (the API server's limit).
const maxMessage = 32768

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// release removes the cloud resources of a Service being deleted, or no longer ours, then its
// finalizer; a Service that was never ours is left untouched.
func (r *serviceReconciler) release(ctx context.Context, svc *corev1.Service) error {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	if !controllerutil.ContainsFinalizer(svc, Finalizer) {
		r.state.notify(r.state.forgetService(key))
		return nil
	}
	owner := model.Owner{Cluster: r.cfg.Cluster, Namespace: svc.Namespace, Name: svc.Name}
	tags := map[string]string{model.TagCluster: owner.Cluster, model.TagService: owner.Key()}
	found, err := deploy.Delete(ctx, r.cfg.Provider, tags)
	if err != nil {
		r.events.Eventf(svc, nil, corev1.EventTypeWarning, ReasonDeleteFailed, "Delete", "%v (retrying with backoff)", err)
		return err
	}
	if found {
		r.events.Eventf(svc, nil, corev1.EventTypeNormal, ReasonDeleted, "Delete", "deleted the load balancer and its target groups")
	}
	r.state.notify(r.state.forgetService(key))
	if svc.DeletionTimestamp.IsZero() {
		// No longer ours (type or class changed): take our status off.
		old := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = nil
		meta.RemoveStatusCondition(&svc.Status.Conditions, ConditionReady)
		if !equality.Semantic.DeepEqual(old.Status, svc.Status) {
			if err := r.client.Status().Patch(ctx, svc, client.MergeFrom(old)); err != nil {
				return fmt.Errorf("clear the status of Service %s: %w", key, err)
			}
		}
	}
	patch := client.MergeFromWithOptions(svc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(svc, Finalizer)
	if err := r.client.Patch(ctx, svc, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove finalizer %s: %w", Finalizer, err)
	}
	return nil
}
