package l7

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are the engine's fixed surroundings: where it listens and how it reaches targets.
type Options struct {
	// Listen opens the socket of a listener's port (say, the VIP and port inside the load
	// balancer's namespace, or 127.0.0.1:0 in a test). Required.
	Listen func(port int) (net.Listener, error)
	// ListenPacket opens the socket of a UDP listener's port; required for UDP listeners.
	ListenPacket func(port int) (net.PacketConn, error)
	// Dial reaches targets (and mirrors); UDP flows dial network "udp". Default: a net.Dialer in the caller's namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Log receives the engine's own events; AccessLog one line per request, written by a
	// goroutine of its own off the request's path (when it falls 4,096 lines behind, lines
	// are dropped and counted in flatnet_l7_access_log_dropped_total). Nil: discarded.
	Log       *slog.Logger
	AccessLog *slog.Logger
	// Registerer takes the per-rule metrics; nil: not registered. Wrap it with the load
	// balancer's labels (prometheus.WrapRegistererWith) when several engines share one.
	Registerer prometheus.Registerer
	// IdleTimeout closes idle client connections (default 60 s, as an ALB's).
	IdleTimeout time.Duration
	// UDPIdleTimeout ends a UDP flow without a datagram either way for this long (default
	// 60 s, as an NLB's UDP flows); UDPMaxFlows bounds a UDP listener's flows (default 4,096):
	// a new client's datagram beyond it is dropped.
	UDPIdleTimeout time.Duration
	UDPMaxFlows    int
	// DrainTimeout bounds how long a removed listener waits for its requests in flight before
	// it closes their connections (default 30 s).
	DrainTimeout time.Duration
	// NetHTTPOnly serves every HTTP request with net/http's server and transport, turning off
	// the fast path for plain HTTP/1.x (see fast.go); for comparisons.
	NetHTTPOnly bool
}

// Engine is one load balancer's L7 data plane. It serves the listeners of the last Config
// applied; its methods are safe for concurrent use.
type Engine struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	// access is the access-log writer: nil without one (Options.AccessLog, SetAccessLog).
	access    atomic.Pointer[accessLog]
	accessMu  sync.Mutex // serialises SetAccessLog and Close's stop of the writer
	closedLog bool       // Close stopped the writer: SetAccessLog starts none
	proxy     *httputil.ReverseProxy
	// inflight counts requests in flight per target ip:port (*atomic.Int64), across configs.
	inflight sync.Map
	// pools are the fast path's idle target connections (*backendPool), by group and target.
	pools sync.Map
	// handoffs counts the client connections the fast path gave to net/http.
	handoffs atomic.Int64

	applyMu    sync.Mutex // serialises Apply, its compilation included (compile)
	mu         sync.Mutex // serialises Apply's swap and Close
	servers    map[portKey]*server
	transports map[string]*http.Transport // by transportKey
	series     map[[2]string]*series      // by (listener, rule) label pair, of the config applied
	// compiled is what the applied config's compilation leaves for the next to reuse.
	compiled *compiled
	draining map[*server]bool // removed listeners whose requests are finishing
	closed   bool
	wg       sync.WaitGroup
}

// server is one listener's socket and HTTP server. cur is the listener configuration its
// requests use: Apply swaps it atomically, and a removed listener keeps its last one while it
// drains.
type server struct {
	proto Protocol
	srv   *http.Server // nil on TLS and TCP (passthrough) listeners, which track conns, and UDP ones
	conns connSet
	ln    net.Listener // nil on UDP listeners
	udp   *udpRelay    // UDP listeners only
	cur   atomic.Pointer[listener]
	// On a plain HTTP listener served by the fast path: its connections, and the listener that
	// gives srv those it leaves to net/http.
	fast    fastConns
	handoff *handoff
}

func (s *server) passthrough() bool { return s.srv == nil && s.udp == nil }

// closeSocket closes the listener's socket: the port is free once it returns.
func (s *server) closeSocket() {
	if s.udp != nil {
		_ = s.udp.pc.Close()
		return
	}
	_ = s.ln.Close()
}

func (s *server) addr() net.Addr {
	if s.udp != nil {
		return s.udp.pc.LocalAddr()
	}
	return s.ln.Addr()
}

// shutdown stops the server (its socket closed already or now) and lets its requests or
// connections finish until ctx ends, then closes those left.
func (s *server) shutdown(ctx context.Context) error {
	if s.udp != nil {
		s.udp.shutdown()
		return nil
	}
	if s.passthrough() {
		_ = s.ln.Close()
		return s.conns.shutdown(ctx)
	}
	var fastErr error
	done := make(chan struct{})
	if s.handoff != nil {
		_ = s.ln.Close()
		go func() { fastErr = s.fast.shutdown(ctx); close(done) }()
	} else {
		close(done)
	}
	err := s.srv.Shutdown(ctx)
	if err != nil && ctx.Err() != nil {
		_ = s.srv.Close()
	}
	<-done
	return errors.Join(err, fastErr)
}

// New returns an engine serving nothing until the first Apply.
func New(opts Options) (*Engine, error) {
	if opts.Listen == nil {
		return nil, errors.New("l7: Options.Listen is required: give the function that opens a listener's socket")
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	if opts.UDPIdleTimeout == 0 {
		opts.UDPIdleTimeout = 60 * time.Second
	}
	if opts.UDPMaxFlows == 0 {
		opts.UDPMaxFlows = 4096
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	discard := slog.New(slog.DiscardHandler)
	if opts.Log == nil {
		opts.Log = discard
	}
	m := newMetrics()
	if opts.Registerer != nil {
		if err := m.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("l7: registering metrics: %w", err)
		}
	}
	e := &Engine{opts: opts, log: opts.Log, metrics: m, servers: map[portKey]*server{},
		draining: map[*server]bool{}, transports: map[string]*http.Transport{}}
	if opts.AccessLog != nil {
		e.access.Store(newAccessLog(opts.AccessLog))
	}
	e.proxy = &httputil.ReverseProxy{
		Rewrite:        e.rewrite,
		Transport:      roundTripFunc(e.roundTrip),
		ModifyResponse: e.modifyResponse,
		ErrorHandler:   e.proxyError,
		BufferPool:     &bufferPool{},
		ErrorLog:       slog.NewLogLogger(opts.Log.Handler(), slog.LevelDebug),
	}
	return e, nil
}

// Apply validates cfg and makes it the engine's configuration. Each listener's configuration is
// swapped with an atomic pointer: a request runs to completion on the one it started with. New
// listeners open, removed ones stop accepting and drain (their requests in flight finish, up to
// DrainTimeout), and the others keep their sockets and connections. A listener whose protocol
// changes closes its socket, drains, and a new one opens on the port. On a validation error
// (*ConfigError values, joined) or a listener that cannot open, the running configuration stays
// as it was (except for a protocol change that got as far as closing the old socket). The
// engine keeps nothing of cfg that the caller may change afterwards: it serves copies.
func (e *Engine) Apply(cfg Config) error {
	// One Apply at a time, compilation included: a compilation reuses rules and groups of
	// the config applied (e.compiled), and the Apply that takes it writes their fields where
	// they change, which is only safe against the config it was compiled from.
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	prev := e.compiled // written only under applyMu, which this Apply holds
	e.mu.Unlock()
	s, kept, err := compile(cfg, prev)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("l7: engine closed")
	}
	used := map[string]*http.Transport{}
	usedPools := map[string]bool{}
	for _, g := range s.groups {
		key := transportKey(g)
		t := e.transports[key]
		if t == nil {
			t = e.newTransport(g)
		}
		// A group reused from the last config (compile) is read by requests: written only
		// where it changes.
		used[key] = t
		if g.transport != t {
			g.transport = t
		}
		for _, tg := range g.targets {
			if c := e.counter(tg.hostport); tg.inflight != c {
				tg.inflight = c
			}
			if p := e.pool(g, tg.hostport); tg.pool != p {
				tg.pool = p
			}
			usedPools[poolKey(g, tg.hostport)] = true
		}
	}
	series := e.metrics.resolve(s, e.series)
	opened, err := e.openListeners(s)
	if err != nil {
		return err
	}
	for k, srv := range e.servers {
		if l := s.listeners[k]; l != nil {
			srv.cur.Store(l)
		} else {
			delete(e.servers, k)
			e.drain(srv)
		}
	}
	for k, srv := range opened {
		e.servers[k] = srv
		e.start(srv)
	}
	for key, t := range e.transports {
		if used[key] == nil {
			t.CloseIdleConnections()
		}
	}
	e.transports = used
	// The fast path's pools of targets and groups that are gone close their idle connections;
	// a request still in flight to one closes its connection when it ends.
	e.pools.Range(func(k, p any) bool {
		if !usedPools[k.(string)] {
			e.pools.Delete(k)
			p.(*backendPool).close()
		}
		return true
	})
	e.metrics.forget(e.series, series)
	e.series = series
	e.compiled = kept
	return nil
}

// openListeners opens the sockets of listeners s has and the engine does not (or has with
// another protocol); it closes them all again if one fails.
func (e *Engine) openListeners(s *snapshot) (map[portKey]*server, error) {
	opened := map[portKey]*server{}
	for k, l := range s.listeners {
		port := k.port
		old := e.servers[k]
		if old != nil && old.proto == l.proto {
			continue
		}
		if old != nil {
			// The port is needed for the new protocol: the old listener drains without it.
			delete(e.servers, k)
			e.drain(old)
		}
		var err error
		if l.proto == ProtocolUDP {
			if e.opts.ListenPacket == nil {
				err = errors.New("the engine has no Options.ListenPacket to open a UDP socket")
			} else {
				var pc net.PacketConn
				if pc, err = e.opts.ListenPacket(port); err == nil {
					srv := &server{proto: l.proto}
					srv.cur.Store(l)
					srv.udp = newUDPRelay(e, srv, pc)
					opened[k] = srv
					continue
				}
			}
		} else {
			var ln net.Listener
			if ln, err = e.opts.Listen(port); err == nil {
				opened[k] = e.newServer(port, l, ln)
				continue
			}
		}
		for _, srv := range opened {
			srv.closeSocket()
		}
		return nil, fmt.Errorf("l7: opening listener %s: %w", k, err)
	}
	return opened, nil
}

func (e *Engine) newServer(port int, l *listener, ln net.Listener) *server {
	s := &server{proto: l.proto, ln: ln}
	s.cur.Store(l)
	if l.proto == ProtocolTLS || l.proto == ProtocolTCP {
		return s
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.handle(w, r, s.cur.Load()) }),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       e.opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
		Protocols:         &protos,
	}
	s.srv = srv
	if l.proto == ProtocolHTTPS {
		protos.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				l := s.cur.Load()
				if l.certs == nil || l.certs.fallback == nil {
					return nil, fmt.Errorf("listener %d has no certificate", port)
				}
				return l.certs.pick(hello.ServerName), nil
			},
		}
		srv.TLSConfig.GetConfigForClient = configForClient(srv.TLSConfig, s.cur.Load)
	} else {
		protos.SetUnencryptedHTTP2(true)
		if !e.opts.NetHTTPOnly {
			s.handoff = newHandoff(ln.Addr())
			s.fast.conns, s.fast.killed = map[*fastConn]struct{}{}, make(chan struct{})
		}
	}
	return s
}

// start serves a new listener's socket until it is closed.
func (e *Engine) start(s *server) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		var err error
		if s.udp != nil {
			err = s.udp.serve()
		} else if s.passthrough() {
			err = e.servePassthrough(s)
		} else if s.handoff != nil {
			err = e.serveFast(s)
		} else if s.proto == ProtocolHTTPS {
			err = s.srv.ServeTLS(s.ln, "", "")
		} else {
			err = s.srv.Serve(s.ln)
		}
		if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			e.log.Error("listener stopped", "port", s.cur.Load().port, "err", err)
		}
	}()
}

// acceptLoop hands each connection ln accepts to handle until ln closes; an accept that
// timed out is retried. It returns the error that ended it (net.ErrClosed on close).
func acceptLoop(ln net.Listener, handle func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return err
		}
		handle(c)
	}
}

// drain closes a listener's socket at once (the port is free when it returns) and lets its
// requests in flight finish, up to DrainTimeout.
func (e *Engine) drain(s *server) {
	s.closeSocket()
	e.draining[s] = true // e.mu is held
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.DrainTimeout)
		defer cancel()
		_ = s.shutdown(ctx)
		e.mu.Lock()
		delete(e.draining, s)
		e.mu.Unlock()
	}()
}

// Addr is the address a listener's socket is bound to, or nil when the engine has no
// listener on port: the stream (HTTP, HTTPS, TLS or TCP) listener's when the port has one,
// else the UDP listener's (see UDPAddr).
func (e *Engine) Addr(port int) net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range []portKey{{port: port}, {port: port, udp: true}} {
		if s := e.servers[k]; s != nil {
			return s.addr()
		}
	}
	return nil
}

// UDPAddr is the address the UDP listener on port is bound to, or nil when the engine has none.
func (e *Engine) UDPAddr(port int) net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.servers[portKey{port: port, udp: true}]; s != nil {
		return s.addr()
	}
	return nil
}

// InFlight is the number of requests being forwarded to a target now, whatever its state:
// a draining target is drained when it reaches 0.
func (e *Engine) InFlight(target netip.AddrPort) int {
	if n, ok := e.inflight.Load(target.String()); ok {
		return int(n.(*atomic.Int64).Load())
	}
	return 0
}

func (e *Engine) counter(hostport string) *atomic.Int64 {
	if n, ok := e.inflight.Load(hostport); ok {
		return n.(*atomic.Int64)
	}
	n, _ := e.inflight.LoadOrStore(hostport, new(atomic.Int64))
	return n.(*atomic.Int64)
}

// Close stops every listener, draining ones included, letting requests in flight finish until
// ctx ends; then it closes the connections left and returns ctx's error.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	all := make([]*server, 0, len(e.servers)+len(e.draining))
	for _, s := range e.servers {
		all = append(all, s)
	}
	for s := range e.draining {
		all = append(all, s)
	}
	e.servers = map[portKey]*server{}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { _ = s.shutdown(ctx) })
	}
	wg.Wait()
	e.wg.Wait()
	e.mu.Lock()
	for _, t := range e.transports {
		t.CloseIdleConnections()
	}
	e.mu.Unlock()
	e.pools.Range(func(_, p any) bool { p.(*backendPool).closeIdle(); return true })
	e.accessMu.Lock()
	e.closedLog = true
	if a := e.access.Swap(nil); a != nil {
		a.close()
	}
	e.accessMu.Unlock()
	return ctx.Err()
}

// SetAccessLog starts writing one line per request to log from now on, in place of the access
// log the engine had (Options.AccessLog or an earlier call), whose queued lines are written
// first; nil stops the access log. The line of a request that finishes during the swap goes
// to either, or is lost.
func (e *Engine) SetAccessLog(log *slog.Logger) {
	e.accessMu.Lock()
	defer e.accessMu.Unlock()
	if e.closedLog {
		return
	}
	var next *accessLog
	if log != nil {
		next = newAccessLog(log)
	}
	if old := e.access.Swap(next); old != nil {
		old.close()
	}
}

// transportKey identifies what a target group's transport depends on, so an Apply that keeps
// a group keeps its pooled connections.
func transportKey(g *group) string {
	return g.name + "\x00" + string(g.proto) + "\x00" + g.tlsKey
}

func (e *Engine) newTransport(g *group) *http.Transport {
	t := &http.Transport{
		DialContext: e.opts.Dial,
		// Connections to a target are kept and reused: as many idle ones as requests in flight
		// under load, so a burst does not end in closes and new dials.
		MaxIdleConns:        0, // no limit across targets
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// Bodies pass as the target sent them: no Accept-Encoding added, nothing decompressed.
		DisableCompression:    true,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       g.tls,
	}
	var protos http.Protocols
	switch g.proto {
	case ProtocolH2C:
		protos.SetUnencryptedHTTP2(true)
	case ProtocolHTTPS:
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	t.Protocols = &protos
	return t
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// bufferPool lends the proxy its 32 KiB copy buffers instead of allocating one per request.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
