package cni_test

import (
	"strings"
	"testing"

	"github.com/flatnet/flatnet/cni"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// TestPluginChecksOwner: an ipamd that answers allocate or check with another owner's
// allocation (as one whose owner key collided did: (abc, x_eth0) and (abc_x, eth0)) is refused;
// ADD never wires the other pod's address into this pod, CHECK reports it.
func TestPluginChecksOwner(t *testing.T) {
	n := newNode(t, "10.0.6.10")
	list := n.conflist(t, "1.1.0", "flatnet")
	first := n.newPod(t, "abc")
	ip := resultIP(t, n.mustAdd(t, list, first), "1.1.0")
	firstOwner := wire.Owner{Network: "flatnet", ContainerID: "abc", IfName: "eth0"}

	n.ipamd.set(func(f *fakeIpamd) { f.answerAs = &firstOwner })
	second := n.newPod(t, "abc_x")
	_, err := n.add(t, list, second)
	if cniCode(err) != cni.ErrIpamd || !strings.Contains(err.Error(), "with the address of") {
		t.Fatalf("ADD answered with %s of another owner: got %v, want code %d naming the other owner", ip, err, cni.ErrIpamd)
	}

	other := wire.Owner{Network: "flatnet", ContainerID: "abc_x", IfName: "eth0"}
	n.ipamd.set(func(f *fakeIpamd) {
		f.allocs[other] = wire.Allocation{Owner: other, IP: f.next, MTU: f.mtu}
		f.answerAs = &other
	})
	if err := n.check(t, list, first); cniCode(err) != cni.ErrCheckFailed || !strings.Contains(err.Error(), "with the allocation of") {
		t.Fatalf("CHECK answered with another owner's allocation: got %v, want code %d", err, cni.ErrCheckFailed)
	}
	n.ipamd.set(func(f *fakeIpamd) { f.answerAs = nil; delete(f.allocs, other) })
	if err := n.del(t, list, first); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	n.requireClean(t, ip)
}
