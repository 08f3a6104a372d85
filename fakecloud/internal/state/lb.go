package state

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// publicPool is where internet-facing load balancers take their VIPs (the lab's address plan).
var publicPool = netip.MustParsePrefix("198.51.100.0/24")

// CreateLoadBalancer creates a network or application load balancer in one subnet. Like ELBv2, a second call
// with the same name and the same settings answers the existing load balancer; a client token
// makes any repeat idempotent.
func (s *Store) CreateLoadBalancer(c Call, req *api.CreateLoadBalancerRequest) (*api.CreateLoadBalancerResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionCreateLoadBalancer); err != nil {
		return nil, err
	}
	if err := validateLBName("Name", req.Name); err != nil {
		return nil, err
	}
	scheme := req.Scheme
	if scheme == "" {
		scheme = api.SchemeInternetFacing
	}
	if scheme != api.SchemeInternal && scheme != api.SchemeInternetFacing {
		return nil, invalid("Scheme %.30q must be internal or internet-facing", req.Scheme)
	}
	typ := req.Type
	if typ == "" {
		typ = api.LoadBalancerTypeNetwork
	}
	if typ != api.LoadBalancerTypeNetwork && typ != api.LoadBalancerTypeApplication {
		return nil, invalid("Type %.30q is not supported: use network or application", req.Type)
	}
	if req.SubnetID == "" {
		return nil, invalid("SubnetId is required")
	}
	if err := validateLBTags(req.Tags); err != nil {
		return nil, err
	}
	wantPublic, wantPrivate, err := requestedAddresses(req, scheme)
	if err != nil {
		return nil, err
	}
	return write(s, c, api.ActionCreateLoadBalancer, req.ClientToken, req, func(t *tx) (*api.CreateLoadBalancerResponse, error) {
		v := newViewer(t.Txn, c)
		if old := first[lbRec](t.Txn, tableLoadBalancers, indexName, req.Name); old != nil {
			if old.Scheme == scheme && old.SubnetID == req.SubnetID && old.Type == typ &&
				(!wantPublic.IsValid() || wantPublic.String() == old.PublicIP) && (!wantPrivate.IsValid() || wantPrivate.String() == old.PrivateIP) {
				return &api.CreateLoadBalancerResponse{LoadBalancer: v.loadBalancer(old)}, nil
			}
			return nil, api.Errorf(api.CodeDuplicateLoadBalancerName,
				"a load balancer named %q already exists (%s) with other settings; pick another name or delete it", req.Name, old.ID)
		}
		if n := count(t.Txn, tableLoadBalancers, indexID); n >= maxLoadBalancers {
			return nil, api.Errorf(api.CodeTooManyLoadBalancers, "the account has %d load balancers, the most it may hold; delete one first", n)
		}
		sn, err := getSubnet(t.Txn, req.SubnetID)
		if err != nil {
			return nil, err
		}
		r := &lbRec{
			ID: newID(t.Txn, tableLoadBalancers, "lb"), Name: req.Name, Scheme: scheme, Type: typ,
			VpcID: sn.VpcID, SubnetID: sn.ID, AZ: sn.AZ, Tags: tagMap(req.Tags), Created: c.Now,
			State: s.initialLBState(),
		}
		// The private address is held under the load balancer's ID, the way a requester-managed
		// interface would hold it: it counts against the subnet and collides with nothing.
		holder := &eniRec{ID: r.ID, VpcID: sn.VpcID, SubnetID: sn.ID}
		count, explicit := 1, []string(nil)
		if wantPrivate.IsValid() {
			count, explicit = 0, []string{wantPrivate.String()}
		}
		addrs, err := t.allocate(holder, netip.MustParsePrefix(sn.Cidr), explicit, count, 1, true)
		if err != nil {
			if wantPrivate.IsValid() {
				var ae *api.Error
				if errors.As(err, &ae) && (ae.Code == api.CodeInvalidIPAddressInUse || ae.Code == api.CodeInvalidParameterValue) {
					return nil, api.Errorf(api.CodeAddressUnavailable, "PrivateIpv4Address %s cannot be the load balancer's: %s", wantPrivate, ae.Message)
				}
			}
			return nil, err
		}
		r.PrivateIP = u32ToAddr(addrs[0].Start).String()
		switch {
		case wantPublic.IsValid():
			if err := publicIPUsable(t, wantPublic); err != nil {
				return nil, err
			}
			r.PublicIP = wantPublic.String()
		case scheme == api.SchemeInternetFacing:
			if r.PublicIP, err = freePublicIP(t); err != nil {
				return nil, err
			}
		}
		if err := t.put(tableLoadBalancers, api.KindLoadBalancer, r.ID, r); err != nil {
			return nil, err
		}
		return &api.CreateLoadBalancerResponse{LoadBalancer: v.loadBalancer(r)}, nil
	})
}

// requestedAddresses parses the addresses a CreateLoadBalancer asks for (zero Addrs: none).
func requestedAddresses(req *api.CreateLoadBalancerRequest, scheme string) (public, private netip.Addr, err error) {
	parse := func(field, s string) (netip.Addr, error) {
		if s == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return netip.Addr{}, invalid("%s %.50q is not an IPv4 address", field, s)
		}
		return a, nil
	}
	if public, err = parse("PublicIpv4Address", req.PublicIPv4Address); err != nil {
		return public, private, err
	}
	if private, err = parse("PrivateIpv4Address", req.PrivateIPv4Address); err != nil {
		return public, private, err
	}
	if public.IsValid() && scheme != api.SchemeInternetFacing {
		return public, private, invalid("PublicIpv4Address applies to internet-facing load balancers only; an internal one has no public address (ask for a PrivateIpv4Address)")
	}
	return public, private, nil
}

// publicPoolRange is the pool's addresses a load balancer may hold: all but its first and last.
func publicPoolRange() (lo, hi uint32) {
	return prefixBase(publicPool) + 1, prefixLast(publicPool) - 1
}

// publicIPUsable checks that a public address asked for is a free address of the pool.
func publicIPUsable(t *tx, a netip.Addr) error {
	lo, hi := publicPoolRange()
	if x := addrToU32(a); !publicPool.Contains(a) || x < lo || x > hi {
		return api.Errorf(api.CodeAddressUnavailable, "PublicIpv4Address %s cannot be the load balancer's: it is not an address of the public pool %s (%s to %s)",
			a, publicPool, u32ToAddr(lo), u32ToAddr(hi))
	}
	if holder := first[lbRec](t.Txn, tableLoadBalancers, indexPublicIP, a.String()); holder != nil {
		return api.Errorf(api.CodeAddressUnavailable, "PublicIpv4Address %s cannot be the load balancer's: load balancer %s (%s) holds it", a, holder.ID, holder.Name)
	}
	return nil
}

// freePublicIP picks the lowest pool address no load balancer holds (the unique index on
// PublicIP would refuse a second holder anyway).
func freePublicIP(t *tx) (string, error) {
	lo, hi := publicPoolRange()
	for x := lo; x <= hi; x++ {
		ip := u32ToAddr(x).String()
		if first[lbRec](t.Txn, tableLoadBalancers, indexPublicIP, ip) == nil {
			return ip, nil
		}
	}
	return "", api.Errorf(api.CodeInsufficientPublicAddresses, "every address of the public pool %s is taken; delete an internet-facing load balancer", publicPool)
}

func lbAttr(r *lbRec) attrFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "load-balancer-id":
			return []string{r.ID}, true
		case "load-balancer-name":
			return []string{r.Name}, true
		case "vpc-id":
			return []string{r.VpcID}, true
		case "subnet-id":
			return []string{r.SubnetID}, true
		case "scheme":
			return []string{r.Scheme}, true
		case "type":
			return []string{r.Type}, true
		}
		return tagAttr(r.Tags, name)
	}
}

// DescribeLoadBalancers lists load balancers by ID, by name and by filters (all must match).
func (s *Store) DescribeLoadBalancers(c Call, req *api.DescribeLoadBalancersRequest) (*api.DescribeLoadBalancersResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDescribeLoadBalancers); err != nil {
		return nil, err
	}
	if err := validateLBFilters(req.Filters, lbAttr(&lbRec{})); err != nil {
		return nil, err
	}
	txn := s.read()
	recs, err := selectByIDs[lbRec](txn, tableLoadBalancers, req.LoadBalancerIDs, api.CodeLoadBalancerNotFound, "load balancer")
	if err != nil {
		return nil, err
	}
	for _, name := range req.Names {
		if first[lbRec](txn, tableLoadBalancers, indexName, name) == nil {
			return nil, api.Errorf(api.CodeLoadBalancerNotFound, "no load balancer is named %q", name)
		}
	}
	v := newViewer(txn, c)
	out := &api.DescribeLoadBalancersResponse{LoadBalancers: []api.LoadBalancer{}}
	for _, r := range recs {
		if (len(req.Names) == 0 || slices.Contains(req.Names, r.Name)) && matches(req.Filters, lbAttr(r)) {
			out.LoadBalancers = append(out.LoadBalancers, v.loadBalancer(r))
		}
	}
	return out, nil
}

// validateLBFilters is validateFilters with the load balancer API's error code.
func validateLBFilters(filters []api.Filter, probe attrFunc) error {
	err := validateFilters(filters, probe)
	var e *api.Error
	if errors.As(err, &e) {
		return invalid("Filters: %s", e.Message)
	}
	return err
}

// DeleteLoadBalancer deletes a load balancer with its listeners (and their rules) and
// releases its addresses.
// Deleting one that does not exist succeeds, as in ELBv2, so cleanup can simply repeat.
func (s *Store) DeleteLoadBalancer(c Call, req *api.DeleteLoadBalancerRequest) (*api.DeleteLoadBalancerResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDeleteLoadBalancer); err != nil {
		return nil, err
	}
	if req.LoadBalancerID == "" {
		return nil, invalid("LoadBalancerId is required")
	}
	return write(s, c, api.ActionDeleteLoadBalancer, "", req, func(t *tx) (*api.DeleteLoadBalancerResponse, error) {
		r := first[lbRec](t.Txn, tableLoadBalancers, indexID, req.LoadBalancerID)
		if r == nil {
			return &api.DeleteLoadBalancerResponse{}, nil
		}
		for _, l := range listBy[listenerRec](t.Txn, tableListeners, indexLoadBalancer, r.ID) {
			if err := t.deleteListener(l); err != nil {
				return nil, err
			}
		}
		for _, a := range listBy[addrRec](t.Txn, tableAddrs, indexENI, r.ID) {
			if err := t.Delete(tableAddrs, a); err != nil {
				return nil, internal(err)
			}
		}
		if err := t.Delete(tableLoadBalancers, r); err != nil {
			return nil, internal(err)
		}
		t.touch(api.KindLoadBalancer, r.ID)
		return &api.DeleteLoadBalancerResponse{}, nil
	})
}

// ModifyLoadBalancerAttributes sets attributes (source_ranges.cidr_blocks) and answers all of
// them.
func (s *Store) ModifyLoadBalancerAttributes(c Call, req *api.ModifyLoadBalancerAttributesRequest) (*api.ModifyLoadBalancerAttributesResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionModifyLoadBalancerAttributes); err != nil {
		return nil, err
	}
	if len(req.Attributes) == 0 {
		return nil, invalid("Attributes is required")
	}
	// Only the attributes given change; the others keep their values.
	var (
		ranges     *[]string
		accessLogs *bool
	)
	for _, a := range req.Attributes {
		switch a.Key {
		case api.AttributeSourceRanges:
			r, err := parseSourceRanges(a.Value)
			if err != nil {
				return nil, err
			}
			ranges = &r
		case api.AttributeAccessLogs:
			on, err := parseBoolAttribute(a)
			if err != nil {
				return nil, err
			}
			accessLogs = &on
		default:
			return nil, invalid("attribute %.60q is not supported here: use %s or (application load balancers) %s",
				a.Key, api.AttributeSourceRanges, api.AttributeAccessLogs)
		}
	}
	return write(s, c, api.ActionModifyLoadBalancerAttributes, "", req, func(t *tx) (*api.ModifyLoadBalancerAttributesResponse, error) {
		r, err := getLB(t.Txn, req.LoadBalancerID)
		if err != nil {
			return nil, err
		}
		if accessLogs != nil && r.Type != api.LoadBalancerTypeApplication {
			return nil, invalid("attribute %s: load balancer %s is a %s load balancer; only application load balancers have an access log here",
				api.AttributeAccessLogs, r.ID, r.Type)
		}
		n := *r
		if ranges != nil {
			n.SourceRanges = *ranges
		}
		if accessLogs != nil {
			n.AccessLogs = *accessLogs
		}
		if !slices.Equal(r.SourceRanges, n.SourceRanges) || r.AccessLogs != n.AccessLogs {
			if err := t.put(tableLoadBalancers, api.KindLoadBalancer, n.ID, &n); err != nil {
				return nil, err
			}
		}
		return &api.ModifyLoadBalancerAttributesResponse{Attributes: lbAttributes(&n)}, nil
	})
}

// lbAttributes are a load balancer's attributes as ModifyLoadBalancerAttributes answers them.
func lbAttributes(r *lbRec) []api.Attribute {
	out := []api.Attribute{{Key: api.AttributeSourceRanges, Value: strings.Join(r.SourceRanges, ",")}}
	if r.Type == api.LoadBalancerTypeApplication {
		out = append(out, api.Attribute{Key: api.AttributeAccessLogs, Value: strconv.FormatBool(r.AccessLogs)})
	}
	return out
}

// parseBoolAttribute reads "true" or "false", as the ELB API writes them.
func parseBoolAttribute(a api.Attribute) (bool, error) {
	switch a.Value {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, invalid("attribute %s: %.30q is neither true nor false", a.Key, a.Value)
}
