package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// NetworkName is the CNI network of the conflist ipamd installs.
const NetworkName = wire.NetworkName

// Inside each node namespace, ipamd's introspection and metrics listen on the node's own
// loopback, at the daemon's default ports.
const (
	IntrospectionAddr = "127.0.0.1:61679"
	MetricsAddr       = "127.0.0.1:61678"
)

func (l *Lab) ipamdArgs(n Node) []string {
	cfg := l.st.Config
	args := []string{filepath.Join(cfg.BinDir, "flatnet-ipamd"),
		"--cloud", l.driverName(),
		"--socket", n.Socket(),
		"--state-dir", n.StateDir(),
		"--spool-dir", n.SpoolDir(),
		"--introspection-addr", IntrospectionAddr,
		"--metrics-bind-address", MetricsAddr,
		// ipamd installs the conflist once it serves (the node's network is ready only then).
		"--cni-conf-dir", n.ConfDir(),
		"--cni-log-file", filepath.Join(n.Dir, "cni.log"),
	}
	if cfg.PrefixMode {
		args = append(args, "--prefix-mode")
	}
	return append(args, cfg.IpamdArgs...)
}

// startIpamd runs the node's ipamd as a process inside the node namespace, where it finds its
// instance and the cloud through the metadata service, like on a real instance.
func (l *Lab) startIpamd(n *Node, env ...string) error {
	pid, err := startProcess(n.Netns, filepath.Join(n.Dir, "ipamd.log"), append(l.ipamdEnv(), env...), l.ipamdArgs(*n)...)
	if err != nil {
		return fmt.Errorf("start ipamd on %s: %w", n.Name, err)
	}
	n.IpamdPID = pid
	l.logf("%s: ipamd started (pid %d) in namespace %s", n.Name, pid, n.Netns)
	return nil
}

// RestartIpamd kills the node's ipamd with SIGKILL (as a crash would), leaves it down for
// downFor (a supervisor's restart back-off), and starts it again.
//
// With Kubernetes ipamd is the chart's DaemonSet pod: RestartIpamd kills its process with
// SIGKILL and the node agent restarts the container (downFor is the agent's back-off, not
// the caller's); it returns once the new process answers.
func (l *Lab) RestartIpamd(ctx context.Context, node string, downFor time.Duration) error {
	return l.RestartIpamdWith(ctx, node, downFor)
}

// RestartIpamdWith is RestartIpamd that starts the new process with env added to its
// environment (FLATNET_FAILPOINT, say). Not with Kubernetes: the node agent restarts it there.
func (l *Lab) RestartIpamdWith(ctx context.Context, node string, downFor time.Duration, env ...string) error {
	l.mu.Lock()
	n := l.node(node)
	if n == nil {
		l.mu.Unlock()
		return fmt.Errorf("no node %q", node)
	}
	pid := n.IpamdPID
	if n.Root != "" {
		pid = ipamdPID(*n)
	}
	l.mu.Unlock()
	if pid == 0 {
		return fmt.Errorf("no ipamd process found on %s", node)
	}
	if err := killProcess(pid); err != nil {
		return err
	}
	if n.Root != "" {
		if len(env) > 0 {
			return fmt.Errorf("%s: ipamd is the chart's pod; its environment is the chart's", node)
		}
		return l.waitIpamdRestarted(ctx, node, pid)
	}
	time.Sleep(downFor)
	l.mu.Lock()
	err := l.startIpamd(n, env...)
	if err == nil {
		err = l.save()
	}
	started := *n
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.waitIpamd(ctx, started)
}

// WaitIpamdExit waits at most timeout for the node's ipamd process to exit (at an armed
// failpoint, say) and says whether it did.
func (l *Lab) WaitIpamdExit(ctx context.Context, node string, timeout time.Duration) (bool, error) {
	l.mu.Lock()
	n := l.node(node)
	pid := 0
	if n != nil {
		pid = n.IpamdPID
	}
	l.mu.Unlock()
	if pid == 0 {
		return false, fmt.Errorf("no ipamd process known on %q", node)
	}
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true, nil
}

func (l *Lab) node(name string) *Node {
	for i := range l.st.Nodes {
		if l.st.Nodes[i].Name == name {
			return &l.st.Nodes[i]
		}
	}
	return nil
}

// waitIpamd waits until the node's ipamd answers on its socket.
func (l *Lab) waitIpamd(ctx context.Context, n Node) error {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		// Without Kubernetes the lab runs ipamd and stops waiting when it exits; the chart's
		// DaemonSet restarts its own.
		if n.Root == "" && !alive(n.IpamdPID) {
			return fmt.Errorf("ipamd on %s exited; see %s", n.Name, n.ipamdLog())
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := wire.Call(cctx, n.Socket(), &wire.Request{Op: wire.OpStatus})
		cancel()
		if err == nil {
			// ipamd installs the conflist right after it starts serving.
			if _, err = os.Stat(filepath.Join(n.ConfDir(), wire.ConflistName)); err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("ipamd on %s did not answer within 60s (see %s): %w", n.Name, n.ipamdLog(), last)
}

// ipamdLog is where the node's ipamd logs: the lab's file, or the node agent's log of the
// DaemonSet pod's container.
func (n Node) ipamdLog() string {
	if n.Root == "" {
		return filepath.Join(n.Dir, "ipamd.log")
	}
	return filepath.Join(n.NodeAgentDir(), "logs", "*_ipamd.log")
}

// Status asks a node's ipamd for its pool status.
func (l *Lab) Status(ctx context.Context, node string) (*wire.StatusResponse, error) {
	l.mu.Lock()
	n := l.node(node)
	l.mu.Unlock()
	if n == nil {
		return nil, fmt.Errorf("no node %q", node)
	}
	resp, err := wire.Call(ctx, n.Socket(), &wire.Request{Op: wire.OpStatus})
	if resp != nil && resp.Status != nil {
		return resp.Status, nil // a not-ready status is an answer too
	}
	return nil, err
}

// NodeAddress is one address as a node's ipamd knows it.
type NodeAddress struct {
	IP    string `json:"ip"`
	State string `json:"state"` // free, cooling or assigned
	Owner struct {
		Network     string `json:"network"`
		ContainerID string `json:"containerID"`
		IfName      string `json:"ifName"`
	} `json:"owner"`
}

// Addresses reads a node's ipamd's addresses from its introspection endpoint.
func (l *Lab) Addresses(ctx context.Context, node string) ([]NodeAddress, error) {
	var out []NodeAddress
	if err := l.introspect(ctx, node, "/v1/addresses", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// FastPath is what a node's ipamd says of its BPF fast path (/v1/fastpath).
type FastPath struct {
	Mode       string            `json:"mode"`
	Running    bool              `json:"running"`
	PodLinks   int               `json:"podLinks"`
	CloudLinks int               `json:"cloudLinks"`
	Packets    map[string]uint64 `json:"packets"`
}

// Forwarded is how many packets the fast path forwarded itself.
func (f FastPath) Forwarded() uint64 {
	return f.Packets["to_pod"] + f.Packets["to_cloud"] + f.Packets["resolving_neighbour"]
}

// FastPath reads a node's ipamd's fast path counters.
func (l *Lab) FastPath(ctx context.Context, node string) (FastPath, error) {
	var out FastPath
	err := l.introspect(ctx, node, "/v1/fastpath", &out)
	return out, err
}

// introspect GETs path from node's ipamd's introspection endpoint (inside the node's
// namespace) and decodes the JSON answer into out.
func (l *Lab) introspect(ctx context.Context, node, path string, out any) error {
	l.mu.Lock()
	n := l.node(node)
	l.mu.Unlock()
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: Dialer(n.Netns, nil), DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+IntrospectionAddr+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s's ipamd for %s: %w", node, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ask %s's ipamd for %s: %s", node, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s's %s: %w", node, path, err)
	}
	return nil
}

// waitIpamdRestarted waits until the DaemonSet's ipamd on node runs as a process other than
// old and answers.
func (l *Lab) waitIpamdRestarted(ctx context.Context, node string, old int) error {
	l.mu.Lock()
	n := *l.node(node)
	l.mu.Unlock()
	var pid int
	if err := poll(ctx, time.Minute, 50*time.Millisecond, func() (bool, string) {
		pid = ipamdPID(n)
		return pid != 0 && pid != old, fmt.Sprintf("ipamd pid %d (killed %d)", pid, old)
	}); err != nil {
		return fmt.Errorf("ipamd on %s was not restarted: %w; see %s", node, err, n.ipamdLog())
	}
	if err := l.waitIpamd(ctx, n); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.node(node).IpamdPID = pid
	return l.save()
}
