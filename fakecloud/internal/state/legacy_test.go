package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestLoadsAStateFileOfTheOldFormat: a state file written before the log moved to
// internal/wal (testdata/legacy-v1: a snapshot of a VPC, a subnet and two instances, then a log
// of JSON lines without checksums assigning two addresses and tagging an instance) loads with
// everything it held, takes new (framed) entries after the old ones, and reopens.
func TestLoadsAStateFileOfTheOldFormat(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"state.json", "state.json.wal"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "legacy-v1", name))
		mustOK(t, err)
		mustOK(t, os.WriteFile(filepath.Join(dir, name), raw, 0o600))
	}
	path := filepath.Join(dir, "state.json")
	s := openT(t, Config{StateFile: path})
	check := func(s *Store) {
		t.Helper()
		d, err := s.DescribeNetworkInterfaces(admin(), &api.DescribeNetworkInterfacesRequest{})
		mustOK(t, err)
		secondaries := 0
		for _, ni := range d.NetworkInterfaces {
			for _, a := range ni.PrivateIPAddresses {
				if !a.Primary {
					secondaries++
				}
			}
		}
		if len(d.NetworkInterfaces) != 2 || secondaries != 2 {
			t.Fatalf("%d interfaces with %d secondary addresses; want 2 and 2", len(d.NetworkInterfaces), secondaries)
		}
		tagged := 0
		for _, in := range s.Snapshot().Instances {
			for _, tag := range in.Tags {
				if tag.Key == "role" && tag.Value == "legacy" {
					tagged++
				}
			}
		}
		if tagged != 1 {
			t.Fatalf("%d instances tagged role=legacy; want 1", tagged)
		}
	}
	check(s)
	seq := s.Seq()
	vpc := s.Snapshot().Vpcs[0].VpcID
	_, err := s.CreateTags(admin(), &api.CreateTagsRequest{Resources: []string{vpc}, Tags: []api.Tag{{Key: "after", Value: "upgrade"}}})
	mustOK(t, err)
	mustOK(t, s.Close())
	raw, err := os.ReadFile(path + ".wal")
	mustOK(t, err)
	if lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "{") || strings.HasPrefix(lines[2], "{") {
		t.Fatalf("log after one write: %d lines, want the two old unframed ones and one framed:\n%s", len(lines), raw)
	}
	r := openT(t, Config{StateFile: path})
	check(r)
	if r.Seq() != seq+1 || len(r.Snapshot().Vpcs[0].Tags) != 1 {
		t.Fatalf("after reopen: seq %d, vpc tags %v; want seq %d and the new tag", r.Seq(), r.Snapshot().Vpcs[0].Tags, seq+1)
	}
}

// TestCorruptLogIsRefused: every entry was synced before its call was answered, so damage with
// entries after it is corruption, not a crash: Open refuses it instead of dropping them.
func TestCorruptLogIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := openT(t, Config{StateFile: path})
	newWorld(t, s, "10.41.0.0/16", "10.41.0.0/24")
	mustOK(t, s.Close())
	raw, err := os.ReadFile(path + ".wal")
	mustOK(t, err)
	raw[20] ^= 0x01 // inside the first of two entries
	mustOK(t, os.WriteFile(path+".wal", raw, 0o600))
	if _, err := Open(Config{StateFile: path}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open of a log damaged before its last entry: %v; want a refusal", err)
	}
}
