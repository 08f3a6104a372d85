package providers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/providers"
)

func TestRegistry(t *testing.T) {
	var got providers.Settings
	reg := providers.NewRegistry(
		providers.Driver{Name: "cloudb", NewIPAM: func(_ context.Context, s providers.Settings) (providers.IPAM, error) {
			got = s
			return failing{}, nil
		}},
		providers.Driver{Name: "clouda",
			NewIPAM: func(context.Context, providers.Settings) (providers.IPAM, error) {
				return nil, errors.New("no endpoint")
			},
			NewLoadBalancing: func(context.Context, providers.Settings) (providers.LoadBalancing, error) { return nil, nil },
		},
	)
	ctx := context.Background()
	if names := strings.Join(reg.Names(), ","); names != "clouda,cloudb" {
		t.Errorf("names %s", names)
	}
	s := providers.Settings{Endpoint: "https://cloud.example", Region: "r1", Credentials: providers.Credentials{Token: "t"}}
	if _, err := reg.IPAM(ctx, "cloudb", s); err != nil || got.Endpoint != s.Endpoint || got.Credentials != s.Credentials {
		t.Errorf("cloudb: %v, settings %+v", err, got)
	}
	for _, tc := range []struct {
		name, cloud, want string
		lb                bool
	}{
		{"unknown cloud lists the known", "gce", `cloud "gce" is unknown: this binary has IPAM drivers for clouda, cloudb (--cloud)`, false},
		{"unknown for load balancing", "", `cloud "" is unknown: this binary has load balancing drivers for clouda (--cloud)`, true},
		{"known cloud without the driver", "cloudb", `cloud "cloudb" has no load balancing driver: use one of clouda (--cloud)`, true},
		{"constructor's error names the cloud", "clouda", "cloud clouda: no endpoint", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.lb {
				_, err = reg.LoadBalancing(ctx, tc.cloud, s)
			} else {
				_, err = reg.IPAM(ctx, tc.cloud, s)
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("err %v; want %q", err, tc.want)
			}
		})
	}
}

func TestRegistryRefusesTwoDriversOfOneName(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for two drivers named a")
		}
	}()
	providers.NewRegistry(providers.Driver{Name: "a"}, providers.Driver{Name: "a"})
}
