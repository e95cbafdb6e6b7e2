//! The SYN proxy (`-j enable`; DPVS's `ip_vs_synproxy.c` semantics) on the
//! packet path. A TCP service with it on:
//! 1. answers a client's SYN (no session) itself, in place, with a SYN-ACK
//!    whose ISN is a cookie (`syncookie.rs`) — nothing is stored, so a
//!    spoofed flood fills no table and reaches no server;
//! 2. on the client's ACK (no session) checks the cookie (a bad one gets a
//!    RST), turns the ACK, in place, into the SYN the client first sent (its
//!    ISN and the options the cookie kept) and schedules it as a new
//!    connection, whose session remembers the [`Splice`];
//! 3. parks the client's segments ([`Verdict::Park`]) until 4. the real
//!    server's SYN-ACK, which it turns, in place, into the ACK completing
//!    the server's handshake (the parked segments then go on);
//! 5. from then on moves the numbers of every segment ([`State::splice_in`],
//!    [`State::splice_out`]): the server's sequence numbers and timestamps
//!    into the director's numbering toward the client, the client's
//!    acknowledgements, SACK edges and echoed timestamps back, and window
//!    fields between the window scales the two handshakes agreed.

use super::conn::Tally;
use super::numbers::{remap, Field};
use super::pipeline::{bad_source, l4_checksum_ok, L4};
use super::xmit::fill_l4_checksum;
use super::State;
use crate::lb::family::{Family, HeaderOpts, L3};
use crate::lb::frame::Frame;
use crate::lb::session::{flag, Splice};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use crate::lb::syncookie::{Flow, Offer};
use crate::lb::tcp_state::Dir;
use crate::lb::{Verdict, TICKS_PER_SEC};
use crate::wire::tcp::{flags as tcpf, TcpOption, TcpSegment};
use crate::wire::{proto, put16, put32};

/// The window scale the director announces to a client that offered one
/// (Linux's for its default buffers); a server that chose another has its
/// windows rescaled on the way.
pub const ANNOUNCED_WSCALE: u8 = 7;

/// The window of the director's SYN-ACK (never scaled in a SYN).
const SYNACK_WINDOW: u16 = 64240;

/// What a SYN or an ACK says in its options.
#[derive(Debug, Clone, Copy, Default)]
struct Opts {
    mss: Option<u16>,
    wscale: Option<u8>,
    sack: bool,
    /// (TSval, TSecr).
    ts: Option<(u32, u32)>,
}

fn read_opts(seg: &TcpSegment<&[u8]>) -> Opts {
    let mut o = Opts::default();
    for opt in seg.options().map_while(Result::ok) {
        match opt {
            TcpOption::Mss(m) => o.mss = Some(m),
            TcpOption::WindowScale(w) => o.wscale = Some(w),
            TcpOption::SackPermitted => o.sack = true,
            TcpOption::Timestamps(v, e) => o.ts = Some((v, e)),
            TcpOption::EndOfList => break,
            _ => {}
        }
    }
    o
}

/// The options of a handshake segment, 4-byte aligned as Linux lays them
/// out; returns their length (at most 20).
fn write_opts(out: &mut [u8; 20], mss: Option<u16>, sack: bool, ts: Option<(u32, u32)>, ws: Option<u8>) -> usize {
    let mut n = 0;
    let mut put = |b: &[u8]| {
        out[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    };
    if let Some(m) = mss {
        put(&[2, 4]);
        put(&m.to_be_bytes());
    }
    match (ts, sack) {
        (Some((v, e)), sack) => {
            put(if sack { &[4, 2, 8, 10] } else { &[1, 1, 8, 10] });
            put(&v.to_be_bytes());
            put(&e.to_be_bytes());
        }
        (None, true) => put(&[1, 1, 4, 2]),
        (None, false) => {}
    }
    if let Some(w) = ws {
        put(&[1, 3, 3, w]);
    }
    n
}

/// The fields of a TCP header the director writes.
#[derive(Debug, Clone, Copy)]
struct Seg {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
}

/// A TCP header (with `opts`) at the start of `b`; the checksum is left 0.
fn write_tcp(b: &mut [u8], h: &Seg, opts: &[u8]) {
    put16(b, 0, h.sport);
    put16(b, 2, h.dport);
    put32(b, 4, h.seq);
    put32(b, 8, h.ack);
    b[12] = (((20 + opts.len()) / 4) as u8) << 4;
    b[13] = h.flags;
    put16(b, 14, h.win);
    put16(b, 16, 0);
    put16(b, 18, 0);
    b[20..20 + opts.len()].copy_from_slice(opts);
}

/// A window field scaled by `2^from` as one scaled by `2^to`.
fn rescale(w: u32, (from, to): (u8, u8)) -> u32 {
    if from == to {
        w
    } else {
        ((u64::from(w) << from) >> to).min(0xffff) as u32
    }
}

impl State {
    /// The frame from `l3` on becomes the segment `h` (with `opts`) from
    /// `src` to `dst`: a fresh IP header, both checksums; false when the
    /// frame has no room.
    fn write_segment<F: Family>(
        &mut self,
        frame: &mut Frame<'_>,
        l3: usize,
        (src, dst): (F::Addr, F::Addr),
        h: &Seg,
        opts: &[u8],
    ) -> bool {
        let tcp_len = 20 + opts.len();
        if !frame.set_len(l3 + F::HEADER_LEN + tcp_len) {
            return false;
        }
        self.ident = self.ident.wrapping_add(1);
        let b = &mut frame.data_mut()[l3..];
        F::write_header(b, src, dst, proto::TCP, tcp_len, HeaderOpts { tos: 0, ident: self.ident, dont_frag: true });
        write_tcp(&mut b[F::HEADER_LEN..], h, opts);
        fill_l4_checksum::<F>(b, F::HEADER_LEN, proto::TCP);
        true
    }

    /// The minute a cookie is made or checked in.
    fn cookie_minute(&self) -> u32 {
        self.now / (60 * TICKS_PER_SEC)
    }

    /// The director's timestamp clock (milliseconds).
    fn ts_now(&self) -> u32 {
        self.now.wrapping_mul(1000 / TICKS_PER_SEC)
    }

    /// A client's TCP segment, with no session, for the SYN-proxied service
    /// `svc`: a SYN is answered with a cookie, an ACK checked.
    pub(super) fn synproxy_new<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        l4: &L4,
        svc: u32,
    ) -> Verdict {
        if cfg.settings.verify_l4_checksum && !l4_checksum_ok::<F>(&frame.data()[l3..], ip) {
            return self.drop(DropReason::BadL4Checksum);
        }
        if let Some(d) = bad_source::<F>(cfg, ip, l4) {
            return self.drop(d);
        }
        match l4.flags & (tcpf::SYN | tcpf::ACK | tcpf::RST) {
            tcpf::SYN => self.answer_syn::<F>(cfg, frame, l3, ip),
            tcpf::ACK => self.cookie_ack::<F>(cfg, frame, l3, ip, l4, svc),
            _ => self.drop(DropReason::TcpNoSession),
        }
    }

    /// The SYN-ACK with a cookie, in place of the client's SYN.
    fn answer_syn<F: Family>(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>, l3: usize, ip: &L3<F::Addr>) -> Verdict {
        let seg = TcpSegment::new_unchecked(&frame.data()[l3 + ip.l4_off..l3 + ip.len]);
        let (sport, dport, isn, o) = (seg.src_port(), seg.dst_port(), seg.seq(), read_opts(&seg));
        let offer = Offer::rounded(o.mss.unwrap_or(536), o.wscale, o.sack, o.ts.is_some());
        let flow = Flow { src: ip.src.as_ref(), dst: ip.dst.as_ref(), sport, dport };
        let cookie = self.cookies.make(&flow, isn, self.cookie_minute(), &offer);
        let nh = match self.next_hop(cfg, F::to_ip(ip.src), false) {
            Ok(nh) => nh,
            Err(d) => return self.drop(d),
        };
        // The MSS the servers' side can take.
        let mss = cfg.min_mtu().saturating_sub(F::HEADER_LEN + 20).clamp(536, 0xffff) as u16;
        let ts = o.ts.map(|(v, _)| (self.ts_now(), v));
        let mut opts = [0u8; 20];
        let n = write_opts(&mut opts, Some(mss), offer.sack, ts, offer.wscale.map(|_| ANNOUNCED_WSCALE));
        let h = Seg {
            sport: dport,
            dport: sport,
            seq: cookie,
            ack: isn.wrapping_add(1),
            flags: tcpf::SYN | tcpf::ACK,
            win: SYNACK_WINDOW,
        };
        if !self.write_segment::<F>(frame, l3, (ip.dst, ip.src), &h, &opts[..n]) {
            return self.drop(DropReason::NoTailroom);
        }
        self.stats.synproxy_cookies += 1;
        self.l2(cfg, frame, nh)
    }

    /// The client's ACK with no session: its cookie checked, it becomes the
    /// SYN to a real server.
    fn cookie_ack<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        l4: &L4,
        svc: u32,
    ) -> Verdict {
        let t = l3 + ip.l4_off;
        let seg = TcpSegment::new_unchecked(&frame.data()[t..l3 + ip.len]);
        let (isn, ack, win, o) = (seg.seq().wrapping_sub(1), seg.ack_number(), seg.window(), read_opts(&seg));
        let cookie = ack.wrapping_sub(1);
        let flow = Flow { src: ip.src.as_ref(), dst: ip.dst.as_ref(), sport: l4.sport, dport: l4.dport };
        let Some(offer) = self.cookies.check(&flow, isn, cookie, self.cookie_minute()) else {
            return self.reset_client::<F>(cfg, frame, l3, ip, l4, ack);
        };
        let ts = o.ts.filter(|_| offer.timestamps);
        let client_ws = offer.wscale.unwrap_or(0);
        let splice = Splice {
            on: true,
            waiting: true,
            ts: ts.is_some(),
            cookie,
            // Until the splice: the director's TSval the client echoed.
            ts_delta: ts.map_or(0, |(_, e)| e),
            tsval: ts.map_or(0, |(v, _)| v),
            win,
            client_scales: offer.wscale.is_some(),
            ws_client: client_ws,
            ..Splice::default()
        };
        let mut opts = [0u8; 20];
        let n = write_opts(&mut opts, Some(offer.mss), offer.sack, ts.map(|(v, _)| (v, 0)), offer.wscale);
        let tcp_len = 20 + n;
        if !frame.set_len(t + tcp_len) {
            return self.drop(DropReason::NoTailroom);
        }
        let b = &mut frame.data_mut()[l3..];
        let h = Seg { sport: l4.sport, dport: l4.dport, seq: isn, ack: 0, flags: tcpf::SYN, win };
        write_tcp(&mut b[ip.l4_off..], &h, &opts[..n]);
        F::set_len(b, ip.l4_off + tcp_len);
        fill_l4_checksum::<F>(b, ip.l4_off, proto::TCP);
        let Ok(syn_ip) = F::parse(b) else {
            return self.drop(DropReason::L3Malformed);
        };
        self.stats.synproxy_accepted += 1;
        self.splice_next = Some(splice);
        let syn = L4 { flags: tcpf::SYN, ..*l4 };
        let v = self.inbound::<F>(cfg, frame, l3, &syn_ip, &syn, Err(svc));
        self.splice_next = None;
        v
    }

    /// A RST for an ACK whose cookie did not check, in its place (counted as
    /// dropped under `synproxy_bad_cookie`).
    fn reset_client<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        l4: &L4,
        ack: u32,
    ) -> Verdict {
        self.stats.drop(DropReason::SynproxyBadCookie);
        let nh = match self.next_hop(cfg, F::to_ip(ip.src), false) {
            Ok(nh) => nh,
            Err(_) => return Verdict::Drop(DropReason::SynproxyBadCookie),
        };
        let h = Seg { sport: l4.dport, dport: l4.sport, seq: ack, ack: 0, flags: tcpf::RST, win: 0 };
        if !self.write_segment::<F>(frame, l3, (ip.dst, ip.src), &h, &[]) {
            return Verdict::Drop(DropReason::SynproxyBadCookie);
        }
        self.l2(cfg, frame, nh)
    }

    /// Whether a client segment of session `i` must wait for the server's
    /// SYN-ACK (the session is a SYN-proxied one not spliced yet). The SYN
    /// the director made goes on (it is the one waited on).
    #[inline]
    pub(super) fn splice_waits<F: Family>(&mut self, i: u32, tcp_flags: u8) -> bool {
        let t = F::table(&mut self.tables);
        t.get(i).has(flag::REVEAL) && tcp_flags & tcpf::SYN == 0 && {
            let sp = t.reveal(i).splice;
            sp.on && sp.waiting
        }
    }

    /// A segment from the real server of a SYN-proxied session not spliced
    /// yet. Its SYN-ACK becomes, in place, the ACK completing the server's
    /// handshake (`Some`: the verdict); its RST goes on to the client in the
    /// director's numbering (`None`: forward it as usual).
    pub(super) fn splice_synack<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        l4: &L4,
        i: u32,
    ) -> Option<Verdict> {
        let mut r = F::table(&mut self.tables).reveal(i);
        let t = l3 + ip.l4_off;
        let seg = TcpSegment::new_unchecked(&frame.data()[t..l3 + ip.len]);
        let (server_isn, ack, o) = (seg.seq(), seg.ack_number(), read_opts(&seg));
        let sp = &mut r.splice;
        if l4.flags & tcpf::RST != 0 {
            // Into the client's window: the director's next sequence number.
            sp.delta = sp.cookie.wrapping_add(1).wrapping_sub(server_isn);
            sp.waiting = false;
            F::table(&mut self.tables).set_reveal(i, r);
            return None;
        }
        if l4.flags & (tcpf::SYN | tcpf::ACK) != tcpf::SYN | tcpf::ACK {
            return Some(self.drop(DropReason::SynproxyUnexpected));
        }
        sp.delta = sp.cookie.wrapping_sub(server_isn);
        let server_ts = o.ts.filter(|_| sp.ts);
        sp.ts = server_ts.is_some();
        sp.ts_delta = server_ts.map_or(0, |(v, _)| sp.ts_delta.wrapping_sub(v));
        let server_scales = sp.client_scales && o.wscale.is_some();
        let ws_server = if server_scales { o.wscale.unwrap_or(0).min(14) } else { 0 };
        let announced = if sp.client_scales { ANNOUNCED_WSCALE } else { 0 };
        let client_ws = if sp.client_scales { sp.ws_client } else { 0 };
        sp.win_in = (client_ws, if server_scales { client_ws } else { 0 });
        sp.win_out = (ws_server, announced);
        sp.waiting = false;
        let sp = *sp;
        let nh = match self.session_hop::<F>(cfg, i, true) {
            Ok(nh) => nh,
            Err(d) => return Some(self.drop(d)),
        };
        let old = self.step::<F>(cfg, i, Dir::Output, l4.flags);
        self.step::<F>(cfg, i, Dir::Input, tcpf::ACK);
        F::table(&mut self.tables).set_reveal(i, r);
        self.sync_note::<F>(cfg, i, old, false);
        let s = *F::table(&mut self.tables).get(i);
        self.count(cfg, Tally::of(&s), ip.len, false);
        // The ACK: from what the server sent to (the client, or FULLNAT's
        // local address), back to the server.
        let mut opts = [0u8; 20];
        let n = write_opts(&mut opts, None, false, server_ts.map(|(v, _)| (sp.tsval, v)), None);
        let win = rescale(u32::from(sp.win), sp.win_in) as u16;
        let h =
            Seg { sport: l4.dport, dport: l4.sport, seq: ack, ack: server_isn.wrapping_add(1), flags: tcpf::ACK, win };
        if !self.write_segment::<F>(frame, l3, (ip.dst, ip.src), &h, &opts[..n]) {
            return Some(self.drop(DropReason::NoTailroom));
        }
        self.stats.synproxy_spliced += 1;
        self.reoffer = true;
        Some(self.l2(cfg, frame, nh))
    }

    /// Client → server, after the mode's rewrite: acknowledgements, SACK
    /// edges and echoed timestamps back into the server's numbering, the
    /// window into the scale the server reads.
    #[inline]
    pub(super) fn splice_in<F: Family>(frame: &mut Frame<'_>, l3: usize, ip: &L3<F::Addr>, sp: &Splice) {
        let b = &mut frame.data_mut()[l3..];
        let aligned = remap(&mut b[ip.l4_off..], |f, v| match f {
            Field::Ack | Field::SackEdge => v.wrapping_sub(sp.delta),
            Field::TsEcr if sp.ts => v.wrapping_sub(sp.ts_delta),
            Field::Window => rescale(v, sp.win_in),
            _ => v,
        });
        if !aligned {
            fill_l4_checksum::<F>(b, ip.l4_off, proto::TCP);
        }
    }

    /// Server → client, after the mode's rewrite: sequence numbers and
    /// timestamps into the director's numbering, the window into the scale
    /// the director announced.
    #[inline]
    pub(super) fn splice_out<F: Family>(frame: &mut Frame<'_>, l3: usize, ip: &L3<F::Addr>, sp: &Splice) {
        let b = &mut frame.data_mut()[l3..];
        let aligned = remap(&mut b[ip.l4_off..], |f, v| match f {
            Field::Seq => v.wrapping_add(sp.delta),
            Field::TsVal if sp.ts => v.wrapping_add(sp.ts_delta),
            Field::Window => rescale(v, sp.win_out),
            _ => v,
        });
        if !aligned {
            fill_l4_checksum::<F>(b, ip.l4_off, proto::TCP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{be16, be32};

    #[test]
    fn handshake_options_are_laid_out_as_linux_does() {
        let mut o = [0u8; 20];
        let n = write_opts(&mut o, Some(1460), true, Some((5, 6)), Some(7));
        assert_eq!(&o[..n], &[2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 3, 3, 7]);
        let n = write_opts(&mut o, Some(536), true, None, None);
        assert_eq!(&o[..n], &[2, 4, 2, 24, 1, 1, 4, 2]);
        let n = write_opts(&mut o, None, false, Some((1, 2)), None);
        assert_eq!(&o[..n], &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        let mut seg = [0u8; 40];
        let n = write_opts(&mut o, Some(1400), false, None, Some(3));
        write_tcp(&mut seg, &Seg { sport: 1, dport: 2, seq: 3, ack: 4, flags: tcpf::SYN, win: 5 }, &o[..n]);
        let o = read_opts(&TcpSegment::new_unchecked(&seg[..20 + n]));
        assert_eq!((o.mss, o.wscale, o.sack, o.ts), (Some(1400), Some(3), false, None));
        assert_eq!(be32(&seg, 4), 3);
        assert_eq!(be16(&seg, 14), 5);
    }

    #[test]
    fn windows_rescale_and_saturate() {
        assert_eq!(rescale(1000, (7, 7)), 1000);
        assert_eq!(rescale(1000, (9, 7)), 4000);
        assert_eq!(rescale(1000, (0, 7)), 7);
        assert_eq!(rescale(60000, (7, 0)), 0xffff);
    }
}
