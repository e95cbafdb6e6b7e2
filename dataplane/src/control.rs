//! The control plane's messages and views, shared by the daemon and
//! `xdpvsadm`: what a command slot carries, how a connection travels through
//! a dump ring, the configuration view the daemon publishes, the stats
//! totals read from the per-core areas, and IPVS's rate estimator.

use crate::admin::{apply, apply_line, matches_text, netmask_text, note, save, sched_flags_text};
use crate::grammar::{parse, parse_rules, Action};
use crate::lb::config::{Config, Fwd, ServiceKey};
use crate::lb::core::SessionInfo;
use crate::shm::{CoreRead, Region, REC_WORDS};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// A command slot's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    /// One ipvsadm command line (as typed, after `xdpvsadm`).
    Args(Vec<String>),
    /// `-R`: rules in `-S` format, applied all or nothing.
    Rules(String),
}

/// Answer status in a slot.
pub const OK: u64 = 0;
pub const FAILED: u64 = 1;

/// Counters of a service or real server: conns, inpkts, outpkts, inbytes, outbytes.
pub type Five = [u64; 5];

fn add5(a: &mut Five, b: &Five) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.wrapping_add(*y);
    }
}

/// Sums of every core's area: per (slot, serial).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub services: HashMap<(u32, u32), Five>,
    /// Counters, ActiveConn, InActConn, PersistConn.
    pub dests: HashMap<(u32, u32), (Five, u32, u32, u32)>,
    pub cores: Vec<CoreRead>,
}

impl Totals {
    pub fn read(r: &Region) -> Totals {
        let mut t = Totals::default();
        for c in 0..r.layout().ncores {
            let core = r.read_core(c);
            for s in &core.services {
                add5(t.services.entry((s.slot, s.serial)).or_default(), &s.counters);
            }
            for d in &core.dests {
                let e = t.dests.entry((d.slot, d.serial)).or_default();
                add5(&mut e.0, &d.counters);
                e.1 += d.active;
                e.2 += d.inactive;
                e.3 += d.persist;
            }
            t.cores.push(core);
        }
        t
    }
}

// ---- connection records (dump rings) ----

fn put_addr(w: &mut [u64], a: IpAddr) {
    let b = match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    };
    w[0] = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    w[1] = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
}

fn get_addr(w: &[u64]) -> IpAddr {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&w[0].to_le_bytes());
    b[8..].copy_from_slice(&w[1].to_le_bytes());
    let v6 = Ipv6Addr::from(b);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

fn fwd_code(f: Fwd) -> u64 {
    match f {
        Fwd::Dr => 0,
        Fwd::Tun => 1,
        Fwd::Nat => 2,
        Fwd::FullNat => 3,
    }
}

/// A connection as a dump record (no allocation: the worker's side).
pub fn encode_conn(s: &SessionInfo) -> [u64; REC_WORDS] {
    let mut w = [0u64; REC_WORDS];
    w[0] = u64::from(s.proto)
        | u64::from(s.template) << 8
        | fwd_code(s.fwd) << 16
        | u64::from(s.local.is_some()) << 24
        | u64::from(s.expires_in) << 32;
    w[1] = u64::from(s.svc);
    put_addr(&mut w[2..4], s.client.ip());
    put_addr(&mut w[4..6], s.virt.ip());
    put_addr(&mut w[6..8], s.dest.ip());
    let local = s.local.unwrap_or(SocketAddr::new(s.client.ip(), 0));
    put_addr(&mut w[8..10], local.ip());
    w[10] = u64::from(s.client.port())
        | u64::from(s.virt.port()) << 16
        | u64::from(s.dest.port()) << 32
        | u64::from(local.port()) << 48;
    let mut name = [0u8; 16];
    let n = s.state.len().min(16);
    name[..n].copy_from_slice(&s.state.as_bytes()[..n]);
    w[11] = u64::from_le_bytes(name[..8].try_into().expect("8 bytes"));
    w[12] = u64::from_le_bytes(name[8..].try_into().expect("8 bytes"));
    w
}

/// A connection as listings show it (the reader's side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conn {
    pub proto: u8,
    pub template: bool,
    pub state: String,
    pub expires_in: u32,
    pub client: SocketAddr,
    pub virt: SocketAddr,
    pub dest: SocketAddr,
    pub local: Option<SocketAddr>,
    pub forward: &'static str,
    pub svc: u32,
}

pub fn decode_conn(w: &[u64; REC_WORDS]) -> Conn {
    let port = |k: u32| (w[10] >> k) as u16;
    let mut name = Vec::with_capacity(16);
    name.extend_from_slice(&w[11].to_le_bytes());
    name.extend_from_slice(&w[12].to_le_bytes());
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let forward = match (w[0] >> 16) & 0xff {
        0 => Fwd::Dr,
        1 => Fwd::Tun,
        2 => Fwd::Nat,
        _ => Fwd::FullNat,
    }
    .name();
    Conn {
        proto: w[0] as u8,
        template: (w[0] >> 8) & 1 == 1,
        state: String::from_utf8_lossy(&name[..end]).into_owned(),
        expires_in: (w[0] >> 32) as u32,
        client: SocketAddr::new(get_addr(&w[2..4]), port(0)),
        virt: SocketAddr::new(get_addr(&w[4..6]), port(16)),
        dest: SocketAddr::new(get_addr(&w[6..8]), port(32)),
        local: ((w[0] >> 24) & 1 == 1).then(|| SocketAddr::new(get_addr(&w[8..10]), port(48))),
        forward,
        svc: w[1] as u32,
    }
}

// ---- the daemon's side ----

/// IPVS's rate estimator state for one object (`ip_vs_est.c`): every 2 s,
/// rate += (delta·2^9 − rate) / 4 for connections and packets (read back
/// as (x + 0x1FF) >> 10 per second) and delta·2^4 for bytes (read back as
/// (x + 0xF) >> 5).
#[derive(Debug, Clone, Copy, Default)]
struct Est {
    last: Five,
    scaled: [i64; 5],
}

impl Est {
    fn step(&mut self, now: &Five) {
        for (k, ((last, scaled), n)) in self.last.iter_mut().zip(self.scaled.iter_mut()).zip(now).enumerate() {
            let shift = if k < 3 { 9 } else { 4 };
            let delta = n.wrapping_sub(*last) as i64;
            *last = *n;
            *scaled += ((delta << shift) - *scaled) >> 2;
        }
    }

    fn read(&self) -> Five {
        let mut r = [0u64; 5];
        for (k, (out, x)) in r.iter_mut().zip(self.scaled).enumerate() {
            let x = x.max(0) as u64;
            *out = if k < 3 { (x + 0x1FF) >> 10 } else { (x + 0xF) >> 5 };
        }
        r
    }
}

/// The daemon's control-plane state beside its [`Config`]: `-Z` baselines
/// and rate estimators, keyed by (is a real server, slot, serial).
#[derive(Debug, Default)]
pub struct Control {
    baselines: HashMap<(bool, u32, u32), Five>,
    est: HashMap<(bool, u32, u32), Est>,
}

/// What a handled request did.
pub struct Outcome {
    pub text: String,
    /// The configuration changed: publish it.
    pub changed: bool,
}

impl Control {
    /// Handles one request against `cfg` (changed only on success).
    pub fn handle(&mut self, cfg: &mut Config, region: &Region, req: &[u8]) -> Result<Outcome, String> {
        let req: Request = serde_json::from_slice(req).map_err(|e| format!("malformed request: {e}"))?;
        match req {
            Request::Args(args) => {
                let inv = parse(&args).map_err(|e| e.to_string())?;
                match inv.action {
                    Action::Admin(cmd) => {
                        let mut next = cfg.clone();
                        apply(&mut next, &cmd).map_err(|e| e.to_string())?;
                        check_capacity(&next, region)?;
                        let text = note(&next, &cmd).unwrap_or_default();
                        *cfg = next;
                        Ok(Outcome { text, changed: true })
                    }
                    Action::Zero(key) => {
                        self.zero(cfg, region, key.as_ref())?;
                        Ok(Outcome { text: String::new(), changed: false })
                    }
                    _ => Err("not a command the daemon applies".into()),
                }
            }
            Request::Rules(text) => {
                let mut next = cfg.clone();
                let mut cmds = Vec::new();
                for (line, r) in parse_rules(&text) {
                    cmds.push(apply_line(&mut next, r).map_err(|e| format!("line {line}: {e} (nothing applied)"))?);
                }
                check_capacity(&next, region)?;
                // Notes about the end state, once per service.
                let mut notes: Vec<String> = cmds.iter().filter_map(|c| note(&next, c)).collect();
                notes.sort();
                notes.dedup();
                let changed = !cmds.is_empty();
                if changed {
                    *cfg = next;
                }
                Ok(Outcome { text: notes.join("\n"), changed })
            }
        }
    }

    /// `-Z [service]`: the current totals become the zero point.
    fn zero(&mut self, cfg: &Config, region: &Region, key: Option<&ServiceKey>) -> Result<(), String> {
        let slots: Vec<u32> = match key {
            Some(k) => vec![cfg.find_service(k).ok_or("No such service")?],
            None => cfg.services().map(|(i, _)| i).collect(),
        };
        let t = Totals::read(region);
        for slot in slots {
            let Some(s) = cfg.service(slot) else { continue };
            let now = t.services.get(&(slot, s.serial)).copied().unwrap_or_default();
            self.baselines.insert((false, slot, s.serial), now);
            self.est.insert((false, slot, s.serial), Est { last: now, scaled: [0; 5] });
            for &d in &s.dests {
                let Some(dc) = cfg.dest(d) else { continue };
                let now = t.dests.get(&(d, dc.serial)).map(|x| x.0).unwrap_or_default();
                self.baselines.insert((true, d, dc.serial), now);
                self.est.insert((true, d, dc.serial), Est { last: now, scaled: [0; 5] });
            }
        }
        Ok(())
    }

    /// Every 2 s: one estimator step for every service and real server.
    pub fn estimate(&mut self, cfg: &Config, region: &Region) -> Value {
        let t = Totals::read(region);
        let mut live = hashbrown::HashSet::new();
        let mut services = Vec::new();
        let mut dests = Vec::new();
        for (slot, s) in cfg.services() {
            let now = t.services.get(&(slot, s.serial)).copied().unwrap_or_default();
            let key = (false, slot, s.serial);
            live.insert(key);
            let e = self.est.entry(key).or_insert(Est { last: now, scaled: [0; 5] });
            e.step(&now);
            let r = e.read();
            services.push(json!([slot, s.serial, r[0], r[1], r[2], r[3], r[4]]));
            for &d in &s.dests {
                let Some(dc) = cfg.dest(d) else { continue };
                let now = t.dests.get(&(d, dc.serial)).map(|x| x.0).unwrap_or_default();
                let key = (true, d, dc.serial);
                live.insert(key);
                let e = self.est.entry(key).or_insert(Est { last: now, scaled: [0; 5] });
                e.step(&now);
                let r = e.read();
                dests.push(json!([d, dc.serial, r[0], r[1], r[2], r[3], r[4]]));
            }
        }
        self.est.retain(|k, _| live.contains(k));
        self.baselines.retain(|k, _| live.contains(k));
        json!({"services": services, "dests": dests})
    }

    /// The configuration as readers see it (the view blob).
    pub fn view(&self, cfg: &Config, region: &Region) -> Value {
        let base = |k: (bool, u32, u32)| self.baselines.get(&k).copied().unwrap_or_default();
        let services: Vec<Value> = cfg
            .services()
            .map(|(slot, s)| {
                let spec = &s.spec;
                let v6 = spec.key.is_v6();
                let (proto, addr, port, fwmark) = match spec.key {
                    ServiceKey::Addr(m) => (m.proto.name(), Some(m.addr.to_string()), m.port, None),
                    ServiceKey::Fwmark { mark, .. } => ("FWM", None, 0, Some(mark)),
                };
                let dests: Vec<Value> = s
                    .dests
                    .iter()
                    .filter_map(|&d| {
                        let dc = cfg.dest(d)?;
                        Some(json!({"slot": d, "serial": dc.serial, "address": dc.spec.addr.to_string(),
                            "port": dc.spec.port, "forward": dc.spec.fwd.name(), "weight": dc.spec.weight,
                            "u_threshold": dc.spec.u_threshold, "l_threshold": dc.spec.l_threshold,
                            "baseline": base((true, d, dc.serial))}))
                    })
                    .collect();
                let laddrs: Vec<Value> = s
                    .laddrs
                    .iter()
                    .filter_map(|&l| cfg.laddr(l))
                    .map(|l| json!({"address": l.addr.to_string(), "iface": l.iface}))
                    .collect();
                let full = if v6 { 128 } else { 32 };
                json!({"slot": slot, "serial": s.serial, "protocol": proto, "address": addr, "port": port,
                    "fwmark": fwmark, "v6": v6, "scheduler": spec.sched.name(),
                    "flags": sched_flags_text(spec.flags, spec.sched.name()),
                    "persistent": spec.persistent, "ops": spec.ops,
                    "netmask": (spec.persistent.is_some() && spec.netmask != full).then(|| netmask_text(spec.netmask, v6)),
                    "matches": matches_text(&spec.matches),
                    "baseline": base((false, slot, s.serial)), "dests": dests, "laddrs": laddrs})
            })
            .collect();
        let t = &cfg.timeouts;
        json!({"generation": cfg.generation, "pid": region.pid(), "started": region.started(),
            "ncores": region.layout().ncores,
            "timeouts": {"tcp": t.tcp(crate::lb::tcp_state::TcpState::Established),
                         "tcpfin": t.tcp(crate::lb::tcp_state::TcpState::FinWait), "udp": t.udp},
            "save": save(cfg), "services": services})
    }
}

fn check_capacity(cfg: &Config, region: &Region) -> Result<(), String> {
    let l = region.layout();
    if cfg.service_slots() > l.max_services {
        return Err(format!("too many services: this xdpvs holds at most {}", l.max_services));
    }
    if cfg.dest_slots() > l.max_dests {
        return Err(format!("too many real servers: this xdpvs holds at most {}", l.max_dests));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_records_round_trip() {
        let s = SessionInfo {
            proto: 6,
            template: false,
            state: "ESTABLISHED",
            expires_in: 899,
            client: "198.18.0.100:40000".parse().unwrap(),
            virt: "198.18.0.10:80".parse().unwrap(),
            dest: "198.19.0.11:8080".parse().unwrap(),
            local: Some("198.19.0.250:5001".parse().unwrap()),
            fwd: Fwd::FullNat,
            svc: 3,
        };
        let c = decode_conn(&encode_conn(&s));
        assert_eq!(
            (c.proto, c.template, c.state.as_str(), c.expires_in, c.client, c.virt, c.dest, c.local, c.forward, c.svc),
            (6, false, "ESTABLISHED", 899, s.client, s.virt, s.dest, s.local, "FullNat", 3)
        );
        let v6 = SessionInfo {
            client: "[2001:db8::100]:1".parse().unwrap(),
            virt: "[2001:db8::10]:443".parse().unwrap(),
            dest: "[2001:db8:1::11]:443".parse().unwrap(),
            local: None,
            fwd: Fwd::Dr,
            state: "FIN_WAIT",
            ..s
        };
        let c = decode_conn(&encode_conn(&v6));
        assert_eq!(
            (c.client, c.dest, c.local, c.forward, c.state.as_str()),
            (v6.client, v6.dest, None, "Route", "FIN_WAIT")
        );
    }

    #[test]
    fn estimator_follows_ipvs() {
        // 1000 conns/s, 2 s per step: the estimate climbs towards 1000.
        let mut e = Est::default();
        let mut now = [0u64; 5];
        let mut seen = Vec::new();
        for _ in 0..60 {
            now[0] += 2000;
            now[3] += 2_000_000;
            e.step(&now);
            seen.push(e.read());
        }
        assert_eq!(seen[0][0], 250, "a quarter of the way after one step");
        assert_eq!(seen[59][0], 1000);
        assert_eq!(seen[59][3], 1_000_000);
        // Traffic stops: the estimate decays to zero.
        for _ in 0..60 {
            e.step(&now);
        }
        assert_eq!(e.read(), [0; 5]);
    }
}
