package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/flatnet/flatnet/internal/netns"
	"github.com/flatnet/flatnet/ipamd/wire"
	"github.com/flatnet/flatnet/nodeagent"
)

// LabPodNetwork is the CNI network name of the pods `flatnet-lab pod add` makes: the conflist
// ipamd writes, under another name.
const LabPodNetwork = "flatnet-lab"

// EchoPort is where every pod's echo agent listens.
const EchoPort = 8080

var podName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// cniBinDir holds the plugin under the name the conflist's "type" gives.
func (l *Lab) cniBinDir() string { return filepath.Join(l.st.Config.Dir, "cni-bin") }

func (l *Lab) ensureCNIBin() error {
	dir := l.cniBinDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(dir, "flatnet")
	_ = os.Remove(link)
	return os.Symlink(filepath.Join(l.st.Config.BinDir, "flatnet-cni"), link)
}

func (l *Lab) runtimeConf(p Pod) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: p.ContainerID, NetNS: netns.Path(p.Netns), IfName: "eth0",
		Args: [][2]string{{"K8S_POD_NAMESPACE", "lab"}, {"K8S_POD_NAME", p.Name}},
	}
}

// cni runs fn with the node's CNI configuration, on a thread inside the node's namespace, so the
// plugin runs where a runtime on that node would run it.
func (l *Lab) cni(n Node, fn func(*libcni.CNIConfig, *libcni.NetworkConfigList) error) error {
	conf, err := libcni.ConfListFromFile(filepath.Join(n.ConfDir(), wire.ConflistName))
	if err != nil {
		return fmt.Errorf("read %s's conflist: %w", n.Name, err)
	}
	// The lab is a runtime of its own beside the node agent: its pods are attachments of a
	// network of their own, so that the agent's CNI GC (which releases every attachment of its
	// network it does not run) never takes theirs, and the lab's never takes the agent's.
	conf.Name = LabPodNetwork
	cn := libcni.NewCNIConfigWithCacheDir([]string{l.cniBinDir()}, n.CacheDir(), nil)
	if n.Root != "" {
		// The chart's node: the plugin and the paths its conflist names are under the node's
		// root; run it there, as the node agent does.
		cn = libcni.NewCNIConfigWithCacheDir([]string{n.CNIBinDir()}, n.CacheDir(),
			nodeagent.NewRootExec(n.Root, filepath.Join(l.st.Config.BinDir, NodeAgentBinary)))
	}
	return inNetns(n.Netns, func() error { return fn(cn, conf) })
}

// AddPod creates a pod on node: a namespace, wired by the CNI plugin, running an echo agent.
func (l *Lab) AddPod(ctx context.Context, name, node string) (Pod, error) {
	if !podName.MatchString(name) {
		return Pod{}, fmt.Errorf("pod name %q: use 1-40 lowercase letters, digits and dashes", name)
	}
	// A copy taken under the lock: a restart of the node's ipamd rewrites the node meanwhile.
	l.mu.Lock()
	var n *Node
	if at := l.node(node); at != nil {
		cp := *at
		n = &cp
	}
	exists := l.pod(name) != nil
	l.mu.Unlock()
	if n == nil {
		return Pod{}, fmt.Errorf("no node %q", node)
	}
	if exists {
		return Pod{}, fmt.Errorf("pod %q exists already", name)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	p := Pod{Name: name, Node: node, Netns: l.st.Config.Prefix + "p-" + name, ContainerID: "lab-" + hex.EncodeToString(id)}
	if err := l.ensureCNIBin(); err != nil {
		return Pod{}, err
	}
	if err := netns.Create(p.Netns); err != nil {
		return Pod{}, err
	}
	var res *types100.Result
	err := l.cni(*n, func(cn *libcni.CNIConfig, conf *libcni.NetworkConfigList) error {
		r, err := cn.AddNetworkList(ctx, conf, l.runtimeConf(p))
		if err != nil {
			return err
		}
		res, err = types100.NewResultFromResult(r)
		return err
	})
	if err == nil && len(res.IPs) == 0 {
		err = errors.New("the plugin returned no address")
	}
	if err != nil {
		// A runtime tears a failed sandbox down with DEL (kubelet's StopPodSandbox): a plugin
		// that died after ipamd allocated leaves an allocation only DEL gives back.
		_ = l.delPodNetwork(ctx, *n, p)
		_ = netns.Delete(p.Netns)
		return Pod{}, fmt.Errorf("CNI ADD of pod %s on %s: %w", name, node, err)
	}
	p.IP = res.IPs[0].Address.IP.String()
	if l.st.Config.EchoInProcess {
		if err := l.serveEcho(p); err != nil {
			_ = l.delPodNetwork(ctx, *n, p)
			return Pod{}, fmt.Errorf("pod %s: %w", name, err)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.st.Pods = append(l.st.Pods, p)
		return p, l.save()
	}
	pid, err := startProcess(p.Netns, filepath.Join(l.st.Config.Dir, "pod-"+name+".log"), nil,
		filepath.Join(l.st.Config.BinDir, "flatnet-lab"), "agent", "echo", "--name", name, "--listen", fmt.Sprintf(":%d", EchoPort))
	if err != nil {
		_ = l.delPodNetwork(ctx, *n, p)
		return Pod{}, err
	}
	p.PIDs = []int{pid}
	if err := waitListening(ctx, p.Netns, fmt.Sprintf("127.0.0.1:%d", EchoPort), pid); err != nil {
		_ = stopProcess(pid, time.Second)
		_ = l.delPodNetwork(ctx, *n, p)
		return Pod{}, fmt.Errorf("pod %s: %w", name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Pods = append(l.st.Pods, p)
	return p, l.save()
}

func (l *Lab) pod(name string) *Pod {
	for i := range l.st.Pods {
		if l.st.Pods[i].Name == name {
			return &l.st.Pods[i]
		}
	}
	return nil
}

// podAndNode returns copies of a pod and its node.
func (l *Lab) podAndNode(name string) (Pod, Node, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pod(name)
	if p == nil {
		return Pod{}, Node{}, fmt.Errorf("no pod %q", name)
	}
	n := l.node(p.Node)
	if n == nil {
		return Pod{}, Node{}, fmt.Errorf("pod %q is on %q, which is not a node of this lab", name, p.Node)
	}
	return *p, *n, nil
}

// DelPod stops a pod's processes, runs CNI DEL and removes its namespace.
func (l *Lab) DelPod(ctx context.Context, name string) error {
	pod, n, err := l.podAndNode(name)
	if err != nil {
		return err
	}
	for _, pid := range pod.PIDs {
		if err := stopProcess(pid, 2*time.Second); err != nil {
			return err
		}
	}
	l.stopEcho(name)
	if err := l.delPodNetwork(ctx, n, pod); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.st.Pods {
		if l.st.Pods[i].Name == name {
			l.st.Pods = append(l.st.Pods[:i], l.st.Pods[i+1:]...)
			break
		}
	}
	return l.save()
}

// serveEcho serves pod p's echo from this process, on a listener opened inside its namespace.
func (l *Lab) serveEcho(p Pod) error {
	var ln net.Listener
	err := inNetns(p.Netns, func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", EchoPort))
		return err
	})
	if err != nil {
		return fmt.Errorf("listen in %s: %w", p.Netns, err)
	}
	srv := &http.Server{Handler: EchoHandler(p.Name), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.echoes == nil {
		l.echoes = map[string]*http.Server{}
	}
	l.echoes[p.Name] = srv
	return nil
}

// stopEcho closes the pod's in-process echo server, if it has one.
func (l *Lab) stopEcho(name string) {
	l.mu.Lock()
	srv := l.echoes[name]
	delete(l.echoes, name)
	l.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (l *Lab) delPodNetwork(ctx context.Context, n Node, p Pod) error {
	err := l.cni(n, func(cn *libcni.CNIConfig, conf *libcni.NetworkConfigList) error {
		return cn.DelNetworkList(ctx, conf, l.runtimeConf(p))
	})
	if err != nil {
		return fmt.Errorf("CNI DEL of pod %s on %s: %w", p.Name, n.Name, err)
	}
	return netns.Delete(p.Netns)
}

// CheckPod runs CNI CHECK for a pod.
func (l *Lab) CheckPod(ctx context.Context, name string) error {
	pod, n, err := l.podAndNode(name)
	if err != nil {
		return err
	}
	return l.cni(n, func(cn *libcni.CNIConfig, conf *libcni.NetworkConfigList) error {
		return cn.CheckNetworkList(ctx, conf, l.runtimeConf(pod))
	})
}

// waitListening waits until something accepts connections at addr inside the namespace.
func waitListening(ctx context.Context, netnsName, addr string, pid int) error {
	dial := Dialer(netnsName, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dial(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if !alive(pid) {
			return fmt.Errorf("its agent (pid %d) exited before listening on %s", pid, addr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("its agent does not listen on %s after 10s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
