package model

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Input is everything a load balancer is built from.
type Input struct {
	// Cluster names the cluster in ownership tags, so clusters sharing an account never touch
	// each other's load balancers.
	Cluster string
	// DefaultScheme is the scheme when the Service's annotation does not say; empty is
	// DefaultScheme.
	DefaultScheme string
	Service       *corev1.Service
	// Slices are the Service's EndpointSlices (label kubernetes.io/service-name).
	Slices []discoveryv1.EndpointSlice
	// Registrable are pods ("namespace/name") that carry the readiness gate and whose containers
	// are ready: they are registered while not Ready, because the gate waits for their health in
	// the load balancer (without this, gate and registration would wait for each other).
	Registrable map[string]bool
	// NoStaticAddresses: the cloud creates load balancers only at addresses of its choosing
	// (providers.Capabilities.StaticAddresses false: the AWS driver), so a Service that pins
	// one (AnnotationAddress, spec.loadBalancerIP) is invalid.
	NoStaticAddresses bool
}

// Build translates a Service into its desired load balancer, or an *InvalidError naming every
// problem of the Service.
func Build(in Input) (*LoadBalancer, error) {
	svc := in.Service
	var p problems
	s := parseAnnotations(svc.Annotations, cmp.Or(in.DefaultScheme, DefaultScheme), &p)
	ranges := parseSourceRanges(svc.Spec.LoadBalancerSourceRanges, "spec.loadBalancerSourceRanges", &p)
	if len(svc.Spec.LoadBalancerSourceRanges) == 0 {
		if v := svc.Annotations[AnnotationLegacySourceRanges]; v != "" {
			ranges = parseSourceRanges(strings.Split(v, ","), "annotation "+AnnotationLegacySourceRanges, &p)
		}
	}
	addr := parseAddress(svc, in.NoStaticAddresses, &p)
	userTags := parseTags(svc.Annotations, &p)
	if n := len(svc.Spec.Ports); n == 0 {
		p.addf("the Service has no ports: a load balancer needs at least one")
	} else if n > MaxListeners {
		p.addf("the Service has %d ports, a load balancer serves at most %d: split it into several Services", n, MaxListeners)
	}
	for i, sp := range svc.Spec.Ports {
		switch sp.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, "":
		default:
			p.addf("spec.ports[%d] (%s) uses protocol %s: only TCP and UDP are supported", i, portLabel(sp), sp.Protocol)
		}
		if sp.Port < 1 || sp.Port > 65535 {
			p.addf("spec.ports[%d] port %d is out of range: use 1 to 65535", i, sp.Port)
		}
	}
	if len(p) > 0 {
		return nil, &InvalidError{Problems: p}
	}

	owner := Owner{Cluster: in.Cluster, Namespace: svc.Namespace, Name: svc.Name, UID: string(svc.UID)}
	lbName := name(in.Cluster, string(svc.UID), s.scheme)
	if addr.IsValid() {
		// A load balancer's address is fixed when it is created: another address is another
		// load balancer (deploy creates it before it deletes the old one).
		lbName = name(in.Cluster, string(svc.UID), s.scheme, addr.String())
	}
	lb := &LoadBalancer{
		Name:         lbName,
		Scheme:       s.scheme,
		Address:      addr,
		SourceRanges: ranges,
		Tags:         owner.Tags(),
		UserTags:     userTags,
		Owner:        owner,
	}
	for _, sp := range svc.Spec.Ports {
		proto := string(sp.Protocol)
		if proto == "" {
			proto = ProtocolTCP
		}
		tg := TargetGroup{
			Name:                       name(in.Cluster, string(svc.UID), proto, strconv.Itoa(int(sp.Port))),
			ServicePort:                sp.Name,
			Protocol:                   proto,
			Port:                       int(sp.Port),
			HealthCheck:                s.hc,
			DeregistrationDelaySeconds: s.deregDelay,
			Tags:                       owner.Tags(),
		}
		tg.Tags[TagPort] = proto + "/" + strconv.Itoa(int(sp.Port))
		tg.Targets, tg.Draining = targets(in, sp.Name, corev1.Protocol(proto))
		lb.TargetGroups = append(lb.TargetGroups, tg)
		lb.Listeners = append(lb.Listeners, Listener{Protocol: proto, Port: int(sp.Port), TargetGroup: tg.Name})
	}
	slices.SortFunc(lb.Listeners, func(a, b Listener) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	slices.SortFunc(lb.TargetGroups, func(a, b TargetGroup) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	return lb, nil
}

// parseAddress reads the address the Service pins its load balancer at: the annotation, or
// the deprecated spec.loadBalancerIP; the zero Addr when neither is given.
func parseAddress(svc *corev1.Service, noStatic bool, p *problems) netip.Addr {
	ann, annGiven := svc.Annotations[AnnotationAddress]
	field := svc.Spec.LoadBalancerIP
	v, where := ann, "annotation "+AnnotationAddress
	switch {
	case annGiven && field != "" && ann != field:
		p.addf("annotation %s is %q but spec.loadBalancerIP is %q: give the address once (the annotation; the field is deprecated)", AnnotationAddress, ann, field)
		return netip.Addr{}
	case !annGiven:
		v, where = field, "spec.loadBalancerIP"
	}
	if !annGiven && field == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(v)
	switch {
	case err != nil || a.Zone() != "":
		p.addf("%s is %q: use an IPv4 address, like 198.51.100.7", where, v)
	case !a.Is4():
		p.addf("%s is %s: load balancers here have IPv4 addresses only", where, v)
	case noStatic:
		p.addf("%s asks for address %s, but this cloud's load balancers take no address of the caller's choosing: remove it", where, v)
	default:
		return a
	}
	return netip.Addr{}
}

func portLabel(sp corev1.ServicePort) string {
	if sp.Name != "" {
		return sp.Name
	}
	return strconv.Itoa(int(sp.Port))
}

// name derives a cloud name (at most 32 letters, digits and hyphens) from parts: stable for the
// same parts, so a create repeated after a crash finds what the first one made.
func name(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "k8s-" + hex.EncodeToString(sum[:])[:24]
}

func targets(in Input, portName string, proto corev1.Protocol) (live, draining []Target) {
	return Endpoints(in.Slices, in.Service.Namespace, portName, proto, in.Registrable)
}

// Endpoints returns the endpoints of one Service port (its name and protocol) in the Service's
// EndpointSlices: those taking new connections, and those serving but terminating, which must
// drain. Endpoints of several slices are merged; IPv6 and FQDN slices are skipped (load
// balancers here are IPv4). namespace is the Service's, for target references that name none;
// registrable is as Input.Registrable. The Gateway API translator resolves backends with it too,
// so both kinds of load balancer treat endpoints alike.
func Endpoints(eps []discoveryv1.EndpointSlice, namespace, portName string, proto corev1.Protocol, registrable map[string]bool) (live, draining []Target) {
	seen := map[[2]netip.AddrPort]bool{} // (address, address) live, (address, zero) draining
	for _, sl := range eps {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port := 0
		for _, ep := range sl.Ports {
			epProto := corev1.ProtocolTCP
			if ep.Protocol != nil {
				epProto = *ep.Protocol
			}
			if ep.Port != nil && ptrOr(ep.Name, "") == portName && epProto == proto {
				port = int(*ep.Port)
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || !ip.Is4() {
				continue
			}
			t := Target{IP: ip, Port: port}
			if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
				t.Pod = cmp.Or(ep.TargetRef.Namespace, namespace) + "/" + ep.TargetRef.Name
			}
			// Conditions as the EndpointSlice API defines them: ready unset is ready, serving
			// unset follows ready, terminating unset is false.
			ready := ptrOr(ep.Conditions.Ready, true)
			serving := ptrOr(ep.Conditions.Serving, ready)
			terminating := ptrOr(ep.Conditions.Terminating, false)
			ap := netip.AddrPortFrom(ip, uint16(port))
			switch {
			case terminating && serving:
				if k := [2]netip.AddrPort{ap, {}}; !seen[k] {
					seen[k] = true
					draining = append(draining, t)
				}
			case !terminating && (ready || (t.Pod != "" && registrable[t.Pod])):
				if k := [2]netip.AddrPort{ap, ap}; !seen[k] {
					seen[k] = true
					live = append(live, t)
				}
			}
		}
	}
	sortTargets(live)
	sortTargets(draining)
	// An address live in one slice and draining in another (a slice not yet updated) is live.
	draining = slices.DeleteFunc(draining, func(d Target) bool {
		_, found := slices.BinarySearchFunc(live, d, compareTargets)
		return found
	})
	return live, draining
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func compareTargets(a, b Target) int {
	return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port))
}

func sortTargets(ts []Target) { slices.SortFunc(ts, compareTargets) }

// String names a target as ip:port.
func (t Target) String() string { return fmt.Sprintf("%s:%d", t.IP, t.Port) }
