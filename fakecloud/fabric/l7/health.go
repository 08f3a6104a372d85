package l7

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// HealthProtocol is how a target is probed.
type HealthProtocol string

const (
	HealthHTTP  HealthProtocol = "HTTP"
	HealthHTTPS HealthProtocol = "HTTPS" // unverified, as an ELB's checks; presents CheckTarget's client certificate
	HealthGRPC  HealthProtocol = "GRPC"  // grpc.health.v1.Health/Check over h2c
	HealthTCP   HealthProtocol = "TCP"
	// HealthTLS is a TLS handshake that verifies the target as CheckTarget.TLS says and
	// presents CheckTarget's client certificate (a TLS group's targets): healthy when the
	// handshake, verification included, succeeds.
	HealthTLS HealthProtocol = "TLS"
)

// HealthCheck is a target group's check, with the network load balancer's semantics: a target
// turns healthy after HealthyThreshold successes in a row and unhealthy after
// UnhealthyThreshold failures in a row; the first probe goes out at once.
type HealthCheck struct {
	Protocol HealthProtocol
	Port     int    // 0: the target's port
	Path     string // HTTP(S); GRPC: the method path, default /grpc.health.v1.Health/Check
	// Matcher is the codes that count as success: HTTP(S) status codes ("200", "200,202",
	// "200-399"; default "200"), or GRPC status codes ("0", "0-99"; default "0", which also
	// needs the answer SERVING).
	Matcher     string
	GRPCService string // GRPC: the service asked about; "" is the server as a whole
	// GRPCTLS (GRPC only): the check speaks TLS, as to an HTTPS group's gRPC targets; the
	// target's certificate is not verified (as HTTPS checks), the client certificate presented.
	GRPCTLS            bool
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
}

// CheckTarget is one target to probe and the state the control plane holds for it.
type CheckTarget struct {
	TargetGroup string
	Addr        netip.AddrPort
	Check       HealthCheck
	Known       TargetState
	KnownReason string
	// ClientCertPEM and ClientKeyPEM are the group's client certificate (BackendTLS's), which
	// HTTPS checks present to a target that asks for one: a target requiring it would otherwise
	// fail every check. Empty: none.
	ClientCertPEM []byte
	ClientKeyPEM  []byte
	// TLS (HealthTLS checks; required there, ignored by the others) is how the handshake
	// verifies the target: the group's BackendTLS (InsecureSkipVerify: not at all). Its own
	// client certificate must be empty: the check presents ClientCertPEM, as every check does.
	TLS *BackendTLS
}

// HealthReport is a target's new state as the checks decide it.
type HealthReport struct {
	TargetGroup string
	Addr        netip.AddrPort
	State       TargetState
	Reason      string // fakecloud/api's Reason* for unhealthy targets
	Description string
}

// HealthReporter takes the transitions the checker observes (the control plane, which feeds
// the states back to the engine in the next Config).
type HealthReporter interface {
	ReportHealth(ctx context.Context, reports []HealthReport) error
}

// CheckerOptions are a Checker's surroundings.
type CheckerOptions struct {
	Report HealthReporter // required
	// Dial reaches targets; default: a net.Dialer in the caller's namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	Log  *slog.Logger
}

// Checker runs one probe loop per (target group, target, check) and reports state changes.
type Checker struct {
	opts CheckerOptions
	log  *slog.Logger

	mu      sync.Mutex
	running map[checkKey]*probeLoop
}

type checkKey struct {
	group string
	addr  netip.AddrPort
	check HealthCheck
	// clientCert is a digest of the client certificate and key: a new one is a new probe loop.
	clientCert [sha256.Size]byte
	// tls is what a TLS check's verification is made from (backendTLSKey): new settings are a
	// new probe loop.
	tls string
}

// NewChecker returns a checker with nothing to probe until Sync.
func NewChecker(opts CheckerOptions) (*Checker, error) {
	if opts.Report == nil {
		return nil, errors.New("l7: CheckerOptions.Report is required")
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{}).DialContext
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Checker{opts: opts, log: opts.Log, running: map[checkKey]*probeLoop{}}, nil
}

// Sync makes the running probes those of targets, and tells each what the control plane holds.
// It rejects a check it cannot run (naming the target) and keeps the others running.
func (c *Checker) Sync(targets []CheckTarget) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	want := map[checkKey]CheckTarget{}
	// Client certificates and TLS checks' configurations are made for new probes only, once each.
	certs := map[[sha256.Size]byte]*tls.Certificate{}
	confs := map[string]*tls.Config{}
	for _, t := range targets {
		if err := validateCheck(t.Check); err != nil {
			errs = append(errs, fmt.Errorf("target group %s target %s: %w", t.TargetGroup, t.Addr, err))
			continue
		}
		k := checkKey{group: t.TargetGroup, addr: t.Addr, check: t.Check, clientCert: clientCertDigest(t)}
		if t.Check.Protocol == HealthTLS {
			k.tls = backendTLSKey(t.TLS)
		}
		if c.running[k] == nil {
			if _, parsed := certs[k.clientCert]; !parsed {
				cert, err := checkClientCert(t)
				if err != nil {
					errs = append(errs, fmt.Errorf("target group %s target %s: %w", t.TargetGroup, t.Addr, err))
					continue
				}
				certs[k.clientCert] = cert
			}
			if _, made := confs[k.tls]; !made && t.Check.Protocol == HealthTLS {
				conf, err := checkTLSConfig(t.TLS)
				if err != nil {
					errs = append(errs, fmt.Errorf("target group %s target %s: %w", t.TargetGroup, t.Addr, err))
					continue
				}
				confs[k.tls] = conf
			}
		}
		want[k] = t
	}
	for k, p := range c.running {
		if _, ok := want[k]; !ok {
			p.stop()
			delete(c.running, k)
		}
	}
	for k, t := range want {
		if p := c.running[k]; p != nil {
			p.setKnown(t.Known, t.KnownReason)
			continue
		}
		p := c.newLoop(t, certs[k.clientCert], confs[k.tls])
		c.running[k] = p
		go p.run()
	}
	return errors.Join(errs...)
}

// Close stops every probe.
func (c *Checker) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.running {
		p.stop()
		delete(c.running, k)
	}
}

func validateCheck(hc HealthCheck) error {
	if hc.Interval <= 0 || hc.Timeout <= 0 || hc.HealthyThreshold < 1 || hc.UnhealthyThreshold < 1 {
		return errors.New("health check needs a positive interval, timeout and thresholds")
	}
	switch hc.Protocol {
	case HealthHTTP, HealthHTTPS:
		if !strings.HasPrefix(hc.Path, "/") {
			return fmt.Errorf("health check path %q does not start with /", hc.Path)
		}
		_, err := parseCodes(cmpOr(hc.Matcher, "200"), 100, 599)
		return err
	case HealthGRPC:
		_, err := parseCodes(cmpOr(hc.Matcher, "0"), 0, 99)
		return err
	case HealthTCP, HealthTLS:
		return nil
	}
	return fmt.Errorf("health check protocol %q is not HTTP, HTTPS, GRPC, TCP or TLS", hc.Protocol)
}

// checkTLSConfig is a TLS check's client configuration, compiled as a TLS group's (no ALPN);
// the probe adds the client certificate.
func checkTLSConfig(bt *BackendTLS) (*tls.Config, error) {
	if bt == nil {
		return nil, errors.New("a TLS check needs CheckTarget.TLS: the server name and roots to verify the target with, or InsecureSkipVerify")
	}
	if len(bt.ClientCertPEM) > 0 || len(bt.ClientKeyPEM) > 0 {
		return nil, errors.New("CheckTarget.TLS holds a client certificate: give it as CheckTarget.ClientCertPEM and ClientKeyPEM, which every check presents")
	}
	c := &checker{}
	conf := c.backendTLS("tls", bt)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	conf.NextProtos = nil
	return conf, nil
}

// checkClientCert is t's client certificate, nil for none.
func checkClientCert(t CheckTarget) (*tls.Certificate, error) {
	if len(t.ClientCertPEM) == 0 && len(t.ClientKeyPEM) == 0 {
		return nil, nil
	}
	cert, err := tls.X509KeyPair(t.ClientCertPEM, t.ClientKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("client certificate: not a PEM certificate chain and matching key: %w", err)
	}
	return &cert, nil
}

func clientCertDigest(t CheckTarget) [sha256.Size]byte {
	if len(t.ClientCertPEM) == 0 && len(t.ClientKeyPEM) == 0 {
		return [sha256.Size]byte{}
	}
	h := sha256.New()
	h.Write(t.ClientCertPEM)
	h.Write([]byte{0})
	h.Write(t.ClientKeyPEM)
	return [sha256.Size]byte(h.Sum(nil))
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// verdict is one probe's outcome: ok, or why not.
type verdict struct {
	ok          bool
	reason      string
	description string
}

type probeLoop struct {
	t      CheckTarget
	cert   *tls.Certificate // the client certificate HTTPS probes present (nil: none)
	conf   *tls.Config      // a TLS check's (without the client certificate)
	addr   string           // where probes go
	report HealthReporter
	log    *slog.Logger
	probe  func(ctx context.Context) verdict
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu            sync.Mutex
	known         HealthReport
	okRun, nokRun int
	// gen counts the control plane's updates of known; a probe's report that raced one
	// must not overwrite it (a target drained while its last transition was being reported).
	gen uint64
}

func (c *Checker) newLoop(t CheckTarget, cert *tls.Certificate, conf *tls.Config) *probeLoop {
	ctx, cancel := context.WithCancel(context.Background())
	port := int(t.Addr.Port())
	if t.Check.Port != 0 {
		port = t.Check.Port
	}
	p := &probeLoop{t: t, cert: cert, conf: conf, addr: net.JoinHostPort(t.Addr.Addr().String(), strconv.Itoa(port)),
		report: c.opts.Report, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log:   c.log.With("targetGroup", t.TargetGroup, "target", t.Addr.String()),
		known: HealthReport{TargetGroup: t.TargetGroup, Addr: t.Addr, State: t.Known, Reason: t.KnownReason}}
	switch t.Check.Protocol {
	case HealthHTTP, HealthHTTPS:
		p.probe = p.httpProbe(c.opts.Dial)
	case HealthGRPC:
		p.probe = p.grpcProbe(c.opts.Dial)
	case HealthTLS:
		p.probe = p.tlsProbe(c.opts.Dial)
	default:
		p.probe = p.tcpProbe(c.opts.Dial)
	}
	return p
}

// setKnown takes the state the control plane holds for the target.
func (p *probeLoop) setKnown(state TargetState, reason string) {
	p.mu.Lock()
	p.known.State, p.known.Reason = state, reason
	p.gen++
	p.mu.Unlock()
}

// reported takes a transition the probe reported, unless the control plane set the state
// since the probe read it (gen moved on): the control plane's word is the newer.
func (p *probeLoop) reported(gen uint64, next HealthReport) {
	p.mu.Lock()
	if p.gen == gen {
		p.known.State, p.known.Reason = next.State, next.Reason
	}
	p.mu.Unlock()
}

func (p *probeLoop) stop() {
	p.cancel()
	<-p.done
}

func (p *probeLoop) run() {
	defer close(p.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(p.ctx, p.t.Check.Timeout)
		v := p.probe(ctx)
		cancel()
		if p.ctx.Err() != nil {
			return
		}
		p.observe(v)
		t.Reset(max(p.t.Check.Interval-time.Since(start), 0))
	}
}

// observe counts a verdict and reports a transition; a report that fails leaves the known state
// as it was, so the next probe reports again.
func (p *probeLoop) observe(v verdict) {
	p.mu.Lock()
	if v.ok {
		p.okRun, p.nokRun = p.okRun+1, 0
	} else {
		p.okRun, p.nokRun = 0, p.nokRun+1
	}
	prev, gen := p.known, p.gen
	next, changed := nextState(prev, v, p.okRun, p.nokRun, p.t.Check.HealthyThreshold, p.t.Check.UnhealthyThreshold)
	p.mu.Unlock()
	if !changed {
		return
	}
	if err := p.report.ReportHealth(p.ctx, []HealthReport{next}); err != nil {
		p.log.Warn("reporting target health failed, will retry", "state", next.State, "err", err)
		return
	}
	p.log.Info("target health changed", "from", prev.State, "to", next.State, "reason", next.Reason)
	p.reported(gen, next)
}

// nextState decides a target's state from the known one and the runs of consecutive results,
// as the network load balancer's checks do: healthy after `healthy` successes in a row,
// unhealthy (with the last failure's reason) after `unhealthy` failures in a row, otherwise
// unchanged. Draining, unused and unavailable targets are the control plane's to change.
func nextState(known HealthReport, v verdict, okRun, nokRun, healthy, unhealthy int) (HealthReport, bool) {
	switch known.State {
	case StateDraining, StateUnused, StateUnavailable:
		return known, false
	}
	next := known
	switch {
	case okRun >= healthy:
		next.State, next.Reason, next.Description = StateHealthy, "", ""
	case nokRun >= unhealthy:
		next.State, next.Reason, next.Description = StateUnhealthy, v.reason, v.description
	}
	return next, next.State != known.State || next.Reason != known.Reason
}

func failure(ctx context.Context, err error) verdict {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return verdict{reason: api.ReasonTimeout, description: "Request timed out"}
	}
	return verdict{reason: api.ReasonFailedHealthChecks, description: "Health checks failed: " + err.Error()}
}

func (p *probeLoop) tcpProbe(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(context.Context) verdict {
	return func(ctx context.Context) verdict {
		c, err := dial(ctx, "tcp", p.addr)
		if err != nil {
			return failure(ctx, err)
		}
		_ = c.Close()
		return verdict{ok: true}
	}
}

// tlsProbe makes a TLS handshake with the target as a TLS group's connections do: verified
// as the group says, presenting its client certificate. In TLS 1.3 a target judges the client
// certificate only after the client's side of the handshake has ended: when the target asked
// for one, the probe waits a moment (refusalWait) for the alert of a target that refuses it.
func (p *probeLoop) tlsProbe(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(context.Context) verdict {
	return func(ctx context.Context) verdict {
		conf := p.conf.Clone()
		asked := false
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			if p.cert != nil {
				return p.cert, nil
			}
			return &tls.Certificate{}, nil // none to present: the target decides
		}
		c, err := dial(ctx, "tcp", p.addr)
		if err != nil {
			return failure(ctx, err)
		}
		tc, err := originateTLS(ctx, c, conf, p.addr)
		if err != nil {
			return failure(ctx, err)
		}
		defer func() { _ = tc.Close() }()
		if t, ok := tc.(*tls.Conn); ok && asked && t.ConnectionState().Version == tls.VersionTLS13 {
			if err := awaitRefusal(ctx, t); err != nil {
				return failure(ctx, err)
			}
		}
		return verdict{ok: true}
	}
}

// refusalWait is how long a TLS 1.3 probe that presented a client certificate (or was asked
// for one and had none) waits for the target's alert refusing it. A target that takes it sends
// nothing, or a session ticket, in that time.
const refusalWait = 200 * time.Millisecond

// awaitRefusal reads from a TLS 1.3 connection just established, for refusalWait at most:
// the target's alert (it refused the client's certificate) is the error returned; silence,
// data or the target closing the connection are not.
func awaitRefusal(ctx context.Context, c *tls.Conn) error {
	deadline := time.Now().Add(refusalWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetReadDeadline(deadline)
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	if err == nil || errors.Is(err, io.EOF) || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

func (p *probeLoop) httpProbe(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(context.Context) verdict {
	codes, _ := parseCodes(cmpOr(p.t.Check.Matcher, "200"), 100, 599) // validated in Sync
	scheme := "http"
	if p.t.Check.Protocol == HealthHTTPS {
		scheme = "https"
	}
	conf := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // ELB checks don't verify targets' certificates
	if p.cert != nil {
		conf.GetClientCertificate = presentAlways(p.cert)
	}
	client := &http.Client{
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, TLSClientConfig: conf},
		// A redirect is an answer like any other: its code is what the matcher judges.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	url := scheme + "://" + p.addr + p.t.Check.Path
	return func(ctx context.Context) verdict {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return verdict{reason: api.ReasonFailedHealthChecks, description: err.Error()}
		}
		req.Header.Set("User-Agent", "fakecloud-HealthChecker/1.0")
		resp, err := client.Do(req)
		if err != nil {
			return failure(ctx, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if !inCodes(codes, resp.StatusCode) {
			return verdict{reason: api.ReasonResponseCodeMismatch,
				description: fmt.Sprintf("Health checks failed with these codes: [%d]", resp.StatusCode)}
		}
		return verdict{ok: true}
	}
}

// grpcProbe calls grpc.health.v1.Health/Check over h2c with a hand-encoded request, so the
// module needs no gRPC library.
func (p *probeLoop) grpcProbe(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(context.Context) verdict {
	codes, _ := parseCodes(cmpOr(p.t.Check.Matcher, "0"), 0, 99)
	var protos http.Protocols
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true, Protocols: &protos}
	scheme := "http"
	if p.t.Check.GRPCTLS {
		scheme = "https"
		protos.SetHTTP2(true)
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}} //nolint:gosec // ELB checks don't verify targets' certificates
		if p.cert != nil {
			tr.TLSClientConfig.GetClientCertificate = presentAlways(p.cert)
		}
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	client := &http.Client{Transport: tr}
	url := scheme + "://" + p.addr + cmpOr(p.t.Check.Path, "/grpc.health.v1.Health/Check")
	msg := grpcHealthRequest(p.t.Check.GRPCService)
	return func(ctx context.Context) verdict {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(msg))
		if err != nil {
			return verdict{reason: api.ReasonFailedHealthChecks, description: err.Error()}
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		req.Header.Set("User-Agent", "fakecloud-HealthChecker/1.0")
		resp, err := client.Do(req)
		if err != nil {
			return failure(ctx, err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return failure(ctx, err)
		}
		status := resp.Trailer.Get("Grpc-Status")
		if status == "" {
			status = resp.Header.Get("Grpc-Status") // a trailers-only answer
		}
		code, err := strconv.Atoi(status)
		if resp.StatusCode != http.StatusOK || err != nil {
			return verdict{reason: api.ReasonResponseCodeMismatch,
				description: fmt.Sprintf("Health checks failed: HTTP %d, grpc-status %q", resp.StatusCode, status)}
		}
		if !inCodes(codes, code) {
			return verdict{reason: api.ReasonResponseCodeMismatch,
				description: fmt.Sprintf("Health checks failed with these gRPC codes: [%d]", code)}
		}
		if code == 0 {
			if serving, err := grpcServing(body); err != nil || !serving {
				return verdict{reason: api.ReasonFailedHealthChecks, description: "Health checks failed: not SERVING"}
			}
		}
		return verdict{ok: true}
	}
}

// grpcHealthRequest is a length-prefixed HealthCheckRequest{service}.
func grpcHealthRequest(service string) []byte {
	var msg []byte
	if service != "" {
		msg = append(msg, 0x0a) // field 1, length-delimited
		msg = binary.AppendUvarint(msg, uint64(len(service)))
		msg = append(msg, service...)
	}
	out := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// grpcServing reads a length-prefixed HealthCheckResponse and reports whether its status
// (field 1) is SERVING (1).
func grpcServing(b []byte) (bool, error) {
	if len(b) < 5 || b[0] != 0 {
		return false, errors.New("no uncompressed gRPC message")
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if uint32(len(b)-5) < n {
		return false, errors.New("truncated gRPC message")
	}
	msg, status := b[5:5+n], uint64(0)
	for len(msg) > 0 {
		tag, k := binary.Uvarint(msg)
		if k <= 0 {
			return false, errors.New("bad protobuf tag")
		}
		msg = msg[k:]
		switch tag & 7 {
		case 0:
			v, k := binary.Uvarint(msg)
			if k <= 0 {
				return false, errors.New("bad protobuf varint")
			}
			msg = msg[k:]
			if tag>>3 == 1 {
				status = v
			}
		case 2:
			l, k := binary.Uvarint(msg)
			if k <= 0 || uint64(len(msg)-k) < l {
				return false, errors.New("bad protobuf length")
			}
			msg = msg[k+int(l):]
		default:
			return false, fmt.Errorf("unexpected protobuf wire type %d", tag&7)
		}
	}
	return status == 1, nil
}

type codeRange struct{ lo, hi int }

// parseCodes reads a matcher: "200", "200,202", "200-299" or lists of them, each within lo..hi.
func parseCodes(m string, lo, hi int) ([]codeRange, error) {
	var out []codeRange
	for part := range strings.SplitSeq(m, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		x, err1 := strconv.Atoi(a)
		y, err2 := x, error(nil)
		if isRange {
			y, err2 = strconv.Atoi(b)
		}
		if err1 != nil || err2 != nil || x < lo || y > hi || x > y {
			return nil, fmt.Errorf("matcher %q: %q is not a code (%d-%d) or a range of them like %d-%d", m, part, lo, hi, lo, hi)
		}
		out = append(out, codeRange{x, y})
	}
	return out, nil
}

func inCodes(codes []codeRange, code int) bool {
	for _, r := range codes {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}
