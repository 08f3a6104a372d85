package lab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/internal/netns"
)

// binDir holds the binaries the lab runs, built once for the package's tests.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the lab tests need root: they create network namespaces (run make test as root)")
		return 1
	}
	dir, err := os.MkdirTemp("", "flatnet-lab-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, cmd := range []string{"fakecloud", "flatnet-ipamd", "flatnet-cni", "flatnet-lab", NodeAgentBinary, LBControllerBinary} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "github.com/flatnet/flatnet/cmd/"+cmd)
		build.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as the plugin ships
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", cmd, err)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

// rootNetState is what the lab must never change in the root namespace.
type rootNetState struct {
	Links  []string
	Addrs  []string
	Routes []string
	Rules  []string
}

func readRootNet(t *testing.T) rootNetState {
	t.Helper()
	var s rootNetState
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list root links: %v", err)
	}
	for _, l := range links {
		s.Links = append(s.Links, l.Attrs().Name)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("list root addresses: %v", err)
	}
	for _, a := range addrs {
		s.Addrs = append(s.Addrs, fmt.Sprintf("%d %s", a.LinkIndex, a.IPNet))
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("list root routes: %v", err)
	}
	for _, r := range routes {
		s.Routes = append(s.Routes, fmt.Sprintf("table %d dst %v gw %v dev %d", r.Table, r.Dst, r.Gw, r.LinkIndex))
	}
	rules, err := netlink.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("list root rules: %v", err)
	}
	for _, r := range rules {
		s.Rules = append(s.Rules, r.String())
	}
	for _, l := range [][]string{s.Links, s.Addrs, s.Routes, s.Rules} {
		slices.Sort(l)
	}
	return s
}

// guardRootNet fails the test if the root namespace's links, addresses, routes or rules differ
// at the end from what they were at the start.
func guardRootNet(t *testing.T) {
	before := readRootNet(t)
	t.Cleanup(func() {
		if diff := cmp.Diff(before, readRootNet(t)); diff != "" {
			t.Errorf("the lab changed the root network namespace (-before +after):\n%s", diff)
		}
	})
}

// testConfig is a lab config of its own for one test: its directory, a namespace prefix unique
// to this test process (so that two runs of the suite on one machine never remove each other's
// namespaces) and a free loopback port (the port argument is only a preference).
// testConfig is a lab configuration for one test. FLATNET_LAB_CLOUD=aws-api runs the whole
// suite with ipamd and lbcontroller on the AWS driver against fakecloud's EC2/ELBv2 endpoint
// (`make test-lab-aws`); tests that set Cloud themselves keep theirs.
func testConfig(t *testing.T, prefix string, port int) Config {
	return Config{
		Dir: filepath.Join(t.TempDir(), "lab"), Prefix: fmt.Sprintf("%s%x-", strings.TrimSuffix(prefix, "-"), os.Getpid()&0xffff),
		BinDir: binDir, Listen: freeAddr(t, port), Log: testWriter{t}, Cloud: os.Getenv("FLATNET_LAB_CLOUD"),
	}
}

func freeAddr(t *testing.T, prefer int) string {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", prefer))
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// leftovers lists what a lab with prefix left behind: namespaces and processes.
func leftovers(t *testing.T, prefix, dir string) []string {
	t.Helper()
	var out []string
	names, err := netns.List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, names...)
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		cmdline, err := os.ReadFile("/proc/" + p.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), dir) && p.Name() != fmt.Sprint(os.Getpid()) {
			out = append(out, "process "+p.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}
