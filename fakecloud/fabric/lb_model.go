package fabric

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// PublicVIPPool is where internet-facing load balancers get their VIPs. The internet namespace
// routes it to the VPC router, which delivers each VIP to its load balancer's namespace.
const PublicVIPPool = "198.51.100.0/24"

// LB is a network load balancer's namespace: its link to the VPC router and its addresses (the
// base), and the forwarding program nftables runs in it.
type LB struct {
	ID    string
	VpcID string
	// Ready is set once this process has ensured the base; observed load balancers are not.
	Ready bool
	// Addr is the private address with its subnet's prefix length; Gateway the subnet gateway.
	Addr    netip.Prefix
	Gateway netip.Addr
	// VIP is the public address of an internet-facing load balancer (invalid when internal).
	VIP netip.Addr
	// Program is what nftables enforces; its Hash is how programmed and wanted are compared.
	Program LBProgram
	// Keep are the registered targets of each listener protocol, draining ones included, as
	// sorted keepKeys: connections to any other target (one whose drain deadline passed, or
	// deregistered) are cut. Nil when observed.
	Keep []string
	// App marks an application load balancer: its Program has no listeners (only the source
	// ranges' guard), and an L7 engine in its namespace serves its listeners (alb.go), which
	// AppListeners name ("HTTP/80"), for `fabric show`.
	App          bool
	AppListeners []string
}

// sameBase reports whether two load balancers have the same link and addresses.
func (l *LB) sameBase(o *LB) bool {
	return l.VpcID == o.VpcID && l.Addr == o.Addr && l.Gateway == o.Gateway && l.VIP == o.VIP
}

// LBProgram is everything the nftables table of a load balancer is built from.
type LBProgram struct {
	// Addr is the private address: the source of forwarded connections and health checks.
	Addr netip.Addr
	// VIPs are the addresses listeners answer on (the private one, and the public one if any).
	VIPs []netip.Addr
	// Allowed are the sources new connections may come from (empty: everyone). An internal load
	// balancer allows only its VPC, since the lab's internet can route to private addresses.
	Allowed   []netip.Prefix
	Listeners []LBListener
	// App is an application load balancer's program: no listeners and no NAT chains, only the
	// guard, so its namespace runs no conntrack unless the guard has source ranges to enforce
	// (the L7 engine's sockets answer every connection; nothing there is translated).
	App bool
	// Hash identifies the program (zero for one observed without its hash, which forces a rewrite).
	Hash string
}

// LBListener forwards new connections on a protocol and port to some of its targets.
type LBListener struct {
	Protocol string // "tcp" or "udp", as nftables spells it
	Port     int
	// Targets are the ones new connections go to, in a stable order.
	Targets []TargetAddr
}

// TargetAddr is a target's (IP, port).
type TargetAddr struct {
	IP   netip.Addr
	Port int
}

func (t TargetAddr) String() string { return t.AddrPort().String() }

// AddrPort is the target as a netip.AddrPort.
func (t TargetAddr) AddrPort() netip.AddrPort { return netip.AddrPortFrom(t.IP, uint16(t.Port)) }

// keepKey names a target as connections to it are tracked: by protocol, IP and port.
func keepKey(proto string, t TargetAddr) string { return proto + " " + t.String() }

func compareTargets(a, b TargetAddr) int {
	if c := a.IP.Compare(b.IP); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}

// Check is one target a load balancer health-checks, with how.
type Check struct {
	LB string
	// Source is the load balancer's private address, which the checks come from.
	Source        netip.Addr
	TargetGroupID string
	Target        TargetAddr
	HealthCheck   api.HealthCheck
	// State and Reason are the control plane's current view, which a new checker starts from.
	State, Reason string
	// App marks a target of an application load balancer, which its engine's checker probes
	// (GRPC: with the gRPC health service); the others are probed by the network load
	// balancer's checker (lb_health.go). Both are an l7.Checker.
	App, GRPC bool
	// ClientCertificateID is an HTTPS or TLS application group's client certificate, which its
	// HTTPS and TLS checks present (a target that requires one would fail them all otherwise).
	ClientCertificateID string
	// TLSGroup marks a TLS group's target, whose TLS checks verify it as TLSVerification says
	// (nil: not verified), as the group's connections do.
	TLSGroup        bool
	TLSVerification *api.TLSVerification
}

// lbSnapshot indexes the load-balancer part of a snapshot.
type lbSnapshot struct {
	listeners map[string][]api.Listener                // by load balancer
	groups    map[string]api.TargetGroup               // by ID
	targets   map[string][]api.TargetHealthDescription // by target group
}

func indexLBs(snap *api.Snapshot) lbSnapshot {
	ix := lbSnapshot{listeners: map[string][]api.Listener{}, groups: map[string]api.TargetGroup{},
		targets: map[string][]api.TargetHealthDescription{}}
	for _, l := range snap.Listeners {
		ix.listeners[l.LoadBalancerID] = append(ix.listeners[l.LoadBalancerID], l)
	}
	for _, g := range snap.TargetGroups {
		ix.groups[g.TargetGroupID] = g
	}
	for _, t := range snap.Targets {
		ix.targets[t.TargetGroupID] = append(ix.targets[t.TargetGroupID], t)
	}
	return ix
}

// addLBs adds the snapshot's load balancers to a desired World and returns the health checks
// they run. Malformed entries are skipped and reported.
func (w *World) addLBs(snap *api.Snapshot, subnets map[string]subnetInfo) ([]Check, error) {
	ix := indexALBs(snap)
	w.apps = &ix
	var checks []Check
	var errs []error
	for i := range snap.LoadBalancers {
		lb := &snap.LoadBalancers[i]
		r := w.Routers[lb.VpcID]
		if r == nil {
			continue
		}
		d, err := desiredLB(lb, r.CIDR, subnets, ix.lbSnapshot)
		if err != nil {
			errs = append(errs, err)
			w.LBFailures[lb.LoadBalancerID] = err.Error()
			continue
		}
		w.LBs[d.ID] = d
		if d.App {
			checks = append(checks, albChecks(d, ix)...)
		} else {
			checks = append(checks, lbChecks(d, ix.lbSnapshot)...)
		}
	}
	return checks, errors.Join(errs...)
}

func desiredLB(lb *api.LoadBalancer, vpcCIDR netip.Prefix, subnets map[string]subnetInfo, ix lbSnapshot) (*LB, error) {
	sn, ok := subnets[lb.SubnetID]
	if !ok {
		return nil, fmt.Errorf("load balancer %s: unknown subnet %s", lb.LoadBalancerID, lb.SubnetID)
	}
	priv, err := netip.ParseAddr(lb.PrivateIPAddress)
	if err != nil {
		return nil, fmt.Errorf("load balancer %s: private ip %q: %w", lb.LoadBalancerID, lb.PrivateIPAddress, err)
	}
	d := &LB{ID: lb.LoadBalancerID, VpcID: lb.VpcID, Addr: netip.PrefixFrom(priv, sn.cidr.Bits()), Gateway: sn.gateway}
	prog := LBProgram{Addr: priv, VIPs: []netip.Addr{priv}}
	if lb.Scheme == api.SchemeInternetFacing && lb.PublicIPAddress != "" {
		if d.VIP, err = netip.ParseAddr(lb.PublicIPAddress); err != nil {
			return nil, fmt.Errorf("load balancer %s: public ip %q: %w", lb.LoadBalancerID, lb.PublicIPAddress, err)
		}
		prog.VIPs = append(prog.VIPs, d.VIP)
	}
	if prog.Allowed, err = allowedSources(lb, vpcCIDR); err != nil {
		return nil, err
	}
	// An application load balancer's listeners are its L7 engine's: its program only guards.
	d.App = lb.Type == api.LoadBalancerTypeApplication
	prog.App = d.App
	for _, l := range ix.listeners[lb.LoadBalancerID] {
		if d.App {
			d.AppListeners = append(d.AppListeners, fmt.Sprintf("%s/%d", l.Protocol, l.Port))
			continue
		}
		proto := strings.ToLower(l.Protocol)
		if (proto != "tcp" && proto != "udp") || l.Port < 1 || l.Port > 65535 {
			return nil, fmt.Errorf("load balancer %s: listener %s: %s port %d is not a TCP or UDP port",
				lb.LoadBalancerID, l.ListenerID, l.Protocol, l.Port)
		}
		var targets []TargetAddr
		for _, a := range l.DefaultActions {
			targets = append(targets, eligibleTargets(ix.targets[a.TargetGroupID])...)
			for _, t := range ix.targets[a.TargetGroupID] {
				if ta, ok := parseTarget(t.Target); ok {
					d.Keep = append(d.Keep, keepKey(proto, ta))
				}
			}
		}
		slices.SortFunc(targets, compareTargets)
		prog.Listeners = append(prog.Listeners, LBListener{Protocol: proto, Port: l.Port, Targets: slices.Compact(targets)})
	}
	slices.SortFunc(prog.Listeners, func(a, b LBListener) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
	})
	slices.Sort(d.AppListeners)
	slices.Sort(d.Keep)
	d.Keep = slices.Compact(d.Keep)
	_, prog.Hash = RenderLBProgram(prog)
	d.Program = prog
	return d, nil
}

// allowedSources is what new connections may come from: the source ranges (everyone when
// empty), narrowed to the VPC for an internal load balancer.
func allowedSources(lb *api.LoadBalancer, vpcCIDR netip.Prefix) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range lb.SourceRanges {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("load balancer %s: source range %q is not an IPv4 CIDR", lb.LoadBalancerID, s)
		}
		out = append(out, p.Masked())
	}
	if lb.Scheme == api.SchemeInternetFacing {
		return out, nil
	}
	if len(out) == 0 {
		return []netip.Prefix{vpcCIDR}, nil
	}
	// Internal: keep each range's part inside the VPC (CIDRs nest or are disjoint).
	var in []netip.Prefix
	for _, p := range out {
		switch {
		case vpcCIDR.Bits() <= p.Bits() && vpcCIDR.Contains(p.Addr()):
			in = append(in, p)
		case p.Bits() < vpcCIDR.Bits() && p.Contains(vpcCIDR.Addr()):
			in = append(in, vpcCIDR)
		}
	}
	if len(in) == 0 {
		// No range reaches into the VPC: nothing may connect. A /32 nobody holds says so.
		in = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}
	}
	return in, nil
}

// eligibleTargets are the targets of a group that get new connections: the healthy ones, or,
// when none is healthy, every registered one that is not draining (an NLB fails open).
func eligibleTargets(ts []api.TargetHealthDescription) []TargetAddr {
	var healthy, open []TargetAddr
	for _, t := range ts {
		a, ok := parseTarget(t.Target)
		if !ok || t.TargetHealth.State == api.TargetHealthDraining || t.TargetHealth.State == api.TargetHealthUnused {
			continue
		}
		open = append(open, a)
		if t.TargetHealth.State == api.TargetHealthHealthy {
			healthy = append(healthy, a)
		}
	}
	if len(healthy) > 0 {
		return healthy
	}
	return open
}

func parseTarget(t api.Target) (TargetAddr, bool) {
	ip, err := netip.ParseAddr(t.IP)
	if err != nil || !ip.Is4() || t.Port < 1 || t.Port > 65535 {
		return TargetAddr{}, false
	}
	return TargetAddr{IP: ip, Port: t.Port}, true
}

// lbChecks lists the health checks of a load balancer's target groups: every registered target
// that is not draining.
func lbChecks(lb *LB, ix lbSnapshot) []Check {
	var out []Check
	seen := map[string]bool{}
	for _, l := range ix.listeners[lb.ID] {
		for _, a := range l.DefaultActions {
			g, ok := ix.groups[a.TargetGroupID]
			if !ok || seen[g.TargetGroupID] {
				continue
			}
			seen[g.TargetGroupID] = true
			for _, t := range ix.targets[g.TargetGroupID] {
				addr, ok := parseTarget(t.Target)
				if !ok || t.TargetHealth.State == api.TargetHealthDraining || t.TargetHealth.State == api.TargetHealthUnused {
					continue
				}
				out = append(out, Check{LB: lb.ID, Source: lb.Addr.Addr(), TargetGroupID: g.TargetGroupID, Target: addr,
					HealthCheck: withCheckDefaults(g.HealthCheck), State: t.TargetHealth.State, Reason: t.TargetHealth.Reason})
			}
		}
	}
	return out
}

// withCheckDefaults fills what the control plane left zero with NLB's defaults.
func withCheckDefaults(hc api.HealthCheck) api.HealthCheck {
	hc.Protocol = cmp.Or(strings.ToUpper(hc.Protocol), api.ProtocolTCP)
	hc.Port = cmp.Or(hc.Port, api.HealthCheckPortTraffic)
	hc.IntervalSeconds = cmp.Or(hc.IntervalSeconds, 10)
	hc.TimeoutSeconds = cmp.Or(hc.TimeoutSeconds, 10)
	hc.HealthyThresholdCount = cmp.Or(hc.HealthyThresholdCount, 3)
	hc.UnhealthyThresholdCount = cmp.Or(hc.UnhealthyThresholdCount, 3)
	if hc.Protocol == api.ProtocolHTTP {
		hc.Path = cmp.Or(hc.Path, "/")
		hc.Matcher = cmp.Or(hc.Matcher, "200-399")
	}
	return hc
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }
