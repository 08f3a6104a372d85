package state

import (
	"slices"
	"strconv"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// CreateTargetGroup creates a group of IP targets in a VPC: TCP, UDP or TCP_UDP for network
// load balancers, HTTP or HTTPS (with a protocol version) or TLS for application ones. As in ELBv2,
// the same name with the same settings answers the existing group.
func (s *Store) CreateTargetGroup(c Call, req *api.CreateTargetGroupRequest) (*api.CreateTargetGroupResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionCreateTargetGroup); err != nil {
		return nil, err
	}
	if err := validateLBName("Name", req.Name); err != nil {
		return nil, err
	}
	version, err := tgProtocolVersion(req.Protocol, req.ProtocolVersion)
	if err != nil {
		return nil, err
	}
	if err := validatePort("Port", req.Port); err != nil {
		return nil, err
	}
	if req.TargetType != "" && req.TargetType != api.TargetTypeIP {
		return nil, invalid("TargetType %.20q is not supported: targets are IP addresses (ip)", req.TargetType)
	}
	if req.VpcID == "" {
		return nil, invalid("VpcId is required")
	}
	hc, err := completeHealthCheckFor(req.Protocol, version, req.HealthCheck)
	if err != nil {
		return nil, err
	}
	tlsv, err := validateTLSVerification(req.Protocol, req.TLSVerification)
	if err != nil {
		return nil, err
	}
	if req.ClientCertificateID != "" && !speaksTLS(req.Protocol) {
		return nil, invalid("ClientCertificateId applies to HTTPS and TLS target groups only; Protocol is %s", req.Protocol)
	}
	if err := validateLBTags(req.Tags); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionCreateTargetGroup, req.ClientToken, req, func(t *tx) (*api.CreateTargetGroupResponse, error) {
		v := newViewer(t.Txn, c)
		if err := checkClientCertificate(t.Txn, req.ClientCertificateID); err != nil {
			return nil, err
		}
		if old := first[tgRec](t.Txn, tableTargetGroups, indexName, req.Name); old != nil {
			if old.Protocol == req.Protocol && old.ProtocolVersion == version && old.Port == req.Port && old.VpcID == req.VpcID && old.HealthCheck == hc &&
				sameTLSVerification(old.TLSVerification, tlsv) && old.ClientCertificateID == req.ClientCertificateID {
				return &api.CreateTargetGroupResponse{TargetGroup: v.targetGroup(old)}, nil
			}
			return nil, api.Errorf(api.CodeDuplicateTargetGroupName,
				"a target group named %q already exists (%s) with other settings; pick another name or delete it", req.Name, old.ID)
		}
		if n := count(t.Txn, tableTargetGroups, indexID); n >= maxTargetGroups {
			return nil, api.Errorf(api.CodeTooManyTargetGroups, "the account has %d target groups, the most it may hold; delete one first", n)
		}
		vpc, err := getVpc(t.Txn, req.VpcID)
		if err != nil {
			return nil, err
		}
		r := &tgRec{
			ID: newID(t.Txn, tableTargetGroups, "tg"), Name: req.Name, Protocol: req.Protocol, ProtocolVersion: version, Port: req.Port,
			VpcID: vpc.ID, HealthCheck: hc, DeregistrationDelay: defaultDeregistration, TLSVerification: tlsv,
			ClientCertificateID: req.ClientCertificateID, Tags: tagMap(req.Tags), Created: c.Now,
		}
		if err := t.put(tableTargetGroups, api.KindTargetGroup, r.ID, r); err != nil {
			return nil, err
		}
		if r.ClientCertificateID != "" {
			t.touch(api.KindCertificate, r.ClientCertificateID) // its InUseBy
		}
		return &api.CreateTargetGroupResponse{TargetGroup: v.targetGroup(r)}, nil
	})
}

func tgAttr(r *tgRec) attrFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "target-group-id":
			return []string{r.ID}, true
		case "target-group-name":
			return []string{r.Name}, true
		case "vpc-id":
			return []string{r.VpcID}, true
		case "protocol":
			return []string{r.Protocol}, true
		}
		return tagAttr(r.Tags, name)
	}
}

// DescribeTargetGroups lists target groups by ID, name, load balancer and filters (all must
// match).
func (s *Store) DescribeTargetGroups(c Call, req *api.DescribeTargetGroupsRequest) (*api.DescribeTargetGroupsResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDescribeTargetGroups); err != nil {
		return nil, err
	}
	if err := validateLBFilters(req.Filters, tgAttr(&tgRec{})); err != nil {
		return nil, err
	}
	txn := s.read()
	recs, err := selectByIDs[tgRec](txn, tableTargetGroups, req.TargetGroupIDs, api.CodeTargetGroupNotFound, "target group")
	if err != nil {
		return nil, err
	}
	for _, name := range req.Names {
		if first[tgRec](txn, tableTargetGroups, indexName, name) == nil {
			return nil, api.Errorf(api.CodeTargetGroupNotFound, "no target group is named %q", name)
		}
	}
	if req.LoadBalancerID != "" {
		if _, err := getLB(txn, req.LoadBalancerID); err != nil {
			return nil, err
		}
	}
	v := newViewer(txn, c)
	out := &api.DescribeTargetGroupsResponse{TargetGroups: []api.TargetGroup{}}
	for _, r := range recs {
		if len(req.Names) > 0 && !slices.Contains(req.Names, r.Name) || !matches(req.Filters, tgAttr(r)) {
			continue
		}
		tg := v.targetGroup(r)
		if req.LoadBalancerID == "" || slices.Contains(tg.LoadBalancerIDs, req.LoadBalancerID) {
			out.TargetGroups = append(out.TargetGroups, tg)
		}
	}
	return out, nil
}

// ModifyTargetGroup changes the health check; fields left zero keep their values. Switching
// to TCP drops the HTTP path and matcher.
func (s *Store) ModifyTargetGroup(c Call, req *api.ModifyTargetGroupRequest) (*api.ModifyTargetGroupResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionModifyTargetGroup); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionModifyTargetGroup, "", req, func(t *tx) (*api.ModifyTargetGroupResponse, error) {
		r, err := getTG(t.Txn, req.TargetGroupID)
		if err != nil {
			return nil, err
		}
		hc, err := completeHealthCheckFor(r.Protocol, r.ProtocolVersion, mergeHealthCheck(r.HealthCheck, req.HealthCheck))
		if err != nil {
			return nil, err
		}
		n := *r
		n.HealthCheck = hc
		if n.HealthCheck != r.HealthCheck {
			if err := t.put(tableTargetGroups, api.KindTargetGroup, n.ID, &n); err != nil {
				return nil, err
			}
		}
		return &api.ModifyTargetGroupResponse{TargetGroup: newViewer(t.Txn, c).targetGroup(&n)}, nil
	})
}

func mergeHealthCheck(cur, req api.HealthCheck) api.HealthCheck {
	out := cur
	if req.Protocol != "" && req.Protocol != cur.Protocol {
		out.Protocol, out.Path, out.Matcher = req.Protocol, "", ""
	}
	for _, f := range []struct {
		dst *string
		src string
	}{{&out.Port, req.Port}, {&out.Path, req.Path}, {&out.Matcher, req.Matcher}} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	for _, f := range []struct {
		dst *int
		src int
	}{
		{&out.IntervalSeconds, req.IntervalSeconds}, {&out.TimeoutSeconds, req.TimeoutSeconds},
		{&out.HealthyThresholdCount, req.HealthyThresholdCount}, {&out.UnhealthyThresholdCount, req.UnhealthyThresholdCount},
	} {
		if f.src != 0 {
			*f.dst = f.src
		}
	}
	return out
}

// ModifyTargetGroupAttributes sets attributes (deregistration_delay.timeout_seconds) and
// answers all of them. A new delay applies to targets deregistered from then on.
func (s *Store) ModifyTargetGroupAttributes(c Call, req *api.ModifyTargetGroupAttributesRequest) (*api.ModifyTargetGroupAttributesResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionModifyTargetGroupAttributes); err != nil {
		return nil, err
	}
	if len(req.Attributes) == 0 {
		return nil, invalid("Attributes is required")
	}
	delay := -1
	for _, a := range req.Attributes {
		if a.Key != api.AttributeDeregistrationDelay {
			return nil, invalid("attribute %.60q is not supported for target groups here: use %s", a.Key, api.AttributeDeregistrationDelay)
		}
		n, err := strconv.Atoi(a.Value)
		if err != nil || n < 0 || n > maxDeregistrationDelay {
			return nil, invalid("attribute %s: %.20q must be a whole number of seconds in 0..%d", a.Key, a.Value, maxDeregistrationDelay)
		}
		delay = n
	}
	return write(s, c, api.ActionModifyTargetGroupAttributes, "", req, func(t *tx) (*api.ModifyTargetGroupAttributesResponse, error) {
		r, err := getTG(t.Txn, req.TargetGroupID)
		if err != nil {
			return nil, err
		}
		if r.DeregistrationDelay != delay {
			n := *r
			n.DeregistrationDelay = delay
			if err := t.put(tableTargetGroups, api.KindTargetGroup, n.ID, &n); err != nil {
				return nil, err
			}
		}
		return &api.ModifyTargetGroupAttributesResponse{Attributes: []api.Attribute{
			{Key: api.AttributeDeregistrationDelay, Value: strconv.Itoa(delay)},
		}}, nil
	})
}

// DeleteTargetGroup deletes a group no listener forwards to, with its targets.
func (s *Store) DeleteTargetGroup(c Call, req *api.DeleteTargetGroupRequest) (*api.DeleteTargetGroupResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDeleteTargetGroup); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionDeleteTargetGroup, "", req, func(t *tx) (*api.DeleteTargetGroupResponse, error) {
		r, err := getTG(t.Txn, req.TargetGroupID)
		if err != nil {
			return nil, err
		}
		if who, used := tgInUse(t.Txn, r.ID); used {
			return nil, api.Errorf(api.CodeResourceInUse, "target group %s is in use by %s; delete or change that first", r.ID, who)
		}
		for _, tg := range targetsOf(t.Txn, r.ID) {
			if err := t.deleteTarget(tg); err != nil {
				return nil, err
			}
		}
		if err := t.Delete(tableTargetGroups, r); err != nil {
			return nil, internal(err)
		}
		t.touch(api.KindTargetGroup, r.ID)
		if r.ClientCertificateID != "" {
			t.touch(api.KindCertificate, r.ClientCertificateID) // its InUseBy
		}
		return &api.DeleteTargetGroupResponse{}, nil
	})
}

// touchGroup marks a target group and all its targets changed: whether a listener uses the
// group changes what each target shows (unused or its health).
func (t *tx) touchGroup(tgID string) {
	t.touch(api.KindTargetGroup, tgID)
	for _, r := range targetsOf(t.Txn, tgID) {
		t.touch(api.KindTarget, r.Key)
	}
}
