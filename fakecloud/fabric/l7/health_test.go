package l7

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func TestNextState(t *testing.T) {
	fail := verdict{reason: api.ReasonTimeout, description: "Request timed out"}
	tests := []struct {
		name          string
		known         TargetState
		v             verdict
		okRun, nokRun int
		want          TargetState
		changed       bool
	}{
		{"initial stays until the healthy threshold", StateInitial, verdict{ok: true}, 1, 0, StateInitial, false},
		{"initial turns healthy at the threshold", StateInitial, verdict{ok: true}, 2, 0, StateHealthy, true},
		{"initial turns unhealthy at the threshold", StateInitial, fail, 0, 2, StateUnhealthy, true},
		{"healthy survives one failure", StateHealthy, fail, 0, 1, StateHealthy, false},
		{"healthy turns unhealthy", StateHealthy, fail, 0, 2, StateUnhealthy, true},
		{"unhealthy recovers", StateUnhealthy, verdict{ok: true}, 2, 0, StateHealthy, true},
		{"draining is the control plane's", StateDraining, verdict{ok: true}, 5, 0, StateDraining, false},
		{"unused is the control plane's", StateUnused, fail, 0, 5, StateUnused, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := nextState(HealthReport{State: tt.known}, tt.v, tt.okRun, tt.nokRun, 2, 2)
			if got.State != tt.want || changed != tt.changed {
				t.Errorf("got %s (changed %v), want %s (changed %v)", got.State, changed, tt.want, tt.changed)
			}
			if got.State == StateUnhealthy && got.Reason != api.ReasonTimeout {
				t.Errorf("unhealthy with reason %q, want %q", got.Reason, api.ReasonTimeout)
			}
		})
	}
}

func TestParseCodes(t *testing.T) {
	ok := map[string][]codeRange{"200": {{200, 200}}, "200,202": {{200, 200}, {202, 202}}, "200-399": {{200, 399}}, "200 - 299": nil}
	for m, want := range ok {
		got, err := parseCodes(m, 100, 599)
		if want == nil {
			if err == nil {
				t.Errorf("parseCodes(%q) = %v, want an error", m, got)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, want, cmp.AllowUnexported(codeRange{})) {
			t.Errorf("parseCodes(%q) = %v, %v; want %v", m, got, err, want)
		}
	}
	for _, m := range []string{"", "abc", "99", "600", "300-200", "200-"} {
		if _, err := parseCodes(m, 100, 599); err == nil {
			t.Errorf("parseCodes(%q) took it", m)
		}
	}
	if _, err := parseCodes("0-99", 0, 99); err != nil {
		t.Errorf("gRPC codes 0-99: %v", err)
	}
}

// reports collects a checker's reports and accepts them.
type reports chan HealthReport

func (r reports) ReportHealth(_ context.Context, rs []HealthReport) error {
	for _, x := range rs {
		r <- x
	}
	return nil
}

func (r reports) next(t *testing.T) HealthReport {
	t.Helper()
	select {
	case x := <-r:
		return x
	case <-time.After(5 * time.Second):
		t.Fatal("no health report within 5s")
		return HealthReport{}
	}
}

func newChecker(t *testing.T, r HealthReporter) *Checker {
	t.Helper()
	c, err := NewChecker(CheckerOptions{Report: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func fastCheck(p HealthProtocol) HealthCheck {
	return HealthCheck{Protocol: p, Interval: 10 * time.Millisecond, Timeout: 200 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2}
}

func TestCheckerHTTPTransitions(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	addr := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(code.Load()))
	})
	rs := make(reports, 16)
	c := newChecker(t, rs)
	hc := fastCheck(HealthHTTP)
	hc.Path, hc.Matcher = "/healthz", "200-299"
	target := CheckTarget{TargetGroup: "tg", Addr: addr, Check: hc, Known: StateInitial, KnownReason: api.ReasonInitialHealthChecking}
	if err := c.Sync([]CheckTarget{target}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy || got.TargetGroup != "tg" || got.Addr != addr {
		t.Fatalf("first report %+v, want healthy", got)
	}
	code.Store(503)
	if got := rs.next(t); got.State != StateUnhealthy || got.Reason != api.ReasonResponseCodeMismatch {
		t.Fatalf("report %+v, want unhealthy with %s", got, api.ReasonResponseCodeMismatch)
	}
	code.Store(204)
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("report %+v, want healthy again", got)
	}
	// The control plane drains the target: the checker reports nothing over it.
	target.Known = StateDraining
	if err := c.Sync([]CheckTarget{target}); err != nil {
		t.Fatal(err)
	}
	code.Store(500)
	select {
	case got := <-rs:
		t.Fatalf("reported %+v over a draining target", got)
	case <-time.After(100 * time.Millisecond):
	}
	if err := c.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if n := len(c.running); n != 0 {
		t.Errorf("%d probes still running after Sync(nil)", n)
	}
}

// gatedReports hands each report to the test and waits for the test to release it, so a
// test can change the control plane's state while a report is in flight.
type gatedReports struct {
	got     chan HealthReport
	release chan struct{}
}

func (g gatedReports) ReportHealth(ctx context.Context, rs []HealthReport) error {
	for _, x := range rs {
		g.got <- x
	}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A target drained while its last transition is being reported stays drained: the probe's
// report must not overwrite the control plane's newer word (CI saw this race once).
func TestCheckerDrainDuringReport(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	addr := startHandler(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(code.Load())) })
	g := gatedReports{got: make(chan HealthReport, 4), release: make(chan struct{})}
	c := newChecker(t, g)
	hc := fastCheck(HealthHTTP)
	hc.Path, hc.Matcher = "/", "200"
	target := CheckTarget{TargetGroup: "tg", Addr: addr, Check: hc, Known: StateInitial}
	if err := c.Sync([]CheckTarget{target}); err != nil {
		t.Fatal(err)
	}
	if got := reports(g.got).next(t); got.State != StateHealthy {
		t.Fatalf("first report %+v, want healthy", got)
	}
	// The healthy report is in flight: drain the target, then let the report return.
	target.Known = StateDraining
	if err := c.Sync([]CheckTarget{target}); err != nil {
		t.Fatal(err)
	}
	code.Store(500)
	g.release <- struct{}{}
	select {
	case got := <-g.got:
		t.Fatalf("reported %+v over a target drained while a report was in flight", got)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.release)
}

func TestCheckerTCPAndTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	rs := make(reports, 16)
	c := newChecker(t, rs)
	if err := c.Sync([]CheckTarget{{TargetGroup: "tcp", Addr: addr, Check: fastCheck(HealthTCP), Known: StateInitial}}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("report %+v, want healthy", got)
	}
	_ = ln.Close()
	if got := rs.next(t); got.State != StateUnhealthy || got.Reason != api.ReasonFailedHealthChecks {
		t.Fatalf("report %+v, want unhealthy with %s", got, api.ReasonFailedHealthChecks)
	}

	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	})
	hc := fastCheck(HealthHTTP)
	hc.Path, hc.Timeout = "/", 20*time.Millisecond
	if err := c.Sync([]CheckTarget{{TargetGroup: "slow", Addr: slow, Check: hc, Known: StateHealthy}}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateUnhealthy || got.Reason != api.ReasonTimeout {
		t.Fatalf("report %+v, want unhealthy with %s", got, api.ReasonTimeout)
	}
}

func TestCheckerGRPC(t *testing.T) {
	var serving atomic.Bool
	serving.Store(true)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	addr := startHandlerWith(t, &p, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/grpc.health.v1.Health/Check" || r.Header.Get("Content-Type") != "application/grpc" {
			w.Header().Set("Grpc-Status", "12") // trailers-only: unimplemented
			return
		}
		status := byte(2) // NOT_SERVING
		if serving.Load() {
			status = 1
		}
		msg := []byte{0x08, status}
		frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = w.Write(append(frame, msg...))
		w.Header().Set("Grpc-Status", "0")
	})
	rs := make(reports, 16)
	c := newChecker(t, rs)
	if err := c.Sync([]CheckTarget{{TargetGroup: "grpc", Addr: addr, Check: fastCheck(HealthGRPC), Known: StateInitial}}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("report %+v, want healthy", got)
	}
	serving.Store(false)
	if got := rs.next(t); got.State != StateUnhealthy || got.Reason != api.ReasonFailedHealthChecks {
		t.Fatalf("report %+v, want unhealthy (NOT_SERVING)", got)
	}
	// A wrong path answers grpc-status 12 in a trailers-only response: a code mismatch.
	hc := fastCheck(HealthGRPC)
	hc.Path = "/other/Check"
	if err := c.Sync([]CheckTarget{{TargetGroup: "grpc", Addr: addr, Check: hc, Known: StateHealthy}}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateUnhealthy || got.Reason != api.ReasonResponseCodeMismatch {
		t.Fatalf("report %+v, want unhealthy with %s", got, api.ReasonResponseCodeMismatch)
	}
}

func TestCheckerHTTPS(t *testing.T) {
	srv := httptestTLS(t) // a certificate the checker cannot verify, which it need not
	rs := make(reports, 4)
	c := newChecker(t, rs)
	hc := fastCheck(HealthHTTPS)
	hc.Path = "/"
	if err := c.Sync([]CheckTarget{{TargetGroup: "tls", Addr: srv.addr, Check: hc, Known: StateInitial}}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("report %+v, want healthy", got)
	}
}

func TestCheckerSyncRejectsBadChecks(t *testing.T) {
	c := newChecker(t, make(reports, 1))
	bad := fastCheck(HealthHTTP)
	bad.Path = "healthz"
	err := c.Sync([]CheckTarget{{TargetGroup: "tg", Addr: addrPort("127.0.0.1:1"), Check: bad}})
	if err == nil {
		t.Fatal("Sync took a path without /")
	}
	if _, err := NewChecker(CheckerOptions{}); err == nil {
		t.Error("NewChecker without a reporter")
	}
}

// A report that fails is retried on the next probe.
func TestCheckerRetriesReport(t *testing.T) {
	addr := startHandler(t, func(http.ResponseWriter, *http.Request) {})
	var calls atomic.Int32
	r := reportFunc(func(rs []HealthReport) error {
		if calls.Add(1) == 1 {
			return errors.New("control plane down")
		}
		return nil
	})
	c := newChecker(t, r)
	hc := fastCheck(HealthHTTP)
	hc.Path = "/"
	if err := c.Sync([]CheckTarget{{TargetGroup: "tg", Addr: addr, Check: hc, Known: StateInitial}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Errorf("%d report calls, want 2 (one failed, one retried, then quiet)", n)
	}
}

type reportFunc func([]HealthReport) error

func (f reportFunc) ReportHealth(_ context.Context, rs []HealthReport) error { return f(rs) }

func TestGRPCServing(t *testing.T) {
	for _, tt := range []struct {
		b    []byte
		want bool
		err  bool
	}{
		{[]byte{0, 0, 0, 0, 2, 0x08, 1}, true, false},
		{[]byte{0, 0, 0, 0, 2, 0x08, 2}, false, false},
		{[]byte{0, 0, 0, 0, 0}, false, false}, // UNKNOWN (0), the default
		{[]byte{0, 0, 0, 0, 5, 0x12, 1, 'x', 0x08, 1}, true, false},
		{[]byte{0, 0, 0, 0, 9}, false, true},
		{[]byte{1, 0, 0, 0, 0}, false, true},
	} {
		got, err := grpcServing(tt.b)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("grpcServing(%v) = %v, %v; want %v, error %v", tt.b, got, err, tt.want, tt.err)
		}
	}
	if got := grpcHealthRequest("svc"); !cmp.Equal(got, []byte{0, 0, 0, 0, 5, 0x0a, 3, 's', 'v', 'c'}) {
		t.Errorf("grpcHealthRequest(svc) = %v", got)
	}
}

// TestCheckerGRPCTLS: an HTTPS group's gRPC targets (a gRPC backend a BackendTLSPolicy targets)
// are checked with gRPC over TLS (HTTP/2 by ALPN, the target's certificate not verified); the
// check over h2c fails against them.
func TestCheckerGRPCTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.URL.Path != "/grpc.health.v1.Health/Check" {
			w.Header().Set("Grpc-Status", "12")
			return
		}
		msg := []byte{0x08, 1} // SERVING
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = w.Write(append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...))
		w.Header().Set("Grpc-Status", "0")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	rs := make(reports, 16)
	c := newChecker(t, rs)
	hc := fastCheck(HealthGRPC)
	hc.GRPCTLS = true
	if err := c.Sync([]CheckTarget{{TargetGroup: "grpcs", Addr: addr, Check: hc, Known: StateInitial}}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("gRPC over TLS: report %+v, want healthy", got)
	}
	hc.GRPCTLS = false
	if err := c.Sync([]CheckTarget{{TargetGroup: "grpcs", Addr: addr, Check: hc, Known: StateHealthy}}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateUnhealthy {
		t.Fatalf("h2c against a TLS target: report %+v, want unhealthy", got)
	}
}
