#!/usr/bin/env bash
# xdpvsadm against a running daemon over the shared-memory region:
# ipvsadm's error texts, live edits under a long transfer (byte-exact,
# new connections follow the new weights), -c while traffic flows, stats
# equal to the traffic sent, -Z, --rate, -S → -R and save → restart →
# restore round trips, 100 invocations at once, change latency.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up nat
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
# A UDP echo server on every real server (port 5353).
for i in 1 2 3; do
    ip netns exec "$(rs_ns "$i")" /usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)' >/dev/null 2>&1 &
    PIDS+=($!)
done
xdpvs_up - --iface d0 --iface d1

# expect_fail "TEXT" ARGS...: xdpvsadm ARGS fails, saying TEXT.
expect_fail() {
    local want="$1" out; shift
    if out=$(adm "$@" 2>&1); then fail "xdpvsadm $* succeeded; expected: $want"; fi
    [[ "$out" == *"$want"* ]] || fail "xdpvsadm $*: said '$out', expected '$want'"
}

# 1. ipvsadm's answers.
expect_fail "No such service" -D -t 198.18.0.10:80
expect_fail "Service not defined" -a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m
adm -A -t 198.18.0.10:80 -s rr
expect_fail "Service already exists" -A -t 198.18.0.10:80 -s rr
adm -a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m
expect_fail "Destination already exists" -a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m
expect_fail "No such destination" -d -t 198.18.0.10:80 -r 198.19.0.99:8080
expect_fail "Scheduler not found" -E -t 198.18.0.10:80 -s fastest
expect_fail "illegal weight" -e -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 70000
expect_fail "does not exist" --instance no-such-daemon -L -n
expect_fail "no interface named 'nosuchif' among xdpvs's interfaces (d0, d1)" -P -t 198.18.0.10:80 -z 198.19.0.250 -F nosuchif
expect_fail "illegal virtual server address 127.0.0.1: a loopback address" -A -t 127.0.0.1:80
expect_fail "illegal real server address 255.255.255.255: the broadcast address" -a -t 198.18.0.10:80 -r 255.255.255.255:80 -m
expect_fail "illegal real server address 198.18.0.10: the virtual address itself" -a -t 198.18.0.10:80 -r 198.18.0.10:80 -m
adm -a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m
adm -a -t 198.18.0.10:80 -r 198.19.0.13:8080 -m
adm -A -u 198.18.0.10:5353 -s rr
adm -a -u 198.18.0.10:5353 -r 198.19.0.11:5353 -m
echo "ok   ipvsadm's errors: No such service, Service not defined, Service already exists, Destination already exists, No such destination, Scheduler not found, illegal weight, no daemon; refused: -F naming no interface of the daemon, a loopback VIP, a broadcast real server, the VIP as its own real server"

# 2. A long transfer (rate-limited to last seconds) while everything changes.
want=$(sha256sum < "$WORK/big" | cut -d' ' -f1)
ip netns exec "$NS_C" curl -s --max-time 120 --limit-rate 10M -o "$WORK/long" http://198.18.0.10/big &
LONG=$!
PIDS+=($LONG)
conn=""
for _ in $(seq 1 50); do
    conn=$(adm -L -n -c | awk '$1 == "TCP" && $3 == "ESTABLISHED" && $5 == "198.18.0.10:80" {print $6}' | head -1)
    [ -n "$conn" ] && break
    sleep 0.1
done
[ -n "$conn" ] || fail "-L -n -c did not show the long transfer's ESTABLISHED connection: $(adm -L -n -c)"
echo "ok   -L -n -c while the transfer runs: ESTABLISHED 198.18.0.100 -> 198.18.0.10:80 -> $conn"
# Edit around the server that carries the transfer (weight 0 for it: its
# flow continues, new ones go elsewhere), delete and re-add the others.
lip=${conn%:*}
others=()
for i in 1 2 3; do [ "198.19.0.1$i" = "$lip" ] || others+=("198.19.0.1$i"); done
adm -E -t 198.18.0.10:80 -s wrr
adm -e -t 198.18.0.10:80 -r "$conn" -m -w 0
adm -d -t 198.18.0.10:80 -r "${others[1]}:8080"
adm -A -t 198.18.0.10:81 -s lc
adm -a -t 198.18.0.10:81 -r 198.19.0.11:8080 -m
adm -D -t 198.18.0.10:81
adm -a -t 198.18.0.10:80 -r "${others[1]}:8080" -m -w 1
adm -e -t 198.18.0.10:80 -r "${others[0]}:8080" -m -w 3
# New connections follow the new weights: wrr 3:1:0.
curl_split 40 http://198.18.0.10/ >/dev/null
n0=$(grep -c "rs${others[0]: -1}" "$WORK/split" || true)
n1=$(grep -c "rs${others[1]: -1}" "$WORK/split" || true)
nq=$(grep -c "rs${lip: -1}" "$WORK/split" || true)
[ "$n0" -eq 30 ] && [ "$n1" -eq 10 ] && [ "$nq" -eq 0 ] || fail "after the edits, 40 connections split $n0/$n1/$nq, expected 30/10/0 (wrr 3:1:0)"
kill -0 $LONG 2>/dev/null || fail "the transfer ended before the edits were done (make it longer)"
wait $LONG || fail "the long transfer failed during the edits"
got=$(sha256sum < "$WORK/long" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "the transfer under live edits is corrupt (sha256 $got)"
echo "ok   9 edits (scheduler, weights, delete/add servers, add/delete a service) under a 100 MiB transfer: byte-exact, then 40 new connections split 30/10/0 (wrr 3:1:0)"
rate=$(adm -L -n --rate | awk '$2 == "198.18.0.10:80" {print $6}')
[ "${rate:-0}" -gt 0 ] 2>/dev/null || fail "--rate shows no InBPS... for the service after seconds of traffic: $(adm -L -n --rate)"
echo "ok   --rate after the transfer: the service's OutBPS estimate is $(adm -L -n --rate | awk '$2 == "198.18.0.10:80" {print $7}')"

# 3. Stats equal the traffic: -Z, then 1000 UDP datagrams of 100 bytes echoed.
adm -Z
ns "$NS_C" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i in range(1000):
    s.sendto(b"x" * 100, ("198.18.0.10", 5353))
    d, _ = s.recvfrom(2048)
    assert len(d) == 100
' || fail "UDP through the VIP: an echo did not come back"
sleep 0.1
line=$(adm -L -n --stats --exact | awk '$1 == "UDP" {print $3, $4, $5, $6, $7}')
[ "$line" = "1 1000 1000 128000 128000" ] || fail "after 1000 echoed datagrams of 100 bytes: Conns InPkts OutPkts InBytes OutBytes = $line, expected 1 1000 1000 128000 128000"
tcp=$(adm -L -n --stats --exact | awk '$2 == "198.18.0.10:80" {print $3}')
[ "$tcp" = 0 ] || fail "-Z left the TCP service at $tcp connections"
echo "ok   UDP through the VIP, after -Z: the counters equal the traffic exactly (1 conn, 1000/1000 packets, 128000/128000 bytes)"
adm -L -n -c | grep -q "^UDP .* 198.18.0.10:5353 " || fail "the UDP flow is missing from -L -n -c"

# 4. -S → -C → -R, and save → restart → restore.
adm -P -t 198.18.0.10:80 -z 198.19.0.250
adm --set 1000 60 200
adm -S -n > "$WORK/saved"
adm -C
[ -z "$(adm -S -n | grep -v '^--set')" ] || fail "-C left services: $(adm -S -n)"
adm -R < "$WORK/saved"
diff <(adm -S -n) "$WORK/saved" || fail "-S after -R differs from -S before"
printf -- '-A -t 198.18.0.10:90 -s rr\n-a -t 198.18.0.10:90 -r 198.19.0.11:90 -m\n-a -t 198.18.0.10:999 -r 198.19.0.11:90 -m\n' > "$WORK/bad"
expect_fail "line 3: Service not defined (nothing applied)" -R < "$WORK/bad"
diff <(adm -S -n) "$WORK/saved" || fail "a failed -R changed the configuration"
[ "$(adm -L --timeout)" = "Timeout (tcp tcpfin udp): 1000 60 200" ] || fail "--timeout: $(adm -L --timeout)"
xdpvs_down
xdpvs_up "$WORK/saved" --iface d0 --iface d1
diff <(adm -S -n) "$WORK/saved" || fail "save → restart → restore did not round-trip"
echo "ok   -S → -C → -R round-trips; a failing -R line applies nothing; save → restart with --restore round-trips"

# 5. 100 invocations at once: 40 adds of distinct servers, 10 adds of one
# server (exactly one wins), 50 listings.
adm -A -t 198.18.0.20:80 -s wrr
par=()
for i in $(seq 1 40); do (rc=0; adm -a -t 198.18.0.20:80 -r "198.19.1.$i:80" -m > "$WORK/p.add$i" 2>&1 || rc=$?; echo $rc >> "$WORK/p.add$i") & par+=($!); done
for i in $(seq 1 10); do (rc=0; adm -a -t 198.18.0.20:80 -r 198.19.2.1:80 -m > "$WORK/p.dup$i" 2>&1 || rc=$?; echo $rc >> "$WORK/p.dup$i") & par+=($!); done
for i in $(seq 1 50); do (rc=0; adm -L -n > "$WORK/p.list$i" 2>&1 || rc=$?; echo $rc >> "$WORK/p.list$i") & par+=($!); done
for j in "${par[@]}"; do wait "$j"; done
for i in $(seq 1 40); do [ "$(cat "$WORK/p.add$i")" = 0 ] || fail "parallel add $i: $(cat "$WORK/p.add$i")"; done
wins=0
for i in $(seq 1 10); do
    case "$(tr '\n' ' ' < "$WORK/p.dup$i")" in
        "0 ") wins=$((wins + 1)) ;;
        "Destination already exists 1 ") ;;
        *) fail "parallel duplicate add $i: $(cat "$WORK/p.dup$i")" ;;
    esac
done
[ "$wins" = 1 ] || fail "$wins of 10 identical parallel adds succeeded, expected exactly 1"
for i in $(seq 1 50); do
    [ "$(tail -1 "$WORK/p.list$i")" = 0 ] && grep -q "^TCP  198.18.0.20:80 wrr" "$WORK/p.list$i" || fail "parallel listing $i: $(cat "$WORK/p.list$i")"
done
[ "$(adm -S -n | grep -c '^-a -t 198.18.0.20:80 ')" = 41 ] || fail "after the parallel adds the service has $(adm -S -n | grep -c '^-a -t 198.18.0.20:80 ') servers, expected 41"
echo "ok   100 xdpvsadm at once: 40 distinct adds and 50 listings succeeded, 1 of 10 identical adds won (9 said 'Destination already exists'), 41 servers in the region"

# 6. Change latency: from the command to every core running it.
read -r med max < <(change_latency -t 198.18.0.20:80 -r 198.19.1.1:80 -m)
[ -n "$med" ] || fail "no timing from XDPVSADM_TIMING: $(cat "$WORK/lat")"
echo "ok   20 weight edits: in force on every core a median ${med} us (max ${max} us) after xdpvsadm sent them"
# 7. Whatever -S prints, -R restores: 10,000 services (more than a command
# slot holds once encoded: sent in parts, applied all or nothing).
adm -C
python3 - "$WORK/big.rules" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        vip = f"198.18.{100 + i // 250}.{1 + i % 250}"
        f.write(f"-A -t {vip}:80 -s wrr\n-a -t {vip}:80 -r 198.19.{i % 200}.{1 + i % 250}:8080 -m -w 1\n")
PY
adm -R < "$WORK/big.rules" || fail "-R of 10,000 services"
adm -S -n | grep -v -- '^--set' > "$WORK/big.saved"
cmp -s "$WORK/big.rules" "$WORK/big.saved" || fail "-S after -R of 10,000 services differs: $(diff "$WORK/big.rules" "$WORK/big.saved" | head -3)"
adm -C
(cat "$WORK/big.rules"; echo "-a -t 198.18.100.1:80 -r 198.19.0.1:8080 -m") > "$WORK/big.bad"
expect_fail "line 20001: Destination already exists (nothing applied)" -R < "$WORK/big.bad"
[ "$(adm -S -n | grep -c '^-[Aa] ' || true)" = 0 ] || fail "a failing -R of 20,001 lines changed something"
echo "ok   -R of 10,000 services ($(($(wc -c < "$WORK/big.rules") / 1024)) KiB, in parts) restores what -S prints exactly; a bad last line applies nothing"
adm -C

# 8. The local control surface: a closed pipe, a stopped daemon, a corrupted
# region, garbage in a command slot, a user who is not root.
adm -A -t 198.18.0.30:80 -s rr
for i in $(seq 1 200); do echo "-a -t 198.18.0.30:80 -r 198.19.3.$i:80 -m"; done | adm -R
set +o pipefail
adm -L -n --stats 2> "$WORK/pipe.err" | head -1 > /dev/null
rc=${PIPESTATUS[0]}
set -o pipefail
[ ! -s "$WORK/pipe.err" ] && { [ "$rc" = 0 ] || [ "$rc" = 141 ]; } || fail "xdpvsadm -L | head -1: status $rc, said: $(cat "$WORK/pipe.err")"
kill -STOP "$XDPVS_PID"
t0=$(date +%s.%N)
out=$(timeout 20 "$XDPVSADM" --instance "$ID" -a -t 198.18.0.30:80 -r 198.19.4.1:80 -m 2>&1) && fail "a command to a stopped daemon succeeded"
took=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$t0" "$(date +%s.%N)")
kill -CONT "$XDPVS_PID"
grep -q "daemon pid $XDPVS_PID is not responding" <<<"$out" || fail "a stopped daemon: xdpvsadm said '$out'"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 10 else 1)" "$took" || fail "a stopped daemon held xdpvsadm for $took s"
region="/dev/shm/xdpvs-$ID"
seq0=$(tests/e2e/region_word.py "$region" view_seq)
tests/e2e/region_word.py "$region" view_seq $((seq0 + 1))
out=$(timeout 10 "$XDPVSADM" --instance "$ID" -L -n 2>&1) && fail "a listing of a corrupted region succeeded"
grep -q "corrupted" <<<"$out" || fail "a corrupted region: xdpvsadm said '$out'"
tests/e2e/region_word.py "$region" view_seq "$seq0"
before=$(adm -S -n | md5sum)
tests/e2e/region_word.py "$region" slot0 4096
sleep 0.5
kill -0 "$XDPVS_PID" || fail "garbage in a command slot ended the daemon"
[ "$(adm -S -n | md5sum)" = "$before" ] || fail "garbage in a command slot changed the configuration"
perm=$(stat -c %a "$region")
[ "$perm" = 600 ] || fail "the region's mode is $perm, expected 600"
runuser -u nobody -- cat "$region" > /dev/null 2>&1 && fail "user nobody can read the region"
out=$(runuser -u nobody -- "$XDPVSADM" --instance "$ID" -L -n 2>&1) && fail "user nobody listed the services"
grep -q "permission denied" <<<"$out" || fail "user nobody: xdpvsadm said '$out'"
echo "ok   local surface: -L | head -1 quiet (status $rc); a stopped daemon named after ${took} s; a corrupted view named, no hang; a garbage request answered, config unchanged; nobody can neither read the region nor use xdpvsadm"
head -c 4096 "$region" > "$WORK/header"
size=$(stat -c %s "$region")
xdpvs_down
check_detached
[ ! -e "$region" ] || fail "the daemon left its region $region behind"

# 9. Squatting: a user who creates the region's file first (a copied header
# naming pid 1) neither stops the daemon nor receives root's commands.
runuser -u nobody -- python3 -c '
import struct, sys
head = bytearray(sys.stdin.buffer.read())
head[16:24] = struct.pack("<Q", 1)
with open(sys.argv[1], "wb") as f:
    f.write(head)
    f.truncate(int(sys.argv[2]))
' "$region" "$size" < "$WORK/header"
[ "$(stat -c %U "$region")" = nobody ] || fail "the squatter's file was not made"
out=$(timeout 10 "$XDPVSADM" --instance "$ID" -A -t 198.18.0.40:80 2>&1) && fail "xdpvsadm wrote a command into a squatted region"
grep -q "not to be trusted" <<<"$out" || fail "a squatted region: xdpvsadm said '$out'"
xdpvs_up - --iface d0 --iface d1
grep -q "replacing $region" "$WORK/xdpvs.log" || fail "the daemon did not say it replaced the squatted region: $(cat "$WORK/xdpvs.log")"
[ "$(stat -c %U "$region")" = root ] || fail "the region belongs to $(stat -c %U "$region") after the daemon started"
timeout 10 "$XDPVSADM" --instance "$ID" -A -t 198.18.0.40:80 || fail "xdpvsadm -A after the daemon replaced the squatted region"
echo "ok   squatting: a file made first by nobody (a copied header, pid 1) is refused by xdpvsadm and replaced by the daemon, which then serves"
xdpvs_down
check_detached
