package state

import (
	"net/netip"

	"github.com/hashicorp/go-memdb"
	"strconv"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

const maxDeviceIndex = 31

// CreateNetworkInterface creates an interface in a subnet with its primary IP and, optionally,
// secondary addresses and prefixes. An instance creating one through its own token owns it.
func (s *Store) CreateNetworkInterface(c Call, req *api.CreateNetworkInterfaceRequest) (*api.CreateNetworkInterfaceResponse, error) {
	if err := validateCount("SecondaryPrivateIpAddressCount", req.SecondaryPrivateIPAddressCount); err != nil {
		return nil, err
	}
	if err := validateCount("Ipv4PrefixCount", req.Ipv4PrefixCount); err != nil {
		return nil, err
	}
	if err := validateTags(req.Tags); err != nil {
		return nil, err
	}
	if slots := 1 + req.SecondaryPrivateIPAddressCount + req.Ipv4PrefixCount; slots > maxIPv4PerInterface {
		return nil, api.Errorf(api.CodePrivateIPAddressLimitExceeded,
			"%d IPv4 slots asked for; an interface holds at most %d (the primary and each prefix count as one)", slots, maxIPv4PerInterface)
	}
	return write(s, c, api.ActionCreateNetworkInterface, req.ClientToken, req, func(t *tx) (*api.CreateNetworkInterfaceResponse, error) {
		sn, err := getSubnet(t.Txn, req.SubnetID)
		if err != nil {
			return nil, err
		}
		if err := confineToVPC(t.Txn, c.Principal, sn.VpcID, "subnet "+sn.ID); err != nil {
			return nil, err
		}
		if err := s.checkInterfaceQuota(t.Txn, c.Principal); err != nil {
			return nil, err
		}
		e := &eniRec{
			ID: newID(t.Txn, tableENIs, "eni"), SubnetID: sn.ID, VpcID: sn.VpcID, AZ: sn.AZ,
			Description: req.Description, MAC: newMAC(t.Txn), Groups: req.Groups, SourceDestCheck: true,
			Tags: tagMap(req.Tags), Created: c.Now, Owner: c.Principal.InstanceID,
		}
		if err := t.Insert(tableENIs, e); err != nil {
			return nil, internal(err)
		}
		p := netip.MustParsePrefix(sn.Cidr)
		var explicit []string
		if req.PrivateIPAddress != "" {
			explicit = []string{req.PrivateIPAddress}
		}
		if _, err := t.allocate(e, p, explicit, 1-len(explicit), 1, true); err != nil {
			return nil, err
		}
		if _, err := t.allocate(e, p, nil, req.SecondaryPrivateIPAddressCount, 1, false); err != nil {
			return nil, err
		}
		if _, err := t.allocate(e, p, nil, req.Ipv4PrefixCount, prefixSize, false); err != nil {
			return nil, err
		}
		t.touch(api.KindENI, e.ID)
		return &api.CreateNetworkInterfaceResponse{NetworkInterface: newViewer(t.Txn, c).eni(e)}, nil
	})
}

// checkInterfaceQuota refuses an instance a new interface once it has created
// Config.InterfacesPerInstance that still exist; the admin has no quota.
func (s *Store) checkInterfaceQuota(txn *memdb.Txn, p Principal) error {
	if p.Admin {
		return nil
	}
	if n := len(listBy[eniRec](txn, tableENIs, indexOwner, p.InstanceID)); n >= s.cfg.InterfacesPerInstance {
		return api.Errorf(api.CodeNetworkInterfaceLimitExceeded,
			"instance %s already created %d network interfaces, its quota (fakecloud serve --interfaces-per-instance); delete one first", p.InstanceID, n)
	}
	return nil
}

func eniAttr(v viewer, r *eniRec) attrFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "network-interface-id":
			return []string{r.ID}, true
		case "subnet-id":
			return []string{r.SubnetID}, true
		case "vpc-id":
			return []string{r.VpcID}, true
		case "availability-zone":
			return []string{r.AZ}, true
		case "status":
			return []string{eniStatus(r)}, true
		case "mac-address":
			return []string{r.MAC}, true
		case "attachment.instance-id":
			return []string{r.InstanceID}, true
		case "attachment.device-index":
			if r.AttachmentID == "" {
				return nil, true
			}
			return []string{strconv.Itoa(r.DeviceIndex)}, true
		case "attachment.attachment-id":
			return []string{r.AttachmentID}, true
		case "private-ip-address", "addresses.private-ip-address":
			if v.txn == nil {
				return nil, true
			}
			var ips []string
			for _, a := range v.eni(r).PrivateIPAddresses {
				ips = append(ips, a.PrivateIPAddress)
			}
			return ips, true
		}
		return tagAttr(r.Tags, name)
	}
}

// DescribeNetworkInterfaces lists interfaces by ID and filters, paginated. Interfaces and
// addresses within the visibility lag are left out.
func (s *Store) DescribeNetworkInterfaces(c Call, req *api.DescribeNetworkInterfacesRequest) (*api.DescribeNetworkInterfacesResponse, error) {
	if err := validateFilters(req.Filters, eniAttr(viewer{}, &eniRec{})); err != nil {
		return nil, err
	}
	txn := s.read()
	v := newViewer(txn, c)
	var recs []*eniRec
	if len(req.NetworkInterfaceIDs) == 0 {
		for _, r := range listAll[eniRec](txn, tableENIs) {
			if !v.hidden(r.Created) {
				recs = append(recs, r)
			}
		}
	} else {
		if err := noDuplicates("network interface IDs", req.NetworkInterfaceIDs); err != nil {
			return nil, err
		}
		for _, id := range req.NetworkInterfaceIDs {
			r := first[eniRec](txn, tableENIs, indexID, id)
			if r == nil || v.hidden(r.Created) {
				return nil, api.Errorf(api.CodeInvalidNetworkInterfaceIDNotFound, "the network interface ID %q does not exist", id)
			}
			recs = append(recs, r)
		}
	}
	var views []api.NetworkInterface
	for _, r := range recs {
		if matches(req.Filters, eniAttr(v, r)) {
			views = append(views, v.eni(r))
		}
	}
	views, next, err := page(views, func(n api.NetworkInterface) string { return n.NetworkInterfaceID }, req.MaxResults, req.NextToken)
	if err != nil {
		return nil, err
	}
	return &api.DescribeNetworkInterfacesResponse{NetworkInterfaces: views, NextToken: next}, nil
}

// AttachNetworkInterface attaches an available interface to an instance at a device index.
func (s *Store) AttachNetworkInterface(c Call, req *api.AttachNetworkInterfaceRequest) (*api.AttachNetworkInterfaceResponse, error) {
	if req.DeviceIndex < 0 || req.DeviceIndex > maxDeviceIndex {
		return nil, api.Errorf(api.CodeInvalidParameterValue, "DeviceIndex %d is outside 0..%d", req.DeviceIndex, maxDeviceIndex)
	}
	return write(s, c, api.ActionAttachNetworkInterface, req.ClientToken, req, func(t *tx) (*api.AttachNetworkInterfaceResponse, error) {
		e, err := getENI(t.Txn, c, req.NetworkInterfaceID)
		if err != nil {
			return nil, err
		}
		inst, err := getInstance(t.Txn, req.InstanceID)
		if err != nil {
			return nil, err
		}
		if err := t.checkAttach(e, inst, req.DeviceIndex); err != nil {
			return nil, err
		}
		n := *e
		n.AttachmentID, n.InstanceID, n.DeviceIndex, n.DeleteOnTermination = newAttachmentID(t.Txn), inst.ID, req.DeviceIndex, false
		n.AttachStatus = api.AttachmentStatusAttached
		if s.cfg.AttachDelay > 0 {
			n.AttachStatus, n.AttachDue = api.AttachmentStatusAttaching, c.Now.Add(s.cfg.AttachDelay)
			t.afterCommit(func() { s.scheduleTransition(n.ID, n.AttachmentID, s.cfg.AttachDelay) })
		}
		if err := t.putENI(&n); err != nil {
			return nil, err
		}
		return &api.AttachNetworkInterfaceResponse{AttachmentID: n.AttachmentID}, nil
	})
}

func (t *tx) checkAttach(e *eniRec, inst *instanceRec, index int) error {
	p := t.call.Principal
	if !p.Admin && p.InstanceID != inst.ID {
		return api.Errorf(api.CodeUnauthorizedOperation, "instance %s may not attach interfaces to instance %s", p.InstanceID, inst.ID)
	}
	if e.AttachmentID != "" {
		return api.Errorf(api.CodeInvalidNetworkInterfaceInUse, "network interface %s is %s (attachment %s); detach it first", e.ID, eniStatus(e), e.AttachmentID)
	}
	if e.VpcID != inst.VpcID || e.AZ != inst.AZ {
		return api.Errorf(api.CodeInvalidParameterCombination,
			"network interface %s (%s, %s) and instance %s (%s, %s) are not in the same VPC and availability zone", e.ID, e.VpcID, e.AZ, inst.ID, inst.VpcID, inst.AZ)
	}
	limits := catalog[inst.Type]
	attached := listBy[eniRec](t.Txn, tableENIs, indexInstance, inst.ID)
	if len(attached) >= limits.MaximumNetworkInterfaces {
		return api.Errorf(api.CodeAttachmentLimitExceeded,
			"instance %s (%s) already has %d network interfaces, the most its type allows", inst.ID, inst.Type, len(attached))
	}
	for _, a := range attached {
		if a.DeviceIndex == index {
			return api.Errorf(api.CodeInvalidParameterValue, "device index %d of instance %s is taken by %s", index, inst.ID, a.ID)
		}
	}
	if n := len(listBy[addrRec](t.Txn, tableAddrs, indexENI, e.ID)); n > limits.Ipv4AddressesPerInterface {
		return api.Errorf(api.CodePrivateIPAddressLimitExceeded,
			"network interface %s holds %d IPv4 slots; %s allows %d per interface", e.ID, n, inst.Type, limits.Ipv4AddressesPerInterface)
	}
	return nil
}

// DetachNetworkInterface detaches a secondary interface; the primary interface stays.
func (s *Store) DetachNetworkInterface(c Call, req *api.DetachNetworkInterfaceRequest) (*api.DetachNetworkInterfaceResponse, error) {
	if err := required("AttachmentId", req.AttachmentID); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionDetachNetworkInterface, "", req, func(t *tx) (*api.DetachNetworkInterfaceResponse, error) {
		e := first[eniRec](t.Txn, tableENIs, indexAttachment, req.AttachmentID)
		if e == nil {
			return nil, api.Errorf(api.CodeInvalidAttachmentIDNotFound, "the attachment ID %q does not exist", req.AttachmentID)
		}
		if err := authorizeENI(c.Principal, e); err != nil {
			return nil, err
		}
		if e.DeviceIndex == 0 {
			return nil, api.Errorf(api.CodeOperationNotPermitted, "%s is the primary interface of %s and cannot be detached", e.ID, e.InstanceID)
		}
		if e.AttachStatus == api.AttachmentStatusDetaching && !req.Force {
			return nil, api.Errorf(api.CodeIncorrectState, "attachment %s is already detaching", e.AttachmentID)
		}
		t.afterCommit(func() { s.cancelTransition(e.ID) })
		if s.cfg.AttachDelay > 0 && !req.Force {
			n := *e
			n.AttachStatus, n.AttachDue = api.AttachmentStatusDetaching, c.Now.Add(s.cfg.AttachDelay)
			t.afterCommit(func() { s.scheduleTransition(n.ID, n.AttachmentID, s.cfg.AttachDelay) })
			return &api.DetachNetworkInterfaceResponse{}, t.putENI(&n)
		}
		return &api.DetachNetworkInterfaceResponse{}, t.putENI(detached(e))
	})
}

// DeleteNetworkInterface deletes an available interface and releases its addresses.
func (s *Store) DeleteNetworkInterface(c Call, req *api.DeleteNetworkInterfaceRequest) (*api.DeleteNetworkInterfaceResponse, error) {
	return write(s, c, api.ActionDeleteNetworkInterface, "", req, func(t *tx) (*api.DeleteNetworkInterfaceResponse, error) {
		e, err := getENI(t.Txn, c, req.NetworkInterfaceID)
		if err != nil {
			return nil, err
		}
		if e.AttachmentID != "" {
			return nil, api.Errorf(api.CodeInvalidNetworkInterfaceInUse,
				"network interface %s is %s (attached to %s); detach it before deleting", e.ID, eniStatus(e), e.InstanceID)
		}
		return &api.DeleteNetworkInterfaceResponse{}, t.deleteENI(e)
	})
}

// maxDescription is the longest interface description, as EC2 allows.
const maxDescription = 255

// ModifyNetworkInterfaceAttribute changes the source/destination check, the security groups, the
// description or the attachment's DeleteOnTermination.
func (s *Store) ModifyNetworkInterfaceAttribute(c Call, req *api.ModifyNetworkInterfaceAttributeRequest) (*api.ModifyNetworkInterfaceAttributeResponse, error) {
	if req.AttachmentID != "" && req.DeleteOnTermination == nil {
		return nil, api.Errorf(api.CodeInvalidParameterCombination, "AttachmentId names the attachment whose DeleteOnTermination changes: give DeleteOnTermination with it")
	}
	if req.SourceDestCheck == nil && req.Groups == nil && req.Description == nil && req.DeleteOnTermination == nil {
		return nil, api.Errorf(api.CodeMissingParameter, "name an attribute to change: SourceDestCheck, Groups, Description or DeleteOnTermination")
	}
	if req.Description != nil && len(*req.Description) > maxDescription {
		return nil, api.Errorf(api.CodeInvalidParameterValue, "Description is %d characters; at most %d are allowed", len(*req.Description), maxDescription)
	}
	return write(s, c, api.ActionModifyNetworkInterfaceAttribute, "", req, func(t *tx) (*api.ModifyNetworkInterfaceAttributeResponse, error) {
		e, err := getENI(t.Txn, c, req.NetworkInterfaceID)
		if err != nil {
			return nil, err
		}
		n := *e
		if req.SourceDestCheck != nil {
			n.SourceDestCheck = *req.SourceDestCheck
		}
		if req.Groups != nil {
			n.Groups = append([]string(nil), req.Groups...)
		}
		if req.Description != nil {
			n.Description = *req.Description
		}
		if req.DeleteOnTermination != nil {
			if e.AttachmentID == "" {
				return nil, api.Errorf(api.CodeInvalidParameterCombination, "network interface %s is not attached; DeleteOnTermination belongs to an attachment", e.ID)
			}
			if req.AttachmentID != "" && req.AttachmentID != e.AttachmentID {
				return nil, api.Errorf(api.CodeInvalidAttachmentIDNotFound, "the attachment ID %q is not network interface %s's attachment (%s)", req.AttachmentID, e.ID, e.AttachmentID)
			}
			n.DeleteOnTermination = *req.DeleteOnTermination
		}
		return &api.ModifyNetworkInterfaceAttributeResponse{}, t.putENI(&n)
	})
}

// putENI stores a new version of an interface and marks it and its instances changed.
func (t *tx) putENI(n *eniRec) error {
	old := first[eniRec](t.Txn, tableENIs, indexID, n.ID)
	if err := t.Insert(tableENIs, n); err != nil {
		return internal(err)
	}
	t.touch(api.KindENI, n.ID)
	if old != nil && old.InstanceID != "" {
		t.touch(api.KindInstance, old.InstanceID)
	}
	if n.InstanceID != "" {
		t.touch(api.KindInstance, n.InstanceID)
	}
	return nil
}

func (t *tx) deleteENI(e *eniRec) error {
	for _, a := range listBy[addrRec](t.Txn, tableAddrs, indexENI, e.ID) {
		if err := t.Delete(tableAddrs, a); err != nil {
			return internal(err)
		}
	}
	if err := t.Delete(tableENIs, e); err != nil {
		return internal(err)
	}
	t.touch(api.KindENI, e.ID)
	if e.InstanceID != "" {
		t.touch(api.KindInstance, e.InstanceID)
	}
	return nil
}

func detached(e *eniRec) *eniRec {
	n := *e
	n.AttachmentID, n.InstanceID, n.DeviceIndex, n.AttachStatus = "", "", 0, ""
	n.DeleteOnTermination, n.AttachDue = false, time.Time{}
	return &n
}
