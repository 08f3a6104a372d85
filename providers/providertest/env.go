package providertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
)

// IPAMEnv is one IPAM driver under test and the cloud it talks to.
type IPAMEnv struct {
	// Cloud is the fakecloud the driver reaches; the suite arranges it through Cloud.Admin.
	Cloud *servertest.Env
	// New builds the driver as it runs on node: with that instance's credentials (its fakecloud
	// token, or the AWS keys derived from it: servertest.InstanceAWSKey(t, node.Instance)).
	New func(t *testing.T, node Node) providers.IPAM
}

// Node is an instance the suite launched for an IPAM driver.
type Node struct {
	// Instance is the admin's answer for it, with its token.
	Instance api.Instance
	Subnet   api.Subnet
}

// LoadBalancingEnv is one load balancing driver under test and the cloud it talks to.
type LoadBalancingEnv struct {
	// Cloud is the fakecloud the driver reaches; the suite arranges it through Cloud.Admin.
	Cloud *servertest.Env
	// New builds the driver with the account's credentials (servertest.AdminToken, or
	// servertest.AWSKey), creating load balancers in subnet.
	New func(t *testing.T, subnet api.Subnet) providers.LoadBalancing
}

// ManagedTag marks the interfaces an IPAM driver creates for an instance (its value is the
// instance ID): DescribeInstance lists the unattached ones as Detached, for ipamd to delete.
const ManagedTag = "flatnet.io/node"

func bg() context.Context { return context.Background() }

// throttleEverything makes fakecloud answer every API call of either protocol with
// RequestLimitExceeded until the test ends or clearFaults.
func throttleEverything(t *testing.T, cloud *servertest.Env) {
	t.Helper()
	if _, err := cloud.Admin.SetFault(bg(), &api.SetFaultRequest{Fault: api.Fault{
		Action: "*", ErrorRate: 1, ErrorCode: api.CodeRequestLimitExceeded}}); err != nil {
		t.Fatalf("inject a throttle: %v", err)
	}
}

func clearFaults(t *testing.T, cloud *servertest.Env) {
	t.Helper()
	if _, err := cloud.Admin.ClearFaults(bg(), &api.ClearFaultsRequest{}); err != nil {
		t.Fatalf("clear the faults: %v", err)
	}
}

// wantThrottled checks that err is the seam's retryable throttle, with the cloud's code.
func wantThrottled(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, providers.ErrThrottled) {
		t.Fatalf("%s under an injected throttle: %v; want providers.ErrThrottled", what, err)
	}
	if !providers.Retryable(err) {
		t.Fatalf("%s: throttled but not retryable: %v", what, err)
	}
	if providers.Code(err) == "transport" {
		t.Errorf("%s: the throttle carries no cloud code: %v", what, err)
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Errorf("%s: %v is no *providers.Error", what, err)
	}
}

// wantKind checks that err is of kind and of no kind it does not refine, and is not retryable.
func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: %v; want %v", what, err, kind)
	}
	for _, k := range providers.Kinds {
		if errors.Is(err, k) && !errors.Is(kind, k) {
			t.Errorf("%s: %v is also %q", what, err, k)
		}
	}
	if providers.Retryable(err) {
		t.Errorf("%s: %v is retryable", what, err)
	}
	if providers.Code(err) == "transport" {
		t.Errorf("%s: %v carries no cloud code", what, err)
	}
}

// eventually retries check until it passes or timeout ends, for what a cloud shows late.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %v", what, err, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
