// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * xdpvs steering program: send to the queue's AF_XDP socket only the frames
 * the balancer owns, pass everything else (ARP, IPv6 ND, ping and ssh to the
 * host, the host's own connections, other protocols) to the kernel untouched.
 *
 * Only untagged frames addressed to the interface's own MAC (`self_mac`)
 * are the balancer's: broadcast, another host's address or a VLAN tag pass.
 * IPv6 extension headers (hop-by-hop, routing, destination options, AH,
 * fragment) are walked to the transport header. Fragments addressed to a
 * VIP or a FULLNAT local address go to the balancer, which holds them
 * until their datagram is complete and forwards them; the kernel must not
 * answer them from the VIP.
 *
 * Owned, by the `owned` map (kept in step with the service table by the
 * daemon):
 *   KIND_SERVICE  dst (family, proto, addr, port)  or port 0 = every port
 *   KIND_LOCAL    dst (family, addr)               FULLNAT local address
 *   KIND_REAL     src (family, proto, addr, port)  or port 0: NAT replies;
 *                 proto 255, port 0: the real server's ICMP errors
 *   KIND_VIP      dst (family, addr)               ICMP errors to a VIP
 *   KIND_HOST     dst (family, addr)               the host's own addresses:
 *                 replies to its own connections, never the balancer's
 * ICMP errors go to the balancer when they are addressed to a VIP or a
 * local address, or come from a real server about something not sent by
 * the host itself; other ICMP stays with the kernel.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define KIND_SERVICE 1
#define KIND_VIP 2
#define KIND_LOCAL 3
#define KIND_REAL 4
#define KIND_HOST 5

struct owned_key {
	__u8 kind;
	__u8 family; /* 4 or 6 */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP, 0 for address-only kinds */
	__u8 pad;
	__u16 port;  /* network order; 0 = every port */
	__u16 pad2;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct owned_key);
	__type(value, __u8);
} owned SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* The interface's MAC in the low 48 bits (byte 0 first); 0: not set yet. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} self_mac SEC(".maps");

/* Per-CPU counters: 0 redirected, 1 passed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Until this CLOCK_MONOTONIC time (ns), traffic the balancer owns is
 * dropped, not passed, when no AF_XDP socket is bound: the gap while the
 * daemon restarts (a passed SYN or segment would be answered by the
 * kernel's RST). xdpvs keeps it a few seconds ahead while it runs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hold_until SEC(".maps");

static __always_inline int count(int verdict_redirect)
{
	__u32 k = verdict_redirect ? 0 : 1;
	__u64 *c = bpf_map_lookup_elem(&counters, &k);

	if (c)
		*c += 1;
	return 0;
}

static __always_inline int has(struct owned_key *k)
{
	return bpf_map_lookup_elem(&owned, k) != 0;
}

/* Service or real-server lookup: exact port, then port 0. */
static __always_inline int has_port(struct owned_key *k, __u16 port)
{
	k->port = port;
	if (has(k))
		return 1;
	k->port = 0;
	return has(k);
}

/* The frame is addressed to this interface (or nothing is known yet). */
static __always_inline int for_me(struct ethhdr *eth)
{
	__u32 zero = 0;
	__u64 *mine = bpf_map_lookup_elem(&self_mac, &zero);
	__u64 dst = 0;

	if (!mine || !*mine)
		return 1;
	__builtin_memcpy(&dst, eth->h_dest, 6);
	return dst == *mine;
}

struct ext_hdr {
	__u8 next;
	__u8 len;
};

static __always_inline int icmp_error(__u8 family, __u8 type)
{
	if (family == 4)
		return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
	return type >= 1 && type <= 4;
}

SEC("xdp")
int xdpvs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct owned_key k = {};
	__u8 src[16] = {}, dst[16] = {};
	__u16 h_proto;
	__u8 proto, family;
	void *l4;
	int frag = 0;

	if ((void *)(eth + 1) > end || !for_me(eth))
		goto pass;
	h_proto = eth->h_proto;
	l4 = eth + 1;
	if (h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l4;

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			goto pass;
		family = 4;
		proto = ip->protocol;
		__builtin_memcpy(src, &ip->saddr, 4);
		__builtin_memcpy(dst, &ip->daddr, 4);
		frag = ip->frag_off & bpf_htons(0x3fff);
		l4 = (void *)ip + ip->ihl * 4;
	} else if (h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l4;
		int i;

		if ((void *)(ip6 + 1) > end)
			goto pass;
		family = 6;
		proto = ip6->nexthdr;
		__builtin_memcpy(src, &ip6->saddr, 16);
		__builtin_memcpy(dst, &ip6->daddr, 16);
		l4 = ip6 + 1;
#pragma unroll
		for (i = 0; i < 6; i++) {
			struct ext_hdr *h = l4;

			if (proto != IPPROTO_HOPOPTS && proto != IPPROTO_ROUTING && proto != IPPROTO_DSTOPTS &&
			    proto != IPPROTO_FRAGMENT && proto != IPPROTO_AH)
				break;
			if ((void *)(h + 1) > end)
				goto pass;
			if (proto == IPPROTO_FRAGMENT) {
				frag = 1;
				l4 = (void *)h + 8;
			} else if (proto == IPPROTO_AH) {
				l4 = (void *)h + (h->len + 2) * 4;
			} else {
				l4 = (void *)h + (h->len + 1) * 8;
			}
			proto = h->next;
		}
	} else {
		/* ARP, LLDP, a VLAN tag (802.1Q / 802.1ad): the kernel's. */
		goto pass;
	}
	k.family = family;
	if (frag) {
		k.kind = KIND_VIP;
		__builtin_memcpy(k.addr, dst, 16);
		if (has(&k))
			goto redirect;
		k.kind = KIND_LOCAL;
		if (has(&k))
			goto redirect;
		goto pass;
	}

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		__u16 *ports = l4;

		if ((void *)(ports + 2) > end)
			goto pass;
		k.proto = proto;
		k.kind = KIND_SERVICE;
		__builtin_memcpy(k.addr, dst, 16);
		if (has_port(&k, ports[1]))
			goto redirect;
		k.kind = KIND_LOCAL;
		k.proto = 0;
		k.port = 0;
		if (has(&k))
			goto redirect;
		k.kind = KIND_HOST;
		if (has(&k))
			goto pass;
		k.kind = KIND_REAL;
		k.proto = proto;
		__builtin_memcpy(k.addr, src, 16);
		if (has_port(&k, ports[0]))
			goto redirect;
		goto pass;
	}
	if ((family == 4 && proto == IPPROTO_ICMP) || (family == 6 && proto == IPPROTO_ICMPV6)) {
		__u8 *type = l4;

		if ((void *)(type + 1) > end || !icmp_error(family, *type))
			goto pass;
		k.kind = KIND_VIP;
		__builtin_memcpy(k.addr, dst, 16);
		if (has(&k))
			goto redirect;
		k.kind = KIND_LOCAL;
		if (has(&k))
			goto redirect;
		k.kind = KIND_HOST;
		if (has(&k))
			goto pass;
		k.kind = KIND_REAL;
		k.proto = 255;
		__builtin_memcpy(k.addr, src, 16);
		if (has(&k))
			goto redirect;
	}
pass:
	count(0);
	return XDP_PASS;
redirect:
	count(1);
	{
		__u32 zero = 0;
		__u64 *until = bpf_map_lookup_elem(&hold_until, &zero);
		__u64 fallback = until && bpf_ktime_get_ns() < *until ? XDP_DROP : XDP_PASS;

		return bpf_redirect_map(&xsks, ctx->rx_queue_index, fallback);
	}
}

char _license[] SEC("license") = "GPL";
