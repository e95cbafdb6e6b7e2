#!/usr/bin/env bash
# The main job: build xdpvs, then in network namespaces a client, the
# director and three real servers running a real HTTP server that names
# itself; xdpvs serves the VIP (FULLNAT by default; `scripts/demo.sh nat|dr|tun`
# picks another method); the client sends 300 requests with curl; the demo
# prints the per-server split and `xdpvsadm -L -n --stats`, and removes
# everything on exit (Ctrl-C included).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
need_packages clang libbpf-dev iproute2 iputils-ping ethtool curl python3 tcpdump
need_cargo
mode="${1:-fullnat}"
case "$mode" in
    fullnat) flag=b ;; nat) flag=m ;; dr) flag=g ;; tun) flag=i ;;
    *) echo "usage: scripts/demo.sh [fullnat|nat|dr|tun]" >&2; exit 2 ;;
esac
echo "building xdpvs (release)..."
cargo build --release -q -p xdpvs -p xdpvsadm
export XDPVS="$PWD/target/release/xdpvs"
BIG_MB=1
. tests/e2e/lib.sh

if [ "$mode" = dr ] || [ "$mode" = tun ]; then
    topo_one_arm
    [ "$mode" = tun ] && rs_decap
    port=80; net=198.18.0; ifaces=(--iface d0)
else
    topo_up "$mode"
    port=8080; net=198.19.0; ifaces=(--iface d0 --iface d1)
fi
for i in 1 2 3; do rs_http "$i" "$port"; done
rs_wait "$port"
{
    echo "-A -t 198.18.0.10:80 -s wrr"
    for i in 1 2 3; do echo "-a -t 198.18.0.10:80 -r $net.1$i:$port -$flag -w $i"; done
    if [ "$mode" = fullnat ]; then
        ns "$NS_D" ip addr add 198.19.0.250/32 dev d1
        echo "-P -t 198.18.0.10:80 -z 198.19.0.250 -F d1"
    fi
} > "$WORK/rules"
xdpvs_up - "${ifaces[@]}"
echo
echo "== $(grep ' up: ' "$WORK/xdpvs.log" | sed 's/^xdpvs: //')"
echo
echo "== the service, with ipvsadm's syntax"
while read -r line; do
    echo "   xdpvsadm $line"
    # shellcheck disable=SC2086
    adm $line
done < "$WORK/rules"
echo
echo "== 300 requests from the client: curl http://198.18.0.10/"
curl_split 300 http://198.18.0.10/ | sed 's/^/   /'
sleep 0.1
echo
echo "== xdpvsadm -L -n --stats"
adm -L -n --stats
echo
echo "== xdpvsadm -L -n"
adm -L -n
xdpvs_down
echo
echo "xdpvs stopped; namespaces removed on exit."
