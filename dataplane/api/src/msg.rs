//! The typed messages between the daemon and its clients: what a command
//! slot carries each way, the configuration view and the rate estimates the
//! daemon publishes as blobs, and a connection as it travels through a dump
//! ring. Both ends use these types (serde), so a field renamed on one side
//! fails to compile on the other; the region's ABI version (`shm::ABI`)
//! covers their encoding.

use crate::admin::Command;
use crate::config::{Config, DestSpec, Fwd, ServiceKey, ServiceSpec};
use crate::counters::{CounterArray, Stats};
use crate::shm::{CoreRead, Region, ShmError, REC_WORDS};
use crate::state::{TcpState, Timeouts};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize, Serializer};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// A command slot's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// One configuration change, parsed by the client.
    Command(Command),
    /// `-Z [service]`: the current counters become the zero point.
    Zero(Option<ServiceKey>),
    /// `-R`: rules in `-S` format, applied all or nothing.
    Rules(String),
    /// `-R` text too long for one command slot, in parts: the daemon keeps
    /// the parts of `id` and applies them all or nothing with the `last`.
    RulesPart { id: u64, text: String, last: bool },
    /// A controller's share of the configuration (`xdpvs-checker`'s
    /// services): the services `rules` (`-S` format) has made exactly so,
    /// keeping the identity — and the flows — of what stays; those of
    /// `owned` that `rules` no longer has removed; every other service
    /// untouched. All or nothing.
    Converge { owned: Vec<ServiceKey>, rules: String },
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a request always serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("malformed request: {e}"))
    }
}

/// Answer status in a slot.
pub const OK: u64 = 0;
pub const FAILED: u64 = 1;

// ---- the configuration view (blob `BLOB_VIEW`) ----

/// The configuration as readers see it, with each object's `-Z` zero point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub generation: u64,
    pub pid: u32,
    pub started: u64,
    pub ncores: usize,
    pub timeouts: TimeoutView,
    /// The configuration in `-S` format.
    pub save: String,
    pub services: Vec<ServiceView>,
}

/// `--timeout`: the three values `--set` changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutView {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

impl From<&Timeouts> for TimeoutView {
    fn from(t: &Timeouts) -> Self {
        Self { tcp: t.tcp(TcpState::Established), tcpfin: t.tcp(TcpState::FinWait), udp: t.udp }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    pub slot: u32,
    pub serial: u32,
    pub spec: ServiceSpec,
    pub baseline: Stats,
    /// In list order (newest first).
    pub dests: Vec<DestView>,
    pub laddrs: Vec<LaddrView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestView {
    pub slot: u32,
    pub serial: u32,
    pub spec: DestSpec,
    pub baseline: Stats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaddrView {
    pub addr: IpAddr,
    pub iface: Option<String>,
}

/// Identifies a counted object across generations: (is a real server, slot, serial).
pub type ObjectId = (bool, u32, u32);

impl View {
    /// The view of `cfg`; `baseline` gives each object's `-Z` zero point.
    pub fn of(cfg: &Config, region: &Region, baseline: impl Fn(ObjectId) -> Stats) -> View {
        let services = cfg
            .services()
            .map(|(slot, s)| ServiceView {
                slot,
                serial: s.serial,
                spec: s.spec.clone(),
                baseline: baseline((false, slot, s.serial)),
                dests: s
                    .dests
                    .iter()
                    .filter_map(|&d| {
                        let dc = cfg.dest(d)?;
                        Some(DestView {
                            slot: d,
                            serial: dc.serial,
                            spec: dc.spec,
                            baseline: baseline((true, d, dc.serial)),
                        })
                    })
                    .collect(),
                laddrs: s
                    .laddrs
                    .iter()
                    .filter_map(|&l| cfg.laddr(l))
                    .map(|l| LaddrView { addr: l.addr, iface: l.iface.clone() })
                    .collect(),
            })
            .collect();
        View {
            generation: cfg.generation,
            pid: region.pid(),
            started: region.started(),
            ncores: region.layout().ncores,
            timeouts: TimeoutView::from(&cfg.timeouts),
            save: crate::admin::save(cfg),
            services,
        }
    }
}

// ---- rate estimates (blob `BLOB_RATES`) ----

/// IPVS's rate estimates, per object: conns/s, packets/s and bytes/s in
/// the five fields of [`Stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub services: Vec<RateEntry>,
    pub dests: Vec<RateEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateEntry {
    pub slot: u32,
    pub serial: u32,
    pub rate: Stats,
}

impl Rates {
    /// By (slot, serial), for one kind of object.
    pub fn index(entries: &[RateEntry]) -> HashMap<(u32, u32), Stats> {
        entries.iter().map(|e| ((e.slot, e.serial), e.rate)).collect()
    }
}

/// Decodes a blob the daemon wrote with `serde_json`, naming it on failure.
pub fn decode_blob<T: for<'a> Deserialize<'a>>(what: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("xdpvsadm: the daemon's {what} is unreadable: {e}"))
}

// ---- per-core stats, summed ----

/// A real server's sums over every core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestTotals {
    pub stats: Stats,
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates bound to it.
    pub persist: u32,
}

/// Sums of every core's area: per (slot, serial).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub services: HashMap<(u32, u32), Stats>,
    pub dests: HashMap<(u32, u32), DestTotals>,
    pub cores: Vec<CoreRead>,
}

impl Totals {
    pub fn read(r: &Region) -> Result<Totals, ShmError> {
        Ok(Self::of((0..r.layout().ncores).map(|c| r.read_core(c)).collect::<Result<_, _>>()?))
    }

    /// The sums of these cores' areas.
    pub fn of(cores: Vec<CoreRead>) -> Totals {
        let mut t = Totals::default();
        for core in &cores {
            for s in &core.services {
                t.services.entry((s.slot, s.serial)).or_default().add(&s.stats);
            }
            for d in &core.dests {
                let e = t.dests.entry((d.slot, d.serial)).or_default();
                e.stats.add(&d.stats);
                e.active += d.active;
                e.inactive += d.inactive;
                e.persist += d.persist;
            }
        }
        t.cores = cores;
        t
    }

    /// Every core's counter array added up.
    pub fn counters(&self) -> CounterArray {
        let mut sum = CounterArray::default();
        for c in &self.cores {
            for (x, y) in sum.0.iter_mut().zip(c.counters.0) {
                *x = x.wrapping_add(y);
            }
        }
        sum
    }
}

// ---- connections (dump rings) ----

/// A connection's state as `-L -c` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Tcp(TcpState),
    Udp,
}

impl ConnState {
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
        }
    }

    const UDP_CODE: u64 = 0xff;

    fn code(self) -> u64 {
        match self {
            ConnState::Tcp(s) => s as u64,
            ConnState::Udp => Self::UDP_CODE,
        }
    }

    fn from_code(c: u64) -> Self {
        if c == Self::UDP_CODE {
            ConnState::Udp
        } else {
            ConnState::Tcp(TcpState::from_u8(c as u8))
        }
    }
}

/// A connection or persistence template, as a worker reports it and the
/// listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conn {
    /// IP protocol (6, 17; 0 for a fwmark template).
    pub proto: u8,
    pub template: bool,
    #[serde(serialize_with = "by_name_state")]
    pub state: ConnState,
    /// Seconds until expiry.
    pub expires_in: u32,
    pub client: SocketAddr,
    pub virt: SocketAddr,
    pub dest: SocketAddr,
    /// FULLNAT local address and port.
    pub local: Option<SocketAddr>,
    #[serde(rename = "forward", serialize_with = "by_name_fwd")]
    pub fwd: Fwd,
    pub svc: u32,
}

fn by_name_state<S: Serializer>(s: &ConnState, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.name())
}

fn by_name_fwd<S: Serializer>(f: &Fwd, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(f.name())
}

fn put_addr(w: &mut [u64], a: IpAddr) {
    let b = match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    };
    let (hi, lo) = b.split_at(8);
    w[0] = u64::from_le_bytes(hi.try_into().unwrap_or_default());
    w[1] = u64::from_le_bytes(lo.try_into().unwrap_or_default());
}

fn get_addr(w: &[u64]) -> IpAddr {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&w[0].to_le_bytes());
    b[8..].copy_from_slice(&w[1].to_le_bytes());
    let v6 = Ipv6Addr::from(b);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

const FWD_CODES: [Fwd; 4] = [Fwd::Dr, Fwd::Tun, Fwd::Nat, Fwd::FullNat];

impl Conn {
    /// As a dump record (no allocation: the worker's side).
    pub fn encode(&self) -> [u64; REC_WORDS] {
        let mut w = [0u64; REC_WORDS];
        let fwd = FWD_CODES.iter().position(|&f| f == self.fwd).unwrap_or(0) as u64;
        w[0] = u64::from(self.proto)
            | u64::from(self.template) << 8
            | fwd << 16
            | u64::from(self.local.is_some()) << 24
            | u64::from(self.expires_in) << 32;
        w[1] = u64::from(self.svc) | self.state.code() << 32;
        put_addr(&mut w[2..4], self.client.ip());
        put_addr(&mut w[4..6], self.virt.ip());
        put_addr(&mut w[6..8], self.dest.ip());
        let local = self.local.unwrap_or(SocketAddr::new(self.client.ip(), 0));
        put_addr(&mut w[8..10], local.ip());
        w[10] = u64::from(self.client.port())
            | u64::from(self.virt.port()) << 16
            | u64::from(self.dest.port()) << 32
            | u64::from(local.port()) << 48;
        w
    }

    /// From a dump record (the reader's side; any bits decode to something).
    pub fn decode(w: &[u64; REC_WORDS]) -> Conn {
        let port = |k: u32| (w[10] >> k) as u16;
        Conn {
            proto: w[0] as u8,
            template: (w[0] >> 8) & 1 == 1,
            state: ConnState::from_code((w[1] >> 32) & 0xff),
            expires_in: (w[0] >> 32) as u32,
            client: SocketAddr::new(get_addr(&w[2..4]), port(0)),
            virt: SocketAddr::new(get_addr(&w[4..6]), port(16)),
            dest: SocketAddr::new(get_addr(&w[6..8]), port(32)),
            local: ((w[0] >> 24) & 1 == 1).then(|| SocketAddr::new(get_addr(&w[8..10]), port(48))),
            fwd: FWD_CODES[((w[0] >> 16) & 3) as usize],
            svc: w[1] as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_records_round_trip() {
        let s = Conn {
            proto: 6,
            template: false,
            state: ConnState::Tcp(TcpState::Established),
            expires_in: 899,
            client: "198.18.0.100:40000".parse().unwrap(),
            virt: "198.18.0.10:80".parse().unwrap(),
            dest: "198.19.0.11:8080".parse().unwrap(),
            local: Some("198.19.0.250:5001".parse().unwrap()),
            fwd: Fwd::FullNat,
            svc: 3,
        };
        assert_eq!(Conn::decode(&s.encode()), s);
        let v6 = Conn {
            client: "[2001:db8::100]:1".parse().unwrap(),
            virt: "[2001:db8::10]:443".parse().unwrap(),
            dest: "[2001:db8:1::11]:443".parse().unwrap(),
            local: None,
            fwd: Fwd::Dr,
            state: ConnState::Tcp(TcpState::FinWait),
            ..s.clone()
        };
        assert_eq!(Conn::decode(&v6.encode()), v6);
        let udp = Conn { proto: 17, state: ConnState::Udp, ..v6 };
        let back = Conn::decode(&udp.encode());
        assert_eq!((back.state.name(), back), ("UDP", udp));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!((json["state"].as_str(), json["forward"].as_str()), (Some("ESTABLISHED"), Some("FullNat")));
    }

    #[test]
    fn requests_round_trip() {
        let r = Request::Command(Command::SetTimeouts(1, 2, 3));
        assert_eq!(Request::decode(&r.encode()), Ok(r));
        assert!(Request::decode(b"{\"Bogus\":1}").unwrap_err().starts_with("malformed request"));
    }
}

// ---- BGP announcements (blob `BLOB_BGP`) ----

/// What the announcer tells BIRD, and why (`xdpvsadm -L --bgp`, metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpView {
    /// BIRD's control socket.
    pub socket: String,
    /// The director can serve (workers fresh, configuration loaded, not
    /// drained, not stopping); `reason` says why not.
    pub healthy: bool,
    pub reason: String,
    pub drained: bool,
    pub protocols: Vec<ProtocolView>,
    /// Commands BIRD refused or could not be sent (socket errors).
    pub errors: u64,
    /// The last error, as BIRD or the socket said it.
    pub last_error: Option<String>,
}

/// One static protocol of BIRD's that xdpvs enables and disables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolView {
    pub name: String,
    /// "vips": announced while the director can serve its VIPs;
    /// "laddrs": announced while xdpvs runs (its FULLNAT local addresses).
    pub kind: String,
    /// The VIPs whose servers it waits on (vips kind; empty: every VIP).
    pub vips: Vec<IpAddr>,
    /// What xdpvs wants, and what BIRD last confirmed.
    pub want: bool,
    pub announced: bool,
    /// Why it is withdrawn, when it is.
    pub reason: String,
    /// Times BIRD enabled and disabled it at xdpvs's word.
    pub announcements: u64,
    pub withdrawals: u64,
}

// ---- connection sync (blob `BLOB_SYNC`) ----

/// What the sync thread publishes: its daemons (with the message length
/// each uses) and its counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    pub master: Option<DaemonView>,
    pub backup: Option<DaemonView>,
    pub stats: SyncStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonView {
    pub spec: crate::sync::DaemonSpec,
    pub maxlen: u16,
    /// Why it cannot run, if it cannot (its socket failed): said once, retried.
    pub error: Option<String>,
}

/// The sync thread's counters; the workers' own (records queued, ring
/// full, installed, refused) are per core in their counter arrays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStats {
    pub sent_datagrams: u64,
    pub sent_records: u64,
    pub sent_bytes: u64,
    pub send_errors: u64,
    pub received_datagrams: u64,
    pub received_records: u64,
    /// Datagrams dropped whole, by `sync::BadMessage` name.
    pub bad_datagrams: Vec<(String, u64)>,
    /// Records skipped, by `sync::BadRecord` name.
    pub bad_records: Vec<(String, u64)>,
    /// Records for a core whose inbox was full.
    pub core_inbox_full: u64,
    pub bulk_requests_sent: u64,
    pub bulk_requests_received: u64,
}

// ---- xdpvs-checker's status file ----

/// Where `xdpvs-checker --instance NAME` writes its status.
pub fn check_status_path(instance: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/dev/shm/xdpvs-checker-{instance}.json"))
}

/// One checker's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    /// `[198.18.0.10]:tcp:80`.
    pub virtual_server: String,
    /// `[198.19.0.11]:tcp:8080`.
    pub real_server: String,
    /// `TCP_CHECK`, `HTTP_GET`, …
    pub check: String,
    /// "up", "down", or "unknown" before the first verdict.
    pub state: String,
    /// Seconds since the epoch of the last change of state.
    pub since: u64,
    pub failures_in_row: u32,
    /// "ok" or the failure's log line.
    pub last: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub pid: u32,
    pub config: String,
    pub written: u64,
    pub checks: Vec<CheckRow>,
}
