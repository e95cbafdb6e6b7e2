//! The kernel's view of the network, for the engine's next hops: interface
//! MACs, MTUs and addresses, routes, and neighbours, read over rtnetlink
//! (`netlink-packet-route` messages on a `netlink-sys` socket) and kept
//! current from the kernel's events.
//!
//! Contract: [`Kernel`] answers dumps on the control thread only (workers
//! never wait for it). [`watch`] runs a thread subscribed to link, address,
//! route and neighbour events that only says "something changed" (an atomic
//! flag and the region's doorbell): the control thread then re-reads the
//! state and publishes it, so a neighbour the kernel learns reaches the
//! workers at once, with no polling. An address the engine could not
//! resolve is handed to the kernel's own resolution by sending it one
//! datagram ([`resolve`]), so no static neighbour entries are ever needed.

use crate::lb::net::{Iface, NetState, Route};
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    index: u32,
    name: String,
    mac: Option<[u8; 6]>,
    mtu: u32,
}

/// A request socket for dumps, and the interfaces xdpvs serves.
pub struct Kernel {
    sock: Socket,
    seq: u32,
    /// Served interfaces by engine index: (name, ifindex).
    served: Vec<(String, u32)>,
}

fn io_err(what: &str, e: std::io::Error) -> String {
    format!("netlink {what}: {e}")
}

impl Kernel {
    /// Opens the socket and finds every served interface by name.
    pub fn open(names: &[String]) -> Result<Kernel, String> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| io_err("socket", e))?;
        sock.bind_auto().map_err(|e| io_err("bind", e))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(|e| io_err("connect", e))?;
        let mut k = Kernel { sock, seq: 0, served: Vec::new() };
        let links = k.links()?;
        for n in names {
            let l = links
                .iter()
                .find(|l| &l.name == n)
                .ok_or_else(|| format!("no network interface named '{n}' (see `ip link`)"))?;
            k.served.push((n.clone(), l.index));
        }
        Ok(k)
    }

    /// Sends a dump request and collects every answer.
    fn dump(&mut self, req: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, String> {
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_DUMP | NLM_F_REQUEST;
        self.seq = self.seq.wrapping_add(1);
        hdr.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(hdr, NetlinkPayload::from(req));
        msg.finalize();
        let mut buf = vec![0u8; msg.header.length as usize];
        msg.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| io_err("send", e))?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full().map_err(|e| io_err("receive", e))?;
            if self.parse_into(&data, &mut out)? {
                return Ok(out);
            }
        }
    }

    /// Parses one datagram of a dump; true once the dump is done.
    fn parse_into(&self, mut data: &[u8], out: &mut Vec<RouteNetlinkMessage>) -> Result<bool, String> {
        while !data.is_empty() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(data)
                .map_err(|e| format!("netlink: undecodable answer: {e}"))?;
            let len = (msg.header.length as usize).min(data.len());
            if msg.header.sequence_number == self.seq {
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(true),
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(format!("netlink: {e}")),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
            if len == 0 {
                break;
            }
            data = &data[len..];
        }
        Ok(false)
    }

    fn links(&mut self) -> Result<Vec<Link>, String> {
        let msgs = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| if let RouteNetlinkMessage::NewLink(l) = m { Some(link(&l)) } else { None })
            .collect())
    }

    /// The engine index of a kernel interface index, if served.
    fn engine_index(&self, ifindex: u32) -> Option<u16> {
        self.served.iter().position(|s| s.1 == ifindex).map(|i| i as u16)
    }

    /// Every served interface: MAC, MTU, first IPv4 and global IPv6 address.
    /// `rss` gives each one's RSS key and table where the driver shows them.
    pub fn ifaces(&mut self, rss: impl Fn(&str) -> Option<crate::lb::rss::Rss>) -> Result<Vec<Iface>, String> {
        let links = self.links()?;
        let addrs = self.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        let mut out = Vec::new();
        for (name, index) in &self.served {
            let l = links.iter().find(|l| l.index == *index).ok_or_else(|| format!("interface {name} is gone"))?;
            let mac = l.mac.ok_or_else(|| format!("{name} has no Ethernet address"))?;
            let mine: Vec<&AddressMessage> = addrs
                .iter()
                .filter_map(|m| if let RouteNetlinkMessage::NewAddress(a) = m { Some(a) } else { None })
                .filter(|a| a.header.index == *index)
                .collect();
            let addr4 = subnet_address(&mine, |a| match a {
                IpAddr::V4(v) => Some(v),
                IpAddr::V6(_) => None,
            });
            let addr6 = subnet_address(&mine, |a| match a {
                IpAddr::V6(v) if !v.is_unicast_link_local() => Some(v),
                _ => None,
            });
            let mtu = l.mtu.min(u32::from(u16::MAX)) as u16;
            out.push(Iface { name: name.clone(), mac, mtu, addr4, addr6, rss: rss(name) });
        }
        Ok(out)
    }

    /// Re-reads interfaces, routes and neighbours of the served interfaces
    /// into `net`, keeping neighbour indexes stable (and each interface's RSS
    /// key as read at start). True when anything changed.
    pub fn refresh(&mut self, net: &mut NetState) -> Result<bool, String> {
        let before = (net.ifaces.clone(), net.host_addrs.clone(), net.routes().to_vec(), net.neighbours().to_vec());
        net.ifaces = self.ifaces(|n| before.0.iter().find(|i| i.name == n).and_then(|i| i.rss.clone()))?;
        net.host_addrs = self.host_addrs()?;
        net.clear_routes();
        for r in self.dump(RouteNetlinkMessage::GetRoute(RouteMessage::default()))? {
            if let RouteNetlinkMessage::NewRoute(r) = r {
                if let Some(route) = self.route(&r) {
                    net.add_route(route);
                }
            }
        }
        for n in self.dump(RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()))? {
            if let RouteNetlinkMessage::NewNeighbour(n) = n {
                if let Some((dst, iface, mac)) = self.neighbour(&n) {
                    net.set_neighbour(dst, iface, mac);
                }
            }
        }
        let after = (net.ifaces.clone(), net.host_addrs.clone(), net.routes().to_vec(), net.neighbours().to_vec());
        Ok(before != after)
    }

    /// Every address on every interface of the host, sorted.
    fn host_addrs(&mut self) -> Result<Vec<IpAddr>, String> {
        let msgs = self.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        let mut all: Vec<IpAddr> = msgs
            .iter()
            .filter_map(|m| if let RouteNetlinkMessage::NewAddress(a) = m { address(a) } else { None })
            .collect();
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// A unicast route of the main table through a served interface.
    fn route(&self, r: &RouteMessage) -> Option<Route> {
        let h = &r.header;
        let table = r.attributes.iter().find_map(|a| if let RouteAttribute::Table(t) = a { Some(*t) } else { None });
        if table.unwrap_or(u32::from(h.table)) != u32::from(RouteHeader::RT_TABLE_MAIN) || h.kind != RouteType::Unicast
        {
            return None;
        }
        let v6 = h.address_family == AddressFamily::Inet6;
        let mut dst = None;
        let mut gateway = None;
        let mut oif = None;
        for a in &r.attributes {
            match a {
                RouteAttribute::Destination(d) => dst = route_addr(d),
                RouteAttribute::Gateway(g) => gateway = route_addr(g),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        let iface = self.engine_index(oif?)?;
        let net = dst.unwrap_or(if v6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) });
        Some(Route { net, prefix: h.destination_prefix_length, iface, gateway })
    }

    /// A neighbour on a served interface; its MAC only while usable.
    fn neighbour(&self, n: &NeighbourMessage) -> Option<(IpAddr, u16, Option<[u8; 6]>)> {
        let iface = self.engine_index(n.header.ifindex)?;
        let mut dst = None;
        let mut mac = None;
        for a in &n.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => dst = Some(IpAddr::V4(*v)),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => dst = Some(IpAddr::V6(*v)),
                NeighbourAttribute::LinkLayerAddress(m) => mac = <[u8; 6]>::try_from(m.as_slice()).ok(),
                _ => {}
            }
        }
        let usable = matches!(
            n.header.state,
            NeighbourState::Reachable
                | NeighbourState::Stale
                | NeighbourState::Delay
                | NeighbourState::Probe
                | NeighbourState::Permanent
                | NeighbourState::Noarp
        );
        // Multicast entries (one per interface, the same address) are not next hops.
        let dst = dst.filter(|d| !d.is_multicast())?;
        Some((dst, iface, mac.filter(|_| usable)))
    }
}

fn link(l: &LinkMessage) -> Link {
    let mut out = Link { index: l.header.index, name: String::new(), mac: None, mtu: 1500 };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name.clone_from(n),
            LinkAttribute::Address(m) => out.mac = <[u8; 6]>::try_from(m.as_slice()).ok(),
            LinkAttribute::Mtu(m) => out.mtu = *m,
            _ => {}
        }
    }
    out
}

/// An address message's own address (IFA_LOCAL, else IFA_ADDRESS, as `ip` shows it).
fn address(a: &AddressMessage) -> Option<IpAddr> {
    let local = a.attributes.iter().find_map(|x| if let AddressAttribute::Local(v) = x { Some(*v) } else { None });
    local.or_else(|| {
        a.attributes.iter().find_map(|x| if let AddressAttribute::Address(v) = x { Some(*v) } else { None })
    })
}

/// The interface's own address in its subnet, of one family: the one with
/// the shortest prefix (VIPs and local addresses are host routes, /32 or
/// /128, and must not become the source of what the director sends).
fn subnet_address<A>(addrs: &[&AddressMessage], family: impl Fn(IpAddr) -> Option<A>) -> Option<A> {
    addrs
        .iter()
        .filter_map(|a| Some((a.header.prefix_len, family(address(a)?)?)))
        .min_by_key(|(prefix, _)| *prefix)
        .map(|(_, a)| a)
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

/// Starts the event thread: every link, address, route or neighbour event
/// (and a lost-event overflow, which means "re-read everything") sets
/// `changed` and calls `wake`. Ends within 20 ms of `stop` being set.
pub fn watch(
    changed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    wake: impl Fn() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, String> {
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| io_err("socket", e))?;
    sock.bind(&SocketAddr::new(0, 0)).map_err(|e| io_err("bind", e))?;
    for g in [
        libc::RTNLGRP_LINK,
        libc::RTNLGRP_NEIGH,
        libc::RTNLGRP_IPV4_IFADDR,
        libc::RTNLGRP_IPV6_IFADDR,
        libc::RTNLGRP_IPV4_ROUTE,
        libc::RTNLGRP_IPV6_ROUTE,
    ] {
        sock.add_membership(g).map_err(|e| io_err("subscribe", e))?;
    }
    std::thread::Builder::new()
        .name("xdpvs-netlink".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            while !stop.load(Ordering::Relaxed) {
                if !crate::xsk::poll_readable(&[sock.as_raw_fd()], 20) {
                    continue;
                }
                // Data or an overflow error: either way the state moved.
                let _ = sock.recv(&mut &mut buf[..], libc::MSG_DONTWAIT);
                changed.store(true, Ordering::Release);
                wake();
            }
        })
        .map_err(|e| format!("cannot start the netlink thread: {e}"))
}

/// Asks the kernel to resolve `addr`: one datagram to the discard port
/// makes it ARP / solicit for the next hop.
pub fn resolve(addr: IpAddr) {
    let bind = if addr.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    if let Ok(s) = UdpSocket::bind((bind, 0)) {
        let _ = s.send_to(b"xdpvs", (addr, 9));
    }
}

/// Receive queues of `iface` (from sysfs; 1 when unknown).
pub fn rx_queues(iface: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count() as u32)
        .unwrap_or(1)
        .max(1)
}

/// The RSS key and indirection table of `iface`, where the driver shows
/// them (`ethtool -x`; veth does not).
pub fn rss(iface: &str) -> Option<crate::lb::rss::Rss> {
    let o = std::process::Command::new("ethtool").args(["-x", iface]).output().ok()?;
    o.status.success().then(|| crate::lb::rss::parse_ethtool_x(&String::from_utf8_lossy(&o.stdout))).flatten()
}

/// XDP attach flags (`XDP_FLAGS_SKB_MODE`, `XDP_FLAGS_DRV_MODE`).
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Attaches program `fd` to interface `ifindex` through rtnetlink (`fd`
/// -1: detaches), replacing whatever program of the same mode is there
/// at once. Unlike a bpf_link, an attachment made this way outlives the
/// process: what a daemon restart keeps steering through (see
/// `daemon::handover`).
pub fn set_xdp(ifindex: u32, fd: i32, flags: u32) -> Result<(), std::io::Error> {
    use netlink_packet_core::NLM_F_ACK;
    use netlink_packet_route::link::LinkXdp;
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let mut link = LinkMessage::default();
    link.header.index = ifindex;
    link.attributes.push(LinkAttribute::Xdp(vec![LinkXdp::Fd(fd), LinkXdp::Flags(flags)]));
    let mut hdr = NetlinkHeader::default();
    hdr.flags = NLM_F_REQUEST | NLM_F_ACK;
    hdr.sequence_number = 1;
    let mut msg = NetlinkMessage::new(hdr, NetlinkPayload::from(RouteNetlinkMessage::SetLink(link)));
    msg.finalize();
    let mut buf = vec![0u8; msg.header.length as usize];
    msg.serialize(&mut buf);
    sock.send(&buf, 0)?;
    let (data, _) = sock.recv_from_full()?;
    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data).map(|m| m.payload) {
        Ok(NetlinkPayload::Error(e)) => match e.code {
            None => Ok(()),
            Some(c) => Err(std::io::Error::from_raw_os_error(-c.get())),
        },
        Ok(_) => Ok(()),
        Err(e) => Err(std::io::Error::other(format!("undecodable netlink answer: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over loopback's real netlink: `lo` is found with its address, and
    /// the dumps parse.
    #[test]
    fn reads_loopback() {
        if let Ok(name) = std::env::var("NLIF") {
            let mut k = Kernel::open(&[name]).expect("netlink works");
            let mut net = NetState::new(k.ifaces(|_| None).expect("if"));
            println!("{:?}", k.refresh(&mut net));
            println!("{:?}\n{:?}\n{:?}", net.ifaces, net.routes(), net.neighbours());
            return;
        }
        let mut k = Kernel::open(&["lo".to_string()]).expect("netlink works");
        let ifaces = k.ifaces(|_| None).expect("lo");
        assert_eq!(ifaces[0].addr4, Some(Ipv4Addr::LOCALHOST));
        let mut net = NetState::new(ifaces);
        k.refresh(&mut net).expect("routes and neighbours");
        assert!(Kernel::open(&["no-such-if0".to_string()]).err().unwrap().contains("no network interface named"));
    }
}
