#!/usr/bin/env bash
# A VRRP director pair with the real keepalived (Debian's, `keepalived -P`:
# VRRP only, the same file's virtual_server blocks left to xdpvs-checker):
# LVS-DR in the shape of the classic keepalived tutorials. Each director
# runs xdpvs and xdpvs-checker with the same services; keepalived moves the
# VIP. Stopping the master's keepalived, and taking the master's link down,
# move the VIP to the backup, which forwards at once; each is timed.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
CHECKER=${CHECKER:-$PWD/target/release/xdpvs-checker}
command -v keepalived >/dev/null || fail "keepalived is not installed (apt-get install keepalived)"
topo_pair
for i in 1 2 3; do rs_nginx "$i" 80; done
rs_wait 80

# keepalived.conf NAME STATE PRIORITY: the whole director's file.
keepalived_conf() {
    cat <<CONF
! Director $1 of an LVS-DR pair
global_defs {
    router_id $1
}
vrrp_instance VI_1 {
    state $2
    interface d0
    virtual_router_id 51
    priority $3
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass xdpvs
    }
    virtual_ipaddress {
        198.18.0.10/32 dev d0
    }
}
virtual_server 198.18.0.10 80 {
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP
    ha_suspend
$(for i in 1 2 3; do printf '    real_server 198.18.0.1%s 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n' "$i"; done)
}
CONF
}
keepalived_conf dirA MASTER 150 > "$WORK/ka-a.conf"
keepalived_conf dirB BACKUP 100 > "$WORK/ka-b.conf"

# Director X: xdpvs, xdpvs-checker, keepalived, in namespace NS, instance INST.
director_up() {
    local x="$1" n="$2" inst="$3"
    ns "$n" mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
    ip netns exec "$n" "$XDPVS" --instance "$inst" --iface d0 >"$WORK/xdpvs-$x.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do grep -q " up: " "$WORK/xdpvs-$x.log" && break; sleep 0.1; done
    grep -q " up: " "$WORK/xdpvs-$x.log" || fail "xdpvs on director $x did not come up: $(cat "$WORK/xdpvs-$x.log")"
    ip netns exec "$n" "$CHECKER" -f "$WORK/ka-$x.conf" --instance "$inst" >"$WORK/checker-$x.log" 2>&1 &
    PIDS+=($!)
    keepalived_up "$x" "$n"
}
keepalived_up() {
    local x="$1" n="$2"
    ip netns exec "$n" keepalived -P -n -l -f "$WORK/ka-$x.conf" -p "$WORK/ka-$x.pid" -r "$WORK/ka-$x-vrrp.pid" \
        >>"$WORK/keepalived-$x.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "KA_$x=$pid"
}
director_up a "$NS_D" "$ID"
director_up b "$NS_D2" "$ID-b"
holds_vip() { ns "$1" ip -4 addr show dev d0 | grep -q '198.18.0.10/32'; }
served_by() { "$XDPVSADM" --instance "$1" -L -n --stats --json | python3 -c 'import json,sys; print(sum(s["stats"]["conns"] for s in json.load(sys.stdin)["services"]))'; }
# until_served SECONDS [INSTANCE]: a new connection through the VIP is
# answered (by INSTANCE's director, its counters say) within SECONDS;
# prints the time.
until_served() {
    local limit="$1" inst="${2:-}" t0 before=0
    [ -z "$inst" ] || before=$(served_by "$inst")
    t0=$(date +%s.%N)
    until ns "$NS_C" curl -s --max-time 0.3 http://198.18.0.10/ | grep -q '^rs[123]$' \
        && { [ -z "$inst" ] || { sleep 0.05; [ "$(served_by "$inst")" -gt "$before" ]; }; }; do
        python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t0 < $limit else 1)" \
            || fail "no connection through the VIP within $limit s. A: $(tail -3 "$WORK/keepalived-a.log") B: $(tail -3 "$WORK/keepalived-b.log")"
    done
    python3 -c "print('%.2f' % ($(date +%s.%N) - $t0))"
}
for _ in $(seq 1 100); do holds_vip "$NS_D" && ! holds_vip "$NS_D2" && break; sleep 0.1; done
holds_vip "$NS_D" && ! holds_vip "$NS_D2" || fail "director A did not become master: $(cat "$WORK/keepalived-a.log")"
for inst in "$ID" "$ID-b"; do
    for _ in $(seq 1 50); do
        [ "$("$XDPVSADM" --instance "$inst" -L -n | grep -c 'Route')" = 3 ] && break
        sleep 0.1
    done
    [ "$("$XDPVSADM" --instance "$inst" -L -n | grep -c 'Route')" = 3 ] || fail "$inst: the checker did not install the 3 servers: $("$XDPVSADM" --instance "$inst" -L -n)"
done
until_served 5 >/dev/null
curl_split 30 http://198.18.0.10/ >/dev/null
expect_split "rs1 10" "rs2 10" "rs3 10"
a0=$(served_by "$ID"); b0=$(served_by "$ID-b")
[ "$a0" -ge 30 ] && [ "$b0" = 0 ] || fail "the master should serve alone: A $a0, B $b0 connections"
grep -q "Suspending healthchecker for service \[198.18.0.10\]:tcp:80" "$WORK/checker-b.log" \
    && ! grep -q "Activating" "$WORK/checker-b.log" && grep -q "Activating healthchecker" "$WORK/checker-a.log" || fail "ha_suspend: A $(cat "$WORK/checker-a.log") B $(cat "$WORK/checker-b.log")"
echo "ok   keepalived -P on both directors, xdpvs-checker on both installed the 3 DR servers from the same file; A (priority 150) holds the VIP and served 30 of 30 (rr 10/10/10), B none"

# A real server's nginx stops: the master (whose checks count) takes it out
# within delay_loop + connect_timeout + retry x delay_before_retry (+1 s).
kill "$(cat "$WORK/nginx3-80/nginx.pid")"
t0=$(date +%s.%N)
for _ in $(seq 1 50); do ! "$XDPVSADM" --instance "$ID" -L -n | grep -q '198.18.0.13:80' && break; sleep 0.1; done
! "$XDPVSADM" --instance "$ID" -L -n | grep -q '198.18.0.13:80' || fail "A kept the stopped server: $("$XDPVSADM" --instance "$ID" -L -n)"
took=$(python3 -c "print('%.1f' % ($(date +%s.%N) - $t0))")
curl_split 20 http://198.18.0.10/ >/dev/null
expect_split "rs1 10" "rs2 10"
rs_nginx 3 80
for _ in $(seq 1 50); do [ "$("$XDPVSADM" --instance "$ID" -L -n | grep -c Route)" = 3 ] && break; sleep 0.1; done
[ "$("$XDPVSADM" --instance "$ID" -L -n | grep -c Route)" = 3 ] || fail "A did not take rs3 back"
echo "ok   rs3's nginx stopped: the master took it out in $took s (bound 5 s), the next 20 requests all answered (10/10); started again: back"

# 1. The master's keepalived stops.
t0=$(date +%s.%N)
kill -TERM "$KA_a"
took=$(until_served 10 "$ID-b")
for _ in $(seq 1 50); do holds_vip "$NS_D2" && break; sleep 0.1; done
holds_vip "$NS_D2" && ! holds_vip "$NS_D" || fail "the VIP did not move to B"
curl_split 30 http://198.18.0.10/ >/dev/null
expect_split "rs1 10" "rs2 10" "rs3 10"
b1=$(served_by "$ID-b")
[ "$b1" -ge 30 ] || fail "B served only $b1 connections after taking the VIP"
for _ in $(seq 1 30); do grep -q "Activating healthchecker" "$WORK/checker-b.log" && break; sleep 0.1; done
grep -q "Activating healthchecker for service \[198.18.0.10\]:tcp:80" "$WORK/checker-b.log" || fail "B's checks did not resume with the VIP: $(cat "$WORK/checker-b.log")"
! grep -q "Adding service \[198.18.0.1[12]\]" "$WORK/checker-a.log" || fail "servers that were never out were 'added': $(cat "$WORK/checker-a.log")"
echo "ok   ha_suspend: each director's checks wait while it does not hold the VIP (A's until VRRP gave it the VIP, B's until the failover) and resume when it does"
echo "ok   master's keepalived stopped: the VIP moved to B, which answered a new connection $took s after the stop; B then served 30 of 30"

# A comes back and takes the VIP again (priority 150, preempting).
keepalived_up a "$NS_D"
for _ in $(seq 1 100); do holds_vip "$NS_D" && ! holds_vip "$NS_D2" && break; sleep 0.1; done
holds_vip "$NS_D" || fail "A did not take the VIP back"
until_served 10 >/dev/null
echo "ok   A's keepalived restarted: A preempted and holds the VIP again"

# 2. The master's link goes down.
a1=$(served_by "$ID")
ns "$NS_D" ip link set d0 down
took=$(until_served 15 "$ID-b")
for _ in $(seq 1 50); do holds_vip "$NS_D2" && break; sleep 0.1; done
holds_vip "$NS_D2" || fail "the VIP did not move to B after A's link went down"
curl_split 30 http://198.18.0.10/ >/dev/null
b2=$(served_by "$ID-b")
[ $((b2 - b1)) -ge 30 ] || fail "B served $((b2 - b1)) new connections after A's link went down"
echo "ok   master's link down: B took the VIP (after 3 missed adverts) and answered a new connection $took s after the link went down; B then served 30 of 30"
ns "$NS_D" ip link set d0 up
for _ in $(seq 1 150); do holds_vip "$NS_D" && break; sleep 0.1; done
holds_vip "$NS_D" || fail "A did not take the VIP back after its link came up"
until_served 10 >/dev/null
echo "ok   A's link up again: A holds the VIP and serves"
