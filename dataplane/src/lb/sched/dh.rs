//! Destination hashing (`ip_vs_dh.c`): 256 buckets assigned round robin in
//! list order (weights ignored); the destination address picks a bucket. An
//! unavailable server means no server (no fallback), as in IPVS.

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
        if !c.is_empty() {
            for (i, b) in buckets.iter_mut().enumerate() {
                *b = Some((i % c.len()) as u16);
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
