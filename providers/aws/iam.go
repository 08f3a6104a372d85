package aws

import (
	"embed"
	"fmt"
)

// policies are the least-privilege IAM policies of the two components (docs/providers.md shows
// them): ipamd's instance role may describe, create interfaces only tagged flatnet.io/node, and
// attach, detach, change and delete only interfaces carrying that tag; lbcontroller may create
// load balancers and target groups only tagged flatnet.io/cluster and change or delete only
// those. TestPolicyCoversCalls checks that every operation the driver calls is allowed.
//
//go:embed iam/*.json
var policies embed.FS

// Policy returns the IAM policy document of a component: "ipamd" or "lbcontroller".
func Policy(component string) ([]byte, error) {
	b, err := policies.ReadFile("iam/" + component + ".json")
	if err != nil {
		return nil, fmt.Errorf("no IAM policy for %q: the components are ipamd and lbcontroller", component)
	}
	return b, nil
}
