package fabric

import (
	"errors"
	"fmt"
	"maps"
)

// maxErrors bounds how many failures one convergence reports; the rest are counted.
const maxErrors = 8

type errList struct {
	errs    []error
	dropped int
}

func (e *errList) add(err error) {
	if err == nil {
		return
	}
	if len(e.errs) < maxErrors {
		e.errs = append(e.errs, err)
		return
	}
	e.dropped++
}

func (e *errList) err() error {
	if e.dropped > 0 {
		e.errs = append(e.errs, fmt.Errorf("and %d more failures", e.dropped))
	}
	return errors.Join(e.errs...)
}

// execute runs a plan in order and records every operation that succeeds in f.actual, so the
// next diff only retries what failed.
func (f *Fabric) execute(p *Plan) error {
	var el errList
	a := f.actual
	for _, ref := range p.EnsureRouters {
		el.add(f.ensureRouter(ref))
	}
	for _, n := range p.ReplaceNodes {
		if err := f.delNode(n.Instance); err != nil {
			f.nodeFailed(n.Instance, err)
			el.add(err)
			continue
		}
		f.addNode(n, &el)
	}
	for _, n := range p.AddNodes {
		f.addNode(n, &el)
	}
	f.executeRouterOps(p, &el)
	f.executeLBOps(p, &el)
	for _, id := range p.DelNodes {
		el.add(f.delNode(id))
	}
	for _, vpc := range p.DelRouters {
		f.closeListeners(vpc)
		if err := f.k.delRouter(vpc); err != nil {
			el.add(err)
			continue
		}
		delete(a.Routers, vpc)
	}
	return el.err()
}

func (f *Fabric) addNode(n Node, el *errList) {
	if err := f.k.addNode(n); err != nil {
		f.nodeFailed(n.Instance, err)
		el.add(err)
		return
	}
	f.actual.Nodes[n.Instance] = n
}

// delNode removes a node as programmed, with its ports, and forgets them.
func (f *Fabric) delNode(id string) error {
	a := f.actual
	var ports []PortOp
	for _, r := range a.Routers {
		for _, eni := range sortedKeys(r.Ports) {
			if port := r.Ports[eni]; port.Instance == id {
				ports = append(ports, PortOp{VpcID: r.VpcID, Old: port})
			}
		}
	}
	if err := f.k.delNode(a.Nodes[id], ports); err != nil {
		return err
	}
	delete(a.Nodes, id)
	for _, op := range ports {
		f.k.setPortIndex(op.Old.ENI, 0)
		purgePort(a.Routers[op.VpcID], op.Old.ENI)
	}
	return nil
}

// nodeFailed records why a node could not be set up in this convergence: its ports are not
// attempted, and an attachment of it reports the reason.
func (f *Fabric) nodeFailed(instance string, err error) {
	if f.nodeErrs != nil {
		f.nodeErrs[instance] = err
	}
}

func (f *Fabric) ensureRouter(ref RouterRef) error {
	if err := f.k.ensureRouter(ref); err != nil {
		return err
	}
	r := f.actual.Routers[ref.VpcID]
	if r == nil {
		r = newRouter(ref.VpcID, ref.CIDR)
		f.actual.Routers[ref.VpcID] = r
	}
	r.CIDR, r.Ready = ref.CIDR, true
	return f.openListeners(ref.VpcID)
}

// executeRouterOps runs the per-router operations: removals first (an unassigned address stops
// being delivered by the first netlink request of the convergence), then additions.
func (f *Fabric) executeRouterOps(p *Plan, el *errList) {
	a := f.actual
	router := func(vpc string) *Router { return a.Routers[vpc] }
	for _, op := range p.DelRoutes {
		if r := router(op.VpcID); r != nil && el.ok(f.k.delRoute(op)) {
			delete(r.Routes, op.Dst)
		}
	}
	for _, op := range p.DelNeighs {
		if r := router(op.VpcID); r != nil && el.ok(f.k.delNeigh(op)) {
			delete(r.Neighs, op.Key)
		}
	}
	for _, op := range p.DelPorts {
		if r := router(op.VpcID); r != nil && el.ok(f.k.delPort(op)) {
			purgePort(r, op.Old.ENI)
		}
	}
	for _, op := range p.DelLocals {
		if r := router(op.VpcID); r != nil && el.ok(f.k.delLocal(op)) {
			delete(r.Locals, op.Addr)
		}
	}
	for _, op := range p.AddLocals {
		if r := router(op.VpcID); r != nil && el.ok(f.k.addLocal(op)) {
			r.Locals[op.Addr] = true
		}
	}
	// The ports of a node that could not be set up wait for it, and the addresses and neighbours
	// of a port that could not be plugged wait for the port: trying them would only repeat the
	// failure, once per interface, address and neighbour.
	failedNodes := maps.Clone(f.nodeErrs)
	waiting := map[string]bool{}
	for _, op := range p.AddPorts {
		if failedNodes[op.Port.Instance] != nil {
			waiting[op.Port.ENI] = true
			continue
		}
		r := router(op.VpcID)
		if r == nil {
			continue
		}
		if !f.portOK(op.Port, el, f.step(opAddPort, op.Port.ENI, func() error { return f.k.addPort(op) })) {
			waiting[op.Port.ENI] = true
			continue
		}
		purgePort(r, op.Port.ENI) // whatever the old pair carried died with it
		r.Ports[op.Port.ENI] = op.Port
	}
	for _, op := range p.FixPorts {
		if r := router(op.VpcID); r != nil && f.portOK(op.Port, el, f.k.fixPort(op)) {
			r.Ports[op.Port.ENI] = op.Port
		}
	}
	for _, op := range p.SetNeighs {
		if r := router(op.VpcID); r != nil && !waiting[op.Key.ENI] && el.ok(f.k.setNeigh(op)) {
			r.Neighs[op.Key] = op.MAC
		}
	}
	for _, op := range p.SetRoutes {
		if r := router(op.VpcID); r != nil && !waiting[op.ENI] && el.ok(f.step(opSetRoute, op.Dst.String(), func() error { return f.k.setRoute(op) })) {
			r.Routes[op.Dst] = op.ENI
		}
	}
}

// portOK records a port operation's outcome: a failure counts against the convergence and, on
// an attached node, is the reason its attachment reports.
func (f *Fabric) portOK(p Port, el *errList, err error) bool {
	if err != nil && p.Netns != "" {
		f.nodeFailed(p.Instance, err)
	}
	return el.ok(err)
}

// step runs one data-plane operation unless a fault is injected for it.
func (f *Fabric) step(op, object string, run func() error) error {
	if err := f.injected(op, object); err != nil {
		return err
	}
	return run()
}

func (e *errList) ok(err error) bool {
	e.add(err)
	return err == nil
}

// purgePort forgets a port and everything the kernel removed with its link.
func purgePort(r *Router, eni string) {
	delete(r.Ports, eni)
	for dst, owner := range r.Routes {
		if owner == eni {
			delete(r.Routes, dst)
		}
	}
	for k := range r.Neighs {
		if k.ENI == eni {
			delete(r.Neighs, k)
		}
	}
}
