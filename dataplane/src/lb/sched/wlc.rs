//! Weighted least connection (`ip_vs_wlc.c`): least (active×256 + inactive)
//! / weight, compared by cross-multiplication.

use super::{weighted_least, Candidates, Flow, Scheduler};

#[derive(Debug, Clone, Copy, Default)]
pub struct Wlc;

impl Scheduler for Wlc {
    fn schedule(&mut self, c: &dyn Candidates, _: &Flow) -> Option<usize> {
        weighted_least(c, |l| l.overhead())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn divides_by_weight() {
        let mut c = loads(&[1, 3]);
        c[0].active = 1; // 256 / 1
        c[1].active = 2; // 512 / 3 = 170.7
        assert_eq!(Wlc.schedule(&c, &flow("198.18.1.1", 1)), Some(1));
        c[1].active = 3; // 768 / 3 = 256: tie keeps the first
        assert_eq!(Wlc.schedule(&c, &flow("198.18.1.1", 1)), Some(0));
        // Over many new connections the split follows the weights 1:3.
        let mut c = loads(&[1, 3]);
        let got = picks(&mut Wlc, &mut c, 400);
        assert_eq!(got.iter().filter(|&&i| i == 1).count(), 300);
    }
}
