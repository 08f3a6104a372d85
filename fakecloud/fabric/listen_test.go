package fabric

import (
	"net"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/fabric/metadata"
	"github.com/flatnet/flatnet/internal/httpserve/httpservetest"
)

// Finding 4 of the hardening issue: the in-VPC listeners (metadata on port 80, the API on 7474),
// which every pod reaches, set only ReadHeaderTimeout. The server they are built with now closes
// idle connections and cuts slow bodies (served on loopback here: the timeouts do not depend on
// the namespace the socket lives in).
func TestVPCListenerTimeouts(t *testing.T) {
	md := metadata.NewServer("http://api")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := vpcServer(md.Handler("vpc-1"), httpservetest.Short)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	httpservetest.CheckTimeouts(t, ln.Addr().String(), "/latest/meta-data/")
	if srv.ConnContext == nil {
		t.Error("the in-VPC server lost its ConnContext: session-token replies could not set their hop limit")
	}
}
