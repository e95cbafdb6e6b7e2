#!/usr/bin/env bash
# Prometheus metrics: a real Prometheus server (Debian's) scrapes xdpvs's
# endpoint every second during known traffic through a NAT director; PromQL
# through its HTTP API must return exactly the connection, packet and byte
# counts the traffic made, the configured weights and the backends'
# connection gauges, under node_exporter's ipvs names and labels; promtool
# checks the exposition.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
command -v prometheus >/dev/null || fail "prometheus is not installed (apt-get install prometheus)"
topo_up nat
for i in 1 2 3; do rs_udp "$i" 53; rs_nginx "$i" 80; done
rs_wait 80
cat > "$WORK/rules" <<'RULES'
-A -u 198.18.0.10:53 -s rr
-a -u 198.18.0.10:53 -r 198.19.0.11:53 -m -w 1
-a -u 198.18.0.10:53 -r 198.19.0.12:53 -m -w 2
-a -u 198.18.0.10:53 -r 198.19.0.13:53 -m -w 3
-A -t 198.18.0.10:80 -s rr
-a -t 198.18.0.10:80 -r 198.19.0.11:80 -m -w 5
-a -t 198.18.0.10:80 -r 198.19.0.12:80 -m -w 5
-a -t 198.18.0.10:80 -r 198.19.0.13:80 -m -w 5
RULES
# BIRD (no peer: its static protocol's state is what xdpvs drives) for the BGP metrics.
cat > "$WORK/bird.conf" <<CONF
log "$WORK/bird.log" all;
router id 198.18.0.1;
protocol device {}
protocol static vips { disabled; ipv4; route 198.18.0.10/32 blackhole; }
CONF
ip netns exec "$NS_D" bird -f -c "$WORK/bird.conf" -s "$WORK/bird.ctl" -P "$WORK/bird.pid" >"$WORK/bird.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do [ -S "$WORK/bird.ctl" ] && break; sleep 0.1; done
xdpvs_up "$WORK/rules" --iface d0 --iface d1 --metrics 127.0.0.1:9595 --bird-socket "$WORK/bird.ctl" --bird-vips vips
grep -q "metrics on http://127.0.0.1:9595/metrics" "$WORK/xdpvs.log" || fail "no metrics line: $(cat "$WORK/xdpvs.log")"
cat > "$WORK/prometheus.yml" <<'YML'
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: xdpvs
    static_configs:
      - targets: ["127.0.0.1:9595"]
YML
ip netns exec "$NS_D" prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
    --web.listen-address=127.0.0.1:9090 >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
q() {
    ns "$NS_D" curl -s --max-time 5 --data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query \
        | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(" ".join(x["value"][1] for x in sorted(r, key=lambda x: sorted(x["metric"].items()))) if r else "none")'
}
for _ in $(seq 1 100); do [ "$(q 'up{job="xdpvs"}' 2>/dev/null)" = 1 ] && break; sleep 0.2; done
[ "$(q 'up{job="xdpvs"}')" = 1 ] || fail "Prometheus does not scrape xdpvs: $(tail -5 "$WORK/prometheus.log")"

# Known traffic: 1000 datagrams of 100 bytes from one socket (one
# connection, echoed), and 30 HTTP requests (30 connections, rr 10/10/10).
ns "$NS_C" /usr/bin/python3 - <<'PY' || fail "UDP echo through the VIP"
import socket
s = socket.socket(); s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.100", 20053)); s.settimeout(2)
for k in range(1000):
    s.sendto(b"x" * 100, ("198.18.0.10", 53))
    s.recvfrom(2048)
PY
curl_split 30 http://198.18.0.10/ >/dev/null
sleep 0.2
stats_json
want=$(python3 -c '
import json,sys
s = json.load(open(sys.argv[1]))
t = [0] * 5
for svc in s["services"]:
    st = svc["stats"]
    for k, f in enumerate(["conns", "inpkts", "outpkts", "inbytes", "outbytes"]):
        t[k] += st[f]
print(" ".join(map(str, t)))' "$WORK/stats.json")
read -r conns inpkts outpkts inbytes outbytes <<<"$want"
[ "$conns" = 31 ] || fail "xdpvsadm counts $conns connections, expected 31"
sleep 2.5   # two more scrapes
got="$(q node_ipvs_connections_total) $(q node_ipvs_incoming_packets_total) $(q node_ipvs_outgoing_packets_total) $(q node_ipvs_incoming_bytes_total) $(q node_ipvs_outgoing_bytes_total)"
[ "$got" = "$want" ] || fail "PromQL node_ipvs_{connections,incoming/outgoing packets,bytes}_total: $got, xdpvsadm: $want"
echo "ok   a real Prometheus scraped xdpvs every second: PromQL node_ipvs_connections_total $conns, packets in/out $inpkts/$outpkts, bytes in/out $inbytes/$outbytes — exactly xdpvsadm's totals"
u="$(q 'xdpvs_service_connections_total{local_port="53"}') $(q 'xdpvs_service_incoming_packets_total{local_port="53"}') $(q 'xdpvs_service_outgoing_packets_total{local_port="53"}') $(q 'xdpvs_service_incoming_bytes_total{local_port="53"}') $(q 'xdpvs_service_outgoing_bytes_total{local_port="53"}')"
# 100-byte datagrams (+ 28 bytes of headers) out, "rsN:" + the datagram back.
[ "$u" = "1 1000 1000 128000 132000" ] || fail "the UDP service's counters in PromQL: $u (want 1 1000 1000 128000 132000)"
echo "ok   PromQL: the UDP service counted exactly its traffic: 1 connection, 1000/1000 packets, 128000/132000 bytes"
w=$(q 'node_ipvs_backend_weight{proto="UDP",local_address="198.18.0.10",local_port="53"}')
[ "$w" = "1 2 3" ] || fail "node_ipvs_backend_weight of the UDP service: $w"
w=$(q 'node_ipvs_backend_weight{proto="TCP",local_port="80"}')
[ "$w" = "5 5 5" ] || fail "node_ipvs_backend_weight of the TCP service: $w"
c=$(q 'sum by (remote_address) (xdpvs_backend_connections_total{local_port="80"})')
[ "$c" = "10 10 10" ] || fail "xdpvs_backend_connections_total per server: $c"
a=$(q 'sum(node_ipvs_backend_connections_active) + sum(node_ipvs_backend_connections_inactive)')
[ "$a" -ge 1 ] || fail "backend connection gauges: $a"
echo "ok   PromQL: node_ipvs_backend_weight 1/2/3 (UDP) and 5/5/5 (TCP) with node_exporter's labels; xdpvs_backend_connections_total by server 10/10/10; active+inactive gauges $a"
st=$(q 'sum(xdpvs_sessions_by_state)'); all=$(q 'sum(xdpvs_sessions)'); udp=$(q 'sum(xdpvs_sessions_by_state{state="UDP"})')
[ "$st" = "$all" ] && [ "$udp" = 1 ] || fail "sessions by state: $st in all (sessions $all), UDP $udp: $(ns "$NS_D" curl -s http://127.0.0.1:9595/metrics | grep -i "by_state" | head -5)"
echo "ok   PromQL: xdpvs_sessions_by_state sums to xdpvs_sessions ($all: the UDP flow and the 30 HTTP connections, $(q 'sum(xdpvs_sessions_by_state{state="TIME_WAIT"})') in TIME_WAIT)"
ns "$NS_D" curl -s --max-time 5 http://127.0.0.1:9595/metrics > "$WORK/metrics.txt"
promtool check metrics < "$WORK/metrics.txt" > "$WORK/promtool.out" 2>&1 || fail "promtool check metrics: $(head -5 "$WORK/promtool.out")"
for m in xdpvs_rx_total xdpvs_drops_total xdpvs_sessions xdpvs_config_generation xdpvs_config_age_seconds xdpvs_sync_daemon_running xdpvs_service_connections_per_second; do
    grep -q "^$m" "$WORK/metrics.txt" || fail "$m is missing from /metrics"
done
echo "ok   promtool check metrics passes on the endpoint's $(grep -c -v '^#' "$WORK/metrics.txt") samples ($(grep -c '^# TYPE' "$WORK/metrics.txt") families: per-core counters, drops by reason, sessions, generation and age, rates, sync)"

# The BGP announcement: Prometheus sees what BIRD says (birdc), drained and back.
bird_state() { ns "$NS_D" birdc -s "$WORK/bird.ctl" show protocols vips | awk '$1 == "vips" {print $4}'; }
until_bgp() { # WANT(0|1) BIRD-STATE
    for _ in $(seq 1 50); do [ "$(q 'xdpvs_bgp_announced{protocol="vips",kind="vips"}')" = "$1" ] && [ "$(bird_state)" = "$2" ] && return 0; sleep 0.1; done
    fail "xdpvs_bgp_announced in PromQL: $(q 'xdpvs_bgp_announced'), BIRD's vips: $(bird_state); expected $1 / $2: $(adm -L --bgp)"
}
until_bgp 1 up
[ "$(q 'xdpvs_bgp_director_healthy')" = 1 ] || fail "xdpvs_bgp_director_healthy: $(q 'xdpvs_bgp_director_healthy')"
adm --drain
until_bgp 0 down
[ "$(q 'xdpvs_bgp_drained')" = 1 ] && [ "$(q 'xdpvs_bgp_withdrawals_total')" = 1 ] || fail "after --drain: drained $(q 'xdpvs_bgp_drained'), withdrawals $(q 'xdpvs_bgp_withdrawals_total')"
adm --undrain
until_bgp 1 up
[ "$(q 'xdpvs_bgp_announcements_total')" = 2 ] || fail "announcements: $(q 'xdpvs_bgp_announcements_total')"
echo "ok   PromQL: xdpvs_bgp_announced{protocol=\"vips\"} follows BIRD (birdc: up), 0 after xdpvsadm --drain (BIRD: down, xdpvs_bgp_drained 1), 1 after --undrain; 2 announcements, 1 withdrawal counted"
