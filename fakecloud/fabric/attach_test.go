package fabric

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func TestParseAttachment(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Attachment
		err  string // part of the error; empty: no error
	}{
		{in: "kind-worker=/proc/4242/ns/net", want: Attachment{Name: "kind-worker", Netns: "/proc/4242/ns/net"}},
		{in: "i-0abc=/run/kind/worker", want: Attachment{Name: "i-0abc", Netns: "/run/kind/worker"}},
		{in: "10.0.1.10=/proc/1/task/1/ns/net", want: Attachment{Name: "10.0.1.10", Netns: "/proc/1/task/1/ns/net"}},
		{in: "kind-worker", err: "want NAME=PATH"},
		{in: "=/proc/4242/ns/net", err: "the instance name is empty"},
		{in: "kind-worker=", err: "no namespace path"},
		{in: "kind-worker=proc/4242/ns/net", err: "is not absolute"},
		{in: "kind worker=/proc/4242/ns/net", err: "contains whitespace"},
		{in: "kind-worker=/run/my netns", err: "contains whitespace"},
		{in: "kind-worker=/" + strings.Repeat("x", maxAttachPath), err: "at most 192 fit"},
	} {
		got, err := ParseAttachment(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParseAttachment(%q): %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseAttachment(%q) = %v, want an error saying %q", c.in, err, c.err)
		case c.err == "" && got != c.want:
			t.Errorf("ParseAttachment(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestValidateAttachments(t *testing.T) {
	for _, c := range []struct {
		name string
		atts []Attachment
		err  string
	}{
		{"none", nil, ""},
		{"two", []Attachment{{Name: "a", Netns: "/proc/1/ns/net"}, {Name: "b", Netns: "/proc/2/ns/net"}}, ""},
		{"a name twice", []Attachment{{Name: "a", Netns: "/proc/1/ns/net"}, {Name: "a", Netns: "/proc/2/ns/net"}}, "the name is given twice"},
		{"a path twice", []Attachment{{Name: "a", Netns: "/proc/1/ns/net"}, {Name: "b", Netns: "/proc/1/ns/../ns/net"}}, "both use"},
		{"the fabric's own namespace", []Attachment{{Name: "a", Netns: "/run/netns/fc-n-i-1"}}, "one of this fabric's own namespaces"},
		{"another's named namespace", []Attachment{{Name: "a", Netns: "/run/netns/kind-worker"}}, ""},
	} {
		err := validateAttachments("fc-", c.atts)
		if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.err)
		}
	}
}

func TestResolveAttachments(t *testing.T) {
	inst := func(id, ip, name, state string) api.Instance {
		in := api.Instance{InstanceID: id, VpcID: "vpc-1", PrivateIPAddress: ip, State: state}
		if name != "" {
			in.Tags = []api.Tag{{Key: "Name", Value: name}}
		}
		return in
	}
	running := api.InstanceStateRunning
	snap := &api.Snapshot{Instances: []api.Instance{
		inst("i-1", "10.0.1.10", "worker", running),
		inst("i-2", "10.0.1.11", "twin", running),
		inst("i-3", "10.0.1.12", "twin", running),
		inst("i-4", "10.0.1.13", "gone", "terminated"),
		inst("i-5", "10.0.1.14", "", running),
	}}
	type want struct {
		byInstance map[string]string // instance -> attachment name
		blocked    []string
		unbound    map[string]string // name -> state
	}
	for _, c := range []struct {
		name  string
		atts  []string
		bound map[string]string
		want  want
	}{
		{name: "by Name tag", atts: []string{"worker"},
			want: want{byInstance: map[string]string{"i-1": "worker"}}},
		{name: "by instance ID", atts: []string{"i-5"},
			want: want{byInstance: map[string]string{"i-5": "i-5"}}},
		{name: "by primary IP", atts: []string{"10.0.1.14"},
			want: want{byInstance: map[string]string{"i-5": "10.0.1.14"}}},
		{name: "no instance yet, or only a terminated one", atts: []string{"later", "gone"},
			want: want{unbound: map[string]string{"later": AttachmentWaiting, "gone": AttachmentWaiting}}},
		{name: "ambiguous: neither instance gets a node", atts: []string{"twin"},
			want: want{blocked: []string{"i-2", "i-3"}, unbound: map[string]string{"twin": AttachmentFailed}}},
		{name: "a binding outlives a tag change", atts: []string{"twin"}, bound: map[string]string{"twin": "i-3"},
			want: want{byInstance: map[string]string{"i-3": "twin"}}},
		{name: "a binding to a terminated instance is let go", atts: []string{"gone"}, bound: map[string]string{"gone": "i-4"},
			want: want{unbound: map[string]string{"gone": AttachmentWaiting}}},
		{name: "one instance, two attachments", atts: []string{"worker", "i-1"},
			want: want{blocked: []string{"i-1"}, unbound: map[string]string{"worker": AttachmentFailed, "i-1": AttachmentFailed}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var atts []Attachment
			for i, n := range c.atts {
				atts = append(atts, Attachment{Name: n, Netns: "/proc/" + string(rune('1'+i)) + "/ns/net"})
			}
			p := resolveAttachments(snap, atts, c.bound)
			got := want{byInstance: map[string]string{}, unbound: map[string]string{}}
			for id, a := range p.byInstance {
				got.byInstance[id] = a.Name
				if p.bound[a.Name] != id {
					t.Errorf("binding of %s to %s is not kept for the next snapshot: %v", a.Name, id, p.bound)
				}
			}
			for id := range p.blocked {
				got.blocked = append(got.blocked, id)
			}
			for n, st := range p.unbound {
				got.unbound[n] = st.State
				if st.Reason == "" {
					t.Errorf("%s is %s without a reason", n, st.State)
				}
			}
			if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(want{}), cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestAttachedRoutes(t *testing.T) {
	md, vips := "169.254.169.254/32", PublicVIPPool
	for _, c := range []struct {
		vpc, subnet string
		def         bool
		want        string
	}{
		{"10.0.0.0/16", "10.0.1.0/24", false, "10.0.0.0/16 " + md + " " + vips},
		{"10.0.0.0/16", "10.0.0.0/16", false, md + " " + vips}, // the subnet's prefix route covers the VPC
		{"10.0.0.0/16", "10.0.1.0/24", true, "0.0.0.0/1 10.0.0.0/16 128.0.0.0/1 " + md + " " + vips},
	} {
		got := formatRoutes(attachedRoutes(pfx(c.vpc), pfx(c.subnet), c.def))
		if got != c.want {
			t.Errorf("attachedRoutes(%s, %s, %v) = %q, want %q", c.vpc, c.subnet, c.def, got, c.want)
		}
		back, err := parseRoutes(got)
		if err != nil || formatRoutes(back) != got {
			t.Errorf("parseRoutes(%q) = %v, %v", got, back, err)
		}
	}
}

// attachedWorld is the World a fabric holds after applying s with instance i-1 attached to netns.
func attachedWorld(t *testing.T, s *api.Snapshot, netns string) *World {
	t.Helper()
	w, err := desiredWorld(s, resolveAttachments(s, []Attachment{{Name: "i-1", Netns: netns}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range w.Routers {
		r.Ready = true
	}
	return w
}

func TestDiffAttached(t *testing.T) {
	base := snapshot()
	attached := port0
	attached.Netns = "/proc/7/ns/net"
	attached.NodeRoutes = "10.0.0.0/16 169.254.169.254/32 " + PublicVIPPool
	moved := attached
	moved.Netns = "/proc/8/ns/net"
	neigh := NeighOp{VpcID: "vpc-1", Key: NeighKey{ENI: "eni-0", Addr: netip.MustParseAddr("10.0.1.10")}, MAC: "02:00:00:00:00:00"}
	route := RouteOp{VpcID: "vpc-1", Dst: pfx("10.0.1.10/32"), ENI: "eni-0"}
	for _, c := range []struct {
		name            string
		desired, actual func(t *testing.T) *World
		want            *Plan
	}{
		{
			name:    "the desired port of an attached node",
			desired: func(t *testing.T) *World { return attachedWorld(t, base, "/proc/7/ns/net") },
			actual:  func(t *testing.T) *World { return converged(t, base) },
			want: &Plan{ReplaceNodes: []Node{{Instance: "i-1", VpcID: "vpc-1", Netns: "/proc/7/ns/net"}},
				AddPorts: []PortOp{{VpcID: "vpc-1", Port: attached}}, SetNeighs: []NeighOp{neigh}, SetRoutes: []RouteOp{route}},
		},
		{
			name:    "attached and converged does nothing",
			desired: func(t *testing.T) *World { return attachedWorld(t, base, "/proc/7/ns/net") },
			actual:  func(t *testing.T) *World { return attachedWorld(t, base, "/proc/7/ns/net") },
			want:    &Plan{},
		},
		{
			name:    "another namespace at another path: the port into the old one is deleted",
			desired: func(t *testing.T) *World { return attachedWorld(t, base, "/proc/8/ns/net") },
			actual:  func(t *testing.T) *World { return attachedWorld(t, base, "/proc/7/ns/net") },
			want: &Plan{ReplaceNodes: []Node{{Instance: "i-1", VpcID: "vpc-1", Netns: "/proc/8/ns/net"}},
				DelPorts: []PortOp{{VpcID: "vpc-1", Old: attached}}, AddPorts: []PortOp{{VpcID: "vpc-1", Port: moved}},
				SetNeighs: []NeighOp{neigh}, SetRoutes: []RouteOp{route}},
		},
		{
			name:    "the namespace vanished: its port is deleted, the node set up again",
			desired: func(t *testing.T) *World { return attachedWorld(t, base, "/proc/7/ns/net") },
			actual: func(t *testing.T) *World {
				w := attachedWorld(t, base, "/proc/7/ns/net")
				delete(w.Nodes, "i-1")
				return w
			},
			want: &Plan{AddNodes: []Node{{Instance: "i-1", VpcID: "vpc-1", Netns: "/proc/7/ns/net"}},
				DelPorts: []PortOp{{VpcID: "vpc-1", Old: attached}}, AddPorts: []PortOp{{VpcID: "vpc-1", Port: attached}},
				SetNeighs: []NeighOp{neigh}, SetRoutes: []RouteOp{route}},
		},
		{
			name: "terminated: the node is deleted (which unplugs its ports)",
			desired: func(t *testing.T) *World {
				return converged(t, snapshot(func(s *api.Snapshot) { s.Instances, s.NetworkInterfaces = nil, nil }))
			},
			actual: func(t *testing.T) *World { return attachedWorld(t, base, "/proc/7/ns/net") },
			want:   &Plan{DelNodes: []string{"i-1"}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Diff(c.desired(t), c.actual(t))
			if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
