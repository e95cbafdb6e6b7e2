//! The values of options: addresses with ports (service names as ipvsadm
//! resolves them), numbers in range, netmasks, scheduler flags, `--match`.

use crate::config::{sched_flags, Match, Proto};
use std::net::{IpAddr, Ipv4Addr};

pub(super) fn port_of(s: &str) -> Option<u16> {
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
pub(super) fn addr_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
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

pub(super) fn number<T: std::str::FromStr + PartialOrd>(s: &str, lo: T, hi: T) -> Option<T> {
    s.parse().ok().filter(|v| *v >= lo && *v <= hi)
}

pub(super) fn parse_netmask(s: &str, v6: bool) -> Option<u8> {
    if let Ok(p) = s.parse::<u8>() {
        return (p >= 1 && p <= if v6 { 128 } else { 32 }).then_some(p);
    }
    let m = u32::from(s.parse::<Ipv4Addr>().ok()?);
    let p = m.leading_ones();
    (!v6 && p >= 1 && m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

pub(super) fn parse_sched_flags(s: &str) -> Option<u8> {
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
pub(super) fn parse_match(s: &str) -> Option<Vec<Match>> {
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
