package wal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type testRecord struct {
	Seq uint64 `json:"seq"`
	Op  string `json:"op,omitempty"`
}

func body(seq uint64, op string) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"op":%q}`, seq, op)
}

func decodeTest(b []byte) (testRecord, uint64, error) {
	var r testRecord
	err := json.Unmarshal(b, &r)
	return r, r.Seq, err
}

func records(n int, from uint64) []byte {
	var out []byte
	for i := range n {
		out = Append(out, body(from+uint64(i), "op"))
	}
	return out
}

func read(t *testing.T, data []byte, opt ReadOptions) *Scan[testRecord] {
	t.Helper()
	scan, err := Read(bytes.NewReader(data), decodeTest, opt)
	if err != nil {
		t.Fatal(err)
	}
	return scan
}

func TestUnframeRefusesBadChecksums(t *testing.T) {
	line := Encode(body(1, "a"))
	line = line[:len(line)-1]
	if b, err := Unframe(line, false); err != nil || string(b) != string(body(1, "a")) {
		t.Fatalf("Unframe(%q) = %q, %v", line, b, err)
	}
	for _, bad := range []string{
		strings.Replace(string(line), `"a"`, `"b"`, 1), // body changed
		"0000000 " + string(body(1, "a")),              // short checksum
		"zzzzzzzz " + string(body(1, "a")),             // not hex
		string(body(1, "a")),                           // unframed, not allowed
		"",
	} {
		if _, err := Unframe([]byte(bad), false); err == nil {
			t.Errorf("Unframe(%q) accepted it", bad)
		}
	}
	if _, err := Unframe(body(1, "a"), true); err != nil {
		t.Errorf("Unframe of an unframed body with unframed allowed: %v", err)
	}
}

func TestReadCutsATornTail(t *testing.T) {
	log := records(3, 1)
	good := int64(len(log))
	torn := append(bytes.Clone(log), Encode(body(4, "op"))[:9]...)
	torn = append(torn, make([]byte, 100)...)
	scan := read(t, torn, ReadOptions{})
	if len(scan.Records) != 3 || scan.Last != 3 || scan.Good != good || scan.Damage != nil || scan.Cut != 9 {
		t.Fatalf("scan of a torn tail: %+v", scan)
	}
	// A torn last line with its newline (its first sector lost) and zeros after it.
	zeroed := append(bytes.Clone(log), []byte("\x00\x00\x00\x00 \"op\":\"x\"}\n")...)
	if scan := read(t, zeroed, ReadOptions{}); len(scan.Records) != 3 || scan.Damage != nil {
		t.Fatalf("scan of a zeroed torn record: %+v", scan)
	}
}

func TestReadReportsDamageBeforeRecords(t *testing.T) {
	log := records(2, 1)
	damaged := append(bytes.Clone(log), []byte("garbage\n")...)
	damaged = append(damaged, records(2, 4)...)
	scan := read(t, damaged, ReadOptions{})
	if len(scan.Records) != 2 || scan.Damage == nil || scan.Lost != 2 || scan.Good != int64(len(log)) {
		t.Fatalf("scan of damage followed by records: %+v", scan)
	}
	if scan.Cut != int64(len(damaged)-len(log)) {
		t.Fatalf("cut %d bytes, want %d", scan.Cut, len(damaged)-len(log))
	}
	// A record out of sequence is damage too.
	gap := append(records(2, 1), records(1, 5)...)
	if scan := read(t, append(gap, records(1, 6)...), ReadOptions{}); scan.Damage == nil || len(scan.Records) != 2 {
		t.Fatalf("scan of a sequence gap: %+v", scan)
	}
}

// TestReadUnframed: an older store's unframed lines, then framed records a newer one appended,
// read as one log only when unframed records are allowed.
func TestReadUnframed(t *testing.T) {
	log := []byte("{\"seq\":7,\"op\":\"old\"}\n{\"seq\":8,\"op\":\"old\"}\n")
	log = append(log, records(2, 9)...)
	scan := read(t, log, ReadOptions{Unframed: true})
	if len(scan.Records) != 4 || scan.Last != 10 || scan.Damage != nil || scan.Records[0].Op != "old" {
		t.Fatalf("unframed then framed: %+v", scan)
	}
	if scan := read(t, log, ReadOptions{}); len(scan.Records) != 0 || scan.Damage == nil {
		t.Fatalf("unframed lines read without Unframed: %+v", scan)
	}
}

func openLog(t *testing.T) (*Log, *os.File) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "wal.log"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l, err := Open(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	return l, f
}

// TestLogWritesInPreallocatedSpace: records go into zeroed space, a reopen after a crash (no
// Trim) finds them, and Trim leaves exactly the records.
func TestLogWritesInPreallocatedSpace(t *testing.T) {
	l, f := openLog(t)
	recs := records(3, 1)
	if err := l.Write(recs, true); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != PreallocChunk {
		t.Fatalf("log is %d bytes; want the %d preallocated", st.Size(), PreallocChunk)
	}
	scan, err := Read(f, decodeTest, ReadOptions{})
	if err != nil || len(scan.Records) != 3 || scan.Good != l.Size() || scan.Cut != 0 {
		t.Fatalf("log after a crash reads %+v, %v", scan, err)
	}
	if err := l.Write(make([]byte, PreallocChunk), false); err != nil { // past the zeroed space
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != 2*PreallocChunk {
		t.Fatalf("log is %d bytes; want it grown by a chunk", st.Size())
	}
	if err := l.Trim(); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != l.Size() {
		t.Fatalf("trimmed log is %d bytes; want %d", st.Size(), l.Size())
	}
	if err := l.Reset(); err != nil {
		t.Fatal(err)
	}
	if scan, err := Read(f, decodeTest, ReadOptions{}); err != nil || len(scan.Records) != 0 || l.Size() != 0 {
		t.Fatalf("log after Reset: %+v, %v", scan, err)
	}
}

// TestUnwriteWipesAFailedAppend: records written but never acknowledged (the sync failed) are
// zeroed, so a restart does not apply them.
func TestUnwriteWipesAFailedAppend(t *testing.T) {
	l, f := openLog(t)
	good := Encode(body(1, "op"))
	if err := l.Write(good, true); err != nil {
		t.Fatal(err)
	}
	failed := Encode(body(2, "op"))
	if _, err := f.WriteAt(failed, l.Size()); err != nil { // written; suppose the sync then failed
		t.Fatal(err)
	}
	if err := l.Unwrite(len(failed)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	scan, err := Read(f, decodeTest, ReadOptions{})
	if err != nil || len(scan.Records) != 1 || scan.Last != 1 || scan.Good != int64(len(good)) || scan.Damage != nil {
		t.Fatalf("log after unwrite: %+v, %v; want record 1 only", scan, err)
	}
}

func TestOpenCutsAfterTheValidPart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wal.log")
	recs := records(2, 1)
	if err := os.WriteFile(path, append(bytes.Clone(recs), "torn"...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scan, err := Read(f, decodeTest, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(f, scan.Good)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Encode(body(3, "op")), true); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if scan := read(t, raw, ReadOptions{}); len(scan.Records) != 3 || scan.Damage != nil || scan.Cut != 0 {
		t.Fatalf("log after Open cut the torn end and took a record: %+v", scan)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	for _, want := range []string{"one", "two"} {
		if err := WriteFileAtomic(path, []byte(want)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Fatalf("read back %q, %v; want %q", got, err, want)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v; want 0600", st.Mode().Perm())
	}
}
