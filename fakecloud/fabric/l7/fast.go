package l7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The fast path serves plain HTTP/1.x requests whose rule forwards to HTTP/1.1 targets
// without net/http's server and transport: one goroutine per client connection parses each
// request head itself, matches it with the listener's rules and relays it over a pooled,
// kept-alive target connection. A request it does not handle (HTTP/2 prior knowledge,
// Upgrade, an Expect other than 100-continue, absolute-form targets, rules with mirrors,
// rewrites, redirects, fixed responses, or non-HTTP/1.1 targets) hands its connection, the
// head included, to the listener's net/http server, which keeps it from then on.

const (
	// headTimeout bounds the reading of a request head once its first byte is in.
	headTimeout = 30 * time.Second
	// fastBufSize is the size of the per-connection read and write buffers.
	fastBufSize = 16 << 10
)

// fastConns are a fast listener's client connections, so a drain can close the idle ones and
// wait for the others.
type fastConns struct {
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
	// killed is closed when a drain runs out of time: retries waiting for their backoff stop.
	killed chan struct{}
	kill   sync.Once
}

// sleep waits d, or until the listener's drain runs out of time: false then.
func (s *fastConns) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.killed:
		return false
	}
}

// add counts c in; false when the listener drains.
func (s *fastConns) add(c *fastConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *fastConns) remove(c *fastConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// setIdle marks c idle (waiting for a request) or busy; it reports false when the listener
// drains and c should end. c stores its mark before it reads closing and shutdown stores
// closing before it reads the marks, so one of them sees the other: a connection that turns
// busy during a drain either is waited for or ends.
func (s *fastConns) setIdle(c *fastConn, idle bool) bool {
	c.idle.Store(idle)
	return !s.closing.Load()
}

func (s *fastConns) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.c.SetReadDeadline(time.Now()) // wakes the reader, which ends the connection
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.kill.Do(func() { close(s.killed) })
		s.mu.Lock()
		for c := range s.conns {
			_ = c.c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// handoff is a listener that gives the net/http server the connections the fast path leaves
// to it.
type handoff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

// give hands c over; false when the server is gone.
func (h *handoff) give(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

// replayConn is a connection whose first bytes come from r (what the fast path read already).
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// serveFast accepts a plain HTTP listener's connections until its socket closes.
func (e *Engine) serveFast(s *server) error {
	go func() { _ = s.srv.Serve(s.handoff) }()
	return acceptLoop(s.ln, func(c net.Conn) {
		fc := &fastConn{e: e, s: s, c: c}
		fc.idle.Store(true)
		if !s.fast.add(fc) {
			_ = c.Close()
			return
		}
		s.fast.wg.Go(fc.serve)
	})
}

// headBuffered reports whether br holds a whole request head already: past the empty lines
// readHead skips, a line and then the empty line that ends the head.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	b = bytes.TrimLeft(b, "\r\n")
	return bytes.Contains(b, []byte("\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// fastConn is one client connection on the fast path.
type fastConn struct {
	e    *Engine
	s    *server
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	head []byte
	idle atomic.Bool // waiting for a request (fastConns.setIdle)
	// remote is the client's address (ip:port) and client its IP, for X-Forwarded-For.
	remote, client string
}

var (
	readerPool sync.Pool
	writerPool sync.Pool
)

func getReader(r io.Reader) *bufio.Reader {
	if br, ok := readerPool.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, fastBufSize)
}

func getWriter(w io.Writer) *bufio.Writer {
	if bw, ok := writerPool.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, fastBufSize)
}

func (fc *fastConn) serve() {
	handed := false
	defer func() {
		fc.s.fast.remove(fc)
		if !handed {
			_ = fc.c.Close()
			readerPool.Put(fc.br)
		}
		writerPool.Put(fc.bw)
	}()
	fc.br, fc.bw = getReader(fc.c), getWriter(fc.c)
	fc.remote = fc.c.RemoteAddr().String()
	fc.client = clientIP(fc.remote)
	for {
		_ = fc.c.SetReadDeadline(time.Now().Add(fc.e.opts.IdleTimeout))
		if _, err := fc.br.Peek(1); err != nil {
			return
		}
		if !fc.s.fast.setIdle(fc, false) {
			return
		}
		// A head that came whole in the first read needs no deadline of its own (the common
		// case: one segment); otherwise the rest must come within headTimeout.
		headDeadline := !headBuffered(fc.br)
		if headDeadline {
			_ = fc.c.SetReadDeadline(time.Now().Add(headTimeout))
		}
		head, err := readHead(fc.br, fc.head, true)
		fc.head = head[:0]
		var fr *fastRequest
		if err == nil {
			fr, err = parseRequest(head, fc.remote)
		}
		var he *httpError
		switch {
		case errors.As(err, &he):
			fc.fail(he.code, he.msg)
			return
		case errors.Is(err, errFallback):
			handed = fc.handOver(head)
			return
		case err != nil:
			return
		}
		if headDeadline || fr.length != 0 {
			// The body is read while the target answers, with no deadline but the rule's. A
			// request without one reads nothing more until the next head, whose idle deadline
			// replaces the one still set.
			_ = fc.c.SetReadDeadline(time.Time{})
		}
		l := fc.s.cur.Load()
		ru := l.match(fr.req, requestHost(fr.req.Host), fr.req.URL.EscapedPath())
		if !fastRule(ru) {
			handed = fc.handOver(head)
			return
		}
		if !fc.exchange(fr, l, ru) || fr.close {
			return
		}
		if !fc.s.fast.setIdle(fc, true) {
			return
		}
	}
}

// fastRule reports whether the fast path forwards requests matching ru.
func fastRule(ru *rule) bool {
	if ru == nil {
		return false // net/http answers the 404
	}
	a := &ru.action
	if a.fixed != nil || a.redirect != nil || a.rewrite != nil || a.hostTransform != nil || a.urlTransform != nil ||
		len(a.mirrors) > 0 || a.cors != nil || a.totalWeight <= 0 {
		return false
	}
	for i := range a.backends {
		if g := a.backends[i].group; g == nil || g.proto != ProtocolHTTP {
			return false
		}
	}
	return true
}

// handOver gives the connection, with the head read and whatever follows it, to the net/http
// server.
func (fc *fastConn) handOver(head []byte) bool {
	replay := append([]byte(nil), head...)
	_ = fc.c.SetReadDeadline(time.Time{})
	c := &replayConn{Conn: fc.c, r: io.MultiReader(bytes.NewReader(replay), fc.br)}
	fc.e.handoffs.Add(1)
	return fc.s.handoff.give(c)
}

// fail answers a malformed request and the connection ends.
func (fc *fastConn) fail(code int, msg string) {
	_, _ = fc.bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + msg)
	_ = fc.bw.Flush()
}

// exchange forwards one request and relays its response; false when the connection must end.
func (fc *fastConn) exchange(fr *fastRequest, l *listener, ru *rule) bool {
	e := fc.e
	start := time.Now()
	rec := &recorder{}
	f := &flight{listener: l, rule: ru, path: fr.req.URL.EscapedPath(), start: start}
	defer func() { e.observe(fr.req, l, ru, f, rec, time.Since(start)) }()
	a := &ru.action
	f.backend = pickBackend(a)
	g := f.backend.group
	f.target = g.pick()
	if f.target == nil {
		return fc.answer(fr, rec, http.StatusServiceUnavailable, "no target available in target group "+g.name+"\n")
	}
	f.target.inflight.Add(1)
	defer func() { f.target.inflight.Add(-1) }() // the last target tried

	out := outHeader(fr, a, f.backend, fc.client, l)
	retries := a.retry != nil
	if retries {
		var err error
		if retries, err = fc.holdBody(fr); err != nil {
			f.err = err
			fr.close = true
			return fc.answer(fr, rec, http.StatusBadRequest, "malformed request body\n")
		}
	}
	pool := f.target.pool
	var (
		bc     *backendConn
		status roundState
		err    error
	)
	for try := 1; ; try++ {
		bc, status, err = fc.roundTrip(pool, f.target.hostport, fr, out, a.tryDeadline(start))
		if !retries {
			break
		}
		t := a.retryTarget(f, try, status.code, err)
		if t == nil {
			break
		}
		if bc != nil {
			_ = bc.c.Close() // the failed answer is not read: its connection goes with it
		}
		e.retried(l, ru, f, err)
		if !fc.s.fast.sleep(a.retry.backoff) {
			bc, err = nil, errRetryCut
			break
		}
		f.retarget(t)
		pool = t.pool
	}
	if err != nil {
		f.err = err
		code := http.StatusBadGateway
		if errors.Is(err, errClientBody) {
			// The client's body was malformed or cut: 400, and the connection ends.
			fr.close = true
			return fc.answer(fr, rec, http.StatusBadRequest, "malformed request body\n")
		}
		if errors.As(err, new(errClientGone)) {
			// The client left while the target was being answered (before its 100 Continue,
			// say): no one to answer, and not the target's failure.
			rec.status = StatusClientClosedRequest
			return false
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		// A request body not read to its end leaves the connection out of step: it ends.
		fr.close = fr.close || status.bodyLeft
		return fc.answer(fr, rec, code, "")
	}
	return fc.relay(fr, f, rec, pool, bc, status)
}

// outHeader is the header fr goes to its target with: the client's without its hop-by-hop
// fields (Te: trailers kept) and Content-Length (send writes it), X-Forwarded-* replaced, and
// the action's and the backend's edits made. Without edits the request's own header is
// changed in place: nothing reads it after (the access log does not), and a clone is most of
// what the change would cost.
func outHeader(fr *fastRequest, a *action, b *backend, client string, l *listener) http.Header {
	in := fr.req.Header
	edits := !a.reqEdit.empty() || !b.reqEdit.empty()
	out := in
	if edits {
		out = in.Clone()
	}
	var prior []string // X-Forwarded-For as it came, before it is replaced
	if fr.flags&hasForwarded != 0 {
		prior = in["X-Forwarded-For"]
		delete(out, "Forwarded")
		delete(out, "X-Forwarded-Host")
		delete(out, "X-Forwarded-Proto")
		delete(out, "X-Forwarded-For")
	}
	if fr.flags&hasHop != 0 {
		trailers := hasToken(in["Te"], "trailers")
		stripHop(out, fr.flags)
		if trailers {
			out["Te"] = []string{"trailers"}
		}
	}
	if fr.declared {
		delete(out, "Content-Length")
	}
	if edits {
		editHeader(out, a.reqEdit)
		editHeader(out, b.reqEdit)
		for _, h := range a.reserved {
			restore(out, in, h)
		}
		for _, h := range b.reserved {
			restore(out, in, h)
		}
		// The framing is send's: an edit does not set it.
		delete(out, "Content-Length")
		delete(out, "Transfer-Encoding")
	}
	setForwardedFrom(out, prior, client, l)
	return out
}

// bodyAllowed reports whether a response to method with code has a body.
func bodyAllowed(method string, code int) bool {
	return method != http.MethodHead && code != http.StatusNoContent && code != http.StatusNotModified &&
		(code < 100 || code >= 200)
}

// relay writes the response head and streams the body to the client, then returns the target
// connection to the pool when it can be reused.
func (fc *fastConn) relay(fr *fastRequest, f *flight, rec *recorder, pool *backendPool, bc *backendConn, st roundState) bool {
	h := st.header
	reuse := !st.noReuse && !hasToken(h["Connection"], "close")
	var length int64 = -1 // -1: chunked; -2: until the target closes
	hasBody := bodyAllowed(fr.req.Method, st.code)
	switch {
	case !hasBody:
		length = 0
	case h["Transfer-Encoding"] != nil:
		if te := h["Transfer-Encoding"]; len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			reuse, length = false, -2
		}
	case h["Content-Length"] != nil:
		n, err := parseLength(h["Content-Length"])
		if err != nil {
			_ = bc.c.Close()
			f.err = errors.New("invalid Content-Length from target")
			fr.close = fr.close || st.bodyLeft
			return fc.answer(fr, rec, http.StatusBadGateway, "")
		}
		length = n
	default:
		reuse, length = false, -2
	}
	declared := h["Content-Length"]
	delete(h, "Content-Length") // written below, from length
	stripHop(h, st.flags)
	a := &f.rule.action
	if !a.respEdit.empty() || !f.backend.respEdit.empty() {
		editHeader(h, a.respEdit)
		editHeader(h, f.backend.respEdit)
		// The framing is the proxy's: an edit does not set it.
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
	}
	if _, ok := h["Content-Type"]; !ok && hasBody && length != 0 && !a.dropsContentType && !f.backend.dropsContentType {
		peek := 512
		if length > 0 && length < 512 {
			peek = int(length)
		}
		if length == -1 { // the first chunk's data is past its size line: sniff what is buffered
			peek = 0
		}
		if peek > 0 {
			b, _ := bc.br.Peek(peek)
			if len(b) > 0 {
				h["Content-Type"] = []string{http.DetectContentType(b)}
			}
		}
	}
	w := fc.bw
	clientClose := fr.close || st.bodyLeft
	if !hasBody {
		if declared != nil { // relayed as it came (a HEAD's length, say)
			h["Content-Length"] = declared
		}
	} else if length < 0 && fr.req.ProtoMinor == 0 {
		clientClose = true // an HTTP/1.0 client reads to the close
	}
	rechunk := hasBody && length < 0 && fr.req.ProtoMinor == 1
	rec.status = st.code
	writeStatusLine(w, st.code)
	writeHeader(w, h)
	if hasBody && length >= 0 {
		writeLength(w, length)
	}
	if rechunk {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if clientClose {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
	var (
		n   int64
		err error
	)
	switch {
	case !hasBody || length == 0:
	case length > 0:
		n, err = copyN(w, bc.br, length)
		err = noEOF(err)
	case length == -1:
		n, err = copyChunked(w, bc.br, rechunk, w.Flush)
	default: // until the target closes
		for {
			var m int64
			m, err = io.CopyN(w, bc.br, int64(bc.br.Buffered()+1))
			n += m
			if err == nil && bc.br.Buffered() == 0 {
				err = w.Flush()
			}
			if err != nil {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if rechunk {
			_, _ = w.WriteString("0\r\n\r\n")
		}
	}
	rec.bytes = n
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		f.err = err
		_ = bc.c.Close()
		_ = w.Flush() // what came is sent; the response is cut: the client sees the connection end
		return false
	}
	if reuse {
		bc.setDeadline(time.Time{})
		pool.put(bc)
	} else {
		_ = bc.c.Close()
	}
	return !clientClose
}

// answer writes the engine's own short response (errors), as net/http would for the proxy's.
func (fc *fastConn) answer(fr *fastRequest, rec *recorder, code int, body string) bool {
	rec.status = code
	w := fc.bw
	_, _ = w.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
	_, _ = w.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n")
	if body != "" {
		_, _ = w.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
	}
	_, _ = w.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	if fr.close {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
	if fr.req.Method != http.MethodHead {
		n, _ := w.WriteString(body)
		rec.bytes = int64(n)
	}
	return w.Flush() == nil && !fr.close
}

// errRetryCut is a retry given up because the listener's drain ran out of time during its
// backoff.
var errRetryCut = errors.New("the listener closed during a retry's backoff")

// holdBody reads fr's body from the client before its first try, so that a retry can send it
// again, and reports whether fr may be retried: it has no body, or one of at most
// retryBodyLimit bytes by Content-Length, and does not expect 100 Continue. An error is the
// client's body cut short.
func (fc *fastConn) holdBody(fr *fastRequest) (bool, error) {
	switch {
	case fr.length == 0:
		return true, nil
	case fr.chunked || fr.expect || fr.length > retryBodyLimit:
		return false, nil
	}
	body := make([]byte, fr.length)
	if _, err := io.ReadFull(fc.br, body); err != nil {
		return false, fmt.Errorf("%w: %w", errClientBody, err)
	}
	fr.body = body
	return true, nil
}
