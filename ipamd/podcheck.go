package ipamd

import (
	"context"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// PodChecker judges, at start-up, whether the pod behind an allocation still exists. An error
// means "cannot tell": the allocation is kept.
type PodChecker interface {
	Alive(ctx context.Context, owners []wire.Owner) (map[wire.Owner]bool, error)
}

// AllAlive trusts the record: allocations of vanished pods are left to the runtime's CNI GC.
type AllAlive struct{}

// Alive implements PodChecker.
func (AllAlive) Alive(_ context.Context, owners []wire.Owner) (map[wire.Owner]bool, error) {
	out := make(map[wire.Owner]bool, len(owners))
	for _, o := range owners {
		out[o] = true
	}
	return out, nil
}

// LinkChecker finds live pods by their host-side veth: the CNI plugin sets each one's alias to
// "flatnet/<network>/<containerID>/<ifName>". A pod whose link is gone was deleted while
// ipamd was down and its release never arrived.
type LinkChecker struct{}

// linkAliasPrefix is the CNI plugin's marker (cni/names.go).
const linkAliasPrefix = "flatnet/"

// Alive implements PodChecker.
func (LinkChecker) Alive(_ context.Context, owners []wire.Owner) (map[wire.Owner]bool, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, l := range links {
		if a, ok := strings.CutPrefix(l.Attrs().Alias, linkAliasPrefix); ok {
			live[a] = true
		}
	}
	out := make(map[wire.Owner]bool, len(owners))
	for _, o := range owners {
		out[o] = live[o.Network+"/"+o.ContainerID+"/"+o.IfName]
	}
	return out, nil
}

func podChecker(name string) PodChecker {
	if name == "link" {
		return LinkChecker{}
	}
	return AllAlive{}
}
