package l7

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// udpDatagramMax is the largest datagram relayed (the largest UDP payload over IPv4).
const udpDatagramMax = 65507

// udpRelay is a UDP listener's data plane: one flow per client address and port, each with a
// socket of its own connected to the target chosen when its first datagram came (by the
// backends' weights, then the group's targets), as an NLB's UDP listener keeps a flow on one
// target. A flow ends after IdleTimeout without a datagram either way; at most MaxFlows live
// at once, and a new client's datagram beyond that is dropped.
type udpRelay struct {
	e  *Engine
	s  *server
	pc net.PacketConn
	// p4 reads each datagram's destination address and sends the replies from it, so a
	// socket bound to 0.0.0.0 answers from the address the client sent to (a connected
	// client socket takes nothing else); nil when pc is not an IPv4 UDP socket.
	p4 *ipv4.PacketConn

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
	wg     sync.WaitGroup
}

// udpFlow is one client's session: up is connected to its target.
type udpFlow struct {
	client netip.AddrPort
	up     net.Conn
	t      *target
	local  net.IP       // the address the client sent to (nil: unknown)
	last   atomic.Int64 // unix nanoseconds of the last datagram either way
	// rec is what the flow's end records; fromClient and toClient count its bytes.
	rec                  connRecord
	start                time.Time
	fromClient, toClient atomic.Int64
}

func newUDPRelay(e *Engine, s *server, pc net.PacketConn) *udpRelay {
	r := &udpRelay{e: e, s: s, pc: pc, flows: map[netip.AddrPort]*udpFlow{}}
	if uc, ok := pc.(*net.UDPConn); ok {
		p4 := ipv4.NewPacketConn(uc)
		if p4.SetControlMessage(ipv4.FlagDst, true) == nil {
			r.p4 = p4
		}
	}
	return r
}

// read reads a client's datagram and the address it was sent to (nil: unknown).
func (r *udpRelay) read(buf []byte) (int, net.Addr, net.IP, error) {
	if r.p4 == nil {
		n, from, err := r.pc.ReadFrom(buf)
		return n, from, nil, err
	}
	n, cm, from, err := r.p4.ReadFrom(buf)
	var dst net.IP
	if cm != nil && !cm.Dst.IsUnspecified() {
		dst = cm.Dst
	}
	return n, from, dst, err
}

// write sends a reply to the flow's client, from the address the client sent to.
func (r *udpRelay) write(f *udpFlow, b []byte, to net.Addr) error {
	if r.p4 == nil || f.local == nil {
		_, err := r.pc.WriteTo(b, to)
		return err
	}
	_, err := r.p4.WriteTo(b, &ipv4.ControlMessage{Src: f.local}, to)
	return err
}

// serve reads clients' datagrams until the socket closes, relaying each to its flow's target.
func (r *udpRelay) serve() error {
	buf := make([]byte, udpDatagramMax)
	for {
		n, from, dst, err := r.read(buf)
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return err
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		client := ua.AddrPort()
		f := r.flow(client, dst)
		if f == nil {
			continue
		}
		f.last.Store(time.Now().UnixNano())
		f.fromClient.Add(int64(n))
		if _, err := f.up.Write(buf[:n]); err != nil {
			r.e.log.Debug("udp: relaying to the target", "port", r.s.cur.Load().port, "target", f.t.hostport, "err", err)
		}
	}
}

// flow is the client's flow, made on its first datagram; nil when nothing serves it (no
// usable target, the flow limit reached, the target not reachable).
func (r *udpRelay) flow(client netip.AddrPort, local net.IP) *udpFlow {
	r.mu.Lock()
	f := r.flows[client]
	n := len(r.flows)
	r.mu.Unlock()
	if f != nil {
		return f
	}
	l := r.s.cur.Load()
	if n >= r.e.opts.UDPMaxFlows {
		r.e.metrics.udpRefused.WithLabelValues(portKey{port: l.port, udp: true}.String()).Inc()
		r.e.log.Debug("udp: flow limit reached; datagram dropped", "port", l.port, "client", client, "flows", n)
		return nil
	}
	// A datagram no flow takes is counted (and logged) as a flow that ended at once.
	rec := connRecord{s: l.unmatched, port: l.port, proto: ProtocolUDP, client: client.String()}
	if len(l.rules) == 0 {
		rec.result = connNoRule
		r.e.observeConn(&rec)
		return nil
	}
	rec.s = l.rules[0].series
	b, t := pickTarget(&l.rules[0].action)
	if t == nil {
		rec.result = connNoTarget
		r.e.observeConn(&rec)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	up, err := r.e.opts.Dial(ctx, "udp", t.hostport)
	cancel()
	if err != nil {
		rec.result, rec.group, rec.target, rec.err = connTargetUnreachable, b.group.name, t.hostport, err
		r.e.observeConn(&rec)
		r.e.log.Debug("udp: socket to the target", "port", l.port, "target", t.hostport, "err", err)
		return nil
	}
	rec.result, rec.group, rec.target = connForwarded, b.group.name, t.hostport
	rec.resolve(r.e.metrics)
	f = &udpFlow{client: client, up: up, t: t, local: local, rec: rec, start: time.Now()}
	f.last.Store(time.Now().UnixNano())
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = up.Close()
		return nil
	}
	r.flows[client] = f
	r.mu.Unlock()
	t.inflight.Add(1)
	r.wg.Go(func() { r.replies(f) })
	return f
}

// replies relays the target's datagrams to the client until the flow idles out or closes.
func (r *udpRelay) replies(f *udpFlow) {
	defer func() {
		r.mu.Lock()
		delete(r.flows, f.client)
		r.mu.Unlock()
		_ = f.up.Close()
		f.t.inflight.Add(-1)
		f.rec.fromClient, f.rec.toIt, f.rec.d = f.fromClient.Load(), f.toClient.Load(), time.Since(f.start)
		r.e.observeConn(&f.rec)
	}()
	idle := r.e.opts.UDPIdleTimeout
	buf := make([]byte, udpDatagramMax)
	to := net.UDPAddrFromAddrPort(f.client)
	for {
		_ = f.up.SetReadDeadline(time.Unix(0, f.last.Load()).Add(idle))
		n, err := f.up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, f.last.Load())) < idle {
				continue // a client datagram moved the deadline on
			}
			return
		}
		f.last.Store(time.Now().UnixNano())
		f.toClient.Add(int64(n))
		if err := r.write(f, buf[:n], to); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// shutdown closes the socket and every flow: a datagram has nothing in flight to wait for.
func (r *udpRelay) shutdown() {
	_ = r.pc.Close()
	r.mu.Lock()
	r.closed = true
	for _, f := range r.flows {
		_ = f.up.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
