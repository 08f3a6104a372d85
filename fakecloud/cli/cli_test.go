package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// run executes the command line against env and returns what it printed.
func run(t *testing.T, env *servertest.Env, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--endpoint", env.URL, "--token-file", writeTokenFile(t, servertest.AdminToken)}, args...)
	err := Execute(context.Background(), full, &out, &errOut)
	return out.String(), err
}

func mustJSON[T any](t *testing.T, env *servertest.Env, args ...string) T {
	t.Helper()
	out, err := run(t, env, append(args, "-o", "json")...)
	if err != nil {
		t.Fatalf("fakecloud %s: %v", strings.Join(args, " "), err)
	}
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("fakecloud %s printed %q: %v", strings.Join(args, " "), out, err)
	}
	return v
}

func TestResourceCommands(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	vpc := mustJSON[api.CreateVpcResponse](t, env, "vpc", "create", "--cidr", "10.0.0.0/16").Vpc
	sn := mustJSON[api.CreateSubnetResponse](t, env, "subnet", "create", "--vpc", vpc.VpcID, "--cidr", "10.0.0.0/24").Subnet
	inst := mustJSON[api.RunInstancesResponse](t, env, "instance", "run", "--subnet", sn.SubnetID, "--type", "m5.large").Instances[0]
	eni := mustJSON[api.CreateNetworkInterfaceResponse](t, env, "eni", "create", "--subnet", sn.SubnetID).NetworkInterface
	id := eni.NetworkInterfaceID
	mustJSON[api.AttachNetworkInterfaceResponse](t, env, "eni", "attach", id, "--instance", inst.InstanceID, "--device-index", "1")
	ips := mustJSON[api.AssignPrivateIPAddressesResponse](t, env, "eni", "assign-ips", id, "--count", "3")
	if len(ips.AssignedPrivateIPAddresses) != 3 {
		t.Errorf("assign-ips --count 3 gave %v", ips.AssignedPrivateIPAddresses)
	}
	pfx := mustJSON[api.AssignPrivateIPAddressesResponse](t, env, "eni", "assign-prefixes", id, "--count", "2")
	if len(pfx.AssignedIpv4Prefixes) != 2 {
		t.Errorf("assign-prefixes --count 2 gave %v", pfx.AssignedIpv4Prefixes)
	}
	mustJSON[api.UnassignPrivateIPAddressesResponse](t, env, "eni", "unassign-ips", id, "--ip", ips.AssignedPrivateIPAddresses[0])
	mustJSON[api.ModifyNetworkInterfaceAttributeResponse](t, env, "eni", "set-source-dest-check", id, "false")

	list := mustJSON[api.DescribeNetworkInterfacesResponse](t, env, "eni", "list", "--instance", inst.InstanceID)
	if len(list.NetworkInterfaces) != 2 {
		t.Fatalf("eni list --instance: %d interfaces, want 2", len(list.NetworkInterfaces))
	}

	table, err := run(t, env, "eni", "list", id)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INTERFACE", "SECONDARY IPS", id, ips.AssignedPrivateIPAddresses[1], "false"} {
		if !strings.Contains(table, want) {
			t.Errorf("eni list table lacks %q:\n%s", want, table)
		}
	}
	if out, err := run(t, env, "instance-types", "list"); err != nil || !strings.Contains(out, "m5.large") {
		t.Errorf("instance-types list: %v\n%s", err, out)
	}

	// Errors come back as the API's.
	_, err = run(t, env, "eni", "assign-ips", id, "--count", "20")
	if !errors.Is(err, api.ErrPrivateIPAddressLimitExceeded) {
		t.Errorf("assign beyond the limit: %v", err)
	}
	if _, err := run(t, env, "vpc", "list", "-o", "yaml"); err == nil {
		t.Error("-o yaml was accepted")
	}
}

func TestFaultCommands(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	if _, err := run(t, env, "fault", "set", "--action", "DescribeVpcs", "--error-rate", "1", "--error-code", "ServiceUnavailable", "--latency", "5ms", "--seed", "3"); err != nil {
		t.Fatal(err)
	}
	faults := mustJSON[api.ListFaultsResponse](t, env, "fault", "list").Faults
	if len(faults) != 1 || faults[0].LatencyMillis != 5 || faults[0].ErrorCode != api.CodeServiceUnavailable {
		t.Errorf("fault list = %+v", faults)
	}
	if _, err := run(t, env, "vpc", "list"); !errors.Is(err, api.ErrServiceUnavailable) {
		t.Errorf("vpc list under a fault: %v", err)
	}
	if _, err := run(t, env, "fault", "set", "--action", "*", "--error-rate", "3"); !errors.Is(err, api.ErrInvalidParameterValue) {
		t.Errorf("a rate of 3: %v", err)
	}
	if _, err := run(t, env, "fault", "clear"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, env, "vpc", "list"); err != nil {
		t.Errorf("vpc list after clear: %v", err)
	}
}

func TestServeGeneratesTokenAndShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tokenFile := filepath.Join(t.TempDir(), "sub", "admin-token")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Execute(ctx, []string{"serve", "--listen", addr, "--admin-token-file", tokenFile, "--log-level", "warn"}, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	var token []byte
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			token, err = os.ReadFile(tokenFile)
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(token) == 0 {
		t.Fatal("serve did not come up with a token file")
	}
	var out bytes.Buffer
	if err := Execute(context.Background(), []string{"--endpoint", "http://" + addr, "--token-file", tokenFile, "vpc", "list"}, &out, &bytes.Buffer{}); err != nil {
		t.Errorf("vpc list with the generated token: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode: %v %v", fi, err)
	}
}

// writeTokenFile puts a token in a file (tokens are never arguments) and returns its path.
func writeTokenFile(t testing.TB, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTokenFlagsRemoved: a token given as an argument (visible in /proc/<pid>/cmdline) fails,
// naming the file or environment variable that replaces it; a token file is read.
func TestTokenFlagsRemoved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", "s3cr3t", "vpc", "list"}, "use --token-file or $FAKECLOUD_TOKEN"},
		{[]string{"--token=s3cr3t", "vpc", "list"}, "use --token-file or $FAKECLOUD_TOKEN"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--admin-token", "s3cr3t"}, "use --admin-token-file or $FAKECLOUD_ADMIN_TOKEN"},
		{[]string{"--token-file", filepath.Join(t.TempDir(), "none"), "vpc", "list"}, "--token-file"},
	} {
		// Bounded: a serve that took the flag would run until the context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := Execute(ctx, tc.args, &bytes.Buffer{}, &bytes.Buffer{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
	env := servertest.Start(t, servertest.Options{})
	if _, err := run(t, env, "vpc", "list"); err != nil {
		t.Errorf("vpc list with --token-file: %v", err)
	}
}
