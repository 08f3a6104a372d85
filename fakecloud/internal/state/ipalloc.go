package state

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// prefixSize is the number of addresses in a delegated IPv4 prefix (/28).
const prefixSize = 16

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func u32ToAddr(x uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], x)
	return netip.AddrFrom4(b)
}

func prefixBase(p netip.Prefix) uint32 { return addrToU32(p.Masked().Addr()) }

func prefixLast(p netip.Prefix) uint32 {
	return prefixBase(p) + uint32(1)<<(32-p.Bits()) - 1
}

// usableRange is a subnet's range without the provider's reserved addresses: the first four
// (network, router, DNS, future use) and the last one.
func usableRange(p netip.Prefix) (lo, hi uint32) {
	return prefixBase(p) + 4, prefixLast(p) - 1
}

func addrKey(vpc string, start uint32) string { return fmt.Sprintf("%s/%08x", vpc, start) }

func (a *addrRec) end() uint32 { return a.Start + a.Size } // one past the last address

func (a *addrRec) prefix() netip.Prefix {
	return netip.PrefixFrom(u32ToAddr(a.Start), 28)
}

// bits is the prefix length of a block of size addresses (a power of two).
func bits(size uint32) int {
	n := 0
	for size > 1 {
		size >>= 1
		n++
	}
	return n
}

func alignUp(x, n uint32) uint32 { return (x + n - 1) / n * n }

// covering returns the allocation of vpc that contains x, if any.
func covering(txn *memdb.Txn, vpc string, x uint32) *addrRec {
	it, err := txn.ReverseLowerBound(tableAddrs, indexID, addrKey(vpc, x))
	if err != nil {
		return nil
	}
	raw := it.Next()
	if raw == nil {
		return nil
	}
	a := raw.(*addrRec)
	if a.VpcID != vpc || x >= a.end() {
		return nil
	}
	return a
}

// nextFrom returns the first allocation of vpc that starts at or after x.
func nextFrom(txn *memdb.Txn, vpc string, x uint32) *addrRec {
	it, err := txn.LowerBound(tableAddrs, indexID, addrKey(vpc, x))
	if err != nil {
		return nil
	}
	raw := it.Next()
	if raw == nil || raw.(*addrRec).VpcID != vpc {
		return nil
	}
	return raw.(*addrRec)
}

// addrsInRange lists the allocations of vpc that start within [lo, hi].
func addrsInRange(txn *memdb.Txn, vpc string, lo, hi uint32) []*addrRec {
	it, err := txn.LowerBound(tableAddrs, indexID, addrKey(vpc, lo))
	if err != nil {
		return nil
	}
	var out []*addrRec
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*addrRec)
		if a.VpcID != vpc || a.Start > hi {
			break
		}
		out = append(out, a)
	}
	return out
}

// free reports whether [start, start+size) is free of allocations.
func free(txn *memdb.Txn, vpc string, start, size uint32) bool {
	if covering(txn, vpc, start) != nil {
		return false
	}
	n := nextFrom(txn, vpc, start)
	return n == nil || n.Start >= start+size
}

// findFree finds a free block of size (1, or prefixSize aligned) in [lo, hi], searching from
// hint and wrapping once (next fit: recently released addresses are reused last).
func findFree(txn *memdb.Txn, vpc string, lo, hi, hint, size uint32) (uint32, bool) {
	if hint < lo || hint > hi {
		hint = lo
	}
	if x, ok := scanFree(txn, vpc, hint, hi, size); ok {
		return x, true
	}
	return scanFree(txn, vpc, lo, hi, size)
}

func scanFree(txn *memdb.Txn, vpc string, from, hi, size uint32) (uint32, bool) {
	x := alignUp(from, size)
	for x >= from && uint64(x)+uint64(size)-1 <= uint64(hi) {
		if c := covering(txn, vpc, x); c != nil {
			x = alignUp(c.end(), size)
			continue
		}
		n := nextFrom(txn, vpc, x)
		if n == nil || n.Start >= x+size {
			return x, true
		}
		x = alignUp(n.end(), size)
	}
	return 0, false
}

// freeCount counts the free addresses in [lo, hi].
func freeCount(txn *memdb.Txn, vpc string, lo, hi uint32) int {
	used := 0
	if c := covering(txn, vpc, lo); c != nil && c.Start < lo {
		used += int(c.end() - lo)
	}
	for _, a := range addrsInRange(txn, vpc, lo, hi) {
		used += int(min(a.end()-1, hi) - a.Start + 1)
	}
	return int(hi-lo+1) - used
}

// allocate reserves addresses or prefixes for an interface inside the transaction: explicit
// ones when given, otherwise count picked by next fit. It fails whole on the first problem.
func (t *tx) allocate(e *eniRec, subnet netip.Prefix, explicit []string, count int, size uint32, primary bool) ([]*addrRec, error) {
	lo, hi := usableRange(subnet)
	var out []*addrRec
	for _, s := range explicit {
		start, err := parseExplicit(s, subnet, lo, hi, size)
		if err != nil {
			return nil, err
		}
		if !free(t.Txn, e.VpcID, start, size) {
			return nil, api.Errorf(api.CodeInvalidIPAddressInUse, "%s is already assigned in %s", s, e.VpcID)
		}
		a, err := t.insertAddr(e, start, size, primary)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	for range count {
		start, ok := findFree(t.Txn, e.VpcID, lo, hi, t.s.cursors[e.SubnetID], size)
		if !ok {
			return nil, exhausted(t.Txn, e, subnet, lo, hi, size)
		}
		t.s.cursors[e.SubnetID] = start + size
		a, err := t.insertAddr(e, start, size, primary)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func exhausted(txn *memdb.Txn, e *eniRec, subnet netip.Prefix, lo, hi, size uint32) error {
	n := freeCount(txn, e.VpcID, lo, hi)
	if size > 1 && n >= int(size) {
		return api.Errorf(api.CodeInsufficientCidrBlocks,
			"subnet %s (%s) has %d free addresses but no free aligned /28: it is fragmented", e.SubnetID, subnet, n)
	}
	return api.Errorf(api.CodeInsufficientFreeAddresses,
		"subnet %s (%s) has %d free addresses, not enough for this request", e.SubnetID, subnet, n)
}

func parseExplicit(s string, subnet netip.Prefix, lo, hi, size uint32) (uint32, error) {
	if size == 1 {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return 0, api.Errorf(api.CodeInvalidParameterValue, "%q is not an IPv4 address", s)
		}
		x := addrToU32(a)
		if !subnet.Contains(a) {
			return 0, api.Errorf(api.CodeInvalidParameterValue, "%s is outside the interface's subnet %s", s, subnet)
		}
		if x < lo || x > hi {
			return 0, api.Errorf(api.CodeInvalidParameterValue, "%s is reserved by the provider in subnet %s", s, subnet)
		}
		return x, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() != 28 {
		return 0, api.Errorf(api.CodeInvalidParameterValue, "%q is not an IPv4 /28 prefix", s)
	}
	if p.Masked() != p {
		return 0, api.Errorf(api.CodeInvalidParameterValue, "%s is not aligned; did you mean %s?", s, p.Masked())
	}
	x := prefixBase(p)
	if !subnet.Contains(p.Addr()) || x+size-1 > prefixLast(subnet) {
		return 0, api.Errorf(api.CodeInvalidParameterValue, "%s is outside the interface's subnet %s", s, subnet)
	}
	if x < lo || x+size-1 > hi {
		return 0, api.Errorf(api.CodeInvalidParameterValue, "%s overlaps addresses the provider reserves in %s", s, subnet)
	}
	return x, nil
}

// insertAddr records an allocation. The callers have found [start, start+size) free; checking
// again here, inside the same transaction, keeps uniqueness a property of this one function
// rather than of every caller (memdb's Insert would silently replace a row with the same key).
func (t *tx) insertAddr(e *eniRec, start, size uint32, primary bool) (*addrRec, error) {
	if !free(t.Txn, e.VpcID, start, size) {
		return nil, api.Errorf(api.CodeInternalError, "state: %s/%d is already allocated in %s", u32ToAddr(start), 32-bits(size), e.VpcID)
	}
	a := &addrRec{
		Key: addrKey(e.VpcID, start), VpcID: e.VpcID, SubnetID: e.SubnetID, ENI: e.ID,
		Start: start, Size: size, Primary: primary, Assigned: t.call.Now,
	}
	if err := t.Insert(tableAddrs, a); err != nil {
		return nil, internal(err)
	}
	return a, nil
}
