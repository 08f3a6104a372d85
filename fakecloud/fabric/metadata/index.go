package metadata

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// index answers "which instance is this address" per VPC, and holds what the tree shows.
type index struct {
	owners    map[vpcAddr]string // address -> instance ID
	prefixes  map[string][]ownedPrefix
	instances map[string]*api.Instance
	enis      map[string][]*api.NetworkInterface // attached, by instance, by device index
	subnets   map[string]*api.Subnet
	vpcs      map[string]*api.Vpc
}

type vpcAddr struct {
	vpc  string
	addr netip.Addr
}

type ownedPrefix struct {
	prefix   netip.Prefix
	instance string
}

func newIndex(snap *api.Snapshot) *index {
	x := &index{
		owners: map[vpcAddr]string{}, prefixes: map[string][]ownedPrefix{},
		instances: map[string]*api.Instance{}, enis: map[string][]*api.NetworkInterface{},
		subnets: map[string]*api.Subnet{}, vpcs: map[string]*api.Vpc{},
	}
	for i := range snap.Vpcs {
		x.vpcs[snap.Vpcs[i].VpcID] = &snap.Vpcs[i]
	}
	for i := range snap.Subnets {
		x.subnets[snap.Subnets[i].SubnetID] = &snap.Subnets[i]
	}
	for i := range snap.Instances {
		x.instances[snap.Instances[i].InstanceID] = &snap.Instances[i]
	}
	for i := range snap.NetworkInterfaces {
		x.addENI(&snap.NetworkInterfaces[i])
	}
	for id := range x.enis {
		slices.SortFunc(x.enis[id], func(a, b *api.NetworkInterface) int {
			return a.Attachment.DeviceIndex - b.Attachment.DeviceIndex
		})
	}
	return x
}

func (x *index) addENI(eni *api.NetworkInterface) {
	a := eni.Attachment
	if a == nil || a.Status != api.AttachmentStatusAttached || x.instances[a.InstanceID] == nil {
		return
	}
	x.enis[a.InstanceID] = append(x.enis[a.InstanceID], eni)
	addrs := []string{eni.PrivateIPAddress}
	for _, p := range eni.PrivateIPAddresses {
		addrs = append(addrs, p.PrivateIPAddress)
	}
	for _, s := range addrs {
		if ip, err := netip.ParseAddr(s); err == nil {
			x.owners[vpcAddr{eni.VpcID, ip}] = a.InstanceID
		}
	}
	for _, p := range eni.Ipv4Prefixes {
		if pp, err := netip.ParsePrefix(p.Ipv4Prefix); err == nil {
			x.prefixes[eni.VpcID] = append(x.prefixes[eni.VpcID], ownedPrefix{pp.Masked(), a.InstanceID})
		}
	}
}

// owner returns the instance that holds an address in a VPC.
func (x *index) owner(vpc string, ip netip.Addr) (*api.Instance, bool) {
	id, ok := x.owners[vpcAddr{vpc, ip}]
	if !ok {
		for _, p := range x.prefixes[vpc] {
			if p.prefix.Contains(ip) {
				id, ok = p.instance, true
				break
			}
		}
	}
	if !ok {
		return nil, false
	}
	in := x.instances[id]
	return in, in != nil
}

func (x *index) eniByMAC(instance, mac string) *api.NetworkInterface {
	for _, e := range x.enis[instance] {
		if strings.EqualFold(e.MacAddress, mac) {
			return e
		}
	}
	return nil
}
