package lbcontroller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

func controllerDeployment(ns string) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": "flatnet-lbcontroller"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flatnet-lbcontroller"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "ghcr.io/flatnet/flatnet-lbcontroller:0.1.0"}}},
			},
		},
	}
}

// TestUninstall: the pre-delete hook stops the controller, deletes every load balancer of the
// cluster and releases the Services; with a controller pod still running it deletes nothing.
func TestUninstall(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ns := h.namespace(t)
	for _, name := range []string{"a", "b"} {
		if err := h.k8s.Create(ctx, lbService(ns, name)); err != nil {
			t.Fatal(err)
		}
		if err := h.k8s.Create(ctx, endpointSlice(ns, name, readyEP("10.0.1.10"))); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Service "+name+" gets its load balancer", func() (bool, string) {
			svc := h.service(t, ns, name)
			return len(svc.Status.LoadBalancer.Ingress) == 1, fmt.Sprintf("%+v", svc.Status)
		})
	}
	// A Gateway's application load balancer with a target group, as the Gateway controller
	// leaves them: uninstall deletes them too.
	gwTags := map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw", lbcontroller.TagGatewayUID: "u1", deploy.TagLayer: deploy.LayerL7}
	if _, err := h.p.CreateApplicationLoadBalancer(ctx, providers.LoadBalancerSpec{Name: "gw-" + ns, Tags: gwTags}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.p.CreateTargetGroup(ctx, providers.TargetGroupSpec{Name: "gw-tg-" + ns, Protocol: "HTTP", Port: 8080, Tags: gwTags}); err != nil {
		t.Fatal(err)
	}
	// The API server runs no controllers here: the Deployment has no pods of its own. A pod of
	// its selector that is still running stands for a replica that did not stop.
	dep := controllerDeployment(ns)
	if err := h.k8s.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	straggler := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flatnet-lbcontroller-x", Labels: dep.Spec.Template.Labels},
		Spec:       dep.Spec.Template.Spec,
	}
	if err := h.k8s.Create(ctx, straggler); err != nil {
		t.Fatal(err)
	}
	h.stop()
	opts := lbcontroller.UninstallOptions{
		Rest: h.rest, Provider: h.p, Cluster: h.cluster,
		Deployment: types.NamespacedName{Namespace: ns, Name: dep.Name}, StopTimeout: 2 * time.Second,
	}
	if _, err := lbcontroller.Uninstall(ctx, opts); err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("with a replica still running: %v", err)
	}
	if lbs, _ := h.owned(t, ns, "a"); len(lbs) != 1 {
		t.Fatalf("a load balancer was deleted while a controller could still re-create it: %+v", lbs)
	}
	var got appsv1.Deployment
	if err := h.k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: dep.Name}, &got); err != nil || *got.Spec.Replicas != 0 {
		t.Fatalf("the Deployment was not scaled to 0: %v %v", got.Spec.Replicas, err)
	}
	if err := h.k8s.Delete(ctx, straggler, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}

	sum, err := lbcontroller.Uninstall(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.DeletedResources || !slices.Equal(sum.ReleasedServices, []string{ns + "/a", ns + "/b"}) {
		t.Fatalf("summary %+v", sum)
	}
	if albs, err := h.p.ListApplicationLoadBalancers(ctx, gwTags); err != nil || len(albs) != 0 {
		t.Fatalf("the Gateway's application load balancers left: %+v (%v)", albs, err)
	}
	if tgs, err := h.p.ListTargetGroups(ctx, gwTags); err != nil || len(tgs) != 0 {
		t.Fatalf("the Gateway's target groups left: %+v (%v)", tgs, err)
	}
	for _, name := range []string{"a", "b"} {
		if lbs, tgs := h.owned(t, ns, name); len(lbs)+len(tgs) != 0 {
			t.Fatalf("%s: cloud resources left: %+v %+v", name, lbs, tgs)
		}
		svc := h.service(t, ns, name)
		if slices.Contains(svc.Finalizers, lbcontroller.Finalizer) || len(svc.Status.LoadBalancer.Ingress) != 0 || condition(svc) != nil {
			t.Fatalf("%s not released: finalizers %v, status %+v", name, svc.Finalizers, svc.Status)
		}
	}
	// The Services delete at once now: nothing holds them.
	if err := h.k8s.Delete(ctx, h.service(t, ns, "a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Service a is gone", func() (bool, string) {
		err := h.k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "a"}, &corev1.Service{})
		return err != nil, fmt.Sprint(err)
	})
	sum, err = lbcontroller.Uninstall(ctx, opts)
	if err != nil || sum.DeletedResources || len(sum.ReleasedServices) != 0 {
		t.Fatalf("a second run: %+v, %v", sum, err)
	}
	if _, err := lbcontroller.Uninstall(ctx, lbcontroller.UninstallOptions{Rest: h.rest, Provider: h.p}); err == nil || !strings.Contains(err.Error(), "cluster name") {
		t.Fatalf("no cluster: %v", err)
	}
}
