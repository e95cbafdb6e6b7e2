#!/usr/bin/env bash
# Two-arm NAT (-m), IPv4 and IPv6: rr split, 100 MiB byte-exact, the
# director's own traffic untouched, clean detach.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up nat
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 1
-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m -w 1
-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m -w 1
-A -t [2001:db8::10]:80 -s wrr
-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m -w 1
-a -t [2001:db8::10]:80 -r [2001:db8:1::12]:8080 -m -w 2
-a -t [2001:db8::10]:80 -r [2001:db8:1::13]:8080 -m -w 3
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1
curl_split 300 http://198.18.0.10/ >/dev/null
expect_split "rs1 100" "rs2 100" "rs3 100"
echo "ok   NAT IPv4: 300 requests, rr split 100/100/100 ($(cat "$WORK/rate") req/s, one curl at a time)"
curl_split 300 'http://[2001:db8::10]/' >/dev/null
expect_split "rs1 50" "rs2 100" "rs3 150"
echo "ok   NAT IPv6: 300 requests, wrr 1:2:3 split 50/100/150 ($(cat "$WORK/rate") req/s, one curl at a time)"
check_big http://198.18.0.10/big
check_big 'http://[2001:db8::10]/big'
check_director_untouched
xdpvs_down
check_detached
