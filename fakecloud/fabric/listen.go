package fabric

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/flatnet/flatnet/fakecloud/fabric/metadata"
	"github.com/flatnet/flatnet/internal/httpserve"
	"github.com/flatnet/flatnet/internal/netns"
)

// vpcListeners are the HTTP servers the fabric runs inside one router namespace.
type vpcListeners struct {
	servers []*http.Server
}

func (l *vpcListeners) close() {
	for _, s := range l.servers {
		_ = s.Close()
	}
}

// openListeners starts the metadata service (169.254.169.254:80) and, when configured, the
// fakecloud API (169.254.169.254:7474) inside a VPC's router namespace. The sockets are opened
// on a thread inside that namespace and stay there; serving them needs no namespace switch.
func (f *Fabric) openListeners(vpc string) error {
	if f.listeners[vpc] != nil {
		return nil
	}
	l := &vpcListeners{}
	handlers := []struct {
		port int
		h    http.Handler
	}{{MetadataPort, f.md.Handler(vpc)}, {APIPort, f.cfg.APIHandler}}
	for _, hp := range handlers {
		if hp.h == nil {
			continue
		}
		ln, err := listenIn(RouterNetns(f.cfg.Prefix, vpc), net.JoinHostPort(MetadataAddr, strconv.Itoa(hp.port)))
		if err != nil {
			l.close()
			return err
		}
		srv := vpcServer(hp.h, httpserve.Default)
		l.servers = append(l.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				f.log.Error("in-VPC listener stopped", "vpc", vpc, "port", hp.port, "err", err)
			}
		}()
	}
	f.listeners[vpc] = l
	return nil
}

// vpcServer is the HTTP server of one in-VPC listener, which every pod of the VPC can reach.
// Every timeout is set (httpserve): a pod cannot hold a connection open by idling or by
// trickling a body.
func vpcServer(h http.Handler, to httpserve.Timeouts) *http.Server {
	srv := httpserve.New(h, to)
	srv.ConnContext = metadata.ConnContext
	return srv
}

func (f *Fabric) closeListeners(vpc string) {
	if l := f.listeners[vpc]; l != nil {
		l.close()
		delete(f.listeners, vpc)
	}
}

// listenIn opens a TCP listener inside a named namespace.
func listenIn(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := netns.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", addr, ns, err)
	}
	return ln, nil
}

// listenPacketIn opens a UDP socket inside a namespace (a UDP listener of an application load
// balancer).
func listenPacketIn(ns, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := netns.Do(ns, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on udp %s in %s: %w", addr, ns, err)
	}
	return pc, nil
}
