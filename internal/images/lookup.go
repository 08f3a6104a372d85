package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// ErrNotFound says a layout has no image of a reference, or none for a platform.
var ErrNotFound = errors.New("not in the image layout")

// Lookup returns the image for platform p of the reference ref (the full name, as index.json's
// org.opencontainers.image.ref.name annotation holds it) in the OCI layout at layoutDir,
// through a multi-arch index if ref names one. The error for a reference or platform the layout
// lacks wraps ErrNotFound and lists what the layout has.
func Lookup(layoutDir, ref string, p Platform) (v1.Image, error) {
	if _, err := os.Stat(filepath.Join(layoutDir, "index.json")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an OCI image layout (no index.json); build one with make images: %w", layoutDir, err)
		}
		return nil, err
	}
	lp, err := layout.FromPath(layoutDir)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", layoutDir, err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", layoutDir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: index.json: %w", layoutDir, err)
	}
	var found []v1.Descriptor
	var refs []string
	for _, d := range im.Manifests {
		name := d.Annotations[AnnotationRefName]
		if name != "" {
			refs = append(refs, name)
		}
		if name == ref {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: %s: the layout %s has %s", ErrNotFound, ref, layoutDir, listOr(refs, "no named image"))
	case 1:
	default:
		return nil, fmt.Errorf("the layout %s names %d images %s: rebuild it, or remove all but one from its index.json", layoutDir, len(found), ref)
	}
	img, err := resolve(ii, found[0], ref, p)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", layoutDir, err)
	}
	return img, nil
}

// resolve returns the image for p that descriptor d of parent leads to.
func resolve(parent v1.ImageIndex, d v1.Descriptor, ref string, p Platform) (v1.Image, error) {
	switch {
	case d.MediaType.IsIndex():
		idx, err := parent.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: index %s: %w", ref, d.Digest, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("%s: index %s: %w", ref, d.Digest, err)
		}
		var have []string
		for _, m := range im.Manifests {
			if m.Platform == nil {
				// No platform on the descriptor: its config (or its own index) says.
				if img, err := resolve(idx, m, ref, p); err == nil {
					return img, nil
				} else if !errors.Is(err, ErrNotFound) {
					return nil, err
				}
				continue
			}
			have = append(have, m.Platform.OS+"/"+m.Platform.Architecture)
			if m.Platform.OS == p.OS && m.Platform.Architecture == p.Arch {
				return resolve(idx, m, ref, p)
			}
		}
		return nil, fmt.Errorf("%w: %s has no image for %s; it has %s", ErrNotFound, ref, p, listOr(have, "none with a platform"))
	case d.MediaType.IsImage():
		img, err := parent.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: image %s: %w", ref, d.Digest, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("%s: image %s: its config: %w", ref, d.Digest, err)
		}
		if cf.OS != p.OS || cf.Architecture != p.Arch {
			return nil, fmt.Errorf("%w: %s is an image for %s/%s only, not for %s", ErrNotFound, ref, cf.OS, cf.Architecture, p)
		}
		return img, nil
	default:
		return nil, fmt.Errorf("%s: %s has media type %q, neither an image nor an index", ref, d.Digest, d.MediaType)
	}
}

func listOr(names []string, none string) string {
	if len(names) == 0 {
		return none
	}
	names = slices.Clone(names)
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ", ")
}

// ImageConfig returns how img says to start it: its entrypoint, command, environment
// ("KEY=value"), working directory and user ("", "uid" or "uid:gid", or names).
func ImageConfig(img v1.Image) (entrypoint, cmd, env []string, workdir, user string, err error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, nil, "", "", fmt.Errorf("read the image's config: %w", err)
	}
	c := cf.Config
	return slices.Clone(c.Entrypoint), slices.Clone(c.Cmd), slices.Clone(c.Env), c.WorkingDir, c.User, nil
}
