package ipamd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/wire"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

var clouds = providers.NewRegistry(fakecloud.Driver)

// node is one instance in a fresh fakecloud VPC.
type node struct {
	env      *servertest.Env
	id       string
	token    string
	subnetID string
}

func newNode(t testing.TB, env *servertest.Env, instanceType string) *node {
	t.Helper()
	sn, insts := env.Launch(t, "10.0.0.0/16", "10.0.0.0/20", instanceType, 1)
	return &node{env: env, id: insts[0].InstanceID, token: insts[0].Token, subnetID: sn.SubnetID}
}

// config is a test configuration: no datapath, no listeners, paths in dir.
func (n *node) config(dir string) ipamd.Config {
	c := ipamd.DefaultConfig()
	c.InstanceID, c.CloudEndpoint, c.CloudToken = n.id, n.env.URL, n.token
	c.StateDir = filepath.Join(dir, "state")
	c.SocketPath = filepath.Join(dir, "ipamd.sock")
	c.SpoolDir = filepath.Join(dir, "spool")
	c.IntrospectAddr, c.MetricsAddr = "", ""
	c.Datapath, c.PodCheck = false, "none"
	c.Logger = slog.New(slog.DiscardHandler)
	if os.Getenv("IPAMD_TEST_LOG") != "" {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return c
}

// start runs a daemon until the test ends and waits until it serves.
func start(t testing.TB, cfg ipamd.Config) *ipamd.Daemon {
	t.Helper()
	d, _ := startWith(t, cfg, ipamd.Deps{Clouds: clouds})
	return d
}

// startWith runs a daemon built with deps and waits until it serves; stop (also run when the
// test ends) shuts it down and waits for Run to return.
func startWith(t testing.TB, cfg ipamd.Config, deps ipamd.Deps) (d *ipamd.Daemon, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := ipamd.New(ctx, cfg, deps)
	if err != nil {
		cancel()
		t.Fatalf("ipamd.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	waitReady(t, cfg.SocketPath)
	return d, stop
}

func waitReady(t testing.TB, socket string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := wire.Call(context.Background(), socket, &wire.Request{Op: wire.OpStatus})
		if err == nil && resp.Status != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("ipamd at %s did not serve within 30s", socket)
}

func owner(i int) wire.Owner {
	return wire.Owner{Network: "flatnet", ContainerID: fmt.Sprintf("ctr%05d", i), IfName: "eth0"}
}

func allocate(ctx context.Context, socket string, o wire.Owner) (*wire.Allocation, error) {
	resp, err := wire.Call(ctx, socket, &wire.Request{Op: wire.OpAllocate, Allocate: &wire.AllocateRequest{Owner: o, Pod: wire.PodRef{Namespace: "default", Name: o.ContainerID}}})
	if err != nil {
		return nil, err
	}
	return resp.Allocation, nil
}

func release(ctx context.Context, socket string, o wire.Owner) (*wire.ReleaseResponse, error) {
	resp, err := wire.Call(ctx, socket, &wire.Request{Op: wire.OpRelease, Release: &wire.ReleaseRequest{Owner: o}})
	if err != nil {
		return nil, err
	}
	return resp.Release, nil
}

// cloudAssigned is every secondary address and prefix address the cloud assigns to the
// instance, read with the admin token (no faults apply to admin reads? they do: call with
// faults cleared).
func cloudAssigned(t testing.TB, n *node) map[netip.Addr]bool {
	t.Helper()
	out, err := n.env.Admin.DescribeInstances(context.Background(), &api.DescribeInstancesRequest{InstanceIDs: []string{n.id}})
	if err != nil {
		t.Fatal(err)
	}
	set := map[netip.Addr]bool{}
	for _, ni := range out.Instances[0].NetworkInterfaces {
		for _, a := range ni.PrivateIPAddresses {
			if !a.Primary {
				set[netip.MustParseAddr(a.PrivateIPAddress)] = true
			}
		}
		for _, p := range ni.Ipv4Prefixes {
			pfx := netip.MustParsePrefix(p.Ipv4Prefix)
			for a := pfx.Addr(); pfx.Contains(a); a = a.Next() {
				set[a] = true
			}
		}
	}
	return set
}

func isCode(err error, code string) bool { return errors.Is(err, &wire.Error{Code: code}) }

// writeToken writes a cloud token into a file of dir, mode 0600, for --cloud-token-file.
func writeToken(t testing.TB, dir, token string) string {
	t.Helper()
	path := filepath.Join(dir, "cloud-token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
