package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flatnet/flatnet/providers"
)

// CreateInterface implements providers.IPAM: CreateNetworkInterface (tagged with TagNode, with
// the request's client token, so that a retry answers the first attempt's interface),
// AttachNetworkInterface, then ModifyNetworkInterfaceAttribute so that the interface is deleted
// with the instance.
func (d *IPAM) CreateInterface(ctx context.Context, req providers.CreateInterfaceRequest) (*providers.Interface, error) {
	in := &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(req.SubnetID), Groups: req.SecurityGroups, Description: aws.String("flatnet ipamd " + req.InstanceID),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeNetworkInterface,
			Tags:         []types.Tag{{Key: aws.String(TagNode), Value: aws.String(req.InstanceID)}},
		}},
	}
	if req.ClientToken != "" {
		in.ClientToken = aws.String(req.ClientToken)
	}
	if req.IPCount > 0 {
		in.SecondaryPrivateIpAddressCount = aws.Int32(int32(req.IPCount))
	}
	if req.PrefixCount > 0 {
		in.Ipv4PrefixCount = aws.Int32(int32(req.PrefixCount))
	}
	created, err := call(ctx, d.observe, "CreateNetworkInterface", d.c.CreateNetworkInterface, in)
	if err != nil {
		return nil, err
	}
	ni := created.NetworkInterface
	if ni == nil {
		return nil, fmt.Errorf("EC2 answered CreateNetworkInterface without the interface")
	}
	id := aws.ToString(ni.NetworkInterfaceId)
	attachmentID, err := d.attach(ctx, id, req)
	if err != nil {
		return nil, err
	}
	if _, err := call(ctx, d.observe, "ModifyNetworkInterfaceAttribute", d.c.ModifyNetworkInterfaceAttribute, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(id),
		Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(attachmentID), DeleteOnTermination: aws.Bool(true)},
	}); err != nil {
		return nil, err
	}
	ni.Attachment = &types.NetworkInterfaceAttachment{
		AttachmentId: aws.String(attachmentID), InstanceId: aws.String(req.InstanceID),
		DeviceIndex: aws.Int32(int32(req.DeviceIndex)), Status: types.AttachmentStatusAttached,
	}
	return d.convert(ctx, ni)
}

// attach attaches interface id at the request's device index and returns the attachment. A
// retried create finds the interface attached already (the first attempt's answer was lost):
// that is success. An attach that can never work (the index is taken, the instance is full)
// deletes the interface, so that none is left behind, and says the caller's record is behind.
func (d *IPAM) attach(ctx context.Context, id string, req providers.CreateInterfaceRequest) (string, error) {
	out, err := call(ctx, d.observe, "AttachNetworkInterface", d.c.AttachNetworkInterface, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(id), InstanceId: aws.String(req.InstanceID), DeviceIndex: aws.Int32(int32(req.DeviceIndex)),
	})
	if err == nil {
		return aws.ToString(out.AttachmentId), nil
	}
	if ni, derr := d.describeOne(ctx, id); derr == nil && ni.Attachment != nil &&
		aws.ToString(ni.Attachment.InstanceId) == req.InstanceID && int(aws.ToInt32(ni.Attachment.DeviceIndex)) == req.DeviceIndex {
		return aws.ToString(ni.Attachment.AttachmentId), nil
	}
	if providers.Retryable(err) || errors.Is(err, providers.ErrNotFound) || isContext(err) {
		return "", err
	}
	if derr := d.deleteDetached(ctx, id); derr != nil {
		return "", fmt.Errorf("%w (and deleting the unattached interface %s failed: %w)", conflict(err), id, derr)
	}
	return "", conflict(err)
}

// DeleteInterface implements providers.IPAM: detach (when attached), then delete, waiting while
// the detach completes; an interface already gone is done.
func (d *IPAM) DeleteInterface(ctx context.Context, id string) error {
	ni, err := d.describeOne(ctx, id)
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if a := ni.Attachment; a != nil && a.Status != types.AttachmentStatusDetaching && a.Status != types.AttachmentStatusDetached {
		_, err := call(ctx, d.observe, "DetachNetworkInterface", d.c.DetachNetworkInterface, &ec2.DetachNetworkInterfaceInput{AttachmentId: a.AttachmentId})
		if err != nil && !errors.Is(err, providers.ErrNotFound) && codeOf(err) != "IncorrectState" {
			return err
		}
	}
	return d.deleteDetached(ctx, id)
}

// deleteDetached deletes an interface, waiting while a detach completes (EC2 answers
// InvalidNetworkInterface.InUse until it has).
func (d *IPAM) deleteDetached(ctx context.Context, id string) error {
	wait := 100 * time.Millisecond
	for {
		_, err := call(ctx, d.observe, "DeleteNetworkInterface", d.c.DeleteNetworkInterface, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
		if err == nil || errors.Is(err, providers.ErrNotFound) {
			return nil
		}
		if codeOf(err) != "InvalidNetworkInterface.InUse" {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("interface %s is still detaching: %w", id, ctx.Err())
		}
		wait = min(2*wait, 2*time.Second)
	}
}
