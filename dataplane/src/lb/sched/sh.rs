//! Source hashing (`ip_vs_sh.c`): a 256-bucket table, each server taking
//! `weight` consecutive buckets; the client address (and, with `sh-port`,
//! its port) picks a bucket. With `sh-fallback` an unavailable server's
//! clients move to the next available bucket. IPVS fills the table in list
//! order; here the servers take their buckets in address order, so every
//! director (and every restart) builds the same table for the same servers.

use super::{fold, hash_32, Candidates, Flow, Scheduler};
use xdpvs_api::config::sched_flags;

pub const TAB_BITS: u32 = 8;
pub const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug, Clone)]
pub struct Sh {
    buckets: [Option<u16>; TAB_SIZE],
    flags: u8,
}

/// Fills `weight` consecutive buckets per server, cycling the servers in
/// address order (`ip_vs_sh_reassign` cycles the list). Weight 0 servers
/// still take one bucket, which then answers "unavailable" as in IPVS.
pub(crate) fn weighted_buckets(c: &dyn Candidates) -> [Option<u16>; TAB_SIZE] {
    let mut b = [None; TAB_SIZE];
    let order = c.in_address_order();
    if order.is_empty() {
        return b;
    }
    let (mut p, mut count) = (0usize, 0u32);
    for slot in b.iter_mut() {
        *slot = Some(order[p] as u16);
        count += 1;
        if count >= c.load(order[p]).weight {
            p = (p + 1) % order.len();
            count = 0;
        }
    }
    b
}

impl Sh {
    pub fn new(c: &dyn Candidates, flags: u8) -> Self {
        Self { buckets: weighted_buckets(c), flags }
    }

    fn key(&self, f: &Flow, offset: u32) -> usize {
        let port = if self.flags & sched_flags::PORT != 0 { u32::from(f.sport) } else { 0 };
        (offset.wrapping_add(hash_32(port.wrapping_add(fold(f.src)), TAB_BITS)) as usize) & (TAB_SIZE - 1)
    }
}

impl Scheduler for Sh {
    fn schedule(&mut self, c: &dyn Candidates, f: &Flow) -> Option<usize> {
        let h = self.key(f, 0);
        let first = usize::from(self.buckets[h]?);
        if first < c.len() && c.load(first).available() {
            return Some(first);
        }
        if self.flags & sched_flags::FALLBACK == 0 {
            return None;
        }
        (0..TAB_SIZE as u32).find_map(|off| {
            let i = usize::from(self.buckets[self.key(f, (off + h as u32) % TAB_SIZE as u32)]?);
            (i < c.len() && c.load(i).available()).then_some(i)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn same_client_same_server_and_weighted_buckets() {
        let c = loads(&[3, 1]);
        let mut s = Sh::new(&c, 0);
        let b = weighted_buckets(&c);
        assert_eq!(&b[..8], &[Some(0), Some(0), Some(0), Some(1), Some(0), Some(0), Some(0), Some(1)]);
        for i in 0..200u32 {
            let f = flow(&format!("198.18.{}.{}", i / 200, i % 250), 1000 + i as u16);
            let a = s.schedule(&c, &f);
            let mut f2 = f;
            f2.sport = 7;
            assert_eq!(a, s.schedule(&c, &f2), "source port must not matter without sh-port");
        }
    }

    #[test]
    fn fallback_moves_only_the_lost_servers_clients() {
        let mut c = loads(&[1, 1, 1]);
        let mut plain = Sh::new(&c, 0);
        let mut fb = Sh::new(&c, sched_flags::FALLBACK);
        let clients: Vec<_> = (0..300u32).map(|i| flow(&format!("198.18.{}.{}", i / 250, i % 250 + 1), 1)).collect();
        let before: Vec<_> = clients.iter().map(|f| fb.schedule(&c, f).unwrap()).collect();
        c[1].weight = 0;
        for (f, b) in clients.iter().zip(&before) {
            let now = fb.schedule(&c, f).unwrap();
            if *b == 1 {
                assert_ne!(now, 1);
                assert_eq!(plain.schedule(&c, f), None);
            } else {
                assert_eq!(now, *b, "clients of available servers stay put");
            }
        }
    }

    #[test]
    fn the_same_servers_in_any_order_pick_the_same() {
        same_choice_in_any_order(|c| Sh::new(c, 0));
        same_choice_in_any_order(|c| Sh::new(c, sched_flags::PORT));
    }

    #[test]
    fn sh_port_spreads_one_client() {
        let c = loads(&[1, 1, 1, 1]);
        let mut s = Sh::new(&c, sched_flags::PORT);
        let got: std::collections::HashSet<_> =
            (0..64u16).map(|p| s.schedule(&c, &flow("198.18.1.1", p)).unwrap()).collect();
        assert!(got.len() > 1);
    }
}
