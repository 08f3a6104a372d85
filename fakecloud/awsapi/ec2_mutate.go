package awsapi

import (
	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// The EC2 actions that change interfaces, addresses and tags.

func ec2CreateNetworkInterface(x *exchange, v query.View) (any, error) {
	req := &api.CreateNetworkInterfaceRequest{SubnetID: v.Required("SubnetId"), Groups: v.List("SecurityGroupId")}
	req.Description, _ = v.String("Description")
	req.PrivateIPAddress, _ = v.String("PrivateIpAddress")
	for _, a := range v.Structs("PrivateIpAddresses") {
		ip := a.Required("PrivateIpAddress")
		if primary, _ := a.Bool("Primary"); !primary {
			x.params.Fail(api.CodeInvalidParameterValue, "%s is a secondary address: fakecloud assigns those after creation (AssignPrivateIpAddresses), or by SecondaryPrivateIpAddressCount", a.Name("PrivateIpAddress"))
			continue
		}
		if req.PrivateIPAddress != "" && req.PrivateIPAddress != ip {
			x.params.Fail(api.CodeInvalidParameterCombination, "PrivateIpAddress %s and the primary %s %s disagree", req.PrivateIPAddress, a.Name("PrivateIpAddress"), ip)
		}
		req.PrivateIPAddress = ip
	}
	req.SecondaryPrivateIPAddressCount, _ = v.Int("SecondaryPrivateIpAddressCount")
	req.Ipv4PrefixCount, _ = v.Int("Ipv4PrefixCount")
	for _, p := range v.Structs("Ipv4Prefix") {
		p.String("Ipv4Prefix")
		x.params.Fail(api.CodeInvalidParameterValue, "explicit prefixes at creation are not supported: use Ipv4PrefixCount, or AssignPrivateIpAddresses with Ipv4Prefix after")
	}
	if t, ok := v.String("InterfaceType"); ok && t != "interface" {
		x.params.Fail(api.CodeInvalidParameterValue, "InterfaceType %q is not supported: fakecloud emulates plain interfaces", truncate(t, 40))
	}
	req.Tags = ec2TagSpecifications(x, v, "network-interface")
	req.ClientToken, _ = v.String("ClientToken")
	resp, err := call[api.CreateNetworkInterfaceResponse](x, api.ActionCreateNetworkInterface, req)
	if err != nil {
		return nil, err
	}
	return &createNetworkInterfaceXML{NetworkInterface: eniXML(&resp.NetworkInterface, false), ClientToken: req.ClientToken}, nil
}

func ec2AttachNetworkInterface(x *exchange, v query.View) (any, error) {
	req := &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: v.Required("NetworkInterfaceId"), InstanceID: v.Required("InstanceId")}
	index, ok := v.Int("DeviceIndex")
	if !ok && x.params.Err() == nil {
		x.params.Fail(query.CodeMissing, "the request must contain the parameter DeviceIndex")
	}
	req.DeviceIndex = index
	if card, ok := v.Int("NetworkCardIndex"); ok && card != 0 {
		x.params.Fail(api.CodeInvalidParameterValue, "NetworkCardIndex %d does not exist: fakecloud's instance types have one network card, 0", card)
	}
	resp, err := call[api.AttachNetworkInterfaceResponse](x, api.ActionAttachNetworkInterface, req)
	if err != nil {
		return nil, err
	}
	return &attachNetworkInterfaceXML{AttachmentID: resp.AttachmentID}, nil
}

func ec2DetachNetworkInterface(x *exchange, v query.View) (any, error) {
	req := &api.DetachNetworkInterfaceRequest{AttachmentID: v.Required("AttachmentId")}
	req.Force, _ = v.Bool("Force")
	if _, err := call[api.DetachNetworkInterfaceResponse](x, api.ActionDetachNetworkInterface, req); err != nil {
		return nil, err
	}
	return succeeded(), nil
}

func ec2DeleteNetworkInterface(x *exchange, v query.View) (any, error) {
	req := &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: v.Required("NetworkInterfaceId")}
	if _, err := call[api.DeleteNetworkInterfaceResponse](x, api.ActionDeleteNetworkInterface, req); err != nil {
		return nil, err
	}
	return succeeded(), nil
}

// ec2ModifyNetworkInterfaceAttribute changes one attribute per call, as EC2 does.
func ec2ModifyNetworkInterfaceAttribute(x *exchange, v query.View) (any, error) {
	req := &api.ModifyNetworkInterfaceAttributeRequest{NetworkInterfaceID: v.Required("NetworkInterfaceId")}
	named := 0
	if b, ok := v.Bool("SourceDestCheck.Value"); ok {
		req.SourceDestCheck, named = &b, named+1
	}
	if d, ok := v.String("Description.Value"); ok {
		req.Description, named = &d, named+1
	}
	if groups := v.List("SecurityGroupId"); len(groups) > 0 {
		req.Groups, named = groups, named+1
	}
	if v.Has("Attachment") {
		req.AttachmentID = v.Required("Attachment.AttachmentId")
		dot, ok := v.Bool("Attachment.DeleteOnTermination")
		if !ok && x.params.Err() == nil {
			x.params.Fail(query.CodeMissing, "the request must contain the parameter Attachment.DeleteOnTermination")
		}
		req.DeleteOnTermination, named = &dot, named+1
	}
	switch {
	case named == 0 && x.params.Err() == nil:
		x.params.Fail(query.CodeMissing, "name the attribute to change: SourceDestCheck.Value, Description.Value, SecurityGroupId.N or Attachment")
	case named > 1:
		x.params.Fail(api.CodeInvalidParameterCombination, "EC2 changes one attribute per ModifyNetworkInterfaceAttribute call; this one names %d", named)
	}
	if _, err := call[api.ModifyNetworkInterfaceAttributeResponse](x, api.ActionModifyNetworkInterfaceAttribute, req); err != nil {
		return nil, err
	}
	return succeeded(), nil
}

func ec2AssignPrivateIPAddresses(x *exchange, v query.View) (any, error) {
	req := &api.AssignPrivateIPAddressesRequest{
		NetworkInterfaceID: v.Required("NetworkInterfaceId"),
		PrivateIPAddresses: v.List("PrivateIpAddress"), Ipv4Prefixes: v.List("Ipv4Prefix"),
	}
	req.SecondaryPrivateIPAddressCount, _ = v.Int("SecondaryPrivateIpAddressCount")
	req.Ipv4PrefixCount, _ = v.Int("Ipv4PrefixCount")
	if re, _ := v.Bool("AllowReassignment"); re {
		x.params.Fail(api.CodeInvalidParameterValue, "AllowReassignment is not supported: fakecloud never moves an address from one interface to another; unassign it first")
	}
	resp, err := call[api.AssignPrivateIPAddressesResponse](x, api.ActionAssignPrivateIPAddresses, req)
	if err != nil {
		return nil, err
	}
	out := &assignPrivateIPAddressesXML{NetworkInterfaceID: resp.NetworkInterfaceID}
	for _, ip := range resp.AssignedPrivateIPAddresses {
		out.AssignedPrivateIPAddresses.Items = append(out.AssignedPrivateIPAddresses.Items, assignedIP{PrivateIPAddress: ip})
	}
	for _, p := range resp.AssignedIpv4Prefixes {
		out.AssignedIpv4Prefixes.Items = append(out.AssignedIpv4Prefixes.Items, xmlPrefix{Ipv4Prefix: p.Ipv4Prefix})
	}
	return out, nil
}

func ec2UnassignPrivateIPAddresses(x *exchange, v query.View) (any, error) {
	req := &api.UnassignPrivateIPAddressesRequest{
		NetworkInterfaceID: v.Required("NetworkInterfaceId"),
		PrivateIPAddresses: v.List("PrivateIpAddress"), Ipv4Prefixes: v.List("Ipv4Prefix"),
	}
	if _, err := call[api.UnassignPrivateIPAddressesResponse](x, api.ActionUnassignPrivateIPAddresses, req); err != nil {
		return nil, err
	}
	return succeeded(), nil
}

func ec2CreateTags(x *exchange, v query.View) (any, error) {
	req := &api.CreateTagsRequest{Resources: ec2Resources(x, v), Tags: ec2Tags(v)}
	if _, err := call[api.CreateTagsResponse](x, api.ActionCreateTags, req); err != nil {
		return nil, err
	}
	return succeeded(), nil
}

func ec2DeleteTags(x *exchange, v query.View) (any, error) {
	req := &api.DeleteTagsRequest{Resources: ec2Resources(x, v), Tags: ec2Tags(v)}
	if _, err := call[api.DeleteTagsResponse](x, api.ActionDeleteTags, req); err != nil {
		return nil, err
	}
	return succeeded(), nil
}

func ec2Resources(x *exchange, v query.View) []string {
	ids := v.List("ResourceId")
	if len(ids) == 0 {
		x.params.Fail(query.CodeMissing, "the request must contain the parameter ResourceId.1")
	}
	return ids
}
