//! Never queue (`ip_vs_nq.c`): the first idle server (no active
//! connections) if there is one, else shortest expected delay.

use super::{sed::Sed, Candidates, Flow, Scheduler};

#[derive(Debug, Clone, Copy, Default)]
pub struct Nq;

impl Scheduler for Nq {
    fn schedule(&mut self, c: &dyn Candidates, f: &Flow) -> Option<usize> {
        (0..c.len()).find(|&i| c.load(i).available() && c.load(i).active == 0).or_else(|| Sed.schedule(c, f))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn idle_first_then_sed() {
        let mut c = loads(&[1, 10, 1]);
        c[0].active = 1;
        c[1].active = 5;
        // Server 2 is idle: picked although sed would prefer server 1.
        assert_eq!(Nq.schedule(&c, &flow("198.18.1.1", 1)), Some(2));
        c[2].active = 1;
        // (1+1)/1 = 2, (5+1)/10 = 0.6, (1+1)/1 = 2
        assert_eq!(Nq.schedule(&c, &flow("198.18.1.1", 1)), Some(1));
        c[1].weight = 0;
        assert_eq!(Nq.schedule(&c, &flow("198.18.1.1", 1)), Some(0));
    }
}
