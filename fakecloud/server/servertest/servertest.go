// Package servertest runs a real fakecloud (store, server, HTTP listener) inside a test, so that
// any component's tests can talk to the cloud through the real client instead of a mock.
package servertest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
	"github.com/flatnet/flatnet/fakecloud/server"
)

// AdminToken is the admin token of every test server.
const AdminToken = "test-admin-token"

// AWSKey is the administrator's AWS key pair of every test server (its AWS front end).
var AWSKey = server.AWSKey{AccessKeyID: "AKIAFAKECLOUDTESTKEY", SecretAccessKey: "fakecloud/test/secret/access/key+0123456"}

// Options tune a test server; the zero value disables throttling and keeps state in memory.
type Options struct {
	// Throttle enables throttling with this configuration; nil disables it.
	Throttle *server.ThrottleConfig
	// Clock is the server's clock; default time.Now.
	Clock func() time.Time
	// StateFile makes the store durable.
	StateFile string
	// AttachDelay keeps attachments in their transitional states this long.
	AttachDelay time.Duration
	FaultSeed   int64
	Logger      *slog.Logger
	// InterfacesPerInstance is the store's per-instance interface quota (0: the default).
	InterfacesPerInstance int
	// RulesPerLoadBalancer is the application load balancers' rule quota (0: AWS's 100).
	RulesPerLoadBalancer int
}

// Env is a running fakecloud.
type Env struct {
	URL    string
	Server *server.Server
	// Admin is a client with the admin token.
	Admin *client.Client
}

// InstanceAWSKey returns the AWS credentials of an instance, as its metadata service serves them;
// inst must come from an admin's answer (which carries the instance's token).
func InstanceAWSKey(tb testing.TB, inst api.Instance) server.AWSKey {
	tb.Helper()
	k, err := creds.InstanceKey(inst.InstanceID, inst.Token)
	if err != nil {
		tb.Fatalf("AWS credentials of %s: %v", inst.InstanceID, err)
	}
	return k
}

// LoadBalancerToken creates a load-balancer token, what a load balancer controller is given
// instead of the admin token: its Token for the JSON API, its key pair for the AWS front end.
func (e *Env) LoadBalancerToken(tb testing.TB) api.LoadBalancerToken {
	tb.Helper()
	r, err := e.Admin.CreateLoadBalancerToken(context.Background(), &api.CreateLoadBalancerTokenRequest{Description: tb.Name()})
	if err != nil {
		tb.Fatalf("create a load-balancer token: %v", err)
	}
	return r.LoadBalancerToken
}

// LoadBalancerAWSKey is the AWS key pair of a load-balancer token.
func LoadBalancerAWSKey(t api.LoadBalancerToken) server.AWSKey {
	return server.AWSKey{AccessKeyID: t.AccessKeyID, SecretAccessKey: t.SecretAccessKey}
}

// Client returns a client of the test server that authenticates with token.
func (e *Env) Client(token string) *client.Client { return client.New(e.URL, token) }

// Start runs a fakecloud until the test ends.
func Start(tb testing.TB, o Options) *Env {
	tb.Helper()
	st, err := server.OpenStore(server.StoreConfig{StateFile: o.StateFile, AttachDelay: o.AttachDelay, Logger: o.Logger, InterfacesPerInstance: o.InterfacesPerInstance,
		ALBLimits: state.ALBLimits{RulesPerLoadBalancer: o.RulesPerLoadBalancer}})
	if err != nil {
		tb.Fatalf("open fakecloud store: %v", err)
	}
	throttle := server.ThrottleConfig{Disabled: true}
	if o.Throttle != nil {
		throttle = *o.Throttle
	}
	srv, err := server.New(server.Config{
		Store: st, AdminToken: AdminToken, Throttle: throttle, Clock: o.Clock, FaultSeed: o.FaultSeed, Logger: o.Logger,
		AWSKeys: []server.AWSKey{AWSKey},
	})
	if err != nil {
		tb.Fatalf("new fakecloud server: %v", err)
	}
	hs := httptest.NewServer(srv)
	tb.Cleanup(func() {
		srv.Close()
		hs.Close()
		if err := st.Close(); err != nil {
			tb.Errorf("close fakecloud store: %v", err)
		}
	})
	return &Env{URL: hs.URL, Server: srv, Admin: client.New(hs.URL, AdminToken)}
}

// Launch creates a VPC with one subnet and runs count instances of instanceType in it, for
// tests that need nodes; it fails the test on any error.
func (e *Env) Launch(tb testing.TB, vpcCIDR, subnetCIDR, instanceType string, count int) (api.Subnet, []api.Instance) {
	tb.Helper()
	ctx := context.Background()
	vpc, err := e.Admin.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: vpcCIDR})
	if err != nil {
		tb.Fatalf("create a VPC %s: %v", vpcCIDR, err)
	}
	sn, err := e.Admin.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: vpc.Vpc.VpcID, CidrBlock: subnetCIDR})
	if err != nil {
		tb.Fatalf("create a subnet %s: %v", subnetCIDR, err)
	}
	run, err := e.Admin.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: sn.Subnet.SubnetID, InstanceType: instanceType, Count: count})
	if err != nil {
		tb.Fatalf("run %d %s: %v", count, instanceType, err)
	}
	return sn.Subnet, run.Instances
}
