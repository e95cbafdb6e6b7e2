//! IPv4 header (RFC 791).
//!
//! Options policy: the IHL is honoured, options are carried through every
//! rewrite untouched and never interpreted (LVS does the same). A rewrite only
//! touches fixed fields and updates the header checksum incrementally.

use super::{be16, checksum, put16, Error};
use std::net::Ipv4Addr;

pub const MIN_HEADER_LEN: usize = 20;

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;

/// A view of an IPv4 packet.
#[derive(Debug)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks version, IHL and that `total_len` fits in the buffer (trailing
    /// link-layer padding beyond `total_len` is allowed).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_checked_quoted(buffer)?;
        let tl = usize::from(p.total_len());
        if tl < p.header_len() {
            return Err(Error::BadLength);
        }
        if tl > p.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// Like [`Self::new_checked`] but for a header quoted inside an ICMP error:
    /// the quoted packet is usually cut short, so only the header itself must
    /// fit.
    pub fn new_checked_quoted(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hl = p.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if hl > len {
            return Err(Error::Truncated);
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
        self.b()[field::VER_IHL] >> 4
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn tos(&self) -> u8 {
        self.b()[field::TOS]
    }

    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    pub fn total_len(&self) -> u16 {
        be16(self.b(), field::TOTAL_LEN)
    }

    pub fn ident(&self) -> u16 {
        be16(self.b(), field::IDENT)
    }

    pub fn flags_frag(&self) -> u16 {
        be16(self.b(), field::FLAGS_FRAG)
    }

    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// True for any fragment (first or later).
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | 0x1fff) != 0
    }

    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM)
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src_bytes())
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst_bytes())
    }

    pub fn src_bytes(&self) -> [u8; 4] {
        let b = self.b();
        [b[12], b[13], b[14], b[15]]
    }

    pub fn dst_bytes(&self) -> [u8; 4] {
        let b = self.b();
        [b[16], b[17], b[18], b[19]]
    }

    /// True when the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let b = self.b();
        let sum = match b.first_chunk::<20>() {
            // The header of nearly every packet: no options, five words.
            Some(h) if self.header_len() == MIN_HEADER_LEN => {
                let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
                w(0) + w(4) + w(8) + w(12) + w(16)
            }
            _ => checksum::sum(&b[..self.header_len()], 0),
        };
        checksum::fold(sum) == 0xffff
    }

    /// The bytes after the header up to `total_len`.
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        let end = usize::from(self.total_len()).clamp(hl, self.b().len());
        &self.b()[hl..end]
    }

    /// Partial sum of this packet's pseudo-header for an upper layer of `len`.
    pub fn pseudo_sum(&self, len: u16) -> u64 {
        checksum::pseudo_v4(self.src_bytes(), self.dst_bytes(), self.protocol(), len)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Writes a fresh 20-byte header without options (checksum left zero).
    pub fn init(&mut self, tos: u8, total_len: u16, ident: u16, flags: u16, ttl: u8, proto: u8) {
        let b = self.bm();
        b[field::VER_IHL] = 0x45;
        b[field::TOS] = tos;
        put16(b, field::TOTAL_LEN, total_len);
        put16(b, field::IDENT, ident);
        put16(b, field::FLAGS_FRAG, flags);
        b[field::TTL] = ttl;
        b[field::PROTOCOL] = proto;
        put16(b, field::CHECKSUM, 0);
    }

    pub fn set_src_bytes(&mut self, a: [u8; 4]) {
        self.bm()[field::SRC..field::SRC + 4].copy_from_slice(&a);
    }

    pub fn set_dst_bytes(&mut self, a: [u8; 4]) {
        self.bm()[field::DST..field::DST + 4].copy_from_slice(&a);
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.bm()[field::TTL] = ttl;
    }

    pub fn set_total_len(&mut self, len: u16) {
        put16(self.bm(), field::TOTAL_LEN, len);
    }

    pub fn set_checksum(&mut self, c: u16) {
        put16(self.bm(), field::CHECKSUM, c);
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.b()[..hl]);
        self.set_checksum(c);
    }

    /// Rewrites the source address, updating the header checksum (RFC 1624).
    pub fn rewrite_src(&mut self, a: [u8; 4]) {
        let d = checksum::delta(&self.src_bytes(), &a);
        self.rewrite_src_delta(a, d);
    }

    /// Writes the destination address and adds `delta` (RFC 1624's `~m +
    /// m'` of that change, [`checksum::delta`]) to the header checksum.
    pub fn rewrite_dst_delta(&mut self, a: [u8; 4], delta: u64) {
        let c = checksum::apply(self.checksum(), delta);
        self.set_dst_bytes(a);
        self.set_checksum(c);
    }

    /// The source address likewise.
    pub fn rewrite_src_delta(&mut self, a: [u8; 4], delta: u64) {
        let c = checksum::apply(self.checksum(), delta);
        self.set_src_bytes(a);
        self.set_checksum(c);
    }

    /// Rewrites the destination address, updating the header checksum.
    pub fn rewrite_dst(&mut self, a: [u8; 4]) {
        let d = checksum::delta(&self.dst_bytes(), &a);
        self.rewrite_dst_delta(a, d);
    }

    /// Decrements the TTL with an incremental checksum update. Returns false
    /// (and changes nothing) when the TTL is already 0 or 1.
    pub fn decrement_ttl(&mut self) -> bool {
        let ttl = self.ttl();
        if ttl <= 1 {
            return false;
        }
        self.set_ttl(ttl - 1);
        // The word (TTL, protocol) drops by 0x0100: ~m + m' = 0xfeff.
        let c = checksum::apply(self.checksum(), 0xfeff);
        self.set_checksum(c);
        true
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let end = usize::from(self.total_len()).clamp(hl, self.b().len());
        &mut self.bm()[hl..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real header (captured from a ping): 192.168.0.1 -> 192.168.0.199.
    static HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];

    proptest::proptest! {
        /// The five-word shortcut and the general sum agree, options or not,
        /// on every header, right or wrong.
        #[test]
        fn header_checksum_agrees_with_the_general_sum(mut h in proptest::collection::vec(proptest::num::u8::ANY, 60), ihl in 5u8..16, fill: bool) {
            h[0] = 0x40 | ihl;
            if fill {
                let hl = usize::from(ihl) * 4;
                h[10] = 0;
                h[11] = 0;
                let c = checksum::checksum(&h[..hl]);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let p = Ipv4Packet::new_unchecked(&h[..]);
            let want = checksum::fold(checksum::sum(&h[..p.header_len()], 0)) == 0xffff;
            proptest::prop_assert_eq!(p.verify_checksum(), want);
            proptest::prop_assert!(!fill || want);
        }
    }

    #[test]
    fn checksum_verifies_and_rewrites_stay_valid() {
        let mut buf = [0u8; 0x73];
        buf[..20].copy_from_slice(&HDR);
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.dont_frag());
        p.rewrite_dst([198, 18, 0, 10]);
        p.rewrite_src([198, 19, 255, 1]);
        assert!(p.decrement_ttl());
        assert!(p.verify_checksum());
        assert_eq!(p.ttl(), 0x3f);
        assert_eq!(p.dst(), Ipv4Addr::new(198, 18, 0, 10));
    }

    #[test]
    fn refuses_bad_lengths() {
        let mut buf = [0u8; 40];
        buf[..20].copy_from_slice(&HDR);
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::Truncated);
        buf[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::BadHeaderLen);
        buf[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::BadVersion);
        buf[0] = 0x45;
        buf[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&buf[..]).unwrap_err(), Error::BadLength);
        buf[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert!(Ipv4Packet::new_checked(&buf[..]).is_ok());
    }

    #[test]
    fn ttl_one_is_not_decremented() {
        let mut buf = HDR;
        buf[2..4].copy_from_slice(&20u16.to_be_bytes());
        buf[8] = 1;
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        assert!(!p.decrement_ttl());
        assert_eq!(p.ttl(), 1);
    }
}
