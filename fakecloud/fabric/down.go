package fabric

import (
	"errors"
	"fmt"

	"github.com/flatnet/flatnet/internal/netns"
)

// Down removes every namespace whose name starts with prefix (DefaultPrefix when empty): nodes
// and load balancers first, then routers and internets. Their veth pairs, routes, neighbour
// entries and nftables tables go with them; the fabric creates nothing else and never touches
// the root namespace. Namespaces attached to instances (Attachment) are never deleted: first the
// ports into them are unplugged (the router ports' aliases name them), which takes the fabric's
// links, with their addresses and routes, out of them at once. Down is safe to run while nothing
// is up and after a crash.
func Down(prefix string) error {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	names, err := netns.List(prefix)
	if err != nil {
		return fmt.Errorf("fabric down: %w", err)
	}
	errs := []error{unplugAttached(prefix, names)}
	for _, pass := range []byte{'n', 'l', 'r', 'i'} {
		for _, name := range names {
			if kind, _, ok := nsKind(prefix, name); ok && kind == pass {
				errs = append(errs, netns.Delete(name))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fabric down: %w", err)
	}
	return nil
}
