//! The established flow: a packet of a session that is fully set up and
//! that moves nothing but the session's timer, which is nearly every packet
//! a director forwards. It takes the short way: one test of everything the
//! full functions ([`State::inbound`], [`State::outbound`]) would have to
//! decide, then their common tail ([`State::forward_in`],
//! [`State::forward_out`]).
//!
//! Whatever the short way cannot show is as the full way would do it (a
//! SYN, FIN or RST; a state that moves; an expired session; a real server
//! removed; a next hop not resolved yet; a packet longer than the smallest
//! MTU; a SYN-proxied session not spliced yet; one-packet scheduling) goes
//! the full way, untouched and uncounted so far: the answer is the same
//! either way, only cheaper here.
//!
//! The L4 checksum of a [`settled`] packet is left to its receiver, as IPVS
//! leaves it (it checks only where an application helper rewrites the
//! payload): the rewrite is incremental (RFC 1624), so a corruption anywhere
//! in the packet reaches the receiver as a checksum that still fails, and is
//! dropped there. A packet that creates a session, moves a state, or whose
//! bytes the director recomputes a checksum over (the client's address in
//! a `REVEAL` session) is verified first, both ways alike.

use super::conn::timeout;
use super::pipeline::{l4_checksum_ok, Hint, Parsed};
use super::State;
use crate::lb::family::{Family, L3};
use crate::lb::frame::Frame;
use crate::lb::session::{flag, Session, Side, NIL};
use crate::lb::snapshot::Snapshot;
use crate::lb::tcp_state::TcpState;
use crate::lb::Verdict;
use crate::wire::proto;
use crate::wire::tcp::flags as tcpf;

/// Flags that may move a TCP state: their segments go the full way.
const MOVES_STATE: u8 = tcpf::SYN | tcpf::FIN | tcpf::RST;

/// Whether a packet with TCP `flags` (0 for UDP) of session `s` is settled:
/// it moves no state, and the director only rewrites it incrementally — so
/// its L4 checksum is left to the receiver (see the module's notes).
#[inline]
pub(super) fn settled<A>(s: &Session<A>, flags: u8) -> bool {
    !s.has(flag::REVEAL)
        && (s.proto != proto::TCP || (s.state == TcpState::Established as u8 && flags & MOVES_STATE == 0))
}

impl State {
    /// Forwards `p` when it is an established flow's packet; `None`, with
    /// nothing changed but the probe's hint in `p`, when the full pipeline
    /// must decide.
    #[inline]
    pub(super) fn established<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        p: &mut Parsed<F::Addr>,
    ) -> Option<Verdict> {
        if !self.params.short_way {
            return None;
        }
        let (l4, t) = (p.l4?, p.tuple()?);
        if p.ip.proto == proto::TCP && l4.flags & MOVES_STATE != 0 {
            return None;
        }
        let table = F::table(&mut self.tables);
        let (i, side) = match p.hint {
            Hint::Hit(i, side) if table.holds(i, side, &t) => (i, side),
            Hint::Miss { inserts } if table.inserts() == inserts => return None,
            _ => match table.lookup(&t) {
                Some(found) => found,
                None => {
                    p.hint = Hint::Miss { inserts: table.inserts() };
                    return None;
                }
            },
        };
        p.hint = Hint::Hit(i, side);
        let revealing = table.get(i).has(flag::REVEAL);
        let (l3, ip) = (p.l3, p.ip);
        if (revealing && !self.reveal_ready::<F>(cfg, i, &frame.data()[l3..], &ip))
            || !self.takes::<F>(cfg, i, side, ip.len)
        {
            return None;
        }
        Some(self.take::<F>(cfg, frame, l3, &ip, i, side))
    }

    /// Whether session `i`, found on `side` for a packet of `len` bytes
    /// without SYN, FIN or RST, takes the short way: the one test of all
    /// the full way would have to decide.
    #[inline]
    fn takes<F: Family>(&mut self, cfg: &Snapshot, i: u32, side: Side, len: usize) -> bool {
        let s = F::table(&mut self.tables).get(i);
        let inbound = side == Side::In;
        s.expires > self.now
            && !s.has(flag::ONE_PACKET)
            && (s.proto != proto::TCP
                || (s.state == TcpState::Established as u8 && (inbound || !s.has(flag::NOOUTPUT))))
            && (if inbound { s.nh_rs } else { s.nh_client }) != NIL
            && (!inbound || len <= cfg.min_mtu())
            && (!cfg.settings.expire_nodest_conn || cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial))
    }

    /// Whether a `REVEAL` session's packet (the IP packet `b`) may take the
    /// short way: no SYN-proxy splice waits, and its checksum holds (it is
    /// not settled: the client's address may recompute it). Out of line:
    /// most sessions reveal nothing.
    #[inline(never)]
    fn reveal_ready<F: Family>(&mut self, cfg: &Snapshot, i: u32, b: &[u8], ip: &L3<F::Addr>) -> bool {
        !F::table(&mut self.tables).reveal(i).splice.waiting
            && (!cfg.settings.verify_l4_checksum || self.defragging || l4_checksum_ok::<F>(b, ip))
    }

    /// The short way's state step, which leaves the state where it is (the
    /// timer moves), then the full way's tail.
    #[inline]
    fn take<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        i: u32,
        side: Side,
    ) -> Verdict {
        let s = F::table(&mut self.tables).get_mut(i);
        let state = s.state;
        s.expires = self.now + timeout(cfg, s.proto, TcpState::Established);
        let inbound = side == Side::In;
        self.sync_note::<F>(cfg, i, state, inbound);
        self.short_taken += 1;
        if inbound {
            self.forward_in::<F>(cfg, frame, l3, ip, i)
        } else {
            self.forward_out::<F>(cfg, frame, l3, ip, i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::tcp_state::{next_state, Dir};

    #[test]
    fn what_the_short_way_takes_leaves_an_established_state_where_it_is() {
        for flags in 0..=u8::MAX {
            if flags & MOVES_STATE != 0 {
                continue;
            }
            for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
                assert_eq!(next_state(TcpState::Established, dir, flags), TcpState::Established, "{flags:#x} {dir:?}");
            }
        }
    }
}
