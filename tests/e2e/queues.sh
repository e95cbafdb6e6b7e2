#!/usr/bin/env bash
# Two queues, two workers: flows whose replies land on the other queue are
# handed to the worker that owns them and still complete.
cd "$(dirname "$0")/../.."
QUEUES=2
. tests/e2e/lib.sh
topo_up nat
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m
-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m
-a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m
RULES
xdpvs_up "$WORK/rules" --iface d0 --iface d1 --queues 2 --cores 1,0
curl_split 300 http://198.18.0.10/ >/dev/null
echo "ok   two workers: 300 requests, none failed"
check_big http://198.18.0.10/big
read -r med max < <(change_latency -t 198.18.0.10:80 -r 198.19.0.11:8080 -m)
[ -n "$med" ] || fail "no timing from XDPVSADM_TIMING: $(cat "$WORK/lat")"
echo "ok   20 weight edits: in force on both workers a median ${med} us (max ${max} us) after xdpvsadm sent them"
sleep 0.1
stats_json
xdpvs_down
read -r rx0 rx1 ho < <(python3 -c '
import json,sys
s=json.load(open(sys.argv[1]))
w=s["workers"]
print(w[0]["rx"], w[1]["rx"], sum(x["handoff_out"] for x in w))' "$WORK/stats.json")
[ "$rx0" -gt 0 ] && [ "$rx1" -gt 0 ] || fail "both workers should receive (rx: $rx0, $rx1)"
[ "$ho" -gt 0 ] || fail "no frame was handed to its owner (handoff counter is 0)"
echo "ok   both queues carried traffic (worker rx $rx0 / $rx1) and $ho frames were handed to their owner"
check_detached
