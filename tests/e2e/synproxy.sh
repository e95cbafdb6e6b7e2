#!/usr/bin/env bash
# The SYN proxy (-j enable) with nginx real servers, NAT and FULLNAT, IPv4
# and IPv6: curl (a 100 MiB transfer byte-exact) and ab through every
# service; then a spoofed SYN flood (perf gen --spoof, AF_XDP, sources all
# over 198.18.128.0/17) at the NAT service while a client keeps connecting:
# tcpdump on every server counts the SYNs that reach it (none from a
# spoofed source), the session table holds none of them, and the client's
# connections succeed (rate and p99 connect time printed). An ACK with a
# forged cookie gets a RST back (tcpdump on the client) and is counted.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
PERF=${PERF:-$PWD/target/release/perf}
topo_up fullnat
director_laddrs
# NAT too: the servers route the client network (only) back via the director.
for i in 1 2 3; do
    ns "$(rs_ns "$i")" ip route add 198.18.0.0/24 via 198.19.0.1
    ns "$(rs_ns "$i")" ip -6 route add 2001:db8::/64 via 2001:db8:1::1
done
# The director's answers to spoofed sources go back toward the client side,
# where nobody holds those addresses (a flood's backscatter).
ns "$NS_D" ip route add 198.18.128.0/17 via 198.18.0.100
head -c $((100 * 1048576)) /dev/urandom > "$WORK/big"
for i in 1 2 3; do rs_nginx "$i" 8080; done
rs_wait 8080
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s rr -j enable
-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m
-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m
-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m
-A -t 198.18.0.10:81 -s rr --synproxy enable
-a -t 198.18.0.10:81 -r 198.19.0.11:8080 -b
-a -t 198.18.0.10:81 -r 198.19.0.12:8080 -b
-a -t 198.18.0.10:81 -r 198.19.0.13:8080 -b
-P -t 198.18.0.10:81 -z 198.19.0.250 -F d1
-A -t [2001:db8::10]:80 -s rr -j enable
-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m
-a -t [2001:db8::10]:80 -r [2001:db8:1::12]:8080 -m
-A -t [2001:db8::10]:81 -s rr -j enable
-a -t [2001:db8::10]:81 -r [2001:db8:1::11]:8080 -b
-a -t [2001:db8::10]:81 -r [2001:db8:1::12]:8080 -b
-P -t [2001:db8::10]:81 -z 2001:db8:1::250 -F d1
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1

# The switch as ipvsadm shows it and writes it back.
adm -L -n | grep -q "^TCP  198.18.0.10:80 rr synproxy$" || fail "-L does not show synproxy: $(adm -L -n | head -3)"
[ "$(adm -S -n | grep -c -- ' -j enable$')" = 4 ] || fail "-S does not write -j enable: $(adm -S -n | grep -- '-A')"
out=$(adm -a -t 198.18.0.10:80 -r 198.19.0.14:8080 -g 2>&1) && fail "a DR server was added to a SYN-proxied service"
grep -q "needs NAT (-m) or FULLNAT (-b)" <<<"$out" || fail "DR refusal does not say why: $out"
echo "ok   -j/--synproxy enable shown by -L ('synproxy') and written back by -S; a DR server refused by name"

# Every SYN that reaches a server, from here on.
for i in 1 2 3; do
    ip netns exec "$(rs_ns "$i")" tcpdump -i r0 -n -U --immediate-mode -w "$WORK/rs$i.pcap" 'tcp[tcpflags] & tcp-syn != 0 and tcp dst port 8080' 2>/dev/null &
    PIDS+=($!)
done
sleep 1

for url in http://198.18.0.10/ http://198.18.0.10:81/ 'http://[2001:db8::10]/' 'http://[2001:db8::10]:81/'; do
    for _ in $(seq 1 10); do
        grep -qx 'rs[123]' <<<"$(ns "$NS_C" curl -s --max-time 3 "$url")" || fail "curl through the SYN proxy at $url failed"
    done
done
echo "ok   curl through the SYN proxy: 10 requests each through NAT and FULLNAT, IPv4 and IPv6"
check_big http://198.18.0.10/big
check_big http://198.18.0.10:81/big
check_big 'http://[2001:db8::10]:81/big'
for url in http://198.18.0.10/ http://198.18.0.10:81/ 'http://[2001:db8::10]/' 'http://[2001:db8::10]:81/'; do
    out=$(ns "$NS_C" ab -q -n 2000 -c 20 -s 10 "$url" 2>&1) || fail "ab through $url failed: $(tail -3 <<<"$out")"
    grep -q "^Complete requests: *2000$" <<<"$out" && grep -q "^Failed requests: *0$" <<<"$out" \
        || fail "ab through $url: $(grep -E 'Complete|Failed' <<<"$out" | tr '\n' ' ')"
    echo "ok   ab through the SYN proxy at $url: 2000 requests, 20 concurrent, a connection each, 0 failed ($(awk '/^Requests per second/ {printf "%.0f", $4}' <<<"$out") req/s)"
done
stats_json
read -r cookies accepted spliced waited < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
w = lambda k: sum(x[k] for x in s["workers"])
print(w("synproxy_cookies"), w("synproxy_accepted"), w("synproxy_spliced"), s["drops"]["synproxy_no_answer"])' "$WORK/stats.json")
[ "$accepted" -ge 8040 ] && [ "$spliced" = "$accepted" ] && [ "$cookies" -ge "$accepted" ] && [ "$waited" = 0 ] \
    || fail "SYN proxy counters: $cookies cookies, $accepted accepted, $spliced spliced, $waited given up"
echo "ok   every connection spliced: $cookies SYNs answered with a cookie, $accepted cookie ACKs opened a server connection, $spliced server SYN-ACKs spliced, 0 client segments given up"

# A forged cookie: a RST back, counted, nothing opened.
ip netns exec "$NS_C" tcpdump -i c0 -n -U --immediate-mode -w "$WORK/rst.pcap" 'tcp src port 80 and tcp dst port 31999' 2>/dev/null &
RST_DUMP=$!
PIDS+=($!)
sleep 0.5
dmac=$(ns "$NS_D" cat /sys/class/net/d0/address)
ns "$NS_C" /usr/bin/python3 - "$dmac" <<'PY'
import sys
from scapy.all import Ether, IP, TCP, sendp
sendp([Ether(dst=sys.argv[1]) / IP(src="198.18.0.100", dst="198.18.0.10") / TCP(sport=31999, dport=80, flags="A", seq=1000, ack=123456 + k) for k in range(5)], iface="c0", verbose=False)
PY
sleep 0.5
kill "$RST_DUMP" 2>/dev/null; wait "$RST_DUMP" 2>/dev/null || true
rsts=$(tshark -r "$WORK/rst.pcap" -Y 'tcp.flags.reset == 1' 2>/dev/null | wc -l)
stats_json
bad=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["drops"]["synproxy_bad_cookie"])' "$WORK/stats.json")
[ "$rsts" = 5 ] && [ "$bad" = 5 ] || fail "forged cookies: $rsts RSTs seen, $bad counted (5 sent)"
echo "ok   5 ACKs with forged cookies: 5 RSTs back to the client (tshark), synproxy_bad_cookie 5"

# The flood, with a client connecting all along.
before=$(for i in 1 2 3; do tshark -r "$WORK/rs$i.pcap" 2>/dev/null | wc -l; done | awk '{n += $1} END {print n}')
cmac=$(ns "$NS_C" cat /sys/class/net/c0/address)
ns "$NS_C" "$PERF" gen --iface c0 --src-mac "$cmac" --dst-mac "$dmac" --src 198.18.0.100 --dst 198.18.0.10:80 \
    --tcp --spoof 198.18.128.0/17 --pps 100000 --seconds 6 > "$WORK/flood.json" 2>&1 &
FLOOD=$!
PIDS+=($!)
sleep 0.5
ns "$NS_C" /usr/bin/python3 - > "$WORK/clients.txt" <<'PY'
import socket, time
ok, times = 0, []
deadline = time.time() + 4.5
n = 0
while time.time() < deadline:
    n += 1
    s = socket.socket()
    s.settimeout(3)
    t = time.perf_counter()
    try:
        s.connect(("198.18.0.10", 80))
        times.append(time.perf_counter() - t)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        if s.recv(4096).split(b"\r\n")[0].endswith(b"200 OK"):
            ok += 1
    except OSError:
        pass
    s.close()
times.sort()
p99 = times[int(len(times) * 0.99) - 1] if times else 0
print(n, ok, "%.2f" % (p99 * 1000), "%.2f" % (times[len(times) // 2] * 1000 if times else 0))
PY
wait "$FLOOD" || fail "the flood could not be sent: $(cat "$WORK/flood.json")"
read -r tried served p99 p50 < "$WORK/clients.txt"
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$WORK/flood.json")
sleep 0.5
adm -L -c -n > "$WORK/conns.txt"
spoofed_sessions=$(grep -cE ' 198\.18\.(1(2[89]|[3-9][0-9])|2[0-5][0-9])\.[0-9]+:' "$WORK/conns.txt" || true)
sleep 0.5
spoofed_syns=0
total=0
for i in 1 2 3; do
    n=$(tshark -r "$WORK/rs$i.pcap" -Y 'ip.src == 198.18.128.0/17' 2>/dev/null | wc -l)
    spoofed_syns=$((spoofed_syns + n))
    total=$((total + $(tshark -r "$WORK/rs$i.pcap" 2>/dev/null | wc -l)))
done
stats_json
cookies_after=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(w["synproxy_cookies"] for w in s["workers"]))' "$WORK/stats.json")
[ "$spoofed_syns" = 0 ] || fail "$spoofed_syns SYNs from spoofed sources reached the servers"
[ "$spoofed_sessions" = 0 ] || fail "$spoofed_sessions sessions for spoofed sources in the table"
answered=$((cookies_after - cookies - tried))
reached=$((total - before))
[ "$answered" -ge $((sent * 9 / 10)) ] || fail "only $answered of $sent spoofed SYNs were answered with a cookie"
[ "$reached" -ge "$served" ] && [ "$reached" -le "$tried" ] || fail "$reached SYNs reached the servers for $served served client connections"
[ "$tried" -ge 20 ] && [ $((served * 100)) -ge $((tried * 99)) ] || fail "under the flood $served of $tried client connections were served"
echo "ok   a spoofed SYN flood ($sent SYNs in 6 s from 198.18.128.0/17, about $answered answered with cookies): 0 reached a server (tcpdump: $reached SYNs in all, one per real client connection), 0 sessions for them; a client meanwhile: $served of $tried connections served, connect p50 ${p50} ms, p99 ${p99} ms"
xdpvs_down
check_detached
