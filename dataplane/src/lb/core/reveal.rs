//! The client's address for a FULLNAT real server (`--proxy-protocol`,
//! `--toa`), on the packet path, after the FULLNAT rewrite (addresses and
//! ports final) and before L2:
//! - client → server, TCP: the SYN arms the connection (where its data
//!   starts, the header's length); the first ACK gets the TOA option; the
//!   segment starting at the first data byte gets the PROXY header in front
//!   of its data — shortened when header and data would pass the MTU toward
//!   the server (the client sends the cut-off tail again) — and every later
//!   segment's sequence number moves up by the header's length;
//! - server → client, TCP: acknowledgements and SACK edges move back;
//! - UDP: the flow's first datagram carries a v2 header (as DPVS).
//!
//! A segment that changes length gets its L4 checksum recomputed (once per
//! connection); a moved number updates it incrementally (RFC 1624).

use super::numbers::{remap, Field};
use super::xmit::fill_l4_checksum;
use super::State;
use crate::lb::client_addr::{toa_option, with_toa, Inbound, Shift, MAX_OPTIONS};
use crate::lb::family::{Family, L3};
use crate::lb::frame::Frame;
use crate::lb::session::{Reveal, Session};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use crate::wire::proxy::{Endpoints, Header};
use crate::wire::tcp::flags as tcpf;
use crate::wire::{be16, be32, checksum, proto, put16, put32};
use xdpvs_api::config::ProxyProtocol;

impl State {
    /// What a `REVEAL` session adds to a client's packet after the mode's
    /// rewrite: the SYN proxy's renumbering, then the client's address
    /// (kept out of line: most sessions reveal nothing).
    #[inline(never)]
    pub(super) fn revealed_in<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        i: u32,
    ) -> Result<(), DropReason> {
        let r = F::table(&mut self.tables).reveal(i);
        if r.splice.on {
            Self::splice_in::<F>(frame, l3, ip, &r.splice);
        }
        if r.pp.is_some() || r.toa {
            self.reveal_in::<F>(cfg, frame, l3, ip, i)?;
        }
        Ok(())
    }

    /// [`Self::revealed_in`] for a server's reply.
    #[inline(never)]
    pub(super) fn revealed_out<F: Family>(&mut self, frame: &mut Frame<'_>, l3: usize, ip: &L3<F::Addr>, i: u32) {
        let sp = F::table(&mut self.tables).reveal(i).splice;
        if sp.on {
            Self::splice_out::<F>(frame, l3, ip, &sp);
        }
        self.reveal_out::<F>(frame, l3, ip, i);
    }

    /// Client → server: what the connection (or datagram flow) of session
    /// `i` still owes its server; an error is a drop. What every packet of
    /// an established connection pays — one shifted sequence number — is
    /// here; the rest, once per connection, is out of line.
    #[inline]
    pub(super) fn reveal_in<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        i: u32,
    ) -> Result<(), DropReason> {
        let r = F::table(&mut self.tables).reveal(i);
        if ip.proto == proto::TCP && r.armed && !r.toa {
            if r.pp_len == 0 {
                return Ok(());
            }
            let t = l3 + ip.l4_off;
            let b = &mut frame.data_mut()[t..];
            let seq = be32(b, 4);
            if b[13] & tcpf::SYN == 0 && (seq.wrapping_sub(r.at) as i32) > 0 {
                set_seq(b, seq.wrapping_add(u32::from(r.pp_len)), true);
                return Ok(());
            }
        }
        self.reveal_once::<F>(cfg, frame, l3, ip, i, r)
    }

    /// [`Self::reveal_in`] for what a connection does once: arm at the SYN,
    /// TOA, the header; and for UDP.
    #[inline(never)]
    fn reveal_once<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        i: u32,
        was: Reveal,
    ) -> Result<(), DropReason> {
        let s = *F::table(&mut self.tables).get(i);
        let mut r = was;
        let done = if ip.proto == proto::UDP {
            self.reveal_datagram::<F>(cfg, frame, l3, ip.l4_off, &s, &mut r)
        } else {
            self.reveal_segment::<F>(cfg, frame, l3, ip.l4_off, &s, &mut r)
        };
        if r != was {
            F::table(&mut self.tables).set_reveal(i, r);
        }
        done
    }

    fn reveal_segment<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        l4_off: usize,
        s: &Session<F::Addr>,
        r: &mut Reveal,
    ) -> Result<(), DropReason> {
        let t = l3 + l4_off;
        let (seq, fl) = (be32(frame.data(), t + 4), frame.data()[t + 13]);
        if fl & tcpf::SYN != 0 {
            if fl & tcpf::ACK == 0 {
                r.at = seq.wrapping_add(1);
                r.pp_len = r.pp.map_or(0, |v| header::<F>(v, s, false).len() as u8);
                r.armed = true;
            }
            return Ok(());
        }
        if !r.armed {
            // A connection that began before this session (no SYN seen): it
            // has no header to carry.
            return Ok(());
        }
        let mut resized = false;
        if r.toa && fl & tcpf::ACK != 0 && fl & tcpf::RST == 0 {
            r.toa = false;
            if add_toa::<F>(frame, l3, l4_off, s, self.mtu_toward(cfg, s.nh_rs)) {
                self.stats.toa_added += 1;
                resized = true;
            } else {
                self.stats.toa_no_room += 1;
            }
        }
        if let (Some(v), 1..) = (r.pp, r.pp_len) {
            let payload = frame.len() - t - tcp_header_len(frame.data(), t);
            match (Shift { at: r.at, len: u32::from(r.pp_len) }).inbound(seq, payload > 0 || fl & tcpf::FIN != 0) {
                Inbound::Insert => {
                    let mtu = self.mtu_toward(cfg, s.nh_rs);
                    self.insert_header(frame, (l3, t), &header::<F>(v, s, false), mtu)?;
                    let len = frame.len() - l3;
                    F::set_len(&mut frame.data_mut()[l3..], len);
                    resized = true;
                }
                Inbound::Seq(n) => set_seq(&mut frame.data_mut()[t..], n, !resized),
                Inbound::Keep => {}
            }
        }
        if resized {
            fill_l4_checksum::<F>(&mut frame.data_mut()[l3..], l4_off, proto::TCP);
        }
        Ok(())
    }

    /// The PROXY header in front of the data of the segment (IP header at
    /// `l3`, TCP header at `t`), the data shortened when both would not fit
    /// the MTU.
    fn insert_header(
        &mut self,
        frame: &mut Frame<'_>,
        (l3, t): (usize, usize),
        h: &Header,
        mtu: usize,
    ) -> Result<(), DropReason> {
        let data = t + tcp_header_len(frame.data(), t);
        let ip_len = frame.len() - l3;
        let room = mtu.saturating_sub(ip_len).min(frame.tailroom());
        if h.len() > room {
            let cut = h.len() - room;
            if cut >= frame.len() - data {
                return Err(DropReason::ProxyNoRoom);
            }
            // The FIN follows the last byte, which no longer goes.
            frame.set_len(frame.len() - cut);
            frame.data_mut()[t + 13] &= !tcpf::FIN;
            self.stats.proxy_shortened += 1;
        }
        if !frame.open(data, h.len()) {
            return Err(DropReason::NoTailroom);
        }
        frame.data_mut()[data..data + h.len()].copy_from_slice(h.bytes());
        self.stats.proxy_inserted += 1;
        Ok(())
    }

    fn reveal_datagram<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        l4_off: usize,
        s: &Session<F::Addr>,
        r: &mut Reveal,
    ) -> Result<(), DropReason> {
        let Some(v) = r.pp.filter(|_| r.udp_pending) else { return Ok(()) };
        let mtu = self.mtu_toward(cfg, s.nh_rs);
        let h = header::<F>(v, s, true);
        let u = l3 + l4_off;
        if frame.len() - l3 + h.len() > mtu || !frame.open(u + 8, h.len()) {
            return Err(DropReason::ProxyNoRoom);
        }
        let len = frame.len();
        let d = frame.data_mut();
        d[u + 8..u + 8 + h.len()].copy_from_slice(h.bytes());
        put16(d, u + 4, (len - u) as u16);
        F::set_len(&mut d[l3..], len - l3);
        fill_l4_checksum::<F>(&mut d[l3..], l4_off, proto::UDP);
        r.udp_pending = false;
        self.stats.proxy_inserted += 1;
        Ok(())
    }

    /// Server → client, TCP: the acknowledgement and SACK edges back into
    /// the client's numbering.
    pub(super) fn reveal_out<F: Family>(&mut self, frame: &mut Frame<'_>, l3: usize, ip: &L3<F::Addr>, i: u32) {
        let r = F::table(&mut self.tables).reveal(i);
        if ip.proto != proto::TCP || !r.armed || r.pp_len == 0 {
            return;
        }
        let shift = Shift { at: r.at, len: u32::from(r.pp_len) };
        let b = &mut frame.data_mut()[l3..];
        if !unshift_acks(&mut b[ip.l4_off..], &shift) {
            fill_l4_checksum::<F>(b, ip.l4_off, proto::TCP);
        }
    }
}

/// Moves the acknowledgement and every SACK edge of the TCP segment `b`
/// back by the shift (see [`remap`]).
fn unshift_acks(b: &mut [u8], shift: &Shift) -> bool {
    remap(b, |f, v| match f {
        Field::Ack | Field::SackEdge => shift.outbound(v),
        _ => v,
    })
}

/// The TOA option among the options of the TCP header at `l3 + l4_off`,
/// the header grown (or, when NOPs and timestamps made room, shrunk) to
/// hold it; false, unchanged, when it cannot fit.
fn add_toa<F: Family>(frame: &mut Frame<'_>, l3: usize, l4_off: usize, s: &Session<F::Addr>, mtu: usize) -> bool {
    let t = l3 + l4_off;
    let hl = tcp_header_len(frame.data(), t);
    let mut toa = [0u8; 20];
    let tl = toa_option(F::to_ip(s.cip), s.cport, &mut toa);
    let mut opts = [0u8; MAX_OPTIONS];
    let Some(n) = with_toa(&frame.data()[t + 20..t + hl], &toa[..tl], &mut opts) else { return false };
    let old = hl - 20;
    if n > old {
        let grow = n - old;
        if frame.len() - l3 + grow > mtu || !frame.open(t + hl, grow) {
            return false;
        }
    } else {
        frame.close(t + 20 + n, old - n);
    }
    let len = frame.len();
    let d = frame.data_mut();
    d[t + 20..t + 20 + n].copy_from_slice(&opts[..n]);
    d[t + 12] = (((20 + n) / 4) as u8) << 4 | (d[t + 12] & 0x0f);
    F::set_len(&mut d[l3..], len - l3);
    true
}

/// The PROXY header of a session: its client and the VIP it asked for.
fn header<F: Family>(v: ProxyProtocol, s: &Session<F::Addr>, udp: bool) -> Header {
    let e = Endpoints { src: F::to_ip(s.cip), dst: F::to_ip(s.vip), sport: s.cport, dport: s.vport };
    match v {
        ProxyProtocol::V1 => Header::v1(&e),
        ProxyProtocol::V2 => Header::v2(&e, udp),
    }
}

fn tcp_header_len(d: &[u8], t: usize) -> usize {
    usize::from(d[t + 12] >> 4) * 4
}

/// Sets the TCP segment `b`'s sequence number; `incremental`: updating its
/// checksum (otherwise the caller recomputes it).
fn set_seq(b: &mut [u8], seq: u32, incremental: bool) {
    let old = be32(b, 4);
    if incremental {
        put16(b, 16, checksum::update32(be16(b, 16), old, seq));
    }
    put32(b, 4, seq);
}
