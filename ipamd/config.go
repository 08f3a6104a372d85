package ipamd

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flatnet/flatnet/ipamd/nodenet"
	"github.com/flatnet/flatnet/ipamd/pool"
	"github.com/flatnet/flatnet/ipamd/wire"
	"github.com/flatnet/flatnet/providers"
)

// Config is everything ipamd is told. Zero values are not defaults: start from DefaultConfig (or
// Flags, which does).
type Config struct {
	// Cloud names the driver (--cloud, default "fakecloud").
	Cloud string
	// InstanceID, CloudEndpoint and CloudToken identify the node and reach the cloud; any left
	// empty is read from the metadata service at MetadataURL.
	InstanceID    string
	CloudEndpoint string
	CloudToken    string
	// CloudRegion is the region of a cloud that has regions (--cloud-region; AWS: empty takes
	// AWS_REGION, then the metadata service's).
	CloudRegion string
	MetadataURL string // default http://169.254.169.254
	// StateDir holds the datastore (default /var/lib/flatnet/ipamd).
	StateDir string
	// StateSync bounds how long an acknowledged allocation may sit in the kernel's page cache
	// before it is fdatasync'ed (default 100ms). The answer to the plugin always waits for the
	// record to be written into the log, which kill -9 of ipamd cannot undo; the sync guards only
	// against a machine crash, after which no pod of the node is left and start-up reconcile
	// releases or adopts what a lost tail held. 0 fdatasyncs every record before the answer.
	StateSync time.Duration
	// SocketPath is the plugin's socket (default wire.DefaultSocket), mode 0600.
	SocketPath string
	// SpoolDir is where the plugin spools releases (default wire.DefaultSpoolDir).
	SpoolDir string
	// CNIConfDir, when set, receives ipamd's CNI conflist (ConflistName) once ipamd serves, so
	// the runtime reports the node's network ready only then. CNILogFile is the plugin's log
	// (empty: the plugin logs to stderr only).
	CNIConfDir string
	CNILogFile string
	// IntrospectAddr serves /v1/*, /healthz and /readyz (default 127.0.0.1:61679); MetricsAddr
	// serves /metrics (--metrics-bind-address, default 127.0.0.1:61678: loopback, so a node's
	// metrics are not open to every network it is on; the chart binds the node IP for scraping).
	// Empty disables the listener.
	IntrospectAddr string
	MetricsAddr    string

	// Pool is the warm-pool policy (see pool.Config for each field and its default).
	Pool pool.Config
	// Cooldown: a released address is not handed out again for this long (default 30s), so a
	// packet for the old pod never reaches a new one.
	Cooldown time.Duration
	// AllocWait bounds how long an allocation waits for the pool to grow before the plugin
	// gets "try again" (default 10s).
	AllocWait time.Duration
	// Coalesce is how long the worker lets concurrent misses gather before one batched cloud
	// call (default 2ms).
	Coalesce time.Duration
	// DemandWindow is the span over which recent allocations scale the next batch (default 30s).
	DemandWindow time.Duration
	// ResyncInterval between comparisons with the cloud's truth (default 60s).
	ResyncInterval time.Duration
	// VisibilityGrace: an address or interface ipamd recorded less than this long ago is not
	// dropped because the cloud does not show it yet (eventual consistency; default 10s).
	VisibilityGrace time.Duration
	// SubnetID and SecurityGroups for new interfaces; default the primary interface's.
	SubnetID       string
	SecurityGroups []string

	// Datapath enables programming the node (ipamd/nodenet); off only for tests and for ipamd
	// run outside its node (default on).
	Datapath bool
	// FastPath is on, auto (default) or off: whether pod traffic inside the VPC is forwarded by
	// the node's BPF fast path (ipamd/nodenet/fastpath) rather than the kernel's IP forwarding.
	// auto uses it where the kernel can (Linux 6.6+, BTF, conntrack) and says so in the log
	// otherwise; on refuses to start without it.
	FastPath string
	// MTU of the node's cloud interfaces and of pods (default 9001).
	MTU int
	// TableBase: secondary interface N routes through table TableBase+N (default 100).
	TableBase int
	// ExternalSNAT turns the node's SNAT off; SNATExclusions are extra destinations not SNATed.
	ExternalSNAT   bool
	SNATExclusions []netip.Prefix
	// PodCheck judges at start whether an allocation's pod still exists: "link" (a host link
	// of the CNI plugin carries the owner in its alias; default) or "none" (trust the record and
	// leave stale ones to the runtime's CNI GC).
	PodCheck string
	// PodCheckGrace: at start, an allocation younger than this is not judged by the pod check
	// (default 1m). The plugin tags its host link only after allocate answered, so a pod being
	// wired while ipamd restarted has no tag yet; releasing its address would hand it to a
	// second pod. Such allocations are judged once they are this old. Keep it above the CNI
	// plugin's ipamd call timeout (its timeoutSeconds, default 10s) plus the time it takes to
	// wire a pod on a loaded node.
	PodCheckGrace time.Duration

	// Policy tunes cloud calls (concurrency cap, backoff, circuit breaker).
	Policy providers.PolicyConfig
	Logger *slog.Logger
}

// DefaultMetricsAddr is where /metrics listens unless told otherwise: loopback only.
const DefaultMetricsAddr = "127.0.0.1:61678"

// EnvCloudToken is the environment variable ipamd takes a cloud token from (outside a node; on
// a node the metadata service gives the instance's). --cloud-token-file is the other way.
const EnvCloudToken = "FLATNET_CLOUD_TOKEN"

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Cloud: "fakecloud", MetadataURL: "http://169.254.169.254", StateDir: "/var/lib/flatnet/ipamd",
		SocketPath: wire.DefaultSocket, SpoolDir: wire.DefaultSpoolDir,
		IntrospectAddr: "127.0.0.1:61679", MetricsAddr: DefaultMetricsAddr, StateSync: 100 * time.Millisecond,
		Pool: pool.DefaultConfig(pool.ModeIP), Cooldown: 30 * time.Second, AllocWait: 10 * time.Second,
		Coalesce: 2 * time.Millisecond, DemandWindow: 30 * time.Second, ResyncInterval: time.Minute,
		VisibilityGrace: 10 * time.Second, Datapath: true, FastPath: nodenet.FastPathAuto, MTU: 9001, TableBase: nodenet.DefaultTableBase,
		PodCheck: "link", PodCheckGrace: time.Minute,
	}
}

// Validate refuses settings that cannot work, saying why. Checks that need the instance type
// run again once it is known.
func (c Config) Validate() error {
	var errs []error
	if err := c.Pool.Validate(pool.Limits{}); err != nil {
		errs = append(errs, err)
	}
	for name, d := range map[string]time.Duration{"alloc-wait": c.AllocWait, "resync-interval": c.ResyncInterval, "demand-window": c.DemandWindow} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v must be positive", name, d))
		}
	}
	if c.Cooldown < 0 || c.Coalesce < 0 || c.VisibilityGrace < 0 || c.PodCheckGrace < 0 || c.StateSync < 0 {
		errs = append(errs, errors.New("cooldown, coalesce, visibility-grace, pod-check-grace and state-sync may not be negative"))
	}
	switch c.FastPath {
	case nodenet.FastPathOn, nodenet.FastPathAuto, nodenet.FastPathOff, "":
	default:
		errs = append(errs, fmt.Errorf("fast-path %q is not one of on, auto, off", c.FastPath))
	}
	if c.StateDir == "" || c.SocketPath == "" || c.SpoolDir == "" {
		errs = append(errs, errors.New("state-dir, socket and spool-dir may not be empty"))
	}
	if c.PodCheck != "link" && c.PodCheck != "none" {
		errs = append(errs, fmt.Errorf("pod-check %q is unknown: use link or none", c.PodCheck))
	}
	if c.MTU < 576 || c.MTU > 9216 {
		errs = append(errs, fmt.Errorf("mtu %d is outside 576..9216", c.MTU))
	}
	return errors.Join(errs...)
}

// Flags registers every setting on fs. The function it returns gives the Config they make, once
// fs is parsed; it fails when flags contradict each other. The result does not depend on the
// flags' order: --mode (or --prefix-mode) picks the mode's pool defaults, and the pool flags
// given on the command line override them whether they come before or after it.
func Flags(fs *flag.FlagSet) func() (Config, error) {
	c := DefaultConfig()
	c.CloudToken = os.Getenv(EnvCloudToken)
	var mode, prefixMode string
	fs.StringVar(&c.Cloud, "cloud", c.Cloud, "cloud driver")
	fs.StringVar(&c.InstanceID, "instance-id", "", "this node's instance ID (default: from the metadata service)")
	fs.StringVar(&c.CloudEndpoint, "cloud-endpoint", "", "cloud API endpoint (default: from the metadata service)")
	fs.Func("cloud-token-file", "file holding the cloud API token (default $"+EnvCloudToken+", then the metadata service's instance token)", func(path string) error {
		tok, err := readSecretFile(path)
		c.CloudToken = tok
		return err
	})
	removedFlag(fs, "cloud-token", "a token on the command line is visible to every user of the node in /proc/<pid>/cmdline: use --cloud-token-file or $"+EnvCloudToken)
	fs.StringVar(&c.CloudRegion, "cloud-region", "", "cloud region, for clouds that have them (aws: default $AWS_REGION, then the metadata service's)")
	fs.StringVar(&c.MetadataURL, "metadata-url", c.MetadataURL, "instance metadata service")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "datastore directory")
	fs.DurationVar(&c.StateSync, "state-sync", c.StateSync,
		"longest time a written datastore record waits for its fdatasync (0: sync every record before answering; kill -9 loses nothing either way, a machine crash at most this much)")
	fs.StringVar(&c.SocketPath, "socket", c.SocketPath, "unix socket for the CNI plugin")
	fs.StringVar(&c.SpoolDir, "spool-dir", c.SpoolDir, "directory of releases the plugin spooled")
	fs.StringVar(&c.CNIConfDir, "cni-conf-dir", "", "write the CNI conflist here once ipamd serves (empty: the operator installs it)")
	fs.StringVar(&c.CNILogFile, "cni-log-file", "", "the plugin's log file, written into the conflist")
	fs.StringVar(&c.IntrospectAddr, "introspect-addr", c.IntrospectAddr, "introspection and health listen address (empty: off)")
	fs.StringVar(&c.IntrospectAddr, "introspection-addr", c.IntrospectAddr, "alias of -introspect-addr")
	fs.StringVar(&c.MetricsAddr, "metrics-bind-address", c.MetricsAddr, "Prometheus metrics listen address (empty: off; the default is loopback only)")
	removedFlag(fs, "metrics-addr", "it is --metrics-bind-address, as in flatnet-lbcontroller")
	fs.Func("mode", "ip (secondary addresses) or prefix (/28 prefixes) (default ip)", func(s string) error {
		mode = s
		return nil
	})
	fs.BoolFunc("prefix-mode", "alias of -mode=prefix", func(v string) error {
		if on, err := strconv.ParseBool(v); err != nil || on {
			prefixMode = v
		}
		return nil
	})
	fs.IntVar(&c.Pool.WarmLow, "warm-low", c.Pool.WarmLow, "grow when fewer free addresses than this (default 3 ip, 8 prefix)")
	fs.IntVar(&c.Pool.WarmHigh, "warm-high", c.Pool.WarmHigh, "after idle, give back free addresses above this (default 10 ip, 24 prefix)")
	fs.IntVar(&c.Pool.MaxBatch, "max-batch", c.Pool.MaxBatch, "cap on the speculative part of one growth step")
	fs.DurationVar(&c.Pool.IdleRelease, "idle-release", c.Pool.IdleRelease, "idle time before excess is given back")
	fs.IntVar(&c.Pool.MaxAddresses, "max-addresses", 0, "cap on addresses held (0: the instance type's limit)")
	fs.IntVar(&c.Pool.MaxInterfaces, "max-interfaces", 0, "cap on interfaces used, primary included (0: the instance type's limit)")
	fs.DurationVar(&c.Cooldown, "cooldown", c.Cooldown, "time a released address rests before reuse")
	fs.DurationVar(&c.AllocWait, "alloc-wait", c.AllocWait, "how long an allocation waits for the pool before try-again")
	fs.DurationVar(&c.Coalesce, "coalesce", c.Coalesce, "window in which concurrent misses join one cloud call")
	fs.DurationVar(&c.DemandWindow, "demand-window", c.DemandWindow, "span of recent allocations that scales the batch")
	fs.DurationVar(&c.ResyncInterval, "resync-interval", c.ResyncInterval, "interval between resyncs with the cloud")
	fs.DurationVar(&c.VisibilityGrace, "visibility-grace", c.VisibilityGrace, "age below which a record the cloud does not show yet is kept")
	fs.StringVar(&c.SubnetID, "subnet-id", "", "subnet for new interfaces (default: the primary interface's)")
	fs.Func("security-groups", "comma-separated security groups for new interfaces (default: the primary interface's)", func(s string) error {
		c.SecurityGroups = strings.Split(s, ",")
		return nil
	})
	fs.BoolVar(&c.Datapath, "datapath", c.Datapath, "program the node's interfaces, routes, rules and SNAT")
	fs.StringVar(&c.FastPath, "fast-path", c.FastPath,
		"forward pod traffic inside the VPC with the BPF fast path: on, auto (where the kernel supports it), off (the kernel's IP forwarding only)")
	fs.IntVar(&c.MTU, "mtu", c.MTU, "MTU of cloud interfaces and pods")
	fs.IntVar(&c.TableBase, "table-base", c.TableBase, "secondary interface N uses route table table-base+N")
	fs.BoolVar(&c.ExternalSNAT, "external-snat", false, "do not SNAT pod traffic leaving the VPC (an external NAT does)")
	fs.Func("snat-exclusions", "comma-separated CIDRs pods reach without SNAT", func(s string) error {
		for _, x := range strings.Split(s, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(x))
			if err != nil {
				return err
			}
			c.SNATExclusions = append(c.SNATExclusions, p)
		}
		return nil
	})
	fs.StringVar(&c.PodCheck, "pod-check", c.PodCheck, "how start-up judges that a pod still exists: link or none")
	fs.DurationVar(&c.PodCheckGrace, "pod-check-grace", c.PodCheckGrace,
		"age below which the pod check does not judge an allocation yet (the plugin may still be wiring it); keep it above the plugin's timeoutSeconds plus a margin")
	fs.IntVar(&c.Policy.MaxConcurrent, "cloud-max-concurrent", 4, "cloud calls in flight at most")
	return func() (Config, error) {
		out := c
		switch {
		case prefixMode != "" && mode != "" && pool.Mode(mode) != pool.ModePrefix:
			return out, fmt.Errorf("--prefix-mode and --mode=%s disagree: give one of them", mode)
		case prefixMode != "":
			mode = string(pool.ModePrefix)
		case mode == "":
			mode = string(c.Pool.Mode)
		}
		// The mode's defaults, then what the command line set, in whatever order it came.
		out.Pool = pool.DefaultConfig(pool.Mode(mode))
		out.Pool.MaxBatch, out.Pool.IdleRelease, out.Pool.MaxAddresses, out.Pool.MaxInterfaces = c.Pool.MaxBatch, c.Pool.IdleRelease, c.Pool.MaxAddresses, c.Pool.MaxInterfaces
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "warm-low":
				out.Pool.WarmLow = c.Pool.WarmLow
			case "warm-high":
				out.Pool.WarmHigh = c.Pool.WarmHigh
			}
		})
		return out, nil
	}
}

// removedFlag registers a flag that is gone: giving it fails, saying why and what replaces it.
func removedFlag(fs *flag.FlagSet, name, why string) {
	fs.Func(name, "removed: "+why, func(string) error {
		return fmt.Errorf("--%s is removed: %s", name, why)
	})
}

// readSecretFile reads a token from a file: surrounding white space goes, an empty file fails.
func readSecretFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the token file: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}
