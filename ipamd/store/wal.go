package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// Record operations.
const (
	opInterface       = "iface"     // upsert Iface
	opRemoveInterface = "iface-del" // remove interface ID and its addresses
	opAdd             = "add"       // add IPs (free) to interface ID, unless present
	opRemove          = "del"       // remove IPs
	opAssign          = "assign"    // IPs[0] to Owner
	opRelease         = "release"   // IPs[0] back to free at At
)

// record is one WAL entry; apply gives it meaning.
type record struct {
	Seq    uint64       `json:"seq"`
	Op     string       `json:"op"`
	Iface  *Interface   `json:"iface,omitempty"`
	ID     string       `json:"id,omitempty"`
	IPs    []netip.Addr `json:"ips,omitempty"`
	Prefix netip.Prefix `json:"prefix,omitzero"`
	Owner  wire.Owner   `json:"owner,omitzero"`
	Pod    wire.PodRef  `json:"pod,omitzero"`
	At     time.Time    `json:"at"`
}

// snapshot is the compacted state: everything up to Seq.
type snapshot struct {
	Seq        uint64      `json:"seq"`
	Interfaces []Interface `json:"interfaces"`
	Addresses  []Address   `json:"addresses"`
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encode frames r as "crc32c-hex json\n".
func encode(r *record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode wal record: %w", err)
	}
	line := make([]byte, 0, len(body)+10)
	line = fmt.Appendf(line, "%08x ", crc32.Checksum(body, crcTable))
	line = append(line, body...)
	return append(line, '\n'), nil
}

func decode(line []byte) (*record, error) {
	sum, body, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(sum) != 8 {
		return nil, errors.New("no checksum")
	}
	want, err := strconv.ParseUint(string(sum), 16, 32)
	if err != nil {
		return nil, fmt.Errorf("checksum: %w", err)
	}
	if crc32.Checksum(body, crcTable) != uint32(want) {
		return nil, errors.New("checksum mismatch")
	}
	var r record
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return &r, nil
}

// readWAL returns the records of the log and the length of its valid part. A damaged or partial
// last line is a write cut short by a crash; damage before the last line is corruption.
func readWAL(f *os.File) ([]*record, int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, fmt.Errorf("rewind wal: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	var recs []*record
	var good int64
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return recs, good, nil // a partial line without newline is cut off
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read wal: %w", err)
		}
		r, derr := decode(bytes.TrimSuffix(line, []byte{'\n'}))
		if derr != nil {
			if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
				return recs, good, nil // torn last line
			}
			return nil, 0, fmt.Errorf("wal %s is corrupt at byte %d (%w) with records after it: move it aside to start from the cloud's truth", f.Name(), good, derr)
		}
		recs = append(recs, r)
		good += int64(len(line))
	}
}

// fdatasync flushes f's data (and the metadata needed to read it back).
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// writeSnapshot replaces path atomically with snap: temp file, fsync, rename, fsync directory.
func writeSnapshot(path string, snap *snapshot) error {
	body, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install snapshot: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func readSnapshot(path string) (*snapshot, error) {
	body, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &snapshot{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	var s snapshot
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("snapshot %s is not valid (%w): move it aside to start from the cloud's truth", path, err)
	}
	return &s, nil
}
