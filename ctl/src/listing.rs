//! Listings in ipvsadm 1.31's layout (`-L` with `--stats`, `--rate`,
//! `--thresholds`, `--persistent-conn`, `-c`, `--timeout`, `--exact`,
//! `--sort`), and the same content as JSON (`--json`).
//!
//! Input: the daemon's configuration view (a blob in the region), the sums
//! of the per-core stats areas and the rate estimates. Counters are shown
//! minus the `-Z` zero point the view carries.

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::IpAddr;
use xdpvs::control::{Conn, Five, Totals};
use xdpvs::grammar::ListOpts;
use xdpvs::lb::stats::Drop;
use xdpvs::shm::{COUNTER_NAMES, DROPS_AT};

/// One real server as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestRow {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: String,
    pub weight: u64,
    pub u_threshold: u64,
    pub l_threshold: u64,
    pub active: u64,
    pub inactive: u64,
    pub persist: u64,
    pub stats: Five,
    pub rate: Five,
}

/// One service as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcRow {
    pub slot: u32,
    /// "TCP", "UDP" or "FWM".
    pub protocol: String,
    pub addr: Option<IpAddr>,
    pub port: u16,
    pub fwmark: Option<u64>,
    pub v6: bool,
    pub scheduler: String,
    pub flags: String,
    pub persistent: Option<u64>,
    pub netmask: Option<String>,
    /// `-o`: one-packet scheduling.
    pub ops: bool,
    pub stats: Five,
    pub rate: Five,
    pub dests: Vec<DestRow>,
    pub laddrs: Vec<(String, Option<String>)>,
}

impl SvcRow {
    /// ipvsadm's service name: `TCP  addr:port`, `FWM  mark [IPv6]`.
    pub fn name(&self) -> String {
        match (self.fwmark, self.addr) {
            (Some(m), _) => format!("FWM  {m}{}", if self.v6 { " IPv6" } else { "" }),
            (None, Some(a)) => {
                let mut n = format!("{}  {}", self.protocol, addr_port(a, self.port));
                if !self.v6 {
                    n.truncate(33);
                }
                n
            }
            (None, None) => self.protocol.clone(),
        }
    }

    /// ipvsadm's service option: `-t addr:port`, `-u addr:port`, `-f mark`.
    pub fn arg(&self) -> String {
        match (self.fwmark, self.addr) {
            (Some(m), _) => format!("-f {m}"),
            (None, Some(a)) => {
                format!("{} {}", if self.protocol == "UDP" { "-u" } else { "-t" }, addr_port(a, self.port))
            }
            (None, None) => String::new(),
        }
    }
}

pub fn addr_port(a: IpAddr, p: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{p}"),
        IpAddr::V6(a) => format!("[{a}]:{p}"),
    }
}

fn five(v: Option<&Value>) -> Five {
    let mut f = [0u64; 5];
    if let Some(a) = v.and_then(Value::as_array) {
        for (x, y) in f.iter_mut().zip(a) {
            *x = y.as_u64().unwrap_or(0);
        }
    }
    f
}

fn sub(a: Five, b: Five) -> Five {
    let mut r = a;
    for (x, y) in r.iter_mut().zip(b) {
        *x = x.saturating_sub(y);
    }
    r
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Rate estimates by (slot, serial): `[[slot, serial, cps, inpps, outpps, inbps, outbps], …]`.
fn rates(rates: &Value, kind: &str) -> hashbrown::HashMap<(u64, u64), Five> {
    let mut m = hashbrown::HashMap::new();
    for r in rates.get(kind).and_then(Value::as_array).into_iter().flatten() {
        let Some(a) = r.as_array() else { continue };
        let g = |i: usize| a.get(i).and_then(Value::as_u64).unwrap_or(0);
        m.insert((g(0), g(1)), [g(2), g(3), g(4), g(5), g(6)]);
    }
    m
}

/// The rows of a listing.
pub fn rows(view: &Value, totals: &Totals, rate_blob: &Value) -> Vec<SvcRow> {
    let (svc_rates, dest_rates) = (rates(rate_blob, "services"), rates(rate_blob, "dests"));
    let mut out = Vec::new();
    for s in view.get("services").and_then(Value::as_array).into_iter().flatten() {
        let (slot, serial) = (u(s, "slot"), u(s, "serial"));
        let stats = totals.services.get(&(slot as u32, serial as u32)).copied().unwrap_or_default();
        let dests = s
            .get("dests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|d| {
                let (dslot, dserial) = (u(d, "slot"), u(d, "serial"));
                let (st, active, inactive, persist) =
                    totals.dests.get(&(dslot as u32, dserial as u32)).copied().unwrap_or_default();
                DestRow {
                    addr: d
                        .get("address")
                        .and_then(Value::as_str)
                        .and_then(|a| a.parse().ok())
                        .unwrap_or(IpAddr::from([0, 0, 0, 0])),
                    port: u(d, "port") as u16,
                    forward: d.get("forward").and_then(Value::as_str).unwrap_or("?").to_string(),
                    weight: u(d, "weight"),
                    u_threshold: u(d, "u_threshold"),
                    l_threshold: u(d, "l_threshold"),
                    active: u64::from(active),
                    inactive: u64::from(inactive),
                    persist: u64::from(persist),
                    stats: sub(st, five(d.get("baseline"))),
                    rate: dest_rates.get(&(dslot, dserial)).copied().unwrap_or_default(),
                }
            })
            .collect();
        out.push(SvcRow {
            slot: slot as u32,
            protocol: s.get("protocol").and_then(Value::as_str).unwrap_or("?").to_string(),
            addr: s.get("address").and_then(Value::as_str).and_then(|a| a.parse().ok()),
            port: u(s, "port") as u16,
            fwmark: s.get("fwmark").and_then(Value::as_u64),
            v6: s.get("v6").and_then(Value::as_bool).unwrap_or(false),
            scheduler: s.get("scheduler").and_then(Value::as_str).unwrap_or("?").to_string(),
            flags: s.get("flags").and_then(Value::as_str).unwrap_or("").to_string(),
            persistent: s.get("persistent").and_then(Value::as_u64),
            netmask: s.get("netmask").and_then(Value::as_str).map(str::to_string),
            ops: s.get("ops").and_then(Value::as_bool).unwrap_or(false),
            stats: sub(stats, five(s.get("baseline"))),
            rate: svc_rates.get(&(slot, serial)).copied().unwrap_or_default(),
            dests,
            laddrs: s
                .get("laddrs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|l| {
                    (
                        l.get("address").and_then(Value::as_str).unwrap_or("?").to_string(),
                        l.get("iface").and_then(Value::as_str).map(str::to_string),
                    )
                })
                .collect(),
        });
    }
    out
}

/// `--sort`: services by fwmark, protocol, address, port; real servers by
/// address, port (as ipvsadm's comparators).
pub fn sort(rows: &mut [SvcRow]) {
    rows.sort_by(|a, b| (a.fwmark, &a.protocol, a.addr, a.port).cmp(&(b.fwmark, &b.protocol, b.addr, b.port)));
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

fn nums(v: &Five, exact: bool) -> String {
    v.iter().map(|n| largenum(*n, exact)).collect()
}

/// The `-L` text for `rows`. `header`: the version line (ipvsadm omits it
/// when one service is asked for).
pub fn render(rows: &[SvcRow], o: &ListOpts, header: bool) -> String {
    let mut out = String::new();
    if header {
        let _ = writeln!(out, "IP Virtual Server version 1.2.1 (size=4096)");
    }
    let title = |a: &str, cols: &[&str], w: usize, right: bool| {
        let mut t = format!("{a:<33}");
        for c in cols {
            if right {
                let _ = write!(t, " {c:>w$}");
            } else {
                let _ = write!(t, " {c:<w$}");
            }
        }
        t
    };
    if o.stats {
        let _ = writeln!(
            out,
            "{}",
            title("Prot LocalAddress:Port", &["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"], 8, true)
        );
        let _ = writeln!(out, "  -> RemoteAddress:Port");
    } else if o.rate {
        let _ = writeln!(
            out,
            "{}",
            title("Prot LocalAddress:Port", &["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"], 8, true)
        );
        let _ = writeln!(out, "  -> RemoteAddress:Port");
    } else if o.thresholds {
        let _ = writeln!(
            out,
            "{}",
            title("Prot LocalAddress:Port", &["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"], 10, false)
        );
        let _ = writeln!(out, "  -> RemoteAddress:Port");
    } else if o.persistent_conn {
        let _ = writeln!(
            out,
            "{:<33} {:<9} {:<11} {:<10} {:<10}",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
        let _ = writeln!(out, "  -> RemoteAddress:Port");
    } else {
        let _ = writeln!(out, "Prot LocalAddress:Port Scheduler Flags");
        let _ = writeln!(out, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    }
    for s in rows {
        let name = s.name();
        if o.stats {
            let _ = writeln!(out, "{name:<33}{}", nums(&s.stats, o.exact));
        } else if o.rate {
            let _ = writeln!(out, "{name:<33}{}", nums(&s.rate, o.exact));
        } else {
            let _ = write!(out, "{name} {}", s.scheduler);
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
            out.push('\n');
        }
        for d in &s.dests {
            let mut dn = addr_port(d.addr, d.port);
            if !s.v6 {
                dn.truncate(28);
            }
            let _ = if o.stats {
                writeln!(out, "  -> {dn:<28}{}", nums(&d.stats, o.exact))
            } else if o.rate {
                writeln!(
                    out,
                    "  -> {dn:<28} {:>8} {:>8} {:>8}{}{}",
                    d.rate[0],
                    d.rate[1],
                    d.rate[2],
                    largenum(d.rate[3], o.exact),
                    largenum(d.rate[4], o.exact)
                )
            } else if o.thresholds {
                writeln!(
                    out,
                    "  -> {dn:<28} {:<10} {:<10} {:<10} {:<10}",
                    d.u_threshold, d.l_threshold, d.active, d.inactive
                )
            } else if o.persistent_conn {
                writeln!(out, "  -> {dn:<28} {:<9} {:<11} {:<10} {:<10}", d.weight, d.persist, d.active, d.inactive)
            } else {
                writeln!(out, "  -> {dn:<28} {:<7} {:<6} {:<10} {:<10}", d.forward, d.weight, d.active, d.inactive)
            };
        }
    }
    out
}

/// `--timeout`.
pub fn timeouts(view: &Value) -> String {
    let t = view.get("timeouts").cloned().unwrap_or(Value::Null);
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", u(&t, "tcp"), u(&t, "tcpfin"), u(&t, "udp"))
}

fn proto_name(c: &Conn) -> &'static str {
    match c.proto {
        6 => "TCP",
        17 => "UDP",
        _ => "IP",
    }
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
        let (cn, vn, dn) = (
            addr_port(c.client.ip(), c.client.port()),
            addr_port(c.virt.ip(), c.virt.port()),
            addr_port(c.dest.ip(), c.dest.port()),
        );
        let _ = write!(out, "{:<3} {expire:<6} {:<11} {cn:<18} {vn:<18} ", proto_name(c), c.state);
        let _ = if fullnat {
            let l = c.local.map_or("-".to_string(), |l| addr_port(l.ip(), l.port()));
            writeln!(out, "{dn:<18} {l}")
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
        let vip = s.addr.map_or_else(|| format!("FWM {}", s.fwmark.unwrap_or(0)), |a| addr_port(a, s.port));
        let _ = writeln!(out, "{vip:<20} {:<8}", s.laddrs.len());
        for (a, i) in &s.laddrs {
            let _ = writeln!(out, "{:<20} {:<8} {a:<20} {:<10}", "", "", i.as_deref().unwrap_or("-"));
        }
    }
    out
}

/// Per-core counters and drops by reason (`--cores`).
pub fn render_cores(totals: &Totals) -> String {
    let mut out = String::new();
    // Wide enough for the longest name ("drop:session_table_full").
    let w =
        COUNTER_NAMES.iter().map(|n| n.len()).chain(Drop::ALL.iter().map(|d| d.name().len() + 5)).max().unwrap_or(16);
    let _ = write!(out, "{:<w$}", "Counter");
    for c in 0..totals.cores.len() {
        let _ = write!(out, " {:>14}", format!("core{c}"));
    }
    let _ = writeln!(out, " {:>14}", "total");
    let mut row = |name: &str, k: usize| {
        let vals: Vec<u64> = totals.cores.iter().map(|c| c.counters.get(k).copied().unwrap_or(0)).collect();
        let _ = write!(out, "{name:<w$}");
        for v in &vals {
            let _ = write!(out, " {v:>14}");
        }
        let _ = writeln!(out, " {:>14}", vals.iter().sum::<u64>());
    };
    for (k, name) in COUNTER_NAMES.iter().enumerate() {
        row(name, k);
    }
    for (k, d) in Drop::ALL.iter().enumerate() {
        row(&format!("drop:{}", d.name()), DROPS_AT + k);
    }
    out
}

fn five_json(f: &Five, names: [&str; 5]) -> Value {
    Value::Object(names.iter().zip(f).map(|(n, v)| (n.to_string(), json!(v))).collect())
}

/// Everything as one JSON object.
pub fn to_json(rows: &[SvcRow], view: &Value, totals: &Totals, conns: Option<&[Conn]>) -> Value {
    const STATS: [&str; 5] = ["conns", "inpkts", "outpkts", "inbytes", "outbytes"];
    const RATE: [&str; 5] = ["cps", "inpps", "outpps", "inbps", "outbps"];
    let services: Vec<Value> = rows
        .iter()
        .map(|s| {
            let dests: Vec<Value> = s
                .dests
                .iter()
                .map(|d| {
                    json!({"address": d.addr.to_string(), "port": d.port, "forward": d.forward, "weight": d.weight,
                        "u_threshold": d.u_threshold, "l_threshold": d.l_threshold, "active": d.active,
                        "inactive": d.inactive, "persistent_conns": d.persist,
                        "stats": five_json(&d.stats, STATS), "rate": five_json(&d.rate, RATE)})
                })
                .collect();
            json!({"service": s.name().split_whitespace().collect::<Vec<_>>().join(" "), "protocol": s.protocol,
                "address": s.addr.map(|a| a.to_string()), "port": s.port, "fwmark": s.fwmark,
                "scheduler": s.scheduler, "flags": s.flags, "persistent": s.persistent, "netmask": s.netmask, "ops": s.ops,
                "stats": five_json(&s.stats, STATS), "rate": five_json(&s.rate, RATE), "dests": dests,
                "laddrs": s.laddrs.iter().map(|(a, i)| json!({"address": a, "iface": i})).collect::<Vec<_>>()})
        })
        .collect();
    let counter = |c: &xdpvs::shm::CoreRead, k: usize| c.counters.get(k).copied().unwrap_or(0);
    let workers: Vec<Value> = totals
        .cores
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut m = serde_json::Map::new();
            m.insert("core".into(), json!(i));
            m.insert("generation".into(), json!(c.generation));
            for (k, n) in COUNTER_NAMES.iter().enumerate() {
                m.insert(n.to_string(), json!(counter(c, k)));
            }
            m.insert("sessions".into(), json!(counter(c, 11) + counter(c, 12)));
            let drops: serde_json::Map<String, Value> = Drop::ALL
                .iter()
                .enumerate()
                .map(|(k, d)| (d.name().to_string(), json!(counter(c, DROPS_AT + k))))
                .collect();
            m.insert("drops".into(), Value::Object(drops));
            Value::Object(m)
        })
        .collect();
    let drops: serde_json::Map<String, Value> = Drop::ALL
        .iter()
        .enumerate()
        .map(|(k, d)| (d.name().to_string(), json!(totals.cores.iter().map(|c| counter(c, DROPS_AT + k)).sum::<u64>())))
        .collect();
    let mut v = json!({"generation": view.get("generation"), "pid": view.get("pid"), "timeouts": view.get("timeouts"),
        "services": services, "workers": workers, "drops": drops});
    if let Some(c) = conns {
        v["connections"] = json!(c);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpvs::shm::{CoreRead, DestEntry, SvcEntry};

    /// A fixed service set: NAT with persistence, an IPv6 DR service, a
    /// fwmark service and a FULLNAT one.
    fn fixture() -> (Value, Totals, Value) {
        let view = json!({"generation": 9, "pid": 1, "timeouts": {"tcp": 900, "tcpfin": 120, "udp": 300},
          "services": [
            {"slot": 0, "serial": 1, "protocol": "TCP", "address": "198.18.0.10", "port": 80, "fwmark": null, "v6": false,
             "scheduler": "wrr", "flags": "", "persistent": 300, "netmask": "255.255.255.0", "baseline": [0,0,0,0,0],
             "dests": [
               {"slot": 0, "serial": 2, "address": "198.19.0.12", "port": 8080, "forward": "Masq", "weight": 3, "u_threshold": 0, "l_threshold": 0, "baseline": [0,0,0,0,0]},
               {"slot": 1, "serial": 3, "address": "198.19.0.11", "port": 8080, "forward": "Masq", "weight": 1, "u_threshold": 100, "l_threshold": 50, "baseline": [10,10,10,10,10]}],
             "laddrs": []},
            {"slot": 1, "serial": 4, "protocol": "UDP", "address": "2001:db8::10", "port": 53, "fwmark": null, "v6": true,
             "scheduler": "sh", "flags": "sh-fallback,sh-port", "persistent": null, "netmask": null, "ops": true, "baseline": [0,0,0,0,0],
             "dests": [{"slot": 2, "serial": 5, "address": "2001:db8::11", "port": 53, "forward": "Route", "weight": 1, "u_threshold": 0, "l_threshold": 0, "baseline": [0,0,0,0,0]}],
             "laddrs": []},
            {"slot": 2, "serial": 6, "protocol": "FWM", "address": null, "port": 0, "fwmark": 7, "v6": false,
             "scheduler": "rr", "flags": "", "persistent": 60, "netmask": null, "baseline": [0,0,0,0,0],
             "dests": [{"slot": 3, "serial": 7, "address": "198.19.0.13", "port": 0, "forward": "Tunnel", "weight": 2, "u_threshold": 0, "l_threshold": 0, "baseline": [0,0,0,0,0]}],
             "laddrs": []},
            {"slot": 3, "serial": 8, "protocol": "TCP", "address": "198.18.0.20", "port": 443, "fwmark": null, "v6": false,
             "scheduler": "mh", "flags": "", "persistent": null, "netmask": null, "baseline": [0,0,0,0,0],
             "dests": [{"slot": 4, "serial": 9, "address": "198.19.0.14", "port": 443, "forward": "FullNat", "weight": 1, "u_threshold": 0, "l_threshold": 0, "baseline": [0,0,0,0,0]}],
             "laddrs": [{"address": "198.19.0.250", "iface": "d1"}]}]});
        let core = |k: u64| CoreRead {
            generation: 9,
            adopted_ns: 0,
            counters: vec![k; 64],
            services: vec![
                SvcEntry { slot: 0, serial: 1, counters: [150 * k, 900 * k, 750 * k, 61_728 * k, 1_172_839 * k] },
                SvcEntry { slot: 3, serial: 8, counters: [0, 60_000_000 * k, 0, 500_000_000_000 * k, 0] },
            ],
            dests: vec![
                DestEntry {
                    slot: 0,
                    serial: 2,
                    active: k as u32,
                    inactive: 2 * k as u32,
                    persist: 1,
                    counters: [100 * k, 600 * k, 500 * k, 41_152 * k, 781_892 * k],
                },
                DestEntry {
                    slot: 1,
                    serial: 3,
                    active: 0,
                    inactive: k as u32,
                    persist: 0,
                    counters: [50 * k + 5, 300 * k + 5, 250 * k + 5, 20_576 * k + 5, 390_947 * k + 5],
                },
            ],
        };
        let mut t = Totals::default();
        for k in [1u64, 1] {
            let c = core(k);
            for s in &c.services {
                let e = t.services.entry((s.slot, s.serial)).or_default();
                for (x, y) in e.iter_mut().zip(s.counters) {
                    *x += y;
                }
            }
            for d in &c.dests {
                let e = t.dests.entry((d.slot, d.serial)).or_default();
                for (x, y) in e.0.iter_mut().zip(d.counters) {
                    *x += y;
                }
                e.1 += d.active;
                e.2 += d.inactive;
                e.3 += d.persist;
            }
            t.cores.push(c);
        }
        let rates = json!({"services": [[0, 1, 12, 80, 70, 6000, 120000]], "dests": [[0, 2, 8, 53, 47, 4000, 80000]]});
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
        let c = |p: &str, st: &str, e, cl: &str, vi: &str, de: &str, lo: Option<&str>| Conn {
            proto: if p == "TCP" { 6 } else { 17 },
            template: false,
            state: st.into(),
            expires_in: e,
            client: cl.parse().unwrap(),
            virt: vi.parse().unwrap(),
            dest: de.parse().unwrap(),
            local: lo.map(|l| l.parse().unwrap()),
            forward: "Masq",
            svc: 0,
        };
        let conns = [
            c("TCP", "ESTABLISHED", 898, "198.18.0.100:40000", "198.18.0.10:80", "198.19.0.12:8080", None),
            c("UDP", "UDP", 65, "198.18.0.100:5353", "198.18.0.10:53", "198.19.0.11:53", None),
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
            "SYN_RECV",
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
