package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/fabric"
	"github.com/flatnet/flatnet/internal/netns"
	"github.com/flatnet/flatnet/internal/privfile"
)

// Config describes a lab.
type Config struct {
	// Dir holds the lab's state, logs, sockets and per-node files (default /run/flatnet-lab).
	Dir string
	// Prefix starts every namespace name of the lab (default "fl-"); nodes and routers are named
	// by the fabric, pods "<prefix>p-<pod>".
	Prefix string
	// BinDir holds fakecloud, flatnet-ipamd, flatnet-cni and flatnet-lab (default: the directory
	// of the running executable).
	BinDir string
	// Listen is fakecloud's API address on loopback (default 127.0.0.1:7480).
	Listen       string
	Nodes        int    // default 3
	InstanceType string // default m5.large
	PrefixMode   bool
	VPCCIDR      string // default 10.0.0.0/16
	SubnetCIDR   string // default 10.0.0.0/20
	// IpamdArgs are extra flags for every ipamd.
	IpamdArgs []string
	// Cloud is how ipamd and lbcontroller reach fakecloud: CloudFakecloud (default, its JSON API
	// through the fakecloud driver) or CloudAWSAPI (its EC2 and ELBv2 endpoint through the AWS
	// driver on aws-sdk-go-v2, ipamd with the instance role's credentials from the metadata
	// service, lbcontroller with fakecloud's administrator keys from the cloud Secret).
	Cloud string
	// FakecloudArgs are extra flags for fakecloud serve.
	FakecloudArgs []string
	// LBControllerLogLevel is the chart's lbcontroller.logLevel (empty: the chart's default,
	// info); debug logs each Gateway pass with where its time went.
	LBControllerLogLevel string
	// NodeAgentArgs are extra flags for every node agent (with Kubernetes), e.g.
	// --image-binary REPO=PATH for images the lab cannot pull.
	NodeAgentArgs []string
	// Kubernetes adds a control plane (etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler) on an instance of its own; see ControlPlane.
	Kubernetes bool
	// K8sBinDir holds etcd, the kube-* binaries and kubectl (default $FLATNET_K8S_BIN_DIR;
	// make k8s-bins builds them).
	K8sBinDir string
	// APIServerListen is the host's loopback address of the API server's port-forward
	// (default 127.0.0.1:6443).
	APIServerListen string
	// EchoInProcess serves the echo of pods made by AddPod from goroutines of the lab's own
	// process, on a listener opened inside each pod's namespace, instead of a flatnet-lab
	// process per pod (whose start, a 90 MB binary's init, is most of a pod's creation): for
	// the soak, whose pods live only as long as the process that made them.
	EchoInProcess bool
	Log           io.Writer `json:"-"`
}

func (c *Config) defaults() error {
	if c.Dir == "" {
		c.Dir = "/run/flatnet-lab"
	}
	if c.Prefix == "" {
		c.Prefix = "fl-"
	}
	if c.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the binaries: %w", err)
		}
		c.BinDir = filepath.Dir(exe)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7480"
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.InstanceType == "" {
		c.InstanceType = "m5.large"
	}
	if c.VPCCIDR == "" {
		c.VPCCIDR = "10.0.0.0/16"
	}
	if c.SubnetCIDR == "" {
		c.SubnetCIDR = "10.0.0.0/20"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	switch c.Cloud {
	case "":
		c.Cloud = CloudFakecloud
	case CloudFakecloud, CloudAWSAPI:
	default:
		return fmt.Errorf("--cloud %q: the lab runs with %s or %s", c.Cloud, CloudFakecloud, CloudAWSAPI)
	}
	if c.Nodes < 1 || c.Nodes > 50 {
		return fmt.Errorf("--nodes %d: the lab runs 1 to 50 nodes", c.Nodes)
	}
	bins := []string{"fakecloud", "flatnet-ipamd", "flatnet-cni", "flatnet-lab"}
	if c.Kubernetes {
		bins = append(bins, NodeAgentBinary, LBControllerBinary)
	}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			return fmt.Errorf("binary %s not found in %s (run make build): %w", b, c.BinDir, err)
		}
	}
	return c.k8sDefaults()
}

// Node is one instance of the lab.
type Node struct {
	Name       string `json:"name"` // node-1, node-2, ...
	InstanceID string `json:"instanceID"`
	Netns      string `json:"netns"`
	PrimaryIP  string `json:"primaryIP"`
	Dir        string `json:"dir"`
	AZ         string `json:"az"`
	IpamdPID   int    `json:"ipamdPID"`
	// Root is the node's filesystem root when the chart runs flatnet (Config.Kubernetes): the
	// node agent maps hostPath volumes under it and runs the CNI plugins with it as /, so the
	// chart's paths (/run/flatnet, /etc/cni/net.d, ...) are per node. Empty without Kubernetes:
	// the lab runs ipamd itself with paths under Dir.
	Root string `json:"root,omitempty"`
	// NodeAgentPID is the node agent's (with Config.Kubernetes).
	NodeAgentPID int `json:"nodeAgentPID,omitempty"`
}

// Socket is the node's ipamd socket; ConfDir, CacheDir and SpoolDir its CNI files, StateDir
// ipamd's datastore. Under Root they are the chart's paths.
func (n Node) Socket() string   { return n.path("run/flatnet/ipamd.sock", "ipamd.sock") }
func (n Node) ConfDir() string  { return n.path("etc/cni/net.d", "net.d") }
func (n Node) CacheDir() string { return filepath.Join(n.Dir, "cni-cache") }
func (n Node) SpoolDir() string { return n.path("var/lib/flatnet/spool", "spool") }
func (n Node) StateDir() string { return n.path("var/lib/flatnet/ipamd", "ipamd-state") }

// CNIBinDir is where the node's CNI plugin is: installed there by the chart's init container
// under Root.
func (n Node) CNIBinDir() string { return n.path("opt/cni/bin", "cni-bin") }

func (n Node) path(underRoot, underDir string) string {
	if n.Root != "" {
		return filepath.Join(n.Root, underRoot)
	}
	return filepath.Join(n.Dir, underDir)
}

// Pod is a network namespace wired by the CNI plugin, with its processes.
type Pod struct {
	Name        string `json:"name"`
	Node        string `json:"node"`
	Netns       string `json:"netns"`
	ContainerID string `json:"containerID"`
	IP          string `json:"ip"`
	PIDs        []int  `json:"pids,omitempty"`
}

// State is what the lab records in Dir/lab.json so that later commands find it.
type State struct {
	Config       Config `json:"config"`
	Endpoint     string `json:"endpoint"`
	AdminToken   string `json:"adminToken"`
	FakecloudPID int    `json:"fakecloudPID"`
	VpcID        string `json:"vpcID"`
	SubnetID     string `json:"subnetID"`
	Nodes        []Node `json:"nodes"`
	Pods         []Pod  `json:"pods"`
	InternetPID  int    `json:"internetPID,omitempty"`
	// ControlPlane is the Kubernetes control plane, when Config.Kubernetes asks for one.
	ControlPlane *ControlPlane `json:"controlPlane,omitempty"`
}

// Lab is a running lab.
type Lab struct {
	mu    sync.Mutex
	st    State
	cloud *client.Client
	pki   *pki // the control plane's credentials, while Up runs
	// echoes are the in-process echo servers of pods (Config.EchoInProcess), by pod name.
	echoes map[string]*http.Server
	// controllerArgv are the command lines of the kube-controller-manager and kube-scheduler
	// this process started, for RestartExitedControllers.
	controllerArgv map[string][]string
}

func statePath(dir string) string { return filepath.Join(dir, "lab.json") }

// Open loads the lab recorded in dir.
func Open(dir string) (*Lab, error) {
	if dir == "" {
		dir = "/run/flatnet-lab"
	}
	raw, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no lab in %s: run flatnet-lab up first", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read the lab's state: %w", err)
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("the lab's state %s is corrupt (flatnet-lab down cleans up): %w", statePath(dir), err)
	}
	if st.Config.Log == nil {
		st.Config.Log = io.Discard
	}
	return &Lab{st: st, cloud: client.New(st.Endpoint, st.AdminToken)}, nil
}

// State returns a copy of the lab's record.
func (l *Lab) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Nodes = append([]Node(nil), l.st.Nodes...)
	st.Pods = append([]Pod(nil), l.st.Pods...)
	if l.st.ControlPlane != nil {
		cp := *l.st.ControlPlane
		st.ControlPlane = &cp
	}
	return st
}

// Cloud is an admin client of the lab's fakecloud.
func (l *Lab) Cloud() *client.Client { return l.cloud }

func (l *Lab) save() error {
	body, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(l.st.Config.Dir) + ".tmp"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		return fmt.Errorf("save the lab's state: %w", err)
	}
	return os.Rename(tmp, statePath(l.st.Config.Dir))
}

func (l *Lab) logf(format string, args ...any) {
	fmt.Fprintf(l.st.Config.Log, format+"\n", args...)
}

// Up brings a lab up: whatever an earlier lab in the same directory left behind is removed
// first, then fakecloud starts with its fabric, the VPC, subnet and nodes are created, and an
// ipamd starts in every node; with Config.Kubernetes, the control plane starts last.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := Down(cfg.Dir, cfg.Prefix, cfg.Log); err != nil {
		return nil, fmt.Errorf("clean up an earlier lab: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Dir, err)
	}
	l := &Lab{st: State{Config: cfg, Endpoint: "http://" + cfg.Listen}}
	ok := false
	defer func() {
		if !ok {
			_ = Down(cfg.Dir, cfg.Prefix, io.Discard)
		}
	}()
	if err := l.startFakecloud(ctx); err != nil {
		return nil, err
	}
	if err := l.createNodes(ctx); err != nil {
		return nil, err
	}
	if err := l.startInternetAgent(); err != nil {
		return nil, err
	}
	start := time.Now()
	if cfg.Kubernetes {
		if err := l.upKubernetes(ctx); err != nil {
			return nil, err
		}
		l.logf("%d nodes Ready with flatnet installed by its chart, %s after the control plane started", len(l.st.Nodes), time.Since(start).Round(time.Millisecond))
	} else {
		for i := range l.st.Nodes {
			if err := l.startIpamd(&l.st.Nodes[i]); err != nil {
				return nil, err
			}
		}
		if err := l.save(); err != nil {
			return nil, err
		}
		for _, n := range l.st.Nodes {
			if err := l.waitIpamd(ctx, n); err != nil {
				return nil, err
			}
		}
		if err := l.ensureCNIBin(); err != nil {
			return nil, err
		}
	}
	l.pki = nil // the CA's key is not kept past Up
	ok = true
	return l, nil
}

// RestartFakecloud kills fakecloud with SIGKILL, leaves it down for downFor, and starts it
// again on the same state file; its fabric adopts the namespaces it left. Faults in force are
// lost, as on any restart.
func (l *Lab) RestartFakecloud(ctx context.Context, downFor time.Duration) error {
	l.mu.Lock()
	pid := l.st.FakecloudPID
	l.mu.Unlock()
	if err := killProcess(pid); err != nil {
		return err
	}
	time.Sleep(downFor)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.startFakecloud(ctx)
}

func (l *Lab) startFakecloud(ctx context.Context) error {
	cfg := l.st.Config
	tokenFile := filepath.Join(cfg.Dir, "admin-token")
	args := append([]string{filepath.Join(cfg.BinDir, "fakecloud"), "serve",
		"--listen", cfg.Listen, "--admin-token-file", tokenFile,
		"--state-file", filepath.Join(cfg.Dir, "fakecloud.state"),
		"--fabric", "netns", "--fabric-prefix", cfg.Prefix}, cfg.FakecloudArgs...)
	pid, err := startProcess("", filepath.Join(cfg.Dir, "fakecloud.log"), nil, args...)
	if err != nil {
		return err
	}
	l.st.FakecloudPID = pid
	if err := l.save(); err != nil {
		return err
	}
	l.logf("fakecloud started (pid %d) on %s", pid, cfg.Listen)
	return l.waitFakecloud(ctx, tokenFile)
}

// waitFakecloud waits for the API to answer and reads the admin token it wrote.
func (l *Lab) waitFakecloud(ctx context.Context, tokenFile string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if !alive(l.st.FakecloudPID) {
			return fmt.Errorf("fakecloud exited at start; see %s", filepath.Join(l.st.Config.Dir, "fakecloud.log"))
		}
		// The token file must be private (serve creates it 0600): never trust one planted.
		raw, err := privfile.Read(tokenFile)
		if errors.Is(err, privfile.ErrNotPrivate) {
			return fmt.Errorf("fakecloud's admin token: %w", err)
		}
		if tok := strings.TrimSpace(string(raw)); tok != "" {
			resp, err := http.Get(l.st.Endpoint + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					l.st.AdminToken = tok
					l.cloud = client.New(l.st.Endpoint, tok)
					return l.save()
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fakecloud did not answer within 30s; see %s", filepath.Join(l.st.Config.Dir, "fakecloud.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l *Lab) createNodes(ctx context.Context) error {
	cfg := l.st.Config
	vpc, err := l.cloud.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: cfg.VPCCIDR, Tags: []api.Tag{{Key: "flatnet-lab", Value: cfg.Dir}}})
	if err != nil {
		return fmt.Errorf("create the VPC: %w", err)
	}
	l.st.VpcID = vpc.Vpc.VpcID
	sn, err := l.cloud.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: l.st.VpcID, CidrBlock: cfg.SubnetCIDR})
	if err != nil {
		return fmt.Errorf("create the subnet: %w", err)
	}
	l.st.SubnetID = sn.Subnet.SubnetID
	run, err := l.cloud.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: l.st.SubnetID, InstanceType: cfg.InstanceType, Count: cfg.Nodes})
	if err != nil {
		return fmt.Errorf("launch %d %s nodes: %w", cfg.Nodes, cfg.InstanceType, err)
	}
	for i, inst := range run.Instances {
		n := Node{
			Name: fmt.Sprintf("node-%d", i+1), InstanceID: inst.InstanceID, PrimaryIP: inst.PrivateIPAddress,
			Netns: fabric.NodeNetns(cfg.Prefix, inst.InstanceID), Dir: filepath.Join(cfg.Dir, "nodes", fmt.Sprintf("node-%d", i+1)),
			AZ: inst.AvailabilityZone,
		}
		if cfg.Kubernetes {
			n.Root = filepath.Join(n.Dir, "root")
		}
		for _, d := range []string{n.Dir, n.ConfDir(), n.CacheDir(), n.SpoolDir(), n.StateDir(), n.CNIBinDir()} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", d, err)
			}
		}
		l.st.Nodes = append(l.st.Nodes, n)
		l.logf("%s is instance %s (%s) at %s", n.Name, inst.InstanceID, cfg.InstanceType, inst.PrivateIPAddress)
	}
	if err := l.save(); err != nil {
		return err
	}
	return l.waitNodeNamespaces(ctx)
}

func (l *Lab) waitNodeNamespaces(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range l.st.Nodes {
		for {
			if _, err := os.Stat(netns.Path(n.Netns)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the fabric did not create %s's namespace %s within 30s; see fakecloud.log", n.Name, n.Netns)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// InternetNetns is the namespace standing in for the internet behind the VPC router.
func (l *Lab) InternetNetns() string { return fabric.InternetNetns(l.st.Config.Prefix, l.st.VpcID) }

// InternetAddr is the address of the echo agent on the internet side.
const InternetAddr = fabric.InternetHostAddr

func (l *Lab) startInternetAgent() error {
	ns := l.InternetNetns()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(netns.Path(ns)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the fabric did not create the internet namespace %s within 30s", ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
	pid, err := startProcess(ns, filepath.Join(l.st.Config.Dir, "internet.log"), nil,
		filepath.Join(l.st.Config.BinDir, "flatnet-lab"), "agent", "echo", "--name", "internet",
		"--listen", fmt.Sprintf("%s:%d", InternetAddr, EchoPort))
	if err != nil {
		return fmt.Errorf("start the internet echo agent: %w", err)
	}
	l.st.InternetPID = pid
	return l.save()
}

// Down removes a lab: its pods, processes, namespaces (also ones a crashed run left behind)
// and its directory. It is safe to run at any time, twice, or with no lab at all.
func Down(dir, prefix string, log io.Writer) error {
	if dir == "" {
		dir = "/run/flatnet-lab"
	}
	if prefix == "" {
		prefix = "fl-"
	}
	var errs []error
	if l, err := Open(dir); err == nil {
		st := l.State()
		prefix = st.Config.Prefix
		for _, p := range st.Pods {
			for _, pid := range p.PIDs {
				errs = append(errs, stopProcess(pid, time.Second))
			}
		}
		if cp := st.ControlPlane; cp != nil {
			for _, pid := range cp.pids() {
				errs = append(errs, stopProcess(pid, 5*time.Second))
			}
		}
		for _, n := range st.Nodes {
			errs = append(errs, stopProcess(n.NodeAgentPID, 5*time.Second))
		}
		for _, n := range st.Nodes {
			errs = append(errs, stopProcess(n.IpamdPID, 5*time.Second))
		}
		errs = append(errs, stopProcess(st.InternetPID, time.Second))
		errs = append(errs, stopProcess(st.FakecloudPID, 10*time.Second))
	}
	errs = append(errs, killStragglers(dir))
	names, err := netns.List(prefix)
	errs = append(errs, err)
	var podNetns []string
	for _, name := range names {
		if strings.HasPrefix(name, prefix+"p-") {
			podNetns = append(podNetns, name)
		}
	}
	killInPodNamespaces(podNetns)
	for _, name := range names {
		if strings.HasPrefix(name, prefix+"p-") {
			errs = append(errs, netns.Delete(name))
		}
	}
	errs = append(errs, fabric.Down(prefix))
	errs = append(errs, os.RemoveAll(dir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(names) > 0 {
		fmt.Fprintf(log, "removed %d lab namespaces\n", len(names))
	}
	return nil
}

// killStragglers kills processes still running from the lab's binaries with the lab's
// directory on their command line (a crashed run whose state file is gone or stale).
func killStragglers(dir string) error {
	for _, pid := range pids() {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		// A container the node agents ran with a root of its own (the chart's ipamd and
		// controller) names no lab path on its command line: its root is under the lab.
		root, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
		if !strings.Contains(string(cmdline), dir+"/") && !strings.HasPrefix(root, dir+"/") {
			continue
		}
		if !ours(pid) {
			continue // only the lab's own programs
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 2*time.Second)
	}
	return nil
}

// Lock takes the lab directory's lock, so that lab commands run one at a time; call the
// returned function to release it.
func Lock(dir string) (func(), error) {
	if dir == "" {
		dir = "/run/flatnet-lab"
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lab lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("take the lab lock: %w", err)
	}
	return func() { f.Close() }, nil
}
