package nodeagent

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// The response headers by which the echo server's gRPC side says who answered and whom it saw:
// gRPC's health service has no room for them in its message.
const (
	EchoGRPCPodHeader  = "echo-pod"
	EchoGRPCPeerHeader = "echo-peer"
)

// echoGRPC is the gRPC side of an echo port: grpc.health.v1.Health, answering SERVING for every
// service name, over HTTP/2 without TLS (h2c) on the same port as the HTTP echo, so a GRPCRoute
// and an HTTPRoute can share the echo workload.
type echoGRPC struct {
	grpc_health_v1.UnimplementedHealthServer
	id Echo
}

func (e *echoGRPC) Check(ctx context.Context, _ *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	md := metadata.Pairs(EchoGRPCPodHeader, e.id.Pod)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		md.Append(EchoGRPCPeerHeader, p.Addr.String())
	}
	if err := grpc.SetHeader(ctx, md); err != nil {
		return nil, err
	}
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

// withGRPC serves gRPC requests (HTTP/2, content-type application/grpc) with the echo's health
// service and everything else with h.
func withGRPC(h http.Handler, id Echo) http.Handler {
	gs := grpc.NewServer()
	grpc_health_v1.RegisterHealthServer(gs, &echoGRPC{id: id})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// echoProtocols: HTTP/1.1 and HTTP/2 with prior knowledge (h2c), which gRPC without TLS speaks.
func echoProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}
