#!/usr/bin/env bash
# Connection sync between two directors, in IPVS's protocol (version 1):
#
#   client ── brc ──┬── d0 A d1 ──┬── br0 ── rs1..rs3 (nginx on 80-83, the VIP on lo,
#                   └── d0 B d1 ──┘                    the IPIP decapsulator, gw .254)
#
# keepalived (Debian's, VRRP only) moves the VIP (198.18.0.10 on d0) and,
# in the same sync group, the real servers' gateway (198.19.0.254) and the
# FULLNAT local address (198.19.0.250) on d1. Four services, one per
# forwarding method: DR :80, NAT :81, FULLNAT :82, TUN :83. Both directors
# run a master and a backup sync daemon on d1 (`--start-daemon`, as
# ipvsadm), so whichever holds the VIP tells the other.
#
# Checked: the wire (tshark decodes our datagrams as IPVS; a kernel-format
# message built by scapy installs a connection; malformed datagrams are
# counted and ignored); failover during paced transfers and wrk keep-alive
# load in every mode, twice (the master's keepalived stopped, then the new
# master's links down): byte-exact, no wrk error, and the backup listed the
# connections before each switch; bulk sync: a backup started after the
# master holds 10,000 connections has them within 2 s.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
command -v keepalived >/dev/null || fail "keepalived is not installed (apt-get install keepalived)"
command -v tshark >/dev/null || fail "tshark is not installed (apt-get install tshark)"
BIG_MB=${BIG_MB:-40}

topo_sync_pair() {
    trap cleanup EXIT INT TERM
    for n in "$NS_C" "$NS_D" "$NS_D2" "$NS_S"; do ip netns add "$n"; ns "$n" ip link set lo up; done
    ns "$NS_S" ip link add brc type bridge
    ns "$NS_S" ip link add br0 type bridge
    ip link add c0 netns "$NS_C" type veth peer name sc netns "$NS_S"
    ip link add d0 netns "$NS_D" type veth peer name sa0 netns "$NS_S"
    ip link add d1 netns "$NS_D" type veth peer name sa1 netns "$NS_S"
    ip link add d0 netns "$NS_D2" type veth peer name sb0 netns "$NS_S"
    ip link add d1 netns "$NS_D2" type veth peer name sb1 netns "$NS_S"
    for p in sc sa0 sb0; do ns "$NS_S" ip link set "$p" master brc; done
    for p in sa1 sb1; do ns "$NS_S" ip link set "$p" master br0; done
    for p in brc br0 sc sa0 sb0 sa1 sb1; do ns "$NS_S" ip link set "$p" up; done
    client_up
    local n a=2
    for n in "$NS_D" "$NS_D2"; do
        ns "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
        ns "$n" ip addr add "198.18.0.$a/24" dev d0
        ns "$n" ip addr add "198.19.0.$a/24" dev d1
        ns "$n" ip link set d0 up
        ns "$n" ip link set d1 up
        # DR and TUN replies come back through the director (it is the
        # servers' router here) with the VIP, its own address, as source.
        ns "$n" sysctl -qw net.ipv4.conf.all.accept_local=1 net.ipv4.conf.d1.accept_local=1 net.ipv4.conf.d1.rp_filter=0
        a=$((a + 1))
    done
    for i in $(seq 1 "$RS_COUNT"); do
        local r; r=$(rs_ns "$i")
        rs_add "$i" 198.19.0 2001:db8:1:
        ns "$r" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
        ns "$r" ip addr add 198.18.0.10/32 dev lo
        ns "$r" ip route add default via 198.19.0.254 onlink dev r0
    done
    links_ready
}
topo_sync_pair
head -c $((BIG_MB * 1048576)) /dev/urandom > "$WORK/big"
rs_decap
for i in 1 2 3; do for p in 80 81 82 83 84; do rs_nginx "$i" "$p"; done; done
rs_wait 80

cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.19.0.11 -g
-a -t 198.18.0.10:80 -r 198.19.0.12 -g
-a -t 198.18.0.10:80 -r 198.19.0.13 -g
-A -t 198.18.0.10:81 -s rr
-a -t 198.18.0.10:81 -r 198.19.0.11:81 -m
-a -t 198.18.0.10:81 -r 198.19.0.12:81 -m
-a -t 198.18.0.10:81 -r 198.19.0.13:81 -m
-A -t 198.18.0.10:82 -s rr
-a -t 198.18.0.10:82 -r 198.19.0.11:82 -b
-a -t 198.18.0.10:82 -r 198.19.0.12:82 -b
-a -t 198.18.0.10:82 -r 198.19.0.13:82 -b
-P -t 198.18.0.10:82 -z 198.19.0.250 -F d1
-A -t 198.18.0.10:83 -s rr
-a -t 198.18.0.10:83 -r 198.19.0.11 -i
-a -t 198.18.0.10:83 -r 198.19.0.12 -i
-a -t 198.18.0.10:83 -r 198.19.0.13 -i
-A -u 198.18.0.10:90 -s rr
-a -u 198.18.0.10:90 -r 198.19.0.11:90 -m
-a -u 198.18.0.10:90 -r 198.19.0.12:90 -m
-A -t 198.18.0.10:84 -s rr -j enable
-a -t 198.18.0.10:84 -r 198.19.0.11:84 -m
-a -t 198.18.0.10:84 -r 198.19.0.12:84 -m
-a -t 198.18.0.10:84 -r 198.19.0.13:84 -m
RULES

# keepalived.conf NAME PRIORITY: both BACKUP with nopreempt, so a director
# whose keepalived comes back does not take the VIP back (each switch is one
# the test makes).
keepalived_conf() {
    cat <<CONF
global_defs {
    router_id $1
    lvs_sync_daemon d1 VI_1 id 7
}
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
}
vrrp_instance VI_1 {
    state BACKUP
    nopreempt
    interface d0
    virtual_router_id 61
    priority $2
    advert_int 1
    virtual_ipaddress {
        198.18.0.10/32 dev d0
    }
}
vrrp_instance VI_2 {
    state BACKUP
    nopreempt
    interface d1
    virtual_router_id 62
    priority $2
    advert_int 1
    virtual_ipaddress {
        198.19.0.254/24 dev d1
        198.19.0.250/32 dev d1
    }
}
CONF
}
keepalived_conf dirA 150 > "$WORK/ka-a.conf"
keepalived_conf dirB 100 > "$WORK/ka-b.conf"
# keepalived 2.2.7 itself cannot take lvs_sync_daemon on a kernel without
# IPVS (its VRRP process dies of SIGSEGV after "Can't initialize ipvs"): it
# gets the file without that line; xdpvs-checker gets the whole file.
for x in a b; do sed '/lvs_sync_daemon/d' "$WORK/ka-$x.conf" > "$WORK/ka-$x-vrrp.conf"; done
keepalived_up() {
    local x="$1" n="$2"
    ip netns exec "$n" keepalived -P -n -l -f "$WORK/ka-$x-vrrp.conf" -p "$WORK/ka-$x.pid" -r "$WORK/ka-$x-vrrp.pid" \
        >>"$WORK/keepalived-$x.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "KA_$x=$pid"
}
A="$ID"; B="$ID-b"
daemon_up() {
    local x="$1" n="$2" inst="$3"
    ns "$n" mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
    : >"$WORK/xdpvs-$x.log" # a restart must not read the last run's " up: "
    ip netns exec "$n" "$XDPVS" --instance "$inst" --iface d0 --iface d1 --restore "$WORK/rules" >"$WORK/xdpvs-$x.log" 2>&1 &
    eval "XDPVS_$x=$!"
    PIDS+=($!)
    for _ in $(seq 1 100); do grep -q " up: " "$WORK/xdpvs-$x.log" && return 0; sleep 0.1; done
    fail "xdpvs on director $x did not come up: $(cat "$WORK/xdpvs-$x.log")"
}
on() { local inst="$1"; shift; "$XDPVSADM" --instance "$inst" "$@"; }
daemon_up a "$NS_D" "$A"
daemon_up b "$NS_D2" "$B"

# ---- the wire ----

# The daemons, as ipvsadm starts and lists them.
on "$A" --start-daemon master --mcast-interface d1 --syncid 7
on "$A" --start-daemon backup --mcast-interface d1 --syncid 7
on "$B" --start-daemon backup --mcast-interface d1 --syncid 7
want="master sync daemon (mcast=d1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
backup sync daemon (mcast=d1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
for _ in $(seq 1 20); do [ "$(on "$A" -L --daemon)" = "$want" ] && break; sleep 0.1; done
[ "$(on "$A" -L --daemon)" = "$want" ] || fail "-L --daemon: $(on "$A" -L --daemon)"
out=$(on "$A" --start-daemon master --mcast-interface d1 2>&1) && fail "a second master daemon was accepted"
grep -q "Daemon has already run" <<<"$out" || fail "second master: $out"
out=$(on "$B" --stop-daemon master 2>&1) && fail "stopping a daemon that does not run was accepted"
grep -q "No daemon is running" <<<"$out" || fail "stop: $out"
out=$(on "$B" --start-daemon master --mcast-interface nosuch0 2>&1) && fail "an unknown interface was accepted"
grep -q "no interface named 'nosuch0'" <<<"$out" || fail "unknown interface: $out"
echo "ok   --start-daemon/--stop-daemon/-L --daemon as ipvsadm (its defaults, its errors: 'Daemon has already run', 'No daemon is running'; an unknown interface named)"

keepalived_up a "$NS_D"
keepalived_up b "$NS_D2"
holds_vip() { ns "$1" ip -4 addr show dev d0 | grep -q '198.18.0.10/32'; }
for _ in $(seq 1 100); do holds_vip "$NS_D" && ! holds_vip "$NS_D2" && break; sleep 0.1; done
holds_vip "$NS_D" && ! holds_vip "$NS_D2" || fail "A did not become VRRP master: $(tail -5 "$WORK/keepalived-a.log")"

# One connection per mode, captured on the sync link and decoded by tshark.
ns "$NS_S" tcpdump -i br0 -U --immediate-mode -w "$WORK/sync.pcap" udp port 8848 >/dev/null 2>&1 &
CAP=$!; PIDS+=("$CAP")
sleep 1
# FULLNAT (:82) last: its records carry xdpvs's local-address option, which
# Wireshark's IPVS dissector does not skip by the record's size, so a record
# after one in the same datagram decodes wrongly (receivers skip it: its
# type has the 0x40 "skippable" bit).
for p in 80 81 83 82; do
    for _ in $(seq 1 30); do
        ns "$NS_C" curl -s --max-time 2 -o /dev/null "http://198.18.0.10:$p/" && break
        sleep 0.2
    done
    ns "$NS_C" curl -s --max-time 5 "http://198.18.0.10:$p/" | grep -q "^rs[123]$" || { on "$A" -L -n --cores >&2; on "$A" -L -n -c >&2; fail "no answer through :$p on A"; }
done
sleep 0.5
kill "$CAP"; wait "$CAP" 2>/dev/null || true
tshark -r "$WORK/sync.pcap" -T fields -E separator=' ' -e ipvs.syncid -e ipvs.caddr -e ipvs.vport -e ipvs.daddr -e ipvs.state \
    -e ipvs.flags.v1 -Y ipvs > "$WORK/decoded" 2>"$WORK/tshark.err" || fail "tshark: $(cat "$WORK/tshark.err")"
for p in 80 81 82 83; do
    grep -qE "^7 198\.18\.0\.100(,[^ ]*)? ([0-9,]*,)?$p(,[0-9,]*)? " "$WORK/decoded" \
        || fail "tshark found no IPVS record for VIP port $p: $(head -5 "$WORK/decoded")"
done
echo "ok   tshark decodes the master's datagrams as IPVS sync v1: syncid 7, the client, the VIP port of each mode (DR, NAT, FULLNAT, TUN), the server, the state ($(wc -l < "$WORK/decoded") datagrams)"

# A kernel-format message, built by scapy from ip_vs_sync.c's layout (not
# our encoder), sent from a real server onto the sync link: B installs it.
conns_on() { on "$1" -L -n -c; }
ns "$(rs_ns 1)" /usr/bin/python3 - <<'PY' || fail "scapy could not send the kernel-format message"
import struct, socket
from scapy.all import IP, UDP, Raw, send, conf
conf.verb = 0
ip = lambda a: socket.inet_aton(a)
# struct ip_vs_sync_v4: type, protocol, ver_size, flags, state, cport, vport,
# dport, fwmark, timeout, caddr, vaddr, daddr (36 bytes).
rec = struct.pack("!BBHIHHHHII4s4s4s", 0, 6, 36, 0x0000, 1, 33333, 81, 81, 0, 900,
                  ip("198.18.0.77"), ip("198.18.0.10"), ip("198.19.0.12"))
msg = struct.pack("!BBHBbH", 0, 7, 8 + len(rec), 1, 1, 0) + rec
send(IP(src="198.19.0.11", dst="224.0.0.81", ttl=1) / UDP(sport=40000, dport=8848) / Raw(msg), iface="r0")
PY
for _ in $(seq 1 20); do conns_on "$B" | grep -q '198.18.0.77:33333' && break; sleep 0.1; done
conns_on "$B" | grep -E '^TCP .* ESTABLISHED +198\.18\.0\.77:33333 +198\.18\.0\.10:81 +198\.19\.0\.12:81' >/dev/null \
    || fail "B did not install the kernel-format record: $(conns_on "$B")"
echo "ok   a kernel-format message (scapy, ip_vs_sync.c's layout): B lists TCP ESTABLISHED 198.18.0.77:33333 → 198.18.0.10:81 → 198.19.0.12:81"

# Malformed datagrams: counted by reason, nothing installed, nothing crashes.
before=$(on "$B" -L --daemon --json)
ns "$(rs_ns 1)" /usr/bin/python3 - <<'PY'
import os, random, struct, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
dst = ("224.0.0.81", 8848)
ip = lambda a: socket.inet_aton(a)
rec = struct.pack("!BBHIHHHHII4s4s4s", 0, 6, 36, 0, 1, 33334, 81, 81, 0, 900, ip("198.18.0.78"), ip("198.18.0.10"), ip("198.19.0.12"))
hdr = lambda n, size, ver=1: struct.pack("!BBHBbH", 0, 7, size, n, ver, 0)
s.sendto(b"\x00\x07", dst)                                   # short
s.sendto(hdr(1, 100) + rec, dst)                             # size mismatch
rec79 = rec[:24] + ip("198.18.0.79") + rec[28:]
s.sendto(hdr(3, 8 + 36) + rec79, dst)                        # more records than bytes: the first stands, as in IPVS
s.sendto(struct.pack("!BBHBbH", 0, 7, 44, 1, 2, 0) + rec, dst)  # another version
bad_ver = bytearray(rec); bad_ver[2] = 0x10                  # record version 1
s.sendto(hdr(1, 44) + bytes(bad_ver), dst)
bad_state = bytearray(rec); bad_state[9] = 99
s.sendto(hdr(1, 44) + bytes(bad_state), dst)
random.seed(7)
for _ in range(300):
    n = random.randint(0, 300)
    b = bytearray(os.urandom(n))
    if n >= 4 and random.random() < 0.7:
        b[0:4] = struct.pack("!BBH", 0, 7, n)
    s.sendto(bytes(b), dst)
PY
sleep 1
python3 - "$before" "$(on "$B" -L --daemon --json)" <<'PY' || fail "malformed datagrams were not all counted"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
bad = lambda v: dict(v["stats"]["bad_datagrams"])
skipped = lambda v: dict(v["stats"]["bad_records"])
d = {k: bad(b)[k] - bad(a)[k] for k in bad(b)}
r = {k: skipped(b)[k] - skipped(a)[k] for k in skipped(b)}
got = b["stats"]["received_datagrams"] - a["stats"]["received_datagrams"]
for k in ("short", "size_mismatch", "truncated", "version0", "record_version"):
    assert d[k] >= 1, (k, d)
assert r["bad_state"] >= 1, r
assert got >= 306, got  # and any of A's own in the meantime
print("ok   306 malformed or random datagrams at B: every one received, dropped by reason (%s), skipped records (%s)" % (
    ", ".join("%s %d" % kv for kv in d.items() if kv[1]), ", ".join("%s %d" % kv for kv in r.items() if kv[1])))
PY
! conns_on "$B" | grep -q '198.18.0.78' || fail "a malformed record was installed"
conns_on "$B" | grep -q '198.18.0.79' || fail "the good record before a truncation was not installed (IPVS installs it)"
kill -0 "$XDPVS_b" || fail "B's xdpvs died on malformed datagrams"
echo "ok   B kept the good record before a truncation (as IPVS does), installed no malformed one, and runs on"

# An IPv6 group: the same records over ff02::81 (link-local sources).
on "$A" --stop-daemon master
on "$A" --start-daemon master --mcast-interface d1 --syncid 7 --mcast-group ff02::81
on "$B" --stop-daemon backup
on "$B" --start-daemon backup --mcast-interface d1 --syncid 7 --mcast-group ff02::81
on "$A" -L --daemon | grep -q "^master sync daemon (mcast=d1, syncid=7, maxlen=1452, group=ff02::81, port=8848, ttl=1)$" \
    || fail "IPv6 group: $(on "$A" -L --daemon)"
sleep 0.5
ns "$NS_C" curl -s --max-time 5 --local-port 20555 http://198.18.0.10:81/ | grep -q '^rs[123]$' || fail "no answer through :81"
for _ in $(seq 1 20); do conns_on "$B" | grep -q '198.18.0.100:20555' && break; sleep 0.1; done
conns_on "$B" | grep -q '198.18.0.100:20555 ' || fail "IPv6 group: B did not get the connection: $(on "$B" -L --daemon --stats)"
echo "ok   an IPv6 group (--mcast-group ff02::81, maxlen 1452 by IPVS's rule): B got A's connection over it"

# ---- failover during load, every mode, twice ----
# From here xdpvs-checker runs the sync daemons from the same keepalived.conf
# (`lvs_sync_daemon d1 VI_1 id 7`): the master daemon on the director that
# holds VI_1's address, the backup daemon on the other.
CHECKER=${CHECKER:-$PWD/target/release/xdpvs-checker}
CHECKERS=()
for x in a b; do
    n=$([ $x = a ] && echo "$NS_D" || echo "$NS_D2"); inst=$([ $x = a ] && echo "$A" || echo "$B")
    ip netns exec "$n" "$CHECKER" -f "$WORK/ka-$x.conf" --instance "$inst" >"$WORK/checker-$x.log" 2>&1 &
    PIDS+=($!)
    CHECKERS+=($!)
done
roles() { on "$1" -L --daemon | awk '{print $1}' | tr '\n' ' '; }
until_roles() {
    local inst="$1" want="$2" t0; t0=$(date +%s.%N)
    for _ in $(seq 1 40); do [ "$(roles "$inst")" = "$want" ] && break; sleep 0.1; done
    [ "$(roles "$inst")" = "$want" ] || fail "$inst runs sync daemons [$(roles "$inst")], expected [$want]: $(cat "$WORK/checker-a.log" "$WORK/checker-b.log")"
    python3 -c "print('%.1f' % ($(date +%s.%N) - $t0))"
}
until_roles "$A" "master " >/dev/null
until_roles "$B" "backup " >/dev/null
grep -q "Starting IPVS sync daemon master on d1, syncid 7 (VRRP instance VI_1 is MASTER)" "$WORK/checker-a.log" 2>/dev/null \
    || grep -q "^master" <(on "$A" -L --daemon) || fail "A's checker: $(cat "$WORK/checker-a.log")"
echo "ok   xdpvs-checker follows lvs_sync_daemon d1 VI_1 id 7: A (holds VI_1's address) runs only the master daemon, B only the backup"
want_sha=$(sha256sum < "$WORK/big" | cut -d' ' -f1)
TPIDS=()
for p in 80 81 82 83 84; do
    ns "$NS_C" curl -s --max-time 150 --limit-rate 1400k -o "$WORK/got$p" -w '%{http_code}' "http://198.18.0.10:$p/big" > "$WORK/code$p" &
    TPIDS+=($!)
    ns "$NS_C" wrk -t 1 -c 2 -d 32s --timeout 15s "http://198.18.0.10:$p/" > "$WORK/wrk$p" 2>&1 &
    TPIDS+=($!)
done
# listed_on INST: every connection the client has open to the VIP is in
# INST's -L -n -c as ESTABLISHED (prints how many).
listed_on() {
    local inst="$1" ports missing n=0
    ports=$(ns "$NS_C" ss -Htn state established dst 198.18.0.10 | awk '{print $3}' | sort -u)
    conns_on "$inst" > "$WORK/listed"
    for c in $ports; do
        n=$((n + 1))
        grep -qE "^TCP .* ESTABLISHED +$c " "$WORK/listed" || missing="$missing $c"
    done
    [ -z "${missing:-}" ] || { echo "missing:$missing" >&2; return 1; }
    echo "$n"
}
sleep 5
n=$(listed_on "$B") || fail "before the first switch B did not list every connection: $(ns "$NS_C" ss -Htn state established dst 198.18.0.10 | head -3)"
[ "$n" -ge 15 ] || fail "only $n client connections open (5 transfers + 10 wrk expected)"
kill -TERM "$KA_a"
t0=$(date +%s.%N)
for _ in $(seq 1 60); do holds_vip "$NS_D2" && ! holds_vip "$NS_D" && break; sleep 0.1; done
holds_vip "$NS_D2" || fail "the VIP did not move to B"
took_vip=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $t0))")
sw_b=$(until_roles "$B" "master ")
sw_a=$(until_roles "$A" "backup ")
echo "ok   the checkers switched the sync daemons with VRRP: B to master in $sw_b s, A to backup in $sw_a s"
echo "ok   before the switch B listed all $n of the client's connections (5 paced transfers, 10 wrk keep-alive) as ESTABLISHED; A's keepalived stopped: B took the VIP in $took_vip s"
wait "$KA_a" 2>/dev/null || true
for _ in $(seq 1 50); do [ ! -e "$WORK/ka-a.pid" ] && [ ! -e "$WORK/ka-a-vrrp.pid" ] && break; sleep 0.1; done
keepalived_up a "$NS_D"
sleep 4
n=$(listed_on "$A") || fail "before the second switch A did not list every connection"
ns "$NS_D2" ip link set d0 down
ns "$NS_D2" ip link set d1 down
t0=$(date +%s.%N)
for _ in $(seq 1 100); do holds_vip "$NS_D" && break; sleep 0.1; done
holds_vip "$NS_D" || fail "the VIP did not come back to A after B's links went down: $(tail -5 "$WORK/keepalived-a.log")"
echo "ok   before the second switch A listed all $n connections; B's links down: A took the VIP after $(python3 -c "print('%.1f' % ($(date +%s.%N) - $t0))") s (3 missed adverts)"
for pid in "${TPIDS[@]}"; do wait "$pid" || true; done
for p in 80 81 82 83 84; do
    mode=$(case $p in 80) echo DR;; 81) echo NAT;; 82) echo FULLNAT;; 83) echo TUN;; 84) echo "NAT with the SYN proxy (its sequence shift synced)";; esac)
    got=$(sha256sum < "$WORK/got$p" | cut -d' ' -f1)
    [ "$got" = "$want_sha" ] && [ "$(cat "$WORK/code$p")" = 200 ] \
        || fail "$mode: the $BIG_MB MiB transfer across both switches is not byte-exact (HTTP $(cat "$WORK/code$p"), $(stat -c %s "$WORK/got$p") bytes)"
    ! grep -qE "Socket errors|Non-2xx" "$WORK/wrk$p" || fail "$mode: wrk: $(grep -E 'Socket errors|Non-2xx' "$WORK/wrk$p")"
    reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk$p")
    [ "${reqs:-0}" -gt 100 ] || fail "$mode: wrk completed ${reqs:-0} requests: $(cat "$WORK/wrk$p")"
    echo "ok   $mode: a $BIG_MB MiB paced transfer across both switches is byte-exact; wrk 2 keep-alive connections, 32 s: $reqs requests, 0 errors of any kind"
done
stats=$(on "$A" -L --daemon --stats)
echo "ok   A's sync daemons after the run: $(grep -E '^(Sent|Received)' <<<"$stats" | tr '\n' ' ')"
ns "$NS_D2" ip link set d0 up
ns "$NS_D2" ip link set d1 up

# ---- bulk sync: a backup that starts after the master holds 10,000 ----
# (the daemons by hand again: the checkers stop, leaving them as they are)
for pid in "${CHECKERS[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
ns "$NS_C" /usr/bin/python3 - <<'PY' || fail "could not send 10,000 UDP flows"
import socket
for k in range(10000):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("198.18.0.100", 20000 + k))
    s.sendto(b"x", ("198.18.0.10", 90))
    s.close()
PY
sessions_of() {
    "$XDPVSADM" --instance "$1" -L -n --json | python3 -c 'import json,sys; print(sum(w["sessions_v4"] for w in json.load(sys.stdin)["workers"]))'
}
for _ in $(seq 1 50); do [ "$(sessions_of "$A")" -ge 10000 ] && break; sleep 0.1; done
held=$(sessions_of "$A")
[ "$held" -ge 10000 ] || fail "A holds only $held sessions"
kill -TERM "$XDPVS_b"; wait "$XDPVS_b" 2>/dev/null || true
daemon_up b "$NS_D2" "$B"
[ "$(sessions_of "$B")" = 0 ] || fail "a fresh B has sessions"
t0=$(date +%s.%N)
on "$B" --start-daemon backup --mcast-interface d1 --syncid 7
until [ "$(sessions_of "$B")" -ge 10000 ]; do
    python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t0 < 2 else 1)" || fail "bulk sync: B has $(sessions_of "$B") of A's $held sessions after 2 s: $(on "$B" -L --daemon --stats)"
    sleep 0.05
done
took=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $t0))")
echo "ok   bulk sync: a backup started after the master held $held sessions had $(sessions_of "$B") of them $took s after --start-daemon backup (bound 2 s)"
