package lab

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller/model"
)

// LBPort is the port the lab's load-balanced Services listen on.
const LBPort = 80

// lbcontroller's Service condition and the reasons that no waiting fixes (the lab does not link
// the controller; a test checks these against its constants).
const (
	lbConditionReady = "flatnet.io/LoadBalancerReady"
	lbReasonFailed   = "LoadBalancerFailed"
	lbReasonInvalid  = "InvalidConfiguration"
)

// EchoLBService is a Service of type LoadBalancer of our class in front of the pods labelled
// app=name: internet-facing, no node ports, HTTP health checks of the echo server at the
// shortest interval the cloud allows, and a short deregistration delay.
func EchoLBService(namespace, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: map[string]string{
			model.AnnotationScheme:         "internet-facing",
			model.AnnotationHCProtocol:     "HTTP",
			model.AnnotationHCPath:         "/healthz",
			model.AnnotationHCInterval:     "5",
			model.AnnotationHCTimeout:      "2",
			model.AnnotationHCHealthy:      "2",
			model.AnnotationHCUnhealthy:    "2",
			model.AnnotationDeregistration: "10",
		}},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass:             ptr.To(LBClass),
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Port: LBPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// WaitLBIngress waits for the Service's load balancer address in its status. It gives up at
// once, with the controller's reason, when the Service's condition says its load balancer
// failed in the cloud or cannot be built: waiting out the timeout would only hide why.
func WaitLBIngress(ctx context.Context, kc kubernetes.Interface, namespace, name string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		svc, err := kc.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case len(svc.Status.LoadBalancer.Ingress) > 0 && svc.Status.LoadBalancer.Ingress[0].IP != "":
			return svc.Status.LoadBalancer.Ingress[0].IP, nil
		default:
			last = "no ingress yet"
			for _, c := range svc.Status.Conditions {
				if c.Type == lbConditionReady && (c.Reason == lbReasonFailed || c.Reason == lbReasonInvalid) {
					return "", fmt.Errorf("service %s/%s has no load balancer: %s: %s", namespace, name, c.Reason, c.Message)
				}
				last += fmt.Sprintf("; %s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message)
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("service %s/%s has no load balancer address within %s: %s", namespace, name, timeout, last)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// LoadBalancersOf lists the cloud load balancers the lab's controller made for a Service.
func (l *Lab) LoadBalancersOf(ctx context.Context, namespace, name string) ([]api.LoadBalancer, error) {
	r, err := l.cloud.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{Filters: []api.Filter{
		{Name: "tag:" + model.TagCluster, Values: []string{LBClusterName}},
		{Name: "tag:" + model.TagService, Values: []string{namespace + "/" + name}},
	}})
	if err != nil {
		return nil, err
	}
	return r.LoadBalancers, nil
}

// TargetsOf lists the targets of every target group of a load balancer, with their health.
func (l *Lab) TargetsOf(ctx context.Context, lbID string) ([]api.TargetHealthDescription, error) {
	tgs, err := l.cloud.DescribeTargetGroups(ctx, &api.DescribeTargetGroupsRequest{LoadBalancerID: lbID})
	if err != nil {
		return nil, err
	}
	var out []api.TargetHealthDescription
	for _, tg := range tgs.TargetGroups {
		h, err := l.cloud.DescribeTargetHealth(ctx, &api.DescribeTargetHealthRequest{TargetGroupID: tg.TargetGroupID})
		if err != nil {
			return nil, err
		}
		out = append(out, h.TargetHealthDescriptions...)
	}
	return out, nil
}

// ThroughVIP sends n requests, each on a new connection, from the internet namespace (or, for
// an internal load balancer, from fromNetns) to vip and counts the answers by pod; peers are
// the addresses the pods saw.
func (l *Lab) ThroughVIP(ctx context.Context, fromNetns, vip string, n int) (byPod map[string]int, peers map[string]bool, err error) {
	if fromNetns == "" {
		fromNetns = l.InternetNetns()
	}
	byPod, peers = map[string]int{}, map[string]bool{}
	for range n {
		e, err := EchoFrom(ctx, fromNetns, vip, LBPort)
		if err != nil {
			return byPod, peers, fmt.Errorf("through the VIP %s: %w", vip, err)
		}
		byPod[e.Pod]++
		peer, _, serr := net.SplitHostPort(e.Peer)
		if serr != nil {
			peer = e.Peer
		}
		peers[peer] = true
	}
	return byPod, peers, nil
}

// WaitTargetsHealthy waits until the load balancer's targets, leaving out those in one of the
// states ignored, are exactly ips (sorted), all healthy.
func (l *Lab) WaitTargetsHealthy(ctx context.Context, lbID string, ips, ignored []string, timeout time.Duration) error {
	var failed error
	err := poll(ctx, timeout, 250*time.Millisecond, func() (bool, string) {
		lbs, err := l.cloud.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{LoadBalancerIDs: []string{lbID}})
		if err != nil {
			return false, err.Error()
		}
		if lb := lbs.LoadBalancers[0]; lb.State == api.LoadBalancerStateFailed {
			// No target turns healthy behind a failed load balancer: waiting out the timeout
			// would only hide why.
			failed = fmt.Errorf("load balancer %s failed: %s", lbID, lb.StateReason)
			return true, ""
		}
		ts, err := l.TargetsOf(ctx, lbID)
		if err != nil {
			return false, err.Error()
		}
		var healthy, states []string
		for _, th := range ts {
			if slices.Contains(ignored, th.TargetHealth.State) {
				continue
			}
			states = append(states, th.Target.IP+"="+th.TargetHealth.State)
			if th.TargetHealth.State == api.TargetHealthHealthy {
				healthy = append(healthy, th.Target.IP)
			}
		}
		slices.Sort(healthy)
		return slices.Equal(healthy, ips) && len(states) == len(ips), strings.Join(states, " ")
	})
	if err == nil && failed != nil {
		err = failed
	}
	if err != nil {
		return fmt.Errorf("targets of %s are not %v, all healthy: %w", lbID, ips, err)
	}
	return nil
}

// WaitNoLoadBalancer waits until the cloud holds no load balancer of the Service.
func (l *Lab) WaitNoLoadBalancer(ctx context.Context, namespace, name string, timeout time.Duration) error {
	err := poll(ctx, timeout, 200*time.Millisecond, func() (bool, string) {
		lbs, err := l.LoadBalancersOf(ctx, namespace, name)
		if err != nil {
			return false, err.Error()
		}
		return len(lbs) == 0, fmt.Sprintf("%d load balancers", len(lbs))
	})
	if err != nil {
		return fmt.Errorf("the load balancer of %s/%s outlived its Service: %w", namespace, name, err)
	}
	return nil
}
