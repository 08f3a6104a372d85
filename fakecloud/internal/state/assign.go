package state

import (
	"net/netip"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// slotLimit is how many IPv4 slots an interface may hold: its instance type's figure when
// attached, the largest figure otherwise (checked again at attach).
func slotLimit(t *tx, e *eniRec) (int, string) {
	if e.InstanceID != "" {
		if inst := first[instanceRec](t.Txn, tableInstances, indexID, e.InstanceID); inst != nil {
			return catalog[inst.Type].Ipv4AddressesPerInterface, inst.Type
		}
	}
	return maxIPv4PerInterface, "an unattached interface"
}

func validateAssign(req *api.AssignPrivateIPAddressesRequest) error {
	if err := validateCount("SecondaryPrivateIpAddressCount", req.SecondaryPrivateIPAddressCount); err != nil {
		return err
	}
	if err := validateCount("Ipv4PrefixCount", req.Ipv4PrefixCount); err != nil {
		return err
	}
	if len(req.PrivateIPAddresses) > 0 && req.SecondaryPrivateIPAddressCount > 0 {
		return api.Errorf(api.CodeInvalidParameterCombination, "give PrivateIpAddresses or SecondaryPrivateIpAddressCount, not both")
	}
	if len(req.Ipv4Prefixes) > 0 && req.Ipv4PrefixCount > 0 {
		return api.Errorf(api.CodeInvalidParameterCombination, "give Ipv4Prefixes or Ipv4PrefixCount, not both")
	}
	if len(req.PrivateIPAddresses)+req.SecondaryPrivateIPAddressCount+len(req.Ipv4Prefixes)+req.Ipv4PrefixCount == 0 {
		return api.Errorf(api.CodeMissingParameter, "ask for at least one address or prefix (PrivateIpAddresses, SecondaryPrivateIpAddressCount, Ipv4Prefixes or Ipv4PrefixCount)")
	}
	if len(req.PrivateIPAddresses) > maxCount || len(req.Ipv4Prefixes) > maxCount {
		return api.Errorf(api.CodeInvalidParameterValue, "at most %d addresses or prefixes per call", maxCount)
	}
	if err := noDuplicates("PrivateIpAddresses", req.PrivateIPAddresses); err != nil {
		return err
	}
	return noDuplicates("Ipv4Prefixes", req.Ipv4Prefixes)
}

// AssignPrivateIPAddresses assigns secondary addresses and /28 prefixes to an interface, all or
// nothing. Each address and each prefix takes one of the interface's IPv4 slots.
func (s *Store) AssignPrivateIPAddresses(c Call, req *api.AssignPrivateIPAddressesRequest) (*api.AssignPrivateIPAddressesResponse, error) {
	if err := validateAssign(req); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionAssignPrivateIPAddresses, req.ClientToken, req, func(t *tx) (*api.AssignPrivateIPAddressesResponse, error) {
		e, err := getENI(t.Txn, c, req.NetworkInterfaceID)
		if err != nil {
			return nil, err
		}
		limit, what := slotLimit(t, e)
		held := len(listBy[addrRec](t.Txn, tableAddrs, indexENI, e.ID))
		want := len(req.PrivateIPAddresses) + req.SecondaryPrivateIPAddressCount + len(req.Ipv4Prefixes) + req.Ipv4PrefixCount
		if held+want > limit {
			return nil, api.Errorf(api.CodePrivateIPAddressLimitExceeded,
				"network interface %s holds %d of its %d IPv4 slots (%s); %d more do not fit", e.ID, held, limit, what, want)
		}
		sn, err := getSubnet(t.Txn, e.SubnetID)
		if err != nil {
			return nil, err
		}
		p := netip.MustParsePrefix(sn.Cidr)
		ips, err := t.allocate(e, p, req.PrivateIPAddresses, req.SecondaryPrivateIPAddressCount, 1, false)
		if err != nil {
			return nil, err
		}
		prefixes, err := t.allocate(e, p, req.Ipv4Prefixes, req.Ipv4PrefixCount, prefixSize, false)
		if err != nil {
			return nil, err
		}
		t.touch(api.KindENI, e.ID)
		out := &api.AssignPrivateIPAddressesResponse{
			NetworkInterfaceID:         e.ID,
			AssignedPrivateIPAddresses: make([]string, 0, len(ips)),
			AssignedIpv4Prefixes:       make([]api.Ipv4Prefix, 0, len(prefixes)),
		}
		for _, a := range ips {
			out.AssignedPrivateIPAddresses = append(out.AssignedPrivateIPAddresses, u32ToAddr(a.Start).String())
		}
		for _, a := range prefixes {
			out.AssignedIpv4Prefixes = append(out.AssignedIpv4Prefixes, api.Ipv4Prefix{Ipv4Prefix: a.prefix().String()})
		}
		return out, nil
	})
}

// UnassignPrivateIPAddresses releases secondary addresses and prefixes of an interface, all or
// nothing. The primary address cannot be released.
func (s *Store) UnassignPrivateIPAddresses(c Call, req *api.UnassignPrivateIPAddressesRequest) (*api.UnassignPrivateIPAddressesResponse, error) {
	if len(req.PrivateIPAddresses)+len(req.Ipv4Prefixes) == 0 {
		return nil, api.Errorf(api.CodeMissingParameter, "name at least one address (PrivateIpAddresses) or prefix (Ipv4Prefixes) to unassign")
	}
	if len(req.PrivateIPAddresses) > maxCount || len(req.Ipv4Prefixes) > maxCount {
		return nil, api.Errorf(api.CodeInvalidParameterValue, "at most %d addresses or prefixes per call", maxCount)
	}
	if err := noDuplicates("PrivateIpAddresses", req.PrivateIPAddresses); err != nil {
		return nil, err
	}
	if err := noDuplicates("Ipv4Prefixes", req.Ipv4Prefixes); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionUnassignPrivateIPAddresses, req.ClientToken, req, func(t *tx) (*api.UnassignPrivateIPAddressesResponse, error) {
		e, err := getENI(t.Txn, c, req.NetworkInterfaceID)
		if err != nil {
			return nil, err
		}
		for _, s := range req.PrivateIPAddresses {
			if err := t.release(e, s, false); err != nil {
				return nil, err
			}
		}
		for _, s := range req.Ipv4Prefixes {
			if err := t.release(e, s, true); err != nil {
				return nil, err
			}
		}
		t.touch(api.KindENI, e.ID)
		return &api.UnassignPrivateIPAddressesResponse{}, nil
	})
}

func (t *tx) release(e *eniRec, s string, isPrefix bool) error {
	var start uint32
	if isPrefix {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p.Bits() != 28 || p.Masked() != p {
			return api.Errorf(api.CodeInvalidParameterValue, "%q is not an IPv4 /28 prefix", s)
		}
		start = prefixBase(p)
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return api.Errorf(api.CodeInvalidParameterValue, "%q is not an IPv4 address", s)
		}
		start = addrToU32(a)
	}
	a := first[addrRec](t.Txn, tableAddrs, indexID, addrKey(e.VpcID, start))
	if a == nil || a.ENI != e.ID || (a.Size > 1) != isPrefix {
		what := "address"
		if isPrefix {
			what = "prefix"
		}
		return api.Errorf(api.CodeInvalidParameterValue, "%s is not a %s assigned to network interface %s", s, what, e.ID)
	}
	if a.Primary {
		return api.Errorf(api.CodeInvalidParameterValue, "%s is the primary address of %s and cannot be unassigned", s, e.ID)
	}
	if err := t.Delete(tableAddrs, a); err != nil {
		return internal(err)
	}
	return nil
}
