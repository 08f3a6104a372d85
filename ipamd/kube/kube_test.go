package kube_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/flatnet/flatnet/internal/k8stest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/kube"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// eventually polls cond until it returns nil or 30 s pass (the API server is real and events
// are written asynchronously).
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReporterPublishesCapacityConditionAndEvents(t *testing.T) {
	cfg := k8stest.Start(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	r, err := kube.New(kube.Config{RestConfig: cfg, NodeName: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	go r.Run(ctx)
	// ipamd may serve before the node agent registers the Node: the capacity is published once
	// it exists.
	r.Serving(29)
	time.Sleep(300 * time.Millisecond)
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another writer's fields on the same Node (the node agent's) must survive ipamd's patches.
	node, err := cs.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resourceMust("2")}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "AgentReady"}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.PoolChanged(ipamd.PoolReport{Free: 3, Assigned: 1, Capacity: 29})

	get := func() *corev1.Node {
		n, err := cs.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cond := func(n *corev1.Node) *corev1.NodeCondition {
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == kube.ConditionExhausted {
				return &n.Status.Conditions[i]
			}
		}
		return nil
	}
	eventually(t, "capacity and condition published", func() error {
		n := get()
		if p := n.Status.Allocatable[corev1.ResourcePods]; p.Value() != 29 {
			return errors.New("allocatable pods " + p.String())
		}
		if c := cond(n); c == nil || c.Status != corev1.ConditionFalse {
			return errors.New("no AddressesExhausted=False condition")
		}
		return nil
	})
	n := get()
	if cpu := n.Status.Capacity[corev1.ResourceCPU]; cpu.Value() != 2 {
		t.Errorf("the node agent's cpu capacity was lost: %v", n.Status.Capacity)
	}
	var ready bool
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready {
		t.Errorf("the node agent's Ready condition was lost: %+v", n.Status.Conditions)
	}

	// Out of addresses: the condition flips and the Node gets a Warning event saying why.
	r.PoolChanged(ipamd.PoolReport{Free: 0, Assigned: 29, Capacity: 29, Full: "every interface holds its 10 addresses"})
	eventually(t, "exhausted condition", func() error {
		c := cond(get())
		if c == nil || c.Status != corev1.ConditionTrue || c.Reason != kube.ReasonExhausted || !strings.Contains(c.Message, "every interface") {
			return errors.New("condition not True with the reason")
		}
		return nil
	})
	eventually(t, "node event", func() error {
		return findEvent(ctx, cs, "default", "Node", "node-a", kube.ReasonExhausted, "every interface")
	})

	// A failed allocation is an event on the pod, naming the reason.
	r.AllocationFailed(wire.PodRef{Namespace: "default", Name: "web-1", UID: "uid-1"}, errors.New("node is full: 29 of 29 addresses assigned"))
	eventually(t, "pod event", func() error {
		return findEvent(ctx, cs, "default", "Pod", "web-1", kube.ReasonAllocateFailed, "node is full")
	})
	// The plugin retrying the same ADD does not make a second event: the first one's count grows
	// (the recorder patches it).
	r.AllocationFailed(wire.PodRef{Namespace: "default", Name: "web-1", UID: "uid-1"}, errors.New("node is full: 29 of 29 addresses assigned"))
	eventually(t, "repeated pod event aggregated", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": "web-1", "reason": kube.ReasonAllocateFailed}.String()})
		if err != nil {
			return err
		}
		if len(evs.Items) != 1 || evs.Items[0].Count != 2 {
			return fmt.Errorf("want one event counted twice, got %d event(s): %+v", len(evs.Items), evs.Items)
		}
		return nil
	})
	// And back: recovery is an event too.
	r.PoolChanged(ipamd.PoolReport{Free: 2, Assigned: 27, Capacity: 29})
	eventually(t, "recovered", func() error {
		if c := cond(get()); c == nil || c.Status != corev1.ConditionFalse {
			return errors.New("condition still True")
		}
		return findEvent(ctx, cs, "default", "Node", "node-a", kube.ReasonAvailable, "addresses for new pods")
	})
}

func TestReporterRefusesNoNodeName(t *testing.T) {
	if _, err := kube.New(kube.Config{Kubeconfig: "/nonexistent"}); err == nil || !strings.Contains(err.Error(), "--node-name") {
		t.Fatalf("got %v, want an error naming --node-name", err)
	}
	if _, err := kube.New(kube.Config{Kubeconfig: "/nonexistent/kubeconfig", NodeName: "n"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Fatalf("got %v, want an error naming the kubeconfig", err)
	}
}

func findEvent(ctx context.Context, cs kubernetes.Interface, ns, kind, name, reason, inMessage string) error {
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.kind": kind, "involvedObject.name": name, "reason": reason}.String()})
	if err != nil {
		return err
	}
	for _, e := range evs.Items {
		if strings.Contains(e.Message, inMessage) && e.Source.Component == kube.Component {
			return nil
		}
	}
	return errors.New("no " + reason + " event on " + kind + " " + name + " mentioning " + inMessage)
}

func resourceMust(s string) resource.Quantity { return resource.MustParse(s) }
