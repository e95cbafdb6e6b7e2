#!/usr/bin/env bash
# Every test: formatting, lints, unit and fixture tests, the engine demo in
# every mode checked by tcpdump, and the benchmark harness in quick mode.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
need_packages clang libbpf-dev iproute2 iputils-ping ethtool curl python3 python3-scapy nftables keepalived systemd openssl dnsmasq-base iptables tcpdump tshark prometheus nginx apache2-utils wrk util-linux man-db binutils chromium python3-websocket python3-aiosmtpd bird2 || exit 1
need_cargo || exit 1

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() {
    local name="$1" t0=$SECONDS
    shift
    echo "== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $name"
    fi
    echo "-- $name: $((SECONDS - t0)) s"
}

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy -D warnings" cargo clippy -q --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace 2>&1 | tee "$log"
test_status=${PIPESTATUS[0]}
p=$(awk '/^test result:/ {s += $4} END {print s + 0}' "$log")
f=$(awk '/^test result:/ {s += $6} END {print s + 0}' "$log")
passed=$((passed + p))
failed=$((failed + f))
[ "$test_status" -eq 0 ] || [ "$f" -gt 0 ] || failed=$((failed + 1))
step "release build" cargo build --release -q --workspace
step "systemd units pass systemd-analyze verify" tests/units.sh
step "the Debian package builds, installs and works" bash tests/deb.sh
step "engine demo, every mode, tcpdump-verified" timeout 600 tests/engine_demo.sh

# End to end through the daemon: namespaces, real clients (curl) and real
# HTTP servers; each script prints one `ok` line per check.
e2e() {
    local name="$1" out t0=$SECONDS
    echo "== e2e: $name"
    # Bounded: a hang fails this script, it does not stall the run.
    if out=$(timeout 600 "tests/e2e/$name.sh" 2>&1); then
        echo "$out"
        passed=$((passed + $(grep -c '^ok ' <<<"$out")))
    else
        echo "$out"
        passed=$((passed + $(grep -c '^ok ' <<<"$out")))
        failed=$((failed + 1))
        echo "FAILED: e2e $name"
    fi
    echo "-- e2e $name: $((SECONDS - t0)) s"
}
e2e nat
e2e fullnat
e2e dr_tun
e2e sched
e2e pmtu
e2e queues
e2e reload
e2e errors
e2e hostile
e2e synproxy
e2e ctl
e2e load
e2e load_dr_tun
e2e proxy
e2e checker
e2e vrrp
e2e fwmark
e2e sync
e2e restart
e2e ecmp
e2e metrics
e2e status
# Coverage-guided fuzzing, bounded: every target 30 s from the committed corpus.
step "fuzz targets (cargo fuzz, 30 s each)" scripts/fuzz.sh 30
step "engine benchmark harness (quick)" cargo run --release -q -p perf -- engine --quick --json

# The veth benchmark in quick mode: proves the harness end to end (every
# path, both placements, results file and plots); asserts nothing about speed.
veth_quick() {
    local out
    out=$(timeout 900 cargo run --release -q -p perf -- veth --quick --json) || { echo "$out"; return 1; }
    echo "$out"
    tail -1 <<<"$out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
paths = ["xdpvs-fullnat", "xdpvs-nat", "xdpvs-dr", "xdpvs-tun", "xsk-fwd", "nft-dnat", "kernel-fwd", "xdp-redirect"]
for pl in ("placement_a", "placement_b"):
    for p in paths:
        x = r[pl][p]
        assert x["lossless_pps"] >= 0 and x["overload_delivered_pps"] >= 0, (pl, p)
        assert all(q in x["latency_us"] for q in ("p50", "p99", "p999")), (pl, p)
        assert 0 <= x["cpu_busy"]["cpu0"] <= 1 and 0 <= x["cpu_busy"]["cpu1"] <= 1, (pl, p, x.get("cpu_busy"))
        assert isinstance(x["generator_limited"], bool), (pl, p)
    assert r["generator_max_pps"][pl] > 0, r["generator_max_pps"]
assert set(r["cps"]) >= {"xdpvs-nat", "xdpvs-fullnat", "nft-dnat"}, r["cps"]
assert r["bytes_per_session"] > 0
print("veth harness: every path in both placements, the generator alone, CPU at a fixed rate, cps and memory reported")'
}
step "veth benchmark harness (quick)" veth_quick

echo
echo "all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
