package fakecloud_test

import (
	"context"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
	"github.com/flatnet/flatnet/providers/providertest"
)

// TestIPAMContract runs the driver contract on fakecloud's JSON API, as ipamd uses it: built
// from the registry's Settings, with the instance's token.
func TestIPAMContract(t *testing.T) {
	providertest.RunIPAM(t, func(t *testing.T) providertest.IPAMEnv {
		cloud := servertest.Start(t, servertest.Options{})
		return providertest.IPAMEnv{Cloud: cloud, New: func(t *testing.T, n providertest.Node) providers.IPAM {
			d, err := fakecloud.Driver.NewIPAM(context.Background(), providers.Settings{
				Endpoint: cloud.URL, Credentials: providers.Credentials{Token: n.Instance.Token},
			})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}}
	})
}

// TestLoadBalancingContract runs the driver contract on fakecloud's JSON API, as lbcontroller
// uses it: built from the registry's Settings, with the load-balancer token (not the admin's):
// every call of the driver is one the load-balancer principal may make.
func TestLoadBalancingContract(t *testing.T) {
	providertest.RunLoadBalancing(t, func(t *testing.T) providertest.LoadBalancingEnv {
		cloud := servertest.Start(t, servertest.Options{})
		token := cloud.LoadBalancerToken(t).Token
		return providertest.LoadBalancingEnv{Cloud: cloud, New: func(t *testing.T, sn api.Subnet) providers.LoadBalancing {
			d, err := fakecloud.NewLoadBalancing(context.Background(), fakecloud.Config{
				Settings:  providers.Settings{Endpoint: cloud.URL, Credentials: providers.Credentials{Token: token}, SubnetID: sn.SubnetID},
				WatchWait: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}}
	})
}

// TestApplicationLoadBalancingContract runs the application load balancing contract on
// fakecloud's JSON API.
func TestApplicationLoadBalancingContract(t *testing.T) {
	providertest.RunApplicationLoadBalancing(t, func(t *testing.T) providertest.ApplicationLoadBalancingEnv {
		cloud := servertest.Start(t, servertest.Options{})
		token := cloud.LoadBalancerToken(t).Token
		return providertest.ApplicationLoadBalancingEnv{Cloud: cloud, New: func(t *testing.T, sn api.Subnet) providers.ApplicationLoadBalancing {
			d, err := fakecloud.NewLoadBalancing(context.Background(), fakecloud.Config{
				Settings: providers.Settings{Endpoint: cloud.URL, Credentials: providers.Credentials{Token: token}, SubnetID: sn.SubnetID},
			})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}}
	})
}
