package lab

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/flatnet/flatnet"
	"github.com/flatnet/flatnet/internal/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The node agent is a node as the API server's Node authorizer knows one
// (system:node:<name> in system:nodes): the authorizer gives it exactly the kubelet's
// permissions and NodeRestriction limits it to its own Node and the pods bound to it. ipamd and
// the load-balancer controller get no credentials from the lab: the chart runs them with their
// ServiceAccounts and its RBAC (the lab's RBAC is the chart's).
const (
	// NodeAgentBinary is the kubelet stand-in (cmd/flatnet-node-agent).
	NodeAgentBinary = "flatnet-node-agent"
)

// Kubeconfigs of a node's software, inside the VPC.
func (n Node) NodeAgentKubeconfig() string { return filepath.Join(n.Dir, "node-agent.kubeconfig") }
func (n Node) NodeAgentDir() string        { return filepath.Join(n.Dir, "node-agent") }

// PodNetnsPrefix starts the name of every pod namespace of the lab (lab pods and the node
// agents' pods alike), so that Down finds them.
func (c Config) PodNetnsPrefix() string { return c.Prefix + "p-" }

// upKubernetes brings up the cluster part: the control plane, a node agent per node, then
// flatnet through its chart (images built from the lab's binaries), and waits until every node
// is Ready, ipamd answers on each and the controller holds its lease.
func (l *Lab) upKubernetes(ctx context.Context) error {
	if err := l.startControlPlane(ctx); err != nil {
		return err
	}
	for _, n := range l.st.Nodes {
		if err := l.writeNodeCredentials(l.pki, n); err != nil {
			return err
		}
	}
	if err := l.buildImages(ctx, l.st.Config.BinDir, flatnet.Version); err != nil {
		return err
	}
	for i := range l.st.Nodes {
		if err := l.startNodeAgent(&l.st.Nodes[i]); err != nil {
			return err
		}
	}
	if err := l.save(); err != nil {
		return err
	}
	if err := l.installChart(ctx); err != nil {
		return err
	}
	if err := l.WaitNodesReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	for i := range l.st.Nodes {
		if err := l.waitIpamd(ctx, l.st.Nodes[i]); err != nil {
			return err
		}
		l.st.Nodes[i].IpamdPID = ipamdPID(l.st.Nodes[i])
	}
	if err := l.save(); err != nil {
		return err
	}
	return l.WaitLBControllerLeader(ctx, 2*time.Minute)
}

// WaitLBControllerLeader waits until a replica of the chart's controller holds its Lease.
func (l *Lab) WaitLBControllerLeader(ctx context.Context, timeout time.Duration) error {
	kc, err := l.Kube()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		lease, err := kc.CoordinationV1().Leases(ReleaseNamespace).Get(ctx, lbControllerLease, metav1.GetOptions{})
		if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the load-balancer controller took no lease %s/%s within %s (last: %w)%s", ReleaseNamespace, lbControllerLease, timeout, err, l.chartHint(ctx))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// writeNodeCredentials issues the node agent's client certificate of node n and writes its
// kubeconfig, which reaches the API server at its VPC address.
func (l *Lab) writeNodeCredentials(p *pki, n Node) error {
	cp := l.st.ControlPlane
	user := "system:node:" + n.Name
	kp, err := p.issue(n.Name+"-node-agent", &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: []string{"system:nodes"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &p.ca)
	if err != nil {
		return err
	}
	if err := p.writeKubeconfig(n.NodeAgentKubeconfig(), cp.VPCServer(), user, kp); err != nil {
		return err
	}
	// The serving certificate of the agent's log API, for its InternalIP (the address the API
	// server dials).
	_, err = p.issue(n.Name+"-node-agent-serving", &x509.Certificate{
		Subject:     pkix.Name{CommonName: user},
		IPAddresses: []net.IP{net.ParseIP(n.PrimaryIP)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &p.ca)
	return err
}

// nodeAgentArgs is the node agent's command line for node n: its root directory, its CNI
// directories under it, the lab's image layout, then Config.NodeAgentArgs.
func (l *Lab) nodeAgentArgs(n Node) []string {
	cfg := l.st.Config
	pki := l.st.ControlPlane.pkiDir()
	return append([]string{filepath.Join(cfg.BinDir, NodeAgentBinary), "run",
		"--kubeconfig", n.NodeAgentKubeconfig(),
		"--node-name", n.Name,
		"--provider-id", "fakecloud:///" + n.AZ + "/" + n.InstanceID,
		"--node-ip", n.PrimaryIP,
		"--root-dir", n.Root,
		"--cni-conf-dir", n.ConfDir(),
		"--cni-bin-dir", n.CNIBinDir(),
		"--cni-cache-dir", n.CacheDir(),
		"--state-dir", n.NodeAgentDir(),
		"--image-layout", l.imageLayout(),
		"--netns-prefix", cfg.PodNetnsPrefix() + strings.TrimPrefix(n.Name, "node-") + "-",
		"--tls-cert-file", filepath.Join(pki, n.Name+"-node-agent-serving.crt"),
		"--tls-private-key-file", filepath.Join(pki, n.Name+"-node-agent-serving.key"),
		"--client-ca-file", filepath.Join(pki, "ca.crt"),
	}, cfg.NodeAgentArgs...)
}

// startNodeAgent runs the node's agent in the node namespace.
func (l *Lab) startNodeAgent(n *Node) error {
	if err := os.MkdirAll(n.NodeAgentDir(), 0o755); err != nil {
		return err
	}
	pid, err := startProcess(n.Netns, filepath.Join(n.Dir, "node-agent.log"), nil, l.nodeAgentArgs(*n)...)
	if err != nil {
		return fmt.Errorf("start the node agent on %s: %w", n.Name, err)
	}
	n.NodeAgentPID = pid
	l.logf("%s: node agent started (pid %d)", n.Name, pid)
	return nil
}

// RestartNodeAgent kills the node's agent with SIGKILL, leaves it down for downFor and starts
// it again; the pods it ran keep running and are adopted.
func (l *Lab) RestartNodeAgent(ctx context.Context, node string, downFor time.Duration) error {
	l.mu.Lock()
	n := l.node(node)
	if n == nil {
		l.mu.Unlock()
		return fmt.Errorf("no node %q", node)
	}
	pid := n.NodeAgentPID
	l.mu.Unlock()
	if err := killProcess(pid); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(downFor):
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.startNodeAgent(n); err != nil {
		return err
	}
	return l.save()
}

// nodeCondition returns the Node's condition of type t (zero when it has none).
func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.NodeCondition{}
}

// schedulable reports whether the node is Ready and publishes pod capacity (ipamd's).
func schedulable(n *corev1.Node) (bool, string) {
	if c := nodeCondition(n, corev1.NodeReady); c.Status != corev1.ConditionTrue {
		return false, fmt.Sprintf("Ready=%q (%s: %s)", c.Status, c.Reason, c.Message)
	}
	if p := n.Status.Allocatable[corev1.ResourcePods]; p.IsZero() {
		return false, "no pod capacity published yet (ipamd)"
	}
	return true, ""
}

// WaitNodesReady waits until every lab node is a Ready Node with pod capacity.
func (l *Lab) WaitNodesReady(ctx context.Context, timeout time.Duration) error {
	kc, err := l.Kube()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
		} else {
			byName := map[string]*corev1.Node{}
			for i := range nodes.Items {
				byName[nodes.Items[i].Name] = &nodes.Items[i]
			}
			last = ""
			for _, n := range l.State().Nodes {
				kn, ok := byName[n.Name]
				if !ok {
					last += fmt.Sprintf("%s not registered; ", n.Name)
					continue
				}
				if ok, why := schedulable(kn); !ok {
					last += fmt.Sprintf("%s: %s; ", n.Name, why)
				}
				if !alive(n.NodeAgentPID) {
					return fmt.Errorf("the node agent of %s (pid %d) exited; see %s", n.Name, n.NodeAgentPID, filepath.Join(n.Dir, "node-agent.log"))
				}
			}
			if last == "" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes not Ready within %s: %s(see each node's node-agent.log and ipamd.log)", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// killInPodNamespaces kills every process whose network namespace is one of the lab's pod
// namespaces: containers a node agent left running when it was stopped.
func killInPodNamespaces(names []string) {
	inodes := map[nsID]bool{}
	for _, name := range names {
		if id, ok := namespaceID(netns.Path(name)); ok {
			inodes[id] = true
		}
	}
	if len(inodes) == 0 {
		return
	}
	for _, pid := range pids() {
		if id, ok := namespaceID(fmt.Sprintf("/proc/%d/ns/net", pid)); ok && inodes[id] {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 2*time.Second)
		}
	}
}

// nsID names a namespace: its nsfs device and inode.
type nsID struct{ dev, ino uint64 }

// namespaceID is the namespace of a namespace file (/run/netns/<name>, /proc/<pid>/ns/net).
// Only a mounted namespace is on the nsfs device; a leftover placeholder file is not a
// namespace, and its inode number means nothing.
func namespaceID(path string) (nsID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nsID{}, false
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(path, &fs); err != nil || fs.Type != nsfsMagic {
		return nsID{}, false
	}
	return nsID{st.Dev, st.Ino}, true
}

// nsfsMagic is the nsfs filesystem's magic number (linux/magic.h NSFS_MAGIC).
const nsfsMagic = 0x6e736673

// pids lists the machine's processes but this one.
func pids() []int {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range procs {
		var pid int
		if _, err := fmt.Sscanf(p.Name(), "%d", &pid); err == nil && pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// strayContainers lists the processes running binDir's node agent (the built-in images' program)
// in a network namespace that has no name and is neither init's nor the calling thread's: a
// pod's container that outlived the removal of its namespace. Nothing of the lab's runs in one
// otherwise: a node agent stops a pod's processes before it removes the pod's namespace. The processes are found first and the names read after, and a process
// counts only if it still runs then, so a pod created or torn down meanwhile is not one.
// It is a test's check, not a clean-up: it cannot tell one lab's processes from another's.
func strayContainers(binDir string) ([]int, error) {
	dir, err := filepath.Abs(binDir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("the lab's binaries %s: %w", binDir, err)
	}
	type candidate struct {
		pid int
		ns  nsID
	}
	var found []candidate
	for _, pid := range pids() {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe != filepath.Join(dir, NodeAgentBinary) {
			continue
		}
		if id, ok := namespaceID(fmt.Sprintf("/proc/%d/ns/net", pid)); ok {
			found = append(found, candidate{pid, id})
		}
	}
	named := map[nsID]bool{}
	// The machine's, as init and this thread see it (they may differ in a container; and
	// /proc/self is the main thread's, which may be in another namespace than this one).
	runtime.LockOSThread()
	for _, p := range []string{"/proc/1/ns/net", "/proc/thread-self/ns/net"} {
		if id, ok := namespaceID(p); ok {
			named[id] = true
		}
	}
	runtime.UnlockOSThread()
	ents, err := os.ReadDir(netns.Dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range ents {
		if id, ok := namespaceID(filepath.Join(netns.Dir, e.Name())); ok {
			named[id] = true
		}
	}
	var out []int
	for _, c := range found {
		if !named[c.ns] && alive(c.pid) {
			out = append(out, c.pid)
		}
	}
	return out, nil
}
