#!/usr/bin/env bash
# One-arm DR (-g) and TUN (-i), IPv4 and IPv6: the director rewrites MACs
# (DR) or encapsulates (TUN); real servers answer the clients directly.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_one_arm
rs_decap
for i in 1 2 3; do rs_http "$i" 80; done
rs_wait 80
# DR/TUN servers answer from the VIP they received on: bind it.
for i in 1 2 3; do rs_udp "$i" 53 198.18.0.10 2001:db8::10; done
for mode in g i; do
    name=$([ $mode = g ] && echo DR || echo TUN)
    cat > "$WORK/rules" <<RULES
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.18.0.11 -$mode -w 1
-a -t 198.18.0.10:80 -r 198.18.0.12 -$mode -w 1
-a -t 198.18.0.10:80 -r 198.18.0.13 -$mode -w 1
-A -t [2001:db8::10]:80 -s wrr
-a -t [2001:db8::10]:80 -r [2001:db8::11] -$mode -w 1
-a -t [2001:db8::10]:80 -r [2001:db8::12] -$mode -w 2
-a -t [2001:db8::10]:80 -r [2001:db8::13] -$mode -w 3
-A -u 198.18.0.10:53 -s rr
-a -u 198.18.0.10:53 -r 198.18.0.11 -$mode
-a -u 198.18.0.10:53 -r 198.18.0.12 -$mode
-a -u 198.18.0.10:53 -r 198.18.0.13 -$mode
-A -u [2001:db8::10]:53 -s rr
-a -u [2001:db8::10]:53 -r [2001:db8::11] -$mode
-a -u [2001:db8::10]:53 -r [2001:db8::12] -$mode
-a -u [2001:db8::10]:53 -r [2001:db8::13] -$mode
RULES
    xdpvs_up "$WORK/rules" --iface d0
    curl_split 300 http://198.18.0.10/ >/dev/null
    expect_split "rs1 100" "rs2 100" "rs3 100"
    echo "ok   $name IPv4: 300 requests, rr split 100/100/100 ($(cat "$WORK/rate") req/s, one curl at a time)"
    curl_split 300 'http://[2001:db8::10]/' >/dev/null
    expect_split "rs1 50" "rs2 100" "rs3 150"
    echo "ok   $name IPv6: 300 requests, wrr 1:2:3 split 50/100/150 ($(cat "$WORK/rate") req/s, one curl at a time)"
    udp_split 30 198.18.0.10 53
    expect_split "rs1 10" "rs2 10" "rs3 10"
    echo "ok   $name UDP IPv4: 30 flows answered from 198.18.0.10:53 directly by the servers, rr split 10/10/10"
    udp_split 30 2001:db8::10 53
    expect_split "rs1 10" "rs2 10" "rs3 10"
    echo "ok   $name UDP IPv6: 30 flows answered from [2001:db8::10]:53 directly by the servers, rr split 10/10/10"
    frag_check "$name fragments" 53 80
    check_big http://198.18.0.10/big
    check_big 'http://[2001:db8::10]/big'
    check_director_reaches_servers 198.18.0 2001:db8: 80
    xdpvs_down
    check_detached
done
