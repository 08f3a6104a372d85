package fastpath

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// TestStartRefusesBadConfig: what the programs cannot take is refused before anything is loaded,
// with the reason.
func TestStartRefusesBadConfig(t *testing.T) {
	many := make([]netip.Prefix, maxVPCCIDRs+1)
	for i := range many {
		many[i] = netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", i))
	}
	for _, tc := range []struct {
		name string
		vpc  []netip.Prefix
		want string
	}{
		{"no VPC", nil, "no VPC CIDR"},
		{"IPv6", []netip.Prefix{netip.MustParsePrefix("fd00::/64")}, "not IPv4"},
		{"too many blocks", many, "at most 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Start(Config{VPCCIDRs: tc.vpc})
			if err == nil {
				f.Close()
				t.Fatalf("Start accepted %v", tc.vpc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestBE32 pins the byte order the programs compare addresses in: the in-memory form of the
// uint32 must be the address's bytes in network order.
func TestBE32(t *testing.T) {
	v := be32(netip.MustParseAddr("10.1.2.3"))
	got := [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	if got != [4]byte{10, 1, 2, 3} {
		t.Fatalf("be32(10.1.2.3) lays out as %v", got)
	}
}

// TestVerdictNamesMatchProgram: the Go names of the counters and the program's enum agree in
// number (the counters map has one slot per verdict).
func TestVerdictNamesMatchProgram(t *testing.T) {
	spec, err := loadFastpath()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := spec.Maps["verdicts"]
	if !ok {
		t.Fatal("the BPF object has no verdicts map")
	}
	if int(m.MaxEntries) != len(verdictNames) {
		t.Fatalf("the program counts %d verdicts, verdictNames names %d", m.MaxEntries, len(verdictNames))
	}
}

// TestObjectMatchesSource: the committed object was generated from the committed C source. make
// generate records the source's digest together with the object; a C change without it fails
// here, in CI, which has no clang to rebuild the object itself.
func TestObjectMatchesSource(t *testing.T) {
	src, err := os.ReadFile("bpf/fastpath.c")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile("bpf/fastpath.c.sha256")
	if err != nil {
		t.Fatalf("%v: run make generate (needs clang and libbpf-dev)", err)
	}
	want, _, _ := strings.Cut(string(rec), " ")
	if got := fmt.Sprintf("%x", sha256.Sum256(src)); got != want {
		t.Fatalf("bpf/fastpath.c (sha256 %s) is not the source of the committed object (generated from %s): run make generate (needs clang and libbpf-dev) and commit the result", got, want)
	}
}
