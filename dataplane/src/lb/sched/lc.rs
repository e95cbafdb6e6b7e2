//! Least connection (`ip_vs_lc.c`): least active×256 + inactive; ties go to
//! the first in list order. Weight is only a gate (0 = never).

use super::{Candidates, Flow, Scheduler};

#[derive(Debug, Clone, Copy, Default)]
pub struct Lc;

impl Scheduler for Lc {
    fn schedule(&mut self, c: &dyn Candidates, _: &Flow) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for i in 0..c.len() {
            let l = c.load(i);
            if !l.available() {
                continue;
            }
            let oh = l.overhead();
            if best.is_none_or(|(_, b)| oh < b) {
                best = Some((i, oh));
            }
        }
        best.map(|b| b.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn active_weighs_256_inactive() {
        let mut c = loads(&[1, 1, 100]);
        c[0].active = 1; // 256
        c[1].inactive = 255; // 255
        c[2].inactive = 300; // weight does not matter to lc
        assert_eq!(Lc.schedule(&c, &flow("198.18.1.1", 1)), Some(1));
        c[1].inactive = 256;
        assert_eq!(Lc.schedule(&c, &flow("198.18.1.1", 1)), Some(0), "tie goes to the first");
        c[0].weight = 0;
        assert_eq!(Lc.schedule(&c, &flow("198.18.1.1", 1)), Some(1));
    }
}
