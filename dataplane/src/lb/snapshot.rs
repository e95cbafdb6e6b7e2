//! What a core runs on: one published generation of the rules (the shared
//! configuration model, `xdpvs_api::config::Config`), the kernel's network
//! state at that time, and the tables the packet path derives from the
//! rules (Maglev lookup tables), built here, off the packet path.
//!
//! Contract: a [`Snapshot`] is immutable once built. The control thread
//! builds the next one with [`Snapshot::next`] (reusing every table whose
//! service did not change) and hands an `Arc` of it to every core; cores pick
//! it up between batches. Derefs to the rules, so `cfg.service(slot)` reads
//! as it would on the model.

use super::net::{Neighbour, NetState};
use super::sched::mh::{Maglev, DEFAULT_TABLE_SIZE};
use hashbrown::HashSet;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;
use xdpvs_api::config::{Config, SchedKind, Service};

/// A Maglev table and the service version it was built for.
#[derive(Debug, Clone)]
struct Built {
    serial: u32,
    epoch: u32,
    table: Arc<Maglev>,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    rules: Config,
    pub net: Arc<NetState>,
    /// By service slot (mh services only).
    maglev: Vec<Option<Built>>,
    /// Addresses no client has: VIPs, local addresses, real servers, the
    /// host's own.
    own: HashSet<IpAddr>,
    /// The smallest MTU of the served interfaces (a shorter packet is never
    /// too big).
    min_mtu: usize,
    /// By neighbour index: the Ethernet addresses a frame to it gets and
    /// the interface it leaves by, once its MAC is known.
    heads: Vec<Option<L2Head>>,
}

/// A resolved neighbour's Ethernet header, but for the type: the
/// destination (its MAC) and source (the interface's) as one 12-byte write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Head {
    pub macs: [u8; 12],
    pub iface: u16,
}

impl Deref for Snapshot {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.rules
    }
}

impl Snapshot {
    pub fn new(rules: Config, net: Arc<NetState>) -> Self {
        Self::default().next(rules, net)
    }

    /// The snapshot of `rules` over `net`, reusing this one's tables for
    /// services that did not change.
    pub fn next(&self, rules: Config, net: Arc<NetState>) -> Self {
        let mut maglev = vec![None; rules.service_slots()];
        for (slot, s) in rules.services().filter(|(_, s)| s.spec.sched == SchedKind::Mh) {
            let old = self.maglev.get(slot as usize).and_then(Option::as_ref);
            let built = match old {
                Some(b) if b.serial == s.serial && b.epoch == s.epoch => b.clone(),
                _ => Built { serial: s.serial, epoch: s.epoch, table: Arc::new(build_maglev(&rules, s)) },
            };
            maglev[slot as usize] = Some(built);
        }
        let dests = (0..rules.dest_slots() as u32).filter_map(|d| rules.dest(d)).map(|d| d.spec.addr);
        let vips = rules.services().flat_map(|(_, s)| s.matches().map(|m| m.addr).collect::<Vec<_>>());
        let laddrs = (0..rules.laddr_slots() as u32).filter_map(|l| rules.laddr(l)).map(|l| l.addr);
        let own = dests.chain(vips).chain(laddrs).chain(net.host_addrs.iter().copied()).collect();
        let min_mtu = net.ifaces.iter().map(|i| usize::from(i.mtu)).min().unwrap_or(1500);
        let heads = net.neighbours().iter().map(|n| l2_head(&net, n)).collect();
        Self { rules, net, maglev, own, min_mtu, heads }
    }

    /// An address of the balancer's own: a VIP, a local address, a real
    /// server, the director. No client's packet comes from one.
    #[inline]
    pub fn is_own(&self, a: IpAddr) -> bool {
        self.own.contains(&a)
    }

    #[inline]
    pub fn min_mtu(&self) -> usize {
        self.min_mtu
    }

    /// Neighbour `nh`'s Ethernet addresses, if it is resolved on an
    /// interface that exists (else the full look, [`NetState`], says why not).
    #[inline]
    pub fn l2_head(&self, nh: u32) -> Option<&L2Head> {
        self.heads.get(nh as usize)?.as_ref()
    }

    /// The Maglev table of service `slot` (mh services).
    pub fn maglev(&self, slot: u32) -> Option<&Arc<Maglev>> {
        self.maglev.get(slot as usize)?.as_ref().map(|b| &b.table)
    }
}

fn l2_head(net: &NetState, n: &Neighbour) -> Option<L2Head> {
    let (dst, src) = (n.mac?, net.ifaces.get(usize::from(n.iface))?.mac);
    let mut macs = [0; 12];
    macs[..6].copy_from_slice(&dst);
    macs[6..].copy_from_slice(&src);
    Some(L2Head { macs, iface: n.iface })
}

fn build_maglev(rules: &Config, s: &Service) -> Maglev {
    let members: Vec<(IpAddr, u16, u32)> =
        s.dests.iter().filter_map(|&d| rules.dest(d)).map(|d| (d.spec.addr, d.spec.port, d.spec.weight)).collect();
    Maglev::build(&members, DEFAULT_TABLE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpvs_api::config::{DestSpec, Fwd, Match, Proto, ServiceKey, ServiceSpec};

    #[test]
    fn tables_are_rebuilt_only_for_changed_services() {
        let mut c = Config::default();
        let key = |port| ServiceKey::Addr(Match { proto: Proto::Tcp, addr: "198.18.0.10".parse().unwrap(), port });
        let rs = |a: &str, weight| DestSpec {
            addr: a.parse().unwrap(),
            port: 80,
            weight,
            fwd: Fwd::Dr,
            u_threshold: 0,
            l_threshold: 0,
        };
        for port in [80, 443] {
            c.add_service(ServiceSpec::new(key(port), SchedKind::Mh)).unwrap();
            c.add_dest(&key(port), rs("198.19.0.1", 1)).unwrap();
        }
        let a = Snapshot::new(c.clone(), Arc::default());
        c.add_dest(&key(443), rs("198.19.0.2", 1)).unwrap();
        let b = a.next(c.clone(), Arc::default());
        assert!(Arc::ptr_eq(a.maglev(0).unwrap(), b.maglev(0).unwrap()), "unchanged service keeps its table");
        assert!(!Arc::ptr_eq(a.maglev(1).unwrap(), b.maglev(1).unwrap()), "changed service gets a new one");
        assert_eq!(b.maglev(1).unwrap().shares(2).iter().sum::<usize>(), DEFAULT_TABLE_SIZE);
    }
}
