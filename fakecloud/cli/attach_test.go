package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/fabric"
)

func execute(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := Execute(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

// Bad --fabric-attach values, and other bad fabric flags, stop serve before anything starts,
// saying what is wrong.
func TestServeRefusesBadAttachments(t *testing.T) {
	dir := t.TempDir()
	base := []string{"serve", "--listen", "127.0.0.1:0", "--admin-token-file", filepath.Join(dir, "token")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--fabric-attach", "kind-worker"}, `invalid argument "kind-worker" for "--fabric-attach" flag: attachment "kind-worker": want NAME=PATH`},
		{[]string{"--fabric-attach", "kind-worker=proc/1/ns/net"}, `namespace path "proc/1/ns/net" is not absolute`},
		{[]string{"--fabric-attach", "=/proc/1/ns/net"}, "the instance name is empty"},
		{[]string{"--fabric-attach", "w=/proc/1/ns/net"}, "--fabric-attach needs the fabric: add --fabric netns"},
		{[]string{"--fabric-attach-default-route"}, "--fabric-attach needs the fabric: add --fabric netns"},
		{[]string{"--fabric", "netns", "--fabric-prefix", "fcx-", "--fabric-attach", "w=/run/netns/fcx-n-i-1"}, "one of this fabric's own namespaces"},
		{[]string{"--fabric", "netns", "--fabric-attach", "w=/proc/1/ns/net", "--fabric-attach", "w=/proc/2/ns/net"}, "the name is given twice"},
		{[]string{"--fabric", "netns", "--fabric-lb-busy-poll", "-1us"}, "--fabric-lb-busy-poll -1µs: want 0 (never) or from 1µs to 1s"},
		{[]string{"--fabric", "netns", "--fabric-lb-busy-poll", "2s"}, "--fabric-lb-busy-poll 2s: want 0 (never) or from 1µs to 1s"},
		{[]string{"--fabric", "netns", "--fabric-lb-busy-poll", "500ns"}, "--fabric-lb-busy-poll 500ns: want 0 (never) or from 1µs to 1s"},
		{[]string{"--fabric", "netns", "--fabric-access-log-max-bytes", "-1"}, "--fabric-access-log-max-bytes -1, --fabric-access-log-keep 5: want 0 or more"},
		{[]string{"--fabric", "netns", "--fabric-access-log-keep", "1001"}, "and at most 1000 files kept"},
	} {
		out, err := execute(append(base, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %s: %v (output %q), want an error saying %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
}

func TestAttachmentsEndpoint(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "api "+r.URL.Path) })
	none := &fabricOptions{}
	requireRoot(t) // fabric.New checks it; it touches no namespace
	fab, err := fabric.New(fabric.Config{Source: nullSource{}, Prefix: "fcz-", Attach: []fabric.Attachment{{Name: "w", Netns: "/proc/1/ns/net"}}})
	if err != nil {
		t.Fatal(err)
	}
	with := &fabricOptions{fab: fab}
	for _, c := range []struct {
		name          string
		o             *fabricOptions
		method, path  string
		token         string
		code          int
		contains      string
		wantAPIHandle bool
	}{
		{"the API gets everything else", with, "POST", "/api/DescribeVpcs", "", 200, "api /api/DescribeVpcs", true},
		{"no token", with, "GET", attachmentsPath, "", 401, api.CodeAuthFailure, false},
		{"an instance's token", with, "GET", attachmentsPath, "not-admin", 401, api.CodeAuthFailure, false},
		{"not GET", with, "POST", attachmentsPath, "admin", 405, api.CodeInvalidRequest, false},
		{"no fabric", none, "GET", attachmentsPath, "admin", 404, "runs no fabric", false},
		{"the attachments", with, "GET", attachmentsPath, "admin", 200, `"Attachments":[{"Name":"w","Netns":"/proc/1/ns/net","State":"waiting"`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, nil)
			if c.token != "" {
				req.Header.Set(api.HeaderAuthorization, "Bearer "+c.token)
			}
			rec := httptest.NewRecorder()
			c.o.attachmentsHandler(next, "admin").ServeHTTP(rec, req)
			if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.contains) {
				t.Errorf("%s %s: %d %s, want %d containing %q", c.method, c.path, rec.Code, rec.Body, c.code, c.contains)
			}
		})
	}
}

// nullSource is a control plane with nothing in it.
type nullSource struct{}

func (nullSource) Snapshot() *api.Snapshot { return &api.Snapshot{} }
func (nullSource) WaitChanges(ctx context.Context, _ uint64) (*api.GetChangesResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestAttachmentsCommand(t *testing.T) {
	list := []fabric.AttachmentStatus{
		{Name: "kind-control-plane", Netns: "/proc/10/ns/net", InstanceID: "i-1", State: fabric.AttachmentAttached},
		{Name: "kind-worker", Netns: "/proc/11/ns/net", InstanceID: "i-2", State: fabric.AttachmentFailed,
			Reason: "network namespace /proc/11/ns/net does not exist"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != attachmentsPath || r.Header.Get(api.HeaderAuthorization) != "Bearer admin" {
			writeAPIError(w, http.StatusUnauthorized, api.CodeAuthFailure, "who are you")
			return
		}
		_ = json.NewEncoder(w).Encode(AttachmentsResponse{Attachments: list})
	}))
	defer srv.Close()
	cli := []string{"--endpoint", srv.URL, "--token-file", writeTokenFile(t, "admin"), "fabric", "attachments"}

	out, err := execute(cli...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NAME", "kind-control-plane", "attached", "kind-worker", "failed", "does not exist"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	out, err = execute(append(cli, "-o", "json")...)
	var got AttachmentsResponse
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got.Attachments) != 2 {
		t.Errorf("-o json: %v\n%s", err, out)
	}
	_, err = execute(append(cli, "--wait", "300ms")...)
	if err == nil || !strings.Contains(err.Error(), "not attached after 300ms: kind-worker is failed (network namespace /proc/11/ns/net does not exist)") {
		t.Errorf("--wait with a failed attachment: %v", err)
	}
	_, err = execute("--endpoint", srv.URL, "--token-file", writeTokenFile(t, "wrong"), "fabric", "attachments")
	if err == nil || !strings.Contains(err.Error(), api.CodeAuthFailure) {
		t.Errorf("a wrong token: %v", err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the fabric, which needs network namespaces: run it as root (make test does)")
	}
}

// TestServeAttachesNamespace runs `fakecloud serve --fabric netns --fabric-attach` as hack/kind
// does, with a process in a network namespace of its own standing in for a kind node: the
// instance launched with the attachment's Name tag is wired into it, `fabric attachments --wait`
// says so, and stopping serve with --fabric-teardown leaves the namespace and its process as
// they were.
func TestServeAttachesNamespace(t *testing.T) {
	requireRoot(t)
	node := exec.Command("sleep", "infinity")
	node.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	mustOK(t, node.Start())
	t.Cleanup(func() { _ = node.Process.Kill(); _ = node.Wait() })
	path := fmt.Sprintf("/proc/%d/ns/net", node.Process.Pid)
	nsh, err := netns.GetFromPath(path)
	mustOK(t, err)
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	_ = nsh.Close()
	mustOK(t, err)
	defer h.Close()
	links := func() []string {
		ls, err := h.LinkList()
		mustOK(t, err)
		var out []string
		for _, l := range ls {
			out = append(out, l.Attrs().Name)
		}
		return out
	}

	b := make([]byte, 3)
	_, _ = rand.Read(b)
	prefix := "fcc" + hex.EncodeToString(b) + "-"
	t.Cleanup(func() { _ = fabric.Down(prefix) })
	addr := freeLoopbackAddr(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	mustOK(t, os.WriteFile(tokenFile, []byte("admin\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Execute(ctx, []string{"serve", "--listen", addr, "--admin-token-file", tokenFile,
			"--log-level", "warn", "--fabric", "netns", "--fabric-prefix", prefix, "--fabric-teardown",
			"--fabric-attach", "kind-worker=" + path}, io.Discard, os.Stderr)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			stopped = true
		}
	}
	t.Cleanup(stop)
	waitHealthy(t, addr, done)

	c := client.New("http://"+addr, "admin")
	bg := context.Background()
	vpc, err := c.CreateVpc(bg, &api.CreateVpcRequest{CidrBlock: "10.0.0.0/16"})
	mustOK(t, err)
	sn, err := c.CreateSubnet(bg, &api.CreateSubnetRequest{VpcID: vpc.Vpc.VpcID, CidrBlock: "10.0.1.0/24"})
	mustOK(t, err)
	cli := []string{"--endpoint", "http://" + addr, "--token-file", writeTokenFile(t, "admin")}
	if out, err := execute(append(cli, "instance", "run", "--subnet", sn.Subnet.SubnetID, "--type", "m5.large", "--tag", "Name=kind-worker")...); err != nil {
		t.Fatalf("instance run --tag: %v\n%s", err, out)
	}
	out, err := execute(append(cli, "fabric", "attachments", "--wait", "20s")...)
	if err != nil || !strings.Contains(out, "attached") {
		t.Fatalf("fabric attachments --wait: %v\n%s", err, out)
	}
	if got := links(); strings.Join(got, " ") != "lo vpc0" {
		t.Errorf("links in the attached namespace: %v, want lo and the fabric's vpc0", got)
	}

	stop()
	if got := links(); strings.Join(got, " ") != "lo" {
		t.Errorf("links after serve stopped with --fabric-teardown: %v, want lo alone", got)
	}
	if err := node.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the node's process is gone: %v", err)
	}
}

// waitHealthy waits until serve answers on addr, failing at once if it returned (done).
func waitHealthy(t *testing.T, addr string, done chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case serr := <-done:
			done <- serr // for the cleanup that waits on it
			t.Fatalf("serve returned before answering: %v", serr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
