package l7

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // the WebSocket handshake is defined with SHA-1
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestForwardHeaders(t *testing.T) {
	b := startEcho(t, "b", false)
	e := newEngine(t, Options{})
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, b.addr)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{
			Name: "r",
			Action: Action{
				Forward: &Forward{Backends: []Backend{{TargetGroup: "tg", Weight: 1,
					RequestHeaders:  HeaderEdit{Set: []Header{{"X-Backend-Set", "b"}}},
					ResponseHeaders: HeaderEdit{Add: []Header{{"X-Resp-Backend", "b"}}}}}},
				RequestHeaders: HeaderEdit{
					// Edits of the headers the proxy owns (forwarding, hop-by-hop) have no effect.
					Set:    []Header{{"x-set", "set"}, {"X-Forwarded-For", "spoofed"}, {"X-Forwarded-Port", "1"}, {"Connection", "close"}},
					Add:    []Header{{"X-Add", "added"}, {"X-Forwarded-Host", "evil.test"}},
					Remove: []string{"x-remove", "X-Forwarded-Proto"},
				},
				ResponseHeaders: HeaderEdit{Set: []Header{{"X-Resp-Set", "1"}}, Add: []Header{{"X-Resp-Add", "2"}}, Remove: []string{"content-type"}},
			},
		}}}},
	})
	req := get(t, base(t, e, 80, "http")+"/a/b?c=d", "svc.test", http.Header{
		"X-Set": {"old"}, "X-Add": {"first"}, "X-Remove": {"gone"}, "X-Forwarded-For": {"203.0.113.9"},
	})
	resp, ec, _ := do(t, http.DefaultClient, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := map[string][]string{
		"X-Set": {"set"}, "X-Add": {"first", "added"}, "X-Remove": nil, "X-Backend-Set": {"b"},
		"X-Forwarded-For": {"203.0.113.9, 127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Port": {"80"},
		"X-Forwarded-Host": nil, "Connection": nil,
	}
	for k, v := range want {
		if diff := cmp.Diff(v, ec.Headers[k]); diff != "" {
			t.Errorf("backend saw %s (-want +got):\n%s", k, diff)
		}
	}
	if ec.Host != "svc.test" || ec.URI != "/a/b?c=d" {
		t.Errorf("backend saw host %q uri %q, want svc.test and /a/b?c=d", ec.Host, ec.URI)
	}
	if resp.Header.Get("X-Resp-Set") != "1" || resp.Header.Get("X-Resp-Add") != "2" || resp.Header.Get("X-Resp-Backend") != "b" {
		t.Errorf("response headers %v lack the edits", resp.Header)
	}
	if resp.Header.Get("Content-Type") != "" {
		t.Errorf("Content-Type %q survived its removal", resp.Header.Get("Content-Type"))
	}
}

func TestWeightsAndInvalidBackends(t *testing.T) {
	b1, b2 := startEcho(t, "one", false), startEcho(t, "two", false)
	draining := TargetGroup{Name: "draining", Protocol: ProtocolHTTP, Targets: []Target{{Addr: b1.addr, State: StateDraining}}}
	e := newEngine(t, Options{})
	rule := func(path string, bs ...Backend) Rule {
		return Rule{Path: &PathMatch{Type: MatchPrefix, Value: path}, Action: Action{Forward: &Forward{Backends: bs}}}
	}
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("one", ProtocolHTTP, b1.addr), tgroup("two", ProtocolHTTP, b2.addr), draining},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			rule("/split", Backend{TargetGroup: "one", Weight: 3}, Backend{TargetGroup: "two", Weight: 1}),
			rule("/zero", Backend{TargetGroup: "one", Weight: 0}, Backend{TargetGroup: "two", Weight: 1}),
			rule("/allzero", Backend{TargetGroup: "one", Weight: 0}),
			rule("/none"),
			rule("/invalid", Backend{Weight: 1}),
			rule("/draining", Backend{TargetGroup: "draining", Weight: 1}),
		}}},
	})
	u := base(t, e, 80, "http")
	count := map[string]int{}
	for range 400 {
		resp, ec, _ := do(t, http.DefaultClient, get(t, u+"/split", "", nil))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		count[ec.Name]++
	}
	if count["one"] < 250 || count["one"] > 350 {
		t.Errorf("3:1 split over 400 requests gave %v", count)
	}
	for range 50 {
		if _, ec, _ := do(t, http.DefaultClient, get(t, u+"/zero", "", nil)); ec.Name != "two" {
			t.Fatalf("weight 0 backend %q got a request", ec.Name)
		}
	}
	for path, code := range map[string]int{"/allzero": 500, "/none": 500, "/invalid": 500, "/draining": 503, "/nothing": 404} {
		if resp, _, _ := do(t, http.DefaultClient, get(t, u+path, "", nil)); resp.StatusCode != code {
			t.Errorf("%s: status %d, want %d", path, resp.StatusCode, code)
		}
	}
}

func TestFixedRedirectRewrite(t *testing.T) {
	b := startEcho(t, "b", false)
	e := newEngine(t, Options{})
	prefix := func(v string) *PathMatch { return &PathMatch{Type: MatchPrefix, Value: v} }
	cfg := Config{
		TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, b.addr)},
		Listeners: []Listener{{Port: 8080, Protocol: ProtocolHTTP, Rules: []Rule{
			{Path: prefix("/fixed"), Action: Action{FixedResponse: &FixedResponse{StatusCode: 418, ContentType: "text/plain", Body: "teapot"},
				ResponseHeaders: HeaderEdit{Set: []Header{{"X-Fixed", "yes"}}}}},
			{Path: prefix("/redirect"), Action: Action{Redirect: &Redirect{Scheme: "https", Hostname: "new.test",
				Path: &PathModifier{Type: ReplacePrefixMatch, Value: "/moved"}, StatusCode: 301}}},
			{Path: prefix("/keep-port"), Action: Action{Redirect: &Redirect{Path: &PathModifier{Type: ReplaceFullPath, Value: "/full"}}}},
			{Path: prefix("/prefix/"), Action: Action{Forward: forwardTo("tg").Forward, Rewrite: &Rewrite{Hostname: "rewritten.test",
				Path: &PathModifier{Type: ReplacePrefixMatch, Value: "/"}}}},
			{Path: prefix("/full"), Action: Action{Forward: forwardTo("tg").Forward, Rewrite: &Rewrite{Path: &PathModifier{Type: ReplaceFullPath, Value: "/one"}}}},
		}}},
	}
	apply(t, e, cfg)
	// The caller changing its structures after Apply changes nothing that serves: the engine
	// keeps copies of them.
	for _, r := range cfg.Listeners[0].Rules {
		a := r.Action
		if a.FixedResponse != nil {
			*a.FixedResponse = FixedResponse{StatusCode: 500, Body: "scribbled"}
		}
		if a.Redirect != nil {
			a.Redirect.Hostname, a.Redirect.StatusCode = "scribbled.test", 307
			*a.Redirect.Path = PathModifier{Type: ReplaceFullPath, Value: "/scribbled"}
		}
		if a.Rewrite != nil {
			a.Rewrite.Hostname = "scribbled.test"
			*a.Rewrite.Path = PathModifier{Type: ReplaceFullPath, Value: "/scribbled"}
		}
	}
	u := base(t, e, 8080, "http")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, _, body := do(t, noFollow, get(t, u+"/fixed", "", nil))
	if resp.StatusCode != 418 || body != "teapot" || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("X-Fixed") != "yes" {
		t.Errorf("fixed response: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, _, _ = do(t, noFollow, get(t, u+"/redirect/x?y=1", "old.test", nil))
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://new.test/moved/x?y=1" {
		t.Errorf("redirect: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _, _ = do(t, noFollow, get(t, u+"/keep-port/x", "old.test", nil))
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://old.test:8080/full" {
		t.Errorf("redirect: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]string{"/prefix/one/two": "/one/two", "/prefix": "/", "/prefix/": "/", "/full/x/y?q": "/one?q"} {
		_, ec, _ := do(t, noFollow, get(t, u+path, "orig.test", nil))
		if ec.URI != want {
			t.Errorf("%s rewritten to %q, want %q", path, ec.URI, want)
		}
		if strings.HasPrefix(path, "/prefix") && ec.Host != "rewritten.test" {
			t.Errorf("%s: host %q, want rewritten.test", path, ec.Host)
		}
	}
}

func TestMirror(t *testing.T) {
	b, m := startEcho(t, "main", false), startEcho(t, "mirror", false)
	e := newEngine(t, Options{})
	a := forwardTo("main")
	a.Mirrors = []Mirror{{TargetGroup: "mirror", Percent: 100}}
	a.RequestHeaders = HeaderEdit{Set: []Header{{"X-Edited", "1"}}}
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("main", ProtocolHTTP, b.addr), tgroup("mirror", ProtocolHTTP, m.addr)},
		Listeners:    []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: a}}}},
	})
	resp, ec, _ := do(t, http.DefaultClient, post(t, base(t, e, 80, "http")+"/m?x=1", "payload"))
	if resp.StatusCode != 200 || ec.Name != "main" || ec.Body != "payload" {
		t.Fatalf("main answer: %d %+v", resp.StatusCode, ec)
	}
	select {
	case got := <-m.seen:
		if got.URI != "/m?x=1" || got.Body != "payload" || got.Headers.Get("X-Edited") != "1" || got.Headers.Get("X-Forwarded-For") == "" {
			t.Errorf("mirror saw %+v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the mirror got nothing")
	}
}

func TestTimeouts(t *testing.T) {
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	e := newEngine(t, Options{})
	for _, to := range []Timeouts{{Request: 100 * time.Millisecond}, {BackendRequest: 100 * time.Millisecond}} {
		a := forwardTo("slow")
		a.Timeouts = to
		apply(t, e, Config{
			TargetGroups: []TargetGroup{tgroup("slow", ProtocolHTTP, slow)},
			Listeners:    []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: a}}}},
		})
		start := time.Now()
		resp, _, _ := do(t, http.DefaultClient, get(t, base(t, e, 80, "http")+"/", "", nil))
		if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > time.Second {
			t.Errorf("%+v: status %d after %v, want 504 soon after 100ms", to, resp.StatusCode, time.Since(start))
		}
	}
}

// A gRPC-style exchange: h2c by prior knowledge into an HTTP listener, and h2 by ALPN into an
// HTTPS one, h2c to the target, a streamed body and trailers back.
func TestGRPCStyle(t *testing.T) {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := startHandlerWith(t, &p, func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Header.Get("Content-Type") != "application/grpc" || r.Header.Get("Te") != "trailers" {
			http.Error(w, fmt.Sprintf("proto %s content-type %q te %q", r.Proto, r.Header.Get("Content-Type"), r.Header.Get("Te")), 400)
			return
		}
		in, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		_, _ = w.Write(in) // echo the framed message
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Grpc-Message", "ok")
	})
	certPEM, keyPEM := selfSigned(t, "grpc.test")
	rules := []Rule{{Path: &PathMatch{Type: MatchExact, Value: "/echo.Echo/Say"}, Action: forwardTo("grpc")}}
	e := newEngine(t, Options{})
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("grpc", ProtocolH2C, srv)},
		Listeners: []Listener{
			{Port: 80, Protocol: ProtocolHTTP, Rules: rules},
			{Port: 443, Protocol: ProtocolHTTPS, Certificates: []Certificate{{CertPEM: certPEM, KeyPEM: keyPEM}}, Rules: rules},
		},
	})
	var h2 http.Protocols
	h2.SetHTTP2(true)
	clients := map[string]*http.Client{
		base(t, e, 80, "http"): {Transport: &http.Transport{Protocols: &p}},
		base(t, e, 443, "https"): {Transport: &http.Transport{Protocols: &h2,
			TLSClientConfig: &tls.Config{ServerName: "grpc.test", InsecureSkipVerify: true}}}, //nolint:gosec // test certificate
	}
	for u, c := range clients {
		msg := grpcHealthRequest("hello")
		resp, body := grpcCall(t, c, u+"/echo.Echo/Say", msg)
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !bytes.Equal(body, msg) {
			t.Fatalf("%s: status %d proto %s body %q", u, resp.StatusCode, resp.Proto, body)
		}
		if resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("Grpc-Message") != "ok" {
			t.Errorf("%s: trailers %v, want grpc-status 0 and grpc-message ok", u, resp.Trailer)
		}
	}
}

func TestWebSocketEcho(t *testing.T) {
	ws := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not an upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw) // echo every byte (frames included) back
	})
	e := newEngine(t, Options{})
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("ws", ProtocolHTTP, ws)},
		Listeners:    []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("ws")}}}},
	})
	conn, err := net.Dial("tcp", e.Addr(80).String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	_, _ = fmt.Fprintf(conn, "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	frame := []byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'} // a text frame (unmasked: the echo does not parse)
	for range 3 {
		_, _ = conn.Write(frame)
		got := make([]byte, len(frame))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, frame) {
			t.Fatalf("echo: %q, %v", got, err)
		}
	}
}

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) //nolint:gosec // RFC 6455
	return base64.StdEncoding.EncodeToString(h[:])
}

func TestHTTPSBackend(t *testing.T) {
	srv := httptestTLS(t)
	e := newEngine(t, Options{})
	tg := tgroup("tls", ProtocolHTTPS, srv.addr)
	tg.TLS = &BackendTLS{ServerName: "example.com", CAPEM: srv.caPEM}
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tg},
		Listeners:    []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("tls")}}}},
	})
	resp, _, body := do(t, http.DefaultClient, get(t, base(t, e, 80, "http")+"/", "", nil))
	if resp.StatusCode != 200 || body != "tls HTTP/2.0" {
		t.Errorf("status %d body %q, want 200 from the TLS backend over h2", resp.StatusCode, body)
	}
}

// Configs swapped under load: 100 swaps that move traffic between two target groups, change
// weights and add and remove a second listener; not one request fails.
func TestSwapUnderLoad(t *testing.T) {
	b1, b2 := startEcho(t, "one", false), startEcho(t, "two", false)
	e := newEngine(t, Options{})
	cfg := func(i int) Config {
		w1, w2 := i%3, 2-i%3 // 0/2, 1/1, 2/0
		// Every other pair of swaps renames the groups, so their transports are replaced too.
		one, two := "one", "two"
		if i%4 >= 2 {
			one, two = "one-b", "two-b"
		}
		ls := []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Name: "miss", Hosts: []string{"elsewhere.test"}, Action: Action{FixedResponse: &FixedResponse{StatusCode: 404}}},
			{Name: fmt.Sprintf("r%d", i), Path: &PathMatch{Type: MatchPrefix, Value: "/"}, Action: Action{Forward: &Forward{Backends: []Backend{
				{TargetGroup: one, Weight: w1}, {TargetGroup: two, Weight: w2}}}}},
		}}}
		if i%2 == 0 {
			ls = append(ls, Listener{Port: 81, Protocol: ProtocolHTTP, Rules: []Rule{{Action: Action{FixedResponse: &FixedResponse{StatusCode: 204}}}}})
		}
		return Config{Listeners: ls, TargetGroups: []TargetGroup{tgroup(one, ProtocolHTTP, b1.addr), tgroup(two, ProtocolHTTP, b2.addr)}}
	}
	apply(t, e, cfg(0))
	u := base(t, e, 80, "http") + "/load"
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(u)
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed: %v", err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Errorf("status %d", resp.StatusCode)
					continue
				}
				ok.Add(1)
			}
		})
	}
	for i := 1; i <= 100; i++ {
		apply(t, e, cfg(i))
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests across 100 swaps, %d failed", ok.Load(), failed.Load())
	if ok.Load() < 200 || failed.Load() != 0 {
		t.Errorf("%d ok, %d failed; want many ok and none failed", ok.Load(), failed.Load())
	}
}

// A draining target takes no new request; the one in flight completes.
func TestDraining(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			started <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "old")
	})
	fresh := startEcho(t, "new", false)
	e := newEngine(t, Options{})
	cfg := func(oldState TargetState) Config {
		return Config{
			TargetGroups: []TargetGroup{{Name: "tg", Protocol: ProtocolHTTP, Targets: []Target{
				{Addr: slow, State: oldState}, {Addr: fresh.addr, State: StateInitial}}}},
			Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("tg")}}}},
		}
	}
	apply(t, e, cfg(StateHealthy))
	u := base(t, e, 80, "http")
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(u + "/hold")
		if err != nil {
			done <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	<-started
	if n := e.InFlight(slow); n != 1 {
		t.Errorf("InFlight(old) = %d, want 1", n)
	}
	apply(t, e, cfg(StateDraining))
	for range 20 {
		if _, ec, _ := do(t, http.DefaultClient, get(t, u+"/new", "", nil)); ec.Name != "new" {
			t.Fatalf("a new request went to the draining target")
		}
	}
	close(release)
	if got := <-done; got != "200 old" {
		t.Errorf("the request in flight on the draining target ended with %q, want 200 old", got)
	}
	// The count drops when the engine is done with the request, which may be just after the
	// client has the whole answer.
	for deadline := time.Now().Add(5 * time.Second); e.InFlight(slow) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("InFlight(old) = %d 5s after it finished, want 0", e.InFlight(slow))
		}
	}
}

// Removing a listener lets its request in flight finish and leaves the other listener alone.
func TestListenerRemoval(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "done")
	})
	e := newEngine(t, Options{})
	both := Config{
		TargetGroups: []TargetGroup{tgroup("slow", ProtocolHTTP, slow)},
		Listeners: []Listener{
			{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: Action{FixedResponse: &FixedResponse{StatusCode: 200, Body: "80"}}}}},
			{Port: 81, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("slow")}}},
		},
	}
	apply(t, e, both)
	u80, u81 := base(t, e, 80, "http"), base(t, e, 81, "http")
	c80 := &http.Client{Transport: &http.Transport{}}
	if _, _, body := do(t, c80, get(t, u80, "", nil)); body != "80" { // a kept-alive connection to 80
		t.Fatalf("80 answered %q", body)
	}
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(u81)
		if err != nil {
			done <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- string(body)
	}()
	<-started
	only80 := both
	only80.Listeners = both.Listeners[:1]
	apply(t, e, only80)
	if e.Addr(81) != nil {
		t.Error("listener 81 still reported after removal")
	}
	if _, _, body := do(t, c80, get(t, u80, "", nil)); body != "80" {
		t.Errorf("80 answered %q after 81 was removed", body)
	}
	close(release)
	if got := <-done; got != "done" {
		t.Errorf("the request in flight on the removed listener ended with %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := net.DialTimeout("tcp", strings.TrimPrefix(u81, "http://"), time.Second)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the removed listener still accepts connections")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestApplyRejectsKeepsRunning(t *testing.T) {
	e := newEngine(t, Options{})
	good := Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: Action{FixedResponse: &FixedResponse{StatusCode: 200}}}}}}}
	apply(t, e, good)
	bad := good
	bad.Listeners = []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Path: &PathMatch{Type: MatchRegex, Value: "("}}}}}
	if err := e.Apply(bad); err == nil {
		t.Fatal("Apply took a bad config")
	}
	if resp, _, _ := do(t, http.DefaultClient, get(t, base(t, e, 80, "http"), "", nil)); resp.StatusCode != 200 {
		t.Errorf("after a rejected Apply: status %d, want the old config's 200", resp.StatusCode)
	}
}

func TestMetricsAndAccessLog(t *testing.T) {
	b := startEcho(t, "b", false)
	var logBuf syncBuffer
	reg := newRegistry()
	e := newEngine(t, Options{Registerer: reg, AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, b.addr)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Name: "api", Path: &PathMatch{Type: MatchPrefix, Value: "/api"}, Action: forwardTo("tg")},
		}}},
	})
	u := base(t, e, 80, "http")
	for range 3 {
		do(t, http.DefaultClient, get(t, u+"/api/x", "", nil))
	}
	do(t, http.DefaultClient, get(t, u+"/other", "", nil))
	got := gathered(t, reg)
	want := map[string]float64{
		"flatnet_l7_requests_total{code=200,listener=80,rule=api}":  3,
		"flatnet_l7_requests_total{code=404,listener=80,rule=-}":    1,
		"flatnet_l7_request_duration_seconds{listener=80,rule=api}": 3,
		"flatnet_l7_request_duration_seconds{listener=80,rule=-}":   1,
		"flatnet_l7_access_log_dropped_total{}":                     0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	// A rule renamed away takes its series with it.
	apply(t, e, Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
		{Name: "renamed", Action: Action{FixedResponse: &FixedResponse{StatusCode: 200}}}}}}})
	for k := range gathered(t, reg) {
		if strings.Contains(k, "rule=api") {
			t.Errorf("series %s outlived its rule", k)
		}
	}
	// The access log is written in the background: wait for the lines.
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lines = strings.Split(strings.TrimSpace(logBuf.String()), "\n")
		if len(lines) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	if len(lines) != 4 {
		t.Fatalf("%d access log lines, want 4:\n%s", len(lines), logBuf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"rule": "api", "target": b.addr.String(), "targetGroup": "tg", "status": float64(200), "path": "/api/x"} {
		if first[k] != want {
			t.Errorf("access log %s = %v, want %v", k, first[k], want)
		}
	}
	if _, ok := first["duration"]; !ok {
		t.Error("access log has no duration")
	}
}

// TestSetAccessLog: an engine started without an access log writes none; SetAccessLog starts
// one (the lines queued before a swap are written to the old log), swaps it, and stops it.
func TestSetAccessLog(t *testing.T) {
	b := startEcho(t, "b", false)
	e := newEngine(t, Options{})
	apply(t, e, Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, b.addr)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "all", Action: forwardTo("tg")}}}}})
	u := base(t, e, 80, "http")
	// hit returns once the fast path is done with the request, its line queued.
	hit := func(path string) {
		if resp, _, _ := do(t, http.DefaultClient, get(t, u+path, "", nil)); resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		idle := func() bool {
			e.mu.Lock()
			defer e.mu.Unlock()
			for _, s := range e.servers {
				s.fast.mu.Lock()
				for c := range s.fast.conns {
					if !c.idle.Load() {
						s.fast.mu.Unlock()
						return false
					}
				}
				s.fast.mu.Unlock()
			}
			return true
		}
		for deadline := time.Now().Add(5 * time.Second); !idle(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: the fast path is not done with it after 5s", path)
			}
		}
	}
	paths := func(b *syncBuffer) []string {
		var out []string
		for l := range strings.Lines(b.String()) {
			var line map[string]any
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("access log line %q: %v", l, err)
			}
			out = append(out, fmt.Sprint(line["path"]))
		}
		return out
	}
	hit("/before")
	var one, two syncBuffer
	e.SetAccessLog(slog.New(slog.NewJSONHandler(&one, nil)))
	hit("/one-a")
	hit("/one-b")
	e.SetAccessLog(slog.New(slog.NewJSONHandler(&two, nil))) // the first log's lines are written by now
	if got := paths(&one); !slices.Equal(got, []string{"/one-a", "/one-b"}) {
		t.Errorf("first access log: %q, want /one-a and /one-b", got)
	}
	hit("/two")
	e.SetAccessLog(nil)
	hit("/after")
	e.SetAccessLog(nil)
	if got := paths(&two); !slices.Equal(got, []string{"/two"}) {
		t.Errorf("second access log: %q, want /two", got)
	}
	if got := paths(&one); len(got) != 2 {
		t.Errorf("first access log has %d lines after it was replaced, want 2", len(got))
	}
}

// TestClientGoneIsNotABadGateway: a client that gives up before the target answers is counted
// as 499, not as the target's failure (502).
func TestClientGoneIsNotABadGateway(t *testing.T) {
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	reg := newRegistry()
	e := newEngine(t, Options{Registerer: reg, NetHTTPOnly: true})
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("slow", ProtocolHTTP, slow)},
		Listeners:    []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "slow", Action: forwardTo("slow")}}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base(t, e, 80, "http")+"/", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("the request was answered %d, want the client's own timeout", resp.StatusCode)
	}
	key := "flatnet_l7_requests_total{code=499,listener=80,rule=slow}"
	var got map[string]float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = gathered(t, reg); got[key] == 1 {
			break
		}
	}
	if got[key] != 1 || got["flatnet_l7_requests_total{code=502,listener=80,rule=slow}"] != 0 {
		t.Errorf("metrics %v, want one %s and no 502", got, key)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gathered flattens a registry into "name{label=value,...}" -> counter value or histogram count.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			if c := m.GetCounter(); c != nil {
				out[key] = c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				out[key] = float64(h.GetSampleCount())
			}
		}
	}
	return out
}

// A listener whose protocol changes is reopened on its port; the other listener keeps serving.
func TestListenerProtocolChange(t *testing.T) {
	certPEM, keyPEM := selfSigned(t, "a.test")
	ports := map[int]int{} // logical port -> the real one, kept across reopenings
	var mu sync.Mutex
	e, err := New(Options{Listen: func(port int) (net.Listener, error) {
		mu.Lock()
		defer mu.Unlock()
		addr := "127.0.0.1:0"
		if p, ok := ports[port]; ok {
			addr = fmt.Sprintf("127.0.0.1:%d", p)
		}
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ports[port] = ln.Addr().(*net.TCPAddr).Port
		}
		return ln, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	fixed := Action{FixedResponse: &FixedResponse{StatusCode: 200, Body: "hi"}}
	cfg := func(p Protocol) Config {
		l := Listener{Port: 80, Protocol: p, Rules: []Rule{{Action: fixed}}}
		if p == ProtocolHTTPS {
			l.Certificates = []Certificate{{CertPEM: certPEM, KeyPEM: keyPEM}}
		}
		return Config{Listeners: []Listener{l, {Port: 81, Protocol: ProtocolHTTP, Rules: []Rule{{Action: fixed}}}}}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test certificate
	for _, p := range []Protocol{ProtocolHTTP, ProtocolHTTPS, ProtocolHTTP} {
		apply(t, e, cfg(p))
		scheme := strings.ToLower(string(p))
		if resp, _, body := do(t, c, get(t, base(t, e, 80, scheme), "", nil)); resp.StatusCode != 200 || body != "hi" {
			t.Errorf("%s on 80: %d %q", p, resp.StatusCode, body)
		}
		if resp, _, _ := do(t, c, get(t, base(t, e, 81, "http"), "", nil)); resp.StatusCode != 200 {
			t.Errorf("81 after 80 became %s: %d", p, resp.StatusCode)
		}
	}
}
