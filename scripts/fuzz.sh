#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of every parser the
# outside world reaches: the frame pipeline in every mode and family, the
# ipvsadm grammar (and -S/-R round trips), keepalived.conf, the sync
# decoder and the command-slot decoder.
#
#   scripts/fuzz.sh [SECONDS]      each target for SECONDS (default 60)
#
# The corpus under fuzz/corpus/ grows as it runs (commit it); a crash
# stops the run with its input in fuzz/artifacts/TARGET/ (make it a
# regression test). Built with the stable toolchain and no sanitizer
# (`-s none`: Rust's own bounds checks and the targets' assertions are
# the oracle), so it needs nothing a fresh machine lacks but cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
need_cargo
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz >&2
cd fuzz
cargo fuzz build -s none -O >&2
# Two targets at a time (one a core): each still has a core for its SECONDS.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run_one() {
    local t="$1" rc=0
    mkdir -p "corpus/$t"
    cargo fuzz run -s none -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
        >"$tmp/$t.out" 2>&1 || rc=$?
    echo "$rc" >"$tmp/$t.rc"
}
mapfile -t targets < <(cargo fuzz list)
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    for t in "${targets[@]:i:2}"; do run_one "$t" & done
    wait
done
status=0
for t in "${targets[@]}"; do
    if [ "$(cat "$tmp/$t.rc")" != 0 ]; then
        tail -30 "$tmp/$t.out"
        echo "FAIL: fuzz target $t crashed (input in fuzz/artifacts/$t/)"
        status=1
        continue
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.out")
    echo "ok   fuzz $t: $runs executions in $secs s, no crash ($(find "corpus/$t" -type f | wc -l) inputs in the corpus)"
done
exit "$status"
