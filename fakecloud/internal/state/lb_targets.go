package state

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// RegisterTargets adds (IP, port) targets to a group; they start initial until the data plane
// reports on them. Registering a target that is draining makes it live again with its last
// health verdict; registering a live one changes nothing.
func (s *Store) RegisterTargets(c Call, req *api.RegisterTargetsRequest) (*api.RegisterTargetsResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionRegisterTargets); err != nil {
		return nil, err
	}
	if len(req.Targets) == 0 {
		return nil, invalid("Targets is required")
	}
	return write(s, c, api.ActionRegisterTargets, "", req, func(t *tx) (*api.RegisterTargetsResponse, error) {
		tg, err := getTG(t.Txn, req.TargetGroupID)
		if err != nil {
			return nil, err
		}
		targets, err := resolveTargets(t.Txn, tg, req.Targets)
		if err != nil {
			return nil, err
		}
		n := len(targetsOf(t.Txn, tg.ID))
		keys := targetKeys(tg.ID, targets)
		olds := lookupTargets(t, keys)
		for i, tgt := range targets {
			key, old := keys[i], olds[i]
			switch {
			case old == nil:
				if n++; n > maxTargetsPerGroup {
					return nil, api.Errorf(api.CodeTooManyTargets, "target group %s would hold more than %d targets; deregister some first", tg.ID, maxTargetsPerGroup)
				}
				r := &targetRec{
					Key: key, TargetGroupID: tg.ID, IP: tgt.IP, Port: tgt.Port, Registered: t.call.Now,
					State: api.TargetHealthInitial, Reason: api.ReasonRegistrationInProgress,
					Description: "Target registration is in progress",
				}
				if err := t.put(tableTargets, api.KindTarget, key, r); err != nil {
					return nil, err
				}
			case !old.DrainDeadline.IsZero():
				r := *old
				r.DrainDeadline = time.Time{}
				if err := t.put(tableTargets, api.KindTarget, key, &r); err != nil {
					return nil, err
				}
				t.afterCommit(func() { t.s.cancelTransition(drainTimer(key)) })
			}
		}
		return &api.RegisterTargetsResponse{}, nil
	})
}

// resolveTargets validates targets against their group: IPv4 inside the group's VPC, port
// 1..65535 or 0 for the group's port. Duplicates collapse.
func resolveTargets(txn *memdb.Txn, tg *tgRec, in []api.Target) ([]api.Target, error) {
	if len(in) > maxTargetsPerGroup {
		return nil, api.Errorf(api.CodeTooManyTargets, "%d targets given; a target group holds at most %d", len(in), maxTargetsPerGroup)
	}
	vpc, err := getVpc(txn, tg.VpcID)
	if err != nil {
		return nil, err
	}
	vp := netip.MustParsePrefix(vpc.Cidr)
	seen := map[api.Target]bool{}
	var out []api.Target
	for i, tgt := range in {
		ip, err := netip.ParseAddr(tgt.IP)
		if err != nil || !ip.Is4() {
			return nil, invalid("Targets[%d].Ip %.40q is not an IPv4 address", i, tgt.IP)
		}
		if tgt.Port == 0 {
			tgt.Port = tg.Port
		}
		if tgt.Port < 0 || tgt.Port > 65535 {
			return nil, invalid("Targets[%d].Port %d is outside 1..65535", i, tgt.Port)
		}
		if !vp.Contains(ip) {
			return nil, api.Errorf(api.CodeInvalidTarget, "target %s is outside %s (%s), the VPC of target group %s", ip, vpc.ID, vp, tg.ID)
		}
		tgt.IP = ip.String()
		if !seen[tgt] {
			seen[tgt] = true
			out = append(out, tgt)
		}
	}
	return out, nil
}

// DeregisterTargets starts draining targets: they take no new connections and are removed
// once the group's deregistration delay has passed (at once with a delay of 0). A target
// already draining keeps its deadline.
func (s *Store) DeregisterTargets(c Call, req *api.DeregisterTargetsRequest) (*api.DeregisterTargetsResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDeregisterTargets); err != nil {
		return nil, err
	}
	if len(req.Targets) == 0 {
		return nil, invalid("Targets is required")
	}
	return write(s, c, api.ActionDeregisterTargets, "", req, func(t *tx) (*api.DeregisterTargetsResponse, error) {
		tg, err := getTG(t.Txn, req.TargetGroupID)
		if err != nil {
			return nil, err
		}
		targets, err := resolveTargets(t.Txn, tg, req.Targets)
		if err != nil {
			return nil, err
		}
		keys := targetKeys(tg.ID, targets)
		olds := lookupTargets(t, keys)
		for i, tgt := range targets {
			key, old := keys[i], olds[i]
			switch {
			case old == nil:
				return nil, api.Errorf(api.CodeInvalidTarget, "target %s:%d is not registered with target group %s", tgt.IP, tgt.Port, tg.ID)
			case !old.DrainDeadline.IsZero():
				continue
			case tg.DeregistrationDelay == 0:
				if err := t.deleteTarget(old); err != nil {
					return nil, err
				}
			default:
				r := *old
				r.DrainDeadline = t.call.Now.Add(time.Duration(tg.DeregistrationDelay) * time.Second)
				if err := t.put(tableTargets, api.KindTarget, key, &r); err != nil {
					return nil, err
				}
				t.afterCommit(func() { t.s.scheduleDrain(key, r.DrainDeadline) })
			}
		}
		return &api.DeregisterTargetsResponse{}, nil
	})
}

// lookupTargets finds the records of targets by key (nil for none), all before the caller's
// first write: memdb answers a read of an index the transaction has written from a clone, and a
// clone makes the next write copy its whole path of the tree again instead of editing the nodes
// it already copied. Interleaved, a 1,000-target transaction copied about 1,000 paths more.
func lookupTargets(t *tx, keys []string) []*targetRec {
	olds := make([]*targetRec, len(keys))
	for i, key := range keys {
		olds[i] = first[targetRec](t.Txn, tableTargets, indexID, key)
	}
	return olds
}

// targetKeys are the keys of targets in group tgID.
func targetKeys(tgID string, targets []api.Target) []string {
	keys := make([]string, len(targets))
	for i, tgt := range targets {
		keys[i] = api.TargetID(tgID, tgt.IP, tgt.Port)
	}
	return keys
}

func (t *tx) deleteTarget(r *targetRec) error {
	if err := t.Delete(tableTargets, r); err != nil {
		return internal(err)
	}
	t.touch(api.KindTarget, r.Key)
	if !r.DrainDeadline.IsZero() {
		t.afterCommit(func() { t.s.cancelTransition(drainTimer(r.Key)) })
	}
	return nil
}

// DescribeTargetHealth lists a group's targets with their health, or the named ones (a target
// not registered shows unused, Target.NotRegistered).
func (s *Store) DescribeTargetHealth(c Call, req *api.DescribeTargetHealthRequest) (*api.DescribeTargetHealthResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDescribeTargetHealth); err != nil {
		return nil, err
	}
	txn := s.read()
	tg, err := getTG(txn, req.TargetGroupID)
	if err != nil {
		return nil, err
	}
	v := newViewer(txn, c)
	out := &api.DescribeTargetHealthResponse{TargetHealthDescriptions: []api.TargetHealthDescription{}}
	if len(req.Targets) == 0 {
		for _, r := range targetsOf(txn, tg.ID) {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, v.target(r))
		}
		sortTargets(out.TargetHealthDescriptions)
		return out, nil
	}
	targets, err := resolveTargets(txn, tg, req.Targets)
	if err != nil {
		return nil, err
	}
	for _, tgt := range targets {
		if r := first[targetRec](txn, tableTargets, indexID, api.TargetID(tg.ID, tgt.IP, tgt.Port)); r != nil {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, v.target(r))
			continue
		}
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, api.TargetHealthDescription{
			TargetGroupID: tg.ID, Target: tgt,
			TargetHealth: api.TargetHealth{State: api.TargetHealthUnused, Reason: api.ReasonNotRegistered, Description: "Target is not registered to the target group"},
		})
	}
	return out, nil
}

// sortTargets orders targets by address, then port.
func sortTargets(ts []api.TargetHealthDescription) {
	// Each address is parsed once, not at every comparison (20,000 parses for 1,000 targets).
	type keyed struct {
		ip netip.Addr
		d  api.TargetHealthDescription
	}
	ks := make([]keyed, len(ts))
	for i, d := range ts {
		ks[i] = keyed{netip.MustParseAddr(d.Target.IP), d}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := a.ip.Compare(b.ip); c != 0 {
			return c
		}
		return cmp.Compare(a.d.Target.Port, b.d.Target.Port)
	})
	for i := range ks {
		ts[i] = ks[i].d
	}
}

// Draining targets are removed by a timer per target, armed after the deregistration commits
// and re-armed on restart from the persisted deadline, like attach transitions.

func drainTimer(key string) string { return "drain/" + key }

// scheduleDrain arms the removal of a draining target. Caller holds s.mu.
func (s *Store) scheduleDrain(key string, deadline time.Time) {
	name := drainTimer(key)
	s.cancelTransition(name)
	s.timers[name] = time.AfterFunc(max(time.Until(deadline), 0), func() { s.completeDrain(key, deadline) })
}

func (s *Store) completeDrain(key string, deadline time.Time) {
	c := Call{Principal: Principal{Admin: true}, Now: time.Now()}
	_, err := write(s, c, "CompleteDeregistration", "", nil, func(t *tx) (*struct{}, error) {
		r := first[targetRec](t.Txn, tableTargets, indexID, key)
		if r == nil || !r.DrainDeadline.Equal(deadline) {
			return &struct{}{}, nil // re-registered, or drained again with a later deadline
		}
		return &struct{}{}, t.deleteTarget(r)
	})
	if err != nil {
		s.log.Error("remove drained target", "target", key, "err", err)
	}
}

// resumeDrains re-arms the removals that were pending when the state was saved.
func (s *Store) resumeDrains() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range listAll[targetRec](s.db.Txn(false), tableTargets) {
		if !r.DrainDeadline.IsZero() {
			s.scheduleDrain(r.Key, r.DrainDeadline)
		}
	}
}
