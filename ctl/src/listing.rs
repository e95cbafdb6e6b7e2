//! Listings in ipvsadm 1.31's layout (`-L` with `--stats`, `--rate`,
//! `--thresholds`, `--persistent-conn`, `-c`, `--timeout`, `--exact`,
//! `--sort`), and the same content as JSON (`--json`).
//!
//! Input: the daemon's configuration view (a blob in the region), the sums
//! of the per-core stats areas and the rate estimates. Counters are shown
//! minus the `-Z` zero point the view carries.

use hashbrown::HashMap;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::IpAddr;
use xdpvs_api::config::ServiceKey;
use xdpvs_api::counters::{Counter, DropReason, Stats};
use xdpvs_api::grammar::ListOpts;
use xdpvs_api::msg::{Conn, DestView, LaddrView, Rates, Totals, View};
use xdpvs_api::text::{addr_port, netmask_text, sched_flags_text};

/// One real server as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestRow {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: &'static str,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub active: u32,
    pub inactive: u32,
    pub persist: u32,
    pub stats: Stats,
    pub rate: Stats,
}

/// One service as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcRow {
    pub slot: u32,
    pub key: ServiceKey,
    pub scheduler: &'static str,
    pub flags: String,
    pub persistent: Option<u32>,
    pub netmask: Option<String>,
    /// `-o`: one-packet scheduling.
    pub ops: bool,
    /// `--proxy-protocol`: "v1" / "v2".
    pub proxy_protocol: Option<&'static str>,
    /// `--toa`.
    pub toa: bool,
    /// `-j enable`.
    pub synproxy: bool,
    pub stats: Stats,
    pub rate: Stats,
    pub dests: Vec<DestRow>,
    pub laddrs: Vec<LaddrView>,
}

impl SvcRow {
    /// "TCP", "UDP" or "FWM".
    pub fn protocol(&self) -> &'static str {
        match self.key {
            ServiceKey::Addr(m) => m.proto.name(),
            ServiceKey::Fwmark { .. } => "FWM",
        }
    }

    pub fn addr(&self) -> Option<(IpAddr, u16)> {
        match self.key {
            ServiceKey::Addr(m) => Some((m.addr, m.port)),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    pub fn fwmark(&self) -> Option<u32> {
        match self.key {
            ServiceKey::Fwmark { mark, .. } => Some(mark),
            ServiceKey::Addr(_) => None,
        }
    }

    /// ipvsadm's service name: `TCP  addr:port`, `FWM  mark [IPv6]`.
    pub fn name(&self) -> String {
        match self.key {
            ServiceKey::Fwmark { mark, v6 } => format!("FWM  {mark}{}", if v6 { " IPv6" } else { "" }),
            ServiceKey::Addr(m) => {
                let mut n = format!("{}  {}", m.proto.name(), addr_port(m.addr, m.port));
                if !self.key.is_v6() {
                    n.truncate(33);
                }
                n
            }
        }
    }

    /// Sort key of ipvsadm's comparator: fwmark, protocol, address, port.
    fn order(&self) -> (Option<u32>, &'static str, Option<(IpAddr, u16)>) {
        (self.fwmark(), self.protocol(), self.addr())
    }
}

/// The rows of a listing: the view's services with every core's counters
/// (minus the `-Z` zero point) and the rate estimates.
pub fn rows(view: &View, totals: &Totals, rates: &Rates) -> Vec<SvcRow> {
    let (svc_rates, dest_rates) = (Rates::index(&rates.services), Rates::index(&rates.dests));
    view.services
        .iter()
        .map(|s| {
            let spec = &s.spec;
            let full = if spec.key.is_v6() { 128 } else { 32 };
            let stats = totals.services.get(&(s.slot, s.serial)).copied().unwrap_or_default();
            SvcRow {
                slot: s.slot,
                key: spec.key,
                scheduler: spec.sched.name(),
                flags: sched_flags_text(spec.flags, spec.sched.name()),
                persistent: spec.persistent,
                netmask: (spec.persistent.is_some() && spec.netmask != full)
                    .then(|| netmask_text(spec.netmask, spec.key.is_v6())),
                ops: spec.ops,
                proxy_protocol: spec.proxy_protocol.map(|v| v.name()),
                toa: spec.toa,
                synproxy: spec.synproxy,
                stats: stats.minus(&s.baseline),
                rate: svc_rates.get(&(s.slot, s.serial)).copied().unwrap_or_default(),
                dests: s.dests.iter().map(|d| dest_row(d, totals, &dest_rates)).collect(),
                laddrs: s.laddrs.clone(),
            }
        })
        .collect()
}

fn dest_row(d: &DestView, totals: &Totals, rates: &HashMap<(u32, u32), Stats>) -> DestRow {
    let t = totals.dests.get(&(d.slot, d.serial)).copied().unwrap_or_default();
    DestRow {
        addr: d.spec.addr,
        port: d.spec.port,
        forward: d.spec.fwd.name(),
        weight: d.spec.weight,
        u_threshold: d.spec.u_threshold,
        l_threshold: d.spec.l_threshold,
        active: t.active,
        inactive: t.inactive,
        persist: t.persist,
        stats: t.stats.minus(&d.baseline),
        rate: rates.get(&(d.slot, d.serial)).copied().unwrap_or_default(),
    }
}

/// `--sort`: services by fwmark, protocol, address, port; real servers by
/// address, port (as ipvsadm's comparators).
pub fn sort(rows: &mut [SvcRow]) {
    rows.sort_by(|a, b| a.order().cmp(&b.order()));
    for r in rows.iter_mut() {
        r.dests.sort_by_key(|d| (d.addr, d.port));
    }
}

/// ipvsadm's `print_largenum`: `%9llu` below 100 million, then thousands,
/// millions, billions, trillions with a K/M/G/T suffix; `--exact`: always
/// the number, at least 9 wide.
pub fn largenum(n: u64, exact: bool) -> String {
    match n {
        _ if exact => format!("{n:>w$}", w = (n.to_string().len() + 1).max(9)),
        _ if n < 100_000_000 => format!("{n:>9}"),
        _ if n < 1_000_000_000 => format!("{:>8}K", n / 1_000),
        _ if n < 100_000_000_000 => format!("{:>8}M", n / 1_000_000),
        _ if n < 100_000_000_000_000 => format!("{:>8}G", n / 1_000_000_000),
        _ => format!("{:>8}T", n / 1_000_000_000_000),
    }
}

fn nums(v: &Stats, exact: bool) -> String {
    v.fields().iter().map(|n| largenum(*n, exact)).collect()
}

/// Which `-L` layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Plain,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
}

impl Layout {
    fn of(o: &ListOpts) -> Layout {
        match () {
            _ if o.stats => Layout::Stats,
            _ if o.rate => Layout::Rate,
            _ if o.thresholds => Layout::Thresholds,
            _ if o.persistent_conn => Layout::PersistentConn,
            _ => Layout::Plain,
        }
    }

    /// The two title lines.
    fn titles(self) -> String {
        let title = |cols: &[&str], w: usize, right: bool| {
            let mut t = format!("{:<33}", "Prot LocalAddress:Port");
            for c in cols {
                let _ = if right { write!(t, " {c:>w$}") } else { write!(t, " {c:<w$}") };
            }
            t
        };
        let first = match self {
            Layout::Stats => title(&["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"], 8, true),
            Layout::Rate => title(&["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"], 8, true),
            Layout::Thresholds => title(&["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"], 10, false),
            Layout::PersistentConn => format!(
                "{:<33} {:<9} {:<11} {:<10} {:<10}",
                "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
            ),
            Layout::Plain => {
                return "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
                    .into()
            }
        };
        format!("{first}\n  -> RemoteAddress:Port\n")
    }

    fn service(self, s: &SvcRow, exact: bool) -> String {
        let name = s.name();
        match self {
            Layout::Stats => format!("{name:<33}{}\n", nums(&s.stats, exact)),
            Layout::Rate => format!("{name:<33}{}\n", nums(&s.rate, exact)),
            _ => {
                let mut out = format!("{name} {}", s.scheduler);
                if !s.flags.is_empty() {
                    let _ = write!(out, " ({})", s.flags);
                }
                if let Some(p) = s.persistent {
                    let _ = write!(out, " persistent {p}");
                    if let Some(m) = &s.netmask {
                        let _ = write!(out, " mask {m}");
                    }
                }
                if s.ops {
                    out.push_str(" ops");
                }
                if let Some(v) = s.proxy_protocol {
                    let _ = write!(out, " proxy-protocol {v}");
                }
                if s.toa {
                    out.push_str(" toa");
                }
                if s.synproxy {
                    out.push_str(" synproxy");
                }
                out.push('\n');
                out
            }
        }
    }

    fn dest(self, d: &DestRow, v6: bool, exact: bool) -> String {
        let mut dn = addr_port(d.addr, d.port);
        if !v6 {
            dn.truncate(28);
        }
        match self {
            Layout::Stats => format!("  -> {dn:<28}{}\n", nums(&d.stats, exact)),
            Layout::Rate => format!(
                "  -> {dn:<28} {:>8} {:>8} {:>8}{}{}\n",
                d.rate.conns,
                d.rate.inpkts,
                d.rate.outpkts,
                largenum(d.rate.inbytes, exact),
                largenum(d.rate.outbytes, exact)
            ),
            Layout::Thresholds => format!(
                "  -> {dn:<28} {:<10} {:<10} {:<10} {:<10}\n",
                d.u_threshold, d.l_threshold, d.active, d.inactive
            ),
            Layout::PersistentConn => {
                format!("  -> {dn:<28} {:<9} {:<11} {:<10} {:<10}\n", d.weight, d.persist, d.active, d.inactive)
            }
            Layout::Plain => {
                format!("  -> {dn:<28} {:<7} {:<6} {:<10} {:<10}\n", d.forward, d.weight, d.active, d.inactive)
            }
        }
    }
}

/// The `-L` text for `rows`. `header`: the version line (ipvsadm omits it
/// when one service is asked for).
pub fn render(rows: &[SvcRow], o: &ListOpts, header: bool) -> String {
    let layout = Layout::of(o);
    let mut out = String::new();
    if header {
        out.push_str("IP Virtual Server version 1.2.1 (size=4096)\n");
    }
    out.push_str(&layout.titles());
    for s in rows {
        out.push_str(&layout.service(s, o.exact));
        for d in &s.dests {
            out.push_str(&layout.dest(d, s.key.is_v6(), o.exact));
        }
    }
    out
}

/// `--timeout`.
pub fn timeouts(view: &View) -> String {
    let t = view.timeouts;
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcpfin, t.udp)
}

fn proto_name(c: &Conn) -> &'static str {
    match c.proto {
        6 => "TCP",
        17 => "UDP",
        _ => "IP",
    }
}

fn sock(a: std::net::SocketAddr) -> String {
    addr_port(a.ip(), a.port())
}

/// `-c`: ipvsadm's connection listing; FULLNAT connections add their local
/// address in a last column.
pub fn render_conns(conns: &[Conn]) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let fullnat = conns.iter().any(|c| c.local.is_some());
    if fullnat {
        let _ =
            writeln!(out, "pro expire {:<11} {:<18} {:<18} {:<18} local", "state", "source", "virtual", "destination");
    } else {
        let _ = writeln!(out, "pro expire {:<11} {:<18} {:<18} destination", "state", "source", "virtual");
    }
    for c in conns {
        let expire = format!("{:02}:{:02}", c.expires_in / 60, c.expires_in % 60);
        let (cn, vn, dn) = (sock(c.client), sock(c.virt), sock(c.dest));
        let _ = write!(out, "{:<3} {expire:<6} {:<11} {cn:<18} {vn:<18} ", proto_name(c), c.state.name());
        let _ = if fullnat {
            writeln!(out, "{dn:<18} {}", c.local.map_or("-".to_string(), sock))
        } else {
            writeln!(out, "{dn}")
        };
    }
    out
}

/// `-G`: local addresses of services (DPVS's layout, without its
/// per-address conflict and connection counters, which xdpvs does not keep).
pub fn render_laddrs(rows: &[SvcRow]) -> String {
    let mut out = format!("{:<20} {:<8} {:<20} {:<10}\n", "VIP:VPORT", "TOTAL", "LADDR", "IFACE");
    for s in rows {
        let vip = s.addr().map_or_else(|| format!("FWM {}", s.fwmark().unwrap_or(0)), |(a, p)| addr_port(a, p));
        let _ = writeln!(out, "{vip:<20} {:<8}", s.laddrs.len());
        for l in &s.laddrs {
            let _ = writeln!(
                out,
                "{:<20} {:<8} {:<20} {:<10}",
                "",
                "",
                l.addr.to_string(),
                l.iface.as_deref().unwrap_or("-")
            );
        }
    }
    out
}

/// Per-core counters and drops by reason (`--cores`).
pub fn render_cores(totals: &Totals) -> String {
    let mut out = String::new();
    let names = Counter::ALL.iter().map(|c| (c.name().to_string(), c.index()));
    let names: Vec<(String, usize)> =
        names.chain(DropReason::ALL.iter().map(|d| (format!("drop:{}", d.name()), d.index()))).collect();
    // Wide enough for the longest name ("drop:session_table_full").
    let w = names.iter().map(|n| n.0.len()).max().unwrap_or(16);
    let _ = write!(out, "{:<w$}", "Counter");
    for c in 0..totals.cores.len() {
        let _ = write!(out, " {:>14}", format!("core{c}"));
    }
    let _ = writeln!(out, " {:>14}", "total");
    for (name, k) in names {
        let vals: Vec<u64> = totals.cores.iter().map(|c| c.counters.0[k]).collect();
        let _ = write!(out, "{name:<w$}");
        for v in &vals {
            let _ = write!(out, " {v:>14}");
        }
        let _ = writeln!(out, " {:>14}", vals.iter().sum::<u64>());
    }
    out
}

fn stats_json(f: &Stats, names: [&str; 5]) -> Value {
    Value::Object(names.iter().zip(f.fields()).map(|(n, v)| (n.to_string(), json!(v))).collect())
}

fn service_json(s: &SvcRow) -> Value {
    let dests: Vec<Value> = s
        .dests
        .iter()
        .map(|d| {
            json!({"address": d.addr.to_string(), "port": d.port, "forward": d.forward, "weight": d.weight,
                "u_threshold": d.u_threshold, "l_threshold": d.l_threshold, "active": d.active,
                "inactive": d.inactive, "persistent_conns": d.persist,
                "stats": stats_json(&d.stats, Stats::NAMES), "rate": stats_json(&d.rate, Stats::RATE_NAMES)})
        })
        .collect();
    json!({"service": s.name().split_whitespace().collect::<Vec<_>>().join(" "), "protocol": s.protocol(),
        "address": s.addr().map(|a| a.0.to_string()), "port": s.addr().map_or(0, |a| a.1), "fwmark": s.fwmark(),
        "scheduler": s.scheduler, "flags": s.flags, "persistent": s.persistent, "netmask": s.netmask, "ops": s.ops, "proxy_protocol": s.proxy_protocol, "toa": s.toa, "synproxy": s.synproxy,
        "stats": stats_json(&s.stats, Stats::NAMES), "rate": stats_json(&s.rate, Stats::RATE_NAMES), "dests": dests,
        "laddrs": s.laddrs.iter().map(|l| json!({"address": l.addr.to_string(), "iface": l.iface})).collect::<Vec<_>>()})
}

fn drops_json(c: &xdpvs_api::counters::CounterArray) -> Value {
    Value::Object(DropReason::ALL.iter().map(|&d| (d.name().to_string(), json!(c.dropped(d)))).collect())
}

fn worker_json(i: usize, c: &xdpvs_api::shm::CoreRead) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("core".into(), json!(i));
    m.insert("generation".into(), json!(c.generation));
    for &k in Counter::ALL {
        m.insert(k.name().to_string(), json!(c.counters.get(k)));
    }
    m.insert("sessions".into(), json!(c.counters.get(Counter::SessionsV4) + c.counters.get(Counter::SessionsV6)));
    m.insert("drops".into(), drops_json(&c.counters));
    Value::Object(m)
}

/// Everything as one JSON object.
pub fn to_json(rows: &[SvcRow], view: &View, totals: &Totals, conns: Option<&[Conn]>) -> Value {
    let workers: Vec<Value> = totals.cores.iter().enumerate().map(|(i, c)| worker_json(i, c)).collect();
    let mut v = json!({"generation": view.generation, "pid": view.pid, "timeouts": view.timeouts,
        "services": rows.iter().map(service_json).collect::<Vec<_>>(), "workers": workers,
        "drops": drops_json(&totals.counters())});
    if let Some(c) = conns {
        v["connections"] = json!(c);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpvs_api::config::{sched_flags, DestSpec, Fwd, Match, Proto, SchedKind, ServiceSpec};
    use xdpvs_api::counters::CounterArray;
    use xdpvs_api::msg::{ConnState, RateEntry, ServiceView, TimeoutView};
    use xdpvs_api::shm::{CoreRead, DestEntry, SvcEntry};
    use xdpvs_api::state::TcpState;

    fn key(proto: Proto, a: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr(Match { proto, addr: a.parse().unwrap(), port })
    }

    fn svc(slot: u32, serial: u32, spec: ServiceSpec, dests: Vec<DestView>) -> ServiceView {
        ServiceView { slot, serial, spec, baseline: Stats::default(), dests, laddrs: vec![] }
    }

    fn dest(slot: u32, serial: u32, a: &str, port: u16, fwd: Fwd, weight: u32) -> DestView {
        let addr = a.parse().unwrap();
        let spec = DestSpec { addr, port, weight, fwd, u_threshold: 0, l_threshold: 0 };
        DestView { slot, serial, spec, baseline: Stats::default() }
    }

    /// A fixed service set: NAT with persistence, an IPv6 DR service, a
    /// fwmark service and a FULLNAT one.
    fn fixture() -> (View, Totals, Rates) {
        let mut nat = ServiceSpec::new(key(Proto::Tcp, "198.18.0.10", 80), SchedKind::Wrr);
        (nat.persistent, nat.netmask) = (Some(300), 24);
        let mut slow = dest(1, 3, "198.19.0.11", 8080, Fwd::Nat, 1);
        (slow.spec.u_threshold, slow.spec.l_threshold) = (100, 50);
        slow.baseline = Stats::from_fields([10; 5]);
        let mut dns = ServiceSpec::new(key(Proto::Udp, "2001:db8::10", 53), SchedKind::Sh);
        (dns.flags, dns.ops) = (sched_flags::FALLBACK | sched_flags::PORT, true);
        let mut fwm = ServiceSpec::new(ServiceKey::Fwmark { mark: 7, v6: false }, SchedKind::Rr);
        fwm.persistent = Some(60);
        let mut fnat = svc(
            3,
            8,
            ServiceSpec::new(key(Proto::Tcp, "198.18.0.20", 443), SchedKind::Mh),
            vec![dest(4, 9, "198.19.0.14", 443, Fwd::FullNat, 1)],
        );
        fnat.laddrs = vec![LaddrView { addr: "198.19.0.250".parse().unwrap(), iface: Some("d1".into()) }];
        let view = View {
            generation: 9,
            pid: 1,
            timeouts: TimeoutView { tcp: 900, tcpfin: 120, udp: 300 },
            services: vec![
                svc(0, 1, nat, vec![dest(0, 2, "198.19.0.12", 8080, Fwd::Nat, 3), slow]),
                svc(1, 4, dns, vec![dest(2, 5, "2001:db8::11", 53, Fwd::Dr, 1)]),
                svc(2, 6, fwm, vec![dest(3, 7, "198.19.0.13", 0, Fwd::Tun, 2)]),
                fnat,
            ],
            ..View::default()
        };
        let core = |k: u64| {
            let mut counters = CounterArray::default();
            counters.0 = [k; xdpvs_api::counters::ARRAY_LEN];
            CoreRead {
                generation: 9,
                adopted_ns: 0,
                published_ns: 0,
                counters,
                services: vec![
                    SvcEntry {
                        slot: 0,
                        serial: 1,
                        stats: Stats::from_fields([150 * k, 900 * k, 750 * k, 61_728 * k, 1_172_839 * k]),
                    },
                    SvcEntry {
                        slot: 3,
                        serial: 8,
                        stats: Stats::from_fields([0, 60_000_000 * k, 0, 500_000_000_000 * k, 0]),
                    },
                ],
                dests: vec![
                    DestEntry {
                        slot: 0,
                        serial: 2,
                        active: k as u32,
                        inactive: 2 * k as u32,
                        persist: 1,
                        stats: Stats::from_fields([100 * k, 600 * k, 500 * k, 41_152 * k, 781_892 * k]),
                    },
                    DestEntry {
                        slot: 1,
                        serial: 3,
                        active: 0,
                        inactive: k as u32,
                        persist: 0,
                        stats: Stats::from_fields([
                            50 * k + 5,
                            300 * k + 5,
                            250 * k + 5,
                            20_576 * k + 5,
                            390_947 * k + 5,
                        ]),
                    },
                ],
            }
        };
        let t = Totals::of(vec![core(1), core(1)]);
        let rate = |slot, serial, f| RateEntry { slot, serial, rate: Stats::from_fields(f) };
        let rates = Rates {
            services: vec![rate(0, 1, [12, 80, 70, 6000, 120000])],
            dests: vec![rate(0, 2, [8, 53, 47, 4000, 80000])],
        };
        (view, t, rates)
    }

    #[test]
    fn golden_list() {
        let (v, t, r) = fixture();
        let text = render(&rows(&v, &t, &r), &ListOpts::default(), true);
        assert_eq!(
            text,
            "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  198.18.0.10:80 wrr persistent 300 mask 255.255.255.0\n\
\x20 -> 198.19.0.12:8080             Masq    3      2          4         \n\
\x20 -> 198.19.0.11:8080             Masq    1      0          2         \n\
UDP  [2001:db8::10]:53 sh (sh-fallback,sh-port) ops\n\
\x20 -> [2001:db8::11]:53            Route   1      0          0         \n\
FWM  7 rr persistent 60\n\
\x20 -> 198.19.0.13:0                Tunnel  2      0          0         \n\
TCP  198.18.0.20:443 mh\n\
\x20 -> 198.19.0.14:443              FullNat 1      0          0         \n"
        );
    }

    #[test]
    fn golden_stats_rate_and_thresholds() {
        let (v, t, r) = fixture();
        let rows = rows(&v, &t, &r);
        let o = ListOpts { stats: true, ..ListOpts::default() };
        let text = render(&rows, &o, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes");
        assert_eq!(lines[2], "  -> RemoteAddress:Port");
        assert_eq!(lines[3], "TCP  198.18.0.10:80                    300     1800     1500   123456  2345678");
        assert_eq!(lines[4], "  -> 198.19.0.12:8080                  200     1200     1000    82304  1563784");
        // The -Z zero point (10 of each) is taken off.
        assert_eq!(lines[5], "  -> 198.19.0.11:8080                  100      600      500    41152   781894");
        // Above 100 million: K, M, G suffixes; --exact: the whole number.
        assert_eq!(lines[10], "TCP  198.18.0.20:443                     0  120000K        0    1000G        0");
        let exact = render(&rows, &ListOpts { stats: true, exact: true, ..ListOpts::default() }, true);
        assert!(
            exact.contains("TCP  198.18.0.20:443                     0 120000000        0 1000000000000        0"),
            "{exact}"
        );
        let rate = render(&rows, &ListOpts { rate: true, ..ListOpts::default() }, true);
        let lines: Vec<&str> = rate.lines().collect();
        assert_eq!(lines[1], "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS");
        assert_eq!(lines[3], "TCP  198.18.0.10:80                     12       80       70     6000   120000");
        assert_eq!(lines[4], "  -> 198.19.0.12:8080                    8       53       47     4000    80000");
        let th = render(&rows, &ListOpts { thresholds: true, ..ListOpts::default() }, true);
        let lines: Vec<&str> = th.lines().collect();
        assert_eq!(lines[1], "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ");
        assert_eq!(lines[5], "  -> 198.19.0.11:8080             100        50         0          2         ");
        let pc = render(&rows, &ListOpts { persistent_conn: true, ..ListOpts::default() }, true);
        let lines: Vec<&str> = pc.lines().collect();
        assert_eq!(lines[1], "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ");
        assert_eq!(lines[4], "  -> 198.19.0.12:8080             3         2           2          4         ");
    }

    #[test]
    fn golden_connections_and_laddrs() {
        let c = |p: &str, st: ConnState, e, cl: &str, vi: &str, de: &str, lo: Option<&str>| Conn {
            proto: if p == "TCP" { 6 } else { 17 },
            template: false,
            state: st,
            expires_in: e,
            client: cl.parse().unwrap(),
            virt: vi.parse().unwrap(),
            dest: de.parse().unwrap(),
            local: lo.map(|l| l.parse().unwrap()),
            fwd: Fwd::Nat,
            svc: 0,
        };
        let conns = [
            c(
                "TCP",
                ConnState::Tcp(TcpState::Established),
                898,
                "198.18.0.100:40000",
                "198.18.0.10:80",
                "198.19.0.12:8080",
                None,
            ),
            c("UDP", ConnState::Udp, 65, "198.18.0.100:5353", "198.18.0.10:53", "198.19.0.11:53", None),
        ];
        assert_eq!(
            render_conns(&conns),
            "IPVS connection entries\n\
pro expire state       source             virtual            destination\n\
TCP 14:58  ESTABLISHED 198.18.0.100:40000 198.18.0.10:80     198.19.0.12:8080\n\
UDP 01:05  UDP         198.18.0.100:5353  198.18.0.10:53     198.19.0.11:53\n"
        );
        let fnat = [c(
            "TCP",
            ConnState::Tcp(TcpState::SynRecv),
            59,
            "198.18.0.100:1",
            "198.18.0.20:443",
            "198.19.0.14:443",
            Some("198.19.0.250:5001"),
        )];
        assert_eq!(
            render_conns(&fnat),
            "IPVS connection entries\n\
pro expire state       source             virtual            destination        local\n\
TCP 00:59  SYN_RECV    198.18.0.100:1     198.18.0.20:443    198.19.0.14:443    198.19.0.250:5001\n"
        );
        let (v, t, r) = fixture();
        let l = render_laddrs(&rows(&v, &t, &r)[3..]);
        assert_eq!(
            l,
            "VIP:VPORT            TOTAL    LADDR                IFACE     \n\
198.18.0.20:443      1       \n\
\x20                             198.19.0.250         d1        \n"
        );
        assert_eq!(timeouts(&v), "Timeout (tcp tcpfin udp): 900 120 300\n");
    }

    #[test]
    fn sort_orders_services_and_servers() {
        let (v, t, r) = fixture();
        let mut rows = rows(&v, &t, &r);
        sort(&mut rows);
        let names: Vec<String> = rows.iter().map(SvcRow::name).collect();
        assert_eq!(names[0], "TCP  198.18.0.10:80");
        assert_eq!(rows[0].dests[0].addr.to_string(), "198.19.0.11");
        let j = to_json(&rows, &v, &t, None);
        assert_eq!(j["services"][0]["stats"]["conns"], 300);
        assert_eq!(j["workers"][1]["rx"], 1);
    }
}
