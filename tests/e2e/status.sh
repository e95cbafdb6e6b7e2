#!/usr/bin/env bash
# The live status page, driven by a real browser: headless Chromium
# (Debian's) over the DevTools protocol renders the services (a screenshot
# is kept in target/e2e/status.png), a click on "drain" makes xdpvsadm -L -n
# show weight 0 and the page shows it by itself (no reload); "restore"
# brings the weight back. Without credentials the page answers 401; a
# cross-site POST is refused; a listener off loopback without auth is
# refused at start.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
command -v chromium >/dev/null || fail "chromium is not installed (apt-get install chromium)"
/usr/bin/python3 -c 'import websocket' 2>/dev/null || fail "python3-websocket is not installed"
topo_up nat
for i in 1 2 3; do rs_nginx "$i" 80; done
rs_wait 80
cat > "$WORK/rules" <<'RULES'
-A -t 198.18.0.10:80 -s wrr
-a -t 198.18.0.10:80 -r 198.19.0.11:80 -m -w 3
-a -t 198.18.0.10:80 -r 198.19.0.12:80 -m -w 2
-a -t 198.18.0.10:80 -r 198.19.0.13:80 -m -w 1
RULES
out=$(ip netns exec "$NS_D" "$XDPVS" --instance "$ID-open" --iface d0 --status 0.0.0.0:8081 2>&1) && fail "an open status page was accepted"
grep -q "open to the network" <<<"$out" || fail "open status page: $out"
xdpvs_up "$WORK/rules" --iface d0 --iface d1 --status 127.0.0.1:8081 --status-auth admin:s3cret --status-admin
grep -q "status page on http://127.0.0.1:8081/ (Basic auth), admin mode" "$WORK/xdpvs.log" || fail "no status line: $(cat "$WORK/xdpvs.log")"
curl_split 12 http://198.18.0.10/ >/dev/null
code() { ns "$NS_D" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
[ "$(code http://127.0.0.1:8081/)" = 401 ] || fail "the page without credentials: $(code http://127.0.0.1:8081/)"
[ "$(code -u admin:wrong http://127.0.0.1:8081/status.json)" = 401 ] || fail "wrong credentials accepted"
[ "$(code -u admin:s3cret http://127.0.0.1:8081/)" = 200 ] || fail "the page with credentials"
token=$(ns "$NS_D" curl -s -u admin:s3cret http://127.0.0.1:8081/ | sed -n 's/^const TOKEN = "\([0-9a-f]*\)";/\1/p')
[ -n "$token" ] || fail "no token in the page"
body='{"action":"drain","service":"-t 198.18.0.10:80","dest":"198.19.0.11:80"}'
[ "$(code -u admin:s3cret -X POST -H 'Content-Type: application/json' -H 'Origin: http://evil.example' --data "$body" http://127.0.0.1:8081/admin)" = 403 ] \
    || fail "a cross-site POST (no token) was not refused"
[ "$(code -u admin:s3cret -X POST -H "X-CSRF-Token: $token" -H 'Origin: http://evil.example' --data "$body" http://127.0.0.1:8081/admin)" = 403 ] \
    || fail "a POST from another origin was not refused"
adm -L -n | grep -q '198.19.0.11:80 *Masq *3' || fail "a refused POST changed the weight: $(adm -L -n)"
echo "ok   the status page: 401 without (or with wrong) credentials; a cross-site POST refused (no token: 403; another Origin: 403), weights untouched; an open listener refused at start"

mkdir -p target/e2e
ip netns exec "$NS_D" chromium --headless=new --no-sandbox --disable-gpu --remote-debugging-port=9222 \
    --user-data-dir="$WORK/chrome" about:blank >"$WORK/chromium.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_D" /usr/bin/python3 - "$PWD/target/e2e/status.png" "$XDPVSADM" "$ID" <<'PY' || fail "the browser test: $(tail -5 "$WORK/chromium.log")"
import base64, json, subprocess, sys, time, urllib.request
import websocket
shot, adm, inst = sys.argv[1], sys.argv[2], sys.argv[3]
for _ in range(100):
    try:
        tabs = json.load(urllib.request.urlopen("http://127.0.0.1:9222/json"))
        page = next(t for t in tabs if t["type"] == "page")
        break
    except Exception:
        time.sleep(0.1)
ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10)
n = 0
def call(method, **params):
    global n
    n += 1
    ws.send(json.dumps({"id": n, "method": method, "params": params}))
    while True:
        m = json.loads(ws.recv())
        if m.get("id") == n:
            if "error" in m:
                sys.exit("%s: %s" % (method, m["error"]))
            return m.get("result", {})
def js(expr):
    return call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")
def until(expr, what, limit=10):
    t = time.time()
    while time.time() - t < limit:
        v = js(expr)
        if v:
            return v
        time.sleep(0.1)
    sys.exit("the page never showed %s; it shows: %s" % (what, js("document.body.innerText")))
auth = base64.b64encode(b"admin:s3cret").decode()
call("Network.enable")
call("Network.setExtraHTTPHeaders", headers={"Authorization": "Basic " + auth})
call("Page.enable")
call("Emulation.setDeviceMetricsOverride", width=1300, height=700, deviceScaleFactor=1, mobile=False)
call("Page.navigate", url="http://127.0.0.1:8081/")
until("document.querySelectorAll('#services tr[data-server]').length == 3", "the three real servers")
until("document.querySelector('#cores tbody tr') !== null", "the per-core view")
conns = js("document.querySelector('#services tr.svc').cells[6].textContent")
assert conns == "12", "the page shows %r connections, 12 were made" % conns
png = call("Page.captureScreenshot", format="png")["data"]
open(shot, "wb").write(base64.b64decode(png))
gen = js("document.getElementById('generation').textContent")
js("document.querySelector('tr[data-server=\"198.19.0.11:80\"] button.drain').click()")
for _ in range(50):
    if "198.19.0.11:80" in (l := [x for x in subprocess.run([adm, "--instance", inst, "-L", "-n"], capture_output=True, text=True).stdout.splitlines() if "198.19.0.11:80" in x][0]) and l.split()[3] == "0":
        break
    time.sleep(0.1)
else:
    sys.exit("after the click xdpvsadm -L -n shows: %s" % l)
until("document.querySelector('tr[data-server=\"198.19.0.11:80\"]').cells[2].textContent == '0'", "weight 0 after the drain")
assert js("document.getElementById('generation').textContent") != gen, "the page did not refresh by itself"
js("document.querySelector('tr[data-server=\"198.19.0.11:80\"] button.restore').click()")
until("document.querySelector('tr[data-server=\"198.19.0.11:80\"]').cells[2].textContent == '3'", "weight 3 after the restore")
print("ok")
PY
adm -L -n | grep -q '198.19.0.11:80 *Masq *3' || fail "restore did not bring the weight back: $(adm -L -n)"
echo "ok   headless Chromium (DevTools protocol): the page rendered the service and its 3 servers with 12 connections (screenshot target/e2e/status.png); a click on drain made xdpvsadm -L -n show weight 0 and the page showed it by itself; restore brought back weight 3"
