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
// already follows keeps going through it to the end), and a route whose next hop is resolved
// and leads to a pod veth or (from a pod) to a cloud interface. The route is the kernel's own
// (bpf_fib_lookup with the policy rules), so the fast path cannot disagree with the slow one
// about where a packet goes. Everything else continues to the stack unchanged (TCX_NEXT).
//
// Forwarding is what ip_forward does: MACs from the route's neighbour, TTL minus one with the
// header checksum patched. Towards a pod, bpf_redirect_peer hands the packet to the pod's end of
// the veth in the same softirq pass: no second trip through a backlog queue.
//
//go:build ignore

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// tcx verdicts (linux/bpf.h of kernels 6.6+; spelled out for older headers).
#define TCX_NEXT -1
#define TCX_PASS 0

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

struct lpm_v4 {
	__u32 prefixlen;
	__u32 addr;
};

// The VPC's CIDR blocks.
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 64);
	__type(key, struct lpm_v4);
	__type(value, __u8);
} vpc_cidrs SEC(".maps");

// Interfaces the fast path may send to, by ifindex: 1 = pod veth (host side), 2 = cloud interface.
#define LINK_POD 1
#define LINK_CLOUD 2
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} links SEC(".maps");

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
	NO_NEIGHBOUR,
	NO_ROUTE,
	OTHER_DEVICE,
	NOT_FOR_NODE,
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
	struct lpm_v4 key = {.prefixlen = 32, .addr = addr};
	return bpf_map_lookup_elem(&vpc_cidrs, &key) != NULL;
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
	if (ip->ihl != 5 || (ip->frag_off & bpf_htons(IP_MF_OFFSET)))
		return count(IP_OPTIONS_OR_FRAGMENT, TCX_NEXT);
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return count(NOT_TCP_UDP, TCX_NEXT);
	if (ip->ttl <= 1)
		return count(TTL_EXPIRING, TCX_NEXT);
	if (!in_vpc(ip->saddr) || !in_vpc(ip->daddr))
		return count(OUTSIDE_VPC, TCX_NEXT);

	struct bpf_sock_tuple tuple = {};
	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	tuple.ipv4.sport = ports[0];
	tuple.ipv4.dport = ports[1];
	struct bpf_ct_opts opts = {.netns_id = BPF_F_CURRENT_NETNS, .l4proto = ip->protocol};
	struct nf_conn *ct = bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		return count(CONNTRACK, TCX_NEXT);
	}

	// The packet pointers do not survive helper calls that may touch the packet; the lookups
	// above do not, but re-derive them before writing to stay independent of that.
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return count(NOT_IPV4, TCX_NEXT);

	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.sport = tuple.ipv4.sport;
	fib.dport = tuple.ipv4.dport;
	fib.tot_len = 0; // 0: the kernel checks this skb (GSO-aware) against the egress MTU
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = skb->ingress_ifindex;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return count(NO_NEIGHBOUR, TCX_NEXT);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return count(NO_ROUTE, TCX_NEXT);
	__u32 oif = fib.ifindex;
	__u8 *kind = bpf_map_lookup_elem(&links, &oif);
	if (!kind || (*kind == LINK_CLOUD && !from_pod) || (*kind != LINK_POD && *kind != LINK_CLOUD))
		return count(OTHER_DEVICE, TCX_NEXT);
	__u8 to = *kind;

	// What ip_forward does to the packet: new MACs, TTL minus one (RFC 1624 checksum update).
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	__u32 sum = (__u32)ip->check + (__u32)bpf_htons(0x0100);
	ip->check = (__u16)(sum + (sum >= 0xffff));
	ip->ttl--;

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
