package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// LayerL4 is TagLayer's value on the resources of a Gateway's companion network load balancer
// (clouds without providers.Capabilities.L4OnApplicationLB).
const LayerL4 = "l4"

// Unserved is a route (by the model's Source) the companion network load balancer cannot
// serve, and why: its status should say so.
type Unserved struct {
	Source  string
	Message string
}

// SplitGateway splits a Gateway's application load balancer model for a cloud whose
// application load balancers serve HTTP and HTTPS only: the HTTP(S) listeners and their target
// groups stay on the answer's application load balancer; the TLS-passthrough, TCP and UDP
// listeners go on a network load balancer named name (nil when there are none), owned by
// owner (the Gateway) and tagged with tags and TagLayer l4, so that Deploy and Delete find
// it by them. A network listener forwards every connection to one target group: a TLS
// listener becomes a TCP one without SNI routing, served by its first route (the model's
// order) with a resolved backend, else its default; the other routes with other backends,
// and the other backends of a weighted forward, are answered in the Unserved list.
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
	nlb := &model.LoadBalancer{Name: name, Scheme: model.DefaultScheme, Tags: nlbTags, Owner: owner}
	used := map[string]bool{}
	var unserved []Unserved
	for _, l := range alb.Passthrough {
		tg, srcs := l4Choice(l)
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

// l4Choice picks the one target group a network listener forwards to, and the routes (and
// backends) left out.
func l4Choice(l gateway.L4Listener) (string, []Unserved) {
	var chosen, chosenSrc string
	var out []Unserved
	consider := func(src string, fw *gateway.Forward) {
		var groups []string
		if fw != nil {
			for _, b := range fw.Backends {
				if b.TargetGroup != "" && b.Weight > 0 && !slices.Contains(groups, b.TargetGroup) {
					groups = append(groups, b.TargetGroup)
				}
			}
		}
		if len(groups) == 0 {
			return
		}
		if chosen == "" {
			chosen, chosenSrc = groups[0], src
			if len(groups) > 1 {
				out = append(out, Unserved{Source: src, Message: fmt.Sprintf("a network load balancer's listener forwards to one backend: %s %d serves only the first of %d", l.Protocol, l.Port, len(groups))})
			}
			return
		}
		if len(groups) > 1 || groups[0] != chosen {
			out = append(out, Unserved{Source: src, Message: fmt.Sprintf("the cloud's network load balancer cannot route %s %d by SNI: it forwards every connection to the backend of %s", l.Protocol, l.Port, chosenSrc)})
		}
	}
	for _, r := range l.SNI {
		consider(r.Source, r.Forward)
	}
	consider(fmt.Sprintf("listener %s/%d default", l.Protocol, l.Port), l.Default)
	return chosen, out
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
