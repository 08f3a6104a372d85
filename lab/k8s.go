package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric"
	"github.com/flatnet/flatnet/internal/netns"
)

// The control plane's fixed facts.
const (
	// ControlPlaneName names the control-plane instance in the lab's state and logs.
	ControlPlaneName = "control-plane"
	// ServiceCIDR is the cluster's Service range; its first address is the "kubernetes" Service.
	ServiceCIDR = "10.96.0.0/16"
	// APIServerPort is the API server's port on the control plane's VPC address.
	APIServerPort = 6443
	// K8sBinDirEnv names the directory of etcd, kube-* and kubectl (make k8s-bins builds them
	// and the Makefile exports it).
	K8sBinDirEnv = "FLATNET_K8S_BIN_DIR"
)

// k8sBinaries are the programs the control plane needs from Config.K8sBinDir.
var k8sBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"}

// fileTail returns the last n lines of the file at path ("" when it cannot be read).
func fileTail(path string, n int) string {
	raw, _ := os.ReadFile(path)
	return strings.Join(tailLines(raw, n), "\n")
}

// ControlPlane is the Kubernetes control plane of a lab: one fakecloud instance whose
// namespace runs etcd, kube-apiserver, kube-controller-manager and kube-scheduler.
type ControlPlane struct {
	Name       string `json:"name"`
	InstanceID string `json:"instanceID"`
	Netns      string `json:"netns"`
	IP         string `json:"ip"` // VPC address; the API server advertises it
	Dir        string `json:"dir"`
	// Server is the host's URL of the API server (the loopback port-forward); Kubeconfig the
	// host's admin kubeconfig for it. VPCKubeconfig reaches https://IP:6443 from inside the VPC.
	Server        string `json:"server"`
	Kubeconfig    string `json:"kubeconfig"`
	VPCKubeconfig string `json:"vpcKubeconfig"`

	EtcdPID              int `json:"etcdPID"`
	APIServerPID         int `json:"apiserverPID"`
	ControllerManagerPID int `json:"controllerManagerPID"`
	SchedulerPID         int `json:"schedulerPID"`
	PortForwardPID       int `json:"portForwardPID"`
}

// VPCServer is the API server's URL inside the VPC.
func (cp ControlPlane) VPCServer() string {
	return "https://" + net.JoinHostPort(cp.IP, fmt.Sprint(APIServerPort))
}

func (cp ControlPlane) pkiDir() string          { return filepath.Join(cp.Dir, "pki") }
func (cp ControlPlane) logPath(p string) string { return filepath.Join(cp.Dir, p+".log") }

// pids lists the control plane's processes in the order they are stopped.
func (cp ControlPlane) pids() []int {
	return []int{cp.SchedulerPID, cp.ControllerManagerPID, cp.APIServerPID, cp.EtcdPID, cp.PortForwardPID}
}

func (c *Config) k8sDefaults() error {
	if !c.Kubernetes {
		return nil
	}
	if c.K8sBinDir == "" {
		c.K8sBinDir = os.Getenv(K8sBinDirEnv)
	}
	if c.K8sBinDir == "" {
		return fmt.Errorf("the control plane needs etcd and the kube-* binaries: run make k8s-bins and pass --k8s-bin-dir (or set %s) to the directory it prints", K8sBinDirEnv)
	}
	for _, b := range k8sBinaries {
		if _, err := os.Stat(filepath.Join(c.K8sBinDir, b)); err != nil {
			return fmt.Errorf("binary %s not found in %s (run make k8s-bins): %w", b, c.K8sBinDir, err)
		}
	}
	if c.APIServerListen == "" {
		c.APIServerListen = "127.0.0.1:6443"
	}
	host, _, err := net.SplitHostPort(c.APIServerListen)
	if err != nil {
		return fmt.Errorf("--apiserver-listen %q: %w", c.APIServerListen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--apiserver-listen %q: the port-forward listens on loopback only (e.g. 127.0.0.1:6443)", c.APIServerListen)
	}
	return nil
}

// ControlPlane returns the lab's control plane, or false when it runs none.
func (l *Lab) ControlPlane() (ControlPlane, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.ControlPlane == nil {
		return ControlPlane{}, false
	}
	return *l.st.ControlPlane, true
}

// Kubectl runs the lab's kubectl with the host's admin kubeconfig and returns its standard
// output; the error carries its standard error.
func (l *Lab) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	cp, ok := l.ControlPlane()
	if !ok {
		return nil, fmt.Errorf("the lab runs no Kubernetes control plane (flatnet-lab up --kubernetes)")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(l.st.Config.K8sBinDir, "kubectl"), append([]string{"--kubeconfig", cp.Kubeconfig}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// startControlPlane launches the control-plane instance and runs the control plane in its
// namespace, then the host's port-forward, and waits until the API server is ready and the
// controller-manager and scheduler hold their leases.
func (l *Lab) startControlPlane(ctx context.Context) error {
	cfg := l.st.Config
	run, err := l.cloud.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: l.st.SubnetID, InstanceType: cfg.InstanceType,
		Tags: []api.Tag{{Key: "flatnet-lab", Value: ControlPlaneName}}})
	if err != nil {
		return fmt.Errorf("launch the control-plane instance: %w", err)
	}
	inst := run.Instances[0]
	cp := &ControlPlane{
		Name: ControlPlaneName, InstanceID: inst.InstanceID, IP: inst.PrivateIPAddress,
		Netns: fabric.NodeNetns(cfg.Prefix, inst.InstanceID), Dir: filepath.Join(cfg.Dir, ControlPlaneName),
		Server: "https://" + cfg.APIServerListen,
	}
	cp.Kubeconfig = filepath.Join(cp.Dir, "admin.kubeconfig")
	cp.VPCKubeconfig = filepath.Join(cp.Dir, "vpc.kubeconfig")
	l.st.ControlPlane = cp
	if err := l.save(); err != nil {
		return err
	}
	l.logf("%s is instance %s at %s", cp.Name, cp.InstanceID, cp.IP)
	if err := waitNetns(ctx, cp.Netns, 30*time.Second); err != nil {
		return fmt.Errorf("the control-plane instance %s: %w", cp.InstanceID, err)
	}
	p, err := l.writeControlPlaneFiles(cp)
	if err != nil {
		return err
	}
	l.pki = p
	client, err := apiClient(p, Dialer(cp.Netns, nil))
	if err != nil {
		return err
	}
	start := time.Now()
	if err := l.startEtcdAndAPIServer(cp, p); err != nil {
		return err
	}
	if err := waitReady(ctx, client, cp.VPCServer(), 2*time.Minute, cp,
		proc{"etcd", cp.EtcdPID}, proc{"kube-apiserver", cp.APIServerPID}); err != nil {
		return err
	}
	l.logf("%s: kube-apiserver ready at %s after %s", cp.Name, cp.VPCServer(), time.Since(start).Round(time.Millisecond))
	if err := l.startControllers(cp, p); err != nil {
		return err
	}
	for _, lease := range []string{"kube-controller-manager", "kube-scheduler"} {
		if err := waitLease(ctx, client, cp, lease, time.Minute); err != nil {
			return err
		}
	}
	if err := l.startPortForward(cp); err != nil {
		return err
	}
	local, err := apiClient(p, nil)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, local, cp.Server, 30*time.Second, cp, proc{"port-forward", cp.PortForwardPID}); err != nil {
		return fmt.Errorf("the port-forward to the API server: %w", err)
	}
	l.logf("%s: control plane up in %s; kubectl --kubeconfig %s", cp.Name, time.Since(start).Round(time.Millisecond), cp.Kubeconfig)
	return nil
}

// writeControlPlaneFiles generates the credentials and writes the kubeconfigs.
func (l *Lab) writeControlPlaneFiles(cp *ControlPlane) (*pki, error) {
	_, svc, err := net.ParseCIDR(ServiceCIDR)
	if err != nil {
		return nil, err
	}
	firstService := append(net.IP(nil), svc.IP.To4()...)
	firstService[3]++
	p, err := newPKI(cp.pkiDir(), []net.IP{net.ParseIP(cp.IP), firstService, net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("generate the control plane's credentials: %w", err)
	}
	for _, kc := range []struct {
		path, server, user string
		kp                 keyPair
	}{
		{cp.Kubeconfig, cp.Server, "admin", p.admin},
		{cp.VPCKubeconfig, cp.VPCServer(), "admin", p.admin},
		{filepath.Join(cp.Dir, "controller-manager.kubeconfig"), cp.VPCServer(), "system:kube-controller-manager", p.controller},
		{filepath.Join(cp.Dir, "scheduler.kubeconfig"), cp.VPCServer(), "system:kube-scheduler", p.scheduler},
	} {
		if err := p.writeKubeconfig(kc.path, kc.server, kc.user, kc.kp); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (l *Lab) k8sBin(name string) string { return filepath.Join(l.st.Config.K8sBinDir, name) }

// startEtcdAndAPIServer runs etcd on the namespace's loopback and the API server on every
// address of the namespace (the VPC address for nodes, loopback for nobody else).
func (l *Lab) startEtcdAndAPIServer(cp *ControlPlane, p *pki) error {
	etcd := []string{l.k8sBin("etcd"),
		"--name", "lab", "--data-dir", filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "lab=http://127.0.0.1:2380",
		// A lab's data dies with it: skipping fsync keeps a loaded machine's disk out of the way.
		"--unsafe-no-fsync", "--log-level", "warn",
	}
	pid, err := startProcess(cp.Netns, cp.logPath("etcd"), nil, etcd...)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	cp.EtcdPID = pid
	apiserver := []string{l.k8sBin("kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:2379",
		"--advertise-address", cp.IP, "--bind-address", "0.0.0.0", "--secure-port", fmt.Sprint(APIServerPort),
		"--tls-cert-file", p.apiserver.certPath, "--tls-private-key-file", p.apiserver.keyPath,
		"--client-ca-file", p.ca.certPath,
		// The aggregation layer; without it every component logs a missing requestheader CA.
		"--requestheader-client-ca-file", p.frontProxyCA.certPath,
		"--requestheader-allowed-names", frontProxyClient,
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", p.frontProxy.certPath, "--proxy-client-key-file", p.frontProxy.keyPath,
		// Admission webhooks (lbcontroller's readiness gate) are reached at their Service's
		// endpoints, pod IPs routed in the VPC: the lab runs no kube-proxy for ClusterIPs.
		"--enable-aggregator-routing=true",
		// pods/log: the API server calls the node agents' log API at their InternalIP and
		// the port they publish, checking their serving certificates against the lab's CA.
		"--kubelet-client-certificate", p.kubeletClient.certPath, "--kubelet-client-key", p.kubeletClient.keyPath,
		"--kubelet-certificate-authority", p.ca.certPath,
		"--kubelet-preferred-address-types", "InternalIP",
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--service-cluster-ip-range", ServiceCIDR,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p.saPub, "--service-account-signing-key-file", p.saKey,
		"--allow-privileged",
		"--cert-dir", filepath.Join(cp.Dir, "apiserver-certs"),
		"--profiling=false",
	}
	if pid, err = startProcess(cp.Netns, cp.logPath("kube-apiserver"), nil, apiserver...); err != nil {
		return fmt.Errorf("start kube-apiserver: %w", err)
	}
	cp.APIServerPID = pid
	l.logf("%s: etcd (pid %d) and kube-apiserver (pid %d) started in namespace %s", cp.Name, cp.EtcdPID, cp.APIServerPID, cp.Netns)
	return l.save()
}

// startControllers runs the controller-manager and the scheduler; they reach the API server
// at its VPC address as anything inside the VPC does, and elect leaders through leases.
func (l *Lab) startControllers(cp *ControlPlane, p *pki) error {
	cmKubeconfig := filepath.Join(cp.Dir, "controller-manager.kubeconfig")
	cm := []string{l.k8sBin("kube-controller-manager"),
		"--kubeconfig", cmKubeconfig,
		"--authentication-kubeconfig", cmKubeconfig, "--authorization-kubeconfig", cmKubeconfig,
		"--bind-address", "127.0.0.1",
		"--leader-elect",
		"--use-service-account-credentials",
		"--service-account-private-key-file", p.saKey,
		"--root-ca-file", p.ca.certPath,
		"--cluster-signing-cert-file", p.ca.certPath, "--cluster-signing-key-file", p.ca.keyPath,
		"--service-cluster-ip-range", ServiceCIDR,
		"--cert-dir", filepath.Join(cp.Dir, "controller-manager-certs"),
		"--profiling=false",
	}
	pid, err := startProcess(cp.Netns, cp.logPath("kube-controller-manager"), nil, cm...)
	if err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	cp.ControllerManagerPID = pid
	schedKubeconfig := filepath.Join(cp.Dir, "scheduler.kubeconfig")
	sched := []string{l.k8sBin("kube-scheduler"),
		"--kubeconfig", schedKubeconfig,
		"--authentication-kubeconfig", schedKubeconfig, "--authorization-kubeconfig", schedKubeconfig,
		"--bind-address", "127.0.0.1",
		"--leader-elect",
		"--cert-dir", filepath.Join(cp.Dir, "scheduler-certs"),
		"--profiling=false",
	}
	if pid, err = startProcess(cp.Netns, cp.logPath("kube-scheduler"), nil, sched...); err != nil {
		return fmt.Errorf("start kube-scheduler: %w", err)
	}
	cp.SchedulerPID = pid
	l.controllerArgv = map[string][]string{"kube-controller-manager": cm, "kube-scheduler": sched}
	l.logf("%s: kube-controller-manager (pid %d) and kube-scheduler (pid %d) started", cp.Name, cp.ControllerManagerPID, cp.SchedulerPID)
	return l.save()
}

// startPortForward runs `flatnet-lab agent port-forward` detached in the root namespace: it
// listens on the host's loopback and dials the API server from inside the control plane's
// namespace, so the host reaches the cluster without a route into the lab.
func (l *Lab) startPortForward(cp *ControlPlane) error {
	cfg := l.st.Config
	pid, err := startProcess("", cp.logPath("port-forward"), nil,
		filepath.Join(cfg.BinDir, "flatnet-lab"), "--dir", cfg.Dir, "agent", "port-forward",
		"--netns", cp.Netns, "--listen", cfg.APIServerListen,
		"--target", net.JoinHostPort(cp.IP, fmt.Sprint(APIServerPort)))
	if err != nil {
		return fmt.Errorf("start the API server's port-forward: %w", err)
	}
	cp.PortForwardPID = pid
	l.logf("%s: port-forward %s -> %s (pid %d)", cp.Name, cfg.APIServerListen, cp.VPCServer(), pid)
	return l.save()
}

// apiClient is an HTTPS client of the API server that trusts the lab's CA and presents the
// admin certificate; dial, when set, places its sockets (e.g. in the control plane's namespace).
func apiClient(p *pki, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*http.Client, error) {
	cert, err := tls.X509KeyPair(p.admin.certPEM, p.admin.keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load the admin certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.cert)
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	if dial != nil {
		tr.DialContext = dial
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, nil
}

// proc is one of the control plane's processes, for the waits: its name names its log too.
type proc struct {
	name string
	pid  int
}

// waitReady polls server's /readyz until it answers 200, failing early when one of procs
// exits, and late with the last answer; both errors carry the logs' last lines, since a failed
// up removes the lab's directory.
func waitReady(ctx context.Context, client *http.Client, server string, timeout time.Duration, cp *ControlPlane, procs ...proc) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if err := exited(cp, "waiting for "+server+"/readyz", procs); err != nil {
			return err
		}
		code, body, err := get(ctx, client, server+"/readyz")
		switch {
		case err != nil:
			last = err.Error()
		case code == http.StatusOK:
			return nil
		default:
			last = fmt.Sprintf("HTTP %d: %s", code, lastLines(body, 5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/readyz not ready within %s (last: %s); %s", server, timeout, last, cp.logHint("kube-apiserver", "etcd"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitLease waits until the named lease in kube-system has a holder: the component runs and
// talks to the API server.
func waitLease(ctx context.Context, client *http.Client, cp *ControlPlane, name string, timeout time.Duration) error {
	return waitLeaseOf(ctx, client, cp, name, timeout,
		proc{"kube-controller-manager", cp.ControllerManagerPID}, proc{"kube-scheduler", cp.SchedulerPID})
}

// waitLeaseOf is waitLease for a lease taken by procs.
func waitLeaseOf(ctx context.Context, client *http.Client, cp *ControlPlane, name string, timeout time.Duration, procs ...proc) error {
	url := cp.VPCServer() + "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/" + name
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if err := exited(cp, "waiting for the "+name+" lease", procs); err != nil {
			return err
		}
		code, body, err := get(ctx, client, url)
		switch {
		case err != nil:
			last = err.Error()
		case code == http.StatusOK && strings.Contains(string(body), `"holderIdentity"`):
			return nil
		default:
			last = fmt.Sprintf("HTTP %d", code)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s took no lease within %s (last: %s); %s", name, timeout, last, cp.logHint(name))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// exited returns an error naming the first of procs that is no longer running.
func exited(cp *ControlPlane, while string, procs []proc) error {
	for _, p := range procs {
		if !alive(p.pid) {
			return fmt.Errorf("%s (pid %d) exited while %s; %s", p.name, p.pid, while, cp.logHint(p.name))
		}
	}
	return nil
}

// logHint names the logs of the named processes with their last lines.
func (cp ControlPlane) logHint(names ...string) string {
	var parts []string
	for _, n := range names {
		raw, _ := os.ReadFile(cp.logPath(n))
		parts = append(parts, fmt.Sprintf("%s ends: %s", cp.logPath(n), lastLines(raw, 8)))
	}
	return strings.Join(parts, "; ")
}

func get(ctx context.Context, client *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// lastLines returns the last n lines of b on one line, for an error message.
func lastLines(b []byte, n int) string { return strings.Join(tailLines(b, n), " | ") }

func tailLines(b []byte, n int) []string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// waitNetns waits for the fabric to create the named namespace.
func waitNetns(ctx context.Context, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(netns.Path(name)); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the fabric did not create namespace %s within %s; see fakecloud.log", name, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RestartAPIServer kills the kube-apiserver with SIGKILL, leaves it down for downFor and
// starts it again with the command line it ran with; it returns once the API server answers
// /readyz through the host's port-forward. etcd keeps running: what the cluster stored stays.
func (l *Lab) RestartAPIServer(ctx context.Context, downFor time.Duration) error {
	cp, ok := l.ControlPlane()
	if !ok {
		return fmt.Errorf("the lab runs no Kubernetes control plane")
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cp.APIServerPID))
	if err != nil || !ours(cp.APIServerPID) {
		return fmt.Errorf("kube-apiserver (pid %d) is not running", cp.APIServerPID)
	}
	argv := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
	if err := killProcess(cp.APIServerPID); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(downFor):
	}
	pid, err := startProcess(cp.Netns, cp.logPath("kube-apiserver"), nil, argv...)
	if err != nil {
		return fmt.Errorf("start kube-apiserver: %w", err)
	}
	l.mu.Lock()
	l.st.ControlPlane.APIServerPID = pid
	err = l.save()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	kc, err := l.Kube()
	if err != nil {
		return err
	}
	var last error
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if !alive(pid) {
			return fmt.Errorf("kube-apiserver exited after its restart; %s", cp.logHint("kube-apiserver"))
		}
		_, last = kc.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if last == nil {
			l.logf("%s: kube-apiserver restarted (pid %d)", cp.Name, pid)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready within 2m of its restart (last: %w); %s", last, cp.logHint("kube-apiserver"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// RestartExitedControllers starts again, with the command line they were started with, the
// kube-controller-manager and kube-scheduler if they exited, as the kubelet restarts a
// control plane's static pods: each exits when it loses its leader lease, which an API server
// down for longer than the lease's renew deadline makes it do. It returns what it restarted.
// Only the process that brought the lab up knows their command lines.
func (l *Lab) RestartExitedControllers() ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cp := l.st.ControlPlane
	if cp == nil {
		return nil, fmt.Errorf("the lab runs no Kubernetes control plane")
	}
	var restarted []string
	for _, c := range []struct {
		name string
		pid  *int
	}{{"kube-controller-manager", &cp.ControllerManagerPID}, {"kube-scheduler", &cp.SchedulerPID}} {
		if alive(*c.pid) {
			continue
		}
		argv := l.controllerArgv[c.name]
		if argv == nil {
			return restarted, fmt.Errorf("%s exited, and this process did not start it: its command line is unknown", c.name)
		}
		pid, err := startProcess(cp.Netns, cp.logPath(c.name), nil, argv...)
		if err != nil {
			return restarted, fmt.Errorf("start %s again: %w", c.name, err)
		}
		l.logf("%s: %s exited; started again (pid %d)", cp.Name, c.name, pid)
		*c.pid = pid
		restarted = append(restarted, c.name)
	}
	if len(restarted) == 0 {
		return nil, nil
	}
	return restarted, l.save()
}
