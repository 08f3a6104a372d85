package fakecloud

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/providers"
)

// CreateInterface implements providers.IPAM: create (tagged), attach, delete on termination.
// Tokens derived from the request's make a retried call find the first attempt's interface.
func (d *IPAM) CreateInterface(ctx context.Context, req providers.CreateInterfaceRequest) (*providers.Interface, error) {
	ni, err := d.createInterface(ctx, req)
	return ni, classify(err)
}

func (d *IPAM) createInterface(ctx context.Context, req providers.CreateInterfaceRequest) (*providers.Interface, error) {
	created, err := call(ctx, d, api.ActionCreateNetworkInterface, d.c.CreateNetworkInterface, &api.CreateNetworkInterfaceRequest{
		SubnetID: req.SubnetID, Groups: req.SecurityGroups, Description: "flatnet ipamd " + req.InstanceID,
		SecondaryPrivateIPAddressCount: req.IPCount, Ipv4PrefixCount: req.PrefixCount,
		Tags: []api.Tag{{Key: TagNode, Value: req.InstanceID}}, ClientToken: subToken(req.ClientToken, "c"),
	})
	if err != nil {
		return nil, err
	}
	id := created.NetworkInterface.NetworkInterfaceID
	_, err = call(ctx, d, api.ActionAttachNetworkInterface, d.c.AttachNetworkInterface, &api.AttachNetworkInterfaceRequest{
		NetworkInterfaceID: id, InstanceID: req.InstanceID, DeviceIndex: req.DeviceIndex, ClientToken: subToken(req.ClientToken, "a"),
	})
	if err != nil {
		if !api.Retryable(err) && !api.IsNotFound(err) {
			// The attach will never work (limit, index taken): do not leave the interface behind.
			if derr := d.deleteDetached(ctx, id); derr != nil {
				return nil, fmt.Errorf("%w (and deleting interface %s failed: %w)", conflict(err), id, derr)
			}
		}
		return nil, conflict(err) // an index ipamd thought free is taken: its record is behind
	}
	yes := true
	if _, err := call(ctx, d, api.ActionModifyNetworkInterfaceAttribute, d.c.ModifyNetworkInterfaceAttribute, &api.ModifyNetworkInterfaceAttributeRequest{
		NetworkInterfaceID: id, DeleteOnTermination: &yes,
	}); err != nil {
		return nil, err
	}
	ni := created.NetworkInterface
	ni.Attachment = &api.Attachment{InstanceID: req.InstanceID, DeviceIndex: req.DeviceIndex, Status: api.AttachmentStatusAttached}
	return d.convert(ctx, &ni)
}

func subToken(base, suffix string) string {
	if base == "" {
		return ""
	}
	return base + "-" + suffix
}

// DeleteInterface implements providers.IPAM: detach, wait until detached, delete.
func (d *IPAM) DeleteInterface(ctx context.Context, id string) error {
	return classify(d.deleteInterface(ctx, id))
}

func (d *IPAM) deleteInterface(ctx context.Context, id string) error {
	ni, err := describeOne(ctx, d, id)
	if api.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ni.Attachment != nil && ni.Attachment.Status != api.AttachmentStatusDetaching {
		_, err := call(ctx, d, api.ActionDetachNetworkInterface, d.c.DetachNetworkInterface, &api.DetachNetworkInterfaceRequest{AttachmentID: ni.Attachment.AttachmentID})
		if err != nil && !errors.Is(err, api.ErrIncorrectState) {
			return err
		}
	}
	return d.deleteDetached(ctx, id)
}

// deleteDetached deletes an interface, waiting while a detach completes.
func (d *IPAM) deleteDetached(ctx context.Context, id string) error {
	for {
		_, err := call(ctx, d, api.ActionDeleteNetworkInterface, d.c.DeleteNetworkInterface, &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: id})
		if err == nil || api.IsNotFound(err) {
			return nil
		}
		var e *api.Error
		if !errors.As(err, &e) || e.Code != api.CodeInvalidNetworkInterfaceInUse {
			return err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("interface %s still detaching: %w", id, ctx.Err())
		}
	}
}

// Assign implements providers.IPAM.
func (d *IPAM) Assign(ctx context.Context, req providers.AssignRequest) (*providers.Assigned, error) {
	out, err := call(ctx, d, api.ActionAssignPrivateIPAddresses, d.c.AssignPrivateIPAddresses, &api.AssignPrivateIPAddressesRequest{
		NetworkInterfaceID: req.InterfaceID, SecondaryPrivateIPAddressCount: req.IPCount, PrivateIPAddresses: strs(req.IPs),
		Ipv4PrefixCount: req.PrefixCount, ClientToken: req.ClientToken,
	})
	if err != nil {
		return nil, err
	}
	res := &providers.Assigned{}
	for _, s := range out.AssignedPrivateIPAddresses {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, classify(fmt.Errorf("cloud assigned %q: %w", s, err))
		}
		res.IPs = append(res.IPs, ip)
	}
	for _, p := range out.AssignedIpv4Prefixes {
		pfx, err := netip.ParsePrefix(p.Ipv4Prefix)
		if err != nil {
			return nil, classify(fmt.Errorf("cloud assigned prefix %q: %w", p.Ipv4Prefix, err))
		}
		res.Prefixes = append(res.Prefixes, pfx)
	}
	return res, nil
}

// Unassign implements providers.IPAM. fakecloud refuses the whole call when one address is
// no longer assigned; then the call is repeated with those still there.
func (d *IPAM) Unassign(ctx context.Context, req providers.UnassignRequest) error {
	return classify(d.unassignAll(ctx, req))
}

func (d *IPAM) unassignAll(ctx context.Context, req providers.UnassignRequest) error {
	err := d.unassign(ctx, req.InterfaceID, req.IPs, req.Prefixes, req.ClientToken)
	if api.IsNotFound(err) {
		return nil // the interface is gone, and its addresses with it
	}
	if !errors.Is(err, api.ErrInvalidParameterValue) {
		return err
	}
	ni, derr := describeOne(ctx, d, req.InterfaceID)
	if api.IsNotFound(derr) {
		return nil
	}
	if derr != nil {
		return errors.Join(err, derr)
	}
	var haveIPs []netip.Addr
	for _, a := range ni.PrivateIPAddresses {
		if ip, err := netip.ParseAddr(a.PrivateIPAddress); err == nil {
			haveIPs = append(haveIPs, ip)
		}
	}
	var havePfx []netip.Prefix
	for _, p := range ni.Ipv4Prefixes {
		if pfx, err := netip.ParsePrefix(p.Ipv4Prefix); err == nil {
			havePfx = append(havePfx, pfx)
		}
	}
	ips, pfx := keep(req.IPs, haveIPs), keep(req.Prefixes, havePfx)
	if len(ips)+len(pfx) == 0 {
		return nil
	}
	return d.unassign(ctx, req.InterfaceID, ips, pfx, subToken(req.ClientToken, "r"))
}

func (d *IPAM) unassign(ctx context.Context, id string, ips []netip.Addr, pfx []netip.Prefix, tok string) error {
	_, err := call(ctx, d, api.ActionUnassignPrivateIPAddresses, d.c.UnassignPrivateIPAddresses, &api.UnassignPrivateIPAddressesRequest{
		NetworkInterfaceID: id, PrivateIPAddresses: strs(ips), Ipv4Prefixes: strs(pfx), ClientToken: tok,
	})
	return err
}
