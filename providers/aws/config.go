package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// Name is the driver's --cloud name.
const Name = "aws"

// Config holds what the standard AWS configuration chain does not: everything else (region,
// credentials, endpoint) comes from the environment, the shared files and the instance
// metadata service, as for any AWS program.
type Config struct {
	// Region overrides AWS_REGION and the shared config's region. With neither, the driver
	// asks the instance metadata service (on an instance).
	Region string
	// Endpoint overrides the endpoint of every service (EC2, ELBv2, ACM) (AWS_ENDPOINT_URL does the same through
	// the chain): fakecloud's, or a VPC endpoint.
	Endpoint string
	// Observe, when set, is told every API call: its operation name (EC2's or ELBv2's), how
	// long it took, and its error as the seam sees it.
	Observe func(operation string, took time.Duration, err error)
	// AWS, when set, is used as is instead of loading the chain (tests).
	AWS *aws.Config
	// extra are more options of the chain.
	extra []func(*config.LoadOptions) error
}

// load resolves the AWS configuration.
//
// Retries: the SDK's own retryer is replaced by aws.NopRetryer, so each SDK call is one HTTP
// attempt and the seam's retry wrapper is the only one. Stacked, the SDK's 3 attempts (with
// their own backoff and client-side rate-limit bucket) inside the seam's attempts would multiply
// the calls a throttled account receives, hide throttling from the wrapper's circuit breaker
// and metrics (which see one slow success instead of three throttles), and make the wrapper's
// deadlines and backoff meaningless.
func load(ctx context.Context, c Config) (aws.Config, error) {
	if c.AWS != nil {
		cfg := c.AWS.Copy()
		cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
		return cfg, nil
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithEC2IMDSRegion(),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(c.Endpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(opts, c.extra...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load the AWS configuration (AWS_REGION, AWS_ENDPOINT_URL, AWS_* credentials, ~/.aws, the instance metadata service): %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION, the region flag, or run on an instance whose metadata service answers")
	}
	return cfg, nil
}

// clients are the service clients the driver uses.
type clients struct {
	ec2   *ec2.Client
	elbv2 *elbv2.Client
	acm   *acm.Client
}

func newClients(cfg aws.Config) clients {
	return clients{ec2: ec2.NewFromConfig(cfg), elbv2: elbv2.NewFromConfig(cfg), acm: acm.NewFromConfig(cfg)}
}
