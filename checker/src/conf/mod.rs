//! Reading keepalived.conf: [`source`] (words, comments, quotes, includes),
//! [`tree`] (blocks), [`model`] (keepalived's settings, defaults and
//! inheritance), then the checks across blocks (a group or local-address
//! group that is named but never defined).

pub mod alerts;
pub mod body_regex;
pub mod expand;
pub mod model;
pub mod source;
pub mod ssl;
pub mod tree;
pub mod vrrp;

use model::{Conf, Diag, Head};
use std::path::Path;

/// A read configuration and what was wrong with it.
#[derive(Debug)]
pub struct Loaded {
    pub conf: Conf,
    /// `FILE:LINE: message`, in reading order; `fatal` ones mean the file
    /// is not applied.
    pub diags: Vec<(String, String, bool)>,
    /// `FILE:LINE` of each virtual server, beside `conf.services`.
    pub places: Vec<String>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = String> + '_ {
        self.diags.iter().filter(|d| d.2).map(|(at, m, _)| format!("{at}: {m}"))
    }

    pub fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.diags.iter().filter(|d| !d.2).map(|(at, m, _)| format!("{at}: {m}"))
    }

    pub fn ok(&self) -> bool {
        self.errors().next().is_none()
    }
}

/// Reads `path` (and its includes) as keepalived's default config id (the
/// host name) would.
pub fn load(path: &Path) -> Loaded {
    load_as(path, &host_name())
}

/// The host's name up to its first dot: keepalived's default `--config-id`.
pub fn host_name() -> String {
    host_full_name().split('.').next().unwrap_or_default().to_string()
}

/// The host's whole name: keepalived's default `router_id` and HELO name.
pub fn host_full_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string()
}

/// Reads `path` with the conditional lines of `config_id` (`-i`).
pub fn load_as(path: &Path, config_id: &str) -> Loaded {
    let src = source::Source::read(path, config_id);
    let mut problems = Vec::new();
    let nodes = tree::build(&src, &mut problems);
    let mut diags: Vec<Diag> = src
        .problems
        .iter()
        .map(|(at, m)| Diag { at: *at, msg: m.clone(), fatal: !m.contains("matches no file") })
        .chain(problems.into_iter().map(|(at, msg)| Diag { at, msg, fatal: true }))
        .collect();
    let conf = model::build(&nodes, &mut diags);
    cross_check(&conf, &mut diags);
    if src.files.is_empty() {
        diags.retain(|d| d.at.line != 0 || d.fatal);
    }
    diags.sort_by_key(|d| (d.at.file, d.at.line));
    let diags = diags.into_iter().map(|d| (src.place(d.at), d.msg, d.fatal)).collect();
    let places = conf.services.iter().map(|vs| src.place(vs.at)).collect();
    Loaded { conf, diags, places }
}

/// What one block says about another.
fn cross_check(conf: &Conf, diags: &mut Vec<Diag>) {
    for vs in &conf.services {
        if let Head::Group(g) = &vs.head {
            if !conf.groups.contains_key(g) {
                diags.push(Diag {
                    at: vs.at,
                    msg: format!("virtual_server group {g}: no virtual_server_group {g}"),
                    fatal: true,
                });
            }
        }
        if let Some(g) = &vs.laddr_group {
            if !conf.laddr_groups.contains_key(g) {
                diags.push(Diag {
                    at: vs.at,
                    msg: format!("laddr_group_name {g}: no local_address_group {g}"),
                    fatal: true,
                });
            }
        }
        let fullnat = vs.reals.iter().any(|r| r.fwd == xdpvs_api::config::Fwd::FullNat);
        if fullnat && vs.laddr_group.is_none() {
            diags.push(Diag {
                at: vs.at,
                msg: "FNAT real servers but no laddr_group_name: the service has no local address to connect from"
                    .into(),
                fatal: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::*;
    use std::net::IpAddr;
    use std::time::Duration;
    use xdpvs_api::config::{sched_flags, Fwd, Proto, ProxyProtocol, SchedKind};

    fn fixture(name: &str) -> Loaded {
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lvs_sync_daemon_follows_its_vrrp_instance() {
        let l = fixture("sync-daemon.conf");
        assert!(l.ok() && l.warnings().count() == 0, "{:?}", l.diags);
        let d = l.conf.sync_daemon.as_ref().expect("lvs_sync_daemon read");
        assert_eq!(d.instance.as_deref(), Some("VI_1"));
        let spec = vrrp::resolved(d, &l.conf.vrrp);
        assert_eq!((spec.iface.as_str(), spec.syncid, spec.maxlen, spec.ttl), ("eth1", 51, Some(1400), Some(2)));
        assert_eq!(l.conf.vrrp["VI_1"].addrs, vec![ip("198.18.0.10"), ip("2001:db8::10")]);
        let text = |s: &str| {
            let dir = std::env::temp_dir().join(format!("xdpvs-sync-{}-{}", std::process::id(), s.len()));
            std::fs::write(&dir, s).unwrap();
            let l = load(&dir);
            let _ = std::fs::remove_file(&dir);
            l
        };
        let given = text("global_defs {\n lvs_sync_daemon eth1 inst VI_9 id 7 group ff02::81\n}\n");
        let d = given.conf.sync_daemon.clone().unwrap();
        assert_eq!(d.instance, None, "an unknown instance is ignored, as keepalived does");
        assert!(given.warnings().any(|w| w.contains("Unknown VRRP instance VI_9")));
        assert_eq!((d.spec.syncid, d.spec.group), (7, Some(ip("ff02::81"))));
        let bad = text("global_defs {\n lvs_sync_daemon eth1 VI_1 port 0\n}\n");
        assert!(!bad.ok(), "port 0 is refused by name");
    }

    #[test]
    fn a_keepalived_1_1_tutorial_file_loads() {
        let l = fixture("lvs-dr-2009.conf");
        assert!(l.ok(), "{:?}", l.diags);
        let w: Vec<String> = l.warnings().collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].ends_with("lvs-dr-2009.conf:34: Unknown keyword 'nat_mask'"), "{w:?}");
        let vs = &l.conf.services[0];
        assert_eq!(vs.head, Head::Addr(ip("198.18.0.10"), 80));
        assert_eq!((vs.sched, vs.fwd, vs.persistence, vs.proto), (SchedKind::Wrr, Fwd::Dr, Some(50), Proto::Tcp));
        let r = &vs.reals[0];
        assert_eq!((r.weight, r.fwd, r.timing.delay_loop), (3, Fwd::Dr, Duration::from_secs(6)));
        let c = &r.checks[0];
        assert_eq!(
            (c.retry(), c.delay_before_retry(), c.timing.connect_timeout),
            (3, Duration::from_secs(3), Duration::from_secs(3))
        );
        let CheckKind::Http { urls, tls: false, .. } = &c.kind else { panic!("{:?}", c.kind) };
        assert_eq!(urls[0].digest.as_deref(), Some("640205b7b0fc66c1ea91c463fac6334d"));
        let c = &vs.reals[1].checks[0];
        assert_eq!((&c.kind, c.connect_port, c.retry()), (&CheckKind::Tcp, Some(80), 1));
    }

    #[test]
    fn groups_inheritance_quorum_and_scripts() {
        let l = fixture("full-2x.conf");
        assert!(l.ok(), "{:?}", l.diags);
        let w: Vec<String> = l.warnings().collect();
        assert!(w.len() == 1 && w[0].contains("Unknown keyword 'bogus_keyword'"), "{w:?}");
        let g = &l.conf.groups["WEB"];
        assert_eq!(g.len(), 4);
        assert_eq!(g[1], GroupMember::Addrs { first: ip("198.18.0.20"), last: ip("198.18.0.22"), port: 80 });
        assert_eq!(g[2], GroupMember::Addrs { first: ip("198.18.1.0"), last: ip("198.18.1.3"), port: 8080 });
        assert_eq!(g[3], GroupMember::Fwmark(7));
        let vs = &l.conf.services[0];
        assert_eq!(vs.head, Head::Group("WEB".into()));
        assert_eq!(vs.sched_flags, sched_flags::PORT | sched_flags::FALLBACK);
        assert_eq!((vs.persistence, vs.granularity, vs.quorum, vs.hysteresis), (Some(360), Some(24), 3, 1));
        assert_eq!(vs.quorum_up.as_deref(), Some("/usr/local/bin/quorum up"));
        assert_eq!(vs.sorry, Some(Sorry { addr: ip("198.19.0.99"), port: 8080, fwd: Some(Fwd::Nat), inhibit: false }));
        let (a, b) = (&vs.reals[0], &vs.reals[1]);
        assert!(a.timing.alpha && a.timing.inhibit_on_failure, "inherited from the virtual server");
        assert_eq!(a.notify_up.as_ref().map(|n| n.script.as_str()), Some("/usr/local/bin/notify up 198.19.0.11"));
        let CheckKind::Misc { path, timeout, dynamic: true, user } = &a.checks[0].kind else { panic!() };
        assert_eq!(
            (path.as_str(), *timeout, user.as_deref()),
            ("/usr/local/bin/check 198.19.0.11", Some(Duration::from_secs(4)), Some("nobody"))
        );
        assert_eq!(a.checks[0].retry(), 2, "retry inherited from the virtual server");
        assert_eq!(a.checks[0].timing.connect_timeout, Duration::from_millis(1500));
        assert_eq!(b.checks[0].timing.delay_loop, Duration::from_secs(10), "the real server's own delay_loop");
        let CheckKind::Http { urls, protocol: HttpProtocol::V11, virtualhost, .. } = &b.checks[0].kind else {
            panic!()
        };
        assert_eq!(urls[0].status, vec![(200, 299), (503, 503)]);
        assert_eq!(virtualhost.as_deref(), Some("www.example.com"));
        assert_eq!(b.checks[0].timing.warmup, Some(Duration::from_secs(5)));
        assert_eq!(l.conf.services[1].head, Head::Fwmark(99));
        let dns = &l.conf.services[2];
        assert_eq!((dns.proto, dns.ops, dns.sched), (Proto::Udp, true, SchedKind::Sh));
        // The group's services: one per address, and the mark.
        let keys = crate::desired::service_keys(&l.conf, vs);
        assert_eq!(keys.len(), 1 + 3 + 4 + 1);
    }

    #[test]
    fn dpvs_fullnat_extensions() {
        let l = fixture("dpvs-fnat.conf");
        assert!(l.ok(), "{:?}", l.diags);
        let vs = &l.conf.services[0];
        assert!(vs.syn_proxy, "DPVS's syn_proxy switches the service's SYN proxy on");
        assert_eq!(
            (vs.fwd, vs.proxy_protocol, vs.laddr_group.as_deref()),
            (Fwd::FullNat, Some(ProxyProtocol::V2), Some("laddr_g1"))
        );
        let g = &l.conf.laddr_groups["laddr_g1"];
        assert_eq!(
            g.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![ip("198.19.0.250"), ip("198.19.0.251"), ip("198.19.0.252")]
        );
        assert_eq!(g[0].1.as_deref(), Some("d1"));
        let (cfg, errors) =
            crate::desired::render(&l.conf, &Default::default(), &mut Default::default(), |_| String::new());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            xdpvs_api::admin::save(&cfg),
            "-A -t 198.18.0.10:80 -s rr --proxy-protocol v2 -j enable\n-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -b -w 100\n\
             -P -t 198.18.0.10:80 -z 198.19.0.250 -F d1\n-P -t 198.18.0.10:80 -z 198.19.0.251 -F d1\n\
             -P -t 198.18.0.10:80 -z 198.19.0.252 -F d1\n"
        );
    }

    #[test]
    fn bad_values_name_file_line_keyword_and_value() {
        let d = std::env::temp_dir().join(format!("xdpvs-checker-bad-{}", std::process::id()));
        std::fs::write(
            &d,
            "virtual_server 198.18.0.10 80 {\n lb_kind XYZ\n lb_algo bogus\n real_server 198.19.0.11 80 {\n  weight heavy\n  HTTP_GET {\n   url {\n    status_code 99\n   }\n  }\n }\n}\nvirtual_server nonsense 1 {\n}\nvirtual_server 198.18.0.10 0 {\n}\n}\n",
        )
        .unwrap();
        let l = load(&d);
        let _ = std::fs::remove_file(&d);
        let errs: Vec<String> =
            l.errors().map(|e| e.rsplit_once(".conf").map_or(e.clone(), |x| x.1.to_string())).collect();
        let all = l.errors().collect::<Vec<_>>().join("\n");
        assert!(all.contains(":2: 'lb_kind': 'XYZ' is not NAT, DR, TUN or FNAT"), "{all}");
        assert!(all.contains(":5: 'weight': 'heavy' is not a number 0-65535"), "{all}");
        assert!(all.contains(":8: status_code '99'"), "{all}");
        assert!(all.contains(":13: virtual_server: 'nonsense' is not an IP address"), "{all}");
        assert!(all.contains(":15: virtual_server without a port must be persistent"), "{all}");
        assert!(all.contains(":17: '}' closes no block"), "{all}");
        assert!(l.warnings().any(|w| w.contains(":3: Invalid lb_algo 'bogus': ignored")));
        assert!(!errs.is_empty());
    }

    /// `text` loaded from a file of its own.
    fn load_text(tag: &str, text: &str) -> Loaded {
        let d = std::env::temp_dir().join(format!("xdpvs-checker-{tag}-{}.conf", std::process::id()));
        std::fs::write(&d, text).unwrap();
        let l = load(&d);
        let _ = std::fs::remove_file(&d);
        l
    }

    /// keepalived's preprocessing reaches the model: parameters (one of
    /// them per config id), a multi-line real server holding a multi-line
    /// check, a ~SEQ of real servers, a ~LST of virtual servers.
    #[test]
    fn a_templated_file_reads_as_its_expansion() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templated.conf");
        for (id, weight) in [("main", 3), ("backup", 1)] {
            let l = load_as(&path, id);
            assert!(l.diags.is_empty(), "{:?}", l.diags);
            let s = &l.conf.services;
            let reals = |i: usize| -> Vec<(IpAddr, u16, u32, u64)> {
                s[i].reals
                    .iter()
                    .map(|r| (r.addr, r.port, r.weight, r.checks[0].timing.connect_timeout.as_secs()))
                    .collect()
            };
            assert_eq!(s.len(), 3, "{s:?}");
            let want: Vec<_> = (11..=13).map(|n| (ip(&format!("198.19.0.{n}")), 8080, weight, 2)).collect();
            assert_eq!(reals(0), want, "config id {id}");
            for (i, port, algo) in [(1, 443, SchedKind::Sh), (2, 8443, SchedKind::Mh)] {
                assert_eq!(s[i].head, model::Head::Addr(ip("198.18.0.10"), port));
                assert_eq!(s[i].sched, algo);
                assert_eq!(reals(i), [(ip("198.19.0.21"), port, 1, 7)]);
            }
        }
    }

    /// keepalived 2.2.7 makes a virtual server of addresses without a
    /// `protocol` line UDP, and says so; a fwmark service is the mark's.
    #[test]
    fn no_protocol_line_is_udp_as_in_keepalived() {
        let l = load_text("proto", "virtual_server 198.18.0.10 53 {\n}\nvirtual_server fwmark 7 {\n}\n");
        assert!(l.ok(), "{:?}", l.diags);
        assert_eq!(l.conf.services[0].proto, Proto::Udp);
        let w: Vec<String> = l.warnings().collect();
        assert!(
            w.len() == 1
                && w[0].contains(":1: Virtual server [198.18.0.10]:none:53: no protocol set - defaulting to UDP"),
            "{w:?}"
        );
    }

    /// `global_defs`' alert settings, and keepalived's chain for each
    /// server's `smtp_alert`: its own, else `smtp_alert_checker`, else
    /// `smtp_alert`, else on for a real server and off for a virtual one.
    #[test]
    fn alerts_read_from_global_defs() {
        let l = load_text(
            "alerts",
            "global_defs {\n notification_email {\n  ops@example.com\n  noc@example.com\n }\n\
             notification_email_from lvs@example.com\n smtp_server 198.19.0.11 2525\n smtp_connect_timeout 5\n\
             smtp_helo_name lvs1.example.com\n router_id LVS_1\n no_checker_emails\n}\n\
             virtual_server 198.18.0.10 80 {\n protocol TCP\n smtp_alert\n real_server 198.19.0.12 80 {\n  smtp_alert off\n }\n\
             real_server 198.19.0.13 80 {\n }\n}\n",
        );
        assert!(l.ok(), "{:?}", l.diags);
        let a = &l.conf.alerts;
        assert!(a.on());
        assert_eq!(a.to, ["ops@example.com", "noc@example.com"]);
        assert_eq!(
            (a.from.as_str(), a.helo.as_str(), a.router_id.as_str()),
            ("lvs@example.com", "lvs1.example.com", "LVS_1")
        );
        assert_eq!(
            (a.server.clone(), a.timeout.as_secs(), a.no_checker_emails),
            (Some(("198.19.0.11".into(), 2525)), 5, true)
        );
        let vs = &l.conf.services[0];
        assert!(a.virtual_server(vs.smtp_alert));
        assert!(!a.real_server(vs.reals[0].smtp_alert) && a.real_server(vs.reals[1].smtp_alert));
        let quiet = model::Conf::default().alerts;
        assert!(!quiet.on(), "no server, no mail");
        assert!(!quiet.virtual_server(None) && quiet.real_server(None));
        let off = alerts::Alerts { smtp_alert: Some(false), ..quiet.clone() };
        assert!(!off.real_server(None) && off.real_server(Some(true)));
        let bad = load_text("alerts-bad", "global_defs {\n smtp_alert maybe\n smtp_server\n}\n");
        let e: Vec<String> = bad.errors().collect();
        assert!(e.iter().any(|e| e.ends_with(":2: 'smtp_alert': 'maybe' is not true or false")), "{e:?}");
        assert!(e.iter().any(|e| e.contains(":3: Invalid smtp server")), "{e:?}");
    }

    /// `lvs_timeouts`, read as keepalived reads it: each of tcp, tcpfin and
    /// udp optional; a bad one warned about and ignored.
    #[test]
    fn lvs_timeouts_as_keepalived_reads_them() {
        let l = load_text("lvst", "global_defs {\n lvs_timeouts tcp 7200 udp 60\n}\n");
        assert!(l.diags.is_empty(), "{:?}", l.diags);
        assert_eq!(l.conf.lvs_timeouts, Some([7200, 0, 60]));
        let l = load_text("lvst-bad", "global_defs {\n lvs_timeouts tcp x bogus tcpfin 30 udp\n}\n");
        assert!(l.ok());
        let w: Vec<String> = l.warnings().collect();
        assert!(w.iter().any(|w| w.ends_with(":2: Invalid lvs_timeout tcp (x) - ignoring")), "{w:?}");
        assert!(w.iter().any(|w| w.ends_with(":2: Unknown option bogus specified for lvs_timeouts")), "{w:?}");
        assert!(w.iter().any(|w| w.ends_with(":2: No value specified for lvs_timeout udp - ignoring")), "{w:?}");
        assert_eq!(l.conf.lvs_timeouts, Some([0, 30, 0]));
        assert_eq!(model::Conf::default().lvs_timeouts, None);
    }

    /// The `SSL` block's files are read with the configuration: what is
    /// missing or unusable is an error naming it.
    #[test]
    fn the_ssl_block_names_what_it_cannot_use() {
        let l = load_text("ssl-none", "SSL {\n certificate /nonexistent/c.pem\n key /nonexistent/k.pem\n}\n");
        let e: Vec<String> = l.errors().collect();
        assert!(e.len() == 1 && e[0].contains(":1: SSL: cannot read /nonexistent/c.pem"), "{e:?}");
        let l = load_text("ssl-half", "SSL {\n certificate /etc/hostname\n}\n");
        assert!(l.errors().any(|e| e.ends_with("needs both certificate FILE and key FILE")));
        let l = load_text("ssl-junk", "SSL {\n certificate /etc/hostname\n key /etc/hostname\n bogus x\n}\n");
        let e: Vec<String> = l.errors().collect();
        assert!(e.iter().any(|e| e.contains("'bogus' is not certificate, key, password or ca FILE")), "{e:?}");
        assert!(e.iter().any(|e| e.contains("SSL: certificate: no CERTIFICATE in the file")), "{e:?}");
        assert_eq!(l.conf.ssl, None);
    }

    #[test]
    fn unsupported_checkers_are_refused_by_name() {
        let l = load_text(
            "bfd",
            "virtual_server 198.18.0.10 25 {\n real_server 198.19.0.11 25 {\n  BFD_CHECK {\n   name x\n  }\n }\n}\n",
        );
        let e: Vec<String> = l.errors().collect();
        assert!(e.len() == 1 && e[0].ends_with(":3: BFD_CHECK is not supported by xdpvs-checker: check the port with TCP_CHECK (connect_port), or run a script with MISC_CHECK"), "{e:?}");
    }

    /// keepalived's reading of `SMTP_CHECK`: `helo_name` (default its own
    /// name); each `host` block a checker of its own, with the real
    /// server's connection unless it says otherwise and the real server's
    /// timeout; the check's own connection too when it sets one.
    #[test]
    fn smtp_check_reads_helo_name_and_one_checker_per_host() {
        let l = load_text(
            "smtp",
            "virtual_server 198.18.0.10 25 {\n connect_timeout 7\n\
             real_server 198.19.0.11 25 {\n  SMTP_CHECK {\n   helo_name \"foo.bar.com\"\n  }\n }\n\
             real_server 198.19.0.12 25 {\n  SMTP_CHECK {\n   retry 2\n   host {\n    connect_ip 198.19.0.12\n   }\n\
               host {\n    connect_ip 198.19.0.99\n    connect_port 2525\n    bindto 198.19.0.250\n    connect_timeout 2\n   }\n  }\n }\n\
             real_server 198.19.0.13 25 {\n  SMTP_CHECK {\n   connect_timeout 3\n   host {\n    connect_ip 198.19.0.98\n   }\n  }\n }\n\
             real_server 198.19.0.14 25 {\n  SMTP_CHECK {\n  }\n }\n}\n",
        );
        assert!(l.ok(), "{:?}", l.diags);
        let reals = &l.conf.services[0].reals;
        let helo = |c: &model::Check| match &c.kind {
            model::CheckKind::Smtp { helo } => helo.clone(),
            k => panic!("{k:?}"),
        };
        let secs = |c: &model::Check| c.timing.connect_timeout.as_secs();
        let (one, hosts, both, plain) = (&reals[0].checks, &reals[1].checks, &reals[2].checks, &reals[3].checks);
        assert_eq!((one.len(), helo(&one[0]).as_str(), one[0].connect_ip), (1, "foo.bar.com", None));
        assert_eq!(hosts.len(), 2, "two hosts, no connection of the check's own");
        assert_eq!((hosts[0].connect_ip, hosts[0].connect_port, secs(&hosts[0])), (Some(ip("198.19.0.12")), None, 7));
        assert_eq!(
            (hosts[1].connect_ip, hosts[1].connect_port, hosts[1].bindto, secs(&hosts[1])),
            (Some(ip("198.19.0.99")), Some(2525), Some(ip("198.19.0.250")), 2)
        );
        assert!(hosts.iter().all(|c| c.retry() == 2 && helo(c) == model::SMTP_DEFAULT_HELO), "{hosts:?}");
        assert_eq!(both.len(), 2, "the check's own connection (it sets connect_timeout), then the host");
        assert_eq!((both[0].connect_ip, secs(&both[0])), (None, 3));
        assert_eq!((both[1].connect_ip, secs(&both[1])), (Some(ip("198.19.0.98")), 7));
        assert_eq!((plain.len(), secs(&plain[0])), (1, 7));
        let bad = load_text("smtp-bad", "virtual_server 198.18.0.10 25 {\n real_server 198.19.0.11 25 {\n  SMTP_CHECK {\n   helo_name\n   host {\n    helo_name x\n   }\n  }\n }\n}\n");
        let e: Vec<String> = bad.errors().collect();
        assert!(e.iter().any(|e| e.ends_with(":4: helo_name: one word, the name SMTP_CHECK says HELO with")), "{e:?}");
        assert!(bad.warnings().any(|w| w.ends_with(":6: Unknown keyword 'helo_name'")), "{:?}", bad.diags);
    }

    #[test]
    fn every_keyword_is_known() {
        let l = fixture("every-keyword.conf");
        assert!(l.ok(), "{:?}", l.diags);
        let w: Vec<String> = l.warnings().collect();
        assert!(w.is_empty(), "{w:?}");
        let vs = &l.conf.services[0];
        assert_eq!((vs.sched, vs.fwd, vs.reals[0].checks.len()), (SchedKind::Wrr, Fwd::Dr, 8));
        let n = vs.reals[0].notify_up.as_ref().unwrap();
        assert_eq!((n.user.as_deref(), n.group.as_deref()), (Some("nobody"), Some("nogroup")));
        let CheckKind::File { weight, dynamic: true, ref file, .. } = vs.reals[0].checks[7].kind else { panic!() };
        assert_eq!((weight, file.weight, file.init), (-3, -2, Some((0, true))));
        let CheckKind::Udp { ref payload, ref require_reply, min_reply, max_reply } = vs.reals[0].checks[4].kind else {
            panic!()
        };
        assert_eq!(
            (payload.as_slice(), require_reply.as_deref(), min_reply, max_reply),
            (&[0, 255][..], Some(&[0u8][..]), 1, 100)
        );
    }

    #[test]
    fn a_missing_file_is_one_error() {
        let l = load(Path::new("/nonexistent/keepalived.conf"));
        let e: Vec<String> = l.errors().collect();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("cannot read /nonexistent/keepalived.conf"), "{e:?}");
    }
}
