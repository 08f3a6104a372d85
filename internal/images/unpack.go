package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// UnpackMarker is the file Unpack leaves at the top of a directory it unpacked an image into,
// holding the image's digest: a later Unpack of the same image there does nothing. It is no
// file of the image: a runtime copying the tree skips it, and Unpack refuses a layer naming it.
const UnpackMarker = ".flatnet-image-digest"

// ErrUnsafeLayer says a layer has an entry Unpack refuses: a path or link leading outside the
// directory, or a kind of file it does not create (devices, FIFOs).
var ErrUnsafeLayer = errors.New("unsafe layer entry")

// Whiteout names (OCI image spec, layer changesets): .wh.NAME deletes NAME of the layers below,
// .wh..wh..opq in a directory deletes everything the layers below put in it.
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// Unpack writes img's filesystem, its layers applied in order with their whiteouts, into dir.
// Nothing is written outside dir: an entry whose path or link target leads out of it fails the
// unpack with an error wrapping ErrUnsafeLayer (all writes go through an os.Root, which also
// refuses to follow a symlink out of it). Modes, hard links and symlinks are kept; owners too
// when run as root. The image is unpacked into dir+".tmp" and renamed to dir when complete, so
// dir is never half an image; if dir already holds this image (its UnpackMarker says so) Unpack
// does nothing. A dir that exists otherwise is an error: Unpack does not delete what it did not
// write. Two Unpacks into the same dir at once are not supported.
func Unpack(img v1.Image, dir string) (err error) {
	if dir == "" {
		return errors.New("unpack: no directory given")
	}
	dir = filepath.Clean(dir)
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("unpack: the image's digest: %w", err)
	}
	digest := d.String()
	if done, err := unpacked(dir, digest); err != nil || done {
		return err
	}
	tmp := dir + ".tmp"
	// What a crashed Unpack left behind.
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("unpack: remove the leftover %s: %w", tmp, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := unpackInto(img, tmp, digest); err != nil {
		return fmt.Errorf("unpack image %s into %s: %w", digest, dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	// The rename reaches the disk, not only the files it names.
	f, err := os.Open(filepath.Dir(dir))
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("unpack: sync %s: %w", filepath.Dir(dir), err)
	}
	return nil
}

// unpacked says whether dir holds the image of digest already, and fails if dir exists holding
// anything else.
func unpacked(dir, digest string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, UnpackMarker))
	if err == nil {
		if got := strings.TrimSpace(string(b)); got != digest {
			return false, fmt.Errorf("unpack: %s holds image %s, not %s: remove it to unpack this one there", dir, got, digest)
		}
		return true, nil
	}
	if _, serr := os.Lstat(dir); errors.Is(serr, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("unpack: %s exists and was not written by Unpack (no %s in it): remove it or choose another directory", dir, UnpackMarker)
}

// unpackInto applies img's layers in dir, which is empty, and marks it with digest.
func unpackInto(img v1.Image, dir, digest string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	u := &unpacker{root: root, dirs: map[string]*tar.Header{}, chown: os.Geteuid() == 0}
	for i, l := range layers {
		if err := u.layer(l); err != nil {
			return fmt.Errorf("layer %d of %d: %w", i+1, len(layers), err)
		}
	}
	if err := u.finishDirs(); err != nil {
		return err
	}
	return root.WriteFile(UnpackMarker, []byte(digest+"\n"), 0o644)
}

// unpacker applies layers under root.
type unpacker struct {
	root  *os.Root
	dirs  map[string]*tar.Header // directories given by an entry, whose modes and times are set last
	chown bool
}

// layer applies one layer: its whiteouts first, as they delete only what the layers below made,
// whatever their place in the tar; then its files.
func (u *unpacker) layer(l v1.Layer) error {
	err := u.each(l, func(h *tar.Header, name string, _ io.Reader) error {
		base := path.Base(name)
		switch {
		case base == opaqueWhiteout:
			return u.opaque(path.Dir(name))
		case strings.HasPrefix(base, whiteoutPrefix):
			gone := strings.TrimPrefix(base, whiteoutPrefix)
			if gone == "" || gone == "." || gone == ".." {
				return fmt.Errorf("%w: whiteout %q names no file", ErrUnsafeLayer, h.Name)
			}
			return u.remove(path.Join(path.Dir(name), gone))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return u.each(l, func(h *tar.Header, name string, r io.Reader) error {
		if strings.HasPrefix(path.Base(name), whiteoutPrefix) {
			return nil
		}
		return u.entry(h, name, r)
	})
}

// each calls fn for every entry of l with its cleaned name; it reads the layer once.
func (u *unpacker) each(l v1.Layer, fn func(h *tar.Header, name string, r io.Reader) error) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the layer: %w", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue // the root itself: dir's own mode stays
		}
		if err := fn(h, name, tr); err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
	}
}

// cleanName is an entry's path relative to the root, or an error if it leads outside.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: an entry has no name", ErrUnsafeLayer)
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("%w: %q is an absolute path", ErrUnsafeLayer, name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: %q leads outside the directory", ErrUnsafeLayer, name)
	}
	return c, nil
}

// entry creates one file, directory or link.
func (u *unpacker) entry(h *tar.Header, name string, r io.Reader) error {
	if name == UnpackMarker {
		return fmt.Errorf("%w: %s is the name of Unpack's own marker", ErrUnsafeLayer, name)
	}
	if err := u.checkParents(name); err != nil {
		return err
	}
	if parent := path.Dir(name); parent != "." {
		if err := u.root.MkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		fi, err := u.root.Lstat(name)
		if err == nil && !fi.IsDir() {
			if err := u.remove(name); err != nil {
				return err
			}
		}
		if err != nil || !fi.IsDir() {
			// Writable by its owner until finishDirs gives it its mode: later entries go in it.
			if err := u.root.Mkdir(name, 0o700); err != nil {
				return err
			}
		}
		hc := *h
		u.dirs[name] = &hc
		return nil
	case tar.TypeReg, tar.TypeGNUSparse:
		if err := u.remove(name); err != nil {
			return err
		}
		f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return u.attrs(name, h)
	case tar.TypeSymlink:
		if err := checkSymlink(name, h.Linkname); err != nil {
			return err
		}
		if err := u.remove(name); err != nil {
			return err
		}
		if err := u.root.Symlink(h.Linkname, name); err != nil {
			return err
		}
		if u.chown {
			return u.root.Lchown(name, h.Uid, h.Gid)
		}
		return nil
	case tar.TypeLink:
		return u.hardLink(name, h.Linkname)
	default:
		return fmt.Errorf("%w: %s is a %s, which Unpack does not create", ErrUnsafeLayer, name, typeName(h.Typeflag))
	}
}

// checkParents fails if a directory on name's path is a symlink to an absolute path: os.Root
// would refuse it too, but this says why. (A relative symlink is followed, within the root.)
func (u *unpacker) checkParents(name string) error {
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		fi, err := u.root.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		target, err := u.root.Readlink(p)
		if err != nil {
			return err
		}
		if path.IsAbs(target) {
			return fmt.Errorf("%w: %s is under %s, a symlink to the absolute path %s, which Unpack does not follow",
				ErrUnsafeLayer, name, p, target)
		}
	}
	return nil
}

// checkSymlink fails if the symlink name -> target, relative, leads outside the root. An
// absolute target is kept: it means a path in the image, for the runtime to resolve within the
// container's root, and Unpack never follows it.
func checkSymlink(name, target string) error {
	if target == "" {
		return fmt.Errorf("%w: symlink %s has no target", ErrUnsafeLayer, name)
	}
	if path.IsAbs(target) {
		return nil
	}
	if to := path.Join(path.Dir(name), target); to == ".." || strings.HasPrefix(to, "../") {
		return fmt.Errorf("%w: symlink %s -> %s leads outside the directory", ErrUnsafeLayer, name, target)
	}
	return nil
}

// hardLink links name to target, a file already unpacked.
func (u *unpacker) hardLink(name, linkname string) error {
	target, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hard link %s: %w", name, err)
	}
	fi, err := u.root.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: hard link %s -> %s: no such file in the layers so far", ErrUnsafeLayer, name, linkname)
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: hard link %s -> %s: a directory", ErrUnsafeLayer, name, linkname)
	}
	if target == name {
		return nil
	}
	if err := u.remove(name); err != nil {
		return err
	}
	return u.root.Link(target, name)
}

// remove deletes name (a directory with its contents), if it is there.
func (u *unpacker) remove(name string) error {
	if _, err := u.root.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := u.checkParents(name); err != nil {
		return err
	}
	for d := range u.dirs {
		if d == name || strings.HasPrefix(d, name+"/") {
			delete(u.dirs, d)
		}
	}
	return u.root.RemoveAll(name)
}

// opaque empties dir of what the layers below put in it.
func (u *unpacker) opaque(dir string) error {
	if dir != "." {
		if err := u.checkParents(dir + "/x"); err != nil {
			return err
		}
	}
	f, err := u.root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := u.remove(path.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// attrs gives a file its owner (as root), mode and times.
func (u *unpacker) attrs(name string, h *tar.Header) error {
	if u.chown {
		if err := u.root.Lchown(name, h.Uid, h.Gid); err != nil {
			return err
		}
	}
	// After chown, which clears the setuid and setgid bits.
	mode := h.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if err := u.root.Chmod(name, mode); err != nil {
		return err
	}
	atime := h.AccessTime
	if atime.IsZero() {
		atime = h.ModTime
	}
	return u.root.Chtimes(name, atime, h.ModTime)
}

// finishDirs gives directories their modes and times, deepest first: a read-only directory's
// contents are in place, and no later write changes its time.
func (u *unpacker) finishDirs() error {
	names := make([]string, 0, len(u.dirs))
	for n := range u.dirs {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	for _, n := range names {
		if err := u.attrs(n, u.dirs[n]); err != nil {
			return fmt.Errorf("directory %s: %w", n, err)
		}
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	default:
		return fmt.Sprintf("tar entry of type %q", t)
	}
}
