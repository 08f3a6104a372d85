package cni

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
)

// fileLog appends plain lines to the config's logFile. A plugin's stdout belongs to the result
// and its stderr is rarely kept by runtimes, so this file is the operator's record. A nil
// *fileLog (no logFile, or one that cannot be opened) drops every line: logging never fails a verb.
type fileLog struct {
	f      *os.File
	prefix string
}

func openLog(path, verb string, args *skel.CmdArgs) *fileLog {
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil
	}
	return &fileLog{f: f, prefix: fmt.Sprintf("pid=%d %s container=%s ifname=%s netns=%s",
		os.Getpid(), verb, args.ContainerID, args.IfName, args.Netns)}
}

// printf writes one line: time, the invocation, the message. One write call per line, so lines
// of concurrent plugins (O_APPEND) do not interleave.
func (l *fileLog) printf(format string, a ...any) {
	if l == nil {
		return
	}
	line := time.Now().UTC().Format(time.RFC3339Nano) + " " + l.prefix + " " + fmt.Sprintf(format, a...) + "\n"
	_, _ = l.f.WriteString(line)
}

func (l *fileLog) close() {
	if l != nil {
		_ = l.f.Close()
	}
}
