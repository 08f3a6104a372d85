package l7

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// flaky is a target that fails the first ?fail=N tries of each ?id, as ?mode says: with a
// status code (a number), by resetting the connection ("reset"), or by answering only after
// ?sleep (a duration) on each failing try ("slow", then 200). It answers the others 200 with
// the body it got, and counts every try.
type flaky struct {
	mu    sync.Mutex
	tries map[string]int
}

func (fl *flaky) count(id string) int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.tries[id]
}

func (fl *flaky) serve(w http.ResponseWriter, r *http.Request) {
	// No connection is kept: a reset then always reaches the policy, never a transport's own
	// retry of a stale kept-alive connection, and the tries counted are the policy's.
	w.Header().Set("Connection", "close")
	q := r.URL.Query()
	body, _ := io.ReadAll(r.Body)
	fail, _ := strconv.Atoi(q.Get("fail"))
	fl.mu.Lock()
	fl.tries[q.Get("id")]++
	n := fl.tries[q.Get("id")]
	fl.mu.Unlock()
	if n > fail {
		_, _ = fmt.Fprintf(w, "ok after %d: %s", n, body)
		return
	}
	switch mode := q.Get("mode"); mode {
	case "reset":
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	case "slow":
		d, _ := time.ParseDuration(q.Get("sleep"))
		time.Sleep(d)
		_, _ = io.WriteString(w, "slow")
	default:
		code, _ := strconv.Atoi(mode)
		w.WriteHeader(code)
	}
}

// TestRetry runs Action.Retry on both paths (the fast one and net/http's): retried codes and
// failures without an answer are tried again, up to the attempts and within the request
// timeout, after the backoff, a small body sent each time; other codes, large bodies and a
// policy's last failure reach the client.
func TestRetry(t *testing.T) {
	fl := &flaky{tries: map[string]int{}}
	target := startHandler(t, fl.serve)
	cfg := func(retry Retry, to Timeouts) Config {
		act := forwardTo("tg")
		act.Retry, act.Timeouts = &retry, to
		return Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, target)},
			Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "r", Action: act}}}}}
	}
	for _, path := range []struct {
		name string
		opts Options
	}{{"fast", Options{}}, {"net/http", Options{NetHTTPOnly: true}}} {
		t.Run(path.name, func(t *testing.T) {
			reg := newRegistry()
			path.opts.Registerer = reg
			e := newEngine(t, path.opts)
			retry := Retry{Codes: []int{500, 502}, Attempts: 3}
			apply(t, e, cfg(retry, Timeouts{}))
			u := base(t, e, 80, "http")
			id := 0
			ask := func(query, body string) (int, string, string, time.Duration) {
				t.Helper()
				id++
				key := fmt.Sprint(path.name, id)
				var rb io.Reader
				method := http.MethodGet
				if body != "" {
					rb, method = strings.NewReader(body), http.MethodPost
				}
				req, err := http.NewRequest(method, u+"/x?id="+key+"&"+query, rb)
				if err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", query, err)
				}
				got, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode, string(got), key, time.Since(t0)
			}
			for _, tc := range []struct {
				name, query, body string
				code, tries       int
			}{
				{"a retried code, then success", "fail=2&mode=500", "", 200, 3},
				{"more failures than attempts", "fail=4&mode=500", "", 500, 4},
				{"a code not retried", "fail=2&mode=503", "", 503, 1},
				{"connection resets", "fail=2&mode=reset", "", 200, 3},
				{"a small body each try", "fail=1&mode=502", "hello", 200, 2},
				{"a large body is tried once", "fail=1&mode=500", strings.Repeat("x", retryBodyLimit+1), 500, 1},
			} {
				code, body, key, _ := ask(tc.query, tc.body)
				if code != tc.code || fl.count(key) != tc.tries {
					t.Errorf("%s: %d %.40q after %d tries; want %d after %d", tc.name, code, body, fl.count(key), tc.code, tc.tries)
				}
				if code == 200 && !strings.HasSuffix(body, ": "+tc.body) {
					t.Errorf("%s: the target got the body %.40q, want %.40q", tc.name, body, tc.body)
				}
			}
			if got := gathered(t, reg)["flatnet_l7_request_retries_total{listener=80,rule=r}"]; got != 2+3+0+2+1 {
				t.Errorf("retries counted %v, want 8", got)
			}

			// Each try has the backend-request timeout: a slow try is given up and made again.
			apply(t, e, cfg(Retry{Attempts: 2}, Timeouts{Request: 5 * time.Second, BackendRequest: 200 * time.Millisecond}))
			if code, body, key, _ := ask("fail=1&mode=slow&sleep=2s", ""); code != 200 || fl.count(key) != 2 {
				t.Errorf("a slow first try: %d %q after %d tries; want 200 after 2", code, body, fl.count(key))
			}
			// The backoff comes between tries, and the request timeout bounds them all: tries at
			// 0, 200 and 400 ms; a fourth, at 600 ms, would pass the 500 ms. (A loaded machine
			// whose tries take over 50 ms each makes the third start too late: 2 tries.)
			apply(t, e, cfg(Retry{Codes: []int{500}, Attempts: 10, Backoff: 200 * time.Millisecond}, Timeouts{Request: 500 * time.Millisecond}))
			code, _, key, took := ask("fail=100&mode=500", "")
			if tries := fl.count(key); code != 500 || tries < 2 || tries > 3 {
				t.Errorf("within the request timeout: %d after %d tries, want 500 after 3 (2 on a slow machine), not the 11 the attempts allow", code, tries)
			}
			if least := time.Duration(fl.count(key)-1) * 200 * time.Millisecond; took < least {
				t.Errorf("%d tries with a 200 ms backoff took %v, less than %v", fl.count(key), took, least)
			}
		})
	}
}

func TestRetryConfigErrors(t *testing.T) {
	e := newEngine(t, Options{})
	for _, tc := range []struct {
		name  string
		retry Retry
		field string
	}{
		{"no attempts", Retry{}, "retry.attempts"},
		{"too many attempts", Retry{Attempts: 11}, "retry.attempts"},
		{"negative backoff", Retry{Attempts: 1, Backoff: -time.Second}, "retry.backoff"},
		{"code out of range", Retry{Attempts: 1, Codes: []int{399}}, "retry.codes[0]"},
		{"code twice", Retry{Attempts: 1, Codes: []int{500, 500}}, "retry.codes[1]"},
	} {
		act := forwardTo("tg")
		act.Retry = &tc.retry
		err := e.Apply(Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP)},
			Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: act}}}}})
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v; want an error naming %s", tc.name, err, tc.field)
		}
	}
	act := Action{FixedResponse: &FixedResponse{StatusCode: 200}, Retry: &Retry{Attempts: 1}}
	if err := e.Apply(Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: act}}}}}); err == nil {
		t.Error("a fixed response with a retry was taken")
	}
}
