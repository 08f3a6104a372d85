package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/flatnet/flatnet/internal/httpserve"
)

// EchoReply is what an echo agent answers: who it is and who it saw.
type EchoReply struct {
	Name   string `json:"name"`
	Local  string `json:"local"`  // the address the request arrived at
	Remote string `json:"remote"` // the address the request came from, as seen by the agent
}

// EchoHandler answers every request with an EchoReply.
func EchoHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local := ""
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			local = a.String()
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		lhost, _, _ := net.SplitHostPort(local)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(EchoReply{Name: name, Local: lhost, Remote: host})
	})
}

// RunEcho serves EchoHandler on addr until ctx ends.
func RunEcho(ctx context.Context, name, addr string) error {
	srv := httpserve.New(EchoHandler(name), httpserve.Default)
	srv.Addr = addr
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "echo agent %s listening on %s\n", name, addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

// Probe asks the echo agent at ip from inside namespace fromNetns, optionally from a given
// local address, and returns its reply.
func Probe(ctx context.Context, fromNetns, ip string, local net.IP, timeout time.Duration) (*EchoReply, error) {
	var laddr net.Addr
	if local != nil {
		laddr = &net.TCPAddr{IP: local}
	}
	hc := &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: Dialer(fromNetns, laddr), DisableKeepAlives: true},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/", net.JoinHostPort(ip, fmt.Sprint(EchoPort))), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, err
	}
	var r EchoReply
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("echo agent at %s answered %q: %w", ip, body, err)
	}
	return &r, nil
}

// metadataAddr is the instance metadata service, as seen from inside the VPC.
const metadataAddr = "169.254.169.254"

// CloudTokenFrom tries, from inside a namespace, what a node agent does to get its cloud token:
// open an IMDSv2 session, then read fakecloud/token with it. The session reply has a hop limit
// of 1, so from a pod the first step times out.
func CloudTokenFrom(ctx context.Context, netnsName string) (string, error) {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: Dialer(netnsName, nil), DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+metadataAddr+"/latest/api/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	session, err := readOK(hc.Do(req))
	if err != nil {
		return "", fmt.Errorf("no IMDSv2 session (%w)", err)
	}
	if req, err = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metadataAddr+"/latest/meta-data/fakecloud/token", nil); err != nil {
		return "", err
	}
	req.Header.Set("X-aws-ec2-metadata-token", session)
	return readOK(hc.Do(req))
}

func readOK(resp *http.Response, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	return string(body), nil
}
