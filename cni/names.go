package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// hostVethPrefix starts every host-side veth flatnet makes; GC lists links by it.
const hostVethPrefix = "fln"

// aliasPrefix starts the alias of every host-side veth flatnet makes: the marker GC needs to
// tell our links from a foreign one that happens to share the prefix, and the owner it belongs
// to. Owner fields never contain '/', so the alias splits without ambiguity.
const aliasPrefix = "flatnet/"

// maxAlias is IFALIASZ (256) less the terminating NUL.
const maxAlias = 255

// maxNetworkName keeps the network in the alias readable whatever the other fields' lengths.
const maxNetworkName = 128

// HostVethName is the host side's name for owner: "fln" and 11 hex digits of a hash of the
// owner, so the same attachment always gets the same name (15 characters, IFNAMSIZ-1).
func HostVethName(o wire.Owner) string {
	sum := sha256.Sum256([]byte(o.Network + "\x00" + o.ContainerID + "\x00" + o.IfName))
	return hostVethPrefix + hex.EncodeToString(sum[:])[:11]
}

// linkAlias is the marker set on the host veth: flatnet/<network>/<containerID>/<ifName>,
// cut at IFALIASZ (the network, which GC reads, always fits).
func linkAlias(o wire.Owner) string {
	a := aliasPrefix + o.Network + "/" + o.ContainerID + "/" + o.IfName
	if len(a) > maxAlias {
		a = a[:maxAlias]
	}
	return a
}

// aliasNetwork returns the network a host veth's alias names, and whether the alias is ours.
func aliasNetwork(alias string) (string, bool) {
	rest, ok := strings.CutPrefix(alias, aliasPrefix)
	if !ok {
		return "", false
	}
	network, _, ok := strings.Cut(rest, "/")
	return network, ok && network != ""
}
