#!/usr/bin/env bash
# Two-arm FULLNAT (-b): real servers have no route to the clients; replies
# come back to the director's local address. IPv4 and IPv6.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up fullnat
ns "$NS_D" ip addr add 198.19.0.250/32 dev d1
ns "$NS_D" ip -6 addr add 2001:db8:1::250/128 dev d1 nodad
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
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
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1
curl_split 300 http://198.18.0.10/ >/dev/null
expect_split "rs1 100" "rs2 100" "rs3 100"
echo "ok   FULLNAT IPv4: 300 requests, rr split 100/100/100 ($(cat "$WORK/rate") req/s, one curl at a time)"
curl_split 300 'http://[2001:db8::10]/' >/dev/null
expect_split "rs1 100" "rs2 100" "rs3 100"
echo "ok   FULLNAT IPv6: 300 requests, rr split 100/100/100 ($(cat "$WORK/rate") req/s, one curl at a time)"
check_big http://198.18.0.10/big
check_big 'http://[2001:db8::10]/big'
check_director_untouched
xdpvs_down
check_detached
