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
ns "$NS_D" ip addr add 198.19.0.250/32 dev d1
ns "$NS_D" ip -6 addr add 2001:db8:1::250/128 dev d1 nodad
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

# conns_of ADDR PORT: the director's connection count per real server of the
# TCP service ADDR:PORT, by server address (rs1 rs2 rs3), as "c1 c2 c3".
conns_of() {
    sleep 0.1 # the workers publish their counters every 20 ms
    stats_json
    python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
for svc in s["services"]:
    if svc["protocol"] == "TCP" and svc["address"] == sys.argv[2] and svc["port"] == int(sys.argv[3]):
        d = sorted(svc["dests"], key=lambda d: d["address"])
        print(" ".join(str(x["stats"]["conns"]) for x in d))
        sys.exit(0)
sys.exit("no service %s:%s" % (sys.argv[2], sys.argv[3]))' "$WORK/stats.json" "$1" "$2"
}

# ab_check NAME URL ADDR PORT: 6000 requests, 50 at once, a connection each.
ab_check() {
    local name="$1" url="$2" addr="$3" port="$4" out before after
    before=$(conns_of "$addr" "$port")
    out=$(ns "$NS_C" ab -q -n 6000 -c 50 -s 10 "$url" 2>&1) || fail "$name: ab failed: $(tail -3 <<<"$out")"
    grep -q "^Complete requests: *6000$" <<<"$out" || fail "$name: $(grep -E 'Complete|Failed' <<<"$out" | tr '\n' ' ')"
    grep -q "^Failed requests: *0$" <<<"$out" || fail "$name: $(grep -A4 '^Failed' <<<"$out" | tr '\n' ' ')"
    ! grep -q "^Non-2xx" <<<"$out" || fail "$name: $(grep '^Non-2xx' <<<"$out")"
    after=$(conns_of "$addr" "$port")
    # ab may open a few connections beyond -n and close them unused: every
    # connection the director scheduled counts, and wrr's sequence for 3:2:1
    # (rs3 rs3 rs2 rs3 rs2 rs1, repeated; one worker) fixes the exact split
    # of any total.
    local split
    split=$(python3 -c '
import sys
a, b = sys.argv[1].split(), sys.argv[2].split()
got = [int(y) - int(x) for x, y in zip(a, b)]
n = sum(got)
cycle = [3, 3, 2, 3, 2, 1]
want = [0, 0, 0]
start = sum(int(x) for x in a)  # picks made before: where the sequence stands
for k in range(start, start + n):
    want[cycle[k % 6] - 1] += 1
ok = got == want and 6000 <= n <= 6050
print(("ok " if ok else "bad ") + "/".join(map(str, got)) + " of %d (wrr: %s)" % (n, "/".join(map(str, want))))' "$before" "$after")
    [ "${split%% *}" = ok ] || fail "$name: the director scheduled ${split#* } new connections per server"
    echo "ok   $name: ab 6000 requests, 50 concurrent, a connection each: 0 failed; scheduled ${split#ok }, $(awk '/^Requests per second/ {printf "%.0f", $4}' <<<"$out") req/s"
}

# wrk_check NAME URL: 100 keep-alive connections for 5 s, no error.
wrk_check() {
    local name="$1" url="$2" out
    out=$(ns "$NS_C" wrk -t 2 -c 100 -d 5s --timeout 5s "$url" 2>&1) || fail "$name: wrk failed: $out"
    ! grep -qE "Socket errors|Non-2xx" <<<"$out" || fail "$name: $(grep -E 'Socket errors|Non-2xx' <<<"$out")"
    local n
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    [ "${n:-0}" -gt 1000 ] || fail "$name: wrk completed only ${n:-0} requests: $out"
    echo "ok   $name: wrk 100 keep-alive connections, 5 s: $n requests, no error, $(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out") req/s"
}

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
stats_json
drops=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["drops"]
print(" ".join("%s=%d" % (k, v) for k, v in d.items() if v))' "$WORK/stats.json")
[ -z "$drops" ] || fail "packets dropped under load: $drops"
echo "ok   not one packet dropped by the director under load (every drop reason 0)"
xdpvs_down
check_detached
