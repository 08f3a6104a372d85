package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flatnet/flatnet/internal/netns"
)

// binDir holds the agent and the reference CNI plugins (ptp, host-local), built once.
var binDir string

// prefix makes every namespace of this test process unique: other test runs share the machine.
var prefix = fmt.Sprintf("fna%d-", os.Getpid()%100000)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// Fuzzing (the coordinator and each worker run TestMain): the fuzz targets are parsers
		// that need neither root nor the binaries, and building those in every worker would
		// eat the whole fuzz time.
		return m.Run()
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the node agent tests need root: they create network namespaces (run them as root)")
		return 1
	}
	dir, err := os.MkdirTemp("", "flatnet-nodeagent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// buildBinaries builds the agent, and ptp and host-local from the module cache (the version
// go.mod requires).
func buildBinaries(dir string) error {
	args := []string{"build", "-o", filepath.Join(dir, "flatnet-node-agent")}
	env := "CGO_ENABLED=0"
	if raceEnabled {
		args, env = append(args, "-race"), "CGO_ENABLED=1"
	}
	build := exec.Command("go", append(args, "github.com/flatnet/flatnet/cmd/flatnet-node-agent")...)
	build.Env = append(os.Environ(), env)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build flatnet-node-agent: %w\n%s", err, out)
	}
	// The module is go.mod's, but only a build that imports it puts it in the module cache:
	// download it when this package's tests run alone.
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/containernetworking/plugins").Output()
	if err == nil && strings.TrimSpace(string(modDir)) == "" {
		if out, derr := exec.Command("go", "mod", "download", "github.com/containernetworking/plugins").CombinedOutput(); derr != nil {
			return fmt.Errorf("go mod download github.com/containernetworking/plugins (needs the module proxy): %w\n%s", derr, out)
		}
		modDir, err = exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/containernetworking/plugins").Output()
	}
	if err != nil {
		return fmt.Errorf("find containernetworking/plugins in the module cache: %w", err)
	}
	if strings.TrimSpace(string(modDir)) == "" {
		return errors.New("containernetworking/plugins is not in the module cache after go mod download")
	}
	for _, pkg := range []string{"main/ptp", "ipam/host-local"} {
		cmd := exec.Command("go", "build", "-o", dir+"/", "./plugins/"+pkg)
		cmd.Dir = strings.TrimSpace(string(modDir))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build the reference plugin %s (needs a warm module cache or the proxy): %w\n%s", pkg, err, out)
		}
	}
	return nil
}

// testNode is one node: a namespace, its directories, a conflist for ptp + host-local, a
// forward to the API server from the node's loopback, and the agent process.
type testNode struct {
	t        *testing.T
	name     string
	netns    string
	podNetns string // the agent's --netns-prefix
	dir      string
	subnet   string // host-local's range
	rangeEnd string // "" for the whole subnet
	kubecfg  string
	agent    *exec.Cmd
	agentLog string
	// root, when set, is the node's --root-dir: the CNI directories move under it and layout
	// is the --image-layout.
	root, layout string
	// binaries are the --image-binary mappings (REPO=PATH).
	binaries []string
}

func newTestNode(t *testing.T, cfg *rest.Config, name, subnet string) *testNode {
	t.Helper()
	n := &testNode{
		t: t, name: name, netns: prefix + name, podNetns: prefix + name + "-p-",
		dir: t.TempDir(), subnet: subnet,
	}
	for _, d := range []string{"conf", "cache", "state", "ipam"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := netns.Create(n.netns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.cleanup)
	api, err := url.Parse(cfg.Host)
	if err != nil || api.Host == "" {
		t.Fatalf("the API server's address %q: %v", cfg.Host, err)
	}
	n.kubecfg = n.writeKubeconfig(cfg, forwardAPI(t, n.netns, api.Host))
	return n
}

// cleanup kills whatever the node's agent and containers left (they run from this test's
// binaries: their command lines name binDir), then removes the node's and pods' namespaces.
func (n *testNode) cleanup() {
	n.stopAgent(syscall.SIGKILL)
	killOurProcesses(n.podNetns)
	names, _ := netns.List(n.podNetns)
	for _, name := range names {
		_ = netns.Delete(name)
	}
	_ = netns.Delete(n.netns)
	b, _ := os.ReadFile(n.agentLog)
	if strings.Contains(string(b), "WARNING: DATA RACE") {
		n.t.Errorf("the agent of %s reported a data race", n.name)
	}
	if n.t.Failed() {
		n.t.Logf("agent log of %s:\n%s", n.name, lastLines(string(b), 80))
	}
}

// killOurProcesses kills every process living in one of the namespaces named with the prefix:
// the containers and probes of this test's pods, whatever program they run.
func killOurProcesses(netnsPrefix string) {
	inodes := map[uint64]bool{}
	names, _ := netns.List(netnsPrefix)
	for _, name := range names {
		var st syscall.Stat_t
		if syscall.Stat(netns.Path(name), &st) == nil {
			inodes[st.Ino] = true
		}
	}
	if len(inodes) == 0 {
		return
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && inodes[st.Ino] {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeConflist gives the node its network: ptp with host-local over the node's subnet.
func (n *testNode) writeConflist() {
	n.t.Helper()
	rng := map[string]any{"subnet": n.subnet}
	if n.rangeEnd != "" {
		rng["rangeEnd"] = n.rangeEnd
	}
	conf := map[string]any{
		"cniVersion": "1.1.0", "name": prefix + "net",
		"plugins": []any{map[string]any{
			"type": "ptp", "ipMasq": false, "mtu": 1500,
			"ipam": map[string]any{"type": "host-local", "ranges": []any{[]any{rng}}, "dataDir": n.ipamDataDir()},
		}},
	}
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(n.confDir(), "10-test.conflist"), b, 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n *testNode) ipamDir() string {
	if n.root != "" {
		return filepath.Join(n.root, "var/lib/cni-ipam")
	}
	return filepath.Join(n.dir, "ipam")
}

// ipamDataDir is host-local's dataDir as the plugin sees it: under the root it runs in.
func (n *testNode) ipamDataDir() string {
	if n.root != "" {
		return "/var/lib/cni-ipam"
	}
	return n.ipamDir()
}

// confDir and cniBinDir are the agent's CNI directories: under the root when it has one.
func (n *testNode) confDir() string {
	if n.root != "" {
		return filepath.Join(n.root, "etc/cni/net.d")
	}
	return filepath.Join(n.dir, "conf")
}

func (n *testNode) cniBinDir() string {
	if n.root != "" {
		return filepath.Join(n.root, "opt/cni/bin")
	}
	return binDir
}

// allocatedIPs lists the addresses host-local holds (one file per address in its network's dir).
func (n *testNode) allocatedIPs() []string {
	entries, _ := os.ReadDir(filepath.Join(n.ipamDir(), prefix+"net"))
	var out []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// startAgent starts the agent process inside the node's namespace, with env added to its
// environment.
func (n *testNode) startAgent(env ...string) {
	n.t.Helper()
	n.agentLog = filepath.Join(n.dir, "agent.log")
	logf, err := os.OpenFile(n.agentLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(binDir, "flatnet-node-agent"), "run",
		"--kubeconfig", n.kubecfg, "--node-name", n.name,
		"--provider-id", "fakecloud:///az-1/i-"+n.name, "--node-ip", "10.0.0.5",
		"--cni-conf-dir", n.confDir(), "--cni-bin-dir", n.cniBinDir(),
		"--cni-cache-dir", filepath.Join(n.dir, "cache"), "--state-dir", filepath.Join(n.dir, "state"),
		"--netns-prefix", n.podNetns, "--log-level", "debug")
	if n.root != "" {
		cmd.Args = append(cmd.Args, "--root-dir", n.root, "--image-layout", n.layout)
	}
	for _, b := range n.binaries {
		cmd.Args = append(cmd.Args, "--image-binary", b)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	// Pdeathsig: a test that dies (a timeout panics without cleanups) takes its agent along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := netns.Do(n.netns, cmd.Start); err != nil {
		n.t.Fatalf("start the agent: %v", err)
	}
	n.agent = cmd
}

// stopAgent signals the agent and reaps it.
func (n *testNode) stopAgent(sig syscall.Signal) {
	if n.agent == nil {
		return
	}
	_ = n.agent.Process.Signal(sig)
	done := make(chan struct{})
	go func() {
		_ = n.agent.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = n.agent.Process.Kill()
		<-done
	}
	n.agent = nil
}

// waitAgentExit waits for the agent to exit by itself and returns its exit code (-1 when it
// was still running after timeout: then it is killed).
func (n *testNode) waitAgentExit(timeout time.Duration) int {
	done := make(chan struct{})
	go func() {
		_ = n.agent.Wait()
		close(done)
	}()
	code := -1
	select {
	case <-done:
		code = n.agent.ProcessState.ExitCode()
	case <-time.After(timeout):
		_ = n.agent.Process.Kill()
		<-done
	}
	n.agent = nil
	return code
}

// forwardAPI listens on the loopback of the node's namespace and forwards to the API server on
// the host's loopback, as the lab's port-forward does the other way: no route is ever added.
func forwardAPI(t *testing.T, nodeNetns, target string) string {
	t.Helper()
	var ln net.Listener
	err := netns.Do(nodeNetns, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", nodeNetns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

func (n *testNode) writeKubeconfig(cfg *rest.Config, addr string) string {
	n.t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: "https://" + addr, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(n.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		n.t.Fatal(err)
	}
	return path
}

// httpGet fetches url from inside the node's namespace.
func (n *testNode) httpGet(ctx context.Context, url string) ([]byte, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = netns.Do(n.netns, func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// eventually polls cond until it returns nil or timeout passes, then fails with its last error.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitPod waits until the pod satisfies cond and returns it.
func waitPod(t *testing.T, kube kubernetes.Interface, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) error) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, timeout, fmt.Sprintf("pod %s/%s %s", ns, name, what), func() error {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod = p
		return cond(p)
	})
	return pod
}

func podReady(p *corev1.Pod) error {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			if c.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("Ready is %s (%s: %s); status %s", c.Status, c.Reason, c.Message, statusJSON(p))
		}
	}
	return fmt.Errorf("no Ready condition; status %s", statusJSON(p))
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func statusJSON(p *corev1.Pod) string {
	b, _ := json.Marshal(p.Status)
	return string(b)
}

// waitGone waits until the pod is deleted from the API.
func waitGone(t *testing.T, kube kubernetes.Interface, ns, name string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("pod %s/%s deleted", ns, name), func() error {
		_, err := kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			return errors.New("still there")
		}
		return nil
	})
}
