package cni_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/cni"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// Acceptance 1 and 2: two pods on one node through libcni with a conflist on disk, for every
// cniVersion flatnet speaks. The second pod's address sits on a "secondary interface" (route
// table 2), so its policy rules are exercised too.
func TestPodLifecycle(t *testing.T) {
	for _, version := range []string{"1.1.0", "1.0.0", "0.4.0", "0.3.1"} {
		t.Run(version, func(t *testing.T) { testPodLifecycle(t, version) })
	}
}

func testPodLifecycle(t *testing.T, version string) {
	n := newNode(t, "10.0.1.10")
	n.ipamd.set(func(f *fakeIpamd) {
		f.tableFor = func(ip netip.Addr) int { return map[bool]int{true: 2}[ip.As4()[3]%2 == 1] }
	})
	list := n.conflist(t, version, "flatnet")
	a, b := n.newPod(t, "pod-a"), n.newPod(t, "pod-b")
	resA, resB := n.mustAdd(t, list, a), n.mustAdd(t, list, b)
	ipA, ipB := resultIP(t, resA, version), resultIP(t, resB, version)
	if ipA == ipB {
		t.Fatalf("both pods got %s", ipA)
	}
	requireResultShape(t, resA, version, a)

	for _, c := range []struct {
		from ns.NetNS
		to   string
	}{{a.ns, ipB}, {b.ns, ipA}, {a.ns, nodeIP}, {b.ns, nodeIP}, {n.ns, ipA}, {n.ns, ipB}} {
		if err := ping(t, c.from, c.to); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.ipamd.allocations()[wire.Owner{Network: "flatnet", ContainerID: "pod-a", IfName: "eth0"}].Pod; got.Name != "pod-a" || got.Namespace != "default" {
		t.Errorf("ipamd was told pod %+v, want default/pod-a from CNI_ARGS", got)
	}

	// ADD again: the same answer, nothing duplicated.
	again := n.mustAdd(t, list, a)
	if ip := resultIP(t, again, version); ip != ipA {
		t.Fatalf("repeated ADD gave %s, first %s", ip, ipA)
	}

	if version != "0.3.1" {
		checkThenBreak(t, n, list, b, ipB)
	}

	if err := n.del(t, list, a); err != nil {
		t.Fatalf("DEL pod-a: %v", err)
	}
	if err := n.del(t, list, a); err != nil {
		t.Fatalf("second DEL pod-a: %v", err)
	}
	// A DEL whose CNI_NETNS outlived its namespace (a bind-mount file left unmounted).
	stale := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	staleRT := *a.rt
	staleRT.NetNS = stale
	if err := n.del(t, list, &pod{ns: a.ns, rt: &staleRT}); err != nil {
		t.Fatalf("DEL with a CNI_NETNS that is no namespace: %v", err)
	}
	// A DEL after the sandbox's netns is gone (kernel removed the veth pair).
	_ = b.ns.Close()
	if err := testutils.UnmountNS(b.ns); err != nil {
		t.Fatal(err)
	}
	if err := n.del(t, list, b); err != nil {
		t.Fatalf("DEL pod-b with its netns gone: %v", err)
	}
	n.requireClean(t, ipA, ipB)
}

// checkThenBreak: CHECK passes, then fails naming the host route the test deleted.
func checkThenBreak(t *testing.T, n *node, list *libcni.NetworkConfigList, p *pod, ip string) {
	t.Helper()
	if err := n.check(t, list, p); err != nil {
		t.Fatalf("CHECK of a healthy pod: %v", err)
	}
	err := n.in(t, func() error {
		return netlink.RouteDel(&netlink.Route{Dst: mustCIDR(ip + "/32"), Scope: netlink.SCOPE_LINK})
	})
	if err != nil {
		t.Fatalf("delete the pod's host route: %v", err)
	}
	err = n.check(t, list, p)
	if cniCode(err) != cni.ErrCheckFailed || !strings.Contains(err.Error(), "host route "+ip+"/32 dev fln") || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("CHECK after deleting the route: got %v, want code %d naming the missing host route", err, cni.ErrCheckFailed)
	}
}

func resultIP(t *testing.T, res types.Result, version string) string {
	t.Helper()
	if res.Version() != version {
		t.Fatalf("result is of version %s, want %s", res.Version(), version)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 1 {
		t.Fatalf("result has %d IPs, want 1: %v", len(r.IPs), r)
	}
	return r.IPs[0].Address.IP.String()
}

func requireResultShape(t *testing.T, res types.Result, version string, p *pod) {
	t.Helper()
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Interfaces) != 2 || !strings.HasPrefix(r.Interfaces[0].Name, "fln") || r.Interfaces[0].Sandbox != "" ||
		r.Interfaces[1].Name != "eth0" || r.Interfaces[1].Sandbox != p.ns.Path() || r.Interfaces[1].Mac == "" {
		t.Fatalf("interfaces: %v", r.Interfaces)
	}
	if ip := r.IPs[0]; ip.Interface == nil || *ip.Interface != 1 || ip.Gateway.String() != "169.254.1.1" {
		t.Fatalf("ip config: %v", ip)
	}
	if ones, _ := r.IPs[0].Address.Mask.Size(); ones != 32 {
		t.Fatalf("address %s is not a /32", &r.IPs[0].Address)
	}
	if len(r.Routes) != 1 || r.Routes[0].Dst.String() != "0.0.0.0/0" || r.Routes[0].GW.String() != "169.254.1.1" {
		t.Fatalf("routes: %v", r.Routes)
	}
	_ = version
}

// Acceptance 1: GC removes what is not valid and keeps what is. pod-c was added through a
// runtime whose cache GC does not see, so only the plugin's own GC can find it.
func TestGC(t *testing.T) {
	n := newNode(t, "10.0.2.10")
	list := n.conflist(t, "1.1.0", "flatnet")
	a, b, c := n.newPod(t, "pod-a"), n.newPod(t, "pod-b"), n.newPod(t, "pod-c")
	ipA := resultIP(t, n.mustAdd(t, list, a), "1.1.0")
	ipB := resultIP(t, n.mustAdd(t, list, b), "1.1.0")
	other := libcni.NewCNIConfigWithCacheDir([]string{pluginPath(t)}, t.TempDir(), nil)
	var resC types.Result
	if err := n.in(t, func() (err error) { resC, err = other.AddNetworkList(ctx(t), list, c.rt); return err }); err != nil {
		t.Fatal(err)
	}
	ipC := resultIP(t, resC, "1.1.0")
	// Another network's link must survive this network's GC.
	otherList := n.conflist(t, "1.1.0", "othernet")
	d := n.newPod(t, "pod-d")
	n.mustAdd(t, otherList, d)

	// An orphan rule of the plugin's (its pod's link is gone) goes; rules at the same priorities
	// that are not the plugin's stay, even for a /32 no pod routes: a foreign one, and ipamd's
	// rule for a secondary interface's own address (protocol 70, priority 1536).
	orphan, foreign, ipamdRule := netlink.NewRule(), netlink.NewRule(), netlink.NewRule()
	orphan.Priority, orphan.Dst, orphan.Table, orphan.Protocol = wire.PriorityToPod, mustCIDR("10.0.2.99/32"), 254, wire.RuleProtocol
	foreign.Priority, foreign.Dst, foreign.Table = wire.PriorityToPod, mustCIDR("192.168.0.0/24"), 254
	ipamdRule.Priority, ipamdRule.Src, ipamdRule.Table, ipamdRule.Protocol = wire.PriorityFromPod, mustCIDR("10.0.2.98/32"), 101, 70
	if err := n.in(t, func() error {
		return errors.Join(netlink.RuleAdd(orphan), netlink.RuleAdd(foreign), netlink.RuleAdd(ipamdRule))
	}); err != nil {
		t.Fatal(err)
	}

	valid := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: "pod-a", IfName: "eth0"}}}
	if err := n.in(t, func() error { return n.cni.GCNetworkList(ctx(t), list, valid) }); err != nil {
		t.Fatalf("GC: %v", err)
	}
	var rules []string
	_ = n.in(t, func() error {
		rs, err := netlink.RuleList(netlink.FAMILY_V4)
		for _, r := range rs {
			if r.Priority == wire.PriorityToPod {
				rules = append(rules, r.Dst.String())
			}
		}
		return err
	})
	if strings.Join(rules, ",") != "192.168.0.0/24" {
		t.Fatalf("after GC the rules at priority %d are %v, want only the foreign /24", wire.PriorityToPod, rules)
	}
	var kept bool
	_ = n.in(t, func() error {
		rs, err := netlink.RuleList(netlink.FAMILY_V4)
		for _, r := range rs {
			kept = kept || (r.Priority == wire.PriorityFromPod && r.Src != nil && r.Src.String() == "10.0.2.98/32")
		}
		return err
	})
	if !kept {
		t.Fatal("GC deleted ipamd's interface rule (protocol 70), which is not the plugin's")
	}
	_ = n.in(t, func() error { return errors.Join(netlink.RuleDel(foreign), netlink.RuleDel(ipamdRule)) })
	allocs := n.ipamd.allocations()
	if len(allocs) != 2 || allocs[wire.Owner{Network: "flatnet", ContainerID: "pod-a", IfName: "eth0"}].IP.String() != ipA ||
		allocs[wire.Owner{Network: "othernet", ContainerID: "pod-d", IfName: "eth0"}].IP.String() == "" {
		t.Fatalf("after GC ipamd holds %v, want pod-a's %s and othernet's pod-d", allocs, ipA)
	}
	if err := ping(t, a.ns, nodeIP); err != nil {
		t.Fatalf("the valid pod lost its network: %v", err)
	}
	left := n.leftovers(t, ipB, ipC)
	if len(left) != 2 { // pod-a's and pod-d's links
		t.Fatalf("after GC the node has %v, want only pod-a's and pod-d's links", left)
	}
	if err := n.check(t, list, a); err != nil {
		t.Fatalf("CHECK of the valid pod after GC: %v", err)
	}
}

// STATUS: ready, then ipamd's own 51 with its reason, then ipamd gone (50).
func TestStatus(t *testing.T) {
	n := newNode(t, "10.0.3.10")
	list := n.conflist(t, "1.1.0", "flatnet")
	status := func() error { return n.in(t, func() error { return n.cni.GetStatusNetworkList(ctx(t), list) }) }
	if err := status(); err != nil {
		t.Fatalf("STATUS with a ready ipamd: %v", err)
	}
	n.ipamd.set(func(f *fakeIpamd) {
		f.status = wire.StatusResponse{Ready: false, Code: 51, Reason: "pool empty and the node is at its limit"}
	})
	if err := status(); cniCode(err) != 51 || !strings.Contains(err.Error(), "pool empty") {
		t.Fatalf("STATUS with ipamd not ready: got %v, want code 51 with ipamd's reason", err)
	}
	n.ipamd.stop()
	if err := status(); cniCode(err) != 50 || !strings.Contains(err.Error(), "ipamd is not running at "+n.socket) {
		t.Fatalf("STATUS with ipamd down: got %v, want code 50 naming the socket", err)
	}
}

// DEL while ipamd is down removes the datapath and spools the release for ipamd to replay.
func TestDelSpoolsWhenIpamdDown(t *testing.T) {
	n := newNode(t, "10.0.4.10")
	list := n.conflist(t, "1.0.0", "flatnet")
	p := n.newPod(t, "pod-a")
	ip := resultIP(t, n.mustAdd(t, list, p), "1.0.0")
	n.ipamd.stop()
	if err := n.del(t, list, p); err != nil {
		t.Fatalf("DEL with ipamd down: %v", err)
	}
	if left := n.leftovers(t, ip); len(left) > 0 {
		t.Fatalf("DEL with ipamd down left %v", left)
	}
	owner := wire.Owner{Network: "flatnet", ContainerID: "pod-a", IfName: "eth0"}
	body, err := os.ReadFile(filepath.Join(n.spool, owner.Key()))
	if err != nil {
		t.Fatalf("no spooled release: %v", err)
	}
	var rel wire.ReleaseRequest
	if err := json.Unmarshal(body, &rel); err != nil || rel.Owner != owner {
		t.Fatalf("spool file holds %s (%v), want the release of %+v", body, err, owner)
	}
	entries, _ := os.ReadDir(n.spool)
	if len(entries) != 1 {
		t.Fatalf("spool dir holds %d files, want 1 (no temporary file left)", len(entries))
	}

	// The same attachment is added again once ipamd is back, before ipamd replayed the spool:
	// ipamd hands out the address it still holds, and the stale release must not take it away.
	n.ipamd.start()
	if again := resultIP(t, n.mustAdd(t, list, p), "1.0.0"); again != ip {
		t.Fatalf("re-ADD got %s, ipamd still held %s", again, ip)
	}
	if _, err := os.Stat(filepath.Join(n.spool, owner.Key())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the stale spooled release survived the re-ADD (%v)", err)
	}
}

// Chained: flatnet first, the reference tuning plugin after it (prevResult passes on).
func TestChainedWithTuning(t *testing.T) {
	n := newNode(t, "10.0.5.10")
	referencePlugins(t, "meta/tuning")
	for _, version := range []string{"1.0.0", "0.4.0"} {
		t.Run(version, func(t *testing.T) {
			list := n.conflist(t, version, "flatnet-chain", map[string]any{"type": "tuning", "sysctl": map[string]string{"net.core.somaxconn": "512"}})
			p := n.newPod(t, "chained")
			res := n.mustAdd(t, list, p)
			ip := resultIP(t, res, version)
			requireResultShape(t, res, version, p)
			var got []byte
			_ = p.ns.Do(func(ns.NetNS) error {
				got, _ = os.ReadFile("/proc/sys/net/core/somaxconn")
				return nil
			})
			if strings.TrimSpace(string(got)) != "512" {
				t.Fatalf("tuning did not run after flatnet: somaxconn is %q", got)
			}
			if err := ping(t, p.ns, nodeIP); err != nil {
				t.Fatal(err)
			}
			if err := n.check(t, list, p); err != nil {
				t.Fatalf("CHECK of the chain: %v", err)
			}
			if err := n.del(t, list, p); err != nil {
				t.Fatalf("DEL of the chain: %v", err)
			}
			n.requireClean(t, ip)
		})
	}
}
