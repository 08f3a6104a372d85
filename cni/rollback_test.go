package cni_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/cni"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// Acceptance 3: a failure at any step of ADD leaves no allocation, no link and no rule behind,
// and the next ADD of the same pod succeeds. Faults are injected through FLATNET_CNI_FAULT,
// which only the test build (-tags flatnetfaults) honours.
func TestAddRollsBack(t *testing.T) {
	for name, tc := range map[string]struct {
		fault  string           // FLATNET_CNI_FAULT
		ipamd  func(*fakeIpamd) // switch ipamd's failure on
		down   bool             // ipamd is not running
		code   uint
		inMsg  string
		spools bool // the release in the rollback cannot reach ipamd and is spooled
	}{
		"ipamd down":                 {down: true, code: 11, inMsg: "ipamd is not running at"},
		"ipamd try again":            {ipamd: func(f *fakeIpamd) { f.allocErr = &wire.Error{Code: wire.CodeTryAgain, Message: "pool empty"} }, code: 11, inMsg: "pool empty"},
		"node full":                  {ipamd: func(f *fakeIpamd) { f.allocErr = &wire.Error{Code: wire.CodeFull, Message: "10 of 10"} }, code: cni.ErrNodeFull, inMsg: "node is full"},
		"link creation":              {fault: "link", code: cni.ErrDatapath, inMsg: "step link"},
		"pod address":                {fault: "addr", code: cni.ErrDatapath, inMsg: "step addr"},
		"neighbour":                  {fault: "neigh", code: cni.ErrDatapath, inMsg: "step neigh"},
		"pod default route":          {fault: "default-route", code: cni.ErrDatapath, inMsg: "step default-route"},
		"host route":                 {fault: "route", code: cni.ErrDatapath, inMsg: "step route"},
		"policy rule":                {fault: "rule", code: cni.ErrDatapath, inMsg: "step rule"},
		"result":                     {fault: "result", code: cni.ErrDatapath, inMsg: "step result"},
		"host route, ipamd gone too": {fault: "route", ipamd: func(f *fakeIpamd) { f.hangUp = map[string]bool{wire.OpRelease: true} }, code: cni.ErrDatapath, spools: true},
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, "10.0.6.10")
			// Odd addresses sit on a secondary interface: the first pod's address has rules.
			n.ipamd.set(func(f *fakeIpamd) { f.tableFor = func(netip.Addr) int { return 3 } })
			list := n.conflist(t, "1.1.0", "flatnet")
			p := n.newPod(t, "pod-a")
			if tc.ipamd != nil {
				n.ipamd.set(tc.ipamd)
			}
			if tc.down {
				n.ipamd.stop()
			}
			t.Setenv(cni.FaultEnv, tc.fault)
			_, err := n.add(t, list, p)
			if cniCode(err) != tc.code || !strings.Contains(err.Error(), tc.inMsg) {
				t.Fatalf("ADD: got %v, want code %d mentioning %q", err, tc.code, tc.inMsg)
			}
			if tc.spools {
				n.ipamd.set(func(f *fakeIpamd) { f.hangUp = nil; f.allocs = map[wire.Owner]wire.Allocation{} })
				owner := wire.Owner{Network: "flatnet", ContainerID: "pod-a", IfName: "eth0"}
				if _, err := os.Stat(filepath.Join(n.spool, owner.Key())); err != nil {
					t.Fatalf("the rollback's release was not spooled: %v", err)
				}
			}
			n.requireClean(t, "10.0.6.10")
			requireNoPodLink(t, p)

			// Nothing left blocks the next ADD.
			t.Setenv(cni.FaultEnv, "")
			n.ipamd.set(func(f *fakeIpamd) { f.allocErr = nil })
			if !n.ipamd.listening() {
				n.ipamd.start()
			}
			n.mustAdd(t, list, p)
			if err := ping(t, p.ns, nodeIP); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func requireNoPodLink(t *testing.T, p *pod) {
	t.Helper()
	_ = p.ns.Do(func(ns.NetNS) error {
		if l, err := netlink.LinkByName("eth0"); err == nil {
			t.Fatalf("the pod still has %s (%s)", l.Attrs().Name, l.Type())
		}
		return nil
	})
}

// A repeated ADD whose interface name is taken by someone else's link fails with 104, leaves
// that link alone and releases the address.
func TestAddForeignInterface(t *testing.T) {
	n := newNode(t, "10.0.7.10")
	list := n.conflist(t, "1.1.0", "flatnet")
	p := n.newPod(t, "pod-a")
	err := p.ns.Do(func(ns.NetNS) error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "other"})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.add(t, list, p)
	if cniCode(err) != cni.ErrInterfaceExists {
		t.Fatalf("ADD over a foreign eth0: got %v, want code %d", err, cni.ErrInterfaceExists)
	}
	n.requireClean(t)
	_ = p.ns.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName("eth0"); err != nil {
			t.Fatalf("the foreign eth0 was removed: %v", err)
		}
		return nil
	})
}

// The release binary (built without -tags flatnetfaults) ignores FLATNET_CNI_FAULT.
func TestReleaseBinaryIgnoresFaults(t *testing.T) {
	n := newNode(t, "10.0.9.10")
	dir := t.TempDir()
	releasePlugin(t, dir)
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{dir}, t.TempDir(), nil)
	list := n.conflist(t, "1.1.0", "flatnet")
	p := n.newPod(t, "pod-a")
	t.Setenv(cni.FaultEnv, "link,route,rule,result")
	n.mustAdd(t, list, p)
	if err := n.del(t, list, p); err != nil {
		t.Fatal(err)
	}
	n.requireClean(t)
}
