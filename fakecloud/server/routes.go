package server

import (
	"context"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
)

// endpoint is one action of the API.
type endpoint struct {
	// adminOnly actions are refused to instance tokens (and, unless lb, to the load-balancer
	// token).
	adminOnly bool
	// control actions steer fakecloud itself (faults, change stream, snapshot): admin only (the
	// load-balancer token gets the load balancer side of the last two, lbScoped), never throttled
	// nor faulted, so a test can always clear what it set.
	control bool
	// lb actions are the load-balancer principal's: everything else is refused to it.
	lb bool
	// read actions log successes at debug level.
	read   bool
	newReq func() any
	call   func(s *Server, ctx context.Context, c state.Call, req any) (any, error)
}

// storeOp makes an endpoint of a Store method.
func storeOp[Req, Resp any](fn func(*state.Store, state.Call, *Req) (*Resp, error)) endpoint {
	return endpoint{
		newReq: func() any { return new(Req) },
		call: func(s *Server, _ context.Context, c state.Call, req any) (any, error) {
			return fn(s.store, c, req.(*Req))
		},
	}
}

// serverOp makes an endpoint of a Server method.
func serverOp[Req, Resp any](fn func(*Server, context.Context, *Req) (*Resp, error)) endpoint {
	return endpoint{
		newReq: func() any { return new(Req) },
		call: func(s *Server, ctx context.Context, _ state.Call, req any) (any, error) {
			return fn(s, ctx, req.(*Req))
		},
	}
}

func adminOnly(ep endpoint) endpoint { ep.adminOnly = true; return ep }
func control(ep endpoint) endpoint   { ep.adminOnly, ep.control = true, true; return ep }
func read(ep endpoint) endpoint      { ep.read = true; return ep }

// lbOp marks an action the load-balancer principal may call (besides the admin).
func lbOp(ep endpoint) endpoint { ep.lb = true; return ep }

// lbScoped is lbOp for a control read whose answer holds more than load balancers (snapshot,
// change stream): the load-balancer principal gets only the load balancer side of it.
func lbScoped(ep endpoint) endpoint {
	ep.lb = true
	inner := ep.call
	ep.call = func(s *Server, ctx context.Context, c state.Call, req any) (any, error) {
		resp, err := inner(s, ctx, c, req)
		if err != nil || !c.Principal.LoadBalancer {
			return resp, err
		}
		return loadBalancerView(resp), nil
	}
	return ep
}

// authorize says whether p may call action: the admin everything; the load-balancer principal
// the lb actions; an instance what is not admin-only.
func authorize(action string, ep endpoint, p state.Principal) error {
	switch {
	case p.Admin:
		return nil
	case p.LoadBalancer:
		if !ep.lb {
			return api.Errorf(api.CodeUnauthorizedOperation, "%s is not allowed to the load-balancer token: it may call only the load balancer, target group, listener, rule, tag and certificate actions, DescribeSubnets, GetSnapshot and GetChanges", action)
		}
		return nil
	case ep.adminOnly:
		return api.Errorf(api.CodeUnauthorizedOperation, "%s needs the admin credentials; instance %s may not call it", action, p.InstanceID)
	}
	return nil
}

// loadBalancerView keeps of a snapshot or a change batch what concerns load balancing: no VPCs,
// instances (nor their tokens) or interfaces.
func loadBalancerView(resp any) any {
	switch r := resp.(type) {
	case *api.GetSnapshotResponse:
		out := *r
		out.Snapshot.Vpcs, out.Snapshot.Instances, out.Snapshot.NetworkInterfaces = []api.Vpc{}, []api.Instance{}, []api.NetworkInterface{}
		return &out
	case *api.GetChangesResponse:
		out := *r
		out.Changes = make([]api.Change, 0, len(r.Changes))
		for _, c := range r.Changes {
			if c.Vpc == nil && c.Subnet == nil && c.Instance == nil && c.NetworkInterface == nil {
				out.Changes = append(out.Changes, c)
			}
		}
		return &out
	}
	return resp
}

// endpoints is the API, by action name.
func endpoints() map[string]endpoint {
	return map[string]endpoint{
		api.ActionCreateVpc:                       adminOnly(storeOp((*state.Store).CreateVpc)),
		api.ActionDescribeVpcs:                    read(storeOp((*state.Store).DescribeVpcs)),
		api.ActionDeleteVpc:                       adminOnly(storeOp((*state.Store).DeleteVpc)),
		api.ActionCreateSubnet:                    adminOnly(storeOp((*state.Store).CreateSubnet)),
		api.ActionDescribeSubnets:                 lbOp(read(storeOp((*state.Store).DescribeSubnets))),
		api.ActionDeleteSubnet:                    adminOnly(storeOp((*state.Store).DeleteSubnet)),
		api.ActionDescribeInstanceTypes:           read(storeOp((*state.Store).DescribeInstanceTypes)),
		api.ActionRunInstances:                    adminOnly(storeOp((*state.Store).RunInstances)),
		api.ActionDescribeInstances:               read(storeOp((*state.Store).DescribeInstances)),
		api.ActionTerminateInstances:              adminOnly(storeOp((*state.Store).TerminateInstances)),
		api.ActionCreateNetworkInterface:          storeOp((*state.Store).CreateNetworkInterface),
		api.ActionDescribeNetworkInterfaces:       read(storeOp((*state.Store).DescribeNetworkInterfaces)),
		api.ActionAttachNetworkInterface:          storeOp((*state.Store).AttachNetworkInterface),
		api.ActionDetachNetworkInterface:          storeOp((*state.Store).DetachNetworkInterface),
		api.ActionDeleteNetworkInterface:          storeOp((*state.Store).DeleteNetworkInterface),
		api.ActionModifyNetworkInterfaceAttribute: storeOp((*state.Store).ModifyNetworkInterfaceAttribute),
		api.ActionAssignPrivateIPAddresses:        storeOp((*state.Store).AssignPrivateIPAddresses),
		api.ActionUnassignPrivateIPAddresses:      storeOp((*state.Store).UnassignPrivateIPAddresses),
		api.ActionCreateTags:                      storeOp((*state.Store).CreateTags),
		api.ActionDeleteTags:                      storeOp((*state.Store).DeleteTags),

		api.ActionCreateLoadBalancer:           lbOp(adminOnly(storeOp((*state.Store).CreateLoadBalancer))),
		api.ActionDescribeLoadBalancers:        lbOp(adminOnly(read(storeOp((*state.Store).DescribeLoadBalancers)))),
		api.ActionDeleteLoadBalancer:           lbOp(adminOnly(storeOp((*state.Store).DeleteLoadBalancer))),
		api.ActionModifyLoadBalancerAttributes: lbOp(adminOnly(storeOp((*state.Store).ModifyLoadBalancerAttributes))),
		api.ActionCreateTargetGroup:            lbOp(adminOnly(storeOp((*state.Store).CreateTargetGroup))),
		api.ActionDescribeTargetGroups:         lbOp(adminOnly(read(storeOp((*state.Store).DescribeTargetGroups)))),
		api.ActionModifyTargetGroup:            lbOp(adminOnly(storeOp((*state.Store).ModifyTargetGroup))),
		api.ActionModifyTargetGroupAttributes:  lbOp(adminOnly(storeOp((*state.Store).ModifyTargetGroupAttributes))),
		api.ActionDeleteTargetGroup:            lbOp(adminOnly(storeOp((*state.Store).DeleteTargetGroup))),
		api.ActionRegisterTargets:              lbOp(adminOnly(storeOp((*state.Store).RegisterTargets))),
		api.ActionDeregisterTargets:            lbOp(adminOnly(storeOp((*state.Store).DeregisterTargets))),
		api.ActionDescribeTargetHealth:         lbOp(adminOnly(read(storeOp((*state.Store).DescribeTargetHealth)))),
		api.ActionCreateListener:               lbOp(adminOnly(storeOp((*state.Store).CreateListener))),
		api.ActionDescribeListeners:            lbOp(adminOnly(read(storeOp((*state.Store).DescribeListeners)))),
		api.ActionDeleteListener:               lbOp(adminOnly(storeOp((*state.Store).DeleteListener))),
		api.ActionAddTags:                      lbOp(adminOnly(storeOp((*state.Store).AddTags))),
		api.ActionRemoveTags:                   lbOp(adminOnly(storeOp((*state.Store).RemoveTags))),
		api.ActionDescribeTags:                 lbOp(adminOnly(read(storeOp((*state.Store).DescribeTags)))),

		api.ActionModifyListener:             lbOp(adminOnly(storeOp((*state.Store).ModifyListener))),
		api.ActionCreateRule:                 lbOp(adminOnly(storeOp((*state.Store).CreateRule))),
		api.ActionModifyRule:                 lbOp(adminOnly(storeOp((*state.Store).ModifyRule))),
		api.ActionDeleteRule:                 lbOp(adminOnly(storeOp((*state.Store).DeleteRule))),
		api.ActionDescribeRules:              lbOp(adminOnly(read(storeOp((*state.Store).DescribeRules)))),
		api.ActionSetRulePriorities:          lbOp(adminOnly(storeOp((*state.Store).SetRulePriorities))),
		api.ActionImportCertificate:          lbOp(adminOnly(storeOp((*state.Store).ImportCertificate))),
		api.ActionDescribeCertificates:       lbOp(adminOnly(read(storeOp((*state.Store).DescribeCertificates)))),
		api.ActionDeleteCertificate:          lbOp(adminOnly(storeOp((*state.Store).DeleteCertificate))),
		api.ActionAddListenerCertificates:    lbOp(adminOnly(storeOp((*state.Store).AddListenerCertificates))),
		api.ActionRemoveListenerCertificates: lbOp(adminOnly(storeOp((*state.Store).RemoveListenerCertificates))),

		api.ActionSetFault:                control(serverOp((*Server).setFault)),
		api.ActionListFaults:              control(read(serverOp((*Server).listFaults))),
		api.ActionClearFaults:             control(serverOp((*Server).clearFaults)),
		api.ActionGetChanges:              lbScoped(control(read(serverOp((*Server).getChanges)))),
		api.ActionGetSnapshot:             lbScoped(control(read(serverOp((*Server).getSnapshot)))),
		api.ActionReportTargetHealth:      control(storeOp((*state.Store).ReportTargetHealthCall)),
		api.ActionReportLoadBalancerState: control(storeOp((*state.Store).ReportLoadBalancerStateCall)),

		api.ActionCreateLoadBalancerToken:    control(storeOp((*state.Store).CreateLoadBalancerToken)),
		api.ActionDescribeLoadBalancerTokens: control(read(storeOp((*state.Store).DescribeLoadBalancerTokens))),
		api.ActionDeleteLoadBalancerToken:    control(storeOp((*state.Store).DeleteLoadBalancerToken)),
	}
}

// unfiltered reports whether req is a describe that names no resource, no filter and no page
// size: a real cloud throttles those harder.
func unfiltered(req any) bool {
	switch r := req.(type) {
	case *api.DescribeInstancesRequest:
		return len(r.InstanceIDs) == 0 && len(r.Filters) == 0 && r.MaxResults == 0 && r.NextToken == ""
	case *api.DescribeNetworkInterfacesRequest:
		return len(r.NetworkInterfaceIDs) == 0 && len(r.Filters) == 0 && r.MaxResults == 0 && r.NextToken == ""
	}
	return false
}
