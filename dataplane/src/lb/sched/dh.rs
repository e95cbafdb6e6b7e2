//! Destination hashing (`ip_vs_dh.c`): 256 buckets assigned round robin
//! (weights ignored); the destination address picks a bucket. An
//! unavailable server means no server (no fallback), as in IPVS. IPVS deals
//! the buckets in list order; here in address order, so every director
//! builds the same table for the same servers.

use super::{fold, hash_32, Candidates, Flow, Scheduler};

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug, Clone)]
pub struct Dh {
    buckets: [Option<u16>; TAB_SIZE],
}

impl Dh {
    pub fn new(c: &dyn Candidates) -> Self {
        let mut buckets = [None; TAB_SIZE];
        let order = c.in_address_order();
        if !order.is_empty() {
            for (i, b) in buckets.iter_mut().enumerate() {
                *b = Some(order[i % order.len()] as u16);
            }
        }
        Self { buckets }
    }
}

impl Scheduler for Dh {
    fn schedule(&mut self, c: &dyn Candidates, f: &Flow) -> Option<usize> {
        let i = usize::from(self.buckets[hash_32(fold(f.dst), TAB_BITS) as usize]?);
        (i < c.len() && c.load(i).available()).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn the_same_servers_in_any_order_pick_the_same() {
        same_choice_in_any_order(Dh::new);
    }

    #[test]
    fn destination_decides() {
        let mut c = loads(&[1, 1, 1]);
        let mut s = Dh::new(&c);
        let mut f = flow("198.18.1.1", 1);
        let a = s.schedule(&c, &f).unwrap();
        f.src = "198.18.9.9".parse().unwrap();
        assert_eq!(s.schedule(&c, &f), Some(a), "source does not matter");
        let spread: std::collections::HashSet<_> = (0..50u8)
            .map(|i| {
                f.dst = format!("198.19.0.{i}").parse().unwrap();
                s.schedule(&c, &f).unwrap()
            })
            .collect();
        assert_eq!(spread.len(), 3);
        c[a].weight = 0;
        f.dst = "198.18.0.10".parse().unwrap();
        assert_eq!(s.schedule(&c, &f), None);
    }
}
