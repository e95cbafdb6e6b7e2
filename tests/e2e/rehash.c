// SPDX-License-Identifier: GPL-2.0-or-later
/* Test helper: the router's tc ingress forgets the hash a packet carries
 * from the client's socket across the veth (its random sk_txhash, which the
 * kernel's ECMP would use as is and change at every RTO), so the router's
 * ECMP hashes the headers (fib_multipath_hash_policy=1) as a router does,
 * and `ip route get ... sport dport` names the director a flow takes. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int rehash(struct __sk_buff *skb)
{
	bpf_set_hash_invalid(skb);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
