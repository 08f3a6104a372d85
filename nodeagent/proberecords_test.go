package nodeagent

import (
	"errors"
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
	// pid of the sleep it leaves, which it prints, and the leader's start time.
	group := func(script string, waitLeader bool) (leader, sleep int, leaderStart uint64) {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A leader that exits at once may already be a zombie here (not yet waited for); its
		// start time still comes with errZombie.
		if leaderStart, err = procStartTime(cmd.Process.Pid); err != nil && !errors.Is(err, errZombie) {
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
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = syscall.Kill(sleep, syscall.SIGKILL)
			if !waitLeader {
				_ = cmd.Wait()
			}
		})
		if waitLeader {
			_, _ = io.Copy(io.Discard, out)
			_ = cmd.Wait()
		}
		return cmd.Process.Pid, sleep, leaderStart
	}
	alive := func(pid int) bool { _, err := procStartTime(pid); return err == nil }

	// A probe whose command still runs: a shell waiting on a sleep.
	runLeader, runSleep, runStart := group(`sleep 600 & echo $!; wait`, false)
	if _, err := recs.add(runLeader, runStart); err != nil {
		t.Fatal(err)
	}
	// A probe whose shell exited, leaving its sleep in the group (recorded while the shell ran).
	goneLeader, goneSleep, goneStart := group(`sleep 600 >/dev/null 2>&1 & echo $!`, true)
	writeRecord := func(pid int, start uint64, boot string, sid int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(recs.dir, strconv.Itoa(pid)+"."+strconv.FormatUint(start, 10)), []byte(boot+"\n"+strconv.Itoa(sid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeRecord(goneLeader, goneStart, recs.bootID, sessionOf(t, goneSleep))
	// The same with another session recorded: the group's id taken since by an unrelated process.
	alienLeader, alienSleep, alienStart := group(`sleep 600 >/dev/null 2>&1 & echo $!`, true)
	writeRecord(alienLeader, alienStart, recs.bootID, sessionOf(t, alienSleep)+1)
	// A group recorded in another boot, and a record whose pid another process has now.
	otherLeader, otherSleep, otherStart := group(`sleep 600 & echo $!; wait`, false)
	writeRecord(otherLeader, otherStart, "another-boot", sessionOf(t, otherLeader))
	reusedLeader, reusedSleep, reusedStart := group(`sleep 600 & echo $!; wait`, false)
	if _, err := recs.add(reusedLeader, reusedStart+1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(recs.dir, "junk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := recs.sweep(slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for (alive(runSleep) || alive(goneSleep)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for name, pid := range map[string]int{"the running probe's sleep": runSleep, "the sleep its exited shell left": goneSleep, "the running probe's shell": runLeader} {
		if alive(pid) {
			t.Errorf("%s (%d) still runs after the sweep", name, pid)
		}
	}
	for name, pid := range map[string]int{"the other boot's group's shell": otherLeader, "the other boot's sleep": otherSleep, "the process that has the reused pid": reusedLeader, "the sleep of the reused pid's group": reusedSleep, "the sleep of a group recorded in another session": alienSleep} {
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

// sessionOf is the session of process pid.
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := parseStatIDs(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return ids.session
}

func TestParseStatIDs(t *testing.T) {
	ids, err := parseStatIDs("42 (a) b)) Z 1 77 88 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99 20")
	if err != nil || ids != (statIDs{state: "Z", pgrp: 77, session: 88, start: 99}) {
		t.Fatalf("got %+v, %v; want state Z, pgrp 77, session 88, start 99", ids, err)
	}
	for _, bad := range []string{"42 a S 1 2 3", "42 (a) S 1 2", "42 (a) S 1 x 88 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99 20"} {
		if _, err := parseStatIDs(bad); err == nil {
			t.Errorf("parseStatIDs(%q) took it", bad)
		}
	}
}
