//! Maglev hashing (`ip_vs_mh.c`, Eisenbud et al., NSDI 2016).
//!
//! The control plane builds the lookup table once per change of the server
//! set ([`Maglev::build`], off the packet path); cores share it through an
//! `Arc` and only index it. Table size is a prime (default 65537). Each
//! server walks its own permutation `offset + k·skip (mod M)` and, round by
//! round, claims `weight / gcd` free entries, so shares follow the weights
//! and a change of one server moves little more than that server's share.
//! `mh-port` hashes the source port too; `mh-fallback` retries other
//! entries when the chosen server is unavailable.
//!
//! Unlike IPVS (which fills in list order), the servers take their turns in
//! the order of their addresses and ports, so every director builds the
//! same table for the same servers, whatever order they were added in and
//! across restarts: directors behind ECMP agree on each flow's server.

use super::{gcd, Candidates, Flow, Scheduler};
use crate::lb::mix;
use std::net::IpAddr;
use std::sync::Arc;
use xdpvs_api::config::sched_flags;

/// IPVS's default table size (a prime).
pub const DEFAULT_TABLE_SIZE: usize = 65537;
const EMPTY: u16 = u16::MAX;

/// A built lookup table: entry → position in the service's server list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maglev {
    table: Vec<u16>,
}

fn addr_key(a: IpAddr, port: u16, seed: u64) -> u64 {
    let bits = match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let h = mix((bits as u64) ^ seed);
    mix(h ^ ((bits >> 64) as u64) ^ (u64::from(port) << 48) ^ seed.rotate_left(17))
}

const SEED_OFFSET: u64 = 0x243f_6a88_85a3_08d3;
const SEED_SKIP: u64 = 0x1319_8a2e_0370_7344;
const SEED_FLOW: u64 = 0xa409_3822_299f_31d0;

impl Maglev {
    /// Builds the table for `members` = (address, port, weight) in list
    /// order; `size` must be prime (for the permutations to be complete).
    pub fn build(members: &[(IpAddr, u16, u32)], size: usize) -> Self {
        assert!(
            size > 1 && members.len() < usize::from(EMPTY),
            "table size and member count are validated by the caller"
        );
        let g = members.iter().map(|m| m.2).filter(|&w| w > 0).fold(0, gcd);
        if g == 0 {
            return Self { table: vec![EMPTY; size] };
        }
        let m = size as u64;
        // Turns in address order (list positions kept for the table).
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| (members[i].0, members[i].1));
        // (list position, next position, skip, turns); weight 0 takes no turn.
        let mut perm: Vec<(usize, u64, u64, u32)> = order
            .iter()
            .map(|&i| {
                let (a, p, w) = members[i];
                (i, addr_key(a, p, SEED_OFFSET) % m, addr_key(a, p, SEED_SKIP) % (m - 1) + 1, w / g)
            })
            .collect();
        let mut table = vec![EMPTY; size];
        let mut filled = 0usize;
        'fill: loop {
            for (i, pos, skip, turns) in perm.iter_mut() {
                for _ in 0..*turns {
                    while table[*pos as usize] != EMPTY {
                        *pos += *skip;
                        if *pos >= m {
                            *pos -= m;
                        }
                    }
                    table[*pos as usize] = *i as u16;
                    filled += 1;
                    if filled == size {
                        break 'fill;
                    }
                }
            }
        }
        Self { table }
    }

    pub fn size(&self) -> usize {
        self.table.len()
    }

    /// The server position at entry `i`.
    #[inline]
    pub fn entry(&self, i: usize) -> Option<usize> {
        self.table.get(i).filter(|&&e| e != EMPTY).map(|&e| usize::from(e))
    }

    /// Entries held by each of `n` positions.
    pub fn shares(&self, n: usize) -> Vec<usize> {
        let mut s = vec![0; n];
        for &e in &self.table {
            if usize::from(e) < n {
                s[usize::from(e)] += 1;
            }
        }
        s
    }
}

/// The mh scheduler: a shared table plus the service's flags.
#[derive(Debug, Clone)]
pub struct Mh {
    table: Arc<Maglev>,
    flags: u8,
}

impl Mh {
    pub fn new(table: Arc<Maglev>, flags: u8) -> Self {
        Self { table, flags }
    }

    fn entry_for(&self, f: &Flow, attempt: u64) -> Option<usize> {
        let port = if self.flags & sched_flags::PORT != 0 { f.sport } else { 0 };
        let h = addr_key(f.src, port, SEED_FLOW ^ attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.table.entry((h % self.table.size().max(1) as u64) as usize)
    }
}

impl Scheduler for Mh {
    fn schedule(&mut self, c: &dyn Candidates, f: &Flow) -> Option<usize> {
        let first = self.entry_for(f, 0)?;
        if first < c.len() && c.load(first).available() {
            return Some(first);
        }
        if self.flags & sched_flags::FALLBACK == 0 {
            return None;
        }
        (1..=self.table.size() as u64)
            .find_map(|k| self.entry_for(f, k).filter(|&i| i < c.len() && c.load(i).available()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn members(n: usize) -> Vec<(IpAddr, u16, u32)> {
        (0..n).map(|i| (IpAddr::from([198, 19, (i / 250) as u8, (i % 250) as u8 + 1]), 80, 1)).collect()
    }

    #[test]
    fn shares_within_one_percent_for_1000() {
        let t = Maglev::build(&members(1000), DEFAULT_TABLE_SIZE);
        let ideal = DEFAULT_TABLE_SIZE as f64 / 1000.0;
        for (i, s) in t.shares(1000).into_iter().enumerate() {
            let err = (s as f64 - ideal).abs() / ideal;
            assert!(err <= 0.01, "server {i} holds {s} entries, ideal {ideal:.1} ({:.2} %)", err * 100.0);
        }
    }

    #[test]
    fn the_same_servers_in_any_order_build_the_same_table() {
        let m = members(7);
        let a = Maglev::build(&m, DEFAULT_TABLE_SIZE);
        let mut shuffled = m.clone();
        shuffled.reverse();
        shuffled.swap(1, 4);
        let b = Maglev::build(&shuffled, DEFAULT_TABLE_SIZE);
        for e in 0..DEFAULT_TABLE_SIZE {
            let server = |t: &Maglev, l: &[(IpAddr, u16, u32)]| t.entry(e).map(|i| l[i].0);
            assert_eq!(server(&a, &m), server(&b, &shuffled), "entry {e}");
        }
    }

    #[test]
    fn removing_one_moves_little() {
        for n in [3usize, 10, 100, 1000] {
            let all = members(n);
            let before = Maglev::build(&all, DEFAULT_TABLE_SIZE);
            let gone = n / 2;
            let mut rest = all.clone();
            rest.remove(gone);
            let after = Maglev::build(&rest, DEFAULT_TABLE_SIZE);
            // Map positions of `rest` back to positions of `all`.
            let back = |p: usize| if p >= gone { p + 1 } else { p };
            let moved = (0..DEFAULT_TABLE_SIZE).filter(|&i| before.entry(i) != after.entry(i).map(back)).count();
            let frac = moved as f64 / DEFAULT_TABLE_SIZE as f64;
            assert!(frac <= 1.0 / n as f64 + 0.02, "n={n}: moved {:.2} % of the table", frac * 100.0);
        }
    }

    #[test]
    fn weights_shape_shares_and_zero_takes_none() {
        let mut m = members(3);
        m[0].2 = 3;
        m[2].2 = 0;
        let t = Maglev::build(&m, 65537);
        let s = t.shares(3);
        assert_eq!(s[2], 0);
        let ratio = s[0] as f64 / s[1] as f64;
        assert!((ratio - 3.0).abs() < 0.05, "{s:?}");
    }

    #[test]
    fn fallback_only_when_asked() {
        let m = members(4);
        let t = Arc::new(Maglev::build(&m, 65537));
        let mut c = loads(&[1, 1, 1, 1]);
        let f = flow("198.18.3.3", 1);
        let mut plain = Mh::new(t.clone(), 0);
        let mut fb = Mh::new(t, sched_flags::FALLBACK);
        let home = plain.schedule(&c, &f).unwrap();
        assert_eq!(fb.schedule(&c, &f), Some(home));
        c[home].weight = 0;
        assert_eq!(plain.schedule(&c, &f), None);
        let other = fb.schedule(&c, &f).unwrap();
        assert_ne!(other, home);
    }
}
