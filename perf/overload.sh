#!/usr/bin/env bash
# xdpvs (NAT, one queue) on veth: the highest offered rate delivered without
# loss (≤ 0.01 %), then twice that rate: how much is still delivered.
# Placement A: the generator on CPU 0 (the director's kernel receive work
# runs there too, in the sender's context), the xdpvs worker alone on CPU 1.
# 64-byte UDP frames, 256 flows. Prints a table and, last, one JSON line.
cd "$(dirname "$0")/.."
RS_COUNT=1
BIG_MB=1
. tests/e2e/lib.sh
GEN="$PWD/target/release/perf"
SECONDS_PER_TRIAL=${SECONDS_PER_TRIAL:-1}
topo_up nat
clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -c perf/xdp_drop.c -o "$WORK/drop.o"
ns "$(rs_ns 1)" ip link set dev r0 xdpdrv obj "$WORK/drop.o" sec xdp
printf -- '-A -u 198.18.0.10:5000 -s rr\n-a -u 198.18.0.10:5000 -r 198.19.0.11:5000 -m\n' > "$WORK/rules"
xdpvs_up "$WORK/rules" --iface d0 --iface d1 --cores 1 --queues 1
src_mac=$(ns "$NS_C" cat /sys/class/net/c0/address)
dst_mac=$(ns "$NS_D" cat /sys/class/net/d0/address)
delivered() { ns "$NS_S" cat /sys/class/net/s1/statistics/tx_packets; }
trial() {
    local pps="$1" before after out sent
    before=$(delivered)
    out=$(ip netns exec "$NS_C" taskset -c 0 "$GEN" gen --iface c0 --src-mac "$src_mac" --dst-mac "$dst_mac" \
        --src 198.18.0.100 --dst 198.18.0.10:5000 --pps "$pps" --seconds "$SECONDS_PER_TRIAL")
    sleep 0.3
    after=$(delivered)
    sent=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sent"])' "$out")
    echo "$pps $sent $((after - before))"
}
trial 10000 >/dev/null   # warm up: neighbours resolved, sessions made
printf '%10s %10s %10s %8s\n' offered_pps sent delivered loss%
best=0
for pps in 50000 100000 150000 200000 250000 300000 400000 500000 600000 800000 1000000 1200000; do
    read -r _ sent got < <(trial "$pps")
    loss=$(python3 -c "print(f'{max(0, ($sent - $got)) * 100 / max($sent, 1):.3f}')")
    printf '%10s %10s %10s %8s\n' "$pps" "$sent" "$got" "$loss"
    if python3 -c "import sys; sys.exit(0 if ($sent - $got) <= $sent * 0.0001 else 1)"; then
        best=$pps
    fi
done
[ "$best" -gt 0 ] || fail "no rate was delivered without loss"
over=$((best * 2))
read -r _ sent got < <(trial "$over")
echo "lossless rate: $best pps; at 2x ($over pps offered, $sent sent): $got delivered"
# The cost of reading stats: the same overload with and without
# `xdpvsadm -L -n --stats` polled at 10 Hz (pinned beside the generator, as
# a monitoring agent would run off the worker cores), alternating runs.
poll_loop() { while :; do adm -L -n --stats > /dev/null; sleep 0.1; done; }
quiet=(); polled=()
for _ in 1 2 3; do
    read -r _ _ g < <(trial "$over"); quiet+=("$g")
    taskset -c 0 bash -c "$(declare -f adm poll_loop); ID=$ID XDPVSADM=$XDPVSADM poll_loop" & poller=$!
    PIDS+=("$poller")
    read -r _ _ g < <(trial "$over"); polled+=("$g")
    kill "$poller"; wait "$poller" 2>/dev/null || true
done
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
q=$(med "${quiet[@]}"); p=$(med "${polled[@]}")
echo "stats polled at 10 Hz: delivered $p vs $q without (median of 3 each: ${polled[*]} / ${quiet[*]})"
python3 -c "
import json
print(json.dumps({'path': 'xdpvs-nat', 'placement': 'A', 'lossless_pps': $best, 'overload_offered_pps': $over,
  'overload_sent': $sent, 'overload_delivered': $got, 'delivered_over_lossless': round($got / ($best * $SECONDS_PER_TRIAL), 3),
  'stats_poll_10hz_delivered': $p, 'no_poll_delivered': $q, 'poll_over_no_poll': round($p / max($q, 1), 3)}))"
xdpvs_down
