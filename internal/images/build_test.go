package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/flatnet/flatnet"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestBuildContents checks each image's files, modes, owners and times layer by layer, and its
// config (entrypoint, user, labels, platform, times) against testdata/<name>.config.json.
func TestBuildContents(t *testing.T) {
	res, _ := build(t, amd64)
	size := func(bin string) int { return len(fakeELF(elf.EM_X86_64, false, bin+" linux/amd64 v1")) }
	base := []string{
		`0: etc/ 5 -rwxr-xr-x 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
		fmt.Sprintf(`0: etc/group 0 -rw-r--r-- 0:0 ""/"" %d 1970-01-01T00:00:00Z`, len(group)),
		fmt.Sprintf(`0: etc/passwd 0 -rw-r--r-- 0:0 ""/"" %d 1970-01-01T00:00:00Z`, len(passwd)),
		`0: root/ 5 -rwx------ 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
		`0: tmp/ 5 -rwxrwxrwx+sticky 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
	}
	for _, tc := range []struct {
		name  string
		files []string
		ep    []string
		user  string
	}{
		{
			name: "flatnet-ipamd",
			files: []string{
				`1: opt/ 5 -rwxr-xr-x 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
				`1: opt/cni/ 5 -rwxr-xr-x 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
				`1: opt/cni/bin/ 5 -rwxr-xr-x 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
				fmt.Sprintf(`1: opt/cni/bin/flatnet 0 -rwxr-xr-x 0:0 ""/"" %d 1970-01-01T00:00:00Z`, size("flatnet-cni")),
				`1: usr/ 5 -rwxr-xr-x 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
				`1: usr/bin/ 5 -rwxr-xr-x 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
				fmt.Sprintf(`1: usr/bin/flatnet-ipamd 0 -rwxr-xr-x 0:0 ""/"" %d 1970-01-01T00:00:00Z`, size("flatnet-ipamd")),
			},
			ep: []string{"/usr/bin/flatnet-ipamd"},
		},
		{
			name: "flatnet-lbcontroller",
			files: []string{
				`1: usr/ 5 -rwxr-xr-x 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
				`1: usr/bin/ 5 -rwxr-xr-x 0:0 ""/"" 0 1970-01-01T00:00:00Z`,
				fmt.Sprintf(`1: usr/bin/flatnet-lbcontroller 0 -rwxr-xr-x 0:0 ""/"" %d 1970-01-01T00:00:00Z`, size("flatnet-lbcontroller")),
			},
			ep:   []string{"/usr/bin/flatnet-lbcontroller"},
			user: "65532:65532",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := DefaultRegistry + "/" + tc.name + ":" + flatnet.Version
			img, err := Lookup(res.Layout, ref, amd64)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(append(append([]string{}, base...), tc.files...), layerFiles(t, img)); diff != "" {
				t.Errorf("layers (-want +got):\n%s", diff)
			}
			ep, cmd, env, wd, user, err := ImageConfig(img)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.ep, ep); diff != "" || cmd != nil || wd != "" || user != tc.user {
				t.Errorf("entrypoint %q (-want +got %s), cmd %q, workdir %q, user %q (want %q)", ep, diff, cmd, wd, user, tc.user)
			}
			if diff := cmp.Diff([]string{defaultPath}, env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			wantLabels := map[string]string{
				LabelTitle: tc.name, LabelVersion: flatnet.Version, LabelSource: Source,
				LabelDescription: cf.Config.Labels[LabelDescription],
			}
			if diff := cmp.Diff(wantLabels, cf.Config.Labels); diff != "" || cf.Config.Labels[LabelDescription] == "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Equal(time.Unix(0, 0)) {
				t.Errorf("config: os %q, architecture %q, created %s", cf.OS, cf.Architecture, cf.Created)
			}
			raw, err := json.MarshalIndent(cf, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			// The version label reads VERSION in the golden file, which stays right when VERSION changes.
			raw = bytes.ReplaceAll(raw, []byte(`"`+flatnet.Version+`"`), []byte(`"VERSION"`))
			golden(t, filepath.Join("testdata", tc.name+".config.json"), append(raw, '\n'))
		})
	}
}

// golden compares got with the file at p, or rewrites it with -update.
func golden(t *testing.T, p string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got; go test -update rewrites it):\n%s", p, diff)
	}
}

// TestBuildReproducible builds twice from the same binaries into two directories, the platforms
// given in another order: every file of the output is the same, byte for byte. Then a changed
// binary, or another SOURCE_DATE_EPOCH, changes the digests (so the comparison can fail).
func TestBuildReproducible(t *testing.T) {
	bins := binDirs(t, t.TempDir(), amd64, arm64)
	run := func(ps ...Platform) Result {
		t.Helper()
		res, err := Build(context.Background(), Options{Platforms: ps, BinDir: bins, Out: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := run(amd64, arm64), run(arm64, amd64)
	if diff := cmp.Diff(a.Images, b.Images); diff != "" {
		t.Fatalf("digests differ between two builds (-first +second):\n%s", diff)
	}
	filesA, filesB := contents(t, filepath.Dir(a.Layout)), contents(t, filepath.Dir(b.Layout))
	if diff := cmp.Diff(filesA, filesB); diff != "" {
		t.Fatalf("outputs differ (-first +second):\n%s", diff)
	}
	if len(filesA) < 10 {
		t.Fatalf("output has only %d files: %v", len(filesA), filesA)
	}

	// Another time: every digest changes.
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	c := run(amd64, arm64)
	for ref, d := range a.Images {
		if c.Images[ref] == d {
			t.Errorf("%s: SOURCE_DATE_EPOCH did not change the digest %s", ref, d)
		}
	}
	img, err := Lookup(c.Layout, Names("", "")[0], amd64)
	if err != nil {
		t.Fatal(err)
	}
	if cf, _ := img.ConfigFile(); !cf.Created.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %s, want SOURCE_DATE_EPOCH's time", cf.Created)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")

	// Another lbcontroller binary: its image changes, ipamd's does not.
	dir, _ := bins(arm64)
	writeFile(t, filepath.Join(dir, "flatnet-lbcontroller"), fakeELF(elf.EM_AARCH64, false, "changed"), 0o755)
	d := run(amd64, arm64)
	ipamd, lbc := Names("", "")[0], Names("", "")[1]
	if d.Images[ipamd] != a.Images[ipamd] || d.Images[lbc] == a.Images[lbc] {
		t.Errorf("after changing the lbcontroller binary: ipamd %s -> %s (want same), lbcontroller %s -> %s (want changed)",
			a.Images[ipamd], d.Images[ipamd], a.Images[lbc], d.Images[lbc])
	}
}

// contents maps every file under dir to its bytes' digest.
func contents(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h, _, _ := v1.SHA256(bytes.NewReader(b))
		rel, _ := filepath.Rel(dir, p)
		out[rel] = h.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBuildMultiArch builds for amd64 and arm64 from each platform's own binaries: each index
// has one manifest per platform, and Lookup finds each platform's binaries.
func TestBuildMultiArch(t *testing.T) {
	res, o := build(t, amd64, arm64)
	if diff := cmp.Diff(Names("", ""), refsOf(res)); diff != "" {
		t.Errorf("refs (-want +got):\n%s", diff)
	}
	lp, err := layout.FromPath(res.Layout)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(ii); err != nil {
		t.Errorf("the layout does not validate: %v", err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		ref := d.Annotations[AnnotationRefName]
		if d.MediaType != "application/vnd.oci.image.index.v1+json" || res.Images[ref] != d.Digest.String() {
			t.Errorf("index.json: %s is a %s of digest %s, want an OCI index of digest %s", ref, d.MediaType, d.Digest, res.Images[ref])
		}
		idx, err := ii.ImageIndex(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := idx.IndexManifest()
		var plats []string
		for _, c := range m.Manifests {
			plats = append(plats, c.Platform.OS+"/"+c.Platform.Architecture+" "+string(c.MediaType))
			if c.ArtifactType != "" {
				t.Errorf("%s: the %s manifest has artifactType %q: an image is no artifact", ref, c.Platform.Architecture, c.ArtifactType)
			}
		}
		want := []string{"linux/amd64 application/vnd.oci.image.manifest.v1+json", "linux/arm64 application/vnd.oci.image.manifest.v1+json"}
		if diff := cmp.Diff(want, plats); diff != "" {
			t.Errorf("%s: manifests (-want +got):\n%s", ref, diff)
		}
	}
	for _, p := range o.Platforms {
		img, err := Lookup(res.Layout, Names("", "")[0], p)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "root")
		if err := Unpack(img, dir); err != nil {
			t.Fatal(err)
		}
		bins, _ := o.BinDir(p)
		for bin, in := range map[string]string{"flatnet-ipamd": "usr/bin/flatnet-ipamd", "flatnet-cni": "opt/cni/bin/flatnet"} {
			want, _ := os.ReadFile(filepath.Join(bins, bin))
			got, err := os.ReadFile(filepath.Join(dir, in))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: /%s is not %s's %s (err %v)", p, in, p, bin, err)
			}
		}
		if cf, _ := img.ConfigFile(); cf.Architecture != p.Arch {
			t.Errorf("Lookup for %s gave an image for %s", p, cf.Architecture)
		}
	}
	_, err = Lookup(res.Layout, Names("", "")[1], Platform{OS: "linux", Arch: "s390x"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "has no image for linux/s390x; it has linux/amd64, linux/arm64") {
		t.Errorf("Lookup of a platform not built: %v, want ErrNotFound listing linux/amd64, linux/arm64", err)
	}
}

func refsOf(r Result) []string {
	var refs []string
	for _, n := range Names("", "") {
		if _, ok := r.Images[n]; ok {
			refs = append(refs, n)
		}
	}
	return refs
}

// TestBuildAddsToLayout builds two tags into one output directory, as the lab does for an
// upgrade: both stay; building a tag again replaces that tag's images only.
func TestBuildAddsToLayout(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	bins := binDirs(t, root, amd64)
	run := func(tag string) Result {
		t.Helper()
		res, err := Build(context.Background(), Options{Registry: "example.com/lab", Tag: tag, BinDir: bins, Out: out, Platforms: []Platform{amd64}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	v1res, v2res := run("v1"), run("v2")
	writeBins(t, filepath.Join(root, "linux_amd64"), amd64, "changed")
	v1again := run("v1")
	var refs []string // in index.json's order: by name
	for _, name := range []string{"flatnet-ipamd", "flatnet-lbcontroller"} {
		for _, tag := range []string{"v1", "v2"} {
			ref := "example.com/lab/" + name + ":" + tag
			refs = append(refs, ref)
			img, err := Lookup(filepath.Join(out, "oci"), ref, amd64)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			if d.String() == "" {
				t.Errorf("%s: no digest", ref)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "oci", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range im.Manifests {
		got = append(got, d.Annotations[AnnotationRefName]+" "+d.Digest.String())
	}
	want := []string{}
	for _, r := range refs {
		d := v2res.Images[r]
		if strings.HasSuffix(r, ":v1") {
			d = v1again.Images[r]
		}
		want = append(want, r+" "+d)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("index.json (-want +got):\n%s", diff)
	}
	for _, r := range Names("example.com/lab", "v1") {
		if v1res.Images[r] == v1again.Images[r] {
			t.Errorf("%s: rebuilt from other binaries with the same digest", r)
		}
	}
	for _, name := range []string{"flatnet-ipamd-v1.tar", "flatnet-ipamd-v2.tar", "flatnet-lbcontroller-v1.tar", "flatnet-lbcontroller-v2.tar"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}
}

// TestTarball reads each tarball as `ctr images import` does: an OCI layout whose index.json
// names one image index by its full reference, with every blob it needs.
func TestTarball(t *testing.T) {
	res, o := build(t, amd64, arm64)
	want := []string{filepath.Join(o.Out, "flatnet-ipamd-"+flatnet.Version+".tar"), filepath.Join(o.Out, "flatnet-lbcontroller-"+flatnet.Version+".tar")}
	if diff := cmp.Diff(want, res.Tarballs); diff != "" {
		t.Fatalf("tarballs (-want +got):\n%s", diff)
	}
	for i, tb := range res.Tarballs {
		ref := Names("", "")[i]
		dir := t.TempDir()
		names := untar(t, tb, dir)
		if names[0] != "oci-layout" || names[1] != "index.json" || names[2] != "blobs/" || names[3] != "blobs/sha256/" {
			t.Errorf("%s starts with %q", tb, names[:4])
		}
		b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		var im v1.IndexManifest
		if err := json.Unmarshal(b, &im); err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 1 || im.Manifests[0].Annotations[AnnotationRefName] != ref || im.Manifests[0].Digest.String() != res.Images[ref] {
			t.Errorf("%s: index.json %s, want one index %s named %s", tb, b, res.Images[ref], ref)
		}
		lp, err := layout.FromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		ii, _ := lp.ImageIndex()
		if err := validate.Index(ii); err != nil {
			t.Errorf("%s does not validate: %v", tb, err)
		}
		for _, p := range o.Platforms {
			if _, err := Lookup(dir, ref, p); err != nil {
				t.Errorf("%s: %v", tb, err)
			}
		}
	}
}

// untar extracts the regular files of the tarball at p into dir and returns its entry names.
func untar(t *testing.T, p, dir string) []string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: %s has owner %d:%d %q, time %s", p, h.Name, h.Uid, h.Gid, h.Uname, h.ModTime)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dst, b, 0o644)
	}
}

// TestBuildErrors checks that bad input fails with an error naming what was wrong.
func TestBuildErrors(t *testing.T) {
	ok := func(t *testing.T) Options {
		return Options{Platforms: []Platform{amd64}, BinDir: binDirs(t, t.TempDir(), amd64), Out: t.TempDir()}
	}
	replace := func(bin string, data []byte) func(t *testing.T, o *Options) {
		return func(t *testing.T, o *Options) {
			dir, _ := o.BinDir(amd64)
			writeFile(t, filepath.Join(dir, bin), data, 0o755)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, o *Options)
		is     error
		want   []string
	}{
		{"missing binary", func(t *testing.T, o *Options) {
			dir, _ := o.BinDir(amd64)
			os.Remove(filepath.Join(dir, "flatnet-cni"))
		}, fs.ErrNotExist, []string{"flatnet-cni for linux/amd64", "linux_amd64/flatnet-cni: no such file or directory", "GOARCH=amd64"}},
		{"binary for another arch", replace("flatnet-ipamd", fakeELF(elf.EM_AARCH64, false, "x")),
			ErrBadBinary, []string{"flatnet-ipamd for linux/amd64", "is built for arm64", "not for amd64"}},
		{"dynamically linked", replace("flatnet-lbcontroller", fakeELF(elf.EM_X86_64, true, "x")),
			ErrBadBinary, []string{"flatnet-lbcontroller for linux/amd64", "dynamically linked", "CGO_ENABLED=0"}},
		{"not an ELF file", replace("flatnet-ipamd", []byte("#!/bin/sh\necho hi\n")),
			ErrBadBinary, []string{"flatnet-ipamd for linux/amd64", "is not an ELF executable"}},
		{"empty binary", replace("flatnet-ipamd", nil),
			ErrBadBinary, []string{"flatnet-ipamd for linux/amd64", "not a regular, non-empty file"}},
		{"windows", func(_ *testing.T, o *Options) { o.Platforms = []Platform{{OS: "windows", Arch: "amd64"}} },
			nil, []string{"platform windows/amd64", "linux only"}},
		{"unknown arch", func(_ *testing.T, o *Options) { o.Platforms = []Platform{{OS: "linux", Arch: "mips"}} },
			nil, []string{"platform linux/mips", `unknown architecture "mips"`, "amd64, arm"}},
		{"platform twice", func(_ *testing.T, o *Options) { o.Platforms = []Platform{amd64, amd64} },
			nil, []string{"platform linux/amd64 given twice"}},
		{"bad tag", func(_ *testing.T, o *Options) { o.Tag = "v1:latest" },
			nil, []string{`tag "v1:latest"`}},
		{"bad registry", func(_ *testing.T, o *Options) { o.Registry = "https://ghcr.io/Flatnet" },
			nil, []string{`registry "https://ghcr.io/Flatnet"`, "no scheme"}},
		{"no BinDir", func(_ *testing.T, o *Options) { o.BinDir = nil },
			nil, []string{"BinDir is required"}},
		{"BinDir fails", func(_ *testing.T, o *Options) {
			o.BinDir = func(p Platform) (string, error) { return "", errors.New("no such build") }
		}, nil, []string{"binaries for linux/amd64: no such build"}},
		{"no Out", func(_ *testing.T, o *Options) { o.Out = "" },
			nil, []string{"Out is required"}},
		{"Out/oci not a layout", func(t *testing.T, o *Options) {
			os.MkdirAll(filepath.Join(o.Out, "oci"), 0o755)
			writeFile(t, filepath.Join(o.Out, "oci", "notes.txt"), []byte("mine"), 0o644)
		}, nil, []string{"oci exists and is not an OCI image layout"}},
		{"bad SOURCE_DATE_EPOCH", func(t *testing.T, _ *Options) { t.Setenv("SOURCE_DATE_EPOCH", "yesterday") },
			nil, []string{`SOURCE_DATE_EPOCH="yesterday"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok(t)
			tc.change(t, &o)
			_, err := Build(context.Background(), o)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestParsePlatforms(t *testing.T) {
	ps, err := ParsePlatforms("linux/amd64, linux/arm64")
	if diff := cmp.Diff([]Platform{amd64, arm64}, ps); err != nil || diff != "" {
		t.Errorf("ParsePlatforms: %v (-want +got):\n%s", err, diff)
	}
	for in, want := range map[string]string{
		"":                 "want os/arch",
		"linux":            "want os/arch",
		"linux/":           "want os/arch",
		"linux/arm64/v8":   "no variant",
		"darwin/arm64":     "linux only",
		"linux/amd64,x/y":  "platform x/y",
		"linux/amd64,,":    "want os/arch",
		"linux/sparc":      `unknown architecture "sparc"`,
		"linux/amd64;more": "unknown architecture",
	} {
		if _, err := ParsePlatforms(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePlatforms(%q) = %v, want an error saying %q", in, err, want)
		}
	}
}

func TestNames(t *testing.T) {
	want := []string{"ghcr.io/flatnet/flatnet-ipamd:" + flatnet.Version, "ghcr.io/flatnet/flatnet-lbcontroller:" + flatnet.Version}
	if diff := cmp.Diff(want, Names("", "")); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	want = []string{"localhost:5000/x/flatnet-ipamd:dev", "localhost:5000/x/flatnet-lbcontroller:dev"}
	if diff := cmp.Diff(want, Names("localhost:5000/x/", "dev")); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
}

// TestBuildStored: Stored images hold the same files as compressed ones (the same diff IDs and
// entries), with layers that gzip frames without compressing; validate reads them as images.
func TestBuildStored(t *testing.T) {
	bins := binDirs(t, t.TempDir(), amd64)
	run := func(stored bool) Result {
		t.Helper()
		res, err := Build(context.Background(), Options{Platforms: []Platform{amd64}, BinDir: bins, Out: t.TempDir(), Stored: stored})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	packed, stored := run(false), run(true)
	for _, name := range Names("", "") {
		a, err := Lookup(packed.Layout, name, amd64)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Lookup(stored.Layout, name, amd64)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(b); err != nil {
			t.Errorf("%s stored: %v", name, err)
		}
		ca, err := a.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cb, err := b.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ca.RootFS.DiffIDs, cb.RootFS.DiffIDs); diff != "" {
			t.Errorf("%s: the stored layers' contents differ (-compressed +stored):\n%s", name, diff)
		}
		if diff := cmp.Diff(layerFiles(t, a), layerFiles(t, b)); diff != "" {
			t.Errorf("%s: the stored image's files differ (-compressed +stored):\n%s", name, diff)
		}
		la, err := a.Layers()
		if err != nil {
			t.Fatal(err)
		}
		lb, err := b.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(la) != len(lb) {
			t.Fatalf("%s: %d layers compressed, %d stored", name, len(la), len(lb))
		}
		for i := range lb {
			size, err := lb[i].Size()
			if err != nil {
				t.Fatal(err)
			}
			packedSize, err := la[i].Size()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := lb[i].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, raw)
			raw.Close()
			if size < n || size <= packedSize {
				t.Errorf("%s layer %d: %d bytes stored for %d of tar (%d compressed): want the tar's bytes and gzip's framing",
					name, i, size, n, packedSize)
			}
		}
	}
}

// TestBuildStreamsLayers: Build streams each layer through a file instead of holding it in
// memory, so what it allocates does not grow with the binaries' size, and it leaves no
// scratch files behind. (Layers built in growing buffers stalled the whole process: a copy of
// tens of megabytes into fresh pages could not be preempted, and the lab's load clients timed
// out behind it.)
func TestBuildStreamsLayers(t *testing.T) {
	const pad = 32 << 20
	dir := t.TempDir()
	for _, n := range binNames {
		raw := append(fakeELF(elfMachines[amd64.Arch], false, n), make([]byte, pad)...)
		writeFile(t, filepath.Join(dir, n), raw, 0o755)
	}
	out := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where Build's scratch directory goes
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := Build(context.Background(), Options{Platforms: []Platform{amd64}, Out: out, Stored: true,
		BinDir: func(Platform) (string, error) { return dir, nil }})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	content := int64(len(binNames)) * pad
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Build allocated %.1f MB for %d MB of binaries", float64(alloc)/(1<<20), content>>20)
	if alloc > uint64(content/4) {
		t.Errorf("Build allocated %d MB for %d MB of binaries: the layers are held in memory, not streamed", alloc>>20, content>>20)
	}
	// The stored layers do hold the binaries (the padding was not lost on the way).
	var layers int64
	for _, name := range Names("", "") {
		img, err := Lookup(res.Layout, name, amd64)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			n, err := l.Size()
			if err != nil {
				t.Fatal(err)
			}
			layers += n
		}
	}
	if layers < content {
		t.Errorf("the images' layers hold %d bytes, less than the %d bytes of binaries", layers, content)
	}
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
		t.Errorf("Build left %v in the temporary directory (%v): its scratch directory is not removed", ents, err)
	}
}
