package model

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flatnet/flatnet/providers"
)

// Annotations of a Service that tune its load balancer (docs/lbcontroller.md).
const (
	AnnotationPrefix         = "lb.flatnet.io/"
	AnnotationScheme         = AnnotationPrefix + "scheme"
	AnnotationHCProtocol     = AnnotationPrefix + "healthcheck-protocol"
	AnnotationHCPort         = AnnotationPrefix + "healthcheck-port"
	AnnotationHCPath         = AnnotationPrefix + "healthcheck-path"
	AnnotationHCInterval     = AnnotationPrefix + "healthcheck-interval"
	AnnotationHCTimeout      = AnnotationPrefix + "healthcheck-timeout"
	AnnotationHCHealthy      = AnnotationPrefix + "healthcheck-healthy-threshold"
	AnnotationHCUnhealthy    = AnnotationPrefix + "healthcheck-unhealthy-threshold"
	AnnotationDeregistration = AnnotationPrefix + "deregistration-delay"
	AnnotationTargetType     = AnnotationPrefix + "target-type"
	// AnnotationAddress pins the load balancer's address (its VIP: public for an
	// internet-facing one, private for an internal one), as spec.loadBalancerIP does; that
	// field is deprecated in Kubernetes, and is read too. Needs a cloud that creates load
	// balancers at a given address (providers.Capabilities.StaticAddresses).
	AnnotationAddress = AnnotationPrefix + "address"
	// AnnotationTags are tags of the Service's load balancer and target groups, as
	// "key=value,key2=value2" (AWS's additional-resource-tags): kept in step as the annotation
	// changes, without replacing anything; tags others put there are left alone.
	AnnotationTags = AnnotationPrefix + "tags"
	// AnnotationLegacySourceRanges is Kubernetes' older way to give source ranges; it is read
	// only when spec.loadBalancerSourceRanges is empty, as kube-proxy does.
	AnnotationLegacySourceRanges = "service.beta.kubernetes.io/load-balancer-source-ranges"
)

// Defaults (those of an NLB).
const (
	DefaultIntervalSeconds     = 10
	DefaultTimeoutSeconds      = 10
	DefaultThreshold           = 3
	DefaultDeregistrationDelay = 300
	DefaultHTTPPath            = "/"
	// MaxListeners is the most ports one load balancer serves.
	MaxListeners = 50
	// MaxSourceRanges is the most source ranges one load balancer takes.
	MaxSourceRanges = 60
)

var knownAnnotations = []string{
	AnnotationScheme, AnnotationHCProtocol, AnnotationHCPort, AnnotationHCPath, AnnotationHCInterval,
	AnnotationHCTimeout, AnnotationHCHealthy, AnnotationHCUnhealthy, AnnotationDeregistration, AnnotationTargetType,
	AnnotationAddress, AnnotationTags,
}

// settings are the parsed annotations.
type settings struct {
	scheme     string
	hc         HealthCheck
	deregDelay int
}

// problems collects what is wrong with a Service.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// parseAnnotations reads the lb.flatnet.io annotations, with defaults for those not given.
func parseAnnotations(ann map[string]string, scheme string, p *problems) settings {
	s := settings{
		scheme: scheme,
		hc: HealthCheck{
			Protocol: ProtocolTCP, IntervalSeconds: DefaultIntervalSeconds, TimeoutSeconds: DefaultTimeoutSeconds,
			HealthyThresholdCount: DefaultThreshold, UnhealthyThresholdCount: DefaultThreshold,
		},
		deregDelay: DefaultDeregistrationDelay,
	}
	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, AnnotationPrefix) && !slices.Contains(knownAnnotations, k) {
			p.addf("unknown annotation %s: the known ones are %s", k, strings.Join(knownAnnotations, ", "))
		}
	}
	if v, ok := ann[AnnotationScheme]; ok {
		switch v {
		case SchemeInternal, SchemeInternetFacing:
			s.scheme = v
		default:
			p.addf("annotation %s is %q: use internal or internet-facing", AnnotationScheme, v)
		}
	}
	if v, ok := ann[AnnotationTargetType]; ok && v != "ip" {
		p.addf("annotation %s is %q: only ip is supported (targets are pod IPs)", AnnotationTargetType, v)
	}
	if v, ok := ann[AnnotationHCProtocol]; ok {
		switch strings.ToUpper(v) {
		case ProtocolTCP, ProtocolHTTP:
			s.hc.Protocol = strings.ToUpper(v)
		default:
			p.addf("annotation %s is %q: use TCP or HTTP", AnnotationHCProtocol, v)
		}
	}
	if v, ok := ann[AnnotationHCPort]; ok && v != "traffic-port" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			p.addf("annotation %s is %q: use traffic-port or a port from 1 to 65535", AnnotationHCPort, v)
		} else {
			s.hc.Port = n
		}
	}
	if v, ok := ann[AnnotationHCPath]; ok {
		switch {
		case s.hc.Protocol != ProtocolHTTP:
			p.addf("annotation %s is set but the health check protocol is %s: set %s to HTTP, or remove the path", AnnotationHCPath, s.hc.Protocol, AnnotationHCProtocol)
		case !strings.HasPrefix(v, "/") || len(v) > 1024 || strings.ContainsAny(v, " \t\r\n"):
			p.addf("annotation %s is %q: use an HTTP path that begins with / (no spaces, at most 1024 characters)", AnnotationHCPath, v)
		default:
			s.hc.Path = v
		}
	} else if s.hc.Protocol == ProtocolHTTP {
		s.hc.Path = DefaultHTTPPath
	}
	s.hc.IntervalSeconds = seconds(ann, AnnotationHCInterval, s.hc.IntervalSeconds, 5, 300, p)
	s.hc.TimeoutSeconds = seconds(ann, AnnotationHCTimeout, s.hc.TimeoutSeconds, 2, 120, p)
	s.hc.HealthyThresholdCount = count(ann, AnnotationHCHealthy, s.hc.HealthyThresholdCount, 2, 10, p)
	s.hc.UnhealthyThresholdCount = count(ann, AnnotationHCUnhealthy, s.hc.UnhealthyThresholdCount, 2, 10, p)
	if _, given := ann[AnnotationHCTimeout]; !given && s.hc.TimeoutSeconds > s.hc.IntervalSeconds {
		s.hc.TimeoutSeconds = s.hc.IntervalSeconds // a shorter interval pulls the default timeout down
	}
	if s.hc.TimeoutSeconds > s.hc.IntervalSeconds {
		p.addf("health check timeout %ds is longer than its interval %ds: lower %s or raise %s", s.hc.TimeoutSeconds, s.hc.IntervalSeconds, AnnotationHCTimeout, AnnotationHCInterval)
	}
	s.deregDelay = seconds(ann, AnnotationDeregistration, s.deregDelay, 0, 3600, p)
	return s
}

// seconds reads a duration annotation given as whole seconds ("30") or a Go duration ("30s",
// "1m"), within [lo, hi] seconds.
func seconds(ann map[string]string, key string, def, lo, hi int, p *problems) int {
	v, ok := ann[key]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		d, derr := time.ParseDuration(v)
		if derr != nil || d%time.Second != 0 {
			p.addf("annotation %s is %q: use whole seconds, like 30 or 30s", key, v)
			return def
		}
		n = int(d / time.Second)
	}
	if n < lo || n > hi {
		p.addf("annotation %s is %q: use %d to %d seconds", key, v, lo, hi)
		return def
	}
	return n
}

func count(ann map[string]string, key string, def, lo, hi int, p *problems) int {
	v, ok := ann[key]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.addf("annotation %s is %q: use a whole number from %d to %d", key, v, lo, hi)
		return def
	}
	return n
}

// parseSourceRanges validates, canonicalises and sorts source ranges; where names where they
// came from for messages.
func parseSourceRanges(ranges []string, where string, p *problems) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range ranges {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(r)
		switch {
		case err != nil:
			p.addf("%s: %q is not a CIDR: use the form 203.0.113.0/24", where, r)
			continue
		case !pfx.Addr().Is4():
			p.addf("%s: %q is not an IPv4 CIDR: load balancers here are IPv4 only", where, r)
			continue
		}
		out = append(out, pfx.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out = slices.Compact(out)
	if len(out) > MaxSourceRanges {
		p.addf("%s: %d source ranges, at most %d are allowed: merge some", where, len(out), MaxSourceRanges)
	}
	return out
}

// maxServiceTags is the most tags AnnotationTags gives: MaxUserTags, within the cloud's
// per-resource limit less the ownership tags (cluster, service, service-uid, service-port)
// and TagManaged.
const maxServiceTags = min(MaxUserTags, providers.MaxTags-5)

// parseTags reads AnnotationTags: comma-separated key=value pairs (a value may be empty;
// spaces around keys and values are dropped). nil when it is not given.
func parseTags(ann map[string]string, p *problems) map[string]string {
	v, ok := ann[AnnotationTags]
	if !ok || strings.TrimSpace(v) == "" {
		return nil
	}
	tags := map[string]string{}
	bad := false
	for i, kv := range strings.Split(v, ",") {
		k, val, found := strings.Cut(kv, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		switch _, dup := tags[k]; {
		case !found:
			p.addf("annotation %s entry %d (%q) has no '=': give key=value pairs separated by commas", AnnotationTags, i+1, kv)
		case dup:
			p.addf("annotation %s gives tag %q twice", AnnotationTags, k)
		default:
			if problem := UserTagProblem(k, val); problem != "" {
				p.addf("annotation %s entry %d (%q): %s", AnnotationTags, i+1, kv, problem)
			} else {
				tags[k] = val
				continue
			}
		}
		bad = true
	}
	if len(tags) > maxServiceTags {
		p.addf("annotation %s gives %d tags; the cloud's resources take %d besides flatnet's own", AnnotationTags, len(tags), maxServiceTags)
		bad = true
	}
	if bad {
		return nil
	}
	return tags
}
