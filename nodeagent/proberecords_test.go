package nodeagent

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProbeRecordsSweep: the successor of an agent killed while exec probes ran ends their
// process groups, whether the leader still runs or has exited leaving a child, and nothing
// else: not a group recorded in another boot, not a process that has the pid now.
func TestProbeRecordsSweep(t *testing.T) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := newProbeRecords(t.TempDir(), strings.TrimSpace(string(boot)))
	if err != nil {
		t.Fatal(err)
	}
	// group starts script in a process group of its own and returns the leader's pid and the
	// pid of the sleep it leaves, which it prints.
	group := func(script string, waitLeader bool) (leader, sleep int, cmd *exec.Cmd) {
		t.Helper()
		cmd = exec.Command("/bin/sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 32)
		n, err := out.Read(line)
		if err != nil {
			t.Fatal(err)
		}
		sleep, err = strconv.Atoi(strings.TrimSpace(string(line[:n])))
		if err != nil {
			t.Fatalf("the script printed %q, not a pid", line[:n])
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = syscall.Kill(sleep, syscall.SIGKILL) })
		if waitLeader {
			_, _ = io.Copy(io.Discard, out)
			_ = cmd.Wait()
		}
		return cmd.Process.Pid, sleep, cmd
	}
	startOf := func(pid int) uint64 {
		t.Helper()
		st, err := procStartTime(pid)
		if err != nil {
			t.Fatalf("process %d: %v", pid, err)
		}
		return st
	}
	alive := func(pid int) bool { _, err := procStartTime(pid); return err == nil }

	// A probe whose command still runs: a shell waiting on a sleep.
	runLeader, runSleep, runCmd := group(`sleep 600 & echo $!; wait`, false)
	runStart := startOf(runLeader)
	if _, err := recs.add(runLeader, runStart); err != nil {
		t.Fatal(err)
	}
	// A probe whose shell exited, leaving its sleep in the group.
	goneLeader, goneSleep, _ := group(`sleep 600 >/dev/null 2>&1 & echo $!`, true)
	if _, err := recs.add(goneLeader, 12345); err != nil { // the leader is gone: its start time is not checked
		t.Fatal(err)
	}
	// A group recorded in another boot, and a record whose pid another process has now.
	otherLeader, otherSleep, _ := group(`sleep 600 & echo $!; wait`, false)
	if err := os.WriteFile(filepath.Join(recs.dir, strconv.Itoa(otherLeader)+"."+strconv.FormatUint(startOf(otherLeader), 10)), []byte("another-boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reusedLeader, reusedSleep, _ := group(`sleep 600 & echo $!; wait`, false)
	if _, err := recs.add(reusedLeader, startOf(reusedLeader)+1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(recs.dir, "junk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := recs.sweep(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	_ = runCmd.Wait() // reap the killed leader, our child
	deadline := time.Now().Add(10 * time.Second)
	for (alive(runSleep) || alive(goneSleep)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for name, pid := range map[string]int{"the running probe's sleep": runSleep, "the sleep its exited shell left": goneSleep, "the running probe's shell": runLeader} {
		if alive(pid) {
			t.Errorf("%s (%d) still runs after the sweep", name, pid)
		}
	}
	for name, pid := range map[string]int{"the other boot's group's shell": otherLeader, "the other boot's sleep": otherSleep, "the process that has the reused pid": reusedLeader, "the sleep of the reused pid's group": reusedSleep} {
		if !alive(pid) {
			t.Errorf("%s (%d) was killed: the sweep must leave it alone", name, pid)
		}
	}
	left, err := os.ReadDir(recs.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("records left after the sweep: %v", left)
	}
}

func TestParseProbeRecordName(t *testing.T) {
	for name, want := range map[string]bool{"123.456": true, "1.2": false, "123": false, "x.1": false, "12.y": false, "12.3.4": false, "-5.3": false} {
		if _, _, ok := parseProbeRecordName(name); ok != want {
			t.Errorf("parseProbeRecordName(%q) ok = %v, want %v", name, ok, want)
		}
	}
}
