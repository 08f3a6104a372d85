package ipamd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// PluginName is the file name of flatnet's CNI plugin in the runtime's plugin directory: the
// conflist's plugin type.
const PluginName = "flatnet"

// InstallPlugin copies the CNI plugin at src into dir as PluginName, atomically: a runtime
// running the plugin while it is replaced runs the old file or the new one, never half of one
// (the copy is written beside the target, synced, then renamed over it). The chart's
// install-cni init container runs it on every node before ipamd starts. It returns the path
// it installed.
func InstallPlugin(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("the plugin to install: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", fmt.Errorf("the plugin to install: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("the plugin to install, %s, is not a regular file", src)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create the CNI plugin directory: %w", err)
	}
	dst := filepath.Join(dir, PluginName)
	tmp, err := os.CreateTemp(dir, "."+PluginName+"-*.tmp")
	if err != nil {
		return "", fmt.Errorf("install the CNI plugin into %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, in)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return "", fmt.Errorf("install the CNI plugin %s: %w", dst, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename survives a crash
		d.Close()
	}
	return dst, nil
}

// UninstallCNI removes what flatnet put on the node for the runtime: ipamd's conflist in
// confDir and the plugin in binDir (either may be empty: not managed). Files already gone are
// fine. ipamd runs it when it stops because its DaemonSet is being deleted (helm uninstall),
// so that the node is left with no CNI configuration pointing at a daemon that is gone.
func UninstallCNI(confDir, binDir string) error {
	var errs []error
	if confDir != "" {
		if err := os.Remove(filepath.Join(confDir, ConflistName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove the CNI conflist: %w", err))
		}
	}
	if binDir != "" {
		if err := os.Remove(filepath.Join(binDir, PluginName)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove the CNI plugin: %w", err))
		}
	}
	return errors.Join(errs...)
}
