package fabric

import (
	"errors"
	"fmt"
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
	for _, n := range p.AddNodes {
		if err := f.k.addNode(n); err != nil {
			el.add(err)
			continue
		}
		a.Nodes[n.Instance] = n
	}
	f.executeRouterOps(p, &el)
	f.executeLBOps(p, &el)
	for _, id := range p.DelNodes {
		if err := f.k.delNode(id); err != nil {
			el.add(err)
			continue
		}
		delete(a.Nodes, id)
		for _, r := range a.Routers {
			for eni, port := range r.Ports {
				if port.Instance == id {
					purgePort(r, eni)
				}
			}
		}
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
	for _, op := range p.AddPorts {
		if r := router(op.VpcID); r != nil && el.ok(f.step(opAddPort, op.Port.ENI, func() error { return f.k.addPort(op) })) {
			purgePort(r, op.Port.ENI) // whatever the old pair carried died with it
			r.Ports[op.Port.ENI] = op.Port
		}
	}
	for _, op := range p.FixPorts {
		if r := router(op.VpcID); r != nil && el.ok(f.k.fixPort(op)) {
			r.Ports[op.Port.ENI] = op.Port
		}
	}
	for _, op := range p.SetNeighs {
		if r := router(op.VpcID); r != nil && el.ok(f.k.setNeigh(op)) {
			r.Neighs[op.Key] = op.MAC
		}
	}
	for _, op := range p.SetRoutes {
		if r := router(op.VpcID); r != nil && el.ok(f.step(opSetRoute, op.Dst.String(), func() error { return f.k.setRoute(op) })) {
			r.Routes[op.Dst] = op.ENI
		}
	}
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
