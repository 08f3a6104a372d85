package nodeagent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// probeRecords keeps a file per exec probe whose command runs, so that an agent killed while a
// probe's command runs leaves its successor what to end: a probe's command runs in a process
// group of its own (runWithContext), which no container's stop reaches and, with no cgroup
// around it, nothing else ends either. A file is named <pid>.<start time> of the group's
// leader and holds the boot id and the leader's session. The agent records a probe before its
// command runs (the start gate holds the command until then) and removes the record after it
// has killed the group.
type probeRecords struct {
	dir    string
	bootID string
}

func newProbeRecords(dir, bootID string) (*probeRecords, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the exec probe record directory: %w", err)
	}
	return &probeRecords{dir: dir, bootID: bootID}, nil
}

// add records the probe process pid, which started at start; it returns the record's path.
func (r *probeRecords) add(pid int, start uint64) (string, error) {
	sid, err := unix.Getsid(pid)
	if err != nil {
		return "", fmt.Errorf("exec probe process %d: its session: %w", pid, err)
	}
	p := filepath.Join(r.dir, strconv.Itoa(pid)+"."+strconv.FormatUint(start, 10))
	if err := os.WriteFile(p, []byte(r.bootID+"\n"+strconv.Itoa(sid)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("record exec probe process %d: %w", pid, err)
	}
	return p, nil
}

func (r *probeRecords) remove(path string) {
	_ = os.Remove(path)
}

// sweep ends the process groups of the probes an earlier agent recorded and did not end, and
// removes their records. A record of another boot names nothing that still runs. While the
// leader runs or is a zombie (same pid, same start time), the group is its own and is killed.
// When no process has the pid, what the command left running may still be in the group, but
// the group's id may also have been taken since by an unrelated process that led a group and
// exited: only the members that are in the leader's session and started after it are killed.
// When another process has the pid, the group is gone (a pid is not given to a new process
// while a group of that id has members) and the record is only removed.
func (r *probeRecords) sweep(log *slog.Logger) error {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("read the exec probe records: %w", err)
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(r.dir, e.Name())
		pid, start, ok := parseProbeRecordName(e.Name())
		if !ok {
			log.Warn("removing a file that is not an exec probe record", "path", p)
			errs = append(errs, os.Remove(p))
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		boot, sidText, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if boot == r.bootID {
			var killErr error
			st, serr := procStartTime(pid)
			switch {
			case (serr == nil || errors.Is(serr, errZombie)) && st == start:
				killErr = syscall.Kill(-pid, syscall.SIGKILL)
				if killErr == nil {
					log.Info("ended an exec probe's processes that an earlier agent left running", "pgid", pid)
				}
			case errors.Is(serr, os.ErrNotExist):
				if sid, err := strconv.Atoi(strings.TrimSpace(sidText)); err == nil {
					killErr = killGroupMembers(log, pid, sid, start)
				}
			}
			if killErr != nil && !errors.Is(killErr, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("kill the process group %d of an exec probe: %w", pid, killErr))
				continue
			}
		}
		errs = append(errs, os.Remove(p))
	}
	return errors.Join(errs...)
}

// killGroupMembers kills the processes of group pgid in session sid that started at or after
// start (clock ticks since boot).
func killGroupMembers(log *slog.Logger, pgid, sid int, start uint64) error {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		ids, err := parseStatIDs(string(b))
		if err != nil || ids.pgrp != pgid || ids.session != sid || ids.start < start {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
			continue
		}
		log.Info("ended a process an earlier agent's exec probe left running", "pid", pid, "pgid", pgid)
	}
	return errors.Join(errs...)
}

// parseProbeRecordName reads <pid>.<start time>.
func parseProbeRecordName(name string) (pid int, start uint64, ok bool) {
	a, b, found := strings.Cut(name, ".")
	if !found {
		return 0, 0, false
	}
	pid, err := strconv.Atoi(a)
	if err != nil || pid <= 1 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(b, 10, 64)
	return pid, start, err == nil
}
