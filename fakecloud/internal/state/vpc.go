package state

import (
	"net/netip"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

const defaultAZ = "fc-east-1a"

// CreateVpc creates a VPC with one IPv4 CIDR block between /16 and /28.
func (s *Store) CreateVpc(c Call, req *api.CreateVpcRequest) (*api.CreateVpcResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionCreateVpc); err != nil {
		return nil, err
	}
	if _, err := parseCIDR("CidrBlock", req.CidrBlock, 16); err != nil {
		return nil, err
	}
	if err := validateTags(req.Tags); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionCreateVpc, req.ClientToken, req, func(t *tx) (*api.CreateVpcResponse, error) {
		r := &vpcRec{ID: newID(t.Txn, tableVpcs, "vpc"), Cidr: req.CidrBlock, Tags: tagMap(req.Tags), Created: c.Now}
		if err := t.Insert(tableVpcs, r); err != nil {
			return nil, internal(err)
		}
		t.touch(api.KindVpc, r.ID)
		return &api.CreateVpcResponse{Vpc: newViewer(t.Txn, c).vpc(r)}, nil
	})
}

func vpcAttr(r *vpcRec) attrFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "vpc-id":
			return []string{r.ID}, true
		case "cidr", "cidr-block":
			return []string{r.Cidr}, true
		}
		return tagAttr(r.Tags, name)
	}
}

// DescribeVpcs lists VPCs by ID and filters.
func (s *Store) DescribeVpcs(c Call, req *api.DescribeVpcsRequest) (*api.DescribeVpcsResponse, error) {
	if err := validateFilters(req.Filters, vpcAttr(&vpcRec{})); err != nil {
		return nil, err
	}
	txn := s.read()
	recs, err := selectByIDs[vpcRec](txn, tableVpcs, req.VpcIDs, api.CodeInvalidVpcIDNotFound, "vpc")
	if err != nil {
		return nil, err
	}
	v := newViewer(txn, c)
	out := &api.DescribeVpcsResponse{Vpcs: []api.Vpc{}}
	for _, r := range recs {
		if matches(req.Filters, vpcAttr(r)) {
			out.Vpcs = append(out.Vpcs, v.vpc(r))
		}
	}
	return out, nil
}

// DeleteVpc deletes a VPC that has no subnets left.
func (s *Store) DeleteVpc(c Call, req *api.DeleteVpcRequest) (*api.DeleteVpcResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionDeleteVpc); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionDeleteVpc, "", req, func(t *tx) (*api.DeleteVpcResponse, error) {
		r, err := getVpc(t.Txn, req.VpcID)
		if err != nil {
			return nil, err
		}
		if sn := first[subnetRec](t.Txn, tableSubnets, indexVpc, r.ID); sn != nil {
			return nil, api.Errorf(api.CodeDependencyViolation, "vpc %s still has subnet %s; delete its subnets first", r.ID, sn.ID)
		}
		if tg := first[tgRec](t.Txn, tableTargetGroups, indexVpc, r.ID); tg != nil {
			return nil, api.Errorf(api.CodeDependencyViolation, "vpc %s still has target group %s; delete it first", r.ID, tg.ID)
		}
		if err := t.Delete(tableVpcs, r); err != nil {
			return nil, internal(err)
		}
		t.touch(api.KindVpc, r.ID)
		return &api.DeleteVpcResponse{}, nil
	})
}

// CreateSubnet creates a subnet inside a VPC's block, overlapping no other subnet.
func (s *Store) CreateSubnet(c Call, req *api.CreateSubnetRequest) (*api.CreateSubnetResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionCreateSubnet); err != nil {
		return nil, err
	}
	p, err := parseCIDR("CidrBlock", req.CidrBlock, 16)
	if err != nil {
		return nil, err
	}
	if err := validateTags(req.Tags); err != nil {
		return nil, err
	}
	az := req.AvailabilityZone
	if az == "" {
		az = defaultAZ
	}
	return write(s, c, api.ActionCreateSubnet, req.ClientToken, req, func(t *tx) (*api.CreateSubnetResponse, error) {
		vpc, err := getVpc(t.Txn, req.VpcID)
		if err != nil {
			return nil, err
		}
		vp := netip.MustParsePrefix(vpc.Cidr)
		if !vp.Contains(p.Addr()) || p.Bits() < vp.Bits() {
			return nil, api.Errorf(api.CodeInvalidSubnetRange, "subnet %s is not inside vpc %s's block %s", p, vpc.ID, vp)
		}
		for _, other := range listBy[subnetRec](t.Txn, tableSubnets, indexVpc, vpc.ID) {
			if netip.MustParsePrefix(other.Cidr).Overlaps(p) {
				return nil, api.Errorf(api.CodeInvalidSubnetConflict, "subnet %s overlaps subnet %s (%s)", p, other.ID, other.Cidr)
			}
		}
		r := &subnetRec{ID: newID(t.Txn, tableSubnets, "subnet"), VpcID: vpc.ID, Cidr: p.String(), AZ: az, Tags: tagMap(req.Tags), Created: c.Now}
		if err := t.Insert(tableSubnets, r); err != nil {
			return nil, internal(err)
		}
		t.touch(api.KindSubnet, r.ID)
		return &api.CreateSubnetResponse{Subnet: newViewer(t.Txn, c).subnet(r)}, nil
	})
}

func subnetAttr(r *subnetRec) attrFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "subnet-id":
			return []string{r.ID}, true
		case "vpc-id":
			return []string{r.VpcID}, true
		case "cidr-block":
			return []string{r.Cidr}, true
		case "availability-zone":
			return []string{r.AZ}, true
		}
		return tagAttr(r.Tags, name)
	}
}

// DescribeSubnets lists subnets by ID and filters.
func (s *Store) DescribeSubnets(c Call, req *api.DescribeSubnetsRequest) (*api.DescribeSubnetsResponse, error) {
	if err := validateFilters(req.Filters, subnetAttr(&subnetRec{})); err != nil {
		return nil, err
	}
	txn := s.read()
	recs, err := selectByIDs[subnetRec](txn, tableSubnets, req.SubnetIDs, api.CodeInvalidSubnetIDNotFound, "subnet")
	if err != nil {
		return nil, err
	}
	v := newViewer(txn, c)
	out := &api.DescribeSubnetsResponse{Subnets: []api.Subnet{}}
	for _, r := range recs {
		if matches(req.Filters, subnetAttr(r)) {
			out.Subnets = append(out.Subnets, v.subnet(r))
		}
	}
	return out, nil
}

// DeleteSubnet deletes a subnet that has no network interfaces left.
func (s *Store) DeleteSubnet(c Call, req *api.DeleteSubnetRequest) (*api.DeleteSubnetResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionDeleteSubnet); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionDeleteSubnet, "", req, func(t *tx) (*api.DeleteSubnetResponse, error) {
		r, err := getSubnet(t.Txn, req.SubnetID)
		if err != nil {
			return nil, err
		}
		if e := first[eniRec](t.Txn, tableENIs, indexSubnet, r.ID); e != nil {
			return nil, api.Errorf(api.CodeDependencyViolation, "subnet %s still has network interface %s; delete it first", r.ID, e.ID)
		}
		if lb := first[lbRec](t.Txn, tableLoadBalancers, indexSubnet, r.ID); lb != nil {
			return nil, api.Errorf(api.CodeDependencyViolation, "subnet %s still has load balancer %s; delete it first", r.ID, lb.ID)
		}
		if err := t.Delete(tableSubnets, r); err != nil {
			return nil, internal(err)
		}
		delete(t.s.cursors, r.ID)
		t.touch(api.KindSubnet, r.ID)
		return &api.DeleteSubnetResponse{}, nil
	})
}

// selectByIDs returns the records named by ids (all when ids is empty); a missing one is an
// error with the resource's NotFound code, as EC2 answers.
func selectByIDs[T any](txn *memdb.Txn, table string, ids []string, notFound, what string) ([]*T, error) {
	if len(ids) == 0 {
		return listAll[T](txn, table), nil
	}
	if len(ids) > maxCount {
		return nil, api.Errorf(api.CodeInvalidParameterValue, "%d IDs given; at most %d", len(ids), maxCount)
	}
	if err := noDuplicates(what+" IDs", ids); err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(ids))
	for _, id := range ids {
		r := first[T](txn, table, indexID, id)
		if r == nil {
			return nil, api.Errorf(notFound, "the %s ID %q does not exist", what, id)
		}
		out = append(out, r)
	}
	return out, nil
}
