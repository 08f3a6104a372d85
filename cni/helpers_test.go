package cni_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// nodeIP is the address the test gives its node netns, for pods to reach.
const nodeIP = "10.0.0.10"

var (
	binDir     string // plugin dir: flatnet-built-for-tests and reference plugins
	buildMu    sync.Mutex
	builtNames = map[string]error{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flatnet-cni-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create the plugin dir:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// requirePrivileges fails (never skips) with what is missing: root and the ping command.
func requirePrivileges(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test creates network namespaces and veths: run it as root (sudo -E go test ./cni/ or sudo -E make test)")
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Fatal("this test needs ping: apt-get install iputils-ping")
	}
}

// pluginPath builds flatnet (with the failure-injection hook: -tags flatnetfaults) into the
// plugin dir once per test binary and returns the dir.
func pluginPath(t testing.TB) string {
	t.Helper()
	buildOnce(t, "flatnet", func() error {
		out, err := staticBuild(exec.Command("go", "build", "-tags", "flatnetfaults", "-o", filepath.Join(binDir, "flatnet"),
			"github.com/flatnet/flatnet/cmd/flatnet-cni")).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build flatnet-cni: %w\n%s", err, out)
		}
		return nil
	})
	return binDir
}

// staticBuild makes cmd build a static binary, as the plugins ship (runtimes exec them on hosts
// of any libc); containernetworking/plugins' own release build does the same.
func staticBuild(cmd *exec.Cmd) *exec.Cmd {
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}

// releasePlugin builds the release binary (no fault hook) as flatnet into dir.
func releasePlugin(t testing.TB, dir string) {
	t.Helper()
	out, err := staticBuild(exec.Command("go", "build", "-o", filepath.Join(dir, "flatnet"), "github.com/flatnet/flatnet/cmd/flatnet-cni")).CombinedOutput()
	if err != nil {
		t.Fatalf("go build flatnet-cni: %v\n%s", err, out)
	}
}

// referencePlugins builds containernetworking/plugins binaries at the version go.mod pins, in
// that module's own directory (its go.mod has their dependencies), into the plugin dir.
func referencePlugins(t testing.TB, pkgs ...string) {
	t.Helper()
	for _, pkg := range pkgs {
		buildOnce(t, pkg, func() error {
			modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/containernetworking/plugins").Output()
			if err != nil {
				return fmt.Errorf("find containernetworking/plugins in the module cache: %w", err)
			}
			if strings.TrimSpace(string(modDir)) == "" {
				return errors.New("containernetworking/plugins is not in the module cache: go mod download github.com/containernetworking/plugins")
			}
			cmd := staticBuild(exec.Command("go", "build", "-o", binDir+"/", "./plugins/"+pkg))
			cmd.Dir = strings.TrimSpace(string(modDir))
			cmd.Env = append(cmd.Env, "GOFLAGS=-mod=mod", "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("build reference plugin %s (needs the module proxy or a warm module cache): %w\n%s", pkg, err, out)
			}
			return nil
		})
	}
}

func buildOnce(t testing.TB, name string, build func() error) {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	err, done := builtNames[name]
	if !done {
		err = build()
		builtNames[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
}

// node is a "node" netns with a fake ipamd: the plugin's host side. The root netns is never touched.
type node struct {
	ns     ns.NetNS
	ipamd  *fakeIpamd
	spool  string
	log    string
	cni    *libcni.CNIConfig
	cache  string
	socket string
}

func newNode(t testing.TB, firstIP string) *node {
	t.Helper()
	requirePrivileges(t)
	nodeNS := newNetNS(t)
	err := nodeNS.Do(func(ns.NetNS) error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		// The node's own address sits on lo (some CI kernels lack the dummy module).
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: mustCIDR(nodeIP + "/32")}); err != nil {
			return err
		}
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
	if err != nil {
		t.Fatalf("set up the node netns: %v", err)
	}
	f := newFakeIpamd(t, firstIP)
	dir := t.TempDir()
	n := &node{ns: nodeNS, ipamd: f, spool: filepath.Join(dir, "spool"), log: filepath.Join(dir, "flatnet.log"),
		cache: filepath.Join(dir, "cache"), socket: f.path}
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{pluginPath(t)}, n.cache, nil)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(n.log); err == nil {
				t.Logf("plugin log:\n%s", b)
			}
		}
	})
	return n
}

// newNetNS creates a named netns and removes it in Cleanup, even when the test fails.
func newNetNS(t testing.TB) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create a netns: %v", err)
	}
	t.Cleanup(func() {
		_ = n.Close()
		_ = testutils.UnmountNS(n)
	})
	return n
}

func mustCIDR(s string) *net.IPNet {
	ip, ipn, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	ipn.IP = ip
	return ipn
}

// conflist writes a conflist to disk, as a runtime finds it, and loads it with libcni.
func (n *node) conflist(t testing.TB, version, name string, extra ...map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	plugins := []map[string]any{{
		"type": "flatnet", "ipamdSocket": n.socket, "spoolDir": n.spool, "logFile": n.log, "timeoutSeconds": 5,
	}}
	plugins = append(plugins, extra...)
	body, err := json.Marshal(map[string]any{"cniVersion": version, "name": name, "plugins": plugins})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "10-"+name+".conflist")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromFile(path)
	if err != nil {
		t.Fatalf("libcni cannot load %s: %v", path, err)
	}
	return list
}

// in runs fn in the node netns: libcni then executes the plugin there, as a runtime on a node would.
func (n *node) in(t testing.TB, fn func() error) error {
	t.Helper()
	return n.ns.Do(func(ns.NetNS) error { return fn() })
}

type pod struct {
	ns ns.NetNS
	rt *libcni.RuntimeConf
}

func (n *node) newPod(t testing.TB, id string) *pod {
	t.Helper()
	p := newNetNS(t)
	return &pod{ns: p, rt: &libcni.RuntimeConf{ContainerID: id, NetNS: p.Path(), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", id}}}}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func (n *node) add(t testing.TB, list *libcni.NetworkConfigList, p *pod) (types.Result, error) {
	t.Helper()
	var res types.Result
	err := n.in(t, func() error {
		var err error
		res, err = n.cni.AddNetworkList(ctx(t), list, p.rt)
		return err
	})
	return res, err
}

func (n *node) mustAdd(t testing.TB, list *libcni.NetworkConfigList, p *pod) types.Result {
	t.Helper()
	res, err := n.add(t, list, p)
	if err != nil {
		t.Fatalf("ADD %s: %v", p.rt.ContainerID, err)
	}
	return res
}

func (n *node) del(t testing.TB, list *libcni.NetworkConfigList, p *pod) error {
	t.Helper()
	return n.in(t, func() error { return n.cni.DelNetworkList(ctx(t), list, p.rt) })
}

func (n *node) check(t testing.TB, list *libcni.NetworkConfigList, p *pod) error {
	t.Helper()
	return n.in(t, func() error { return n.cni.CheckNetworkList(ctx(t), list, p.rt) })
}

// cniCode is the CNI error code of err, or 0 when err is not a plugin's error.
func cniCode(err error) uint {
	var te *types.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// ping sends one echo request from the netns to ip and waits up to 2s for the answer.
func ping(t testing.TB, from ns.NetNS, ip string) error {
	t.Helper()
	return from.Do(func(ns.NetNS) error {
		out, err := exec.Command("ping", "-c", "1", "-W", "2", ip).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ping %s: %w\n%s", ip, err, out)
		}
		return nil
	})
}

// leftovers describes every flatnet link, policy rule at flatnet's priorities and neighbour entry
// of a pod address left in the node netns; empty means clean.
func (n *node) leftovers(t testing.TB, ips ...string) []string {
	t.Helper()
	var out []string
	err := n.in(t, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, "fln") {
				out = append(out, "link "+l.Attrs().Name+" ("+l.Attrs().Alias+")")
			}
		}
		rules, err := netlink.RuleList(netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if r.Priority == wire.PriorityToPod || r.Priority == wire.PriorityFromPod {
				out = append(out, "rule "+r.String())
			}
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		neighs, err := netlink.NeighList(0, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, ip := range ips {
			for _, r := range routes {
				if r.Dst != nil && r.Dst.IP.String() == ip {
					out = append(out, "route "+r.String())
				}
			}
			for _, nb := range neighs {
				if nb.IP.String() == ip {
					out = append(out, "neighbour "+nb.String())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list the node netns: %v", err)
	}
	return out
}

func (n *node) requireClean(t testing.TB, ips ...string) {
	t.Helper()
	if left := n.leftovers(t, ips...); len(left) > 0 {
		t.Fatalf("left behind in the node netns:\n\t%s", strings.Join(left, "\n\t"))
	}
	if a := n.ipamd.allocations(); len(a) > 0 {
		t.Fatalf("left allocated in ipamd: %v", a)
	}
}
