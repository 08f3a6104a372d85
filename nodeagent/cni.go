package nodeagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/flatnet/flatnet/internal/netns"
)

// podIfName is the pod's interface, as every Kubernetes runtime names it.
const podIfName = "eth0"

// network calls the CNI plugin through libcni as containerd does: the node's conflist (the first
// *.conflist of the directory in lexical order), the plugins' directories, the attachment cache.
type network struct {
	confDir string
	cni     *libcni.CNIConfig
}

func newNetwork(cfg *Config, self string) *network {
	var exec invoke.Exec
	if cfg.RootDir != "" && cfg.RootDir != "/" {
		exec = &rootExec{root: filepath.Clean(cfg.RootDir), self: self}
	}
	return &network{
		confDir: cfg.CNIConfDir,
		cni:     libcni.NewCNIConfigWithCacheDir(filepath.SplitList(cfg.CNIBinDir), cfg.CNICacheDir, exec),
	}
}

// rootExec runs the CNI plugins with the node's root directory as their root, as a runtime on
// that node would run them: the paths a plugin reads from its configuration (ipamd's socket,
// its spool and log) are paths of that node, wherever the lab keeps it. The plugin runs
// through the agent's "container" subcommand, in a mount namespace of its own, with the
// node's /run/netns (the pods' namespaces), /dev and /sys bound in and a fresh /proc.
type rootExec struct {
	root, self string
	raw        invoke.RawExec
}

func (e *rootExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	inner, ok := strings.CutPrefix(pluginPath, e.root+"/")
	if !ok {
		return nil, fmt.Errorf("CNI plugin %s is outside the node's root %s", pluginPath, e.root)
	}
	l := Launch{Rootfs: e.root, Mounts: []Mount{{Source: netns.Dir, Target: netns.Dir}}, UID: -1, GID: -1, Argv: []string{"/" + inner}}
	cmd := l.command(e.self)
	cmd.SysProcAttr.Setsid = false
	// CNI_PATH names the plugin directories as the node sees them (a plugin delegating to its
	// IPAM plugin looks there): inside the root.
	cmd.Env = make([]string, 0, len(environ))
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CNI_PATH="); ok {
			var dirs []string
			for _, d := range filepath.SplitList(v) {
				if in, ok := strings.CutPrefix(d, e.root+"/"); ok {
					d = "/" + in
				}
				dirs = append(dirs, d)
			}
			kv = "CNI_PATH=" + strings.Join(dirs, string(filepath.ListSeparator))
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run CNI plugin %s: %w", pluginPath, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		err = fmt.Errorf("%w (plugin stopped: %w)", ctx.Err(), <-done)
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	// As libcni's own exec reports a failed plugin: its error document, else its stderr.
	var perr types.Error
	if len(stdout.Bytes()) > 0 && json.Unmarshal(stdout.Bytes(), &perr) == nil && (perr.Code != 0 || perr.Msg != "") {
		return nil, &perr
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = err.Error()
	}
	return nil, &types.Error{Code: types.ErrInternal, Msg: "netplugin failed: " + msg}
}

func (e *rootExec) FindInPath(plugin string, paths []string) (string, error) {
	return e.raw.FindInPath(plugin, paths)
}

func (e *rootExec) Decode(b []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(b)
}

// errNoConfig says the node has no network configuration yet: ipamd writes it when it can serve.
var errNoConfig = errors.New("no CNI configuration")

// conf loads the node's conflist.
func (n *network) conf() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(n.confDir, []string{".conflist"})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", n.confDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no *.conflist in %s (the network plugin writes it when it is ready)", errNoConfig, n.confDir)
	}
	list, err := libcni.ConfListFromFile(files[0])
	if err != nil {
		return nil, fmt.Errorf("CNI configuration %s: %w", files[0], err)
	}
	return list, nil
}

// status runs the plugins' STATUS (CNI 1.1): nil when they can take ADDs.
func (n *network) status(ctx context.Context) error {
	list, err := n.conf()
	if err != nil {
		return err
	}
	if err := n.cni.GetStatusNetworkList(ctx, list); err != nil {
		return fmt.Errorf("network plugin %s is not ready: %w", list.Name, err)
	}
	return nil
}

// podNet names a pod's attachment: the runtime configuration of every verb.
type podNet struct {
	sandboxID, netns        string
	namespace, name, podUID string
}

func (p podNet) runtimeConf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: p.sandboxID,
		NetNS:       netns.Path(p.netns),
		IfName:      podIfName,
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", p.namespace},
			{"K8S_POD_NAME", p.name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.sandboxID},
			{"K8S_POD_UID", p.podUID},
		},
	}
}

// add attaches the pod and returns its addresses.
func (n *network) add(ctx context.Context, p podNet) ([]string, error) {
	list, err := n.conf()
	if err != nil {
		return nil, err
	}
	r, err := n.cni.AddNetworkList(ctx, list, p.runtimeConf())
	if err != nil {
		return nil, fmt.Errorf("CNI ADD on network %s: %w", list.Name, err)
	}
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD on network %s: read the result: %w", list.Name, err)
	}
	var ips []string
	for _, ip := range res.IPs {
		ips = append(ips, ip.Address.IP.String())
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("CNI ADD on network %s returned no address", list.Name)
	}
	return ips, nil
}

// del detaches the pod. It succeeds when the attachment is already gone, as the spec requires of
// plugins. Without a configuration it fails: the plugin that holds the address cannot be told to
// release it, so the caller keeps its record and tries again.
func (n *network) del(ctx context.Context, p podNet) error {
	list, err := n.conf()
	if err != nil {
		return err
	}
	if err := n.cni.DelNetworkList(ctx, list, p.runtimeConf()); err != nil {
		return fmt.Errorf("CNI DEL on network %s: %w", list.Name, err)
	}
	return nil
}

// gc tells the plugins which attachments are valid (CNI 1.1 GC): libcni deletes the cached
// attachments not in the list, and each plugin may drop its own leftovers.
func (n *network) gc(ctx context.Context, valid []podNet) error {
	list, err := n.conf()
	if errors.Is(err, errNoConfig) {
		return nil
	}
	if err != nil {
		return err
	}
	args := &libcni.GCArgs{}
	for _, p := range valid {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: p.sandboxID, IfName: podIfName})
	}
	if err := n.cni.GCNetworkList(ctx, list, args); err != nil {
		return fmt.Errorf("CNI GC on network %s: %w", list.Name, err)
	}
	return nil
}

// NewRootExec is how a runtime beside the agent (the lab's own pods) runs the CNI plugins of a
// node whose filesystem root is root: as the agent does, through self (the agent's executable).
func NewRootExec(root, self string) invoke.Exec {
	return &rootExec{root: filepath.Clean(root), self: self}
}
