package l7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// The target side of the fast path: kept-alive target connections and their pools, and one
// round trip over them (the request head and body out, 100-continue and interim answers, the
// response head in). fast.go is the client side.

// expectContinueTimeout is how long a request with Expect: 100-continue waits for the target's
// answer before its body is sent anyway (RFC 9110 10.1.1), as net/http's transport does on the
// other path.
const expectContinueTimeout = time.Second

// backendConn is a kept-alive connection to a target.
type backendConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	// deadline: the connection has one set (a rule's timeout); without, setting none again is
	// skipped.
	deadline bool
	// head is the buffer the response heads are read into, kept for the next.
	head []byte
}

// setDeadline sets (or, with a zero t, clears) the connection's deadline when it changes
// anything.
func (bc *backendConn) setDeadline(t time.Time) {
	if t.IsZero() && !bc.deadline {
		return
	}
	_ = bc.c.SetDeadline(t)
	bc.deadline = !t.IsZero()
}

// backendPool holds a target's idle connections (per target group, so a group's change of
// protocol or TLS does not reuse them).
type backendPool struct {
	mu     sync.Mutex
	idle   []*backendConn
	closed bool // its target left the configuration: nothing more is kept
}

// maxIdlePerTarget bounds a target's idle fast-path connections, as the transport's
// MaxIdleConnsPerHost does.
const maxIdlePerTarget = 1024

func (p *backendPool) get() *backendConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		bc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return bc
	}
	return nil
}

func (p *backendPool) put(bc *backendConn) {
	p.mu.Lock()
	if !p.closed && len(p.idle) < maxIdlePerTarget {
		p.idle = append(p.idle, bc)
		bc = nil
	}
	p.mu.Unlock()
	if bc != nil {
		_ = bc.c.Close()
	}
}

func (p *backendPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, bc := range idle {
		_ = bc.c.Close()
	}
}

// close closes the idle connections and keeps none from now on.
func (p *backendPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.closeIdle()
}

// poolKey names the pool of one target of one group.
func poolKey(g *group, hostport string) string { return transportKey(g) + "\x00" + hostport }

func (e *Engine) pool(g *group, hostport string) *backendPool {
	key := poolKey(g, hostport)
	if p, ok := e.pools.Load(key); ok {
		return p.(*backendPool)
	}
	p, _ := e.pools.LoadOrStore(key, &backendPool{})
	return p.(*backendPool)
}

// roundState is what a round trip left to its caller.
type roundState struct {
	code     int
	header   http.Header
	flags    headFlags // header's (parseHeaders)
	bodyLeft bool      // the request body was not fully read from the client
	// noReuse: the target connection is not kept (it answered a request that expected 100
	// Continue before its body was sent, so where that connection stands is unclear).
	noReuse bool
}

// roundTrip sends the request head and body to the target (a pooled connection, or a new one;
// a pooled one that turns out closed before any answer is retried once on a new one when the
// body was not started) and reads the response head.
func (fc *fastConn) roundTrip(pool *backendPool, hostport string, fr *fastRequest, out http.Header,
	deadline time.Time) (*backendConn, roundState, error) {
	st := roundState{bodyLeft: fr.length != 0 && fr.body == nil}
	for attempt := 0; ; attempt++ {
		bc := pool.get()
		reused := bc != nil
		if bc == nil {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if !deadline.IsZero() {
				ctx, cancel = context.WithDeadline(ctx, deadline)
			}
			c, err := fc.e.opts.Dial(ctx, "tcp", hostport)
			cancel()
			if err != nil {
				return nil, st, err
			}
			bc = &backendConn{c: c, br: bufio.NewReaderSize(c, fastBufSize), bw: bufio.NewWriterSize(c, fastBufSize)}
		}
		bc.setDeadline(deadline)
		sentBody, err := fc.send(bc, fr, out, &st, deadline)
		if err == nil && st.code == 0 {
			err = readResponseHead(bc, &st, fc.interimTo(fr))
		}
		if err == nil {
			return bc, st, nil
		}
		_ = bc.c.Close()
		if reused && !sentBody && attempt == 0 && !isTimeout(err) && !errors.As(err, new(errClientGone)) {
			continue
		}
		return nil, st, err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// send writes the request head and body: one write for a head and a body already buffered.
// sentBody reports whether any body bytes were taken from the client. A request that expects
// 100 Continue sends its head alone and waits for the target (awaitContinue); when the target
// gives its final answer instead, st holds it and no body is sent.
func (fc *fastConn) send(bc *backendConn, fr *fastRequest, out http.Header, st *roundState, deadline time.Time) (bool, error) {
	w := bc.bw
	_, _ = w.WriteString(fr.req.Method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(fr.target)
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(fr.req.Host)
	_, _ = w.WriteString("\r\n")
	writeHeader(w, out)
	switch {
	case fr.chunked:
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	case fr.length > 0 || fr.declared:
		writeLength(w, fr.length)
	}
	_, _ = w.WriteString("\r\n")
	if fr.length == 0 {
		return false, w.Flush()
	}
	if fr.body != nil { // held for retries: nothing more is taken from the client
		_, _ = w.Write(fr.body)
		return false, w.Flush()
	}
	if fr.expect {
		if err := w.Flush(); err != nil {
			return false, err
		}
		proceed, err := awaitContinue(bc, st, deadline, fc.interimTo(fr))
		if err != nil || !proceed {
			st.noReuse = err == nil
			return false, err
		}
		_, _ = fc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := fc.bw.Flush(); err != nil {
			return true, errClientGone{err} // not worth a retry
		}
	}
	var err error
	if fr.chunked {
		_, err = copyChunked(w, fc.br, true, nil)
		if errors.Is(err, errBadChunk) {
			return true, errClientBody
		}
	} else {
		_, err = copyN(w, fc.br, fr.length)
		err = noEOF(err)
	}
	if err == nil {
		st.bodyLeft = false
		err = w.Flush()
	}
	return true, err
}

// keptHeadBuffer bounds the response-head buffer an idle target connection keeps.
const keptHeadBuffer = 4 << 10

// readResponseHead reads the target's response head. Interim (1xx) answers before it go to
// the client of interim (nil: dropped).
func readResponseHead(bc *backendConn, st *roundState, interim *fastConn) error {
	for {
		code, h, flags, err := readStatusHead(bc)
		if err != nil {
			return err
		}
		if code < 200 {
			if err := interim.writeInterim(code, h, flags); err != nil {
				return err
			}
			continue
		}
		st.code, st.header, st.flags = code, h, flags
		return nil
	}
}

// readStatusHead reads one response head from the target: its status code and header. A 101
// is an error (the fast path sends no Upgrade); an HTTP/1.0 answer without keep-alive gets
// Connection: close.
func readStatusHead(bc *backendConn) (int, http.Header, headFlags, error) {
	head, err := readHead(bc.br, bc.head[:0], false)
	if err != nil {
		return 0, nil, 0, err
	}
	if cap(head) <= keptHeadBuffer {
		bc.head = head[:0] // what is kept of it is copied (parseHeaders)
	}
	var buf [headLines][]byte
	lines := splitLines(head, buf[:])
	sl := lines[0]
	if len(sl) < 12 || !bytes.HasPrefix(sl, []byte("HTTP/1.")) || sl[8] != ' ' {
		return 0, nil, 0, errors.New("malformed status line from target")
	}
	code := 0
	for _, c := range sl[9:12] {
		if c < '0' || c > '9' {
			return 0, nil, 0, errors.New("malformed status code from target")
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || (len(sl) > 12 && sl[12] != ' ') {
		return 0, nil, 0, errors.New("malformed status code from target")
	}
	h, flags, err := parseHeaders(lines[1:])
	if err != nil {
		return 0, nil, 0, errors.New("malformed header from target: " + err.Error())
	}
	if code == http.StatusSwitchingProtocols {
		return 0, nil, 0, errors.New("unexpected 101 from target")
	}
	if code >= 200 && sl[7] == '0' && !hasToken(h["Connection"], "keep-alive") {
		h["Connection"] = append(h["Connection"], "close")
		flags |= hasHop
	}
	return code, h, flags, nil
}

// awaitContinue waits, after a request head that expects 100 Continue, for the target's
// answer: true to send the body (a 100 Continue came, or no 100 and no final answer within
// expectContinueTimeout, interim answers such as 103 not counting), false when the target gave
// its final answer first (st holds it; the body stays with the client). An error is the
// target's, or the rule's timeout.
func awaitContinue(bc *backendConn, st *roundState, deadline time.Time, interim *fastConn) (bool, error) {
	wait := time.Now().Add(expectContinueTimeout)
	if !deadline.IsZero() && deadline.Before(wait) {
		wait = deadline
	}
	for {
		// Peek takes nothing from the connection: after a timeout the answer, if any comes,
		// is read whole as the response head. Once an answer has begun, its head is read
		// under the rule's deadline only.
		_ = bc.c.SetReadDeadline(wait)
		bc.deadline = true
		_, err := bc.br.Peek(1)
		bc.setDeadline(deadline)
		if err != nil {
			if isTimeout(err) && (deadline.IsZero() || time.Now().Before(deadline)) {
				return true, nil // no answer in time: the body goes anyway
			}
			return false, err
		}
		code, h, flags, err := readStatusHead(bc)
		switch {
		case err != nil:
			return false, err
		case code == http.StatusContinue:
			return true, nil
		case code < 200:
			// Another interim answer (103): passed on, and the wait goes on within the same
			// time.
			if err := interim.writeInterim(code, h, flags); err != nil {
				return false, err
			}
			continue
		}
		st.code, st.header, st.flags = code, h, flags
		return false, nil
	}
}

// interimTo is the connection the target's interim (1xx) answers to fr are passed on to, as a
// proxy must (RFC 9110 15.2); nil for an HTTP/1.0 client, which gets none.
func (fc *fastConn) interimTo(fr *fastRequest) *fastConn {
	if fr.req.ProtoMinor == 0 {
		return nil
	}
	return fc
}

// writeInterim passes an interim answer on to the client, flushed at once, its hop-by-hop
// fields dropped; on a nil fc (interimTo's for HTTP/1.0) it drops it.
func (fc *fastConn) writeInterim(code int, h http.Header, flags headFlags) error {
	if fc == nil {
		return nil
	}
	stripHop(h, flags)
	w := fc.bw
	writeStatusLine(w, code)
	writeHeader(w, h)
	_, _ = w.WriteString("\r\n")
	if err := w.Flush(); err != nil {
		return errClientGone{err}
	}
	return nil
}

// errClientGone is a write to the client that failed while the target was being answered.
type errClientGone struct{ err error }

func (e errClientGone) Error() string { return "writing to the client: " + e.err.Error() }
func (e errClientGone) Unwrap() error { return e.err }

// copyN copies n bytes from r to w as io.CopyN does, without its LimitReader: what r has
// buffered goes to w's buffer, or straight to w's writer when it is larger.
func copyN(w *bufio.Writer, r *bufio.Reader, n int64) (int64, error) {
	var done int64
	for done < n {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				return done, err
			}
		}
		p, _ := r.Peek(int(min(int64(r.Buffered()), n-done)))
		m, err := w.Write(p)
		_, _ = r.Discard(m)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
