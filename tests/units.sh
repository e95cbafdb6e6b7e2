#!/usr/bin/env bash
# The systemd units in configs/systemd pass `systemd-analyze verify`, with
# the built binaries in place of the installed ones and Debian's
# keepalived.service carrying the xdpvs drop-in.
set -euo pipefail
cd "$(dirname "$0")/.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
for u in xdpvs.service xdpvs-checker.service; do
    sed "s|/usr/sbin/xdpvs|$PWD/target/release/xdpvs|g" "configs/systemd/$u" > "$t/$u"
done
cp /lib/systemd/system/keepalived.service "$t/"
mkdir "$t/keepalived.service.d"
cp configs/systemd/keepalived.service.d/xdpvs.conf "$t/keepalived.service.d/"
out=$(SYSTEMD_UNIT_PATH="$t:" systemd-analyze verify --man=no "$t/xdpvs.service" "$t/xdpvs-checker.service" "$t/keepalived.service" 2>&1) \
    || { echo "$out"; echo "FAIL: systemd-analyze verify"; exit 1; }
[ -z "$out" ] || { echo "$out"; echo "FAIL: systemd-analyze verify warned"; exit 1; }
grep -q -- '--vrrp' "$t/keepalived.service.d/xdpvs.conf"
echo "ok   systemd units (xdpvs, xdpvs-checker, keepalived's drop-in) pass systemd-analyze verify"
