package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/flatnet/flatnet/internal/netns"
	"github.com/flatnet/flatnet/nodeagent"
)

// EchoImage is the node agent's built-in echo server (docs/node-agent.md).
const EchoImage = "flatnet.io/echo:1"

// Kube is a client of the lab's cluster through the host's port-forward, as the admin.
func (l *Lab) Kube() (kubernetes.Interface, error) {
	rc, err := l.restConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// restConfig is the admin's client configuration of the lab's cluster, through the host's
// port-forward.
func (l *Lab) restConfig() (*rest.Config, error) {
	cp, ok := l.ControlPlane()
	if !ok {
		return nil, fmt.Errorf("the lab runs no Kubernetes control plane (flatnet-lab up --kubernetes)")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("the lab's kubeconfig %s: %w", cp.Kubeconfig, err)
	}
	rc.UserAgent = "flatnet-lab"
	// client-go's default (5 requests/s, bursts of 10) would throttle the tests and benchmarks
	// that drive the lab, and be measured with them.
	rc.QPS, rc.Burst = 50, 100
	return rc, nil
}

// EchoDeployment is a Deployment of replicas echo pods labelled app=name, spread over the
// nodes (at most one more on any node than on another), serving HTTP on EchoPort.
func EchoDeployment(namespace, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](5),
					AutomountServiceAccountToken:  ptr.To(false),
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{
						Name: "echo", Image: EchoImage,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: EchoPort, Protocol: corev1.ProtocolTCP}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
}

// EchoService is a ClusterIP Service in front of the pods labelled app=name.
func EchoService(namespace, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// WaitPodsReady waits until exactly want pods match selector in namespace, all Ready with an
// IP, and returns them.
func WaitPodsReady(ctx context.Context, kc kubernetes.Interface, namespace, selector string, want int, timeout time.Duration) ([]corev1.Pod, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		list, err := kc.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			last = err.Error()
		} else {
			var ready []corev1.Pod
			var notReady []string
			for _, p := range list.Items {
				if p.DeletionTimestamp != nil {
					notReady = append(notReady, fmt.Sprintf("%s (terminating, due %s ago: %s)",
						p.Name, time.Since(p.DeletionTimestamp.Time).Round(time.Second), PodSummary(&p)))
					continue
				}
				if PodReady(&p) && p.Status.PodIP != "" {
					ready = append(ready, p)
				} else {
					notReady = append(notReady, p.Name+" ("+PodSummary(&p)+")")
				}
			}
			if len(ready) == want && len(notReady) == 0 {
				return ready, nil
			}
			last = fmt.Sprintf("%d of %d ready; not ready: %s", len(ready), want, strings.Join(notReady, ", "))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pods %s in %s not ready within %s: %s", selector, namespace, timeout, last)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodSummary says in a few words where a pod stands: phase, node, and the first container's
// waiting or terminated reason.
func PodSummary(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	if p.Spec.NodeName != "" {
		s += " on " + p.Spec.NodeName
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			s += ", " + cs.Name + " waiting: " + cs.State.Waiting.Reason
		case cs.State.Terminated != nil:
			s += ", " + cs.Name + " terminated: " + cs.State.Terminated.Reason
		}
	}
	return s
}

// PodNetns finds the network namespace holding ip among the lab's pod namespaces: the node
// agents name theirs with the lab's pod prefix, so the lab can act from inside a pod.
func (l *Lab) PodNetns(ip string) (string, error) {
	want, err := netip.ParseAddr(ip)
	if err != nil {
		return "", fmt.Errorf("pod IP %q: %w", ip, err)
	}
	names, err := netns.List(l.st.Config.PodNetnsPrefix())
	if err != nil {
		return "", err
	}
	for _, name := range names {
		found := false
		_ = inNetns(name, func() error {
			addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if got, ok := netip.AddrFromSlice(a.IP.To4()); ok && got == want {
					found = true
				}
			}
			return nil
		})
		if found {
			return name, nil
		}
	}
	return "", fmt.Errorf("no pod namespace of the lab holds %s", ip)
}

// EchoFrom sends an HTTP request from inside namespace netnsName to the echo server at ip and
// returns its answer.
func EchoFrom(ctx context.Context, netnsName, ip string, port int) (*nodeagent.Echo, error) {
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: Dialer(netnsName, nil), DisableKeepAlives: true}}
	return echoWith(ctx, hc, ip, port)
}

// echoWith is EchoFrom's request, made by hc.
func echoWith(ctx context.Context, hc *http.Client, ip string, port int) (*nodeagent.Echo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, fmt.Sprint(port))+"/who", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var e nodeagent.Echo
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("decode the echo answer %q: %w", body, err)
	}
	return &e, nil
}

// SliceAddresses lists the ready endpoint addresses of the Service's EndpointSlices.
func SliceAddresses(ctx context.Context, kc kubernetes.Interface, namespace, service string) ([]string, error) {
	slices, err := kc.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				out = append(out, ep.Addresses...)
			}
		}
	}
	return out, nil
}

// WaitSliceAddresses waits until the ready endpoints of the Service's EndpointSlices are
// exactly want (sorted).
func WaitSliceAddresses(ctx context.Context, kc kubernetes.Interface, namespace, service string, want []string, timeout time.Duration) error {
	err := poll(ctx, timeout, 200*time.Millisecond, func() (bool, string) {
		got, err := SliceAddresses(ctx, kc, namespace, service)
		if err != nil {
			return false, err.Error()
		}
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("ready endpoints %v", got)
	})
	if err != nil {
		return fmt.Errorf("EndpointSlices of %s/%s do not list %v: %w", namespace, service, want, err)
	}
	return nil
}

// WaitPodsGone waits until no pod in namespace matches selector ("" for every pod).
func WaitPodsGone(ctx context.Context, kc kubernetes.Interface, namespace, selector string, timeout time.Duration) error {
	err := poll(ctx, timeout, 200*time.Millisecond, func() (bool, string) {
		list, err := kc.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) == 0, fmt.Sprintf("%d pods left", len(list.Items))
	})
	if err != nil {
		return fmt.Errorf("pods %q of %s not gone: %w", selector, namespace, err)
	}
	return nil
}

// GRPCEcho is who answered a gRPC health check of the echo workload, and the peer it saw.
type GRPCEcho struct {
	Pod, Peer string
}

// GRPCEchoFrom calls grpc.health.v1.Health/Check at ip:port from the network namespace, over
// HTTP/2 without TLS, and returns the echo's answer.
func GRPCEchoFrom(ctx context.Context, netnsName, ip string, port int) (*GRPCEcho, error) {
	dial := Dialer(netnsName, nil)
	cc, err := grpc.NewClient("passthrough:///"+net.JoinHostPort(ip, fmt.Sprint(port)),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) }))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var md metadata.MD
	resp, err := grpc_health_v1.NewHealthClient(cc).Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Header(&md))
	if err != nil {
		return nil, err
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return nil, fmt.Errorf("health check answered %s", resp.GetStatus())
	}
	e := &GRPCEcho{}
	if v := md.Get(nodeagent.EchoGRPCPodHeader); len(v) > 0 {
		e.Pod = v[0]
	}
	if v := md.Get(nodeagent.EchoGRPCPeerHeader); len(v) > 0 {
		e.Peer = v[0]
	}
	if e.Pod == "" {
		return nil, fmt.Errorf("the answer has no %s header (headers %v): not the echo workload", nodeagent.EchoGRPCPodHeader, md)
	}
	return e, nil
}
