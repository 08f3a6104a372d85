package deploy

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// Observed is the cloud state a plan starts from: one Service's resources, whatever their
// incarnation.
type Observed struct {
	LoadBalancers []providers.LoadBalancer
	TargetGroups  []providers.TargetGroup
	// Targets holds the registered targets of each group the model keeps, by group ID.
	Targets map[string][]providers.TargetHealth
}

// Observe reads what a plan for lb needs: the owner's load balancers and target groups, and the
// targets of the groups lb keeps (one call per group).
func Observe(ctx context.Context, p providers.LoadBalancing, lb *model.LoadBalancer) (Observed, error) {
	return observe(ctx, p, lb, ownerTags(lb.Owner))
}

// observe is Observe of the resources carrying every tag of owner.
func observe(ctx context.Context, p providers.LoadBalancing, lb *model.LoadBalancer, owner map[string]string) (Observed, error) {
	obs := Observed{Targets: map[string][]providers.TargetHealth{}}
	var err error
	if obs.LoadBalancers, err = p.ListLoadBalancers(ctx, owner); err != nil {
		return obs, fmt.Errorf("list the load balancers of %s: %w", lb.Owner.Key(), err)
	}
	if obs.TargetGroups, err = p.ListTargetGroups(ctx, owner); err != nil {
		return obs, fmt.Errorf("list the target groups of %s: %w", lb.Owner.Key(), err)
	}
	for _, want := range lb.TargetGroups {
		if i := findTargetGroup(obs.TargetGroups, want.Name, lb.Owner.UID); i >= 0 {
			id := obs.TargetGroups[i].ID
			ths, err := p.DescribeTargets(ctx, id)
			if err != nil {
				return obs, fmt.Errorf("describe the targets of target group %s: %w", id, err)
			}
			obs.Targets[id] = ths
		}
	}
	return obs, nil
}

func findTargetGroup(tgs []providers.TargetGroup, name, uid string) int {
	return slices.IndexFunc(tgs, func(tg providers.TargetGroup) bool {
		return tg.Name == name && tg.Tags[model.TagServiceUID] == uid
	})
}

// OpKind names one cloud operation of a plan.
type OpKind string

// The operations a plan is made of.
const (
	OpDeleteLoadBalancer OpKind = "delete-load-balancer"
	OpCreateLoadBalancer OpKind = "create-load-balancer"
	OpSetSourceRanges    OpKind = "set-source-ranges"
	OpCreateTargetGroup  OpKind = "create-target-group"
	OpUpdateTargetGroup  OpKind = "update-target-group"
	OpDeleteListener     OpKind = "delete-listener"
	OpCreateListener     OpKind = "create-listener"
	OpDeregisterTargets  OpKind = "deregister-targets"
	OpRegisterTargets    OpKind = "register-targets"
	OpDeleteTargetGroup  OpKind = "delete-target-group"
	// OpTagResources keeps the user tags of existing resources in step (Op.Tags).
	OpTagResources OpKind = "tag-resources"
)

// Op is one cloud operation. ID is the existing resource it acts on; TargetGroup names the
// model's target group when the group's ID is known only once Apply has created it.
type Op struct {
	Kind        OpKind
	ID          string
	TargetGroup string
	// Exactly one of these carries the operation's arguments, as its kind needs.
	LoadBalancer        *providers.LoadBalancerSpec
	TargetGroupSpec     *providers.TargetGroupSpec
	SourceRanges        []netip.Prefix
	HealthCheck         providers.HealthCheck
	DeregistrationDelay time.Duration
	Protocol            string
	Port                int
	Targets             []providers.Target
	Tags                *tagChange
}

// Plan is the ordered list of cloud operations that takes the observed state to the model.
type Plan struct {
	// LoadBalancer is the kept load balancer; nil when the plan creates one.
	LoadBalancer *providers.LoadBalancer
	// TargetGroups maps each kept model target group's name to its cloud ID.
	TargetGroups map[string]string
	Ops          []Op
	// Token is the intent client tokens derive from.
	Token string
}

// PlanDeploy computes, without calling the cloud, the operations that make obs match lb, in the
// order they must run: the load balancers not kept go first (their listeners hold groups the
// wanted one may need), then the load balancer and its source ranges, the target groups, the
// listeners, the targets (deregistrations before registrations, one call each way per group), and
// last the groups no listener of ours forwards to any more. A draining target that is wanted again
// is registered (live again); one not wanted is left to finish draining. A load balancer at a
// new static address is created before the one it replaces (same incarnation and scheme) is
// deleted, so that an address the cloud refuses leaves the old one serving (Deploy then keeps
// its targets in step); those of another incarnation or scheme go before it, so that one of them
// holding the address does not block it.
func PlanDeploy(lb *model.LoadBalancer, obs Observed, token string) Plan {
	pl := Plan{TargetGroups: map[string]string{}, Token: token}
	kept := keptService(obs.LoadBalancers, lb)
	if kept >= 0 {
		pl.LoadBalancer = &obs.LoadBalancers[kept]
	}
	var replaced []Op // deleted after the create
	for i, l := range obs.LoadBalancers {
		switch {
		case i == kept:
		case lb.Address.IsValid() && kept < 0 && fitsService(l, lb):
			replaced = append(replaced, Op{Kind: OpDeleteLoadBalancer, ID: l.ID})
		default:
			pl.add(Op{Kind: OpDeleteLoadBalancer, ID: l.ID})
		}
	}
	if pl.LoadBalancer == nil {
		pl.add(Op{Kind: OpCreateLoadBalancer, LoadBalancer: &providers.LoadBalancerSpec{
			Name: lb.Name, Internal: lb.Scheme == model.SchemeInternal, Address: lb.Address, Tags: withUserTags(lb.Tags, lb.UserTags),
			ClientToken: clientToken(token, lb.Name),
		}})
	}
	pl.Ops = append(pl.Ops, replaced...)
	lbID := ""
	if pl.LoadBalancer != nil {
		lbID = pl.LoadBalancer.ID
	}
	var haveRanges []netip.Prefix
	if pl.LoadBalancer != nil {
		haveRanges = pl.LoadBalancer.SourceRanges
	}
	if !slices.Equal(haveRanges, lb.SourceRanges) {
		pl.add(Op{Kind: OpSetSourceRanges, ID: lbID, SourceRanges: lb.SourceRanges})
	}

	for _, want := range lb.TargetGroups {
		hc := healthCheck(want.HealthCheck)
		delay := time.Duration(want.DeregistrationDelaySeconds) * time.Second
		i := findTargetGroup(obs.TargetGroups, want.Name, lb.Owner.UID)
		if i < 0 {
			pl.add(Op{Kind: OpCreateTargetGroup, TargetGroup: want.Name, TargetGroupSpec: &providers.TargetGroupSpec{
				Name: want.Name, Protocol: want.Protocol, Port: want.Port, HealthCheck: hc,
				DeregistrationDelay: delay, Tags: withUserTags(want.Tags, lb.UserTags), ClientToken: clientToken(token, want.Name),
			}})
			continue
		}
		tg := obs.TargetGroups[i]
		pl.TargetGroups[want.Name] = tg.ID
		if tg.HealthCheck != hc || tg.DeregistrationDelay != delay {
			pl.add(Op{Kind: OpUpdateTargetGroup, ID: tg.ID, TargetGroup: want.Name, HealthCheck: hc, DeregistrationDelay: delay})
		}
	}

	pl.planListeners(lb)
	for _, tg := range lb.TargetGroups {
		pl.planTargets(tg, obs.Targets[pl.TargetGroups[tg.Name]])
	}
	var retag []taggedResource
	if pl.LoadBalancer != nil {
		retag = append(retag, taggedResource{kind: "load balancer", id: pl.LoadBalancer.ID, tags: pl.LoadBalancer.Tags})
	}
	for _, tg := range obs.TargetGroups {
		if id, ok := pl.TargetGroups[tg.Name]; ok && id == tg.ID {
			retag = append(retag, taggedResource{kind: "target group", id: tg.ID, tags: tg.Tags})
			continue
		}
		pl.add(Op{Kind: OpDeleteTargetGroup, ID: tg.ID})
	}
	// Last: tags change nothing that serves.
	for _, c := range planTagChanges(retag, lb.UserTags) {
		pl.add(Op{Kind: OpTagResources, Tags: &c})
	}
	return pl
}

func (pl *Plan) add(op Op) { pl.Ops = append(pl.Ops, op) }

// keptService is which of the Service's load balancers serves on (an index of lbs; -1: one is
// to be created): only one of the model's incarnation and scheme (fitsService), chosen by kept.
func keptService(lbs []providers.LoadBalancer, lb *model.LoadBalancer) int {
	cs := make([]keptCandidate, len(lbs))
	for i, l := range lbs {
		cs[i] = keptCandidate{id: l.ID, name: l.Name, vip: l.VIP, listeners: len(l.Listeners), fits: fitsService(l, lb)}
	}
	return kept(cs, lb.Name, lb.Address)
}

// keptCandidate is what kept reads of one of an owner's load balancers; fits: it may serve the
// owner at all.
type keptCandidate struct {
	id, name  string
	vip       netip.Addr
	listeners int
	fits      bool
}

// kept is which of an owner's load balancers serves on (-1: one is to be created), among those
// that fit. With a static address, the one at that address, whatever its name (a user may pin
// the address the cloud gave); else the one named name, or failing that another (dropping the
// address keeps the load balancer where it is): the one with the most listeners, then the
// lowest ID, so that a move cut short between its create and its delete is settled the same
// way every pass. Services (keptService) and Gateways (keptLoadBalancer) choose alike.
func kept(cs []keptCandidate, name string, address netip.Addr) int {
	if address.IsValid() {
		return slices.IndexFunc(cs, func(c keptCandidate) bool { return c.fits && c.vip == address })
	}
	if i := slices.IndexFunc(cs, func(c keptCandidate) bool { return c.fits && c.name == name }); i >= 0 {
		return i
	}
	best := -1
	for i, c := range cs {
		if !c.fits {
			continue
		}
		if best < 0 || c.listeners > cs[best].listeners || c.listeners == cs[best].listeners && c.id < cs[best].id {
			best = i
		}
	}
	return best
}

// fitsService: l belongs to lb's incarnation (UID) and has its scheme, so it may serve lb.
func fitsService(l providers.LoadBalancer, lb *model.LoadBalancer) bool {
	return l.Tags[model.TagServiceUID] == lb.Owner.UID && l.Internal == (lb.Scheme == model.SchemeInternal)
}

// planListeners replaces a listener whose target group changed, removes the unwanted ones first
// and adds the missing ones. A group still to be created has no listener yet.
func (pl *Plan) planListeners(lb *model.LoadBalancer) {
	type key struct {
		proto string
		port  int
	}
	want := map[key]string{}
	for _, l := range lb.Listeners {
		want[key{l.Protocol, l.Port}] = pl.TargetGroups[l.TargetGroup]
	}
	have := map[key]bool{}
	if pl.LoadBalancer != nil {
		for _, l := range pl.LoadBalancer.Listeners {
			k := key{l.Protocol, l.Port}
			if tg, ok := want[k]; ok && tg != "" && tg == l.TargetGroupID {
				have[k] = true
				continue
			}
			pl.add(Op{Kind: OpDeleteListener, ID: l.ID, Protocol: l.Protocol, Port: l.Port})
		}
	}
	for _, l := range lb.Listeners {
		if !have[key{l.Protocol, l.Port}] {
			pl.add(Op{Kind: OpCreateListener, TargetGroup: l.TargetGroup, Protocol: l.Protocol, Port: l.Port})
		}
	}
}

// planTargets registers the wanted targets that are not live and deregisters the live ones not
// wanted. Deregistrations go first: a group near its target limit makes room before new targets
// arrive.
func (pl *Plan) planTargets(tg model.TargetGroup, actual []providers.TargetHealth) {
	live := make(map[providers.Target]bool, len(actual))
	for _, th := range actual {
		if th.State != providers.HealthDraining {
			live[th.Target] = true
		}
	}
	wanted := make(map[providers.Target]bool, len(tg.Targets))
	var reg []providers.Target
	for _, t := range tg.Targets {
		pt := providers.Target{IP: t.IP, Port: t.Port}
		if wanted[pt] {
			continue
		}
		wanted[pt] = true
		if !live[pt] {
			reg = append(reg, pt)
		}
	}
	var dereg []providers.Target
	for _, th := range actual {
		if live[th.Target] && !wanted[th.Target] {
			dereg = append(dereg, th.Target)
		}
	}
	id := pl.TargetGroups[tg.Name]
	if len(dereg) > 0 {
		pl.add(Op{Kind: OpDeregisterTargets, ID: id, TargetGroup: tg.Name, Targets: dereg})
	}
	if len(reg) > 0 {
		pl.add(Op{Kind: OpRegisterTargets, ID: id, TargetGroup: tg.Name, Targets: reg})
	}
}

// String renders an operation on one line, as logs and golden files show it.
func (op Op) String() string {
	var b strings.Builder
	b.WriteString(string(op.Kind))
	arg := func(k string, v any) { fmt.Fprintf(&b, " %s=%v", k, v) }
	if op.ID != "" {
		arg("id", op.ID)
	}
	if op.TargetGroup != "" {
		arg("group", op.TargetGroup)
	}
	switch op.Kind {
	case OpCreateLoadBalancer:
		s := op.LoadBalancer
		arg("name", s.Name)
		arg("internal", s.Internal)
		if s.Address.IsValid() {
			arg("address", s.Address)
		}
		arg("token", s.ClientToken)
	case OpSetSourceRanges:
		arg("ranges", op.SourceRanges)
	case OpCreateTargetGroup:
		s := op.TargetGroupSpec
		fmt.Fprintf(&b, " %s/%d", s.Protocol, s.Port)
		writeHealthCheck(&b, s.HealthCheck, s.DeregistrationDelay)
		arg("token", s.ClientToken)
	case OpUpdateTargetGroup:
		writeHealthCheck(&b, op.HealthCheck, op.DeregistrationDelay)
	case OpCreateListener, OpDeleteListener:
		fmt.Fprintf(&b, " %s/%d", op.Protocol, op.Port)
	case OpTagResources:
		arg("ids", strings.Join(op.Tags.IDs, ","))
		for _, k := range slices.Sorted(maps.Keys(op.Tags.Add)) {
			fmt.Fprintf(&b, " +%s=%s", k, op.Tags.Add[k])
		}
		for _, k := range op.Tags.Remove {
			fmt.Fprintf(&b, " -%s", k)
		}
	case OpRegisterTargets, OpDeregisterTargets:
		arg("n", len(op.Targets))
		for _, t := range op.Targets {
			fmt.Fprintf(&b, " %s", netip.AddrPortFrom(t.IP, uint16(t.Port)))
		}
	}
	return b.String()
}

func writeHealthCheck(b *strings.Builder, hc providers.HealthCheck, delay time.Duration) {
	fmt.Fprintf(b, " health=%s:%d%s every=%s timeout=%s healthy=%d unhealthy=%d deregistration-delay=%s",
		hc.Protocol, hc.Port, hc.Path, hc.Interval, hc.Timeout, hc.HealthyThreshold, hc.UnhealthyThreshold, delay)
}

// Apply carries out a plan's operations in order, stopping at the first error; the result says
// what the cloud holds so far.
func Apply(ctx context.Context, p providers.LoadBalancing, pl Plan) (Result, error) {
	res := Result{TargetGroups: map[string]string{}}
	for name, id := range pl.TargetGroups {
		res.TargetGroups[name] = id
	}
	cur := pl.LoadBalancer
	setLB := func() {
		res.LoadBalancerID, res.VIP, res.State, res.StateReason = cur.ID, cur.VIP, cur.State, cur.StateReason
	}
	if cur != nil {
		setLB()
	}
	for _, op := range pl.Ops {
		tgID := op.ID
		if tgID == "" && op.TargetGroup != "" {
			tgID = res.TargetGroups[op.TargetGroup]
		}
		switch op.Kind {
		case OpDeleteLoadBalancer:
			if err := p.DeleteLoadBalancer(ctx, op.ID); err != nil {
				return res, fmt.Errorf("delete load balancer %s (replaced): %w", op.ID, err)
			}
		case OpCreateLoadBalancer:
			created, err := p.CreateLoadBalancer(ctx, *op.LoadBalancer)
			if err != nil {
				return res, fmt.Errorf("create load balancer %s: %w", op.LoadBalancer.Name, err)
			}
			cur, res.Created = &created, true
			setLB()
		case OpSetSourceRanges:
			if err := p.SetSourceRanges(ctx, cur.ID, op.SourceRanges); err != nil {
				return res, fmt.Errorf("set the source ranges of load balancer %s: %w", cur.ID, err)
			}
		case OpCreateTargetGroup:
			s := op.TargetGroupSpec
			tg, err := p.CreateTargetGroup(ctx, *s)
			if err != nil {
				return res, fmt.Errorf("create target group %s for port %s/%d: %w", s.Name, s.Protocol, s.Port, err)
			}
			res.TargetGroups[op.TargetGroup] = tg.ID
		case OpUpdateTargetGroup:
			if err := p.UpdateTargetGroup(ctx, op.ID, op.HealthCheck, op.DeregistrationDelay); err != nil {
				return res, fmt.Errorf("update the health check of target group %s: %w", op.ID, err)
			}
		case OpDeleteListener:
			if err := p.DeleteListener(ctx, op.ID); err != nil {
				return res, fmt.Errorf("delete listener %s (%s/%d) of load balancer %s: %w", op.ID, op.Protocol, op.Port, cur.ID, err)
			}
		case OpCreateListener:
			spec := providers.ListenerSpec{Protocol: op.Protocol, Port: op.Port, TargetGroupID: tgID,
				ClientToken: clientToken(pl.Token, fmt.Sprintf("%s/%s/%d/%s", cur.ID, op.Protocol, op.Port, tgID))}
			if _, err := p.CreateListener(ctx, cur.ID, spec); err != nil {
				return res, fmt.Errorf("create listener %s/%d on load balancer %s: %w", op.Protocol, op.Port, cur.ID, err)
			}
		case OpDeregisterTargets:
			if err := p.DeregisterTargets(ctx, tgID, op.Targets); err != nil {
				return res, fmt.Errorf("deregister %d targets from target group %s: %w", len(op.Targets), tgID, err)
			}
			res.Deregistered += len(op.Targets)
		case OpRegisterTargets:
			if err := p.RegisterTargets(ctx, tgID, op.Targets); err != nil {
				return res, fmt.Errorf("register %d targets in target group %s: %w", len(op.Targets), tgID, err)
			}
			res.Registered += len(op.Targets)
		case OpDeleteTargetGroup:
			if err := p.DeleteTargetGroup(ctx, op.ID); err != nil {
				return res, fmt.Errorf("delete target group %s, no longer used: %w", op.ID, err)
			}
		case OpTagResources:
			if err := op.Tags.apply(ctx, p); err != nil {
				return res, err
			}
		default:
			return res, fmt.Errorf("plan operation %q unknown", op.Kind)
		}
	}
	return res, nil
}

// targetSyncer is what syncing a group's targets needs of a cloud.
type targetSyncer interface {
	DescribeTargets(ctx context.Context, tgID string) ([]providers.TargetHealth, error)
	RegisterTargets(ctx context.Context, tgID string, targets []providers.Target) error
	DeregisterTargets(ctx context.Context, tgID string, targets []providers.Target) error
}

// syncTargets plans and applies one group's targets (the Gateway path): a describe, then at most
// one call each way.
func syncTargets(ctx context.Context, p targetSyncer, tgID string, want []model.Target) (int, int, error) {
	actual, err := p.DescribeTargets(ctx, tgID)
	if err != nil {
		return 0, 0, fmt.Errorf("describe the targets of target group %s: %w", tgID, err)
	}
	pl := Plan{TargetGroups: map[string]string{"": tgID}}
	pl.planTargets(model.TargetGroup{Targets: want}, actual)
	reg, dereg := 0, 0
	for _, op := range pl.Ops {
		switch op.Kind {
		case OpDeregisterTargets:
			if err := p.DeregisterTargets(ctx, tgID, op.Targets); err != nil {
				return 0, 0, fmt.Errorf("deregister %d targets from target group %s: %w", len(op.Targets), tgID, err)
			}
			dereg = len(op.Targets)
		case OpRegisterTargets:
			if err := p.RegisterTargets(ctx, tgID, op.Targets); err != nil {
				return 0, dereg, fmt.Errorf("register %d targets in target group %s: %w", len(op.Targets), tgID, err)
			}
			reg = len(op.Targets)
		}
	}
	return reg, dereg, nil
}
