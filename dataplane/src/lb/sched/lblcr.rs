//! Locality-based least connection with replication (`ip_vs_lblcr.c`): a
//! destination address maps to a set of servers; the least loaded of the set
//! serves unless overloaded, in which case a weighted-least-connection pick
//! joins the set. A set untouched for the expiration time sheds its most
//! loaded member.

use super::lblc::{is_overloaded, EXPIRATION_TICKS};
use super::{weighted_least, Candidates, Flow, Scheduler};
use hashbrown::HashMap;
use std::net::IpAddr;

/// Members kept per destination (fixed: no allocation per packet).
pub const MAX_SET: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Set {
    members: [u16; MAX_SET],
    len: u8,
    lastmod: u32,
    lastuse: u32,
}

impl Set {
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.members[..usize::from(self.len)].iter().map(|&m| usize::from(m))
    }

    fn insert(&mut self, i: usize, now: u32) {
        if self.iter().any(|m| m == i) {
            return;
        }
        if usize::from(self.len) == MAX_SET {
            return;
        }
        self.members[usize::from(self.len)] = i as u16;
        self.len += 1;
        self.lastmod = now;
    }

    fn remove(&mut self, i: usize) {
        let found = self.iter().position(|m| m == i);
        if let Some(p) = found {
            self.members.copy_within(p + 1..usize::from(self.len), p);
            self.len -= 1;
        }
    }
}

/// Least loaded available member (IPVS `ip_vs_dest_set_min`).
fn set_min(set: &Set, c: &dyn Candidates) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for i in set.iter().filter(|&i| i < c.len()) {
        let l = c.load(i);
        if !l.available() {
            continue;
        }
        let (oh, w) = (l.overhead(), u64::from(l.weight));
        if best.is_none_or(|(_, boh, bw)| boh * w > oh * bw) {
            best = Some((i, oh, w));
        }
    }
    best.map(|b| b.0)
}

/// Most loaded member (IPVS `ip_vs_dest_set_max`).
fn set_max(set: &Set, c: &dyn Candidates) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for i in set.iter().filter(|&i| i < c.len()) {
        let l = c.load(i);
        let (oh, w) = (l.overhead(), u64::from(l.weight.max(1)));
        if best.is_none_or(|(_, boh, bw)| boh * w < oh * bw) {
            best = Some((i, oh, w));
        }
    }
    best.map(|b| b.0)
}

#[derive(Debug, Clone)]
pub struct Lblcr {
    table: HashMap<IpAddr, Set>,
    cap: usize,
}

impl Lblcr {
    pub fn new(cap: usize) -> Self {
        Self { table: HashMap::with_capacity(cap), cap }
    }

    pub fn expire(&mut self, now: u32) {
        self.table.retain(|_, s| now.wrapping_sub(s.lastuse) < EXPIRATION_TICKS);
    }
}

impl Scheduler for Lblcr {
    fn schedule(&mut self, c: &dyn Candidates, f: &Flow) -> Option<usize> {
        let now = f.now;
        if let Some(set) = self.table.get_mut(&f.dst) {
            set.lastuse = now;
            let min = set_min(set, c);
            if set.len > 1 && now.wrapping_sub(set.lastmod) > EXPIRATION_TICKS {
                if let Some(m) = set_max(set, c) {
                    set.remove(m);
                    set.lastmod = now;
                }
            }
            if let Some(m) = min {
                if !is_overloaded(c, m) {
                    return Some(m);
                }
            }
            let pick = weighted_least(c, |l| l.overhead())?;
            set.insert(pick, now);
            return Some(pick);
        }
        let pick = weighted_least(c, |l| l.overhead())?;
        if self.table.len() < self.cap {
            let mut set = Set { members: [0; MAX_SET], len: 0, lastmod: now, lastuse: now };
            set.insert(pick, now);
            self.table.insert(f.dst, set);
        }
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn replicates_under_overload_and_uses_least_loaded_member() {
        let mut c = loads(&[2, 2, 2]);
        let mut s = Lblcr::new(16);
        let f = flow("198.18.1.1", 1);
        assert_eq!(s.schedule(&c, &f), Some(0));
        c[0].active = 3; // overloaded (server 1 has 0*2 < 2)
        assert_eq!(s.schedule(&c, &f), Some(1), "server 1 joins the set");
        assert_eq!(s.table[&f.dst].len, 2);
        // Both members usable: the least loaded member serves.
        c[0].active = 0;
        c[1].active = 1;
        assert_eq!(s.schedule(&c, &f), Some(0));
        // Weight 0 member is skipped by set_min.
        c[0].weight = 0;
        assert_eq!(s.schedule(&c, &f), Some(1));
    }

    #[test]
    fn old_sets_shed_the_most_loaded_member() {
        let mut c = loads(&[2, 2]);
        let mut s = Lblcr::new(16);
        let f = flow("198.18.1.1", 1);
        s.schedule(&c, &f);
        c[0].active = 3;
        s.schedule(&c, &f);
        assert_eq!(s.table[&f.dst].len, 2);
        let mut later = f;
        later.now = EXPIRATION_TICKS + 10;
        c[0].active = 0;
        c[1].active = 1;
        assert_eq!(s.schedule(&c, &later), Some(0));
        assert_eq!(s.table[&f.dst].len, 1);
    }
}
