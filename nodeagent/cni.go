package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// podIfName is the pod's interface, as every Kubernetes runtime names it.
const podIfName = "eth0"

// network calls the CNI plugin through libcni as containerd does: the node's conflist (the first
// *.conflist of the directory in lexical order), the plugins' directories, the attachment cache.
type network struct {
	confDir string
	cni     *libcni.CNIConfig
}

func newNetwork(cfg *Config) *network {
	return &network{
		confDir: cfg.CNIConfDir,
		cni:     libcni.NewCNIConfigWithCacheDir(filepath.SplitList(cfg.CNIBinDir), cfg.CNICacheDir, nil),
	}
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
		NetNS:       netnsPath(p.netns),
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
