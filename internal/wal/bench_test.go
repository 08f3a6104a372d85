package wal

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkLogSync is the floor under a durable write (ipamd's warm allocation, a fakecloud
// call): one 256-byte record made durable, the way the stores did it before (appended, so every fdatasync also commits the file's new size
// through the ext4 journal) and the way it does now (written in place into zeroed, synced
// space). The state directory's filesystem is the one os.TempDir is on (FLATNET_BENCH_DIR
// overrides). Reports p50/p99 per sync.
func BenchmarkLogSync(b *testing.B) {
	base := os.Getenv("FLATNET_BENCH_DIR")
	rec := make([]byte, 256)
	for i := range rec {
		rec[i] = 'x'
	}
	rec[len(rec)-1] = '\n'
	run := func(b *testing.B, open func(*os.File) (func() error, error)) {
		dir, err := os.MkdirTemp(base, "wal-logsync-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		f, err := os.OpenFile(filepath.Join(dir, "wal.log"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		sync, err := open(f)
		if err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if err := sync(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	}
	b.Run("append", func(b *testing.B) {
		run(b, func(f *os.File) (func() error, error) {
			return func() error {
				if _, err := f.Write(rec); err != nil {
					return err
				}
				return Fdatasync(f)
			}, nil
		})
	})
	b.Run("prealloc", func(b *testing.B) {
		run(b, func(f *os.File) (func() error, error) {
			l, err := Open(f, 0)
			if err != nil {
				return nil, err
			}
			return func() error { return l.Write(rec, true) }, nil
		})
	})
}
