package fabric

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/internal/netns"
)

// Attachment makes an instance's node a network namespace that already exists and belongs to
// someone else, typically a container's (a kind node's): the fabric plugs the instance's
// interfaces into it instead of making a namespace of its own. It never deletes that namespace,
// and takes only what it added with it when it lets go.
type Attachment struct {
	// Name selects the instance: its ID, its primary private IP address, or the value of its
	// Name tag. The first instance that matches alone stays bound while it exists, whatever its
	// tags become.
	Name string
	// Netns is the namespace's path: /proc/<pid>/ns/net of a process inside it, or a bind mount
	// of one. An absolute path without whitespace.
	Netns string
	// DefaultRoute makes the VPC the namespace's way out too (0.0.0.0/1 and 128.0.0.0/1 through
	// the subnet gateway, which beat its own default route without removing it). Without it the
	// namespace keeps its default route and only the VPC's addresses go through the fabric.
	DefaultRoute bool
}

// The states of an attachment, as AttachmentStatus reports them.
const (
	// AttachmentWaiting: no running instance matches the name yet.
	AttachmentWaiting = "waiting"
	// AttachmentAttaching: bound to an instance, not (or no longer) fully wired.
	AttachmentAttaching = "attaching"
	// AttachmentAttached: every interface of the instance is wired into the namespace.
	AttachmentAttached = "attached"
	// AttachmentFailed: the name is ambiguous, or the namespace cannot be used (Reason says why);
	// the fabric retries with backoff and attaches by itself once the cause is gone.
	AttachmentFailed = "failed"
)

// AttachmentStatus is where one attachment stands after the last convergence.
type AttachmentStatus struct {
	Name       string `json:"Name"`
	Netns      string `json:"Netns"`
	InstanceID string `json:"InstanceId,omitempty"`
	State      string `json:"State"`
	Reason     string `json:"Reason,omitempty"`
}

// maxAttachPath bounds an attachment's path: it is recorded in the router port's alias
// (IFALIASZ is 256 bytes) so that a restarted fabric, fabric show and Down find it.
const maxAttachPath = 192

// ParseAttachment reads NAME=PATH, the form of `fakecloud serve --fabric-attach`. NAME is an
// instance ID, a primary private IP or a Name tag value (without '='); PATH is checked as
// validateAttachment checks it.
func ParseAttachment(s string) (Attachment, error) {
	name, path, ok := strings.Cut(s, "=")
	if !ok {
		return Attachment{}, fmt.Errorf("attachment %q: want NAME=PATH, e.g. kind-worker=/proc/4242/ns/net (NAME: an instance ID, primary IP or Name tag)", s)
	}
	a := Attachment{Name: name, Netns: path}
	if err := validateAttachment(a); err != nil {
		return Attachment{}, err
	}
	return a, nil
}

func validateAttachment(a Attachment) error {
	switch {
	case a.Name == "":
		return fmt.Errorf("attachment %q: the instance name is empty: give an instance ID, primary IP or Name tag before '='", a.Name+"="+a.Netns)
	case strings.ContainsFunc(a.Name, unicode.IsSpace):
		return fmt.Errorf("attachment %q: the instance name contains whitespace", a.Name)
	case a.Netns == "":
		return fmt.Errorf("attachment %s: no namespace path: give /proc/<pid>/ns/net of a process in the namespace, or a bind mount of it", a.Name)
	case !filepath.IsAbs(a.Netns):
		return fmt.Errorf("attachment %s: namespace path %q is not absolute", a.Name, a.Netns)
	case strings.ContainsFunc(a.Netns, unicode.IsSpace):
		return fmt.Errorf("attachment %s: namespace path %q contains whitespace (it is recorded in a link alias): bind-mount the namespace somewhere without", a.Name, a.Netns)
	case len(a.Netns) > maxAttachPath:
		return fmt.Errorf("attachment %s: namespace path is %d bytes, at most %d fit in the link alias that records it", a.Name, len(a.Netns), maxAttachPath)
	}
	return nil
}

// validateAttachments checks a fabric's attachments: each well formed, no name or path twice,
// and none inside the fabric's own namespaces, which Down deletes.
func validateAttachments(prefix string, atts []Attachment) error {
	var errs []error
	names, paths := map[string]bool{}, map[string]string{}
	for _, a := range atts {
		if err := validateAttachment(a); err != nil {
			errs = append(errs, err)
			continue
		}
		clean := filepath.Clean(a.Netns)
		if filepath.Dir(clean) == netns.Dir && strings.HasPrefix(filepath.Base(clean), prefix) {
			errs = append(errs, fmt.Errorf("attachment %s: %s is one of this fabric's own namespaces (prefix %q), which it deletes at teardown: attach only namespaces someone else owns", a.Name, a.Netns, prefix))
		}
		if names[a.Name] {
			errs = append(errs, fmt.Errorf("attachment %s: the name is given twice", a.Name))
		}
		if other, dup := paths[clean]; dup {
			errs = append(errs, fmt.Errorf("attachments %s and %s: both use %s, and a namespace can be one instance only", other, a.Name, a.Netns))
		}
		names[a.Name], paths[clean] = true, a.Name
	}
	return errors.Join(errs...)
}

// attachPlan is how a snapshot's instances meet the attachments: which instance each binds,
// and which instances get no node because an attachment that matched them could not bind.
type attachPlan struct {
	byInstance map[string]Attachment
	blocked    map[string]bool
	// bound is the binding to keep (attachment name -> instance) for the next snapshot.
	bound map[string]string
	// unbound says, per attachment name without an instance, why: waiting or failed.
	unbound map[string]AttachmentStatus
}

func (p *attachPlan) of(instance string) (Attachment, bool) {
	if p == nil {
		return Attachment{}, false
	}
	a, ok := p.byInstance[instance]
	return a, ok
}

func (p *attachPlan) blocks(instance string) bool { return p != nil && p.blocked[instance] }

// resolveAttachments binds each attachment to an instance of the snapshot. It is pure. An
// attachment keeps the instance it was bound to while that instance runs (a Name tag an
// instance may rewrite cannot move a namespace to another instance); otherwise it binds the one
// running instance whose ID, primary IP or Name tag equals its name. An attachment matching
// several instances, and an instance two attachments select, fail: their instances get no node
// until the configuration is unambiguous.
func resolveAttachments(snap *api.Snapshot, atts []Attachment, bound map[string]string) *attachPlan {
	p := &attachPlan{byInstance: map[string]Attachment{}, blocked: map[string]bool{}, bound: map[string]string{},
		unbound: map[string]AttachmentStatus{}}
	if len(atts) == 0 {
		return p
	}
	live := map[string]*api.Instance{}
	for i := range snap.Instances {
		if in := &snap.Instances[i]; !instanceGone(in.State) {
			live[in.InstanceID] = in
		}
	}
	selectedBy := map[string][]string{} // instance -> attachment names
	for _, a := range atts {
		if id := bound[a.Name]; live[id] != nil {
			selectedBy[id] = append(selectedBy[id], a.Name)
			p.bound[a.Name] = id
			continue
		}
		var matches []string
		for id, in := range live {
			if matchesAttachment(in, a.Name) {
				matches = append(matches, id)
			}
		}
		slices.Sort(matches)
		switch len(matches) {
		case 0:
			p.unbound[a.Name] = AttachmentStatus{Name: a.Name, Netns: a.Netns, State: AttachmentWaiting,
				Reason: fmt.Sprintf("no running instance has ID, primary IP or Name tag %q yet", a.Name)}
		case 1:
			selectedBy[matches[0]] = append(selectedBy[matches[0]], a.Name)
			p.bound[a.Name] = matches[0]
		default:
			for _, id := range matches {
				p.blocked[id] = true
			}
			p.unbound[a.Name] = AttachmentStatus{Name: a.Name, Netns: a.Netns, State: AttachmentFailed,
				Reason: fmt.Sprintf("%q matches %d instances (%s): name one by its ID, primary IP or a Name tag of its own", a.Name, len(matches), strings.Join(matches, ", "))}
		}
	}
	byName := map[string]Attachment{}
	for _, a := range atts {
		byName[a.Name] = a
	}
	for id, names := range selectedBy {
		if len(names) == 1 && !p.blocked[id] {
			p.byInstance[id] = byName[names[0]]
			continue
		}
		p.blocked[id] = true
		for _, n := range names {
			delete(p.bound, n)
			p.unbound[n] = AttachmentStatus{Name: n, Netns: byName[n].Netns, InstanceID: id, State: AttachmentFailed,
				Reason: fmt.Sprintf("instance %s is selected by more than one attachment or name (%s): one namespace per instance", id, strings.Join(names, ", "))}
		}
	}
	return p
}

func matchesAttachment(in *api.Instance, name string) bool {
	if in.InstanceID == name || in.PrivateIPAddress == name {
		return true
	}
	for _, t := range in.Tags {
		if t.Key == "Name" && t.Value == name {
			return true
		}
	}
	return false
}

// attachedLinkName is the name of the interface at a device index inside an attached
// namespace: vpc<N>, so it never meets the eth<N> a container runtime names its own links.
func attachedLinkName(device int) string { return "vpc" + strconv.Itoa(device) }

// The halves of the address space that take the default route over without replacing the
// namespace's own: more specific than 0.0.0.0/0, gone with the fabric's link.
var defaultHalves = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1")}

// attachedRoutes are the destinations an attached node reaches through its primary interface's
// subnet gateway: the VPC (unless the subnet's own prefix route covers it), the metadata
// service and in-VPC API, and the public load balancer VIPs; with defaultRoute, everything.
func attachedRoutes(vpc, subnet netip.Prefix, defaultRoute bool) []netip.Prefix {
	var out []netip.Prefix
	if vpc.IsValid() && (subnet.Bits() > vpc.Bits() || !subnet.Contains(vpc.Addr())) {
		out = append(out, vpc)
	}
	out = append(out, netip.PrefixFrom(netip.MustParseAddr(MetadataAddr), 32), netip.MustParsePrefix(PublicVIPPool))
	if defaultRoute {
		out = append(out, defaultHalves...)
	}
	return out
}

// formatRoutes writes destinations in one canonical, comparable form: sorted, space separated.
func formatRoutes(ps []netip.Prefix) string {
	s := slices.Clone(ps)
	slices.SortFunc(s, comparePrefix)
	s = slices.Compact(s)
	out := make([]string, len(s))
	for i, p := range s {
		out[i] = p.String()
	}
	return strings.Join(out, " ")
}

// parseRoutes reads what formatRoutes wrote.
func parseRoutes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.FieldsSeq(s) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", f, err)
		}
		out = append(out, p)
	}
	return out, nil
}
