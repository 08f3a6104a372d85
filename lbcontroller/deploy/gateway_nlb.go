package deploy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// LayerL4 is TagLayer's value on the resources of a Gateway's companion network load balancer
// (clouds without providers.Capabilities.L4OnApplicationLB).
const LayerL4 = "l4"

// Unserved is a route (by the model's Source) the cloud cannot serve: the companion network
// load balancer cannot, or serves it only in part (Partial: some of its backends get no
// connection), or the application load balancer cannot express one of its rules (Dropped:
// that rule is left out, the rest of the route served; RefusedRules). Message says why: the
// route's status should say so.
type Unserved struct {
	Source  string
	Message string
	Partial bool `json:",omitempty"`
	Dropped bool `json:",omitempty"`
}

// SplitGateway splits a Gateway's application load balancer model for a cloud whose
// application load balancers serve HTTP and HTTPS only: the HTTP(S) listeners and their target
// groups stay on the answer's application load balancer; the TLS-passthrough, TCP and UDP
// listeners go on a network load balancer named name (nil when there are none), owned by
// owner (the Gateway) and tagged with tags and TagLayer l4, so that Deploy and Delete find
// it by them. A network listener forwards every connection to one target group (see
// l4Choice): a TLS listener becomes a TCP one without SNI routing, served by its oldest route
// with a resolved backend; of a weighted forward, the heaviest backend is served. A TLS
// listener in mode Terminate gets no network listener (it would pass TLS through). The routes
// left out, and those served in part, are answered in the Unserved list.
func SplitGateway(alb *gateway.ApplicationLoadBalancer, name string, owner model.Owner, tags map[string]string) (*gateway.ApplicationLoadBalancer, *model.LoadBalancer, []Unserved) {
	if alb == nil || len(alb.Passthrough) == 0 {
		return alb, nil, nil
	}
	l7 := *alb
	l7.Passthrough = nil
	l7.TargetGroups = nil
	httpGroups := map[string]bool{}
	for _, l := range alb.Listeners {
		for _, r := range l.Rules {
			if r.Action.Forward != nil {
				for _, b := range r.Action.Forward.Backends {
					httpGroups[b.TargetGroup] = true
				}
			}
		}
	}
	nlbTags := copyTags(tags, TagLayer, LayerL4, model.TagServiceUID, owner.UID)
	nlb := &model.LoadBalancer{Name: name, Scheme: model.DefaultScheme, Tags: nlbTags, UserTags: alb.Tags, Owner: owner}
	used := map[string]bool{}
	services := map[string]string{}
	for _, tg := range alb.TargetGroups {
		services[tg.Name] = fmt.Sprintf("%s:%d", tg.Service, tg.Port)
	}
	var unserved []Unserved
	for _, l := range alb.Passthrough {
		if len(l.Certificates) > 0 {
			// A TLS listener in mode Terminate: its network listener would pass TLS through to
			// backends that expect the decrypted stream. No listener; its routes say why.
			for _, src := range l.RouteOrder {
				unserved = append(unserved, Unserved{Source: src, Message: fmt.Sprintf(
					"the cloud's network load balancer does not terminate TLS for TLSRoutes yet (TLS %d in mode Terminate): use mode Passthrough with backends that terminate TLS, or an HTTPS listener", l.Port)})
			}
			continue
		}
		tg, srcs := l4Choice(l, services)
		unserved = append(unserved, srcs...)
		if tg == "" {
			continue // nothing to forward to: no listener, connections are refused
		}
		proto := model.ProtocolTCP
		if l.Protocol == gateway.ProtocolUDP {
			proto = model.ProtocolUDP
		}
		nlb.Listeners = append(nlb.Listeners, model.Listener{Protocol: proto, Port: l.Port, TargetGroup: tg})
		used[tg] = true
	}
	for _, tg := range alb.TargetGroups {
		if httpGroups[tg.Name] || !used[tg.Name] {
			if httpGroups[tg.Name] {
				l7.TargetGroups = append(l7.TargetGroups, tg)
			}
			continue
		}
		nlb.TargetGroups = append(nlb.TargetGroups, model.TargetGroup{
			Name: tg.Name, ServicePort: fmt.Sprintf("%s:%d", tg.Service, tg.Port), Protocol: tg.Protocol, Port: tg.Port,
			// UDP groups are checked over TCP on the traffic port, as the cloud does.
			HealthCheck: model.HealthCheck{
				Protocol: model.ProtocolTCP, IntervalSeconds: model.DefaultIntervalSeconds, TimeoutSeconds: model.DefaultTimeoutSeconds,
				HealthyThresholdCount: model.DefaultThreshold, UnhealthyThresholdCount: model.DefaultThreshold,
			},
			DeregistrationDelaySeconds: int(gatewayDeregistrationDelay.Seconds()),
			Tags:                       copyTags(nlbTags, "flatnet.io/service-ref", tg.Service),
			Targets:                    tg.Targets, Draining: tg.Draining,
		})
	}
	if len(nlb.Listeners) == 0 {
		nlb = nil
	}
	return &l7, nlb, unserved
}

// l4Choice picks the one target group a network listener forwards to, and reports the routes
// it leaves out or serves in part (services names each target group's Service port). The route
// served is the oldest with a resolved backend of weight > 0 (l.RouteOrder: creationTimestamp,
// then namespace/name, the Gateway API's conflict order); of its forward, the backend of the
// greatest weight, the first of equal ones. A network listener cannot split connections by
// weight (one target group holding several backends' endpoints splits them per endpoint, not
// per backend), nor refuse a share of them, nor route by SNI: a route whose connections all go
// to that group is served; one with it among others is served in part (Partial); one without
// it is not served.
func l4Choice(l gateway.L4Listener, services map[string]string) (string, []Unserved) {
	type candidate struct {
		src string
		fw  *gateway.Forward
	}
	var cands []candidate
	add := func(src string, fw *gateway.Forward) {
		if fw != nil && !slices.ContainsFunc(cands, func(c candidate) bool { return c.src == src }) {
			cands = append(cands, candidate{src, fw})
		}
	}
	for _, r := range l.SNI {
		add(r.Source, r.Forward)
	}
	add(cmpOr(l.DefaultSource, fmt.Sprintf("listener %s/%d default", l.Protocol, l.Port)), l.Default)
	rank := func(src string) int {
		if i := slices.Index(l.RouteOrder, src); i >= 0 {
			return i
		}
		return len(l.RouteOrder)
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(rank(a.src), rank(b.src)) })

	// weights sums a forward's weights per resolved group (in the forward's order) and the
	// weight of its unresolved backends.
	weights := func(fw *gateway.Forward) (groups []string, w map[string]int, unresolved, total int) {
		w = map[string]int{}
		for _, b := range fw.Backends {
			if b.Weight <= 0 {
				continue
			}
			total += b.Weight
			if b.TargetGroup == "" {
				unresolved += b.Weight
				continue
			}
			if _, ok := w[b.TargetGroup]; !ok {
				groups = append(groups, b.TargetGroup)
			}
			w[b.TargetGroup] += b.Weight
		}
		return groups, w, unresolved, total
	}
	var chosen, chosenSrc string
	for _, c := range cands {
		groups, w, _, _ := weights(c.fw)
		for _, g := range groups {
			if chosen == "" || w[g] > w[chosen] {
				chosen = g
			}
		}
		if chosen != "" {
			chosenSrc = c.src
			break
		}
	}
	if chosen == "" {
		return "", nil
	}
	name := func(g string) string { return cmpOr(services[g], g) }
	unit := "connection"
	if l.Protocol == gateway.ProtocolUDP {
		unit = "client flow"
	}
	var out []Unserved
	for _, c := range cands {
		groups, w, unresolved, total := weights(c.fw)
		switch {
		case len(groups) == 0:
			// Nothing resolved: its ResolvedRefs condition says so.
		case w[chosen] == 0:
			out = append(out, Unserved{Source: c.src, Message: fmt.Sprintf("the cloud's network load balancer cannot route %s %d by SNI: it forwards every connection to %s, the backend of the oldest route %s", l.Protocol, l.Port, name(chosen), chosenSrc)})
		case len(groups) > 1 || unresolved > 0:
			var rest []string
			for _, g := range groups {
				if g != chosen {
					rest = append(rest, fmt.Sprintf("%s (weight %d) gets none", name(g), w[g]))
				}
			}
			if unresolved > 0 {
				rest = append(rest, fmt.Sprintf("the share of the backends not resolved (weight %d) goes there too instead of being refused", unresolved))
			}
			out = append(out, Unserved{Source: c.src, Partial: true, Message: fmt.Sprintf("the cloud's network load balancer forwards %s %d to one backend, without weights: every %s goes to %s (weight %d of %d); %s", l.Protocol, l.Port, unit, name(chosen), w[chosen], total, strings.Join(rest, "; "))})
		}
	}
	return chosen, out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// NetworkLoadBalancer makes the cloud match a Gateway's companion network load balancer (see
// SplitGateway), through the Service path's plan and apply; nil deletes whatever of it is
// left. tags are the Gateway's ownership tags (without TagLayer).
func NetworkLoadBalancer(ctx context.Context, p providers.LoadBalancing, nlb *model.LoadBalancer, tags map[string]string, token string) (Result, error) {
	tags = copyTags(tags, TagLayer, LayerL4)
	if nlb == nil {
		_, err := Delete(ctx, p, tags)
		return Result{TargetGroups: map[string]string{}}, err
	}
	obs, err := observe(ctx, p, nlb, tags)
	if err != nil {
		return Result{TargetGroups: map[string]string{}}, err
	}
	return Apply(ctx, p, PlanDeploy(nlb, obs, token))
}

// DeleteNetworkLoadBalancer removes a Gateway's companion network load balancer and its
// target groups: every one carrying all of tags with TagLayer l4.
func DeleteNetworkLoadBalancer(ctx context.Context, p providers.LoadBalancing, tags map[string]string) error {
	_, err := Delete(ctx, p, copyTags(tags, TagLayer, LayerL4))
	return err
}

// NetworkLoadBalancerName is the companion network load balancer's name for an application
// load balancer's: deterministic, and in the model's name form.
func NetworkLoadBalancerName(albName string) string {
	sum := sha256.Sum256([]byte(albName + "\x00" + LayerL4))
	return "k8s-" + hex.EncodeToString(sum[:])[:24]
}
