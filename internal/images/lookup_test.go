package images

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestLookupErrors checks the errors for a layout, reference or platform that is not there.
func TestLookupErrors(t *testing.T) {
	res, _ := build(t, amd64)
	for _, tc := range []struct {
		name, layout, ref string
		p                 Platform
		is                error
		want              string
	}{
		{"unknown ref", res.Layout, "ghcr.io/flatnet/flatnet-ipamd:9.9.9", amd64, ErrNotFound,
			"ghcr.io/flatnet/flatnet-ipamd:9.9.9: the layout " + res.Layout + " has " + strings.Join(Names("", ""), ", ")},
		{"short name", res.Layout, "flatnet-ipamd", amd64, ErrNotFound, "flatnet-ipamd: the layout"},
		{"other platform", res.Layout, Names("", "")[0], arm64, ErrNotFound, "has no image for linux/arm64; it has linux/amd64"},
		{"no layout", filepath.Join(t.TempDir(), "nothing"), Names("", "")[0], amd64, fs.ErrNotExist, "is not an OCI image layout (no index.json)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Lookup(tc.layout, tc.ref, tc.p)
			if !errors.Is(err, tc.is) || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Lookup: %v\nwant an error that is %v and says %q", err, tc.is, tc.want)
			}
		})
	}
}

// TestLookupSinglePlatformImage finds an image named directly (no index), as other tools write
// single-platform layouts, and refuses it for another platform.
func TestLookupSinglePlatformImage(t *testing.T) {
	dir := t.TempDir()
	img := imageOf(t, tarOf(t, []tarEntry{reg("hello", "hi", 0o644)}))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "arm64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{AnnotationRefName: "example.com/hello:1"})); err != nil {
		t.Fatal(err)
	}
	got, err := Lookup(dir, "example.com/hello:1", arm64)
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd != mustDigest(t, img) {
		t.Errorf("Lookup gave %s", gd)
	}
	_, err = Lookup(dir, "example.com/hello:1", amd64)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "is an image for linux/arm64 only, not for linux/amd64") {
		t.Errorf("Lookup for another platform: %v", err)
	}
	// A layout whose blobs went missing: the error says which.
	os.RemoveAll(filepath.Join(dir, "blobs"))
	if _, err := Lookup(dir, "example.com/hello:1", arm64); err == nil {
		t.Error("Lookup in a layout without blobs succeeded")
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
