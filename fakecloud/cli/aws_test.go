package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
)

// `fakecloud serve` generates the administrator's AWS keys next to its admin token, serves the
// EC2 API with them on its one listener, and reads the same keys back after a restart.
func TestServeAWSCredentials(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	credsFile := filepath.Join(dir, "fakecloud-aws-credentials")

	first := serveAWS(t, "--admin-token-file", tokenFile)
	key := readKey(t, credsFile)
	if fi, err := os.Stat(credsFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode: %v %v; want 0600", fi, err)
	}
	describe(t, first, key)

	explicit := filepath.Join(dir, "elsewhere", "aws")
	second := serveAWS(t, "--admin-token-file", tokenFile, "--aws-credentials-file", explicit)
	other := readKey(t, explicit)
	if other == key {
		t.Fatal("a new credentials file got the same keys")
	}
	describe(t, second, other)

	third := serveAWS(t, "--admin-token-file", tokenFile)
	if again := readKey(t, credsFile); again != key {
		t.Fatalf("restart changed the keys: %+v then %+v", key, again)
	}
	describe(t, third, key)
}

func readKey(t *testing.T, path string) creds.Key {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := creds.ParseFile(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return k
}

func describe(t *testing.T, addr string, k creds.Key) {
	t.Helper()
	c := ec2.New(ec2.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}, nil
		}),
	})
	if _, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatalf("DescribeSubnets with the file's keys on %s: %v", addr, err)
	}
}

// serveAWS runs `fakecloud serve` with args until the test ends and returns its address.
func serveAWS(t *testing.T, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Execute(ctx, append([]string{"serve", "--listen", addr, "--log-level", "warn"}, args...), &bytes.Buffer{}, &bytes.Buffer{})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return addr
		}
	}
	t.Fatalf("serve did not come up on %s", addr)
	return ""
}
