package cni

import (
	"strings"
	"testing"

	"github.com/flatnet/flatnet/ipamd/wire"
)

func TestAliasNetwork(t *testing.T) {
	for _, o := range []wire.Owner{
		{Network: "flatnet", ContainerID: "abc", IfName: "eth0"},
		{Network: "net_a", ContainerID: "x", IfName: "eth1"},
		{Network: strings.Repeat("n", maxNetworkName), ContainerID: strings.Repeat("c", 110), IfName: "eth0"},
	} {
		alias := linkAlias(o)
		if err := aliasFits(o); err != nil {
			t.Fatalf("alias of %+v: %v", o, err)
		}
		if got, ok := aliasNetwork(alias); !ok || got != o.Network {
			t.Fatalf("aliasNetwork(%q) = %q, %v; want %q", alias, got, ok, o.Network)
		}
	}
	if err := aliasFits(wire.Owner{Network: strings.Repeat("n", maxNetworkName), ContainerID: strings.Repeat("c", 120), IfName: "eth0"}); err == nil {
		t.Fatal("a 262-character alias fits?")
	}
	for _, foreign := range []string{"", "flatnet", "flatnet/", "something else"} {
		if _, ok := aliasNetwork(foreign); ok {
			t.Fatalf("aliasNetwork(%q) claims a foreign alias", foreign)
		}
	}
}
