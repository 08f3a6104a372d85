package l7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		code       int  // an *httpError's code; 0: parsed
		fallback   bool // left to net/http
		length     int64
		chunked    bool
		close      bool
		expect     bool
	}{
		{name: "get", head: "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "bare LF", head: "GET / HTTP/1.1\nHost: x\n\n"},
		{name: "length", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", length: 12},
		{name: "equal lengths", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\n", length: 3},
		{name: "chunked", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", length: -1, chunked: true},
		{name: "close", head: "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", close: true},
		{name: "http/1.0", head: "GET / HTTP/1.0\r\n\r\n", close: true},
		{name: "http/1.0 keep-alive", head: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"},
		{name: "no host", head: "GET / HTTP/1.1\r\n\r\n", code: 400},
		{name: "two hosts", head: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", code: 400},
		{name: "bad host", head: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", code: 400},
		{name: "obs-fold", head: "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", code: 400},
		{name: "space before colon", head: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", code: 400},
		{name: "no colon", head: "GET / HTTP/1.1\r\nHost: x\r\nJunk\r\n\r\n", code: 400},
		{name: "control in value", head: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", code: 400},
		{name: "CL and TE", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", code: 400},
		{name: "TE and CL", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", code: 400},
		{name: "conflicting lengths", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", code: 400},
		{name: "conflicting list", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n", code: 400},
		{name: "signed length", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", code: 400},
		{name: "negative length", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", code: 400},
		{name: "empty length", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", code: 400},
		{name: "huge length", head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", code: 400},
		{name: "gzip TE", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", code: 501},
		{name: "two TE", head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", code: 501},
		{name: "TE in 1.0", head: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", code: 400},
		{name: "no target", head: "GET HTTP/1.1\r\nHost: x\r\n\r\n", code: 400},
		{name: "bad version", head: "GET / HTTQ/1.1\r\nHost: x\r\n\r\n", code: 400},
		{name: "bad method", head: "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", code: 400},
		{name: "two spaces", head: "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", code: 400},
		{name: "bad target", head: "GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", code: 400},
		{name: "h2c prior knowledge", head: "PRI * HTTP/2.0\r\n\r\n", fallback: true},
		{name: "absolute form", head: "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", fallback: true},
		{name: "asterisk", head: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", fallback: true},
		{name: "connect", head: "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", fallback: true},
		{name: "upgrade", head: "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", fallback: true},
		{name: "expect", head: "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", length: 3, expect: true},
		{name: "expect without body", head: "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"},
		{name: "expect in 1.0", head: "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", fallback: true},
		{name: "other expectation", head: "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x\r\nContent-Length: 3\r\n\r\n", fallback: true},
		{name: "http/2 line", head: "GET / HTTP/2.0\r\nHost: x\r\n\r\n", fallback: true},
		{name: "semicolon query", head: "GET /?a=1;b=2 HTTP/1.1\r\nHost: x\r\n\r\n", fallback: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr, err := parseRequest([]byte(tc.head), "192.0.2.1:1000")
			var he *httpError
			switch {
			case tc.fallback:
				if !errors.Is(err, errFallback) {
					t.Fatalf("err = %v, want the fallback", err)
				}
			case tc.code != 0:
				if !errors.As(err, &he) || he.code != tc.code {
					t.Fatalf("err = %v, want a %d", err, tc.code)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			default:
				if fr.length != tc.length || fr.chunked != tc.chunked || fr.close != tc.close || fr.expect != tc.expect {
					t.Fatalf("length %d chunked %v close %v expect %v, want %d %v %v %v", fr.length, fr.chunked, fr.close,
						fr.expect, tc.length, tc.chunked, tc.close, tc.expect)
				}
			}
		})
	}
}

func TestReadHead(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nrest"), 16)
	head, err := readHead(br, nil, true)
	if err != nil || string(head) != "GET / HTTP/1.1\r\nHost: x\r\n\r\n" {
		t.Fatalf("head %q, err %v", head, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "rest" {
		t.Fatalf("left %q", rest)
	}
	big := "GET / HTTP/1.1\r\nX-A: " + strings.Repeat("a", maxHeadBytes) + "\r\n\r\n"
	var he *httpError
	if _, err := readHead(bufio.NewReader(strings.NewReader(big)), nil, true); !errors.As(err, &he) || he.code != 431 {
		t.Fatalf("oversized head: %v, want a 431", err)
	}
	if _, err := readHead(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost")), nil, true); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut head: %v", err)
	}
}

func TestCopyChunked(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		bad            bool
	}{
		{name: "two chunks", in: "3\r\nabc\r\nA;ext=1\r\n0123456789\r\n0\r\n\r\n", want: "abc0123456789"},
		{name: "trailers", in: "1\r\nx\r\n0\r\nX-T: 1\r\n\r\n", want: "x"},
		{name: "bad size", in: "zz\r\nabc\r\n0\r\n\r\n", bad: true},
		{name: "signed size", in: "+3\r\nabc\r\n0\r\n\r\n", bad: true},
		{name: "huge size", in: "1000000000000000\r\nabc\r\n0\r\n\r\n", bad: true},
		{name: "missing CRLF", in: "3\r\nabcd\r\n0\r\n\r\n", bad: true},
		{name: "cut", in: "5\r\nab", bad: true},
		{name: "no last chunk", in: "3\r\nabc\r\n", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			w := bufio.NewWriter(&out)
			_, err := copyChunked(w, bufio.NewReader(strings.NewReader(tc.in)), false, nil)
			_ = w.Flush()
			if tc.bad != (err != nil) {
				t.Fatalf("err = %v, want bad %v", err, tc.bad)
			}
			if !tc.bad && out.String() != tc.want {
				t.Fatalf("data %q, want %q", out.String(), tc.want)
			}
		})
	}
}

// rawConn is a client connection to an engine listener that writes raw bytes.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, e *Engine, port int) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", e.Addr(port).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// read reads one response to a request of method; body is what came of it (err: how it ended).
func (r *rawConn) read(method string) (*http.Response, string, error) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// closed reports whether the engine ended the connection.
func (r *rawConn) closed() bool {
	_, err := r.br.ReadByte()
	return err != nil
}

// rawTarget is a target that serves each connection with serve (given a reader of it), which
// writes its answers itself; the connection is closed when serve returns.
func rawTarget(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func fastEngine(t *testing.T, backend netip.AddrPort, edit HeaderEdit) *Engine {
	e := newEngine(t, Options{})
	act := forwardTo("tg")
	act.RequestHeaders = edit
	apply(t, e, Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, backend)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "all", Action: act}}}}})
	return e
}

func TestFastRelay(t *testing.T) {
	var hits atomic.Int64
	be := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.RequestURI+" len="+strings.Join(r.Header["Content-Length"], ",")+
			" te="+strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-Xff", strings.Join(r.Header["X-Forwarded-For"], "|")+" "+r.Header.Get("X-Forwarded-Proto")+
			" "+r.Header.Get("X-Forwarded-Port")+" "+r.Header.Get("X-Added")+" conn="+r.Header.Get("X-Hop"))
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/stream":
			for i := range 3 {
				_, _ = io.WriteString(w, strings.Repeat(string(rune('a'+i)), 10))
				http.NewResponseController(w).Flush()
			}
		default:
			_, _ = w.Write(body)
		}
	})
	e := fastEngine(t, be, HeaderEdit{Set: []Header{{Name: "X-Added", Value: "yes"}}})

	t.Run("pipelined keep-alive", func(t *testing.T) {
		c := dialRaw(t, e, 80)
		c.send("GET /one HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n" +
			"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
			"POST /three HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
		resp, body, err := c.read("GET")
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Seen") != "GET /one len= te=" {
			t.Fatalf("first: %v %q %v %v", resp.Status, body, resp.Header, err)
		}
		if got := resp.Header.Get("X-Xff"); got != "10.0.0.1, 127.0.0.1 http 80 yes conn=" {
			t.Fatalf("forwarding headers %q", got)
		}
		resp, body, err = c.read("POST")
		if err != nil || body != "hello" || resp.Header.Get("X-Seen") != "POST /two len=5 te=" {
			t.Fatalf("second: %v %q %v %v", resp.Status, body, resp.Header, err)
		}
		resp, body, err = c.read("POST")
		if err != nil || body != "abcde" || resp.Header.Get("X-Seen") != "POST /three len= te=chunked" {
			t.Fatalf("third: %v %q %v %v", resp.Status, body, resp.Header, err)
		}
	})

	t.Run("bodiless responses keep the connection", func(t *testing.T) {
		c := dialRaw(t, e, 80)
		for _, rq := range []struct{ method, path string }{{"HEAD", "/x"}, {"GET", "/204"}, {"GET", "/304"}, {"GET", "/last"}} {
			c.send(rq.method + " " + rq.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body, err := c.read(rq.method)
			if err != nil || body != "" || resp.Header.Get("X-Seen") != rq.method+" "+rq.path+" len= te=" {
				t.Fatalf("%s %s: %v %q %v %v", rq.method, rq.path, resp.Status, body, resp.Header, err)
			}
		}
	})

	t.Run("streamed and large bodies", func(t *testing.T) {
		c := dialRaw(t, e, 80)
		c.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body, err := c.read("GET")
		if err != nil || body != strings.Repeat("a", 10)+strings.Repeat("b", 10)+strings.Repeat("c", 10) ||
			resp.TransferEncoding == nil {
			t.Fatalf("stream: %v %q %v %v", resp.Status, body, resp.TransferEncoding, err)
		}
		big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
		go func() {
			_, _ = io.WriteString(c.c, "PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"+big)
		}()
		resp, body, err = c.read("PUT")
		if err != nil || body != big {
			t.Fatalf("big: %v, %d bytes, %v", resp.Status, len(body), err)
		}
	})

	t.Run("HTTP/1.0 ends the connection", func(t *testing.T) {
		c := dialRaw(t, e, 80)
		c.send("GET /old HTTP/1.0\r\n\r\n")
		resp, _, err := c.read("GET")
		if err != nil || resp.StatusCode != 200 || !c.closed() {
			t.Fatalf("%v %v, closed %v", resp.Status, err, c.closed())
		}
	})

	t.Run("Connection close", func(t *testing.T) {
		c := dialRaw(t, e, 80)
		c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, _, err := c.read("GET")
		if err != nil || !resp.Close || !c.closed() {
			t.Fatalf("%v %v close %v", resp.Status, err, resp.Close)
		}
	})

	for _, tc := range []struct{ name, req string }{
		{"CL.TE smuggling", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\n\r\n"},
		{"TE.CL smuggling", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n"},
		{"obfuscated TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
		{"bad chunk", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			c := dialRaw(t, e, 80)
			c.send(tc.req)
			resp, _, _ := c.read("POST")
			if resp.StatusCode != 400 && resp.StatusCode != 501 {
				t.Fatalf("status %d, want 400 or 501", resp.StatusCode)
			}
			if !c.closed() {
				t.Fatal("the connection stays open after a malformed request")
			}
			if tc.name != "bad chunk" && hits.Load() != before {
				t.Fatal("the target saw a malformed request")
			}
		})
	}
}

// TestFastTargetFailures: a target that closes before answering gives a 502; one that closes
// in the middle of a body cuts the client's response (the connection ends).
func TestFastTargetFailures(t *testing.T) {
	target := rawTarget(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.URL.Path == "/short" {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
		}
	})
	e := fastEngine(t, target, HeaderEdit{})
	c := dialRaw(t, e, 80)
	c.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _, _ := c.read("GET"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	c.send("GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body, err := c.read("GET")
	if resp.StatusCode != 200 || err == nil || body != "short" {
		t.Fatalf("cut body: %d %q %v", resp.StatusCode, body, err)
	}
}

// TestFastExpectContinue: a request with Expect: 100-continue stays on the fast path. The
// client gets the target's 100 Continue before it sends its body; a target that answers
// first gets no body and the client's connection ends after the answer; a target that says
// nothing gets the body after expectContinueTimeout, the client a 100 Continue then.
func TestFastExpectContinue(t *testing.T) {
	be := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			w.WriteHeader(http.StatusUnauthorized) // the body unread: no 100 Continue is sent
			return
		}
		body, _ := io.ReadAll(r.Body) // net/http sends the 100 Continue here
		w.Header().Set("X-Expect", r.Header.Get("Expect"))
		_, _ = w.Write(body)
	})
	e := fastEngine(t, be, HeaderEdit{})
	continued := func(c *rawConn) {
		t.Helper()
		line, err := c.br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("before the body the client got %q (%v), want a 100 Continue", line, err)
		}
		if line, err = c.br.ReadString('\n'); err != nil || line != "\r\n" {
			t.Fatalf("100 Continue's head ends with %q (%v)", line, err)
		}
	}

	t.Run("the target's 100 Continue", func(t *testing.T) {
		c := dialRaw(t, e, 80)
		for range 2 {
			c.send("PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
			continued(c)
			c.send("hello")
			resp, body, err := c.read("PUT")
			if err != nil || resp.StatusCode != 200 || body != "hello" || resp.Header.Get("X-Expect") != "100-continue" {
				t.Fatalf("%v %q %v X-Expect %q", resp.Status, body, err, resp.Header.Get("X-Expect"))
			}
		}
		c.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _, err := c.read("GET"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("the next request: %v %v", resp.Status, err)
		}
		if n := e.handoffs.Load(); n != 0 {
			t.Fatalf("%d connections went to net/http, want none", n)
		}
	})

	// A target of its own making: it never sends a 100 Continue. /reject gets a 401 on a
	// connection kept open, after which the body the client may still send is read and dropped,
	// as a server may do (so a proxy that sent the next request on that connection would
	// have it eaten); /early gets a 103 and then nothing until its body comes (or at once
	// when it has none); anything else gets its body back once it came.
	re := fastEngine(t, rawTarget(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/reject":
				_, _ = io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
				_, _ = io.Copy(io.Discard, req.Body)
				continue
			case "/early":
				_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
			}
			body, _ := io.ReadAll(req.Body)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+string(body))
		}
	}), HeaderEdit{})

	t.Run("the target answers first", func(t *testing.T) {
		c := dialRaw(t, re, 80)
		c.send("PUT /reject HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		resp, _, err := c.read("PUT")
		if err != nil || resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Fatalf("%v %v close %v, want 401 and the connection closing", resp.Status, err, resp.Close)
		}
		if !c.closed() {
			t.Fatal("the connection stays open with the body unsent")
		}
		// The target connection that answered is not reused: the target reads what comes
		// next on it as the body it was told of.
		c = dialRaw(t, re, 80)
		c.send("PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
		if resp, body, err := c.read("PUT"); err != nil || resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("after the answer: %v %q %v", resp.Status, body, err)
		}
	})

	// early reads the 103 the target sends to /early, passed on.
	early := func(c *rawConn) {
		t.Helper()
		for _, want := range []string{"HTTP/1.1 103 Early Hints\r\n", "Link: </a.css>; rel=preload\r\n", "\r\n"} {
			if line, err := c.br.ReadString('\n'); err != nil || line != want {
				t.Fatalf("the client got %q (%v), want %q of the target's 103", line, err, want)
			}
		}
	}
	t.Run("interim answers are passed on", func(t *testing.T) {
		c := dialRaw(t, re, 80)
		c.send("GET /early HTTP/1.1\r\nHost: x\r\n\r\n")
		early(c)
		if resp, _, err := c.read("GET"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("after the 103: %v %v", resp.Status, err)
		}
		c = dialRaw(t, re, 80)
		c.send("GET /early HTTP/1.0\r\n\r\n")
		if line, err := c.br.ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("an HTTP/1.0 client got %q (%v) first, want the final answer", line, err)
		}
	})

	for _, path := range []string{"/up", "/early"} {
		t.Run("a target that sends no 100, "+path, func(t *testing.T) {
			c := dialRaw(t, re, 80)
			start := time.Now()
			c.send("POST " + path + " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
			if path == "/early" {
				early(c)
			}
			continued(c)
			if waited := time.Since(start); waited < expectContinueTimeout {
				t.Fatalf("100 Continue after %s, before the target had %s to answer", waited, expectContinueTimeout)
			}
			c.send("5\r\nhello\r\n0\r\n\r\n")
			if resp, body, err := c.read("POST"); err != nil || resp.StatusCode != 200 || body != "hello" {
				t.Fatalf("%v %q %v", resp.Status, body, err)
			}
		})
	}
}

// TestFastFallback: requests the fast path leaves to net/http on a listener it serves are
// answered as before (a fixed response, an absolute-form target, a 404).
func TestFastFallback(t *testing.T) {
	be := startEcho(t, "a", false)
	e := newEngine(t, Options{})
	apply(t, e, Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, be.addr)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Name: "fixed", Path: &PathMatch{Type: MatchExact, Value: "/fixed"},
				Action: Action{FixedResponse: &FixedResponse{StatusCode: 418, Body: "tea"}}},
			{Name: "fwd", Path: &PathMatch{Type: MatchPrefix, Value: "/app"}, Action: forwardTo("tg")},
		}}}})
	c := dialRaw(t, e, 80)
	c.send("GET /app/1 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _, err := c.read("GET"); err != nil || resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("forward: %v %v", resp.Status, err)
	}
	// From here net/http serves the connection, the fixed response's head replayed.
	c.send("GET /fixed HTTP/1.1\r\nHost: x\r\n\r\nGET /app/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /none HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body, err := c.read("GET"); err != nil || resp.StatusCode != 418 || body != "tea" {
		t.Fatalf("fixed: %v %q %v", resp.Status, body, err)
	}
	if resp, _, err := c.read("GET"); err != nil || resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("forward after the hand-over: %v %v", resp.Status, err)
	}
	if resp, _, err := c.read("GET"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("unmatched: %v %v", resp.Status, err)
	}
	c2 := dialRaw(t, e, 80)
	c2.send("GET http://x/app/3 HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _, err := c2.read("GET"); err != nil || resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("absolute form: %v %v", resp.Status, err)
	}
}

// FuzzParseRequest feeds arbitrary bytes to the request-head reader and parser: they must not
// panic, and a request they accept has one unambiguous body framing and a valid Host.
// Seeds: testdata/fuzz/FuzzParseRequest.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\nX-A: 1\r\n 2\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		head, err := readHead(bufio.NewReaderSize(bytes.NewReader(in), 64), nil, true)
		if err != nil {
			return
		}
		fr, err := parseRequest(head, "192.0.2.1:1")
		if err != nil {
			var he *httpError
			if !errors.Is(err, errFallback) && !errors.As(err, &he) {
				t.Fatalf("error %v is neither a fallback nor an HTTP error", err)
			}
			return
		}
		h := fr.req.Header
		if h["Content-Length"] != nil && h["Transfer-Encoding"] != nil {
			t.Fatal("accepted both Content-Length and Transfer-Encoding")
		}
		if fr.chunked != (fr.length == -1) || fr.length < -1 {
			t.Fatalf("framing: chunked %v length %d", fr.chunked, fr.length)
		}
		if !httpguts.ValidHostHeader(fr.req.Host) { // empty is valid (RFC 9112 3.2)
			t.Fatalf("accepted Host %q", fr.req.Host)
		}
		for k, vs := range h {
			for _, v := range vs {
				if strings.ContainsAny(k+v, "\r\n") {
					t.Fatalf("header %q: %q has a line end", k, v)
				}
			}
		}
	})
}

// TestFastPoolsOfRemovedTargets: a target that leaves the configuration loses its kept
// connections at once, as the net/http transport of a removed group does.
func TestFastPoolsOfRemovedTargets(t *testing.T) {
	var open atomic.Int64
	serve := func() netip.AddrPort {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}))
		s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		}
		s.Start()
		t.Cleanup(s.Close)
		return netip.MustParseAddrPort(s.Listener.Addr().String())
	}
	old := serve()
	e := fastEngine(t, old, HeaderEdit{})
	c := dialRaw(t, e, 80)
	c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body, err := c.read("GET"); err != nil || resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("through the fast path: %v %q %v", resp.Status, body, err)
	}
	if n := open.Load(); n != 1 {
		t.Fatalf("%d connections to the target after one request, want 1 kept", n)
	}
	next := startHandler(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "next") })
	apply(t, e, Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, next)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "all", Action: forwardTo("tg")}}}}})
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the removed target still open", open.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body, err := c.read("GET"); err != nil || resp.StatusCode != http.StatusOK || body != "next" {
		t.Fatalf("after the change: %v %q %v", resp.Status, body, err)
	}
}

// TestHeadBuffered: a request head counts as whole in the buffer only with its end past the
// empty lines readHead skips; then the fast path sets no head deadline of its own.
func TestHeadBuffered(t *testing.T) {
	for in, want := range map[string]bool{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n":          true,
		"GET / HTTP/1.1\nHost: x\n\n":                true,
		"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nb": true,
		"GET / HTTP/1.1\r\nHost: x\r\n":              false,
		"GET / HTTP/1.1\r\nHo":                       false,
		"\r\n\r\n":                                   false,
		"\r\n\r\nGET / HTTP/1.1\r\n":                 false,
	} {
		br := bufio.NewReader(strings.NewReader(in))
		if _, err := br.Peek(1); err != nil {
			t.Fatal(err)
		}
		if got := headBuffered(br); got != want {
			t.Errorf("headBuffered(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestFastIdleTimeout: the idle timeout ends a kept-alive connection only while it waits for a
// request: an exchange longer than the timeout (a slow target) completes and the connection
// serves the next request, and one idle past the timeout is closed.
func TestFastIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	be := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(2 * idle)
		}
		_, _ = io.WriteString(w, "done "+r.URL.Path)
	})
	e := newEngine(t, Options{IdleTimeout: idle})
	apply(t, e, Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, be)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "all", Action: forwardTo("tg")}}}}})
	c := dialRaw(t, e, 80)
	for _, path := range []string{"/slow", "/next", "/slow"} {
		c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body, err := c.read("GET"); err != nil || resp.StatusCode != 200 || body != "done "+path {
			t.Fatalf("%s: %v %q %v", path, resp.Status, body, err)
		}
	}
	time.Sleep(3 * idle)
	if !c.closed() {
		t.Errorf("a connection idle past the idle timeout was not closed")
	}
}

// TestFastRemovalClosesIdle: removing a listener closes its fast-path connections that wait
// for a request, after the request they had.
func TestFastRemovalClosesIdle(t *testing.T) {
	be := startHandler(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	e := fastEngine(t, be, HeaderEdit{})
	c := dialRaw(t, e, 80)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body, err := c.read("GET"); err != nil || body != "ok" {
		t.Fatalf("%v %q %v", resp.Status, body, err)
	}
	apply(t, e, Config{})
	if !c.closed() {
		t.Errorf("an idle connection of a removed listener was not closed")
	}
}

// TestParseHeadersAllocatesPerHeadNotPerField: the fields of a head are parts of one string
// and their values share one array, so the allocations do not grow with the number of fields.
func TestParseHeadersAllocatesPerHeadNotPerField(t *testing.T) {
	allocs := func(fields int) float64 {
		head := []byte("GET / HTTP/1.1\r\n")
		for i := range fields {
			head = append(head, fmt.Sprintf("X-Field-%d: value %d\r\n", i, i)...)
		}
		head = append(head, "\r\n"...)
		lines := splitLines(head, nil)
		return testing.AllocsPerRun(50, func() {
			if _, _, err := parseHeaders(lines[1:]); err != nil {
				t.Fatal(err)
			}
		})
	}
	few, many := allocs(2), allocs(6)
	if many > few+1 || few > 4 {
		t.Errorf("parseHeaders: %.0f allocations for 2 fields, %.0f for 6; want at most 4, not growing with the fields", few, many)
	}
	h, _, err := parseHeaders(splitLines([]byte("GET / HTTP/1.1\r\nhost: a\r\nX-A: 1\r\nx-a:  2 \r\n\r\n"), nil)[1:])
	if err != nil || len(h) != 2 || h.Get("Host") != "a" || len(h["X-A"]) != 2 || h["X-A"][0] != "1" || h["X-A"][1] != "2" {
		t.Errorf("parseHeaders: %v, %v; want Host a and X-A [1 2]", h, err)
	}
}

// TestFastRelayedHead reads the request heads the fast path writes to a target byte for byte,
// for a rule without header edits (the request's header is changed in place) and one with: the
// length once, no User-Agent made up, hop-by-hop fields gone (Te: trailers kept), the client's
// X-Forwarded-For extended and the other X-Forwarded-* and Forwarded replaced.
func TestFastRelayedHead(t *testing.T) {
	heads := make(chan string, 4)
	backend := rawTarget(t, func(c net.Conn, br *bufio.Reader) {
		for {
			head, err := readHead(br, nil, true)
			if err != nil {
				return
			}
			fr, err := parseRequest(head, "192.0.2.1:1")
			if err != nil {
				t.Errorf("the target got a malformed head %q: %v", head, err)
				return
			}
			if _, err := io.CopyN(io.Discard, br, fr.length); err != nil {
				return
			}
			heads <- string(head)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	in := "POST /p?q=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n" +
		"Te: trailers, deflate\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n" +
		"Forwarded: for=10.0.0.1\r\nX-Keep: k\r\n\r\nabc"
	fields := func(head string) []string {
		lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
		slices.Sort(lines[1:])
		return lines
	}
	for _, tc := range []struct {
		name  string
		edit  HeaderEdit
		extra []string
	}{
		{name: "no edits"},
		// The framing is the proxy's: edits naming it change nothing.
		{name: "edits", edit: HeaderEdit{Set: []Header{{Name: "X-Added", Value: "yes"}, {Name: "Content-Length", Value: "99"},
			{Name: "Transfer-Encoding", Value: "chunked"}}}, extra: []string{"X-Added: yes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := fastEngine(t, backend, tc.edit)
			if tc.name == "edits" { // and on the response
				act := forwardTo("tg")
				act.RequestHeaders = tc.edit
				act.ResponseHeaders = HeaderEdit{Set: []Header{{Name: "Content-Length", Value: "9"}, {Name: "Transfer-Encoding", Value: "chunked"}}}
				apply(t, e, Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, backend)},
					Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "all", Action: act}}}}})
			}
			c := dialRaw(t, e, 80)
			for _, req := range []string{in, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"} {
				c.send(req)
				resp, body, err := c.read("GET")
				if err != nil || resp.StatusCode != 200 || body != "ok" || !slices.Equal(resp.Header["Content-Length"], []string{"2"}) ||
					resp.TransferEncoding != nil {
					t.Fatalf("%v %q %v, Content-Length %q, Transfer-Encoding %q", resp.Status, body, err, resp.Header["Content-Length"], resp.TransferEncoding)
				}
			}
			want := append([]string{"POST /p?q=1 HTTP/1.1", "Content-Length: 3", "Host: a.test", "Te: trailers",
				"X-Forwarded-For: 10.0.0.1, 127.0.0.1", "X-Forwarded-Port: 80", "X-Forwarded-Proto: http", "X-Keep: k"}, tc.extra...)
			slices.Sort(want[1:])
			if got := fields(<-heads); !slices.Equal(got, want) {
				t.Errorf("relayed head\n%q\nwant\n%q", got, want)
			}
			want = append([]string{"GET / HTTP/1.1", "Host: a.test", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Port: 80",
				"X-Forwarded-Proto: http"}, tc.extra...)
			slices.Sort(want[1:])
			if got := fields(<-heads); !slices.Equal(got, want) {
				t.Errorf("relayed head\n%q\nwant\n%q", got, want)
			}
		})
	}
}
