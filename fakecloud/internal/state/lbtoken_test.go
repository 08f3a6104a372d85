package state

import (
	"path/filepath"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// A load-balancer token survives a restart with a state file, and a revoked one authenticates
// no more, by its token nor by its AWS key.
func TestLoadBalancerTokenPersistsAndRevokes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := Open(Config{StateFile: path})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateLoadBalancerToken(admin(), &api.CreateLoadBalancerTokenRequest{Description: "lbcontroller"})
	if err != nil {
		t.Fatal(err)
	}
	tok := r.LoadBalancerToken
	if tok.Token == "" || tok.AccessKeyID == "" || tok.SecretAccessKey == "" {
		t.Fatalf("CreateLoadBalancerToken answered %+v; want a token and a key pair", tok)
	}
	if _, err := s.CreateLoadBalancerToken(as("i-1"), &api.CreateLoadBalancerTokenRequest{}); err == nil {
		t.Error("an instance created a load-balancer token")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, Config{StateFile: path})
	if p, ok := s.Authenticate(tok.Token); !ok || !p.LoadBalancer || p.Admin || p.TokenID != tok.TokenID {
		t.Fatalf("after a restart the token authenticates as %+v, %v; want the load-balancer principal %s", p, ok, tok.TokenID)
	}
	if k, id, ok := s.LoadBalancerKey(tok.AccessKeyID); !ok || k.SecretAccessKey != tok.SecretAccessKey || id != tok.TokenID {
		t.Fatalf("after a restart the AWS key is %+v %s %v", k, id, ok)
	}
	list, err := s.DescribeLoadBalancerTokens(admin(), &api.DescribeLoadBalancerTokensRequest{})
	if err != nil || len(list.LoadBalancerTokens) != 1 || list.LoadBalancerTokens[0].Token != "" || list.LoadBalancerTokens[0].SecretAccessKey != "" {
		t.Fatalf("DescribeLoadBalancerTokens = %+v, %v; want the one token without its secrets", list, err)
	}
	if _, err := s.DeleteLoadBalancerToken(admin(), &api.DeleteLoadBalancerTokenRequest{TokenID: tok.TokenID}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate(tok.Token); ok {
		t.Error("a revoked token still authenticates")
	}
	if _, _, ok := s.LoadBalancerKey(tok.AccessKeyID); ok {
		t.Error("a revoked token's AWS key is still known")
	}
	if _, err := s.DeleteLoadBalancerToken(admin(), &api.DeleteLoadBalancerTokenRequest{TokenID: tok.TokenID}); err == nil {
		t.Error("deleting a deleted token succeeded")
	}
}
