#!/usr/bin/env bash
# Every test: formatting, lints, unit and fixture tests, the engine demo in
# every mode checked by tcpdump, and the benchmark harness in quick mode.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
need_packages clang libbpf-dev iproute2 iputils-ping ethtool curl python3 tcpdump || exit 1
need_cargo || exit 1

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() {
    local name="$1"
    shift
    echo "== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $name"
    fi
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
step "engine demo, every mode, tcpdump-verified" timeout 600 tests/engine_demo.sh

# End to end through the daemon: namespaces, real clients (curl) and real
# HTTP servers; each script prints one `ok` line per check.
e2e() {
    local name="$1" out
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
}
e2e nat
e2e fullnat
e2e dr_tun
e2e sched
e2e pmtu
e2e queues
e2e reload
e2e errors
step "engine benchmark harness (quick)" cargo run --release -q -p perf -- engine --quick --json

echo
echo "all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
