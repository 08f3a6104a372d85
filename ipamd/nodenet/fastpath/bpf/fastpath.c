// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// flatnet's node fast path: two tcx ingress programs that forward pod traffic inside the VPC
// without the node's IP stack, the way the stack itself would have forwarded it.
//
//   from_pod   on the host side of every pod veth: a packet a pod sent.
//   from_cloud on every cloud interface (ENI) of the node: a packet the VPC delivered.
//
// A packet takes the fast path only when the stack would do nothing to it but route it: IPv4,
// TCP or UDP, no IP options, not a fragment, TTL above 1, source and destination both inside
// the VPC (so SNAT never applies), no conntrack entry for its flow in the node's namespace (so
// no NAT binding of kube-proxy, hostPort or anything else is skipped, and a flow conntrack
// already follows keeps going through it to the end), and a route that leads to a pod veth or
// (from a pod) to a cloud interface. The route is the kernel's own (bpf_fib_lookup with the
// policy rules), so the fast path cannot disagree with the stack about where a packet goes; a
// next hop whose MAC is not known yet is resolved by the neighbour subsystem
// (bpf_redirect_neigh) rather than left to the stack. Everything else continues to the stack
// unchanged (TCX_NEXT).
//
// Forwarding is what ip_forward does: TTL minus one with the header checksum patched, MACs from
// the route's neighbour, written through helpers only (see forward()). Towards a pod,
// bpf_redirect_peer hands the packet to the pod's end of the veth in the same softirq pass: no
// second trip through a backlog queue.
//
//go:build ignore

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <stddef.h>

// tcx verdicts (linux/bpf.h of kernels 6.6+; spelled out for older headers).
#define TCX_NEXT -1
#define TCX_DROP 2

#define AF_INET 2
#define IP_MF_OFFSET 0x3fff

// The conntrack kfuncs (net/netfilter/nf_conntrack_bpf.c). The options are the 12-byte form
// every kernel with these kfuncs accepts. nf_conn is never looked into; it is declared as a
// struct (not a forward declaration) so that its type matches the kernel's when the loader
// checks the kfunc's signature.
struct nf_conn {
	__u64 unused;
};
struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u8 reserved[2];
};
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple_len,
					 struct bpf_ct_opts *opts, __u32 opts_len) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

// The VPC's CIDR blocks, set by the loader before the program is loaded (constants: a few
// compares cost less than a trie lookup). Network byte order, as in the packet.
#define MAX_VPC_CIDRS 16
volatile const __u32 vpc_net[MAX_VPC_CIDRS];
volatile const __u32 vpc_mask[MAX_VPC_CIDRS];
volatile const __u32 vpc_count;

// Interfaces the fast path may send to, by ifindex: 1 = pod veth (host side), 2 = cloud interface.
#define LINK_POD 1
#define LINK_CLOUD 2
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} links SEC(".maps");

// The node's own addresses (its cloud interfaces' primary IPs): traffic for them is the
// node's, and this one lookup lets it go on without the route lookup.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} node_addrs SEC(".maps");

// Verdict counters; the order is the Go side's verdictNames.
enum verdict {
	TO_POD,
	TO_CLOUD,
	NOT_IPV4,
	NOT_TCP_UDP,
	IP_OPTIONS_OR_FRAGMENT,
	TTL_EXPIRING,
	OUTSIDE_VPC,
	CONNTRACK,
	RESOLVING_NEIGHBOUR,
	NO_ROUTE,
	OTHER_DEVICE,
	NOT_FOR_NODE,
	FOR_NODE,
	REWRITE_FAILED,
	VERDICTS,
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICTS);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

static __always_inline int count(__u32 v, int ret)
{
	__u64 *n = bpf_map_lookup_elem(&verdicts, &v);
	if (n)
		(*n)++;
	return ret;
}

static __always_inline int in_vpc(__u32 addr)
{
	for (int i = 0; i < MAX_VPC_CIDRS; i++) {
		if (i >= vpc_count)
			return 0;
		if ((addr & vpc_mask[i]) == vpc_net[i])
			return 1;
	}
	return 0;
}

static __always_inline int forward(struct __sk_buff *skb, int from_pod)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 *ports = (void *)(ip + 1);

	if ((void *)(ports + 2) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return count(NOT_IPV4, TCX_NEXT);
	if (skb->pkt_type != PACKET_HOST)
		return count(NOT_FOR_NODE, TCX_NEXT);
	if (bpf_map_lookup_elem(&node_addrs, &ip->daddr))
		return count(FOR_NODE, TCX_NEXT);
	if (ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_MF_OFFSET)))
		return count(IP_OPTIONS_OR_FRAGMENT, TCX_NEXT);
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return count(NOT_TCP_UDP, TCX_NEXT);
	if (ip->ttl <= 1)
		return count(TTL_EXPIRING, TCX_NEXT);
	if (!in_vpc(ip->saddr) || !in_vpc(ip->daddr))
		return count(OUTSIDE_VPC, TCX_NEXT);

	__u32 saddr = ip->saddr, daddr = ip->daddr;
	__u16 sport = ports[0], dport = ports[1];
	__u8 proto = ip->protocol;
	__u8 ttl = ip->ttl;

	// The route first: it also settles the cheap cases (a packet for the node itself, which is
	// most of what arrives on a cloud interface that is not for a pod) before conntrack is asked.
	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = proto;
	fib.sport = sport;
	fib.dport = dport;
	fib.tot_len = 0; // 0: the kernel checks this skb (GSO-aware) against the egress MTU
	fib.ipv4_src = saddr;
	fib.ipv4_dst = daddr;
	fib.ifindex = skb->ingress_ifindex;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return count(NO_ROUTE, TCX_NEXT);
	__u32 oif = fib.ifindex;
	__u8 *kind = bpf_map_lookup_elem(&links, &oif);
	if (!kind)
		return count(OTHER_DEVICE, TCX_NEXT);
	__u8 to = *kind;
	if (to != LINK_POD && !(to == LINK_CLOUD && from_pod))
		return count(OTHER_DEVICE, TCX_NEXT); // e.g. back out to the cloud: the stack's business

	// The flow as the packet names it (the lookup rewrote fib.ipv4_dst to the next hop).
	struct bpf_sock_tuple tuple = {};
	tuple.ipv4.saddr = saddr;
	tuple.ipv4.daddr = daddr;
	tuple.ipv4.sport = sport;
	tuple.ipv4.dport = dport;
	struct bpf_ct_opts opts = {.netns_id = BPF_F_CURRENT_NETNS, .l4proto = proto};
	struct nf_conn *ct = bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		return count(CONNTRACK, TCX_NEXT);
	}

	// What ip_forward does to the packet: TTL minus one (RFC 1624 checksum update), new MACs.
	// Through helpers, not direct writes: a program that writes packet data directly gets a
	// prologue that makes every packet's head private, and most skbs here are clones (TCP
	// keeps the original for retransmission), so every packet, forwarded or not, would be
	// copied. The helpers copy only the packets that are forwarded, as ip_forward does.
	__u16 old_word = bpf_htons((__u16)ttl << 8 | proto);
	__u16 new_word = bpf_htons((__u16)(ttl - 1) << 8 | proto);
	__u8 new_ttl = ttl - 1;
	// The first write makes the packet writable; if that fails nothing has changed and the
	// stack can have it. After it, a failure would leave the packet half rewritten: drop it.
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_word, new_word, sizeof(new_word)))
		return count(REWRITE_FAILED, TCX_NEXT);
	if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &new_ttl, sizeof(new_ttl), 0))
		return count(REWRITE_FAILED, TCX_DROP);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		// The next hop's MAC is not known yet (a pod's first packets, an expired entry): the
		// neighbour subsystem resolves it and sends the packet on, queued meanwhile. Leaving
		// the packet to the stack instead would put its flow into conntrack, and with that the
		// rest of the flow on the stack.
		struct bpf_redir_neigh nh = {.nh_family = AF_INET, .ipv4_nh = fib.ipv4_dst};
		return count(RESOLVING_NEIGHBOUR, bpf_redirect_neigh(oif, &nh, sizeof(nh), 0));
	}
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0))
		return count(REWRITE_FAILED, TCX_DROP);

	if (to == LINK_POD)
		return count(TO_POD, bpf_redirect_peer(oif, 0));
	return count(TO_CLOUD, bpf_redirect(oif, 0));
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	return forward(skb, 1);
}

SEC("tc")
int from_cloud(struct __sk_buff *skb)
{
	return forward(skb, 0);
}

char __license[] SEC("license") = "Dual MIT/GPL";
