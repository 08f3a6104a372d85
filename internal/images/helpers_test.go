package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	amd64 = Platform{OS: "linux", Arch: "amd64"}
	arm64 = Platform{OS: "linux", Arch: "arm64"}
)

// binNames are the binaries Build reads from a platform's directory.
var binNames = []string{"flatnet-ipamd", "flatnet-cni", "flatnet-lbcontroller"}

// fakeELF is a minimal 64-bit little-endian ELF executable header for machine, followed by
// payload; with interp, it asks for a dynamic loader as a dynamically linked binary does.
// debug/elf reads it as a real binary's header; it does not run.
func fakeELF(machine elf.Machine, interp bool, payload string) []byte {
	var b bytes.Buffer
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Ehsize: 64, Phentsize: 56, Shentsize: 64,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	if interp {
		h.Phoff, h.Phnum = 64, 1
	}
	binary.Write(&b, binary.LittleEndian, h)
	if interp {
		loader := "/lib64/ld-linux-x86-64.so.2\x00"
		binary.Write(&b, binary.LittleEndian, elf.Prog64{
			Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: 64 + 56,
			Filesz: uint64(len(loader)), Memsz: uint64(len(loader)), Align: 1,
		})
		b.WriteString(loader)
	}
	b.WriteString(payload)
	return b.Bytes()
}

// writeBins writes the three binaries for p into dir, each a fake ELF whose payload names the
// binary, the platform and tag (so that tests can tell builds apart).
func writeBins(t *testing.T, dir string, p Platform, tag string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range binNames {
		writeFile(t, filepath.Join(dir, n), fakeELF(elfMachines[p.Arch], false, n+" "+p.String()+" "+tag), 0o755)
	}
}

func writeFile(t *testing.T, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// binDirs returns a BinDir giving root/<os>_<arch>, and writes binaries there for ps.
func binDirs(t *testing.T, root string, ps ...Platform) func(Platform) (string, error) {
	t.Helper()
	for _, p := range ps {
		writeBins(t, filepath.Join(root, p.OS+"_"+p.Arch), p, "v1")
	}
	return func(p Platform) (string, error) { return filepath.Join(root, p.OS+"_"+p.Arch), nil }
}

// build runs Build with fake binaries for ps into a new directory.
func build(t *testing.T, ps ...Platform) (Result, Options) {
	t.Helper()
	o := Options{Platforms: ps, BinDir: binDirs(t, t.TempDir(), ps...), Out: t.TempDir()}
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return res, o
}

// tarEntry is an entry of a hand-made layer.
type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	data       string
}

func reg(name, data string, mode int64) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, mode: mode, data: data}
}
func dirEntry(name string, mode int64) tarEntry {
	return tarEntry{name: name, typ: tar.TypeDir, mode: mode}
}
func symlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// tarOf writes entries as an uncompressed tar, as they are: no cleaning, any order.
func tarOf(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode,
			Size: int64(len(e.data)), ModTime: time.Unix(1e9, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageOf is an image of hand-made layers, bottom first.
func imageOf(t testing.TB, layers ...[]byte) v1.Image {
	t.Helper()
	img := empty.Image
	for _, raw := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(raw)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// tree lists what is under dir: "path mode" for each entry, "path -> target" for symlinks.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := filepath.ToSlash(rel) + " " + fi.Mode().String()
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line = filepath.ToSlash(rel) + " -> " + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// layerFiles lists the entries of img's layers: "layer: path type mode uid:gid size mtime".
func layerFiles(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d: %s %c %s%s %d:%d %q/%q %d %s", i, h.Name, h.Typeflag,
				fs.FileMode(h.Mode).Perm(), modeBits(h.Mode), h.Uid, h.Gid, h.Uname, h.Gname, h.Size,
				h.ModTime.UTC().Format(time.RFC3339)))
		}
		rc.Close()
	}
	return out
}

func modeBits(m int64) string {
	var s []string
	if m&0o1000 != 0 {
		s = append(s, "+sticky")
	}
	if m&0o4000 != 0 {
		s = append(s, "+setuid")
	}
	return strings.Join(s, "")
}
