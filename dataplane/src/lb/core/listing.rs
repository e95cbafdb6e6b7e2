//! Listings (`-L -c`): a core's sessions and templates as connections, in
//! bounded steps so a listing never stalls forwarding.

use super::{Core, State};
use crate::lb::family::{Family, V4, V6};
use crate::lb::session::{flag, TEMPLATE_PROTO};
use crate::lb::snapshot::Snapshot;
use crate::lb::tcp_state::TcpState;
use crate::lb::TICKS_PER_SEC;
use crate::wire::proto;
use std::net::{IpAddr, SocketAddr};
use xdpvs_api::config::{Fwd, ServiceKey};
use xdpvs_api::msg::{Conn, ConnState};

impl Core {
    /// Every live session and template (control path: `-L -c`).
    pub fn sessions(&self) -> Vec<Conn> {
        let mut v = Vec::new();
        let mut cursor = 0;
        while let Some(next) = self.sessions_step(cursor, usize::MAX, &mut |i| v.push(i.clone())) {
            cursor = next;
        }
        v
    }

    /// A listing in steps: hands at most `max` sessions from `cursor` on to
    /// `emit` (walking a bounded stretch of slots, so a step costs little on
    /// the packet path) and returns where to resume, or `None` when done.
    /// Cursor 0 starts over; sessions added or removed meanwhile may or may
    /// not appear, as with IPVS's /proc listing.
    pub fn sessions_step(&self, cursor: u64, max: usize, emit: &mut dyn FnMut(&Conn)) -> Option<u64> {
        const V6: u64 = 1 << 32;
        let walk = max.saturating_mul(4).saturating_add(64);
        if cursor & V6 == 0 {
            match self.state.list_step::<V4>(&self.cfg, cursor as u32, max, walk, emit) {
                Some(next) => Some(u64::from(next)),
                None => Some(V6),
            }
        } else {
            self.state.list_step::<V6>(&self.cfg, cursor as u32, max, walk, emit).map(|next| V6 | u64::from(next))
        }
    }
}

impl State {
    /// One step of a listing: up to `max` sessions from slot `from`,
    /// looking at no more than `walk` slots; the slot to resume from, or
    /// `None` at the end of the table.
    pub(super) fn list_step<F: Family>(
        &self,
        cfg: &Snapshot,
        from: u32,
        max: usize,
        walk: usize,
        emit: &mut dyn FnMut(&Conn),
    ) -> Option<u32> {
        let sa = |a: F::Addr, p: u16| SocketAddr::new(F::to_ip(a), p);
        let table = F::table_ref(&self.tables);
        let end = u64::from(from).saturating_add(walk as u64).min(u64::from(table.slots())) as u32;
        for (n, (i, s)) in table.iter_from(from).enumerate() {
            if i >= end {
                break;
            }
            if n == max {
                return Some(i);
            }
            let template = s.has(flag::TEMPLATE);
            let proto_nr = s.proto & !TEMPLATE_PROTO;
            let state =
                if proto_nr == proto::UDP { ConnState::Udp } else { ConnState::Tcp(TcpState::from_u8(s.state)) };
            let vip = match cfg.service(u32::from(s.svc)).map(|x| x.spec.key) {
                Some(ServiceKey::Fwmark { mark, .. }) if template => IpAddr::from(mark.to_be_bytes()),
                _ => F::to_ip(s.vip),
            };
            emit(&Conn {
                proto: proto_nr,
                template,
                state,
                expires_in: s.expires.saturating_sub(self.now) / TICKS_PER_SEC,
                client: sa(s.cip, s.cport),
                virt: SocketAddr::new(vip, s.vport),
                dest: sa(s.rip, s.rport),
                local: (s.fwd == Fwd::FullNat && !template).then(|| sa(s.lip, s.lport)),
                fwd: s.fwd,
                svc: u32::from(s.svc),
            });
        }
        (end < table.slots()).then_some(end)
    }
}
