package nodeagent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/flatnet/flatnet/internal/images"
)

// ImageBinary maps an image repository to a program on the node (--image-binary REPO=PATH):
// every tag and digest of the repository runs that program, as the entrypoint of a root of its
// own that holds nothing else. It is how the lab runs images it cannot pull, such as the Gateway
// API conformance suite's echo-basic, from programs built from source: the pod's volumes, env
// and args apply exactly as for an image of the layout.
type ImageBinary struct {
	Repository string // e.g. registry.k8s.io/gateway-api/echo-basic, no tag or digest
	Path       string // absolute; a static program (its root has no libraries)
}

func (b ImageBinary) String() string { return b.Repository + "=" + b.Path }

// ParseImageBinary reads REPO=PATH.
func ParseImageBinary(s string) (ImageBinary, error) {
	repo, path, ok := strings.Cut(s, "=")
	if !ok || repo == "" || path == "" {
		return ImageBinary{}, fmt.Errorf("--image-binary %q: want REPOSITORY=PATH, e.g. registry.k8s.io/gateway-api/echo-basic=/usr/local/bin/echo-basic", s)
	}
	if r := repository(repo); r != repo {
		return ImageBinary{}, fmt.Errorf("--image-binary %q: name the repository without tag or digest (%s): every tag runs the program", s, r)
	}
	if !filepath.IsAbs(path) {
		return ImageBinary{}, fmt.Errorf("--image-binary %q: the program's path must be absolute", s)
	}
	return ImageBinary{Repository: repo, Path: filepath.Clean(path)}, nil
}

// repository returns an image reference without its digest and tag: the tag is what follows the
// last ':' after the last '/' (a registry's port comes before a '/').
func repository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// imageBinaryFlag is --image-binary, repeatable.
type imageBinaryFlag []ImageBinary

func (f *imageBinaryFlag) String() string {
	var parts []string
	for _, b := range *f {
		parts = append(parts, b.String())
	}
	return strings.Join(parts, ",")
}

func (f *imageBinaryFlag) Set(s string) error {
	b, err := ParseImageBinary(s)
	if err != nil {
		return err
	}
	*f = append(*f, b)
	return nil
}

func (f *imageBinaryFlag) Type() string { return "REPO=PATH" }

// validateImageBinaries checks that each mapping names a distinct repository and a program that
// exists.
func validateImageBinaries(bins []ImageBinary) error {
	var errs []error
	seen := map[string]bool{}
	for _, b := range bins {
		if seen[b.Repository] {
			errs = append(errs, fmt.Errorf("--image-binary: repository %s is mapped twice", b.Repository))
		}
		seen[b.Repository] = true
		fi, err := os.Stat(b.Path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--image-binary %s: %w", b, err))
		case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
			errs = append(errs, fmt.Errorf("--image-binary %s: not an executable file", b))
		}
	}
	return errors.Join(errs...)
}

// imageBinaryFor returns the mapping whose repository is ref's.
func (c *Config) imageBinaryFor(ref string) (ImageBinary, bool) {
	repo := repository(ref)
	for _, b := range c.ImageBinaries {
		if b.Repository == repo {
			return b, true
		}
	}
	return ImageBinary{}, false
}

// binary returns the image of a host program: a root under the cache's directory holding the
// program as /<name> (its entrypoint) and an empty /tmp, made once per content and per agent.
func (c *imageCache) binary(b ImageBinary) (*ociImage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := "binary " + b.Repository
	if im := c.byRef[key]; im != nil {
		return im, nil
	}
	sum, err := fileSHA256(b.Path)
	if err != nil {
		return nil, fmt.Errorf("the program of image %s: %w", b.Repository, err)
	}
	digest := "sha256:" + sum
	root := filepath.Join(c.dir, "binary-"+sum)
	name := filepath.Base(b.Path)
	if err := binaryRoot(b.Path, root, name, digest); err != nil {
		return nil, fmt.Errorf("prepare the root of image %s: %w", b.Repository, err)
	}
	im := &ociImage{ref: b.Repository, digest: digest, root: root, entrypoint: []string{"/" + name}, uid: -1, gid: -1}
	c.byRef[key] = im
	return im, nil
}

// binaryRoot writes root with the program at /name, unless a complete one (its marker holds the
// digest) is there already.
func binaryRoot(src, root, name, digest string) error {
	marker := filepath.Join(root, images.UnpackMarker)
	if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) == digest {
		return nil
	}
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky); err != nil {
		return err
	}
	if err := copyProgram(src, filepath.Join(root, name)); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte(digest+"\n"), 0o644)
}

func copyProgram(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
