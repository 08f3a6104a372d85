package nodeagent

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Config is everything the agent needs to know about its node.
type Config struct {
	Kubeconfig  string
	NodeName    string
	ProviderID  string // fakecloud:///<az>/<instance-id>
	NodeIP      string
	CNIConfDir  string
	CNIBinDir   string // one or more directories, separated by ':'
	CNICacheDir string
	StateDir    string
	NetnsPrefix string
	// RootDir is the node's filesystem root: hostPath volumes are paths under it and the CNI
	// plugins run with it as their root, so that lab nodes sharing one filesystem do not
	// collide. Empty or "/": the real root, as on a real node.
	RootDir string
	// ImageLayout is an OCI image layout whose images (named by their
	// org.opencontainers.image.ref.name annotation) the agent runs as containers with a root
	// of their own. Empty: only the built-in images.
	ImageLayout string
	// ImageBinaries run every tag of an image repository as a program of the node, in a root
	// of its own (binimage.go). They are looked up before the layout.
	ImageBinaries []ImageBinary

	CPU              string
	Memory           string
	EphemeralStorage string
	MaxPods          int // 0: the pods capacity is ipamd's to publish
	LeaseDuration    time.Duration

	// ContainerLogMaxBytes caps a container's log file; at the cap it moves to .1, so a
	// container keeps at most twice as much (logs.go). 0: 10 MiB.
	ContainerLogMaxBytes int64
	// The kubelet's log API (logserver.go): served on NodeIP:KubeletPort over TLS with this
	// certificate, to clients whose certificate ClientCAFile signed. Without a certificate the
	// API is not served and the Node publishes no port.
	KubeletPort  int
	TLSCertFile  string
	TLSKeyFile   string
	ClientCAFile string

	// Executable is the program containers and exec probes run as ("<Executable> container ...").
	// Empty means os.Executable().
	Executable string

	Logger *slog.Logger
}

// Flags registers the agent's flags on fs and returns the Config they fill.
func Flags(fs *pflag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig of the API server (required)")
	fs.StringVar(&c.NodeName, "node-name", "", "name of the Node object (required)")
	fs.StringVar(&c.ProviderID, "provider-id", "", "the node's instance, fakecloud:///<az>/<instance-id> (required)")
	fs.StringVar(&c.NodeIP, "node-ip", "", "the node's InternalIP (required)")
	fs.StringVar(&c.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "directory of the CNI conflist")
	fs.StringVar(&c.CNIBinDir, "cni-bin-dir", "/opt/cni/bin", "directories of the CNI plugins, ':'-separated")
	fs.StringVar(&c.CNICacheDir, "cni-cache-dir", "/var/lib/cni", "libcni's cache of attachments")
	fs.StringVar(&c.StateDir, "state-dir", "", "the agent's own state: sandbox records, container logs (required)")
	fs.StringVar(&c.NetnsPrefix, "netns-prefix", "fl-p-", "prefix of the pod namespaces in /run/netns (unique per node)")
	fs.StringVar(&c.RootDir, "root-dir", "", "the node's filesystem root: hostPath volumes live under it and CNI plugins run with it as root (empty: /)")
	fs.StringVar(&c.ImageLayout, "image-layout", "", "OCI image layout of the images the agent runs (by full reference); empty: built-in images only")
	fs.Var((*imageBinaryFlag)(&c.ImageBinaries), "image-binary", "REPO=PATH: run every tag of image repository REPO as the static program PATH, alone in a root of its own (repeatable)")
	fs.StringVar(&c.CPU, "cpu", "2", "cpu capacity reported on the Node")
	fs.StringVar(&c.Memory, "memory", "8Gi", "memory capacity reported on the Node")
	fs.StringVar(&c.EphemeralStorage, "ephemeral-storage", "20Gi", "ephemeral-storage capacity reported on the Node")
	fs.IntVar(&c.MaxPods, "max-pods", 0, "pods capacity; 0 leaves it to ipamd, which publishes the node's address limit")
	fs.DurationVar(&c.LeaseDuration, "lease-duration", 40*time.Second, "duration of the node's lease (renewed every 10s)")
	fs.Var((*byteSize)(&c.ContainerLogMaxBytes), "container-log-max-size", "size at which a container's log file is rotated (one older file is kept), a quantity such as 10Mi")
	c.ContainerLogMaxBytes = defaultContainerLogMaxBytes
	fs.IntVar(&c.KubeletPort, "kubelet-port", 10250, "port of the kubelet log API (containerLogs) on --node-ip, published in the Node's daemonEndpoints")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", "", "serving certificate of the log API (its addresses must include --node-ip); empty: the API is not served")
	fs.StringVar(&c.TLSKeyFile, "tls-private-key-file", "", "key of --tls-cert-file")
	fs.StringVar(&c.ClientCAFile, "client-ca-file", "", "CA whose client certificates may call the log API (the API server's kubelet client); required with --tls-cert-file")
	return c
}

// validate checks the configuration and names every missing or malformed field at once.
func (c *Config) validate() error {
	var errs []error
	for _, f := range []struct{ name, val string }{
		{"--kubeconfig", c.Kubeconfig}, {"--node-name", c.NodeName}, {"--provider-id", c.ProviderID},
		{"--node-ip", c.NodeIP}, {"--cni-conf-dir", c.CNIConfDir}, {"--cni-bin-dir", c.CNIBinDir},
		{"--cni-cache-dir", c.CNICacheDir}, {"--state-dir", c.StateDir}, {"--netns-prefix", c.NetnsPrefix},
	} {
		if f.val == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		}
	}
	if c.NetnsPrefix != "" && strings.ContainsAny(c.NetnsPrefix, "/.") {
		errs = append(errs, fmt.Errorf("--netns-prefix %q: use letters, digits and dashes (it names files in /run/netns)", c.NetnsPrefix))
	}
	for _, q := range []struct{ name, val string }{{"--cpu", c.CPU}, {"--memory", c.Memory}, {"--ephemeral-storage", c.EphemeralStorage}} {
		if _, err := resource.ParseQuantity(q.val); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: a Kubernetes quantity such as 2, 500m or 8Gi: %w", q.name, q.val, err))
		}
	}
	if c.RootDir != "" && !filepath.IsAbs(c.RootDir) {
		errs = append(errs, fmt.Errorf("--root-dir %q: want an absolute path", c.RootDir))
	}
	if c.RootDir != "" && c.RootDir != "/" {
		for _, f := range []struct{ name, val string }{{"--cni-conf-dir", c.CNIConfDir}, {"--cni-bin-dir", c.CNIBinDir}} {
			for _, d := range filepath.SplitList(f.val) {
				if d != "" && !strings.HasPrefix(filepath.Clean(d)+"/", filepath.Clean(c.RootDir)+"/") {
					errs = append(errs, fmt.Errorf("%s %s is outside --root-dir %s: the plugins run with the root directory as /", f.name, d, c.RootDir))
				}
			}
		}
	}
	if err := validateImageBinaries(c.ImageBinaries); err != nil {
		errs = append(errs, err)
	}
	if c.MaxPods < 0 {
		errs = append(errs, fmt.Errorf("--max-pods %d: use 0 (ipamd publishes it) or a positive count", c.MaxPods))
	}
	if c.ContainerLogMaxBytes != 0 && c.ContainerLogMaxBytes < 4*maxLogLine {
		errs = append(errs, fmt.Errorf("--container-log-max-size %d: at least %d bytes (four of the longest entries)", c.ContainerLogMaxBytes, 4*maxLogLine))
	}
	if c.TLSCertFile != "" || c.TLSKeyFile != "" || c.ClientCAFile != "" {
		if c.TLSCertFile == "" || c.TLSKeyFile == "" || c.ClientCAFile == "" {
			errs = append(errs, errors.New("the log API needs --tls-cert-file, --tls-private-key-file and --client-ca-file together"))
		}
		if c.KubeletPort <= 0 || c.KubeletPort > 65535 {
			errs = append(errs, fmt.Errorf("--kubelet-port %d: a TCP port, 1-65535", c.KubeletPort))
		}
	}
	if c.LeaseDuration < 10*time.Second {
		errs = append(errs, fmt.Errorf("--lease-duration %s: at least 10s, the renewal period", c.LeaseDuration))
	}
	return errors.Join(errs...)
}

const defaultContainerLogMaxBytes = 10 << 20

// byteSize is a flag of a size in bytes, written as a Kubernetes quantity (10Mi, 65536).
type byteSize int64

func (b *byteSize) String() string {
	return resource.NewQuantity(int64(*b), resource.BinarySI).String()
}
func (b *byteSize) Type() string { return "quantity" }
func (b *byteSize) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("a quantity such as 10Mi: %w", err)
	}
	*b = byteSize(q.Value())
	return nil
}
