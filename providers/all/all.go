// Package all is the one place that lists the cloud drivers the binaries carry: cmd/ and the
// lab's wiring take their registry from here, so adding a cloud is a driver package plus one
// line below. Consumers (ipamd, lbcontroller) never import it: they are handed a registry or a
// built driver.
package all

import (
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/aws"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

// Registry returns a registry of every driver, by --cloud name.
func Registry() *providers.Registry {
	return providers.NewRegistry(
		fakecloud.Driver,
		aws.Driver(),
		// Register further clouds here.
	)
}
