package wal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Append frames body as one record and appends it to dst. body must hold no newline.
func Append(dst, body []byte) []byte {
	dst = fmt.Appendf(dst, "%08x ", crc32.Checksum(body, crcTable))
	dst = append(dst, body...)
	return append(dst, '\n')
}

// Encode frames body as one record.
func Encode(body []byte) []byte { return Append(make([]byte, 0, len(body)+10), body) }

// Unframe checks one record line (without its newline) and returns its body. With unframed, a
// line starting with '{' is a body written without a checksum and is returned as it is.
func Unframe(line []byte, unframed bool) ([]byte, error) {
	if unframed && len(line) > 0 && line[0] == '{' {
		return line, nil
	}
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
	return body, nil
}

// Decoder turns a record's body into the caller's record and its sequence number.
type Decoder[R any] func(body []byte) (rec R, seq uint64, err error)

// ReadOptions say how Read takes a log.
type ReadOptions struct {
	// Unframed accepts lines starting with '{' as records without a checksum (see Unframe): a
	// log an older store wrote, possibly followed by framed records a newer one appended.
	Unframed bool
}

// Scan is what Read found in a log.
type Scan[R any] struct {
	// Records are the records of the valid part, in order, numbered one after another.
	Records []R
	// Last is the sequence number of the last record of Records (0 when there is none).
	Last uint64
	// Good is the length of the valid part: whole records, each numbered one after the last.
	Good int64
	// Damage says what is wrong at Good when records follow it (nil when only a torn last
	// record and zeros follow: a write cut short). The caller judges it: a store that synced
	// every record before acknowledging it has corruption; one whose unsynced tail a power
	// loss may have scrambled cuts the log at Good.
	Damage error
	// Cut is how many bytes after Good are not preallocated zeros: from Good to the last
	// non-zero byte. Lost is how many valid records sit after the damage.
	Cut  int64
	Lost int
}

// Read reads a log from its start. It returns an error only when it cannot read; what it makes
// of the bytes is in the Scan. A damaged or partial last line is a write cut short by a crash;
// damage before the last line (a line that is not a record, or a record out of sequence) is
// set in Damage.
func Read[R any](r io.Reader, decode Decoder[R], opt ReadOptions) (*Scan[R], error) {
	br := bufio.NewReaderSize(r, 1<<16)
	scan := &Scan[R]{}
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			scan.Cut = nonZeroLen(line) // a partial line without newline is cut off
			return scan, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read wal: %w", err)
		}
		rec, seq, derr := decodeLine(line, decode, opt)
		if derr == nil && len(scan.Records) > 0 && seq != scan.Last+1 {
			derr = fmt.Errorf("record %d follows record %d", seq, scan.Last)
		}
		if derr != nil {
			return scan, scan.afterDamage(br, line, derr, decode, opt)
		}
		scan.Records = append(scan.Records, rec)
		scan.Last = seq
		scan.Good += int64(len(line))
	}
}

func decodeLine[R any](line []byte, decode Decoder[R], opt ReadOptions) (R, uint64, error) {
	body, err := Unframe(bytes.TrimSuffix(line, []byte{'\n'}), opt.Unframed)
	if err != nil {
		var zero R
		return zero, 0, err
	}
	rec, seq, err := decode(body)
	if err != nil {
		return rec, 0, fmt.Errorf("body: %w", err)
	}
	return rec, seq, nil
}

// afterDamage reads the rest of the log after the bad line and tells a torn last record (only
// zeros after it) from damage followed by records.
func (scan *Scan[R]) afterDamage(br *bufio.Reader, bad []byte, why error, decode Decoder[R], opt ReadOptions) error {
	scan.Cut = nonZeroLen(bad)
	rest := int64(len(bad))
	for {
		line, err := br.ReadBytes('\n')
		if n := nonZeroLen(line); n > 0 {
			scan.Damage = why
			scan.Cut = rest + n
			if _, _, derr := decodeLine(line, decode, opt); derr == nil {
				scan.Lost++
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
