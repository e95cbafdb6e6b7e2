#!/usr/bin/env bash
# Two-arm NAT (-m), IPv4 and IPv6: rr split, 100 MiB byte-exact, the
# director's own traffic untouched, clean detach.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up nat
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
for i in 1 2 3; do rs_udp "$i" 5353; done
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 1
-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m -w 1
-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m -w 1
-A -t [2001:db8::10]:80 -s wrr
-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m -w 1
-a -t [2001:db8::10]:80 -r [2001:db8:1::12]:8080 -m -w 2
-a -t [2001:db8::10]:80 -r [2001:db8:1::13]:8080 -m -w 3
-A -u 198.18.0.10:53 -s rr
-a -u 198.18.0.10:53 -r 198.19.0.11:5353 -m
-a -u 198.18.0.10:53 -r 198.19.0.12:5353 -m
-a -u 198.18.0.10:53 -r 198.19.0.13:5353 -m
-A -u [2001:db8::10]:53 -s rr
-a -u [2001:db8::10]:53 -r [2001:db8:1::11]:5353 -m
-a -u [2001:db8::10]:53 -r [2001:db8:1::12]:5353 -m
-a -u [2001:db8::10]:53 -r [2001:db8:1::13]:5353 -m
-A -u 198.18.0.10:54 -s rr -o
-a -u 198.18.0.10:54 -r 198.19.0.11:5353 -m
-a -u 198.18.0.10:54 -r 198.19.0.12:5353 -m
-a -u 198.18.0.10:54 -r 198.19.0.13:5353 -m
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1
curl_split 300 http://198.18.0.10/ >/dev/null
expect_split "rs1 100" "rs2 100" "rs3 100"
echo "ok   NAT IPv4: 300 requests, rr split 100/100/100 ($(cat "$WORK/rate") req/s, one curl at a time)"
curl_split 300 'http://[2001:db8::10]/' >/dev/null
expect_split "rs1 50" "rs2 100" "rs3 150"
echo "ok   NAT IPv6: 300 requests, wrr 1:2:3 split 50/100/150 ($(cat "$WORK/rate") req/s, one curl at a time)"
udp_split 30 198.18.0.10 53
expect_split "rs1 10" "rs2 10" "rs3 10"
echo "ok   NAT UDP IPv4: 30 flows answered from 198.18.0.10:53, rr split 10/10/10"
udp_split 30 2001:db8::10 53
expect_split "rs1 10" "rs2 10" "rs3 10"
echo "ok   NAT UDP IPv6: 30 flows answered from [2001:db8::10]:53, rr split 10/10/10"
UDP_ONE_PORT=21000 udp_split 30 198.18.0.10 53
[ "$(sort -u "$WORK/split" | wc -l)" -eq 1 ] || fail "one UDP flow went to several servers: $(sort "$WORK/split" | uniq -c | tr '\n' ' ')"
# (Another client port: a NAT reply RIP:5353 → CIP:21000 could not tell
# the two services apart.)
UDP_ONE_PORT=21001 udp_split 30 198.18.0.10 54
expect_split "rs1 10" "rs2 10" "rs3 10"
echo "ok   one client socket, 30 datagrams: all to one server by default, rr split 10/10/10 with one-packet scheduling (-o), every answer from the VIP"
check_big http://198.18.0.10/big
check_big 'http://[2001:db8::10]/big'
check_director_untouched
check_director_reaches_servers 198.19.0 2001:db8:1: 8080
xdpvs_down
check_detached
