package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one container's process: a child of this agent (exited is closed when it is
// reaped, with its status) or one adopted from an earlier agent, which only polling can watch.
type process struct {
	pid       int
	startTime uint64 // /proc/<pid>/stat field 22: tells a reused pid from ours
	exited    chan struct{}
	status    syscall.WaitStatus // valid once exited is closed, for children only
	adopted   bool
}

// startProcess starts cmd (its own session, from Launch.command, so it outlives the agent,
// which adopts it again after a restart), its output to stdout and stderr (the log writer's
// pipes), which it closes: the child holds its own copies.
func startProcess(cmd *exec.Cmd, stdout, stderr *os.File) (*process, error) {
	defer stdout.Close()
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &process{pid: cmd.Process.Pid, exited: make(chan struct{})}
	p.startTime, _ = procStartTime(p.pid) // the child cannot be reaped before Wait below
	go func() {
		_ = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			p.status = ws
		}
		close(p.exited)
	}()
	return p, nil
}

// adoptProcess returns the process recorded as (pid, startTime) if it still runs, nil if it
// is gone or the pid now belongs to another process.
func adoptProcess(pid int, startTime uint64) *process {
	st, err := procStartTime(pid)
	if err != nil || st != startTime {
		return nil
	}
	return &process{pid: pid, startTime: startTime, adopted: true}
}

// running reports whether the process still runs.
func (p *process) running() bool {
	if !p.adopted {
		select {
		case <-p.exited:
			return false
		default:
			return true
		}
	}
	st, err := procStartTime(p.pid)
	return err == nil && st == p.startTime
}

// exitCode is the exit code of a finished child, 128+signal when killed by a signal, and 137
// for an adopted process, whose status only its parent (init) learnt: the kubelet reports an
// unknown status the same way.
func (p *process) exitCode() int {
	switch {
	case p.adopted:
		return 137
	case p.status.Signaled():
		return 128 + int(p.status.Signal())
	default:
		return p.status.ExitStatus()
	}
}

// signal sends sig to the process, and to its session's other processes through the group.
func (p *process) signal(sig syscall.Signal) error {
	if !p.running() {
		return nil
	}
	// The process leads its own session and process group (Setsid): signal the whole group, so
	// that children of a shell in a generic container go too.
	err := syscall.Kill(-p.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = syscall.Kill(p.pid, sig)
	}
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process %d: %w", p.pid, err)
	}
	return nil
}

// stop sends SIGTERM, waits up to grace, then SIGKILL, and waits for the process to be gone.
func (p *process) stop(grace time.Duration) error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if p.wait(grace) {
		return nil
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	if !p.wait(10 * time.Second) {
		return fmt.Errorf("process %d survived SIGKILL for 10s", p.pid)
	}
	return nil
}

func (p *process) wait(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !p.running() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if p.adopted {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		select {
		case <-p.exited:
			return true
		case <-time.After(time.Until(deadline)):
		}
	}
}

// procStartTime reads the start time of pid (clock ticks since boot). A zombie counts as gone
// (errZombie, with its start time).
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat extracts the start time from the text of /proc/<pid>/stat; a zombie's comes with
// errZombie.
func parseStat(s string) (uint64, error) {
	st, err := parseStatIDs(s)
	if err != nil {
		return 0, err
	}
	if st.state == "Z" || st.state == "X" {
		return st.start, errZombie
	}
	return st.start, nil
}

// statIDs are a process's state, group, session and start time, from /proc/<pid>/stat.
type statIDs struct {
	state         string
	pgrp, session int
	start         uint64
}

// parseStatIDs reads the state (field 3), process group (field 5), session (field 6) and start
// time (field 22) from the text of /proc/<pid>/stat. The command name (field 2) is
// parenthesised and may itself hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStatIDs(s string) (statIDs, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return statIDs{}, fmt.Errorf("malformed /proc stat: no ')' in %q", s)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); the start time is field 22.
	if len(fields) < 20 {
		return statIDs{}, fmt.Errorf("malformed /proc stat: %d fields after the command name, want at least 20", len(fields))
	}
	pgrp, err1 := strconv.Atoi(fields[2])
	session, err2 := strconv.Atoi(fields[3])
	start, err3 := strconv.ParseUint(fields[19], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return statIDs{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return statIDs{state: fields[0], pgrp: pgrp, session: session, start: start}, nil
}

// errZombie is parseStat's error for a process that has exited and not been reaped; the start
// time it returns with it is the process's.
var errZombie = errors.New("the process has exited (zombie)")
