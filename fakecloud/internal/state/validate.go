package state

import (
	"net/netip"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

const (
	maxTagsPerResource = 50
	maxTagKeyLen       = 128
	maxTagValueLen     = 256
	maxCount           = 1000 // the most addresses, prefixes or instances one call may ask for
)

func required(name, v string) error {
	if v == "" {
		return api.Errorf(api.CodeMissingParameter, "%s is required", name)
	}
	return nil
}

// parseCIDR parses an IPv4 network in canonical form with a prefix length in [minBits, 28].
func parseCIDR(name, s string, minBits int) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, api.Errorf(api.CodeMissingParameter, "%s is required", name)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, api.Errorf(api.CodeInvalidParameterValue, "%s %q is not a CIDR block: %v", name, s, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, api.Errorf(api.CodeInvalidParameterValue, "%s %s is not IPv4", name, s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, api.Errorf(api.CodeInvalidParameterValue, "%s %s has host bits set; did you mean %s?", name, s, p.Masked())
	}
	if p.Bits() < minBits || p.Bits() > 28 {
		return netip.Prefix{}, api.Errorf(api.CodeInvalidParameterValue, "%s %s must be between /%d and /28", name, s, minBits)
	}
	return p, nil
}

func validateTags(tags []api.Tag) error {
	if len(tags) > maxTagsPerResource {
		return api.Errorf(api.CodeInvalidParameterValue, "%d tags given; a resource holds at most %d", len(tags), maxTagsPerResource)
	}
	seen := map[string]bool{}
	for _, tg := range tags {
		switch {
		case tg.Key == "":
			return api.Errorf(api.CodeInvalidParameterValue, "tag key must not be empty")
		case len(tg.Key) > maxTagKeyLen:
			return api.Errorf(api.CodeInvalidParameterValue, "tag key %.20q... is longer than %d characters", tg.Key, maxTagKeyLen)
		case len(tg.Value) > maxTagValueLen:
			return api.Errorf(api.CodeInvalidParameterValue, "value of tag %q is longer than %d characters", tg.Key, maxTagValueLen)
		case strings.HasPrefix(tg.Key, "aws:"):
			return api.Errorf(api.CodeInvalidParameterValue, "tag key %q uses the reserved prefix aws:", tg.Key)
		case seen[tg.Key]:
			return api.Errorf(api.CodeInvalidParameterValue, "tag key %q is given twice", tg.Key)
		}
		seen[tg.Key] = true
	}
	return nil
}

func tagMap(tags []api.Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, tg := range tags {
		m[tg.Key] = tg.Value
	}
	return m
}

func validateCount(name string, n int) error {
	if n < 0 {
		return api.Errorf(api.CodeInvalidParameterValue, "%s must not be negative (got %d)", name, n)
	}
	if n > maxCount {
		return api.Errorf(api.CodeInvalidParameterValue, "%s %d is more than the %d one call may ask for", name, n, maxCount)
	}
	return nil
}

func noDuplicates(name string, vals []string) error {
	seen := make(map[string]bool, len(vals))
	for _, v := range vals {
		if seen[v] {
			return api.Errorf(api.CodeInvalidParameterValue, "%s lists %s twice", name, v)
		}
		seen[v] = true
	}
	return nil
}

// lookups that fail with the resource's NotFound code

func getVpc(txn *memdb.Txn, id string) (*vpcRec, error) {
	if err := required("VpcId", id); err != nil {
		return nil, err
	}
	if r := first[vpcRec](txn, tableVpcs, indexID, id); r != nil {
		return r, nil
	}
	return nil, api.Errorf(api.CodeInvalidVpcIDNotFound, "the vpc ID %q does not exist", id)
}

func getSubnet(txn *memdb.Txn, id string) (*subnetRec, error) {
	if err := required("SubnetId", id); err != nil {
		return nil, err
	}
	if r := first[subnetRec](txn, tableSubnets, indexID, id); r != nil {
		return r, nil
	}
	return nil, api.Errorf(api.CodeInvalidSubnetIDNotFound, "the subnet ID %q does not exist", id)
}

func getInstance(txn *memdb.Txn, id string) (*instanceRec, error) {
	if err := required("InstanceId", id); err != nil {
		return nil, err
	}
	if r := first[instanceRec](txn, tableInstances, indexID, id); r != nil {
		return r, nil
	}
	return nil, api.Errorf(api.CodeInvalidInstanceIDNotFound, "the instance ID %q does not exist", id)
}

// getENI finds an interface the caller may see and touch: one created within the visibility
// lag is NotFound, and an instance may only touch its own interfaces.
func getENI(txn *memdb.Txn, c Call, id string) (*eniRec, error) {
	if err := required("NetworkInterfaceId", id); err != nil {
		return nil, err
	}
	r := first[eniRec](txn, tableENIs, indexID, id)
	if r == nil || newViewer(txn, c).hidden(r.Created) {
		return nil, api.Errorf(api.CodeInvalidNetworkInterfaceIDNotFound, "the network interface ID %q does not exist", id)
	}
	if err := authorizeENI(c.Principal, r); err != nil {
		return nil, err
	}
	if err := confineToVPC(txn, c.Principal, r.VpcID, "network interface "+r.ID); err != nil {
		return nil, err
	}
	return r, nil
}

// confineToVPC refuses an instance any resource (what) outside its own VPC: an instance token
// reaches only its VPC's subnets and interfaces. The admin reaches every VPC.
func confineToVPC(txn *memdb.Txn, p Principal, vpc, what string) error {
	if p.Admin {
		return nil
	}
	inst := first[instanceRec](txn, tableInstances, indexID, p.InstanceID)
	if inst == nil {
		return api.Errorf(api.CodeUnauthorizedOperation, "instance %s no longer exists; its token reaches nothing", p.InstanceID)
	}
	if inst.VpcID != vpc {
		return api.Errorf(api.CodeUnauthorizedOperation,
			"instance %s is in %s and may not use %s in %s: an instance's token reaches its own VPC only", p.InstanceID, inst.VpcID, what, vpc)
	}
	return nil
}

func authorizeENI(p Principal, r *eniRec) error {
	// An instance touches the interfaces attached to it, and those it created while they are
	// not attached to anyone: once attached elsewhere, an interface is the other instance's.
	if p.Admin || (p.InstanceID != "" && (r.InstanceID == p.InstanceID || (r.AttachmentID == "" && r.Owner == p.InstanceID))) {
		return nil
	}
	return api.Errorf(api.CodeUnauthorizedOperation,
		"instance %s is not authorized to modify network interface %s, which belongs to another instance", p.InstanceID, r.ID)
}

// requireLoadBalancing lets the admin and the load-balancer principal through.
func requireLoadBalancing(p Principal, action string) error {
	if p.Admin || p.LoadBalancer {
		return nil
	}
	return api.Errorf(api.CodeUnauthorizedOperation, "%s needs the admin or the load-balancer token; instance tokens may not call it", action)
}

func requireAdmin(p Principal, action string) error {
	if p.Admin {
		return nil
	}
	return api.Errorf(api.CodeUnauthorizedOperation, "%s needs the admin token; instance tokens may not call it", action)
}
