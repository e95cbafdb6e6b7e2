//! Interfaces, routes and neighbours: where a rewritten frame goes next.
//!
//! The I/O layer fills this from the kernel (netlink); the engine only reads
//! it. A session resolves its next hops once, at creation, to indexes into
//! `neighbours`; indexes are stable across updates (entries are updated in
//! place and only appended), so a MAC change reaches established sessions
//! with the next configuration generation and costs nothing per packet.

use crate::wire::ethernet::Mac;
use hashbrown::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A device the balancer transmits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mac: Mac,
    pub mtu: u16,
    /// Source for tunnels and generated ICMP.
    pub addr4: Option<Ipv4Addr>,
    pub addr6: Option<Ipv6Addr>,
    /// The NIC's RSS key and indirection table, when readable.
    pub rss: Option<super::rss::Rss>,
}

/// A route: `net/prefix` reached on `iface`, directly or via `gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub net: IpAddr,
    pub prefix: u8,
    pub iface: u16,
    pub gateway: Option<IpAddr>,
}

/// A neighbour; `mac` is `None` while unresolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub addr: IpAddr,
    pub iface: u16,
    pub mac: Option<Mac>,
}

/// A resolved next hop: the neighbour index and whether the destination is
/// on-link (no gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub neigh: u32,
    pub on_link: bool,
}

/// Why no next hop could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHopError {
    NoRoute,
    /// The route is known but the neighbour is not in the table yet: the I/O
    /// layer should ask the kernel to resolve `addr`.
    Unresolved(IpAddr),
}

#[derive(Debug, Clone, Default)]
pub struct NetState {
    pub ifaces: Vec<Iface>,
    /// Every address of this host, on any interface: traffic to them (but
    /// a VIP's or a local address's) is the host's own.
    pub host_addrs: Vec<IpAddr>,
    routes: Vec<Route>,
    /// Per route: the neighbour index of its gateway, when known.
    gateways: Vec<Option<u32>>,
    neighbours: Vec<Neighbour>,
    index: HashMap<IpAddr, u32>,
}

impl NetState {
    pub fn new(ifaces: Vec<Iface>) -> Self {
        Self { ifaces, ..Self::default() }
    }

    /// Adds a route (kept ordered longest prefix first).
    pub fn add_route(&mut self, r: Route) {
        let at = self.routes.partition_point(|x| x.prefix >= r.prefix);
        let gw = r.gateway.and_then(|g| self.index.get(&g).copied());
        self.routes.insert(at, r);
        self.gateways.insert(at, gw);
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn clear_routes(&mut self) {
        self.routes.clear();
        self.gateways.clear();
    }

    /// Adds or updates a neighbour in place; returns its stable index.
    pub fn set_neighbour(&mut self, addr: IpAddr, iface: u16, mac: Option<Mac>) -> u32 {
        if let Some(&i) = self.index.get(&addr) {
            let n = &mut self.neighbours[i as usize];
            n.iface = iface;
            n.mac = mac;
            return i;
        }
        let i = self.neighbours.len() as u32;
        self.neighbours.push(Neighbour { addr, iface, mac });
        self.index.insert(addr, i);
        for (r, gw) in self.routes.iter().zip(self.gateways.iter_mut()) {
            if r.gateway == Some(addr) {
                *gw = Some(i);
            }
        }
        i
    }

    pub fn neighbours(&self) -> &[Neighbour] {
        &self.neighbours
    }

    #[inline]
    pub fn neighbour(&self, i: u32) -> Option<&Neighbour> {
        self.neighbours.get(i as usize)
    }

    /// Longest-prefix match, then the neighbour for the gateway or the
    /// destination itself.
    pub fn next_hop(&self, dst: IpAddr) -> Result<NextHop, NextHopError> {
        let at = self.routes.iter().position(|r| prefix_match(r.net, r.prefix, dst)).ok_or(NextHopError::NoRoute)?;
        let r = &self.routes[at];
        let hop = r.gateway.unwrap_or(dst);
        let known = match self.gateways[at] {
            Some(i) => Some(i),
            None => self.index.get(&hop).copied(),
        };
        match known.as_ref() {
            Some(&neigh) if self.neighbours[neigh as usize].mac.is_some() => {
                Ok(NextHop { neigh, on_link: r.gateway.is_none() })
            }
            _ => Err(NextHopError::Unresolved(hop)),
        }
    }

    /// The source address of `iface` for family of `like`.
    pub fn iface_addr(&self, iface: u16, v6: bool) -> Option<IpAddr> {
        let i = self.ifaces.get(usize::from(iface))?;
        if v6 {
            i.addr6.map(IpAddr::V6)
        } else {
            i.addr4.map(IpAddr::V4)
        }
    }
}

/// True when `addr` lies in `net/prefix` (families must match).
pub fn prefix_match(net: IpAddr, prefix: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            u32::from(n) & m == u32::from(a) & m
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            u128::from(n) & m == u128::from(a) & m
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_then_gateway() {
        let mut n = NetState::new(vec![]);
        n.add_route(Route { net: ip("0.0.0.0"), prefix: 0, iface: 0, gateway: Some(ip("198.18.0.254")) });
        n.add_route(Route { net: ip("198.18.1.0"), prefix: 24, iface: 1, gateway: None });
        let gw = n.set_neighbour(ip("198.18.0.254"), 0, Some([2, 0, 0, 0, 0, 0xfe]));
        assert_eq!(n.next_hop(ip("203.0.113.9")), Ok(NextHop { neigh: gw, on_link: false }));
        assert_eq!(n.next_hop(ip("198.18.1.7")), Err(NextHopError::Unresolved(ip("198.18.1.7"))));
        let rs = n.set_neighbour(ip("198.18.1.7"), 1, Some([2, 0, 0, 0, 1, 7]));
        assert_eq!(n.next_hop(ip("198.18.1.7")), Ok(NextHop { neigh: rs, on_link: true }));
        // An update keeps the index.
        assert_eq!(n.set_neighbour(ip("198.18.1.7"), 1, Some([2, 0, 0, 0, 1, 8])), rs);
        assert_eq!(n.next_hop(ip("2001:db8::1")), Err(NextHopError::NoRoute));
    }

    #[test]
    fn prefix_edges() {
        assert!(prefix_match(ip("198.18.0.0"), 15, ip("198.19.255.255")));
        assert!(!prefix_match(ip("198.18.0.0"), 15, ip("198.20.0.0")));
        assert!(prefix_match(ip("2001:db8::"), 32, ip("2001:db8:ffff::1")));
        assert!(prefix_match(ip("::"), 0, ip("2001:db8::1")));
        assert!(!prefix_match(ip("0.0.0.0"), 0, ip("2001:db8::1")));
    }
}
