package lab

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The identities of the node software. The node agent is a node as the API server's Node
// authorizer knows one (system:node:<name> in system:nodes); ipamd has a user of its own per
// node in a group the lab's RBAC binds to what ipamd needs, and nothing more.
const (
	ipamdGroup = "flatnet:ipamd"
	// NodeAgentBinary is the kubelet stand-in (cmd/flatnet-node-agent).
	NodeAgentBinary = "flatnet-node-agent"
)

// rbac is what the lab applies once the API server runs. Nodes need none: the Node authorizer
// gives a node identity exactly the kubelet's permissions, and the NodeRestriction admission
// plugin limits it to its own Node and the pods bound to it. ipamd gets a role of its own: read
// Nodes, patch their status (capacity and its condition), write events.
const rbac = `{"apiVersion": "v1", "kind": "List", "items": [
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
 "metadata": {"name": "flatnet:ipamd"},
 "rules": [
  {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
  {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
  {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]}]},
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
 "metadata": {"name": "flatnet:ipamd"},
 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flatnet:ipamd"},
 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "` + ipamdGroup + `"}]}
]}`

// Kubeconfigs of a node's software, inside the VPC.
func (n Node) NodeAgentKubeconfig() string { return filepath.Join(n.Dir, "node-agent.kubeconfig") }
func (n Node) IpamdKubeconfig() string     { return filepath.Join(n.Dir, "ipamd.kubeconfig") }
func (n Node) NodeAgentDir() string        { return filepath.Join(n.Dir, "node-agent") }

// PodNetnsPrefix starts the name of every pod namespace of the lab (lab pods and the node
// agents' pods alike), so that Down finds them.
func (c Config) PodNetnsPrefix() string { return c.Prefix + "p-" }

// applyRBAC gives nodes and ipamd their permissions.
func (l *Lab) applyRBAC(ctx context.Context) error {
	cp := l.st.ControlPlane
	for _, doc := range []string{rbac, lbRBAC} {
		cmd := exec.CommandContext(ctx, l.k8sBin("kubectl"), "--kubeconfig", cp.Kubeconfig, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(doc)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apply the lab's RBAC: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// writeNodeCredentials issues the node agent's and ipamd's client certificates of node n and
// writes their kubeconfigs, which reach the API server at its VPC address.
func (l *Lab) writeNodeCredentials(p *pki, n Node) error {
	cp := l.st.ControlPlane
	for _, id := range []struct {
		path, file, user string
		groups           []string
	}{
		{n.NodeAgentKubeconfig(), n.Name + "-node-agent", "system:node:" + n.Name, []string{"system:nodes"}},
		{n.IpamdKubeconfig(), n.Name + "-ipamd", "flatnet-ipamd:" + n.Name, []string{ipamdGroup}},
	} {
		kp, err := p.issue(id.file, &x509.Certificate{
			Subject:     pkix.Name{CommonName: id.user, Organization: id.groups},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, &p.ca)
		if err != nil {
			return err
		}
		if err := p.writeKubeconfig(id.path, cp.VPCServer(), id.user, kp); err != nil {
			return err
		}
	}
	return nil
}

// nodeAgentArgs is the node agent's command line for node n.
func (l *Lab) nodeAgentArgs(n Node) []string {
	cfg := l.st.Config
	return []string{filepath.Join(cfg.BinDir, NodeAgentBinary), "run",
		"--kubeconfig", n.NodeAgentKubeconfig(),
		"--node-name", n.Name,
		"--provider-id", "fakecloud:///" + n.AZ + "/" + n.InstanceID,
		"--node-ip", n.PrimaryIP,
		"--cni-conf-dir", n.ConfDir(),
		"--cni-bin-dir", l.cniBinDir(),
		"--cni-cache-dir", n.CacheDir(),
		"--state-dir", n.NodeAgentDir(),
		"--netns-prefix", cfg.PodNetnsPrefix() + strings.TrimPrefix(n.Name, "node-") + "-",
	}
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
	type nsID struct{ dev, ino uint64 }
	inodes := map[nsID]bool{}
	for _, name := range names {
		var st syscall.Stat_t
		// Only a mounted namespace is on the nsfs device; a leftover placeholder file is not
		// a namespace, and its inode number means nothing.
		if err := syscall.Stat(netnsPath(name), &st); err == nil {
			inodes[nsID{st.Dev, st.Ino}] = true
		}
	}
	if len(inodes) == 0 {
		return
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, p := range procs {
		var pid int
		if _, err := fmt.Sscanf(p.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/"+p.Name()+"/ns/net", &st); err != nil || !inodes[nsID{st.Dev, st.Ino}] {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 2*time.Second)
	}
}
