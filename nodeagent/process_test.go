package nodeagent

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestAdoptProcessChecksStartTime(t *testing.T) {
	st, err := procStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p := adoptProcess(os.Getpid(), st); p == nil || !p.running() {
		t.Errorf("the running test process was not adopted with its own start time")
	}
	if p := adoptProcess(os.Getpid(), st+1); p != nil {
		t.Errorf("adopted a pid whose start time differs from the record: a reused pid")
	}
}

func TestProcessStop(t *testing.T) {
	out, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "echo started; exec sleep 60")
	cmd.Env = []string{"PATH=" + containerPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	p, err := startProcess(cmd, out, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(0) })
	if !p.running() || p.startTime == 0 {
		t.Fatalf("pid %d not running or without a start time", p.pid)
	}
	if err := p.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.running() {
		t.Fatal("still running after stop")
	}
	if code := p.exitCode(); code != 128+15 {
		t.Errorf("exit code %d, want 143 (SIGTERM)", code)
	}
}
