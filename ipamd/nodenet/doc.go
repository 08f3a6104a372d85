// Package nodenet programs a node's side of the pod datapath, the part ipamd owns: kernel
// settings (forwarding, loose reverse-path filtering), SNAT of pod traffic leaving the VPC to the
// node's primary IP (nftables, table "ip flatnet"), and, for every secondary cloud interface, a
// route table whose default route leaves through that interface plus the rule that keeps the
// interface's own traffic symmetric. Per-pod links, routes and rules belong to the CNI plugin.
//
// Everything is converged by diff against what the kernel holds, so calling any method again, or
// after a restart, changes nothing that is already right and never interrupts established flows.
//
// # What it programs
//
//   - sysctls: net.ipv4.ip_forward=1; rp_filter=2 (loose) on all, default and each cloud interface,
//     because with a table per interface a pod's packets may come in on one link and go back out of
//     another.
//   - nftables (google/nftables over netlink, no nft binary needed), when SNAT is on; see below.
//   - per secondary interface N (DeviceIndex > 0), table TableBase+N (default 100+N):
//     "SUBNET dev ethN scope link src IP" and "default via GATEWAY dev ethN", and the rule
//     "from IP lookup TableBase+N" at wire.PriorityFromPod.
//
// # SNAT
//
// With SNAT on, the table is (MARK is Config.Mark, PRIMARY is Config.PrimaryIP):
//
//	table ip flatnet {
//		set nosnat { type ipv4_addr; flags interval; elements = { VPC CIDRs, exclusions } }
//		chain prerouting { type filter hook prerouting priority dstnat + 10; policy accept;
//			ip daddr != @nosnat meta mark set meta mark | MARK }
//		chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//			meta mark & MARK == MARK ip daddr != @nosnat snat to PRIMARY fully-random }
//	}
//
// together with the policy rule "fwmark MARK/MARK lookup main" at PrioritySNATToMain (between
// wire.PriorityToPod and wire.PriorityFromPod). The mark is what makes SNAT to the primary IP
// correct for pods on secondary interfaces: their "from pod lookup <table>" rule would send
// internet-bound packets out of the secondary interface, where a source of the primary IP fails
// the cloud's source/destination check. Marked packets use the main table instead and leave
// through the primary interface. Only forwarded packets pass prerouting, so the node's own
// traffic is neither marked nor SNATed. The mark is set after DNAT, so it follows the address a
// packet really goes to: a pod on a secondary interface reaching a ClusterIP (kube-proxy's DNAT)
// whose backend is inside the VPC keeps its interface's route. With SNAT off (Config.ExternalSNAT), the table and the
// rule are removed and pods on secondary interfaces egress through their own interface.
//
// Converging the table happens in one nf_tables transaction: nothing when it matches; the set's
// elements and/or the rules of a chain refreshed when they differ (rules are compared by the
// comment each carries, which states every parameter); the whole table deleted and recreated
// when its shape is wrong. The kernel applies a transaction atomically and conntrack (with every
// NAT binding) is untouched, so established flows survive.
//
// Removing the table (SNAT turned off, Cleanup) is the one change that disturbs flows: the snat
// rule's nat expression holds conntrack on in the namespace, and when nothing else (kube-proxy,
// another nat table) does, established SNATed flows lose their translation.
//
// Routes and rules nodenet makes carry the routing protocol number Protocol, which is how
// State, RemoveInterface and Cleanup recognise them. Sysctls are not reverted by Cleanup: other
// software on the node may rely on forwarding.
package nodenet
