//! The kernel's view of the network, for the engine's next hops: interface
//! MACs, MTUs and addresses, routes, and neighbours.
//!
//! Read through iproute2's JSON output (`ip -j`, itself a netlink client),
//! on the control thread only: workers never wait for it. An address the
//! engine could not resolve is handed to the kernel's own neighbour
//! resolution by sending it one datagram (the kernel then ARPs / solicits),
//! so no static neighbour entries are ever needed.

use crate::lb::net::{Iface, NetState, Route};
use crate::wire::ethernet::parse_mac;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::Command;

fn ip_json(args: &[&str]) -> Result<Value, String> {
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!("`ip -j {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_str(&text).map_err(|e| format!("`ip -j {}`: {e}", args.join(" ")))
}

/// Reads one interface: MAC, MTU, first IPv4 and global IPv6 address.
pub fn iface(name: &str) -> Result<Iface, String> {
    let links = ip_json(&["link", "show", "dev", name])
        .map_err(|_| format!("no network interface named '{name}' (see `ip link`)"))?;
    let link = links.get(0).ok_or_else(|| format!("no network interface named '{name}'"))?;
    let mac = link
        .get("address")
        .and_then(Value::as_str)
        .and_then(parse_mac)
        .ok_or_else(|| format!("{name} has no Ethernet address"))?;
    let mtu = link.get("mtu").and_then(Value::as_u64).unwrap_or(1500).min(u64::from(u16::MAX)) as u16;
    let addrs = ip_json(&["addr", "show", "dev", name])?;
    let mut addr4 = None;
    let mut addr6 = None;
    for a in addrs.get(0).and_then(|l| l.get("addr_info")).and_then(Value::as_array).into_iter().flatten() {
        let Some(local) = a.get("local").and_then(Value::as_str) else { continue };
        let global = a.get("scope").and_then(Value::as_str) == Some("global");
        match local.parse::<IpAddr>() {
            Ok(IpAddr::V4(v)) if addr4.is_none() => addr4 = Some(v),
            Ok(IpAddr::V6(v)) if addr6.is_none() && global => addr6 = Some(v),
            _ => {}
        }
    }
    // The RSS key and indirection table, where the driver shows them (veth does not).
    let rss = Command::new("ethtool")
        .args(["-x", name])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| crate::lb::rss::parse_ethtool_x(&String::from_utf8_lossy(&o.stdout)));
    Ok(Iface { name: name.into(), mac, mtu, addr4, addr6, rss })
}

fn parse_dst(dst: &str, v6: bool) -> Option<(IpAddr, u8)> {
    if dst == "default" {
        return Some(if v6 { (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0) } else { (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0) });
    }
    match dst.split_once('/') {
        Some((a, p)) => Some((a.parse().ok()?, p.parse().ok()?)),
        None => {
            let a: IpAddr = dst.parse().ok()?;
            Some((a, if a.is_ipv6() { 128 } else { 32 }))
        }
    }
}

/// Re-reads routes and neighbours of `ifaces` (indexes = positions) into
/// `net`, keeping neighbour indexes stable. Returns true when anything
/// changed.
pub fn refresh(net: &mut NetState, ifaces: &[String]) -> Result<bool, String> {
    let before = (net.routes().to_vec(), net.neighbours().to_vec());
    let dev_index = |v: &Value| {
        v.get("dev").and_then(Value::as_str).and_then(|d| ifaces.iter().position(|i| i == d)).map(|i| i as u16)
    };
    net.clear_routes();
    for (v6, fam) in [(false, "-4"), (true, "-6")] {
        for r in ip_json(&[fam, "route", "show", "table", "main"])?.as_array().into_iter().flatten() {
            let (Some(iface), Some(dst)) = (dev_index(r), r.get("dst").and_then(Value::as_str)) else { continue };
            let Some((net_addr, prefix)) = parse_dst(dst, v6) else { continue };
            if r.get("type").and_then(Value::as_str).is_some_and(|t| t != "unicast") {
                continue;
            }
            let gateway = r.get("gateway").and_then(Value::as_str).and_then(|g| g.parse().ok());
            net.add_route(Route { net: net_addr, prefix, iface, gateway });
        }
    }
    for n in ip_json(&["neigh", "show"])?.as_array().into_iter().flatten() {
        let (Some(iface), Some(dst)) =
            (dev_index(n), n.get("dst").and_then(Value::as_str).and_then(|d| d.parse::<IpAddr>().ok()))
        else {
            continue;
        };
        let usable = n.get("state").and_then(Value::as_array).is_some_and(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .any(|st| matches!(st, "REACHABLE" | "STALE" | "DELAY" | "PROBE" | "PERMANENT" | "NOARP"))
        });
        let mac = n.get("lladdr").and_then(Value::as_str).and_then(parse_mac).filter(|_| usable);
        net.set_neighbour(dst, iface, mac);
    }
    Ok(before != (net.routes().to_vec(), net.neighbours().to_vec()))
}

/// Asks the kernel to resolve `addr`: one datagram to the discard port
/// makes it ARP / solicit for the next hop.
pub fn resolve(addr: IpAddr) {
    let bind: SocketAddr =
        if addr.is_ipv6() { "[::]:0".parse().expect("literal") } else { "0.0.0.0:0".parse().expect("literal") };
    if let Ok(s) = UdpSocket::bind(bind) {
        let _ = s.send_to(b"xdpvs", SocketAddr::new(addr, 9));
    }
}

/// Receive queues of `iface` (from sysfs; 1 when unknown).
pub fn rx_queues(iface: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count() as u32)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_destinations() {
        assert_eq!(parse_dst("default", false), Some(("0.0.0.0".parse().unwrap(), 0)));
        assert_eq!(parse_dst("198.18.0.0/15", false), Some(("198.18.0.0".parse().unwrap(), 15)));
        assert_eq!(parse_dst("2001:db8::/32", true), Some(("2001:db8::".parse().unwrap(), 32)));
        assert_eq!(parse_dst("198.19.0.7", false), Some(("198.19.0.7".parse().unwrap(), 32)));
        assert_eq!(parse_dst("nonsense", false), None);
    }
}
