package fabric

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// observe reads back what is programmed, from the namespaces carrying the fabric's prefix, so a
// restarted fabric adopts them instead of starting over.
func (k *kernel) observe() (*World, error) {
	names, err := netns.List(k.prefix)
	if err != nil {
		return nil, err
	}
	w := NewWorld()
	var errs []error
	for _, name := range names {
		kind, id, ok := nsKind(k.prefix, name)
		switch {
		case !ok:
		case kind == 'n':
			w.Nodes[id] = Node{Instance: id}
		case kind == 'l':
			lb, err := k.observeLB(id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			w.LBs[id] = lb
		case kind == 'r':
			r, err := k.observeRouter(id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			w.Routers[id] = r
		}
	}
	for _, r := range w.Routers {
		for _, p := range r.Ports {
			if p.Netns != "" && k.adoptAttached(p) {
				w.Nodes[p.Instance] = Node{Instance: p.Instance, Netns: p.Netns}
			}
		}
	}
	for _, r := range w.Routers {
		for eni, p := range r.Ports {
			if n, ok := w.Nodes[p.Instance]; !ok || n.Netns != p.Netns {
				continue
			}
			if err := k.observeNodeLink(&p); err != nil {
				errs = append(errs, err)
			}
			r.Ports[eni] = p
		}
	}
	return w, errors.Join(errs...)
}

func (k *kernel) observeRouter(vpc string) (*Router, error) {
	rns := RouterNetns(k.prefix, vpc)
	h, err := k.handle(rns)
	if err != nil {
		return nil, err
	}
	r := newRouter(vpc, netip.Prefix{})
	byIndex, sink, err := k.observePorts(h, r)
	if err != nil {
		return nil, fmt.Errorf("links in %s: %w", rns, err)
	}
	if err := observeRoutes(h, r, byIndex, sink); err != nil {
		return nil, fmt.Errorf("routes in %s: %w", rns, err)
	}
	if err := observeNeighs(h, r, byIndex); err != nil {
		return nil, fmt.Errorf("neighbours in %s: %w", rns, err)
	}
	if err := observeLocals(h, r); err != nil {
		return nil, fmt.Errorf("loopback of %s: %w", rns, err)
	}
	if err := k.observeSourceDestCheck(rns, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (k *kernel) observePorts(h *netlink.Handle, r *Router) (byIndex map[int]string, sink int, err error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, 0, err
	}
	byIndex = map[int]string{}
	for _, l := range links {
		if l.Attrs().Name == sinkLink {
			sink = l.Attrs().Index
		}
		eni, inst, dev, netns, ok := parseAlias(l.Attrs().Alias)
		if !ok {
			continue
		}
		byIndex[l.Attrs().Index] = eni
		k.setPortIndex(eni, l.Attrs().Index)
		r.Ports[eni] = Port{ENI: eni, Instance: inst, Device: dev, Netns: netns}
	}
	return byIndex, sink, nil
}

func observeRoutes(h *netlink.Handle, r *Router, byIndex map[int]string, sink int) error {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: routeProto}
	routes, err := h.RouteListFiltered(unix.AF_INET, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return err
	}
	for _, rt := range routes {
		dst, ok := ipNetPrefix(rt.Dst)
		if !ok {
			continue // the default route towards the internet
		}
		if sink != 0 && rt.LinkIndex == sink {
			r.CIDR = dst
			continue
		}
		if eni, ok := byIndex[rt.LinkIndex]; ok {
			r.Routes[dst] = eni
		}
	}
	return nil
}

func observeNeighs(h *netlink.Handle, r *Router, byIndex map[int]string) error {
	for idx, eni := range byIndex {
		neighs, err := h.NeighList(idx, unix.AF_INET)
		if err != nil {
			return err
		}
		for _, n := range neighs {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || n.State&netlink.NUD_PERMANENT == 0 {
				continue
			}
			r.Neighs[NeighKey{ENI: eni, Addr: ip.Unmap()}] = strings.ToLower(n.HardwareAddr.String())
		}
	}
	return nil
}

func observeLocals(h *netlink.Handle, r *Router) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	addrs, err := h.AddrList(lo, unix.AF_INET)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		p, ok := ipNetPrefix(a.IPNet)
		if !ok || p.Addr().IsLoopback() || p.Addr() == netip.MustParseAddr(MetadataAddr) {
			continue
		}
		r.Locals[p.Addr()] = true
	}
	return nil
}

func (k *kernel) observeSourceDestCheck(rns string, r *Router) error {
	if len(r.Ports) == 0 {
		return nil
	}
	keys := make([]string, 0, len(r.Ports))
	for eni := range r.Ports {
		keys = append(keys, "net.ipv4.conf."+portName(eni)+".rp_filter")
	}
	vals, err := readSysctls(rns, keys)
	if err != nil {
		return err
	}
	for eni, p := range r.Ports {
		p.SourceDestCheck = vals["net.ipv4.conf."+portName(eni)+".rp_filter"] != "0"
		r.Ports[eni] = p
	}
	return nil
}

// adoptAttached reports whether the namespace a port leads into (an attached node's) is there
// and holds the port's end, and records its identity as the one wired. A port into a namespace
// that is gone or replaced adopts nothing: the plan then treats its node as missing.
func (k *kernel) adoptAttached(p Port) bool {
	id, err := statNetns(p.Netns)
	if err != nil {
		k.forgetAttached(p.Netns)
		return false
	}
	nh, err := k.handle(p.Netns)
	if err != nil {
		k.forgetAttached(p.Netns)
		return false
	}
	l, err := nh.LinkByName(p.nodeLink())
	if _, inst, _, _, ok := parseAlias(aliasOf(l)); err != nil || !ok || inst != p.Instance {
		k.forgetAttached(p.Netns) // hold no reference to a namespace the fabric does not adopt
		return false
	}
	k.mu.Lock()
	k.attached[p.Netns] = id
	k.mu.Unlock()
	return true
}

func aliasOf(l netlink.Link) string {
	if l == nil {
		return ""
	}
	return l.Attrs().Alias
}

// observeNodeLink fills in the node end of a port: its MAC, primary address and gateway (and on
// an attached node's device 0, the routes the fabric put there).
func (k *kernel) observeNodeLink(p *Port) error {
	nh, err := k.handle(p.nodeNs(k.prefix))
	if err != nil {
		return err
	}
	name := p.nodeLink()
	l, err := nh.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil // an empty MAC makes the plan recreate the pair
		}
		return fmt.Errorf("%s of %s: %w", name, p.Instance, err)
	}
	p.MAC = strings.ToLower(l.Attrs().HardwareAddr.String())
	addrs, err := nh.AddrList(l, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("addresses of %s of %s: %w", name, p.Instance, err)
	}
	if len(addrs) > 0 {
		p.Addr, _ = ipNetPrefix(addrs[0].IPNet)
	}
	if p.Device != 0 {
		return nil
	}
	if p.Netns != "" {
		return observeAttachedRoutes(nh, l, p)
	}
	routes, err := nh.RouteList(l, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("routes of %s: %w", p.Instance, err)
	}
	for _, rt := range routes {
		if rt.Dst == nil || rt.Dst.IP.IsUnspecified() {
			if gw, ok := netip.AddrFromSlice(rt.Gw); ok {
				p.Gateway = gw.Unmap()
			}
		}
	}
	return nil
}
