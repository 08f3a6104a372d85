// Package httpservetest checks, over real connections, that an HTTP server closes an idle
// keep-alive connection and cuts a request whose body never arrives.
package httpservetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/flatnet/flatnet/internal/httpserve"
)

// Short are timeouts short enough for a test to wait them out.
var Short = httpserve.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 300 * time.Millisecond, Write: 2 * time.Second, Idle: 300 * time.Millisecond}

// patience is how long the checks wait for the server to close a connection: far beyond Short,
// so that a slow machine never fails them, yet far below "never".
const patience = 15 * time.Second

// CheckTimeouts checks the server at addr (host:port), which must run with Short: a connection
// left idle after a GET of path is closed, and a POST to path that announces 100 bytes of body
// and sends 1 is cut (answered or closed, and the connection closed).
func CheckTimeouts(t *testing.T, addr, path string) {
	t.Helper()
	CheckTimeoutsDial(t, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, patience) }, path)
}

// CheckTimeoutsDial is CheckTimeouts over the connections dial opens (a TLS server's, say).
func CheckTimeoutsDial(t *testing.T, dial func() (net.Conn, error), path string) {
	t.Helper()
	if err := idleClosed(dial, path); err != nil {
		t.Errorf("idle keep-alive connection: %v", err)
	}
	if err := slowBodyCut(dial, path); err != nil {
		t.Errorf("slow request body: %v", err)
	}
}

func idleClosed(dial func() (net.Conn, error), path string) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("first answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		return errors.New("the server closed the connection after the first answer: nothing left to test")
	}
	return waitClosed(c, br)
}

func slowBodyCut(dial func() (net.Conn, error), path string) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", path); err != nil {
		return err
	}
	return waitClosed(c, bufio.NewReader(c))
}

// waitClosed reads (and drops any answer) until the server closes c, failing after patience.
func waitClosed(c net.Conn, br *bufio.Reader) error {
	if err := c.SetReadDeadline(time.Now().Add(patience)); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("still open after %v", patience)
	}
	return nil // EOF or a reset: closed
}
