package wal

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// PreallocChunk is how far ahead of the last record the log file is filled with zeros.
const PreallocChunk = 1 << 20

// Log is an open log file. Records are written in place into space that was filled with zeros
// and synced beforehand, so an fdatasync after a record flushes that data block and the disk
// cache only: the file's size and block map do not change, and ext4 needs no journal commit
// (which would also wait for every other file's pending metadata on the filesystem). A crash
// leaves the records followed by zeros; Read stops at the first zero byte run. When records are
// written without a sync each, the zeroed space ahead may not be synced either: after a machine
// crash it reads as zeros or as whatever of the records reached the disk.
//
// A Log is not safe for concurrent use, except that Sync may run alongside Write (it covers
// the records written before it).
type Log struct {
	f   *os.File
	off int64 // end of the last record
	end int64 // end of the zeroed space
}

// Open takes over f, a log whose valid part is its first good bytes (Scan.Good): it cuts the
// rest off, zeroes space ahead and syncs.
func Open(f *os.File, good int64) (*Log, error) {
	if err := f.Truncate(good); err != nil {
		return nil, fmt.Errorf("cut the torn end off the wal: %w", err)
	}
	l := &Log{f: f, off: good, end: good}
	if err := l.grow(good + PreallocChunk); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync wal: %w", err)
	}
	return l, nil
}

// File is the log's file.
func (l *Log) File() *os.File { return l.f }

// Size is the length of the records in the log: where the next one goes.
func (l *Log) Size() int64 { return l.off }

// grow fills the file with zeros up to at least need, in whole chunks. The caller syncs.
func (l *Log) grow(need int64) error {
	if need <= l.end {
		return nil
	}
	n := (need - l.end + PreallocChunk - 1) / PreallocChunk * PreallocChunk
	if _, err := l.f.WriteAt(make([]byte, n), l.end); err != nil {
		return fmt.Errorf("preallocate wal: %w", err)
	}
	l.end += n
	return nil
}

// Write puts records (whole framed lines) after the last record; with sync it also makes them
// durable. After an error the caller should Unwrite them: they may be in the log in part.
func (l *Log) Write(records []byte, sync bool) error {
	if err := l.grow(l.off + int64(len(records))); err != nil {
		return err
	}
	if _, err := l.f.WriteAt(records, l.off); err != nil {
		return err
	}
	if sync {
		if err := Fdatasync(l.f); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	l.off += int64(len(records))
	return nil
}

// Unwrite zeroes n bytes after the last record (where a failed Write wrote, in whole or in
// part) and syncs, so that a restart finds the log as it was before.
func (l *Log) Unwrite(n int) error {
	if _, err := l.f.WriteAt(make([]byte, n), l.off); err != nil {
		return err
	}
	return Fdatasync(l.f)
}

// Sync fdatasyncs every record written so far.
func (l *Log) Sync() error { return Fdatasync(l.f) }

// Reset empties the log (its records are in a snapshot) and zeroes fresh space.
func (l *Log) Reset() error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	}
	l.off, l.end = 0, 0
	if err := l.grow(PreallocChunk); err != nil {
		return err
	}
	if err := Fdatasync(l.f); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	return nil
}

// Trim drops the zeroed space after the last record and syncs (on a clean shutdown).
func (l *Log) Trim() error {
	if err := l.f.Truncate(l.off); err != nil {
		return fmt.Errorf("trim wal: %w", err)
	}
	l.end = l.off
	return Fdatasync(l.f)
}

// Close closes the file; it neither syncs nor trims.
func (l *Log) Close() error { return l.f.Close() }

// Fdatasync flushes f's data (and the metadata needed to read it back).
func Fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
