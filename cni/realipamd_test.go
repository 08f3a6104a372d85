package cni_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/wire"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

// The plugin against the real ipamd (in-process, on an in-process fakecloud, without its node
// datapath): two pods reach each other and the node, CHECK, STATUS and GC agree with ipamd's
// record, and DEL gives every address back.
func TestWithRealIpamd(t *testing.T) {
	n := newNode(t, "10.9.0.10") // its fake ipamd stays idle
	socket, spool := startRealIpamd(t)
	n.socket, n.spool = socket, spool
	list := n.conflist(t, "1.1.0", "flatnet")

	a, b := n.newPod(t, "real-a"), n.newPod(t, "real-b")
	ipA, ipB := resultIP(t, n.mustAdd(t, list, a), "1.1.0"), resultIP(t, n.mustAdd(t, list, b), "1.1.0")
	for _, c := range [][2]string{{ipB, "a"}, {ipA, "b"}, {nodeIP, "a"}} {
		from := a.ns
		if c[1] == "b" {
			from = b.ns
		}
		if err := ping(t, from, c[0]); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.check(t, list, a); err != nil {
		t.Fatalf("CHECK against the real ipamd: %v", err)
	}
	if err := n.in(t, func() error { return n.cni.GetStatusNetworkList(ctx(t), list) }); err != nil {
		t.Fatalf("STATUS against the real ipamd: %v", err)
	}
	// GC through a runtime that knows nothing of real-b: only the plugin can release it.
	valid := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: "real-a", IfName: "eth0"}}}
	gcRuntime := libcni.NewCNIConfigWithCacheDir([]string{pluginPath(t)}, t.TempDir(), nil)
	if err := n.in(t, func() error { return gcRuntime.GCNetworkList(ctx(t), list, valid) }); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if _, err := ipamdCheck(socket, "real-b"); !errors.Is(err, &wire.Error{Code: wire.CodeNotFound}) {
		t.Fatalf("after GC ipamd still holds real-b (%v)", err)
	}
	if _, err := ipamdCheck(socket, "real-a"); err != nil {
		t.Fatalf("GC released the valid real-a: %v", err)
	}
	if err := n.del(t, list, a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if _, err := ipamdCheck(socket, "real-a"); !errors.Is(err, &wire.Error{Code: wire.CodeNotFound}) {
		t.Fatalf("after DEL ipamd still holds real-a (%v)", err)
	}
	if left := n.leftovers(t, ipA, ipB); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func ipamdCheck(socket, containerID string) (*wire.Allocation, error) {
	resp, err := wire.Call(context.Background(), socket, &wire.Request{Op: wire.OpCheck,
		Check: &wire.CheckRequest{Owner: wire.Owner{Network: "flatnet", ContainerID: containerID, IfName: "eth0"}}})
	if err != nil {
		return nil, err
	}
	return resp.Allocation, nil
}

// realIpamd is fakecloud and one node's ipamd in the test process, without ipamd's node
// datapath. The VPC's addresses (10.0.16.0/20) do not overlap the node's nodeIP.
type realIpamd struct {
	cfg    ipamd.Config
	cancel context.CancelFunc
	done   chan error
}

func startRealIpamd(t *testing.T) (socket, spool string) {
	r := newRealIpamd(t)
	return r.cfg.SocketPath, r.cfg.SpoolDir
}

func newRealIpamd(t *testing.T) *realIpamd {
	t.Helper()
	env := servertest.Start(t, servertest.Options{})
	_, insts := env.Launch(t, "10.0.0.0/16", "10.0.16.0/20", "m5.large", 1)
	dir := t.TempDir()
	cfg := ipamd.DefaultConfig()
	cfg.InstanceID, cfg.CloudEndpoint, cfg.CloudToken = insts[0].InstanceID, env.URL, insts[0].Token
	cfg.StateDir, cfg.SocketPath, cfg.SpoolDir = filepath.Join(dir, "state"), filepath.Join(dir, "ipamd.sock"), filepath.Join(dir, "spool")
	cfg.IntrospectAddr, cfg.MetricsAddr = "", ""
	cfg.Datapath, cfg.PodCheck = false, "none"
	cfg.Logger = slog.New(slog.DiscardHandler)
	if os.Getenv("IPAMD_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	r := &realIpamd{cfg: cfg}
	r.start(t)
	t.Cleanup(func() { r.stop(t) })
	return r
}

// start runs the daemon and waits until it can serve two ADDs without a cloud call.
func (r *realIpamd) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := ipamd.New(ctx, r.cfg, ipamd.Deps{Clouds: providers.NewRegistry(fakecloud.Driver)})
	if err != nil {
		cancel()
		t.Fatalf("ipamd.New: %v", err)
	}
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- d.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := wire.Call(context.Background(), r.cfg.SocketPath, &wire.Request{Op: wire.OpStatus})
		if err == nil && resp.Status != nil && resp.Status.Ready && resp.Status.Free >= 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipamd did not become ready with 2 free addresses within 30s (last: %+v, %v)", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *realIpamd) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("ipamd Run: %v", err)
	}
	r.cancel = nil
}

// The spool is a contract between the plugin and ipamd: a release the plugin spools while ipamd
// is down is the one ipamd applies when it starts again.
func TestRealIpamdReplaysSpool(t *testing.T) {
	n := newNode(t, "10.9.1.10")
	r := newRealIpamd(t)
	n.socket, n.spool = r.cfg.SocketPath, r.cfg.SpoolDir
	list := n.conflist(t, "1.1.0", "flatnet")
	p := n.newPod(t, "spooled")
	ip := resultIP(t, n.mustAdd(t, list, p), "1.1.0")
	r.stop(t)
	if err := n.del(t, list, p); err != nil {
		t.Fatalf("DEL with ipamd down: %v", err)
	}
	if entries, _ := os.ReadDir(r.cfg.SpoolDir); len(entries) != 1 {
		t.Fatalf("spool holds %d files, want the one release", len(entries))
	}
	r.start(t)
	if a, err := ipamdCheck(r.cfg.SocketPath, "spooled"); !errors.Is(err, &wire.Error{Code: wire.CodeNotFound}) {
		t.Fatalf("ipamd did not apply the spooled release of %s: holds %+v (%v)", ip, a, err)
	}
	if entries, _ := os.ReadDir(r.cfg.SpoolDir); len(entries) != 0 {
		t.Fatalf("spool still holds %d files after the replay", len(entries))
	}
	if left := n.leftovers(t, ip); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}
