package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// errSpooled marks a release that ipamd could not take now and that waits in the spool.
var errSpooled = errors.New("release spooled for ipamd to replay")

// release gives owner's address back to ipamd. When ipamd cannot be reached, the release is
// written to the spool for ipamd to replay when it starts, and release returns errSpooled
// (wrapped, with the reason): the caller may go on. An error ipamd answers is returned as is.
// The address is returned only when ipamd says it was owner's: DEL removes the rules of the
// address it gets, and those of another pod's address must stay.
func (inv *invocation) release(owner wire.Owner) (netip.Addr, error) {
	resp, err := inv.call(&wire.Request{Op: wire.OpRelease, Release: &wire.ReleaseRequest{Owner: owner}})
	var we *wire.Error
	if err == nil {
		if resp.Release == nil || !resp.Release.IP.IsValid() {
			return netip.Addr{}, nil
		}
		if resp.Release.Owner != owner {
			inv.log.printf("ipamd released %s of %q for %s: not this owner's address, its rules stay", resp.Release.IP, resp.Release.Owner.Key(), owner.Key())
			return netip.Addr{}, nil
		}
		return resp.Release.IP, nil
	}
	if errors.As(err, &we) {
		return netip.Addr{}, err
	}
	path, serr := spoolRelease(inv.conf.SpoolDir, owner)
	if serr != nil {
		return netip.Addr{}, fmt.Errorf("ipamd is not reachable (%w) and the release cannot be spooled: %w", err, serr)
	}
	inv.log.printf("ipamd unreachable (%v); release spooled in %s", err, path)
	return netip.Addr{}, fmt.Errorf("%w in %s: %w", errSpooled, path, err)
}

// spoolRelease writes the release as JSON to dir/<owner key>, atomically: a temporary file in
// the same directory, synced, then renamed over the final name, so ipamd never reads half a file.
// The temporary name starts with '.', which no owner key does.
func spoolRelease(dir string, owner wire.Owner) (string, error) {
	body, err := json.Marshal(wire.ReleaseRequest{Owner: owner})
	if err != nil {
		return "", fmt.Errorf("encode the release: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create spool dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".release-*")
	if err != nil {
		return "", fmt.Errorf("create a spool file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write spool file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("sync spool file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close spool file: %w", err)
	}
	final := filepath.Join(dir, owner.Key())
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("rename spool file into place: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; the file itself already is
		d.Close()
	}
	return final, nil
}

// discardSpooled removes a spooled release of owner, if any. ADD calls it once ipamd has
// answered the allocation: the address ipamd holds for owner is live again, and replaying an
// older release of the same owner would take it from the running pod.
//
// A file the older plugin wrote under the legacy key goes too, but only when its body names this
// owner: the legacy name may as well be another owner's.
func discardSpooled(dir string, owner wire.Owner) error {
	err := os.Remove(filepath.Join(dir, owner.Key()))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the stale spooled release of %s: %w", owner.Key(), err)
	}
	legacy := filepath.Join(dir, owner.LegacyKey())
	body, err := os.ReadFile(legacy)
	if err != nil {
		return nil // none; an unreadable one is ipamd's to move aside
	}
	var req wire.ReleaseRequest
	if json.Unmarshal(body, &req) != nil || req.Owner != owner {
		return nil
	}
	if err := os.Remove(legacy); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the stale spooled release of %s: %w", owner.Key(), err)
	}
	return nil
}
