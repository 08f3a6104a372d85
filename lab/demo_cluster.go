package lab

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// demoNamespace holds the demo's workloads.
const demoNamespace = "default"

// cluster is the demo's Kubernetes part: Ready nodes, a Deployment of echo pods spread over
// them with addresses from their nodes' interfaces, EndpointSlices filled by the real
// controller-manager, pod-to-pod echo across nodes, and every address back in its pool after
// the Deployment is deleted.
func (d *demo) cluster() error {
	if _, ok := d.l.ControlPlane(); !ok {
		return nil
	}
	kc, err := d.l.Kube()
	if err != nil {
		return err
	}
	d.step("the cluster: kubectl get nodes (each node's agent registered it; ipamd published its pod capacity)")
	out, err := d.l.Kubectl(d.ctx, "get", "nodes", "-o", "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=='Ready')].status,PROVIDER-ID:.spec.providerID,INTERNAL-IP:.status.addresses[?(@.type=='InternalIP')].address,PODS:.status.allocatable.pods")
	if err != nil {
		return err
	}
	d.indent(string(out))
	if err := d.l.WaitNodesReady(d.ctx, 30*time.Second); err != nil {
		return err
	}
	d.ok("%d nodes Ready", len(d.l.State().Nodes))

	const name, replicas = "echo", 6
	d.step("a Deployment of %d echo pods spreads over the nodes; each pod's address is one of its node's interface addresses", replicas)
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(d.ctx, EchoDeployment(demoNamespace, name, replicas), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the echo Deployment: %w", err)
	}
	if _, err := kc.CoreV1().Services(demoNamespace).Create(d.ctx, EchoService(demoNamespace, name), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the echo Service: %w", err)
	}
	pods, err := WaitPodsReady(d.ctx, kc, demoNamespace, "app="+name, replicas, 2*time.Minute)
	if err != nil {
		return err
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Spec.NodeName+pods[i].Name < pods[j].Spec.NodeName+pods[j].Name })
	perNode := map[string]int{}
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
		if err := d.l.assignedOnNode(d.ctx, p.Spec.NodeName, p.Status.PodIP); err != nil {
			return fmt.Errorf("pod %s: %w", p.Name, err)
		}
		d.ok("%-24s on %s: %s Ready, %s assigned by the node's ipamd", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.PodIP)
	}
	for _, n := range d.l.State().Nodes {
		if perNode[n.Name] != replicas/len(d.l.State().Nodes) {
			return fmt.Errorf("the pods did not spread evenly: %v", perNode)
		}
	}

	d.step("kubectl get endpointslices: the controller-manager lists the pods' VPC addresses")
	want := podIPs(pods)
	if err := WaitSliceAddresses(d.ctx, kc, demoNamespace, name, want, 30*time.Second); err != nil {
		return err
	}
	out, err = d.l.Kubectl(d.ctx, "get", "endpointslices", "-l", "kubernetes.io/service-name="+name)
	if err != nil {
		return err
	}
	d.indent(string(out))
	d.ok("ready endpoints %s", strings.Join(want, ", "))

	d.step("pod to pod across nodes through the echo servers: each answer names the pod and the caller's pod IP")
	if err := echoAcross(d.ctx, d.l, pods, d.ok); err != nil {
		return err
	}

	if err := d.loadBalancer(kc, name, pods); err != nil {
		return err
	}
	if err := d.gateway(kc, name); err != nil {
		return err
	}

	d.step("deleting the Deployment returns every address to its node's pool")
	if err := deleteAndWait(d.ctx, kc, name); err != nil {
		return err
	}
	for _, p := range pods {
		if err := d.l.releasedOnNode(d.ctx, p.Spec.NodeName, p.Status.PodIP); err != nil {
			return err
		}
	}
	d.ok("%d pods gone; their addresses are free or cooling down on their nodes", len(pods))
	return nil
}

func (d *demo) indent(s string) {
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		fmt.Fprintf(d.out, "      %s\n", line)
	}
}

func podIPs(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Status.PodIP)
	}
	sort.Strings(out)
	return out
}

// echoAcross has every pod ask a pod on another node, from inside its own namespace, and
// checks the answer names that pod and the caller's own address (no NAT on the way).
func echoAcross(ctx context.Context, l *Lab, pods []corev1.Pod, ok func(string, ...any)) error {
	for i, src := range pods {
		var dst *corev1.Pod
		for j := 1; j < len(pods); j++ {
			if c := &pods[(i+j)%len(pods)]; c.Spec.NodeName != src.Spec.NodeName {
				dst = c
				break
			}
		}
		if dst == nil {
			return fmt.Errorf("no pod on another node than %s", src.Spec.NodeName)
		}
		ns, err := l.PodNetns(src.Status.PodIP)
		if err != nil {
			return err
		}
		e, err := EchoFrom(ctx, ns, dst.Status.PodIP, EchoPort)
		if err != nil {
			return fmt.Errorf("%s (%s) -> %s (%s): %w", src.Name, src.Status.PodIP, dst.Name, dst.Status.PodIP, err)
		}
		peer, _, err := net.SplitHostPort(e.Peer)
		if err != nil {
			peer = e.Peer
		}
		if e.Pod != dst.Name || e.PodIP != dst.Status.PodIP || peer != src.Status.PodIP {
			return fmt.Errorf("%s -> %s: answered by %s (%s), which saw %s; want %s seeing %s", src.Name, dst.Name, e.Pod, e.PodIP, peer, dst.Name, src.Status.PodIP)
		}
		ok("%s (%s, %s) -> %s (%s, %s): %s saw %s", src.Name, src.Status.PodIP, src.Spec.NodeName, dst.Name, dst.Status.PodIP, dst.Spec.NodeName, e.Pod, peer)
	}
	return nil
}

// deleteAndWait deletes the Deployment and Service name and waits until its pods are gone.
func deleteAndWait(ctx context.Context, kc kubernetes.Interface, name string) error {
	fg := metav1.DeletePropagationForeground
	if err := kc.AppsV1().Deployments(demoNamespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the Deployment %s: %w", name, err)
	}
	if err := kc.CoreV1().Services(demoNamespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the Service %s: %w", name, err)
	}
	return WaitPodsGone(ctx, kc, demoNamespace, "app="+name, time.Minute)
}

// assignedOnNode checks that node's ipamd holds ip as assigned to a pod.
func (l *Lab) assignedOnNode(ctx context.Context, node, ip string) error {
	addrs, err := l.Addresses(ctx, node)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a.IP == ip {
			if a.State != "assigned" {
				return fmt.Errorf("%s is %s on %s's ipamd, not assigned", ip, a.State, node)
			}
			return nil
		}
	}
	return fmt.Errorf("%s is not one of %s's addresses", ip, node)
}

// releasedOnNode checks that node's ipamd no longer has ip assigned (free or cooling down).
// The CNI DEL ran before the pod object went away, so there is nothing to wait for.
func (l *Lab) releasedOnNode(ctx context.Context, node, ip string) error {
	addrs, err := l.Addresses(ctx, node)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a.IP == ip && a.State == "assigned" {
			return fmt.Errorf("%s is still assigned on %s after its pod was deleted (owner %s)", ip, node, a.Owner.ContainerID)
		}
	}
	return nil
}

// loadBalancer puts a Service of type LoadBalancer in front of the echo pods and shows the
// cloud's load balancer sending requests from the internet straight to every pod, each pod seeing
// the load balancer's own address as its peer (no node in the path), then deletes it.
func (d *demo) loadBalancer(kc kubernetes.Interface, app string, pods []corev1.Pod) error {
	svc := EchoLBService(demoNamespace, app+"-lb")
	svc.Spec.Selector = map[string]string{"app": app}
	d.step("a Service of type LoadBalancer (class %s): the cloud's load balancer targets the pod IPs", LBClass)
	if _, err := kc.CoreV1().Services(demoNamespace).Create(d.ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the LoadBalancer Service: %w", err)
	}
	vip, err := WaitLBIngress(d.ctx, kc, demoNamespace, svc.Name, time.Minute)
	if err != nil {
		return err
	}
	lbs, err := d.l.LoadBalancersOf(d.ctx, demoNamespace, svc.Name)
	if err != nil {
		return fmt.Errorf("the load balancers of %s: %w", svc.Name, err)
	}
	if len(lbs) != 1 {
		return fmt.Errorf("the cloud has %d load balancers for %s, want 1", len(lbs), svc.Name)
	}
	lb := lbs[0]
	if lb.State != api.LoadBalancerStateActive {
		return fmt.Errorf("load balancer %s is %s, not active: %s", lb.LoadBalancerID, lb.State, lb.StateReason)
	}
	d.ok("status.loadBalancer.ingress %s: %s, internet-facing, %s (its data plane runs the configuration), private address %s",
		vip, lb.LoadBalancerID, lb.State, lb.PrivateIPAddress)
	// Targets turn healthy after two HTTP checks five seconds apart.
	if err := d.l.WaitTargetsHealthy(d.ctx, lb.LoadBalancerID, podIPs(pods), nil, time.Minute); err != nil {
		return err
	}
	d.ok("%d targets, all healthy: %s", len(pods), strings.Join(podIPs(pods), ", "))
	byPod, peers, err := d.l.ThroughVIP(d.ctx, "", vip, 4*len(pods))
	if err != nil {
		return err
	}
	if len(byPod) != len(pods) {
		return fmt.Errorf("through %s only %d of %d pods answered: %v", vip, len(byPod), len(pods), byPod)
	}
	if len(peers) != 1 || !peers[lb.PrivateIPAddress] {
		return fmt.Errorf("the pods saw peers %v, want only the load balancer's %s", peers, lb.PrivateIPAddress)
	}
	names := make([]string, 0, len(byPod))
	for p, n := range byPod {
		names = append(names, fmt.Sprintf("%s x%d", p, n))
	}
	sort.Strings(names)
	d.ok("%d requests from the internet (%s) to %s:%d answered by every pod: %s", 4*len(pods), InternetAddr, vip, LBPort, strings.Join(names, ", "))
	d.ok("every pod saw the load balancer's address %s as its peer, not a node's", lb.PrivateIPAddress)
	if err := kc.CoreV1().Services(demoNamespace).Delete(d.ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := d.l.WaitNoLoadBalancer(d.ctx, demoNamespace, svc.Name, time.Minute); err != nil {
		return err
	}
	d.ok("Service deleted: its load balancer is gone from the cloud")
	return nil
}

// gateway shows the Gateway API on the cloud's application load balancer: a Gateway of the
// chart's GatewayClass and an HTTPRoute splitting requests 80/20 between two Services, each
// request sent by the load balancer straight to a pod (its peer is the load balancer's address).
func (d *demo) gateway(kc kubernetes.Interface, app string) error {
	const canary = "canary"
	gc, err := d.l.GatewayClient()
	if err != nil {
		return err
	}
	d.step("Gateway API: a Gateway of class %s and an HTTPRoute sending 80%% to %s, 20%% to %s", GatewayClassName, app, canary)
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(d.ctx, EchoDeployment(demoNamespace, canary, 3), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the canary Deployment: %w", err)
	}
	if _, err := kc.CoreV1().Services(demoNamespace).Create(d.ctx, EchoService(demoNamespace, canary), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the canary Service: %w", err)
	}
	gw := HTTPGateway(demoNamespace, "demo")
	gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{
		Name: "grpc", Port: demoGRPCPort, Protocol: gwv1.HTTPProtocolType,
		AllowedRoutes: &gwv1.AllowedRoutes{Kinds: []gwv1.RouteGroupKind{{Kind: "GRPCRoute"}}},
	}, gwv1.Listener{Name: "tcp", Port: demoTCPPort, Protocol: gwv1.TCPProtocolType})
	if err := gc.Create(d.ctx, gw); err != nil {
		return fmt.Errorf("create the Gateway: %w", err)
	}
	if err := gc.Create(d.ctx, WeightedRoute(demoNamespace, "demo", "demo", map[string]int32{app: 80, canary: 20})); err != nil {
		return fmt.Errorf("create the HTTPRoute: %w", err)
	}
	if _, err := WaitPodsReady(d.ctx, kc, demoNamespace, "app="+canary, 3, 2*time.Minute); err != nil {
		return err
	}
	addr, err := WaitGatewayProgrammed(d.ctx, gc, demoNamespace, "demo", 2*time.Minute)
	if err != nil {
		return fmt.Errorf("%w\nlbcontroller log:\n%s", err, d.l.LBControllerLog(30))
	}
	lbs, err := d.l.Cloud().DescribeLoadBalancers(d.ctx, &api.DescribeLoadBalancersRequest{})
	if err != nil {
		return err
	}
	var alb api.LoadBalancer
	for _, lb := range lbs.LoadBalancers {
		if lb.VIP == addr {
			alb = lb
		}
	}
	if alb.LoadBalancerID == "" {
		return fmt.Errorf("no load balancer in the cloud has the Gateway's address %s", addr)
	}
	d.ok("Gateway demo Programmed at %s: %s, an %s load balancer, %s", addr, alb.LoadBalancerID, alb.Type, alb.State)
	const n = 100
	byApp, peers := map[string]int{}, map[string]bool{}
	for range n {
		e, err := EchoFrom(d.ctx, d.l.InternetNetns(), addr, LBPort)
		if err != nil {
			return fmt.Errorf("through the Gateway at %s: %w", addr, err)
		}
		byApp[strings.SplitN(e.Pod, "-", 2)[0]]++
		peer, _, _ := net.SplitHostPort(e.Peer)
		peers[peer] = true
	}
	if byApp[app] == 0 || byApp[canary] == 0 || byApp[app]+byApp[canary] != n {
		return fmt.Errorf("%d requests through the Gateway were answered by %v, want both %s and %s", n, byApp, app, canary)
	}
	if len(peers) != 1 || !peers[alb.PrivateIPAddress] {
		return fmt.Errorf("the pods saw peers %v, want only the load balancer's %s", peers, alb.PrivateIPAddress)
	}
	d.ok("%d requests from the internet to %s:%d: %d answered by %s pods, %d by %s pods (weights 80/20)", n, addr, LBPort, byApp[app], app, byApp[canary], canary)
	d.ok("every pod saw the load balancer's address %s as its peer: no proxy pod, no node in the path", alb.PrivateIPAddress)
	if err := d.grpcRoute(gc, app, addr, alb.PrivateIPAddress); err != nil {
		return err
	}
	tcpAddr, err := d.tcpRoute(gc, app)
	if err != nil {
		return err
	}
	if err := gc.Delete(d.ctx, HTTPGateway(demoNamespace, "demo")); err != nil {
		return err
	}
	if err := poll(d.ctx, time.Minute, 200*time.Millisecond, func() (bool, string) {
		lbs, err := d.l.Cloud().DescribeLoadBalancers(d.ctx, &api.DescribeLoadBalancersRequest{})
		if err != nil {
			return false, err.Error()
		}
		for _, lb := range lbs.LoadBalancers {
			if lb.LoadBalancerID == alb.LoadBalancerID || lb.VIP == tcpAddr {
				return false, lb.LoadBalancerID + " is " + lb.State
			}
		}
		return true, ""
	}); err != nil {
		return fmt.Errorf("the Gateway's load balancers outlived it: %w", err)
	}
	d.ok("Gateway deleted: its load balancers are gone from the cloud")
	return deleteAndWait(d.ctx, kc, canary)
}

// demoTCPPort is the demo Gateway's TCP listener.
const demoTCPPort = 9100

// tcpRoute: a TCPRoute on the demo Gateway's TCP listener passes connections through to the app's
// pods, which answer the echo over them. With fakecloud's driver the listener is on the
// Gateway's application load balancer (its one address); with the AWS driver, whose application
// load balancers serve HTTP(S) only, on the Gateway's companion network load balancer, at its
// second address. It returns the address that served.
func (d *demo) tcpRoute(gc client.Client, app string) (string, error) {
	r := &gwv1.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: "demo-tcp"},
		Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "demo", SectionName: ptr.To(gwv1.SectionName("tcp"))}}},
			Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{{
				BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(app), Port: ptr.To(gwv1.PortNumber(80))},
			}}}},
		},
	}
	if err := gc.Create(d.ctx, r); err != nil {
		return "", fmt.Errorf("create the TCPRoute: %w", err)
	}
	if err := WaitRouteAccepted(d.ctx, gc, r, time.Minute); err != nil {
		return "", fmt.Errorf("%w\nlbcontroller log:\n%s", err, d.l.LBControllerLog(30))
	}
	addresses, where := 1, "the application load balancer's passthrough listener"
	if d.l.st.Config.Cloud == CloudAWSAPI {
		addresses, where = 2, "the companion network load balancer"
	}
	var addr string
	if err := poll(d.ctx, time.Minute, 200*time.Millisecond, func() (bool, string) {
		var g gwv1.Gateway
		if err := gc.Get(d.ctx, client.ObjectKey{Namespace: demoNamespace, Name: "demo"}, &g); err != nil {
			return false, err.Error()
		}
		if len(g.Status.Addresses) != addresses {
			return false, fmt.Sprintf("addresses %+v, want %d", g.Status.Addresses, addresses)
		}
		addr = g.Status.Addresses[addresses-1].Value
		return true, ""
	}); err != nil {
		return "", fmt.Errorf("the Gateway's addresses: %w", err)
	}
	// The targets of a new listener turn healthy before it serves: the first answer is waited for.
	if err := poll(d.ctx, 2*time.Minute, 500*time.Millisecond, func() (bool, string) {
		_, err := EchoFrom(d.ctx, d.l.InternetNetns(), addr, demoTCPPort)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	}); err != nil {
		return "", fmt.Errorf("through the Gateway's TCP listener at %s:%d: %w\nlbcontroller log:\n%s", addr, demoTCPPort, err, d.l.LBControllerLog(30))
	}
	const n = 20
	pods := map[string]bool{}
	for range n {
		e, err := EchoFrom(d.ctx, d.l.InternetNetns(), addr, demoTCPPort)
		if err != nil {
			return "", fmt.Errorf("through the Gateway's TCP listener at %s:%d: %w", addr, demoTCPPort, err)
		}
		if !strings.HasPrefix(e.Pod, app+"-") {
			return "", fmt.Errorf("a connection to the TCP listener was answered by pod %s, not one of %s", e.Pod, app)
		}
		pods[e.Pod] = true
	}
	d.ok("TCPRoute: %d connections to %s:%d (%s) passed through to %d %s pods", n, addr, demoTCPPort, where, len(pods), app)
	return addr, nil
}

// demoGRPCPort is the demo Gateway's listener for GRPCRoutes.
const demoGRPCPort = 9000

// grpcRoute: a GRPCRoute on the demo Gateway's gRPC listener sends grpc.health.v1.Health to the
// app's pods over HTTP/2 without TLS; every call is answered by one of them, which sees the load
// balancer as its peer.
func (d *demo) grpcRoute(gc client.Client, app, addr, lbAddr string) error {
	r := GRPCHealthRoute(demoNamespace, "demo-grpc", "demo", app)
	r.Spec.ParentRefs[0].SectionName = ptr.To(gwv1.SectionName("grpc"))
	if err := gc.Create(d.ctx, r); err != nil {
		return fmt.Errorf("create the GRPCRoute: %w", err)
	}
	if err := WaitRouteAccepted(d.ctx, gc, r, time.Minute); err != nil {
		return fmt.Errorf("%w\nlbcontroller log:\n%s", err, d.l.LBControllerLog(30))
	}
	// The route is Accepted once the cloud took the rule; the first call may still race the
	// data plane's swap of its configuration, so the first answer is waited for.
	var first *GRPCEcho
	if err := poll(d.ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		e, err := GRPCEchoFrom(d.ctx, d.l.InternetNetns(), addr, demoGRPCPort)
		if err != nil {
			return false, err.Error()
		}
		first = e
		return true, ""
	}); err != nil {
		return fmt.Errorf("gRPC through the Gateway at %s:%d: %w", addr, demoGRPCPort, err)
	}
	const n = 20
	pods := map[string]bool{first.Pod: true}
	for range n - 1 {
		e, err := GRPCEchoFrom(d.ctx, d.l.InternetNetns(), addr, demoGRPCPort)
		if err != nil {
			return fmt.Errorf("gRPC through the Gateway at %s:%d: %w", addr, demoGRPCPort, err)
		}
		if !strings.HasPrefix(e.Pod, app+"-") {
			return fmt.Errorf("a gRPC call was answered by pod %s, not one of %s", e.Pod, app)
		}
		if peer, _, _ := net.SplitHostPort(e.Peer); peer != lbAddr {
			return fmt.Errorf("pod %s saw the gRPC call from %s, want the load balancer's %s", e.Pod, e.Peer, lbAddr)
		}
		pods[e.Pod] = true
	}
	d.ok("GRPCRoute: %d gRPC health checks (HTTP/2 without TLS) to %s:%d answered by %d %s pods, each seeing the load balancer's %s as its peer",
		n, addr, demoGRPCPort, len(pods), app, lbAddr)
	return nil
}
