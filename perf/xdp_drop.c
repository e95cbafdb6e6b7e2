// SPDX-License-Identifier: GPL-2.0-or-later
/* Benchmark sink at the real server's driver: drop the benchmark's traffic
 * (UDP, TCP to port 5000, and IPIP carrying them), pass everything else (ARP,
 * neighbour discovery, the TCP connections of the CPS test). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(ip + 1) > end)
			return XDP_PASS;
		if (ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_IPIP)
			return XDP_DROP;
		if (ip->protocol == IPPROTO_TCP && ip->ihl == 5 && (void *)(tcp + 1) <= end &&
		    tcp->dest == bpf_htons(5000))
			return XDP_DROP;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) <= end && ip6->nexthdr == IPPROTO_UDP)
			return XDP_DROP;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
