package fabric

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/internal/netns"
)

// runTagged launches one instance in a subnet with a Name tag.
func (l *lab) runTagged(subnet, name string) api.Instance {
	return must(l.st.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: subnet, InstanceType: "m5.large",
		Tags: []api.Tag{{Key: "Name", Value: name}}})).Instances[0]
}

// attachment returns an attachment's status as the fabric reports it.
func (l *lab) attachment(t *testing.T, name string) AttachmentStatus {
	t.Helper()
	for _, s := range l.f.Attachments() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no attachment %q in %+v", name, l.f.Attachments())
	return AttachmentStatus{}
}

// waitAttachment waits until an attachment is in state with a reason containing reason,
// failing with its last status.
func (l *lab) waitAttachment(t *testing.T, name, state, reason string) AttachmentStatus {
	t.Helper()
	var st AttachmentStatus
	end := time.Now().Add(10 * time.Second)
	for {
		st = l.attachment(t, name)
		if st.State == state && strings.Contains(st.Reason, reason) {
			return st
		}
		if time.Now().After(end) {
			t.Fatalf("attachment %s: %+v, want state %s with a reason containing %q", name, st, state, reason)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gauge reads one series of a gauge vector with a state label from the lab's registry.
func gauge(t *testing.T, l *lab, name, state string) float64 {
	t.Helper()
	mfs, err := l.reg.Gather()
	must0(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "state" && lp.GetValue() == state {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{state=%q}", name, state)
	return 0
}

// routeFrom sends traffic from src out of a node device through the gateway (table 101), as
// ipamd does for the addresses of a secondary interface. It returns how to undo it.
func routeFrom(t *testing.T, h *netlink.Handle, dev string, gw netip.Addr, src netip.Prefix) func() {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	def := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice(), Table: 101, Flags: int(netlink.FLAG_ONLINK),
		Dst: prefixNet(netip.MustParsePrefix("0.0.0.0/0"))}
	must0(t, h.RouteReplace(def))
	rule := netlink.NewRule()
	rule.Src, rule.Table, rule.Priority = prefixNet(src), 101, 1000
	must0(t, h.RuleAdd(rule))
	return func() {
		must0(t, h.RuleDel(rule))
		must0(t, h.RouteDel(def))
	}
}

// onLoopback puts an address on a namespace's lo, as a pod's address is reachable on a node;
// it returns how to take it off.
func onLoopback(t *testing.T, h *netlink.Handle, a netip.Addr) func() {
	t.Helper()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	ad := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(a, 32))}
	must0(t, h.AddrAdd(lo, ad))
	return func() { must0(t, h.AddrDel(lo, ad)) }
}

// TestFabricAttachExistingNamespaces attaches two instances to namespaces a "container runtime"
// made (processes in namespaces of their own, each with lo and a Docker-style eth0 and default
// route), and checks that the fabric wires them into the VPC without touching what the runtime
// made, that a secondary interface and secondary IPs work, that a restart adopts everything, and
// that terminate and Down take away only the fabric's links, leaving each namespace and its
// process as they were.
func TestFabricAttachExistingNamespaces(t *testing.T) {
	te := &tokenEcho{}
	l := newLab(t, te)
	te.l = l
	docker := newDockerNet(t)
	c1, c2 := docker.run(t), docker.run(t)
	before1, before2 := nsState(t, c1.h, false), nsState(t, c2.h, false)
	ino1 := nsInode(t, c1.netns)

	l.attach = []Attachment{{Name: "kind-worker", Netns: c1.netns}, {Name: "kind-worker2", Netns: c2.netns}}
	l.stop()
	l.start()
	if st := l.attachment(t, "kind-worker"); st.State != AttachmentWaiting {
		t.Errorf("before its instance runs: %+v, want waiting", st)
	}
	w1 := l.runTagged(l.subA.SubnetID, "kind-worker")
	w2 := l.runTagged(l.subB.SubnetID, "kind-worker2")
	l.converge()
	for name, w := range map[string]api.Instance{"kind-worker": w1, "kind-worker2": w2} {
		if st := l.attachment(t, name); st.State != AttachmentAttached || st.InstanceID != w.InstanceID {
			t.Errorf("attachment %s: %+v, want attached to %s", name, st, w.InstanceID)
		}
		if netns.Exists(l.node(w)) {
			t.Errorf("the fabric made a namespace of its own for attached %s", w.InstanceID)
		}
	}

	t.Run("wired beside the runtime's network", func(t *testing.T) {
		if diff := cmp.Diff(before1, nsState(t, c1.h, true)); diff != "" {
			t.Errorf("what the runtime made in the namespace changed (-before +attached):\n%s", diff)
		}
		if _, err := c1.h.LinkByName("eth1"); err == nil {
			t.Errorf("an eth1 appeared: the fabric's devices are vpc<N> in an attached namespace")
		}
		vpc0, err := c1.h.LinkByName("vpc0")
		if err != nil {
			t.Fatalf("vpc0 in the attached namespace: %v", err)
		}
		if got := vpc0.Attrs().HardwareAddr.String(); got != strings.ToLower(w1.NetworkInterfaces[0].MacAddress) {
			t.Errorf("vpc0 MAC %s, want the interface's %s", got, w1.NetworkInterfaces[0].MacAddress)
		}
		addrs, err := c1.h.AddrList(vpc0, unix.AF_INET)
		if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != w1.PrivateIPAddress+"/24" {
			t.Errorf("vpc0 addresses %v (%v), want %s/24", addrs, err, w1.PrivateIPAddress)
		}
		var got []string
		for _, r := range must(ownRoutes(c1.h, vpc0)) {
			got = append(got, r.Dst.String()+" via "+r.Gw.String())
		}
		gw := l.subA.Gateway
		want := []string{"10.0.0.0/16 via " + gw, "169.254.169.254/32 via " + gw, PublicVIPPool + " via " + gw}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the fabric's routes in the attached namespace (-want +got):\n%s", diff)
		}
		def, err := c1.h.RouteGet(addr("192.0.2.1").AsSlice())
		if err != nil || len(def) != 1 || def[0].Gw.String() != dockerGateway {
			t.Errorf("the namespace's way out is %v (%v), want its own default route via %s", def, err, dockerGateway)
		}
		var show strings.Builder
		must0(t, Show(&show, l.prefix, l.st.Snapshot()))
		for _, want := range []string{"(attached)", w1.InstanceID, "netns " + c1.netns, "vpc0"} {
			if !strings.Contains(show.String(), want) {
				t.Errorf("fabric show lacks %q:\n%s", want, show.String())
			}
		}
		if got := gauge(t, l, "flatnet_fabric_attachments", AttachmentAttached); got != 2 {
			t.Errorf("flatnet_fabric_attachments{state=attached} = %v, want 2", got)
		}
	})

	p1, p2, pn1 := newPinger(t, c1.netns), newPinger(t, c2.netns), newPinger(t, l.node(l.n1))
	t.Run("traffic over the VPC and the runtime's network", func(t *testing.T) {
		for _, c := range []struct {
			name string
			from *pinger
			to   string
		}{
			{"attached to attached, across subnets", p1, w2.PrivateIPAddress},
			{"attached to attached, back", p2, w1.PrivateIPAddress},
			{"attached to a fabric node", p1, l.n1.PrivateIPAddress},
			{"fabric node to attached", pn1, w1.PrivateIPAddress},
			{"attached to the runtime's gateway", p1, dockerGateway},
			{"attached to attached over the runtime's network", p1, c2.addr.Addr().String()},
		} {
			if !c.from.pingSoon(addr(c.to), 2*time.Second) {
				t.Errorf("%s: %s does not answer", c.name, c.to)
			}
		}
		if p1.ping(addr(InternetHostAddr), 200*time.Millisecond) {
			t.Errorf("the lab's internet answered: the attached node's default route must stay the runtime's")
		}
	})

	t.Run("metadata and API", func(t *testing.T) {
		c := httpClientIn(c1.netns)
		md := "http://" + MetadataAddr + "/latest/meta-data/"
		if code, got := get(t, c, md+"instance-id", ""); code != http.StatusOK || got != w1.InstanceID {
			t.Errorf("instance-id from the attached namespace: %d %q, want %s", code, got, w1.InstanceID)
		}
		if code, got := get(t, c, APIEndpoint()+"/", w1.Token); code != http.StatusOK || got != w1.InstanceID {
			t.Errorf("the API from the attached namespace: %d %q", code, got)
		}
	})

	t.Run("secondary interface and secondary IPs", func(t *testing.T) {
		eni, _ := l.attachENI(t, w1)
		vpc1, err := c1.h.LinkByName("vpc1")
		if err != nil {
			t.Fatalf("vpc1 after attaching a second interface: %v", err)
		}
		if got := vpc1.Attrs().HardwareAddr.String(); got != strings.ToLower(eni.MacAddress) {
			t.Errorf("vpc1 MAC %s, want %s", got, eni.MacAddress)
		}
		if st := l.attachment(t, "kind-worker"); st.State != AttachmentAttached {
			t.Errorf("after the second interface: %+v", st)
		}
		onENI1 := must(l.st.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{
			NetworkInterfaceID: eni.NetworkInterfaceID, SecondaryPrivateIPAddressCount: 1})).AssignedPrivateIPAddresses[0]
		onENI0 := must(l.st.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{
			NetworkInterfaceID: w1.NetworkInterfaces[0].NetworkInterfaceID, SecondaryPrivateIPAddressCount: 1})).AssignedPrivateIPAddresses[0]
		l.converge()
		// What ipamd and the CNI plugin would do on the node; undone before the end compares.
		undo := []func(){
			onLoopback(t, c1.h, addr(onENI1)), onLoopback(t, c1.h, addr(onENI0)),
			routeFrom(t, c1.h, "vpc1", addr(l.subA.Gateway), netip.PrefixFrom(addr(onENI1), 32)),
		}
		for _, a := range []string{onENI1, onENI0} {
			for name, p := range map[string]*pinger{"attached": p2, "fabric node": pn1} {
				if !p.pingSoon(addr(a), 2*time.Second) {
					t.Errorf("secondary IP %s does not answer the %s", a, name)
				}
			}
		}
		for _, u := range undo {
			u()
		}
	})

	t.Run("restart adopts", func(t *testing.T) {
		rh := nodeHandle(t, RouterNetns(l.prefix, l.vpc))
		router, node := routerLinksAndRoutes(t, rh), nsState(t, c1.h, false)
		l.stop()
		l.start()
		if diff := cmp.Diff(router, routerLinksAndRoutes(t, rh)); diff != "" {
			t.Errorf("restart changed the router:\n%s", diff)
		}
		if diff := cmp.Diff(node, nsState(t, c1.h, false)); diff != "" {
			t.Errorf("restart changed the attached namespace (-before +after):\n%s", diff)
		}
		if st := l.attachment(t, "kind-worker"); st.State != AttachmentAttached || st.InstanceID != w1.InstanceID {
			t.Errorf("after the restart: %+v", st)
		}
		if !p1.pingSoon(addr(w2.PrivateIPAddress), 2*time.Second) {
			t.Errorf("attached to attached after the restart: no answer")
		}
	})

	t.Run("terminate leaves the namespace as the runtime made it", func(t *testing.T) {
		must(l.st.TerminateInstances(admin(), &api.TerminateInstancesRequest{InstanceIDs: []string{w1.InstanceID}}))
		l.converge()
		if diff := cmp.Diff(before1, nsState(t, c1.h, false)); diff != "" {
			t.Errorf("after terminate the namespace differs from what the runtime made (-before +after):\n%s", diff)
		}
		if !c1.alive() || nsInode(t, c1.netns) != ino1 {
			t.Errorf("the container's process or namespace is gone after terminate")
		}
		if st := l.attachment(t, "kind-worker"); st.State != AttachmentWaiting || st.InstanceID != "" {
			t.Errorf("after its instance terminated: %+v, want waiting", st)
		}
		if !p2.pingSoon(addr(l.n1.PrivateIPAddress), 2*time.Second) {
			t.Errorf("the other attached instance lost the VPC")
		}
	})

	t.Run("down leaves the namespace as the runtime made it", func(t *testing.T) {
		l.stop()
		if err := Down(l.prefix); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before2, nsState(t, c2.h, false)); diff != "" {
			t.Errorf("after down the namespace differs from what the runtime made (-before +after):\n%s", diff)
		}
		if !c2.alive() {
			t.Errorf("the container's process is gone after down")
		}
		if !p2.pingSoon(addr(dockerGateway), 2*time.Second) {
			t.Errorf("the runtime's network does not work after down")
		}
	})
}

// bindMount bind-mounts the namespace at src onto a file in dir and returns the file's path and
// how to unmount it (also done in t.Cleanup).
func bindMount(t *testing.T, dir, src string) (string, func()) {
	t.Helper()
	path := dir + "/netns"
	if _, err := os.Stat(path); err != nil {
		must0(t, os.WriteFile(path, nil, 0o444))
	}
	must0(t, unix.Mount(src, path, "none", unix.MS_BIND, ""))
	mounted := true
	umount := func() {
		if mounted {
			must0(t, unix.Unmount(path, unix.MNT_DETACH))
			mounted = false
		}
	}
	t.Cleanup(func() {
		if mounted {
			_ = unix.Unmount(path, unix.MNT_DETACH)
		}
	})
	return path, umount
}

// TestFabricAttachFailsClearly gives the fabric namespaces it cannot use: each attachment says
// failed with the reason while a good one attaches beside them, nothing is wired into the host's
// namespace or a namespace of the fabric's own, no instance whose attachment failed gets a
// namespace of the fabric's instead, and a link of the namespace owner's is never deleted.
func TestFabricAttachFailsClearly(t *testing.T) {
	l := newLab(t, nil)
	docker := newDockerNet(t)
	good, overlapping, crowded, spare := docker.run(t), docker.run(t), docker.run(t), docker.run(t)
	dir := t.TempDir()
	plain := dir + "/plain"
	must0(t, os.WriteFile(plain, nil, 0o644))
	// The router reached by another path than its name (which New refuses outright).
	router, _ := bindMount(t, t.TempDir(), netns.Path(RouterNetns(l.prefix, l.vpc)))

	// The owner's own network overlaps the VPC; and the owner made a link named vpc0.
	eth0, err := overlapping.h.LinkByName("eth0")
	must0(t, err)
	must0(t, overlapping.h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP(dockerGateway),
		Dst: prefixNet(netip.MustParsePrefix("10.0.9.0/24"))}))
	must0(t, crowded.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vpc0"}, PeerName: "owners-peer"}))
	crowdedBefore := nsState(t, crowded.h, false)

	l.attach = []Attachment{
		{Name: "plain-file", Netns: plain},
		{Name: "directory", Netns: dir},
		{Name: "mount-namespace", Netns: fmt.Sprintf("/proc/%d/ns/mnt", spare.pid())},
		{Name: "missing", Netns: "/proc/999999999/ns/net"},
		{Name: "host", Netns: "/proc/self/ns/net"},
		{Name: "fabric-router", Netns: router},
		{Name: "good", Netns: good.netns},
		{Name: "overlapping", Netns: overlapping.netns},
		{Name: "crowded", Netns: crowded.netns},
		{Name: "twin", Netns: spare.netns},
	}
	l.stop()
	l.start()
	inst := map[string]api.Instance{}
	for _, a := range l.attach {
		if a.Name != "twin" {
			inst[a.Name] = l.runTagged(l.subA.SubnetID, a.Name)
		}
	}
	// Both twins in one launch: the fabric sees them together, never one of them alone (a
	// binding, once made, is kept while its instance runs, so a second twin launched later
	// would not make the first ambiguous).
	twins := must(l.st.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: l.subA.SubnetID, InstanceType: "m5.large",
		Count: 2, Tags: []api.Tag{{Key: "Name", Value: "twin"}}})).Instances
	inst["twin"] = twins[0]
	twin2 := twins[1]

	for _, c := range []struct{ name, reason string }{
		{"plain-file", "is not a network namespace but a regular file"},
		{"directory", "is not a network namespace but a directory"},
		{"mount-namespace", "is a mount namespace, not a network namespace"},
		{"missing", "does not exist"},
		{"host", "is the network namespace fakecloud itself runs in"},
		{"fabric-router", "is the fabric's own namespace"},
		{"overlapping", "already routes 10.0.9.0/24 itself"},
		{"crowded", "already has a link vpc0 that the fabric did not make"},
		{"twin", `matches 2 instances`},
	} {
		st := l.waitAttachment(t, c.name, AttachmentFailed, c.reason)
		t.Logf("%s: %s", c.name, st.Reason)
	}
	for _, id := range []string{inst["twin"].InstanceID, twin2.InstanceID, inst["missing"].InstanceID} {
		if netns.Exists(NodeNetns(l.prefix, id)) {
			t.Errorf("instance %s, whose attachment failed, got a namespace of the fabric's instead", id)
		}
	}
	if diff := cmp.Diff(crowdedBefore, nsState(t, crowded.h, false)); diff != "" {
		t.Errorf("the owner's vpc0 was touched (-before +after):\n%s", diff)
	}
	if _, err := overlapping.h.LinkByName("vpc0"); err == nil {
		t.Errorf("a VPC link was left in the namespace whose networks overlap the VPC")
	}
	l.waitAttachment(t, "good", AttachmentAttached, "")
	p := newPinger(t, l.node(l.n1))
	if !p.pingSoon(addr(inst["good"].PrivateIPAddress), 2*time.Second) {
		t.Errorf("the good attachment does not answer beside the failed ones")
	}
}

// TestFabricAttachedNamespaceVanishes wires two instances, then takes their namespaces away the
// two ways it happens: the container's process exits (/proc/<pid>/ns/net is gone), and a bind
// mount is unmounted. Each attachment turns failed with the reason, its ports leave the router,
// and when another namespace is mounted at the path the instance is wired into it, without a
// restart.
func TestFabricAttachedNamespaceVanishes(t *testing.T) {
	l := newLab(t, nil)
	docker := newDockerNet(t)
	dying, moved := docker.run(t), docker.run(t)
	bound, umount := bindMount(t, t.TempDir(), moved.netns)
	l.attach = []Attachment{{Name: "dying", Netns: dying.netns}, {Name: "bound", Netns: bound}}
	l.stop()
	l.start()
	inst := map[string]api.Instance{}
	for _, a := range l.attach {
		inst[a.Name] = l.runTagged(l.subA.SubnetID, a.Name)
	}
	l.converge()
	p := newPinger(t, l.node(l.n1))
	for _, name := range []string{"dying", "bound"} {
		if st := l.attachment(t, name); st.State != AttachmentAttached {
			t.Fatalf("%s: %+v", name, st)
		}
		if !p.pingSoon(addr(inst[name].PrivateIPAddress), 2*time.Second) {
			t.Fatalf("%s does not answer", name)
		}
	}
	rh := nodeHandle(t, RouterNetns(l.prefix, l.vpc))
	portOf := func(name string) string { return portName(inst[name].NetworkInterfaces[0].NetworkInterfaceID) }

	t.Run("the process exits", func(t *testing.T) {
		must0(t, dying.cmd.Process.Kill())
		_ = dying.cmd.Wait()
		st := l.waitAttachment(t, "dying", AttachmentFailed, "does not exist (the process it belonged to has exited")
		t.Logf("dying: %s", st.Reason)
		if _, err := rh.LinkByName(portOf("dying")); err == nil {
			t.Errorf("the router still has the port into the vanished namespace")
		}
		if p.ping(addr(inst["dying"].PrivateIPAddress), 200*time.Millisecond) {
			t.Errorf("the vanished node's address still answers")
		}
		if netns.Exists(l.node(inst["dying"])) {
			t.Errorf("the fabric made a namespace of its own for the instance whose namespace vanished")
		}
		if !p.pingSoon(addr(inst["bound"].PrivateIPAddress), 2*time.Second) {
			t.Errorf("the other attached instance stopped answering")
		}
	})

	t.Run("the bind mount goes and another namespace comes", func(t *testing.T) {
		umount()
		st := l.waitAttachment(t, "bound", AttachmentFailed, "is not a network namespace but a regular file")
		t.Logf("bound: %s", st.Reason)
		if _, err := moved.h.LinkByName("vpc0"); err == nil {
			t.Errorf("vpc0 is still in the namespace that was unmounted from the path")
		}
		if _, err := rh.LinkByName(portOf("bound")); err == nil {
			t.Errorf("the router still has the port into the unmounted namespace")
		}
		next := docker.run(t)
		bindAgain(t, bound, next.netns)
		l.waitAttachment(t, "bound", AttachmentAttached, "")
		if _, err := next.h.LinkByName("vpc0"); err != nil {
			t.Errorf("vpc0 is not in the namespace now at the path: %v", err)
		}
		if !p.pingSoon(addr(inst["bound"].PrivateIPAddress), 2*time.Second) {
			t.Errorf("the instance does not answer from its new namespace")
		}
	})
}

// bindAgain bind-mounts src onto path, a file bindMount made, until the test ends.
func bindAgain(t *testing.T, path, src string) {
	t.Helper()
	must0(t, unix.Mount(src, path, "none", unix.MS_BIND, ""))
	t.Cleanup(func() { _ = unix.Unmount(path, unix.MNT_DETACH) })
}

// TestFabricAttachDefaultRoute asks for the default route: the VPC becomes the attached
// namespace's way out (the lab's internet answers through it) while the namespace's own default
// route stays in its table; a restart without the request gives the way out back, in place.
func TestFabricAttachDefaultRoute(t *testing.T) {
	l := newLab(t, nil)
	docker := newDockerNet(t)
	c := docker.run(t)
	own := nsState(t, c.h, false)
	l.attach = []Attachment{{Name: "node", Netns: c.netns, DefaultRoute: true}}
	l.stop()
	l.start()
	w := l.runTagged(l.subA.SubnetID, "node")
	l.converge()
	p := newPinger(t, c.netns)
	wayOut := func() string {
		t.Helper()
		rs, err := c.h.RouteGet(addr("192.0.2.1").AsSlice())
		if err != nil || len(rs) != 1 {
			t.Fatalf("route to 192.0.2.1: %v %v", rs, err)
		}
		return rs[0].Gw.String()
	}
	if got := wayOut(); got != l.subA.Gateway {
		t.Errorf("with the default route asked, the way out is via %s, want the subnet gateway %s", got, l.subA.Gateway)
	}
	if !p.pingSoon(addr(InternetHostAddr), 2*time.Second) {
		t.Errorf("the lab's internet does not answer through the VPC")
	}
	if diff := cmp.Diff(own, nsState(t, c.h, true)); diff != "" {
		t.Errorf("the namespace's own routes changed (-before +after):\n%s", diff)
	}

	l.attach[0].DefaultRoute = false
	l.stop()
	l.start()
	if got := wayOut(); got != dockerGateway {
		t.Errorf("without the default route asked, the way out is via %s, want the namespace's own %s", got, dockerGateway)
	}
	if st := l.attachment(t, "node"); st.State != AttachmentAttached || st.InstanceID != w.InstanceID {
		t.Errorf("after the change: %+v", st)
	}
	if !p.pingSoon(addr(l.n1.PrivateIPAddress), 2*time.Second) {
		t.Errorf("the VPC does not answer after the change")
	}
}
