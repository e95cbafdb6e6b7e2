#!/usr/bin/env bash
# fwmark services follow netfilter's MARK rules, as in the LVS tutorials:
# iptables (Debian's, nft backend) marks HTTP and HTTPS to the VIP with 99,
# `xdpvsadm -A -f 99 -s rr -p` and two DR real servers: one client's HTTP
# and HTTPS land on one server. A rule removed is followed; a rule xdpvs
# cannot express is named. Then the same with keepalived.conf's
# `virtual_server fwmark 99` through xdpvs-checker.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
CHECKER=${CHECKER:-$PWD/target/release/xdpvs-checker}
command -v iptables >/dev/null || fail "iptables is not installed (apt-get install iptables)"
RS_COUNT=2
topo_one_arm
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=vip -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
for i in 1 2; do rs_nginx "$i" 80; rs_nginx "$i" 443 ssl; done
rs_wait 80
xdpvs_up - --iface d0
ns "$NS_D" iptables -t mangle -A PREROUTING -d 198.18.0.10 -p tcp --dport 80 -j MARK --set-mark 99
ns "$NS_D" iptables -t mangle -A PREROUTING -d 198.18.0.10 -p tcp --dport 443 -j MARK --set-mark 99
ns "$NS_D" iptables -t mangle -A PREROUTING -s 10.0.0.0/8 -d 198.18.0.10 -p tcp --dport 8080 -j MARK --set-mark 99
adm -A -f 99 -s rr -p 2>"$WORK/adm.err"
adm -a -f 99 -r 198.18.0.11 -g
adm -a -f 99 -r 198.18.0.12 -g

# sticks: every one of 10 requests, HTTP and HTTPS in turn, answered by one server.
sticks() {
    : > "$WORK/who"
    for k in 1 2 3 4 5; do
        ns "$NS_C" curl -s --max-time 3 http://198.18.0.10/ >> "$WORK/who" || fail "HTTP request $k through FWM 99 failed"
        ns "$NS_C" curl -sk --max-time 3 https://198.18.0.10/ >> "$WORK/who" || fail "HTTPS request $k through FWM 99 failed"
    done
    [ "$(wc -l < "$WORK/who")" = 10 ] && [ "$(sort -u "$WORK/who" | wc -l)" = 1 ] || fail "not one server: $(sort "$WORK/who" | uniq -c | tr '\n' ' ')"
}
for _ in $(seq 1 30); do adm -L -n | grep -q 'FWM  99' && grep -q 'follows netfilter: 2 match' "$WORK/xdpvs.log" && break; sleep 0.1; done
grep -q 'follows netfilter: 2 match' "$WORK/xdpvs.log" || fail "the MARK rules were not followed: $(cat "$WORK/xdpvs.log")"
sticks
echo "ok   iptables -t mangle MARK 99 for :80 and :443, xdpvsadm -A -f 99 -s rr -p, two -g servers: 10 requests, HTTP and HTTPS in turn, all answered by $(head -1 "$WORK/who")"
grep -q "iptables rule .* sets mark 99 with '-s', which xdpvs cannot follow: left out" "$WORK/xdpvs.log" || fail "no warning naming the rule xdpvs cannot follow: $(cat "$WORK/xdpvs.log")"
echo "ok   the MARK rule with a source match is named in the daemon's log as one xdpvs cannot follow"
adm -S -n | grep -qx -- '-A -f 99 -s rr -p 300' || fail "-S writes netfilter's matches as --match: $(adm -S -n)"
echo "ok   -S writes the fwmark service as ipvsadm would (its matches are netfilter's)"

ns "$NS_D" iptables -t mangle -D PREROUTING -d 198.18.0.10 -p tcp --dport 443 -j MARK --set-mark 99
for _ in $(seq 1 40); do grep -q 'follows netfilter: 1 match' "$WORK/xdpvs.log" && break; sleep 0.1; done
grep -q 'follows netfilter: 1 match' "$WORK/xdpvs.log" || fail "a removed MARK rule was not followed"
! ns "$NS_C" curl -sk --max-time 2 https://198.18.0.10/ >/dev/null || fail "HTTPS still balanced after its MARK rule went"
ns "$NS_C" curl -s --max-time 2 http://198.18.0.10/ >/dev/null || fail "HTTP stopped when the HTTPS rule went"
echo "ok   the :443 MARK rule deleted: followed within 2 s (HTTPS no longer balanced, HTTP still)"

# keepalived.conf's virtual_server fwmark 99 with persistence.
adm -C
ns "$NS_D" iptables -t mangle -A PREROUTING -d 198.18.0.10 -p tcp --dport 443 -j MARK --set-mark 99
cat > "$WORK/keepalived.conf" <<'CONF'
virtual_server fwmark 99 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    persistence_timeout 300
    real_server 198.18.0.11 0 {
        TCP_CHECK {
            connect_port 80
            connect_timeout 1
        }
    }
    real_server 198.18.0.12 0 {
        TCP_CHECK {
            connect_port 80
            connect_timeout 1
        }
    }
}
CONF
followed=$(grep -c 'follows netfilter: 2 match' "$WORK/xdpvs.log")
ip netns exec "$NS_D" "$CHECKER" -f "$WORK/keepalived.conf" --instance "$ID" >"$WORK/checker.log" 2>&1 &
PIDS+=($!)
# fwm_ready: FWM 99 has both servers and netfilter's two matches again.
fwm_ready() {
    [ "$(adm -L -n | grep -c Route)" = 2 ] && [ "$(grep -c 'follows netfilter: 2 match' "$WORK/xdpvs.log")" -gt "$followed" ]
}
for _ in $(seq 1 50); do fwm_ready && break; sleep 0.1; done
fwm_ready || fail "the checker's fwmark service: $(adm -L -n) $(cat "$WORK/checker.log")"
sticks
echo "ok   keepalived.conf's virtual_server fwmark 99 (persistence 300) through xdpvs-checker: HTTP and HTTPS of one client on one server ($(head -1 "$WORK/who"))"
xdpvs_down
check_detached
