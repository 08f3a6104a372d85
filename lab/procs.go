package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// children are the processes this process started, so that stopping one also reaps it.
var children sync.Map // pid -> chan struct{} closed when reaped

// startProcess starts argv detached (own session) inside the named namespace ("" for the
// current one), appending its output to logPath, and returns its pid.
func startProcess(netnsName, logPath string, env []string, argv ...string) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open log %s: %w", logPath, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := cmd.Start
	if netnsName != "" {
		start = func() error { return inNetns(netnsName, cmd.Start) }
	}
	if err := start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	done := make(chan struct{})
	children.Store(cmd.Process.Pid, done)
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return cmd.Process.Pid, nil
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// ours reports whether pid runs one of the lab's programs (fakecloud, flatnet-ipamd,
// flatnet-lab, and the control plane's etcd and kube-*), so that a pid recorded by an earlier
// run and since reused by an unrelated process is never signalled.
func ours(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	switch filepath.Base(argv0) {
	case "fakecloud", "flatnet-ipamd", "flatnet-lab", NodeAgentBinary, LBControllerBinary,
		"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler":
		return true
	}
	return false
}

// stopProcess sends SIGTERM, waits up to grace, then SIGKILL. A gone process, or one that is
// not the lab's, is left alone.
func stopProcess(pid int, grace time.Duration) error {
	if !alive(pid) || !ours(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	if waitGone(pid, grace) {
		return nil
	}
	return killProcess(pid)
}

// killProcess sends SIGKILL and waits for the process to be gone.
func killProcess(pid int) error {
	if !alive(pid) || !ours(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	if !waitGone(pid, 5*time.Second) {
		return fmt.Errorf("process %d survived SIGKILL", pid)
	}
	return nil
}

func waitGone(pid int, d time.Duration) bool {
	var reaped <-chan struct{}
	if ch, ok := children.Load(pid); ok {
		reaped = ch.(chan struct{})
	}
	deadline := time.After(d)
	for {
		if reaped != nil {
			select {
			case <-reaped:
				children.Delete(pid)
				return true
			case <-deadline:
				return false
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if !alive(pid) {
			return true
		}
		select {
		case <-deadline:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}
