#!/usr/bin/env bash
# Scheduling seen by a real client: sh stickiness, persistence across the
# ports of a fwmark service, weight 0 draining (the running transfer
# finishes, new connections go elsewhere), removing a real server.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up nat
for i in 1 2 3; do rs_http "$i" 8080; done
for i in 1 2 3; do rs_http "$i" 8443; done
rs_wait 8080
rs_wait 8443

# sh: one client, one server, however many connections.
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s sh
-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m
-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m
-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1
curl_split 30 http://198.18.0.10/ >/dev/null
[ "$(sort -u "$WORK/split" | wc -l)" -eq 1 ] || fail "sh sent one client to several servers: $(sort "$WORK/split" | uniq -c | tr '\n' ' ')"
echo "ok   sh: 30 connections of one client all on $(head -1 "$WORK/split")"
xdpvs_down

# Persistence over a fwmark service covering ports 8080 and 8443 (real
# servers on port 0 keep the port the client asked for).
cat > "$WORK/rules" <<'RULES'
-A -f 7 -s rr -p 300 --match tcp:198.18.0.10:8080,8443
-a -f 7 -r 198.19.0.11 -m
-a -f 7 -r 198.19.0.12 -m
-a -f 7 -r 198.19.0.13 -m
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1
: > "$WORK/both"
for k in $(seq 1 10); do
    ns "$NS_C" curl -s --max-time 10 http://198.18.0.10:8080/ >> "$WORK/both" || fail "request $k to port 8080 failed"
    ns "$NS_C" curl -s --max-time 10 http://198.18.0.10:8443/ >> "$WORK/both" || fail "request $k to port 8443 failed"
done
[ "$(sort -u "$WORK/both" | wc -l)" -eq 1 ] || fail "persistence broke across ports: $(sort "$WORK/both" | uniq -c | tr '\n' ' ')"
echo "ok   persistence: 20 connections to ports 8080 and 8443 all on $(head -1 "$WORK/both")"
xdpvs_down

# Weight 0 drains; removal ends a server's share.
rules() {
    echo "-A -t 198.18.0.10:80 -s rr"
    for i in 1 2 3; do
        w=$(eval echo "\${$i}")
        [ "$w" = x ] || echo "-a -t 198.18.0.10:80 -r 198.19.0.1$i:8080 -m -w $w"
    done
}
rules 1 1 1 > "$WORK/rules"
xdpvs_up "$WORK/rules" --iface d0 --iface d1
# rr starts with the newest server, rs3: the long transfer lands there.
ip netns exec "$NS_C" curl -s --limit-rate 30M --max-time 60 -o "$WORK/long" http://198.18.0.10/big &
LONG=$!
PIDS+=("$LONG")
sleep 1
rules 1 1 0 > "$WORK/rules"
xdpvs_reload
kill -0 "$LONG" 2>/dev/null || fail "the long transfer ended before rs3 was quiesced (too fast to test)"
curl_split 30 http://198.18.0.10/ >/dev/null
expect_split "rs1 15" "rs2 15"
echo "ok   weight 0 on rs3: the next 30 connections split 15/15 between rs1 and rs2"
wait "$LONG" || fail "the transfer on the quiesced server did not finish"
[ "$(sha256sum < "$WORK/long" | cut -d' ' -f1)" = "$(sha256sum < "$WORK/big" | cut -d' ' -f1)" ] || fail "the transfer on the quiesced server is corrupt"
echo "ok   the 100 MiB transfer on the quiesced server finished byte-exact"
rules 1 x 0 > "$WORK/rules"
xdpvs_reload
curl_split 20 http://198.18.0.10/ >/dev/null
expect_split "rs1 20"
echo "ok   rs2 removed: the next 20 connections all on rs1"
xdpvs_down
check_detached
