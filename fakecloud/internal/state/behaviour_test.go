package state

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func TestIdempotentClientToken(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Config{StateFile: dir + "/state.json"})
	w := newWorld(t, s, "10.4.0.0/16", "10.4.0.0/24")
	eni := w.run(t, "m5.large", 1)[0].NetworkInterfaces[0].NetworkInterfaceID
	req := &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 2, ClientToken: "tok-1"}
	first, err := s.AssignPrivateIPAddresses(admin(), req)
	mustOK(t, err)
	again, err := s.AssignPrivateIPAddresses(admin(), req)
	mustOK(t, err)
	if diff := cmp.Diff(first, again); diff != "" {
		t.Fatalf("repeated request answered differently (-first +again):\n%s", diff)
	}
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 3, ClientToken: "tok-1"})
	wantCode(t, err, api.ErrIdempotentParameterMismatch)
	_, err = s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "10.9.0.0/16", ClientToken: "tok-1"})
	wantCode(t, err, api.ErrIdempotentParameterMismatch)

	// The token outlives a restart.
	s.Close()
	s2 := openT(t, Config{StateFile: dir + "/state.json"})
	after, err := s2.AssignPrivateIPAddresses(admin(), req)
	mustOK(t, err)
	if diff := cmp.Diff(first, after); diff != "" {
		t.Fatalf("answer after restart differs (-before +after):\n%s", diff)
	}
	d, _ := s2.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{eni}})
	if n := len(d.NetworkInterfaces[0].PrivateIPAddresses); n != 3 {
		t.Fatalf("interface holds %d addresses, want 3 (primary + 2, assigned once)", n)
	}
}

func TestInstanceTokenScope(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.5.0.0/16", "10.5.0.0/24")
	insts := w.run(t, "m5.large", 2)
	a, b := insts[0], insts[1]
	p, ok := s.Authenticate(a.Token)
	if !ok || p.InstanceID != a.InstanceID {
		t.Fatalf("token of %s authenticates as %+v, %v", a.InstanceID, p, ok)
	}
	if _, ok := s.Authenticate("fci-bogus"); ok {
		t.Fatal("a made-up token authenticated")
	}
	callA := as(a.InstanceID)
	_, err := s.AssignPrivateIPAddresses(callA, &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: b.NetworkInterfaces[0].NetworkInterfaceID, SecondaryPrivateIPAddressCount: 1})
	wantCode(t, err, api.ErrUnauthorizedOperation)
	_, err = s.AssignPrivateIPAddresses(callA, &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: primaryENI(a), SecondaryPrivateIPAddressCount: 1})
	mustOK(t, err)
	// An instance creates, attaches and deletes its own interfaces, but not onto another.
	created, err := s.CreateNetworkInterface(callA, &api.CreateNetworkInterfaceRequest{SubnetID: w.subnet})
	mustOK(t, err)
	eni := created.NetworkInterface.NetworkInterfaceID
	_, err = s.AttachNetworkInterface(callA, &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: eni, InstanceID: b.InstanceID, DeviceIndex: 1})
	wantCode(t, err, api.ErrUnauthorizedOperation)
	att, err := s.AttachNetworkInterface(callA, &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: eni, InstanceID: a.InstanceID, DeviceIndex: 1})
	mustOK(t, err)
	_, err = s.DetachNetworkInterface(as(b.InstanceID), &api.DetachNetworkInterfaceRequest{AttachmentID: att.AttachmentID})
	wantCode(t, err, api.ErrUnauthorizedOperation)
	_, err = s.RunInstances(callA, &api.RunInstancesRequest{SubnetID: w.subnet, InstanceType: "m5.large"})
	wantCode(t, err, api.ErrUnauthorizedOperation)
	// Instances never see tokens.
	d, err := s.DescribeInstances(callA, &api.DescribeInstancesRequest{})
	mustOK(t, err)
	for _, inst := range d.Instances {
		if inst.Token != "" {
			t.Fatalf("instance principal saw the token of %s", inst.InstanceID)
		}
	}
}

func TestVisibilityLag(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.6.0.0/16", "10.6.0.0/24")
	base := time.Now()
	at := func(d time.Duration, lag time.Duration) Call {
		return Call{Principal: Principal{Admin: true}, Now: base.Add(d), VisibilityLag: lag}
	}
	run, err := s.RunInstances(at(0, 0), &api.RunInstancesRequest{SubnetID: w.subnet, InstanceType: "m5.large"})
	mustOK(t, err)
	inst := run.Instances[0]
	e, err := s.CreateNetworkInterface(at(time.Hour, 0), &api.CreateNetworkInterfaceRequest{SubnetID: w.subnet})
	mustOK(t, err)
	eni := e.NetworkInterface.NetworkInterfaceID
	// Within the lag, the new interface is NotFound to describes and to calls that name it.
	_, err = s.DescribeNetworkInterfaces(at(time.Hour+10*time.Millisecond, 300*time.Millisecond), &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{eni}})
	wantCode(t, err, api.ErrInvalidNetworkInterfaceIDNotFound)
	_, err = s.AttachNetworkInterface(at(time.Hour+10*time.Millisecond, 300*time.Millisecond), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: eni, InstanceID: inst.InstanceID, DeviceIndex: 1})
	wantCode(t, err, api.ErrInvalidNetworkInterfaceIDNotFound)
	// Past the lag it is there.
	_, err = s.DescribeNetworkInterfaces(at(time.Hour+time.Second, 300*time.Millisecond), &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{eni}})
	mustOK(t, err)
	// Addresses lag too, on an interface old enough to be seen.
	_, err = s.AssignPrivateIPAddresses(at(2*time.Hour, 0), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: primaryENI(inst), SecondaryPrivateIPAddressCount: 1})
	mustOK(t, err)
	count := func(c Call) int {
		d, err := s.DescribeNetworkInterfaces(c, &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{primaryENI(inst)}})
		mustOK(t, err)
		return len(d.NetworkInterfaces[0].PrivateIPAddresses)
	}
	if n := count(at(2*time.Hour+10*time.Millisecond, 300*time.Millisecond)); n != 1 {
		t.Fatalf("within the lag a describe shows %d addresses, want only the primary", n)
	}
	if n := count(at(2*time.Hour+time.Second, 300*time.Millisecond)); n != 2 {
		t.Fatalf("past the lag a describe shows %d addresses, want 2", n)
	}
}

func TestAttachDetachTransitions(t *testing.T) {
	s := openT(t, Config{AttachDelay: 50 * time.Millisecond})
	w := newWorld(t, s, "10.7.0.0/16", "10.7.0.0/24")
	inst := w.run(t, "m5.large", 1)[0]
	e := w.eni(t)
	att, err := s.AttachNetworkInterface(admin(), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: e.NetworkInterfaceID, InstanceID: inst.InstanceID, DeviceIndex: 1})
	mustOK(t, err)
	status := func() (string, string) {
		d, err := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{e.NetworkInterfaceID}})
		mustOK(t, err)
		ni := d.NetworkInterfaces[0]
		if ni.Attachment == nil {
			return ni.Status, ""
		}
		return ni.Status, ni.Attachment.Status
	}
	if st, at := status(); st != api.ENIStatusAttaching || at != api.AttachmentStatusAttaching {
		t.Fatalf("right after attach: %s/%s, want attaching/attaching", st, at)
	}
	_, err = s.DeleteNetworkInterface(admin(), &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: e.NetworkInterfaceID})
	wantCode(t, err, &api.Error{Code: api.CodeInvalidNetworkInterfaceInUse})
	waitFor(t, func() bool { st, at := status(); return st == api.ENIStatusInUse && at == api.AttachmentStatusAttached })
	_, err = s.AttachNetworkInterface(admin(), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: w.eni(t).NetworkInterfaceID, InstanceID: inst.InstanceID, DeviceIndex: 1})
	wantCode(t, err, api.ErrInvalidParameterValue) // device index taken
	_, err = s.DetachNetworkInterface(admin(), &api.DetachNetworkInterfaceRequest{AttachmentID: att.AttachmentID})
	mustOK(t, err)
	if st, _ := status(); st != api.ENIStatusDetaching {
		t.Fatalf("right after detach: %s, want detaching", st)
	}
	waitFor(t, func() bool { st, _ := status(); return st == api.ENIStatusAvailable })
	_, err = s.DetachNetworkInterface(admin(), &api.DetachNetworkInterfaceRequest{AttachmentID: inst.NetworkInterfaces[0].Attachment.AttachmentID})
	wantCode(t, err, &api.Error{Code: api.CodeOperationNotPermitted})
	_, err = s.DeleteNetworkInterface(admin(), &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: e.NetworkInterfaceID})
	mustOK(t, err)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTerminateReleasesEverything(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.8.0.0/16", "10.8.0.0/24")
	before, _ := s.DescribeSubnets(admin(), &api.DescribeSubnetsRequest{})
	inst := w.run(t, "m5.large", 1)[0]
	_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: primaryENI(inst), SecondaryPrivateIPAddressCount: 3, Ipv4PrefixCount: 1})
	mustOK(t, err)
	kept := w.eni(t)
	_, err = s.AttachNetworkInterface(admin(), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: kept.NetworkInterfaceID, InstanceID: inst.InstanceID, DeviceIndex: 1})
	mustOK(t, err)
	_, err = s.TerminateInstances(admin(), &api.TerminateInstancesRequest{InstanceIDs: []string{inst.InstanceID}})
	mustOK(t, err)
	_, err = s.DescribeInstances(admin(), &api.DescribeInstancesRequest{InstanceIDs: []string{inst.InstanceID}})
	wantCode(t, err, api.ErrInvalidInstanceIDNotFound)
	d, err := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{})
	mustOK(t, err)
	if len(d.NetworkInterfaces) != 1 || d.NetworkInterfaces[0].Status != api.ENIStatusAvailable {
		t.Fatalf("after terminate: %+v; want only the secondary interface, detached", d.NetworkInterfaces)
	}
	_, err = s.DeleteNetworkInterface(admin(), &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: kept.NetworkInterfaceID})
	mustOK(t, err)
	after, _ := s.DescribeSubnets(admin(), &api.DescribeSubnetsRequest{})
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("subnet usage not back to where it started:\n%s", diff)
	}
}

func TestChangeStream(t *testing.T) {
	s := openT(t, Config{ChangeLogSize: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan *api.GetChangesResponse, 1)
	go func() {
		r, _ := s.WaitChanges(ctx, 0)
		got <- r
	}()
	w := newWorld(t, s, "10.10.0.0/16", "10.10.0.0/24")
	r := <-got
	if len(r.Changes) == 0 || r.Changes[0].Kind != api.KindVpc || r.Changes[0].Vpc.VpcID != w.vpc {
		t.Fatalf("first change %+v, want the vpc upsert", r.Changes)
	}
	inst := w.run(t, "m5.large", 1)[0]
	seq := s.Seq()
	_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: primaryENI(inst), SecondaryPrivateIPAddressCount: 1})
	mustOK(t, err)
	r, err = s.WaitChanges(ctx, seq)
	mustOK(t, err)
	if len(r.Changes) != 1 || r.Changes[0].NetworkInterface == nil || len(r.Changes[0].NetworkInterface.PrivateIPAddresses) != 2 {
		t.Fatalf("assign produced %+v, want one interface upsert with 2 addresses", r.Changes)
	}
	// A failed call changes nothing and publishes nothing.
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: "eni-nope", SecondaryPrivateIPAddressCount: 1})
	if err == nil || s.Seq() != r.Seq {
		t.Fatalf("failed call moved the sequence (%d -> %d), err %v", r.Seq, s.Seq(), err)
	}
	// Far behind the log (which keeps 8 to 16 changes here): resync.
	for range 30 {
		_, err := s.CreateTags(admin(), &api.CreateTagsRequest{Resources: []string{w.vpc}, Tags: []api.Tag{{Key: "k", Value: "v"}}})
		mustOK(t, err)
	}
	r, err = s.WaitChanges(ctx, 1)
	mustOK(t, err)
	if !r.Resync {
		t.Fatal("a reader far behind was not told to resync")
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	r, err = s.WaitChanges(short, s.Seq())
	if err != nil || len(r.Changes) != 0 || r.Seq != s.Seq() {
		t.Fatalf("idle wait returned %+v, %v", r, err)
	}
}

func TestBadInputLeavesStateUnchanged(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.11.0.0/16", "10.11.0.0/24")
	eni := primaryENI(w.run(t, "m5.large", 1)[0])
	before := s.Snapshot()
	cases := map[string]func() error{
		"vpc cidr host bits": func() error {
			_, err := s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "10.0.0.1/16"})
			return err
		},
		"vpc cidr garbage": func() error { _, err := s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "ten"}); return err },
		"vpc too big": func() error {
			_, err := s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "10.0.0.0/8"})
			return err
		},
		"ipv6 vpc": func() error {
			_, err := s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "fd00::/48"})
			return err
		},
		"subnet outside": func() error {
			_, err := s.CreateSubnet(admin(), &api.CreateSubnetRequest{VpcID: w.vpc, CidrBlock: "10.12.0.0/24"})
			return err
		},
		"subnet overlap": func() error {
			_, err := s.CreateSubnet(admin(), &api.CreateSubnetRequest{VpcID: w.vpc, CidrBlock: "10.11.0.128/25"})
			return err
		},
		"unknown vpc": func() error {
			_, err := s.CreateSubnet(admin(), &api.CreateSubnetRequest{VpcID: "vpc-x", CidrBlock: "10.11.1.0/24"})
			return err
		},
		"unknown type": func() error {
			_, err := s.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: w.subnet, InstanceType: "z9.huge"})
			return err
		},
		"negative count": func() error {
			_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: -1})
			return err
		},
		"huge count": func() error {
			_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1 << 40})
			return err
		},
		"huge instance count": func() error {
			_, err := s.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: w.subnet, InstanceType: "m5.large", Count: 1 << 30})
			return err
		},
		"more instances than addresses": func() error {
			_, err := s.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: w.subnet, InstanceType: "m5.large", Count: 300})
			return err
		},
		"unknown eni": func() error {
			_, err := s.DeleteNetworkInterface(admin(), &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: "eni-0"})
			return err
		},
		"nothing asked": func() error {
			_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni})
			return err
		},
		"foreign subnet": func() error {
			_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, PrivateIPAddresses: []string{"10.99.0.9"}})
			return err
		},
		"reserved addr": func() error {
			_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, PrivateIPAddresses: []string{"10.11.0.2"}})
			return err
		},
		"misaligned prefix": func() error {
			_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, Ipv4Prefixes: []string{"10.11.0.40/28"}})
			return err
		},
		"half valid list": func() error {
			_, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, PrivateIPAddresses: []string{"10.11.0.50", "10.11.0.2"}})
			return err
		},
		"bad filter": func() error {
			_, err := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{Filters: []api.Filter{{Name: "colour", Values: []string{"red"}}}})
			return err
		},
		"bad tag": func() error {
			_, err := s.CreateTags(admin(), &api.CreateTagsRequest{Resources: []string{eni}, Tags: []api.Tag{{Key: "aws:x", Value: "y"}}})
			return err
		},
		"long token": func() error {
			_, err := s.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "10.20.0.0/16", ClientToken: string(make([]byte, 65))})
			return err
		},
	}
	for name, call := range cases {
		err := call()
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.Message == "" || api.HTTPStatus(apiErr.Code) >= 500 {
			t.Errorf("%s: got %v, want a 4xx api error with a message", name, err)
		}
	}
	if diff := cmp.Diff(before, s.Snapshot()); diff != "" {
		t.Fatalf("bad input changed the state:\n%s", diff)
	}
}

// The change log keeps a bounded window however long the store runs, and trimming it does not
// copy the whole log on every write (which made sustained load collapse).
func TestChangeLogStaysBounded(t *testing.T) {
	s := openT(t, Config{ChangeLogSize: 64})
	w := newWorld(t, s, "10.12.0.0/16", "10.12.0.0/24")
	for i := range 1000 {
		_, err := s.CreateTags(admin(), &api.CreateTagsRequest{Resources: []string{w.vpc}, Tags: []api.Tag{{Key: "i", Value: fmt.Sprint(i)}}})
		mustOK(t, err)
		s.mu.Lock()
		n, c := s.nchanges, cap(s.changes)
		s.mu.Unlock()
		if n > 128 || c > 256 {
			t.Fatalf("after %d writes the log holds %d changes (capacity %d); want at most 128", i+1, n, c)
		}
	}
	r, err := s.WaitChanges(context.Background(), s.Seq()-64)
	mustOK(t, err)
	if r.Resync || len(r.Changes) != 64 {
		t.Fatalf("a reader 64 changes behind got resync=%v and %d changes; want the 64", r.Resync, len(r.Changes))
	}
}

// A transaction's changes stay together in the log: a trim drops whole transactions, and one
// larger than the whole log is kept entire for the readers behind it.
func TestChangeLogKeepsWholeTransactions(t *testing.T) {
	s := openT(t, Config{ChangeLogSize: 4})
	w := newWorld(t, s, "10.13.0.0/16", "10.13.0.0/24")
	tag := func(i int, resources ...string) {
		_, err := s.CreateTags(admin(), &api.CreateTagsRequest{Resources: resources, Tags: []api.Tag{{Key: "i", Value: fmt.Sprint(i)}}})
		mustOK(t, err)
	}
	for i := range 10 {
		tag(i, w.vpc, w.subnet)
	}
	r, err := s.WaitChanges(context.Background(), s.Seq()-2)
	mustOK(t, err)
	if r.Resync || len(r.Changes) != 4 || r.Changes[0].Seq != r.Changes[1].Seq || r.Changes[2].Seq != r.Changes[3].Seq {
		t.Fatalf("two transactions of two changes behind: resync=%v, changes %+v", r.Resync, r.Changes)
	}
	insts := w.run(t, "t3.small", 6) // one transaction of more changes than the log holds
	tag(10, insts[0].InstanceID)
	r, err = s.WaitChanges(context.Background(), s.Seq()-2)
	mustOK(t, err)
	if r.Resync || len(r.Changes) < 7 || r.Changes[0].Seq != s.Seq()-1 {
		t.Fatalf("behind the large transaction: resync=%v, %d changes", r.Resync, len(r.Changes))
	}
	r, err = s.WaitChanges(context.Background(), s.Seq()-3)
	mustOK(t, err)
	if !r.Resync {
		t.Fatalf("a reader behind the trimmed log got %d changes, want a resync", len(r.Changes))
	}
}
