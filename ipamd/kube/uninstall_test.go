package kube_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flatnet/flatnet/internal/k8stest"
	"github.com/flatnet/flatnet/ipamd/kube"
)

// TestUninstalling tells a rolling update (the DaemonSet is there) from an uninstall (it is
// being deleted, or gone) against a real API server.
func TestUninstalling(t *testing.T) {
	cfg := k8stest.Start(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	ref := kube.DaemonSetRef{Namespace: "default", Name: "flatnet-ipamd"}
	labels := map[string]string{"app": "ipamd"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Finalizers: []string{"flatnet.io/test"}},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "ipamd", Image: "ghcr.io/flatnet/flatnet-ipamd:0.1.0"}}},
			},
		},
	}
	if _, err := cs.AppsV1().DaemonSets(ref.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	check := func(want bool) {
		t.Helper()
		got, err := kube.Uninstalling(ctx, cfg, ref)
		if err != nil || got != want {
			t.Fatalf("Uninstalling = %v, %v; want %v", got, err, want)
		}
	}
	check(false) // running: a restart or a rolling update
	if err := cs.AppsV1().DaemonSets(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	check(true) // deletionTimestamp set, held by the finalizer
	if _, err := cs.AppsV1().DaemonSets(ref.Namespace).Patch(ctx, ref.Name, "application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	check(true) // gone

	// The hook's foreground delete: the API server marks the DaemonSet deleting (what each ipamd
	// reads on its way out); with no garbage collector here (no controller-manager) it never
	// goes, and the wait says so when its time is up.
	ds2 := ds.DeepCopy()
	ds2.ResourceVersion, ds2.Finalizers, ds2.Name = "", nil, "flatnet-ipamd-2"
	if _, err := cs.AppsV1().DaemonSets(ref.Namespace).Create(ctx, ds2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref2 := kube.DaemonSetRef{Namespace: ref.Namespace, Name: ds2.Name}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := kube.DeleteDaemonSet(short, cfg, ref2, func() { time.Sleep(100 * time.Millisecond) }); err == nil || !strings.Contains(err.Error(), "still there") {
		t.Fatalf("DeleteDaemonSet without a garbage collector: %v", err)
	}
	if got, err := kube.Uninstalling(ctx, cfg, ref2); err != nil || !got {
		t.Fatalf("after the foreground delete Uninstalling = %v, %v", got, err)
	}

	// An identity that may not read the DaemonSet gets an error, not a guess.
	anon := *cfg
	anon.BearerToken, anon.CertData, anon.KeyData, anon.CertFile, anon.KeyFile = "", nil, nil, "", ""
	anon.Username, anon.Password = "", ""
	if _, err := kube.Uninstalling(ctx, &anon, ref); err == nil {
		t.Fatal("an unauthorized read reported an answer")
	}
	if _, err := kube.ParseDaemonSetRef("kube-system"); err == nil || !strings.Contains(err.Error(), "<namespace>/<name>") {
		t.Fatalf("bad ref: %v", err)
	}
}
