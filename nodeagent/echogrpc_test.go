package nodeagent

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/flatnet/flatnet/internal/httpserve"
)

// TestEchoGRPC: one echo port answers HTTP/1.1 with its JSON and gRPC over h2c with the health
// service, naming the pod and the peer in the response headers.
func TestEchoGRPC(t *testing.T) {
	id := Echo{Pod: "web-1", Namespace: "default"}
	var draining atomic.Bool
	srv := httpserve.New(withGRPC(echoHandler(id, &draining), id), httpserve.Default)
	srv.Protocols = echoProtocols()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	resp, err := http.Get("http://" + ln.Addr().String() + "/who")
	if err != nil {
		t.Fatal(err)
	}
	var e Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e.Pod != "web-1" || e.Path != "/who" {
		t.Errorf("HTTP/1.1 answer %+v, want pod web-1 and path /who", e)
	}

	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var md metadata.MD
	hr, err := grpc_health_v1.NewHealthClient(cc).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "any"}, grpc.Header(&md))
	if err != nil {
		t.Fatalf("gRPC health check over h2c: %v", err)
	}
	if hr.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Errorf("status %s, want SERVING", hr.GetStatus())
	}
	if got := md.Get(EchoGRPCPodHeader); len(got) != 1 || got[0] != "web-1" {
		t.Errorf("%s = %v, want [web-1]", EchoGRPCPodHeader, got)
	}
	if got := md.Get(EchoGRPCPeerHeader); len(got) != 1 {
		t.Errorf("%s = %v, want the client's address", EchoGRPCPeerHeader, got)
	} else if host, _, _ := net.SplitHostPort(got[0]); host != "127.0.0.1" {
		t.Errorf("%s = %s, want 127.0.0.1:<port>", EchoGRPCPeerHeader, got[0])
	}
}
