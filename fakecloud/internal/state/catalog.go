package state

import (
	"sort"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// catalog holds the instance types fakecloud launches, with the network limits of
// docs/cloud-reference.md (and EC2's published figures for the few extra small types).
var catalog = map[string]api.InstanceTypeInfo{}

// maxIPv4PerInterface is the largest per-interface limit of any type: the ceiling for an
// interface that is not attached (EC2 checks the instance's limit again at attach).
const maxIPv4PerInterface = 50

func init() {
	for _, t := range []struct {
		names     []string
		enis, ips int
	}{
		{[]string{"t3.nano", "t3.micro"}, 2, 2},
		{[]string{"t3.small"}, 3, 4},
		{[]string{"t3.medium"}, 3, 6},
		{[]string{"t3.large"}, 3, 12},
		{[]string{"t3.xlarge", "t3.2xlarge"}, 4, 15},
		{[]string{"m5.large", "c5.large"}, 3, 10},
		{[]string{"m5.xlarge", "m5.2xlarge", "c5.xlarge", "c5.2xlarge"}, 4, 15},
		{[]string{"m5.4xlarge", "c5.4xlarge", "m5.8xlarge"}, 8, 30},
		{[]string{"m5.16xlarge", "m5.24xlarge", "c5.18xlarge"}, 15, 50},
	} {
		for _, n := range t.names {
			catalog[n] = api.InstanceTypeInfo{
				InstanceType: n, MaximumNetworkInterfaces: t.enis, Ipv4AddressesPerInterface: t.ips,
			}
		}
	}
}

func catalogNames() []string {
	names := make([]string, 0, len(catalog))
	for n := range catalog {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
