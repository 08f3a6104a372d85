package server

import (
	"context"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
)

// awsBackend runs the AWS front end's calls through the JSON API's pipeline (authorization,
// throttling, injected faults, visibility lag, metrics, logs), so that a call behaves the same
// whichever protocol it came in.
type awsBackend struct{ s *Server }

// Do carries out one AWS call. Control actions (faults, change stream) are not reachable from
// the AWS protocols.
func (b awsBackend) Do(ctx context.Context, c *awsapi.Call) (any, error) {
	ep, ok := b.s.endpoints[c.Action]
	if !ok || ep.control {
		return nil, api.Errorf(api.CodeInvalidAction, "%s is not an action of the AWS front end", c.Action)
	}
	p := principalOf(c.Principal)
	if err := authorize(c.Action, ep, p); err != nil {
		return nil, err
	}
	x := &exchange{id: c.RequestID, action: c.Action, principal: principalName(p), protocol: c.Service}
	resp, err := b.s.invoke(ctx, x, ep, p, c.Request)
	c.Injected = x.injected
	return resp, err
}

// Done records an answered AWS request in the metrics and the log.
func (b awsBackend) Done(c *awsapi.Call, status int, err error, took time.Duration) {
	x := &exchange{id: c.RequestID, action: "unknown", principal: "anonymous", injected: c.Injected, protocol: c.Service}
	if ep, ok := b.s.endpoints[c.Action]; ok && !ep.control {
		x.action = c.Action
	}
	if c.Principal.Admin || c.Principal.InstanceID != "" || c.Principal.LoadBalancer {
		x.principal = principalName(principalOf(c.Principal))
	}
	b.s.observe(x, status, err, took)
}

// Names returns the names of load balancers (lb-) and target groups (tg-) by ID, for the AWS
// front end's ARNs. It reads the store directly: an internal lookup is neither throttled nor
// faulted, and is no request of its own.
func (b awsBackend) Names(ids []string) map[string]string {
	out := map[string]string{}
	var lbs, tgs []string
	for _, id := range ids {
		switch {
		case strings.HasPrefix(id, "lb-"):
			lbs = append(lbs, id)
		case strings.HasPrefix(id, "tg-"):
			tgs = append(tgs, id)
		}
	}
	c := state.Call{Principal: state.Principal{Admin: true}, Now: b.s.clock()}
	if len(lbs) > 0 {
		// At most 50 load balancers exist (ELBv2's quota): list them all.
		if resp, err := b.s.store.DescribeLoadBalancers(c, &api.DescribeLoadBalancersRequest{}); err == nil {
			for _, lb := range resp.LoadBalancers {
				out[lb.LoadBalancerID] = lb.LoadBalancerName
			}
		}
	}
	for _, id := range tgs {
		if resp, err := b.s.store.DescribeTargetGroups(c, &api.DescribeTargetGroupsRequest{TargetGroupIDs: []string{id}}); err == nil && len(resp.TargetGroups) == 1 {
			out[id] = resp.TargetGroups[0].TargetGroupName
		}
	}
	return out
}

// HealthCheck returns a target group's health check, read from the store directly (an internal
// read, like Names).
func (b awsBackend) HealthCheck(id string) (api.HealthCheck, bool) {
	c := state.Call{Principal: state.Principal{Admin: true}, Now: b.s.clock()}
	resp, err := b.s.store.DescribeTargetGroups(c, &api.DescribeTargetGroupsRequest{TargetGroupIDs: []string{id}})
	if err != nil || len(resp.TargetGroups) != 1 {
		return api.HealthCheck{}, false
	}
	return resp.TargetGroups[0].HealthCheck, true
}

func principalOf(p awsapi.Principal) state.Principal {
	return state.Principal{Admin: p.Admin, InstanceID: p.InstanceID, LoadBalancer: p.LoadBalancer, TokenID: p.TokenID}
}
