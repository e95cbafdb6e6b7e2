#!/usr/bin/env bash
# Two-arm FULLNAT (-b): real servers have no route to the clients; replies
# come back to the director's local address. IPv4 and IPv6.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up fullnat
director_laddrs
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
for i in 1 2 3; do rs_udp "$i" 5353; done
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -b -w 1
-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -b -w 1
-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -b -w 1
-P -t 198.18.0.10:80 -z 198.19.0.250 -F d1
-A -t [2001:db8::10]:80 -s rr
-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -b
-a -t [2001:db8::10]:80 -r [2001:db8:1::12]:8080 -b
-a -t [2001:db8::10]:80 -r [2001:db8:1::13]:8080 -b
-P -t [2001:db8::10]:80 -z 2001:db8:1::250 -F d1
-A -u 198.18.0.10:53 -s rr
-a -u 198.18.0.10:53 -r 198.19.0.11:5353 -b
-a -u 198.18.0.10:53 -r 198.19.0.12:5353 -b
-a -u 198.18.0.10:53 -r 198.19.0.13:5353 -b
-A -u [2001:db8::10]:53 -s rr
-a -u [2001:db8::10]:53 -r [2001:db8:1::11]:5353 -b
-a -u [2001:db8::10]:53 -r [2001:db8:1::12]:5353 -b
-a -u [2001:db8::10]:53 -r [2001:db8:1::13]:5353 -b
-P -u 198.18.0.10:53 -z 198.19.0.250 -F d1
-P -u [2001:db8::10]:53 -z 2001:db8:1::250 -F d1
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1
curl_split 300 http://198.18.0.10/ >/dev/null
expect_split "rs1 100" "rs2 100" "rs3 100"
echo "ok   FULLNAT IPv4: 300 requests, rr split 100/100/100 ($(cat "$WORK/rate") req/s, one curl at a time)"
curl_split 300 'http://[2001:db8::10]/' >/dev/null
expect_split "rs1 100" "rs2 100" "rs3 100"
echo "ok   FULLNAT IPv6: 300 requests, rr split 100/100/100 ($(cat "$WORK/rate") req/s, one curl at a time)"
udp_split 30 198.18.0.10 53
expect_split "rs1 10" "rs2 10" "rs3 10"
echo "ok   FULLNAT UDP IPv4: 30 flows answered from 198.18.0.10:53, rr split 10/10/10"
udp_split 30 2001:db8::10 53
expect_split "rs1 10" "rs2 10" "rs3 10"
echo "ok   FULLNAT UDP IPv6: 30 flows answered from [2001:db8::10]:53, rr split 10/10/10"
check_big http://198.18.0.10/big
check_big 'http://[2001:db8::10]/big'
frag_check "FULLNAT fragments" 53 80
check_director_untouched
check_director_reaches_servers 198.19.0 2001:db8:1: 8080
xdpvs_down
check_detached
