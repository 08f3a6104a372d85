package state

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Acceptance 1: the per-type limits of an m5.large (3 interfaces, 10 IPv4 slots each).
func TestM5LargeLimits(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/20")
	inst := w.run(t, "m5.large", 1)[0]
	for idx := 1; idx <= 2; idx++ {
		e := w.eni(t)
		_, err := s.AttachNetworkInterface(admin(), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: e.NetworkInterfaceID, InstanceID: inst.InstanceID, DeviceIndex: idx})
		mustOK(t, err)
	}
	fourth := w.eni(t)
	_, err := s.AttachNetworkInterface(admin(), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: fourth.NetworkInterfaceID, InstanceID: inst.InstanceID, DeviceIndex: 3})
	wantCode(t, err, api.ErrAttachmentLimitExceeded)

	primary := inst.NetworkInterfaces[0].NetworkInterfaceID
	// 9 secondaries fill the 10 slots with the primary; the 10th address does not fit.
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: primary, SecondaryPrivateIPAddressCount: 9})
	mustOK(t, err)
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: primary, SecondaryPrivateIPAddressCount: 1})
	wantCode(t, err, api.ErrPrivateIPAddressLimitExceeded)

	// On the second interface, prefixes fill the remaining slots, one slot each.
	desc, err := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{Filters: []api.Filter{
		{Name: "attachment.instance-id", Values: []string{inst.InstanceID}}, {Name: "attachment.device-index", Values: []string{"1"}}}})
	mustOK(t, err)
	if len(desc.NetworkInterfaces) != 1 {
		t.Fatalf("want the interface at device 1, got %d", len(desc.NetworkInterfaces))
	}
	second := desc.NetworkInterfaces[0].NetworkInterfaceID
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: second, SecondaryPrivateIPAddressCount: 2})
	mustOK(t, err)
	got, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: second, Ipv4PrefixCount: 7})
	mustOK(t, err)
	if len(got.AssignedIpv4Prefixes) != 7 {
		t.Fatalf("assigned %d prefixes, want 7", len(got.AssignedIpv4Prefixes))
	}
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: second, Ipv4PrefixCount: 1})
	wantCode(t, err, api.ErrPrivateIPAddressLimitExceeded)
	for _, p := range got.AssignedIpv4Prefixes {
		pp := netip.MustParsePrefix(p.Ipv4Prefix)
		if pp.Bits() != 28 || pp.Masked() != pp {
			t.Errorf("prefix %s is not an aligned /28", p.Ipv4Prefix)
		}
	}
	// Detaching and re-attaching an over-full interface to a smaller type is refused.
	small := w.run(t, "t3.small", 1)[0]
	d, _ := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{second}})
	_, err = s.DetachNetworkInterface(admin(), &api.DetachNetworkInterfaceRequest{AttachmentID: d.NetworkInterfaces[0].Attachment.AttachmentID})
	mustOK(t, err)
	_, err = s.AttachNetworkInterface(admin(), &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: second, InstanceID: small.InstanceID, DeviceIndex: 1})
	wantCode(t, err, api.ErrPrivateIPAddressLimitExceeded)
}

// Acceptance 2: 64 goroutines assigning in one /24 until it is exhausted.
func TestConcurrentExhaustionOfSlash24(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.1.0.0/16", "10.1.7.0/24")
	insts := w.run(t, "m5.16xlarge", 8) // 8 primaries; 8 x 49 secondary slots > 243 free
	const workers = 64
	var (
		mu       sync.Mutex
		handed   []string
		finalErr = make([]error, workers)
		wg       sync.WaitGroup
	)
	for g := range workers {
		wg.Go(func() {
			for k := g; ; {
				eni := insts[k%len(insts)].NetworkInterfaces[0].NetworkInterfaceID
				out, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1})
				if errors.Is(err, api.ErrPrivateIPAddressLimitExceeded) {
					k++ // this interface is full; move on to the next
					continue
				}
				if err != nil {
					finalErr[g] = err
					return
				}
				mu.Lock()
				handed = append(handed, out.AssignedPrivateIPAddresses...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range finalErr { // every worker ends on exhaustion
		wantCode(t, err, api.ErrInsufficientFreeAddresses)
	}
	want := 256 - 5 - len(insts)
	if len(handed) != want {
		t.Fatalf("handed out %d addresses, want exactly %d", len(handed), want)
	}
	seen := map[string]bool{}
	for _, inst := range insts {
		seen[inst.PrivateIPAddress] = true
	}
	for _, a := range handed {
		if seen[a] {
			t.Fatalf("address %s handed out twice", a)
		}
		seen[a] = true
		ip := netip.MustParseAddr(a)
		if !netip.MustParsePrefix("10.1.7.0/24").Contains(ip) || ip.As4()[3] < 4 || ip.As4()[3] == 255 {
			t.Fatalf("address %s is outside the usable range", a)
		}
	}
	sn, err := s.DescribeSubnets(admin(), &api.DescribeSubnetsRequest{SubnetIDs: []string{w.subnet}})
	mustOK(t, err)
	if n := sn.Subnets[0].AvailableIPAddressCount; n != 0 {
		t.Fatalf("subnet reports %d available addresses, want 0", n)
	}
}

func TestPrefixFragmentationAndExhaustion(t *testing.T) {
	s := openT(t, Config{})
	// A /26 has 64 addresses: 4 aligned /28s, the first and last of which touch reserved
	// addresses, so exactly 2 prefixes fit.
	w := newWorld(t, s, "10.2.0.0/16", "10.2.0.0/26")
	inst := w.run(t, "m5.16xlarge", 1)[0]
	eni := inst.NetworkInterfaces[0].NetworkInterfaceID
	got, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, Ipv4PrefixCount: 2})
	mustOK(t, err)
	var ps []string
	for _, p := range got.AssignedIpv4Prefixes {
		ps = append(ps, p.Ipv4Prefix)
	}
	sort.Strings(ps)
	if fmt.Sprint(ps) != "[10.2.0.16/28 10.2.0.32/28]" {
		t.Fatalf("prefixes %v, want the two middle /28s", ps)
	}
	// 64 - 5 reserved - 1 primary - 32 = 26 free addresses, but no aligned /28: fragmented.
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, Ipv4PrefixCount: 1})
	wantCode(t, err, api.ErrInsufficientCidrBlocks)
	// Releasing one prefix makes room again, and an explicit overlapping address is refused.
	_, err = s.UnassignPrivateIPAddresses(admin(), &api.UnassignPrivateIPAddressesRequest{NetworkInterfaceID: eni, Ipv4Prefixes: []string{"10.2.0.32/28"}})
	mustOK(t, err)
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, PrivateIPAddresses: []string{"10.2.0.20"}})
	wantCode(t, err, api.ErrInvalidIPAddressInUse)
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, PrivateIPAddresses: []string{"10.2.0.33"}})
	mustOK(t, err)
	_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, Ipv4Prefixes: []string{"10.2.0.32/28"}})
	wantCode(t, err, api.ErrInvalidIPAddressInUse)
	// Fill every remaining address; then even a single address fails as exhaustion.
	for {
		_, err = s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1})
		if err != nil {
			break
		}
	}
	wantCode(t, err, api.ErrInsufficientFreeAddresses)
}

func TestUnassignRules(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.3.0.0/16", "10.3.0.0/24")
	insts := w.run(t, "m5.large", 2)
	a, b := insts[0].NetworkInterfaces[0], insts[1].NetworkInterfaces[0]
	got, err := s.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: a.NetworkInterfaceID, SecondaryPrivateIPAddressCount: 2})
	mustOK(t, err)
	ip := got.AssignedPrivateIPAddresses[0]
	for name, req := range map[string]*api.UnassignPrivateIPAddressesRequest{
		"primary":           {NetworkInterfaceID: a.NetworkInterfaceID, PrivateIPAddresses: []string{a.PrivateIPAddress}},
		"other interface":   {NetworkInterfaceID: b.NetworkInterfaceID, PrivateIPAddresses: []string{ip}},
		"not an address":    {NetworkInterfaceID: a.NetworkInterfaceID, PrivateIPAddresses: []string{"banana"}},
		"partly invalid":    {NetworkInterfaceID: a.NetworkInterfaceID, PrivateIPAddresses: []string{ip, "10.3.0.250"}},
		"address as prefix": {NetworkInterfaceID: a.NetworkInterfaceID, Ipv4Prefixes: []string{ip + "/28"}},
	} {
		_, err := s.UnassignPrivateIPAddresses(admin(), req)
		if err == nil {
			t.Errorf("%s: unassign succeeded, want an error", name)
		}
	}
	// All-or-nothing: the partly invalid request released nothing.
	d, _ := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: []string{a.NetworkInterfaceID}})
	if n := len(d.NetworkInterfaces[0].PrivateIPAddresses); n != 3 {
		t.Fatalf("interface holds %d addresses after failed unassigns, want 3", n)
	}
}
