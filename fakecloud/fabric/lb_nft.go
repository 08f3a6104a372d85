package fabric

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// The nftables table a load balancer's namespace runs. Its chains never change shape, so every
// program is "add" (a no-op when present) plus flush-and-refill of the chains in one netlink
// batch (lb_nftnl.go): packets see the old rules or the new ones, the chains stay hooked, and
// conntrack keeps every established connection on the target it was sent to.
const (
	lbTable      = "flatnet_lb"
	lbChainGuard = "guard"     // drops new connections from outside the allowed sources
	lbChainDNAT  = "to_target" // picks a target for each new connection
	lbChainSNAT  = "from_lb"   // makes the load balancer the target's peer
	// lbChainProgram is an application load balancer's chain for the program's hash: a regular
	// chain (no hook) that nothing jumps to, so it costs packets nothing.
	lbChainProgram = "program"
	lbHashTag      = "flatnet-lb program "
)

// RenderLBProgram is the nft script that makes a load balancer's namespace enforce prog, and the
// program's hash, which the script carries in a comment. It is pure. Nothing runs the script:
// the fabric programs lbRulesetOf, its netlink form, and the script is what the hash covers
// and what a person reads.
//
// New connections to a VIP on a listener's port are DNATed to its targets in turn (numgen inc
// over an anonymous map) and SNATed to the private address, so replies come back through the
// load balancer. A listener without targets has no rule: the namespace itself answers with a
// reset (TCP) or port unreachable (UDP), as a load balancer with nothing behind it does.
//
// An application load balancer's program (prog.App) is only the guard: the table is deleted and
// made again in the same transaction (which also drops the NAT chains an older program left),
// with no NAT chain, so the namespace runs no conntrack unless the guard has source ranges (its
// "ct state new" needs it). The hash goes in chain program, which no packet enters.
func RenderLBProgram(prog LBProgram) (script, hash string) {
	if prog.App {
		return renderAppProgram(prog)
	}
	var b strings.Builder
	t := "ip " + lbTable
	fmt.Fprintf(&b, "add table %s\n", t)
	fmt.Fprintf(&b, "add chain %s %s { type filter hook prerouting priority -150 ; policy accept ; }\n", t, lbChainGuard)
	fmt.Fprintf(&b, "add chain %s %s { type nat hook prerouting priority -100 ; policy accept ; }\n", t, lbChainDNAT)
	fmt.Fprintf(&b, "add chain %s %s { type nat hook postrouting priority 100 ; policy accept ; }\n", t, lbChainSNAT)
	for _, c := range []string{lbChainGuard, lbChainDNAT, lbChainSNAT} {
		fmt.Fprintf(&b, "flush chain %s %s\n", t, c)
	}
	vips := nftSet(prog.VIPs)
	if len(prog.Allowed) > 0 {
		fmt.Fprintf(&b, "add rule %s %s ct state new ip daddr %s ip saddr != %s drop comment \"source ranges\"\n",
			t, lbChainGuard, vips, nftSet(prog.Allowed))
	}
	for _, l := range prog.Listeners {
		if len(l.Targets) == 0 {
			continue
		}
		elems := make([]string, len(l.Targets))
		for i, tg := range l.Targets {
			elems[i] = fmt.Sprintf("%d : %s . %d", i, tg.IP, tg.Port)
		}
		fmt.Fprintf(&b, "add rule %s %s ip daddr %s %s dport %d dnat ip to numgen inc mod %d map { %s } comment \"%s/%d\"\n",
			t, lbChainDNAT, vips, l.Protocol, l.Port, len(l.Targets), strings.Join(elems, ", "), l.Protocol, l.Port)
	}
	fmt.Fprintf(&b, "add rule %s %s ct status dnat snat ip to %s comment \"%s%s\"\n", t, lbChainSNAT, prog.Addr, lbHashTag, hashPlaceholder)
	// The hash covers everything above; the comment carrying it is filled in last.
	hash = programHash(b.String())
	return strings.Replace(b.String(), hashPlaceholder, hash, 1), hash
}

// renderAppProgram is RenderLBProgram for an application load balancer.
func renderAppProgram(prog LBProgram) (script, hash string) {
	var b strings.Builder
	t := "ip " + lbTable
	fmt.Fprintf(&b, "add table %s\ndelete table %s\nadd table %s\n", t, t, t)
	fmt.Fprintf(&b, "add chain %s %s { type filter hook prerouting priority -150 ; policy accept ; }\n", t, lbChainGuard)
	fmt.Fprintf(&b, "add chain %s %s\n", t, lbChainProgram)
	if len(prog.Allowed) > 0 {
		fmt.Fprintf(&b, "add rule %s %s ct state new ip daddr %s ip saddr != %s drop comment \"source ranges\"\n",
			t, lbChainGuard, nftSet(prog.VIPs), nftSet(prog.Allowed))
	}
	fmt.Fprintf(&b, "add rule %s %s accept comment \"%s%s\"\n", t, lbChainProgram, lbHashTag, hashPlaceholder)
	hash = programHash(b.String())
	return strings.Replace(b.String(), hashPlaceholder, hash, 1), hash
}

const hashPlaceholder = "@HASH@"

// programHash names a rendered program; it is written into the table so a restarted fabric can
// tell whether what the kernel runs is what it wants.
func programHash(script string) string {
	sum := sha256.Sum256([]byte(script))
	return hex.EncodeToString(sum[:8])
}

var lbHashRe = regexp.MustCompile(regexp.QuoteMeta(lbHashTag) + `([0-9a-f]{16})`)

// parseProgramHash finds the program hash in a rule comment, or in a script or `nft list`
// output ("" if absent).
func parseProgramHash(listing string) string {
	m := lbHashRe.FindStringSubmatch(listing)
	if m == nil {
		return ""
	}
	return m[1]
}

// nftSet renders addresses or prefixes as an anonymous nft set.
func nftSet[T netip.Addr | netip.Prefix](items []T) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = any(it).(fmt.Stringer).String()
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}
