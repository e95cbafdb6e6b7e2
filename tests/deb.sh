#!/usr/bin/env bash
# The Debian package: it builds (scripts/deb.sh, cargo-deb), installs with
# dpkg -i, and what it installs works: xdpvs --version, xdpvsadm -h,
# man xdpvsadm (generated from the grammar's words), bash completions, the
# units systemd-analyze accepts, the xdpvs user; then it is purged.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "FAIL: $*" >&2; exit 1; }
deb=$(scripts/deb.sh | tail -1)
[ -f "$deb" ] || fail "no package built: $deb"
trap 'dpkg -P xdpvs >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
v=$(/usr/sbin/xdpvs --version) && [ "$v" = "xdpvs 0.1.0" ] || fail "xdpvs --version: $v"
/usr/sbin/xdpvsadm -h | grep -q -- "--start-daemon master|backup" || fail "xdpvsadm -h"
/usr/sbin/xdpvs-checker --version | grep -q '^xdpvs-checker ' || fail "xdpvs-checker --version"
page=$(MANPAGER=cat MANWIDTH=100 man xdpvsadm 2>/dev/null) || fail "man xdpvsadm"
grep -q "start-daemon" <<<"$page" && grep -q "proxy-protocol" <<<"$page" || fail "man xdpvsadm lacks options: $(head -20 <<<"$page")"
man -w xdpvs >/dev/null && man -w xdpvs-checker >/dev/null || fail "man pages of xdpvs / xdpvs-checker"
grep -q -- "--start-daemon" /usr/share/bash-completion/completions/xdpvsadm || fail "bash completion of xdpvsadm"
(bash -c '. /usr/share/bash-completion/completions/xdpvsadm && complete -p xdpvsadm') >/dev/null || fail "the completion does not load"
getent passwd xdpvs >/dev/null || fail "postinst made no xdpvs user"
systemd-analyze verify --man=no /lib/systemd/system/xdpvs.service /lib/systemd/system/xdpvs-checker.service 2>&1 | grep -v 'Failed to put bus name\|Failed to connect' | grep . && fail "installed units" || true
echo "ok   $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB): dpkg -i, then xdpvs --version, xdpvsadm -h, xdpvs-checker --version, man xdpvsadm/xdpvs/xdpvs-checker, bash completion, the xdpvs user, units verified; purged"
