package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flatnet/flatnet/internal/wal"
)

// bootIDPath is the kernel's random ID of the running boot; it changes at every boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// bootIDFile, in the state directory, holds the boot ID of the last Open.
const bootIDFile = "boot_id"

// bootID compares the boot the state directory was last opened in with this one: the log's
// unsynced tail can only be damaged if the machine went down in between.
type bootID struct {
	path    string // the state directory's bootIDFile
	current string
	stored  string // "" when no Open recorded one (a new directory, or one of an older ipamd)
}

// checkBoot reads the running boot's ID and the one recorded in dir.
func checkBoot(dir string) (bootID, error) {
	b := bootID{path: filepath.Join(dir, bootIDFile)}
	cur, err := os.ReadFile(bootIDPath)
	if err != nil {
		return b, fmt.Errorf("read the boot ID (%w): ipamd needs /proc mounted to tell a restart of the machine from one of the process", err)
	}
	b.current = string(bytes.TrimSpace(cur))
	stored, err := os.ReadFile(b.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return b, fmt.Errorf("read the boot ID of the last start: %w", err)
	}
	b.stored = string(bytes.TrimSpace(stored))
	return b, nil
}

// rebooted says whether the machine restarted since the last Open. Without a recorded ID it
// says no: an older ipamd synced every record, so damage in its log is corruption.
func (b bootID) rebooted() bool { return b.stored != "" && b.stored != b.current }

// record stores the running boot's ID, synced, unless it is already there.
func (b bootID) record() error {
	if b.stored == b.current {
		return nil
	}
	if err := wal.WriteFileAtomic(b.path, []byte(b.current+"\n")); err != nil {
		return fmt.Errorf("record the boot ID: %w", err)
	}
	return nil
}
