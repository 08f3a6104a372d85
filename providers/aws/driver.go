package aws

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/flatnet/flatnet/providers"
)

// Driver is the AWS driver's registry entry (--cloud aws).
func Driver() providers.Driver {
	return providers.Driver{
		Name: Name,
		NewIPAM: func(ctx context.Context, s providers.Settings) (providers.IPAM, error) {
			return NewIPAM(ctx, fromSettings(s))
		},
		NewLoadBalancing: func(ctx context.Context, s providers.Settings) (providers.LoadBalancing, error) {
			return NewLoadBalancing(ctx, LBConfig{Config: fromSettings(s), SubnetID: s.SubnetID})
		},
	}
}

// fromSettings reads the seam's settings: a credentials file is an AWS shared-credentials
// file; a token means nothing to AWS and is ignored (ipamd finds fakecloud's in the metadata
// service whatever the cloud).
func fromSettings(s providers.Settings) Config {
	c := Config{Region: s.Region, Endpoint: s.Endpoint}
	if s.Observe != nil {
		c.Observe = s.Observe
	}
	if s.Credentials.File != "" {
		c.extra = append(c.extra, config.WithSharedCredentialsFiles([]string{s.Credentials.File}))
	}
	return c
}
