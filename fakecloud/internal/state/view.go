package state

import (
	"net/netip"
	"sort"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// viewer turns records into the API's resource views.
type viewer struct {
	txn   *memdb.Txn
	admin bool
	// hideAfter hides interfaces and addresses created after it (visibility lag); zero hides
	// nothing.
	hideAfter time.Time
	// tgsUsed memoizes tgUsed: a view of 1,000 targets of one group asks about the group 1,000
	// times, and each lookup of an index the transaction has not written starts a radix
	// transaction of its own. Nil memoizes nothing.
	tgsUsed map[string]bool
	// rules, when set, memoizes the rules' views (Snapshot's).
	rules *ruleViews
}

func newViewer(txn *memdb.Txn, c Call) viewer {
	v := viewer{txn: txn, admin: c.Principal.Admin, tgsUsed: map[string]bool{}}
	if c.VisibilityLag > 0 {
		v.hideAfter = c.Now.Add(-c.VisibilityLag)
	}
	return v
}

func (v viewer) hidden(created time.Time) bool {
	return !v.hideAfter.IsZero() && created.After(v.hideAfter)
}

func tagList(m map[string]string) []api.Tag {
	if len(m) == 0 {
		return nil
	}
	out := make([]api.Tag, 0, len(m))
	for k, val := range m {
		out = append(out, api.Tag{Key: k, Value: val})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (v viewer) vpc(r *vpcRec) api.Vpc {
	return api.Vpc{VpcID: r.ID, CidrBlock: r.Cidr, State: "available", Tags: tagList(r.Tags)}
}

func (v viewer) subnet(r *subnetRec) api.Subnet {
	p := netip.MustParsePrefix(r.Cidr)
	lo, hi := usableRange(p)
	used := 0
	for _, a := range addrsInRange(v.txn, r.VpcID, lo, hi) {
		used += int(a.Size)
	}
	return api.Subnet{
		SubnetID: r.ID, VpcID: r.VpcID, CidrBlock: r.Cidr, AvailabilityZone: r.AZ,
		AvailableIPAddressCount: int(hi-lo+1) - used,
		Gateway:                 u32ToAddr(prefixBase(p) + 1).String(),
		Tags:                    tagList(r.Tags),
	}
}

func (v viewer) instance(r *instanceRec) api.Instance {
	inst := api.Instance{
		InstanceID: r.ID, InstanceType: r.Type, State: api.InstanceStateRunning,
		SubnetID: r.SubnetID, VpcID: r.VpcID, AvailabilityZone: r.AZ,
		LaunchTime: r.Launched, Tags: tagList(r.Tags), NetworkInterfaces: []api.NetworkInterface{},
	}
	if v.admin {
		inst.Token = r.Token
	}
	enis := listBy[eniRec](v.txn, tableENIs, indexInstance, r.ID)
	sort.Slice(enis, func(i, j int) bool { return enis[i].DeviceIndex < enis[j].DeviceIndex })
	for _, e := range enis {
		if v.hidden(e.Created) {
			continue
		}
		ni := v.eni(e)
		if e.DeviceIndex == 0 {
			inst.PrivateIPAddress = ni.PrivateIPAddress
		}
		inst.NetworkInterfaces = append(inst.NetworkInterfaces, ni)
	}
	return inst
}

func (v viewer) eni(r *eniRec) api.NetworkInterface {
	ni := api.NetworkInterface{
		NetworkInterfaceID: r.ID, SubnetID: r.SubnetID, VpcID: r.VpcID, AvailabilityZone: r.AZ,
		Description: r.Description, MacAddress: r.MAC, Status: eniStatus(r),
		SourceDestCheck: r.SourceDestCheck, Groups: r.Groups, Tags: tagList(r.Tags),
		PrivateIPAddresses: []api.PrivateIPAddress{},
	}
	if r.AttachmentID != "" {
		ni.Attachment = &api.Attachment{
			AttachmentID: r.AttachmentID, InstanceID: r.InstanceID, DeviceIndex: r.DeviceIndex,
			Status: r.AttachStatus, DeleteOnTermination: r.DeleteOnTermination,
		}
	}
	addrs := listBy[addrRec](v.txn, tableAddrs, indexENI, r.ID)
	sort.Slice(addrs, func(i, j int) bool {
		if addrs[i].Primary != addrs[j].Primary {
			return addrs[i].Primary
		}
		return addrs[i].Start < addrs[j].Start
	})
	for _, a := range addrs {
		if !a.Primary && v.hidden(a.Assigned) {
			continue
		}
		if a.Size > 1 {
			ni.Ipv4Prefixes = append(ni.Ipv4Prefixes, api.Ipv4Prefix{Ipv4Prefix: a.prefix().String()})
			continue
		}
		ip := u32ToAddr(a.Start).String()
		if a.Primary {
			ni.PrivateIPAddress = ip
		}
		ni.PrivateIPAddresses = append(ni.PrivateIPAddresses, api.PrivateIPAddress{PrivateIPAddress: ip, Primary: a.Primary})
	}
	return ni
}

func eniStatus(r *eniRec) string {
	switch r.AttachStatus {
	case "":
		return api.ENIStatusAvailable
	case api.AttachmentStatusAttaching:
		return api.ENIStatusAttaching
	case api.AttachmentStatusDetaching:
		return api.ENIStatusDetaching
	default:
		return api.ENIStatusInUse
	}
}

// change builds the change record of one touched resource as the transaction leaves it.
func (v viewer) change(seq uint64, kind, id string) api.Change {
	c := api.Change{Seq: seq, Op: api.ChangeUpsert, Kind: kind, ID: id}
	switch kind {
	case api.KindVpc:
		if r := first[vpcRec](v.txn, tableVpcs, indexID, id); r != nil {
			x := v.vpc(r)
			c.Vpc = &x
		}
	case api.KindSubnet:
		if r := first[subnetRec](v.txn, tableSubnets, indexID, id); r != nil {
			x := v.subnet(r)
			c.Subnet = &x
		}
	case api.KindInstance:
		if r := first[instanceRec](v.txn, tableInstances, indexID, id); r != nil {
			x := v.instance(r)
			c.Instance = &x
		}
	case api.KindENI:
		if r := first[eniRec](v.txn, tableENIs, indexID, id); r != nil {
			x := v.eni(r)
			c.NetworkInterface = &x
		}
	default:
		if !v.lbChange(&c) {
			c.Op = api.ChangeDelete
		}
		return c
	}
	if c.Vpc == nil && c.Subnet == nil && c.Instance == nil && c.NetworkInterface == nil {
		c.Op = api.ChangeDelete
	}
	return c
}
