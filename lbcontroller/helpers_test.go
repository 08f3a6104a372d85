package lbcontroller_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/internal/k8stest"
	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

// harness is a real API server, a real fakecloud and the controller running against both.
type harness struct {
	k8s     client.Client
	cloud   *servertest.Env
	p       *fakecloud.LoadBalancing
	cluster string
	rest    *rest.Config
	// stop ends the controller (idempotent); Cleanup calls it.
	stop func()
}

var namespaces atomic.Int64

func start(tb testing.TB) *harness {
	tb.Helper()
	return startWith(tb, nil)
}

// startWith is start with the controller's driver made by driver (nil: fakecloud's).
func startWith(tb testing.TB, driver func(ctx context.Context, cloud *servertest.Env, subnetID string) providers.LoadBalancing) *harness {
	tb.Helper()
	return startCloud(tb, driver, servertest.Options{})
}

// startCloud is startWith on a fakecloud of options o.
// startCloud starts the harness; mutate changes the controller's configuration.
func startCloud(tb testing.TB, driver func(ctx context.Context, cloud *servertest.Env, subnetID string) providers.LoadBalancing, o servertest.Options, mutate ...func(*lbcontroller.Config)) *harness {
	tb.Helper()
	if os.Getenv("LBCONTROLLER_TEST_LOG") != "" {
		ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	// The chart's Gateway API CRDs: the Gateway controller runs beside the Service controller.
	rest := k8stest.Start(tb, "../charts/flatnet/crds")
	cloud := servertest.Start(tb, o)
	sn, _ := cloud.Launch(tb, "10.0.0.0/16", "10.0.0.0/20", "t3.small", 1)
	ctx, cancel := context.WithCancel(context.Background())
	// The controller runs with a load-balancer token, as deployed; the test checks as the admin.
	lbc := cloud.Client(cloud.LoadBalancerToken(tb).Token)
	p, err := fakecloud.NewLoadBalancing(ctx, fakecloud.Config{Client: lbc, WatchWait: 2 * time.Second, Settings: providers.Settings{SubnetID: sn.SubnetID, Observe: lbcontroller.ObserveCloudCall}})
	if err != nil {
		tb.Fatal(err)
	}
	var ctl providers.LoadBalancing = p
	if driver != nil {
		ctl = driver(ctx, cloud, sn.SubnetID)
	}
	skip := true
	mgr, err := ctrl.NewManager(rest, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  lbcontroller.CacheOptions(), // as Run's
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		tb.Fatal(err)
	}
	// The test reads and writes straight through the API server, never through a cache that lags.
	direct, err := client.New(rest, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{k8s: direct, cloud: cloud, p: p, cluster: "lab", rest: rest}
	cfg := lbcontroller.Config{Cluster: h.cluster, Provider: ctl, GCInterval: time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	if err := lbcontroller.Setup(mgr, cfg); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("manager: %v", err)
			}
		})
	}
	tb.Cleanup(h.stop)
	return h
}

// namespace creates a namespace of its own for one test.
func (h *harness) namespace(t testing.TB) string {
	t.Helper()
	ns := fmt.Sprintf("lbc-%d-%d", os.Getpid(), namespaces.Add(1))
	if err := h.k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// gatewayClass creates a GatewayClass of this controller, named apart from every other
// test's, and returns its name.
func (h *harness) gatewayClass(t testing.TB) string {
	t.Helper()
	class := fmt.Sprintf("flatnet-%d", namespaces.Add(1))
	if err := h.k8s.Create(context.Background(), &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: class},
		Spec:       gwv1.GatewayClassSpec{ControllerName: gateway.ControllerName},
	}); err != nil {
		t.Fatal(err)
	}
	return class
}

// webService creates Service ns/web (port 80 to the pods' 8080, pods app=web) and its
// EndpointSlice of ready endpoints at ips.
func (h *harness) webService(t testing.TB, ns string, ips ...string) {
	t.Helper()
	ctx := context.Background()
	if err := h.k8s.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	var eps []endpoint
	for _, ip := range ips {
		eps = append(eps, readyEP(ip))
	}
	if err := h.k8s.Create(ctx, endpointSlice(ns, "web", eps...)); err != nil {
		t.Fatal(err)
	}
}

// httpGateway creates Gateway ns/gw of class with one HTTP listener, "http" on port 80.
func (h *harness) httpGateway(t testing.TB, ns, class string) {
	t.Helper()
	if err := h.k8s.Create(context.Background(), &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners:        []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}); err != nil {
		t.Fatal(err)
	}
}

// httpRoute creates HTTPRoute ns/name on Gateway ns/gw with one rule forwarding to
// backend:port.
func (h *harness) httpRoute(t testing.TB, ns, name, backend string, port gwv1.PortNumber) {
	t.Helper()
	if err := h.k8s.Create(context.Background(), &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(backend), Port: ptr(port)}}}}}},
		},
	}); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// update applies change to the latest version of the object at key and writes it, reading and
// changing it again on a conflict: the controller writes the status (and finalizers) of the
// objects tests change, so a read-then-write may race it. Each attempt reads into a fresh object.
func update[T any, P interface {
	*T
	client.Object
}](t testing.TB, h *harness, key client.ObjectKey, change func(P)) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var o T
		obj := P(&o)
		if err := h.k8s.Get(ctx, key, obj); err != nil {
			return err
		}
		change(obj)
		return h.k8s.Update(ctx, obj)
	})
	if err != nil {
		t.Fatalf("updating %s: %v", key, err)
	}
}

func lbService(ns, name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass:             ptr(lbcontroller.Class),
			AllocateLoadBalancerNodePorts: ptr(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

type endpoint struct {
	ip                   string
	pod                  string
	ready, serving, term bool
}

func readyEP(ip string) endpoint { return endpoint{ip: ip, ready: true, serving: true} }

func endpointSlice(ns, svc string, eps ...endpoint) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-a", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	setEndpoints(sl, eps...)
	return sl
}

func setEndpoints(sl *discoveryv1.EndpointSlice, eps ...endpoint) {
	sl.Endpoints = nil
	for _, e := range eps {
		d := discoveryv1.Endpoint{
			Addresses:  []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(e.ready), Serving: ptr(e.serving), Terminating: ptr(e.term)},
		}
		if e.pod != "" {
			d.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: sl.Namespace, Name: e.pod}
		}
		sl.Endpoints = append(sl.Endpoints, d)
	}
}

// eventually polls cond until it holds, failing the test with cond's last word after timeout.
// The timeout is a bound for a stuck controller, not a performance assertion.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: still not so after 30s: %s", what, last)
}

// gatewayALBs lists the application load balancers tagged with the Gateway ns/name.
func (h *harness) gatewayALBs(t testing.TB, ns, name string) []providers.ApplicationLoadBalancer {
	t.Helper()
	lbs, err := h.p.ListApplicationLoadBalancers(context.Background(), map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/" + name})
	if err != nil {
		t.Fatal(err)
	}
	return lbs
}

// owned returns the load balancers and target groups tagged with the Service.
func (h *harness) owned(t testing.TB, ns, name string) ([]providers.LoadBalancer, []providers.TargetGroup) {
	t.Helper()
	tags := map[string]string{model.TagCluster: h.cluster, model.TagService: ns + "/" + name}
	lbs, err := h.p.ListLoadBalancers(context.Background(), tags)
	if err != nil {
		t.Fatal(err)
	}
	tgs, err := h.p.ListTargetGroups(context.Background(), tags)
	if err != nil {
		t.Fatal(err)
	}
	return lbs, tgs
}

// targets returns "ip:port state" of every target of the Service's (single) target group.
func (h *harness) targets(t testing.TB, ns, name string) []string {
	t.Helper()
	_, tgs := h.owned(t, ns, name)
	if len(tgs) != 1 {
		return []string{fmt.Sprintf("%d target groups", len(tgs))}
	}
	ths, err := h.p.DescribeTargets(context.Background(), tgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, th := range ths {
		out = append(out, fmt.Sprintf("%s %s", netip.AddrPortFrom(th.Target.IP, uint16(th.Target.Port)), th.State))
	}
	slices.Sort(out)
	return out
}

func (h *harness) service(t testing.TB, ns, name string) *corev1.Service {
	t.Helper()
	var svc corev1.Service
	if err := h.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	return &svc
}

func condition(svc *corev1.Service) *metav1.Condition {
	for i := range svc.Status.Conditions {
		if svc.Status.Conditions[i].Type == lbcontroller.ConditionReady {
			return &svc.Status.Conditions[i]
		}
	}
	return nil
}

// warnings returns the notes of Warning events about a Service with a reason.
func (h *harness) warnings(t testing.TB, ns, name, reason string) []string {
	t.Helper()
	var evs corev1.EventList
	if err := h.k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == name && fromUs(e) && e.Type == corev1.EventTypeWarning && e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

func contains(list []string, sub string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, sub) })
}

// fromUs: the event was reported by the controller (not, say, the API server's repair loops).
func fromUs(e corev1.Event) bool {
	return e.ReportingController == lbcontroller.Component || e.Source.Component == lbcontroller.Component
}

// gatedPod creates a pod carrying the readiness gate and reports it as a kubelet would: running
// at ip, containers ready, not Ready (its gate).
func (h *harness) gatedPod(t testing.TB, ns, name, app, ip string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			Containers:     []corev1.Container{{Name: "echo", Image: "echo"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: lbcontroller.GateCondition}},
		},
	}
	if err := h.k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// The controller may write the gate meanwhile: retry on conflict, keeping its condition.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status.Phase, pod.Status.PodIP, pod.Status.PodIPs = corev1.PodRunning, ip, []corev1.PodIP{{IP: ip}}
		pod.Status.Conditions = append(pod.Status.Conditions,
			corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
			corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()})
		return h.k8s.Status().Update(ctx, pod)
	})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// gate returns the pod's readiness-gate condition, nil if it has none.
func (h *harness) gate(t testing.TB, ns, name string) *corev1.PodCondition {
	t.Helper()
	var pod corev1.Pod
	if err := h.k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &pod); err != nil {
		t.Fatal(err)
	}
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == lbcontroller.GateCondition {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}
