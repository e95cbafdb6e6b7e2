//! Weighted overflow (`ip_vs_ovf.c`): the available server with the highest
//! weight takes new connections until its active connections exceed its
//! weight; then the next-heaviest one does. The weight is a connection
//! budget, not a share.

use super::{heaviest, Candidates, Flow, Scheduler};

#[derive(Debug, Clone, Copy, Default)]
pub struct Ovf;

impl Scheduler for Ovf {
    fn schedule(&mut self, c: &dyn Candidates, _f: &Flow) -> Option<usize> {
        heaviest(c, |l| l.active <= l.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn fills_the_heaviest_then_overflows() {
        let mut c = loads(&[2, 3]);
        let f = flow("198.18.1.1", 1);
        // Server 1 (weight 3) takes connections while active <= 3.
        for active in 0..=3 {
            c[1].active = active;
            assert_eq!(Ovf.schedule(&c, &f), Some(1), "active {active}");
        }
        c[1].active = 4;
        assert_eq!(Ovf.schedule(&c, &f), Some(0));
        c[0].active = 3;
        assert_eq!(Ovf.schedule(&c, &f), None, "every server over its weight");
        c[0].active = 0;
        c[0].weight = 0;
        assert_eq!(Ovf.schedule(&c, &f), None, "weight 0 is never picked");
    }
}
