package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is the first entry's time in these tests; each line is a second later.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// writeLog writes lines through the log writer's code with a clock that ticks a second a line.
func writeLog(t *testing.T, path string, maxBytes int64, stream string, lines string, start time.Time) {
	t.Helper()
	w, err := openRotatingLog(path, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	at := start
	copyLines(strings.NewReader(lines), stream, w, func() time.Time { at = at.Add(time.Second); return at.Add(-time.Second) })
	if err := w.err(); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, base string, q string) (string, error) {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := parseLogOptions(v, t0.Add(time.Hour))
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = readLog(context.Background(), &out, base, opts, func() bool { return false })
	return out.String(), err
}

func TestLogEntriesAndOptions(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sb_c.log")
	writeLog(t, base, 1<<20, "stdout", "one\ntwo\nthree\nfour", t0)
	raw, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if first := strings.SplitN(string(raw), "\n", 2)[0]; first != "2026-01-02T03:04:05Z stdout F one" {
		t.Errorf("first entry %q, want the CRI format", first)
	}
	for _, tc := range []struct{ query, want string }{
		{"", "one\ntwo\nthree\nfour\n"},
		{"tailLines=2", "three\nfour\n"},
		{"tailLines=0", ""},
		{"sinceTime=2026-01-02T03:04:07Z", "three\nfour\n"},
		{"limitBytes=6", "one\ntw"},
		{"timestamps=true&tailLines=1", "2026-01-02T03:04:08Z four\n"},
		{"stream=Stderr", ""},
		{"stream=All&tailLines=1", "four\n"},
	} {
		got, err := readAll(t, base, tc.query)
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.query, got, err, tc.want)
		}
	}
	if _, err := readAll(t, base, "previous=true"); err == nil {
		t.Error("previous=true without a previous log: no error")
	}
}

func TestLogOptionsRefused(t *testing.T) {
	for _, q := range []string{"tailLines=-1", "limitBytes=0", "sinceSeconds=0", "sinceTime=yesterday",
		"sinceSeconds=5&sinceTime=2026-01-02T03:04:07Z", "stream=stdin", "follow=maybe", "pretty=true", "tailLines=1&tailLines=2"} {
		v, _ := url.ParseQuery(q)
		if _, err := parseLogOptions(v, t0); err == nil {
			t.Errorf("%q accepted", q)
		}
	}
	v, _ := url.ParseQuery("sinceSeconds=10")
	if o, err := parseLogOptions(v, t0); err != nil || !o.since.Equal(t0.Add(-10*time.Second)) {
		t.Errorf("sinceSeconds=10: since %s, %v; want 10 s before now", o.since, err)
	}
}

// TestLogRotation: at the cap the log moves to .1; a read sees both, in order, and the files
// never hold more than twice the cap.
func TestLogRotation(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sb_c.log")
	var in strings.Builder
	for i := range 3000 {
		in.WriteString(strings.Repeat("x", 30) + " line " + string(rune('a'+i%26)) + "\n")
	}
	const limit = 64 << 10
	writeLog(t, base, limit, "stderr", in.String(), t0)
	var total int64
	for _, p := range []string{base, base + ".1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > limit {
			t.Errorf("%s holds %d bytes, over the cap %d", p, fi.Size(), limit)
		}
		total += fi.Size()
	}
	got, err := readAll(t, base, "")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if want := in.String(); !strings.HasSuffix(want, got) || len(lines) < 1000 {
		t.Errorf("read %d lines after rotation, not the end of what was written (%d bytes kept)", len(lines), total)
	}
	tail, err := readAll(t, base, "tailLines=3")
	if err != nil || tail != strings.Join(strings.Split(in.String(), "\n")[2997:3000], "\n")+"\n" {
		t.Errorf("tailLines=3 across rotation: %q, %v", tail, err)
	}
}

// TestLogLongLine: a line longer than an entry is split into P pieces and read back whole.
func TestLogLongLine(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sb_c.log")
	long := strings.Repeat("y", maxLogLine*2+10)
	writeLog(t, base, 1<<20, "stdout", long+"\nshort\n", t0)
	raw, _ := os.ReadFile(base)
	if n := strings.Count(string(raw), " stdout P "); n != 2 {
		t.Errorf("%d P entries, want 2", n)
	}
	got, err := readAll(t, base, "")
	if err != nil || got != long+"\nshort\n" {
		t.Errorf("read back %d bytes, %v; want the long line and the short one", len(got), err)
	}
	if got, _ := readAll(t, base, "tailLines=1"); got != "short\n" {
		t.Errorf("tailLines=1: %q", got)
	}
}

// TestLogFollow: follow writes what comes after the start, through a rotation, and returns
// once the container stopped and everything was read.
func TestLogFollow(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sb_c.log")
	w, err := openRotatingLog(base, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	w.entry(t0, "stdout", 'F', []byte("before"))
	var running atomic.Bool
	running.Store(true)
	r, pw, _ := os.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- readLog(context.Background(), pw, base, logOptions{follow: true, tailLines: -1}, running.Load)
		pw.Close()
	}()
	br := bufio.NewReader(r)
	if first, err := br.ReadString('\n'); err != nil || first != "before\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	for i := range 1000 { // about 72 KB: one rotation
		w.entry(t0, "stdout", 'F', []byte(strings.Repeat("z", 40)+"-"+string(rune('a'+i%26))))
	}
	w.entry(t0, "stdout", 'F', []byte("last"))
	w.close()
	if _, err := os.Stat(base + ".1"); err != nil {
		t.Fatalf("the log did not rotate: %v", err)
	}
	running.Store(false)
	got := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = b.ReadFrom(br)
		got <- b.String()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not return after the container stopped")
	}
	out := <-got
	if !strings.HasSuffix(out, "last\n") || strings.Count(out, "\n") != 1001 {
		t.Errorf("followed %d lines after the first (want 1001, up to last)", strings.Count(out, "\n"))
	}
}
