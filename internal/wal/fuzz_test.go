package wal

import (
	"bytes"
	"testing"
)

// FuzzRead feeds arbitrary log contents to the scanner that the stores' loads trust: it never
// fails on bytes it can read, its valid part is whole records numbered one after another that
// scan the same on their own, and what it reports cut lies inside the input. Both ways of
// reading are fuzzed: framed records only, and framed or unframed (an older fakecloud's log).
func FuzzRead(f *testing.F) {
	var log []byte
	for i := range 4 {
		log = Append(log, body(uint64(i+1), "release"))
	}
	f.Add(log)
	f.Add(append(bytes.Clone(log), make([]byte, 64)...))
	f.Add(append(bytes.Clone(log[:len(log)-9]), make([]byte, 64)...))
	f.Add([]byte("{\"seq\":1}\n{\"seq\":2}\n" + string(Encode(body(3, "x")))))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opt := range []ReadOptions{{}, {Unframed: true}} {
			scan, err := Read(bytes.NewReader(data), decodeTest, opt)
			if err != nil {
				t.Fatalf("Read of bytes in memory: %v", err)
			}
			if scan.Good > int64(len(data)) || scan.Good+scan.Cut > int64(len(data)) || scan.Cut < 0 {
				t.Fatalf("good %d + cut %d outside the %d bytes", scan.Good, scan.Cut, len(data))
			}
			if scan.Good > 0 && data[scan.Good-1] != '\n' {
				t.Fatalf("valid part ends inside a line (byte %d)", scan.Good)
			}
			if scan.Damage == nil && scan.Lost != 0 {
				t.Fatalf("%d records lost without damage", scan.Lost)
			}
			for i := 1; i < len(scan.Records); i++ {
				if scan.Records[i].Seq != scan.Records[i-1].Seq+1 {
					t.Fatalf("record %d follows %d in the valid part", scan.Records[i].Seq, scan.Records[i-1].Seq)
				}
			}
			if n := len(scan.Records); n > 0 && scan.Last != scan.Records[n-1].Seq {
				t.Fatalf("Last is %d, the last record %d", scan.Last, scan.Records[n-1].Seq)
			}
			again, err := Read(bytes.NewReader(data[:scan.Good]), decodeTest, opt)
			if err != nil || again.Good != scan.Good || len(again.Records) != len(scan.Records) || again.Damage != nil || again.Cut != 0 {
				t.Fatalf("the valid part alone scans as %+v, %v; want %d clean records", again, err, len(scan.Records))
			}
		}
	})
}
