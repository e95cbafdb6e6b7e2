//! Transmit: rewriting addresses and ports with incremental checksums
//! (RFC 1624), next hops and MACs, the TUN encapsulation, and the ICMP
//! "too big" answer when an encapsulated packet would not fit.

use super::{State, ICMP_BURST, ICMP_PER_SEC};
use crate::lb::family::{Family, HeaderOpts, L3};
use crate::lb::frame::Frame;
use crate::lb::net::NextHopError;
use crate::lb::session::{Session, NIL};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use crate::lb::Verdict;
use crate::lb::TICKS_PER_SEC;
use crate::wire::checksum;
use crate::wire::icmp::{IcmpPacket, HEADER_LEN as ICMP_HDR};
use crate::wire::{be16, proto, put16};
use std::net::IpAddr;
use xdpvs_api::config::Fwd;

/// Rewrites addresses and ports of the IP packet `b` (which may be a packet
/// quoted in an ICMP error, cut short after its ports): the IPv4 header
/// checksum and the L4 checksum (when present in `b`) are updated
/// incrementally, RFC 1624. (Always inlined: each caller's addresses and
/// ports are `Some` or `None` for good, and half the work folds away.)
#[inline(always)]
pub(super) fn rewrite<F: Family>(
    b: &mut [u8],
    l4_off: usize,
    proto_nr: u8,
    src: Option<(F::Addr, u16)>,
    dst: Option<(F::Addr, u16)>,
) {
    rewrite_with::<F>(b, l4_off, proto_nr, src, dst, 0);
}

/// [`rewrite`] for a packet forwarded on: the TTL (hop limit) decremented
/// too, in the same header checksum update. False, with nothing changed,
/// when the TTL would run out here.
#[inline(always)]
pub(super) fn forward_rewrite<F: Family>(
    b: &mut [u8],
    l4_off: usize,
    proto_nr: u8,
    src: Option<(F::Addr, u16)>,
    dst: Option<(F::Addr, u16)>,
) -> bool {
    let ttl = b[F::TTL_OFF];
    if ttl <= 1 {
        return false;
    }
    b[F::TTL_OFF] = ttl - 1;
    // IPv4: the word (TTL, protocol) drops by 0x0100: ~m + m' = 0xfeff.
    rewrite_with::<F>(b, l4_off, proto_nr, src, dst, 0xfeff);
    true
}

/// [`rewrite`] with `header` already owed to the IPv4 header checksum.
#[inline(always)]
fn rewrite_with<F: Family>(
    b: &mut [u8],
    l4_off: usize,
    proto_nr: u8,
    src: Option<(F::Addr, u16)>,
    dst: Option<(F::Addr, u16)>,
    mut header: u64,
) {
    let csum_at = l4_off + if proto_nr == proto::TCP { 16 } else { 6 };
    let has_csum = b.len() >= csum_at + 2;
    let mut csum = if has_csum { be16(b, csum_at) } else { 0 };
    let no_csum = proto_nr == proto::UDP && csum == 0 && !F::IS_V6;
    // One difference per address serves both checksums that cover it.
    let mut d = 0;
    if let Some((a, p)) = src {
        let da = checksum::delta(F::read_addr(b, F::SRC_OFF).as_ref(), a.as_ref());
        d += da + checksum::delta16(be16(b, l4_off), p);
        header += da;
        F::put_addr(b, F::SRC_OFF, a);
        put16(b, l4_off, p);
    }
    if let Some((a, p)) = dst {
        let da = checksum::delta(F::read_addr(b, F::DST_OFF).as_ref(), a.as_ref());
        d += da + checksum::delta16(be16(b, l4_off + 2), p);
        header += da;
        F::put_addr(b, F::DST_OFF, a);
        put16(b, l4_off + 2, p);
    }
    F::adjust_header(b, header);
    csum = checksum::apply(csum, d);
    if has_csum && !no_csum {
        if proto_nr == proto::UDP && csum == 0 {
            csum = 0xffff;
        }
        put16(b, csum_at, csum);
    }
}

/// Recomputes the ICMP checksum of the IP packet `b[..len]`.
pub(super) fn fill_icmp_checksum<F: Family>(b: &mut [u8], l4_off: usize, len: usize) {
    let (src, dst) = (F::read_addr(b, F::SRC_OFF), F::read_addr(b, F::DST_OFF));
    put16(b, l4_off + 2, 0);
    let c = !checksum::fold(checksum::sum(&b[l4_off..len], F::icmp_seed(src, dst, len - l4_off)));
    put16(b, l4_off + 2, c);
}

/// Recomputes the TCP/UDP checksum of the IP packet `b` (upper layer at
/// `l4_off`, to the end of `b`).
pub(super) fn fill_l4_checksum<F: Family>(b: &mut [u8], l4_off: usize, proto_nr: u8) {
    let (src, dst) = (F::read_addr(b, F::SRC_OFF), F::read_addr(b, F::DST_OFF));
    let at = l4_off + if proto_nr == proto::TCP { 16 } else { 6 };
    put16(b, at, 0);
    let seed = F::pseudo(src, dst, proto_nr, b.len() - l4_off);
    let mut c = !checksum::fold(checksum::sum(&b[l4_off..], seed));
    if proto_nr == proto::UDP && c == 0 {
        c = 0xffff;
    }
    put16(b, at, c);
}

impl State {
    pub(super) fn next_hop(&mut self, cfg: &Snapshot, dst: IpAddr, need_on_link: bool) -> Result<u32, DropReason> {
        match cfg.net.next_hop(dst) {
            Ok(nh) if need_on_link && !nh.on_link => Err(DropReason::DrNotOnLink),
            Ok(nh) => Ok(nh.neigh),
            Err(NextHopError::NoRoute) => Err(DropReason::NoRoute),
            Err(NextHopError::Unresolved(a)) => {
                self.request_resolve(a);
                Err(DropReason::NeighUnresolved)
            }
        }
    }

    /// Sets the MACs for next hop `nh` and answers the transmit verdict.
    #[inline(always)]
    pub(super) fn l2(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>, nh: u32) -> Verdict {
        let Some(head) = cfg.l2_head(nh) else {
            return self.l2_unready(cfg, nh);
        };
        frame.data_mut()[..12].copy_from_slice(&head.macs);
        self.stats.tx += 1;
        Verdict::Tx { iface: head.iface }
    }

    /// Why next hop `nh` has no Ethernet header yet: counted, and its MAC
    /// asked for when that is what is missing.
    #[cold]
    #[inline(never)]
    fn l2_unready(&mut self, cfg: &Snapshot, nh: u32) -> Verdict {
        match cfg.net.neighbour(nh) {
            Some(n) if n.mac.is_none() => {
                let a = n.addr;
                self.request_resolve(a);
                self.drop(DropReason::NeighUnresolved)
            }
            _ => self.drop(DropReason::NoRoute),
        }
    }

    /// The session's next hop toward its real server (`to_rs`) or its
    /// client, resolved now if it was not when the session began.
    pub(super) fn session_hop<F: Family>(&mut self, cfg: &Snapshot, i: u32, to_rs: bool) -> Result<u32, DropReason> {
        let s = F::table(&mut self.tables).get(i);
        let nh = if to_rs { s.nh_rs } else { s.nh_client };
        if nh != NIL {
            return Ok(nh);
        }
        let s = *s;
        let addr = F::to_ip(if to_rs { s.rip } else { s.cip });
        let nh = self.next_hop(cfg, addr, to_rs && s.fwd == Fwd::Dr)?;
        let s = F::table(&mut self.tables).get_mut(i);
        if to_rs {
            s.nh_rs = nh;
        } else {
            s.nh_client = nh;
        }
        Ok(nh)
    }

    /// [`Self::encap`] for session `i` (out of line: the session's copy
    /// stays off the other modes' stack).
    #[inline(never)]
    pub(super) fn encap_session<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        i: u32,
    ) -> Result<(), Verdict> {
        let s = *F::table(&mut self.tables).get(i);
        self.encap::<F>(cfg, frame, l3, ip, &s)
    }

    /// TUN: encapsulate toward the real server (outer TTL 64, DSCP/ECN
    /// copied, DF copied), or answer "too big" when it would not fit.
    pub(super) fn encap<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        s: &Session<F::Addr>,
    ) -> Result<(), Verdict> {
        let Some(iface) = cfg.net.neighbour(s.nh_rs).map(|n| n.iface) else {
            return Err(self.drop(DropReason::NoRoute));
        };
        let mtu = cfg.net.ifaces.get(usize::from(iface)).map_or(1500, |i| usize::from(i.mtu));
        if ip.len + F::HEADER_LEN > mtu {
            if !ip.dont_frag {
                return Err(self.drop(DropReason::TooBigNoDf));
            }
            let path_mtu = mtu.saturating_sub(F::HEADER_LEN);
            return Err(self.too_big::<F>(cfg, frame, l3, ip, path_mtu, s.nh_client));
        }
        let Some(src) = cfg.net.iface_addr(iface, F::IS_V6).and_then(F::from_ip) else {
            return Err(self.drop(DropReason::NoSourceAddr));
        };
        if !frame.push_head(F::HEADER_LEN) {
            return Err(self.drop(DropReason::NoHeadroom));
        }
        self.ident = self.ident.wrapping_add(1);
        let d = frame.data_mut();
        d.copy_within(F::HEADER_LEN..F::HEADER_LEN + l3, 0);
        F::write_header(
            &mut d[l3..],
            src,
            s.rip,
            F::TUNNEL_PROTO,
            ip.len,
            HeaderOpts { tos: ip.tos, ident: self.ident, dont_frag: ip.dont_frag },
        );
        Ok(())
    }

    /// Turns the frame, in place, into an ICMP "fragmentation needed" /
    /// "packet too big" from the VIP to the client, quoting the packet.
    pub(super) fn too_big<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        mtu: usize,
        nh_client: u32,
    ) -> Verdict {
        let mtu = if F::IS_V6 { mtu.max(1280) } else { mtu };
        let msg = F::icmp_too_big(mtu.min(usize::from(u16::MAX)) as u16);
        self.icmp_back::<F>(cfg, frame, l3, ip, msg, nh_client, DropReason::TooBig)
    }

    /// A packet whose TTL / hop limit runs out here: ICMP "time exceeded"
    /// back to its sender, from the address it was sent to, as a router
    /// answers; nothing of it goes on.
    pub(super) fn time_exceeded<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        nh_back: u32,
    ) -> Verdict {
        self.icmp_back::<F>(cfg, frame, l3, ip, F::icmp_time_exceeded(), nh_back, DropReason::TtlExceeded)
    }

    /// Turns the frame, in place, into the ICMP error `msg` (type, code,
    /// rest) from `ip.dst` back to `ip.src`, quoting the packet; the packet
    /// itself is counted as dropped for `why`. ICMP errors are rate-limited
    /// per core, as the kernel limits its own.
    #[allow(clippy::too_many_arguments)]
    fn icmp_back<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        (ty, code, rest): (u8, u8, u32),
        nh_back: u32,
        why: DropReason,
    ) -> Verdict {
        self.stats.drop(why);
        if !self.icmp_allowed() {
            return Verdict::Drop(why);
        }
        let nh = if nh_back != NIL {
            nh_back
        } else {
            match self.next_hop(cfg, F::to_ip(ip.src), false) {
                Ok(nh) => nh,
                Err(d) => return self.drop(d),
            }
        };
        let quote = ip.len.min(F::ICMP_ERROR_MAX - F::HEADER_LEN - ICMP_HDR);
        let grow = F::HEADER_LEN + ICMP_HDR;
        if !frame.push_head(grow) {
            return self.drop(DropReason::NoHeadroom);
        }
        frame.data_mut().copy_within(grow..grow + l3, 0);
        frame.set_len(l3 + grow + quote);
        self.ident = self.ident.wrapping_add(1);
        let d = &mut frame.data_mut()[l3..];
        IcmpPacket::new_unchecked(&mut d[F::HEADER_LEN..]).init(ty, code, rest);
        let opts = HeaderOpts { tos: 0, ident: self.ident, dont_frag: false };
        F::write_header(d, ip.dst, ip.src, F::ICMP_PROTO, ICMP_HDR + quote, opts);
        fill_icmp_checksum::<F>(d, F::HEADER_LEN, grow + quote);
        self.stats.icmp_generated += 1;
        self.l2(cfg, frame, nh)
    }

    /// One more ICMP error may go out now: a bucket of [`ICMP_BURST`]
    /// refilled at [`ICMP_PER_SEC`] per second (per core).
    fn icmp_allowed(&mut self) -> bool {
        let elapsed = self.now.wrapping_sub(self.icmp_refilled);
        let add = elapsed.saturating_mul(ICMP_PER_SEC) / TICKS_PER_SEC;
        if add > 0 {
            self.icmp_tokens = (self.icmp_tokens + add).min(ICMP_BURST);
            self.icmp_refilled = self.now;
        }
        if self.icmp_tokens == 0 {
            return false;
        }
        self.icmp_tokens -= 1;
        true
    }

    /// The egress MTU toward next hop `nh` (1500 when unknown).
    pub(super) fn mtu_toward(&self, cfg: &Snapshot, nh: u32) -> usize {
        cfg.net
            .neighbour(nh)
            .and_then(|n| cfg.net.ifaces.get(usize::from(n.iface)))
            .map_or(1500, |i| usize::from(i.mtu))
    }
}
