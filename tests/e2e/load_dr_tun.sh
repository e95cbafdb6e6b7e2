#!/usr/bin/env bash
# Production clients and servers under concurrency, one-arm DR (-g) and TUN
# (-i), IPv4 and IPv6: nginx on the real servers (the VIP on lo, replies
# straight to the client), ApacheBench (a new connection per request, 50 at
# once: client ports are reused while the director, which sees only the
# client's half, still holds the old connection) and wrk (100 keep-alive
# connections). Every request must succeed, the director's connection
# counters must follow wrr's sequence exactly, and nothing may be dropped.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_one_arm
rs_decap
for i in 1 2 3; do rs_nginx "$i" 80; done
rs_wait 80
for mode in g i; do
    name=$([ $mode = g ] && echo DR || echo TUN)
    cat > "$WORK/rules" <<RULES
-A -t 198.18.0.10:80 -s wrr
-a -t 198.18.0.10:80 -r 198.18.0.11 -$mode -w 1
-a -t 198.18.0.10:80 -r 198.18.0.12 -$mode -w 2
-a -t 198.18.0.10:80 -r 198.18.0.13 -$mode -w 3
-A -t [2001:db8::10]:80 -s wrr
-a -t [2001:db8::10]:80 -r [2001:db8::11] -$mode -w 1
-a -t [2001:db8::10]:80 -r [2001:db8::12] -$mode -w 2
-a -t [2001:db8::10]:80 -r [2001:db8::13] -$mode -w 3
RULES
    xdpvs_up "$WORK/rules" --iface d0
    # The real servers answer the client themselves: until a server has
    # resolved the client's address, its kernel queues replies to it (IPv6
    # keeps 64 KiB of them), and 50 first SYN-ACKs at once overflow that
    # queue into 1 s retransmissions. That is the server's own neighbour
    # discovery, not the director (which drops nothing: checked below). Six
    # requests per family reach every server once (wrr 3:2:1) first.
    for _ in 1 2 3 4 5 6; do
        ns "$NS_C" curl -s -o /dev/null --max-time 5 http://198.18.0.10/ || fail "$name: a first request (IPv4)"
        ns "$NS_C" curl -s -o /dev/null --max-time 5 'http://[2001:db8::10]/' || fail "$name: a first request (IPv6)"
    done
    ab_check "$name IPv4" http://198.18.0.10/ 198.18.0.10 80
    ab_check "$name IPv6" 'http://[2001:db8::10]/' 2001:db8::10 80
    wrk_check "$name IPv4" http://198.18.0.10/
    check_no_drops
    xdpvs_down
    check_detached
done
