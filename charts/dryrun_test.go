package charts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/flatnet/flatnet/internal/k8stest"
)

// Every object the chart renders, for both value sets, is accepted by a real kube-apiserver in a
// server-side apply with dryRun=All and strict field validation: the API server's own validation
// (required fields, formats, immutable rules, unknown fields) sees the chart as a cluster would.
// The ServiceMonitor kind comes from a minimal stand-in CRD (testdata/servicemonitor-crd.yaml),
// since the Prometheus Operator is not installed.
func TestServerSideDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	cfg := k8stest.Start(t, "flatnet/crds") // the chart installs them before its templates
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNS}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the release namespace: %v", err)
	}
	installServiceMonitorCRD(ctx, t, dyn)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))

	ch := loadChart(t, chartDir)
	for _, set := range valueSets {
		t.Run(set, func(t *testing.T) {
			objs := objects(t, mustRender(t, ch, valuesOf(t, set)))
			kinds := map[string]int{}
			for _, o := range objs {
				if err := dryRunApply(ctx, dyn, mapper, o.u); err != nil {
					t.Errorf("%s: the API server refuses it: %v", o, err)
					continue
				}
				kinds[o.u.GetKind()]++
			}
			t.Logf("accepted by the API server (dry run): %v", kinds)
			for _, want := range []string{"DaemonSet", "Deployment", "Job", "ClusterRole", "Role", "ServiceAccount", "Service", "PodDisruptionBudget"} {
				if kinds[want] == 0 {
					t.Errorf("no %s was applied", want)
				}
			}
		})
	}
	// The dry run persisted nothing.
	dss, err := cs.AppsV1().DaemonSets(releaseNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dss.Items) != 0 {
		t.Errorf("the dry run created %d DaemonSets", len(dss.Items))
	}
}

// The dry run refuses what a cluster would refuse: a field the API does not know, under strict
// validation, is an error (the test above is not passing because nothing is checked).
func TestServerSideDryRunRefusesBadObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	cfg := k8stest.Start(t, "flatnet/crds") // the chart installs them before its templates
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
	objs := objects(t, mustRender(t, loadChart(t, chartDir), valuesOf(t, "required")))
	ds := one(t, objs, "DaemonSet", releaseName+"-ipamd").u.DeepCopy()
	ds.SetNamespace("default")
	if err := unstructured.SetNestedField(ds.Object, "sometimes", "spec", "template", "spec", "hostNetwork"); err != nil {
		t.Fatal(err)
	}
	if err := dryRunApply(ctx, dyn, mapper, ds); err == nil {
		t.Error("hostNetwork: sometimes was accepted")
	}
	ds = one(t, objs, "DaemonSet", releaseName+"-ipamd").u.DeepCopy()
	ds.SetNamespace("default")
	if err := unstructured.SetNestedField(ds.Object, true, "spec", "template", "spec", "hostNetwrok"); err != nil {
		t.Fatal(err)
	}
	if err := dryRunApply(ctx, dyn, mapper, ds); err == nil {
		t.Error("an unknown field (hostNetwrok) was accepted")
	}
}

// dryRunApply server-side applies u with dryRun=All and strict field validation; namespaced
// objects without a namespace go to the release namespace, as Helm puts them.
func dryRunApply(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("the API server does not serve %s: %w", gvk, err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = releaseNS
		}
		ri = dyn.Resource(m.Resource).Namespace(ns)
	} else if u.GetNamespace() != "" {
		return fmt.Errorf("cluster-scoped %s has namespace %s", gvk.Kind, u.GetNamespace())
	}
	body, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	_, err = ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
		FieldManager: "chart-test", Force: ptr(true), DryRun: []string{metav1.DryRunAll},
		FieldValidation: "Strict",
	})
	return err
}

// installServiceMonitorCRD creates the stand-in CRD and waits until the API server serves it.
func installServiceMonitorCRD(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "servicemonitor-crd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create the ServiceMonitor stand-in CRD: %v", err)
	}
	for {
		got, err := crds.Get(ctx, "servicemonitors.monitoring.coreos.com", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				t.Log("ServiceMonitor: served by a minimal stand-in CRD (testdata/servicemonitor-crd.yaml), not the Prometheus Operator's")
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the ServiceMonitor CRD was not established: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
