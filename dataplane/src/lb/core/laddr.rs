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
#[derive(Debug, Clone, Default)]
pub(super) struct PortPool {
    pub(super) serial: u32,
    pub(super) free: VecDeque<u16>,
}

impl PortPool {
    pub(super) fn new(serial: u32, p: &CoreParams) -> Self {
        let n = u32::from(p.ncores.max(1));
        let free = (u32::from(p.lport_min)..=u32::from(p.lport_max))
            .filter(|&port| port % n == u32::from(p.id))
            .map(|port| port as u16)
            .collect();
        Self { serial, free }
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
                for _ in 0..tries.min(pool.free.len()) {
                    let p = pool.free[0];
                    if rss.queue(rip.as_ref(), a.as_ref(), rport, p) == Some(me) {
                        break;
                    }
                    pool.free.rotate_left(1);
                }
            }
            if let Some(port) = pool.free.pop_front() {
                rt.laddr_next = (at + 1) % n;
                return Ok((a, port, l.serial as u16));
            }
        }
        Err(DropReason::NoLocalPort)
    }

    pub(super) fn release_lport<F: Family>(&mut self, cfg: &Snapshot, lip: F::Addr, lport: u16, serial: u16) {
        if let Some(slot) = cfg.laddr_slot(F::to_ip(lip)) {
            if let Some(pool) = self.pools.get_mut(slot as usize).filter(|p| p.serial as u16 == serial) {
                pool.free.push_back(lport);
            }
        }
    }
}
