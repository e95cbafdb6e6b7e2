//! Round robin (`ip_vs_rr.c`): the next available server after the last pick.

use super::{Candidates, Flow, Scheduler};

#[derive(Debug, Clone, Default)]
pub struct Rr {
    /// Position of the last pick (`None`: the list head).
    last: Option<usize>,
}

impl Scheduler for Rr {
    fn schedule(&mut self, c: &dyn Candidates, _: &Flow) -> Option<usize> {
        let n = c.len();
        let start = self.last.map_or(0, |l| l + 1);
        let pick = (0..n).map(|k| (start + k) % n).find(|&i| c.load(i).available())?;
        self.last = Some(pick);
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn cycles_and_skips_weight_zero_and_overloaded() {
        let mut c = loads(&[1, 0, 5, 1]);
        c[3].overloaded = true;
        assert_eq!(picks(&mut Rr::default(), &mut c, 5), vec![0, 2, 0, 2, 0]);
        let none = loads(&[0, 0]);
        assert_eq!(Rr::default().schedule(&none, &flow("198.18.1.1", 1)), None);
    }
}
