// SPDX-License-Identifier: GPL-2.0-or-later
/* The ceiling of the veth path: an in-kernel XDP program on the director's
 * client side that sends the benchmark's frames (UDP or TCP to port 5000)
 * straight out of the server-side interface with the real server's MAC, no
 * lookup, no state. OUT_IFINDEX, SRC_MAC and DST_MAC come from -D flags.
 * `pass` is for the peer of the target veth, which must run XDP to accept
 * redirected frames. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *l4 = (void *)(ip + 1);
	const unsigned char src[ETH_ALEN] = { SRC_MAC };
	const unsigned char dst[ETH_ALEN] = { DST_MAC };

	if ((void *)(l4 + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	if ((ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP) || l4->dest != bpf_htons(5000))
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
	return bpf_redirect(OUT_IFINDEX, 0);
}

SEC("xdp/pass")
int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
