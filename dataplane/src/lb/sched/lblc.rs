//! Locality-based least connection (`ip_vs_lblc.c`): a destination address
//! keeps its server while that server is available and not overloaded by
//! IPVS's rule (active > weight while some server has active×2 < weight);
//! otherwise a weighted-least-connection pick replaces the cache entry.

use super::{weighted_least, Candidates, Flow, Scheduler};
use hashbrown::HashMap;
use std::net::IpAddr;

/// Cache entries per core; when full, new destinations are scheduled without
/// caching (no allocation on the packet path).
pub const DEFAULT_CAPACITY: usize = 16 * 1024;
/// IPVS's `lblc_expiration` default, 24 h, in engine ticks.
pub const EXPIRATION_TICKS: u32 = 24 * 3600 * crate::lb::TICKS_PER_SEC;

#[derive(Debug, Clone)]
pub struct Lblc {
    table: HashMap<IpAddr, (u16, u32)>,
    cap: usize,
}

/// IPVS's lblc/lblcr overload test.
pub(crate) fn is_overloaded(c: &dyn Candidates, i: usize) -> bool {
    let l = c.load(i);
    l.active > l.weight && (0..c.len()).any(|j| u64::from(c.load(j).active) * 2 < u64::from(c.load(j).weight))
}

impl Lblc {
    pub fn new(cap: usize) -> Self {
        Self { table: HashMap::with_capacity(cap), cap }
    }

    pub fn expire(&mut self, now: u32) {
        self.table.retain(|_, &mut (_, last)| now.wrapping_sub(last) < EXPIRATION_TICKS);
    }
}

impl Scheduler for Lblc {
    fn schedule(&mut self, c: &dyn Candidates, f: &Flow) -> Option<usize> {
        if let Some((i, last)) = self.table.get_mut(&f.dst) {
            *last = f.now;
            let i = usize::from(*i);
            if i < c.len() && c.load(i).available() && !is_overloaded(c, i) {
                return Some(i);
            }
        }
        let pick = weighted_least(c, |l| l.overhead())?;
        if self.table.len() < self.cap || self.table.contains_key(&f.dst) {
            self.table.insert(f.dst, (pick as u16, f.now));
        }
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn sticks_until_overloaded() {
        let mut c = loads(&[2, 2]);
        let mut s = Lblc::new(16);
        let f = flow("198.18.1.1", 1);
        assert_eq!(s.schedule(&c, &f), Some(0));
        c[0].active = 2; // not above weight: stays
        assert_eq!(s.schedule(&c, &f), Some(0));
        c[0].active = 3; // above weight, and server 1 has 0*2 < 2: overloaded
        assert_eq!(s.schedule(&c, &f), Some(1));
        // The cache now says server 1.
        c[0].active = 0;
        assert_eq!(s.schedule(&c, &f), Some(1));
        // Above weight but no server is under half load: not overloaded.
        c[0].active = 1;
        c[1].active = 3;
        assert_eq!(s.schedule(&c, &f), Some(1));
    }

    #[test]
    fn full_cache_still_schedules_and_expiry_frees() {
        let c = loads(&[1]);
        let mut s = Lblc::new(1);
        let mut f = flow("198.18.1.1", 1);
        assert_eq!(s.schedule(&c, &f), Some(0));
        f.dst = "198.19.0.1".parse().unwrap();
        assert_eq!(s.schedule(&c, &f), Some(0));
        assert_eq!(s.table.len(), 1);
        s.expire(EXPIRATION_TICKS + 1);
        assert!(s.table.is_empty());
    }
}
