// Command images builds flatnet's container images without a Docker engine (docs/images.md):
// it cross-builds flatnet-ipamd, flatnet-cni and flatnet-lbcontroller for each platform, static
// and reproducible (CGO_ENABLED=0, -trimpath, -buildvcs=false), then writes the images with
// internal/images: an OCI layout OUT/oci and one tarball per image, OUT/<name>-<tag>.tar. It
// prints each reference with the digest of its image index. make images runs it.
//
// Usage: go run ./hack/images [--out bin/images] [--platforms linux/amd64,linux/arm64]
// [--registry ghcr.io/flatnet] [--tag VERSION] [--revision auto]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flatnet/flatnet"
	"github.com/flatnet/flatnet/internal/images"
)

// cmds are the packages whose binaries the images hold, relative to the module's root.
var cmds = []string{"./cmd/flatnet-ipamd", "./cmd/flatnet-cni", "./cmd/flatnet-lbcontroller"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "bin/images", "output directory: the OCI layout OUT/oci and the tarballs OUT/<name>-<tag>.tar")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list to build for")
	registry := fs.String("registry", images.DefaultRegistry, "registry and path the images are named in")
	tag := fs.String("tag", flatnet.Version, "tag of both images")
	revision := fs.String("revision", "auto", "the org.opencontainers.image.revision label: a commit; auto: git HEAD if no tracked file has changes, else none; empty: none")
	goCmd := fs.String("go", "go", "the go command to build with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: every option is a flag (-h lists them)", fs.Args())
	}
	ps, err := images.ParsePlatforms(*platforms)
	if err != nil {
		return fmt.Errorf("--platforms: %w", err)
	}
	modDir, err := moduleDir(ctx, *goCmd)
	if err != nil {
		return err
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	rev := *revision
	if rev == "auto" {
		rev = gitRevision(ctx, modDir, stderr)
	}

	tmp, err := os.MkdirTemp("", "flatnet-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	binDir := func(p images.Platform) (string, error) { return filepath.Join(tmp, p.OS+"_"+p.Arch), nil }
	start := time.Now()
	for _, p := range ps {
		t := time.Now()
		dir, _ := binDir(p)
		if err := goBuild(ctx, *goCmd, modDir, p, dir, stderr); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "images: built %s for %s in %s\n", strings.Join(cmds, " "), p, time.Since(t).Round(100*time.Millisecond))
	}
	t := time.Now()
	res, err := images.Build(ctx, images.Options{
		Registry: *registry, Tag: *tag, Platforms: ps, BinDir: binDir, Out: outDir, Revision: rev,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "images: wrote the images in %s (%s in all)\n", time.Since(t).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	for _, ref := range images.Names(*registry, *tag) {
		fmt.Fprintf(stdout, "%s %s\n", ref, res.Images[ref])
	}
	fmt.Fprintf(stdout, "layout %s\n", res.Layout)
	for _, tb := range res.Tarballs {
		fmt.Fprintf(stdout, "tarball %s\n", tb)
	}
	return nil
}

// moduleDir is the root of the main module, where cmds are.
func moduleDir(ctx context.Context, goCmd string) (string, error) {
	out, err := exec.CommandContext(ctx, goCmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("%s env GOMOD: %w", goCmd, err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not in a Go module: run this from flatnet's repository")
	}
	return filepath.Dir(mod), nil
}

// goBuild cross-builds cmds for p into dir: static, with no build path or VCS stamp in them, so
// that the same source gives the same binaries.
func goBuild(ctx context.Context, goCmd, modDir string, p images.Platform, dir string, stderr io.Writer) error {
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-o", dir + string(filepath.Separator)}, cmds...)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the binaries for %s (CGO_ENABLED=0 GOOS=%s GOARCH=%s %s %s): %w",
			p, p.OS, p.Arch, goCmd, strings.Join(args, " "), err)
	}
	return nil
}

// gitRevision is HEAD's commit when no tracked file differs from it, else "": a revision label
// must name the source the binaries were built from. Without git, or outside a repository, "".
func gitRevision(ctx context.Context, dir string, stderr io.Writer) string {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		return strings.TrimSpace(out.String()), err
	}
	head, err := git("rev-parse", "--verify", "HEAD")
	if err != nil {
		return ""
	}
	changes, err := git("status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return ""
	}
	if changes != "" {
		fmt.Fprintf(stderr, "images: tracked files differ from HEAD (%s): no revision label\n", head)
		return ""
	}
	return head
}
