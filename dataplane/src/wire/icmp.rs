//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages.
//!
//! Both share one layout for the first 8 bytes (type, code, checksum, four
//! bytes of "rest of header"), so one view serves both; the family decides
//! which types are errors.

use super::{be16, be32, put16, put32, Error};

pub const HEADER_LEN: usize = 8;

pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
    /// Code of "fragmentation needed and DF set" under DEST_UNREACH.
    pub const FRAG_NEEDED: u8 = 4;
}

pub mod v6 {
    pub const DEST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
}

/// A view of an ICMP or ICMPv6 message.
#[derive(Debug)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn msg_type(&self) -> u8 {
        self.b()[0]
    }

    pub fn code(&self) -> u8 {
        self.b()[1]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.b(), 2)
    }

    /// The four bytes after the checksum as one word (ICMPv6 PTB: the MTU).
    pub fn rest(&self) -> u32 {
        be32(self.b(), 4)
    }

    /// ICMPv4 frag-needed: the next-hop MTU (RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.b(), 6)
    }

    /// The quoted packet of an error, or the echo data.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..]
    }

    /// True for ICMPv4 error types (which quote an offending packet).
    pub fn is_error_v4(&self) -> bool {
        matches!(
            self.msg_type(),
            v4::DEST_UNREACH | v4::SOURCE_QUENCH | v4::REDIRECT | v4::TIME_EXCEEDED | v4::PARAM_PROBLEM
        )
    }

    /// True for ICMPv6 error types (types below 128).
    pub fn is_error_v6(&self) -> bool {
        matches!(self.msg_type(), v6::DEST_UNREACH | v6::PACKET_TOO_BIG | v6::TIME_EXCEEDED | v6::PARAM_PROBLEM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    pub fn init(&mut self, msg_type: u8, code: u8, rest: u32) {
        let b = self.buffer.as_mut();
        b[0] = msg_type;
        b[1] = code;
        put16(b, 2, 0);
        put32(b, 4, rest);
    }

    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), 2, c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frag_needed_fields() {
        let b = [3, 4, 0, 0, 0, 0, 0x05, 0xc8, 0x45];
        let p = IcmpPacket::new_checked(&b[..]).unwrap();
        assert!(p.is_error_v4());
        assert_eq!((p.code(), p.next_hop_mtu(), p.payload()), (4, 1480, &[0x45][..]));
        assert!(IcmpPacket::new_checked(&b[..7]).is_err());
        let echo = [8, 0, 0, 0, 0, 1, 0, 1];
        assert!(!IcmpPacket::new_checked(&echo[..]).unwrap().is_error_v4());
    }
}
