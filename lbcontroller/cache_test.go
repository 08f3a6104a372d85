package lbcontroller_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flatnet/flatnet/lbcontroller"
)

// TestCacheHoldsNoManagedFields: the controller's cache (CacheOptions, as Run uses) keeps no
// object's managed fields, and an update of an object read from it keeps the server's.
func TestCacheHoldsNoManagedFields(t *testing.T) {
	h := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := h.namespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}, Data: map[string]string{"v": "0"}}
	if err := h.k8s.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	opts := lbcontroller.CacheOptions()
	opts.Scheme = scheme.Scheme
	c, err := cache.New(h.rest, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	var cached corev1.ConfigMap
	eventually(t, "the ConfigMap in the cache", func() (bool, string) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "probe"}, &cached); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if len(cached.ManagedFields) != 0 {
		t.Fatalf("the cache holds managed fields: %+v", cached.ManagedFields)
	}
	var server corev1.ConfigMap
	if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "probe"}, &server); err != nil {
		t.Fatal(err)
	}
	if len(server.ManagedFields) == 0 {
		t.Fatal("the API server shows no managed fields of the ConfigMap: the test proves nothing")
	}
	cached.Data["v"] = "1"
	if err := h.k8s.Update(ctx, &cached); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "probe"}, &server); err != nil {
		t.Fatal(err)
	}
	if len(server.ManagedFields) == 0 || server.Data["v"] != "1" {
		t.Fatalf("after an update from the cache's copy: data %v, managed fields %+v; want v=1 and the server's managed fields kept", server.Data, server.ManagedFields)
	}
}
