package state

import (
	"fmt"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// CreateListener opens a port on a load balancer: TCP or UDP forwarding to one target group
// on a network load balancer, HTTP or HTTPS with default actions on an application one
// (alb_listener.go). As in ELBv2, the same port and protocol with the same settings answers
// the existing listener.
func (s *Store) CreateListener(c Call, req *api.CreateListenerRequest) (*api.CreateListenerResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionCreateListener); err != nil {
		return nil, err
	}
	if err := validatePort("Port", req.Port); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionCreateListener, req.ClientToken, req, func(t *tx) (*api.CreateListenerResponse, error) {
		lb, err := getLB(t.Txn, req.LoadBalancerID)
		if err != nil {
			return nil, err
		}
		if lb.Type == api.LoadBalancerTypeApplication {
			return s.createALBListener(t, c, lb, req)
		}
		act, err := validateNLBListener(req.Protocol, req.DefaultActions)
		if err != nil {
			return nil, err
		}
		if req.SSLPolicy != "" || len(req.Certificates) > 0 || len(req.HostnameScopes) > 0 || req.MutualAuthentication != nil {
			return nil, invalid("SslPolicy, Certificates, HostnameScopes and MutualAuthentication apply to HTTPS listeners of application load balancers only")
		}
		tg, err := getTG(t.Txn, act.TargetGroupID)
		if err != nil {
			return nil, err
		}
		v := newViewer(t.Txn, c)
		key := fmt.Sprintf("%s/%s/%d", lb.ID, req.Protocol, req.Port)
		if old := first[listenerRec](t.Txn, tableListeners, indexListenerPort, key); old != nil {
			if old.TargetGroupID == tg.ID {
				return &api.CreateListenerResponse{Listener: v.listener(old)}, nil
			}
			return nil, api.Errorf(api.CodeDuplicateListener, "load balancer %s already has %s listener %s on port %d; delete it or pick another port",
				lb.ID, req.Protocol, old.ID, req.Port)
		}
		if err := checkForward(t, lb, tg, req.Protocol); err != nil {
			return nil, err
		}
		if n := count(t.Txn, tableListeners, indexLoadBalancer, lb.ID); n >= maxListenersPerLB {
			return nil, api.Errorf(api.CodeTooManyListeners, "load balancer %s has %d listeners, the most it may hold", lb.ID, n)
		}
		r := &listenerRec{
			ID: newID(t.Txn, tableListeners, "listener"), LoadBalancerID: lb.ID, PortKey: key,
			Protocol: req.Protocol, Port: req.Port, TargetGroupID: tg.ID, Created: c.Now,
		}
		if err := t.put(tableListeners, api.KindListener, r.ID, r); err != nil {
			return nil, err
		}
		t.touchGroup(tg.ID)
		return &api.CreateListenerResponse{Listener: v.listener(r)}, nil
	})
}

// validateNLBListener checks a network listener's protocol and its one forward action.
func validateNLBListener(protocol string, actions []api.Action) (api.Action, error) {
	switch protocol {
	case api.ProtocolTCP, api.ProtocolUDP:
	case "":
		return api.Action{}, invalid("Protocol is required: TCP or UDP")
	default:
		return api.Action{}, invalid("Protocol %.20q is not supported for network load balancer listeners: use TCP or UDP (HTTP and HTTPS need an application load balancer)", protocol)
	}
	if len(actions) != 1 {
		return api.Action{}, invalid("DefaultActions must hold exactly one forward action (got %d)", len(actions))
	}
	act := actions[0]
	if act.Type != api.ActionTypeForward {
		return act, invalid("DefaultActions[0].Type %.20q is not supported by network load balancers: use forward", act.Type)
	}
	if act.ForwardConfig != nil || act.RedirectConfig != nil || act.FixedResponseConfig != nil || act.RequestHeaderModifications != nil ||
		act.ResponseHeaderModifications != nil || act.URLRewriteConfig != nil || len(act.RequestMirrors) > 0 || act.TimeoutConfig != nil ||
		act.RetryConfig != nil || act.CorsConfig != nil || act.TLSPassthrough {
		return act, invalid("DefaultActions[0] of a network listener takes Type forward and TargetGroupId only")
	}
	if act.TargetGroupID == "" {
		return act, invalid("DefaultActions[0].TargetGroupId is required")
	}
	return act, nil
}

// checkForward applies ELBv2's rules to a listener forwarding to a target group: the same VPC,
// compatible protocols, and (for network load balancers) one load balancer per group.
func checkForward(t *tx, lb *lbRec, tg *tgRec, protocol string) error {
	if tg.VpcID != lb.VpcID {
		return api.Errorf(api.CodeInvalidConfigurationRequest, "target group %s is in %s but load balancer %s is in %s", tg.ID, tg.VpcID, lb.ID, lb.VpcID)
	}
	if tg.Protocol == api.ProtocolTLS {
		what := "passes connections on as they come; it has no TLS to terminate"
		if protocol == api.ProtocolUDP {
			what = "relays datagrams"
		}
		return tlsGroupError(tg.ID, fmt.Sprintf("a network load balancer's %s listener %s", protocol, what))
	}
	if tg.Protocol != protocol && tg.Protocol != api.ProtocolTCPUDP {
		return api.Errorf(api.CodeIncompatibleProtocols, "a %s listener cannot forward to %s target group %s", protocol, tg.Protocol, tg.ID)
	}
	for _, other := range tgLoadBalancers(t.Txn, tg.ID) {
		if other != lb.ID {
			return api.Errorf(api.CodeTargetGroupAssociationLimit, "target group %s already serves load balancer %s; a target group serves one network load balancer", tg.ID, other)
		}
	}
	return nil
}

// DescribeListeners lists the listeners of a load balancer, or the named ones, or all.
func (s *Store) DescribeListeners(c Call, req *api.DescribeListenersRequest) (*api.DescribeListenersResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDescribeListeners); err != nil {
		return nil, err
	}
	if req.LoadBalancerID != "" && len(req.ListenerIDs) > 0 {
		return nil, invalid("give LoadBalancerId or ListenerIds, not both")
	}
	txn := s.read()
	var recs []*listenerRec
	if req.LoadBalancerID != "" {
		if _, err := getLB(txn, req.LoadBalancerID); err != nil {
			return nil, err
		}
		recs = listBy[listenerRec](txn, tableListeners, indexLoadBalancer, req.LoadBalancerID)
	} else {
		var err error
		if recs, err = selectByIDs[listenerRec](txn, tableListeners, req.ListenerIDs, api.CodeListenerNotFound, "listener"); err != nil {
			return nil, err
		}
	}
	v := newViewer(txn, c)
	out := &api.DescribeListenersResponse{Listeners: []api.Listener{}}
	for _, r := range recs {
		out.Listeners = append(out.Listeners, v.listener(r))
	}
	return out, nil
}

// DeleteListener deletes a listener with its rules; its target groups become unused unless
// another listener or rule forwards to them.
func (s *Store) DeleteListener(c Call, req *api.DeleteListenerRequest) (*api.DeleteListenerResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDeleteListener); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionDeleteListener, "", req, func(t *tx) (*api.DeleteListenerResponse, error) {
		r, err := getListener(t.Txn, req.ListenerID)
		if err != nil {
			return nil, err
		}
		return &api.DeleteListenerResponse{}, t.deleteListener(r)
	})
}

func (t *tx) deleteListener(r *listenerRec) error {
	for _, rule := range listBy[ruleRec](t.Txn, tableRules, indexListener, r.ID) {
		if err := t.deleteRule(rule); err != nil {
			return err
		}
	}
	if err := t.Delete(tableListeners, r); err != nil {
		return internal(err)
	}
	t.touch(api.KindListener, r.ID)
	for _, id := range listenerTargetGroups(r) {
		t.touchGroup(id)
	}
	for _, id := range r.CertificateIDs {
		t.touch(api.KindCertificate, id)
	}
	return nil
}
