//! Weighted round robin (`ip_vs_wrr.c`): IPVS's current-weight sequence. The
//! current weight starts at the maximum and falls by the weights' gcd each
//! time the walk wraps; a server is picked while its weight ≥ the current
//! weight. Weights 4,3,2 give A A B A B C A B C.

use super::{gcd, Candidates, Flow, Scheduler};

#[derive(Debug, Clone)]
pub struct Wrr {
    /// Position of the last pick (`None`: the list head).
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

impl Wrr {
    pub fn new(c: &dyn Candidates) -> Self {
        let weights = (0..c.len()).map(|i| c.load(i).weight);
        let di = weights.clone().filter(|&w| w > 0).fold(0, gcd).max(1);
        let max = weights.max().unwrap_or(0);
        let mw = i64::from(max) - (i64::from(di) - 1);
        Self { cl: None, cw: mw.max(0), mw: mw.max(0), di: i64::from(di) }
    }
}

impl Scheduler for Wrr {
    fn schedule(&mut self, c: &dyn Candidates, _: &Flow) -> Option<usize> {
        let n = c.len();
        if self.mw <= 0 || n == 0 {
            return None;
        }
        // Walk positions after `cl`; each time the walk passes the list head,
        // lower the current weight. Two full descents without a pick mean
        // nothing is available (every server overloaded or weight 0).
        let mut pos = self.cl;
        let mut wraps = 0;
        let limit = 2 * (self.mw / self.di + 1);
        loop {
            let next = match pos {
                None => 0,
                Some(p) if p + 1 < n => p + 1,
                Some(_) => {
                    // Past the tail: back to the head.
                    self.cw -= self.di;
                    if self.cw <= 0 {
                        self.cw = self.mw;
                    }
                    wraps += 1;
                    if wraps > limit {
                        return None;
                    }
                    pos = None;
                    continue;
                }
            };
            let l = c.load(next);
            if !l.overloaded && i64::from(l.weight) >= self.cw && l.weight > 0 {
                self.cl = Some(next);
                return Some(next);
            }
            pos = Some(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn ipvs_sequence_432() {
        let mut c = loads(&[4, 3, 2]);
        let mut s = Wrr::new(&c);
        assert_eq!(picks(&mut s, &mut c, 18), vec![0, 0, 1, 0, 1, 2, 0, 1, 2, 0, 0, 1, 0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn gcd_steps_and_weight_zero() {
        // gcd 2: mw = 4 - 1 = 3; current weights 3, 1.
        let mut c = loads(&[4, 2, 0]);
        let mut s = Wrr::new(&c);
        assert_eq!(picks(&mut s, &mut c, 6), vec![0, 0, 1, 0, 0, 1]);
    }

    #[test]
    fn equal_weights_round_robin_and_overload() {
        let mut c = loads(&[1, 1, 1]);
        let mut s = Wrr::new(&c);
        assert_eq!(picks(&mut s, &mut c, 4), vec![0, 1, 2, 0]);
        c[1].overloaded = true;
        assert_eq!(picks(&mut s, &mut c, 3), vec![2, 0, 2]);
        for l in c.iter_mut() {
            l.overloaded = true;
        }
        assert_eq!(s.schedule(&c, &flow("198.18.1.1", 1)), None);
    }
}
