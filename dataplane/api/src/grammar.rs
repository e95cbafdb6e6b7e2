//! ipvsadm's command-line grammar (ipvsadm 1.31, plus DPVS's FULLNAT and
//! local-address options and our `--json`, `--instance`, `--match`).
//!
//! Short options may be bundled (`-Ln`, `-lcn`); an option that takes a value
//! takes the rest of its bundle or the next word (`-s wrr`, `-swrr`); long
//! options take `--opt value` or `--opt=value`. `-p` takes an optional
//! timeout. `-b` is `--sched-flags` with `-A`/`-E` and `--fullnat` with
//! `-a`/`-e`, as in DPVS.

use crate::admin::Command;
use crate::config::{sched_flags, DestSpec, Fwd, Match, Proto, SchedKind, ServiceKey, ServiceSpec, MAX_WEIGHT};
use std::net::{IpAddr, Ipv4Addr};

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
    #[error("connection synchronisation daemons are not supported")]
    SyncDaemon,
    #[error("tunnel type '{0}' is not supported: xdpvs tunnels in IPIP (IPv6-in-IPv6 for IPv6), --tun-type ipip")]
    TunnelType(String),
    #[error("{0} is for GUE tunnels, which xdpvs does not build (--tun-type ipip)")]
    TunnelOption(String),
    #[error("One-Packet Scheduling is only for UDP virtual services")]
    OnePacketNotUdp,
    #[error("persistence engine '{0}' is not supported: persistence (-p) is by client address and netmask (-M)")]
    PersistenceEngine(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    AddService,
    EditService,
    DelService,
    Clear,
    Restore,
    Save,
    AddServer,
    EditServer,
    DelServer,
    List,
    Zero,
    Set,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Check,
    Help,
    Version,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::AddService => "add-service",
            Cmd::EditService => "edit-service",
            Cmd::DelService => "delete-service",
            Cmd::Clear => "clear",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::AddServer => "add-server",
            Cmd::EditServer => "edit-server",
            Cmd::DelServer => "delete-server",
            Cmd::List => "list",
            Cmd::Zero => "zero",
            Cmd::Set => "set",
            Cmd::AddLaddr => "add-laddr",
            Cmd::DelLaddr => "del-laddr",
            Cmd::GetLaddr => "get-laddr",
            Cmd::Check => "check",
            Cmd::Help => "help",
            Cmd::Version => "version",
        }
    }

    fn from_short(c: char) -> Option<Cmd> {
        Some(match c {
            'A' => Cmd::AddService,
            'E' => Cmd::EditService,
            'D' => Cmd::DelService,
            'C' => Cmd::Clear,
            'R' => Cmd::Restore,
            'S' => Cmd::Save,
            'a' => Cmd::AddServer,
            'e' => Cmd::EditServer,
            'd' => Cmd::DelServer,
            'L' | 'l' => Cmd::List,
            'Z' => Cmd::Zero,
            'P' => Cmd::AddLaddr,
            'Q' => Cmd::DelLaddr,
            'G' => Cmd::GetLaddr,
            'h' => Cmd::Help,
            // ipvsadm's -v; -V kept for those who guess it.
            'v' | 'V' => Cmd::Version,
            _ => return None,
        })
    }

    fn from_long(s: &str) -> Option<Cmd> {
        Some(match s {
            "add-service" => Cmd::AddService,
            "edit-service" => Cmd::EditService,
            "delete-service" => Cmd::DelService,
            "clear" => Cmd::Clear,
            "restore" => Cmd::Restore,
            "save" => Cmd::Save,
            "add-server" => Cmd::AddServer,
            "edit-server" => Cmd::EditServer,
            "delete-server" => Cmd::DelServer,
            "list" => Cmd::List,
            "zero" => Cmd::Zero,
            "set" => Cmd::Set,
            "add-laddr" => Cmd::AddLaddr,
            "del-laddr" => Cmd::DelLaddr,
            "get-laddr" => Cmd::GetLaddr,
            "check" => Cmd::Check,
            "help" => Cmd::Help,
            "version" => Cmd::Version,
            _ => return None,
        })
    }
}

/// Options, by their long name; the short letter, whether it takes a value.
const OPTS: &[(&str, Option<char>, bool)] = &[
    ("tcp-service", Some('t'), true),
    ("udp-service", Some('u'), true),
    ("sctp-service", Some('q'), true),
    ("fwmark-service", Some('f'), true),
    ("scheduler", Some('s'), true),
    ("persistent", Some('p'), false),
    ("netmask", Some('M'), true),
    ("sched-flags", None, true),
    ("real-server", Some('r'), true),
    ("gatewaying", Some('g'), false),
    ("ipip", Some('i'), false),
    ("masquerading", Some('m'), false),
    ("fullnat", None, false),
    ("weight", Some('w'), true),
    ("u-threshold", Some('x'), true),
    ("l-threshold", Some('y'), true),
    ("numeric", Some('n'), false),
    ("connection", Some('c'), false),
    ("stats", None, false),
    ("rate", None, false),
    ("thresholds", None, false),
    ("persistent-conn", None, false),
    ("timeout", None, false),
    ("exact", Some('X'), false),
    ("sort", None, false),
    ("nosort", None, false),
    ("ipv6", Some('6'), false),
    ("laddr", Some('z'), true),
    ("ifname", Some('F'), true),
    ("match", None, true),
    ("json", None, false),
    ("instance", None, true),
    ("cores", None, false),
    ("start-daemon", None, true),
    ("stop-daemon", None, true),
    ("mcast-interface", None, true),
    ("syncid", None, true),
    ("daemon", None, false),
    ("tun-type", None, true),
    ("tun-port", None, true),
    ("tun-nocsum", None, false),
    ("tun-csum", None, false),
    ("tun-remcsum", None, false),
    ("ops", Some('o'), false),
    ("pe", None, true),
];

fn is_command_token(long: &str) -> bool {
    Cmd::from_long(long).is_some()
}

/// One option occurrence.
#[derive(Debug, Clone)]
struct Occ {
    name: &'static str,
    shown: String,
    value: Option<String>,
}

/// The words of an invocation, sorted: the command, the options in order,
/// and positional values (only `--set` has them).
struct Words {
    cmd: Option<Cmd>,
    occ: Vec<Occ>,
    pos: Vec<String>,
}

/// Splits the words into a command, options and positional values.
fn tokenize(args: &[String]) -> Result<Words, ParseError> {
    // -b means --sched-flags with -A/-E and --fullnat elsewhere: find the command first.
    fn set_cmd(cmd: &mut Option<Cmd>, c: Cmd) -> Result<(), ParseError> {
        match *cmd {
            Some(x) if x != c => Err(ParseError::MultipleCommands),
            _ => {
                *cmd = Some(c);
                Ok(())
            }
        }
    }
    let mut cmd = None;
    for a in args {
        if let Some(long) = a.strip_prefix("--") {
            if let Some(c) = Cmd::from_long(long.split('=').next().unwrap_or(long)) {
                set_cmd(&mut cmd, c)?;
            }
        } else if let Some(bundle) = a.strip_prefix('-') {
            for ch in bundle.chars() {
                if let Some(c) = Cmd::from_short(ch) {
                    set_cmd(&mut cmd, c)?;
                    continue;
                }
                // A value-taking option ends the bundle.
                if OPTS.iter().any(|o| o.1 == Some(ch) && o.2)
                    || (ch == 'b' && matches!(cmd, Some(Cmd::AddService | Cmd::EditService)))
                {
                    break;
                }
            }
        }
    }
    let b_takes_value = matches!(cmd, Some(Cmd::AddService | Cmd::EditService));
    let mut occ = Vec::new();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if is_command_token(name) {
                continue;
            }
            let Some(&(oname, _, takes)) = OPTS.iter().find(|o| o.0 == name) else {
                return Err(ParseError::UnknownOption(a.clone()));
            };
            let value = if takes {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = args.get(i).cloned().ok_or_else(|| ParseError::MissingValue(a.clone()))?;
                        i += 1;
                        Some(v)
                    }
                }
            } else if oname == "persistent" {
                inline.or_else(|| take_number(args, &mut i))
            } else {
                inline
            };
            occ.push(Occ { name: oname, shown: format!("--{name}"), value });
        } else if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let ch = chars[k];
                k += 1;
                if Cmd::from_short(ch).is_some() {
                    continue;
                }
                let (name, takes) = match ch {
                    'b' if b_takes_value => ("sched-flags", true),
                    'b' => ("fullnat", false),
                    _ => match OPTS.iter().find(|o| o.1 == Some(ch)) {
                        Some(o) => (o.0, o.2),
                        None => return Err(ParseError::UnknownOption(format!("-{ch}"))),
                    },
                };
                let rest: String = chars[k..].iter().collect();
                let value = if takes {
                    if !rest.is_empty() {
                        k = chars.len();
                        Some(rest)
                    } else {
                        let v = args.get(i).cloned().ok_or_else(|| ParseError::MissingValue(format!("-{ch}")))?;
                        i += 1;
                        Some(v)
                    }
                } else if name == "persistent" {
                    if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()) {
                        k = chars.len();
                        Some(rest)
                    } else {
                        take_number(args, &mut i)
                    }
                } else {
                    None
                };
                occ.push(Occ { name, shown: format!("-{ch}"), value });
            }
        } else {
            pos.push(a.clone());
        }
    }
    Ok(Words { cmd, occ, pos })
}

fn take_number(args: &[String], i: &mut usize) -> Option<String> {
    let v = args.get(*i).filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))?;
    *i += 1;
    Some(v.clone())
}

/// Which options each command accepts (beyond --instance, --json, -n).
fn allowed(cmd: Cmd, name: &str) -> bool {
    const SVC: &[&str] = &["tcp-service", "udp-service", "sctp-service", "fwmark-service", "ipv6"];
    let extra: &[&str] = match cmd {
        Cmd::AddService | Cmd::EditService => &["scheduler", "persistent", "netmask", "sched-flags", "match", "ops"],
        Cmd::DelService | Cmd::GetLaddr => &[],
        Cmd::AddServer | Cmd::EditServer => &[
            "real-server",
            "gatewaying",
            "ipip",
            "masquerading",
            "fullnat",
            "weight",
            "u-threshold",
            "l-threshold",
            "tun-type",
            "tun-port",
            "tun-nocsum",
            "tun-csum",
            "tun-remcsum",
        ],
        Cmd::DelServer => &["real-server"],
        Cmd::List => &[
            "connection",
            "stats",
            "rate",
            "thresholds",
            "persistent-conn",
            "timeout",
            "exact",
            "sort",
            "nosort",
            "cores",
        ],
        Cmd::Zero => &[],
        Cmd::AddLaddr | Cmd::DelLaddr => &["laddr", "ifname"],
        Cmd::Clear | Cmd::Restore | Cmd::Save | Cmd::Set | Cmd::Check | Cmd::Help | Cmd::Version => {
            return matches!(name, "numeric" | "json" | "instance");
        }
    };
    matches!(name, "numeric" | "json" | "instance") || SVC.contains(&name) || extra.contains(&name)
}

fn port_of(s: &str) -> Option<u16> {
    if let Ok(p) = s.parse() {
        return Some(p);
    }
    // Service names, as ipvsadm resolves them.
    let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
    services.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let name = w.next()?;
        let (port, proto) = w.next()?.split_once('/')?;
        (!name.starts_with('#') && proto == "tcp" && (name == s || w.any(|alias| alias == s)))
            .then(|| port.parse().ok())?
    })
}

/// `host[:port]`, `[v6]:port` or a bare v6 address.
fn addr_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (a, tail) = rest.split_once(']')?;
        let ip = a.parse().ok()?;
        return match tail {
            "" => Some((ip, None)),
            t => Some((ip, Some(port_of(t.strip_prefix(':')?)?))),
        };
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, None));
    }
    let (a, p) = s.rsplit_once(':')?;
    Some((a.parse::<Ipv4Addr>().ok()?.into(), Some(port_of(p)?)))
}

fn number<T: std::str::FromStr + PartialOrd>(s: &str, lo: T, hi: T) -> Option<T> {
    s.parse().ok().filter(|v| *v >= lo && *v <= hi)
}

fn parse_netmask(s: &str, v6: bool) -> Option<u8> {
    if let Ok(p) = s.parse::<u8>() {
        return (p >= 1 && p <= if v6 { 128 } else { 32 }).then_some(p);
    }
    let m = u32::from(s.parse::<Ipv4Addr>().ok()?);
    let p = m.leading_ones();
    (!v6 && p >= 1 && m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

fn parse_sched_flags(s: &str) -> Option<u8> {
    s.split(',').try_fold(0u8, |acc, f| {
        Some(
            acc | match f.trim() {
                "flag-1" | "sh-fallback" | "mh-fallback" => sched_flags::FALLBACK,
                "flag-2" | "sh-port" | "mh-port" => sched_flags::PORT,
                "flag-3" => sched_flags::FLAG3,
                _ => return None,
            },
        )
    })
}

/// `tcp:198.18.0.10:80,443` → one match per port.
fn parse_match(s: &str) -> Option<Vec<Match>> {
    let (proto, rest) = s.split_once(':')?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return None,
    };
    let (addr, ports) = match rest.strip_prefix('[') {
        Some(r) => {
            let (a, p) = r.split_once("]:")?;
            (a.parse().ok()?, p)
        }
        None => {
            let (a, p) = rest.rsplit_once(':')?;
            (a.parse().ok()?, p)
        }
    };
    ports.split(',').map(|p| Some(Match { proto, addr, port: port_of(p)? })).collect()
}

/// Parses one invocation (the words after the program name).
pub fn parse(args: &[String]) -> Result<Invocation, ParseError> {
    let Words { cmd, occ, pos } = tokenize(args)?;
    if occ.iter().any(|o| matches!(o.name, "start-daemon" | "stop-daemon" | "daemon")) {
        return Err(ParseError::SyncDaemon);
    }
    if let Some(o) = occ.iter().find(|o| o.name == "pe") {
        return Err(ParseError::PersistenceEngine(o.value.clone().unwrap_or_default()));
    }
    let cmd = cmd.ok_or(ParseError::NoCommand)?;
    let mut inv = Invocation { action: Action::Help, numeric: false, json: false, instance: "default".into() };
    let mut svc: Option<ServiceKey> = None;
    let mut v6_flag = false;
    let mut sched = None;
    let mut flags = 0u8;
    let mut persistent = None;
    let mut netmask_text = None;
    let mut matches = Vec::new();
    let mut ops = false;
    let mut rs: Option<(IpAddr, Option<u16>)> = None;
    let mut fwd = None;
    let (mut weight, mut upper, mut lower) = (1u32, 0u32, 0u32);
    let mut laddr = None;
    let mut ifname = None;
    let mut list = ListOpts { sort: true, ..ListOpts::default() };
    for o in &occ {
        if !allowed(cmd, o.name) {
            if matches!(o.name, "start-daemon" | "stop-daemon" | "mcast-interface" | "syncid") {
                return Err(ParseError::SyncDaemon);
            }
            return Err(ParseError::IllegalOption(o.shown.clone(), cmd.name()));
        }
        let v = o.value.clone().unwrap_or_default();
        match o.name {
            "tcp-service" | "udp-service" => {
                if svc.is_some() {
                    return Err(ParseError::MultipleServiceTypes);
                }
                let (addr, port) = addr_port(&v).ok_or_else(|| ParseError::BadServiceAddress(v.clone()))?;
                let proto = if o.name == "tcp-service" { Proto::Tcp } else { Proto::Udp };
                svc = Some(ServiceKey::Addr(Match { proto, addr, port: port.unwrap_or(0) }));
            }
            "sctp-service" => return Err(ParseError::Sctp),
            "fwmark-service" => {
                if svc.is_some() {
                    return Err(ParseError::MultipleServiceTypes);
                }
                let mark = number(&v, 1u32, u32::MAX).ok_or_else(|| ParseError::BadFwmark(v.clone()))?;
                svc = Some(ServiceKey::Fwmark { mark, v6: false });
            }
            "ipv6" => v6_flag = true,
            "scheduler" => sched = Some(SchedKind::from_name(&v).map_err(|_| ParseError::BadScheduler(v.clone()))?),
            "persistent" => {
                persistent = Some(match &o.value {
                    Some(t) => {
                        number(t, 1u32, i32::MAX as u32).ok_or_else(|| ParseError::BadPersistTimeout(t.clone()))?
                    }
                    None => 300,
                })
            }
            "netmask" => netmask_text = Some(v),
            "sched-flags" => flags = parse_sched_flags(&v).ok_or_else(|| ParseError::BadSchedFlags(v.clone()))?,
            "ops" => ops = true,
            "match" => matches.extend(parse_match(&v).ok_or_else(|| ParseError::BadMatch(v.clone()))?),
            "real-server" => rs = Some(addr_port(&v).ok_or_else(|| ParseError::BadRealServer(v.clone()))?),
            "gatewaying" => fwd = Some(Fwd::Dr),
            "ipip" => fwd = Some(Fwd::Tun),
            "masquerading" => fwd = Some(Fwd::Nat),
            "fullnat" => fwd = Some(Fwd::FullNat),
            "weight" => weight = number(&v, 0, MAX_WEIGHT).ok_or_else(|| ParseError::BadWeight(v.clone()))?,
            "u-threshold" => {
                upper = number(&v, 0, i32::MAX as u32).ok_or_else(|| ParseError::BadUThreshold(v.clone()))?
            }
            "l-threshold" => {
                lower = number(&v, 0, i32::MAX as u32).ok_or_else(|| ParseError::BadLThreshold(v.clone()))?
            }
            "numeric" => inv.numeric = true,
            "connection" => list.connections = true,
            "stats" => list.stats = true,
            "rate" => list.rate = true,
            "thresholds" => list.thresholds = true,
            "persistent-conn" => list.persistent_conn = true,
            "timeout" => list.timeout = true,
            "exact" => list.exact = true,
            "sort" => list.sort = true,
            "nosort" => list.sort = false,
            "laddr" => laddr = Some(v.parse::<IpAddr>().map_err(|_| ParseError::BadLaddr(v.clone()))?),
            "ifname" => ifname = Some(v),
            "json" => inv.json = true,
            "instance" => inv.instance = v,
            "cores" => list.cores = true,
            // ipvsadm 1.31's tunnel options: IPIP is what -i builds.
            "tun-type" if v.eq_ignore_ascii_case("ipip") => {}
            "tun-type" => return Err(ParseError::TunnelType(v)),
            "tun-port" | "tun-nocsum" | "tun-csum" | "tun-remcsum" => {
                return Err(ParseError::TunnelOption(o.shown.clone()))
            }
            _ => return Err(ParseError::UnknownOption(o.shown.clone())),
        }
    }
    if let Some(ServiceKey::Fwmark { v6, .. }) = svc.as_mut() {
        *v6 = v6_flag;
    }
    if cmd != Cmd::Set {
        if let Some(p) = pos.first() {
            return Err(ParseError::Unexpected(p.clone()));
        }
    }
    let need_svc = |what| svc.ok_or(ParseError::NeedsService(what));
    inv.action = match cmd {
        Cmd::Help => Action::Help,
        Cmd::Version => Action::Version,
        Cmd::Check => Action::Check,
        Cmd::Clear => Action::Admin(Command::Clear),
        Cmd::Save => Action::Save,
        Cmd::Restore => Action::Restore,
        Cmd::Zero => Action::Zero(svc),
        Cmd::List => {
            list.service = svc;
            Action::List(list)
        }
        Cmd::Set => {
            let [tcp, fin, udp] = pos.as_slice() else { return Err(ParseError::SetNeedsThree) };
            let t = |s: &String| {
                number(s, 0u32, crate::state::Timeouts::MAX_SECS).ok_or_else(|| ParseError::BadTimeout(s.clone()))
            };
            Action::Admin(Command::SetTimeouts(t(tcp)?, t(fin)?, t(udp)?))
        }
        Cmd::AddService | Cmd::EditService => {
            let key = need_svc(cmd.name())?;
            let is_fwmark = matches!(key, ServiceKey::Fwmark { .. });
            if !is_fwmark && !matches.is_empty() {
                return Err(ParseError::MatchWithoutFwmark);
            }
            if let ServiceKey::Addr(m) = key {
                if m.port == 0 && persistent.is_none() {
                    return Err(ParseError::ZeroPort);
                }
                if ops && m.proto != Proto::Udp {
                    return Err(ParseError::OnePacketNotUdp);
                }
            }
            let mut spec = ServiceSpec::new(key, sched.unwrap_or(SchedKind::Wlc));
            spec.flags = flags;
            spec.persistent = persistent;
            spec.matches = matches;
            spec.ops = ops;
            if let Some(t) = netmask_text {
                spec.netmask = parse_netmask(&t, key.is_v6()).ok_or(ParseError::BadNetmask(t))?;
            }
            Action::Admin(if cmd == Cmd::AddService { Command::AddService(spec) } else { Command::EditService(spec) })
        }
        Cmd::DelService => Action::Admin(Command::DelService(need_svc(cmd.name())?)),
        Cmd::AddServer | Cmd::EditServer | Cmd::DelServer => {
            let key = need_svc(cmd.name())?;
            let (addr, port) = rs.ok_or(ParseError::NeedsRealServer(cmd.name()))?;
            if addr.is_ipv6() != key.is_v6() {
                return Err(ParseError::FamilyMismatch);
            }
            // An omitted real-server port is the service's port (ipvsadm).
            let port = port.unwrap_or(match key {
                ServiceKey::Addr(m) => m.port,
                ServiceKey::Fwmark { .. } => 0,
            });
            if cmd == Cmd::DelServer {
                Action::Admin(Command::DelDest(key, addr, port))
            } else {
                let d = DestSpec {
                    addr,
                    port,
                    weight,
                    fwd: fwd.unwrap_or(Fwd::Dr),
                    u_threshold: upper,
                    l_threshold: lower,
                };
                Action::Admin(if cmd == Cmd::AddServer { Command::AddDest(key, d) } else { Command::EditDest(key, d) })
            }
        }
        Cmd::AddLaddr | Cmd::DelLaddr => {
            let key = need_svc(cmd.name())?;
            let a = laddr.ok_or(ParseError::NeedsLaddr(cmd.name()))?;
            Action::Admin(if cmd == Cmd::AddLaddr {
                Command::AddLaddr(key, a, ifname)
            } else {
                Command::DelLaddr(key, a)
            })
        }
        Cmd::GetLaddr => Action::Laddrs(need_svc(cmd.name())?),
    };
    Ok(inv)
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
            ("--start-daemon master", ParseError::SyncDaemon),
            ("-L --daemon", ParseError::SyncDaemon),
            ("-a -t 198.18.0.10:80 -r 198.19.0.1 -i --tun-type gue", ParseError::TunnelType("gue".into())),
            ("-a -t 198.18.0.10:80 -r 198.19.0.1 -i --tun-port 6080", ParseError::TunnelOption("--tun-port".into())),
            ("-A -t 198.18.0.10:80 -s rr -o", ParseError::OnePacketNotUdp),
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
