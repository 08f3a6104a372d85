package fabric

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAccessLogFileRotates: a line that would take the file past its limit goes to a new file,
// the old ones moving up to .1 and .2 and the oldest beyond the kept two removed; no line is
// split or lost; with none kept the file is truncated instead.
func TestAccessLogFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lb.log")
	l, err := openAccessLog(path, 100, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	line := func(i int) []byte {
		return fmt.Appendf(nil, "{\"n\":%03d,\"pad\":\"%s\"}\n", i, strings.Repeat("x", 16))
	} // 35 bytes
	for i := range 10 {
		if _, err := l.Write(line(i)); err != nil {
			t.Fatal(err)
		}
	}
	// 2 lines (70 bytes) fit in 100, not 3: files of lines 0-1, 2-3, 4-5, 6-7, 8-9; the first
	// two are gone.
	want := map[string]string{path: "8 9", path + ".1": "6 7", path + ".2": "4 5"}
	for p, w := range want {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for s := range strings.Lines(string(b)) {
			var n int
			if _, err := fmt.Sscanf(s, "{\"n\":%d,", &n); err != nil {
				t.Fatalf("%s: line %q: %v", p, s, err)
			}
			got = append(got, fmt.Sprint(n))
		}
		if strings.Join(got, " ") != w {
			t.Errorf("%s holds lines %v; want %s", filepath.Base(p), got, w)
		}
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists (%v); only 2 rotated files are kept", path, err)
	}
	if err := l.Err(); err != nil {
		t.Errorf("Err: %v", err)
	}

	none := filepath.Join(dir, "none.log")
	l0, err := openAccessLog(none, 40, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l0.Close()
	for i := range 3 {
		if _, err := l0.Write(line(i)); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(none); string(b) != string(line(2)) {
		t.Errorf("with none kept the file holds %q; want the last line only", b)
	}
	if matches, _ := filepath.Glob(none + ".*"); len(matches) != 0 {
		t.Errorf("with none kept: %v", matches)
	}
}

// TestAccessLogFileFailsAndRecovers: once its directory is gone the file cannot be reopened:
// lines are dropped and counted, Err says why, and failed is called once; when the directory
// is back, the file recovers by itself (through Err, which the fabric's convergence calls,
// without a line), and lines are written.
func TestAccessLogFileFailsAndRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lb.log")
	var calls atomic.Int32
	l, err := openAccessLog(path, 0, 0, func() { calls.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil {
		t.Fatal("Reopen in a removed directory succeeded")
	}
	for range 3 {
		if _, err := l.Write([]byte("lost\n")); err == nil {
			t.Fatal("a line written to a file that cannot be opened")
		}
	}
	err = l.Err()
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") || !strings.Contains(err.Error(), "3 lines lost") {
		t.Errorf("Err: %v; want the missing directory and 3 lines lost", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("failed called %d times; want once, when the file failed", n)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Err() != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("the directory is back, yet: %v", err)
	}
	if _, err := l.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "two\n" {
		t.Errorf("the new file holds %q (%v); want the line written after", b, err)
	}
	if n := calls.Load(); n != 1 {
		// Recovering through Err calls nothing: the fabric asked, at a convergence.
		t.Errorf("failed called %d times; want once", n)
	}
}

// TestAccessLogFileFullDisk: a file that opens but cannot be written (a full disk: /dev/full)
// stays failed, Err saying why, until a line is written: reopening it does not clear the
// failure, failed is called once, not once per line, and it is reopened at most once per
// accessLogRetry.
func TestAccessLogFileFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("this test writes to /dev/full: %v", err)
	}
	var calls atomic.Int32
	l, err := openAccessLog("/dev/full", 0, 0, func() { calls.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 5 {
		if _, err := l.Write([]byte("line\n")); err == nil {
			t.Fatal("a line written to a full disk")
		}
		if err := l.Err(); err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("Err: %v; want the full disk", err)
		}
	}
	if err := l.Err(); !strings.Contains(err.Error(), "5 lines lost") {
		t.Errorf("Err: %v; want 5 lines lost", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("failed called %d times; want once", n)
	}
	l.mu.Lock()
	reopened := l.f != nil
	l.mu.Unlock()
	if reopened {
		t.Error("the file was opened again within accessLogRetry of a failed write")
	}
}
