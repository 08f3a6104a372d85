package aws_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
	awsdriver "github.com/flatnet/flatnet/providers/aws"
	"github.com/flatnet/flatnet/providers/providertest"
)

// static signs with k.
func static(url string, k server.AWSKey) *aws.Config {
	return &aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, SessionToken: k.SessionToken, Source: "fakecloud"}, nil
		}),
	}
}

// TestIPAMContract runs the driver contract the fakecloud driver passes against fakecloud's EC2
// endpoint, signing with the instance's credentials (those its metadata service hands out).
func TestIPAMContract(t *testing.T) {
	providertest.RunIPAM(t, func(t *testing.T) providertest.IPAMEnv {
		cloud := servertest.Start(t, servertest.Options{})
		return providertest.IPAMEnv{Cloud: cloud, New: func(t *testing.T, n providertest.Node) providers.IPAM {
			d, err := awsdriver.NewIPAM(context.Background(), awsdriver.Config{AWS: static(cloud.URL, servertest.InstanceAWSKey(t, n.Instance))})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}}
	})
}

// TestLoadBalancingContract runs the load balancing contract against fakecloud's ELBv2
// endpoint, signing with the administrator's keys.
func TestLoadBalancingContract(t *testing.T) {
	providertest.RunLoadBalancing(t, func(t *testing.T) providertest.LoadBalancingEnv {
		cloud := servertest.Start(t, servertest.Options{})
		key := servertest.LoadBalancerAWSKey(cloud.LoadBalancerToken(t))
		return providertest.LoadBalancingEnv{Cloud: cloud, New: func(t *testing.T, sn api.Subnet) providers.LoadBalancing {
			d, err := awsdriver.NewLoadBalancing(context.Background(), awsdriver.LBConfig{
				Config: awsdriver.Config{AWS: static(cloud.URL, key)}, SubnetID: sn.SubnetID, PollInterval: 200 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}}
	})
}
