package nodenet

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// ipRange is an inclusive range of IPv4 addresses, the unit of an nftables interval set.
type ipRange struct{ lo, hi uint32 }

func addrToU32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func u32ToAddr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func prefixRange(p netip.Prefix) ipRange {
	p = p.Masked()
	lo := addrToU32(p.Addr())
	return ipRange{lo: lo, hi: lo | uint32(uint64(1)<<(32-p.Bits())-1)}
}

// mergeRanges turns prefixes into sorted, disjoint, non-adjacent ranges: the kernel refuses
// overlapping intervals, and VPC CIDRs and exclusions may overlap.
func mergeRanges(ps []netip.Prefix) []ipRange {
	rs := make([]ipRange, 0, len(ps))
	for _, p := range ps {
		rs = append(rs, prefixRange(p))
	}
	slices.SortFunc(rs, func(a, b ipRange) int { return int(int64(a.lo) - int64(b.lo)) })
	var out []ipRange
	for _, r := range rs {
		if n := len(out); n > 0 && (r.lo <= out[n-1].hi || out[n-1].hi != ^uint32(0) && r.lo == out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// setElements encodes ranges the way nft does: a start element, an interval-end element one
// past the range, and an interval-end at 0.0.0.0 when the first range does not start there.
func setElements(rs []ipRange) []nftables.SetElement {
	var els []nftables.SetElement
	if len(rs) > 0 && rs[0].lo != 0 {
		els = append(els, nftables.SetElement{Key: u32Key(0), IntervalEnd: true})
	}
	for _, r := range rs {
		els = append(els, nftables.SetElement{Key: u32Key(r.lo)})
		if r.hi != ^uint32(0) {
			els = append(els, nftables.SetElement{Key: u32Key(r.hi + 1), IntervalEnd: true})
		}
	}
	return els
}

func u32Key(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// rangesFromElements decodes what the kernel lists back into ranges. Stray interval ends (the
// 0.0.0.0 marker) carry no addresses and are dropped.
func rangesFromElements(els []nftables.SetElement) []ipRange {
	type el struct {
		key uint32
		end bool
	}
	es := make([]el, 0, len(els))
	for _, e := range els {
		if len(e.Key) != 4 {
			continue
		}
		es = append(es, el{binary.BigEndian.Uint32(e.Key), e.IntervalEnd})
	}
	slices.SortFunc(es, func(a, b el) int { return int(int64(a.key) - int64(b.key)) })
	var out []ipRange
	open := false
	for _, e := range es {
		switch {
		case !e.end && !open:
			out = append(out, ipRange{lo: e.key, hi: ^uint32(0)})
			open = true
		case e.end && open:
			out[len(out)-1].hi = e.key - 1
			open = false
		}
	}
	return out
}

// rangePrefixes is the shortest list of CIDRs covering r, for showing a set to people.
func rangePrefixes(r ipRange) []netip.Prefix {
	var out []netip.Prefix
	lo := uint64(r.lo)
	for lo <= uint64(r.hi) {
		size := 32
		if lo != 0 {
			size = min(32, bits.TrailingZeros32(uint32(lo)))
		}
		for size > 0 && lo+(uint64(1)<<size)-1 > uint64(r.hi) {
			size--
		}
		out = append(out, netip.PrefixFrom(u32ToAddr(uint32(lo)), 32-size))
		lo += uint64(1) << size
	}
	return out
}
