package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Container logs are kept as the CRI runtimes keep them, one entry a line:
//
//	<RFC 3339 time, nanoseconds> <stdout|stderr> <F|P> <text>
//
// F ends a line of the program's output, P is a piece of a longer one. A container's output goes
// through pipes to a log writer, "flatnet-node-agent container-log" (a process of its own session,
// so that it outlives the agent as the container does), which stamps each line with the time it
// read it and writes <sandbox>_<container>.log, moving it to .log.1 when it would pass the size cap
// (so a container keeps at most twice the cap). A restarted container's last log is kept as
// .previous.log (and .previous.log.1) for previous=true.

// maxLogLine is the longest piece of a line one entry holds (as containerd's 16 KiB).
const maxLogLine = 16 << 10

// LogWriterFDs are the descriptors the log writer reads: the container's stdout and stderr.
const (
	logWriterStdoutFD = 3
	logWriterStderrFD = 4
)

// LogWriterMain is the "container-log" subcommand: it copies the container's stdout (fd 3) and
// stderr (fd 4) into path as timestamped entries until both end, keeping path under maxBytes by
// moving it to path.1.
func LogWriterMain(path string, maxBytes int64) error {
	w, err := openRotatingLog(path, maxBytes)
	if err != nil {
		return err
	}
	defer w.close()
	var wg sync.WaitGroup
	for _, s := range []struct {
		fd   uintptr
		name string
	}{{logWriterStdoutFD, "stdout"}, {logWriterStderrFD, "stderr"}} {
		f := os.NewFile(s.fd, s.name)
		if f == nil {
			return fmt.Errorf("file descriptor %d (%s) is not open", s.fd, s.name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			copyLines(f, s.name, w, time.Now)
		}()
	}
	wg.Wait()
	return w.err()
}

// copyLines reads r to its end and writes each line (pieces of at most maxLogLine) as an entry.
func copyLines(r io.Reader, stream string, w *rotatingLog, now func() time.Time) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			w.entry(now(), stream, 'F', line[:len(line)-1])
		case errors.Is(err, bufio.ErrBufferFull):
			w.entry(now(), stream, 'P', line)
		case len(line) > 0: // the last line, without its newline
			w.entry(now(), stream, 'F', line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// rotatingLog is a log file of entries with a size cap.
type rotatingLog struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	f        *os.File
	size     int64
	firstErr error
}

func openRotatingLog(path string, maxBytes int64) (*rotatingLog, error) {
	w := &rotatingLog{path: path, maxBytes: maxBytes}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *rotatingLog) open() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the container log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open the container log: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// entry writes one entry, moving the file to .1 first when the entry would take it past the cap.
// A failed write is remembered and the output dropped: the container must not block on its log.
func (w *rotatingLog) entry(t time.Time, stream string, tag byte, text []byte) {
	var b bytes.Buffer
	b.WriteString(t.UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteByte(tag)
	b.WriteByte(' ')
	b.Write(text)
	b.WriteByte('\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	if w.size > 0 && w.size+int64(b.Len()) > w.maxBytes {
		w.f.Close()
		w.f = nil
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			w.fail(err)
			return
		}
		if err := w.open(); err != nil {
			w.fail(err)
			return
		}
	}
	n, err := w.f.Write(b.Bytes())
	w.size += int64(n)
	if err != nil {
		w.fail(err)
	}
}

func (w *rotatingLog) fail(err error) {
	if w.firstErr == nil {
		w.firstErr = err
	}
}

func (w *rotatingLog) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstErr
}

func (w *rotatingLog) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// startLogWriter starts the log writer of a container that logs to path and returns the write
// ends of its stdout and stderr pipes, for the container; the caller closes them once the
// container has started. The writer ends when every holder of the write ends has closed them.
func startLogWriter(self, path string, maxBytes int64) (stdout, stderr *os.File, err error) {
	// Created here, so that a log that cannot be written fails the start, not the writer.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open the container log %s: %w", path, err)
	}
	f.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, err
	}
	cmd := exec.Command(self, "container-log", "--path", path, "--max-bytes", strconv.FormatInt(maxBytes, 10))
	cmd.ExtraFiles = []*os.File{outR, errR} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	outR.Close()
	errR.Close()
	if err != nil {
		outW.Close()
		errW.Close()
		return nil, nil, fmt.Errorf("start the log writer: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reaped here while the agent runs, by init after
	return outW, errW, nil
}

// logEntry is one parsed entry of a container log.
type logEntry struct {
	time   time.Time
	stream string
	full   bool // F: the entry ends a line
	text   []byte
}

// parseLogEntry parses one line of a log file (without its newline).
func parseLogEntry(line []byte) (logEntry, error) {
	var e logEntry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return e, fmt.Errorf("log entry %.40q: no time", line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, fmt.Errorf("log entry %.40q: %w", line, err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || string(stream) != "stdout" && string(stream) != "stderr" {
		return e, fmt.Errorf("log entry %.40q: no stream", line)
	}
	tag, text, ok := bytes.Cut(rest, []byte{' '})
	if !ok || string(tag) != "F" && string(tag) != "P" {
		return e, fmt.Errorf("log entry %.40q: no F or P tag", line)
	}
	return logEntry{time: t, stream: string(stream), full: tag[0] == 'F', text: text}, nil
}

// logOptions are the kubelet's container log parameters this agent serves.
type logOptions struct {
	follow     bool
	previous   bool
	timestamps bool
	since      time.Time // zero: from the start
	tailLines  int64     // negative: every line
	limitBytes int64     // 0: no limit
	stream     string    // "" for both, or stdout or stderr
}

// logFiles are a container's log files, oldest first.
func logFiles(base string, previous bool) []string {
	if previous {
		base = previousLog(base)
	}
	return []string{base + ".1", base}
}

// previousLog is where a restarted container's last log is kept.
func previousLog(path string) string {
	return path[:len(path)-len(".log")] + ".previous.log"
}

// keepPreviousLog moves a container's log (and its rotated part) aside before the container
// starts again.
func keepPreviousLog(path string) {
	prev := previousLog(path)
	for _, suffix := range []string{"", ".1"} {
		_ = os.Remove(prev + suffix)
		_ = os.Rename(path+suffix, prev+suffix)
	}
}

// logSink writes the selected entries to the client, as the kubelet does: the text of each
// entry (its time first with timestamps), a newline after a full line, up to limitBytes.
type logSink struct {
	w       io.Writer
	opts    logOptions
	written int64
}

var errLimitReached = errors.New("limitBytes reached")

func (s *logSink) selected(e logEntry) bool {
	return (s.opts.stream == "" || e.stream == s.opts.stream) && (s.opts.since.IsZero() || !e.time.Before(s.opts.since))
}

func (s *logSink) write(e logEntry) error {
	var b []byte
	if s.opts.timestamps {
		b = append(b, e.time.Format(time.RFC3339Nano)...)
		b = append(b, ' ')
	}
	b = append(b, e.text...)
	if e.full {
		b = append(b, '\n')
	}
	if s.opts.limitBytes > 0 && s.written+int64(len(b)) > s.opts.limitBytes {
		b = b[:s.opts.limitBytes-s.written]
	}
	n, err := s.w.Write(b)
	s.written += int64(n)
	if err != nil {
		return err
	}
	if s.opts.limitBytes > 0 && s.written >= s.opts.limitBytes {
		return errLimitReached
	}
	if f, ok := s.w.(interface{ Flush() }); ok && s.opts.follow {
		f.Flush()
	}
	return nil
}

// readLog writes the container's log at base to w by opts. With follow it then waits for more
// until ctx ends or running reports the container stopped and everything written was read.
func readLog(ctx context.Context, w io.Writer, base string, opts logOptions, running func() bool) error {
	sink := &logSink{w: w, opts: opts}
	files := logFiles(base, opts.previous)
	if opts.tailLines >= 0 {
		if err := writeTail(sink, files); err != nil {
			return done(err)
		}
		if !opts.follow {
			return nil
		}
		// Follow from the end of what the tail read.
		return done(follow(ctx, sink, files[1], true, running))
	}
	old, err := os.Open(files[0])
	if err == nil {
		err = copyEntries(sink, old)
		old.Close()
		if err != nil {
			return done(err)
		}
	}
	if !opts.follow {
		f, err := os.Open(files[1])
		if errors.Is(err, os.ErrNotExist) && old != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("no log: %w", err)
		}
		defer f.Close()
		return done(copyEntries(sink, f))
	}
	return done(follow(ctx, sink, files[1], false, running))
}

// done turns the end of a limited read into success.
func done(err error) error {
	if errors.Is(err, errLimitReached) {
		return nil
	}
	return err
}

// copyEntries writes the selected entries of r to the sink, until r's end.
func copyEntries(sink *logSink, r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if e, perr := parseLogEntry(line[:len(line)-1]); perr == nil && sink.selected(e) {
				if werr := sink.write(e); werr != nil {
					return werr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeTail writes the last tailLines selected lines of the files.
func writeTail(sink *logSink, files []string) error {
	n := sink.opts.tailLines
	var ring []logEntry
	found := false
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		found = true
		br := bufio.NewReader(f)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				if e, perr := parseLogEntry(line[:len(line)-1]); perr == nil && sink.selected(e) {
					e.text = bytes.Clone(e.text)
					ring = append(ring, e)
				}
			}
			if err != nil {
				break
			}
		}
		f.Close()
		// Drop whole lines from the front: a line's P pieces count with its F.
		ring = lastEntries(ring, n)
	}
	if !found {
		return fmt.Errorf("no log at %s", files[len(files)-1])
	}
	for _, e := range ring {
		if err := sink.write(e); err != nil {
			return err
		}
	}
	return nil
}

// lastEntries keeps the entries of the last n lines.
func lastEntries(es []logEntry, n int64) []logEntry {
	if n == 0 {
		return nil
	}
	lines := int64(0)
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].full {
			lines++
			if lines > n {
				return es[i+1:]
			}
		}
	}
	return es
}

// follow writes the entries of the log file at path as they come: from its start, or from its
// end when fromEnd. A rotation is followed: the open file (now path.1) is read to its end, then
// the new file from its start. It returns when ctx ends, or when running reports the container
// stopped and nothing more came.
func follow(ctx context.Context, sink *logSink, path string, fromEnd bool, running func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("no log: %w", err)
	}
	defer func() { f.Close() }()
	if fromEnd {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			return err
		}
	}
	br := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := br.ReadBytes('\n')
		partial = append(partial, line...)
		if err == nil {
			if e, perr := parseLogEntry(partial[:len(partial)-1]); perr == nil && sink.selected(e) {
				if werr := sink.write(e); werr != nil {
					return werr
				}
			}
			partial = partial[:0]
			continue
		}
		if err != io.EOF {
			return err
		}
		// At the end: a new file means a rotation (this one is read to its end by now).
		if cur, serr := os.Stat(path); serr == nil {
			if fi, ferr := f.Stat(); ferr == nil && !os.SameFile(cur, fi) && len(partial) == 0 {
				nf, oerr := os.Open(path)
				if oerr == nil {
					f.Close()
					f = nf
					br.Reset(f)
					continue
				}
			}
		}
		stopped := !running()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		if stopped {
			// One more read after the container stopped catches what its writer flushed last.
			if n, _ := br.Peek(1); len(n) == 0 {
				return nil
			}
		}
	}
}
