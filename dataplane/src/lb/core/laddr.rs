//! FULLNAT local addresses (DPVS's `sa_pool`): each core hands out only its
//! own ports of each local address, FIFO so a port rests as long as
//! possible before reuse, and where the NIC shows its RSS key, ports whose
//! replies hash to this core's queue.

use super::{CoreParams, State};
use crate::lb::family::Family;
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use std::collections::VecDeque;
use xdpvs_api::config::Service;

/// This core's share of one local address's ports, handed out FIFO so a
/// port rests as long as possible before reuse (TIME_WAIT on the server).
///
/// A port can also be taken out of turn ([`PortPool::reserve`]: a synced
/// connection's). `taken` says which ports are in use, `queued` which have
/// an entry in `free`: a taken port met at the front is skipped, and a
/// port is queued at most once, so `free` never outgrows its first size.
#[derive(Debug, Clone, Default)]
pub(super) struct PortPool {
    pub(super) serial: u32,
    free: VecDeque<u16>,
    taken: Bits,
    queued: Bits,
}

/// One bit per port.
#[derive(Debug, Clone)]
struct Bits(Box<[u64; 1024]>);

impl Default for Bits {
    fn default() -> Self {
        Bits(Box::new([0; 1024]))
    }
}

impl Bits {
    fn get(&self, p: u16) -> bool {
        self.0[usize::from(p >> 6)] & 1 << (p & 63) != 0
    }

    fn set(&mut self, p: u16, v: bool) {
        let w = &mut self.0[usize::from(p >> 6)];
        if v {
            *w |= 1 << (p & 63);
        } else {
            *w &= !(1 << (p & 63));
        }
    }
}

impl PortPool {
    pub(super) fn new(serial: u32, p: &CoreParams) -> Self {
        let n = u32::from(p.ncores.max(1));
        let free: VecDeque<u16> = (u32::from(p.lport_min)..=u32::from(p.lport_max))
            .filter(|&port| port % n == u32::from(p.id))
            .map(|port| port as u16)
            .collect();
        let mut queued = Bits::default();
        for &port in &free {
            queued.set(port, true);
        }
        Self { serial, free, taken: Bits::default(), queued }
    }

    /// Ports free to hand out, taken ones still queued excepted.
    pub(super) fn front(&mut self) -> Option<u16> {
        while let Some(&p) = self.free.front() {
            if !self.taken.get(p) {
                return Some(p);
            }
            self.free.pop_front();
            self.queued.set(p, false);
        }
        None
    }

    /// Moves the front port to the back (it does not suit this flow).
    pub(super) fn rotate(&mut self) {
        if let Some(p) = self.free.pop_front() {
            self.free.push_back(p);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.free.len()
    }

    /// Takes the front port.
    pub(super) fn take(&mut self) -> Option<u16> {
        let p = self.front()?;
        self.free.pop_front();
        self.queued.set(p, false);
        self.taken.set(p, true);
        Some(p)
    }

    /// Takes `p` out of turn; false if it is in use already.
    pub(super) fn reserve(&mut self, p: u16) -> bool {
        if self.taken.get(p) {
            return false;
        }
        self.taken.set(p, true);
        true
    }

    pub(super) fn release(&mut self, p: u16) {
        if !self.taken.get(p) {
            return;
        }
        self.taken.set(p, false);
        if !self.queued.get(p) {
            self.queued.set(p, true);
            self.free.push_back(p);
        }
    }
}

impl State {
    /// FULLNAT: a local address of the service (round robin) and one of this
    /// core's ports on it.
    ///
    /// Where the NIC toward the real server exposes its RSS key and table,
    /// the port is one whose reply (`RIP:rport → LIP:lport`) hashes to this
    /// core's queue, so replies need no handoff (a few tries, else any port).
    pub(super) fn take_lport<F: Family>(
        &mut self,
        cfg: &Snapshot,
        svc_slot: u32,
        svc: &Service,
        reply_from: (F::Addr, u16, u32),
    ) -> Result<(F::Addr, u16, u16), DropReason> {
        let (rip, rport, nh_rs) = reply_from;
        let rss = (self.params.ncores > 1)
            .then(|| {
                cfg.net
                    .neighbour(nh_rs)
                    .and_then(|n| cfg.net.ifaces.get(usize::from(n.iface)))
                    .and_then(|i| i.rss.as_ref())
            })
            .flatten();
        let tries = 4 * usize::from(self.params.ncores);
        let me = self.params.id;
        let n = svc.laddrs.len();
        if n == 0 {
            return Err(DropReason::NoLocalAddr);
        }
        let rt = self.svc_rt.get_mut(svc_slot as usize).and_then(Option::as_mut).ok_or(DropReason::NoLocalAddr)?;
        for k in 0..n {
            let at = (rt.laddr_next + k) % n;
            let slot = svc.laddrs[at];
            let (Some(l), Some(pool)) = (cfg.laddr(slot), self.pools.get_mut(slot as usize)) else {
                continue;
            };
            if pool.serial != l.serial {
                continue;
            }
            let Some(a) = F::from_ip(l.addr) else { continue };
            if let Some(rss) = rss {
                // Rotate non-matching ports to the back: O(1) per try.
                for _ in 0..tries.min(pool.len()) {
                    let Some(p) = pool.front() else { break };
                    if rss.queue(rip.as_ref(), a.as_ref(), rport, p) == Some(me) {
                        break;
                    }
                    pool.rotate();
                }
            }
            if let Some(port) = pool.take() {
                rt.laddr_next = (at + 1) % n;
                return Ok((a, port, l.serial as u16));
            }
        }
        Err(DropReason::NoLocalPort)
    }

    pub(super) fn release_lport<F: Family>(&mut self, cfg: &Snapshot, lip: F::Addr, lport: u16, serial: u16) {
        if let Some(slot) = cfg.laddr_slot(F::to_ip(lip)) {
            if let Some(pool) = self.pools.get_mut(slot as usize).filter(|p| p.serial as u16 == serial) {
                pool.release(lport);
            }
        }
    }

    /// A synced FULLNAT connection's port, taken out of turn from this
    /// core's pool of `lip`: the pool's serial, or why not.
    pub(super) fn reserve_lport<F: Family>(&mut self, cfg: &Snapshot, lip: F::Addr, lport: u16) -> Option<u16> {
        let slot = cfg.laddr_slot(F::to_ip(lip))?;
        let l = cfg.laddr(slot)?;
        let n = self.params.ncores.max(1);
        if lport % n != self.params.id || lport < self.params.lport_min || lport > self.params.lport_max {
            return None;
        }
        let pool = self.pools.get_mut(slot as usize).filter(|p| p.serial == l.serial)?;
        pool.reserve(lport).then_some(l.serial as u16)
    }
}
