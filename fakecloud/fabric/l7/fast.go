package l7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The fast path serves plain HTTP/1.x requests whose rule forwards to HTTP/1.1 targets
// without net/http's server and transport: one goroutine per client connection parses each
// request head itself, matches it with the listener's rules and relays it over a pooled,
// kept-alive target connection. A request it does not handle (HTTP/2 prior knowledge,
// Upgrade, Expect, absolute-form targets, rules with mirrors, rewrites, redirects, fixed
// responses, or non-HTTP/1.1 targets) hands its connection, the head included, to the
// listener's net/http server, which keeps it from then on.

const (
	// maxHeadBytes bounds a request or response head (as net/http's default, 1 MiB).
	maxHeadBytes = 1 << 20
	// maxChunkLine bounds a chunk-size line, extensions included.
	maxChunkLine = 4096
	// headTimeout bounds the reading of a request head once its first byte is in.
	headTimeout = 30 * time.Second
	// fastBufSize is the size of the per-connection read and write buffers.
	fastBufSize = 16 << 10
)

// errFallback is what parseRequest returns for a request the fast path leaves to net/http.
var errFallback = errors.New("l7: request left to net/http")

// errClientBody is a request body whose framing was malformed.
var errClientBody = errors.New("malformed request body")

// httpError is a malformed request: answered with code and the connection closed.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// errBadChunk is malformed chunked framing.
var errBadChunk = &httpError{code: http.StatusBadRequest, msg: "malformed chunked body"}

func badRequest(msg string) error { return &httpError{code: http.StatusBadRequest, msg: msg} }

// readHead reads one head (up to and including the empty line) into buf[:0], bounded by
// maxHeadBytes. Empty lines before a request line are skipped (RFC 9112 2.2).
func readHead(br *bufio.Reader, buf []byte, request bool) ([]byte, error) {
	head := buf[:0]
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		if len(head)+len(frag) > maxHeadBytes {
			return head, &httpError{code: http.StatusRequestHeaderFieldsTooLarge, msg: "request head too large"}
		}
		head = append(head, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(head) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return head, err
		}
		line := head[lineStart:]
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			if lineStart == 0 && request {
				head = head[:0] // a stray CRLF before the request line
				continue
			}
			if lineStart == 0 {
				return head, errors.New("empty response head")
			}
			return head, nil
		}
		lineStart = len(head)
	}
}

// fastRequest is a parsed request head.
type fastRequest struct {
	req     *http.Request
	target  string // the request-target as sent (origin-form)
	chunked bool
	length  int64 // Content-Length, -1 when chunked, 0 without a body
	close   bool  // the connection ends after this exchange
}

// trimLine cuts a line's CRLF (or bare LF).
func trimLine(l []byte) []byte {
	l = bytes.TrimSuffix(l, []byte{'\n'})
	return bytes.TrimSuffix(l, []byte{'\r'})
}

// splitLines yields the head's lines without their line ends, the final empty one excluded.
func splitLines(head []byte) [][]byte {
	var lines [][]byte
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		l := trimLine(head[:i+1])
		head = head[i+1:]
		if len(l) == 0 {
			break
		}
		lines = append(lines, l)
	}
	return lines
}

// parseHeaders parses header field lines strictly: a token name, a colon without space before
// it, a value without control characters; obs-fold (a line starting with space or tab) is
// refused.
func parseHeaders(lines [][]byte) (http.Header, error) {
	h := make(http.Header, len(lines))
	for _, l := range lines {
		if l[0] == ' ' || l[0] == '\t' {
			return nil, badRequest("obsolete line folding in header")
		}
		i := bytes.IndexByte(l, ':')
		if i <= 0 {
			return nil, badRequest("malformed header line")
		}
		name := string(l[:i])
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, badRequest("invalid header name " + strconv.Quote(name))
		}
		value := string(bytes.Trim(l[i+1:], " \t"))
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, badRequest("invalid header value for " + name)
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		h[key] = append(h[key], value)
	}
	return h, nil
}

// parseRequest parses a request head strictly. It returns errFallback for a request the fast
// path leaves to net/http, an *httpError for a malformed one.
func parseRequest(head []byte, remote string) (*fastRequest, error) {
	lines := splitLines(head)
	if len(lines) == 0 {
		return nil, badRequest("empty request")
	}
	rl := lines[0]
	if bytes.HasPrefix(rl, []byte("PRI * HTTP/2.0")) {
		return nil, errFallback // h2c by prior knowledge
	}
	sp1 := bytes.IndexByte(rl, ' ')
	if sp1 <= 0 {
		return nil, badRequest("malformed request line")
	}
	rest := rl[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return nil, badRequest("malformed request line")
	}
	method, target, proto := string(rl[:sp1]), string(rest[:sp2]), string(rest[sp2+1:])
	if !httpguts.ValidHeaderFieldName(method) { // a method is a token
		return nil, badRequest("invalid method")
	}
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		if strings.HasPrefix(proto, "HTTP/") {
			return nil, errFallback // let net/http answer other versions as it does
		}
		return nil, badRequest("malformed HTTP version")
	}
	if target == "" || target[0] != '/' || method == http.MethodConnect {
		return nil, errFallback // absolute-form, authority-form, asterisk-form
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return nil, badRequest("invalid request target")
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, badRequest("invalid request target")
	}
	if strings.Contains(u.RawQuery, ";") {
		return nil, errFallback // the proxy drops unparsable query parameters: net/http decides
	}
	h, err := parseHeaders(lines[1:])
	if err != nil {
		return nil, err
	}
	hosts := h["Host"]
	if len(hosts) > 1 || (minor == 1 && len(hosts) == 0) {
		return nil, badRequest("missing or repeated Host header")
	}
	host := ""
	if len(hosts) == 1 {
		host = hosts[0]
		if !httpguts.ValidHostHeader(host) {
			return nil, badRequest("invalid Host header")
		}
	}
	delete(h, "Host")
	if _, ok := h["Upgrade"]; ok {
		return nil, errFallback
	}
	if _, ok := h["Expect"]; ok {
		return nil, errFallback
	}
	fr := &fastRequest{target: target}
	if te, ok := h["Transfer-Encoding"]; ok {
		if minor == 0 {
			return nil, badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return nil, &httpError{code: http.StatusNotImplemented, msg: "unsupported transfer encoding"}
		}
		if _, ok := h["Content-Length"]; ok {
			return nil, badRequest("both Transfer-Encoding and Content-Length")
		}
		fr.chunked, fr.length = true, -1
	} else if cl, ok := h["Content-Length"]; ok {
		n, err := parseLength(cl)
		if err != nil {
			return nil, err
		}
		fr.length = n
	}
	conn := h["Connection"]
	fr.close = hasToken(conn, "close") || (minor == 0 && !hasToken(conn, "keep-alive"))
	fr.req = &http.Request{Method: method, URL: u, Proto: proto, ProtoMajor: 1, ProtoMinor: minor,
		Header: h, Host: host, RemoteAddr: remote, RequestURI: target, ContentLength: fr.length}
	if fr.length == 0 {
		fr.req.Body = http.NoBody
	}
	return fr, nil
}

// parseLength parses Content-Length values: digits only, repeated values all equal.
func parseLength(vs []string) (int64, error) {
	var n int64 = -1
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" || len(f) > 18 || strings.TrimLeft(f, "0123456789") != "" {
				return 0, badRequest("invalid Content-Length")
			}
			x, _ := strconv.ParseInt(f, 10, 64)
			if n >= 0 && x != n {
				return 0, badRequest("conflicting Content-Length values")
			}
			n = x
		}
	}
	return n, nil
}

// hopHeaders are removed from what is relayed either way, as the proxy does.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// stripHop removes the hop-by-hop headers and those the Connection header names.
func stripHop(h http.Header) {
	for _, f := range h["Connection"] {
		for t := range strings.SplitSeq(f, ",") {
			if t = textproto.TrimString(t); t != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(t))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// readChunkSize reads a chunk-size line (extensions ignored) strictly.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxChunkLine {
		return 0, errBadChunk
	}
	if err != nil {
		return 0, err
	}
	line = trimLine(line)
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, errBadChunk
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, errBadChunk
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}

// readCRLF consumes the CRLF that ends a chunk's data.
func readCRLF(br *bufio.Reader) error {
	b, err := br.Peek(2)
	if err != nil {
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errBadChunk
	}
	_, _ = br.Discard(2)
	return nil
}

// skipTrailers consumes a chunked body's trailer section (dropped, as the proxy's clients see
// none announced), bounded by maxHeadBytes.
func skipTrailers(br *bufio.Reader) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if total > maxHeadBytes {
			return errBadChunk
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return err
		}
		if len(trimLine(line)) == 0 {
			return nil
		}
	}
}

// copyChunked decodes a chunked body from br and writes its data to w, re-chunked when
// rechunk. flush, when set, is called after each chunk that br has nothing more of buffered.
func copyChunked(w *bufio.Writer, br *bufio.Reader, rechunk bool, flush func() error) (int64, error) {
	var total int64
	for {
		n, err := readChunkSize(br)
		if err != nil {
			return total, err
		}
		if n == 0 {
			if err := skipTrailers(br); err != nil {
				return total, err
			}
			if rechunk {
				_, err = w.WriteString("0\r\n\r\n")
			}
			return total, err
		}
		if rechunk {
			_, _ = w.WriteString(strconv.FormatInt(n, 16))
			_, _ = w.WriteString("\r\n")
		}
		c, err := io.CopyN(w, br, n)
		total += c
		if err != nil {
			return total, noEOF(err)
		}
		if err := readCRLF(br); err != nil {
			return total, noEOF(err)
		}
		if rechunk {
			if _, err := w.WriteString("\r\n"); err != nil {
				return total, err
			}
		}
		if flush != nil && br.Buffered() == 0 {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeHeader writes a header block's fields.
func writeHeader(w *bufio.Writer, h http.Header) {
	for k, vs := range h {
		for _, v := range vs {
			_, _ = w.WriteString(k)
			_, _ = w.WriteString(": ")
			_, _ = w.WriteString(v)
			_, _ = w.WriteString("\r\n")
		}
	}
}

// backendConn is a kept-alive connection to a target.
type backendConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
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

// fastConns are a fast listener's client connections, so a drain can close the idle ones and
// wait for the others.
type fastConns struct {
	mu      sync.Mutex
	conns   map[*fastConn]bool // value: idle (waiting for a request)
	closing bool
	wg      sync.WaitGroup
}

// setIdle marks c idle or busy; it reports false when the listener drains and c, idle, should
// end.
func (s *fastConns) setIdle(c *fastConn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = idle
	return true
}

func (s *fastConns) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c, idle := range s.conns {
		if idle {
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
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		fc := &fastConn{e: e, s: s, c: c}
		if !s.fast.setIdle(fc, true) {
			_ = c.Close()
			continue
		}
		s.fast.wg.Go(fc.serve)
	}
}

// fastConn is one client connection on the fast path.
type fastConn struct {
	e    *Engine
	s    *server
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	head []byte
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
		fc.s.fast.mu.Lock()
		delete(fc.s.fast.conns, fc)
		fc.s.fast.mu.Unlock()
		if !handed {
			_ = fc.c.Close()
			readerPool.Put(fc.br)
		}
		writerPool.Put(fc.bw)
	}()
	fc.br, fc.bw = getReader(fc.c), getWriter(fc.c)
	for {
		_ = fc.c.SetReadDeadline(time.Now().Add(fc.e.opts.IdleTimeout))
		if _, err := fc.br.Peek(1); err != nil {
			return
		}
		if !fc.s.fast.setIdle(fc, false) {
			return
		}
		_ = fc.c.SetReadDeadline(time.Now().Add(headTimeout))
		head, err := readHead(fc.br, fc.head, true)
		fc.head = head[:0]
		var fr *fastRequest
		if err == nil {
			fr, err = parseRequest(head, fc.c.RemoteAddr().String())
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
		_ = fc.c.SetReadDeadline(time.Time{})
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
	if a.fixed != nil || a.redirect != nil || a.rewrite != nil || len(a.mirrors) > 0 || a.totalWeight <= 0 {
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
	f := &flight{listener: l, rule: ru, path: fr.req.URL.EscapedPath()}
	defer func() { e.observe(fr.req, l, ru, f, rec, time.Since(start)) }()
	a := &ru.action
	f.backend = pickBackend(a)
	g := f.backend.group
	f.target = g.pick()
	if f.target == nil {
		return fc.answer(fr, rec, http.StatusServiceUnavailable, "no target available in target group "+g.name+"\n")
	}
	n := f.target.inflight
	n.Add(1)
	defer n.Add(-1)

	out := fr.req.Header.Clone()
	stripHop(out)
	if hasToken(fr.req.Header["Te"], "trailers") {
		out["Te"] = []string{"trailers"}
	}
	delete(out, "Forwarded")
	delete(out, "X-Forwarded-Host")
	delete(out, "X-Forwarded-Proto")
	delete(out, "X-Forwarded-For")
	editHeader(out, a.reqEdit)
	editHeader(out, f.backend.reqEdit)
	for _, h := range a.reserved {
		restore(out, fr.req.Header, h)
	}
	for _, h := range f.backend.reserved {
		restore(out, fr.req.Header, h)
	}
	outReq := &http.Request{Header: out}
	setForwarded(outReq, fr.req, l)
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = []string{""} // none added, as the proxy does
	}

	var deadline time.Time
	if a.timeout > 0 {
		deadline = start.Add(a.timeout)
	}
	pool := e.pool(g, f.target.hostport)
	bc, status, err := fc.roundTrip(pool, f.target.hostport, fr, out, deadline)
	if err != nil {
		f.err = err
		code := http.StatusBadGateway
		if errors.Is(err, errClientBody) {
			// The client's body was malformed or cut: 400, and the connection ends.
			fr.close = true
			return fc.answer(fr, rec, http.StatusBadRequest, "malformed request body\n")
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

// roundState is what a round trip left to its caller.
type roundState struct {
	code     int
	header   http.Header
	bodyLeft bool // the request body was not fully read from the client
}

// roundTrip sends the request head and body to the target (a pooled connection, or a new one;
// a pooled one that turns out closed before any answer is retried once on a new one when the
// body was not started) and reads the response head.
func (fc *fastConn) roundTrip(pool *backendPool, hostport string, fr *fastRequest, out http.Header,
	deadline time.Time) (*backendConn, roundState, error) {
	st := roundState{bodyLeft: fr.length != 0}
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
		_ = bc.c.SetDeadline(deadline)
		sentBody, err := fc.send(bc, fr, out, &st)
		if err == nil {
			err = readResponseHead(bc, fr, &st)
			if err == nil {
				return bc, st, nil
			}
		}
		_ = bc.c.Close()
		if reused && !sentBody && attempt == 0 && !isTimeout(err) {
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
// sentBody reports whether any body bytes were taken from the client.
func (fc *fastConn) send(bc *backendConn, fr *fastRequest, out http.Header, st *roundState) (bool, error) {
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
	case fr.length > 0 || fr.req.Header["Content-Length"] != nil:
		_, _ = w.WriteString("Content-Length: ")
		_, _ = w.WriteString(strconv.FormatInt(fr.length, 10))
		_, _ = w.WriteString("\r\n")
	}
	_, _ = w.WriteString("\r\n")
	if fr.length == 0 {
		return false, w.Flush()
	}
	var err error
	if fr.chunked {
		_, err = copyChunked(w, fc.br, true, nil)
		if errors.Is(err, errBadChunk) {
			return true, errClientBody
		}
	} else {
		_, err = io.CopyN(w, fc.br, fr.length)
		err = noEOF(err)
	}
	if err == nil {
		st.bodyLeft = false
		err = w.Flush()
	}
	return true, err
}

// readResponseHead reads the target's response head, skipping interim (1xx) responses.
func readResponseHead(bc *backendConn, fr *fastRequest, st *roundState) error {
	var buf []byte
	for {
		head, err := readHead(bc.br, buf, false)
		if err != nil {
			return err
		}
		lines := splitLines(head)
		sl := lines[0]
		if len(sl) < 12 || !bytes.HasPrefix(sl, []byte("HTTP/1.")) || sl[8] != ' ' {
			return errors.New("malformed status line from target")
		}
		code, err := strconv.Atoi(string(sl[9:12]))
		if err != nil || code < 100 || code > 999 || (len(sl) > 12 && sl[12] != ' ') {
			return errors.New("malformed status code from target")
		}
		h, err := parseHeaders(lines[1:])
		if err != nil {
			return errors.New("malformed header from target: " + err.Error())
		}
		if code >= 100 && code < 200 {
			if code == http.StatusSwitchingProtocols {
				return errors.New("unexpected 101 from target")
			}
			buf = head[:0]
			continue
		}
		if sl[7] == '0' && !hasToken(h["Connection"], "keep-alive") {
			h["Connection"] = append(h["Connection"], "close")
		}
		st.code, st.header = code, h
		return nil
	}
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
	reuse := !hasToken(h["Connection"], "close")
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
	stripHop(h)
	a := &f.rule.action
	editHeader(h, a.respEdit)
	editHeader(h, f.backend.respEdit)
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
		if declared != nil && fr.req.Method == http.MethodHead {
			h["Content-Length"] = declared
		}
	} else if length >= 0 {
		h["Content-Length"] = []string{strconv.FormatInt(length, 10)}
	} else if fr.req.ProtoMinor == 0 {
		clientClose = true // an HTTP/1.0 client reads to the close
	}
	rechunk := hasBody && length < 0 && fr.req.ProtoMinor == 1
	rec.status = st.code
	_, _ = w.WriteString("HTTP/1.1 ")
	_, _ = w.WriteString(strconv.Itoa(st.code))
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(http.StatusText(st.code))
	_, _ = w.WriteString("\r\n")
	writeHeader(w, h)
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
		n, err = io.CopyN(w, bc.br, length)
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
		_ = bc.c.SetDeadline(time.Time{})
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
