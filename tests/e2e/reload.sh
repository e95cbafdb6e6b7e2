#!/usr/bin/env bash
# Live configuration: while a long transfer runs, new weights are loaded
# (SIGHUP re-reads the rules); new connections follow them at once and the
# transfer stays byte-exact.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up nat
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
rules() {
    printf -- '-A -t 198.18.0.10:80 -s wrr\n'
    printf -- '-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w %s\n' "$1"
    printf -- '-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m -w %s\n' "$2"
    printf -- '-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m -w %s\n' "$3"
}
rules 1 1 1 > "$WORK/rules"
xdpvs_up "$WORK/rules" --iface d0 --iface d1
curl_split 30 http://198.18.0.10/ >/dev/null
expect_split "rs1 10" "rs2 10" "rs3 10"
ip netns exec "$NS_C" curl -s --limit-rate 30M --max-time 60 -o "$WORK/long" http://198.18.0.10/big &
LONG=$!
PIDS+=("$LONG")
sleep 1
rules 3 1 0 > "$WORK/rules"
xdpvs_reload
kill -0 "$LONG" 2>/dev/null || fail "the long transfer ended before the change (too fast to test)"
curl_split 60 http://198.18.0.10/ >/dev/null
expect_split "rs1 45" "rs2 15"
echo "ok   weights changed under load: the next 60 connections split 45/15/0 (wrr 3:1:0)"
wait "$LONG" || fail "the long transfer failed across the reload"
[ "$(sha256sum < "$WORK/long" | cut -d' ' -f1)" = "$(sha256sum < "$WORK/big" | cut -d' ' -f1)" ] || fail "the long transfer is corrupt"
echo "ok   the 100 MiB transfer running across the reload arrived byte-exact"
xdpvs_down
check_detached
