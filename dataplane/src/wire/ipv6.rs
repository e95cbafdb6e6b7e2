//! IPv6 header (RFC 8200) and the extension-header walk.

use super::{be16, checksum, proto, put16, Error};
use std::net::Ipv6Addr;

pub const HEADER_LEN: usize = 40;
/// Extension headers the walker follows before giving up.
pub const MAX_EXT_HEADERS: usize = 8;

mod field {
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// Where the upper-layer header starts, as found by [`Ipv6Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol (next header of the last extension header).
    pub proto: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// A fragment header was present.
    pub fragment: bool,
    /// A fragment header was present and this is not the first fragment, or
    /// more fragments follow.
    pub fragmented: bool,
}

/// A view of an IPv6 packet.
#[derive(Debug)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks version and that the payload length fits in the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_checked_quoted(buffer)?;
        if HEADER_LEN + usize::from(p.payload_len()) > p.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// For a header quoted in an ICMPv6 error: the fixed header must fit, the
    /// payload may be cut short.
    pub fn new_checked_quoted(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.version() != 6 {
            return Err(Error::BadVersion);
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        (self.b()[0] << 4) | (self.b()[1] >> 4)
    }

    pub fn flow_label(&self) -> u32 {
        let b = self.b();
        (u32::from(b[1] & 0x0f) << 16) | (u32::from(b[2]) << 8) | u32::from(b[3])
    }

    pub fn payload_len(&self) -> u16 {
        be16(self.b(), field::PAYLOAD_LEN)
    }

    /// Total packet length (header + payload).
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    pub fn next_header(&self) -> u8 {
        self.b()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }

    pub fn src_bytes(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.b()[field::SRC..field::SRC + 16]);
        a
    }

    pub fn dst_bytes(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.b()[field::DST..field::DST + 16]);
        a
    }

    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src_bytes())
    }

    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst_bytes())
    }

    /// Walks hop-by-hop, routing, destination-options, fragment and AH
    /// headers to the upper layer. Bounded by the buffer (a quoted packet may
    /// be cut short: the walk stops with `Truncated`) and by
    /// [`MAX_EXT_HEADERS`].
    pub fn upper_layer(&self) -> Result<UpperLayer, Error> {
        let b = self.b();
        let end = self.total_len().min(b.len());
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = false;
        let mut fragmented = false;
        for _ in 0..MAX_EXT_HEADERS {
            let len = match nh {
                proto::HOPOPTS | proto::ROUTING | proto::DSTOPTS => {
                    if off + 2 > end {
                        return Err(Error::Truncated);
                    }
                    (usize::from(b[off + 1]) + 1) * 8
                }
                proto::FRAGMENT => {
                    if off + 8 > end {
                        return Err(Error::Truncated);
                    }
                    fragment = true;
                    let off_m = be16(b, off + 2);
                    fragmented = off_m & 0xfff9 != 0;
                    8
                }
                proto::AH => {
                    if off + 2 > end {
                        return Err(Error::Truncated);
                    }
                    (usize::from(b[off + 1]) + 2) * 4
                }
                _ => {
                    return Ok(UpperLayer { proto: nh, offset: off, fragment, fragmented });
                }
            };
            if off + len > end {
                return Err(Error::Truncated);
            }
            nh = b[off];
            off += len;
        }
        Err(Error::TooManyExtHeaders)
    }

    /// Partial sum of the pseudo-header for an upper layer of `len` bytes.
    pub fn pseudo_sum(&self, next_header: u8, len: u32) -> u64 {
        checksum::pseudo_v6(self.src_bytes(), self.dst_bytes(), next_header, len)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Writes a fresh fixed header.
    pub fn init(&mut self, traffic_class: u8, flow_label: u32, payload_len: u16, next_header: u8, hop_limit: u8) {
        let b = self.bm();
        b[0] = 0x60 | (traffic_class >> 4);
        b[1] = (traffic_class << 4) | ((flow_label >> 16) as u8 & 0x0f);
        b[2] = (flow_label >> 8) as u8;
        b[3] = flow_label as u8;
        put16(b, field::PAYLOAD_LEN, payload_len);
        b[field::NEXT_HEADER] = next_header;
        b[field::HOP_LIMIT] = hop_limit;
    }

    pub fn set_src_bytes(&mut self, a: [u8; 16]) {
        self.bm()[field::SRC..field::SRC + 16].copy_from_slice(&a);
    }

    pub fn set_dst_bytes(&mut self, a: [u8; 16]) {
        self.bm()[field::DST..field::DST + 16].copy_from_slice(&a);
    }

    pub fn set_payload_len(&mut self, len: u16) {
        put16(self.bm(), field::PAYLOAD_LEN, len);
    }

    pub fn set_hop_limit(&mut self, h: u8) {
        self.bm()[field::HOP_LIMIT] = h;
    }

    /// Decrements the hop limit; false (unchanged) at 0 or 1.
    pub fn decrement_hop_limit(&mut self) -> bool {
        let h = self.hop_limit();
        if h <= 1 {
            return false;
        }
        self.set_hop_limit(h - 1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(next: u8, ext: &[u8], payload_len: u16) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN];
        Ipv6Packet::new_unchecked(&mut v[..]).init(0xb8, 0x12345, payload_len, next, 64);
        v.extend_from_slice(ext);
        v.resize(HEADER_LEN + usize::from(payload_len), 0);
        v
    }

    #[test]
    fn fields_round_trip() {
        let v = packet(proto::TCP, &[], 20);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(
            p.upper_layer().unwrap(),
            UpperLayer { proto: proto::TCP, offset: 40, fragment: false, fragmented: false }
        );
    }

    #[test]
    fn walks_hop_by_hop_dstopts_and_fragment() {
        // HBH (8 bytes, next = DSTOPTS), DSTOPTS (16 bytes, next = FRAG),
        // FRAG (offset 0, M=0: an atomic fragment, next = UDP).
        let mut ext = vec![proto::DSTOPTS, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[proto::FRAGMENT, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[proto::UDP, 0, 0, 0, 0, 0, 0, 1]);
        let v = packet(proto::HOPOPTS, &ext, 40);
        let ul = Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer().unwrap();
        assert_eq!(ul, UpperLayer { proto: proto::UDP, offset: 72, fragment: true, fragmented: false });
    }

    #[test]
    fn later_fragment_is_flagged() {
        let ext = [proto::UDP, 0, 0x05, 0x00, 0, 0, 0, 1];
        let v = packet(proto::FRAGMENT, &ext, 16);
        let ul = Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer().unwrap();
        assert!(ul.fragmented);
    }

    #[test]
    fn ext_header_past_end_is_truncated() {
        let ext = [proto::UDP, 5, 0, 0, 0, 0, 0, 0];
        let v = packet(proto::ROUTING, &ext, 8);
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(), Err(Error::Truncated));
    }

    #[test]
    fn ext_header_loop_is_bounded() {
        let mut ext = Vec::new();
        for _ in 0..10 {
            ext.extend_from_slice(&[proto::DSTOPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let v = packet(proto::DSTOPTS, &ext, 80);
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap().upper_layer(), Err(Error::TooManyExtHeaders));
    }
}
