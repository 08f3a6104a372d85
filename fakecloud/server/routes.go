package server

import (
	"context"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
)

// endpoint is one action of the API.
type endpoint struct {
	// adminOnly actions are refused to instance tokens.
	adminOnly bool
	// control actions steer fakecloud itself (faults, change stream, snapshot): admin only,
	// never throttled nor faulted, so a test can always clear what it set.
	control bool
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

// endpoints is the API, by action name.
func endpoints() map[string]endpoint {
	return map[string]endpoint{
		api.ActionCreateVpc:                       adminOnly(storeOp((*state.Store).CreateVpc)),
		api.ActionDescribeVpcs:                    read(storeOp((*state.Store).DescribeVpcs)),
		api.ActionDeleteVpc:                       adminOnly(storeOp((*state.Store).DeleteVpc)),
		api.ActionCreateSubnet:                    adminOnly(storeOp((*state.Store).CreateSubnet)),
		api.ActionDescribeSubnets:                 read(storeOp((*state.Store).DescribeSubnets)),
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

		api.ActionCreateLoadBalancer:           adminOnly(storeOp((*state.Store).CreateLoadBalancer)),
		api.ActionDescribeLoadBalancers:        adminOnly(read(storeOp((*state.Store).DescribeLoadBalancers))),
		api.ActionDeleteLoadBalancer:           adminOnly(storeOp((*state.Store).DeleteLoadBalancer)),
		api.ActionModifyLoadBalancerAttributes: adminOnly(storeOp((*state.Store).ModifyLoadBalancerAttributes)),
		api.ActionCreateTargetGroup:            adminOnly(storeOp((*state.Store).CreateTargetGroup)),
		api.ActionDescribeTargetGroups:         adminOnly(read(storeOp((*state.Store).DescribeTargetGroups))),
		api.ActionModifyTargetGroup:            adminOnly(storeOp((*state.Store).ModifyTargetGroup)),
		api.ActionModifyTargetGroupAttributes:  adminOnly(storeOp((*state.Store).ModifyTargetGroupAttributes)),
		api.ActionDeleteTargetGroup:            adminOnly(storeOp((*state.Store).DeleteTargetGroup)),
		api.ActionRegisterTargets:              adminOnly(storeOp((*state.Store).RegisterTargets)),
		api.ActionDeregisterTargets:            adminOnly(storeOp((*state.Store).DeregisterTargets)),
		api.ActionDescribeTargetHealth:         adminOnly(read(storeOp((*state.Store).DescribeTargetHealth))),
		api.ActionCreateListener:               adminOnly(storeOp((*state.Store).CreateListener)),
		api.ActionDescribeListeners:            adminOnly(read(storeOp((*state.Store).DescribeListeners))),
		api.ActionDeleteListener:               adminOnly(storeOp((*state.Store).DeleteListener)),
		api.ActionAddTags:                      adminOnly(storeOp((*state.Store).AddTags)),
		api.ActionRemoveTags:                   adminOnly(storeOp((*state.Store).RemoveTags)),
		api.ActionDescribeTags:                 adminOnly(read(storeOp((*state.Store).DescribeTags))),

		api.ActionModifyListener:             adminOnly(storeOp((*state.Store).ModifyListener)),
		api.ActionCreateRule:                 adminOnly(storeOp((*state.Store).CreateRule)),
		api.ActionModifyRule:                 adminOnly(storeOp((*state.Store).ModifyRule)),
		api.ActionDeleteRule:                 adminOnly(storeOp((*state.Store).DeleteRule)),
		api.ActionDescribeRules:              adminOnly(read(storeOp((*state.Store).DescribeRules))),
		api.ActionSetRulePriorities:          adminOnly(storeOp((*state.Store).SetRulePriorities)),
		api.ActionImportCertificate:          adminOnly(storeOp((*state.Store).ImportCertificate)),
		api.ActionDescribeCertificates:       adminOnly(read(storeOp((*state.Store).DescribeCertificates))),
		api.ActionDeleteCertificate:          adminOnly(storeOp((*state.Store).DeleteCertificate)),
		api.ActionAddListenerCertificates:    adminOnly(storeOp((*state.Store).AddListenerCertificates)),
		api.ActionRemoveListenerCertificates: adminOnly(storeOp((*state.Store).RemoveListenerCertificates)),

		api.ActionSetFault:                control(serverOp((*Server).setFault)),
		api.ActionListFaults:              control(read(serverOp((*Server).listFaults))),
		api.ActionClearFaults:             control(serverOp((*Server).clearFaults)),
		api.ActionGetChanges:              control(read(serverOp((*Server).getChanges))),
		api.ActionGetSnapshot:             control(read(serverOp((*Server).getSnapshot))),
		api.ActionReportTargetHealth:      control(storeOp((*state.Store).ReportTargetHealthCall)),
		api.ActionReportLoadBalancerState: control(storeOp((*state.Store).ReportLoadBalancerStateCall)),
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
