package aws

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

const testRegion = "us-east-1"

// world is an in-process fakecloud with one VPC, one subnet and instances, reached through its
// EC2 and ELBv2 endpoint.
type world struct {
	*servertest.Env
	subnet    api.Subnet
	instances []api.Instance
	ops       *opLog
}

func newWorld(t testing.TB, instanceType string, count int) *world {
	t.Helper()
	env := servertest.Start(t, servertest.Options{})
	sn, insts := env.Launch(t, "10.0.0.0/16", "10.0.0.0/20", instanceType, count)
	return &world{Env: env, subnet: sn, instances: insts, ops: &opLog{seen: map[string]bool{}}}
}

// opLog records the operations a driver calls (for the IAM policy test).
type opLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (l *opLog) observe(op string, _ time.Duration, _ error) {
	l.mu.Lock()
	l.seen[op] = true
	l.mu.Unlock()
}

func (l *opLog) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.seen))
	for n := range l.seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// calledOps collects, across the tests of the package, every operation each component's
// driver called (TestMain checks them against the IAM policies).
var calledOps = map[string]*opLog{
	"ipamd":        {seen: map[string]bool{}},
	"lbcontroller": {seen: map[string]bool{}},
}

// config is the driver configuration of a component signing with k.
func (w *world) config(k server.AWSKey, component string) Config {
	cfg := aws.Config{
		Region: testRegion, BaseEndpoint: aws.String(w.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, SessionToken: k.SessionToken, Source: "fakecloud"}, nil
		}),
	}
	return Config{AWS: &cfg, Observe: func(op string, took time.Duration, err error) {
		w.ops.observe(op, took, err)
		if l, ok := calledOps[component]; ok {
			l.observe(op, took, err)
		}
	}}
}

// ipam is ipamd's driver of instance i, signing with the instance's own credentials (as ipamd
// does with its instance role).
func (w *world) ipam(t testing.TB, i int) *IPAM {
	t.Helper()
	d, err := NewIPAM(context.Background(), w.config(servertest.InstanceAWSKey(t, w.instances[i]), "ipamd"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// lb is lbcontroller's driver, signing with a load-balancer token's keys.
func (w *world) lb(t testing.TB, poll time.Duration) *LoadBalancing {
	t.Helper()
	key := servertest.LoadBalancerAWSKey(w.LoadBalancerToken(t))
	d, err := NewLoadBalancing(context.Background(), LBConfig{Config: w.config(key, "lbcontroller"), SubnetID: w.subnet.SubnetID, PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
