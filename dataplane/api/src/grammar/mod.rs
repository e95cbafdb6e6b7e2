//! ipvsadm's command-line grammar (ipvsadm 1.31, plus DPVS's FULLNAT and
//! local-address options and our `--json`, `--instance`, `--match`).
//!
//! Short options may be bundled (`-Ln`, `-lcn`); an option that takes a value
//! takes the rest of its bundle or the next word (`-s wrr`, `-swrr`); long
//! options take `--opt value` or `--opt=value`. `-p` takes an optional
//! timeout. `-b` is `--sched-flags` with `-A`/`-E` and `--fullnat` with
//! `-a`/`-e`, as in DPVS.
//!
//! `words` splits the command line, `values` parses each option's value,
//! and [`parse`] gathers them and builds the [`Action`].

mod values;
mod words;

use crate::admin::Command;
use crate::config::{DestSpec, Fwd, Match, Proto, ProxyProtocol, SchedKind, ServiceKey, ServiceSpec, MAX_WEIGHT};
use crate::state::Timeouts;
use crate::sync::{DaemonSpec, Role};
use std::net::IpAddr;
use values::{addr_port, number, parse_match, parse_netmask, parse_sched_flags};
use words::{allowed, tokenize, Cmd, Occ, Words};

/// What was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Admin(Command),
    List(ListOpts),
    Save,
    Restore,
    Zero(Option<ServiceKey>),
    /// `-G`: a service's local addresses.
    Laddrs(ServiceKey),
    /// `--check`: apply `-R` input to a scratch configuration, offline.
    Check,
    Help,
    Version,
}

/// `-L` modifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOpts {
    pub service: Option<ServiceKey>,
    pub connections: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub timeout: bool,
    pub exact: bool,
    pub sort: bool,
    /// Our addition: per-core counters and drops by reason.
    pub cores: bool,
    /// `--daemon`: the sync daemons.
    pub daemon: bool,
    /// `--bgp`: the BGP announcements (through BIRD) and why.
    pub bgp: bool,
}

/// A whole invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub action: Action,
    pub numeric: bool,
    pub json: bool,
    pub instance: String,
}

/// A command-line error, worded as ipvsadm words it where it has a word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no command specified")]
    NoCommand,
    #[error("multiple commands specified")]
    MultipleCommands,
    #[error("multiple service types specified")]
    MultipleServiceTypes,
    #[error("Illegal '{0}' option with the '{1}' command")]
    IllegalOption(String, &'static str),
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    #[error("option '{0}' requires a value")]
    MissingValue(String),
    #[error("unexpected argument '{0}'")]
    Unexpected(String),
    #[error("illegal virtual server address[:port] specified: '{0}'")]
    BadServiceAddress(String),
    #[error("illegal real server address[:port] specified: '{0}'")]
    BadRealServer(String),
    #[error("illegal virtual service fwmark specified: '{0}'")]
    BadFwmark(String),
    #[error("Scheduler not found: '{0}'")]
    BadScheduler(String),
    #[error("illegal scheduling flags: '{0}'")]
    BadSchedFlags(String),
    #[error("illegal timeout for persistent service: '{0}'")]
    BadPersistTimeout(String),
    #[error("illegal virtual server netmask specified: '{0}'")]
    BadNetmask(String),
    #[error("illegal weight specified: '{0}' (0-{MAX_WEIGHT})")]
    BadWeight(String),
    #[error("illegal u_threshold specified: '{0}'")]
    BadUThreshold(String),
    #[error("illegal l_threshold specified: '{0}'")]
    BadLThreshold(String),
    #[error("illegal local address specified: '{0}'")]
    BadLaddr(String),
    #[error("illegal --set timeout value: '{0}'")]
    BadTimeout(String),
    #[error("--set needs three values: tcp tcpfin udp")]
    SetNeedsThree,
    #[error("illegal --match '{0}': expected PROTO:ADDR:PORT[,PORT...], e.g. tcp:198.18.0.10:80,443")]
    BadMatch(String),
    #[error("--match is for fwmark (-f) services")]
    MatchWithoutFwmark,
    #[error("{0} needs a service (-t, -u or -f)")]
    NeedsService(&'static str),
    #[error("{0} needs a real server (-r)")]
    NeedsRealServer(&'static str),
    #[error("{0} needs a local address (-z)")]
    NeedsLaddr(&'static str),
    #[error("Zero port specified for non-persistent service")]
    ZeroPort,
    #[error("address family of the real server does not match the service")]
    FamilyMismatch,
    #[error("SCTP services are not supported")]
    Sctp,
    #[error("illegal start-daemon parameter specified: '{0}' (master or backup)")]
    BadDaemonRole(String),
    #[error("illegal syncid specified: '{0}' (0-255)")]
    BadSyncid(String),
    #[error("illegal sync-maxlen specified: '{0}' (256-65507)")]
    BadSyncMaxlen(String),
    #[error("invalid mcast-group '{0}': an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast group")]
    BadMcastGroup(String),
    #[error("illegal mcast-port specified: '{0}' (1-65535)")]
    BadMcastPort(String),
    #[error("illegal mcast-ttl specified: '{0}' (1-255)")]
    BadMcastTtl(String),
    #[error(
        "invalid interface name '{0}': 1 to 15 characters, none of '/', ':' or white space, not starting with '-'"
    )]
    BadIfname(String),
    #[error("--start-daemon needs --mcast-interface IF")]
    NeedsMcastInterface,
    #[error("tunnel type '{0}' is not supported: xdpvs tunnels in IPIP (IPv6-in-IPv6 for IPv6), --tun-type ipip")]
    TunnelType(String),
    #[error("{0} is for GUE tunnels, which xdpvs does not build (--tun-type ipip)")]
    TunnelOption(String),
    #[error("One-Packet Scheduling is only for UDP virtual services")]
    OnePacketNotUdp,
    #[error("illegal --proxy-protocol '{0}': v1 or v2")]
    BadProxyProtocol(String),
    #[error("illegal --synproxy '{0}': the syn proxy switch is enable or disable")]
    BadSynproxy(String),
    #[error("persistence engine '{0}' is not supported: persistence (-p) is by client address and netmask (-M)")]
    PersistenceEngine(String),
}

/// Every option's value, gathered from the words before the command is built.
struct Gathered {
    inv: Invocation,
    svc: Option<ServiceKey>,
    v6: bool,
    sched: Option<SchedKind>,
    flags: u8,
    persistent: Option<u32>,
    netmask: Option<String>,
    matches: Vec<Match>,
    ops: bool,
    proxy_protocol: Option<ProxyProtocol>,
    toa: bool,
    synproxy: bool,
    server: Option<(IpAddr, Option<u16>)>,
    fwd: Option<Fwd>,
    weight: u32,
    upper: u32,
    lower: u32,
    laddr: Option<IpAddr>,
    ifname: Option<String>,
    list: ListOpts,
    daemon: DaemonWords,
}

impl Default for Gathered {
    fn default() -> Self {
        Self {
            inv: Invocation { action: Action::Help, numeric: false, json: false, instance: "default".into() },
            svc: None,
            v6: false,
            sched: None,
            flags: 0,
            persistent: None,
            netmask: None,
            matches: Vec::new(),
            ops: false,
            proxy_protocol: None,
            toa: false,
            synproxy: false,
            server: None,
            fwd: None,
            weight: 1,
            upper: 0,
            lower: 0,
            laddr: None,
            ifname: None,
            list: ListOpts { sort: true, ..ListOpts::default() },
            daemon: DaemonWords::default(),
        }
    }
}

/// An interface name as the kernel takes it (1-15 bytes, no '/', ':' or
/// white space), not starting with '-' (it would read as an option when
/// `-S` text is read back).
fn iface_name(v: &str) -> Option<String> {
    let ok = !v.is_empty()
        && v.len() < 16
        && !v.starts_with('-')
        && v.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    ok.then(|| v.to_string())
}

/// DPVS's switch words for `-j` (it compares prefixes: `enable`,
/// `disable`; anything else is refused here).
fn on_off(v: &str) -> Option<bool> {
    match v {
        "enable" => Some(true),
        "disable" => Some(false),
        _ => None,
    }
}

/// `value` parsed by `f`, or the error `e` naming it.
fn valued<T>(value: &str, f: impl FnOnce(&str) -> Option<T>, e: fn(String) -> ParseError) -> Result<T, ParseError> {
    f(value).ok_or_else(|| e(value.to_string()))
}

impl Gathered {
    /// Takes one option (already checked to be allowed with the command).
    fn take(&mut self, o: &Occ) -> Result<(), ParseError> {
        let v = o.value.as_deref().unwrap_or_default();
        if self.take_service(o, v)? || self.take_server(o, v)? || self.take_list(o.name) {
            return Ok(());
        }
        match o.name {
            "numeric" => self.inv.numeric = true,
            "json" => self.inv.json = true,
            "instance" => self.inv.instance = v.to_string(),
            "laddr" => self.laddr = Some(valued(v, |v| v.parse().ok(), ParseError::BadLaddr)?),
            "ifname" => self.ifname = Some(valued(v, iface_name, ParseError::BadIfname)?),
            "start-daemon" | "stop-daemon" => self.daemon.role = Some(v.to_string()),
            "mcast-interface" => self.daemon.iface = Some(valued(v, iface_name, ParseError::BadIfname)?),
            "syncid" => self.daemon.syncid = Some(v.to_string()),
            "sync-maxlen" => self.daemon.maxlen = Some(v.to_string()),
            "mcast-group" => self.daemon.group = Some(v.to_string()),
            "mcast-port" => self.daemon.port = Some(v.to_string()),
            "mcast-ttl" => self.daemon.ttl = Some(v.to_string()),
            _ => return Err(ParseError::UnknownOption(o.shown.clone())),
        }
        Ok(())
    }

    /// The service and what `-A`/`-E` say about it.
    fn take_service(&mut self, o: &Occ, v: &str) -> Result<bool, ParseError> {
        match o.name {
            "tcp-service" | "udp-service" | "fwmark-service" if self.svc.is_some() => {
                return Err(ParseError::MultipleServiceTypes)
            }
            "tcp-service" | "udp-service" => {
                let (addr, port) = valued(v, addr_port, ParseError::BadServiceAddress)?;
                let proto = if o.name == "tcp-service" { Proto::Tcp } else { Proto::Udp };
                self.svc = Some(ServiceKey::Addr(Match { proto, addr, port: port.unwrap_or(0) }));
            }
            "fwmark-service" => {
                let mark = valued(v, |v| number(v, 1u32, u32::MAX), ParseError::BadFwmark)?;
                self.svc = Some(ServiceKey::Fwmark { mark, v6: false });
            }
            "sctp-service" => return Err(ParseError::Sctp),
            "ipv6" => self.v6 = true,
            "scheduler" => self.sched = Some(valued(v, |v| SchedKind::from_name(v).ok(), ParseError::BadScheduler)?),
            "persistent" => {
                let t = o
                    .value
                    .as_deref()
                    .map(|t| valued(t, |t| number(t, 1u32, i32::MAX as u32), ParseError::BadPersistTimeout));
                self.persistent = Some(t.transpose()?.unwrap_or(300));
            }
            "netmask" => self.netmask = Some(v.to_string()),
            "sched-flags" => self.flags = valued(v, parse_sched_flags, ParseError::BadSchedFlags)?,
            "ops" => self.ops = true,
            "proxy-protocol" => {
                self.proxy_protocol = Some(valued(v, ProxyProtocol::from_name, ParseError::BadProxyProtocol)?)
            }
            "toa" => self.toa = true,
            "synproxy" => self.synproxy = valued(v, on_off, ParseError::BadSynproxy)?,
            "match" => self.matches.extend(valued(v, parse_match, ParseError::BadMatch)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The real server and what `-a`/`-e` say about it.
    fn take_server(&mut self, o: &Occ, v: &str) -> Result<bool, ParseError> {
        let threshold = |v: &str| number(v, 0, i32::MAX as u32);
        match o.name {
            "real-server" => self.server = Some(valued(v, addr_port, ParseError::BadRealServer)?),
            "gatewaying" => self.fwd = Some(Fwd::Dr),
            "ipip" => self.fwd = Some(Fwd::Tun),
            "masquerading" => self.fwd = Some(Fwd::Nat),
            "fullnat" => self.fwd = Some(Fwd::FullNat),
            "weight" => self.weight = valued(v, |v| number(v, 0, MAX_WEIGHT), ParseError::BadWeight)?,
            "u-threshold" => self.upper = valued(v, threshold, ParseError::BadUThreshold)?,
            "l-threshold" => self.lower = valued(v, threshold, ParseError::BadLThreshold)?,
            // ipvsadm 1.31's tunnel options: IPIP is what -i builds.
            "tun-type" if v.eq_ignore_ascii_case("ipip") => {}
            "tun-type" => return Err(ParseError::TunnelType(v.to_string())),
            "tun-port" | "tun-nocsum" | "tun-csum" | "tun-remcsum" => {
                return Err(ParseError::TunnelOption(o.shown.clone()))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `-L`'s modifiers.
    fn take_list(&mut self, name: &str) -> bool {
        let l = &mut self.list;
        match name {
            "connection" => l.connections = true,
            "stats" => l.stats = true,
            "rate" => l.rate = true,
            "thresholds" => l.thresholds = true,
            "persistent-conn" => l.persistent_conn = true,
            "timeout" => l.timeout = true,
            "exact" => l.exact = true,
            "sort" => l.sort = true,
            "nosort" => l.sort = false,
            "cores" => l.cores = true,
            "daemon" => l.daemon = true,
            "bgp" => l.bgp = true,
            _ => return false,
        }
        true
    }

    fn need_svc(&self, cmd: Cmd) -> Result<ServiceKey, ParseError> {
        self.svc.ok_or(ParseError::NeedsService(cmd.name()))
    }

    /// `-A` / `-E`.
    fn service_spec(&mut self, cmd: Cmd) -> Result<ServiceSpec, ParseError> {
        let key = self.need_svc(cmd)?;
        match key {
            ServiceKey::Fwmark { .. } => {}
            ServiceKey::Addr(_) if !self.matches.is_empty() => return Err(ParseError::MatchWithoutFwmark),
            ServiceKey::Addr(m) if m.port == 0 && self.persistent.is_none() => return Err(ParseError::ZeroPort),
            ServiceKey::Addr(m) if self.ops && m.proto != Proto::Udp => return Err(ParseError::OnePacketNotUdp),
            ServiceKey::Addr(_) => {}
        }
        let mut spec = ServiceSpec::new(key, self.sched.unwrap_or(SchedKind::Wlc));
        spec.flags = self.flags;
        spec.persistent = self.persistent;
        spec.netfilter = matches!(key, ServiceKey::Fwmark { .. }) && self.matches.is_empty();
        spec.matches = std::mem::take(&mut self.matches);
        spec.ops = self.ops;
        spec.proxy_protocol = self.proxy_protocol;
        spec.toa = self.toa;
        spec.synproxy = self.synproxy;
        if let Some(t) = self.netmask.take() {
            spec.netmask = parse_netmask(&t, key.is_v6()).ok_or(ParseError::BadNetmask(t))?;
        }
        Ok(spec)
    }

    /// `-a` / `-e` / `-d`.
    fn server_command(&self, cmd: Cmd) -> Result<Command, ParseError> {
        let key = self.need_svc(cmd)?;
        let (addr, port) = self.server.ok_or(ParseError::NeedsRealServer(cmd.name()))?;
        if addr.is_ipv6() != key.is_v6() {
            return Err(ParseError::FamilyMismatch);
        }
        // An omitted real-server port is the service's port (ipvsadm).
        let port = port.unwrap_or(match key {
            ServiceKey::Addr(m) => m.port,
            ServiceKey::Fwmark { .. } => 0,
        });
        let fwd = self.fwd.unwrap_or(Fwd::Dr);
        let d = DestSpec { addr, port, weight: self.weight, fwd, u_threshold: self.upper, l_threshold: self.lower };
        Ok(match cmd {
            Cmd::DelServer => Command::DelDest(key, addr, port),
            Cmd::AddServer => Command::AddDest(key, d),
            _ => Command::EditDest(key, d),
        })
    }

    /// `-P` / `-Q`.
    fn laddr_command(&self, cmd: Cmd) -> Result<Command, ParseError> {
        let key = self.need_svc(cmd)?;
        let a = self.laddr.ok_or(ParseError::NeedsLaddr(cmd.name()))?;
        Ok(if cmd == Cmd::AddLaddr {
            Command::AddLaddr(key, a, self.ifname.clone())
        } else {
            Command::DelLaddr(key, a)
        })
    }

    /// What the command asks, from everything gathered.
    fn action(&mut self, cmd: Cmd, pos: &[String]) -> Result<Action, ParseError> {
        Ok(match cmd {
            Cmd::Help => Action::Help,
            Cmd::Version => Action::Version,
            Cmd::Check => Action::Check,
            Cmd::Clear => Action::Admin(Command::Clear),
            Cmd::Save => Action::Save,
            Cmd::Restore => Action::Restore,
            Cmd::Zero => Action::Zero(self.svc),
            Cmd::List => Action::List(ListOpts { service: self.svc, ..self.list.clone() }),
            Cmd::Set => Action::Admin(set_timeouts(pos)?),
            Cmd::AddService => Action::Admin(Command::AddService(self.service_spec(cmd)?)),
            Cmd::EditService => Action::Admin(Command::EditService(self.service_spec(cmd)?)),
            Cmd::DelService => Action::Admin(Command::DelService(self.need_svc(cmd)?)),
            Cmd::AddServer | Cmd::EditServer | Cmd::DelServer => Action::Admin(self.server_command(cmd)?),
            Cmd::AddLaddr | Cmd::DelLaddr => Action::Admin(self.laddr_command(cmd)?),
            Cmd::GetLaddr => Action::Laddrs(self.need_svc(cmd)?),
            Cmd::StartDaemon => Action::Admin(self.start_daemon()?),
            Cmd::StopDaemon => Action::Admin(Command::StopDaemon(self.role()?)),
            Cmd::Drain => Action::Admin(Command::Drain(true)),
            Cmd::Undrain => Action::Admin(Command::Drain(false)),
        })
    }
}

impl Gathered {
    fn role(&self) -> Result<Role, ParseError> {
        match self.daemon.role.as_deref() {
            Some("master") => Ok(Role::Master),
            Some("backup") => Ok(Role::Backup),
            other => Err(ParseError::BadDaemonRole(other.unwrap_or_default().to_string())),
        }
    }

    /// `--start-daemon master|backup --mcast-interface IF [--syncid N] …`.
    fn start_daemon(&self) -> Result<Command, ParseError> {
        let role = self.role()?;
        let d = &self.daemon;
        let iface = d.iface.clone().ok_or(ParseError::NeedsMcastInterface)?;
        let syncid = match &d.syncid {
            Some(v) => valued(v, |v| number(v, 0u8, u8::MAX), ParseError::BadSyncid)?,
            None => 255,
        };
        let maxlen = d.maxlen.as_deref().map(|v| valued(v, |v| number(v, 256u16, 65507), ParseError::BadSyncMaxlen));
        let group = d
            .group
            .as_deref()
            .map(|v| valued(v, |v| v.parse::<IpAddr>().ok().filter(IpAddr::is_multicast), ParseError::BadMcastGroup));
        let port = d.port.as_deref().map(|v| valued(v, |v| number(v, 1u16, u16::MAX), ParseError::BadMcastPort));
        let ttl = d.ttl.as_deref().map(|v| valued(v, |v| number(v, 1u8, u8::MAX), ParseError::BadMcastTtl));
        Ok(Command::StartDaemon(
            role,
            DaemonSpec {
                iface,
                syncid,
                maxlen: maxlen.transpose()?,
                group: group.transpose()?,
                port: port.transpose()?,
                ttl: ttl.transpose()?,
            },
        ))
    }
}

/// `--start-daemon`'s words, as typed.
#[derive(Debug, Default)]
struct DaemonWords {
    role: Option<String>,
    iface: Option<String>,
    syncid: Option<String>,
    maxlen: Option<String>,
    group: Option<String>,
    port: Option<String>,
    ttl: Option<String>,
}

/// `--set tcp tcpfin udp`.
fn set_timeouts(pos: &[String]) -> Result<Command, ParseError> {
    let [tcp, fin, udp] = pos else { return Err(ParseError::SetNeedsThree) };
    let t = |s: &String| valued(s, |s| number(s, 0u32, Timeouts::MAX_SECS), ParseError::BadTimeout);
    Ok(Command::SetTimeouts(t(tcp)?, t(fin)?, t(udp)?))
}

/// Options refused whatever the command, with the reason.
fn refused(occ: &[Occ]) -> Result<(), ParseError> {
    if let Some(o) = occ.iter().find(|o| o.name == "pe") {
        return Err(ParseError::PersistenceEngine(o.value.clone().unwrap_or_default()));
    }
    Ok(())
}

/// A word of the grammar: long name, short letter, whether it takes a value.
pub type Word = (&'static str, Option<char>, bool);

/// The grammar's words, for documentation (man page, completions): every
/// command and every option.
pub fn vocabulary() -> (Vec<Word>, Vec<Word>) {
    let commands = Cmd::ALL
        .iter()
        .filter(|&&c| !matches!(c, Cmd::StartDaemon | Cmd::StopDaemon))
        .map(|&c| (c.name(), c.short(), false))
        .collect();
    (commands, words::OPTS.to_vec())
}

/// Parses one invocation (the words after the program name).
pub fn parse(args: &[String]) -> Result<Invocation, ParseError> {
    let Words { cmd, occ, pos } = tokenize(args)?;
    refused(&occ)?;
    let cmd = cmd.ok_or(ParseError::NoCommand)?;
    let mut g = Gathered::default();
    for o in &occ {
        if !allowed(cmd, o.name) {
            return Err(ParseError::IllegalOption(o.shown.clone(), cmd.name()));
        }
        g.take(o)?;
    }
    if let Some(ServiceKey::Fwmark { v6, .. }) = g.svc.as_mut() {
        *v6 = g.v6;
    }
    if let Some(p) = pos.first().filter(|_| cmd != Cmd::Set) {
        return Err(ParseError::Unexpected(p.clone()));
    }
    g.inv.action = g.action(cmd, &pos)?;
    Ok(g.inv)
}

/// Parses `-R` input: one command per line (`#` comments and blank lines
/// skipped). Errors carry their 1-based line number.
pub fn parse_rules(text: &str) -> Vec<(usize, Result<Command, ParseError>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| {
            let words: Vec<String> = l.split_whitespace().map(String::from).collect();
            let r = parse(&words).and_then(|inv| match inv.action {
                Action::Admin(c) => Ok(c),
                _ => Err(ParseError::Unexpected(l.trim().to_string())),
            });
            (n + 1, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sched_flags;

    fn p(s: &str) -> Result<Invocation, ParseError> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    fn admin(s: &str) -> Command {
        match p(s).unwrap_or_else(|e| panic!("{s}: {e}")).action {
            Action::Admin(c) => c,
            a => panic!("{s}: not an admin command: {a:?}"),
        }
    }

    fn key(proto: Proto, a: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr(Match { proto, addr: a.parse().unwrap(), port })
    }

    #[test]
    fn add_service_every_option() {
        let Command::AddService(s) = admin("-A -t 198.18.0.10:80 -s sh -b sh-fallback,sh-port -p 600 -M 255.255.255.0")
        else {
            panic!()
        };
        assert_eq!(s.key, key(Proto::Tcp, "198.18.0.10", 80));
        assert_eq!((s.sched, s.flags, s.persistent, s.netmask), (SchedKind::Sh, 3, Some(600), 24));
        // Long forms, = values, defaults (wlc, -p 300).
        let Command::EditService(s) = admin("--edit-service --udp-service=[2001:db8::10]:53 --persistent --netmask 64")
        else {
            panic!()
        };
        assert_eq!(
            (s.key, s.sched, s.persistent, s.netmask),
            (key(Proto::Udp, "2001:db8::10", 53), SchedKind::Wlc, Some(300), 64)
        );
        // -p followed by another option takes no value; bundled -p600.
        let Command::AddService(s) = admin("-A -t 198.18.0.10:0 -p -s rr") else { panic!() };
        assert_eq!((s.persistent, s.sched), (Some(300), SchedKind::Rr));
        let Command::AddService(s) = admin("-A -t 198.18.0.10:0 -p600") else { panic!() };
        assert_eq!(s.persistent, Some(600));
        for k in SchedKind::ALL {
            let Command::AddService(s) = admin(&format!("-A -t 198.18.0.10:80 -s {}", k.name())) else { panic!() };
            assert_eq!(s.sched, k);
        }
        let Command::AddService(s) = admin("-A -t 198.18.0.10:80 -s mh -b mh-port,flag-3") else { panic!() };
        assert_eq!(s.flags, sched_flags::PORT | sched_flags::FLAG3);
    }

    #[test]
    fn real_servers_every_method_and_default_port() {
        let svc = key(Proto::Tcp, "198.18.0.10", 80);
        let cases = [("-g", Fwd::Dr), ("-i", Fwd::Tun), ("-m", Fwd::Nat), ("-b", Fwd::FullNat), ("", Fwd::Dr)];
        for (flag, fwd) in cases {
            let Command::AddDest(k, d) =
                admin(&format!("-a -t 198.18.0.10:80 -r 198.19.0.11 {flag} -w 7 -x 100 -y 50"))
            else {
                panic!()
            };
            assert_eq!(k, svc);
            assert_eq!((d.port, d.fwd, d.weight, d.u_threshold, d.l_threshold), (80, fwd, 7, 100, 50), "{flag}");
        }
        let Command::EditDest(_, d) = admin("-e -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 0") else { panic!() };
        assert_eq!((d.port, d.weight), (8080, 0));
        assert_eq!(
            admin("-d -t 198.18.0.10:80 -r 198.19.0.11:8080"),
            Command::DelDest(svc, "198.19.0.11".parse().unwrap(), 8080)
        );
        let Command::AddDest(_, d) = admin("-a -u [2001:db8::10]:53 -r [2001:db8:1::11]:5353 --fullnat") else {
            panic!()
        };
        assert_eq!((d.addr, d.port, d.fwd), ("2001:db8:1::11".parse().unwrap(), 5353, Fwd::FullNat));
    }

    #[test]
    fn fwmark_services_and_matches() {
        let Command::AddService(s) =
            admin("-A -f 7 -6 -s rr -p 60 --match tcp:[2001:db8::10]:80,443 --match udp:[2001:db8::10]:443")
        else {
            panic!()
        };
        assert_eq!(s.key, ServiceKey::Fwmark { mark: 7, v6: true });
        assert_eq!(s.matches.len(), 3);
        // As in ipvsadm scripts: the mark alone; its ports can be named later with -E.
        let Command::AddService(s) = admin("-A -f 7 -s rr") else { panic!() };
        assert!(s.matches.is_empty());
        assert_eq!(p("-A -t 198.18.0.10:80 --match tcp:198.18.0.10:80"), Err(ParseError::MatchWithoutFwmark));
        assert!(matches!(p("-A -f 7 --match sctp:198.18.0.10:80"), Err(ParseError::BadMatch(_))));
        assert!(matches!(p("-A -f 0 --match tcp:198.18.0.10:80"), Err(ParseError::BadFwmark(_))));
        let Command::AddDest(_, d) = admin("-a -f 7 -r 198.19.0.11 -m") else { panic!() };
        assert_eq!(d.port, 0, "fwmark real servers keep the client's port");
    }

    #[test]
    fn listing_and_other_commands() {
        let i = p("-Ln").unwrap();
        assert!(i.numeric);
        assert!(matches!(i.action, Action::List(ListOpts { connections: false, .. })));
        let i = p("-lcn --json --instance edge").unwrap();
        assert!(i.json && i.numeric);
        assert_eq!(i.instance, "edge");
        assert!(matches!(i.action, Action::List(ListOpts { connections: true, .. })));
        for opt in
            ["--stats", "--rate", "--thresholds", "--persistent-conn", "--timeout", "--exact", "--sort", "--nosort"]
        {
            assert!(matches!(p(&format!("-L -n {opt}")).unwrap().action, Action::List(_)), "{opt}");
        }
        let Action::List(l) = p("-L -n -t 198.18.0.10:80 --stats").unwrap().action else { panic!() };
        assert_eq!((l.service, l.stats), (Some(key(Proto::Tcp, "198.18.0.10", 80)), true));
        assert_eq!(p("-S -n").unwrap().action, Action::Save);
        assert_eq!(p("-R").unwrap().action, Action::Restore);
        assert_eq!(p("-C").unwrap().action, Action::Admin(Command::Clear));
        assert_eq!(p("-Z").unwrap().action, Action::Zero(None));
        assert_eq!(p("--set 900 120 300").unwrap().action, Action::Admin(Command::SetTimeouts(900, 120, 300)));
        let lip: IpAddr = "198.19.0.250".parse().unwrap();
        let svc = key(Proto::Tcp, "198.18.0.10", 80);
        assert_eq!(
            admin("-P -t 198.18.0.10:80 -z 198.19.0.250 -F rs0"),
            Command::AddLaddr(svc, lip, Some("rs0".into()))
        );
        assert_eq!(admin("--del-laddr -t 198.18.0.10:80 --laddr 198.19.0.250"), Command::DelLaddr(svc, lip));
        assert_eq!(p("-G -t 198.18.0.10:80").unwrap().action, Action::Laddrs(svc));
        assert_eq!(p("-h").unwrap().action, Action::Help);
        assert_eq!(p("-v").unwrap().action, Action::Version);
        let Command::AddService(s) = admin("-A -u 198.18.0.10:53 -s rr -o") else { panic!() };
        assert!(s.ops, "-o: one-packet scheduling");
        let Command::AddService(s) = admin("-A -u 198.18.0.10:53 -s rr --ops") else { panic!() };
        assert!(s.ops);
        assert_eq!(
            admin("-a -t 198.18.0.10:80 -r 198.19.0.1 -i --tun-type ipip"),
            admin("-a -t 198.18.0.10:80 -r 198.19.0.1 -i")
        );
        assert_eq!(p("--version").unwrap().action, Action::Version);
        let Action::List(l) = p("-LnX --stats").unwrap().action else { panic!() };
        assert!(l.exact && l.stats, "-X is --exact");
    }

    #[test]
    fn sync_daemons_take_ipvsadms_words() {
        use crate::sync::{DaemonSpec, Role};
        let want = Command::StartDaemon(
            Role::Backup,
            DaemonSpec {
                iface: "eth1".into(),
                syncid: 7,
                maxlen: Some(1400),
                group: Some("ff02::81".parse().unwrap()),
                port: Some(8849),
                ttl: Some(2),
            },
        );
        let line = "--start-daemon backup --mcast-interface eth1 --syncid 7 --sync-maxlen 1400 \
                    --mcast-group ff02::81 --mcast-port 8849 --mcast-ttl 2";
        assert_eq!(p(line).unwrap().action, Action::Admin(want));
        let Action::Admin(Command::StartDaemon(Role::Master, d)) =
            p("--start-daemon=master --mcast-interface=eth0").unwrap().action
        else {
            panic!("a master daemon")
        };
        assert_eq!((d.syncid, d.maxlen, d.group, d.port, d.ttl), (255, None, None, None, None), "ipvsadm's defaults");
        assert_eq!(p("--stop-daemon master").unwrap().action, Action::Admin(Command::StopDaemon(Role::Master)));
        assert_eq!(p("--drain").unwrap().action, Action::Admin(Command::Drain(true)));
        assert_eq!(p("--undrain").unwrap().action, Action::Admin(Command::Drain(false)));
        assert!(p("--drain -t 198.18.0.10:80").is_err(), "--drain takes no service");
        assert!(matches!(p("-L --bgp").unwrap().action, Action::List(ListOpts { bgp: true, .. })));
        let Action::List(l) = p("-L --daemon").unwrap().action else { panic!("a listing") };
        assert!(l.daemon);
    }

    #[test]
    fn errors_name_the_bad_input() {
        let cases: &[(&str, ParseError)] = &[
            ("", ParseError::NoCommand),
            ("-n", ParseError::NoCommand),
            ("-A -a -t 198.18.0.10:80", ParseError::MultipleCommands),
            ("-A -t 198.18.0.10:80 -u 198.18.0.10:80", ParseError::MultipleServiceTypes),
            ("-A -t 198.18.0.10:80 -r 198.19.0.1", ParseError::IllegalOption("-r".into(), "add-service")),
            ("-L -w 3", ParseError::IllegalOption("-w".into(), "list")),
            ("-A -t 198.18.0.10:80 --bogus", ParseError::UnknownOption("--bogus".into())),
            ("-A -t", ParseError::MissingValue("-t".into())),
            ("-A -t 198.18.0.300:80", ParseError::BadServiceAddress("198.18.0.300:80".into())),
            ("-A -t 198.18.0.10:99999", ParseError::BadServiceAddress("198.18.0.10:99999".into())),
            ("-A -t [2001:db8::10:80", ParseError::BadServiceAddress("[2001:db8::10:80".into())),
            ("-A -t 198.18.0.10:80 -s fastest", ParseError::BadScheduler("fastest".into())),
            ("-A -t 198.18.0.10:80 -b sh-magic", ParseError::BadSchedFlags("sh-magic".into())),
            ("-A -t 198.18.0.10:80 -p 0", ParseError::BadPersistTimeout("0".into())),
            ("-A -t 198.18.0.10:80 -p 1 -M 255.0.255.0", ParseError::BadNetmask("255.0.255.0".into())),
            ("-A -t 198.18.0.10:80 -p 1 -M 33", ParseError::BadNetmask("33".into())),
            ("-A -t 198.18.0.10:0", ParseError::ZeroPort),
            ("-a -t 198.18.0.10:80 -r 198.19.0.1 -w 65536", ParseError::BadWeight("65536".into())),
            ("-a -t 198.18.0.10:80 -r 198.19.0.1 -w -1", ParseError::BadWeight("-1".into())),
            ("-a -t 198.18.0.10:80 -r 198.19.0.1 -x 2147483648", ParseError::BadUThreshold("2147483648".into())),
            ("-a -t 198.18.0.10:80 -r 198.19.0.1 -y abc", ParseError::BadLThreshold("abc".into())),
            ("-a -t 198.18.0.10:80 -r nothost", ParseError::BadRealServer("nothost".into())),
            ("-a -t 198.18.0.10:80", ParseError::NeedsRealServer("add-server")),
            ("-a -r 198.19.0.1", ParseError::NeedsService("add-server")),
            ("-a -t 198.18.0.10:80 -r 2001:db8::1", ParseError::FamilyMismatch),
            ("-P -t 198.18.0.10:80", ParseError::NeedsLaddr("add-laddr")),
            ("-P -t 198.18.0.10:80 -z 198.19.0.999", ParseError::BadLaddr("198.19.0.999".into())),
            ("--set 900 120", ParseError::SetNeedsThree),
            ("--set 900 120 x", ParseError::BadTimeout("x".into())),
            ("-A --sctp-service 198.18.0.10:80", ParseError::Sctp),
            ("--start-daemon master", ParseError::NeedsMcastInterface),
            ("--start-daemon primary --mcast-interface eth0", ParseError::BadDaemonRole("primary".into())),
            ("--start-daemon master --mcast-interface eth0 --syncid 256", ParseError::BadSyncid("256".into())),
            ("--start-daemon master --mcast-interface eth0 --sync-maxlen 9", ParseError::BadSyncMaxlen("9".into())),
            (
                "--start-daemon master --mcast-interface e --mcast-group 10.0.0.1",
                ParseError::BadMcastGroup("10.0.0.1".into()),
            ),
            ("--start-daemon master --mcast-interface e --mcast-port 0", ParseError::BadMcastPort("0".into())),
            ("--start-daemon master --mcast-interface e --mcast-ttl 0", ParseError::BadMcastTtl("0".into())),
            ("--start-daemon master --mcast-interface a/b", ParseError::BadIfname("a/b".into())),
            ("-P -t 198.18.0.10:80 -z 198.19.0.250 -F-d1", ParseError::BadIfname("-d1".into())),
            (
                "-P -t 198.18.0.10:80 -z 198.19.0.250 -F eth0123456789abc",
                ParseError::BadIfname("eth0123456789abc".into()),
            ),
            ("--stop-daemon both", ParseError::BadDaemonRole("both".into())),
            ("--start-daemon master -L", ParseError::MultipleCommands),
            ("-L --syncid 3", ParseError::IllegalOption("--syncid".into(), "list")),
            ("-a -t 198.18.0.10:80 -r 198.19.0.1 -i --tun-type gue", ParseError::TunnelType("gue".into())),
            ("-a -t 198.18.0.10:80 -r 198.19.0.1 -i --tun-port 6080", ParseError::TunnelOption("--tun-port".into())),
            ("-A -t 198.18.0.10:80 -s rr -o", ParseError::OnePacketNotUdp),
            ("-A -t 198.18.0.10:80 -s rr --proxy-protocol v3", ParseError::BadProxyProtocol("v3".into())),
            ("-A -t 198.18.0.10:80 -s rr -j on", ParseError::BadSynproxy("on".into())),
            ("-a -t 198.18.0.10:80 -r 198.19.0.11 -j enable", ParseError::IllegalOption("-j".into(), "add-server")),
            ("-a -t 198.18.0.10:80 -r 198.19.0.11 --toa", ParseError::IllegalOption("--toa".into(), "add-server")),
            ("-a -u 198.18.0.10:53 -r 198.19.0.1 -o", ParseError::IllegalOption("-o".into(), "add-server")),
            ("-A -t 198.18.0.10:5060 -p --pe sip", ParseError::PersistenceEngine("sip".into())),
            ("-L stray", ParseError::Unexpected("stray".into())),
        ];
        for (line, want) in cases {
            let got = p(line).err();
            assert_eq!(got.as_ref(), Some(want), "{line:?}");
        }
        assert_eq!(ParseError::ZeroPort.to_string(), "Zero port specified for non-persistent service");
    }

    #[test]
    fn rules_report_lines_and_round_trip_through_save() {
        let text =
            "# LVS rules\n\n-A -t 198.18.0.10:80 -s wrr\n-a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 3\n-L -n\n";
        let r = parse_rules(text);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].0, r[1].0, r[2].0), (3, 4, 5));
        assert!(r[2].1.is_err(), "-R accepts configuration commands only");
        let mut cfg = crate::config::Config::default();
        for (_, c) in r.into_iter().take(2) {
            crate::admin::apply(&mut cfg, &c.unwrap()).unwrap();
        }
        let saved = crate::admin::save(&cfg);
        let mut again = crate::config::Config::default();
        for (_, c) in parse_rules(&saved) {
            crate::admin::apply(&mut again, &c.unwrap()).unwrap();
        }
        assert_eq!(crate::admin::save(&again), saved, "-S output restores to the same -S output");
    }
}
