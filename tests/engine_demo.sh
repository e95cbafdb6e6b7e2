#!/usr/bin/env bash
# End to end through the engine binary: whole TCP conversations in every
# mode and family; tcpdump independently re-checks every checksum of every
# frame in and out.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
for mode in fullnat nat dr tun; do
    for fam in "" --ipv6; do
        pcap="$dir/$mode$fam.pcap"
        if ! out=$(./target/release/xdpvs simulate --mode "$mode" --clients 300 --pcap "$pcap" $fam 2>&1); then
            echo "FAIL $mode $fam: simulate failed:"
            echo "$out"
            fail=1
            continue
        fi
        text=$(tcpdump -nn -vv -r "$pcap" 2>/dev/null)
        bad=$(grep -c incorrect <<<"$text" || true)
        good=$(grep -c '(correct)' <<<"$text" || true)
        frames=$(tcpdump -nn -r "$pcap" 2>/dev/null | wc -l)
        split=$(grep -A3 'per-server split' <<<"$out" | tail -3 | awk '{print $2}' | tr '\n' ' ')
        # wrr with weights 1:2:3 over 300 connections: exactly 50/100/150.
        if [ "$bad" -ne 0 ] || [ "$good" -eq 0 ] || [ "$split" != "50 100 150 " ]; then
            echo "FAIL $mode $fam: tcpdump correct=$good incorrect=$bad; split=$split"
            fail=1
        else
            echo "ok   $mode ${fam:-(ipv4)}: $frames frames, $good checksums correct per tcpdump, split $split"
        fi
    done
done
exit $fail
