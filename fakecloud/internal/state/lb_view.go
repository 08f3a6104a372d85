package state

import (
	"slices"
	"sort"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func (v viewer) loadBalancer(r *lbRec) api.LoadBalancer {
	vip := r.PrivateIP
	if r.PublicIP != "" {
		vip = r.PublicIP
	}
	state := r.State
	if state == "" {
		state = api.LoadBalancerStateActive
	}
	return api.LoadBalancer{
		LoadBalancerID: r.ID, LoadBalancerName: r.Name, Scheme: r.Scheme, Type: r.Type,
		State: state, StateReason: r.StateReason, VpcID: r.VpcID, SubnetID: r.SubnetID, AvailabilityZone: r.AZ,
		PrivateIPAddress: r.PrivateIP, PublicIPAddress: r.PublicIP, VIP: vip,
		SourceRanges: slices.Clone(r.SourceRanges), AccessLogs: r.AccessLogs, CreatedTime: r.Created, Tags: tagList(r.Tags),
	}
}

func (v viewer) listener(r *listenerRec) api.Listener {
	l := api.Listener{
		ListenerID: r.ID, LoadBalancerID: r.LoadBalancerID, Protocol: r.Protocol, Port: r.Port,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: r.TargetGroupID}},
		SSLPolicy:      r.SSLPolicy, HostnameScopes: slices.Clone(r.HostnameScopes), MutualAuthentication: clonePlain(r.MutualAuthentication),
	}
	switch {
	case r.Actions != nil:
		l.DefaultActions = cloneJSON(r.Actions)
	case r.TargetGroupID == "":
		l.DefaultActions = []api.Action{} // a TLS listener without a default refuses
	}
	for i, id := range r.CertificateIDs {
		l.Certificates = append(l.Certificates, api.ListenerCertificate{CertificateID: id, IsDefault: i == 0})
	}
	return l
}

func (v viewer) targetGroup(r *tgRec) api.TargetGroup {
	return api.TargetGroup{
		TargetGroupID: r.ID, TargetGroupName: r.Name, Protocol: r.Protocol, ProtocolVersion: r.ProtocolVersion, Port: r.Port,
		VpcID: r.VpcID, TargetType: api.TargetTypeIP, LoadBalancerType: tgLBType(r.Protocol), HealthCheck: r.HealthCheck,
		DeregistrationDelaySeconds: r.DeregistrationDelay, TLSVerification: clonePlain(r.TLSVerification),
		ClientCertificateID: r.ClientCertificateID, LoadBalancerIDs: tgLoadBalancers(v.txn, r.ID), Tags: tagList(r.Tags),
	}
}

// tgLoadBalancers lists the load balancers whose listeners or rules forward (or mirror) to a
// target group.
func tgLoadBalancers(txn *memdb.Txn, tgID string) []string {
	out := []string{}
	for _, l := range listBy[listenerRec](txn, tableListeners, indexTargetGroup, tgID) {
		if !slices.Contains(out, l.LoadBalancerID) {
			out = append(out, l.LoadBalancerID)
		}
	}
	for _, r := range listBy[ruleRec](txn, tableRules, indexTargetGroup, tgID) {
		if !slices.Contains(out, r.LoadBalancerID) {
			out = append(out, r.LoadBalancerID)
		}
	}
	sort.Strings(out)
	return out
}

// tgInUse reports whether a listener or rule forwards (or mirrors) to a target group, and
// names one that does.
func tgInUse(txn *memdb.Txn, tgID string) (string, bool) {
	if l := first[listenerRec](txn, tableListeners, indexTargetGroup, tgID); l != nil {
		return "listener " + l.ID + " of " + l.LoadBalancerID, true
	}
	if r := first[ruleRec](txn, tableRules, indexTargetGroup, tgID); r != nil {
		return "rule " + r.ID + " of listener " + r.ListenerID, true
	}
	return "", false
}

// tgLBType is the type of load balancer a group of this protocol serves (TLS groups: the
// terminating TLS listeners of application load balancers).
func tgLBType(protocol string) string {
	if protocol == api.ProtocolHTTP || protocol == api.ProtocolHTTPS || protocol == api.ProtocolTLS {
		return api.LoadBalancerTypeApplication
	}
	return api.LoadBalancerTypeNetwork
}

// target shows a target's state as ELBv2 does: draining wins, then a group no listener uses
// shows unused, otherwise the last health verdict.
func (v viewer) target(r *targetRec) api.TargetHealthDescription {
	d := api.TargetHealthDescription{
		TargetGroupID: r.TargetGroupID, Target: api.Target{IP: r.IP, Port: r.Port},
		TargetHealth: api.TargetHealth{State: r.State, Reason: r.Reason, Description: r.Description},
	}
	switch {
	case !r.DrainDeadline.IsZero():
		d.DrainDeadline = r.DrainDeadline
		d.TargetHealth = api.TargetHealth{State: api.TargetHealthDraining, Reason: api.ReasonDeregistrationInProgress,
			Description: "Target deregistration is in progress"}
	case !v.tgUsed(r.TargetGroupID):
		d.TargetHealth = api.TargetHealth{State: api.TargetHealthUnused, Reason: api.ReasonNotInUse,
			Description: "Target group is not configured to receive traffic from the load balancer"}
	}
	return d
}

// lbChange fills in the resource of a load balancer kind; ok is false for other kinds.
func (v viewer) lbChange(c *api.Change) bool {
	switch c.Kind {
	case api.KindLoadBalancer:
		if r := first[lbRec](v.txn, tableLoadBalancers, indexID, c.ID); r != nil {
			x := v.loadBalancer(r)
			c.LoadBalancer = &x
		}
	case api.KindListener:
		if r := first[listenerRec](v.txn, tableListeners, indexID, c.ID); r != nil {
			x := v.listener(r)
			c.Listener = &x
		}
	case api.KindTargetGroup:
		if r := first[tgRec](v.txn, tableTargetGroups, indexID, c.ID); r != nil {
			x := v.targetGroup(r)
			c.TargetGroup = &x
		}
	case api.KindTarget:
		if r := first[targetRec](v.txn, tableTargets, indexID, c.ID); r != nil {
			x := v.target(r)
			c.Target = &x
		}
	case api.KindRule:
		if r := first[ruleRec](v.txn, tableRules, indexID, c.ID); r != nil {
			x := ruleView(r)
			c.Rule = &x
		}
	case api.KindCertificate:
		if r := first[certRec](v.txn, tableCertificates, indexID, c.ID); r != nil {
			x := certView(v.txn, r)
			c.Certificate = &x
		}
	default:
		return false
	}
	return c.LoadBalancer != nil || c.Listener != nil || c.TargetGroup != nil || c.Target != nil || c.Rule != nil || c.Certificate != nil
}

// tgUsed reports whether a listener or rule uses a target group.
func (v viewer) tgUsed(tgID string) bool {
	if used, ok := v.tgsUsed[tgID]; ok {
		return used
	}
	_, used := tgInUse(v.txn, tgID)
	if v.tgsUsed != nil {
		v.tgsUsed[tgID] = used
	}
	return used
}

// addLoadBalancers adds the load balancer resources to a snapshot.
func (v viewer) addLoadBalancers(snap *api.Snapshot) {
	snap.LoadBalancers, snap.Listeners = []api.LoadBalancer{}, []api.Listener{}
	snap.TargetGroups, snap.Targets = []api.TargetGroup{}, []api.TargetHealthDescription{}
	for _, r := range listAll[lbRec](v.txn, tableLoadBalancers) {
		snap.LoadBalancers = append(snap.LoadBalancers, v.loadBalancer(r))
	}
	for _, r := range listAll[listenerRec](v.txn, tableListeners) {
		snap.Listeners = append(snap.Listeners, v.listener(r))
	}
	for _, r := range listAll[tgRec](v.txn, tableTargetGroups) {
		snap.TargetGroups = append(snap.TargetGroups, v.targetGroup(r))
	}
	for _, r := range listAll[targetRec](v.txn, tableTargets) {
		snap.Targets = append(snap.Targets, v.target(r))
	}
	snap.Rules, snap.Certificates = []api.Rule{}, []api.Certificate{}
	rules := listAll[ruleRec](v.txn, tableRules)
	if v.rules != nil {
		snap.Rules = v.rules.views(rules)
	} else {
		for _, r := range rules {
			snap.Rules = append(snap.Rules, ruleView(r))
		}
	}
	for _, r := range listAll[certRec](v.txn, tableCertificates) {
		snap.Certificates = append(snap.Certificates, certView(v.txn, r))
	}
}
