// Command coredns stands in for the registry.k8s.io/coredns/coredns image when the lab runs the
// Gateway API conformance suite (make conformance, docs/conformance.md): the suite's base
// manifests run a coredns pod with "-conf /root/Corefile", and its UDPRoute tests only need a DNS
// answer through the Gateway. It reads the Corefile (so a broken ConfigMap volume fails it as it
// would fail CoreDNS) but does not interpret it: it answers every query on UDP and TCP port 53
// the way CoreDNS's whoami plugin does, with the client's address and port in the additional
// section. It is not CoreDNS: building CoreDNS for a lab pod would pull hundreds of modules.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "coredns (flatnet's stand-in):", err)
		os.Exit(1)
	}
}

func run() error {
	conf := flag.String("conf", "Corefile", "the Corefile (read, not interpreted)")
	port := flag.Int("dns.port", 53, "port to answer on, UDP and TCP")
	flag.Parse()
	raw, err := os.ReadFile(*conf)
	if err != nil {
		return fmt.Errorf("read the Corefile: %w", err)
	}
	log.Printf("Corefile %s read (%d bytes); answering every query as whoami on port %d", *conf, len(raw), *port)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	addr := net.JoinHostPort("", strconv.Itoa(*port))
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return err
	}
	return serve(ctx, pc, ln)
}

// serve answers on pc (UDP) and ln (TCP) until ctx ends.
func serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	servers := []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(whoami)},
		{Listener: ln, Handler: dns.HandlerFunc(whoami)},
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range servers {
		g.Go(func() error {
			if err := s.ActivateAndServe(); err != nil && ctx.Err() == nil {
				return fmt.Errorf("serve DNS: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-ctx.Done()
		var errs []error
		for _, s := range servers {
			if err := s.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	return g.Wait()
}

// whoami answers with no answer records and, in the additional section, an A (or AAAA) record of
// the client's address and an SRV record of its port and transport, as CoreDNS's whoami does.
func whoami(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) == 0 {
		_ = w.WriteMsg(m)
		return
	}
	name := r.Question[0].Name
	var ip net.IP
	var port int
	transport := "udp"
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip, port = a.IP, a.Port
	case *net.TCPAddr:
		ip, port, transport = a.IP, a.Port, "tcp"
	}
	hdr := func(t uint16) dns.RR_Header { return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET} }
	if v4 := ip.To4(); v4 != nil {
		m.Extra = append(m.Extra, &dns.A{Hdr: hdr(dns.TypeA), A: v4})
	} else if ip != nil {
		m.Extra = append(m.Extra, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip})
	}
	srv := &dns.SRV{Hdr: dns.RR_Header{Name: "_" + transport + "." + name, Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Port: uint16(port), Target: "."}
	m.Extra = append(m.Extra, srv)
	_ = w.WriteMsg(m)
}
