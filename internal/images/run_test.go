package images

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBuiltImageRuns builds an image from a real static program (testdata/hello, standing for
// all three binaries), then does what the lab's node agent does: Lookup, Unpack, ImageConfig,
// and start the entrypoint from the unpacked tree.
func TestBuiltImageRuns(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the test program with")
	}
	bins := t.TempDir()
	b := exec.Command(goBin, "build", "-trimpath", "-o", filepath.Join(bins, "hello"), "./testdata/hello")
	b.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := b.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/hello: %v\n%s", err, out)
	}
	for _, n := range binNames {
		if err := os.Link(filepath.Join(bins, "hello"), filepath.Join(bins, n)); err != nil {
			t.Fatal(err)
		}
	}
	host := Platform{OS: "linux", Arch: runtime.GOARCH}
	res, err := Build(context.Background(), Options{
		Registry: "example.com/test", Tag: "t1", Platforms: []Platform{host},
		BinDir: func(Platform) (string, error) { return bins, nil }, Out: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range Names("example.com/test", "t1") {
		img, err := Lookup(res.Layout, ref, host)
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(t.TempDir(), "root")
		if err := Unpack(img, root); err != nil {
			t.Fatal(err)
		}
		ep, _, _, _, _, err := ImageConfig(img)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(filepath.Join(root, ep[0]), "--flag").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: run %s: %v\n%s", ref, ep[0], err, out)
		}
		if want := "hello from " + filepath.Base(ep[0]) + " [--flag]\n"; string(out) != want {
			t.Errorf("%s: %s said %q, want %q", ref, ep[0], out, want)
		}
		if strings.Contains(ref, "ipamd") {
			out, err := exec.Command(filepath.Join(root, "opt/cni/bin/flatnet")).CombinedOutput()
			if err != nil || string(out) != "hello from flatnet []\n" {
				t.Errorf("the CNI plugin in %s: %q, %v", ref, out, err)
			}
		}
	}
}
