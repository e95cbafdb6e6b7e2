//! How ipvsadm writes the parts of a configuration: `addr:port`, a
//! service's option (`-t VIP:port`), a netmask, scheduler flags, the
//! `--match` list. One definition each, for `-S`, the listings and the
//! error texts.

use crate::config::{sched_flags, Match, Proto, ServiceKey};
use std::net::IpAddr;

/// `addr:port`, with brackets for IPv6.
pub fn addr_port(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The service as ipvsadm names it on a command line: `-t VIP:port`,
/// `-u VIP:port` or `-f MARK`.
pub fn service_arg(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr(m) => {
            let flag = if m.proto == Proto::Tcp { "-t" } else { "-u" };
            format!("{flag} {}", addr_port(m.addr, m.port))
        }
        ServiceKey::Fwmark { mark, .. } => format!("-f {mark}"),
    }
}

/// A prefix length as ipvsadm writes a netmask: dotted for IPv4, a number
/// for IPv6.
pub fn netmask_text(prefix: u8, v6: bool) -> String {
    if v6 {
        prefix.to_string()
    } else {
        let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
        std::net::Ipv4Addr::from(m).to_string()
    }
}

/// `-b` flags as text (`sh-fallback,sh-port` style for sh and mh).
pub fn sched_flags_text(flags: u8, sched: &str) -> String {
    let prefix = if sched == "sh" || sched == "mh" { sched } else { "" };
    let mut v = Vec::new();
    if flags & sched_flags::FALLBACK != 0 {
        v.push(if prefix.is_empty() { "flag-1".to_string() } else { format!("{prefix}-fallback") });
    }
    if flags & sched_flags::PORT != 0 {
        v.push(if prefix.is_empty() { "flag-2".to_string() } else { format!("{prefix}-port") });
    }
    if flags & sched_flags::FLAG3 != 0 {
        v.push("flag-3".to_string());
    }
    v.join(",")
}

/// The `--match` text of a fwmark service's matches, one argument per
/// (protocol, address) with its ports: `tcp:198.18.0.10:80,443`.
pub fn matches_text(ms: &[Match]) -> Vec<String> {
    let mut groups: Vec<(Proto, IpAddr, Vec<u16>)> = Vec::new();
    for m in ms {
        match groups.iter_mut().find(|g| g.0 == m.proto && g.1 == m.addr) {
            Some(g) => g.2.push(m.port),
            None => groups.push((m.proto, m.addr, vec![m.port])),
        }
    }
    groups
        .into_iter()
        .map(|(p, a, ports)| {
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            let addr = if a.is_ipv6() { format!("[{a}]") } else { a.to_string() };
            format!("{}:{addr}:{}", p.name().to_lowercase(), ports.join(","))
        })
        .collect()
}
