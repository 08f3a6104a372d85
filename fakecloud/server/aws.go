package server

import (
	"context"
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
	p := state.Principal{Admin: c.Principal.Admin, InstanceID: c.Principal.InstanceID}
	if ep.adminOnly && !p.Admin {
		return nil, api.Errorf(api.CodeUnauthorizedOperation, "%s needs the admin credentials; instance %s may not call it", c.Action, p.InstanceID)
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
	if c.Principal.Admin || c.Principal.InstanceID != "" {
		x.principal = principalName(state.Principal{Admin: c.Principal.Admin, InstanceID: c.Principal.InstanceID})
	}
	b.s.observe(x, status, err, took)
}
