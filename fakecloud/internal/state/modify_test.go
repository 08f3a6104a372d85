package state

import (
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func TestModifyDescriptionAndAttachment(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.17.0.0/16", "10.17.0.0/24")
	inst := w.run(t, "m5.large", 1)[0]
	eni := inst.NetworkInterfaces[0]
	desc := "node eth0"
	_, err := s.ModifyNetworkInterfaceAttribute(admin(), &api.ModifyNetworkInterfaceAttributeRequest{NetworkInterfaceID: eni.NetworkInterfaceID, Description: &desc})
	mustOK(t, err)
	long := strings.Repeat("d", 256)
	_, err = s.ModifyNetworkInterfaceAttribute(admin(), &api.ModifyNetworkInterfaceAttributeRequest{NetworkInterfaceID: eni.NetworkInterfaceID, Description: &long})
	wantCode(t, err, api.ErrInvalidParameterValue)

	off := false
	_, err = s.ModifyNetworkInterfaceAttribute(admin(), &api.ModifyNetworkInterfaceAttributeRequest{
		NetworkInterfaceID: eni.NetworkInterfaceID, DeleteOnTermination: &off, AttachmentID: "eni-attach-00000000000000000"})
	wantCode(t, err, &api.Error{Code: api.CodeInvalidAttachmentIDNotFound})
	_, err = s.ModifyNetworkInterfaceAttribute(admin(), &api.ModifyNetworkInterfaceAttributeRequest{
		NetworkInterfaceID: eni.NetworkInterfaceID, AttachmentID: eni.Attachment.AttachmentID})
	wantCode(t, err, api.ErrInvalidParameterCombination)
	_, err = s.ModifyNetworkInterfaceAttribute(admin(), &api.ModifyNetworkInterfaceAttributeRequest{
		NetworkInterfaceID: eni.NetworkInterfaceID, DeleteOnTermination: &off, AttachmentID: eni.Attachment.AttachmentID})
	mustOK(t, err)

	got, err := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{eni.NetworkInterfaceID}})
	mustOK(t, err)
	if n := got.NetworkInterfaces[0]; n.Description != desc || n.Attachment.DeleteOnTermination {
		t.Fatalf("interface %+v; want description %q and DeleteOnTermination false", n, desc)
	}
}

func TestInstanceToken(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.18.0.0/16", "10.18.0.0/24")
	inst := w.run(t, "m5.large", 1)[0]
	token, ok := s.InstanceToken(inst.InstanceID)
	if !ok || token == "" {
		t.Fatalf("InstanceToken = %q, %v", token, ok)
	}
	if p, ok := s.Authenticate(token); !ok || p.InstanceID != inst.InstanceID {
		t.Fatalf("the token is not the instance's: %+v", p)
	}
	if _, ok := s.InstanceToken("i-00000000000000000"); ok {
		t.Fatal("a token for an instance that does not exist")
	}
}
