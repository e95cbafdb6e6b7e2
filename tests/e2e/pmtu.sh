#!/usr/bin/env bash
# Path MTU discovery through the balancer (NAT): a router on the client's
# path has a 1280-byte link; the real servers' full-size replies make it send
# ICMP "fragmentation needed" to the VIP. xdpvs must hand that error to the
# real server that owns the flow (quoted header rewritten), or the download
# black-holes.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
NS_R="$ID-rtr"
trap cleanup EXIT INT TERM
for n in "$NS_C" "$NS_R" "$NS_D" "$NS_S"; do ip netns add "$n"; ns "$n" ip link set lo up; done
ip link add c0 netns "$NS_C" type veth peer name rc netns "$NS_R"
ip link add rd netns "$NS_R" type veth peer name d0 netns "$NS_D"
ip link add d1 netns "$NS_D" type veth peer name sd netns "$NS_S"
ns "$NS_S" ip link add br0 type bridge
ns "$NS_S" ip link set sd master br0
ns "$NS_S" ip link set sd up
ns "$NS_S" ip link set br0 up
# Client 198.18.2.100 behind the router; the router's client side has MTU 1280.
ns "$NS_C" ip addr add 198.18.2.100/24 dev c0
ns "$NS_C" ip link set c0 mtu 1280 up
ns "$NS_C" ip route add default via 198.18.2.1
ns "$NS_C" ethtool -K c0 tx off >/dev/null
ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1
ns "$NS_R" ip addr add 198.18.2.1/24 dev rc
ns "$NS_R" ip link set rc mtu 1280 up
ns "$NS_R" ip addr add 198.18.0.254/24 dev rd
ns "$NS_R" ip link set rd up
ns "$NS_R" ethtool -K rd tx off >/dev/null
ns "$NS_R" ethtool -K rc tx off >/dev/null
director_d0_up
ns "$NS_D" ip route add 198.18.2.0/24 via 198.18.0.254
ns "$NS_D" ip addr add 198.19.0.1/24 dev d1
ns "$NS_D" ip link set d1 up
for i in 1 2 3; do
    rs_add "$i" 198.19.0 2001:db8:1:
    ns "$(rs_ns "$i")" ip route add default via 198.19.0.1
done
# The client announces MSS 1460 anyway (its own MTU is not the bottleneck it knows of).
ns "$NS_C" ip route change default via 198.18.2.1 advmss 1460
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
printf -- '-A -t 198.18.0.10:80 -s rr\n' > "$WORK/rules"
for i in 1 2 3; do printf -- '-a -t 198.18.0.10:80 -r 198.19.0.1%s:8080 -m\n' "$i" >> "$WORK/rules"; done
xdpvs_up "$WORK/rules" --iface d0 --iface d1
head -c 1048576 "$WORK/big" > "$WORK/onemib"
for i in 1 2 3; do ln -sf "$WORK/onemib" "$WORK/rs$i/onemib"; done
for k in 1 2 3; do
    ns "$NS_C" curl -s --max-time 20 -o "$WORK/got" http://198.18.0.10/onemib || fail "download $k black-holed: the ICMP frag-needed did not reach the real server"
    cmp -s "$WORK/got" "$WORK/onemib" || fail "download $k corrupt"
done
sleep 0.1
stats_json
icmp=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(w["icmp_forwarded"] for w in s["workers"]))' "$WORK/stats.json")
[ "$icmp" -gt 0 ] || fail "the downloads completed but no ICMP error went through xdpvs (the test did not exercise path MTU discovery)"
echo "ok   3 downloads of 1 MiB through a 1280-byte hop completed; $icmp ICMP frag-needed errors went to the real servers"
xdpvs_down
check_detached
