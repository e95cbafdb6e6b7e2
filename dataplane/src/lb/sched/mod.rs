//! Schedulers: pick a real server for a new connection.
//!
//! Each algorithm is one module implementing [`Scheduler`] with the semantics
//! of the Linux IPVS module of the same name; [`AnyScheduler`] dispatches over
//! them without dynamic allocation. Scheduler state is per core (as DPVS
//! keeps it per lcore): it sees that core's connection counts.
//!
//! A scheduler sees the service's real servers through [`Candidates`], in
//! IPVS list order (newest first), and answers a position in that list. No
//! scheduler ever answers a server of weight 0 or one flagged overloaded
//! (except the lblc/lblcr cache, which follows IPVS's own overload rule).

pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod wlc;
pub mod wrr;

use std::net::IpAddr;
use std::sync::Arc;
use xdpvs_api::config::{SchedKind, Service};

/// Per-core runtime state of a real server, as schedulers need it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    pub overloaded: bool,
}

impl Load {
    /// IPVS's `ip_vs_dest_conn_overhead`: active × 256 + inactive.
    #[inline]
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active) << 8) + u64::from(self.inactive)
    }

    /// Weight above zero and not overloaded.
    #[inline]
    pub fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }
}

/// The real servers of one service, as a scheduler sees them.
pub trait Candidates {
    fn len(&self) -> usize;
    fn load(&self, i: usize) -> Load;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Server `i`'s address and port: the tables of sh and dh are filled in
    /// this order (not list order), so every director builds the same table
    /// for the same servers whatever order they were added in.
    fn addr(&self, i: usize) -> (IpAddr, u16) {
        (IpAddr::from([0, 0, 0, 0]), i as u16)
    }
    /// The list positions in address order.
    fn in_address_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.addr(i));
        order
    }
}

impl Candidates for Vec<Load> {
    fn len(&self) -> usize {
        <[Load]>::len(self)
    }
    fn load(&self, i: usize) -> Load {
        self[i]
    }
}

/// What a scheduler may look at in the first packet of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// Now, in engine ticks.
    pub now: u32,
}

/// One scheduling algorithm.
pub trait Scheduler {
    /// A position in the candidate list, or `None` when none is available.
    fn schedule(&mut self, c: &dyn Candidates, flow: &Flow) -> Option<usize>;
}

/// Every scheduler, dispatched without boxing.
#[derive(Debug, Clone)]
pub enum AnyScheduler {
    Rr(rr::Rr),
    Wrr(wrr::Wrr),
    Lc(lc::Lc),
    Wlc(wlc::Wlc),
    Sed(sed::Sed),
    Nq(nq::Nq),
    Sh(sh::Sh),
    Dh(dh::Dh),
    Lblc(lblc::Lblc),
    Lblcr(lblcr::Lblcr),
    Mh(mh::Mh),
    Fo(fo::Fo),
    Ovf(ovf::Ovf),
}

/// Greatest common divisor (weights: wrr's step, Maglev's turns).
pub(crate) fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl AnyScheduler {
    /// Builds the scheduler of `svc` for its current real servers.
    pub fn new(svc: &Service, maglev: Option<&Arc<mh::Maglev>>, c: &dyn Candidates) -> Self {
        let flags = svc.spec.flags;
        match svc.spec.sched {
            SchedKind::Rr => Self::Rr(rr::Rr::default()),
            SchedKind::Wrr => Self::Wrr(wrr::Wrr::new(c)),
            SchedKind::Lc => Self::Lc(lc::Lc),
            SchedKind::Wlc => Self::Wlc(wlc::Wlc),
            SchedKind::Sed => Self::Sed(sed::Sed),
            SchedKind::Nq => Self::Nq(nq::Nq),
            SchedKind::Sh => Self::Sh(sh::Sh::new(c, flags)),
            SchedKind::Dh => Self::Dh(dh::Dh::new(c)),
            SchedKind::Lblc => Self::Lblc(lblc::Lblc::new(lblc::DEFAULT_CAPACITY)),
            SchedKind::Lblcr => Self::Lblcr(lblcr::Lblcr::new(lblc::DEFAULT_CAPACITY)),
            SchedKind::Mh => Self::Mh(mh::Mh::new(maglev.cloned().unwrap_or_default(), flags)),
            SchedKind::Fo => Self::Fo(fo::Fo),
            SchedKind::Ovf => Self::Ovf(ovf::Ovf),
        }
    }

    /// Periodic upkeep off the packet path (lblc/lblcr expire cache entries).
    pub fn housekeep(&mut self, now: u32) {
        match self {
            Self::Lblc(s) => s.expire(now),
            Self::Lblcr(s) => s.expire(now),
            _ => {}
        }
    }
}

impl Scheduler for AnyScheduler {
    #[inline]
    fn schedule(&mut self, c: &dyn Candidates, f: &Flow) -> Option<usize> {
        match self {
            Self::Rr(s) => s.schedule(c, f),
            Self::Wrr(s) => s.schedule(c, f),
            Self::Lc(s) => s.schedule(c, f),
            Self::Wlc(s) => s.schedule(c, f),
            Self::Sed(s) => s.schedule(c, f),
            Self::Nq(s) => s.schedule(c, f),
            Self::Sh(s) => s.schedule(c, f),
            Self::Dh(s) => s.schedule(c, f),
            Self::Lblc(s) => s.schedule(c, f),
            Self::Lblcr(s) => s.schedule(c, f),
            Self::Mh(s) => s.schedule(c, f),
            Self::Fo(s) => s.schedule(c, f),
            Self::Ovf(s) => s.schedule(c, f),
        }
    }
}

/// The kernel's `hash_32(val, bits)` (multiplicative, golden ratio).
#[inline]
pub(crate) fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// IPVS's address fold: v4 as is, v6 as the XOR of its four words.
#[inline]
pub(crate) fn fold(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = u128::from(a);
            (o as u32) ^ ((o >> 32) as u32) ^ ((o >> 64) as u32) ^ ((o >> 96) as u32)
        }
    }
}

/// Weighted least-connection over `overhead`, IPVS style: the first available
/// server is the candidate; a later one replaces it when
/// `least_oh * its_weight > its_oh * least_weight`. Shared by wlc, sed, nq,
/// lblc and lblcr.
pub(crate) fn weighted_least(c: &dyn Candidates, overhead: impl Fn(&Load) -> u64) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for i in 0..c.len() {
        let l = c.load(i);
        if !l.available() {
            continue;
        }
        let (oh, w) = (overhead(&l), u64::from(l.weight));
        match best {
            Some((_, boh, bw)) if boh * w <= oh * bw => {}
            _ => best = Some((i, oh, w)),
        }
    }
    best.map(|b| b.0)
}

/// The available server of the highest weight among those `eligible`
/// allows; the first in list order wins a tie (IPVS replaces its candidate
/// only on a strictly higher weight). Shared by fo and ovf.
pub(crate) fn heaviest(c: &dyn Candidates, eligible: impl Fn(&Load) -> bool) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for i in 0..c.len() {
        let l = c.load(i);
        if l.available() && eligible(&l) && best.is_none_or(|(_, w)| l.weight > w) {
            best = Some((i, l.weight));
        }
    }
    best.map(|b| b.0)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn loads(weights: &[u32]) -> Vec<Load> {
        weights.iter().map(|&weight| Load { weight, ..Load::default() }).collect()
    }

    pub fn flow(src: &str, sport: u16) -> Flow {
        Flow { src: src.parse().unwrap(), sport, dst: "198.18.0.10".parse().unwrap(), dport: 80, now: 0 }
    }

    /// Servers with addresses (the weights of `loads`, addresses 198.19.0.1N).
    pub struct Addressed(pub Vec<(IpAddr, u16, Load)>);

    impl Candidates for Addressed {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn load(&self, i: usize) -> Load {
            self.0[i].2
        }
        fn addr(&self, i: usize) -> (IpAddr, u16) {
            (self.0[i].0, self.0[i].1)
        }
    }

    /// Asserts that `build` makes a scheduler that picks the same server
    /// (by address) for every flow whatever order the servers are listed in.
    pub fn same_choice_in_any_order<S: Scheduler>(build: impl Fn(&dyn Candidates) -> S) {
        let servers: Vec<_> = [(11u8, 3u32), (12, 1), (13, 2), (14, 1), (15, 5)]
            .iter()
            .map(|&(a, w)| (IpAddr::from([198, 19, 0, a]), 80u16, Load { weight: w, ..Load::default() }))
            .collect();
        let orders = [[0usize, 1, 2, 3, 4], [4, 2, 0, 3, 1], [1, 3, 4, 0, 2]];
        let picks: Vec<Vec<Option<IpAddr>>> = orders
            .iter()
            .map(|o| {
                let c = Addressed(o.iter().map(|&i| servers[i]).collect());
                let mut s = build(&c);
                (0..500u32)
                    .map(|i| {
                        let mut f = flow(&format!("198.18.{}.{}", i / 250, i % 250 + 1), 1000 + i as u16);
                        f.dst = IpAddr::from([198, 51, (i / 250) as u8, (i % 250) as u8]);
                        s.schedule(&c, &f).map(|p| c.0[p].0)
                    })
                    .collect()
            })
            .collect();
        assert!(picks[0].iter().all(Option::is_some));
        assert_eq!(picks[0], picks[1], "another list order picked other servers");
        assert_eq!(picks[0], picks[2], "another list order picked other servers");
    }

    /// Runs `n` picks, counting each pick as one new inactive connection.
    pub fn picks(s: &mut dyn Scheduler, c: &mut Vec<Load>, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| {
                let i = s.schedule(&*c, &flow("198.18.1.1", 1000)).expect("a server");
                c[i].inactive += 1;
                i
            })
            .collect()
    }
}
