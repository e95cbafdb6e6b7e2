//! The pipeline: a frame's first look (ownership, L2, the IP header, the
//! ports), the burst's index probe, then one function per direction that
//! reads top to bottom:
//! - [`State::inbound`] (client → service): checksum (unless settled) → session (or, on a
//!   miss: schedule, persistence, local port, next hops) → next hop → TCP
//!   state step → rewrite for the mode (DR: L2 only; NAT: DNAT; FULLNAT:
//!   SNAT+DNAT; TUN: encapsulate, or ICMP too-big back to the client) → L2;
//! - [`State::outbound`] (real server → client, NAT/FULLNAT): checksum →
//!   session → next hop → state step → reverse rewrite → L2.
//!
//! An established flow's packet takes the short way (`established`) to
//! the same tails, [`State::forward_in`] and [`State::forward_out`].
//!
//! Every early return is a named, counted drop, a park (the next hop is
//! being resolved: frame and session untouched) or a pass to the kernel.

use super::conn::Tally;
use super::established::settled;
use super::xmit::forward_rewrite;
use super::State;
use crate::lb::family::{Family, L3, V4, V6};
use crate::lb::frame::Frame;
use crate::lb::owner;
use crate::lb::session::{flag, SessionTable, Side, Tuple, NIL};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use crate::lb::tcp_state::Dir;
use crate::lb::Verdict;
use crate::wire::checksum;
use crate::wire::ethernet::{ethertype, EthernetFrame, HEADER_LEN as ETH};
use crate::wire::tcp::TcpSegment;
use crate::wire::udp::UdpDatagram;
use crate::wire::{be16, proto};
use xdpvs_api::config::{Fwd, Proto};

/// Ports and flags of a TCP/UDP header, read once.
#[derive(Debug, Clone, Copy)]
pub(super) struct L4 {
    pub(super) sport: u16,
    pub(super) dport: u16,
    pub(super) flags: u8,
}

#[inline]
pub(super) fn parse_l4(b: &[u8], proto_nr: u8) -> Option<L4> {
    match proto_nr {
        proto::TCP => {
            let t = TcpSegment::new_checked(b).ok()?;
            Some(L4 { sport: t.src_port(), dport: t.dst_port(), flags: t.flags() })
        }
        _ => {
            let u = UdpDatagram::new_checked(b).ok()?;
            Some(L4 { sport: u.src_port(), dport: u.dst_port(), flags: 0 })
        }
    }
}

/// Verifies the TCP/UDP/ICMP checksum of the IP packet `b`.
#[inline]
pub(super) fn l4_checksum_ok<F: Family>(b: &[u8], ip: &L3<F::Addr>) -> bool {
    let l4 = &b[ip.l4_off..ip.len];
    let seed = match ip.proto {
        proto::UDP if !F::IS_V6 && be16(l4, 6) == 0 => return true,
        proto::TCP | proto::UDP => F::pseudo(ip.src, ip.dst, ip.proto, l4.len()),
        _ => F::icmp_seed(ip.src, ip.dst, l4.len()),
    };
    checksum::fold(checksum::sum(l4, seed)) == 0xffff
}

/// What the first look at a frame found.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pre {
    /// Decided already: not IP, a malformed header, another core's frame.
    Done(Verdict),
    V4(Parsed<[u8; 4]>),
    V6(Parsed<[u8; 16]>),
}

/// A parsed IP frame; `l4` is set for an unfragmented TCP/UDP packet whose
/// header checked out, `hint` by the probe.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parsed<A> {
    pub(super) l3: usize,
    pub(super) ip: L3<A>,
    pub(super) l4: Option<L4>,
    /// Set by the first probe pass.
    pub(super) hash: Option<u64>,
    /// Set by the probe.
    pub(super) hint: Hint,
}

/// What the burst's probe found for a frame; [`State::ip`] re-validates it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Hint {
    /// Not probed (one frame at a time).
    Unprobed,
    /// No session, while the table's insert count is still `inserts`.
    Miss { inserts: u64 },
    /// This session, on this side, unless it went since.
    Hit(u32, Side),
}

impl<A: Copy> Parsed<A> {
    #[inline]
    pub(super) fn tuple(&self) -> Option<Tuple<A>> {
        let l4 = self.l4?;
        Some(Tuple { src: self.ip.src, dst: self.ip.dst, sport: l4.sport, dport: l4.dport, proto: self.ip.proto })
    }
}

impl State {
    /// First look at a frame: ownership, L2, the IP header (checksum
    /// verified, link padding trimmed) and the TCP/UDP ports.
    #[inline(always)]
    pub(super) fn classify(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>) -> Pre {
        self.look_plain_frame(cfg, frame).unwrap_or_else(|| self.look(cfg, frame))
    }

    /// [`Self::look_plain`] for the frame's family; `None` for a frame that
    /// is not plain.
    #[inline]
    fn look_plain_frame(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>) -> Option<Pre> {
        match EthernetFrame::new_unchecked(frame.data()).untagged_ethertype() {
            Some(ethertype::IPV4) => self.look_plain::<V4>(cfg, frame).map(|r| r.map_or_else(Pre::Done, Pre::V4)),
            Some(ethertype::IPV6) => self.look_plain::<V6>(cfg, frame).map(|r| r.map_or_else(Pre::Done, Pre::V6)),
            _ => None,
        }
    }

    /// The first look at a plain frame (an untagged Ethernet header, an IP
    /// header in its common form, TCP or UDP, nearly every frame): what
    /// [`Self::look`] finds, read at fixed offsets. `None`, with nothing
    /// changed, for any other frame, or a bad header checksum (the full
    /// look counts it).
    #[inline]
    fn look_plain<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
    ) -> Option<Result<Parsed<F::Addr>, Verdict>> {
        let b = frame.data().get(ETH..)?;
        let ip = F::parse_plain(b).filter(|ip| ip.proto == proto::TCP || ip.proto == proto::UDP)?;
        let n = self.params.ncores;
        let owner = if n > 1 { owner::of_packet::<F>(cfg, n, b, ip) } else { self.params.id };
        if owner != self.params.id {
            self.stats.rx += 1;
            self.stats.handoff += 1;
            return Some(Err(Verdict::Handoff(owner)));
        }
        if !F::header_checksum_ok(b) {
            return None;
        }
        let l4 = parse_l4(&b[ip.l4_off..ip.len], ip.proto)?;
        self.stats.rx += 1;
        frame.set_len(ETH + ip.len);
        Some(Ok(Parsed { l3: ETH, ip, l4: Some(l4), hash: None, hint: Hint::Unprobed }))
    }

    /// [`Self::classify`] for any frame.
    #[inline(never)]
    fn look(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>) -> Pre {
        self.stats.rx += 1;
        let Ok((ty, l3, _)) = EthernetFrame::new_unchecked(frame.data()).payload_offset() else {
            return Pre::Done(self.pass());
        };
        match ty {
            ethertype::IPV4 => self.parse::<V4>(cfg, frame, l3).map_or_else(Pre::Done, Pre::V4),
            ethertype::IPV6 => self.parse::<V6>(cfg, frame, l3).map_or_else(Pre::Done, Pre::V6),
            _ => Pre::Done(self.pass()),
        }
    }

    /// The IP header (parsed once: ownership is read from it too).
    pub(super) fn parse<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
    ) -> Result<Parsed<F::Addr>, Verdict> {
        // The plain header (nearly every packet's) in one look.
        let ip = match F::parse_plain(&frame.data()[l3..]) {
            Some(ip) => ip,
            None => F::parse(&frame.data()[l3..]).map_err(|d| self.drop(d))?,
        };
        if self.params.ncores > 1 {
            let owner = owner::of_packet::<F>(cfg, self.params.ncores, &frame.data()[l3..], ip);
            if owner != self.params.id {
                self.stats.handoff += 1;
                return Err(Verdict::Handoff(owner));
            }
        }
        if !F::header_checksum_ok(&frame.data()[l3..]) {
            return Err(self.drop(DropReason::BadIpChecksum));
        }
        // Drop link-layer padding: only the IP packet travels on.
        frame.set_len(l3 + ip.len);
        let flow = (ip.proto == proto::TCP || ip.proto == proto::UDP) && !ip.fragmented;
        let l4 = if flow { parse_l4(&frame.data()[l3 + ip.l4_off..l3 + ip.len], ip.proto) } else { None };
        Ok(Parsed { l3, ip, l4, hash: None, hint: Hint::Unprobed })
    }

    /// Hashes the flow and reads its index entries (first pass over a burst).
    #[inline]
    pub(super) fn warm(&self, p: &mut Pre) -> u32 {
        match p {
            Pre::V4(x) => x.tuple().map_or(0, |t| {
                let h = self.tables.v4.hash(&t);
                x.hash = Some(h);
                self.tables.v4.warm(h)
            }),
            Pre::V6(x) => x.tuple().map_or(0, |t| {
                let h = self.tables.v6.hash(&t);
                x.hash = Some(h);
                self.tables.v6.warm(h)
            }),
            Pre::Done(_) => 0,
        }
    }

    /// Looks the flow up (second pass), bringing its session into the cache;
    /// [`Self::ip`] re-validates the answer.
    #[inline]
    pub(super) fn probe(&mut self, p: &mut Pre) {
        pub(super) fn go<F: Family>(t: &SessionTable<F>, x: &mut Parsed<F::Addr>) {
            if let Some(tuple) = x.tuple() {
                x.hint = match t.lookup_hashed(&tuple, x.hash.unwrap_or_else(|| t.hash(&tuple))) {
                    Some((i, side)) => Hint::Hit(i, side),
                    None => Hint::Miss { inserts: t.inserts() },
                };
            }
        }
        match p {
            Pre::V4(x) => go(&self.tables.v4, x),
            Pre::V6(x) => go(&self.tables.v6, x),
            Pre::Done(_) => {}
        }
    }

    #[inline(always)]
    pub(super) fn finish(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>, mut p: Pre) -> Verdict {
        match p {
            Pre::Done(v) => v,
            Pre::V4(ref mut x) => match self.established::<V4>(cfg, frame, x) {
                Some(v) => v,
                None => self.ip::<V4>(cfg, frame, *x),
            },
            Pre::V6(ref mut x) => match self.established::<V6>(cfg, frame, x) {
                Some(v) => v,
                None => self.ip::<V6>(cfg, frame, *x),
            },
        }
    }

    /// IP dispatch: ICMP, a session hit either way, a new flow, or not ours.
    pub(super) fn ip<F: Family>(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>, p: Parsed<F::Addr>) -> Verdict {
        let (l3, ip) = (p.l3, p.ip);
        if ip.proto == F::ICMP_PROTO {
            return self.icmp::<F>(cfg, frame, l3, &ip);
        }
        let Some(proto) = Proto::from_number(ip.proto) else {
            return self.pass();
        };
        if ip.fragmented {
            return self.fragment::<F>(cfg, frame, l3, &ip);
        }
        let (Some(l4), Some(t)) = (p.l4, p.tuple()) else {
            return self.ours_or_pass(cfg, F::to_ip(ip.dst), DropReason::L4Malformed);
        };
        let table = F::table(&mut self.tables);
        let found = match p.hint {
            Hint::Hit(i, side) if table.holds(i, side, &t) => Some((i, side)),
            Hint::Miss { inserts } if table.inserts() == inserts => None,
            _ => table.lookup(&t),
        };
        let hit = match found {
            Some((i, _)) if table.get(i).expires <= self.now => {
                self.expire::<F>(cfg, i);
                None
            }
            Some((i, Side::In)) if proto == Proto::Tcp && self.new_conn_on_old::<F>(cfg, i, l4.flags) => {
                self.expire::<F>(cfg, i);
                None
            }
            // One-packet scheduling: every datagram is a new connection.
            Some((i, Side::In)) if F::table(&mut self.tables).get(i).has(flag::ONE_PACKET) => {
                self.expire::<F>(cfg, i);
                None
            }
            hit => hit,
        };
        match hit {
            Some((i, Side::In)) => self.inbound::<F>(cfg, frame, l3, &ip, &l4, Ok(i)),
            Some((i, Side::Out)) => self.outbound::<F>(cfg, frame, l3, &ip, &l4, i),
            None => match cfg.lookup(proto, F::to_ip(ip.dst), l4.dport) {
                Some(svc) if proto == Proto::Tcp && cfg.service(svc).is_some_and(|s| s.spec.synproxy) => {
                    self.synproxy_new::<F>(cfg, frame, l3, &ip, &l4, svc)
                }
                Some(svc) => self.inbound::<F>(cfg, frame, l3, &ip, &l4, Err(svc)),
                None if cfg.laddr_slot(F::to_ip(ip.dst)).is_some()
                    || cfg.standby_laddrs.contains(&F::to_ip(ip.dst)) =>
                {
                    self.drop(DropReason::NoSession)
                }
                None => self.pass(),
            },
        }
    }

    /// Client → service. `hit`: the session, or the service to schedule in.
    pub(super) fn inbound<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        l4: &L4,
        hit: Result<u32, u32>,
    ) -> Verdict {
        // A settled packet's checksum is its receiver's to check; a datagram
        // in fragments: its checksum covers bytes not here.
        let settled = hit.is_ok_and(|i| settled(F::table(&mut self.tables).get(i), l4.flags));
        if cfg.settings.verify_l4_checksum
            && !settled
            && !self.defragging
            && !l4_checksum_ok::<F>(&frame.data()[l3..], ip)
        {
            return self.drop(DropReason::BadL4Checksum);
        }
        // 1. The session: found, or scheduled now (no state for a flow that
        // cannot be a client's, or whose TTL runs out here).
        let i = match hit {
            Ok(i) => match self.check_dest::<F>(cfg, i) {
                // SYN proxy: the server's SYN-ACK has not come yet.
                Ok(()) if self.splice_waits::<F>(i, l4.flags) => return Verdict::Park(DropReason::SynproxyNoAnswer),
                Ok(()) => i,
                Err(d) => return self.drop(d),
            },
            Err(svc) => {
                if let Some(d) = bad_source::<F>(cfg, ip, l4) {
                    return self.drop(d);
                }
                if ip.ttl <= 1 && decrements_ttl(cfg, svc) {
                    return self.time_exceeded::<F>(cfg, frame, l3, ip, NIL);
                }
                match self.new_session::<F>(cfg, svc, ip, l4) {
                    Ok(i) => i,
                    Err(d) => return self.drop(d),
                }
            }
        };
        // 2. The next hop (before the state moves: a parked frame comes back
        // and must find the session as it left it) and its MTU; state and
        // timeout.
        let nh = match self.session_hop::<F>(cfg, i, true) {
            Ok(nh) => nh,
            Err(d) => return self.park_or_drop(d),
        };
        // Only a packet longer than the smallest MTU can be too big.
        if ip.len > cfg.min_mtu() {
            let (fwd, nh_client) = {
                let s = F::table(&mut self.tables).get(i);
                (s.fwd, s.nh_client)
            };
            let mtu = self.mtu_toward(cfg, nh);
            if fwd != Fwd::Tun && ip.len > mtu {
                return if ip.dont_frag {
                    self.too_big::<F>(cfg, frame, l3, ip, mtu, nh_client)
                } else {
                    self.drop(DropReason::TooBigNoDf)
                };
            }
        }
        let old = self.step::<F>(cfg, i, Dir::Input, l4.flags);
        self.sync_note::<F>(cfg, i, old, true);
        // 3. Rewrite, count, send.
        self.forward_in::<F>(cfg, frame, l3, ip, i)
    }

    /// Client → service, once session `i` has taken the packet: rewrite for
    /// the real server's forwarding method (FULLNAT: and hand it the
    /// client's address, when the service does), count, send.
    #[inline(always)]
    pub(super) fn forward_in<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        i: u32,
    ) -> Verdict {
        // The fields this needs, not the whole session (kept out of a copy).
        let s = F::table(&mut self.tables).get(i);
        let (fwd, revealing, nh, tally, to) = (s.fwd, s.has(flag::REVEAL), s.nh_rs, Tally::of(s), (s.rip, s.rport));
        let from = (fwd == Fwd::FullNat).then_some((s.lip, s.lport));
        match fwd {
            Fwd::Dr => {}
            Fwd::Nat | Fwd::FullNat => {
                let b = &mut frame.data_mut()[l3..];
                if !forward_rewrite::<F>(b, ip.l4_off, ip.proto, from, Some(to)) {
                    let back = F::table(&mut self.tables).get(i).nh_client;
                    return self.time_exceeded::<F>(cfg, frame, l3, ip, back);
                }
                if revealing {
                    if let Err(d) = self.revealed_in::<F>(cfg, frame, l3, ip, i) {
                        return self.drop(d);
                    }
                }
            }
            Fwd::Tun => {
                if let Err(v) = self.encap_session::<F>(cfg, frame, l3, ip, i) {
                    return v;
                }
            }
        }
        self.count(cfg, tally, ip.len, true);
        self.l2(cfg, frame, nh)
    }

    /// Real server → client (NAT/FULLNAT replies).
    pub(super) fn outbound<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        l4: &L4,
        i: u32,
    ) -> Verdict {
        let settled = settled(F::table(&mut self.tables).get(i), l4.flags);
        if cfg.settings.verify_l4_checksum
            && !settled
            && !self.defragging
            && !l4_checksum_ok::<F>(&frame.data()[l3..], ip)
        {
            return self.drop(DropReason::BadL4Checksum);
        }
        if let Err(d) = self.check_dest::<F>(cfg, i) {
            return self.drop(d);
        }
        if let Err(d) = self.session_hop::<F>(cfg, i, false) {
            return self.park_or_drop(d);
        }
        // SYN proxy: the server's answer to the director's SYN.
        let revealing = F::table(&mut self.tables).get(i).has(flag::REVEAL);
        if revealing && F::table(&mut self.tables).reveal(i).splice.waiting {
            if let Some(v) = self.splice_synack::<F>(cfg, frame, l3, ip, l4, i) {
                return v;
            }
        }
        let old = self.step::<F>(cfg, i, Dir::Output, l4.flags);
        self.sync_note::<F>(cfg, i, old, false);
        self.forward_out::<F>(cfg, frame, l3, ip, i)
    }

    /// Real server → client, once session `i` has taken the packet: the
    /// reverse rewrite, count, send.
    #[inline(always)]
    pub(super) fn forward_out<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        i: u32,
    ) -> Verdict {
        let s = F::table(&mut self.tables).get(i);
        let (revealing, nh, tally, from) = (s.has(flag::REVEAL), s.nh_client, Tally::of(s), (s.vip, s.vport));
        let to = (s.fwd == Fwd::FullNat).then_some((s.cip, s.cport));
        let b = &mut frame.data_mut()[l3..];
        if !forward_rewrite::<F>(b, ip.l4_off, ip.proto, Some(from), to) {
            return self.drop(DropReason::TtlExceeded);
        }
        if revealing {
            self.revealed_out::<F>(frame, l3, ip, i);
        }
        self.count(cfg, tally, ip.len, false);
        self.l2(cfg, frame, nh)
    }
}

/// Why a new flow's source cannot be a client, if it cannot: a martian, an
/// address of the balancer's own (VIP, local address, real server, the
/// director), or port 0.
pub(super) fn bad_source<F: Family>(cfg: &Snapshot, ip: &L3<F::Addr>, l4: &L4) -> Option<DropReason> {
    let src = F::to_ip(ip.src);
    if xdpvs_api::config::martian(src).is_some() {
        Some(DropReason::MartianSource)
    } else if cfg.is_own(src) {
        Some(DropReason::SpoofedSource)
    } else if l4.sport == 0 {
        Some(DropReason::ZeroSourcePort)
    } else {
        None
    }
}

/// Whether the service forwards by a method that decrements the TTL (NAT,
/// FULLNAT): then a packet arriving with TTL 1 ends here.
fn decrements_ttl(cfg: &Snapshot, svc: u32) -> bool {
    cfg.service(svc).is_some_and(|s| s.dests.iter().filter_map(|&d| cfg.dest(d)).any(|d| d.spec.fwd.two_way()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::core::{Core, CoreParams};
    use crate::testkit::{topo, Pkt};
    use proptest::prelude::*;
    use xdpvs_api::config::SchedKind;

    /// Frames of every kind the plain look takes (and some it must not:
    /// tagged, with options, fragments, short) with header bytes changed.
    fn mangled() -> impl Strategy<Value = Vec<u8>> {
        let mut frames = Vec::new();
        for (src, dst) in [("198.18.0.1:1024", "198.18.0.2:80"), ("[2001:db8::1]:1024", "[2001:db8::2]:80")] {
            let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
            frames.push(Pkt::tcp(src, dst, 0x10).payload(b"data").build());
            frames.push(Pkt::udp(src, dst).payload(b"data").build());
            let mut tagged = Pkt::tcp(src, dst, 0x10);
            tagged.vlan = Some(7);
            frames.push(tagged.build());
        }
        (0..frames.len(), proptest::collection::vec((0usize..70, any::<u8>()), 0..4), 0usize..90).prop_map(
            move |(k, edits, cut)| {
                let mut b = frames[k].clone();
                for (at, v) in edits {
                    if at < b.len() {
                        b[at] = v;
                    }
                }
                b.truncate(b.len().saturating_sub(cut % 3 * cut));
                b
            },
        )
    }

    fn core(ncores: u16) -> Core {
        let (cfg, _) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 2);
        Core::new(topo::snapshot(&cfg), CoreParams { ncores, ..CoreParams::default() }, 0)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 800, .. ProptestConfig::default() })]

        /// Whatever the plain look takes, it finds what the full look does:
        /// the same record (or verdict), counters and frame.
        #[test]
        fn the_plain_look_finds_what_the_full_look_does(b in mangled(), ncores in 1u16..3) {
            let (mut a, mut z) = (core(ncores), core(ncores));
            let cfg = a.cfg.clone();
            let (mut ba, mut bz) = (b.clone(), b.clone());
            let (mut fa, mut fz) = (Frame::new(&mut ba, 0, b.len()).unwrap(), Frame::new(&mut bz, 0, b.len()).unwrap());
            let Some(plain) = a.state.look_plain_frame(&cfg, &mut fa) else {
                prop_assert_eq!(a.stats(), z.stats(), "a frame left to the full look was counted");
                return Ok(());
            };
            let full = z.state.look(&cfg, &mut fz);
            prop_assert_eq!(format!("{plain:?}"), format!("{full:?}"));
            prop_assert_eq!(a.stats(), z.stats());
            prop_assert_eq!(fa.data(), fz.data());
        }
    }
}
