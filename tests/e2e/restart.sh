#!/usr/bin/env bash
# Restart without loss (`xdpvs --handover`): xdpvs is stopped (SIGTERM) and
# started again three times, then killed (SIGKILL, a crash) and started,
# during paced transfers and wrk keep-alive load through NAT and FULLNAT. The stopping daemon saves its sessions and leaves
# its XDP program dropping (never passing to the kernel, which would answer
# with a RST) the traffic it owns; the new one installs the sessions before
# its workers start and replaces the program in one step; after the crash it
# replays the journal of sync records the killed one kept. Checked: every
# transfer byte-exact, wrk 0 errors, not one RST reaches the client, the
# sessions taken over each time; the gap (no worker forwarding) measured.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
BIG_MB=${BIG_MB:-36}
topo_up nat
director_laddrs
head -c $((BIG_MB * 1048576)) /dev/urandom > "$WORK/big"
for i in 1 2 3; do rs_nginx "$i" 80; rs_nginx "$i" 81; done
rs_wait 80
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.19.0.11:80 -m
-a -t 198.18.0.10:80 -r 198.19.0.12:80 -m
-a -t 198.18.0.10:80 -r 198.19.0.13:80 -m
-A -t 198.18.0.10:81 -s rr
-a -t 198.18.0.10:81 -r 198.19.0.11:81 -b
-a -t 198.18.0.10:81 -r 198.19.0.12:81 -b
-a -t 198.18.0.10:81 -r 198.19.0.13:81 -b
-P -t 198.18.0.10:81 -z 198.19.0.250 -F d1
RULES
RUN=0
start() {
    RUN=$((RUN + 1))
    ns "$NS_D" mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
    ip netns exec "$NS_D" "$XDPVS" --instance "$ID" --iface d0 --iface d1 --restore "$WORK/rules" \
        --handover 10 --state-file "$WORK/sessions" >"$WORK/xdpvs-$RUN.log" 2>&1 &
    XDPVS_PID=$!
    PIDS+=("$XDPVS_PID")
    for _ in $(seq 1 100); do
        grep -q "forwarding at" "$WORK/xdpvs-$RUN.log" && return 0
        kill -0 "$XDPVS_PID" 2>/dev/null || fail "xdpvs run $RUN exited: $(cat "$WORK/xdpvs-$RUN.log")"
        sleep 0.02
    done
    fail "xdpvs run $RUN did not come up: $(cat "$WORK/xdpvs-$RUN.log")"
}
start
for _ in $(seq 1 30); do ns "$NS_C" curl -s --max-time 1 -o /dev/null http://198.18.0.10/ && break; sleep 0.1; done
ns "$NS_C" tcpdump -i c0 -U --immediate-mode -w "$WORK/rst.pcap" 'src host 198.18.0.10 and tcp[tcpflags] & tcp-rst != 0' >/dev/null 2>&1 &
CAP=$!; PIDS+=("$CAP")
want_sha=$(sha256sum < "$WORK/big" | cut -d' ' -f1)
LOAD=()
for p in 80 81; do
    ns "$NS_C" curl -s --max-time 120 --limit-rate 1500k -o "$WORK/got$p" -w '%{http_code}' "http://198.18.0.10:$p/big" > "$WORK/code$p" &
    LOAD+=($!)
    ns "$NS_C" wrk -t 1 -c 4 -d 28s --timeout 15s "http://198.18.0.10:$p/" > "$WORK/wrk$p" 2>&1 &
    LOAD+=($!)
done
gaps=()
for k in 1 2 3; do
    sleep 5
    kill -TERM "$XDPVS_PID"
    wait "$XDPVS_PID" 2>/dev/null || true
    prev="$WORK/xdpvs-$RUN.log"
    saved=$(sed -n 's/.* \([0-9]*\) session(s) saved.*/\1/p' "$prev")
    [ "${saved:-0}" -ge 10 ] || fail "restart $k: the stopping xdpvs saved ${saved:-no} sessions: $(tail -3 "$prev")"
    start
    took=$(sed -n 's/.*taking over \([0-9]*\) session(s).*/\1/p' "$WORK/xdpvs-$RUN.log")
    [ "${took:-0}" = "$saved" ] || fail "restart $k: $saved saved, ${took:-none} taken over: $(cat "$WORK/xdpvs-$RUN.log")"
    ! grep -q "refused" "$WORK/xdpvs-$RUN.log" || fail "restart $k: $(grep refused "$WORK/xdpvs-$RUN.log")"
    stop_t=$(sed -n 's/.*stopped forwarding at \([0-9.]*\).*/\1/p' "$prev")
    start_t=$(sed -n 's/.*forwarding at \([0-9.]*\) (unix time).*/\1/p' "$WORK/xdpvs-$RUN.log" | tail -1)
    gaps+=("$(python3 -c "print('%.0f' % (($start_t - $stop_t) * 1000))")")
done
# A crash: no state file, only the journal the killed daemon kept.
sleep 4
open=$(ns "$NS_C" ss -Htn state established dst 198.18.0.10 | wc -l)
kill_t=$(date +%s.%N)
kill -KILL "$XDPVS_PID"
wait "$XDPVS_PID" 2>/dev/null || true
[ ! -e "$WORK/sessions" ] || fail "a killed xdpvs left a state file"
start
took=$(sed -n 's/.*taking over \([0-9]*\) session(s) from its journal.*/\1/p' "$WORK/xdpvs-$RUN.log")
[ "${took:-0}" -ge "$open" ] || fail "after the crash ${took:-no} sessions came from the journal, the client had $open open: $(cat "$WORK/xdpvs-$RUN.log")"
start_t=$(sed -n 's/.*forwarding at \([0-9.]*\) (unix time).*/\1/p' "$WORK/xdpvs-$RUN.log" | tail -1)
crash_gap=$(python3 -c "print('%.0f' % (($start_t - $kill_t) * 1000))")
for pid in "${LOAD[@]}"; do wait "$pid" || true; done
sleep 0.5
kill "$CAP"; wait "$CAP" 2>/dev/null || true
for p in 80 81; do
    mode=$([ $p = 80 ] && echo NAT || echo FULLNAT)
    got=$(sha256sum < "$WORK/got$p" | cut -d' ' -f1)
    [ "$got" = "$want_sha" ] && [ "$(cat "$WORK/code$p")" = 200 ] \
        || fail "$mode: the transfer across the restarts is not byte-exact (HTTP $(cat "$WORK/code$p"), $(stat -c %s "$WORK/got$p") bytes)"
    ! grep -qE "Socket errors|Non-2xx" "$WORK/wrk$p" || fail "$mode: wrk: $(grep -E 'Socket errors|Non-2xx' "$WORK/wrk$p")"
    reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk$p")
    [ "${reqs:-0}" -gt 100 ] || fail "$mode: wrk completed ${reqs:-0} requests"
    echo "ok   $mode: a $BIG_MB MiB paced transfer across three restarts and a crash of xdpvs is byte-exact; wrk 4 keep-alive connections, 28 s: $reqs requests, 0 errors of any kind"
done
rsts=$(tcpdump -r "$WORK/rst.pcap" 2>/dev/null | wc -l)
[ "$rsts" = 0 ] || fail "$rsts RST(s) from the VIP reached the client during the restarts: $(tcpdump -nr "$WORK/rst.pcap" 2>/dev/null | head -3)"
echo "ok   three restarts (SIGTERM, start): every session saved and taken over each time; gap with no worker forwarding: ${gaps[*]} ms"
echo "ok   a crash (SIGKILL, start): $took sessions replayed from the journal (the client had $open open), $crash_gap ms from the kill to forwarding; no RST from the VIP reached the client through all four (the client's own at wrk's end are not counted)"
