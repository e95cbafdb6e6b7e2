#!/usr/bin/env bash
# xdpvs-checker drives xdpvs from keepalived.conf: three nginx real servers
# (two-arm NAT, and FULLNAT with PROXY protocol), TCP_CHECK, HTTP_GET
# (status code, digest, inhibit_on_failure), MISC_CHECK misc_dynamic, quorum
# with a sorry server, SMTP_CHECK (aiosmtpd, host blocks), SIGHUP with an edited file during a transfer, a
# restart that changes nothing, and `-t`.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.sh
CHECKER=${CHECKER:-$PWD/target/release/xdpvs-checker}
topo_up nat
director_laddrs
for i in 1 2 3; do rs_nginx "$i" 8080; done
rs_nginx 1 8090 proxy_protocol
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=www.example.com -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
rs_nginx 3 8443 ssl
# A server that asks for a client certificate signed by the test's CA.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=xdpvs-test-ca -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=xdpvs-checker -keyout "$WORK/client.key" -out "$WORK/client.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > "$WORK/client.ext"
openssl x509 -req -in "$WORK/client.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial -days 1 \
    -extfile "$WORK/client.ext" -out "$WORK/client.crt" 2>/dev/null
# A v1 certificate (no extensions), which rustls refuses: -t must say so.
openssl x509 -req -in "$WORK/client.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -days 1 -out "$WORK/v1.crt" 2>/dev/null
NGINX_EXTRA="ssl_client_certificate $WORK/ca.crt; ssl_verify_client on;" rs_nginx 3 8444 ssl
rs_udp 1 5353
ip netns exec "$(rs_ns 2)" dnsmasq --keep-in-foreground --port 5354 --no-resolv --no-hosts --bind-interfaces \
    --listen-address 198.19.0.12 --address=/example.com/198.18.0.1 --pid-file="$WORK/dnsmasq.pid" 2>"$WORK/dnsmasq.log" &
PIDS+=($!)
# smtp_up I: aiosmtpd on rs I, port 2525 (unbuffered: the test reads the mails it prints).
smtp_up() {
    ip netns exec "$(rs_ns "$1")" /usr/bin/python3 -u -m aiosmtpd -n -d -l "198.19.0.1$1:2525" \
        >>"$WORK/smtp$1.out" 2>>"$WORK/smtp$1.log" &
    SMTP_PID[$1]=$!
    PIDS+=("$!")
}
smtp_up 1
smtp_up 2
for i in 1 2 3; do echo "page v1 of rs$i" > "$WORK/nginx$i-8080/page"; done
echo "State: OK" > "$WORK/nginx2-8080/page"
head -c $((100 * 1048576)) /dev/urandom > "$WORK/big"
rs_wait 8080
xdpvs_up - --iface d0 --iface d1
echo 7 > "$WORK/misc_exit"
# notify_down runs as nobody: the file it appends to is everyone's.
touch "$WORK/notify" && chmod 666 "$WORK/notify" && chmod o+x "$WORK"
digest=$(md5sum < "$WORK/nginx1-8080/page" | cut -d' ' -f1)

# keepalived.conf: the file the test edits, then SIGHUPs.
write_conf() {
    local w3="$1" extra="${2:-}"
    cat > "$WORK/keepalived.conf" <<CONF
! xdpvs-checker end-to-end test
global_defs {
    router_id xdpvs_test
    notification_email {
        ops@example.com
        noc@example.com
    }
    notification_email_from lvs@example.com
    smtp_server 198.19.0.11 2525
    smtp_connect_timeout 3
    lvs_timeouts tcp 7200 udp 120
}
local_address_group lips {
    198.19.0.250 d1
}
SSL {
    certificate $WORK/client.crt
    key $WORK/client.key
}
track_file maintenance {
    file "$WORK/maintenance"
    weight 0
    init_file 0
}
track_file load {
    file "$WORK/load"
    weight 10
    init_file 0
}
virtual_server 198.18.0.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    omega
    real_server 198.19.0.11 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 198.19.0.12 8080 {
        weight 1
        notify_up "/bin/sh -c 'echo up \$0 >> $WORK/notify' 198.19.0.12"
        notify_down "/bin/sh -c 'echo down \$0 >> $WORK/notify' 198.19.0.12" nobody
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 198.19.0.13 8080 {
        weight $w3
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
virtual_server 198.18.0.10 81 {
    protocol TCP
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    inhibit_on_failure
    real_server 198.19.0.11 8080 {
        weight 5
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            url {
                path /page
                digest $digest
            }
            connect_timeout 1
            nb_get_retry 1
            delay_before_retry 1
        }
    }
}
virtual_server 198.18.0.10 82 {
    protocol TCP
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    real_server 198.19.0.12 8080 {
        weight 1
        MISC_CHECK {
            misc_path "/bin/sh -c 'exit \$(cat $WORK/misc_exit)'"
            misc_timeout 2
            misc_dynamic
        }
    }
}
virtual_server 198.18.0.10 83 {
    protocol TCP
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    quorum 2
    smtp_alert
    sorry_server 198.19.0.13 8080
    real_server 198.19.0.11 8080 {
        weight 1
        HTTP_GET {
            url {
                path /health
            }
            connect_timeout 1
            retry 0
        }
    }
    real_server 198.19.0.12 8080 {
        weight 1
        HTTP_GET {
            url {
                path /health
            }
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server 198.18.0.10 84 {
    protocol TCP
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    laddr_group_name lips
    proxy_protocol v2
    real_server 198.19.0.11 8090 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 198.18.0.10 86 {
    protocol TCP
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 198.19.0.13 8443 {
        weight 1
        SSL_GET {
            url {
                path /health
                status_code 200
            }
            enable_sni
            sni_name www.example.com
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server 198.18.0.10 53 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server 198.19.0.11 5353 {
        UDP_CHECK {
            payload 68656c6c6f
            require_reply 7273313a68656c6c6f
            connect_timeout 1
            retry 0
        }
    }
    real_server 198.19.0.12 5354 {
        DNS_CHECK {
            type A
            name www.example.com
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server 198.18.0.10 88 {
    protocol TCP
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 198.19.0.11 8080 {
        weight 1
        FILE_CHECK {
            track_file maintenance
        }
    }
    real_server 198.19.0.12 8080 {
        weight 1
        FILE_CHECK {
            track_file load
            dynamic
        }
    }
}
virtual_server 198.18.0.10 90 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.19.0.13 8444 {
        SSL_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server 198.18.0.10 89 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.19.0.12 8080 {
        HTTP_GET {
            url {
                path /page
                regex "state: (ok|warn)"
                regex_options caseless
            }
            url {
                path /page
                regex "ERROR [0-9]+"
                regex_no_match
            }
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server 198.18.0.10 87 {
    protocol TCP
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 198.19.0.12 8080 {
        PING_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
virtual_server 198.18.0.10 25 {
    protocol TCP
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 198.19.0.11 2525 {
        SMTP_CHECK {
            connect_timeout 1
            retry 0
            helo_name xdpvs.test
        }
    }
    real_server 198.19.0.12 2525 {
        SMTP_CHECK {
            retry 0
            host {
                connect_ip 198.19.0.11
                connect_timeout 1
            }
            host {
                connect_ip 198.19.0.12
                connect_timeout 1
            }
        }
    }
}
$extra
CONF
}
write_conf 1

"$CHECKER" -t -f "$WORK/keepalived.conf" || fail "xdpvs-checker -t refused the test's keepalived.conf"
printf 'virtual_server 198.18.0.10 80 {\n  lb_kind XYZ\n  real_server 198.19.0.11 80 {\n    weight heavy\n  }\n' > "$WORK/bad.conf"
if out=$("$CHECKER" -t -f "$WORK/bad.conf" 2>&1); then fail "xdpvs-checker -t accepted a bad file"; fi
grep -q "bad.conf:2: 'lb_kind': 'XYZ' is not NAT, DR, TUN or FNAT" <<<"$out" \
    && grep -q "bad.conf:4: 'weight': 'heavy'" <<<"$out" && grep -q "bad.conf:1: block opened here is never closed" <<<"$out" \
    || fail "-t's messages: $out"
for f in configs/keepalived/*.conf; do
    "$CHECKER" -t -f "$f" 2>/dev/null || fail "xdpvs-checker -t refused the example $f: $("$CHECKER" -t -f "$f" 2>&1)"
done
keepalived -t -P -f configs/keepalived/lvs-dr-pair.conf >/dev/null 2>&1 || fail "keepalived -t refused configs/keepalived/lvs-dr-pair.conf"
# A generated-style file ($PARAMETERS, multi-line values, ~SEQ, ~LST, @id):
# keepalived and xdpvs-checker both accept it (its reading is unit-tested).
tpl=checker/tests/fixtures/templated.conf
keepalived -t -P -f "$tpl" >/dev/null 2>&1 || fail "keepalived -t refused $tpl: $(keepalived -t -P -f "$tpl" 2>&1)"
out=$("$CHECKER" -t -f "$tpl" 2>&1) && [ -z "$out" ] || fail "xdpvs-checker -t on $tpl: $out"
# keepalived's own sample files (Debian's package) all load.
n=0
for f in /usr/share/doc/keepalived/samples/keepalived.conf.*; do
    n=$((n + 1))
    out=$("$CHECKER" -t -i high -f "$f" 2>&1) || fail "xdpvs-checker -t refused keepalived's sample $f: $out"
    ! grep -q "Unknown keyword" <<<"$out" || fail "keepalived's sample $f has keywords xdpvs-checker does not know: $out"
done
[ "$n" -ge 20 ] || fail "only $n keepalived sample files found"
echo "ok   all $n of keepalived's sample files (Debian's /usr/share/doc/keepalived/samples) pass xdpvs-checker -t with no unknown keyword"
echo "ok   the example pair files (configs/keepalived) pass xdpvs-checker -t; the DR pair's passes keepalived -t too; so does a templated file (parameters, multi-line values, ~SEQ, ~LST), with no warning"
echo "ok   xdpvs-checker -t: 0 for the test's file; 1 with FILE:LINE for each of a bad file's three problems"

checker_up() {
    ip netns exec "$NS_D" "$CHECKER" -f "$WORK/keepalived.conf" --instance "$ID" >>"$WORK/checker.log" 2>&1 &
    CHECKER_PID=$!
    PIDS+=("$CHECKER_PID")
}
# wait_for SECONDS WHAT CMD...: CMD succeeds within SECONDS; prints how long it took.
wait_for() {
    local limit="$1" what="$2" t0; shift 2
    t0=$(date +%s.%N)
    while ! "$@" >/dev/null 2>&1; do
        python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t0 < $limit else 1)" \
            || fail "$what: not within $limit s. Checker log: $(tail -5 "$WORK/checker.log") -L: $(adm -L -n)"
        sleep 0.1
    done
    python3 -c "print('%.1f' % ($(date +%s.%N) - $t0))"
}
# has SVC LINE-REGEX: `-L -n`'s block of service SVC has a matching line.
svc_block() { adm -L -n | awk -v s="TCP  $1 " 'index($0, s) == 1 {on = 1; next} /^(TCP|UDP|FWM)/ {on = 0} on'; }
has() { svc_block "$1" | grep -qE "$2"; }
lacks() { ! svc_block "$1" | grep -qE "$2"; }

checker_up
wait_for 5 "the checker's services on the director" has 198.18.0.10:80 '198.19.0.13:8080 +Masq +1 ' >/dev/null
has 198.18.0.10:80 '198.19.0.11:8080' && has 198.18.0.10:80 '198.19.0.12:8080' || fail "not every real server is in: $(adm -L -n)"
has 198.18.0.10:84 . && adm -L -n | grep -q "198.18.0.10:84 rr proxy-protocol v2" || fail "the FNAT service lacks its PROXY protocol: $(adm -L -n)"
[ "$(ns "$NS_C" curl -s --max-time 5 http://198.18.0.10:84/)" = rs1 ] || fail "no answer through the FNAT service with PROXY v2"
grep -q "^198.18.0.100:" "$WORK/nginx1-8090/access.log" || fail "the PROXY v2 server did not log the client: $(cat "$WORK/nginx1-8090/access.log")"
[ "$(adm -L --timeout)" = "Timeout (tcp tcpfin udp): 7200 120 120" ] || fail "lvs_timeouts not applied: $(adm -L --timeout)"
echo "ok   keepalived.conf applied: lvs_timeouts (tcp 7200, udp 120, tcpfin left at 120) shown by -L --timeout; lb_kind FNAT + laddr_group_name + proxy_protocol v2 shown by -L and answered, the server logging the client's address"

# TCP_CHECK: rs2's nginx stops. Bound: delay_loop + connect_timeout + retry x delay_before_retry + 1 s.
kill "$(cat "$WORK/nginx2-8080/nginx.pid")"
took=$(wait_for 4 "rs2 removed after its nginx stopped" lacks 198.18.0.10:80 '198.19.0.12:8080')
grep -q "TCP connection to \[198.19.0.12\]:tcp:8080 failed." "$WORK/checker.log" \
    && grep -q "Removing service \[198.19.0.12\]:tcp:8080 from VS \[198.18.0.10\]:tcp:80" "$WORK/checker.log" \
    || fail "keepalived's log lines missing: $(cat "$WORK/checker.log")"
curl_split 30 http://198.18.0.10/ >/dev/null
expect_split "rs1 15" "rs3 15"
sleep 1.2 # the status is written once a second
st=$("$CHECKER" --status --instance "$ID") || fail "--status: $st"
grep -E '^\[198.18.0.10\]:tcp:80 +\[198.19.0.12\]:tcp:8080 +TCP_CHECK +down ' <<<"$st" | grep -q 'TCP connection to \[198.19.0.12\]:tcp:8080 failed.' \
    || fail "--status does not show rs2 down: $st"
"$CHECKER" --status --json --instance "$ID" | python3 -c '
import json, sys
s = json.load(sys.stdin)
rows = [r for r in s["checks"] if r["virtual_server"] == "[198.18.0.10]:tcp:80" and r["real_server"] == "[198.19.0.12]:tcp:8080"]
assert len(rows) == 1 and rows[0]["state"] == "down" and rows[0]["failures_in_row"] >= 1, rows
assert sum(1 for r in s["checks"] if r["state"] == "up") >= 6, s' || fail "--status --json"
echo "ok   --status (text and JSON) shows rs2's TCP_CHECK down, since when, failures in a row, and why"
echo "ok   TCP_CHECK: rs2's nginx stopped, gone from -L in $took s (bound 4 s), logged in keepalived's words; the next 30 requests all answered (15/15)"
rs_nginx 2 8080
took=$(wait_for 4 "rs2 back after its nginx started" has 198.18.0.10:80 '198.19.0.12:8080 +Masq +1 ')
grep -q "Adding service \[198.19.0.12\]:tcp:8080 to VS \[198.18.0.10\]:tcp:80" "$WORK/checker.log" || fail "no 'Adding service' line"
for _ in $(seq 1 20); do [ "$(cat "$WORK/notify" 2>/dev/null | tr '\n' ' ')" = "down 198.19.0.12 up 198.19.0.12 " ] && break; sleep 0.1; done
[ "$(tr '\n' ' ' < "$WORK/notify")" = "down 198.19.0.12 up 198.19.0.12 " ] || fail "notify scripts: $(cat "$WORK/notify" 2>&1)"
echo "ok   rs2's nginx started again: back with its weight in $took s; notify_down (as user nobody) and notify_up ran with their arguments"
# keepalived's e-mail alerts, to rs1's aiosmtpd: the DOWN, then the UP.
mailed() { grep -qF "$1" "$WORK/smtp1.out" && grep -A8 -F "$1" "$WORK/smtp1.out" | grep -qF "$2"; }
rs2_mail="Subject: [xdpvs_test] Realserver [198.19.0.12]:tcp:8080 of virtual server [198.18.0.10]:tcp:80"
wait_for 4 "the DOWN mail" mailed "$rs2_mail - DOWN" "=> TCP CHECK failed on service <=" >/dev/null
wait_for 4 "the UP mail" mailed "$rs2_mail - UP" "=> TCP CHECK succeed on service <=" >/dev/null
grep -B6 -A3 -F "$rs2_mail - DOWN" "$WORK/smtp1.out" | grep -q "^From: lvs@example.com" \
    && grep -A3 -F "$rs2_mail - DOWN" "$WORK/smtp1.out" | grep -q "^X-Mailer: Keepalived" \
    && grep -A3 -F "$rs2_mail - DOWN" "$WORK/smtp1.out" | grep -q "^To: ops@example.com, noc@example.com" \
    && grep -q "RCPT TO:<noc@example.com>" "$WORK/smtp1.log" \
    || fail "the alert's headers: $(grep -B6 -A6 -F "$rs2_mail" "$WORK/smtp1.out" | head -30)"
grep -q "SMTP alert successfully sent." "$WORK/checker.log" || fail "no 'SMTP alert successfully sent.' line"
echo "ok   smtp_alert: rs2's DOWN and UP mailed to aiosmtpd with keepalived's subject, body and headers, to both addresses"

# HTTP_GET with inhibit_on_failure: a 500 (then a changed page) sets weight
# 0; a download running through the server finishes byte-exact.
wait_for 3 "HTTP_GET service up" has 198.18.0.10:81 '198.19.0.11:8080 +Masq +5 ' >/dev/null
want=$(sha256sum < "$WORK/big" | cut -d' ' -f1)
ns "$NS_C" curl -s --max-time 60 --limit-rate 25M -o "$WORK/got81" http://198.18.0.10:81/big &
dl=$!
sleep 1
touch "$WORK/nginx1-8080/down"
took=$(wait_for 4 "rs1 at weight 0 after answering 500" has 198.18.0.10:81 '198.19.0.11:8080 +Masq +0 ')
grep -q "HTTP status code error to \[198.19.0.11\]:tcp:8080 url(/health), status_code \[500\]." "$WORK/checker.log" \
    && grep -q "Disabling service \[198.19.0.11\]:tcp:8080 from VS \[198.18.0.10\]:tcp:81" "$WORK/checker.log" \
    || fail "HTTP_GET log lines missing: $(tail -5 "$WORK/checker.log")"
wait "$dl" || fail "the download through the inhibited server failed"
[ "$(sha256sum < "$WORK/got81" | cut -d' ' -f1)" = "$want" ] || fail "the download through the inhibited server is not byte-exact"
echo "ok   HTTP_GET status 500: weight 0 in $took s (inhibit_on_failure), a 100 MiB download through it finished byte-exact"
rm -f "$WORK/nginx1-8080/down"
wait_for 4 "rs1 back at weight 5" has 198.18.0.10:81 '198.19.0.11:8080 +Masq +5 ' >/dev/null
echo "page v2" > "$WORK/nginx1-8080/page"
took=$(wait_for 4 "rs1 at weight 0 after its page changed" has 198.18.0.10:81 '198.19.0.11:8080 +Masq +0 ')
grep -q "MD5 digest error to \[198.19.0.11\]:tcp:8080 url\[/page\]" "$WORK/checker.log" || fail "no digest log line"
echo "page v1 of rs1" > "$WORK/nginx1-8080/page"
wait_for 4 "rs1 back after its page was restored" has 198.18.0.10:81 '198.19.0.11:8080 +Masq +5 ' >/dev/null
echo "ok   HTTP_GET digest: a changed page sets weight 0 in $took s, the original brings weight 5 back"
# HTTP_GET regex (caseless) and regex_no_match on rs2's /page.
wait_for 4 "the regex-checked server in" has 198.18.0.10:89 '198.19.0.12:8080 +Masq +1 ' >/dev/null
echo "state: degraded" > "$WORK/nginx2-8080/page"
took=$(wait_for 4 "out when its state stops matching" lacks 198.18.0.10:89 '198.19.0.12:8080')
grep -q "Regex match failed to \[198.19.0.12\]:tcp:8080 url(/page): 'state: (ok|warn)' not found." "$WORK/checker.log" || fail "no regex log line"
echo "State: WARN ERROR 42" > "$WORK/nginx2-8080/page"
why_is() { "$CHECKER" --status --instance "$ID" | grep -F "$1"; }
took2=$(wait_for 4 "still out with an ERROR line (regex_no_match), as --status says" why_is "'ERROR [0-9]+' found")
lacks 198.18.0.10:89 '198.19.0.12:8080' || fail "a server whose page holds ERROR is in"
echo "state: ok" > "$WORK/nginx2-8080/page"
wait_for 4 "back when its state matches" has 198.18.0.10:89 '198.19.0.12:8080 +Masq +1 ' >/dev/null
echo "ok   HTTP_GET regex: a page that stops matching took rs2 out in $took s; one that matches but holds 'ERROR 42' kept it out (regex_no_match, $took2 s); a matching page brought it back"

# SSL_GET over nginx's TLS.
wait_for 4 "SSL_GET server in" has 198.18.0.10:86 '198.19.0.13:8443 +Masq +1 ' >/dev/null
touch "$WORK/nginx3-8443/down"
took=$(wait_for 4 "SSL_GET server out after 500" lacks 198.18.0.10:86 '198.19.0.13:8443')
rm -f "$WORK/nginx3-8443/down"
wait_for 4 "SSL_GET server back" has 198.18.0.10:86 '198.19.0.13:8443 +Masq +1 ' >/dev/null
echo "ok   SSL_GET (TLS with SNI) to nginx: in; its 500 took it out in $took s; back when it answers 200"

# SSL_GET with the SSL block's client certificate, to a server that asks.
code() { ns "$(rs_ns 3)" curl -sk -o /dev/null -w '%{http_code}' "$@" https://198.19.0.13:8444/health; }
[ "$(code)" = 400 ] && [ "$(code --cert "$WORK/client.crt" --key "$WORK/client.key")" = 200 ] \
    || fail "the client-certificate server: $(code) without, $(code --cert "$WORK/client.crt" --key "$WORK/client.key") with"
wait_for 4 "SSL_GET with a client certificate in" has 198.18.0.10:90 '198.19.0.13:8444 +Masq +1 ' >/dev/null
printf 'SSL {\n certificate %s\n key %s\n}\n' "$WORK/v1.crt" "$WORK/client.key" > "$WORK/v1.conf"
out=$("$CHECKER" -t -f "$WORK/v1.conf" 2>&1) && fail "-t accepted a v1 client certificate"
grep -q "v1.conf:1: SSL: not usable as a client certificate: .*issue a v3 one" <<<"$out" || fail "-t on a v1 client certificate: $out"
echo "ok   SSL block: SSL_GET presents its client certificate to an nginx that requires one (which answers curl 400 without it, 200 with it): in; -t names a v1 certificate, which rustls refuses"

# UDP_CHECK (a reply required), DNS_CHECK (dnsmasq), PING_CHECK.
udp_has() { adm -L -n | awk -v s="UDP  $1 " 'index($0, s) == 1 {on = 1; next} /^(TCP|UDP|FWM)/ {on = 0} on' | grep -qE "$2"; }
udp_lacks() { ! udp_has "$@"; }
wait_for 4 "UDP_CHECK server in" udp_has 198.18.0.10:53 '198.19.0.11:5353 +Masq +1 ' >/dev/null
wait_for 4 "DNS_CHECK server in" udp_has 198.18.0.10:53 '198.19.0.12:5354 +Masq +1 ' >/dev/null
wait_for 4 "PING_CHECK server in" has 198.18.0.10:87 '198.19.0.12:8080 +Masq +1 ' >/dev/null
for p in $(ip netns pids "$(rs_ns 1)"); do
    grep -q 5353 "/proc/$p/cmdline" 2>/dev/null && kill "$p"
done
took=$(wait_for 4 "UDP_CHECK server out when its port is closed" udp_lacks 198.18.0.10:53 '198.19.0.11:5353')
kill "$(cat "$WORK/dnsmasq.pid")"
took_dns=$(wait_for 4 "DNS_CHECK server out when dnsmasq stops" udp_lacks 198.18.0.10:53 '198.19.0.12:5354')
ns "$(rs_ns 2)" nft -f - <<'NFT'
table inet xdpvs_test {
    chain in {
        type filter hook input priority 0;
        icmp type echo-request drop
    }
}
NFT
took_ping=$(wait_for 4 "PING_CHECK server out when it stops answering ping" lacks 198.18.0.10:87 '198.19.0.12:8080')
ns "$(rs_ns 2)" nft delete table inet xdpvs_test
wait_for 4 "PING_CHECK server back" has 198.18.0.10:87 '198.19.0.12:8080 +Masq +1 ' >/dev/null
echo "ok   UDP_CHECK (reply required), DNS_CHECK (dnsmasq, A www.example.com) and PING_CHECK: in; out when the port closes ($took s), dnsmasq stops ($took_dns s), ping is dropped ($took_ping s); ping back: in"

# SMTP_CHECK against aiosmtpd on rs1 and rs2: rs1 checked with its
# helo_name; rs2 by its two host blocks (rs1's server and its own), each a
# checker of its own with keepalived's default HELO name.
wait_for 4 "SMTP_CHECK server in" has 198.18.0.10:25 '198.19.0.11:2525 +Masq +1 ' >/dev/null
wait_for 4 "SMTP_CHECK host-block server in" has 198.18.0.10:25 '198.19.0.12:2525 +Masq +1 ' >/dev/null
grep -q ">> b'HELO xdpvs.test'" "$WORK/smtp1.log" && grep -q ">> b'HELO smtpchecker.keepalived.org'" "$WORK/smtp1.log" \
    && grep -q ">> b'HELO smtpchecker.keepalived.org'" "$WORK/smtp2.log" && grep -q ">> b'QUIT'" "$WORK/smtp2.log" \
    || fail "aiosmtpd did not hear HELO with each helo name, then QUIT: $(tail -20 "$WORK"/smtp?.log)"
for i in 1 2; do
    printf 'Subject: xdpvs\r\n\r\nmail %s through the VIP\r\n' "$i" > "$WORK/mail"
    ns "$NS_C" curl -sS --max-time 5 --mail-from a@example.com --mail-rcpt b@example.com -T "$WORK/mail" \
        smtp://198.18.0.10:25 || fail "curl could not send mail $i through the SMTP virtual server"
done
grep -q "through the VIP" "$WORK/smtp1.out" && grep -q "through the VIP" "$WORK/smtp2.out" \
    || fail "each aiosmtpd did not receive one of the two mails: $(cat "$WORK"/smtp?.out | tail -20)"
kill "${SMTP_PID[1]}"
took=$(wait_for 4 "SMTP_CHECK servers out when rs1's aiosmtpd stops" lacks 198.18.0.10:25 '198.19.0.1[12]:2525')
grep -q "Could not connect to server \[198.19.0.11\]:tcp:2525" "$WORK/checker.log" || fail "no keepalived-worded SMTP failure: $(tail -5 "$WORK/checker.log")"
smtp_up 1
wait_for 4 "SMTP_CHECK servers back" has 198.18.0.10:25 '198.19.0.12:2525 +Masq +1 ' >/dev/null
has 198.18.0.10:25 '198.19.0.11:2525 +Masq +1 ' || fail "rs1 not back in the SMTP service: $(adm -L -n)"
echo "ok   SMTP_CHECK (aiosmtpd): HELO with helo_name and keepalived's default, then QUIT; two host blocks, a checker each; two mails sent by curl through the VIP, one to each server; rs1's aiosmtpd stopped: both out in $took s (rs2 by its host block); started: both back"

# FILE_CHECK: track files initialised to 0; a non-zero maintenance value
# takes rs1 out (weight 0), a load of 3 sets rs2 to 1 + 3 x 10.
wait_for 4 "FILE_CHECK servers in" has 198.18.0.10:88 '198.19.0.11:8080 +Masq +1 ' >/dev/null
[ "$(cat "$WORK/maintenance")" = 0 ] || fail "init_file did not write 0"
echo 1 > "$WORK/maintenance"
took=$(wait_for 3 "FILE_CHECK maintenance takes rs1 out" lacks 198.18.0.10:88 '198.19.0.11:8080')
echo 3 > "$WORK/load"
wait_for 3 "FILE_CHECK dynamic weight 31" has 198.18.0.10:88 '198.19.0.12:8080 +Masq +31 ' >/dev/null
echo 0 > "$WORK/maintenance"
wait_for 3 "FILE_CHECK maintenance over" has 198.18.0.10:88 '198.19.0.11:8080 +Masq +1 ' >/dev/null
echo "ok   FILE_CHECK: init_file wrote 0; a maintenance value of 1 took rs1 out ($took s), 0 back; a load of 3 at weight 10 made rs2's weight 31 (dynamic)"

# MISC_CHECK misc_dynamic: exit 7 gives weight 5, exit 12 weight 10, exit 1 out.
wait_for 4 "MISC weight 5" has 198.18.0.10:82 '198.19.0.12:8080 +Masq +5 ' >/dev/null
echo 12 > "$WORK/misc_exit"
wait_for 4 "MISC weight 10" has 198.18.0.10:82 '198.19.0.12:8080 +Masq +10 ' >/dev/null
echo 1 > "$WORK/misc_exit"
wait_for 4 "MISC failure removes the server" lacks 198.18.0.10:82 '198.19.0.12:8080' >/dev/null
echo 0 > "$WORK/misc_exit"
wait_for 4 "MISC exit 0 brings the configured weight" has 198.18.0.10:82 '198.19.0.12:8080 +Masq +1 ' >/dev/null
echo "ok   MISC_CHECK misc_dynamic: exit 7 → weight 5, exit 12 → 10, exit 1 → removed, exit 0 → weight 1"

# Quorum 2 of two servers: one failing brings in the sorry server, alone.
touch "$WORK/nginx2-8080/down"
took=$(wait_for 4 "the sorry server after quorum lost" has 198.18.0.10:83 '198.19.0.13:8080')
lacks 198.18.0.10:83 '198.19.0.1[12]:8080' || fail "real servers left beside the sorry server: $(svc_block 198.18.0.10:83)"
grep -q "Lost quorum 2-0 > 1 for VS \[198.18.0.10\]:tcp:83" "$WORK/checker.log" \
    && grep -q "Adding sorry server \[198.19.0.13\]:tcp:8080 to VS \[198.18.0.10\]:tcp:83" "$WORK/checker.log" \
    || fail "quorum log lines missing: $(grep -i quorum "$WORK/checker.log")"
[ "$(ns "$NS_C" curl -s --max-time 5 http://198.18.0.10:83/)" = rs3 ] || fail "the sorry server does not answer"
rm -f "$WORK/nginx2-8080/down"
wait_for 4 "quorum back" has 198.18.0.10:83 '198.19.0.12:8080' >/dev/null
lacks 198.18.0.10:83 '198.19.0.13:8080' || fail "the sorry server stayed after quorum came back"
vs_mail="Subject: [xdpvs_test] Virtualserver [198.18.0.10]:tcp:83"
wait_for 4 "the quorum mails" mailed "$vs_mail - UP" "=> Gained quorum 2+0=2 <= 2 <=" >/dev/null
mailed "$vs_mail - DOWN" "=> Lost quorum 2+0=2 <= 1 <=" || fail "no quorum-lost mail: $(grep -A8 -F "$vs_mail" "$WORK/smtp1.out")"
echo "ok   quorum 2: one of two servers failing brought in the sorry server alone in $took s (it answered); back, the sorry server left; both changes mailed (smtp_alert)"

# SIGHUP with an edited file during a transfer through :80.
ns "$NS_C" curl -s --max-time 60 --limit-rate 25M -o "$WORK/got80" http://198.18.0.10:80/big &
dl=$!
sleep 1
write_conf 3 "virtual_server 198.18.0.10 85 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.19.0.13 8080 {
        weight 2
    }
}"
kill -HUP "$CHECKER_PID"
wait_for 4 "the edited weight" has 198.18.0.10:80 '198.19.0.13:8080 +Masq +3 ' >/dev/null
wait_for 2 "the new virtual server" has 198.18.0.10:85 '198.19.0.13:8080 +Masq +2 ' >/dev/null
wait "$dl" || fail "the transfer during SIGHUP failed"
[ "$(sha256sum < "$WORK/got80" | cut -d' ' -f1)" = "$want" ] || fail "the transfer during SIGHUP is not byte-exact"
echo "ok   SIGHUP with an edited file: one weight changed and one virtual server added during a 100 MiB transfer, which stayed byte-exact"

# The daemon restarts (its rules are empty): the checker finds the new
# daemon and gives it its services back.
xdpvs_down
xdpvs_up - --iface d0 --iface d1
took=$(wait_for 9 "the checker's services on the restarted daemon" has 198.18.0.10:80 '198.19.0.13:8080 +Masq +3 ')
got=$(ns "$NS_C" curl -sS --max-time 5 http://198.18.0.10:85/ 2>&1)
[ "$got" = rs3 ] || fail "no answer through the restarted daemon: curl said '$got'; drops: $(drops_now); $(adm -L -n --stats); its log: $(tail -5 "$WORK/xdpvs.log"); neighbours: $(ns "$NS_D" ip neigh show)"
timeouts_back() { [ "$(adm -L --timeout)" = "Timeout (tcp tcpfin udp): 7200 120 120" ]; }
wait_for 3 "lvs_timeouts on the restarted daemon" timeouts_back >/dev/null
echo "ok   xdpvs restarted under the checker: its services and lvs_timeouts were back after $took s (the checker looks for a new region every second)"

# A checker restart changes nothing on the director.
before=$(adm -S -n)
gen=$(adm -L -n --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
kill -TERM "$CHECKER_PID"; wait "$CHECKER_PID" 2>/dev/null || true
[ "$(adm -S -n)" = "$before" ] || fail "the configuration changed when the checker stopped"
[ "$(tail -1 "$WORK/notify")" = "down 198.19.0.12" ] || fail "omega: no notify_down at shutdown: $(cat "$WORK/notify")"
mailed "$rs2_mail - DOWN" "=> Shutting down <=" || fail "omega: no shutdown mail: $(grep -A8 -F "$rs2_mail" "$WORK/smtp1.out" | tail -12)"
checker_up
sleep 3
[ "$(adm -S -n)" = "$before" ] || fail "a restarted checker changed the configuration: $(diff <(echo "$before") <(adm -S -n))"
gen2=$(adm -L -n --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
[ "$gen" = "$gen2" ] || fail "a restarted checker published a new generation ($gen → $gen2)"
echo "ok   the checker stopped: omega ran notify_down and mailed keepalived's 'Shutting down'; its configuration stayed in force; restarted: it adopted it, not one change (generation $gen)"
kill -TERM "$CHECKER_PID"; wait "$CHECKER_PID" 2>/dev/null || true
xdpvs_down
check_detached
