package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
)

const serveChildEnv = "FAKECLOUD_SERVE_CHILD_ARGS"

// TestServeChild is the server process the crash test kills: it runs `fakecloud serve` with the
// arguments the parent passes in the environment.
func TestServeChild(t *testing.T) {
	args := os.Getenv(serveChildEnv)
	if args == "" {
		return // only meaningful when re-executed by TestKill9OfServerKeepsAcknowledgedAssignments
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		t.Fatalf("%s: %v", serveChildEnv, err)
	}
	if err := Execute(context.Background(), argv, io.Discard, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
}

// Acceptance 3 of the fakecloud issue, through the whole server: kill -9 of `fakecloud serve
// --state-file` while 16 callers assign over HTTP; after a restart every assignment whose call
// returned success is present, and none is held twice.
func TestKill9OfServerKeepsAcknowledgedAssignments(t *testing.T) {
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	args := []string{"serve", "--listen", addr, "--admin-token-file", writeTokenFile(t, "crash-admin"), "--state-file", filepath.Join(dir, "state"), "--throttle=false", "--log-level", "error"}
	c := client.New("http://"+addr, "crash-admin")
	ctx := context.Background()

	srv := startServeChild(t, args, addr)
	v, err := c.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: "10.40.0.0/16"})
	mustOK(t, err)
	sn, err := c.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: v.Vpc.VpcID, CidrBlock: "10.40.0.0/16"})
	mustOK(t, err)
	run, err := c.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: sn.Subnet.SubnetID, InstanceType: "m5.16xlarge", Count: 40})
	mustOK(t, err)

	var (
		mu    sync.Mutex
		acked = map[string]string{} // address -> interface
		count atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for g := range 16 {
		wg.Go(func() {
			for k := g; !stop.Load(); k++ {
				eni := run.Instances[k%len(run.Instances)].NetworkInterfaces[0].NetworkInterfaceID
				r, err := c.AssignPrivateIPAddresses(ctx, &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1})
				if err != nil {
					continue // the server is gone, or the interface is full
				}
				mu.Lock()
				acked[r.AssignedPrivateIPAddresses[0]] = eni
				mu.Unlock()
				count.Add(1)
			}
		})
	}
	for count.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	mustOK(t, srv.Process.Signal(syscall.SIGKILL))
	_ = srv.Wait()
	stop.Store(true)
	wg.Wait()

	startServeChild(t, args, addr)
	d, err := c.DescribeNetworkInterfaces(ctx, &api.DescribeNetworkInterfacesRequest{})
	mustOK(t, err)
	held := map[string]string{}
	for _, ni := range d.NetworkInterfaces {
		for _, a := range ni.PrivateIPAddresses {
			if other, dup := held[a.PrivateIPAddress]; dup {
				t.Fatalf("%s is held by %s and %s after the restart", a.PrivateIPAddress, other, ni.NetworkInterfaceID)
			}
			held[a.PrivateIPAddress] = ni.NetworkInterfaceID
		}
	}
	for ip, eni := range acked {
		if held[ip] != eni {
			t.Errorf("acknowledged %s on %s is lost after kill -9 (held by %q)", ip, eni, held[ip])
		}
	}
	t.Logf("%d acknowledged assignments survived kill -9 of the server; %d addresses held", len(acked), len(held))
}

func startServeChild(t *testing.T, args []string, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.count=1")
	argv, _ := json.Marshal(args)
	cmd.Env = append(os.Environ(), serveChildEnv+"="+string(argv))
	cmd.Stderr = os.Stderr
	mustOK(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server child did not answer on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustOK(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		var e *api.Error
		if errors.As(err, &e) {
			t.Fatalf("%s: %s", e.Code, e.Message)
		}
		t.Fatal(err)
	}
}
