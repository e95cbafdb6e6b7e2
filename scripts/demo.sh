#!/usr/bin/env bash
# The main job: build xdpvs and run the engine demo in every forwarding mode.
# Usage: scripts/demo.sh [fullnat|nat|dr|tun] [extra `xdpvs simulate` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
need_packages clang libbpf-dev iproute2 iputils-ping ethtool curl python3 tcpdump
need_cargo
cargo build --release -q -p xdpvs
mode="${1:-fullnat}"
shift || true
mkdir -p results
pcap="results/demo-$mode.pcap"
./target/release/xdpvs simulate --mode "$mode" --clients 300 --pcap "$pcap" "$@"
echo
echo "tcpdump's own reading of $pcap (first frames in and out):"
tcpdump -nn -vv -r "$pcap" 2>/dev/null | head -8
bad=$(tcpdump -nn -vv -r "$pcap" 2>/dev/null | grep -c incorrect || true)
good=$(tcpdump -nn -vv -r "$pcap" 2>/dev/null | grep -c '(correct)' || true)
echo "tcpdump: $good checksums correct, $bad incorrect"
[ "$bad" -eq 0 ]
