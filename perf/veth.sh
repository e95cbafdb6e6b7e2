#!/usr/bin/env bash
# The network half of `perf veth` (which runs it, then adds memory per
# session, the table, the JSON and the plots). Every path side by side on
# one topology, rebuilt per placement:
#
#   client c0 ── d0 [director] d1 ── sd (bridge) s1 ── r0 real server
#   AF_XDP generator                                   XDP sink / perf recv / cps-server
#
# Paths: xdpvs-{nat,fullnat,dr,tun}; xsk-fwd (a raw AF_XDP forwarder from
# xdpvs's own xsk layer and steering, no engine: the AF_XDP ceiling, on the
# worker's CPU); nft-dnat (nftables DNAT + conntrack); kernel-fwd (plain
# routing to the real server); xdp-redirect (an XDP program on d0
# redirecting to d1: the ceiling of the veth path).
# Placement A: generator on CPU 0 (the director's kernel receive work runs
# there too, in the sender's context), xdpvs's worker alone on CPU 1.
# Placement B: the director's receive NAPI threaded and pinned to CPU 1 with
# the worker: all of the director's work on one core. The NAPI thread runs at
# SCHED_FIFO 10 (every path alike), so it preempts a busy-polling worker the
# moment frames arrive instead of waiting for a time slice.
#
# Per path and placement: RFC 2544 binary search for the highest offered
# rate with ≤ 0.01 % loss (64-byte UDP, 4096 flows), delivered rate at 2×
# that, one-way latency at 50 % of it (time stamps in the payload, HDR
# histogram). Placement A also: 512-byte UDP and 64-byte TCP (full runs),
# and whole TCP connections per second. Then each CPU's busy share at a fixed
# offered rate (CPU_PPS). Per placement, last: the generator's own maximum
# with nothing behind d0. Raw results: $RESULTS/raw.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
need_packages clang libbpf-dev iproute2 ethtool nftables python3 python3-matplotlib
RESULTS=${RESULTS:?set RESULTS to the results directory}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then TRIAL=0.2; ITER=2; LAT_SECS=0.3; CPS_SECS=0.5; CPU_SECS=${CPU_SECS:-0.3}; else TRIAL=1; ITER=9; LAT_SECS=2; CPS_SECS=3; CPU_SECS=${CPU_SECS:-2}; fi
# The fixed rate at which each path's CPU is measured: one every path
# carries loss-free in both placements on this VM.
CPU_PPS=${CPU_PPS:-100000}
FLOWS=4096
# The search's upper bound: above what the generator can send on this VM
# (~700 kpps), so every path is limited by itself, not by the bound.
MAX_PPS=${MAX_PPS:-1200000}
RS_COUNT=1
BIG_MB=1
. tests/e2e/lib.sh
PERF="$PWD/target/release/perf"
RAW="$RESULTS/raw.jsonl"
: > "$RAW"
VIP=198.18.0.10
RIP=198.19.0.11
# VETH_PATHS / VETH_PLACEMENTS narrow a run (e.g. while investigating one path).
read -r -a PATHS <<< "${VETH_PATHS:-xdpvs-nat xdpvs-fullnat xdpvs-dr xdpvs-tun xsk-fwd nft-dnat kernel-fwd xdp-redirect}"

log() { echo "$*" >&2; }
jsonl() { echo "$1" >> "$RAW"; }

# The topology for one placement: two-arm, the real server routes back via
# the director (NAT, nft, kernel forwarding need it), has the VIP on lo (DR,
# TUN, the redirect path) and the IPIP decapsulator.
setup() {
    topo_up nat
    # The switch is the benchmark's wiring, not its subject: veth transmits
    # synchronously, so whatever the bridge does lands on the transmitting
    # director's core. No netfilter on bridged frames (br_netfilter, once
    # loaded, hooks every bridge in every namespace).
    ns "$NS_S" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
        net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
    rs_decap
    local r; r=$(rs_ns 1)
    ns "$r" ip addr add "$VIP/32" dev lo
    ns "$r" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.r0.rp_filter=0 net.ipv4.conf.lo.rp_filter=0
    ns "$NS_D" sysctl -qw net.ipv4.ip_forward=1
    ns "$NS_D" ip addr add 198.19.0.250/32 dev d1
    ns "$NS_C" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
    clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -c perf/xdp_drop.c -o "$WORK/drop.o"
    local src dst idx
    src=$(ns "$NS_D" cat /sys/class/net/d1/address | sed 's/^/0x/; s/:/,0x/g')
    dst=$(ns "$r" cat /sys/class/net/r0/address | sed 's/^/0x/; s/:/,0x/g')
    idx=$(ns "$NS_D" cat /sys/class/net/d1/ifindex)
    clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -DSRC_MAC="$src" -DDST_MAC="$dst" \
        -DOUT_IFINDEX="$idx" -c perf/xdp_redirect.c -o "$WORK/redirect.o"
    sink_on
    ip netns exec "$r" taskset -c 0 "$PERF" cps-server --bind 0.0.0.0:80 >/dev/null 2>&1 &
    PIDS+=($!)
    SRC_MAC=$(ns "$NS_C" cat /sys/class/net/c0/address)
    DST_MAC=$(ns "$NS_D" cat /sys/class/net/d0/address)
}
sink_on() { ns "$(rs_ns 1)" ip link set dev r0 xdpdrv obj "$WORK/drop.o" sec xdp; }
sink_off() { ns "$(rs_ns 1)" ip link set dev r0 xdp off; }

# Placement B: d0's receive NAPI in a kernel thread on CPU 1, SCHED_FIFO.
placement() {
    PLACEMENT=$1
    if [ "$1" = B ]; then
        ns "$NS_D" ethtool -K d0 gro on >/dev/null 2>&1 || true
        ns "$NS_D" sh -c 'echo 1 > /sys/class/net/d0/threaded'
    fi
}
# NAPI_FIFO=0: the receive thread at normal priority.
pin_napi() {
    [ "$PLACEMENT" = B ] || return 0
    local t
    for t in $(ps -e -o pid=,comm= | awk '$2 ~ /^napi\/d0-/ {print $1}'); do
        taskset -pc 1 "$t" >/dev/null
        if [ "${NAPI_FIFO:-10}" = 0 ]; then chrt -o -p 0 "$t"; else chrt -f -p "${NAPI_FIFO:-10}" "$t"; fi
    done
}

# start_path PATH: make the director forward PATH; sets DST (generator target).
start_path() {
    local p=$1 rules="$WORK/rules"
    DST=$VIP
    case $p in
        xdpvs-*)
            local f
            case $p in xdpvs-nat) f=m ;; xdpvs-fullnat) f=b ;; xdpvs-dr) f=g ;; xdpvs-tun) f=i ;; esac
            {
                echo "-A -u $VIP:5000 -s rr"; echo "-a -u $VIP:5000 -r $RIP:5000 -$f"
                echo "-A -t $VIP:5000 -s rr"; echo "-a -t $VIP:5000 -r $RIP:5000 -$f"
                echo "-A -t $VIP:80 -s rr"; echo "-a -t $VIP:80 -r $RIP:80 -$f"
                if [ $f = b ]; then
                    for s in "-u $VIP:5000" "-t $VIP:5000" "-t $VIP:80"; do echo "-P $s -z 198.19.0.250 -F d1"; done
                fi
            } > "$rules"
            # shellcheck disable=SC2086
            xdpvs_up "$rules" --iface d0 --iface d1 --cores 1 --queues 1 --max-sessions "${MAX_SESSIONS:-1048576}" ${XDPVS_ARGS:-}
            ;;
        nft-dnat)
            ns "$NS_D" nft -f - <<NFT
table ip xdpvsbench {
    chain pre { type nat hook prerouting priority -100; ip daddr $VIP udp dport 5000 dnat to $RIP; ip daddr $VIP tcp dport { 80, 5000 } dnat to $RIP; }
}
NFT
            ;;
        xsk-fwd)
            local rmac
            rmac=$(ns "$(rs_ns 1)" cat /sys/class/net/r0/address)
            ns "$NS_D" mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
            # shellcheck disable=SC2086
            ip netns exec "$NS_D" taskset -c 1 "$PERF" xsk-fwd --in d0 --out d1 --dst-mac "$rmac" --vip $VIP ${XSK_ARGS:-} \
                > "$WORK/xsk-fwd.log" 2>&1 &
            XSK_PID=$!
            PIDS+=("$XSK_PID")
            for _ in $(seq 1 50); do grep -q "xsk-fwd up" "$WORK/xsk-fwd.log" && break; sleep 0.1; done
            grep -q "xsk-fwd up" "$WORK/xsk-fwd.log" || { cat "$WORK/xsk-fwd.log" >&2; fail "xsk-fwd did not come up"; }
            ;;
        kernel-fwd) DST=$RIP ;;
        xdp-redirect)
            DST=$RIP
            ns "$NS_D" ip link set dev d0 xdpdrv obj "$WORK/redirect.o" sec xdp
            ns "$NS_S" ip link set dev sd xdpdrv obj "$WORK/redirect.o" sec xdp/pass
            ;;
    esac
    pin_napi
}
stop_path() {
    case $1 in
        xdpvs-*) xdpvs_down ;;
        xsk-fwd) kill "$XSK_PID"; wait "$XSK_PID" 2>/dev/null || true ;;
        nft-dnat) ns "$NS_D" nft delete table ip xdpvsbench; ns "$NS_D" conntrack -F >/dev/null 2>&1 || true ;;
        xdp-redirect) ns "$NS_D" ip link set dev d0 xdp off; ns "$NS_S" ip link set dev sd xdp off ;;
    esac
}

delivered() { ns "$NS_S" cat /sys/class/net/s1/statistics/tx_packets; }

# steal_ticks: time the hypervisor took from both vCPUs so far (USER_HZ
# ticks): a trial it took much from measured the VM, not the path.
steal_ticks() { awk '$1 == "cpu" {print $9}' /proc/stat; }

# trial PPS [GEN ARGS...]: prints "sent delivered seconds" and records it
# (with the steal time it met).
trial() {
    local pps=$1 before after out sent secs s0 s1; shift
    s0=$(steal_ticks)
    before=$(delivered)
    out=$(ip netns exec "$NS_C" taskset -c 0 "$PERF" gen --iface "${GEN_IFACE:-c0}" --src-mac "$SRC_MAC" --dst-mac "$DST_MAC" \
        --src 198.18.0.100 --dst "$DST:5000" --flows $FLOWS --pps "$pps" --seconds "$TRIAL" "$@")
    sleep 0.2
    after=$(delivered)
    s1=$(steal_ticks)
    read -r sent secs < <(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["sent"], j["seconds"])' "$out")
    jsonl "{\"kind\":\"trial\",\"placement\":\"$PLACEMENT\",\"path\":\"$CUR\",\"frame\":\"$FRAME\",\"offered_pps\":$pps,\"sent\":$sent,\"delivered\":$((after - before)),\"seconds\":$secs,\"steal_ms\":$(( (s1 - s0) * 1000 / $(getconf CLK_TCK) ))}"
    echo "$sent $((after - before)) $secs"
}
# passes PPS SENT DELIVERED SECONDS: the path took the offered rate (the
# generator got at least 99 % of it out: veth pushes back on a sender whose
# peer cannot keep up, so "could not send" is the path's limit too) and lost
# at most 0.01 % of it.
passes() {
    python3 -c "import sys; pps, sent, got, secs = map(float, sys.argv[1:]); sys.exit(0 if sent >= 0.99 * pps * secs and sent - got <= sent * 0.0001 else 1)" "$@"
}

# search [GEN ARGS...]: RFC 2544 binary search between 0 and MAX_PPS;
# prints the highest rate that passed.
search() {
    local lo=0 hi=$MAX_PPS best=0 sent got secs mid
    for _ in $(seq 1 "$ITER"); do
        mid=$(( (lo + hi) / 2 ))
        read -r sent got secs < <(trial "$mid" "$@")
        if passes "$mid" "$sent" "$got" "$secs"; then best=$mid; lo=$mid; else hi=$mid; fi
    done
    echo "$best"
}

# latency PPS: one-way delay at PPS, measured by perf recv on the server.
latency() {
    local pps=$1 out
    sink_off
    ip netns exec "$(rs_ns 1)" "$PERF" recv --bind 0.0.0.0:5000 --seconds "$(python3 -c "print($LAT_SECS + 1)")" > "$WORK/recv" &
    local rp=$!
    PIDS+=($rp)
    sleep 0.3
    ip netns exec "$NS_C" taskset -c 0 "$PERF" gen --iface c0 --src-mac "$SRC_MAC" --dst-mac "$DST_MAC" \
        --src 198.18.0.100 --dst "$DST:5000" --flows $FLOWS --pps "$pps" --seconds "$LAT_SECS" --stamp >/dev/null
    wait $rp || true
    sink_on
    python3 -c 'import json,sys; j=json.loads(open(sys.argv[1]).read()); print(json.dumps(j["latency_us"], separators=(",", ":")), j["stamped"])' "$WORK/recv"
}

# gen_ceiling: the generator's own maximum in this placement, unpaced into
# d0 with nothing behind it (an XDP drop on d0). A path whose loss-free rate
# reaches 95 % of it is reported "≥ generator": the sender was the limit.
gen_ceiling() {
    local sent got secs DST=$VIP
    ns "$NS_D" ip link set dev d0 xdpdrv obj "$WORK/drop.o" sec xdp
    pin_napi
    read -r sent got secs < <(CUR=generator FRAME=unpaced trial 100000000)
    ns "$NS_D" ip link set dev d0 xdp off
    jsonl "{\"kind\":\"generator\",\"placement\":\"$PLACEMENT\",\"max_pps\":$(python3 -c "print(round($sent / $secs))")}"
    log "$PLACEMENT generator alone (XDP drop on d0): $(python3 -c "print(round($sent / $secs))") pps"
}

# cpu_ticks N: busy and total jiffies of CPU N so far (/proc/stat: user, nice,
# system, irq, softirq are busy; idle and iowait are not; steal is neither).
cpu_ticks() { awk -v c="cpu$1" '$1 == c {b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6}' /proc/stat; }

# cpu_share: both CPUs' busy share while CPU_PPS is offered, measured over
# CPU_SECS inside the generator's run (its start-up left out). xdpvs and
# xsk-fwd run with no idle spin for it (a busy-polling worker is always
# 100 % busy): the share is the work the rate costs.
cpu_share() {
    local g b0 t0 b1 t1 c0 c1 d0 d1 before after w0 w1
    ip netns exec "$NS_C" taskset -c 0 "$PERF" gen --iface c0 --src-mac "$SRC_MAC" --dst-mac "$DST_MAC" \
        --src 198.18.0.100 --dst "$DST:5000" --flows $FLOWS --pps "$CPU_PPS" \
        --seconds "$(python3 -c "print($CPU_SECS + 1)")" >/dev/null &
    g=$!
    sleep 0.5
    # The rate's window: from the start of one counter read to the start of the other.
    w0=$EPOCHREALTIME; before=$(delivered); read -r b0 t0 < <(cpu_ticks 0); read -r b1 t1 < <(cpu_ticks 1)
    if [ -n "${CPU_PROFILE:-}" ]; then
        # CPU_PROFILE=DIR: CPU 1 sampled through the window (perf report -i).
        perf record -q -C 1 -g -o "$CPU_PROFILE/$PLACEMENT-$CUR.data" -- sleep "$CPU_SECS" 2>/dev/null
    else
        sleep "$CPU_SECS"
    fi
    read -r c0 d0 < <(cpu_ticks 0); read -r c1 d1 < <(cpu_ticks 1); w1=$EPOCHREALTIME; after=$(delivered)
    wait "$g" || true
    jsonl "{\"kind\":\"cpu\",\"placement\":\"$PLACEMENT\",\"path\":\"$CUR\",\"offered_pps\":$CPU_PPS,\"delivered_pps\":$(python3 -c "print(round(($after - $before) / ($w1 - $w0)))"),\"cpu0_busy\":$(python3 -c "print(round(($c0 - $b0) / max($d0 - $t0, 1), 3))"),\"cpu1_busy\":$(python3 -c "print(round(($c1 - $b1) / max($d1 - $t1, 1), 3))")}"
}

# cpu_path PATH: the path restarted without idle spinning, then cpu_share.
cpu_path() {
    case $1 in
        xdpvs-*) stop_path "$1"; XDPVS_ARGS="${XDPVS_ARGS:-} --idle-spin 0" start_path "$1" ;;
        xsk-fwd) stop_path "$1"; XSK_ARGS="${XSK_ARGS:-} --spin 0" start_path "$1" ;;
    esac
    trial 20000 >/dev/null
    cpu_share
    log "   $1: CPU busy at $CPU_PPS pps offered: $(tail -1 "$RAW")"
}

run_placement() {
    placement "$1"
    for CUR in "${PATHS[@]}"; do
        start_path "$CUR"
        FRAME=warmup; trial 20000 >/dev/null
        FRAME=udp64
        read -r best < <(search)
        local over=$(( best * 2 ))
        FRAME=overload
        read -r sent got secs < <(trial "$over")
        local over_pps sent_pps; over_pps=$(python3 -c "print(round($got / $secs))"); sent_pps=$(python3 -c "print(round($sent / $secs))")
        read -r lat stamped < <(latency $(( best / 2 > 1000 ? best / 2 : 1000 )))
        local extra=""
        if [ "$1" = A ] && [ "$QUICK" != 1 ]; then
            FRAME=udp512; read -r b512 < <(search --size 512)
            # TCP: xdpvs needs each flow's SYN to make its session; conntrack
            # would call the ACKs after a lone SYN invalid, and picks up
            # mid-stream flows by itself (nf_conntrack_tcp_loose), so the
            # kernel paths get ACKs only.
            local nosyn=""
            case $CUR in xdpvs-*) ;; *) nosyn=--no-syn ;; esac
            FRAME=tcp64; read -r btcp < <(search --tcp $nosyn)
            extra=",\"lossless_pps_udp512\":$b512,\"lossless_pps_tcp64\":$btcp"
        fi
        jsonl "{\"kind\":\"path\",\"placement\":\"$1\",\"path\":\"$CUR\",\"lossless_pps\":$best,\"overload_offered_pps\":$over,\"overload_sent_pps\":$sent_pps,\"overload_delivered_pps\":$over_pps,\"latency_us\":$lat,\"latency_samples\":$stamped$extra}"
        log "$(printf '%-2s %-14s lossless %8s pps   2x: %8s offered, %8s sent -> %8s delivered   latency %s' "$1" "$CUR" "$best" "$over" "$sent_pps" "$over_pps" "$lat")"
        if [ "$1" = A ] && [ "$CUR" != xdp-redirect ] && [ "$CUR" != xdpvs-dr ] && [ "$CUR" != xdpvs-tun ] && [ "$CUR" != xsk-fwd ]; then
            local c target=$VIP
            [ "$CUR" = kernel-fwd ] && target=$RIP
            c=$(ip netns exec "$NS_C" taskset -c 0 "$PERF" cps --dst "$target:80" --threads 4 --seconds "$CPS_SECS")
            jsonl "{\"kind\":\"cps\",\"path\":\"$CUR\",\"result\":$c}"
            log "   $CUR: $(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["cps"], "connections/s,", j["failed"], "failed")' "$c")"
        fi
        FRAME=cpu cpu_path "$CUR"
        stop_path "$CUR"
    done
    # Last: on veth, an XDP program attached to d0 and taken off again
    # leaves a threaded d0 forwarding nothing.
    gen_ceiling
}

# VETH_LIB=1: the functions only (perf/flood.sh runs its own loop).
[ "${VETH_LIB:-0}" = 1 ] && return 0
for pl in ${VETH_PLACEMENTS:-A B}; do
    log "== placement $pl"
    setup
    run_placement "$pl"
    teardown
done
