//! Administrative commands: what a client asks and the daemon applies to
//! its [`Config`], the `-S` (save) text that `-R` reads back, and the one
//! way `-R` text is applied ([`apply_rules`]).
//!
//! The grammar (`grammar`) turns a command line into a [`Command`]; the
//! client sends it typed, the daemon applies it with [`apply`], so both ends
//! share one meaning.

use crate::config::{Config, ConfigError, DestSpec, Service, ServiceKey, ServiceSpec};
use crate::grammar::{parse_rules, ParseError};
use crate::state::{TcpState, Timeouts};
use crate::sync::{DaemonSpec, Role};
use crate::text::{addr_port, matches_text, netmask_text, sched_flags_text, service_arg};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::IpAddr;

/// One configuration change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    AddService(ServiceSpec),
    EditService(ServiceSpec),
    DelService(ServiceKey),
    Clear,
    AddDest(ServiceKey, DestSpec),
    EditDest(ServiceKey, DestSpec),
    DelDest(ServiceKey, IpAddr, u16),
    /// `--set tcp tcpfin udp` (0 keeps a value).
    SetTimeouts(u32, u32, u32),
    AddLaddr(ServiceKey, IpAddr, Option<String>),
    DelLaddr(ServiceKey, IpAddr),
    /// `--start-daemon master|backup …`.
    StartDaemon(Role, DaemonSpec),
    /// `--stop-daemon master|backup`.
    StopDaemon(Role),
    /// `--drain` (true) / `--undrain` (false): the VIPs' BGP announcements.
    Drain(bool),
}

/// What applying `-R` text did: every line that applied, every line that
/// did not (by line number, in order).
#[derive(Debug, Default)]
pub struct Applied {
    pub commands: Vec<(usize, Command)>,
    pub errors: Vec<(usize, String)>,
}

impl Applied {
    /// What the operator should know about the end state, once per service,
    /// with the line of the last command that named it.
    pub fn notes(&self, cfg: &Config) -> Vec<(usize, String)> {
        let mut notes: Vec<(usize, String)> = Vec::new();
        for (line, c) in self.commands.iter().rev() {
            if let Some(n) = note(cfg, c) {
                if !notes.iter().any(|(_, m)| *m == n) {
                    notes.push((*line, n));
                }
            }
        }
        notes.reverse();
        notes
    }
}

/// Applies `-R` text (as `-S` writes it) to `cfg` line by line; a line that
/// does not parse or apply is recorded and skipped. Callers that need all or
/// nothing apply to a copy and keep it only when `errors` is empty.
pub fn apply_rules(cfg: &mut Config, text: &str) -> Applied {
    let mut out = Applied::default();
    for (line, parsed) in parse_rules(text) {
        match apply_parsed(cfg, parsed) {
            Ok(c) => out.commands.push((line, c)),
            Err(e) => out.errors.push((line, e)),
        }
    }
    out
}

fn apply_parsed(cfg: &mut Config, parsed: Result<Command, ParseError>) -> Result<Command, String> {
    let cmd = parsed.map_err(|e| e.to_string())?;
    apply(cfg, &cmd).map_err(|e| e.to_string())?;
    Ok(cmd)
}

/// Applies one command (validated: nothing changes on error).
pub fn apply(cfg: &mut Config, cmd: &Command) -> Result<(), ConfigError> {
    match cmd {
        Command::AddService(s) => cfg.add_service(s.clone()).map(drop),
        Command::EditService(s) => {
            // ipvsadm's `-E -f MARK …` knows nothing of --match: an edit that
            // names no ports keeps the ones the mark covers, and where they
            // come from (netfilter's rules, or --match).
            let mut s = s.clone();
            if s.matches.is_empty() {
                if let Some(old) = cfg.find_service(&s.key).and_then(|slot| cfg.service(slot)) {
                    s.matches.clone_from(&old.spec.matches);
                    s.netfilter = old.spec.netfilter;
                }
            }
            cfg.edit_service(s)
        }
        Command::DelService(k) => cfg.del_service(k),
        Command::Clear => {
            cfg.clear();
            Ok(())
        }
        Command::AddDest(k, d) => cfg.add_dest(k, *d).map(drop),
        Command::EditDest(k, d) => cfg.edit_dest(k, *d),
        Command::DelDest(k, a, p) => cfg.del_dest(k, *a, *p),
        Command::SetTimeouts(t, f, u) => cfg.set_timeouts(*t, *f, *u),
        Command::AddLaddr(k, a, i) => cfg.add_laddr(k, *a, i.clone()).map(drop),
        Command::DelLaddr(k, a) => cfg.del_laddr(k, *a),
        Command::StartDaemon(r, d) => cfg.start_daemon(*r, d.clone()),
        Command::StopDaemon(r) => cfg.stop_daemon(*r),
        Command::Drain(d) => cfg.set_drained(*d),
    }
}

/// What an operator should know about a command that succeeded: a fwmark
/// service whose ports are not named yet covers no traffic (xdpvs sees
/// packets before netfilter marks them).
pub fn note(cfg: &Config, cmd: &Command) -> Option<String> {
    let (Command::AddService(s) | Command::EditService(s)) = cmd else { return None };
    let ServiceKey::Fwmark { mark, .. } = s.key else { return None };
    let svc = cfg.find_service(&s.key).and_then(|slot| cfg.service(slot))?;
    if !svc.spec.matches.is_empty() {
        return None;
    }
    Some(if svc.spec.netfilter {
        format!(
            "fwmark service {mark} follows netfilter's MARK rules, and none sets mark {mark} yet \
             (e.g. iptables -t mangle -A PREROUTING -d VIP -p tcp --dport 80 -j MARK --set-mark {mark})"
        )
    } else {
        format!(
            "fwmark service {mark} covers no traffic yet: xdpvs sees packets before netfilter marks them; \
             name its ports with -E -f {mark} --match tcp:VIP:PORT[,PORT]"
        )
    })
}

/// Edits `cur` into `want` with the ordinary operations, so that services,
/// real servers and local addresses present in both keep their identity
/// (and their established flows, counters and scheduler state); what is new
/// is added, what is gone is removed, what changed is edited.
pub fn reconcile(cur: &mut Config, want: &Config) -> Result<(), ConfigError> {
    let want_keys: std::collections::HashSet<ServiceKey> = want.services().map(|(_, s)| s.spec.key).collect();
    let gone: Vec<ServiceKey> = cur.services().map(|(_, s)| s.spec.key).filter(|k| !want_keys.contains(k)).collect();
    for k in &gone {
        cur.del_service(k)?;
    }
    for (_, ws) in want.services() {
        let key = ws.spec.key;
        match cur.find_service(&key) {
            None => {
                cur.add_service(ws.spec.clone())?;
            }
            Some(slot) => {
                let have = cur.service(slot).map(|s| s.spec.clone());
                let mut spec = ws.spec.clone();
                // Matches that follow netfilter stay as the daemon read them.
                if let Some(h) = have.as_ref().filter(|h| h.netfilter && spec.netfilter) {
                    spec.matches.clone_from(&h.matches);
                }
                if have.as_ref() != Some(&spec) {
                    cur.edit_service(spec)?;
                }
            }
        }
        let slot = cur.find_service(&key).expect("added or kept above");
        let wanted: Vec<DestSpec> = ws.dests.iter().filter_map(|&d| want.dest(d)).map(|d| d.spec).collect();
        let have: Vec<DestSpec> = cur
            .service(slot)
            .map(|s| s.dests.iter().filter_map(|&d| cur.dest(d)).map(|d| d.spec).collect())
            .unwrap_or_default();
        for h in &have {
            if !wanted.iter().any(|w| w.addr == h.addr && w.port == h.port) {
                cur.del_dest(&key, h.addr, h.port)?;
            }
        }
        // Oldest first, so new servers take IPVS's newest-first places.
        for w in wanted.iter().rev() {
            match have.iter().find(|h| h.addr == w.addr && h.port == w.port) {
                None => {
                    cur.add_dest(&key, *w)?;
                }
                Some(h) if h != w => cur.edit_dest(&key, *w)?,
                Some(_) => {}
            }
        }
        let laddrs = |c: &Config, s: &Service| -> Vec<(IpAddr, Option<String>)> {
            s.laddrs.iter().filter_map(|&l| c.laddr(l)).map(|l| (l.addr, l.iface.clone())).collect()
        };
        let want_l = laddrs(want, ws);
        let have_l = cur.service(slot).map(|s| laddrs(cur, s)).unwrap_or_default();
        for (a, _) in have_l.iter().filter(|(a, _)| !want_l.iter().any(|(w, _)| w == a)) {
            cur.del_laddr(&key, *a)?;
        }
        for (a, i) in want_l.iter().filter(|(a, _)| !have_l.iter().any(|(h, _)| h == a)) {
            cur.add_laddr(&key, *a, i.clone())?;
        }
    }
    if cur.timeouts != want.timeouts {
        cur.timeouts = want.timeouts;
        cur.set_timeouts(0, 0, 0)?;
    }
    Ok(())
}

/// `cur` with the services of `rules` made exactly what `rules` says, those
/// of `owned` that `rules` lacks removed, and the rest untouched (see
/// `Request::Converge`). Errors name the rule's line.
pub fn converge(cur: &Config, owned: &[ServiceKey], rules: &str) -> Result<Config, String> {
    let mut part = Config::default();
    let applied = apply_rules(&mut part, rules);
    if let Some((line, e)) = applied.errors.first() {
        return Err(format!("line {line}: {e}"));
    }
    let mut want = cur.clone();
    let theirs: Vec<ServiceKey> = part.services().map(|(_, s)| s.spec.key).chain(owned.iter().copied()).collect();
    for k in &theirs {
        if want.find_service(k).is_some() {
            want.del_service(k).map_err(|e| e.to_string())?;
        }
    }
    let applied = apply_rules(&mut want, rules);
    if let Some((line, e)) = applied.errors.first() {
        return Err(format!("line {line}: {e}"));
    }
    want.timeouts = cur.timeouts;
    let mut next = cur.clone();
    reconcile(&mut next, &want).map_err(|e| e.to_string())?;
    Ok(next)
}

/// ipvsadm's `-S` (with `-n`): every service, its real servers and (our
/// additions, so that `-R` restores everything) its local addresses and
/// non-default timeouts. Services in slot order; real servers oldest first,
/// so that `-R` (each add going to the head of the list, as in IPVS)
/// rebuilds the same list order and save → restore round-trips exactly.
pub fn save(cfg: &Config) -> String {
    let mut out = String::new();
    let def = Timeouts::default();
    let t = cfg.timeouts;
    if t != def {
        let tcp = t.tcp(TcpState::Established);
        let fin = t.tcp(TcpState::FinWait);
        let _ = writeln!(out, "--set {tcp} {fin} {}", t.udp);
    }
    for (_, s) in cfg.services() {
        let spec = &s.spec;
        let _ = write!(out, "-A {} -s {}", service_arg(&spec.key), spec.sched.name());
        if spec.flags != 0 {
            let _ = write!(out, " -b {}", sched_flags_text(spec.flags, spec.sched.name()));
        }
        if let Some(p) = spec.persistent {
            let _ = write!(out, " -p {p}");
            let full = if spec.key.is_v6() { 128 } else { 32 };
            if spec.netmask != full {
                let _ = write!(out, " -M {}", netmask_text(spec.netmask, spec.key.is_v6()));
            }
        }
        if spec.ops {
            out.push_str(" -o");
        }
        if let Some(v) = spec.proxy_protocol {
            let _ = write!(out, " --proxy-protocol {}", v.name());
        }
        if spec.toa {
            out.push_str(" --toa");
        }
        if spec.synproxy {
            out.push_str(" -j enable");
        }
        if let ServiceKey::Fwmark { v6, .. } = spec.key {
            if v6 {
                out.push_str(" -6");
            }
            // Matches that follow netfilter are netfilter's to say.
            for m in matches_text(&spec.matches).into_iter().filter(|_| !spec.netfilter) {
                let _ = write!(out, " --match {m}");
            }
        }
        out.push('\n');
        for &d in s.dests.iter().rev() {
            let Some(d) = cfg.dest(d) else { continue };
            let d = d.spec;
            let _ = write!(
                out,
                "-a {} -r {} {} -w {}",
                service_arg(&spec.key),
                addr_port(d.addr, d.port),
                d.fwd.flag(),
                d.weight
            );
            if d.u_threshold != 0 {
                let _ = write!(out, " -x {}", d.u_threshold);
            }
            if d.l_threshold != 0 {
                let _ = write!(out, " -y {}", d.l_threshold);
            }
            out.push('\n');
        }
        for &l in &s.laddrs {
            let Some(l) = cfg.laddr(l) else { continue };
            let _ = write!(out, "-P {} -z {}", service_arg(&spec.key), l.addr);
            if let Some(i) = &l.iface {
                let _ = write!(out, " -F {i}");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{sched_flags, Fwd, Match, Proto, SchedKind};

    #[test]
    fn save_lists_services_servers_and_local_addresses() {
        let mut c = Config::default();
        let vip: IpAddr = "198.18.0.10".parse().unwrap();
        let k = ServiceKey::Addr(Match { proto: Proto::Tcp, addr: vip, port: 80 });
        let mut spec = ServiceSpec::new(k, SchedKind::Sh);
        spec.flags = sched_flags::FALLBACK | sched_flags::PORT;
        spec.persistent = Some(300);
        spec.netmask = 24;
        apply(&mut c, &Command::AddService(spec)).unwrap();
        let d = |a: &str, fwd, w| DestSpec {
            addr: a.parse().unwrap(),
            port: 8080,
            weight: w,
            fwd,
            u_threshold: 0,
            l_threshold: 0,
        };
        apply(&mut c, &Command::AddDest(k, d("198.19.0.11", Fwd::Nat, 1))).unwrap();
        let mut x = d("198.19.0.12", Fwd::FullNat, 3);
        x.u_threshold = 100;
        x.l_threshold = 50;
        apply(&mut c, &Command::AddDest(k, x)).unwrap();
        apply(&mut c, &Command::AddLaddr(k, "198.19.0.250".parse().unwrap(), Some("rs0".into()))).unwrap();
        apply(&mut c, &Command::SetTimeouts(1000, 0, 0)).unwrap();
        assert_eq!(
            save(&c),
            "--set 1000 120 300\n\
             -A -t 198.18.0.10:80 -s sh -b sh-fallback,sh-port -p 300 -M 255.255.255.0\n\
             -a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 1\n\
             -a -t 198.18.0.10:80 -r 198.19.0.12:8080 -b -w 3 -x 100 -y 50\n\
             -P -t 198.18.0.10:80 -z 198.19.0.250 -F rs0\n"
        );
    }

    #[test]
    fn reconcile_keeps_identities_and_reaches_the_target() {
        let rules = |t: &str| {
            let mut c = Config::default();
            for (_, cmd) in crate::grammar::parse_rules(t) {
                apply(&mut c, &cmd.unwrap()).unwrap();
            }
            c
        };
        let mut cur = rules("-A -t 198.18.0.10:80 -s rr\n-a -t 198.18.0.10:80 -r 198.19.0.11:80 -m\n-a -t 198.18.0.10:80 -r 198.19.0.12:80 -m\n-A -t 198.18.0.10:81 -s rr\n");
        let svc = cur.find_service(&cur.services().next().unwrap().1.spec.key).unwrap();
        let kept = cur.find_dest(svc, "198.19.0.11".parse().unwrap(), 80).unwrap();
        let serial = cur.dest(kept).unwrap().serial;
        let want = rules("--set 1000 0 0\n-A -t 198.18.0.10:80 -s wrr\n-a -t 198.18.0.10:80 -r 198.19.0.11:80 -m -w 5\n-a -t 198.18.0.10:80 -r 198.19.0.13:80 -m\n-P -t 198.18.0.10:80 -z 198.19.0.250\n");
        reconcile(&mut cur, &want).unwrap();
        assert_eq!(save(&cur), save(&want));
        assert_eq!(cur.dest(kept).map(|d| d.serial), Some(serial), "a server in both keeps its identity");
    }

    #[test]
    fn fwmark_matches_group_ports() {
        let vip: IpAddr = "2001:db8::10".parse().unwrap();
        let ms = [
            Match { proto: Proto::Tcp, addr: vip, port: 80 },
            Match { proto: Proto::Tcp, addr: vip, port: 443 },
            Match { proto: Proto::Udp, addr: vip, port: 443 },
        ];
        assert_eq!(matches_text(&ms), vec!["tcp:[2001:db8::10]:80,443", "udp:[2001:db8::10]:443"]);
        assert_eq!(netmask_text(24, false), "255.255.255.0");
        assert_eq!(netmask_text(64, true), "64");
    }

    #[test]
    fn one_packet_scheduling_round_trips_through_save() {
        let mut cfg = Config::default();
        for (_, c) in crate::grammar::parse_rules("-A -u 198.18.0.10:53 -s rr -o\n-A -u 198.18.0.10:54 -s rr\n") {
            apply(&mut cfg, &c.unwrap()).unwrap();
        }
        let saved = save(&cfg);
        assert_eq!(saved, "-A -u 198.18.0.10:53 -s rr -o\n-A -u 198.18.0.10:54 -s rr\n");
        let mut again = Config::default();
        for (_, c) in crate::grammar::parse_rules(&saved) {
            apply(&mut again, &c.unwrap()).unwrap();
        }
        assert_eq!(save(&again), saved);
    }

    #[test]
    fn converge_touches_only_the_controller_s_services() {
        let mut cur = Config::default();
        let base = "-A -t 198.18.0.10:80 -s rr\n-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 1\n\
                    -a -t 198.18.0.10:80 -r 198.19.0.12:8080 -m -w 1\n-A -t 198.18.0.10:81 -s rr\n\
                    -A -t 198.18.0.10:99 -s wlc\n";
        assert!(apply_rules(&mut cur, base).errors.is_empty());
        let keep = cur.find_dest(cur.find_service(&key(80)).unwrap(), "198.19.0.11".parse().unwrap(), 8080).unwrap();
        // The controller owns :80 and :81; it drops .12 from :80 and :81 itself.
        let rules = "-A -t 198.18.0.10:80 -s rr\n-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 1\n";
        let next = converge(&cur, &[key(80), key(81)], rules).unwrap();
        assert_eq!(
            save(&next),
            "-A -t 198.18.0.10:80 -s rr\n-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 1\n-A -t 198.18.0.10:99 -s wlc\n"
        );
        let slot = next.find_dest(next.find_service(&key(80)).unwrap(), "198.19.0.11".parse().unwrap(), 8080).unwrap();
        assert_eq!(
            next.dest(slot).unwrap().serial,
            cur.dest(keep).unwrap().serial,
            "the server that stays is the same object"
        );
        assert!(converge(&cur, &[], "-A -t 198.18.0.10:80 -s nosuch\n").unwrap_err().starts_with("line 1:"));
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr(crate::config::Match { proto: Proto::Tcp, addr: "198.18.0.10".parse().unwrap(), port })
    }

    #[test]
    fn client_address_options_round_trip_through_save() {
        let rules = "-A -t 198.18.0.10:80 -s rr --proxy-protocol v2\n-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -b -w 1\n\
                     -A -t [2001:db8::10]:80 -s wrr --proxy-protocol v1 --toa\n-A -u 198.18.0.10:53 -s rr --proxy-protocol v2\n";
        let mut cfg = Config::default();
        for (_, c) in crate::grammar::parse_rules(rules) {
            apply(&mut cfg, &c.unwrap()).unwrap();
        }
        assert_eq!(save(&cfg), rules.replace("                     ", ""));
        // A service that hands out the client's address takes FULLNAT servers only.
        let bad = crate::grammar::parse_rules("-a -t 198.18.0.10:80 -r 198.19.0.12:8080 -g\n");
        let e = apply(&mut cfg, &bad[0].1.clone().unwrap()).unwrap_err();
        assert!(e.to_string().contains("198.19.0.12:8080 is Route (-g)"), "{e}");
        let v1_udp = crate::grammar::parse_rules("-E -u 198.18.0.10:53 -s rr --proxy-protocol v1\n");
        assert!(apply(&mut cfg, &v1_udp[0].1.clone().unwrap()).is_err());
    }

    #[test]
    fn fwmark_edit_without_match_keeps_ports_and_notes_an_empty_mark() {
        let mut cfg = Config::default();
        let cmd = |l: &str| match crate::grammar::parse(&l.split(' ').map(String::from).collect::<Vec<_>>()) {
            Ok(crate::grammar::Invocation { action: crate::grammar::Action::Admin(c), .. }) => c,
            other => panic!("{l}: {other:?}"),
        };
        let add = cmd("-A -f 1 -s rr -p 600");
        apply(&mut cfg, &add).unwrap();
        assert!(note(&cfg, &add).unwrap().contains("follows netfilter's MARK rules"), "{:?}", note(&cfg, &add));
        let ports = cmd("-E -f 1 -s rr -p 600 --match tcp:198.18.0.10:80,443");
        apply(&mut cfg, &ports).unwrap();
        assert_eq!(note(&cfg, &ports), None);
        let edit = cmd("-E -f 1 -s wlc -p 300");
        apply(&mut cfg, &edit).unwrap();
        assert_eq!(
            cfg.lookup(Proto::Tcp, "198.18.0.10".parse().unwrap(), 443),
            cfg.find_service(&ServiceKey::Fwmark { mark: 1, v6: false })
        );
        assert!(save(&cfg).contains("-A -f 1 -s wlc -p 300 --match tcp:198.18.0.10:80,443"), "{}", save(&cfg));
    }

    #[test]
    fn ten_thousand_services_save_and_restore() {
        let mut text = String::new();
        for i in 0..10_000u32 {
            let vip = format!("198.18.{}.{}", i / 250, 1 + i % 250);
            text +=
                &format!("-A -t {vip}:80 -s wrr\n-a -t {vip}:80 -r 198.19.{}.{}:8080 -m -w 1\n", i % 200, 1 + i % 250);
        }
        let t0 = std::time::Instant::now();
        let mut cfg = Config::default();
        let applied = apply_rules(&mut cfg, &text);
        let took = t0.elapsed();
        assert!(applied.errors.is_empty(), "{:?}", &applied.errors[..1]);
        assert_eq!(cfg.services().count(), 10_000);
        let saved = save(&cfg);
        let mut again = Config::default();
        assert!(apply_rules(&mut again, &saved).errors.is_empty());
        assert_eq!(save(&again), saved);
        eprintln!("10000 services applied in {took:?}");
    }
}
