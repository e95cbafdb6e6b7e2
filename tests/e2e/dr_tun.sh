#!/usr/bin/env bash
# One-arm DR (-g) and TUN (-i), IPv4 and IPv6: the director rewrites MACs
# (DR) or encapsulates (TUN); real servers answer the clients directly.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_one_arm
rs_decap
for i in 1 2 3; do rs_http "$i" 80; done
rs_wait 80
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
RULES
    xdpvs_up "$WORK/rules" --iface d0
    curl_split 300 http://198.18.0.10/ >/dev/null
    expect_split "rs1 100" "rs2 100" "rs3 100"
    echo "ok   $name IPv4: 300 requests, rr split 100/100/100 ($(cat "$WORK/rate") req/s, one curl at a time)"
    curl_split 300 'http://[2001:db8::10]/' >/dev/null
    expect_split "rs1 50" "rs2 100" "rs3 150"
    echo "ok   $name IPv6: 300 requests, wrr 1:2:3 split 50/100/150 ($(cat "$WORK/rate") req/s, one curl at a time)"
    check_big http://198.18.0.10/big
    check_big 'http://[2001:db8::10]/big'
    xdpvs_down
    check_detached
done
