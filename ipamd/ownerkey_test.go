package ipamd_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// collidingOwners joined with '_' (the key of flatnet before length prefixes) are both
// "flatnet_abc_x_eth0".
var collidingOwners = [2]wire.Owner{
	{Network: "flatnet", ContainerID: "abc", IfName: "x_eth0"},
	{Network: "flatnet", ContainerID: "abc_x", IfName: "eth0"},
}

// TestOwnersWithCollidingLegacyKeys: two owners whose fields joined by '_' are the same string
// get two addresses, and releasing one leaves the other's alone. Before the length-prefixed key
// the second allocation was handed the first owner's address, and either release freed it.
func TestOwnersWithCollidingLegacyKeys(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, servertest.Start(t, servertest.Options{}), "t3.medium")
	cfg := n.config(t.TempDir())
	start(t, cfg)
	a, err := allocate(ctx, cfg.SocketPath, collidingOwners[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := allocate(ctx, cfg.SocketPath, collidingOwners[1])
	if err != nil {
		t.Fatal(err)
	}
	if a.IP == b.IP {
		t.Fatalf("%+v and %+v were both given %s", collidingOwners[0], collidingOwners[1], a.IP)
	}
	if b.Owner != collidingOwners[1] {
		t.Errorf("allocate of %+v answered the allocation of %+v", collidingOwners[1], b.Owner)
	}
	rel, err := release(ctx, cfg.SocketPath, collidingOwners[0])
	if err != nil {
		t.Fatal(err)
	}
	if !rel.Released || rel.IP != a.IP || rel.Owner != collidingOwners[0] {
		t.Errorf("release of %+v = %+v; want %s of that owner", collidingOwners[0], rel, a.IP)
	}
	got, err := check(ctx, cfg.SocketPath, collidingOwners[1])
	if err != nil || got.IP != b.IP {
		t.Errorf("after releasing the other owner, check of %+v = %v, %v; want %s", collidingOwners[1], got, err, b.IP)
	}
}

// TestLegacySpoolFileMigrated: a release the older plugin spooled under the legacy key (a
// state file in the old format) is read at start, renamed to the unambiguous key and applied to
// the owner its body names, not to the other owner sharing its legacy name; a legacy-named file
// whose body names an owner of another name is moved aside, not acted on.
func TestLegacySpoolFileMigrated(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, servertest.Start(t, servertest.Options{}), "t3.medium")
	cfg := n.config(t.TempDir())
	_, stop := startWith(t, cfg, ipamd.Deps{Clouds: clouds})
	var held [2]*wire.Allocation
	for i, o := range collidingOwners {
		a, err := allocate(ctx, cfg.SocketPath, o)
		if err != nil {
			t.Fatal(err)
		}
		held[i] = a
	}
	stop()

	// The old plugin's spool: the release of the second owner under "flatnet_abc_x_eth0", and a
	// file whose name does not match its body under either key style.
	writeSpool := func(name string, o wire.Owner) {
		body, err := json.Marshal(wire.ReleaseRequest{Owner: o})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.SpoolDir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	legacy := collidingOwners[1].LegacyKey()
	writeSpool(legacy, collidingOwners[1])
	stranger := wire.Owner{Network: "flatnet", ContainerID: "zzz", IfName: "eth0"}
	writeSpool("flatnet_other_eth0", stranger)

	start(t, cfg)
	if _, err := check(ctx, cfg.SocketPath, collidingOwners[1]); err == nil {
		t.Errorf("the legacy spooled release of %+v was not applied", collidingOwners[1])
	}
	if got, err := check(ctx, cfg.SocketPath, collidingOwners[0]); err != nil || got.IP != held[0].IP {
		t.Errorf("%+v lost its address %s to the other owner's release: check = %v, %v", collidingOwners[0], held[0].IP, got, err)
	}
	for _, name := range []string{legacy, collidingOwners[1].Key()} {
		if _, err := os.Stat(filepath.Join(cfg.SpoolDir, name)); !os.IsNotExist(err) {
			t.Errorf("spool file %s is still there after the replay (%v)", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.SpoolDir, ".flatnet_other_eth0.invalid")); err != nil {
		t.Errorf("the spool file whose body names another owner was not moved aside: %v", err)
	}
}
