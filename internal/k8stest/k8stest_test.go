package k8stest

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestStart checks that the API server answers and stores objects.
func TestStart(t *testing.T) {
	cfg := Start(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "k8stest"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a namespace: %v", err)
	}
	got, err := cs.CoreV1().Namespaces().Get(ctx, "k8stest", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read it back: %v", err)
	}
	if got.UID == "" {
		t.Errorf("the namespace has no UID: %+v", got)
	}
}
