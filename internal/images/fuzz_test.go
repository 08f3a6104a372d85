package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzUnpack unpacks arbitrary layers (the fuzzer mutates tar files, some hand-made to escape)
// beside a directory standing for the rest of the machine: whether Unpack succeeds or fails,
// nothing is written outside its directory, and a failed Unpack leaves no directory behind.
func FuzzUnpack(f *testing.F) {
	for _, l := range [][]tarEntry{
		{dirEntry("a/", 0o755), reg("a/f", "x", 0o644), hardlink("a/h", "a/f"), symlink("a/s", "f")},
		{symlink("up", "../outside"), reg("up/pwned", "x", 0o644)},
		{symlink("abs", "/tmp"), reg("abs/pwned", "x", 0o644), {name: "abs/.wh.x", typ: '0'}},
		{reg("../escape", "x", 0o644), hardlink("h", "../outside/secret")},
		{dirEntry("d/", 0o755), reg("d/x", "x", 0o644), {name: "d/.wh..wh..opq", typ: '0'}, {name: ".wh.d", typ: '0'}},
	} {
		f.Add(tarOf(f, l))
	}
	f.Fuzz(func(t *testing.T, layer []byte) {
		base := t.TempDir()
		outside := filepath.Join(base, "outside")
		writeFile(t, mkdir(t, outside, "secret"), []byte("secret"), 0o600)
		dir := filepath.Join(base, "root")
		err := Unpack(imageOf(t, layer), dir)
		for _, line := range tree(t, base) {
			p := strings.Fields(line)[0]
			if p == "outside" || p == "outside/secret" || err == nil && (p == "root" || strings.HasPrefix(p, "root/")) {
				continue
			}
			t.Errorf("Unpack (error %v) left %s", err, line)
		}
		if diff := cmp.Diff([]string{"secret -rw-------"}, tree(t, outside)); diff != "" {
			t.Errorf("outside changed (-want +got):\n%s", diff)
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
			t.Errorf("outside/secret is %q", b)
		}
	})
}
