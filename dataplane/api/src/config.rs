//! The configuration model: services, real servers, local addresses,
//! timeouts — with IPVS's semantics and ipvsadm's error texts.
//!
//! Contract: every edit validates first and changes nothing on error, and
//! bumps `generation` on success. The daemon edits a private copy and
//! publishes it whole (with what the packet path derives from it) to every
//! core; clients use the same type offline (`xdpvsadm --check`). Slots
//! (`services`, `dests`, `laddrs`) are stable indexes that sessions keep; a
//! `serial` distinguishes a reused slot from the object a session was bound
//! to; a service's `epoch` changes whenever anything its scheduler depends
//! on changes.

use crate::state::{TcpState, Timeouts};
use crate::sync::{DaemonSpec, Daemons, Role, Timing};
use crate::text::addr_port;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }

    /// As ipvsadm prints it.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }
}

/// Forwarding method, chosen per real server as in ipvsadm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Fwd {
    /// `-g`, gatewaying: rewrite the destination MAC.
    Dr,
    /// `-i`, ipip: encapsulate to the real server.
    Tun,
    /// `-m`, masquerading: DNAT in, SNAT the replies.
    Nat,
    /// `-b` (DPVS): SNAT to a local address + DNAT, both directions.
    FullNat,
}

impl Fwd {
    /// ipvsadm's "Forward" column.
    pub fn name(self) -> &'static str {
        match self {
            Fwd::Dr => "Route",
            Fwd::Tun => "Tunnel",
            Fwd::Nat => "Masq",
            Fwd::FullNat => "FullNat",
        }
    }

    /// ipvsadm's option letter in `-S` output.
    pub fn flag(self) -> &'static str {
        match self {
            Fwd::Dr => "-g",
            Fwd::Tun => "-i",
            Fwd::Nat => "-m",
            Fwd::FullNat => "-b",
        }
    }

    /// Replies pass back through the balancer.
    pub fn two_way(self) -> bool {
        matches!(self, Fwd::Nat | Fwd::FullNat)
    }
}

/// The eleven schedulers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SchedKind {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Mh,
    Fo,
    Ovf,
}

impl SchedKind {
    pub const ALL: [SchedKind; 13] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Dh,
        SchedKind::Sh,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Mh,
        SchedKind::Fo,
        SchedKind::Ovf,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Dh => "dh",
            SchedKind::Sh => "sh",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Mh => "mh",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
        }
    }

    pub fn from_name(s: &str) -> Result<Self, ConfigError> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or(ConfigError::SchedulerNotFound)
    }
}

/// Scheduler flags (`-b`): IPVS's IP_VS_SVC_F_SCHED1..3.
pub mod sched_flags {
    /// sh-fallback / mh-fallback / flag-1.
    pub const FALLBACK: u8 = 1;
    /// sh-port / mh-port / flag-2.
    pub const PORT: u8 = 2;
    /// flag-3.
    pub const FLAG3: u8 = 4;
}

/// One (protocol, address, port) a service answers on; port 0 = all ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Match {
    pub proto: Proto,
    pub addr: IpAddr,
    pub port: u16,
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.proto.name(), addr_port(self.addr, self.port))
    }
}

/// How a service is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServiceKey {
    /// `-t|-u VIP:port` (port 0: every port).
    Addr(Match),
    /// `-f MARK`: a set of [`Match`]es sharing scheduling and persistence.
    Fwmark { mark: u32, v6: bool },
}

impl ServiceKey {
    pub fn is_v6(&self) -> bool {
        match self {
            ServiceKey::Addr(m) => m.addr.is_ipv6(),
            ServiceKey::Fwmark { v6, .. } => *v6,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr(m) => m.fmt(f),
            ServiceKey::Fwmark { mark, v6 } => {
                write!(f, "FWM {mark}{}", if *v6 { " IPv6" } else { "" })
            }
        }
    }
}

/// What `-A`/`-E` say about a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    pub sched: SchedKind,
    pub flags: u8,
    /// `-p [timeout]` in seconds.
    pub persistent: Option<u32>,
    /// `-M`: persistence granularity as a prefix length (v4 255.255.255.0 = 24).
    pub netmask: u8,
    /// For fwmark services: the matches the mark covers.
    pub matches: Vec<Match>,
    /// `-o`: one-packet scheduling (UDP): every datagram is scheduled on its
    /// own, as IPVS's IP_VS_SVC_F_ONEPACKET.
    pub ops: bool,
    /// `--proxy-protocol v1|v2` (FULLNAT): the client's address, in a PROXY
    /// protocol header in front of each connection's data.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// `--toa` (FULLNAT, TCP): the client's address in a TCP option (kind
    /// 254) on each connection's first ACK.
    #[serde(default)]
    pub toa: bool,
    /// `-j enable|disable` / `--synproxy enable|disable` (TCP, NAT and
    /// FULLNAT): the director answers each SYN itself with a syncookie and
    /// opens the connection to a real server only on the client's valid
    /// ACK, as DPVS's IP_VS_SVC_F_SYNPROXY.
    #[serde(default)]
    pub synproxy: bool,
    /// An fwmark service created without `--match`: its matches follow the
    /// netfilter MARK rules that set its mark (the daemon reads them), as
    /// IPVS's fwmark services follow `iptables -j MARK`.
    #[serde(default)]
    pub netfilter: bool,
}

impl ServiceSpec {
    pub fn new(key: ServiceKey, sched: SchedKind) -> Self {
        let netmask = if key.is_v6() { 128 } else { 32 };
        Self {
            key,
            sched,
            flags: 0,
            persistent: None,
            netmask,
            matches: Vec::new(),
            ops: false,
            proxy_protocol: None,
            toa: false,
            synproxy: false,
            netfilter: false,
        }
    }

    /// The protocols the service serves (an fwmark service: its matches').
    pub fn protos(&self) -> impl Iterator<Item = Proto> + '_ {
        let own = match self.key {
            ServiceKey::Addr(m) => Some(m.proto),
            ServiceKey::Fwmark { .. } => None,
        };
        own.into_iter().chain(self.matches.iter().map(|m| m.proto))
    }

    /// What of the client's address the service hands its real servers
    /// (`--proxy-protocol`, `--toa`), as the options say it; `None`: nothing.
    pub fn client_address_option(&self) -> Option<&'static str> {
        match (self.proxy_protocol, self.toa) {
            (Some(_), _) => Some("--proxy-protocol"),
            (None, true) => Some("--toa"),
            (None, false) => None,
        }
    }
}

/// A forwarding method as messages name it: `Route (-g)`.
fn fwd_text(f: Fwd) -> String {
    format!("{} ({})", f.name(), f.flag())
}

/// PROXY protocol version (haproxy's `proxy-protocol.txt`): v1 is a text
/// line (TCP only), v2 a binary header (TCP and UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProxyProtocol {
    V1,
    V2,
}

impl ProxyProtocol {
    /// As `--proxy-protocol` takes it.
    pub fn name(self) -> &'static str {
        match self {
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "v1" | "1" => Some(ProxyProtocol::V1),
            "v2" | "2" => Some(ProxyProtocol::V2),
            _ => None,
        }
    }
}

/// What `-a`/`-e` say about a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSpec {
    pub addr: IpAddr,
    /// 0: the port the client asked for.
    pub port: u16,
    pub weight: u32,
    pub fwd: Fwd,
    /// `-x`: 0 = no limit.
    pub u_threshold: u32,
    /// `-y`.
    pub l_threshold: u32,
}

/// Largest weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;

/// A configured service.
#[derive(Debug, Clone)]
pub struct Service {
    pub spec: ServiceSpec,
    pub serial: u32,
    /// Bumped whenever anything a scheduler depends on changes.
    pub epoch: u32,
    /// Destination slots, in IPVS list order (newest first).
    pub dests: Vec<u32>,
    /// Local-address slots (FULLNAT).
    pub laddrs: Vec<u32>,
}

impl Service {
    /// Every match of this service (one for an address service).
    pub fn matches(&self) -> impl Iterator<Item = Match> + '_ {
        let own = match self.spec.key {
            ServiceKey::Addr(m) => Some(m),
            ServiceKey::Fwmark { .. } => None,
        };
        own.into_iter().chain(self.spec.matches.iter().copied())
    }
}

/// A configured real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    pub spec: DestSpec,
    pub serial: u32,
    pub svc: u32,
}

/// A FULLNAT local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Laddr {
    pub addr: IpAddr,
    pub iface: Option<String>,
    pub serial: u32,
    /// Services using it.
    pub users: u32,
}

/// Runtime switches (IPVS sysctls of the same names where they exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Sessions of a removed real server end at their next packet.
    pub expire_nodest_conn: bool,
    /// A persistence template to a weight-0 server is not reused, so a
    /// quiesced server gets no new connections at all (IPVS default: off;
    /// ours: on, because draining is what weight 0 is for).
    pub expire_quiescent_template: bool,
    /// Schedule TCP flows on any segment, not only on SYN.
    pub sloppy_tcp: bool,
    /// Verify the TCP/UDP/ICMP checksum of every received frame that creates
    /// a session, moves a state or is answered by the director; an
    /// established flow's packet, rewritten incrementally, keeps any
    /// corruption for its receiver to find (as IPVS leaves it).
    pub verify_l4_checksum: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self { expire_nodest_conn: true, expire_quiescent_template: true, sloppy_tcp: false, verify_l4_checksum: true }
    }
}

/// Why `a` can be neither a virtual nor a real server's address: the
/// unspecified address, loopback, multicast, IPv4 broadcast and the
/// reserved 0/8 ("this network"), which no packet on a wire comes from or
/// may be sent to.
pub fn martian(a: IpAddr) -> Option<&'static str> {
    match a {
        IpAddr::V4(v) if v.is_unspecified() || v.octets()[0] == 0 => Some("an unspecified address (0.0.0.0/8)"),
        IpAddr::V4(v) if v.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v) if v.is_multicast() => Some("a multicast address"),
        IpAddr::V4(v) if v.is_broadcast() => Some("the broadcast address"),
        IpAddr::V6(v) if v.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(v) if v.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v) if v.is_multicast() => Some("a multicast address"),
        IpAddr::V6(v) if v.to_ipv4_mapped().is_some() => Some("an IPv4-mapped address (use the IPv4 address)"),
        _ => None,
    }
}

/// Errors of configuration edits (ipvsadm's texts where ipvsadm has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Service already exists")]
    ServiceExists,
    #[error("Daemon has already run: a {0} sync daemon is running (--stop-daemon {0} first)")]
    DaemonRunning(&'static str),
    #[error("No daemon is running: there is no {0} sync daemon to stop")]
    NoDaemon(&'static str),
    #[error("the director is {0} already (--drain withdraws its VIPs from BGP, --undrain announces them again)")]
    DrainedAlready(&'static str),
    #[error("this xdpvs announces nothing to drain: start it with --bird-vips NAME (a static protocol of BIRD's announcing the VIPs)")]
    NotAnnouncing,
    #[error("No such service")]
    NoSuchService,
    #[error("Service not defined")]
    ServiceNotDefined,
    #[error("Destination already exists")]
    DestExists,
    #[error("No such destination")]
    NoSuchDest,
    #[error("Scheduler not found")]
    SchedulerNotFound,
    #[error("Local address already exists")]
    LaddrExists,
    #[error("No such local address")]
    NoSuchLaddr,
    #[error("{0} is already served by service {1}")]
    MatchTaken(Match, ServiceKey),
    #[error("address family of {0} does not match the service")]
    FamilyMismatch(IpAddr),
    #[error("illegal weight specified: {0} (0-{MAX_WEIGHT})")]
    BadWeight(u32),
    #[error("lower threshold {0} above upper threshold {1}")]
    BadThresholds(u32, u32),
    #[error("illegal netmask /{0} for this address family")]
    BadNetmask(u8),
    #[error("invalid timeout value {0}")]
    BadTimeout(u32),
    #[error("illegal virtual server address {0}: {1}")]
    BadVip(IpAddr, &'static str),
    #[error("illegal real server address {0}: {1}")]
    BadRealServer(IpAddr, &'static str),
    #[error(
        "illegal real server port 0 for a NAT/FULLNAT server of a service on port {0}: name the port (-r ADDR:PORT)"
    )]
    ZeroDestPort(u16),
    #[error("illegal local address {0}: {1}")]
    BadLaddr(IpAddr, &'static str),
    #[error(
        "{0} needs FULLNAT (-b) real servers, and {1} is {2}: only FULLNAT rewrites the connection on its way to the \
         server (DR and TUN servers answer the client directly; NAT servers see the client's address already)"
    )]
    ClientAddrNeedsFullNat(&'static str, String, String),
    #[error("PROXY protocol v1 is a TCP header: a UDP service takes --proxy-protocol v2")]
    ProxyV1NotTcp,
    #[error("--toa is a TCP option: a UDP service takes --proxy-protocol v2")]
    ToaNotTcp,
    #[error("--synproxy answers TCP handshakes: a UDP service cannot take it (-j disable)")]
    SynproxyNotTcp,
    #[error(
        "--synproxy needs NAT (-m) or FULLNAT (-b) real servers, and {0} is {1}: the director must see the server's \
         SYN-ACK to splice the two handshakes (DR and TUN servers answer the client directly)"
    )]
    SynproxyNeedsNat(String, String),
}

/// The whole configuration snapshot.
#[derive(Debug, Clone)]
pub struct Config {
    pub generation: u64,
    services: Vec<Option<Service>>,
    dests: Vec<Option<Dest>>,
    laddrs: Vec<Option<Laddr>>,
    pub timeouts: Timeouts,
    pub settings: Settings,
    /// The connection sync daemons (`--start-daemon`), and when a master
    /// sends (IPVS's sync_threshold, sync_period, sync_refresh_period).
    pub sync: Daemons,
    pub sync_timing: Timing,
    /// Workers queue sync records even with no master daemon: the daemon
    /// journals them (`--handover`), so a crash loses no connection.
    pub sync_journal: bool,
    /// Drained by hand (`xdpvsadm --drain`): the VIPs' BGP announcements
    /// are withdrawn while the director goes on forwarding what reaches it.
    pub drained: bool,
    /// The daemon drives BIRD (`bird_vips`): `--drain` means something.
    pub announcing: bool,
    /// Other directors' FULLNAT local addresses this one stands by for
    /// (the daemon's `standby_laddrs`): their replies are steered here and
    /// meet the sessions synced from their owner, never new connections.
    pub standby_laddrs: Vec<IpAddr>,
    index: HashMap<Match, u32>,
    laddr_index: HashMap<IpAddr, u32>,
    vips: hashbrown::HashSet<IpAddr>,
    owner_prefix: (u8, u8),
    next_serial: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            generation: 1,
            services: Vec::new(),
            dests: Vec::new(),
            laddrs: Vec::new(),
            timeouts: Timeouts::default(),
            settings: Settings::default(),
            sync: Daemons::default(),
            sync_timing: Timing::default(),
            sync_journal: false,
            drained: false,
            announcing: false,
            standby_laddrs: Vec::new(),
            index: HashMap::new(),
            laddr_index: HashMap::new(),
            vips: hashbrown::HashSet::new(),
            owner_prefix: (32, 128),
            next_serial: 1,
        }
    }
}

impl Config {
    // ---- read side (cores, listings) ----

    #[inline]
    pub fn service(&self, slot: u32) -> Option<&Service> {
        self.services.get(slot as usize)?.as_ref()
    }

    #[inline]
    pub fn dest(&self, slot: u32) -> Option<&Dest> {
        self.dests.get(slot as usize)?.as_ref()
    }

    #[inline]
    pub fn laddr(&self, slot: u32) -> Option<&Laddr> {
        self.laddrs.get(slot as usize)?.as_ref()
    }

    pub fn dest_slots(&self) -> usize {
        self.dests.len()
    }

    pub fn service_slots(&self) -> usize {
        self.services.len()
    }

    pub fn laddr_slots(&self) -> usize {
        self.laddrs.len()
    }

    /// Services in slot order, with their slots.
    pub fn services(&self) -> impl Iterator<Item = (u32, &Service)> {
        self.services.iter().enumerate().filter_map(|(i, s)| Some((i as u32, s.as_ref()?)))
    }

    /// The service answering `proto addr:port`, trying the exact port first and
    /// then a port-0 (all ports) service.
    #[inline]
    pub fn lookup(&self, proto: Proto, addr: IpAddr, port: u16) -> Option<u32> {
        if self.index.is_empty() {
            return None;
        }
        self.index
            .get(&Match { proto, addr, port })
            .or_else(|| self.index.get(&Match { proto, addr, port: 0 }))
            .copied()
    }

    /// The local-address slot of `addr`, if it is one.
    #[inline]
    pub fn laddr_slot(&self, addr: IpAddr) -> Option<u32> {
        if self.laddr_index.is_empty() {
            return None;
        }
        self.laddr_index.get(&addr).copied()
    }

    pub fn find_service(&self, key: &ServiceKey) -> Option<u32> {
        match key {
            // An address service is indexed under its own match.
            ServiceKey::Addr(m) => {
                self.index.get(m).copied().filter(|&i| self.service(i).is_some_and(|s| s.spec.key == *key))
            }
            ServiceKey::Fwmark { .. } => self.services().find(|(_, s)| s.spec.key == *key).map(|(i, _)| i),
        }
    }

    pub fn find_dest(&self, svc: u32, addr: IpAddr, port: u16) -> Option<u32> {
        let s = self.service(svc)?;
        s.dests.iter().copied().find(|&d| self.dest(d).is_some_and(|d| d.spec.addr == addr && d.spec.port == port))
    }

    /// Widest persistence netmask over persistent services (v4, v6): the
    /// ownership function hashes client addresses under it so that every
    /// flow a persistence template covers lands on one core.
    #[inline]
    pub fn owner_prefix(&self) -> (u8, u8) {
        self.owner_prefix
    }

    /// True for an address the balancer answers on (a VIP or a local address).
    pub fn is_local(&self, a: IpAddr) -> bool {
        self.vips.contains(&a) || self.laddr_index.contains_key(&a)
    }

    fn compute_owner_prefix(&self) -> (u8, u8) {
        let mut p = (32u8, 128u8);
        for (_, s) in self.services() {
            if s.spec.persistent.is_some() {
                if s.spec.key.is_v6() {
                    p.1 = p.1.min(s.spec.netmask);
                } else {
                    p.0 = p.0.min(s.spec.netmask);
                }
            }
        }
        p
    }

    // ---- edits ----

    fn serial(&mut self) -> u32 {
        let s = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1).max(1);
        s
    }

    fn touched(&mut self) {
        self.generation += 1;
    }

    fn check_service_spec(&self, spec: &ServiceSpec, own: Option<u32>) -> Result<(), ConfigError> {
        let max = if spec.key.is_v6() { 128 } else { 32 };
        if spec.netmask == 0 || spec.netmask > max {
            return Err(ConfigError::BadNetmask(spec.netmask));
        }
        self.check_client_address(spec, own)?;
        let own_match = match spec.key {
            ServiceKey::Addr(m) => Some(m),
            ServiceKey::Fwmark { .. } => None,
        };
        for m in own_match.iter().chain(spec.matches.iter()) {
            if m.addr.is_ipv6() != spec.key.is_v6() {
                return Err(ConfigError::FamilyMismatch(m.addr));
            }
            if let Some(why) = martian(m.addr) {
                return Err(ConfigError::BadVip(m.addr, why));
            }
            if let Some(&other) = self.index.get(m) {
                if Some(other) != own {
                    let key = self.service(other).map(|s| s.spec.key).unwrap_or(spec.key);
                    return Err(ConfigError::MatchTaken(*m, key));
                }
            }
        }
        Ok(())
    }

    /// `--proxy-protocol` / `--toa`: for TCP (v2 also UDP), and a service
    /// whose real servers are all FULLNAT.
    fn check_client_address(&self, spec: &ServiceSpec, own: Option<u32>) -> Result<(), ConfigError> {
        let dests = own.and_then(|o| self.service(o)).map(|s| s.dests.as_slice()).unwrap_or_default();
        if spec.synproxy {
            if spec.protos().any(|p| p == Proto::Udp) {
                return Err(ConfigError::SynproxyNotTcp);
            }
            if let Some(d) = dests.iter().filter_map(|&d| self.dest(d)).find(|d| !d.spec.fwd.two_way()) {
                return Err(ConfigError::SynproxyNeedsNat(addr_port(d.spec.addr, d.spec.port), fwd_text(d.spec.fwd)));
            }
        }
        let Some(what) = spec.client_address_option() else { return Ok(()) };
        if spec.protos().any(|p| p == Proto::Udp) {
            if spec.proxy_protocol == Some(ProxyProtocol::V1) {
                return Err(ConfigError::ProxyV1NotTcp);
            }
            if spec.toa {
                return Err(ConfigError::ToaNotTcp);
            }
        }
        for d in dests.iter().filter_map(|&d| self.dest(d)) {
            if d.spec.fwd != Fwd::FullNat {
                return Err(ConfigError::ClientAddrNeedsFullNat(
                    what,
                    addr_port(d.spec.addr, d.spec.port),
                    fwd_text(d.spec.fwd),
                ));
            }
        }
        Ok(())
    }

    /// `-A`.
    pub fn add_service(&mut self, spec: ServiceSpec) -> Result<u32, ConfigError> {
        if self.find_service(&spec.key).is_some() {
            return Err(ConfigError::ServiceExists);
        }
        self.check_service_spec(&spec, None)?;
        let serial = self.serial();
        let svc = Service { spec, serial, epoch: 1, dests: Vec::new(), laddrs: Vec::new() };
        let slot = place(&mut self.services, svc);
        self.index_service(slot);
        self.touched();
        Ok(slot)
    }

    /// Adds a new service's matches to the indexes (what [`Self::reindex`]
    /// would find, without rebuilding them: restoring 10,000 services stays
    /// linear).
    fn index_service(&mut self, slot: u32) {
        let Some(s) = self.service(slot) else { return };
        let matches: Vec<Match> = s.matches().collect();
        let (persistent, netmask, v6) = (s.spec.persistent.is_some(), s.spec.netmask, s.spec.key.is_v6());
        for m in matches {
            self.index.insert(m, slot);
            self.vips.insert(m.addr);
        }
        if persistent {
            let p = if v6 { &mut self.owner_prefix.1 } else { &mut self.owner_prefix.0 };
            *p = (*p).min(netmask);
        }
    }

    /// `-E`: scheduler, flags, persistence, netmask (and fwmark matches).
    pub fn edit_service(&mut self, spec: ServiceSpec) -> Result<(), ConfigError> {
        let slot = self.find_service(&spec.key).ok_or(ConfigError::NoSuchService)?;
        self.check_service_spec(&spec, Some(slot))?;
        let s = self.services[slot as usize].as_mut().expect("found above");
        s.spec = spec;
        s.epoch += 1;
        self.reindex();
        self.touched();
        Ok(())
    }

    /// `-D`.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<(), ConfigError> {
        let slot = self.find_service(key).ok_or(ConfigError::NoSuchService)?;
        let s = self.services[slot as usize].take().expect("found above");
        for d in s.dests {
            self.dests[d as usize] = None;
        }
        for l in s.laddrs {
            self.release_laddr(l);
        }
        self.reindex();
        self.touched();
        Ok(())
    }

    /// `-C`.
    pub fn clear(&mut self) {
        self.services.clear();
        self.dests.clear();
        self.laddrs.clear();
        self.reindex();
        self.touched();
    }

    fn check_dest(&self, svc: &Service, d: &DestSpec) -> Result<(), ConfigError> {
        if d.addr.is_ipv6() != svc.spec.key.is_v6() {
            return Err(ConfigError::FamilyMismatch(d.addr));
        }
        if d.weight > MAX_WEIGHT {
            return Err(ConfigError::BadWeight(d.weight));
        }
        if d.u_threshold != 0 && d.l_threshold > d.u_threshold {
            return Err(ConfigError::BadThresholds(d.l_threshold, d.u_threshold));
        }
        if let Some(why) = martian(d.addr) {
            return Err(ConfigError::BadRealServer(d.addr, why));
        }
        if svc.matches().any(|m| m.addr == d.addr) {
            return Err(ConfigError::BadRealServer(d.addr, "the virtual address itself"));
        }
        let svc_port = match svc.spec.key {
            ServiceKey::Addr(m) => m.port,
            ServiceKey::Fwmark { .. } => 0,
        };
        if d.port == 0 && svc_port != 0 && d.fwd.two_way() {
            return Err(ConfigError::ZeroDestPort(svc_port));
        }
        if svc.spec.synproxy && !d.fwd.two_way() {
            return Err(ConfigError::SynproxyNeedsNat(addr_port(d.addr, d.port), fwd_text(d.fwd)));
        }
        if let Some(what) = svc.spec.client_address_option() {
            if d.fwd != Fwd::FullNat {
                return Err(ConfigError::ClientAddrNeedsFullNat(what, addr_port(d.addr, d.port), fwd_text(d.fwd)));
            }
        }
        Ok(())
    }

    /// `-a`.
    pub fn add_dest(&mut self, key: &ServiceKey, d: DestSpec) -> Result<u32, ConfigError> {
        let svc = self.find_service(key).ok_or(ConfigError::ServiceNotDefined)?;
        if self.find_dest(svc, d.addr, d.port).is_some() {
            return Err(ConfigError::DestExists);
        }
        self.check_dest(self.service(svc).expect("found"), &d)?;
        let serial = self.serial();
        let slot = place(&mut self.dests, Dest { spec: d, serial, svc });
        let s = self.services[svc as usize].as_mut().expect("found");
        s.dests.insert(0, slot);
        s.epoch += 1;
        self.touched();
        Ok(slot)
    }

    /// `-e`.
    pub fn edit_dest(&mut self, key: &ServiceKey, d: DestSpec) -> Result<(), ConfigError> {
        let svc = self.find_service(key).ok_or(ConfigError::ServiceNotDefined)?;
        let slot = self.find_dest(svc, d.addr, d.port).ok_or(ConfigError::NoSuchDest)?;
        self.check_dest(self.service(svc).expect("found"), &d)?;
        self.dests[slot as usize].as_mut().expect("found").spec = d;
        self.services[svc as usize].as_mut().expect("found").epoch += 1;
        self.touched();
        Ok(())
    }

    /// `-d`.
    pub fn del_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), ConfigError> {
        let svc = self.find_service(key).ok_or(ConfigError::ServiceNotDefined)?;
        let slot = self.find_dest(svc, addr, port).ok_or(ConfigError::NoSuchDest)?;
        self.dests[slot as usize] = None;
        let s = self.services[svc as usize].as_mut().expect("found");
        s.dests.retain(|&x| x != slot);
        s.epoch += 1;
        self.touched();
        Ok(())
    }

    /// `-P`: add a FULLNAT local address to a service.
    pub fn add_laddr(&mut self, key: &ServiceKey, addr: IpAddr, iface: Option<String>) -> Result<u32, ConfigError> {
        let svc = self.find_service(key).ok_or(ConfigError::ServiceNotDefined)?;
        if addr.is_ipv6() != key.is_v6() {
            return Err(ConfigError::FamilyMismatch(addr));
        }
        if let Some(why) = martian(addr) {
            return Err(ConfigError::BadLaddr(addr, why));
        }
        let s = self.service(svc).expect("found");
        if s.laddrs.iter().any(|&l| self.laddr(l).is_some_and(|l| l.addr == addr)) {
            return Err(ConfigError::LaddrExists);
        }
        let slot = match self.laddr_index.get(&addr) {
            Some(&l) => {
                self.laddrs[l as usize].as_mut().expect("indexed").users += 1;
                l
            }
            None => {
                let serial = self.serial();
                place(&mut self.laddrs, Laddr { addr, iface, serial, users: 1 })
            }
        };
        let s = self.services[svc as usize].as_mut().expect("found");
        s.laddrs.push(slot);
        s.epoch += 1;
        self.laddr_index.insert(addr, slot);
        self.touched();
        Ok(slot)
    }

    /// `-Q`.
    pub fn del_laddr(&mut self, key: &ServiceKey, addr: IpAddr) -> Result<(), ConfigError> {
        let svc = self.find_service(key).ok_or(ConfigError::ServiceNotDefined)?;
        let s = self.service(svc).expect("found");
        let slot = s
            .laddrs
            .iter()
            .copied()
            .find(|&l| self.laddr(l).is_some_and(|l| l.addr == addr))
            .ok_or(ConfigError::NoSuchLaddr)?;
        let s = self.services[svc as usize].as_mut().expect("found");
        s.laddrs.retain(|&l| l != slot);
        s.epoch += 1;
        self.release_laddr(slot);
        self.reindex();
        self.touched();
        Ok(())
    }

    fn release_laddr(&mut self, slot: u32) {
        if let Some(l) = self.laddrs[slot as usize].as_mut() {
            l.users -= 1;
            if l.users == 0 {
                self.laddrs[slot as usize] = None;
            }
        }
    }

    /// `--set tcp tcpfin udp` (0 leaves a value unchanged).
    pub fn set_timeouts(&mut self, tcp: u32, tcpfin: u32, udp: u32) -> Result<(), ConfigError> {
        for v in [tcp, tcpfin, udp] {
            if v > Timeouts::MAX_SECS {
                return Err(ConfigError::BadTimeout(v));
            }
        }
        if tcp != 0 {
            self.timeouts.tcp[TcpState::Established as usize] = tcp;
        }
        if tcpfin != 0 {
            self.timeouts.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if udp != 0 {
            self.timeouts.udp = udp;
        }
        self.touched();
        Ok(())
    }

    /// `--start-daemon`: one of each role at a time, as IPVS.
    pub fn start_daemon(&mut self, role: Role, d: DaemonSpec) -> Result<(), ConfigError> {
        let slot = self.sync.slot(role);
        if slot.is_some() {
            return Err(ConfigError::DaemonRunning(role.name()));
        }
        *slot = Some(d);
        self.touched();
        Ok(())
    }

    /// Whether workers queue sync records (a master daemon, or the journal).
    #[inline]
    pub fn syncing(&self) -> bool {
        self.sync_journal || self.sync.master.is_some()
    }

    /// `--stop-daemon`.
    pub fn stop_daemon(&mut self, role: Role) -> Result<(), ConfigError> {
        if self.sync.slot(role).take().is_none() {
            return Err(ConfigError::NoDaemon(role.name()));
        }
        self.touched();
        Ok(())
    }

    /// `--drain` (true) and `--undrain`: each says so when already so.
    pub fn set_drained(&mut self, drained: bool) -> Result<(), ConfigError> {
        if !self.announcing {
            return Err(ConfigError::NotAnnouncing);
        }
        if self.drained == drained {
            return Err(ConfigError::DrainedAlready(if drained { "drained" } else { "not drained" }));
        }
        self.drained = drained;
        self.touched();
        Ok(())
    }

    /// A new generation with the same rules: the daemon's view of the
    /// kernel (routes, neighbours) changed and goes out with it.
    pub fn bump_generation(&mut self) {
        self.touched();
    }

    pub fn set_settings(&mut self, s: Settings) {
        self.settings = s;
        self.touched();
    }

    fn reindex(&mut self) {
        let mut index = HashMap::new();
        let mut vips = hashbrown::HashSet::new();
        for (i, s) in self.services() {
            for m in s.matches() {
                index.insert(m, i);
                vips.insert(m.addr);
            }
        }
        self.index = index;
        self.vips = vips;
        self.owner_prefix = self.compute_owner_prefix();
        let mut li = HashMap::new();
        for (i, l) in self.laddrs.iter().enumerate() {
            if let Some(l) = l {
                li.insert(l.addr, i as u32);
            }
        }
        self.laddr_index = li;
    }
}

/// Puts `v` in the first free slot (or a new one) and returns its index.
fn place<T>(v: &mut Vec<Option<T>>, x: T) -> u32 {
    match v.iter().position(Option::is_none) {
        Some(i) => {
            v[i] = Some(x);
            i as u32
        }
        None => {
            v.push(Some(x));
            (v.len() - 1) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ServiceKey {
        let (a, p) = s.rsplit_once(':').unwrap();
        ServiceKey::Addr(Match { proto: Proto::Tcp, addr: a.parse().unwrap(), port: p.parse().unwrap() })
    }

    fn dest(a: &str, w: u32) -> DestSpec {
        DestSpec { addr: a.parse().unwrap(), port: 80, weight: w, fwd: Fwd::Nat, u_threshold: 0, l_threshold: 0 }
    }

    #[test]
    fn drain_needs_an_announcer_and_says_when_it_is_so_already() {
        let mut c = Config::default();
        assert_eq!(c.set_drained(true), Err(ConfigError::NotAnnouncing));
        c.announcing = true;
        let g = c.generation;
        assert_eq!(c.set_drained(true), Ok(()));
        assert!(c.drained && c.generation > g);
        assert_eq!(c.set_drained(true), Err(ConfigError::DrainedAlready("drained")));
        assert_eq!(c.set_drained(false), Ok(()));
        assert_eq!(c.set_drained(false), Err(ConfigError::DrainedAlready("not drained")));
    }

    #[test]
    fn ipvsadm_errors() {
        let mut c = Config::default();
        let k = key("198.18.0.10:80");
        c.add_service(ServiceSpec::new(k, SchedKind::Wrr)).unwrap();
        assert_eq!(c.add_service(ServiceSpec::new(k, SchedKind::Rr)), Err(ConfigError::ServiceExists));
        assert_eq!(c.add_dest(&key("198.18.0.11:80"), dest("198.19.0.1", 1)), Err(ConfigError::ServiceNotDefined));
        c.add_dest(&k, dest("198.19.0.1", 1)).unwrap();
        assert_eq!(c.add_dest(&k, dest("198.19.0.1", 3)), Err(ConfigError::DestExists));
        assert_eq!(c.edit_dest(&k, dest("198.19.0.2", 3)), Err(ConfigError::NoSuchDest));
        assert_eq!(c.del_dest(&k, "198.19.0.2".parse().unwrap(), 80), Err(ConfigError::NoSuchDest));
        assert_eq!(
            c.add_dest(&k, dest("2001:db8::1", 1)),
            Err(ConfigError::FamilyMismatch("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(c.add_dest(&k, dest("198.19.0.3", 70000)), Err(ConfigError::BadWeight(70000)));
        assert_eq!(c.del_service(&key("198.18.0.99:80")), Err(ConfigError::NoSuchService));
        assert_eq!(SchedKind::from_name("wlcx"), Err(ConfigError::SchedulerNotFound));
        assert_eq!(ConfigError::ServiceNotDefined.to_string(), "Service not defined");
    }

    #[test]
    fn dests_are_newest_first_and_lookup_falls_back_to_port_zero() {
        let mut c = Config::default();
        let k = key("198.18.0.10:0");
        let s = c.add_service(ServiceSpec::new(k, SchedKind::Rr)).unwrap();
        let a = c.add_dest(&k, dest("198.19.0.1", 1)).unwrap();
        let b = c.add_dest(&k, dest("198.19.0.2", 1)).unwrap();
        assert_eq!(c.service(s).unwrap().dests, vec![b, a]);
        assert_eq!(c.lookup(Proto::Tcp, "198.18.0.10".parse().unwrap(), 443), Some(s));
        assert_eq!(c.lookup(Proto::Udp, "198.18.0.10".parse().unwrap(), 443), None);
    }

    #[test]
    fn fwmark_matches_are_exclusive() {
        let mut c = Config::default();
        let vip: IpAddr = "198.18.0.10".parse().unwrap();
        let fwm = ServiceKey::Fwmark { mark: 1, v6: false };
        // A mark alone covers nothing yet; -E names its ports.
        let mut spec = ServiceSpec::new(fwm, SchedKind::Rr);
        let s = c.add_service(spec.clone()).unwrap();
        assert_eq!(c.lookup(Proto::Tcp, vip, 443), None);
        spec.matches =
            vec![Match { proto: Proto::Tcp, addr: vip, port: 80 }, Match { proto: Proto::Tcp, addr: vip, port: 443 }];
        c.edit_service(spec).unwrap();
        assert_eq!(c.lookup(Proto::Tcp, vip, 443), Some(s));

        let err = c.add_service(ServiceSpec::new(key("198.18.0.10:443"), SchedKind::Rr)).unwrap_err();
        assert!(matches!(err, ConfigError::MatchTaken(..)), "{err}");
        // Removing the service frees its matches and its dest slots.
        c.del_service(&ServiceKey::Fwmark { mark: 1, v6: false }).unwrap();
        assert_eq!(c.lookup(Proto::Tcp, vip, 443), None);
    }

    #[test]
    fn slots_are_reused_with_a_new_serial() {
        let mut c = Config::default();
        let k = key("198.18.0.10:80");
        c.add_service(ServiceSpec::new(k, SchedKind::Rr)).unwrap();
        let a = c.add_dest(&k, dest("198.19.0.1", 1)).unwrap();
        let sa = c.dest(a).unwrap().serial;
        c.del_dest(&k, "198.19.0.1".parse().unwrap(), 80).unwrap();
        let b = c.add_dest(&k, dest("198.19.0.2", 1)).unwrap();
        assert_eq!(a, b);
        assert_ne!(c.dest(b).unwrap().serial, sa);
    }

    #[test]
    fn laddrs_shared_between_services() {
        let mut c = Config::default();
        let (k1, k2) = (key("198.18.0.10:80"), key("198.18.0.10:443"));
        c.add_service(ServiceSpec::new(k1, SchedKind::Rr)).unwrap();
        c.add_service(ServiceSpec::new(k2, SchedKind::Rr)).unwrap();
        let lip: IpAddr = "198.19.0.250".parse().unwrap();
        let l1 = c.add_laddr(&k1, lip, None).unwrap();
        assert_eq!(c.add_laddr(&k1, lip, None), Err(ConfigError::LaddrExists));
        let l2 = c.add_laddr(&k2, lip, None).unwrap();
        assert_eq!(l1, l2);
        c.del_laddr(&k1, lip).unwrap();
        assert_eq!(c.laddr_slot(lip), Some(l1));
        c.del_laddr(&k2, lip).unwrap();
        assert_eq!(c.laddr_slot(lip), None);
        assert_eq!(c.del_laddr(&k2, lip), Err(ConfigError::NoSuchLaddr));
    }

    #[test]
    fn martian_addresses_are_refused_naming_the_problem() {
        let mut c = Config::default();
        for vip in ["0.0.0.0:80", "255.255.255.255:80", "224.0.0.1:80", "127.0.0.1:80", "[::1]:80", "[ff02::1]:80"] {
            let (a, p) = vip.rsplit_once(':').unwrap();
            let a: IpAddr = a.trim_matches(|c| c == '[' || c == ']').parse().unwrap();
            let k = ServiceKey::Addr(Match { proto: Proto::Tcp, addr: a, port: p.parse().unwrap() });
            let e = c.add_service(ServiceSpec::new(k, SchedKind::Rr)).unwrap_err();
            assert!(matches!(e, ConfigError::BadVip(..)), "{vip}: {e}");
            assert!(e.to_string().starts_with("illegal virtual server address"), "{e}");
        }
        let k = key("198.18.0.10:80");
        c.add_service(ServiceSpec::new(k, SchedKind::Rr)).unwrap();
        for rs in ["127.0.0.1", "0.0.0.0", "255.255.255.255", "224.0.0.5"] {
            let e = c.add_dest(&k, dest(rs, 1)).unwrap_err();
            assert!(matches!(e, ConfigError::BadRealServer(..)), "{rs}: {e}");
        }
        assert_eq!(
            c.add_dest(&k, dest("198.18.0.10", 1)).unwrap_err().to_string(),
            "illegal real server address 198.18.0.10: the virtual address itself"
        );
        let mut zero = dest("198.19.0.1", 1);
        zero.port = 0;
        assert_eq!(c.add_dest(&k, zero), Err(ConfigError::ZeroDestPort(80)));
        zero.fwd = Fwd::Dr;
        assert!(c.add_dest(&k, zero).is_ok(), "DR forwards to the port the client asked for");
        assert!(matches!(c.add_laddr(&k, "127.0.0.1".parse().unwrap(), None), Err(ConfigError::BadLaddr(..))));
        // A fwmark or port-0 service's NAT server on port 0 keeps the client's port, as in LVS.
        let fwm = ServiceKey::Fwmark { mark: 9, v6: false };
        c.add_service(ServiceSpec::new(fwm, SchedKind::Rr)).unwrap();
        let mut any = dest("198.19.0.2", 1);
        any.port = 0;
        assert!(c.add_dest(&fwm, any).is_ok());
    }
}
