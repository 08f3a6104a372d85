package fabric

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// dockerNet stands in for a container runtime's bridge network ("docker0" in a namespace of its
// own, 172.18.0.1/16), and run for the containers it starts: a process born in a network
// namespace of its own, as runc starts one, so the namespace is reachable only as
// /proc/<pid>/ns/net; its lo is up, its eth0 is a veth on the bridge with 172.18.0.<n>/16, and
// its default route goes through the bridge. Everything is removed in t.Cleanup, failed or not.
type dockerNet struct {
	ns   string
	h    *netlink.Handle
	next int
}

const dockerGateway = "172.18.0.1"

func newDockerNet(t *testing.T) *dockerNet {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	// Not under the lab's prefix: Down must not find it, and the lab's teardown checks that
	// nothing of its prefix is left.
	name := "fcd" + hex.EncodeToString(b) + "-docker"
	if err := netns.Create(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netns.Delete(name); err != nil {
			t.Errorf("remove the docker bridge namespace: %v", err)
		}
	})
	h := nodeHandle(t, name)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	must0(t, h.LinkSetUp(lo))
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "docker0"}}
	must0(t, h.LinkAdd(br))
	brl, err := h.LinkByName("docker0")
	if err != nil {
		t.Fatal(err)
	}
	must0(t, h.AddrAdd(brl, &netlink.Addr{IPNet: prefixNet(netip.MustParsePrefix(dockerGateway + "/16"))}))
	must0(t, h.LinkSetUp(brl))
	return &dockerNet{ns: name, h: h, next: 2}
}

func must0(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// container is a process in a network namespace the fabric does not own.
type container struct {
	cmd   *exec.Cmd
	netns string       // /proc/<pid>/ns/net
	addr  netip.Prefix // eth0's, on the bridge
	h     *netlink.Handle
}

func (c *container) pid() int { return c.cmd.Process.Pid }

// run starts a container on the bridge.
func (d *dockerNet) run(t *testing.T) *container {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("the test's containers are sleep processes: %v", err)
	}
	cmd := exec.Command(sleep, "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a process in a new network namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := &container{cmd: cmd, netns: fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)}
	c.h = pathHandle(t, c.netns)
	lo, err := c.h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	must0(t, c.h.LinkSetUp(lo))

	n := d.next
	d.next++
	fd, err := unix.Open(c.netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	host := "veth" + strconv.Itoa(n)
	must0(t, d.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: "eth0", PeerNamespace: netlink.NsFd(fd)}))
	hl, err := d.h.LinkByName(host)
	if err != nil {
		t.Fatal(err)
	}
	br, err := d.h.LinkByName("docker0")
	if err != nil {
		t.Fatal(err)
	}
	must0(t, d.h.LinkSetMaster(hl, br))
	must0(t, d.h.LinkSetUp(hl))
	eth0, err := c.h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 18, 0, byte(n)}), 16)
	must0(t, c.h.AddrAdd(eth0, &netlink.Addr{IPNet: prefixNet(c.addr)}))
	must0(t, c.h.LinkSetUp(eth0))
	def := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP(dockerGateway),
		Dst: prefixNet(netip.MustParsePrefix("0.0.0.0/0"))}
	must0(t, c.h.RouteAdd(def))
	return c
}

// alive reports whether the container's process still runs.
func (c *container) alive() bool { return c.cmd.Process.Signal(syscall.Signal(0)) == nil }

// pathHandle is a netlink handle inside the namespace at path.
func pathHandle(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	nsh, err := vnetns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// nsState is what a namespace holds, for comparing before and after: links (index, name, MAC,
// up or down), addresses, main-table routes and rules. With ownOnly, only what is not on a link
// of the fabric's (a link carrying its alias) counts: what the namespace's owner made.
func nsState(t *testing.T, h *netlink.Handle, ownOnly bool) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	skip := map[int]bool{}
	for _, l := range links {
		a := l.Attrs()
		if _, _, _, _, ok := parseAlias(a.Alias); ok && ownOnly {
			skip[a.Index] = true
			continue
		}
		out = append(out, fmt.Sprintf("link %d %s %s %s", a.Index, a.Name, a.HardwareAddr, a.Flags&net.FlagUp))
		addrs, err := h.AddrList(l, unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		for _, ad := range addrs {
			out = append(out, fmt.Sprintf("addr %s %s", a.Name, ad.IPNet))
		}
	}
	routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if !skip[r.LinkIndex] {
			out = append(out, "route "+r.String())
		}
	}
	rules, err := h.RuleList(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		out = append(out, "rule "+r.String())
	}
	slices.Sort(out)
	return out
}

// nsInode is the identity of the namespace at path (which must exist).
func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
