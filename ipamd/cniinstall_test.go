package ipamd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/ipamd"
)

func TestInstallPlugin(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "opt", "cni", "bin")
	dst, err := ipamd.InstallPlugin(src, bin)
	if err != nil {
		t.Fatal(err)
	}
	if dst != filepath.Join(bin, ipamd.PluginName) {
		t.Fatalf("installed at %s", dst)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed plugin: %v %v", fi, err)
	}
	// A second install replaces the file in place and leaves no temporary file behind.
	if err := os.WriteFile(src, []byte("v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ipamd.InstallPlugin(src, bin); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "v2" {
		t.Fatalf("after reinstall the plugin holds %q", got)
	}
	ents, _ := os.ReadDir(bin)
	if len(ents) != 1 {
		t.Fatalf("plugin directory holds %d files, want only the plugin", len(ents))
	}
	if _, err := ipamd.InstallPlugin(filepath.Join(dir, "missing"), bin); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing source: %v", err)
	}
	if _, err := ipamd.InstallPlugin(dir, bin); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory as source: %v", err)
	}

	conf := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(conf, "20-other.conflist")
	for _, f := range []string{filepath.Join(conf, ipamd.ConflistName), other} {
		if err := os.WriteFile(f, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := ipamd.UninstallCNI(conf, bin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(conf, ipamd.ConflistName)); !os.IsNotExist(err) {
		t.Fatalf("conflist still there: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("plugin still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("another network's conflist was removed: %v", err)
	}
	if err := ipamd.UninstallCNI(conf, bin); err != nil {
		t.Fatalf("second uninstall: %v", err)
	}
}
