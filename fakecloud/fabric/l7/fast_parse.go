package l7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The fast path's HTTP/1.x request-head parser and chunked-body codec.

const (
	// maxHeadBytes bounds a request or response head (as net/http's default, 1 MiB).
	maxHeadBytes = 1 << 20
	// maxChunkLine bounds a chunk-size line, extensions included.
	maxChunkLine = 4096
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
	// expect: the client sent Expect: 100-continue with a body, and waits for a 100 Continue
	// (or its own timeout) before sending it.
	expect bool
	// declared: the head had a Content-Length. It is not relayed as it came: send writes the
	// length.
	declared bool
	flags    headFlags // of req.Header as parsed
	// body is the request body when the engine holds it for retries (holdBody): each try
	// sends it, and the client's connection has nothing of it left.
	body []byte
}

// trimLine cuts a line's CRLF (or bare LF).
func trimLine(l []byte) []byte {
	if n := len(l); n > 0 && l[n-1] == '\n' {
		l = l[:n-1]
	}
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l
}

// splitLines appends the head's lines to lines[:0] without their line ends, the final empty
// one excluded. The lines are slices of head (parseHeaders relies on it). A caller passes an
// array of its own stack (headLines) so that a common head needs no allocation.
func splitLines(head []byte, lines [][]byte) [][]byte {
	lines = lines[:0]
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
// refused. The lines are consecutive slices of one head (splitLines'): the block they span is
// copied into one string, of which every name and value is a part, and the values share one
// backing array, so a head costs a few allocations, not three a field.
func parseHeaders(lines [][]byte) (http.Header, headFlags, error) {
	h := make(http.Header, len(lines))
	var flags headFlags
	if len(lines) == 0 {
		return h, 0, nil
	}
	// A line's offset in the block is how much less room it has to the end of the array.
	first, last := lines[0], lines[len(lines)-1]
	off := func(l []byte) int { return cap(first) - cap(l) }
	block := string(first[:off(last)+len(last)])
	values := make([]string, len(lines))
	for j, l := range lines {
		if l[0] == ' ' || l[0] == '\t' {
			return nil, 0, badRequest("obsolete line folding in header")
		}
		line := block[off(l) : off(l)+len(l)]
		i := strings.IndexByte(line, ':')
		if i <= 0 {
			return nil, 0, badRequest("malformed header line")
		}
		name := line[:i]
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, 0, badRequest("invalid header name " + strconv.Quote(name))
		}
		value := trimOWS(line[i+1:])
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, 0, badRequest("invalid header value for " + name)
		}
		key := textproto.CanonicalMIMEHeaderKey(name) // name itself when it is canonical
		if vs, ok := h[key]; ok {
			h[key] = append(vs, value)
			continue
		}
		values[j] = value
		h[key] = values[j : j+1 : j+1]
		flags |= flagOf(key)
	}
	return h, flags, nil
}

// trimOWS cuts a field value's optional white space (spaces and tabs) at both ends.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// headFlags note which fields a proxy removes or replaces a head has, so that a head with none
// of them (the common one) is spared the removals.
type headFlags uint8

const (
	// hasHop: a hop-by-hop field (hopHeaders). Only Connection can name others, and it is one.
	hasHop headFlags = 1 << iota
	// hasForwarded: Forwarded or X-Forwarded-{For,Host,Proto}, which the proxy replaces.
	hasForwarded
)

// flagOf is the flag of a canonical field name.
func flagOf(key string) headFlags {
	switch key {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return hasHop
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return hasForwarded
	}
	return 0
}

// headLines is how many lines a head may have before splitLines' caller's array is outgrown.
const headLines = 32

// parseRequest parses a request head strictly. It returns errFallback for a request the fast
// path leaves to net/http, an *httpError for a malformed one.
func parseRequest(head []byte, remote string) (*fastRequest, error) {
	var buf [headLines][]byte
	lines := splitLines(head, buf[:])
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
	h, flags, err := parseHeaders(lines[1:])
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
	expect := false
	if ex, ok := h["Expect"]; ok {
		// 100-continue is relayed (fast_target.go, awaitContinue); any other expectation, or one from
		// an HTTP/1.0 client, is net/http's to answer (417).
		if minor == 0 || len(ex) != 1 || !strings.EqualFold(ex[0], "100-continue") {
			return nil, errFallback
		}
		expect = true
	}
	fr := &fastRequest{target: target, flags: flags}
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
		fr.length, fr.declared = n, true
	}
	// Without a body there is nothing to wait for: the field goes to the target as it came.
	fr.expect = expect && fr.length != 0
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

// stripHop removes the hop-by-hop headers and those the Connection header names, when flags
// (the head's, from parseHeaders) say it has any.
func stripHop(h http.Header, flags headFlags) {
	if flags&hasHop == 0 {
		return
	}
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

// writeStatusLine writes an HTTP/1.1 status line.
func writeStatusLine(w *bufio.Writer, code int) {
	_, _ = w.WriteString("HTTP/1.1 ")
	_, _ = w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(code), 10))
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(http.StatusText(code))
	_, _ = w.WriteString("\r\n")
}

// writeLength writes a Content-Length field, without allocating.
func writeLength(w *bufio.Writer, n int64) {
	_, _ = w.WriteString("Content-Length: ")
	_, _ = w.Write(strconv.AppendInt(w.AvailableBuffer(), n, 10))
	_, _ = w.WriteString("\r\n")
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
