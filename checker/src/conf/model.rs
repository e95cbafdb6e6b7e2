//! keepalived.conf's `virtual_server` grammar (keepalived 2.x, with the
//! keywords of 1.1.x-era files and DPVS's FULLNAT extensions) as typed
//! settings, keepalived's defaults filled in and its inheritance applied:
//! virtual server → real server → checker. An unknown keyword is a warning
//! naming file:line, never fatal, as in keepalived; a bad value is an error
//! naming the keyword, the value and what it takes.

use super::source::At;
use super::tree::Node;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;
use xdpvs_api::config::{Fwd, Proto, ProxyProtocol, SchedKind};

/// What keepalived.conf says about the director's services.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Conf {
    pub services: Vec<VirtualServer>,
    /// `virtual_server_group NAME { … }`.
    pub groups: HashMap<String, Vec<GroupMember>>,
    /// DPVS: `local_address_group NAME { IP IFNAME; a.b.c.d-e IFNAME }`.
    pub laddr_groups: HashMap<String, Vec<(IpAddr, Option<String>)>>,
    /// `track_file NAME { file PATH; weight W [reverse]; init_file [V] [overwrite] }`.
    pub track_files: HashMap<String, TrackFile>,
    /// `global_defs { lvs_sync_daemon … }`.
    pub sync_daemon: Option<super::vrrp::SyncDaemon>,
    /// `vrrp_instance NAME { … }`: ids and addresses.
    pub vrrp: HashMap<String, super::vrrp::Instance>,
    /// `global_defs`' e-mail alerts.
    pub alerts: super::alerts::Alerts,
    /// `global_defs { lvs_timeouts … }`: tcp, tcpfin, udp (0: unchanged).
    pub lvs_timeouts: Option<[u32; 3]>,
    /// `SSL { certificate … key … }`: the client certificate of `SSL_GET`.
    pub ssl: Option<super::ssl::ClientCert>,
}

/// A file whose number a `FILE_CHECK` follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    pub path: String,
    /// Its weight (default 1), negated with `reverse`.
    pub weight: i64,
    /// `init_file`: the value written at start (if the file is missing, or
    /// always with `overwrite`).
    pub init: Option<(i64, bool)>,
}

/// One member of a `virtual_server_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMember {
    /// Addresses `first..=last` (one address, a `a.b.c.d-e` range or a
    /// CIDR), one port.
    Addrs {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark(u32),
}

/// A `virtual_server` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Head {
    Addr(IpAddr, u16),
    Fwmark(u32),
    Group(String),
}

/// Settings a checker inherits from its real server and virtual server.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub connect_timeout: Duration,
    /// `None`: the checker kind's own default.
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub delay_loop: Duration,
    pub alpha: bool,
    pub log_all_failures: bool,
    pub inhibit_on_failure: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            connect_timeout: Duration::from_secs(5),
            retry: None,
            delay_before_retry: None,
            warmup: None,
            delay_loop: Duration::from_secs(60),
            alpha: false,
            log_all_failures: false,
            inhibit_on_failure: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    pub head: Head,
    pub at: At,
    pub sched: SchedKind,
    /// ipvsadm `-b` flags (`sh-port`, `mh-fallback`, …).
    pub sched_flags: u8,
    pub ops: bool,
    pub fwd: Fwd,
    /// Seconds.
    pub persistence: Option<u32>,
    /// Prefix length.
    pub granularity: Option<u8>,
    pub proto: Proto,
    pub ha_suspend: bool,
    pub omega: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub sorry: Option<Sorry>,
    pub virtualhost: Option<String>,
    pub laddr_group: Option<String>,
    pub proxy_protocol: Option<ProxyProtocol>,
    /// DPVS's `syn_proxy` (no argument): the service's SYN proxy on.
    pub syn_proxy: bool,
    /// `smtp_alert [BOOL]` (unset: [`super::alerts::Alerts::virtual_server`]).
    pub smtp_alert: Option<bool>,
    pub timing: Timing,
    pub reals: Vec<RealServer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sorry {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: Option<Fwd>,
    pub inhibit: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    pub addr: IpAddr,
    pub port: u16,
    pub at: At,
    pub weight: u32,
    pub fwd: Fwd,
    pub notify_up: Option<Notify>,
    pub notify_down: Option<Notify>,
    pub uthreshold: u32,
    pub lthreshold: u32,
    /// `smtp_alert [BOOL]` (unset: [`super::alerts::Alerts::real_server`]).
    pub smtp_alert: Option<bool>,
    pub timing: Timing,
    pub checks: Vec<Check>,
}

/// `notify_up`/`notify_down SCRIPT [USER [GROUP]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub script: String,
    pub user: Option<String>,
    pub group: Option<String>,
}

fn notify(k: &Node) -> Option<Notify> {
    Some(Notify {
        script: k.arg(0)?.to_string(),
        user: k.arg(1).map(str::to_string),
        group: k.arg(2).map(str::to_string),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub kind: CheckKind,
    pub at: At,
    pub timing: Timing,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
}

impl Check {
    /// `retry`, with the kind's default (keepalived: 1; MISC_CHECK 0).
    pub fn retry(&self) -> u32 {
        self.timing.retry.unwrap_or(match self.kind {
            CheckKind::Misc { .. } => 0,
            CheckKind::Dns { .. } => 3,
            _ => 1,
        })
    }

    /// `delay_before_retry`, with the kind's default (HTTP/SSL 3 s, else 1 s).
    pub fn delay_before_retry(&self) -> Duration {
        self.timing.delay_before_retry.unwrap_or(match self.kind {
            CheckKind::Http { .. } => Duration::from_secs(3),
            _ => Duration::from_secs(1),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    /// `HTTP_GET` (`tls` false) / `SSL_GET`.
    Http {
        tls: bool,
        urls: Vec<Url>,
        protocol: HttpProtocol,
        virtualhost: Option<String>,
        sni: Option<String>,
    },
    Misc {
        path: String,
        timeout: Option<Duration>,
        dynamic: bool,
        user: Option<String>,
    },
    /// `UDP_CHECK`: `payload` sent; a port-unreachable fails it, and with
    /// `require_reply` so does silence or a reply not starting with it.
    Udp {
        payload: Vec<u8>,
        require_reply: Option<Vec<u8>>,
        min_reply: usize,
        max_reply: usize,
    },
    /// `PING_CHECK`: an ICMP echo answered within the timeout.
    Ping,
    /// `SMTP_CHECK`: a 220 greeting, `HELO helo` answered 250, then QUIT
    /// answered.
    Smtp {
        helo: String,
    },
    /// `DNS_CHECK`: a query for `name` of `type` answered without error.
    Dns {
        qtype: u16,
        name: String,
    },
    /// `FILE_CHECK`: the number in `file`, times `weight` (keepalived's
    /// rule: with weight 0 a non-zero number fails; otherwise the product
    /// is added to the server's weight, failing below 0, and with
    /// `dynamic` sets it).
    File {
        file: TrackFile,
        weight: i64,
        dynamic: bool,
        base: u32,
    },
    /// `SMTP_CHECK`, `BFD_CHECK`, `FILE_CHECK`: read, refused by name (the
    /// file is not applied).
    Unsupported(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub path: String,
    /// MD5 of the body, lower-case hex (as `genhash` prints it).
    pub digest: Option<String>,
    /// Inclusive ranges; empty: 200-299.
    pub status: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
    /// `regex …`: a pattern the body must (or, `regex_no_match`, must not) hold.
    pub regex: Option<super::body_regex::BodyRegex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpProtocol {
    V10,
    /// `1.0C`: 1.0 with `Connection: close`.
    V10Close,
    V11,
}

/// A problem, placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub at: At,
    pub msg: String,
    pub fatal: bool,
}

/// Builds the model from the statements; warnings and errors to `diags`.
pub fn build(nodes: &[Node], diags: &mut Vec<Diag>) -> Conf {
    let mut b = Builder { diags, conf: Conf::default() };
    // Track files first: a FILE_CHECK may name one defined further down.
    for n in nodes.iter().filter(|n| matches!(n.name(), "track_file" | "vrrp_track_file")) {
        b.track_file(n);
    }
    for n in nodes {
        match n.name() {
            "track_file" | "vrrp_track_file" => {}
            "virtual_server" => {
                if let Some(vs) = b.virtual_server(n) {
                    b.conf.services.push(vs);
                }
            }
            "virtual_server_group" => b.group(n),
            "SSL" => b.conf.ssl = super::ssl::block(n, b.diags),
            "local_address_group" => b.laddr_group(n),
            "global_defs" => {
                for k in n.kids() {
                    if k.name() == "lvs_sync_daemon" {
                        b.conf.sync_daemon = super::vrrp::sync_daemon(k, b.diags);
                    } else if k.name() == "lvs_timeouts" {
                        b.conf.lvs_timeouts = super::vrrp::lvs_timeouts(k, b.diags);
                    } else {
                        // The rest but the alerts' are keepalived's (VRRP).
                        super::alerts::setting(&mut b.conf.alerts, k, b.diags);
                    }
                }
            }
            "vrrp_instance" => {
                if let Some((name, inst)) = super::vrrp::instance(n) {
                    b.conf.vrrp.insert(name, inst);
                }
            }
            // The other top-level blocks are keepalived's VRRP and global
            // settings: read by keepalived itself (`keepalived -P`).
            "vrrp_sync_group"
            | "vrrp_script"
            | "vrrp_track_process"
            | "static_ipaddress"
            | "static_routes"
            | "static_rules"
            | "linkbeat_interfaces"
            | "garp_group"
            | "bfd_instance"
            | "deny_group"
            | "tunnel_group"
            | "net_namespace"
            | "instance" => {}
            _ => b.unknown(n),
        }
    }
    let named = b.conf.sync_daemon.as_ref().and_then(|d| d.instance.clone());
    if let Some(i) = named.filter(|i| !b.conf.vrrp.contains_key(i)) {
        let at = nodes.iter().find(|n| n.name() == "global_defs").map(Node::at).unwrap_or_default();
        b.warn(at, format!("Unknown VRRP instance {i} specified for lvs_sync_daemon - ignoring"));
        if let Some(d) = b.conf.sync_daemon.as_mut() {
            d.instance = None;
        }
    }
    b.conf
}

struct Builder<'a> {
    diags: &'a mut Vec<Diag>,
    conf: Conf,
}

impl Builder<'_> {
    fn warn(&mut self, at: At, msg: String) {
        self.diags.push(Diag { at, msg, fatal: false });
    }

    fn error(&mut self, at: At, msg: String) {
        self.diags.push(Diag { at, msg, fatal: true });
    }

    fn unknown(&mut self, n: &Node) {
        self.warn(n.at(), format!("Unknown keyword '{}'", n.name()));
    }

    /// The argument `i` of `n` parsed by `f`, or an error naming what it takes.
    fn value<T>(&mut self, n: &Node, i: usize, what: &str, f: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        match n.arg(i) {
            None => {
                self.error(n.at(), format!("'{}' needs {what}", n.name()));
                None
            }
            Some(v) => match f(v) {
                Some(x) => Some(x),
                None => {
                    self.error(n.at(), format!("'{}': '{v}' is not {what}", n.name()));
                    None
                }
            },
        }
    }

    fn seconds(&mut self, n: &Node) -> Option<Duration> {
        self.value(n, 0, "a number of seconds", secs)
    }

    fn number(&mut self, n: &Node, max: u32) -> Option<u32> {
        self.value(n, 0, &format!("a number 0-{max}"), |v| v.parse::<u32>().ok().filter(|&x| x <= max))
    }

    fn group(&mut self, n: &Node) {
        let Some(name) = self.value(n, 0, "a group name", |v| Some(v.to_string())) else { return };
        let mut members = Vec::new();
        for k in n.kids() {
            if k.name() == "fwmark" {
                if let Some(m) = self.value(k, 0, "a mark (1-4294967295)", |v| v.parse::<u32>().ok().filter(|&m| m > 0))
                {
                    members.push(GroupMember::Fwmark(m));
                }
                continue;
            }
            let Some((first, last)) = addr_range(k.name()) else {
                self.error(
                    k.at(),
                    format!("virtual_server_group {name}: '{}' is not an address, a.b.c.d-e range or CIDR", k.name()),
                );
                continue;
            };
            let port = k.arg(0).map_or(Some(0), |p| p.parse::<u16>().ok());
            match port {
                Some(port) => members.push(GroupMember::Addrs { first, last, port }),
                None => self
                    .error(k.at(), format!("virtual_server_group {name}: '{}' is not a port", k.arg(0).unwrap_or(""))),
            }
        }
        self.conf.groups.insert(name, members);
    }

    fn laddr_group(&mut self, n: &Node) {
        let Some(name) = self.value(n, 0, "a group name", |v| Some(v.to_string())) else { return };
        let mut out = Vec::new();
        for k in n.kids() {
            match addr_range(k.name()) {
                Some((first, last)) => {
                    for a in expand(first, last, 4096) {
                        out.push((a, k.arg(0).map(str::to_string)));
                    }
                }
                None => {
                    self.error(k.at(), format!("local_address_group {name}: '{}' is not an address or range", k.name()))
                }
            }
        }
        self.conf.laddr_groups.insert(name, out);
    }

    fn virtual_server(&mut self, n: &Node) -> Option<VirtualServer> {
        let head = match (n.arg(0), n.arg(1)) {
            (Some("fwmark"), _) => {
                Head::Fwmark(self.value(n, 1, "a mark (1-4294967295)", |v| v.parse().ok().filter(|&m: &u32| m > 0))?)
            }
            (Some("group"), _) => Head::Group(self.value(n, 1, "a group name", |v| Some(v.to_string()))?),
            (Some(a), p) => {
                let Ok(addr) = a.parse::<IpAddr>() else {
                    self.error(n.at(), format!("virtual_server: '{a}' is not an IP address (or fwmark N, group NAME)"));
                    return None;
                };
                let port = match p {
                    None => 0,
                    Some(_) => self.value(n, 1, "a port", |v| v.parse::<u16>().ok())?,
                };
                Head::Addr(addr, port)
            }
            (None, _) => {
                self.error(n.at(), "virtual_server needs an address and port, fwmark N or group NAME".into());
                return None;
            }
        };
        let mut vs = VirtualServer {
            head,
            at: n.at(),
            sched: SchedKind::Wlc,
            sched_flags: 0,
            ops: false,
            fwd: Fwd::Nat,
            persistence: None,
            granularity: None,
            proto: Proto::Tcp,
            ha_suspend: false,
            omega: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry: None,
            virtualhost: None,
            laddr_group: None,
            proxy_protocol: None,
            syn_proxy: false,
            smtp_alert: None,
            timing: Timing::default(),
            reals: Vec::new(),
        };
        // Settings first (real servers inherit them wherever they are written).
        for k in n.kids() {
            if k.name() != "real_server" {
                self.vs_setting(&mut vs, k);
            }
        }
        self.default_protocol(&mut vs, n);
        for k in n.kids().iter().filter(|k| k.name() == "real_server") {
            if let Some(rs) = self.real_server(&vs, k) {
                vs.reals.push(rs);
            }
        }
        if let (Head::Addr(_, 0), None) = (&vs.head, vs.persistence) {
            self.error(n.at(), "virtual_server without a port must be persistent (persistence_timeout)".into());
        }
        Some(vs)
    }

    /// keepalived 2.2's rule for a virtual server of addresses without a
    /// `protocol` line: UDP (the kernel's reading of protocol 0), with a
    /// warning. A fwmark's protocol is the mark's.
    fn default_protocol(&mut self, vs: &mut VirtualServer, n: &Node) {
        if n.kids().iter().any(|k| k.name() == "protocol") {
            return;
        }
        let name = match &vs.head {
            Head::Fwmark(_) => return,
            Head::Group(g) => match self.conf.groups.get(g) {
                Some(m) if !m.iter().any(|m| matches!(m, GroupMember::Addrs { .. })) => return,
                _ => format!("group {g}"),
            },
            Head::Addr(ip, port) => format!("[{ip}]:none:{port}"),
        };
        vs.proto = Proto::Udp;
        self.warn(
            n.at(),
            format!("Virtual server {name}: no protocol set - defaulting to UDP, as keepalived does (for TCP: protocol TCP)"),
        );
    }

    fn vs_setting(&mut self, vs: &mut VirtualServer, k: &Node) {
        if self.timing(&mut vs.timing, k) {
            return;
        }
        match k.name() {
            "lb_algo" | "lvs_sched" => match k.arg(0).map(SchedKind::from_name) {
                Some(Ok(s)) => vs.sched = s,
                _ => self.warn(k.at(), format!("Invalid {} '{}': ignored", k.name(), k.arg(0).unwrap_or(""))),
            },
            "lb_kind" | "lvs_method" => {
                if let Some(f) = self.value(k, 0, "NAT, DR, TUN or FNAT", fwd_of) {
                    vs.fwd = f;
                }
            }
            "ops" => vs.ops = true,
            "sh-port" | "mh-port" => vs.sched_flags |= xdpvs_api::config::sched_flags::PORT,
            "sh-fallback" | "mh-fallback" => vs.sched_flags |= xdpvs_api::config::sched_flags::FALLBACK,
            "persistence_timeout" => {
                vs.persistence = match k.arg(0) {
                    None => Some(360),
                    Some(_) => self.number(k, i32::MAX as u32).filter(|&t| t > 0),
                }
            }
            "persistence_granularity" => vs.granularity = self.value(k, 0, "a netmask or prefix length", prefix_len),
            "protocol" => match k.arg(0).map(str::to_ascii_uppercase).as_deref() {
                Some("TCP") => vs.proto = Proto::Tcp,
                Some("UDP") => vs.proto = Proto::Udp,
                Some("SCTP") => self.error(k.at(), "protocol SCTP: xdpvs balances TCP and UDP".into()),
                _ => self.error(k.at(), format!("protocol '{}': TCP or UDP", k.arg(0).unwrap_or(""))),
            },
            "ha_suspend" => vs.ha_suspend = true,
            "omega" => vs.omega = true,
            "quorum" => vs.quorum = self.number(k, u32::MAX).unwrap_or(1),
            "hysteresis" => vs.hysteresis = self.number(k, u32::MAX).unwrap_or(0),
            "quorum_up" => vs.quorum_up = k.arg(0).map(str::to_string),
            "quorum_down" => vs.quorum_down = k.arg(0).map(str::to_string),
            "sorry_server" => {
                let addr = self.value(k, 0, "an IP address", |v| v.parse::<IpAddr>().ok());
                let port = k.arg(1).map_or(Some(0), |p| p.parse::<u16>().ok());
                if let (Some(addr), Some(port)) = (addr, port) {
                    let old = vs.sorry.take();
                    vs.sorry = Some(Sorry {
                        addr,
                        port,
                        fwd: old.as_ref().and_then(|s| s.fwd),
                        inhibit: old.is_some_and(|s| s.inhibit),
                    });
                }
            }
            "sorry_server_inhibit" => self.sorry_mut(vs, k).inhibit = true,
            "sorry_server_lvs_method" => {
                let f = self.value(k, 0, "NAT, DR, TUN or FNAT", fwd_of);
                self.sorry_mut(vs, k).fwd = f;
            }
            "virtualhost" => vs.virtualhost = k.arg(0).map(str::to_string),
            "laddr_group_name" => vs.laddr_group = k.arg(0).map(str::to_string),
            "proxy_protocol" => vs.proxy_protocol = self.value(k, 0, "v1 or v2", ProxyProtocol::from_name),
            "syn_proxy" => vs.syn_proxy = true,
            "smtp_alert" => vs.smtp_alert = super::alerts::flag(k, self.diags),
            "establish_timeout" | "delay_loop_ms" | "retry_interval" | "ip_family" => {
                self.warn(k.at(), format!("'{}' is not used by xdpvs-checker: ignored", k.name()))
            }
            _ => self.unknown(k),
        }
    }

    /// `sorry_server_*` before `sorry_server`: keep the setting for it.
    fn sorry_mut<'v>(&mut self, vs: &'v mut VirtualServer, k: &Node) -> &'v mut Sorry {
        if vs.sorry.is_none() {
            self.warn(k.at(), format!("'{}' before any sorry_server", k.name()));
        }
        vs.sorry.get_or_insert(Sorry { addr: IpAddr::from([0, 0, 0, 0]), port: 0, fwd: None, inhibit: false })
    }

    /// The inheritable checker settings; true when `k` was one.
    fn timing(&mut self, t: &mut Timing, k: &Node) -> bool {
        match k.name() {
            "connect_timeout" => t.connect_timeout = self.seconds(k).unwrap_or(t.connect_timeout),
            "retry" | "nb_get_retry" | "nb_sock_retry" => t.retry = self.number(k, 1_000_000).or(t.retry),
            "delay_before_retry" => t.delay_before_retry = self.seconds(k).or(t.delay_before_retry),
            "warmup" => t.warmup = self.seconds(k).or(t.warmup),
            "delay_loop" => t.delay_loop = self.seconds(k).filter(|d| !d.is_zero()).unwrap_or(t.delay_loop),
            "alpha" => t.alpha = true,
            "log_all_failures" => t.log_all_failures = true,
            "inhibit_on_failure" => t.inhibit_on_failure = true,
            _ => return false,
        }
        true
    }

    fn real_server(&mut self, vs: &VirtualServer, n: &Node) -> Option<RealServer> {
        let addr = self.value(n, 0, "an IP address", |v| v.parse::<IpAddr>().ok())?;
        let port = n.arg(1).map_or(Some(0), |p| p.parse::<u16>().ok());
        let Some(port) = port else {
            self.error(n.at(), format!("real_server {addr}: '{}' is not a port", n.arg(1).unwrap_or("")));
            return None;
        };
        let mut rs = RealServer {
            addr,
            port,
            at: n.at(),
            weight: 1,
            fwd: vs.fwd,
            notify_up: None,
            notify_down: None,
            uthreshold: 0,
            lthreshold: 0,
            smtp_alert: None,
            timing: vs.timing.clone(),
            checks: Vec::new(),
        };
        for k in n.kids() {
            if !check_kind_name(k.name()) {
                self.rs_setting(&mut rs, k);
            }
        }
        for k in n.kids().iter().filter(|k| check_kind_name(k.name())) {
            let c = self.check(&rs, k);
            rs.checks.extend(c);
        }
        Some(rs)
    }

    fn rs_setting(&mut self, rs: &mut RealServer, k: &Node) {
        if self.timing(&mut rs.timing, k) {
            return;
        }
        match k.name() {
            "weight" => rs.weight = self.number(k, xdpvs_api::config::MAX_WEIGHT).unwrap_or(rs.weight),
            "lvs_method" | "lb_kind" => {
                if let Some(f) = self.value(k, 0, "NAT, DR, TUN or FNAT", fwd_of) {
                    rs.fwd = f;
                }
            }
            "notify_up" => rs.notify_up = notify(k),
            "notify_down" => rs.notify_down = notify(k),
            "uthreshold" => rs.uthreshold = self.number(k, i32::MAX as u32).unwrap_or(0),
            "lthreshold" => rs.lthreshold = self.number(k, i32::MAX as u32).unwrap_or(0),
            "smtp_alert" => rs.smtp_alert = super::alerts::flag(k, self.diags),
            "virtualhost" => self.warn(k.at(), format!("'{}' is not used by xdpvs-checker: ignored", k.name())),
            _ => self.unknown(k),
        }
    }

    /// The checker `n` of `rs`: one, or for an `SMTP_CHECK` with `host`
    /// blocks one per host (see [`Self::smtp_hosts`]).
    fn check(&mut self, rs: &RealServer, n: &Node) -> Vec<Check> {
        let kind = match n.name() {
            "TCP_CHECK" => CheckKind::Tcp,
            "HTTP_GET" | "SSL_GET" => CheckKind::Http {
                tls: n.name() == "SSL_GET",
                urls: Vec::new(),
                protocol: HttpProtocol::V10,
                virtualhost: None,
                sni: None,
            },
            "MISC_CHECK" => CheckKind::Misc { path: String::new(), timeout: None, dynamic: false, user: None },
            "SMTP_CHECK" => CheckKind::Smtp { helo: SMTP_DEFAULT_HELO.into() },
            "BFD_CHECK" => CheckKind::Unsupported("BFD_CHECK"),
            "FILE_CHECK" => return vec![self.file_check(rs, n)],
            "DNS_CHECK" => CheckKind::Dns { qtype: 6, name: ".".into() },
            "UDP_CHECK" => CheckKind::Udp { payload: Vec::new(), require_reply: None, min_reply: 0, max_reply: 65535 },
            "PING_CHECK" => CheckKind::Ping,
            _ => CheckKind::Unsupported("an unknown checker"),
        };
        let mut c = Check {
            kind,
            at: n.at(),
            timing: rs.timing.clone(),
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
        };
        let smtp = matches!(c.kind, CheckKind::Smtp { .. });
        for k in n.kids().iter().filter(|k| !(smtp && k.name() == "host")) {
            self.check_setting(&mut c, k);
        }
        match &c.kind {
            CheckKind::Misc { path, .. } if path.is_empty() => self.error(n.at(), "MISC_CHECK needs misc_path".into()),
            CheckKind::Unsupported(k) => self.error(
                n.at(),
                format!(
                    "{k} is not supported by xdpvs-checker: check the port with TCP_CHECK (connect_port), or run a \
                     script with MISC_CHECK"
                ),
            ),
            _ => {}
        }
        let hosts: Vec<&Node> = n.kids().iter().filter(|k| smtp && k.name() == "host").collect();
        if hosts.is_empty() {
            return vec![c];
        }
        self.smtp_hosts(rs, n, c, &hosts)
    }

    /// An `SMTP_CHECK` with (deprecated) `host { connect_ip … }` blocks, as
    /// keepalived reads it: one checker per host, each with the check's
    /// settings and its own connection (to the real server's address and
    /// port unless it says otherwise; its timeout the real server's), plus
    /// the check's own connection when it sets one (`connect_*`, `bind*`,
    /// `connect_timeout`).
    fn smtp_hosts(&mut self, rs: &RealServer, n: &Node, c: Check, hosts: &[&Node]) -> Vec<Check> {
        const CONN: [&str; 7] =
            ["connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark", "connect_timeout"];
        let own = n.kids().iter().any(|k| CONN.contains(&k.name()));
        let mut out = Vec::with_capacity(hosts.len() + 1);
        for h in hosts {
            let mut hc =
                Check { at: h.at(), connect_ip: None, connect_port: None, bindto: None, bind_port: None, ..c.clone() };
            hc.timing.connect_timeout = rs.timing.connect_timeout;
            for k in h.kids() {
                match k.name() {
                    "connect_timeout" => {
                        self.timing(&mut hc.timing, k);
                    }
                    name if CONN.contains(&name) => self.check_setting(&mut hc, k),
                    _ => self.unknown(k),
                }
            }
            out.push(hc);
        }
        if own {
            out.insert(0, c);
        }
        out
    }

    /// `FILE_CHECK { track_file NAME [weight W [reverse]]; dynamic }`: the
    /// track file must be defined (anywhere at top level).
    fn file_check(&mut self, rs: &RealServer, n: &Node) -> Check {
        let mut c = Check {
            kind: CheckKind::Unsupported("FILE_CHECK"),
            at: n.at(),
            timing: Timing { delay_loop: Duration::from_secs(1), ..rs.timing.clone() },
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
        };
        let (mut file, mut weight, mut dynamic) = (None, None, false);
        for k in n.kids() {
            match k.name() {
                "track_file" => {
                    let name = k.arg(0).unwrap_or_default();
                    match self.conf.track_files.get(name) {
                        Some(t) => file = Some(t.clone()),
                        None => self.error(k.at(), format!("FILE_CHECK: no track_file {name}")),
                    }
                    if k.arg(1) == Some("weight") {
                        let w = k.arg(2).and_then(|w| w.parse::<i64>().ok());
                        match w {
                            Some(w) => weight = Some(if k.arg(3) == Some("reverse") { -w } else { w }),
                            None => self.error(
                                k.at(),
                                format!("FILE_CHECK: weight '{}' is not a number", k.arg(2).unwrap_or("")),
                            ),
                        }
                    }
                }
                "dynamic" => dynamic = true,
                _ => self.unknown(k),
            }
        }
        match file {
            Some(f) => {
                let weight = weight.unwrap_or(f.weight);
                c.kind = CheckKind::File { file: f, weight, dynamic, base: rs.weight };
            }
            None if self.diags.iter().all(|d| d.at != n.at()) => {
                self.error(n.at(), "FILE_CHECK needs track_file NAME".into())
            }
            None => {}
        }
        c
    }

    fn track_file(&mut self, n: &Node) {
        let Some(name) = self.value(n, 0, "a name", |v| Some(v.to_string())) else { return };
        let mut t = TrackFile { path: String::new(), weight: 1, init: None };
        for k in n.kids() {
            match k.name() {
                "file" => t.path = k.arg(0).unwrap_or_default().to_string(),
                "weight" => match k.arg(0).and_then(|w| w.parse::<i64>().ok()) {
                    Some(w) => t.weight = if k.arg(1) == Some("reverse") { -w } else { w },
                    None => self.error(
                        k.at(),
                        format!("track_file {name}: weight '{}' is not a number", k.arg(0).unwrap_or("")),
                    ),
                },
                "init_file" => {
                    let v = k.arg(0).filter(|a| *a != "overwrite").and_then(|v| v.parse().ok()).unwrap_or(0);
                    t.init = Some((v, k.args.iter().any(|a| a.text == "overwrite")));
                }
                _ => self.unknown(k),
            }
        }
        if t.path.is_empty() {
            self.error(n.at(), format!("track_file {name} needs file PATH"));
        }
        self.conf.track_files.insert(name, t);
    }

    fn check_setting(&mut self, c: &mut Check, k: &Node) {
        if self.timing(&mut c.timing, k) {
            return;
        }
        let addr = |v: &str| v.parse::<IpAddr>().ok();
        let port = |v: &str| v.parse::<u16>().ok();
        match (k.name(), &mut c.kind) {
            ("connect_ip", _) => c.connect_ip = self.value(k, 0, "an IP address", addr),
            ("connect_port", _) => c.connect_port = self.value(k, 0, "a port", port),
            ("bindto", _) => c.bindto = self.value(k, 0, "an IP address", addr),
            ("bind_port", _) => c.bind_port = self.value(k, 0, "a port", port),
            ("bind_if" | "fwmark", _) => {
                self.warn(k.at(), format!("'{}' is not used by xdpvs-checker: ignored", k.name()))
            }
            ("url", CheckKind::Http { .. }) => {
                let u = self.url(k);
                if let CheckKind::Http { urls, .. } = &mut c.kind {
                    urls.push(u);
                }
            }
            ("http_protocol", CheckKind::Http { protocol, .. }) => {
                let p = match k.arg(0) {
                    Some("1.0") => Some(HttpProtocol::V10),
                    Some("1.0C" | "1.0c") => Some(HttpProtocol::V10Close),
                    Some("1.1") => Some(HttpProtocol::V11),
                    _ => None,
                };
                match p {
                    Some(p) => *protocol = p,
                    None => self.error(k.at(), format!("http_protocol '{}': 1.0, 1.0C or 1.1", k.arg(0).unwrap_or(""))),
                }
            }
            ("virtualhost", CheckKind::Http { virtualhost, .. }) => *virtualhost = k.arg(0).map(str::to_string),
            ("sni_name", CheckKind::Http { sni, .. }) => *sni = k.arg(0).map(str::to_string),
            ("enable_sni", CheckKind::Http { .. }) => {}
            ("misc_path", CheckKind::Misc { path, .. }) => *path = k.arg(0).unwrap_or_default().to_string(),
            ("misc_timeout", CheckKind::Misc { .. }) => {
                let t = self.seconds(k);
                if let CheckKind::Misc { timeout, .. } = &mut c.kind {
                    *timeout = t;
                }
            }
            ("misc_dynamic", CheckKind::Misc { dynamic, .. }) => *dynamic = true,
            ("user", CheckKind::Misc { user, .. }) => *user = k.arg(0).map(str::to_string),
            ("payload", CheckKind::Udp { .. }) => {
                let p = self.value(k, 0, "hex bytes", unhex);
                if let (CheckKind::Udp { payload, .. }, Some(p)) = (&mut c.kind, p) {
                    *payload = p;
                }
            }
            ("require_reply", CheckKind::Udp { .. }) => {
                let r = match k.arg(0) {
                    None => Some(Vec::new()),
                    Some(_) => self.value(k, 0, "hex bytes", unhex),
                };
                if let CheckKind::Udp { require_reply, .. } = &mut c.kind {
                    *require_reply = r.or(Some(Vec::new()));
                }
            }
            ("min_reply_length" | "max_reply_length", CheckKind::Udp { .. }) => {
                let n = self.number(k, 65535).map(|n| n as usize);
                if let (CheckKind::Udp { min_reply, max_reply, .. }, Some(n)) = (&mut c.kind, n) {
                    if k.name() == "min_reply_length" {
                        *min_reply = n;
                    } else {
                        *max_reply = n;
                    }
                }
            }
            ("type", CheckKind::Dns { .. }) => {
                let t = self.value(k, 0, "a DNS type (A, NS, CNAME, SOA, MX, TXT, AAAA)", dns_type);
                if let (CheckKind::Dns { qtype, .. }, Some(t)) = (&mut c.kind, t) {
                    *qtype = t;
                }
            }
            ("name", CheckKind::Dns { name, .. }) => *name = k.arg(0).unwrap_or(".").to_string(),
            ("helo_name", CheckKind::Smtp { helo }) => match k.arg(0) {
                Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()) => *helo = h.to_string(),
                _ => self.error(k.at(), "helo_name: one word, the name SMTP_CHECK says HELO with".into()),
            },
            (_, CheckKind::Unsupported(_)) => {}
            _ => self.unknown(k),
        }
    }

    fn url(&mut self, n: &Node) -> Url {
        let mut u = Url { path: "/".into(), digest: None, status: Vec::new(), virtualhost: None, regex: None };
        let (mut pattern, mut no_match, mut options, mut min, mut max) = (None, false, Vec::new(), 0, None);
        for k in n.kids() {
            match k.name() {
                "path" => u.path = k.arg(0).unwrap_or("/").to_string(),
                "digest" => {
                    u.digest = self.value(k, 0, "an MD5 digest (32 hex digits)", |v| {
                        (v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
                    })
                }
                "status_code" => {
                    for a in &k.args {
                        match status_range(&a.text) {
                            Some(r) => u.status.push(r),
                            None => self.error(
                                k.at(),
                                format!("status_code '{}': a code or range, e.g. 200 or 200-299", a.text),
                            ),
                        }
                    }
                }
                "virtualhost" => u.virtualhost = k.arg(0).map(str::to_string),
                "regex" => pattern = self.value(k, 0, "a pattern", |v| Some((v.to_string(), k.at()))),
                "regex_no_match" => no_match = true,
                "regex_options" => match super::body_regex::check_options(k.args.iter().map(|w| w.text.as_str())) {
                    Ok(ignored) => {
                        options.extend(k.args.iter().map(|w| w.text.clone()));
                        for o in ignored {
                            self.warn(
                                k.at(),
                                format!("regex_options '{o}' is not supported by xdpvs-checker: ignored"),
                            );
                        }
                    }
                    Err(e) => self.error(k.at(), e),
                },
                "regex_min_offset" => min = self.number(k, u32::MAX).unwrap_or(0) as usize,
                "regex_max_offset" => max = self.number(k, u32::MAX).map(|v| v as usize),
                // PCRE2's JIT stack sizes: nothing to size here.
                "regex_stack" => {}
                _ => self.unknown(k),
            }
        }
        if let Some((p, at)) = pattern {
            match super::body_regex::compile(&p, &options) {
                Ok(re) => {
                    u.regex = Some(super::body_regex::BodyRegex {
                        pattern: p,
                        re,
                        no_match,
                        min_offset: min,
                        max_offset: max,
                    })
                }
                Err(e) => self.error(at, e),
            }
        }
        u
    }
}

/// `0a1b…` (an even number of hex digits).
fn unhex(v: &str) -> Option<Vec<u8>> {
    (v.len() % 2 == 0 && v.len() <= 2 * 65507).then_some(())?;
    (0..v.len()).step_by(2).map(|i| u8::from_str_radix(v.get(i..i + 2)?, 16).ok()).collect()
}

/// The DNS types keepalived's DNS_CHECK takes.
fn dns_type(v: &str) -> Option<u16> {
    Some(match v.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        _ => return None,
    })
}

/// The name `SMTP_CHECK` says `HELO` with unless `helo_name` sets one
/// (keepalived's).
pub const SMTP_DEFAULT_HELO: &str = "smtpchecker.keepalived.org";

fn check_kind_name(s: &str) -> bool {
    matches!(
        s,
        "TCP_CHECK"
            | "HTTP_GET"
            | "SSL_GET"
            | "MISC_CHECK"
            | "SMTP_CHECK"
            | "BFD_CHECK"
            | "DNS_CHECK"
            | "UDP_CHECK"
            | "PING_CHECK"
            | "FILE_CHECK"
    )
}

fn fwd_of(v: &str) -> Option<Fwd> {
    match v.to_ascii_uppercase().as_str() {
        "NAT" => Some(Fwd::Nat),
        "DR" => Some(Fwd::Dr),
        "TUN" => Some(Fwd::Tun),
        "FNAT" | "FULLNAT" => Some(Fwd::FullNat),
        _ => None,
    }
}

/// Seconds, decimals allowed (keepalived 2.x timers).
pub fn secs(v: &str) -> Option<Duration> {
    let x: f64 = v.parse().ok()?;
    (x.is_finite() && (0.0..=86_400.0 * 365.0).contains(&x)).then(|| Duration::from_secs_f64(x))
}

/// `200` or `200-299`.
fn status_range(v: &str) -> Option<(u16, u16)> {
    let (a, b) = v.split_once('-').unwrap_or((v, v));
    let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
    (a <= b && (100..=599).contains(&a) && b <= 599).then_some((a, b))
}

/// A netmask (255.255.255.0) or a prefix length (24, 64).
fn prefix_len(v: &str) -> Option<u8> {
    if let Ok(n) = v.parse::<u8>() {
        return (n <= 128).then_some(n);
    }
    let m: std::net::Ipv4Addr = v.parse().ok()?;
    let bits = u32::from(m);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(bits.leading_ones() as u8)
}

/// `a.b.c.d`, `a.b.c.d-e` (IPv6: `…:x-y`, the last group), or `addr/len`.
pub fn addr_range(v: &str) -> Option<(IpAddr, IpAddr)> {
    if let Ok(a) = v.parse::<IpAddr>() {
        return Some((a, a));
    }
    if let Some((a, len)) = v.split_once('/') {
        let a: IpAddr = a.parse().ok()?;
        let len: u32 = len.parse().ok()?;
        return match a {
            IpAddr::V4(a) if len <= 32 => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                let base = u32::from(a) & mask;
                Some((IpAddr::from(base.to_be_bytes()), IpAddr::from((base | !mask).to_be_bytes())))
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                let base = u128::from(a) & mask;
                Some((IpAddr::from(base.to_be_bytes()), IpAddr::from((base | !mask).to_be_bytes())))
            }
            _ => None,
        };
    }
    let (a, last) = v.rsplit_once('-')?;
    let first: IpAddr = a.parse().ok()?;
    match first {
        IpAddr::V4(f) => {
            let last: u8 = last.parse().ok()?;
            let mut o = f.octets();
            (last >= o[3]).then(|| {
                o[3] = last;
                (first, IpAddr::from(o))
            })
        }
        IpAddr::V6(f) => {
            let last = u16::from_str_radix(last, 16).ok()?;
            let mut s = f.segments();
            (last >= s[7]).then(|| {
                s[7] = last;
                (first, IpAddr::from(s))
            })
        }
    }
}

/// The addresses `first..=last`, at most `max` of them.
pub fn expand(first: IpAddr, last: IpAddr, max: usize) -> Vec<IpAddr> {
    match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            (u32::from(a)..=u32::from(b)).take(max).map(|x| IpAddr::from(x.to_be_bytes())).collect()
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let (a, b) = (u128::from(a), u128::from(b));
            (0..max as u128)
                .map_while(|i| a.checked_add(i).filter(|x| *x <= b))
                .map(|x| IpAddr::from(x.to_be_bytes()))
                .collect()
        }
        _ => Vec::new(),
    }
}
