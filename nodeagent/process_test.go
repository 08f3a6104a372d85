package nodeagent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestStartGate: a gated container runs its program only once the agent opens the gate; a gate
// closed without a go-ahead (the agent died, or could not record the container) makes it exit
// without running anything.
func TestStartGate(t *testing.T) {
	self := filepath.Join(binDir, "flatnet-node-agent")
	run := func(open bool) (marker bool, code int, log string) {
		dir := t.TempDir()
		out, err := os.Create(filepath.Join(dir, "log"))
		if err != nil {
			t.Fatal(err)
		}
		l := Launch{UID: -1, GID: -1, Argv: []string{"/bin/sh", "-c", "touch " + filepath.Join(dir, "ran")}}
		cmd, gate, err := l.gatedCommand(self)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = []string{"PATH=" + containerPath}
		p, err := startProcess(cmd, out, out)
		gate.started()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.stop(0) })
		// Held at the gate: nothing ran yet.
		time.Sleep(100 * time.Millisecond)
		if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
			t.Fatal("the program ran before the gate opened")
		}
		if open {
			if err := gate.open(); err != nil {
				t.Fatal(err)
			}
		} else {
			gate.cancel()
		}
		if !p.wait(10 * time.Second) {
			t.Fatal("the gated process did not finish")
		}
		_, err = os.Stat(filepath.Join(dir, "ran"))
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		return err == nil, p.exitCode(), string(b)
	}
	if ran, code, log := run(true); !ran || code != 0 {
		t.Errorf("gate opened: ran %v, exit code %d, want true and 0 (%s)", ran, code, log)
	}
	ran, code, log := run(false)
	if ran || code == 0 {
		t.Errorf("gate closed: ran %v, exit code %d, want false and non-zero", ran, code)
	}
	if !strings.Contains(log, "did not let the container run") {
		t.Errorf("gate closed: the process said %q, want why it did not run", log)
	}
}
