package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flatnet/flatnet/internal/httpserve"
)

// The environment through which the agent tells an echo container who it is.
const (
	envPodName      = "FLATNET_POD_NAME"
	envPodNamespace = "FLATNET_POD_NAMESPACE"
	envPodIP        = "FLATNET_POD_IP"
	envNodeName     = "FLATNET_NODE_NAME"
	envEchoTCP      = "FLATNET_ECHO_TCP_PORTS"
	envEchoUDP      = "FLATNET_ECHO_UDP_PORTS"
)

// defaultEchoPort is where an echo container without declared ports serves HTTP.
const defaultEchoPort = 8080

// envEchoDrain (a container env var, e.g. "0s") overrides defaultEchoDrain: how long the echo
// server keeps accepting connections after SIGTERM. A pod is taken out of load balancers only
// after it is told to stop (its endpoint turns terminating, then the controller deregisters it),
// so a server that closed its listener at once would refuse the connections still sent its way.
// Well-behaved servers drain like this; the pod spec needs no preStop hook.
const (
	envEchoDrain     = "FLATNET_ECHO_DRAIN"
	defaultEchoDrain = 3 * time.Second
)

// Echo is what the echo server answers: who the pod is and what it saw of the request.
type Echo struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	PodIP     string `json:"podIP"`
	Node      string `json:"node"`
	Peer      string `json:"peer"`
	Method    string `json:"method,omitempty"`
	Path      string `json:"path,omitempty"`
	Host      string `json:"host,omitempty"`
	Payload   string `json:"payload,omitempty"` // UDP only
}

// EchoMain is the program of the flatnet.io/echo image: an HTTP server on each TCP port and a
// UDP responder on each UDP port of its environment, until ctx ends.
func EchoMain(ctx context.Context, log *slog.Logger) error {
	id := Echo{Pod: os.Getenv(envPodName), Namespace: os.Getenv(envPodNamespace), PodIP: os.Getenv(envPodIP), Node: os.Getenv(envNodeName)}
	tcp, err := ports(os.Getenv(envEchoTCP))
	if err != nil {
		return fmt.Errorf("echo: %s: %w", envEchoTCP, err)
	}
	udp, err := ports(os.Getenv(envEchoUDP))
	if err != nil {
		return fmt.Errorf("echo: %s: %w", envEchoUDP, err)
	}
	if len(tcp) == 0 && len(udp) == 0 {
		tcp = []int{defaultEchoPort}
	}
	drain := defaultEchoDrain
	if v := os.Getenv(envEchoDrain); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("echo: %s %q: want a duration such as 3s", envEchoDrain, v)
		}
		drain = d
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, port := range tcp {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			return fmt.Errorf("echo: listen on tcp port %d: %w", port, err)
		}
		var draining atomic.Bool
		srv := httpserve.New(withGRPC(echoHandler(id, &draining), id), httpserve.Default)
		srv.Protocols = echoProtocols()
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			// Lame duck: keep accepting for the drain period, so that connections a load
			// balancer sends before it has deregistered this pod are still served; close
			// each one after its answer meanwhile, so that clients move on.
			draining.Store(true)
			if drain > 0 {
				log.Info("echo draining", "for", drain)
				time.Sleep(drain)
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	for _, port := range udp {
		pc, err := net.ListenPacket("udp", ":"+strconv.Itoa(port))
		if err != nil {
			return fmt.Errorf("echo: listen on udp port %d: %w", port, err)
		}
		g.Go(func() error { return serveUDP(ctx, pc, id) })
	}
	log.Info("echo serving", "tcp", tcp, "udp", udp, "pod", id.Pod, "podIP", id.PodIP)
	return g.Wait()
}

func echoHandler(id Echo, draining *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		e := id
		e.Peer, e.Method, e.Path, e.Host = r.RemoteAddr, r.Method, r.URL.Path, r.Host
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	})
}

func serveUDP(ctx context.Context, pc net.PacketConn, id Echo) error {
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	buf := make([]byte, 64*1024)
	for {
		n, peer, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("echo: read udp: %w", err)
		}
		e := id
		e.Peer, e.Payload = peer.String(), string(buf[:n])
		b, _ := json.Marshal(e)
		_, _ = pc.WriteTo(b, peer)
	}
}

// ports parses a comma-separated list of port numbers.
func ports(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("port %q: want a number from 1 to 65535", f)
		}
		out = append(out, p)
	}
	return out, nil
}
