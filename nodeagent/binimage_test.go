package nodeagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/internal/images"
)

func TestRepository(t *testing.T) {
	for ref, want := range map[string]string{
		"registry.k8s.io/gateway-api/echo-basic:v1.5.1":         "registry.k8s.io/gateway-api/echo-basic",
		"registry.k8s.io/gateway-api/echo-basic":                "registry.k8s.io/gateway-api/echo-basic",
		"registry.k8s.io/coredns/coredns:v1.12.2@sha256:abcdef": "registry.k8s.io/coredns/coredns",
		"registry.k8s.io/coredns/coredns@sha256:abcdef":         "registry.k8s.io/coredns/coredns",
		"localhost:5000/echo:1":                                 "localhost:5000/echo",
		"localhost:5000/echo":                                   "localhost:5000/echo",
		"busybox:1.36":                                          "busybox",
	} {
		if got := repository(ref); got != want {
			t.Errorf("repository(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestParseImageBinary(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    ImageBinary
		errPart string
	}{
		{in: "registry.k8s.io/gateway-api/echo-basic=/bin/echo-basic", want: ImageBinary{"registry.k8s.io/gateway-api/echo-basic", "/bin/echo-basic"}},
		{in: "localhost:5000/x=/a/../b/x", want: ImageBinary{"localhost:5000/x", "/b/x"}},
		{in: "registry.k8s.io/gateway-api/echo-basic:v1.5.1=/bin/e", errPart: "without tag or digest"},
		{in: "repo@sha256:ab=/bin/e", errPart: "without tag or digest"},
		{in: "repo=bin/e", errPart: "must be absolute"},
		{in: "repo", errPart: "want REPOSITORY=PATH"},
		{in: "=/bin/e", errPart: "want REPOSITORY=PATH"},
		{in: "repo=", errPart: "want REPOSITORY=PATH"},
	} {
		got, err := ParseImageBinary(tc.in)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("ParseImageBinary(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.errPart)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseImageBinary(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseImageBinary(f *testing.F) {
	f.Add("registry.k8s.io/gateway-api/echo-basic=/bin/echo-basic")
	f.Add("localhost:5000/x:1@sha256:0=/a")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseImageBinary(s)
		if err != nil {
			return
		}
		if repository(b.Repository) != b.Repository || !filepath.IsAbs(b.Path) {
			t.Errorf("accepted %q as %+v: a tagged repository or a relative path", s, b)
		}
	})
}

func writeProgram(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestImageBinaries checks the flag's validation and that every tag of a mapped repository
// resolves to one root holding the program alone, made again when the program changes.
func TestImageBinaries(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "echo-basic")
	writeProgram(t, prog, "v1")
	notExec := filepath.Join(dir, "data")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	bad := []ImageBinary{{"r/a", filepath.Join(dir, "missing")}, {"r/b", notExec}, {"r/b", prog}}
	err := validateImageBinaries(bad)
	for _, part := range []string{"missing: no such file", "data: not an executable", "r/b is mapped twice"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("validateImageBinaries() = %v; want it to say %q", err, part)
		}
	}

	a := &Agent{
		cfg:    Config{ImageBinaries: []ImageBinary{{"registry.k8s.io/gateway-api/echo-basic", prog}}},
		images: newImageCache("", filepath.Join(dir, "images")),
	}
	if err := validateImageBinaries(a.cfg.ImageBinaries); err != nil {
		t.Fatal(err)
	}
	kind, im, err := a.resolveImage("registry.k8s.io/gateway-api/echo-basic:v1.5.1")
	if err != nil || kind != programOCI {
		t.Fatalf("resolveImage = %q, %v; want the program of the node", kind, err)
	}
	if diff := cmp.Diff([]string{"/echo-basic"}, im.entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	var files []string
	err = filepath.WalkDir(im.root, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(im.root, p)
		files = append(files, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{".", images.UnpackMarker, "echo-basic", "tmp"}, files); diff != "" {
		t.Errorf("the root's files (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(im.root, "echo-basic")); string(b) != "v1" {
		t.Errorf("the root's program holds %q, want the mapped file's", b)
	}
	_, again, err := a.resolveImage("registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.3")
	if err != nil || again != im {
		t.Errorf("another tag resolved to %+v, %v; want the same image", again, err)
	}

	// An agent started after the program changed gets a new root.
	writeProgram(t, prog, "v2")
	b := &Agent{cfg: a.cfg, images: newImageCache("", filepath.Join(dir, "images"))}
	_, im2, err := b.resolveImage("registry.k8s.io/gateway-api/echo-basic@sha256:00")
	if err != nil {
		t.Fatal(err)
	}
	if im2.root == im.root || im2.digest == im.digest {
		t.Errorf("a changed program kept root %s and digest %s", im.root, im.digest)
	}

	if _, _, err := a.resolveImage("registry.k8s.io/gateway-api/echo-basic-other:v1"); err == nil {
		t.Error("an unmapped repository with a mapped one as prefix resolved")
	}
}
