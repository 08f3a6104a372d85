package images

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestUnpackBuiltImage unpacks a built image and checks the tree on disk, then that a second
// Unpack leaves it alone.
func TestUnpackBuiltImage(t *testing.T) {
	res, _ := build(t, amd64)
	img, err := Lookup(res.Layout, Names("", "")[1], amd64)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "images", "lbc")
	if err := Unpack(img, dir); err != nil {
		t.Fatal(err)
	}
	want := []string{
		UnpackMarker + " -rw-r--r--",
		"etc drwxr-xr-x",
		"etc/group -rw-r--r--",
		"etc/passwd -rw-r--r--",
		"root drwx------",
		"tmp dtrwxrwxrwx",
		"usr drwxr-xr-x",
		"usr/bin drwxr-xr-x",
		"usr/bin/flatnet-lbcontroller -rwxr-xr-x",
	}
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("unpacked tree (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc", "passwd")); string(b) != passwd {
		t.Errorf("/etc/passwd: %q", b)
	}
	d, _ := img.Digest()
	if b, _ := os.ReadFile(filepath.Join(dir, UnpackMarker)); strings.TrimSpace(string(b)) != d.String() {
		t.Errorf("marker %q, want the digest %s", b, d)
	}
	fi, _ := os.Stat(filepath.Join(dir, "usr", "bin", "flatnet-lbcontroller"))
	if !fi.ModTime().Equal(time.Unix(0, 0)) {
		t.Errorf("binary's mtime %s, want the layer's (the epoch)", fi.ModTime())
	}
	if _, err := os.Stat(dir + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.tmp is left: %v", dir, err)
	}

	// Again: nothing to do, and nothing touched (a file added since stays).
	writeFile(t, filepath.Join(dir, "tmp", "mine"), []byte("x"), 0o644)
	if err := Unpack(img, dir); err != nil {
		t.Fatalf("second Unpack: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp", "mine")); err != nil {
		t.Errorf("second Unpack rewrote the directory: %v", err)
	}
}

// TestUnpackLayers applies hand-made layers: whiteouts of files and directories, an opaque
// directory, links, modes, and an upper layer replacing files of a lower one.
func TestUnpackLayers(t *testing.T) {
	lower := tarOf(t, []tarEntry{
		dirEntry("a/", 0o755),
		reg("a/1", "one", 0o644),
		reg("a/2", "two", 0o644),
		dirEntry("b/", 0o755),
		reg("b/x", "x", 0o644),
		dirEntry("c/", 0o750),
		reg("c/old", "old", 0o644),
		dirEntry("c/sub/", 0o755),
		reg("c/sub/deep", "deep", 0o644),
		reg("replaced", "lower", 0o644),
		dirEntry("dir-then-file/", 0o755),
		reg("dir-then-file/inside", "gone", 0o644),
		reg("f", "file", 0o640),
		reg("suid", "s", 0o4755),
		dirEntry("sticky/", 0o1777),
		dirEntry("ro/", 0o555),
		reg("ro/file", "read-only dir's file", 0o444),
		reg("./dotted", "leading ./", 0o600),
	})
	upper := tarOf(t, []tarEntry{
		// The opaque marker after a file of its own layer: it hides the lower layers only.
		reg("c/new", "new", 0o600),
		{name: "c/.wh..wh..opq", typ: tar.TypeReg},
		{name: "a/.wh.1", typ: tar.TypeReg},
		{name: ".wh.b", typ: tar.TypeReg},
		{name: ".wh.not-there", typ: tar.TypeReg},
		reg("a/3", "three", 0o644),
		reg("replaced", "upper", 0o600),
		reg("dir-then-file", "now a file", 0o644),
		hardlink("hard", "f"),
		symlink("rel", "a/2"),
		symlink("abs", "/usr/bin/nothing"),
		symlink("a/up", "../f"),
	})
	dir := filepath.Join(t.TempDir(), "root")
	// A read-only directory would stop t.TempDir's cleanup when not run as root.
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "ro"), 0o755) })
	if err := Unpack(imageOf(t, lower, upper), dir); err != nil {
		t.Fatal(err)
	}
	want := []string{
		UnpackMarker + " -rw-r--r--",
		"a drwxr-xr-x",
		"a/2 -rw-r--r--",
		"a/3 -rw-r--r--",
		"a/up -> ../f",
		"abs -> /usr/bin/nothing",
		"c drwxr-x---",
		"c/new -rw-------",
		"dir-then-file -rw-r--r--",
		"dotted -rw-------",
		"f -rw-r-----",
		"hard -rw-r-----",
		"rel -> a/2",
		"replaced -rw-------",
		"ro dr-xr-xr-x",
		"ro/file -r--r--r--",
		"sticky dtrwxrwxrwx",
		"suid urwxr-xr-x",
	}
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("unpacked tree (-want +got):\n%s", diff)
	}
	for p, want := range map[string]string{"replaced": "upper", "a/up": "file", "rel": "two", "c/new": "new"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", p, b, err, want)
		}
	}
	f, _ := os.Stat(filepath.Join(dir, "f"))
	h, _ := os.Stat(filepath.Join(dir, "hard"))
	if !os.SameFile(f, h) {
		t.Error("hard is not a hard link to f")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "c")); !fi.ModTime().Equal(time.Unix(1e9, 0)) {
		t.Errorf("c's mtime %s, want the layer's", fi.ModTime())
	}
}

// TestUnpackRefusesEscapes gives Unpack layers that try to write outside its directory: each
// fails with an error naming the entry, and nothing is written anywhere, inside or out.
func TestUnpackRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		layers  [][]tarEntry
		unsafe  bool   // the error wraps ErrUnsafeLayer
		mention string // the error names this
	}{
		{"dot-dot", [][]tarEntry{{reg("../escape", "x", 0o644)}}, true, `"../escape" leads outside`},
		{"dot-dot deeper", [][]tarEntry{{reg("a/../../../escape", "x", 0o644)}}, true, "leads outside"},
		{"absolute path", [][]tarEntry{{reg("/escape", "x", 0o644)}}, true, `"/escape" is an absolute path`},
		{"dot-dot directory", [][]tarEntry{{dirEntry("../escape/", 0o755)}}, true, "leads outside"},
		{"symlink up", [][]tarEntry{{symlink("evil", "../../outside")}}, true, "symlink evil -> ../../outside leads outside"},
		{"symlink up from a subdirectory", [][]tarEntry{{dirEntry("d/", 0o755), symlink("d/evil", "../..")}}, true, "leads outside"},
		{"write through an absolute symlink", [][]tarEntry{{symlink("evil", "OUTSIDE"), reg("evil/pwned", "x", 0o644)}}, true, "a symlink to the absolute path"},
		{"write through a symlink of a lower layer", [][]tarEntry{{symlink("evil", "OUTSIDE")}, {reg("evil/pwned", "x", 0o644)}}, true, "evil/pwned is under evil"},
		{"directory through a symlink", [][]tarEntry{{symlink("evil", "OUTSIDE"), dirEntry("evil/d/", 0o755)}}, true, "which Unpack does not follow"},
		{"symlink chain out", [][]tarEntry{{symlink("a", "b"), symlink("b", "OUTSIDE"), reg("a/pwned", "x", 0o644)}}, false, `"a/pwned"`},
		{"hard link out", [][]tarEntry{{hardlink("h", "../outside/secret")}}, true, "leads outside"},
		{"hard link absolute", [][]tarEntry{{hardlink("h", "/etc/passwd")}}, true, "absolute path"},
		{"hard link through a symlink", [][]tarEntry{{symlink("evil", "OUTSIDE"), hardlink("h", "evil/secret")}}, false, `"h"`},
		{"hard link to nothing", [][]tarEntry{{hardlink("h", "nothing")}}, true, "no such file in the layers so far"},
		{"whiteout through a symlink", [][]tarEntry{{symlink("evil", "OUTSIDE")}, {{name: "evil/.wh.secret", typ: tar.TypeReg}}}, true, "a symlink to the absolute path"},
		{"opaque through a symlink", [][]tarEntry{{symlink("evil", "OUTSIDE")}, {{name: "evil/.wh..wh..opq", typ: tar.TypeReg}}}, true, "a symlink to the absolute path"},
		{"whiteout of the parent", [][]tarEntry{{{name: "a/.wh..", typ: tar.TypeReg}}}, true, "names no file"},
		{"device", [][]tarEntry{{{name: "dev/null", typ: tar.TypeChar, mode: 0o666}}}, true, "character device"},
		{"fifo", [][]tarEntry{{{name: "pipe", typ: tar.TypeFifo, mode: 0o666}}}, true, "FIFO"},
		{"the marker", [][]tarEntry{{reg(UnpackMarker, "sha256:0", 0o644)}}, true, "Unpack's own marker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			parent := filepath.Join(base, "a", "b")
			outside := filepath.Join(base, "a", "b", "outside")
			writeFile(t, mkdir(t, outside, "secret"), []byte("secret"), 0o600)
			var raws [][]byte
			for _, l := range tc.layers {
				for i := range l {
					l[i].link = strings.ReplaceAll(l[i].link, "OUTSIDE", outside)
				}
				raws = append(raws, tarOf(t, l))
			}
			before := tree(t, base)
			err := Unpack(imageOf(t, raws...), filepath.Join(parent, "root"))
			if err == nil {
				t.Fatal("Unpack succeeded")
			}
			t.Log(err)
			if tc.unsafe != errors.Is(err, ErrUnsafeLayer) {
				t.Errorf("errors.Is(err, ErrUnsafeLayer) = %v, want %v", !tc.unsafe, tc.unsafe)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error does not say %q", tc.mention)
			}
			if diff := cmp.Diff(before, tree(t, base)); diff != "" {
				t.Errorf("files changed (-before +after):\n%s", diff)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
				t.Errorf("outside/secret is now %q", b)
			}
		})
	}
}

// mkdir makes dir and returns the path of name in it.
func mkdir(t *testing.T, dir, name string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// TestUnpackDirectories checks what Unpack does with a directory that is already there: its
// own leftover .tmp is replaced, anything else is left alone with an error.
func TestUnpackDirectories(t *testing.T) {
	img := imageOf(t, tarOf(t, []tarEntry{reg("file", "data", 0o644)}))
	other := imageOf(t, tarOf(t, []tarEntry{reg("file", "other", 0o644)}))

	t.Run("leftover tmp", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "root")
		writeFile(t, mkdir(t, dir+".tmp", "half"), []byte("of a crashed unpack"), 0o644)
		if err := Unpack(img, dir); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{UnpackMarker + " -rw-r--r--", "file -rw-r--r--"}, tree(t, dir)); diff != "" {
			t.Errorf("tree (-want +got):\n%s", diff)
		}
		if _, err := os.Stat(dir + ".tmp"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s.tmp: %v", dir, err)
		}
	})
	t.Run("not ours", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "root")
		writeFile(t, mkdir(t, dir, "mine"), []byte("keep"), 0o644)
		err := Unpack(img, dir)
		if err == nil || !strings.Contains(err.Error(), "exists and was not written by Unpack") {
			t.Errorf("Unpack into a directory of other files: %v", err)
		}
		if diff := cmp.Diff([]string{"mine -rw-r--r--"}, tree(t, dir)); diff != "" {
			t.Errorf("tree (-want +got):\n%s", diff)
		}
	})
	t.Run("another image", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "root")
		if err := Unpack(other, dir); err != nil {
			t.Fatal(err)
		}
		err := Unpack(img, dir)
		if err == nil || !strings.Contains(err.Error(), "holds image sha256:") {
			t.Errorf("Unpack over another image: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "file")); string(b) != "other" {
			t.Errorf("file is %q", b)
		}
	})
	t.Run("no dir", func(t *testing.T) {
		if err := Unpack(img, ""); err == nil {
			t.Error("Unpack into \"\" succeeded")
		}
	})
}
