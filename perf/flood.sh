#!/usr/bin/env bash
# Floods without livelock: for each path, its loss-free rate (the RFC 2544
# search of perf/veth.sh), then a flood at the generator's highest rate
# (unpaced: several times the director's capacity) and what is still
# delivered, as a share of the loss-free rate and of the peak rate the
# search's trials carried (loss or not). In both placements of
# perf/veth.sh; placement B with the director's receive thread (threaded
# NAPI, on the worker's CPU) at normal priority and at SCHED_FIFO 10.
#
# Paths: xdpvs NAT and FULLNAT as the daemon runs by default (a busy-polling
# worker at normal priority) and with --rt-priority 20 (the worker at
# SCHED_FIFO 20, sleeping in poll(2) as soon as its ring is empty); the raw
# AF_XDP forwarder (xsk-fwd) likewise; nftables DNAT.
#
#   RESULTS=DIR bash perf/flood.sh      (one JSON line per path in DIR/flood.jsonl)
#
# The generator sends through a bridge hop (see decouple; FLOOD_HOP=0: as
# perf veth wires it, straight into d0).
#
# A benchmark: nothing here is asserted; CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$(mktemp -d)}
mkdir -p "$RESULTS"
VETH_LIB=1
# shellcheck source=perf/veth.sh
. perf/veth.sh
OUT="$RESULTS/flood.jsonl"
: > "$OUT"
FLOOD_PPS=${FLOOD_PPS:-10000000}
FLOOD_SECS=${FLOOD_SECS:-3}

# decouple: the generator behind a bridge hop. veth pushes back on a sender
# whose peer's ring is full, locking a flood's sender to the receiver it
# floods; the bridge's transmit to d0 drops at a full ring instead, as a
# NIC's would, so the generator keeps its own rate. (The hop's forwarding
# runs on the generator's CPU.)
decouple() {
    local nb="$ID-hop"
    ip netns add "$nb"
    ns "$nb" ip link set lo up
    ns "$nb" ip link add br0 type bridge
    ns "$nb" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
    ns "$nb" ip link set br0 up
    ns "$NS_C" ip link set c0 netns "$nb"
    ns "$nb" ip link set c0 master br0
    ns "$nb" ip link set c0 up
    ip link add cg netns "$NS_C" type veth peer name bg netns "$nb"
    ns "$nb" ip link set bg master br0
    ns "$nb" ip link set bg up
    ns "$NS_C" ip addr add 198.18.0.100/24 dev cg
    ns "$NS_C" ip link set cg up
    ns "$NS_C" ethtool -K cg tx off >/dev/null
    ns "$NS_C" ip route add default via 198.18.0.1
    SRC_MAC=$(ns "$NS_C" cat /sys/class/net/cg/address)
    GEN_IFACE=cg
    links_ready
}

# one LABEL PATH: search, flood, record (FLOOD_PATHS, if set, names the
# labels to run).
one() {
    local label=$1 path=$2 best sent got secs first
    [ -z "${FLOOD_PATHS:-}" ] || [[ " $FLOOD_PATHS " == *" $label "* ]] || return 0
    CUR=$path
    start_path "$path"
    FRAME=warmup; trial 20000 >/dev/null
    first=$(( $(wc -l < "$RAW") + 1 ))
    FRAME=udp64; read -r best < <(search)
    local peak
    peak=$(peak_of "$first")
    FRAME=flood
    read -r sent got secs < <(TRIAL=$FLOOD_SECS trial "$FLOOD_PPS")
    stop_path "$path"
    local sent_pps got_pps share of_peak
    sent_pps=$(python3 -c "print(round($sent / $secs))")
    got_pps=$(python3 -c "print(round($got / $secs))")
    share=$(python3 -c "print(round($got_pps / $best, 2) if $best else 0)")
    of_peak=$(python3 -c "print(round($got_pps / $peak, 2) if $peak else 0)")
    echo "{\"placement\":\"$PLACEMENT\",\"napi\":\"$NAPI\",\"path\":\"$label\",\"lossless_pps\":$best,\"peak_pps\":$peak,\"flood_sent_pps\":$sent_pps,\"flood_delivered_pps\":$got_pps,\"delivered_over_lossless\":$share,\"delivered_over_peak\":$of_peak}" >> "$OUT"
    printf '%-2s %-7s %-20s lossless %8s pps, peak %8s   flood: %8s sent -> %8s delivered  (%s of lossless, %s of peak)\n' \
        "$PLACEMENT" "$NAPI" "$label" "$best" "$peak" "$sent_pps" "$got_pps" "$share" "$of_peak" >&2
}

# peak_of LINE: the highest delivered rate of the search's trials recorded
# in $RAW from LINE on (a loss-free search on this VM is pulled down by
# sporadic losses of a few dozen frames; the peak is what the path carried).
peak_of() {
    tail -n +"$1" "$RAW" | python3 -c 'import json,sys
t = [json.loads(l) for l in sys.stdin]
print(round(max((j["delivered"] / j["seconds"] for j in t if j.get("frame") == "udp64"), default=0)))'
}

# paths: the set for one placement / receive-thread priority.
paths() {
    XDPVS_ARGS="" one xdpvs-nat xdpvs-nat
    XDPVS_ARGS="--rt-priority 20" one xdpvs-nat-rt xdpvs-nat
    XDPVS_ARGS="" one xdpvs-fullnat xdpvs-fullnat
    XDPVS_ARGS="--rt-priority 20" one xdpvs-fullnat-rt xdpvs-fullnat
    XSK_ARGS="" one xsk-fwd xsk-fwd
    XSK_ARGS="--rt-priority 20 --spin 0" one xsk-fwd-rt xsk-fwd
    one nft-dnat nft-dnat
}

for pl in ${FLOOD_PLACEMENTS:-A B-normal B-fifo}; do
    log "== $pl"
    setup
    [ "${FLOOD_HOP:-1}" = 1 ] && decouple
    case $pl in
        A) NAPI=-; placement A ;;
        B-normal) NAPI=normal; NAPI_FIFO=0; placement B ;;
        B-fifo) NAPI=fifo10; NAPI_FIFO=10; placement B ;;
    esac
    paths
    teardown
done
cat "$OUT"
