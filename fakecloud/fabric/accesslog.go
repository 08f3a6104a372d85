package fabric

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Access-log files: one per application load balancer whose access_logs.enabled attribute is
// on, DIR/<id>.log. A file is rotated when a line would take it past its size limit (the
// current file becomes <id>.log.1, the older ones move up one, the oldest past the kept number
// is removed), and reopened at the same path on request (ReopenAccessLogs: after an outside
// rotation moved it, as logrotate does before sending SIGHUP).

// Defaults of Config.AccessLogMaxBytes and AccessLogKeep.
const (
	DefaultAccessLogMaxBytes = 100 << 20
	DefaultAccessLogKeep     = 5
)

// accessLogRetry is how long a file that failed to open waits before the next line tries
// again: a full or read-only disk costs one open a second, not one per request.
const accessLogRetry = time.Second

// accessLogFile is an access log's file. Writes come from the engine's log writer; Reopen and
// Err from the fabric.
type accessLogFile struct {
	path     string
	maxBytes int64 // 0: never rotated
	keep     int   // rotated files kept
	// failed, when set, is called (without the lock) when a write or an open first fails and
	// when the file works again, so that the load balancer's state follows.
	failed func()

	mu      sync.Mutex
	f       *os.File // nil after a failed open
	size    int64
	err     error     // the last failure, until a write succeeds
	openErr bool      // err is an open's failure (a write's stays until a write succeeds)
	retry   time.Time // no open before this after a failure
	dropped uint64    // lines lost since the file last worked
}

// openAccessLog opens path for appending (0640), creating it.
func openAccessLog(path string, maxBytes int64, keep int, failed func()) (*accessLogFile, error) {
	l := &accessLogFile{path: path, maxBytes: maxBytes, keep: keep, failed: failed}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *accessLogFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Write writes one line (the JSON handler writes each record whole), rotating first when it
// would take the file past maxBytes. While the file cannot be written the line is dropped and
// counted, and the error answered.
func (l *accessLogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, changed, err := l.write(p)
	l.mu.Unlock()
	if changed && l.failed != nil {
		l.failed()
	}
	return n, err
}

// write is Write under the lock; changed: the file failed, or worked again.
func (l *accessLogFile) write(p []byte) (n int, changed bool, err error) {
	wasFailing := l.err != nil
	n, err = l.writeLine(p)
	if err != nil {
		l.dropped++
		l.err = err
		return n, !wasFailing, err
	}
	l.err, l.openErr, l.dropped = nil, false, 0
	return n, wasFailing, nil
}

func (l *accessLogFile) writeLine(p []byte) (int, error) {
	if err := l.ensureOpen(); err != nil {
		return 0, err
	}
	if l.maxBytes > 0 && l.size > 0 && l.size+int64(len(p)) > l.maxBytes {
		if err := l.rotate(); err != nil {
			l.retry, l.openErr = time.Now().Add(accessLogRetry), l.f == nil
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		// A file that failed a write (disk full, I/O error) is opened afresh, at most once per
		// accessLogRetry; the failure stands until a line is written.
		_ = l.f.Close()
		l.f, l.retry, l.openErr = nil, time.Now().Add(accessLogRetry), false
	}
	return n, err
}

// ensureOpen opens the file if a failure closed it, at most once per accessLogRetry.
func (l *accessLogFile) ensureOpen() error {
	if l.f != nil {
		return nil
	}
	if time.Now().Before(l.retry) {
		return l.err
	}
	if err := l.open(); err != nil {
		l.retry, l.openErr = time.Now().Add(accessLogRetry), true
		return err
	}
	return nil
}

// rotate moves the file to .1 (and each older one up, dropping the last kept) and opens a new
// one. Without kept files the file is truncated.
func (l *accessLogFile) rotate() error {
	if err := l.f.Close(); err != nil {
		l.f = nil
		return fmt.Errorf("rotate %s: %w", l.path, err)
	}
	l.f = nil
	if l.keep == 0 {
		if err := os.Truncate(l.path, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", l.path, err)
		}
		return l.open()
	}
	name := func(i int) string { return l.path + "." + strconv.Itoa(i) }
	if err := os.Remove(name(l.keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate %s: %w", l.path, err)
	}
	for i := l.keep - 1; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", l.path, err)
		}
	}
	if err := os.Rename(l.path, name(1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate %s: %w", l.path, err)
	}
	return l.open()
}

// Reopen closes the file and opens its path again: after something else moved it away, the
// next lines go to a new file there.
func (l *accessLogFile) Reopen() error {
	l.mu.Lock()
	wasFailing := l.err != nil
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	err := l.open()
	if err != nil {
		l.err, l.openErr, l.retry = err, true, time.Now().Add(accessLogRetry)
	} else {
		l.err, l.openErr, l.dropped = nil, false, 0
	}
	changed := wasFailing != (err != nil)
	l.mu.Unlock()
	if changed && l.failed != nil {
		l.failed()
	}
	return err
}

// Err is why the last line could not be written, with the lines lost so far; nil once a line
// was written again.
// A file that could not be opened is tried again first, so that a log without traffic
// recovers too; a failed write stands until a line is written (only a write can tell that a
// full disk has room again).
func (l *accessLogFile) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil && l.openErr && l.ensureOpen() == nil {
		l.err, l.openErr, l.dropped = nil, false, 0
	}
	if l.err == nil {
		return nil
	}
	return fmt.Errorf("access log: %w (%d lines lost)", l.err, l.dropped)
}

// Close closes the file.
func (l *accessLogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
