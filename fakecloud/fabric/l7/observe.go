package l7

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// noRule labels requests no rule matched.
const noRule = "-"

// accessLogBuffer is how many access-log lines may wait for the writer; beyond it lines are
// dropped (and counted) rather than holding up requests.
const accessLogBuffer = 4096

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	dropped  prometheus.Counter
	// retries counts the tries made after a first one failed (Action.Retry).
	retries *prometheus.CounterVec
	// connections and connBytes count the connections of TLS-passthrough and TCP listeners and
	// the flows of UDP listeners, when they end, and the bytes they carried.
	connections *prometheus.CounterVec
	connBytes   *prometheus.CounterVec
	// udpRefused counts the UDP flows refused because their listener had UDPMaxFlows.
	udpRefused *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatnet_l7_requests_total",
			Help: "Requests the L7 load balancer answered, by listener port, rule (\"-\": none matched) and status code.",
		}, []string{"listener", "rule", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flatnet_l7_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by listener port and rule.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"listener", "rule"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatnet_l7_request_retries_total",
			Help: "Tries the L7 load balancer made again after a target failed a request (a retried status code, or no answer), by listener port and rule.",
		}, []string{"listener", "rule"}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatnet_l7_connections_total",
			Help: "Connections (TLS passthrough, TCP) and flows (UDP) the L7 load balancer ended, by listener port, rule (\"-\": none matched) and result: " +
				"forwarded, no_client_hello, tls_handshake_failed, no_rule, no_target or target_unreachable.",
		}, []string{"listener", "rule", "result"}),
		connBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatnet_l7_connection_bytes_total",
			Help: "Bytes the L7 load balancer relayed on connections and flows, by listener port, rule and direction (from_client, to_client).",
		}, []string{"listener", "rule", "direction"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flatnet_l7_access_log_dropped_total",
			Help: "Access-log lines dropped because the writer fell behind.",
		}),
		udpRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatnet_l7_udp_flows_refused_total",
			Help: "New UDP flows whose datagrams were dropped because their listener had its most flows, by listener port.",
		}, []string{"listener"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.retries, m.connections, m.connBytes, m.dropped, m.udpRefused} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// series are one (listener, rule) pair's metrics. They are resolved on a request's first use
// and kept with the snapshot, so a request costs no label hashing or lookup in the vectors.
type series struct {
	m              *metrics
	listener, rule string

	latency atomic.Pointer[prometheus.Observer]
	codes   atomic.Pointer[[]codeCounter] // copy on write; a rule answers with few codes
	mu      sync.Mutex                    // serialises writers of codes
}

type codeCounter struct {
	code int
	c    prometheus.Counter
}

// resolve gives every listener and rule of s its series and returns them by (listener, rule)
// pair. A pair the engine's last configuration had (old) keeps its series, and with it the
// counters it resolved: a configuration change among 1,000 rules makes no new series for the
// 999 it left alone, nor makes their next requests look their counters up again.
func (m *metrics) resolve(s *snapshot, old map[[2]string]*series) map[[2]string]*series {
	now := make(map[[2]string]*series, len(old))
	get := func(listener, rule string) *series {
		k := [2]string{listener, rule}
		se := old[k]
		if se == nil {
			se = &series{m: m, listener: listener, rule: rule}
		}
		now[k] = se
		return se
	}
	for k, l := range s.listeners {
		p := k.String()
		l.unmatched = get(p, noRule)
		for _, r := range l.rules {
			// A rule reused from the last config (compile) is read by requests: written
			// only when it changes, which it does not for one reused as it was.
			if se := get(p, r.name); r.series != se {
				r.series = se
			}
		}
	}
	return now
}

func (s *series) observe(code int, d time.Duration) {
	s.counter(code).Inc()
	o := s.latency.Load()
	if o == nil {
		obs := s.m.latency.WithLabelValues(s.listener, s.rule)
		s.latency.Store(&obs)
		o = &obs
	}
	(*o).Observe(d.Seconds())
}

func (s *series) counter(code int) prometheus.Counter {
	if cs := s.codes.Load(); cs != nil {
		for _, c := range *cs {
			if c.code == code {
				return c.c
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []codeCounter
	if p := s.codes.Load(); p != nil {
		cs = *p
		for _, c := range cs {
			if c.code == code {
				return c.c
			}
		}
	}
	c := s.m.requests.WithLabelValues(s.listener, s.rule, strconv.Itoa(code))
	next := append(append(make([]codeCounter, 0, len(cs)+1), cs...), codeCounter{code, c})
	s.codes.Store(&next)
	return c
}

// forget deletes the series of (listener, rule) pairs the new configuration (now) no longer
// has, so rules renamed or removed over many Applies do not pile up.
func (m *metrics) forget(old, now map[[2]string]*series) {
	for k := range old {
		if now[k] == nil {
			labels := prometheus.Labels{"listener": k[0], "rule": k[1]}
			m.requests.DeletePartialMatch(labels)
			m.latency.DeletePartialMatch(labels)
			m.retries.DeletePartialMatch(labels)
			m.connections.DeletePartialMatch(labels)
			m.connBytes.DeletePartialMatch(labels)
			if k[1] == noRule { // the listener is gone
				m.udpRefused.DeleteLabelValues(k[0])
			}
		}
	}
}

// StatusClientClosedRequest is what the metrics and the access log record (nginx's 499), in place
// of a 502, for a request that failed because its client left: on net/http's path a request
// whose connection closed while the target was being asked, on the fast path one whose client
// could not be written a 100 Continue or other interim answer. It is never sent.
const StatusClientClosedRequest = 499

// observe counts a finished request and queues its access-log line.
func (e *Engine) observe(r *http.Request, l *listener, ru *rule, f *flight, rec *recorder, d time.Duration) {
	s := l.unmatched
	if ru != nil {
		s = ru.series
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing answered 200
	}
	s.observe(status, d)
	access := e.access.Load()
	if access == nil {
		return
	}
	// The fast path's Host is part of its whole header block (parseHeaders): a copy, so that a
	// queue of lines behind a slow writer does not hold up to 4,096 heads.
	line := accessLine{client: r.RemoteAddr, proto: r.Proto, method: r.Method, host: strings.Clone(r.Host), url: r.URL,
		port: l.port, rule: s.rule, status: status, bytes: rec.bytes, d: d}
	if f != nil && f.target != nil {
		line.group, line.target = f.backend.group.name, f.target.hostport
	}
	if f != nil {
		line.err, line.retries = f.err, f.retries
	}
	access.queue(line, e.metrics.dropped)
}

// retried counts a try that failed and is made again, and logs why at debug level.
func (e *Engine) retried(l *listener, ru *rule, f *flight, err error) {
	f.retries++
	e.metrics.retries.WithLabelValues(ru.series.listener, ru.series.rule).Inc()
	e.log.Debug("retrying a request", "port", l.port, "rule", ru.name, "target", f.target.hostport, "try", f.retries, "err", err)
}

// The results of a passthrough connection or UDP flow (flatnet_l7_connections_total).
const (
	connForwarded         = "forwarded"
	connNoClientHello     = "no_client_hello"
	connHandshakeFailed   = "tls_handshake_failed"
	connNoRule            = "no_rule"
	connNoTarget          = "no_target"
	connTargetUnreachable = "target_unreachable"
	// connTargetTLSFailed: the TLS handshake with a TLS group's target failed, or the target
	// did not verify; the client's connection is closed.
	connTargetTLSFailed = "target_tls_failed"
)

// connRecord is one connection or flow of a TLS-passthrough, TCP or UDP listener, as it ends.
type connRecord struct {
	s                *series // its listener's and rule's (the listener's unmatched series: none)
	port             int
	proto            Protocol
	client, sni      string
	result           string
	group, target    string
	fromClient, toIt int64 // bytes from the client, and to it
	d                time.Duration
	err              error
	counters         *connCounters // nil until resolve
}

// connCounters are a connection's series, resolved when its result is known: one that outlives
// its rule adds to the series it had rather than making the removed rule's anew.
type connCounters struct{ conns, from, to prometheus.Counter }

// resolve gives c its counters (rule and result as they are now).
func (c *connRecord) resolve(m *metrics) {
	s := c.s
	c.counters = &connCounters{conns: m.connections.WithLabelValues(s.listener, s.rule, c.result),
		from: m.connBytes.WithLabelValues(s.listener, s.rule, "from_client"), to: m.connBytes.WithLabelValues(s.listener, s.rule, "to_client")}
}

// observeConn counts a connection or flow that ended and queues its access-log line.
func (e *Engine) observeConn(c *connRecord) {
	if c.counters == nil { // it ends as its result is known: nothing to add to the byte counts
		e.metrics.connections.WithLabelValues(c.s.listener, c.s.rule, c.result).Inc()
	} else {
		c.counters.conns.Inc()
		c.counters.from.Add(float64(c.fromClient))
		c.counters.to.Add(float64(c.toIt))
	}
	if access := e.access.Load(); access != nil {
		access.queue(accessLine{conn: c}, e.metrics.dropped)
	}
}

// accessLine is what a request leaves for the access-log writer, which formats it off the
// request's path.
type accessLine struct {
	client, proto, method, host string
	url                         *url.URL // the request's; nothing changes it once the request is answered
	port                        int
	rule                        string
	status                      int
	bytes                       int64
	d                           time.Duration
	group, target               string
	err                         error
	retries                     int
	// conn, when set, makes this a connection's line (and the fields above unused).
	conn *connRecord
}

// accessLog writes access-log lines in its own goroutine, in the order requests finished.
type accessLog struct {
	log   *slog.Logger
	lines chan accessLine
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newAccessLog(log *slog.Logger) *accessLog {
	a := &accessLog{log: log, lines: make(chan accessLine, accessLogBuffer), stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *accessLog) run() {
	defer close(a.done)
	for {
		select {
		case l := <-a.lines:
			a.write(l)
		case <-a.stop:
			for { // what was queued before the stop is still written
				select {
				case l := <-a.lines:
					a.write(l)
				default:
					return
				}
			}
		}
	}
}

// close writes what is queued and stops the writer; later lines are dropped.
func (a *accessLog) close() {
	a.once.Do(func() { close(a.stop) })
	<-a.done
}

// queue hands l to the writer, or drops and counts it when the writer is behind or stopped (a
// request that found a log SetAccessLog has replaced since).
func (a *accessLog) queue(l accessLine, dropped prometheus.Counter) {
	select {
	case <-a.done:
		dropped.Inc()
		return
	default:
	}
	select {
	case a.lines <- l:
	default:
		dropped.Inc()
	}
}

func (a *accessLog) write(l accessLine) {
	if c := l.conn; c != nil {
		attrs := make([]slog.Attr, 0, 13)
		attrs = append(attrs, slog.Int("listener", c.port), slog.String("rule", c.s.rule),
			slog.String("client", c.client), slog.String("proto", string(c.proto)), slog.String("result", c.result))
		if c.sni != "" {
			attrs = append(attrs, slog.String("sni", c.sni))
		}
		if c.target != "" {
			attrs = append(attrs, slog.String("targetGroup", c.group), slog.String("target", c.target))
		}
		attrs = append(attrs, slog.Int64("bytesFromClient", c.fromClient), slog.Int64("bytesToClient", c.toIt),
			slog.Duration("duration", c.d))
		if c.err != nil {
			attrs = append(attrs, slog.String("err", c.err.Error()))
		}
		a.log.LogAttrs(context.Background(), slog.LevelInfo, "connection", attrs...)
		return
	}
	attrs := make([]slog.Attr, 0, 13)
	attrs = append(attrs,
		slog.Int("listener", l.port), slog.String("rule", l.rule),
		slog.String("client", l.client), slog.String("proto", l.proto),
		slog.String("method", l.method), slog.String("host", l.host), slog.String("path", l.url.RequestURI()),
		slog.Int("status", l.status), slog.Int64("bytes", l.bytes), slog.Duration("duration", l.d))
	if l.target != "" {
		attrs = append(attrs, slog.String("targetGroup", l.group), slog.String("target", l.target))
	}
	if l.retries > 0 {
		attrs = append(attrs, slog.Int("retries", l.retries))
	}
	if l.err != nil {
		attrs = append(attrs, slog.String("err", l.err.Error()))
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}
