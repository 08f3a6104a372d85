package images

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ErrBadBinary says a binary Build was to put in an image is missing or is not a static Linux
// executable for the image's platform.
var ErrBadBinary = errors.New("unusable binary")

// entry is one file or directory of a layer being built.
type entry struct {
	path string // in the image, relative to its root: "usr/bin/flatnet-ipamd"
	mode int64  // permission bits, with tar's setuid/setgid/sticky bits
	dir  bool
	data []byte // a small file's content
	src  string // or the file to copy in (a binary)
	size int64  // src's size
}

// The base layer's files: a root and a nonroot user (65532, as distroless names it) for images
// that run as either, and a world-writable /tmp.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n"
	group  = "root:x:0:\nnonroot:x:65532:\n"
)

// baseLayer is the layer every image starts from: scratch plus /etc/passwd, /etc/group, /root
// and /tmp, written into the directory scratch.
func baseLayer(scratch string, created time.Time, level int) (v1.Layer, error) {
	return layerOf([]entry{
		{path: "etc", mode: 0o755, dir: true},
		{path: "etc/group", mode: 0o644, data: []byte(group)},
		{path: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "root", mode: 0o700, dir: true},
		{path: "tmp", mode: 0o1777, dir: true},
	}, scratch, created, level)
}

// binaryLayer is the layer of an image's binaries, read from dir and checked for platform p,
// with their parent directories, written into the directory scratch.
func binaryLayer(files []file, dir string, p Platform, scratch string, created time.Time, level int) (v1.Layer, error) {
	var es []entry
	dirs := map[string]bool{}
	for _, f := range files {
		src := filepath.Join(dir, f.bin)
		size, err := checkBinary(src, f.bin, p)
		if err != nil {
			return nil, err
		}
		rel := strings.TrimPrefix(f.path, "/")
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				es = append(es, entry{path: d, mode: 0o755, dir: true})
			}
		}
		es = append(es, entry{path: rel, mode: 0o755, src: src, size: size})
	}
	return layerOf(es, scratch, created, level)
}

// layerOf writes entries as a reproducible layer: sorted (a parent before its children), every
// header with the same time, owner 0:0 and no user or group names, gzip with no name or time.
// The compressed stream goes to a file in the directory scratch, hashed on the way: a layer is
// tens of megabytes, and building it in memory meant growing a buffer of that size, whose
// copies into fresh pages stall every goroutine of the process (the garbage collector's
// stop-the-world waits for a copy, which cannot be preempted) for up to seconds on a virtual
// machine; half a second even when the layer is compressed.
func layerOf(entries []entry, scratch string, created time.Time, level int) (_ v1.Layer, err error) {
	es := slices.Clone(entries)
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	f, err := os.CreateTemp(scratch, "layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	digest := sha256.New()
	buf := bufio.NewWriterSize(io.MultiWriter(f, digest), 1<<20)
	zw, err := gzip.NewWriterLevel(buf, level)
	if err != nil {
		return nil, err
	}
	diffID := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diffID))
	for _, e := range es {
		if err := writeEntry(tw, e, created); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := buf.Flush(); err != nil {
		return nil, fmt.Errorf("write the layer to %s: %w", f.Name(), err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	return &fileLayer{
		path:   f.Name(),
		size:   size,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(digest.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diffID.Sum(nil))},
	}, nil
}

func writeEntry(tw *tar.Writer, e entry, created time.Time) error {
	h := &tar.Header{Name: e.path, Mode: e.mode, ModTime: created}
	switch {
	case e.dir:
		h.Typeflag, h.Name = tar.TypeDir, e.path+"/"
	case e.src != "":
		h.Typeflag, h.Size = tar.TypeReg, e.size
	default:
		h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("layer entry %s: %w", e.path, err)
	}
	switch {
	case e.src != "":
		f, err := os.Open(e.src)
		if err != nil {
			return err
		}
		defer f.Close()
		// A binary that changed size since checkBinary fails here (short or long write).
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("copy %s into the layer: %w", e.src, err)
		}
	case !e.dir:
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return nil
}

// elfMachines are the ELF machines of the architectures Build knows.
var elfMachines = map[string]elf.Machine{
	"386":     elf.EM_386,
	"amd64":   elf.EM_X86_64,
	"arm":     elf.EM_ARM,
	"arm64":   elf.EM_AARCH64,
	"ppc64le": elf.EM_PPC64,
	"riscv64": elf.EM_RISCV,
	"s390x":   elf.EM_S390,
}

// checkBinary returns the size of the binary at src, named bin, after checking that it is a
// static ELF executable for p: a dynamically linked one would not start in an image without a
// libc, and one for another architecture means BinDir gave the wrong platform's directory.
func checkBinary(src, bin string, p Platform) (int64, error) {
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s for %s: %w; build it first (CGO_ENABLED=0 GOOS=%s GOARCH=%s go build ./cmd/%s)",
			ErrBadBinary, bin, p, err, p.OS, p.Arch, bin)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s for %s: %w", ErrBadBinary, bin, p, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return 0, fmt.Errorf("%w: %s for %s: %s is not a regular, non-empty file", ErrBadBinary, bin, p, src)
	}
	f, err := elf.Open(src)
	if err != nil {
		return 0, fmt.Errorf("%w: %s for %s: %s is not an ELF executable: %w", ErrBadBinary, bin, p, src, err)
	}
	defer f.Close()
	if want := elfMachines[p.Arch]; f.Machine != want || p.Arch == "ppc64le" && f.ByteOrder != binary.LittleEndian {
		return 0, fmt.Errorf("%w: %s for %s: %s is built for %s (%s), not for %s: does BinDir return the right directory for each platform?",
			ErrBadBinary, bin, p, src, archOf(f), f.Machine, p.Arch)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return 0, fmt.Errorf("%w: %s for %s: %s is an ELF %s, not an executable", ErrBadBinary, bin, p, src, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return 0, fmt.Errorf("%w: %s for %s: %s is dynamically linked, and the images have no libc: build it with CGO_ENABLED=0",
				ErrBadBinary, bin, p, src)
		}
	}
	return fi.Size(), nil
}

// archOf names the GOARCH an ELF file is for, or "another architecture".
func archOf(f *elf.File) string {
	for arch, m := range elfMachines {
		if m == f.Machine && (arch != "ppc64le" || f.ByteOrder == binary.LittleEndian) {
			return arch
		}
	}
	return "another architecture"
}

// fileLayer is a compressed layer in a file, with the digests layerOf computed while writing
// it.
type fileLayer struct {
	path           string
	size           int64
	digest, diffID v1.Hash
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)     { return l.size, nil }

func (l *fileLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func (l *fileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("layer %s: %w", l.path, err)
	}
	return &gzipFile{Reader: zr, f: f}, nil
}

// gzipFile reads a gzip stream from a file and closes both.
type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g *gzipFile) Close() error { return errors.Join(g.Reader.Close(), g.f.Close()) }
