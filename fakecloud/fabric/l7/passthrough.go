package l7

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"
)

// helloTimeout bounds the wait for a TLS-passthrough client's ClientHello; dialTimeout the
// dial of a target.
const (
	helloTimeout = 10 * time.Second
	dialTimeout  = 10 * time.Second
)

// connSet is a passthrough listener's connections in flight, so a drain can wait for them and
// then close what is left.
type connSet struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func (s *connSet) add(c ...net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	for _, x := range c {
		s.conns[x] = struct{}{}
	}
}

func (s *connSet) remove(c ...net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range c {
		delete(s.conns, x)
	}
}

// closeAll closes every connection left.
func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// shutdown waits for the connections to finish until ctx ends, then closes those left.
func (s *connSet) shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.closeAll()
		<-done
		return ctx.Err()
	}
}

// servePassthrough accepts a TLS or TCP listener's connections until its socket closes.
func (e *Engine) servePassthrough(s *server) error {
	return acceptLoop(s.ln, func(c net.Conn) {
		s.conns.add(c)
		s.conns.wg.Go(func() {
			defer s.conns.remove(c)
			defer c.Close()
			e.passthrough(s, c)
		})
	})
}

// passthrough routes one connection: by its ClientHello's SNI name on a TLS listener (which,
// with certificates, terminates TLS unless the rule passes it through: what is spliced is then
// the decrypted stream), to the one rule on a TCP listener; then it splices it to a target of
// the rule's forward (over TLS the engine starts with the target, for a TLS group). A
// connection nothing serves is closed. Either way it is counted and logged when it ends.
func (e *Engine) passthrough(s *server, c net.Conn) {
	start := time.Now()
	l := s.cur.Load()
	rec := &connRecord{s: l.unmatched, port: l.port, proto: l.proto, client: c.RemoteAddr().String()}
	defer func() {
		rec.d = time.Since(start)
		e.observeConn(rec)
	}()
	var head []byte
	down := c // what is spliced to the target: the connection, or its decrypted stream
	if l.proto == ProtocolTLS {
		// The ClientHello's SNI name picks the rule, which decides between terminating and
		// passing through, so it is read before any handshake.
		_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
		var err error
		if rec.sni, head, err = readClientHello(c); err != nil {
			rec.result, rec.err = connNoClientHello, err
			e.log.Debug("TLS listener: no ClientHello", "port", l.port, "client", c.RemoteAddr(), "err", err)
			return
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	r := l.matchName(rec.sni)
	if r == nil {
		rec.result = connNoRule
		e.log.Debug("TLS listener: no rule for the server name", "port", l.port, "client", c.RemoteAddr(), "sni", rec.sni)
		return
	}
	rec.s = r.series
	// The target is picked before any handshake: a name whose rule forwards nowhere (a
	// refusal, or no target left) is closed without a certificate shown.
	b, t := pickTarget(&r.action)
	if t == nil {
		rec.result = connNoTarget
		return
	}
	if l.certs != nil && !r.action.tlsPassthrough {
		// Terminate: the handshake starts from the ClientHello read above; the SNI name picks
		// the certificate.
		tc := tls.Server(&replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(head), c)}, &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return l.certs.pick(h.ServerName), nil }})
		ctx, cancel := context.WithTimeout(context.Background(), helloTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			rec.result, rec.err = connHandshakeFailed, err
			e.log.Debug("TLS listener: handshake failed", "port", l.port, "client", c.RemoteAddr(), "err", err)
			return
		}
		down, head = tc, nil
	}
	rec.group, rec.target = b.group.name, t.hostport
	t.inflight.Add(1)
	defer t.inflight.Add(-1)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	up, err := e.opts.Dial(ctx, "tcp", t.hostport)
	if err != nil {
		rec.result, rec.err = connTargetUnreachable, err
		e.log.Debug("passthrough: dialling the target", "port", l.port, "target", t.hostport, "err", err)
		return
	}
	if b.group.proto == ProtocolTLS {
		// A TLS group: the decrypted stream is encrypted again, to a target that verifies as
		// the group says, within what is left of the dial's time.
		if up, err = originateTLS(ctx, up, b.group.tls, t.hostport); err != nil {
			rec.result, rec.err = connTargetTLSFailed, err
			e.log.Debug("passthrough: TLS handshake with the target", "port", l.port, "target", t.hostport, "err", err)
			return
		}
	}
	cancel()
	rec.result = connForwarded
	rec.resolve(e.metrics)
	s.conns.add(up)
	defer s.conns.remove(up)
	defer up.Close()
	if len(head) > 0 {
		if _, err := up.Write(head); err != nil {
			rec.err = err
			return
		}
	}
	rec.fromClient = int64(len(head))
	in, out := splice(down, up)
	rec.fromClient += in
	rec.toIt = out
}

// originateTLS makes a TLS handshake with a TLS group's target over up, with the group's
// configuration (compiled once; a group that names no server sends the target's IP as the
// name to verify, as the HTTPS groups' transport does). On failure up is closed.
func originateTLS(ctx context.Context, up net.Conn, conf *tls.Config, hostport string) (net.Conn, error) {
	if conf.ServerName == "" && !conf.InsecureSkipVerify {
		conf = conf.Clone()
		conf.ServerName, _, _ = net.SplitHostPort(hostport)
	}
	tc := tls.Client(up, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = up.Close()
		return nil, err
	}
	return tc, nil
}

// matchName is the first rule whose hosts match the SNI name ("" matches rules without hosts
// only).
func (l *listener) matchName(name string) *rule {
	for _, r := range l.rules {
		if len(r.hosts) == 0 {
			return r
		}
		if name == "" {
			continue
		}
		for _, h := range r.hosts {
			if h.matches(name) {
				return r
			}
		}
	}
	return nil
}

// splice copies both ways until both directions end, passing each end of stream on as a
// half-close so protocols that shut down their sending side keep working. It returns the bytes
// copied from a to b and from b to a.
func splice(a, b net.Conn) (aToB, bToA int64) {
	var wg sync.WaitGroup
	one := func(dst, src net.Conn) int64 {
		n, err := io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
			_ = cw.CloseWrite()
		} else {
			// An error or no half-close: tear both down so the other direction ends too.
			_ = dst.Close()
			_ = src.Close()
		}
		return n
	}
	wg.Go(func() { aToB = one(b, a) })
	bToA = one(a, b)
	wg.Wait()
	return aToB, bToA
}
