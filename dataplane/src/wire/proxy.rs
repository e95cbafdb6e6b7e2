//! The PROXY protocol header (haproxy's `proxy-protocol.txt`), as a FULLNAT
//! director writes it in front of a connection's data so the real server
//! learns the client's address: v1, one text line
//! `PROXY TCP4 SRC DST SPORT DPORT\r\n` (at most 107 bytes), and v2, a
//! binary header: the 12-byte signature, version/command, family/transport,
//! a be16 address length, then source and destination address and port.
//! No TLVs. Built on the stack: nothing here allocates.

use std::io::Write;
use std::net::IpAddr;

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/// Version 2, command PROXY.
const V2_PROXY: u8 = 0x21;
/// The longest v1 line (the specification's bound).
pub const V1_MAX: usize = 107;

/// Where a header's addresses come from: the client and the address it
/// connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// A built header.
#[derive(Clone, Copy)]
pub struct Header {
    buf: [u8; V1_MAX + 1],
    len: u8,
}

impl Header {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// v1 (TCP only: the format has no UDP). The two addresses are of one
    /// family (a FULLNAT session's client and VIP always are).
    pub fn v1(e: &Endpoints) -> Header {
        let mut buf = [0u8; V1_MAX + 1];
        let fam = if e.src.is_ipv6() { "TCP6" } else { "TCP4" };
        let mut w = &mut buf[..];
        // At most 5+1+4+1+39+1+39+1+5+1+5+2 = 104 bytes: always fits.
        let _ = write!(w, "PROXY {fam} {} {} {} {}\r\n", e.src, e.dst, e.sport, e.dport);
        let left = w.len();
        Header { buf, len: (buf.len() - left) as u8 }
    }

    /// v2, for TCP (`udp` false) or UDP.
    pub fn v2(e: &Endpoints, udp: bool) -> Header {
        let mut buf = [0u8; V1_MAX + 1];
        buf[..12].copy_from_slice(&V2_SIGNATURE);
        buf[12] = V2_PROXY;
        let transport = if udp { 0x2 } else { 0x1 };
        let at = match (e.src, e.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                buf[13] = 0x10 | transport;
                buf[14..16].copy_from_slice(&12u16.to_be_bytes());
                buf[16..20].copy_from_slice(&s.octets());
                buf[20..24].copy_from_slice(&d.octets());
                24
            }
            (s, d) => {
                buf[13] = 0x20 | transport;
                buf[14..16].copy_from_slice(&36u16.to_be_bytes());
                buf[16..32].copy_from_slice(&v6_octets(s));
                buf[32..48].copy_from_slice(&v6_octets(d));
                48
            }
        };
        buf[at..at + 2].copy_from_slice(&e.sport.to_be_bytes());
        buf[at + 2..at + 4].copy_from_slice(&e.dport.to_be_bytes());
        Header { buf, len: (at + 4) as u8 }
    }
}

fn v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4() -> Endpoints {
        Endpoints { src: "198.18.0.100".parse().unwrap(), dst: "198.18.0.10".parse().unwrap(), sport: 40000, dport: 80 }
    }

    fn v6() -> Endpoints {
        Endpoints {
            src: "2001:db8::100".parse().unwrap(),
            dst: "2001:db8::10".parse().unwrap(),
            sport: 40000,
            dport: 80,
        }
    }

    #[test]
    fn v1_lines() {
        assert_eq!(Header::v1(&v4()).bytes(), b"PROXY TCP4 198.18.0.100 198.18.0.10 40000 80\r\n");
        assert_eq!(Header::v1(&v6()).bytes(), b"PROXY TCP6 2001:db8::100 2001:db8::10 40000 80\r\n");
    }

    #[test]
    fn v1_longest_line_fits() {
        let a: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        let h = Header::v1(&Endpoints { src: a, dst: a, sport: 65535, dport: 65535 });
        assert_eq!(h.len(), 104);
        assert!(h.bytes().ends_with(b" 65535 65535\r\n"));
    }

    #[test]
    fn v2_tcp4_bytes() {
        let mut want = V2_SIGNATURE.to_vec();
        want.extend([0x21, 0x11, 0, 12, 198, 18, 0, 100, 198, 18, 0, 10, 0x9c, 0x40, 0, 80]);
        assert_eq!(Header::v2(&v4(), false).bytes(), &want[..]);
        assert_eq!(Header::v2(&v4(), false).len(), 28);
    }

    #[test]
    fn v2_udp6_bytes() {
        let h = Header::v2(&v6(), true);
        assert_eq!(h.len(), 52);
        assert_eq!(&h.bytes()[12..16], &[0x21, 0x22, 0, 36]);
        assert_eq!(&h.bytes()[16..32], &"2001:db8::100".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(&h.bytes()[32..48], &"2001:db8::10".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(&h.bytes()[48..], &[0x9c, 0x40, 0, 80]);
    }

    proptest! {
        #[test]
        fn v1_is_the_specified_line(s: u32, d: u32, sp: u16, dp: u16, s6: u128, d6: u128, six: bool) {
            let e = if six {
                Endpoints { src: Ipv6Addr::from(s6).into(), dst: Ipv6Addr::from(d6).into(), sport: sp, dport: dp }
            } else {
                Endpoints { src: Ipv4Addr::from(s).into(), dst: Ipv4Addr::from(d).into(), sport: sp, dport: dp }
            };
            let h = Header::v1(&e);
            let want = format!("PROXY TCP{} {} {} {sp} {dp}\r\n", if six { 6 } else { 4 }, e.src, e.dst);
            prop_assert_eq!(h.bytes(), want.as_bytes());
            prop_assert!(h.len() <= V1_MAX);
        }

        #[test]
        fn v2_length_field_covers_the_addresses(s6: u128, d6: u128, sp: u16, dp: u16, udp: bool) {
            let e = Endpoints { src: Ipv6Addr::from(s6).into(), dst: Ipv6Addr::from(d6).into(), sport: sp, dport: dp };
            let h = Header::v2(&e, udp);
            let b = h.bytes();
            prop_assert_eq!(&b[..12], &V2_SIGNATURE[..]);
            prop_assert_eq!(usize::from(u16::from_be_bytes([b[14], b[15]])) + 16, b.len());
            prop_assert_eq!(u16::from_be_bytes([b[48], b[49]]), sp);
        }
    }
}
