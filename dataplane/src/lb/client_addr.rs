//! The arithmetic of handing a FULLNAT real server the client's address,
//! apart from packets: where a connection's PROXY header goes and how it
//! shifts the byte stream, and how a TOA option finds room among a
//! segment's options. The packet side is `core::reveal`.
//!
//! Sequence numbers are compared modulo 2³² (RFC 9293 §3.4): `a` is after
//! `b` when `a - b`, as a signed 32-bit number, is positive.

use std::net::IpAddr;

/// TCP option kind of TOA (DPVS's `kmod/toa`).
pub const TOA_KIND: u8 = 254;
/// The most option bytes a TCP header holds.
pub const MAX_OPTIONS: usize = 40;

/// A connection's client → server stream with `len` header bytes inserted
/// in front of the client's byte `at` (its first data byte, ISN + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub at: u32,
    pub len: u32,
}

/// What a client segment needs on its way to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// It starts at `at` and carries data or FIN: the header goes in front
    /// of its data (a retransmission gets the same header again).
    Insert,
    /// It starts after `at`: its sequence number becomes this.
    Seq(u32),
    /// It starts before `at` (the handshake's ACK, an old duplicate): as is.
    Keep,
}

impl Shift {
    /// The client segment starting at `seq`; `carries`: it has data or FIN.
    pub fn inbound(&self, seq: u32, carries: bool) -> Inbound {
        match seq.wrapping_sub(self.at) as i32 {
            0 if carries => Inbound::Insert,
            d if d > 0 => Inbound::Seq(seq.wrapping_add(self.len)),
            _ => Inbound::Keep,
        }
    }

    /// An acknowledgement number (or SACK edge) of the server, in the
    /// client's numbering: past the header it moves back by its length; an
    /// acknowledgement of part of the header is of nothing the client sent.
    pub fn outbound(&self, ack: u32) -> u32 {
        match ack.wrapping_sub(self.at) as i32 {
            d if d > 0 => self.at.wrapping_add((d as u32).saturating_sub(self.len)),
            _ => ack,
        }
    }
}

/// The TOA option for a client: kind, length, the port, the address (8
/// bytes for IPv4, 20 for IPv6), in `out`; returns its length.
pub fn toa_option(addr: IpAddr, port: u16, out: &mut [u8; 20]) -> usize {
    out[2..4].copy_from_slice(&port.to_be_bytes());
    let len = match addr {
        IpAddr::V4(a) => {
            out[4..8].copy_from_slice(&a.octets());
            8
        }
        IpAddr::V6(a) => {
            out[4..20].copy_from_slice(&a.octets());
            20
        }
    };
    out[0] = TOA_KIND;
    out[1] = len as u8;
    len
}

/// A segment's options with `toa` added, padded with NOPs to a multiple of
/// four, into `out`; returns their length. When they would pass 40 bytes,
/// room is made as DPVS makes it: NOPs go first, then the timestamps.
/// `None`: no room even then. `opts` must be well formed (every option's
/// length inside it, as the parser checks).
pub fn with_toa(opts: &[u8], toa: &[u8], out: &mut [u8; MAX_OPTIONS]) -> Option<usize> {
    for drop in [Drop::Nothing, Drop::Nops, Drop::NopsAndTimestamps] {
        if let Some(n) = compose(opts, toa, drop, out) {
            return Some(n);
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Drop {
    Nothing,
    Nops,
    NopsAndTimestamps,
}

/// The options kept under `drop`, then `toa`, then NOP padding.
fn compose(opts: &[u8], toa: &[u8], drop: Drop, out: &mut [u8; MAX_OPTIONS]) -> Option<usize> {
    let mut n = 0;
    let mut i = 0;
    while i < opts.len() {
        let (kind, len) = match opts[i] {
            0 => break,
            1 => (1, 1),
            k => (k, usize::from(*opts.get(i + 1)?)),
        };
        if len == 0 || i + len > opts.len() {
            return None;
        }
        let dropped = (kind == 1 && drop != Drop::Nothing) || (kind == 8 && drop == Drop::NopsAndTimestamps);
        if !dropped {
            out.get_mut(n..n + len)?.copy_from_slice(&opts[i..i + len]);
            n += len;
        }
        i += len;
    }
    out.get_mut(n..n + toa.len())?.copy_from_slice(toa);
    n += toa.len();
    while n % 4 != 0 {
        *out.get_mut(n)? = 1;
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_header_goes_in_front_of_the_first_data_only() {
        let s = Shift { at: 1001, len: 28 };
        assert_eq!(s.inbound(1001, true), Inbound::Insert);
        assert_eq!(s.inbound(1001, false), Inbound::Keep, "the handshake's ACK");
        assert_eq!(s.inbound(1000, true), Inbound::Keep);
        assert_eq!(s.inbound(2449, true), Inbound::Seq(2477));
        assert_eq!(s.outbound(1001), 1001, "the SYN-ACK acknowledges the SYN");
        assert_eq!(s.outbound(1015), 1001, "part of the header acknowledged: nothing of the client's");
        assert_eq!(s.outbound(1029), 1001);
        assert_eq!(s.outbound(2477), 2449);
        assert_eq!(s.outbound(900), 900);
    }

    /// A whole connection's numbers across the wrap at 2³²: every client
    /// byte keeps its place, shifted by the header, and every server
    /// acknowledgement maps back to the client byte it names.
    #[test]
    fn a_connection_across_the_wrap() {
        let at = u32::MAX - 3000;
        let s = Shift { at, len: 52 };
        let mut seq = at;
        let mut first = true;
        for seg in 0..10u32 {
            let len = 1000 + seg;
            match s.inbound(seq, true) {
                Inbound::Insert => assert!(first),
                Inbound::Seq(x) => assert_eq!(x, seq.wrapping_add(52)),
                Inbound::Keep => panic!("segment {seg} kept"),
            }
            first = false;
            let end = seq.wrapping_add(len);
            // The server acknowledges the segment's end in its numbering.
            assert_eq!(s.outbound(end.wrapping_add(52)), end);
            seq = end;
        }
        assert!(seq < at, "the stream wrapped");
    }

    #[test]
    fn toa_fits_beside_timestamps() {
        // NOP NOP TS: the handshake's ACK of a Linux client.
        let opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        let mut toa = [0u8; 20];
        let t = toa_option("198.18.0.100".parse().unwrap(), 40000, &mut toa);
        assert_eq!(&toa[..t], &[254, 8, 0x9c, 0x40, 198, 18, 0, 100]);
        let mut out = [0u8; MAX_OPTIONS];
        let n = with_toa(&opts, &toa[..t], &mut out).unwrap();
        assert_eq!(&out[..n], &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 254, 8, 0x9c, 0x40, 198, 18, 0, 100]);
    }

    #[test]
    fn room_is_made_from_nops_then_timestamps() {
        let mut toa = [0u8; 20];
        let t = toa_option("2001:db8::100".parse().unwrap(), 1, &mut toa);
        assert_eq!(t, 20);
        let mut out = [0u8; MAX_OPTIONS];
        // 12 (NOP NOP TS) + 20 = 32: fits as is.
        let opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(with_toa(&opts, &toa[..t], &mut out), Some(32));
        // 12 + SACK of 2 blocks (NOP NOP 5 18 ...) = 32 + 20: NOPs go (48),
        // then the timestamps (38, padded to 40).
        let mut opts = vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 18];
        opts.extend([0u8; 16]);
        let n = with_toa(&opts, &toa[..t], &mut out).unwrap();
        assert_eq!(n, 40);
        assert_eq!(&out[..2], &[5, 18], "the SACK blocks stay");
        assert_eq!(&out[18..38], &toa[..20]);
        assert_eq!(&out[38..], &[1, 1]);
        // 40 bytes of SACK blocks leave no room at all.
        let mut opts = vec![5, 34];
        opts.extend([0u8; 32]);
        opts.extend([1, 1, 1, 1, 1, 1]);
        assert_eq!(with_toa(&opts, &toa[..t], &mut out), None);
    }

    proptest! {
        #[test]
        fn shifting_is_undone_by_the_acknowledgement(at: u32, off in 1u32..0x7fff_0000, len in 1u32..108) {
            let s = Shift { at, len };
            let seq = at.wrapping_add(off);
            let Inbound::Seq(x) = s.inbound(seq, true) else { panic!("not shifted") };
            prop_assert_eq!(s.outbound(x), seq);
        }

        #[test]
        fn composed_options_are_well_formed(opts in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut toa = [0u8; 20];
            let t = toa_option("198.18.0.1".parse().unwrap(), 9, &mut toa);
            let mut out = [0u8; MAX_OPTIONS];
            if let Some(n) = with_toa(&opts, &toa[..t], &mut out) {
                prop_assert!(n <= MAX_OPTIONS && n % 4 == 0);
                prop_assert!(out[..n].windows(t).any(|w| w == &toa[..t]));
            }
        }
    }
}
