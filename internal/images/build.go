package images

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/flatnet/flatnet"
)

// DefaultRegistry is where the images are named when Options.Registry is empty (the chart's
// default, charts/flatnet/values.yaml).
const DefaultRegistry = "ghcr.io/flatnet"

// Source is the images' org.opencontainers.image.source label.
const Source = "https://github.com/flatnet/flatnet"

// Label keys (the OCI image spec's pre-defined annotation keys, used as config labels).
const (
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
	LabelVersion     = "org.opencontainers.image.version"
	LabelSource      = "org.opencontainers.image.source"
	LabelRevision    = "org.opencontainers.image.revision"
	// AnnotationRefName names an image in a layout's index.json: the full reference, which is how
	// `ctr images import` (and so `kind load image-archive`) names what it imports.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// Platform is an image's operating system and architecture, as GOOS and GOARCH spell them.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Options says what Build builds and where.
type Options struct {
	// Registry is the repository prefix of the images' names; default DefaultRegistry.
	Registry string
	// Tag of both images; default flatnet.Version.
	Tag string
	// Platforms to build, each a manifest of every image's index; default: the host's only.
	Platforms []Platform
	// BinDir returns the directory holding a platform's static binaries: flatnet-ipamd,
	// flatnet-cni and flatnet-lbcontroller.
	BinDir func(Platform) (string, error)
	// Out is the output directory: the layout Out/oci and the tarballs Out/<name>-<tag>.tar.
	Out string
	// Created is the images' creation time, also every file's time in their layers; default
	// SOURCE_DATE_EPOCH or else the Unix epoch, so that a build is reproducible.
	Created time.Time
	// Revision is the org.opencontainers.image.revision label (the source's commit), left out
	// when empty.
	Revision string
	// Stored writes the layers' gzip streams without compressing them (stored blocks), for
	// images that never leave the machine (the lab's). Still gzip, so any reader takes them;
	// larger by what compression saves (about 50 MB for the two images), and quicker to write
	// and to unpack (compressing is most of a build: 1.7 s on two cores, 26 s in a test binary
	// built with -race; stored, 0.5 s and 0.8 s).
	Stored bool
}

// level is the layers' gzip level.
func (o Options) level() int {
	if o.Stored {
		return gzip.NoCompression
	}
	return gzip.DefaultCompression
}

// Result is what Build wrote.
type Result struct {
	// Layout is the OCI image layout's directory (Out/oci).
	Layout string
	// Images maps each reference Build wrote to the digest of its image index.
	Images map[string]string
	// Tarballs are the OCI-layout tarballs, one per image, in the order of Names.
	Tarballs []string
}

// file is a binary of BinDir and where it goes in an image.
type file struct{ bin, path string }

// spec is one image.
type spec struct {
	name        string
	description string
	files       []file
	entrypoint  []string
	user        string
}

// specs are the images Build writes, in the order Names lists them.
var specs = []spec{
	{
		name:        "flatnet-ipamd",
		description: "flatnet's per-node IP address manager, with the flatnet CNI plugin at /opt/cni/bin/flatnet",
		files: []file{
			{bin: "flatnet-ipamd", path: "/usr/bin/flatnet-ipamd"},
			{bin: "flatnet-cni", path: "/opt/cni/bin/flatnet"},
		},
		entrypoint: []string{"/usr/bin/flatnet-ipamd"},
	},
	{
		name:        "flatnet-lbcontroller",
		description: "flatnet's load balancer controller: cloud load balancers for Services of type LoadBalancer",
		files:       []file{{bin: "flatnet-lbcontroller", path: "/usr/bin/flatnet-lbcontroller"}},
		entrypoint:  []string{"/usr/bin/flatnet-lbcontroller"},
		user:        "65532:65532",
	},
}

// defaultPath is the images' PATH, as container runtimes set it when an image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Names returns the references Build writes for registry and tag (empty: the defaults), e.g.
// ghcr.io/flatnet/flatnet-ipamd:0.1.0.
func Names(registry, tag string) []string {
	if registry == "" {
		registry = DefaultRegistry
	}
	if tag == "" {
		tag = flatnet.Version
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = ref(registry, s.name, tag)
	}
	return names
}

func ref(registry, name, tag string) string {
	return strings.TrimSuffix(registry, "/") + "/" + name + ":" + tag
}

// The architectures Build knows the ELF machine of (binary.go).
var knownArchs = []string{"386", "amd64", "arm", "arm64", "ppc64le", "riscv64", "s390x"}

// ParsePlatform reads "os/arch", e.g. linux/arm64.
func ParsePlatform(s string) (Platform, error) {
	osName, arch, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || osName == "" || arch == "" || strings.Contains(arch, "/") {
		return Platform{}, fmt.Errorf("platform %q: want os/arch, e.g. linux/amd64 (no variant)", s)
	}
	p := Platform{OS: osName, Arch: arch}
	return p, p.validate()
}

// ParsePlatforms reads a comma-separated list of platforms, e.g. linux/amd64,linux/arm64.
func ParsePlatforms(s string) ([]Platform, error) {
	var ps []Platform
	for f := range strings.SplitSeq(s, ",") {
		p, err := ParsePlatform(f)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (p Platform) validate() error {
	if p.OS != "linux" {
		return fmt.Errorf("platform %s: the images are for linux only (flatnet runs on Linux nodes)", p)
	}
	if !slices.Contains(knownArchs, p.Arch) {
		return fmt.Errorf("platform %s: unknown architecture %q; known: %s", p, p.Arch, strings.Join(knownArchs, ", "))
	}
	return nil
}

// tagRE is the OCI distribution spec's tag grammar.
var tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// registryRE is a registry host (with an optional port) and a lowercase path, as references
// spell them.
var registryRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)

// complete checks o and fills in its defaults.
func (o Options) complete() (Options, error) {
	if o.Registry == "" {
		o.Registry = DefaultRegistry
	}
	o.Registry = strings.TrimSuffix(o.Registry, "/")
	if !registryRE.MatchString(o.Registry) {
		return o, fmt.Errorf("registry %q: want a host and lowercase path such as %s (no scheme, no tag)", o.Registry, DefaultRegistry)
	}
	if o.Tag == "" {
		o.Tag = flatnet.Version
	}
	if !tagRE.MatchString(o.Tag) {
		return o, fmt.Errorf("tag %q: a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", o.Tag)
	}
	if len(o.Platforms) == 0 {
		o.Platforms = []Platform{{OS: runtime.GOOS, Arch: runtime.GOARCH}}
	}
	ps := slices.Clone(o.Platforms)
	for _, p := range ps {
		if err := p.validate(); err != nil {
			return o, err
		}
	}
	// Sorted, so that the order platforms are given in does not change the index's digest.
	slices.SortFunc(ps, func(a, b Platform) int { return strings.Compare(a.String(), b.String()) })
	for i := 1; i < len(ps); i++ {
		if ps[i] == ps[i-1] {
			return o, fmt.Errorf("platform %s given twice", ps[i])
		}
	}
	o.Platforms = ps
	if o.BinDir == nil {
		return o, errors.New("options: BinDir is required (the directory of each platform's binaries)")
	}
	if o.Out == "" {
		return o, errors.New("options: Out is required (the output directory)")
	}
	if o.Created.IsZero() {
		t, err := sourceDateEpoch()
		if err != nil {
			return o, err
		}
		o.Created = t
	}
	o.Created = o.Created.UTC().Truncate(time.Second)
	return o, nil
}

// sourceDateEpoch is the time SOURCE_DATE_EPOCH gives (reproducible-builds.org), else the Unix
// epoch.
func sourceDateEpoch() (time.Time, error) {
	v, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok || v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since the Unix epoch, or unset it", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// builtImage is one image index and its name.
type builtImage struct {
	spec spec
	ref  string
	idx  v1.ImageIndex
}

// Build builds every image for every platform of o from the binaries BinDir names and writes
// the layout Out/oci (adding to one already there: a reference Build writes replaces the one of
// the same name, others stay) and one tarball per image.
func Build(ctx context.Context, o Options) (Result, error) {
	o, err := o.complete()
	if err != nil {
		return Result{}, err
	}
	// The layers are written here first, then copied into the layout; removed when done (a
	// build killed on the way leaves it in the temporary directory, not in Out).
	scratch, err := os.MkdirTemp("", "flatnet-images-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(scratch)
	base, err := baseLayer(scratch, o.Created, o.level())
	if err != nil {
		return Result{}, fmt.Errorf("base layer: %w", err)
	}
	dirs := make(map[Platform]string, len(o.Platforms))
	for _, p := range o.Platforms {
		d, err := o.BinDir(p)
		if err != nil {
			return Result{}, fmt.Errorf("binaries for %s: %w", p, err)
		}
		dirs[p] = d
	}

	// One job per image and platform: each reads its binaries and compresses a layer.
	imgs := make([][]v1.Image, len(specs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for si, s := range specs {
		imgs[si] = make([]v1.Image, len(o.Platforms))
		for pi, p := range o.Platforms {
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				img, err := buildImage(s, p, dirs[p], base, scratch, o)
				if err != nil {
					return fmt.Errorf("image %s for %s: %w", s.name, p, err)
				}
				imgs[si][pi] = img
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}

	built := make([]builtImage, len(specs))
	for si, s := range specs {
		var adds []mutate.IndexAddendum
		for pi, p := range o.Platforms {
			adds = append(adds, mutate.IndexAddendum{
				Add:        plainImage{imgs[si][pi]},
				Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
			})
		}
		idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
		built[si] = builtImage{spec: s, ref: ref(o.Registry, s.name, o.Tag), idx: idx}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return write(ctx, o, built)
}

// plainImage is an image whose descriptor in an index has no artifactType, as image builders
// write them: go-containerregistry would set the config's media type there, which marks an
// artifact rather than a container image to some readers.
type plainImage struct{ v1.Image }

func (plainImage) ArtifactType() (string, error) { return "", nil }

// buildImage is spec s for platform p: the base layer and a layer of its binaries from dir.
func buildImage(s spec, p Platform, dir string, base v1.Layer, layerDir string, o Options) (v1.Image, error) {
	app, err := binaryLayer(s.files, dir, p, layerDir, o.Created, o.level())
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		LabelTitle:       s.name,
		LabelDescription: s.description,
		LabelVersion:     flatnet.Version,
		LabelSource:      Source,
	}
	if o.Revision != "" {
		labels[LabelRevision] = o.Revision
	}
	created := v1.Time{Time: o.Created}
	cfg := &v1.ConfigFile{
		Architecture: p.Arch,
		OS:           p.OS,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: s.entrypoint,
			Env:        []string{defaultPath},
			User:       s.user,
			Labels:     labels,
		},
	}
	scratch := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.ConfigFile(scratch, cfg)
	if err != nil {
		return nil, err
	}
	var bins []string
	for _, f := range s.files {
		bins = append(bins, f.path)
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "flatnet images: base (/etc/passwd, /etc/group, /root, /tmp)"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "flatnet images: " + strings.Join(bins, ", ")}},
	)
}

// layoutDir is the OCI layout Build writes into out.
func layoutDir(out string) string { return filepath.Join(out, "oci") }

// tarballPath is the tarball of image name and tag in out.
func tarballPath(out, name, tag string) string {
	return filepath.Join(out, name+"-"+tag+".tar")
}
