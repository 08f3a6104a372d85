package images

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ociLayoutFile is the content of a layout's oci-layout file (OCI image layout spec).
const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

// blob is one content-addressed file of a layout.
type blob struct {
	digest v1.Hash
	size   int64
	open   func() (io.ReadCloser, error)
}

func bytesBlob(d v1.Hash, b []byte) blob {
	return blob{digest: d, size: int64(len(b)), open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// write writes the built images into the layout in o.Out and one tarball per image.
func write(ctx context.Context, o Options, built []builtImage) (Result, error) {
	dir := layoutDir(o.Out)
	if err := prepareLayout(dir); err != nil {
		return Result{}, err
	}
	res := Result{Layout: dir, Images: map[string]string{}}
	descs := make([]v1.Descriptor, len(built))
	blobLists := make([][]blob, len(built))
	for i, b := range built {
		blobs, err := blobsOf(b.idx)
		if err != nil {
			return Result{}, fmt.Errorf("image %s: %w", b.ref, err)
		}
		for _, bl := range blobs {
			if err := ctx.Err(); err != nil {
				return Result{}, err
			}
			if err := writeBlob(dir, bl); err != nil {
				return Result{}, fmt.Errorf("image %s: %w", b.ref, err)
			}
		}
		desc, err := partial.Descriptor(b.idx)
		if err != nil {
			return Result{}, err
		}
		desc.Annotations = map[string]string{AnnotationRefName: b.ref}
		descs[i], blobLists[i] = *desc, blobs
		res.Images[b.ref] = desc.Digest.String()
	}
	// index.json last: a reader of the layout never sees a reference whose blobs are not there.
	if err := updateIndex(dir, descs); err != nil {
		return Result{}, err
	}
	for i, b := range built {
		p := tarballPath(o.Out, b.spec.name, o.Tag)
		if err := writeTarball(p, descs[i], blobLists[i], o.Created); err != nil {
			return Result{}, fmt.Errorf("tarball of %s: %w", b.ref, err)
		}
		res.Tarballs = append(res.Tarballs, p)
	}
	return res, nil
}

// prepareLayout makes dir an empty layout unless it is one already.
func prepareLayout(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	switch {
	case err == nil:
		var l struct{ ImageLayoutVersion string }
		if json.Unmarshal(b, &l) != nil || l.ImageLayoutVersion != "1.0.0" {
			return fmt.Errorf("%s/oci-layout is not an OCI image layout 1.0.0 marker: remove %s or choose another output directory", dir, dir)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s exists and is not an OCI image layout (no oci-layout file): remove it or choose another output directory", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "index.json"), indexJSON(nil)); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "oci-layout"), []byte(ociLayoutFile))
}

// blobsOf lists every blob of idx once, sorted by digest: the index, its image manifests, their
// configs and layers.
func blobsOf(idx v1.ImageIndex) ([]blob, error) {
	seen := map[v1.Hash]blob{}
	raw, err := idx.RawManifest()
	if err != nil {
		return nil, err
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	seen[d] = bytesBlob(d, raw)
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, err
		}
		if err := imageBlobs(img, seen); err != nil {
			return nil, err
		}
	}
	blobs := make([]blob, 0, len(seen))
	for _, b := range seen {
		blobs = append(blobs, b)
	}
	slices.SortFunc(blobs, func(a, b blob) int { return cmp.Compare(a.digest.String(), b.digest.String()) })
	return blobs, nil
}

func imageBlobs(img v1.Image, seen map[v1.Hash]blob) error {
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	seen[d] = bytesBlob(d, raw)
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cd, err := img.ConfigName()
	if err != nil {
		return err
	}
	seen[cd] = bytesBlob(cd, cfg)
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			return err
		}
		size, err := l.Size()
		if err != nil {
			return err
		}
		seen[ld] = blob{digest: ld, size: size, open: l.Compressed}
	}
	return nil
}

// writeBlob writes b into the layout unless a blob of that digest and size is there: written to
// a temporary file and renamed, so a blob's name never stands for a partial file.
func writeBlob(dir string, b blob) error {
	p := filepath.Join(dir, "blobs", b.digest.Algorithm, b.digest.Hex)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == b.size {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	rc, err := b.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeAtomic(p, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), rc)
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != b.digest.Hex || n != b.size {
			return fmt.Errorf("blob %s: wrote %d bytes of digest sha256:%s, want %d bytes", b.digest, n, got, b.size)
		}
		return nil
	})
}

// indexJSON is a layout's index.json listing descs.
func indexJSON(descs []v1.Descriptor) []byte {
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs}
	if im.Manifests == nil {
		im.Manifests = []v1.Descriptor{}
	}
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		panic(err) // a struct of strings and numbers always marshals
	}
	return append(b, '\n')
}

// updateIndex writes the layout's index.json: the descriptors already there, but for those of
// the references in descs, and descs; sorted by reference.
func updateIndex(dir string, descs []v1.Descriptor) error {
	p := filepath.Join(dir, "index.json")
	var old v1.IndexManifest
	switch b, err := os.ReadFile(p); {
	case errors.Is(err, fs.ErrNotExist): // an oci-layout file alone: an empty layout
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &old); err != nil {
			return fmt.Errorf("%s is not an OCI image index: %w", p, err)
		}
	}
	replaced := map[string]bool{}
	for _, d := range descs {
		replaced[d.Annotations[AnnotationRefName]] = true
	}
	var all []v1.Descriptor
	for _, d := range old.Manifests {
		if !replaced[d.Annotations[AnnotationRefName]] {
			all = append(all, d)
		}
	}
	all = append(all, descs...)
	slices.SortStableFunc(all, func(a, b v1.Descriptor) int {
		return cmp.Or(cmp.Compare(a.Annotations[AnnotationRefName], b.Annotations[AnnotationRefName]),
			cmp.Compare(a.Digest.String(), b.Digest.String()))
	})
	return writeFileAtomic(p, indexJSON(all))
}

// writeTarball writes an OCI layout holding the one image index desc and its blobs as a tar
// file at p: what `ctr images import` and `kind load image-archive` read. Reproducible as the
// layers are: fixed order, times and owners.
func writeTarball(p string, desc v1.Descriptor, blobs []blob, created time.Time) error {
	return writeAtomic(p, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		hdr := func(name string, typ byte, mode, size int64) error {
			return tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: created})
		}
		small := func(name string, data []byte) error {
			if err := hdr(name, tar.TypeReg, 0o644, int64(len(data))); err != nil {
				return err
			}
			_, err := tw.Write(data)
			return err
		}
		if err := small("oci-layout", []byte(ociLayoutFile)); err != nil {
			return err
		}
		if err := small("index.json", indexJSON([]v1.Descriptor{desc})); err != nil {
			return err
		}
		if err := hdr("blobs/", tar.TypeDir, 0o755, 0); err != nil {
			return err
		}
		if err := hdr("blobs/sha256/", tar.TypeDir, 0o755, 0); err != nil {
			return err
		}
		for _, b := range blobs {
			if err := hdr("blobs/sha256/"+b.digest.Hex, tar.TypeReg, 0o644, b.size); err != nil {
				return err
			}
			rc, err := b.open()
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("blob %s: %w", b.digest, err)
			}
		}
		return tw.Close()
	})
}

func writeFileAtomic(p string, data []byte) error {
	return writeAtomic(p, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic writes p through fill into a temporary file beside it, synced, then renamed over
// p: p is the old file or the whole new one, never part of one.
func writeAtomic(p string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
