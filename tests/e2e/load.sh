#!/usr/bin/env bash
# Production clients and servers under concurrency: nginx on the real
# servers, ApacheBench (a new connection per request, 50 at once, so client
# ports are reused) and wrk (100 keep-alive connections) on the client,
# through NAT (-m) and FULLNAT (-b) services on one two-arm director, IPv4
# and IPv6. Every request must succeed, and the director's connection
# counters must split exactly as wrr's weights say.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up nat
director_laddrs
for i in 1 2 3; do rs_nginx "$i" 8080; done
rs_wait 8080
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s wrr
-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 1
-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m -w 2
-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m -w 3
-A -t 198.18.0.10:81 -s wrr
-a -t 198.18.0.10:81 -r 198.19.0.11:8080 -b -w 1
-a -t 198.18.0.10:81 -r 198.19.0.12:8080 -b -w 2
-a -t 198.18.0.10:81 -r 198.19.0.13:8080 -b -w 3
-P -t 198.18.0.10:81 -z 198.19.0.250 -F d1
-A -t [2001:db8::10]:80 -s wrr
-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m -w 1
-a -t [2001:db8::10]:80 -r [2001:db8:1::12]:8080 -m -w 2
-a -t [2001:db8::10]:80 -r [2001:db8:1::13]:8080 -m -w 3
-A -t [2001:db8::10]:81 -s wrr
-a -t [2001:db8::10]:81 -r [2001:db8:1::11]:8080 -b -w 1
-a -t [2001:db8::10]:81 -r [2001:db8:1::12]:8080 -b -w 2
-a -t [2001:db8::10]:81 -r [2001:db8:1::13]:8080 -b -w 3
-P -t [2001:db8::10]:81 -z 2001:db8:1::250 -F d1
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1

# The director's kernel has never exchanged a packet with the (on-link)
# client: the first reply to it waits, parked, for the neighbour the daemon
# asks the kernel to resolve, and must not be lost to a 1 s retransmission.
for url in http://198.18.0.10/ 'http://[2001:db8::10]/'; do
    t=$(ns "$NS_C" curl -s -o /dev/null --max-time 5 -w '%{time_total}' "$url") || fail "first request to $url"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 else 1)' "$t" \
        || fail "the first request to $url took $t s: its reply waited for a neighbour and was lost"
    echo "ok   first request from a new client through $url answered in $t s (reply parked for the neighbour, not lost)"
done

ab_check "NAT IPv4" http://198.18.0.10:80/ 198.18.0.10 80
ab_check "FULLNAT IPv4" http://198.18.0.10:81/ 198.18.0.10 81
ab_check "NAT IPv6" 'http://[2001:db8::10]:80/' 2001:db8::10 80
ab_check "FULLNAT IPv6" 'http://[2001:db8::10]:81/' 2001:db8::10 81
wrk_check "NAT IPv4" http://198.18.0.10:80/
wrk_check "FULLNAT IPv6" 'http://[2001:db8::10]:81/'
check_no_drops
xdpvs_down
check_detached
