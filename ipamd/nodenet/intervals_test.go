package nodenet

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestMergeRangesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []netip.Prefix
		want []netip.Prefix
	}{
		{"one", pfx("10.0.0.0/16"), pfx("10.0.0.0/16")},
		{"unmasked input", pfx("10.0.3.7/16"), pfx("10.0.0.0/16")},
		{"disjoint, unsorted", pfx("192.168.0.0/24", "10.0.0.0/16"), pfx("10.0.0.0/16", "192.168.0.0/24")},
		{"exclusion inside VPC", pfx("10.0.0.0/16", "10.0.5.0/24"), pfx("10.0.0.0/16")},
		{"adjacent merge", pfx("10.0.0.0/24", "10.0.1.0/24"), pfx("10.0.0.0/23")},
		{"adjacent, not aligned", pfx("10.0.1.0/24", "10.0.2.0/24"), pfx("10.0.1.0/24", "10.0.2.0/24")},
		{"starts at zero", pfx("0.0.0.0/8", "10.0.0.0/8"), pfx("0.0.0.0/8", "10.0.0.0/8")},
		{"ends at top", pfx("240.0.0.0/4"), pfx("240.0.0.0/4")},
		{"everything", pfx("0.0.0.0/0", "10.0.0.0/8"), pfx("0.0.0.0/0")},
		{"host", pfx("203.0.113.7/32"), pfx("203.0.113.7/32")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := mergeRanges(tc.in)
			back := rangesFromElements(setElements(rs))
			if diff := cmp.Diff(rs, back, cmp.AllowUnexported(ipRange{})); diff != "" {
				t.Errorf("elements do not decode to the same ranges (-encoded +decoded):\n%s", diff)
			}
			var got []netip.Prefix
			for _, r := range back {
				got = append(got, rangePrefixes(r)...)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("prefixes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetElementsZeroMarker(t *testing.T) {
	els := setElements(mergeRanges(pfx("10.0.0.0/16")))
	if len(els) != 3 || !els[0].IntervalEnd || addrOfKey(els[0].Key) != "0.0.0.0" {
		t.Fatalf("want a leading 0.0.0.0 interval end then start/end, got %+v", els)
	}
	if els := setElements(mergeRanges(pfx("0.0.0.0/0"))); len(els) != 1 || els[0].IntervalEnd {
		t.Fatalf("0.0.0.0/0 should be a single start element, got %+v", els)
	}
}

func addrOfKey(k []byte) string { return netip.AddrFrom4([4]byte(k)).String() }
