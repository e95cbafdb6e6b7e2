#!/usr/bin/env bash
# Bad starts: each gives one clear line naming the fix and a non-zero exit,
# and leaves nothing attached.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
topo_up nat
for i in 1 2 3; do rs_http "$i" 8080; done
rs_wait 8080
printf -- '-A -t 198.18.0.10:80 -s rr\n-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m\n' > "$WORK/rules"

XDPVS_WRAP=()
expect_error() {
    local what="$1" pattern="$2"; shift 2
    local out rc
    out=$(ip netns exec "$NS_D" "${XDPVS_WRAP[@]}" "$XDPVS" "$@" 2>&1) && rc=0 || rc=$?
    [ "$rc" -ne 0 ] || fail "$what: exit status 0"
    grep -q -- "$pattern" <<<"$out" || fail "$what: expected /$pattern/, got: $out"
    [ "$(grep -c '^xdpvs: ' <<<"$out")" -le 2 ] || fail "$what: more than a line or two: $out"
    echo "ok   $what: $(grep '^xdpvs: ' <<<"$out" | tail -1)"
}

# Root without capabilities (uid 0 keeps its access to this checkout).
XDPVS_WRAP=(setpriv --bounding-set=-all --inh-caps=-all)
expect_error "no privileges" "not enough privileges (missing CAP_NET_ADMIN" --iface d0 --restore "$WORK/rules"
XDPVS_WRAP=()
expect_error "unknown interface" "no network interface named 'nosuch0'" --iface nosuch0 --restore "$WORK/rules"
expect_error "no interface" "no interface given" --restore "$WORK/rules"
expect_error "bad XDP mode" "unknown XDP mode 'turbo'" --iface d0 --xdp-mode turbo
expect_error "native XDP unsupported" "native XDP is not supported" --iface lo --xdp-mode native
expect_error "more queues than the device has" "d0 has 1 rx queue(s)" --iface d0 --queues 8 --restore "$WORK/rules"
printf -- '-A -t 198.18.0.10:80\n-a -t 198.18.0.99:80 -r 198.19.0.1\n' > "$WORK/bad.rules"
expect_error "bad rules" "bad.rules:2: Service not defined" --iface d0 --restore "$WORK/bad.rules"
printf 'interfacez = ["d0"]\n' > "$WORK/bad.toml"
expect_error "bad config file" "unknown field" --config "$WORK/bad.toml"

# A second instance on the same interfaces.
xdpvs_up "$WORK/rules" --iface d0 --iface d1
expect_error "second instance" "already has an XDP program attached" --iface d0 --iface d1 --restore "$WORK/rules"
curl_split 3 http://198.18.0.10/ >/dev/null
echo "ok   the first instance still serves"
xdpvs_down
# A restart binds again at once.
xdpvs_up "$WORK/rules" --iface d0 --iface d1
curl_split 3 http://198.18.0.10/ >/dev/null
echo "ok   a restart binds again at once and serves"
xdpvs_down

# A receive thread at SCHED_FIFO (threaded NAPI) that the workers do not
# preempt is named at start with the priority that fixes it; with the
# workers above it, nothing is said.
ns "$NS_D" ethtool -K d0 gro on >/dev/null
ns "$NS_D" sh -c 'echo 1 > /sys/class/net/d0/threaded'
napi=""
for _ in $(seq 1 20); do
    napi=$(ps -e -o pid=,comm= | awk '$2 ~ /^napi\/d0-/ {print $1}' | head -1)
    [ -n "$napi" ] && break
    sleep 0.1
done
[ -n "$napi" ] || fail "no napi/d0 thread after threaded NAPI was switched on"
chrt -f -p 10 "$napi"
xdpvs_up "$WORK/rules" --iface d0 --iface d1
want="napi/d0-[0-9]* (pid $napi) receives for d0 at SCHED_FIFO 10 and the workers run at normal priority: under a flood it takes their CPU; start xdpvs with --rt-priority 11 or higher"
grep -q "$want" "$WORK/xdpvs.log" || fail "no warning about the SCHED_FIFO receive thread: $(cat "$WORK/xdpvs.log")"
echo "ok   a SCHED_FIFO receive thread named at start: $(grep -o 'napi/d0.*' "$WORK/xdpvs.log" | head -1)"
xdpvs_down
xdpvs_up "$WORK/rules" --iface d0 --iface d1 --rt-priority 11
! grep -q "receives for d0" "$WORK/xdpvs.log" || fail "warned with the workers above the receive thread: $(cat "$WORK/xdpvs.log")"
curl_split 3 http://198.18.0.10/ >/dev/null
echo "ok   with --rt-priority 11 nothing is said, and it serves"
xdpvs_down
chrt -o -p 0 "$napi"
ns "$NS_D" sh -c 'echo 0 > /sys/class/net/d0/threaded'
ns "$NS_D" ethtool -K d0 gro off >/dev/null
check_detached
