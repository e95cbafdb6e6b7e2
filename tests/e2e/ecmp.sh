#!/usr/bin/env bash
# Scale-out behind ECMP: a router running BIRD (Debian's bird2; `merge
# paths`, fib_multipath_hash_policy=1) in front of three directors, each
# running xdpvs and BIRD (eBGP with BFD 100 ms x 3), three nginx real
# servers, and a client with 16 addresses. xdpvs enables and disables its
# BIRD's static protocols over the control socket as its health says; the
# directors sync sessions all to all (master and backup on each); each
# director's FULLNAT local address is announced by its owner and, with a
# longer AS path, by the next director, which stands by for it.
#
#   client ── router ══ front switch ══ dir1 dir2 dir3 ══ server switch ══ rs1 rs2 rs3
#                 └────────────────────── server switch (the servers' gateway)
#
# Checked: flows spread over the three directors; a director killed
# (SIGKILL, link down) is withdrawn by BFD, and established connections
# through every director (DR mh, TUN mh, FULLNAT mh with sync) and a wrk
# load survive, those that were on the dead director included; the
# director brought back breaks nothing; a planned drain (xdpvsadm --drain,
# then SIGTERM) breaks nothing; and what the design cannot save (FULLNAT
# without sync, on the director that dies) is counted and named.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
command -v bird >/dev/null || fail "BIRD is not installed (apt-get install bird2)"
bird -p -c configs/bird/director.conf || fail "BIRD refuses the example configs/bird/director.conf"
NS_R="$ID-rt"
VIP=198.18.10.10
dns() { echo "$ID-dir$1"; }
inst() { echo "$ID-d$1"; }
on() { local d="$1"; shift; "$XDPVSADM" --instance "$(inst "$d")" "$@"; }
standby_of() { echo $(($1 % 3 + 1)); } # director D stands by for D+1's local address
trap cleanup EXIT INT TERM

# ---- the topology ----
for n in "$NS_C" "$NS_R" "$NS_S"; do ip netns add "$n"; ns "$n" ip link set lo up; done
ns "$NS_S" ip link add br0 type bridge # the servers' switch (rs_add's)
ns "$NS_S" ip link add br1 type bridge # the directors' front switch
ns "$NS_S" ip link set br0 up
ns "$NS_S" ip link set br1 up
ip link add c0 netns "$NS_C" type veth peer name rc netns "$NS_R"
ip link add rf netns "$NS_R" type veth peer name sf netns "$NS_S"
ip link add rs netns "$NS_R" type veth peer name sr netns "$NS_S"
ns "$NS_S" ip link set sf master br1
ns "$NS_S" ip link set sr master br0
ns "$NS_S" ip link set sf up
ns "$NS_S" ip link set sr up
ns "$NS_C" ip link set c0 up
ns "$NS_C" ethtool -K c0 tx off >/dev/null
SOURCES=""
for a in $(seq 100 115); do
    ns "$NS_C" ip addr add "198.18.0.$a/24" dev c0
    SOURCES="$SOURCES${SOURCES:+,}198.18.0.$a"
done
ns "$NS_C" ip route add default via 198.18.0.1
ns "$NS_R" ip addr add 198.18.0.1/24 dev rc
ns "$NS_R" ip addr add 198.18.1.1/24 dev rf
ns "$NS_R" ip addr add 198.19.0.254/24 dev rs
for l in rc rf rs; do ns "$NS_R" ip link set "$l" up; done
clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -c tests/e2e/rehash.c -o "$WORK/rehash.o"
ns "$NS_R" tc qdisc add dev rc clsact
ns "$NS_R" tc filter add dev rc ingress bpf direct-action obj "$WORK/rehash.o" sec tc
# DR and TUN replies come back from the VIP on the server side: no reverse-path filter.
ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.rc.rp_filter=0 net.ipv4.conf.rf.rp_filter=0 net.ipv4.conf.rs.rp_filter=0
for d in 1 2 3; do
    n=$(dns "$d")
    ip netns add "$n"
    ns "$n" ip link set lo up
    ip link add d0 netns "$n" type veth peer name "sd$d" netns "$NS_S"
    ip link add d1 netns "$n" type veth peer name "ss$d" netns "$NS_S"
    ns "$NS_S" ip link set "sd$d" master br1
    ns "$NS_S" ip link set "ss$d" master br0
    ns "$NS_S" ip link set "sd$d" up
    ns "$NS_S" ip link set "ss$d" up
    ns "$n" ip addr add "198.18.1.1$d/24" dev d0
    ns "$n" ip addr add "198.19.0.$d/24" dev d1
    ns "$n" ip link set d0 up
    ns "$n" ip link set d1 up
    ns "$n" ip route add default via 198.18.1.1
done
for i in 1 2 3; do
    r=$(rs_ns "$i")
    rs_add "$i" 198.19.0 2001:db8:1:
    ns "$r" ip route add default via 198.19.0.254
    ns "$r" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    ns "$r" ip addr add "$VIP/32" dev lo
done
rs_decap
for i in 1 2 3; do for p in 80 81 8082 8083; do rs_nginx "$i" "$p"; done; done
# NAT (:83 → :8083): the servers answer it through director 1, their NAT gateway.
for i in 1 2 3; do
    ns "$(rs_ns "$i")" ip rule add ipproto tcp sport 8083 lookup 83
    ns "$(rs_ns "$i")" ip route add default via 198.19.0.1 table 83
done
links_ready
rs_wait 8082

# ---- BIRD ----
BFD='protocol bfd { interface "IF" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }'
TIMERS='hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2; bfd on;'
cat > "$WORK/bird-r.conf" <<CONF
log "$WORK/bird-r.log" all;
router id 198.18.1.1;
protocol device {}
protocol kernel { ipv4 { import none; export all; }; merge paths on; }
${BFD/IF/rf}
template bgp directors { local 198.18.1.1 as 65000; $TIMERS ipv4 { import all; export none; }; }
protocol bgp dir1 from directors { neighbor 198.18.1.11 as 65001; }
protocol bgp dir2 from directors { neighbor 198.18.1.12 as 65002; }
protocol bgp dir3 from directors { neighbor 198.18.1.13 as 65003; }
CONF
for d in 1 2 3; do
    s=$(standby_of "$d")
    cat > "$WORK/bird-d$d.conf" <<CONF
log "$WORK/bird-d$d.log" all;
router id 198.18.1.1$d;
protocol device {}
${BFD/IF/d0}
# Enabled and disabled by xdpvs (bird_vips, bird_laddrs): down until it says.
protocol static vips { disabled; ipv4; route $VIP/32 blackhole; }
protocol static laddrs { disabled; ipv4; route 198.19.1.$d/32 blackhole; }
protocol static standby { disabled; ipv4; route 198.19.1.$s/32 blackhole; }
protocol bgp fabric {
    local 198.18.1.1$d as 6500$d;
    neighbor 198.18.1.1 as 65000;
    $TIMERS
    ipv4 {
        import none;
        export filter {
            if proto = "standby" then { bgp_path.prepend(6500$d); bgp_path.prepend(6500$d); accept; }
            if proto = "vips" || proto = "laddrs" then accept;
            reject;
        };
    };
}
CONF
done
bird_up() { # NAME NS
    ip netns exec "$2" bird -f -c "$WORK/bird-$1.conf" -s "$WORK/bird-$1.ctl" -P "$WORK/bird-$1.pid" >>"$WORK/bird-$1.out" 2>&1 &
    PIDS+=($!)
    eval "BIRD_$1=$!"
}
bird_up r "$NS_R"

# ---- xdpvs on each director ----
for d in 1 2 3; do
    {
        for p in 80 81 82 83; do echo "-A -t $VIP:$p -s mh"; done
        for i in 1 2 3; do
            echo "-a -t $VIP:80 -r 198.19.0.1$i:80 -g -w 1"
            echo "-a -t $VIP:81 -r 198.19.0.1$i:81 -i -w 1"
            echo "-a -t $VIP:82 -r 198.19.0.1$i:8082 -b -w 1"
            echo "-a -t $VIP:83 -r 198.19.0.1$i:8083 -m -w 1"
        done
        echo "-P -t $VIP:82 -z 198.19.1.$d -F d1"
        echo "--start-daemon master --mcast-interface d1 --syncid 7"
        echo "--start-daemon backup --mcast-interface d1 --syncid 7"
    } > "$WORK/rules-$d"
done
director_up() { # D: BIRD, then xdpvs driving it
    local d="$1" n; n=$(dns "$1")
    bird_up "d$d" "$n"
    ns "$n" mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
    : >"$WORK/xdpvs-$d.log"
    ip netns exec "$n" "$XDPVS" --instance "$(inst "$d")" --iface d0 --iface d1 --cores $((d % 2)) \
        --restore "$WORK/rules-$d" --bird-socket "$WORK/bird-d$d.ctl" --bird-vips vips \
        --bird-laddrs laddrs --bird-laddrs standby --standby-laddr "198.19.1.$(standby_of "$d")" \
        --drain-timeout 5 >"$WORK/xdpvs-$d.log" 2>&1 &
    PIDS+=($!)
    eval "XDPVS_$d=$!"
    for _ in $(seq 1 100); do grep -q " up: " "$WORK/xdpvs-$d.log" && return 0; sleep 0.1; done
    fail "xdpvs on director $d did not come up: $(cat "$WORK/xdpvs-$d.log")"
}
for d in 1 2 3; do director_up "$d"; done

# nexthops PREFIX: the router's next hops for PREFIX, sorted, one line.
nexthops() { ns "$NS_R" ip -4 route show "$1" | grep -o 'via [0-9.]*' | awk '{print $2}' | sort | tr '\n' ' '; }
# until_nexthops PREFIX WANT SECS: prints the seconds it took, or fails.
until_nexthops() {
    local t0; t0=$(date +%s.%N)
    for _ in $(seq 1 $(($3 * 100))); do [ "$(nexthops "$1")" = "$2" ] && break; sleep 0.01; done
    [ "$(nexthops "$1")" = "$2" ] || fail "the router's next hops for $1 are [$(nexthops "$1")], expected [$2]: $(tail -5 "$WORK/bird-r.log")"
    python3 -c "print('%.3f' % ($(date +%s.%N) - $t0))"
}
ALL="198.18.1.11 198.18.1.12 198.18.1.13 "
t=$(until_nexthops "$VIP" "$ALL" 20)
for d in 1 2 3; do until_nexthops "198.19.1.$d" "198.18.1.1$d " 5 >/dev/null; done
on 1 -L --bgp | grep -q "^vips .* announced" || fail "director 1's -L --bgp: $(on 1 -L --bgp)"
echo "ok   three directors announce $VIP through BIRD once xdpvs can serve (the router has 3 equal next hops, $t s after the last start); each local address 198.19.1.D from its owner"

# ---- flows spread over the three directors ----
ns "$NS_C" /usr/bin/python3 - "$VIP" "$SOURCES" <<'PY' || fail "short connections through the VIP failed"
import socket, sys
vip, sources = sys.argv[1], sys.argv[2].split(",")
for k in range(96):
    for port in (80, 81, 82):
        s = socket.create_connection((vip, port), timeout=5, source_address=(sources[k % len(sources)], 0))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        d = b""
        while True:
            x = s.recv(4096)
            if not x:
                break
            d += x
        assert d.startswith(b"HTTP/1.1 200") and b"\r\n\r\nrs" in d, d
        s.close()
PY
conns_of_dir() { on "$1" -L -n --stats --json | python3 -c 'import json,sys; print(sum(s["stats"]["conns"] for s in json.load(sys.stdin)["services"]))'; }
split=""
for d in 1 2 3; do
    c=$(conns_of_dir "$d")
    [ "$c" -gt 0 ] || fail "director $d scheduled no connection of 288: ECMP did not spread"
    split="$split${split:+/}$c"
done
echo "ok   288 short connections (DR, TUN, FULLNAT) from 16 addresses spread over the directors: $split connections"

# ---- NAT behind ECMP: the replies go to the servers' gateway only ----
# 48 new connections at once, each director's share by the router's hash.
ns "$NS_C" /usr/bin/python3 - "$VIP" "$SOURCES" > "$WORK/nat" <<'PY'
import socket, sys, threading
vip, sources = sys.argv[1], sys.argv[2].split(",")
out = []
def one(k):
    s = socket.socket()
    s.settimeout(2)
    s.bind((sources[k % len(sources)], 0))
    try:
        s.connect((vip, 83))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        ok = s.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    out.append("%s %d %s" % (s.getsockname()[0], s.getsockname()[1], "ok" if ok else "failed"))
    s.close()
t = [threading.Thread(target=one, args=(k,)) for k in range(48)]
[x.start() for x in t]
[x.join() for x in t]
print("\n".join(out))
PY
declare -A nat_ok nat_all
while read -r src sport res; do
    via=$(ns "$NS_R" ip route get "$VIP" from "$src" iif rc ipproto tcp sport "$sport" dport 83 | grep -o 'via [0-9.]*' | awk '{print $2}')
    nat_all[$via]=$((${nat_all[$via]:-0} + 1))
    [ "$res" = ok ] && nat_ok[$via]=$((${nat_ok[$via]:-0} + 1))
done < "$WORK/nat"
g_ok=${nat_ok[198.18.1.11]:-0}; g_all=${nat_all[198.18.1.11]:-0}
o_ok=$((${nat_ok[198.18.1.12]:-0} + ${nat_ok[198.18.1.13]:-0})); o_all=$((${nat_all[198.18.1.12]:-0} + ${nat_all[198.18.1.13]:-0}))
[ "$g_all" -gt 0 ] && [ "$g_ok" = "$g_all" ] || fail "NAT through the servers' gateway (director 1): $g_ok of $g_all connected"
echo "ok   NAT behind ECMP, named as the design's limit: through director 1 (the servers' gateway) $g_ok of $g_all new connections succeed; through directors 2 and 3 $o_ok of $o_all (their servers' SYN-ACKs return to director 1, which has no session yet: sync comes later than the handshake; scale NAT out with FULLNAT)"

# ---- long-lived connections and a wrk load through a kill, a return and a drain ----
# via_router SRC SPORT DPORT: the director the router's ECMP sends that flow to.
holder_start() { # NAME CONNS PORTS
    rm -f "$WORK/stop-$1" "$WORK/held-$1" "$WORK/held-$1.ready"
    ns "$NS_C" /usr/bin/python3 tests/e2e/holder.py "$VIP" "$3" "$2" "$SOURCES" "$WORK/stop-$1" "$WORK/held-$1" &
    PIDS+=($!)
    eval "HOLDER_$1=$!"
    for _ in $(seq 1 300); do [ -e "$WORK/held-$1.ready" ] && return 0; sleep 0.1; done
    fail "the long-lived connections ($1) did not all get a first answer"
}
holder_stop() { # NAME
    touch "$WORK/stop-$1"
    eval "wait \$HOLDER_$1" || fail "the connection holder ($1) failed"
}
# on_director D NAME: the holder's connections the router sends to director D (ip route get, the kernel's own hash).
on_director() {
    local d="$1" name="$2"
    ns "$NS_C" ss -Htn state established dst "$VIP" | awk '{print $3, $4}' | while read -r src dst; do
        local via
        via=$(ns "$NS_R" ip route get "$VIP" from "${src%:*}" iif rc ipproto tcp sport "${src##*:}" dport "${dst##*:}" | grep -o 'via [0-9.]*' | awk '{print $2}')
        [ "$via" = "198.18.1.1$d" ] && echo "${src%:*} ${src##*:} ${dst##*:}"
    done > "$WORK/on-$d-$name"
    wc -l < "$WORK/on-$d-$name"
}
# tally NAME ONFILE: per port, "PORT BROKEN TOTAL BROKEN_THERE TOTAL_THERE"
# (there: the connections listed in ONFILE); the broken ones on stderr.
tally() {
    python3 - "$WORK/held-$1" "$2" <<'PY'
import json, sys
held = [json.loads(l) for l in open(sys.argv[1])]
on = {(a, int(p)) for a, p, _ in (l.split() for l in open(sys.argv[2]))}
for port in sorted({h["port"] for h in held}):
    mine = [h for h in held if h["port"] == port]
    there = [h for h in mine if (h["src"], h["sport"]) in on]
    b = lambda hs: sum(1 for h in hs if h["broken"])
    print(port, b(mine), len(mine), b(there), len(there))
for h in held:
    if h["broken"]:
        print("broken: %s" % json.dumps(h), file=sys.stderr)
PY
}
holder_start main 24 80,81,82
ns "$NS_C" wrk -t 1 -c 8 -d 24s --timeout 8s "http://$VIP:80/" > "$WORK/wrk80" 2>&1 &
WRK80=$!
ns "$NS_C" wrk -t 1 -c 8 -d 24s --timeout 8s "http://$VIP:82/" > "$WORK/wrk82" 2>&1 &
WRK82=$!
PIDS+=("$WRK80" "$WRK82")
sleep 1.5 # established sessions are synced at once; 1.5 s covers the wire
n2=$(on_director 2 main)
[ "$n2" -gt 0 ] || fail "no long-lived connection goes through director 2"

# 1. Director 2 dies: xdpvs and BIRD killed, its link down.
# The link first: nothing (no FIN of BIRD's BGP session) tells the router; BFD must.
ns "$(dns 2)" ip link set d0 down
kill -9 "$XDPVS_2" "$BIRD_d2"
wait "$XDPVS_2" "$BIRD_d2" 2>/dev/null || true # (bash would report the kills on stderr)
t_kill=$(until_nexthops "$VIP" "198.18.1.11 198.18.1.13 " 3)
python3 -c "import sys; sys.exit(0 if $t_kill < 1.0 else 1)" || fail "the dead director's route was withdrawn after $t_kill s, not within 1 s"
until_nexthops 198.19.1.2 "198.18.1.11 " 3 >/dev/null
echo "ok   director 2 killed (SIGKILL, link down): BFD noticed and the router withdrew its route in $t_kill s; its local address 198.19.1.2 now reaches director 1, which stands by for it"
sleep 4

# 2. Director 2 comes back.
ns "$(dns 2)" ip link set d0 up
ns "$(dns 2)" ip route replace default via 198.18.1.1 # the link's fall took it
director_up 2
t_back=$(until_nexthops "$VIP" "$ALL" 20)
until_nexthops 198.19.1.2 "198.18.1.12 " 5 >/dev/null
echo "ok   director 2 back: announced again $t_back s after xdpvs started (after its bulk sync), its local address from itself again"
sleep 3

# 3. Director 3 drained by hand, then stopped.
n3=$(on_director 3 main)
on 3 --drain
t_drain=$(until_nexthops "$VIP" "198.18.1.11 198.18.1.12 " 3)
on 3 -L --bgp | grep -q "drained by hand" || fail "-L --bgp after --drain: $(on 3 -L --bgp)"
until_nexthops 198.19.1.3 "198.18.1.13 " 1 >/dev/null # its local address stays while it runs
sleep 2
kill -TERM "$XDPVS_3"
wait "$XDPVS_3" || fail "xdpvs on director 3 exited badly at SIGTERM: $(tail -5 "$WORK/xdpvs-3.log")"
grep -q "BGP: drained in" "$WORK/xdpvs-3.log" || fail "director 3 did not drain before stopping: $(tail -8 "$WORK/xdpvs-3.log")"
until_nexthops 198.19.1.3 "198.18.1.12 " 2 >/dev/null
echo "ok   director 3 drained (xdpvsadm --drain): the router moved its flows $t_drain s later while its local address stayed; then SIGTERM: $(sed -n 's/.*BGP: \(drained in [0-9.]* s\).*/\1/p' "$WORK/xdpvs-3.log"), 198.19.1.3 handed to director 2"
sleep 3
holder_stop main
wait "$WRK80" "$WRK82" || true
# drops D: director D's drops by reason and sync counters, one line (for failures).
drops() {
    on "$1" -L -n --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); print({k:v for k,v in s["drops"].items() if v})' || echo "(director $1 not running)"
}
for d in 1 2; do
    echo "director $d: drops $(drops "$d"); $(on "$d" -L --daemon --stats | grep -E '^(Sent|Received|Workers)' | tr '\n' ' ')"
    on "$d" -L -n -c > "$WORK/conns-$d-main" 2>&1 || true
done > "$WORK/drops-main"
tally main "$WORK/on-2-main" > "$WORK/tally-2" 2>"$WORK/broken-main"
tally main "$WORK/on-3-main" > "$WORK/tally-3" 2>/dev/null
while read -r p broken total b2 t2; do
    mode=$(case $p in 80) echo "DR mh";; 81) echo "TUN mh";; 82) echo "FULLNAT mh + sync";; esac)
    read -r _ _ _ b3 t3 < <(grep "^$p " "$WORK/tally-3")
    if [ "$broken" != 0 ]; then
        for sp in $(grep -o '"sport": [0-9]*' "$WORK/broken-main" | awk '{print $2}'); do
            echo "client port $sp: director 1: $(grep ":$sp " "$WORK/conns-1-main" | tr -s ' ') | director 2: $(grep ":$sp " "$WORK/conns-2-main" | tr -s ' ')"
        done >> "$WORK/drops-main"
        fail "$mode: $broken of $total long-lived connections broken through the kill, return and drain ($b2 of the $t2 on the killed director, $b3 of the $t3 on the drained one): $(cat "$WORK/broken-main" "$WORK/drops-main"; tail -5 "$WORK/xdpvs-3.log")"
    fi
    echo "ok   $mode: 0 of $total long-lived connections broken across the kill, the return and the drain ($t2 of them were on the killed director, $t3 on the drained one)"
done < "$WORK/tally-2"
for p in 80 82; do
    ! grep -qE "Socket errors|Non-2xx" "$WORK/wrk$p" || fail "wrk on :$p: $(grep -E 'Socket errors|Non-2xx' "$WORK/wrk$p")"
    reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk$p")
    [ "${reqs:-0}" -gt 1000 ] || fail "wrk on :$p completed ${reqs:-0} requests: $(cat "$WORK/wrk$p")"
    echo "ok   wrk 8 keep-alive connections on :$p for 24 s across all three events: $reqs requests, 0 errors"
done

# ---- what the design cannot save: FULLNAT without sync, on the director that dies ----
# (and a crash of xdpvs alone: the watchdog withdraws for it)
for d in 1 2; do on "$d" --stop-daemon master; on "$d" --stop-daemon backup; done
holder_start nosync 24 80,82
sleep 1
n1=$(on_director 1 nosync)
# This time only xdpvs dies (BIRD and the link stay): its watchdog withdraws.
kill -9 "$XDPVS_1"
wait "$XDPVS_1" 2>/dev/null || true
t_crash=$(until_nexthops "$VIP" "198.18.1.12 " 3)
python3 -c "import sys; sys.exit(0 if $t_crash < 1.0 else 1)" || fail "xdpvs killed alone: its VIP withdrawn after $t_crash s"
grep -q "BGP watchdog: withdrawn in" "$WORK/xdpvs-1.log" || fail "director 1's watchdog: $(tail -5 "$WORK/xdpvs-1.log")"
echo "ok   xdpvs alone killed on director 1 (SIGKILL; BIRD and the link up): its watchdog withdrew the VIP and the local addresses, the router $t_crash s after the kill"
sleep 2
holder_stop nosync
tally nosync "$WORK/on-1-nosync" > "$WORK/tally-nosync" 2>/dev/null
read -r _ dr_broken dr_total _ _ < <(grep "^80 " "$WORK/tally-nosync")
read -r _ fn_broken fn_total lost there < <(grep "^82 " "$WORK/tally-nosync")
[ "$dr_broken" = 0 ] || fail "DR mh without sync: $dr_broken of $dr_total connections broken (mh needs no shared state)"
[ "$there" -gt 0 ] || fail "no FULLNAT connection went through director 1"
[ "$lost" = "$there" ] || fail "FULLNAT without sync: $lost of $there connections on the killed director broke; every one should (nobody else knows their local port); director 2: drops $(drops 2), sync: $(on 2 -L --daemon --stats | tr '\n' ' ')"
echo "ok   without sync, after that kill: DR mh 0 of $dr_total connections broken (its table needs no shared state); FULLNAT $lost of the $there connections on the killed director broken, as the design must (no other director knows their local ports: run the sync daemons); $fn_broken of $fn_total in all"
