//! Shortest expected delay (`ip_vs_sed.c`): least (active + 1) / weight.

use super::{weighted_least, Candidates, Flow, Scheduler};

#[derive(Debug, Clone, Copy, Default)]
pub struct Sed;

impl Scheduler for Sed {
    fn schedule(&mut self, c: &dyn Candidates, _: &Flow) -> Option<usize> {
        weighted_least(c, |l| u64::from(l.active) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn expected_delay() {
        let mut c = loads(&[1, 2]);
        // (0+1)/1 = 1 vs (0+1)/2: the heavier idle server wins.
        assert_eq!(Sed.schedule(&c, &flow("198.18.1.1", 1)), Some(1));
        c[1].active = 1; // 2/2 = 1: tie keeps the first
        assert_eq!(Sed.schedule(&c, &flow("198.18.1.1", 1)), Some(0));
        c[1].active = 2; // 3/2 > 1
        assert_eq!(Sed.schedule(&c, &flow("198.18.1.1", 1)), Some(0));
        c[0].inactive = 1000; // inactive does not count for sed
        assert_eq!(Sed.schedule(&c, &flow("198.18.1.1", 1)), Some(0));
    }
}
