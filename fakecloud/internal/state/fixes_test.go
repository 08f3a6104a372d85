package state

import (
	"errors"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Once the state file cannot be written, nothing more is committed: a change applied in
// memory but never durable would be visible and then lost.
func TestFailedStateFileRefusesLaterChanges(t *testing.T) {
	s := openT(t, Config{StateFile: t.TempDir() + "/state"})
	w := newWorld(t, s, "10.13.0.0/16", "10.13.0.0/24")
	before := s.Snapshot()
	s.wal.log.File().Close() // the disk goes away under the log
	_, err := s.CreateTags(admin(), &api.CreateTagsRequest{Resources: []string{w.vpc}, Tags: []api.Tag{{Key: "a", Value: "b"}}})
	wantCode(t, err, api.ErrInternalError)
	seq := s.Seq()
	_, err = s.CreateTags(admin(), &api.CreateTagsRequest{Resources: []string{w.vpc}, Tags: []api.Tag{{Key: "c", Value: "d"}}})
	wantCode(t, err, api.ErrInternalError)
	var e *api.Error
	if !errors.As(err, &e) || s.Seq() != seq {
		t.Fatalf("a write after the failure moved the sequence %d -> %d (%v)", seq, s.Seq(), err)
	}
	if got := s.Snapshot(); len(got.Vpcs[0].Tags) > 1 || got.Seq != seq || before.Seq+1 < got.Seq {
		t.Fatalf("writes after the failure were applied: %+v", got.Vpcs[0].Tags)
	}
}

func TestClientTokensExpire(t *testing.T) {
	s := openT(t, Config{IdempotencyTTL: time.Minute})
	c := admin()
	_, err := s.CreateVpc(c, &api.CreateVpcRequest{CidrBlock: "10.14.0.0/16", ClientToken: "t"})
	mustOK(t, err)
	c.Now = c.Now.Add(30 * time.Second)
	_, err = s.CreateVpc(c, &api.CreateVpcRequest{CidrBlock: "10.15.0.0/16", ClientToken: "t"})
	wantCode(t, err, api.ErrIdempotentParameterMismatch)
	c.Now = c.Now.Add(time.Minute)
	_, err = s.CreateVpc(c, &api.CreateVpcRequest{CidrBlock: "10.15.0.0/16", ClientToken: "t"})
	mustOK(t, err) // the token expired: a new request
}

// An instance that created an interface loses it once the interface is attached elsewhere.
func TestCreatorLosesInterfaceAttachedElsewhere(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.16.0.0/16", "10.16.0.0/24")
	insts := w.run(t, "m5.large", 2)
	a, b := insts[0], insts[1]
	created, err := s.CreateNetworkInterface(as(a.InstanceID), &api.CreateNetworkInterfaceRequest{SubnetID: w.subnet})
	mustOK(t, err)
	eni := created.NetworkInterface.NetworkInterfaceID
	_, err = s.AttachNetworkInterface(admin(), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: eni, InstanceID: b.InstanceID, DeviceIndex: 1})
	mustOK(t, err)
	_, err = s.AssignPrivateIPAddresses(as(a.InstanceID), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1})
	wantCode(t, err, api.ErrUnauthorizedOperation)
	_, err = s.AssignPrivateIPAddresses(as(b.InstanceID), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1})
	mustOK(t, err)
}
