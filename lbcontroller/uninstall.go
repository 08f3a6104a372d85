package lbcontroller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// UninstallOptions configure Uninstall.
type UninstallOptions struct {
	Rest     *rest.Config
	Provider providers.LoadBalancing
	// Cluster scopes the ownership tags: every load balancer and target group tagged with it
	// goes.
	Cluster string
	// Deployment is the controller's Deployment, stopped first so that no replica re-creates
	// what Uninstall deletes. Empty: the caller made sure no controller runs.
	Deployment types.NamespacedName
	// StopTimeout bounds the wait for the controller's pods to go (default 2 minutes).
	StopTimeout time.Duration
	Logger      *slog.Logger
}

// UninstallSummary is what Uninstall did.
type UninstallSummary struct {
	StoppedReplicas  int32
	DeletedResources bool
	ReleasedServices []string
}

// Uninstall takes the controller out of a cluster without leaving anything behind: it scales
// the controller's Deployment to zero and waits for its pods to end, deletes every cloud load
// balancer and target group tagged with the cluster, then removes the controller's finalizer,
// load-balancer status and condition from every Service that has them, so that no Service is
// stuck deleting and no address is advertised for a load balancer that is gone. The chart runs
// it as a pre-delete hook (docs/chart.md). It is idempotent: a second run finds nothing to do.
func Uninstall(ctx context.Context, o UninstallOptions) (UninstallSummary, error) {
	var sum UninstallSummary
	if o.Cluster == "" {
		return sum, errors.New("uninstall: the cluster name is required: it selects the load balancers to delete")
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 2 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	c, err := client.New(o.Rest, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		return sum, fmt.Errorf("uninstall: kubernetes client: %w", err)
	}
	if o.Deployment.Name != "" {
		n, err := stopDeployment(ctx, c, o.Deployment, o.StopTimeout)
		if err != nil {
			return sum, err
		}
		sum.StoppedReplicas = n
		log.Info("uninstall: the controller is stopped", "deployment", o.Deployment.String(), "replicas-before", n)
	}
	pol := providers.NewPolicy(CloudPolicyDefaults())
	// The Gateways' application load balancers first (with their certificates, which a network
	// load balancer's delete knows nothing of), then everything else of the cluster.
	if a, ok := o.Provider.(providers.ApplicationLoadBalancing); ok {
		var res deploy.GatewayResult
		if err := deploy.DeleteApplicationLoadBalancer(ctx, pol.ApplicationLoadBalancing(a), map[string]string{model.TagCluster: o.Cluster}, &res); err != nil {
			return sum, fmt.Errorf("uninstall: the Gateways' load balancers: %w", err)
		}
		sum.DeletedResources = len(res.Changes) > 0
	}
	found, err := deploy.Delete(ctx, pol.LoadBalancing(o.Provider), map[string]string{model.TagCluster: o.Cluster})
	if err != nil {
		return sum, fmt.Errorf("uninstall: %w", err)
	}
	sum.DeletedResources = sum.DeletedResources || found
	log.Info("uninstall: the cluster's load balancers are deleted", "cluster", o.Cluster, "found", found)
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return sum, fmt.Errorf("uninstall: list Services: %w", err)
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if !controllerutil.ContainsFinalizer(svc, Finalizer) {
			continue
		}
		if err := releaseService(ctx, c, svc); err != nil {
			return sum, err
		}
		sum.ReleasedServices = append(sum.ReleasedServices, svc.Namespace+"/"+svc.Name)
		log.Info("uninstall: Service released", "service", svc.Namespace+"/"+svc.Name)
	}
	return sum, nil
}

// stopDeployment scales d to zero and waits until none of its pods is left. It returns the
// replicas it had; a Deployment that does not exist is already stopped.
func stopDeployment(ctx context.Context, c client.Client, d types.NamespacedName, timeout time.Duration) (int32, error) {
	var dep appsv1.Deployment
	if err := c.Get(ctx, d, &dep); apierrors.IsNotFound(err) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("uninstall: read the controller's Deployment %s: %w", d, err)
	}
	var was int32 = 1
	if dep.Spec.Replicas != nil {
		was = *dep.Spec.Replicas
	}
	if was != 0 {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":0}}`))
		if err := c.Patch(ctx, &dep, patch); err != nil {
			return was, fmt.Errorf("uninstall: scale the controller's Deployment %s to 0: %w", d, err)
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return was, fmt.Errorf("uninstall: the Deployment %s has no usable selector: %w", d, err)
	}
	if sel.Empty() {
		return was, fmt.Errorf("uninstall: the Deployment %s has an empty selector: it would match every pod", d)
	}
	deadline := time.Now().Add(timeout)
	for {
		left, err := podsOf(ctx, c, d.Namespace, sel)
		if err != nil {
			return was, err
		}
		if len(left) == 0 {
			return was, nil
		}
		if time.Now().After(deadline) {
			return was, fmt.Errorf("uninstall: the controller's pods %v did not stop within %s; nothing was deleted in the cloud", left, timeout)
		}
		select {
		case <-ctx.Done():
			return was, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func podsOf(ctx context.Context, c client.Client, ns string, sel labels.Selector) ([]string, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("uninstall: list the controller's pods: %w", err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			names = append(names, p.Name)
		}
	}
	return names, nil
}

// releaseService clears what the controller wrote on svc: the ingress addresses and its
// condition (status), then its finalizer.
func releaseService(ctx context.Context, c client.Client, svc *corev1.Service) error {
	key := svc.Namespace + "/" + svc.Name
	if len(svc.Status.LoadBalancer.Ingress) > 0 || meta.FindStatusCondition(svc.Status.Conditions, ConditionReady) != nil {
		before := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = nil
		meta.RemoveStatusCondition(&svc.Status.Conditions, ConditionReady)
		if err := c.Status().Patch(ctx, svc, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("uninstall: clear the load-balancer status of Service %s: %w", key, err)
		}
	}
	before := svc.DeepCopy()
	controllerutil.RemoveFinalizer(svc, Finalizer)
	if err := c.Patch(ctx, svc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("uninstall: remove the finalizer of Service %s: %w", key, err)
	}
	return nil
}
