package lbcontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// gateReconciler sets the readiness-gate condition of pods that carry it: True once the pod is
// healthy in every target group of the Services of ours that select it and of the Services
// selecting it that back a Gateway's routes, True at once for a pod no such Service selects
// (nothing waits forever), False with the reason otherwise.
type gateReconciler struct {
	client client.Client
	cfg    Config
	state  *state
	now    func() time.Time
}

func hasGate(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.ReadinessGates {
		if g.ConditionType == GateCondition {
			return true
		}
	}
	return false
}

func (r *gateReconciler) Reconcile(ctx context.Context, req reconcile.Request) (_ reconcile.Result, err error) {
	defer func() {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		reconciles.WithLabelValues("readiness-gate", outcome).Inc()
	}()
	var pod corev1.Pod
	if err := r.client.Get(ctx, req.NamespacedName, &pod); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !hasGate(&pod) || !pod.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	g, err := r.verdict(ctx, &pod)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.patch(ctx, &pod, g); err != nil {
		return reconcile.Result{}, err
	}
	// The change stream wakes the pod when its health moves; the resync is only a safety net.
	return reconcile.Result{RequeueAfter: r.cfg.GateResync}, nil
}

// verdict decides the gate from the Services of ours that select the pod.
func (r *gateReconciler) verdict(ctx context.Context, pod *corev1.Pod) (gate, error) {
	var svcs corev1.ServiceList
	if err := r.client.List(ctx, &svcs, client.InNamespace(pod.Namespace)); err != nil {
		return gate{}, fmt.Errorf("list the Services of namespace %s: %w", pod.Namespace, err)
	}
	var selecting []types.NamespacedName
	selects := map[types.NamespacedName]bool{}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if !svc.DeletionTimestamp.IsZero() || len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			continue
		}
		key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		selects[key] = true
		if ours(svc, r.cfg.DefaultClass) {
			selecting = append(selecting, key)
		}
	}
	// Services that back a Gateway's routes count as well: the pod waits for their target
	// groups on the Gateway's load balancer.
	gwGroups := r.state.gatewayGroups(pod.Namespace, func(svc types.NamespacedName) bool { return selects[svc] })
	if len(selecting) == 0 && len(gwGroups) == 0 {
		return gate{ready: true, reason: "NotTargeted", msg: "no load balancer of flatnet targets this pod"}, nil
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil {
		return gate{reason: "WaitingForPodIP", msg: "the pod has no IP yet"}, nil
	}
	return r.state.podHealth(ip, selecting, gwGroups), nil
}

// patch writes only the gate's condition in pods/status, and only when it changed. A strategic
// merge patch keyed by condition type leaves every other condition alone.
func (r *gateReconciler) patch(ctx context.Context, pod *corev1.Pod, g gate) error {
	status := corev1.ConditionFalse
	if g.ready {
		status = corev1.ConditionTrue
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == GateCondition && c.Status == status && c.Reason == g.reason && c.Message == g.msg {
			return nil
		}
	}
	cond := corev1.PodCondition{
		Type: GateCondition, Status: status, Reason: g.reason, Message: g.msg,
		LastTransitionTime: metav1.NewTime(r.now()),
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == GateCondition && c.Status == status {
			cond.LastTransitionTime = c.LastTransitionTime // same status: no transition
		}
	}
	body, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.PodCondition{cond}}})
	if err != nil {
		return err
	}
	if err := r.client.Status().Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, body)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("set condition %s of pod %s/%s: %w", GateCondition, pod.Namespace, pod.Name, err)
	}
	return nil
}
