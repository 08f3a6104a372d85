package store

import (
	"bytes"
	"testing"
)

// FuzzReadWAL feeds arbitrary log contents to the scanner that load trusts: it never fails on
// bytes it can read, its valid part is whole records numbered one after another that scan
// the same on their own, and what it reports cut lies inside the input.
func FuzzReadWAL(f *testing.F) {
	var log []byte
	for i := range 4 {
		line, err := encode(&record{Seq: uint64(i + 1), Op: opRelease, IPs: addrs("10.0.0.10", 1), At: t0})
		if err != nil {
			f.Fatal(err)
		}
		log = append(log, line...)
	}
	f.Add(log)
	f.Add(append(bytes.Clone(log), make([]byte, 64)...))
	f.Add(append(bytes.Clone(log[:len(log)-9]), make([]byte, 64)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		scan, err := readWAL(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("readWAL of bytes in memory: %v", err)
		}
		if scan.good > int64(len(data)) || scan.good+scan.cut > int64(len(data)) || scan.cut < 0 {
			t.Fatalf("good %d + cut %d outside the %d bytes", scan.good, scan.cut, len(data))
		}
		if scan.good > 0 && data[scan.good-1] != '\n' {
			t.Fatalf("valid part ends inside a line (byte %d)", scan.good)
		}
		if scan.damage == nil && scan.lost != 0 {
			t.Fatalf("%d records lost without damage", scan.lost)
		}
		for i := 1; i < len(scan.recs); i++ {
			if scan.recs[i].Seq != scan.recs[i-1].Seq+1 {
				t.Fatalf("record %d follows %d in the valid part", scan.recs[i].Seq, scan.recs[i-1].Seq)
			}
		}
		again, err := readWAL(bytes.NewReader(data[:scan.good]))
		if err != nil || again.good != scan.good || len(again.recs) != len(scan.recs) || again.damage != nil || again.cut != 0 {
			t.Fatalf("the valid part alone scans as %+v, %v; want %d clean records", again, err, len(scan.recs))
		}
	})
}
