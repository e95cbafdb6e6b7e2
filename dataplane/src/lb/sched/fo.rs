//! Weighted failover (`ip_vs_fo.c`): every new connection goes to the
//! available server with the highest weight; the first in list order wins a
//! tie. Lowering that server's weight (or quiescing it) fails over to the
//! next-heaviest.

use super::{heaviest, Candidates, Flow, Scheduler};

#[derive(Debug, Clone, Copy, Default)]
pub struct Fo;

impl Scheduler for Fo {
    fn schedule(&mut self, c: &dyn Candidates, _f: &Flow) -> Option<usize> {
        heaviest(c, |_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn heaviest_available_first_in_list_wins_a_tie() {
        let mut c = loads(&[5, 10, 10, 1]);
        let f = flow("198.18.1.1", 1);
        assert_eq!(Fo.schedule(&c, &f), Some(1));
        // Load does not matter: fo is not a least-connection scheduler.
        c[1].active = 1000;
        assert_eq!(Fo.schedule(&c, &f), Some(1));
        c[1].overloaded = true;
        assert_eq!(Fo.schedule(&c, &f), Some(2));
        c[2].weight = 0;
        assert_eq!(Fo.schedule(&c, &f), Some(0));
        let none = loads(&[0, 0]);
        assert_eq!(Fo.schedule(&none, &f), None);
    }
}
