package fabric

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// DefaultPrefix starts the name of every namespace the fabric creates, so that Down can find them.
const DefaultPrefix = "fc-"

// Addresses and names every VPC router shares. They exist only inside lab namespaces.
const (
	// MetadataAddr is the link-local address of the metadata service and the in-VPC API.
	MetadataAddr = "169.254.169.254"
	// MetadataPort serves /latest/meta-data/ like EC2's instance metadata service.
	MetadataPort = 80
	// APIPort serves the fakecloud API (Config.APIHandler) inside the VPC.
	APIPort = 7474
	// InternetHostAddr is the public test address of each VPC's internet namespace.
	InternetHostAddr = "203.0.113.1"
	// internetRouterAddr is the router's side of the link to the internet namespace.
	internetRouterAddr = "203.0.113.254"
	internetPrefixLen  = 24
	// internetLink is the router's link to the internet namespace; the internet side is eth0.
	internetLink = "inet0"
	// sinkLink swallows packets to addresses of the VPC that no interface holds.
	sinkLink = "sink0"
)

// APIEndpoint is the URL nodes use to reach the fakecloud API from inside the VPC.
func APIEndpoint() string { return fmt.Sprintf("http://%s:%d", MetadataAddr, APIPort) }

// RouterNetns names the router namespace of a VPC.
func RouterNetns(prefix, vpcID string) string { return prefix + "r-" + vpcID }

// InternetNetns names the internet namespace hanging off a VPC's router.
func InternetNetns(prefix, vpcID string) string { return prefix + "i-" + vpcID }

// NodeNetns names the namespace of an instance; the lab runs the node's software inside it.
func NodeNetns(prefix, instanceID string) string { return prefix + "n-" + instanceID }

// LBNetns names the namespace of a load balancer.
func LBNetns(prefix, lbID string) string { return prefix + "l-" + lbID }

// nsKind classifies a namespace name made by the functions above.
func nsKind(prefix, name string) (kind byte, id string, ok bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found || len(rest) < 3 || rest[1] != '-' {
		return 0, "", false
	}
	switch rest[0] {
	case 'r', 'i', 'n', 'l':
		return rest[0], rest[2:], true
	}
	return 0, "", false
}

// portName names the router's side of an interface's veth: short (IFNAMSIZ is 16) and stable.
func portName(eniID string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(eniID))
	return fmt.Sprintf("fp%013x", h.Sum64()&(1<<52-1))
}

// lbPortName names the router's side of a load balancer's veth (the load balancer's side is eth0).
func lbPortName(lbID string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(lbID))
	return fmt.Sprintf("fl%013x", h.Sum64()&(1<<52-1))
}

// nodeLinkName is the node's name of the interface at a device index, as a cloud image names it.
func nodeLinkName(device int) string { return "eth" + strconv.Itoa(device) }

const aliasTag = "flatnet-fabric"

// portAlias records, on the router's link, which interface, instance and device it stands for,
// and for an instance attached to an existing namespace that namespace's path, so a restarted
// fabric can adopt it, Down can unplug it and `ip link` shows it. The node end of an attached
// port carries the same alias: it is how the fabric tells its links from the namespace owner's.
func portAlias(eni, instance string, device int, netns string) string {
	a := fmt.Sprintf("%s %s %s %d", aliasTag, eni, instance, device)
	if netns != "" {
		a += " " + netns
	}
	return a
}

func parseAlias(alias string) (eni, instance string, device int, netns string, ok bool) {
	f := strings.Fields(alias)
	if len(f) < 4 || len(f) > 5 || f[0] != aliasTag {
		return "", "", 0, "", false
	}
	d, err := strconv.Atoi(f[3])
	if err != nil {
		return "", "", 0, "", false
	}
	if len(f) == 5 {
		netns = f[4]
	}
	return f[1], f[2], d, netns, true
}
