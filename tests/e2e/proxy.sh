#!/usr/bin/env bash
# FULLNAT real servers see the client's address: nginx real servers reading
# the PROXY protocol (v1 and v2, IPv4 and IPv6) under ab and wrk, 100 MiB
# both ways byte-exact with PROXY v2 also with 1 % of TCP segments dropped
# on the real-server link (a tc-BPF dropper), a UDP service with v2, and TOA
# (option 254) on the first ACK only, a 40-byte-option SYN included.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up fullnat
director_laddrs
for i in 1 2 3; do rs_nginx "$i" 8080 proxy_protocol; done
rs_nginx 1 8081
ip netns exec "$(rs_ns 1)" /usr/bin/python3 tests/e2e/pp_sink.py 9000 2>"$WORK/sink.err" &
PIDS+=($!)
ip netns exec "$(rs_ns 1)" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 5353))
out = open(sys.argv[1], "a")
while True:
    d, peer = s.recvfrom(4096)
    out.write(d.hex() + "\n"); out.flush()
    s.sendto(b"ok", peer)' "$WORK/udp.log" &
PIDS+=($!)
head -c $((100 * 1048576)) /dev/urandom > "$WORK/big"
rs_wait 8080
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s wrr --proxy-protocol v1
-A -t 198.18.0.10:81 -s wrr --proxy-protocol v2
-A -t [2001:db8::10]:80 -s wrr --proxy-protocol v1
-A -t [2001:db8::10]:81 -s wrr --proxy-protocol v2
-A -t 198.18.0.10:82 -s rr --toa
-A -t [2001:db8::10]:82 -s rr --toa
-A -t 198.18.0.10:83 -s rr --proxy-protocol v2
-A -t [2001:db8::10]:83 -s rr --proxy-protocol v2
-A -u 198.18.0.10:53 -s rr --proxy-protocol v2
-A -u [2001:db8::10]:53 -s rr --proxy-protocol v2
RULES
for svc in 198.18.0.10:80 198.18.0.10:81 '[2001:db8::10]:80' '[2001:db8::10]:81'; do
    case "$svc" in \[*) net=2001:db8:1:; lip=2001:db8:1::250 ;; *) net=198.19.0; lip=198.19.0.250 ;; esac
    for i in 1 2 3; do
        if [ "$net" = 198.19.0 ]; then r="$net.1$i"; else r="[$net:1$i]"; fi
        echo "-a -t $svc -r $r:8080 -b -w $i" >> "$WORK/rules"
    done
    echo "-P -t $svc -z $lip -F d1" >> "$WORK/rules"
done
cat >> "$WORK/rules" <<'RULES'
-a -t 198.18.0.10:82 -r 198.19.0.11:8081 -b
-a -t [2001:db8::10]:82 -r [2001:db8:1::11]:8081 -b
-a -t 198.18.0.10:83 -r 198.19.0.11:9000 -b
-a -t [2001:db8::10]:83 -r [2001:db8:1::11]:9000 -b
-a -u 198.18.0.10:53 -r 198.19.0.11:5353 -b
-a -u [2001:db8::10]:53 -r [2001:db8:1::11]:5353 -b
-P -t 198.18.0.10:82 -z 198.19.0.250 -F d1
-P -t [2001:db8::10]:82 -z 2001:db8:1::250 -F d1
-P -t 198.18.0.10:83 -z 198.19.0.250 -F d1
-P -t [2001:db8::10]:83 -z 2001:db8:1::250 -F d1
-P -u 198.18.0.10:53 -z 198.19.0.250 -F d1
-P -u [2001:db8::10]:53 -z 2001:db8:1::250 -F d1
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1
adm -L -n | grep -q "198.18.0.10:81 wrr proxy-protocol v2" || fail "-L does not show the PROXY protocol: $(adm -L -n)"
adm -S -n | grep -qx -- "-A -t \[2001:db8::10\]:82 -s rr --toa" || fail "-S does not write --toa back: $(adm -S -n)"
echo "ok   -L shows and -S writes back --proxy-protocol and --toa"

# The client's SYNs, to learn every port it connected from. (The test's own
# client ports are below the ephemeral range, so no earlier connection holds them.)
# Only the SYNs (IPv4: the TCP flags byte; IPv6 without extension headers:
# byte 53), with a large buffer, so none is lost to a busy machine.
# Immediate mode: each SYN reaches the file as it is captured, not when a
# buffer block fills or times out (a check right after ab must see the last).
ip netns exec "$NS_C" tcpdump -i c0 -nn -U --immediate-mode -s 96 -B 65536 -w "$WORK/syn.pcap" \
    '(dst port 80 or dst port 81) and ((ip and tcp and tcp[13] & 2 != 0) or (ip6 and ip6[6] == 6 and ip6[53] & 2 != 0))' 2>"$WORK/tcpdump.err" &
PIDS+=($!)
sleep 1

# logs: the access-log lines of the three nginx since new_logs (nginx
# appends: a truncated log goes on from its start).
logs() { cat "$WORK"/nginx[123]-8080/access.log 2>/dev/null; }
new_logs() { local f; for f in "$WORK"/nginx[123]-8080/access.log; do : > "$f"; done; }
# pp_log_check NAME CLIENT LIP AT_LEAST: every log line since new_logs
# names CLIENT with a port the client connected from, and the peer LIP.
pp_log_check() {
    local name="$1" client="$2" lip="$3" least="$4" got
    # nginx writes its log as each request ends; the capture is whole once
    # the file stops growing.
    local size=-1
    while [ "$(stat -c %s "$WORK/syn.pcap")" != "$size" ]; do size=$(stat -c %s "$WORK/syn.pcap"); sleep 0.5; done
    tcpdump -nn -r "$WORK/syn.pcap" 2>/dev/null | sed -n 's/.* IP6\{0,1\} \(.*\)\.\([0-9]*\) > .*Flags \[S\],.*/\1 \2/p' | sort -u > "$WORK/syn_ports"
    got=$(logs | /usr/bin/python3 -c '
import sys
client, lip, least = sys.argv[1], sys.argv[2], int(sys.argv[3])
ports = {tuple(l.split()) for l in open(sys.argv[4])}
lines = sys.stdin.read().splitlines()
def good(l):
    w = l.split()
    addr, _, port = w[0].rpartition(":")
    return len(w) == 2 and addr == client and w[1] == lip and (client, port) in ports
bad = [l for l in lines if not good(l)]
if len(lines) < least or bad:
    print("bad %d lines (%d expected at least), e.g. %s" % (len(lines), least, bad[:3]))
else:
    print("ok %d" % len(lines))' "$client" "$lip" "$least" "$WORK/syn_ports")
    [ "${got%% *}" = ok ] || fail "$name: nginx access log: ${got#* }"
    echo "ok   $name: all ${got#ok } requests logged by nginx with the client's address and a port it connected from ($client), from $lip"
}

for v in 1 2; do
    port=$((79 + v))
    new_logs
    ab_check "PROXY v$v IPv4" "http://198.18.0.10:$port/" 198.18.0.10 "$port"
    pp_log_check "PROXY v$v IPv4, ab" 198.18.0.100 198.19.0.250 6000
    new_logs
    ab_check "PROXY v$v IPv6" "http://[2001:db8::10]:$port/" 2001:db8::10 "$port"
    pp_log_check "PROXY v$v IPv6, ab" 2001:db8::100 2001:db8:1::250 6000
    new_logs
    wrk_check "PROXY v$v IPv4" "http://198.18.0.10:$port/"
    pp_log_check "PROXY v$v IPv4, wrk" 198.18.0.100 198.19.0.250 1000
    new_logs
    wrk_check "PROXY v$v IPv6" "http://[2001:db8::10]:$port/"
    pp_log_check "PROXY v$v IPv6, wrk" 2001:db8::100 2001:db8:1::250 1000
done
check_no_drops

# upload ADDR CLIENT PORT NOTE: 100 MiB from the client to the PROXY v2 sink through ADDR:83;
# the sink names the client the header gave and the digest of the rest.
upload() {
    local addr="$1" client="$2" port="$3" want got
    want=$(sha256sum < "$WORK/big" | cut -d' ' -f1)
    got=$(ns "$NS_C" timeout 120 /usr/bin/python3 -c '
import socket, sys
addr, path = sys.argv[1], sys.argv[2]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", int(sys.argv[3])))
s.connect((addr, 83))
with open(path, "rb") as f:
    s.sendfile(f)
s.shutdown(socket.SHUT_WR)
r = b""
while True:
    x = s.recv(4096)
    if not x:
        break
    r += x
print(r.decode().strip())' "$addr" "$WORK/big" "$port") || fail "upload through $addr:83 failed"
    [ "$got" = "$client $port $want" ] || fail "upload through $addr:83: the sink answered [$got], expected [$client $port $want]"
    echo "ok   100 MiB upload through $addr:83 (PROXY v2) byte-exact, the header naming $client:$port$4"
}
check_big http://198.18.0.10:81/big
upload 198.18.0.10 198.18.0.100 20300 ""

# 1 % of TCP segments dropped both ways on the director's real-server link
# (the real servers segment in software first, so one drop is one segment).
for i in 1 2 3; do ns "$(rs_ns "$i")" ethtool -K r0 gso off tso off >/dev/null; done
clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -c tests/e2e/tcp_dropper.c -o "$WORK/dropper.o"
ns "$NS_S" tc qdisc add dev sd clsact
ns "$NS_S" tc filter add dev sd ingress bpf direct-action obj "$WORK/dropper.o" sec tc
ns "$NS_S" tc filter add dev sd egress bpf direct-action obj "$WORK/dropper.o" sec tc
# tcp_stat NS NAME: the namespace's TCP counter (since it was made).
tcp_stat() { ns "$1" nstat -az "$2" | awk -v n="$2" '$1 == n {print $2}'; }
r0=0
for i in 1 2 3; do r0=$((r0 + $(tcp_stat "$(rs_ns "$i")" TcpRetransSegs))); done
c0=$(tcp_stat "$NS_C" TcpRetransSegs)
check_big http://198.18.0.10:81/big
check_big 'http://[2001:db8::10]:81/big'
upload 198.18.0.10 198.18.0.100 20301 ", 1 % of segments dropped"
upload 2001:db8::10 2001:db8::100 20302 ", 1 % of segments dropped"
rs_re=0 rs_sack=0
for i in 1 2 3; do
    rs_re=$((rs_re + $(tcp_stat "$(rs_ns "$i")" TcpRetransSegs)))
    rs_sack=$((rs_sack + $(tcp_stat "$(rs_ns "$i")" TcpExtTCPSackRecovery)))
done
rs_re=$((rs_re - r0)); c_re=$(($(tcp_stat "$NS_C" TcpRetransSegs) - c0))
c_sack=$(tcp_stat "$NS_C" TcpExtTCPSackRecovery)
[ "$rs_re" -gt 100 ] && [ "$c_re" -gt 100 ] && [ "${rs_sack:-0}" -gt 0 ] && [ "${c_sack:-0}" -gt 0 ] \
    || fail "too few losses to prove anything: retransmitted $rs_re by the servers, $c_re by the client; SACK recoveries $rs_sack / $c_sack"
echo "ok   under 1 % loss the servers retransmitted $rs_re segments and the client $c_re (SACK recoveries: $rs_sack and $c_sack): retransmissions and SACK crossed the shift both ways"
ns "$NS_S" tc qdisc del dev sd clsact

# UDP v2: the server's first datagram of each flow starts with the header.
for addr in 198.18.0.10 2001:db8::10; do
    ns "$NS_C" /usr/bin/python3 -c '
import socket, sys
a = sys.argv[1]
fam = socket.AF_INET6 if ":" in a else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind(("::" if ":" in a else "0.0.0.0", 20400))
s.settimeout(3)
for m in (b"hello", b"again"):
    s.sendto(m, (a, 53))
    assert s.recvfrom(100)[0] == b"ok"' "$addr" || fail "UDP through $addr:53 unanswered"
done
/usr/bin/python3 - "$WORK/udp.log" <<'PY' || fail "UDP PROXY v2 headers wrong: $(cat "$WORK/udp.log")"
import ipaddress, sys
lines = [bytes.fromhex(l) for l in open(sys.argv[1]).read().split()]
sig = b"\r\n\r\n\x00\r\nQUIT\n"
def v2(fam, c, v):
    a = ipaddress.ip_address(c).packed + ipaddress.ip_address(v).packed
    return sig + bytes([0x21, fam]) + len(a + b"1234").to_bytes(2, "big") + a + (20400).to_bytes(2, "big") + (53).to_bytes(2, "big")
want = [v2(0x12, "198.18.0.100", "198.18.0.10") + b"hello", b"again",
        v2(0x22, "2001:db8::100", "2001:db8::10") + b"hello", b"again"]
assert lines == want, (lines, want)
PY
echo "ok   UDP PROXY v2: the first datagram of each flow (IPv4, IPv6) carries the client's address and port, the next goes as sent"

# TOA, and a SYN with 40 bytes of options.
ip netns exec "$(rs_ns 1)" tcpdump -i r0 -nn -U --immediate-mode -w "$WORK/toa.pcap" 'tcp port 8081' 2>/dev/null &
tcpdump_pid=$!
PIDS+=($tcpdump_pid)
sleep 1
[ "$(ns "$NS_C" curl -s --max-time 5 --local-port 20101 http://198.18.0.10:82/)" = rs1 ] || fail "TOA service (IPv4) did not answer"
[ "$(ns "$NS_C" curl -s --max-time 5 --local-port 20102 'http://[2001:db8::10]:82/')" = rs1 ] || fail "TOA service (IPv6) did not answer"
ns "$NS_C" nft -f - <<'NFT'
table inet xdpvs_test {
    chain out {
        type filter hook output priority 0;
        tcp sport 20103 tcp flags rst drop
    }
}
NFT
dmac=$(ns "$NS_D" cat /sys/class/net/d0/address)
ns "$NS_C" timeout 20 /usr/bin/python3 - "$dmac" <<'PY' || fail "a SYN with 40 option bytes did not connect through the TOA service"
import sys, time
from scapy.all import Ether, IP, TCP, Raw, AsyncSniffer, sendp
E = Ether(dst=sys.argv[1])
C, V = "198.18.0.100", "198.18.0.10"
opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)] + [("NOP", None)] * 21
syn = IP(src=C, dst=V) / TCP(sport=20103, dport=82, flags="S", seq=1000, options=opts)
assert len(syn[TCP]) == 60, len(syn[TCP])
got = []
sn = AsyncSniffer(iface="c0", filter="tcp and src port 82 and dst port 20103", prn=got.append, store=False)
sn.start()
time.sleep(0.5)
def wait(pred, what):
    for _ in range(50):
        m = [p for p in got if pred(p)]
        if m:
            return m[0]
        time.sleep(0.1)
    sys.exit("no " + what)
sendp(E / syn, iface="c0", verbose=False)
sa = wait(lambda p: p[TCP].flags == "SA", "SYN-ACK")
ts = [("NOP", None), ("NOP", None), ("Timestamp", (2, 0))]
sendp(E / IP(src=C, dst=V) / TCP(sport=20103, dport=82, flags="A", seq=1001, ack=sa[TCP].seq + 1, options=ts), iface="c0", verbose=False)
req = b"GET / HTTP/1.0\r\n\r\n"
sendp(E / IP(src=C, dst=V) / TCP(sport=20103, dport=82, flags="PA", seq=1001, ack=sa[TCP].seq + 1, options=ts) / Raw(req), iface="c0", verbose=False)
wait(lambda p: b"rs1" in bytes(p[TCP].payload), "answer from the real server")
sn.stop()
PY
echo "ok   a SYN with 40 bytes of options connected through the TOA service (handshake, request, answer)"
ns "$NS_C" nft delete table inet xdpvs_test
sleep 0.5
kill "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
/usr/bin/python3 - "$WORK/toa.pcap" <<'PY' || fail "TOA on the wire"
import ipaddress, sys
from scapy.all import rdpcap, TCP, IP, IPv6
conns = {}
for p in rdpcap(sys.argv[1]):
    ipl = p[IP] if IP in p else p[IPv6]
    if p[TCP].dport != 8081:
        continue
    conns.setdefault((ipl.src, p[TCP].sport), []).append(p)
clients = {20101: "198.18.0.100", 20102: "2001:db8::100", 20103: "198.18.0.100"}
assert len(conns) == 3, conns.keys()
for key, pkts in conns.items():
    with_toa = [(i, o) for i, p in enumerate(pkts) for o in p[TCP].options if o[0] == 254]
    assert len(with_toa) == 1, (key, [p[TCP].options for p in pkts])
    i, (_, val) = with_toa[0]
    first_ack = next(k for k, p in enumerate(pkts) if not p[TCP].flags & 0x02)
    assert i == first_ack and pkts[i][TCP].flags == "A", (key, i, first_ack, pkts[i][TCP].flags)
    port = int.from_bytes(val[:2], "big")
    addr = str(ipaddress.ip_address(val[2:]))
    assert clients.get(port) == addr, (port, addr)
    print("ok   TOA: connection from %s:%d reached the server with option 254 = %s:%d on its first ACK, on none of its other %d segments" % (key[0], key[1], addr, port, len(pkts) - 1))
PY
xdpvs_down
check_detached
