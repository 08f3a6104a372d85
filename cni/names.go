package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// linkAlias is the marker set on the host veth: flatnet/<network>/<containerID>/<ifName>. GC
// reads the network from it and ipamd's start-up pod check the whole owner, so ADD refuses an
// owner whose alias would not fit in IFALIASZ (aliasFits) rather than cut it.
func linkAlias(o wire.Owner) string {
	return aliasPrefix + o.Network + "/" + o.ContainerID + "/" + o.IfName
}

// aliasFits reports whether the owner's marker fits in a link alias.
func aliasFits(o wire.Owner) error {
	if n := len(linkAlias(o)); n > maxAlias {
		return fmt.Errorf("network name, CNI_CONTAINERID and CNI_IFNAME make a %d-character link alias; at most %d fit", n, maxAlias)
	}
	return nil
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
