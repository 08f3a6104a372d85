package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestWhoami queries the stand-in over UDP and TCP as the UDPRoute tests do and checks the
// whoami answer: the client's address and port in the additional section.
func TestWhoami(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, pc, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for _, tc := range []struct{ net, addr, srv string }{
		{"udp", pc.LocalAddr().String(), "_udp.foo.bar.com."},
		{"tcp", ln.Addr().String(), "_tcp.foo.bar.com."},
	} {
		t.Run(tc.net, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion("foo.bar.com.", dns.TypeA)
			c := &dns.Client{Net: tc.net, Timeout: 5 * time.Second}
			var r *dns.Msg
			var err error
			for range 50 { // the servers start in their goroutines
				if r, _, err = c.Exchange(q, tc.addr); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("query over %s: %v", tc.net, err)
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Extra) != 2 {
				t.Fatalf("answer %v; want success, no answer records, A and SRV in the additional section", r)
			}
			a, ok := r.Extra[0].(*dns.A)
			if !ok || !a.A.Equal(net.IPv4(127, 0, 0, 1)) || a.Hdr.Name != "foo.bar.com." {
				t.Errorf("additional A record %v; want foo.bar.com. A 127.0.0.1", r.Extra[0])
			}
			if srv, ok := r.Extra[1].(*dns.SRV); !ok || srv.Hdr.Name != tc.srv || srv.Port == 0 {
				t.Errorf("additional SRV record %v; want %s with the client's port", r.Extra[1], tc.srv)
			}
		})
	}
}
