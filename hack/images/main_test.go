package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunBadInput checks that bad flags fail at once, before any build, saying what was wrong.
func TestRunBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--platforms", "linux/amd64,windows/amd64"}, "--platforms: platform windows/amd64: the images are for linux only"},
		{[]string{"--platforms", "linux-amd64"}, `platform "linux-amd64": want os/arch`},
		{[]string{"--platforms", "linux/mips"}, `unknown architecture "mips"`},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %q: %v, want an error saying %q", tc.args, err, tc.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("run %q printed %q", tc.args, stdout.String())
		}
	}
}

// TestGitRevision labels images with HEAD only when no tracked file has changed.
func TestGitRevision(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	ctx := context.Background()
	var stderr bytes.Buffer
	if rev := gitRevision(ctx, dir, &stderr); rev != "" {
		t.Errorf("outside a repository: %q", rev)
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "f")
	git("commit", "-q", "-m", "one")
	head := git("rev-parse", "HEAD")
	if err := os.WriteFile(filepath.Join(dir, "untracked"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rev := gitRevision(ctx, dir, &stderr); rev != head {
		t.Errorf("clean tree (an untracked file aside): %q, want %s", rev, head)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rev := gitRevision(ctx, dir, &stderr); rev != "" || !strings.Contains(stderr.String(), "no revision label") {
		t.Errorf("changed tree: %q (stderr %q), want no revision and a note", rev, stderr.String())
	}
}
