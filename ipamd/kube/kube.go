// Package kube is ipamd's Kubernetes side: it publishes the node's address capacity on its Node
// (status.capacity and status.allocatable "pods", so the scheduler places no pod a node cannot
// address), keeps a Node condition saying whether the node ran out of addresses (with an event
// when that changes), and records an event on each pod whose allocation failed, with the reason.
//
// It implements ipamd.Observer. ipamd's own logic never waits for the API server: observations
// update a desired state, and one goroutine makes the Node match it, retrying until it does
// (the Node may not be registered yet when ipamd starts).
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/wire"
)

const (
	// Component names ipamd in events and as the field manager of what it writes.
	Component = "flatnet-ipamd"
	// ConditionExhausted is the Node condition ipamd owns: True when an ADD arriving now would
	// fail for lack of addresses (nothing free and the pool cannot grow).
	ConditionExhausted corev1.NodeConditionType = "flatnet.io/AddressesExhausted"
	// Event reasons.
	ReasonAllocateFailed = "FailedAllocateIP"
	ReasonExhausted      = "AddressesExhausted"
	ReasonAvailable      = "AddressesAvailable"
	// resync re-applies the Node's fields even when nothing changed, repairing a Node that was
	// deleted and registered again.
	resync = time.Minute
)

// Config configures a Reporter.
type Config struct {
	// Kubeconfig is the path of ipamd's kubeconfig (empty: the pod's service account);
	// RestConfig, when set, is used instead.
	Kubeconfig string
	RestConfig *rest.Config
	// NodeName is this node's Node.
	NodeName string
	// HostNetworkPods is added to the address capacity in the published pods capacity: room
	// for the node's host-network pods (ipamd's own DaemonSet pod first), which the scheduler
	// counts but which take no address (as VPC CNI's max-pods adds 2).
	HostNetworkPods int
	Logger          *slog.Logger
}

// Reporter publishes ipamd's observations on the node's Node and on pods.
type Reporter struct {
	node      string
	hostPods  int
	log       *slog.Logger
	client    rest.Interface // the core/v1 API: Nodes and Events only
	events    record.EventBroadcaster
	recorder  record.EventRecorder
	wake      chan struct{}
	mu        sync.Mutex
	want      desired
	published desired // what the Node last got; zero before the first patch
	synced    bool
}

type desired struct {
	capacity  int // 0: not serving yet
	exhausted bool
	message   string
}

// New builds a Reporter; Run publishes.
func New(cfg Config) (*Reporter, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("ipamd's Kubernetes side needs the node's name (--node-name)")
	}
	rc := cfg.RestConfig
	if rc == nil {
		var err error
		if rc, err = RestConfig(cfg.Kubeconfig); err != nil {
			return nil, err
		}
	}
	client, err := coreClient(rc, Component+"/"+cfg.NodeName)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := record.NewBroadcaster()
	return &Reporter{
		node: cfg.NodeName, hostPods: max(cfg.HostNetworkPods, 0), log: log.With("node", cfg.NodeName), client: client, events: b,
		recorder: b.NewRecorder(coreScheme, corev1.EventSource{Component: Component, Host: cfg.NodeName}),
		wake:     make(chan struct{}, 1),
	}, nil
}

var _ ipamd.Observer = (*Reporter)(nil)

// Serving records the node's capacity.
func (r *Reporter) Serving(capacity int) {
	r.update(func(d *desired) { d.capacity = capacity })
}

// PoolChanged records whether the node is out of addresses.
func (r *Reporter) PoolChanged(p ipamd.PoolReport) {
	r.update(func(d *desired) {
		d.capacity = p.Capacity
		d.exhausted = p.Exhausted()
		if d.exhausted {
			d.message = fmt.Sprintf("%s (%d of %d addresses assigned, %d cooling down)", p.Full, p.Assigned, p.Capacity, p.Cooling)
		} else {
			d.message = fmt.Sprintf("%d free, %d assigned, %d cooling down of %d", p.Free, p.Assigned, p.Cooling, p.Capacity)
		}
	})
}

// AllocationFailed records a Warning event on the pod. The recorder aggregates repeats, so a
// plugin retrying the same ADD does not flood the API server.
func (r *Reporter) AllocationFailed(pod wire.PodRef, err error) {
	if pod.Name == "" || pod.Namespace == "" {
		return // not a Kubernetes pod (the runtime passed no K8S_POD_* arguments)
	}
	ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: types.UID(pod.UID)}
	r.recorder.Eventf(ref, corev1.EventTypeWarning, ReasonAllocateFailed, "flatnet-ipamd on %s could not give the pod an address: %v", r.node, err)
}

func (r *Reporter) update(f func(*desired)) {
	r.mu.Lock()
	before := r.want
	f(&r.want)
	changed := r.want.capacity != before.capacity || r.want.exhausted != before.exhausted
	r.mu.Unlock()
	if changed {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Run starts the event sink and keeps the Node in line with the observations until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	w := r.events.StartRecordingToSink(eventSink{ctx: ctx, client: r.client})
	defer func() {
		w.Stop()
		r.events.Shutdown()
	}()
	wait := time.Second
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		err := r.sync(ctx)
		switch {
		case err == nil:
			wait = time.Second
			t.Reset(resync)
		case ctx.Err() != nil:
			return
		default:
			r.log.Warn("publish the node's address capacity", "err", err, "retry_in", wait)
			t.Reset(wait)
			wait = min(2*wait, 30*time.Second)
		}
	}
}

// sync patches the Node's status with the capacity and the condition, and records an event
// when the condition flips.
func (r *Reporter) sync(ctx context.Context) error {
	r.mu.Lock()
	want := r.want
	prev, synced := r.published, r.synced
	r.mu.Unlock()
	if want.capacity == 0 {
		return nil // not serving yet: publish nothing, the node stays without pod capacity
	}
	node := &corev1.Node{}
	err := r.client.Get().Resource("nodes").Name(r.node).Do(ctx).Into(node)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("node %s is not registered yet", r.node)
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", r.node, err)
	}
	now := metav1.Now()
	cond := corev1.NodeCondition{Type: ConditionExhausted, Status: corev1.ConditionFalse, Reason: ReasonAvailable,
		Message: want.message, LastHeartbeatTime: now, LastTransitionTime: now}
	if want.exhausted {
		cond.Status, cond.Reason = corev1.ConditionTrue, ReasonExhausted
	}
	for _, c := range node.Status.Conditions {
		if c.Type == ConditionExhausted && c.Status == cond.Status {
			cond.LastTransitionTime = c.LastTransitionTime
		}
	}
	pods := strconv.Itoa(want.capacity + r.hostPods)
	patch := map[string]any{"status": map[string]any{
		"capacity":    map[string]string{string(corev1.ResourcePods): pods},
		"allocatable": map[string]string{string(corev1.ResourcePods): pods},
		"conditions":  []corev1.NodeCondition{cond},
	}}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	// A strategic merge patch merges conditions by type: the kubelet's stay as they are.
	err = r.client.Patch(types.StrategicMergePatchType).Resource("nodes").Name(r.node).SubResource("status").
		Body(body).Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("patch node %s's status: %w", r.node, err)
	}
	if !synced || prev.exhausted != want.exhausted {
		ref := &corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: r.node, UID: types.UID(r.node)}
		switch {
		case want.exhausted:
			r.recorder.Eventf(ref, corev1.EventTypeWarning, ReasonExhausted, "node %s has no address left for a new pod: %s", r.node, want.message)
		case synced:
			r.recorder.Eventf(ref, corev1.EventTypeNormal, ReasonAvailable, "node %s has addresses for new pods again: %s", r.node, want.message)
		}
	}
	if !synced || prev.capacity != want.capacity {
		r.log.Info("published the node's address capacity", "pods", want.capacity, "exhausted", want.exhausted)
	}
	r.mu.Lock()
	r.published, r.synced = want, true
	r.mu.Unlock()
	return nil
}

// coreScheme knows the core/v1 types only. ipamd reads and patches its Node and writes Events,
// nothing else, so it links neither client-go's clientset nor its scheme of every API group:
// their type registrations alone cost about 9 MiB of resident memory, a third of ipamd's budget
// (docs/benchmarks.md). hack/verify-imports keeps them out of ipamd's import graph.
var coreScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err) // a static registration: cannot fail unless the API package is broken
	}
	return s
}()

// coreClient is a REST client for the core/v1 API ("/api/v1") at rc.
func coreClient(rc *rest.Config, userAgent string) (*rest.RESTClient, error) {
	rc = rest.CopyConfig(rc)
	rc.UserAgent = userAgent
	rc.APIPath = "/api"
	rc.GroupVersion = &corev1.SchemeGroupVersion
	rc.NegotiatedSerializer = serializer.NewCodecFactory(coreScheme).WithoutConversion()
	if rc.ContentType == "" {
		rc.ContentType = runtime.ContentTypeJSON
	}
	return rest.RESTClientFor(rc)
}

// eventSink writes the recorder's events to the namespace each event names (cluster-scoped
// objects' events go to "default", which the recorder fills in).
type eventSink struct {
	ctx    context.Context
	client rest.Interface
}

var _ record.EventSink = eventSink{}

func (s eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.client.Post().NamespaceIfScoped(e.Namespace, e.Namespace != "").Resource("events").Body(e).Do(s.ctx).Into(out)
	return out, err
}

func (s eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.client.Put().NamespaceIfScoped(e.Namespace, e.Namespace != "").Resource("events").Name(e.Name).Body(e).Do(s.ctx).Into(out)
	return out, err
}

func (s eventSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.client.Patch(types.StrategicMergePatchType).NamespaceIfScoped(e.Namespace, e.Namespace != "").Resource("events").Name(e.Name).
		Body(data).Do(s.ctx).Into(out)
	return out, err
}
