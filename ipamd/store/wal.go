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

// walScan is what readWAL found in a log.
type walScan struct {
	recs []*record
	// good is the length of the valid part: whole records, each numbered one after the last.
	good int64
	// damage says what is wrong at good when records follow it (nil when only a torn last
	// record and zeros follow: a write cut short).
	damage error
	// cut is how many bytes after good are not zeros' preallocated space: from good to the
	// last non-zero byte. lost is how many valid records sit after the damage.
	cut  int64
	lost int
}

// readWAL reads a log from its start. It returns an error only when it cannot read; what it
// makes of the bytes is in the walScan. A damaged or partial last line is a write cut short
// by a crash; damage before the last line (a line that is not a record, or a record out of
// sequence) is set in damage, and load decides (see judgeDamage).
func readWAL(r io.Reader) (*walScan, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	scan := &walScan{}
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			scan.cut = nonZeroLen(line) // a partial line without newline is cut off
			return scan, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read wal: %w", err)
		}
		rec, derr := decode(bytes.TrimSuffix(line, []byte{'\n'}))
		if derr == nil && len(scan.recs) > 0 && rec.Seq != scan.recs[len(scan.recs)-1].Seq+1 {
			derr = fmt.Errorf("record %d follows record %d", rec.Seq, scan.recs[len(scan.recs)-1].Seq)
		}
		if derr != nil {
			return scan, scan.afterDamage(br, line, derr)
		}
		scan.recs = append(scan.recs, rec)
		scan.good += int64(len(line))
	}
}

// afterDamage reads the rest of the log after the bad line and tells a torn last record
// (only zeros after it) from damage followed by records.
func (scan *walScan) afterDamage(br *bufio.Reader, bad []byte, why error) error {
	scan.cut = nonZeroLen(bad)
	rest := int64(len(bad))
	for {
		line, err := br.ReadBytes('\n')
		if n := nonZeroLen(line); n > 0 {
			scan.damage = why
			scan.cut = rest + n
			if _, derr := decode(bytes.TrimSuffix(line, []byte{'\n'})); derr == nil {
				scan.lost++
			}
		}
		rest += int64(len(line))
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read wal: %w", err)
		}
	}
}

// nonZeroLen is the length of b up to and including its last non-zero byte.
func nonZeroLen(b []byte) int64 {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return int64(i + 1)
		}
	}
	return 0
}

// preallocChunk is how far ahead of the last record the log file is filled with zeros.
const preallocChunk = 1 << 20

// logFile is the write-ahead log. Records are written in place into space that was filled with
// zeros and synced beforehand, so an fdatasync after a record flushes that data block and the
// disk cache only: the file's size and block map do not change, and ext4 needs no journal
// commit (which would also wait for every other file's pending metadata on the filesystem).
// A crash leaves the records followed by zeros; readWAL stops at the first zero byte run. When
// records are written without a sync each (Options.SyncInterval), the zeroed space ahead may
// not be synced either: after a machine crash it reads as zeros or as whatever of the records
// reached the disk.
type logFile struct {
	f   *os.File
	off int64 // end of the last record
	end int64 // end of the zeroed space
}

// openLog cuts f after its valid records (at good) and zeroes space ahead of them.
func openLog(f *os.File, good int64) (*logFile, error) {
	if err := f.Truncate(good); err != nil {
		return nil, fmt.Errorf("cut the torn end off the wal: %w", err)
	}
	l := &logFile{f: f, off: good, end: good}
	if err := l.grow(good + preallocChunk); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync wal: %w", err)
	}
	return l, nil
}

// grow fills the file with zeros up to at least need, in whole chunks. The caller syncs.
func (l *logFile) grow(need int64) error {
	if need <= l.end {
		return nil
	}
	n := (need - l.end + preallocChunk - 1) / preallocChunk * preallocChunk
	if _, err := l.f.WriteAt(make([]byte, n), l.end); err != nil {
		return fmt.Errorf("preallocate wal: %w", err)
	}
	l.end += n
	return nil
}

// write puts b after the last record; with sync it also makes it durable.
func (l *logFile) write(b []byte, sync bool) error {
	if err := l.grow(l.off + int64(len(b))); err != nil {
		return err
	}
	if _, err := l.f.WriteAt(b, l.off); err != nil {
		return err
	}
	if sync {
		if err := fdatasync(l.f); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	l.off += int64(len(b))
	return nil
}

// unwrite zeroes n bytes after the last record (where a failed append wrote, in whole or in
// part) and syncs, so that a restart finds the log as it was before.
func (l *logFile) unwrite(n int) error {
	if _, err := l.f.WriteAt(make([]byte, n), l.off); err != nil {
		return err
	}
	return fdatasync(l.f)
}

// reset empties the log (its records are in the snapshot) and zeroes fresh space.
func (l *logFile) reset() error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	}
	l.off, l.end = 0, 0
	if err := l.grow(preallocChunk); err != nil {
		return err
	}
	if err := fdatasync(l.f); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	return nil
}

// trim drops the zeroed space after the last record (on a clean shutdown).
func (l *logFile) trim() error {
	if err := l.f.Truncate(l.off); err != nil {
		return fmt.Errorf("trim wal: %w", err)
	}
	l.end = l.off
	return fdatasync(l.f)
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
	if err := writeFileSynced(tmp, body); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install snapshot: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// writeFileSynced creates or replaces path with body and fsyncs it.
func writeFileSynced(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
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
