package state

import (
	"net/netip"
	"sort"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// DescribeInstanceTypes lists the catalog, or the named types.
func (s *Store) DescribeInstanceTypes(c Call, req *api.DescribeInstanceTypesRequest) (*api.DescribeInstanceTypesResponse, error) {
	names := req.InstanceTypes
	if len(names) == 0 {
		names = catalogNames()
	}
	out := &api.DescribeInstanceTypesResponse{InstanceTypes: make([]api.InstanceTypeInfo, 0, len(names))}
	for _, n := range names {
		info, ok := catalog[n]
		if !ok {
			return nil, unknownType(n)
		}
		out.InstanceTypes = append(out.InstanceTypes, info)
	}
	return out, nil
}

func unknownType(n string) error {
	return api.Errorf(api.CodeInvalidParameterValue, "instance type %q is not offered; DescribeInstanceTypes lists the types", n)
}

// RunInstances launches instances in a subnet, each with its primary interface (device 0) and
// that interface's primary IP.
func (s *Store) RunInstances(c Call, req *api.RunInstancesRequest) (*api.RunInstancesResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionRunInstances); err != nil {
		return nil, err
	}
	if _, ok := catalog[req.InstanceType]; !ok {
		if req.InstanceType == "" {
			return nil, required("InstanceType", "")
		}
		return nil, unknownType(req.InstanceType)
	}
	if err := validateCount("Count", req.Count); err != nil {
		return nil, err
	}
	count := max(req.Count, 1)
	var explicit []string
	if req.PrivateIPAddress != "" {
		if count > 1 {
			return nil, api.Errorf(api.CodeInvalidParameterCombination, "PrivateIpAddress fixes one address; it cannot be used with Count %d", count)
		}
		explicit = []string{req.PrivateIPAddress}
	}
	if err := validateTags(req.Tags); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionRunInstances, req.ClientToken, req, func(t *tx) (*api.RunInstancesResponse, error) {
		sn, err := getSubnet(t.Txn, req.SubnetID)
		if err != nil {
			return nil, err
		}
		recs := make([]*instanceRec, 0, count)
		for range count {
			r, err := t.launch(sn, req, explicit)
			if err != nil {
				return nil, err
			}
			recs = append(recs, r)
		}
		v := newViewer(t.Txn, c)
		out := &api.RunInstancesResponse{Instances: make([]api.Instance, 0, count)}
		for _, r := range recs {
			out.Instances = append(out.Instances, v.instance(r))
		}
		return out, nil
	})
}

func (t *tx) launch(sn *subnetRec, req *api.RunInstancesRequest, explicit []string) (*instanceRec, error) {
	now := t.call.Now
	r := &instanceRec{
		ID: newID(t.Txn, tableInstances, "i"), Type: req.InstanceType, SubnetID: sn.ID, VpcID: sn.VpcID,
		AZ: sn.AZ, Token: newToken(), SecurityGroups: req.SecurityGroupIDs, Tags: tagMap(req.Tags), Launched: now,
	}
	r.TokenHash = tokenHash(r.Token)
	e := &eniRec{
		ID: newID(t.Txn, tableENIs, "eni"), SubnetID: sn.ID, VpcID: sn.VpcID, AZ: sn.AZ,
		Description: "Primary network interface", MAC: newMAC(t.Txn), Groups: req.SecurityGroupIDs,
		SourceDestCheck: true, Created: now,
		AttachmentID: newAttachmentID(t.Txn), InstanceID: r.ID, DeviceIndex: 0,
		AttachStatus: api.AttachmentStatusAttached, DeleteOnTermination: true,
	}
	if err := t.Insert(tableInstances, r); err != nil {
		return nil, internal(err)
	}
	if err := t.Insert(tableENIs, e); err != nil {
		return nil, internal(err)
	}
	if _, err := t.allocate(e, netip.MustParsePrefix(sn.Cidr), explicit, 1-len(explicit), 1, true); err != nil {
		return nil, err
	}
	t.touch(api.KindInstance, r.ID)
	t.touch(api.KindENI, e.ID)
	return r, nil
}

func instanceAttr(r *instanceRec, primaryIP string) attrFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "instance-id":
			return []string{r.ID}, true
		case "instance-type":
			return []string{r.Type}, true
		case "subnet-id":
			return []string{r.SubnetID}, true
		case "vpc-id":
			return []string{r.VpcID}, true
		case "availability-zone":
			return []string{r.AZ}, true
		case "instance-state-name":
			return []string{api.InstanceStateRunning}, true
		case "private-ip-address":
			return []string{primaryIP}, true
		}
		return tagAttr(r.Tags, name)
	}
}

// DescribeInstances lists instances by ID and filters, paginated.
func (s *Store) DescribeInstances(c Call, req *api.DescribeInstancesRequest) (*api.DescribeInstancesResponse, error) {
	if err := validateFilters(req.Filters, instanceAttr(&instanceRec{}, "")); err != nil {
		return nil, err
	}
	txn := s.read()
	recs, err := selectByIDs[instanceRec](txn, tableInstances, req.InstanceIDs, api.CodeInvalidInstanceIDNotFound, "instance")
	if err != nil {
		return nil, err
	}
	v := newViewer(txn, c)
	var views []api.Instance
	for _, r := range recs {
		inst := v.instance(r)
		if matches(req.Filters, instanceAttr(r, inst.PrivateIPAddress)) {
			views = append(views, inst)
		}
	}
	views, next, err := page(views, func(i api.Instance) string { return i.InstanceID }, req.MaxResults, req.NextToken)
	if err != nil {
		return nil, err
	}
	return &api.DescribeInstancesResponse{Instances: views, NextToken: next}, nil
}

// TerminateInstances removes instances: interfaces marked DeleteOnTermination are deleted with
// their addresses, the others are detached.
func (s *Store) TerminateInstances(c Call, req *api.TerminateInstancesRequest) (*api.TerminateInstancesResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionTerminateInstances); err != nil {
		return nil, err
	}
	if len(req.InstanceIDs) == 0 {
		return nil, required("InstanceIds", "")
	}
	return write(s, c, api.ActionTerminateInstances, "", req, func(t *tx) (*api.TerminateInstancesResponse, error) {
		recs, err := selectByIDs[instanceRec](t.Txn, tableInstances, req.InstanceIDs, api.CodeInvalidInstanceIDNotFound, "instance")
		if err != nil {
			return nil, err
		}
		out := &api.TerminateInstancesResponse{TerminatingInstances: []string{}}
		for _, r := range recs {
			if err := t.terminate(r); err != nil {
				return nil, err
			}
			out.TerminatingInstances = append(out.TerminatingInstances, r.ID)
		}
		sort.Strings(out.TerminatingInstances)
		return out, nil
	})
}

func (t *tx) terminate(r *instanceRec) error {
	for _, e := range listBy[eniRec](t.Txn, tableENIs, indexInstance, r.ID) {
		id := e.ID
		t.afterCommit(func() { t.s.cancelTransition(id) })
		if e.DeleteOnTermination {
			if err := t.deleteENI(e); err != nil {
				return err
			}
			continue
		}
		if err := t.putENI(detached(e)); err != nil {
			return err
		}
	}
	if err := t.Delete(tableInstances, r); err != nil {
		return internal(err)
	}
	t.touch(api.KindInstance, r.ID)
	return nil
}
