#!/usr/bin/env bash
# Hostile input from the client side (scapy), two-arm NAT, IPv4 and IPv6:
# VLAN tags, frames to other MACs, spoofed and martian sources, source
# port 0, TTL 1, frames too big for the real-server side, IPv6 extension
# headers, fragments, malformed TCP options. tcpdump on every real server
# counts what reaches it, tcpdump on the client what the director's kernel
# answers; each hostile frame lands in its named counter, and the director
# keeps serving.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up nat
# The client side takes jumbo frames (the most XDP on veth allows); the
# real-server side keeps 1500.
ns "$NS_C" ip link set c0 mtu 3506
ns "$NS_D" ip link set d0 mtu 3506
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m
-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m
-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m
-A -t [2001:db8::10]:80 -s rr
-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m
-a -t [2001:db8::10]:80 -r [2001:db8:1::12]:8080 -m
-a -t [2001:db8::10]:80 -r [2001:db8:1::13]:8080 -m
-A -u 198.18.0.10:53 -s rr
-a -u 198.18.0.10:53 -r 198.19.0.11:5353 -m
-A -u [2001:db8::10]:53 -s rr
-a -u [2001:db8::10]:53 -r [2001:db8:1::11]:5353 -m
RULES
# A small table (2048 sessions per family), for the SYN flood at the end.
xdpvs_up "$WORK/rules" --iface d0 --iface d1 --max-sessions 2048
# The client has talked to the director before (both know each other's MAC):
# ICMP errors to it need no neighbour resolution first.
ns "$NS_C" curl -s -o /dev/null --max-time 5 http://198.18.0.10/ || fail "warm-up request (IPv4)"
ns "$NS_C" curl -s -o /dev/null --max-time 5 'http://[2001:db8::10]/' || fail "warm-up request (IPv6)"

# What reaches the real servers, and what the client hears back.
for i in 1 2 3; do
    ip netns exec "$(rs_ns "$i")" tcpdump -i r0 -n -U --immediate-mode -w "$WORK/rs$i.pcap" 'tcp dst port 8080 or udp dst port 5353 or ip6 or ip' 2>/dev/null &
    PIDS+=($!)
done
ip netns exec "$NS_C" tcpdump -i c0 -n -U --immediate-mode -w "$WORK/client.pcap" 'src host 198.18.0.10 or src host 2001:db8::10' 2>/dev/null &
PIDS+=($!)
sleep 1

dmac=$(ns "$NS_D" cat /sys/class/net/d0/address)
ip netns exec "$NS_C" /usr/bin/python3 - "$dmac" <<'PY'
# Each case a source port of its own (31000 + n), so the captures tell them apart.
import sys
from scapy.all import Ether, Dot1Q, IP, IPv6, TCP, UDP, Raw, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, fragment, fragment6, IPv6ExtHdrFragment, sendp
dmac = sys.argv[1]
V4, V6, C4, C6 = "198.18.0.10", "2001:db8::10", "198.18.0.100", "2001:db8::100"
def send(pkts):
    sendp(pkts, iface="c0", verbose=False)
E = Ether(dst=dmac)
syn = lambda sport, **kw: TCP(sport=sport, dport=80, flags="S", **kw)
send(E / Dot1Q(vlan=5) / IP(src=C4, dst=V4) / syn(31001))                         # VLAN 5
send(Ether(dst="ff:ff:ff:ff:ff:ff") / IP(src=C4, dst=V4) / syn(31002))            # broadcast MAC
send(Ether(dst="02:00:00:00:00:99") / IP(src=C4, dst=V4) / syn(31003))            # another host's MAC
for n, src in enumerate(["198.18.0.10", "198.19.0.11", "198.18.0.1"]):            # a VIP, a real server, the director
    send(E / IP(src=src, dst=V4) / syn(31010 + n))
for n, src in enumerate(["127.0.0.1", "224.0.0.5", "0.0.0.0", "255.255.255.255"]):
    send(E / IP(src=src, dst=V4) / syn(31020 + n))                                # martians
send(E / IPv6(src="::1", dst=V6) / syn(31024))
send(E / IPv6(src=V6, dst=V6) / syn(31013))
send(E / IP(src=C4, dst=V4) / TCP(sport=0, dport=80, flags="S"))                  # source port 0
send(E / IP(src=C4, dst=V4, ttl=1) / syn(31030))                                  # TTL 1
send(E / IPv6(src=C6, dst=V6, hlim=1) / syn(31031))                               # hop limit 1
send(E / IP(src=C4, dst=V4, flags="DF") / syn(31040) / Raw(b"x" * 3000))          # too big, DF
send(E / IP(src=C4, dst=V4) / syn(31041) / Raw(b"x" * 3000))                      # too big, no DF
send(E / IPv6(src=C6, dst=V6) / syn(31042) / Raw(b"x" * 3000))                    # too big, IPv6
send(E / IPv6(src=C6, dst=V6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / syn(31050))  # extension headers: balanced
# Fragment trains that must not make a datagram: overlapping (IPv4 and
# IPv6), a first fragment too short for the TCP ports and flags, a train
# that never completes.
u4 = bytes(IP(src=C4, dst=V4) / UDP(sport=31060, dport=53) / Raw(b"y" * 4000))[20:]
send([E / IP(src=C4, dst=V4, id=7001, proto=17, flags="MF", frag=0) / Raw(u4[:1400]),
      E / IP(src=C4, dst=V4, id=7001, proto=17, flags="MF", frag=174) / Raw(u4[1392:2800])])
u6 = bytes(IPv6(src=C6, dst=V6) / UDP(sport=31062, dport=53) / Raw(b"y" * 4000))[40:]
send([E / IPv6(src=C6, dst=V6) / IPv6ExtHdrFragment(nh=17, id=7002, m=1, offset=0) / Raw(u6[:1400]),
      E / IPv6(src=C6, dst=V6) / IPv6ExtHdrFragment(nh=17, id=7002, m=1, offset=174) / Raw(u6[1392:2800])])
t4 = bytes(IP(src=C4, dst=V4) / syn(31061) / Raw(b"z" * 200))[20:]
send([E / IP(src=C4, dst=V4, id=7003, proto=6, flags="MF", frag=0) / Raw(t4[:8]),
      E / IP(src=C4, dst=V4, id=7003, proto=6, frag=1) / Raw(t4[8:])])
send(E / IP(src=C4, dst=V4, id=7004, proto=6, flags="MF", frag=0) / Raw(t4[:64]))
send(E / IP(src=C4, dst=V4) / TCP(sport=31070, dport=80, flags="S", options=[("NOP", None), ("NOP", None), (30, b"")]))  # option length 2 is fine
send(E / IP(src=C4, dst=V4) / TCP(sport=31071, dport=80, flags="S", dataofs=6) / Raw(b"\x01\x1e\x01\x00"))  # kind 30, length 1
PY
sleep 1

# rs_text: what the real servers received, as tcpdump prints it (its
# decoder walks IPv6 extension headers, which a capture filter does not).
for i in 1 2 3; do tcpdump -r "$WORK/rs$i.pcap" -n -vv 2>/dev/null; done > "$WORK/rs.txt"
# from_port PORT: packets from the client's PORT (its kernel's RSTs to the
# servers' SYN-ACKs aside).
from_port() { grep -E "[. ]$1 > " "$WORK/rs.txt" | grep -cv 'Flags \[R' || true; }
for port in 31001 31002 31003 31010 31011 31012 31013 31020 31021 31022 31023 31024 31030 31031 31040 31041 31042 31060 31061 31062 31071; do
    got=$(from_port "$port")
    [ "$got" = 0 ] || fail "$got hostile packet(s) from source port $port reached a real server: $(grep -E "\.$port > " "$WORK/rs.txt" | head -2)"
done
[ "$(from_port 0)" = 0 ] || fail "a SYN from source port 0 reached a real server"
frag_re='frag \(|flags \[\+\]|offset [1-9]'
frags=$(grep -cE "$frag_re" "$WORK/rs.txt" || true)
[ "$frags" = 0 ] || fail "$frags fragment(s) reached a real server: $(grep -E "$frag_re" "$WORK/rs.txt" | head -3)"
[ "$(from_port 31050)" = 1 ] || fail "the IPv6 SYN with hop-by-hop and destination options was not balanced: $(grep 31050 "$WORK/rs.txt")"
[ "$(from_port 31070)" = 1 ] || { stats_json; fail "a SYN with well-formed NOP options was not balanced: $(grep 31070 "$WORK/rs.txt") $(python3 -c "import json,sys; print({k:v for k,v in json.load(open(sys.argv[1]))[\"drops\"].items() if v})" "$WORK/stats.json")"; }
echo "ok   nothing hostile reached a real server; a SYN with IPv6 extension headers and one with NOP options were balanced"

# The director's kernel answered none of it from a VIP: no RST, no port
# unreachable; the ICMP that did come is the balancer's own.
tcpdump -r "$WORK/client.pcap" -n 2>/dev/null > "$WORK/client.txt"
grep -E 'Flags \[R' "$WORK/client.txt" && fail "the director's kernel reset a hostile flow from the VIP"
grep -Ei 'port [0-9]+ unreachable' "$WORK/client.txt" && fail "the director's kernel answered a fragment from the VIP"
grep -q 'time exceeded in-transit' "$WORK/client.txt" || fail "no ICMP time exceeded for TTL 1: $(cat "$WORK/client.txt")"
grep -q 'need to frag (mtu 1500)' "$WORK/client.txt" || fail "no ICMP fragmentation needed (MTU 1500): $(cat "$WORK/client.txt")"
grep -q 'ICMP6, packet too big, mtu 1500' "$WORK/client.txt" || fail "no ICMPv6 packet too big (MTU 1500): $(cat "$WORK/client.txt")"
grep -q 'ICMP6, time exceeded' "$WORK/client.txt" || fail "no ICMPv6 time exceeded for hop limit 1: $(cat "$WORK/client.txt")"
echo "ok   the director's kernel answered nothing from the VIP; the balancer sent time exceeded and frag-needed / packet-too-big (MTU 1500), IPv4 and IPv6"

# Every hostile frame the balancer saw is in its named counter.
stats_json
python3 - "$WORK/stats.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["drops"]
# Fragments: two overlapping trains of two, a train of two whose first
# fragment has no room for the TCP header (the one that never completes is
# counted when it times out, below).
want = {"spoofed_source": 4, "martian_source": 5, "zero_source_port": 1, "ttl_exceeded": 2,
        "too_big": 2, "too_big_no_df": 1, "frag_overlap": 4, "frag_malformed": 2, "l4_malformed": 1}
bad = {k: (d.get(k), v) for k, v in want.items() if d.get(k, 0) < v}
assert not bad, f"counted (got, at least): {bad}; all drops: {d}"
assert d["not_ours"] == 0, f"not_ours {d['not_ours']}: the steering sent the balancer what is not its"
w = json.load(open(sys.argv[1]))["workers"][0]
xsk = ["xsk_rx_dropped", "xsk_rx_ring_full", "xsk_fill_ring_empty", "xsk_invalid_descs"]
assert all(k in w for k in xsk), f"the sockets' XDP statistics are missing: {sorted(w)}"
print("ok   each hostile frame in its counter: " + ", ".join(f"{k} {d[k]}" for k in want)
      + "; the sockets' own losses shown: " + ", ".join(f"{k} {w[k]}" for k in xsk))
PY

# And the director keeps serving.
curl_split 30 http://198.18.0.10/ >/dev/null
expect_split "rs1 10" "rs2 10" "rs3 10"
curl_split 30 'http://[2001:db8::10]/' >/dev/null
expect_split "rs1 10" "rs2 10" "rs3 10"
echo "ok   after the hostile bursts the director still serves: 30 requests per family, rr split 10/10/10"
frag_check "NAT fragments" 53 80
# The train that never completed goes 3 s after it came (well before now).
for _ in $(seq 1 50); do
    stats_json
    read -r late done held < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1])); w = s["workers"][0]
print(s["drops"]["frag_timeout"], w["frag_reassembled"], w["frag_held"])' "$WORK/stats.json")
    [ "$late" = 1 ] && break
    sleep 0.1
done
[ "$late" = 1 ] && [ "$done" = 4 ] || fail "fragments: frag_timeout $late (1 expected), frag_reassembled $done (4 expected)"
echo "ok   the fragment train that never completed dropped after 3 s (frag_timeout 1); 4 datagrams reassembled and forwarded (frag_reassembled 4, frag_held $held)"

# A spoofed SYN flood fills the table with half-open sessions: a transfer
# under way goes on byte-exact and new clients connect, each new flow
# taking the place of the oldest half-open session.
want=$(sha256sum < "$WORK/big" | cut -d' ' -f1)
ns "$NS_C" curl -s --max-time 60 --limit-rate 25M -o "$WORK/got" "http://198.18.0.10/big" &
T=$!
sleep 0.5
ns "$NS_C" /usr/bin/python3 - "$dmac" <<'PY' &
import random, sys
from scapy.all import Ether, IP, TCP, sendp
random.seed(7)
pkts = [Ether(dst=sys.argv[1]) / IP(src="198.18.0.%d" % random.randint(150, 250), dst="198.18.0.10")
        / TCP(sport=random.randint(1024, 65535), dport=80, flags="S", seq=random.getrandbits(32)) for _ in range(8000)]
sendp(pkts, iface="c0", verbose=False)
PY
F=$!
ok=0
for _ in $(seq 1 20); do
    grep -qx 'rs[123]' <<<"$(ns "$NS_C" curl -s --max-time 3 http://198.18.0.10/)" && ok=$((ok + 1)) || true
done
wait "$F" || fail "the SYN flood could not be sent"
wait "$T" || fail "the transfer under the SYN flood failed"
[ "$(sha256sum < "$WORK/got" | cut -d' ' -f1)" = "$want" ] || fail "the transfer under the SYN flood is not byte-exact"
stats_json
read -r evicted full sessions < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1])); w = s["workers"][0]
print(w["evicted_half_open"], s["drops"]["session_table_full"], w["sessions_v4"])' "$WORK/stats.json")
[ "$ok" -ge 19 ] || fail "under the SYN flood only $ok of 20 new connections were answered"
[ "$evicted" -gt 0 ] && [ "$sessions" -le 2048 ] || fail "the flood evicted $evicted half-open sessions; $sessions sessions held (table 2048)"
echo "ok   a spoofed SYN flood (8000 SYNs, a table of 2048): $evicted half-open sessions evicted oldest first, $sessions sessions held at the end (the table's size), session_table_full $full; a 100 MiB transfer under way stayed byte-exact and $ok of 20 new connections were answered"
xdpvs_down
check_detached
