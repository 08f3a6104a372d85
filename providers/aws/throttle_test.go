package aws_test

import (
	"context"
	"errors"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
	awsdriver "github.com/flatnet/flatnet/providers/aws"
	fcdriver "github.com/flatnet/flatnet/providers/fakecloud"
)

// TestThrottleSameThroughBothDrivers: a throttle injected into fakecloud reaches ipamd and
// lbcontroller as the same retryable ErrThrottled whichever driver they use — the fakecloud
// driver over the JSON API, or the AWS driver over EC2 (RequestLimitExceeded) and ELBv2
// (Throttling) — each keeping its protocol's code.
func TestThrottleSameThroughBothDrivers(t *testing.T) {
	ctx := context.Background()
	env := servertest.Start(t, servertest.Options{})
	sn, insts := env.Launch(t, "10.0.0.0/16", "10.0.0.0/20", "m5.large", 1)
	inst := insts[0]
	// lbcontroller's credentials: a load-balancer token, its key pair for the AWS driver.
	lbt := env.LoadBalancerToken(t)
	t.Setenv("AWS_ACCESS_KEY_ID", lbt.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", lbt.SecretAccessKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	key := servertest.InstanceAWSKey(t, inst)
	settings := func(d providers.Driver) providers.Settings {
		s := providers.Settings{Endpoint: env.URL, Region: "us-east-1", SubnetID: sn.SubnetID, Credentials: providers.Credentials{Token: lbt.Token}}
		if d.Name == awsdriver.Name {
			s.Credentials = providers.Credentials{}
		}
		return s
	}
	type ipamCase struct {
		driver providers.Driver
		code   string
	}
	for _, tc := range []ipamCase{{fcdriver.Driver, api.CodeRequestLimitExceeded}, {awsdriver.Driver(), "RequestLimitExceeded"}} {
		t.Run("ipam/"+tc.driver.Name, func(t *testing.T) {
			s := settings(tc.driver)
			if tc.driver.Name == awsdriver.Name {
				t.Setenv("AWS_ACCESS_KEY_ID", key.AccessKeyID)
				t.Setenv("AWS_SECRET_ACCESS_KEY", key.SecretAccessKey)
				t.Setenv("AWS_SESSION_TOKEN", key.SessionToken)
			} else {
				s.Credentials.Token = inst.Token
			}
			d, err := tc.driver.NewIPAM(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.DescribeInstance(ctx, inst.InstanceID); err != nil {
				t.Fatalf("before the fault: %v", err)
			}
			setFault(t, env, api.ActionDescribeInstances)
			_, err = d.DescribeInstance(ctx, inst.InstanceID)
			wantThrottled(t, err, tc.code)
		})
	}
	for _, tc := range []ipamCase{{fcdriver.Driver, api.CodeRequestLimitExceeded}, {awsdriver.Driver(), "Throttling"}} {
		t.Run("loadbalancing/"+tc.driver.Name, func(t *testing.T) {
			d, err := tc.driver.NewLoadBalancing(ctx, settings(tc.driver))
			if err != nil {
				t.Fatal(err)
			}
			tg, err := d.CreateTargetGroup(ctx, providers.TargetGroupSpec{Name: "t-" + tc.driver.Name, Protocol: "TCP", Port: 80})
			if err != nil {
				t.Fatal(err)
			}
			setFault(t, env, api.ActionDescribeTargetHealth)
			_, err = d.DescribeTargets(ctx, tg.ID)
			wantThrottled(t, err, tc.code)
		})
	}
}

func setFault(t *testing.T, env *servertest.Env, action string) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: action, ErrorRate: 1, ErrorCode: api.CodeRequestLimitExceeded}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = env.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}) })
}

func wantThrottled(t *testing.T, err error, code string) {
	t.Helper()
	var pe *providers.Error
	if !errors.Is(err, providers.ErrThrottled) || !providers.Retryable(err) || !errors.As(err, &pe) || providers.Code(err) != code {
		t.Fatalf("throttled call: %v (code %q); want a retryable providers.ErrThrottled with code %s", err, providers.Code(err), code)
	}
}
