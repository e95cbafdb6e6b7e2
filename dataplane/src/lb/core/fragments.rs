//! Fragments addressed to a service (or to a FULLNAT local address), IPv4
//! and IPv6: each is held ([`crate::lb::defrag`]) until its datagram is
//! complete, and then the datagram goes on in the pieces it came in — what
//! IPVS forwards after the kernel's reassembly, without making the frames
//! bigger than the links took:
//! 1. the first fragment (it carries the ports) goes through the pipeline
//!    as the whole datagram would: session or scheduling, state, the mode's
//!    rewrite (the transport checksum, which covers the whole datagram, is
//!    updated incrementally for the new addresses and ports; it is not
//!    verified, as the data is in pieces);
//! 2. every other fragment follows the session the first one found, with
//!    the same rewrite of its IP header (DR: none; NAT/FULLNAT: addresses
//!    and TTL; TUN: encapsulated), or the first one's drop.
//!
//! The frame that completes a datagram is processed in place and answered
//! as its verdict; the held ones are copies, handed to the worker to send
//! ([`super::Core::take_emitted`]).

use super::conn::Tally;
use super::pipeline::{parse_l4, Hint, Parsed, L4};
use super::State;
use crate::lb::defrag::{Added, Defrag, Key, Piece, MAX_FRAGS, SLOT_HEAD};
use crate::lb::family::{Family, L3};
use crate::lb::frame::Frame;
use crate::lb::session::{flag, Side, Tuple};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use crate::lb::Verdict;
use crate::wire::{be16, be32, proto};
use xdpvs_api::config::{Fwd, Proto};

/// Held fragments waiting to be sent, at most (a burst's worth of trains).
pub(super) const EMITS_MAX: usize = 4 * MAX_FRAGS;

/// A fragment to send from the defragmentation pool.
#[derive(Debug, Clone, Copy)]
pub(super) struct Emit {
    pub(super) slot: u16,
    pub(super) head: u16,
    pub(super) len: u16,
    pub(super) iface: u16,
}

/// A fragment's train and place, read from the IP packet `b`.
pub(super) fn fragment_of<F: Family>(b: &[u8], ip: &L3<F::Addr>) -> Option<(Key, Piece)> {
    let mut key = Key { v6: F::IS_V6, proto: ip.proto, ..Key::default() };
    key.src[..ip.src.as_ref().len()].copy_from_slice(ip.src.as_ref());
    key.dst[..ip.dst.as_ref().len()].copy_from_slice(ip.dst.as_ref());
    if !F::IS_V6 {
        let ff = be16(b, 6);
        key.id = u32::from(be16(b, 4));
        let piece = Piece { offset: usize::from(ff & 0x1fff) * 8, len: ip.len - ip.l4_off, more: ff & 0x2000 != 0 };
        return Some((key, piece));
    }
    // IPv6: the fragment header among the extension headers.
    let (mut next, mut at) = (b[6], 40);
    loop {
        let h = b.get(at..at + 8)?;
        match next {
            proto::FRAGMENT => {
                let om = be16(h, 2);
                key.id = be32(h, 4);
                let data = at + 8;
                let piece =
                    Piece { offset: usize::from(om & 0xfff8), len: ip.len.checked_sub(data)?, more: om & 1 != 0 };
                return Some((key, piece));
            }
            proto::HOPOPTS | proto::ROUTING | proto::DSTOPTS => at += (usize::from(h[1]) + 1) * 8,
            proto::AH => at += (usize::from(h[1]) + 2) * 4,
            _ => return None,
        }
        next = h[0];
    }
}

/// The transport header at the start of a first fragment `b` (a UDP
/// header's length field names the whole datagram, not this piece): the
/// whole TCP header, options too, or UDP's 8 bytes.
fn first_l4(b: &[u8], proto_nr: u8) -> Option<L4> {
    match proto_nr {
        proto::TCP if b.len() >= 20 && usize::from(b[12] >> 4) * 4 <= b.len() => parse_l4(b, proto_nr),
        proto::UDP if b.len() >= 8 => Some(L4 { sport: be16(b, 0), dport: be16(b, 2), flags: 0 }),
        _ => None,
    }
}

impl State {
    /// A fragment (not ICMP): held, or, completing its datagram, forwarded
    /// with the rest.
    pub(super) fn fragment<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
    ) -> Verdict {
        if !cfg.is_local(F::to_ip(ip.dst)) {
            return self.pass();
        }
        let Some((key, piece)) = fragment_of::<F>(&frame.data()[l3..l3 + ip.len], ip) else {
            return self.drop(DropReason::FragMalformed);
        };
        match self.defrag.add(&key, piece, frame.data(), self.now) {
            Added::Held => {
                self.stats.frag_held += 1;
                Verdict::Taken
            }
            Added::Dropped { why, dropped } => {
                self.stats.drop_n(why, dropped as u64);
                self.drop(why)
            }
            Added::Complete(t) => {
                let v = self.datagram::<F>(cfg, frame, l3, piece, t);
                let emits = &self.emits;
                self.defrag.release_but(t, |slot| emits.iter().any(|e| e.slot == slot));
                v
            }
        }
    }

    /// A complete datagram: its first fragment through the pipeline, then
    /// every other as the first went. `frame` (at `piece`) completed it.
    fn datagram<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        piece: Piece,
        t: usize,
    ) -> Verdict {
        let mut held = [(0u16, Piece::default()); MAX_FRAGS];
        let mut n = 0;
        for h in self.defrag.held(t) {
            held[n] = h;
            n += 1;
        }
        let held = &held[..n];
        let mut pool = self.defrag.take_pool();
        let (first, flow) = match held.iter().find(|h| h.1.offset == 0) {
            None => self.first_fragment::<F>(cfg, frame, l3),
            Some(&(slot, _)) => {
                let len = self.defrag.frame_len(t, slot);
                let mut f =
                    Frame::new(Defrag::frame_in(&mut pool, slot), SLOT_HEAD, len).expect("a held frame fits its slot");
                let r = self.first_fragment::<F>(cfg, &mut f, l3);
                self.emit(slot, &f, r.0);
                r
            }
        };
        for &(slot, _) in held.iter().filter(|h| h.1.offset != 0) {
            let len = self.defrag.frame_len(t, slot);
            let mut f =
                Frame::new(Defrag::frame_in(&mut pool, slot), SLOT_HEAD, len).expect("a held frame fits its slot");
            let v = self.later_fragment::<F>(cfg, &mut f, l3, flow, first);
            self.emit(slot, &f, v);
        }
        self.defrag.give_back_pool(pool);
        if matches!(first, Verdict::Tx { .. }) {
            self.stats.frag_reassembled += 1;
        }
        if piece.offset == 0 {
            first
        } else {
            self.later_fragment::<F>(cfg, frame, l3, flow, first)
        }
    }

    /// Queues a held fragment sent on (`v` a transmit) for the worker.
    fn emit(&mut self, slot: u16, f: &Frame<'_>, v: Verdict) {
        if let Verdict::Tx { iface } = v {
            if self.emits.len() == EMITS_MAX {
                // The worker has not taken the last ones (it does every burst).
                self.stats.drop(DropReason::FragNoRoom);
                return;
            }
            self.emits.push(Emit { slot, head: f.head() as u16, len: f.len() as u16, iface });
        }
    }

    /// The datagram's first fragment, through the pipeline as the whole
    /// datagram would go; and the session it found or made (and on which
    /// side), for the others.
    fn first_fragment<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
    ) -> (Verdict, Option<(u32, Side)>) {
        let Ok(ip) = F::parse(&frame.data()[l3..]) else { return (self.drop(DropReason::L3Malformed), None) };
        let ip = L3 { fragmented: false, ..ip };
        let Some(l4) = first_l4(&frame.data()[l3 + ip.l4_off..l3 + ip.len], ip.proto) else {
            // Too short to hold its ports (a tiny-fragment attack).
            return (self.drop(DropReason::FragMalformed), None);
        };
        let t = Tuple { src: ip.src, dst: ip.dst, sport: l4.sport, dport: l4.dport, proto: ip.proto };
        if self.splits_stream::<F>(cfg, &t) {
            return (self.drop(DropReason::Fragment), None);
        }
        self.defragging = true;
        let v = self.ip::<F>(cfg, frame, Parsed { l3, ip, l4: Some(l4), hash: None, hint: Hint::Unprobed });
        self.defragging = false;
        (v, F::table(&mut self.tables).lookup(&t))
    }

    /// Whether the flow's bytes would move (a SYN-proxied service, one that
    /// hands its servers the client's address): then it cannot go in pieces.
    fn splits_stream<F: Family>(&mut self, cfg: &Snapshot, t: &Tuple<F::Addr>) -> bool {
        if let Some((i, _)) = F::table(&mut self.tables).lookup(t) {
            return F::table(&mut self.tables).get(i).has(flag::REVEAL);
        }
        let svc = Proto::from_number(t.proto).and_then(|p| cfg.lookup(p, F::to_ip(t.dst), t.dport));
        svc.and_then(|s| cfg.service(s)).is_some_and(|s| s.spec.synproxy || s.spec.client_address_option().is_some())
    }

    /// A fragment after the first: the first's session's rewrite of its IP
    /// header, or the first's fate.
    fn later_fragment<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        flow: Option<(u32, Side)>,
        first: Verdict,
    ) -> Verdict {
        let Some((i, side)) = flow.filter(|_| matches!(first, Verdict::Tx { .. })) else {
            return self.drop(match first {
                Verdict::Drop(d) => d,
                _ => DropReason::Fragment,
            });
        };
        let Ok(ip) = F::parse(&frame.data()[l3..]) else { return self.drop(DropReason::L3Malformed) };
        let s = *F::table(&mut self.tables).get(i);
        if side == Side::Out {
            let b = &mut frame.data_mut()[l3..];
            if !F::decrement_ttl(b) {
                return self.drop(DropReason::TtlExceeded);
            }
            F::set_src(b, s.vip);
            if s.fwd == Fwd::FullNat {
                F::set_dst(b, s.cip);
            }
            self.count(cfg, Tally::of(&s), ip.len, false);
            return self.l2(cfg, frame, s.nh_client);
        }
        if s.fwd != Fwd::Tun && ip.len > self.mtu_toward(cfg, s.nh_rs) {
            return self.drop(DropReason::TooBigNoDf);
        }
        match s.fwd {
            Fwd::Dr => {}
            Fwd::Nat | Fwd::FullNat => {
                let b = &mut frame.data_mut()[l3..];
                if !F::decrement_ttl(b) {
                    return self.drop(DropReason::TtlExceeded);
                }
                F::set_dst(b, s.rip);
                if s.fwd == Fwd::FullNat {
                    F::set_src(b, s.lip);
                }
            }
            Fwd::Tun => {
                if let Err(v) = self.encap::<F>(cfg, frame, l3, &ip, &s) {
                    return v;
                }
            }
        }
        self.count(cfg, Tally::of(&s), ip.len, true);
        self.l2(cfg, frame, s.nh_rs)
    }
}
