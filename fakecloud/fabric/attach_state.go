package fabric

import (
	"maps"
	"slices"
)

// Attachments returns where each attachment stands after the last convergence, by name: waiting
// for its instance, attaching, attached, or failed with the reason. fakecloud serve answers it
// at GET /fabric/attachments (`fakecloud fabric attachments`).
func (f *Fabric) Attachments() []AttachmentStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]AttachmentStatus, 0, len(f.cfg.Attach))
	for _, a := range f.cfg.Attach {
		st, ok := f.attachments[a.Name]
		if !ok {
			st = AttachmentStatus{Name: a.Name, Netns: a.Netns, State: AttachmentWaiting, Reason: "the fabric has not converged yet"}
		}
		out = append(out, st)
	}
	return out
}

// seedBindings binds each attachment to the instance whose ports the kernel shows in its
// namespace, so a restarted fabric keeps what it wired even if tags changed meanwhile.
func (f *Fabric) seedBindings() {
	if f.bound != nil {
		return
	}
	f.bound = map[string]string{}
	for _, a := range f.cfg.Attach {
		for id, n := range f.actual.Nodes {
			if n.Netns == a.Netns {
				f.bound[a.Name] = id
			}
		}
	}
}

// checkAttached lets go of every attached node whose namespace vanished or was replaced since
// it was wired: its ports are unplugged on the router's side and forgotten, and the fabric lets
// go of the namespace (a handle it kept would keep a stopped container's namespace alive). The
// plan then sets the node up again: into the new namespace if one is at the path, else failing
// with the reason until one is.
func (f *Fabric) checkAttached() {
	for _, id := range slices.Sorted(maps.Keys(f.actual.Nodes)) {
		n := f.actual.Nodes[id]
		if n.Netns == "" {
			continue
		}
		err := f.k.checkAttached(n.Netns)
		if err == nil {
			continue
		}
		f.log.Warn("attached namespace vanished; unplugging its interfaces", "instance", id, "netns", n.Netns, "err", err)
		if derr := f.delNode(id); derr != nil {
			f.log.Warn("unplugging a vanished namespace's interfaces was incomplete", "instance", id, "err", derr)
			f.dirty = true
		}
	}
}

// updateAttachments decides each attachment's state after a convergence, logs what changed and
// counts them by state.
func (f *Fabric) updateAttachments(att *attachPlan, desired *World) {
	next := map[string]AttachmentStatus{}
	for _, a := range f.cfg.Attach {
		if st, ok := att.unbound[a.Name]; ok {
			next[a.Name] = st
			continue
		}
		id := att.bound[a.Name]
		st := AttachmentStatus{Name: a.Name, Netns: a.Netns, InstanceID: id, State: AttachmentAttaching}
		switch {
		case f.nodeErrs[id] != nil:
			st.State, st.Reason = AttachmentFailed, truncate(f.nodeErrs[id].Error(), maxStateReason)
		case f.wired(id, a.Netns, desired):
			st.State = AttachmentAttached
		default:
			if prev := f.attachments[a.Name]; prev.InstanceID == id && prev.State == AttachmentFailed {
				st = prev // no verdict this pass (the convergence stopped short): keep the last one
			}
		}
		next[a.Name] = st
	}
	for _, a := range f.cfg.Attach {
		prev, st := f.attachments[a.Name], next[a.Name]
		if prev.State == st.State && prev.Reason == st.Reason && prev.InstanceID == st.InstanceID {
			continue
		}
		log := f.log.With("attachment", a.Name, "netns", a.Netns, "instance", st.InstanceID)
		switch st.State {
		case AttachmentFailed:
			log.Warn("attachment failed; retrying with backoff", "reason", st.Reason)
		case AttachmentAttached:
			log.Info("namespace attached")
		default:
			log.Info("attachment "+st.State, "reason", st.Reason)
		}
	}
	f.attachments = next
	f.metrics.setAttachments(next)
}

// wired reports whether an instance's node is the attached namespace and every interface the
// snapshot gives it is programmed as wanted.
func (f *Fabric) wired(id, netns string, desired *World) bool {
	if n, ok := f.actual.Nodes[id]; !ok || n.Netns != netns {
		return false
	}
	if _, ok := desired.Nodes[id]; !ok {
		return false
	}
	for vpc, d := range desired.Routers {
		for eni, p := range d.Ports {
			if p.Instance != id {
				continue
			}
			a := f.actual.Routers[vpc]
			if a == nil || a.Ports[eni] != p {
				return false
			}
		}
	}
	return true
}
