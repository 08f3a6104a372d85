package l7

import "net/netip"

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
