package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// token create-lb writes the token and the AWS keys to new private files and keeps them off
// the output; the token works for load balancers only; list-lb shows no secret; delete-lb
// revokes it.
func TestLoadBalancerTokenCommands(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	dir := t.TempDir()
	tokenFile, awsFile := filepath.Join(dir, "lb-token"), filepath.Join(dir, "lb-aws")
	created := mustJSON[api.CreateLoadBalancerTokenResponse](t, env, "token", "create-lb", "--description", "lbcontroller",
		"--token-out", tokenFile, "--aws-credentials-out", awsFile).LoadBalancerToken
	if created.Token != "" || created.SecretAccessKey != "" || created.TokenID == "" {
		t.Errorf("create-lb printed %+v; want the ID without the secrets written to files", created)
	}
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	if st, err := os.Stat(awsFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("AWS credentials file: %v, %v; want 0600", st, err)
	}
	lb := env.Client(token)
	if _, err := lb.DescribeLoadBalancers(context.Background(), &api.DescribeLoadBalancersRequest{}); err != nil {
		t.Errorf("DescribeLoadBalancers with the new token: %v", err)
	}
	if _, err := lb.DescribeInstances(context.Background(), &api.DescribeInstancesRequest{}); !errors.Is(err, api.ErrUnauthorizedOperation) {
		t.Errorf("DescribeInstances with the new token: %v, want UnauthorizedOperation", err)
	}
	if _, err := run(t, env, "token", "create-lb", "--token-out", tokenFile); err == nil {
		t.Error("create-lb overwrote an existing token file")
	}
	list, _ := run(t, env, "token", "list-lb")
	if !strings.Contains(list, created.TokenID) || strings.Contains(list, token) {
		t.Errorf("list-lb printed %q; want the token ID without the token", list)
	}
	if _, err := run(t, env, "token", "delete-lb", created.TokenID); err != nil {
		t.Fatal(err)
	}
	if _, err := lb.DescribeLoadBalancers(context.Background(), &api.DescribeLoadBalancersRequest{}); !errors.Is(err, api.ErrAuthFailure) {
		t.Errorf("a revoked token: %v, want AuthFailure", err)
	}
}
