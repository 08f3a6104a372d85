package l7

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// BenchmarkProxy compares requests straight to a backend with requests through the engine (a
// rule matched by host and path prefix, forwarded to a one-target group), both over kept-alive
// HTTP/1.1 connections from 4 clients per core. It reports requests/s and p50/p99 latency.
func BenchmarkProxy(b *testing.B) {
	backend := startHandler(b, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	e := newEngine(b, Options{})
	apply(b, e, Config{
		TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, backend)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Name: "miss", Hosts: []string{"other.test"}, Action: Action{FixedResponse: &FixedResponse{StatusCode: 404}}},
			{Name: "api", Hosts: []string{"*.example.com"}, Path: &PathMatch{Type: MatchPrefix, Value: "/api"}, Action: forwardTo("tg")},
		}}},
	})
	for _, bc := range []struct{ name, url string }{
		{"direct", "http://" + backend.String() + "/api/x"},
		{"engine", base(b, e, 80, "http") + "/api/x"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(4) // clients per core: enough to keep the proxy busy, not just waiting
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, bc.url, nil)
					req.Host = "www.example.com"
					t0 := time.Now()
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if len(lat) == 0 {
				return
			}
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// manyRules is a listener of n rules, /r0 to /r<n-1> (exact paths, then a host and a header
// condition on every tenth, as a mixed table has), each forwarding to "tg".
func manyRules(n int) Config {
	l := Listener{Port: 80, Protocol: ProtocolHTTP}
	for i := range n {
		r := Rule{Name: fmt.Sprint("r", i), Path: &PathMatch{Type: MatchExact, Value: fmt.Sprint("/r", i)}, Action: forwardTo("tg")}
		if i%10 == 5 {
			r.Hosts = []string{"*.example.com"}
			r.Headers = []HeaderMatch{{Name: "X-Tenant", Type: MatchExact, Value: fmt.Sprint("t", i)}}
		}
		l.Rules = append(l.Rules, r)
	}
	return Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, addrPort("127.0.0.1:1"))}, Listeners: []Listener{l}}
}

// BenchmarkMatch is the cost of finding a request's rule in a listener of 10 and of 1,000 rules
// when only the last one matches (every other rule is evaluated first): the part of a request
// that grows with the rule table.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			s, _, err := compile(manyRules(n), nil)
			if err != nil {
				b.Fatal(err)
			}
			l := s.listeners[portKey{port: 80}]
			r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("http://www.example.com/r%d", n-1), nil)
			host, path := requestHost(r.Host), r.URL.EscapedPath()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if l.match(r, host, path) == nil {
					b.Fatal("no rule matched")
				}
			}
		})
	}
}

// BenchmarkApply is the cost of Apply (validate, compile, swap) of a listener of 10 and of
// 1,000 rules into a running engine, as each rule change costs the fabric: without revisions
// (every rule compiled each time), and with them and one rule changed per Apply (the others'
// compilations reused, as the fabric gives them).
func BenchmarkApply(b *testing.B) {
	for _, revised := range []bool{false, true} {
		for _, n := range []int{10, 1000} {
			b.Run(fmt.Sprintf("revisions=%t/rules=%d", revised, n), func(b *testing.B) {
				e := newEngine(b, Options{})
				cfg := manyRules(n)
				rules := cfg.Listeners[0].Rules
				if revised {
					for i := range rules {
						rules[i].Revision = "0"
					}
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if revised {
						i++
						rules[i%n].Revision = strconv.Itoa(i)
					}
					apply(b, e, cfg)
				}
			})
		}
	}
}

// BenchmarkFastPathHeads is the CPU the fast path spends on the heads of one request without
// its sockets: parsing the client's request head, matching (one rule), making the head the
// target gets, parsing the target's response head and writing the head the client gets. The
// heads are a Go client's GET and a Go server's answer.
func BenchmarkFastPathHeads(b *testing.B) {
	reqHead := []byte("GET /x HTTP/1.1\r\nHost: 10.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n")
	respHead := []byte("HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 03:00:00 GMT\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nok")
	s, _, err := compile(Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, addrPort("127.0.0.1:1"))},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "all", Action: forwardTo("tg")}}}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	l := s.listeners[portKey{port: 80}]
	w := bufio.NewWriterSize(io.Discard, fastBufSize)
	rr := bytes.NewReader(nil)
	bc := &backendConn{br: bufio.NewReaderSize(rr, fastBufSize)}
	b.ReportAllocs()
	for b.Loop() {
		fr, err := parseRequest(reqHead, "10.0.0.9:1234")
		if err != nil {
			b.Fatal(err)
		}
		ru := l.match(fr.req, requestHost(fr.req.Host), fr.req.URL.EscapedPath())
		out := outHeader(fr, &ru.action, &ru.action.backends[0], "10.0.0.9", l)
		_, _ = w.WriteString(fr.req.Method)
		_, _ = w.WriteString(fr.target)
		writeHeader(w, out)
		rr.Reset(respHead)
		bc.br.Reset(rr)
		code, h, flags, err := readStatusHead(bc)
		if err != nil {
			b.Fatal(err)
		}
		stripHop(h, flags)
		writeStatusLine(w, code)
		writeHeader(w, h)
		_ = w.Flush()
	}
}
