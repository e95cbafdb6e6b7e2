//! IPv4 / IPv6 as one trait, so each pipeline function is written once and
//! monomorphised per family. Addresses are byte arrays in network order: they
//! are copied into and out of headers without conversion.

use crate::wire::icmp;
use crate::wire::{checksum, ethernet::ethertype, ipv4::Ipv4Packet, ipv6::Ipv6Packet, proto};
use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::session::{SessionTable, Tables, Tuple};
use super::stats::DropReason;

/// The fields of an IP header the pipeline needs, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3<A> {
    pub src: A,
    pub dst: A,
    /// Upper-layer protocol.
    pub proto: u8,
    /// Offset of the upper layer from the IP header.
    pub l4_off: usize,
    /// Length of the IP packet (header + payload); link padding excluded.
    pub len: usize,
    /// Any fragment (IPv4 MF/offset, IPv6 fragment header with M/offset).
    pub fragmented: bool,
    /// DSCP+ECN byte (IPv4 TOS / IPv6 traffic class).
    pub tos: u8,
    /// IPv4 DF bit; always true for IPv6 (routers never fragment).
    pub dont_frag: bool,
    /// TTL / hop limit.
    pub ttl: u8,
}

/// Header fields of a generated header besides addresses and protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderOpts {
    /// DSCP+ECN (IPv4 TOS / IPv6 traffic class).
    pub tos: u8,
    /// IPv4 identification.
    pub ident: u16,
    /// IPv4 DF.
    pub dont_frag: bool,
}

/// One IP version.
pub trait Family: Copy + Debug + Default + Send + Sync + 'static {
    type Addr: Copy + Eq + Hash + Default + Debug + Ord + Send + Sync + AsRef<[u8]> + AsMut<[u8]> + 'static;
    const ETHERTYPE: u16;
    const IS_V6: bool;
    /// Fixed header length (what an encapsulation adds).
    const HEADER_LEN: usize;
    const ICMP_PROTO: u8;
    /// Protocol number of this family carried inside an IP tunnel.
    const TUNNEL_PROTO: u8;
    /// Largest ICMP error message to generate (RFC 1812 576 / RFC 4443 1280).
    const ICMP_ERROR_MAX: usize;
    /// Address bits (32 / 128).
    const BITS: u8;
    /// Offsets of the source and destination address in the fixed header.
    const SRC_OFF: usize;
    const DST_OFF: usize;
    /// Offset of the TTL / hop limit in the fixed header.
    const TTL_OFF: usize;

    /// This family's session table among a core's tables.
    fn table(t: &mut Tables) -> &mut SessionTable<Self>;
    fn table_ref(t: &Tables) -> &SessionTable<Self>;

    /// Reads the address at `off` of `b`.
    #[inline]
    fn read_addr(b: &[u8], off: usize) -> Self::Addr {
        let mut a = Self::Addr::default();
        let n = a.as_ref().len();
        a.as_mut().copy_from_slice(&b[off..off + n]);
        a
    }

    /// A fwmark as an address (the "virtual address" of a fwmark template).
    fn mark_addr(mark: u32) -> Self::Addr {
        let mut a = Self::Addr::default();
        let n = a.as_ref().len();
        a.as_mut()[n - 4..].copy_from_slice(&mark.to_be_bytes());
        a
    }

    fn to_ip(a: Self::Addr) -> IpAddr;
    fn from_ip(ip: IpAddr) -> Option<Self::Addr>;
    /// Keeps the first `bits` bits of `a`.
    fn mask(a: Self::Addr, bits: u8) -> Self::Addr;
    /// IPVS's address fold (v4: the address; v6: XOR of the four words), host order.
    fn fold(a: Self::Addr) -> u32;

    /// Parses and checks the IP header at the start of `b`.
    fn parse(b: &[u8]) -> Result<L3<Self::Addr>, DropReason>;
    /// The header checksum of a parsed header is right (IPv6 has none).
    fn header_checksum_ok(b: &[u8]) -> bool;
    /// The header at the start of `b` when it is in the form nearly every
    /// packet has: IPv4 without options, not a fragment; IPv6 with TCP or
    /// UDP straight after the fixed header. `None` for anything else
    /// ([`Self::parse`] decides then): what it returns is what that would.
    /// The checksum is still to check.
    fn parse_plain(b: &[u8]) -> Option<L3<Self::Addr>>;
    /// Parses a header quoted inside an ICMP error (may be cut short).
    fn parse_quoted(b: &[u8]) -> Option<L3<Self::Addr>>;
    /// Rewrites the source address (IPv4: with header checksum update).
    fn set_src(b: &mut [u8], a: Self::Addr);
    fn set_dst(b: &mut [u8], a: Self::Addr);
    /// Writes the address `a` at `off` of `b` (no checksum touched).
    #[inline]
    fn put_addr(b: &mut [u8], off: usize, a: Self::Addr) {
        let n = a.as_ref().len();
        b[off..off + n].copy_from_slice(a.as_ref());
    }
    /// Adds `delta` (`~m + m'` sums of changed header words,
    /// [`checksum::delta`]) to the header checksum (IPv4; IPv6 has none).
    fn adjust_header(b: &mut [u8], delta: u64);
    /// Decrements TTL / hop limit; false when it would reach zero.
    fn decrement_ttl(b: &mut [u8]) -> bool;
    /// Sets the packet's length (header included) after its payload grew
    /// or shrank (IPv4: with header checksum update).
    fn set_len(b: &mut [u8], len: usize);
    /// Writes a fresh header (no options) for a payload of `payload_len`.
    fn write_header(b: &mut [u8], src: Self::Addr, dst: Self::Addr, proto: u8, payload_len: usize, opts: HeaderOpts);
    /// Partial pseudo-header sum for an upper layer of `len` bytes.
    fn pseudo(src: Self::Addr, dst: Self::Addr, proto: u8, len: usize) -> u64;
    /// True when `msg_type` is an error of this family's ICMP.
    fn icmp_is_error(msg_type: u8) -> bool;
    /// The (type, code, rest-of-header) of "fragmentation needed" / "packet too big".
    fn icmp_too_big(mtu: u16) -> (u8, u8, u32);
    /// Type, code and rest of "time exceeded in transit".
    fn icmp_time_exceeded() -> (u8, u8, u32);
    /// ICMP checksum seed: 0 for ICMPv4, the pseudo-header for ICMPv6.
    fn icmp_seed(src: Self::Addr, dst: Self::Addr, len: usize) -> u64;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V4;
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V6;

impl Family for V4 {
    type Addr = [u8; 4];
    const ETHERTYPE: u16 = ethertype::IPV4;
    const IS_V6: bool = false;
    const HEADER_LEN: usize = 20;
    const ICMP_PROTO: u8 = proto::ICMP;
    const TUNNEL_PROTO: u8 = proto::IPIP;
    const ICMP_ERROR_MAX: usize = 576;
    const BITS: u8 = 32;
    const SRC_OFF: usize = 12;
    const DST_OFF: usize = 16;
    const TTL_OFF: usize = 8;

    fn table(t: &mut Tables) -> &mut SessionTable<Self> {
        &mut t.v4
    }

    fn table_ref(t: &Tables) -> &SessionTable<Self> {
        &t.v4
    }

    fn to_ip(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn from_ip(ip: IpAddr) -> Option<[u8; 4]> {
        match ip {
            IpAddr::V4(a) => Some(a.octets()),
            IpAddr::V6(_) => None,
        }
    }

    fn mask(a: [u8; 4], bits: u8) -> [u8; 4] {
        let m = if bits >= 32 { u32::MAX } else { !(u32::MAX >> bits) };
        (u32::from_be_bytes(a) & m).to_be_bytes()
    }

    fn fold(a: [u8; 4]) -> u32 {
        u32::from_be_bytes(a)
    }

    fn parse(b: &[u8]) -> Result<L3<[u8; 4]>, DropReason> {
        let ip = Ipv4Packet::new_checked(b).map_err(|_| DropReason::L3Malformed)?;
        Ok(l3_v4(&ip, ip.is_fragment()))
    }

    #[inline]
    fn header_checksum_ok(b: &[u8]) -> bool {
        Ipv4Packet::new_unchecked(b).verify_checksum()
    }

    #[inline]
    fn parse_plain(b: &[u8]) -> Option<L3<[u8; 4]>> {
        let h = b.first_chunk::<20>()?;
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let frag = u16::from_be_bytes([h[6], h[7]]);
        // Version 4, five header words; no MF flag, no offset.
        if h[0] != 0x45 || len < 20 || len > b.len() || frag & 0x3fff != 0 {
            return None;
        }
        Some(L3 {
            src: [h[12], h[13], h[14], h[15]],
            dst: [h[16], h[17], h[18], h[19]],
            proto: h[9],
            l4_off: 20,
            len,
            fragmented: false,
            tos: h[1],
            dont_frag: frag & 0x4000 != 0,
            ttl: h[8],
        })
    }

    fn parse_quoted(b: &[u8]) -> Option<L3<[u8; 4]>> {
        let ip = Ipv4Packet::new_checked_quoted(b).ok()?;
        // A quoted packet may be a first fragment: only a later one lacks ports.
        Some(l3_v4(&ip, ip.flags_frag() & 0x1fff != 0))
    }

    fn set_src(b: &mut [u8], a: [u8; 4]) {
        Ipv4Packet::new_unchecked(b).rewrite_src(a);
    }

    fn set_dst(b: &mut [u8], a: [u8; 4]) {
        Ipv4Packet::new_unchecked(b).rewrite_dst(a);
    }

    #[inline]
    fn adjust_header(b: &mut [u8], delta: u64) {
        let mut ip = Ipv4Packet::new_unchecked(b);
        let c = checksum::apply(ip.checksum(), delta);
        ip.set_checksum(c);
    }

    fn decrement_ttl(b: &mut [u8]) -> bool {
        Ipv4Packet::new_unchecked(b).decrement_ttl()
    }

    fn set_len(b: &mut [u8], len: usize) {
        let mut ip = Ipv4Packet::new_unchecked(b);
        let c = checksum::update16(ip.checksum(), ip.total_len(), len as u16);
        ip.set_total_len(len as u16);
        ip.set_checksum(c);
    }

    fn write_header(
        b: &mut [u8],
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        payload_len: usize,
        HeaderOpts { tos, ident, dont_frag }: HeaderOpts,
    ) {
        let mut ip = Ipv4Packet::new_unchecked(b);
        let flags = if dont_frag { crate::wire::ipv4::FLAG_DF } else { 0 };
        ip.init(tos, (payload_len + 20) as u16, ident, flags, 64, proto);
        ip.set_src_bytes(src);
        ip.set_dst_bytes(dst);
        ip.fill_checksum();
    }

    fn pseudo(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u64 {
        checksum::pseudo_v4(src, dst, proto, len as u16)
    }

    fn icmp_is_error(t: u8) -> bool {
        matches!(
            t,
            icmp::v4::DEST_UNREACH
                | icmp::v4::SOURCE_QUENCH
                | icmp::v4::REDIRECT
                | icmp::v4::TIME_EXCEEDED
                | icmp::v4::PARAM_PROBLEM
        )
    }

    fn icmp_too_big(mtu: u16) -> (u8, u8, u32) {
        (icmp::v4::DEST_UNREACH, icmp::v4::FRAG_NEEDED, u32::from(mtu))
    }

    fn icmp_time_exceeded() -> (u8, u8, u32) {
        (11, 0, 0)
    }

    fn icmp_seed(_: [u8; 4], _: [u8; 4], _: usize) -> u64 {
        0
    }
}

impl Family for V6 {
    type Addr = [u8; 16];
    const ETHERTYPE: u16 = ethertype::IPV6;
    const IS_V6: bool = true;
    const HEADER_LEN: usize = 40;
    const ICMP_PROTO: u8 = proto::ICMPV6;
    const TUNNEL_PROTO: u8 = proto::IPV6;
    const ICMP_ERROR_MAX: usize = 1280;
    const BITS: u8 = 128;
    const SRC_OFF: usize = 8;
    const DST_OFF: usize = 24;
    const TTL_OFF: usize = 7;

    fn table(t: &mut Tables) -> &mut SessionTable<Self> {
        &mut t.v6
    }

    fn table_ref(t: &Tables) -> &SessionTable<Self> {
        &t.v6
    }

    fn to_ip(a: [u8; 16]) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(a))
    }

    fn from_ip(ip: IpAddr) -> Option<[u8; 16]> {
        match ip {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        }
    }

    fn mask(a: [u8; 16], bits: u8) -> [u8; 16] {
        let m = if bits >= 128 { u128::MAX } else { !(u128::MAX >> bits) };
        (u128::from_be_bytes(a) & m).to_be_bytes()
    }

    fn fold(a: [u8; 16]) -> u32 {
        let w = |i: usize| u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
        w(0) ^ w(4) ^ w(8) ^ w(12)
    }

    fn parse(b: &[u8]) -> Result<L3<[u8; 16]>, DropReason> {
        let ip = Ipv6Packet::new_checked(b).map_err(|_| DropReason::L3Malformed)?;
        let ul = ip.upper_layer().map_err(|_| DropReason::L3Malformed)?;
        Ok(l3_v6(&ip, &ul))
    }

    fn header_checksum_ok(_b: &[u8]) -> bool {
        true
    }

    #[inline]
    fn parse_plain(b: &[u8]) -> Option<L3<[u8; 16]>> {
        let h = b.first_chunk::<40>()?;
        let len = 40 + usize::from(u16::from_be_bytes([h[4], h[5]]));
        if h[0] >> 4 != 6 || len > b.len() || (h[6] != proto::TCP && h[6] != proto::UDP) {
            return None;
        }
        let mut a = [[0u8; 16]; 2];
        a[0].copy_from_slice(&h[8..24]);
        a[1].copy_from_slice(&h[24..40]);
        Some(L3 {
            src: a[0],
            dst: a[1],
            proto: h[6],
            l4_off: 40,
            len,
            fragmented: false,
            tos: (u16::from_be_bytes([h[0], h[1]]) >> 4) as u8,
            dont_frag: true,
            ttl: h[7],
        })
    }

    fn parse_quoted(b: &[u8]) -> Option<L3<[u8; 16]>> {
        let ip = Ipv6Packet::new_checked_quoted(b).ok()?;
        let ul = ip.upper_layer().ok()?;
        Some(l3_v6(&ip, &ul))
    }

    fn set_src(b: &mut [u8], a: [u8; 16]) {
        Ipv6Packet::new_unchecked(b).set_src_bytes(a);
    }

    fn set_dst(b: &mut [u8], a: [u8; 16]) {
        Ipv6Packet::new_unchecked(b).set_dst_bytes(a);
    }

    #[inline]
    fn adjust_header(_: &mut [u8], _: u64) {}

    fn decrement_ttl(b: &mut [u8]) -> bool {
        Ipv6Packet::new_unchecked(b).decrement_hop_limit()
    }

    fn set_len(b: &mut [u8], len: usize) {
        Ipv6Packet::new_unchecked(b).set_payload_len((len - 40) as u16);
    }

    fn write_header(
        b: &mut [u8],
        src: [u8; 16],
        dst: [u8; 16],
        proto: u8,
        payload_len: usize,
        HeaderOpts { tos, .. }: HeaderOpts,
    ) {
        let mut ip = Ipv6Packet::new_unchecked(b);
        ip.init(tos, 0, payload_len as u16, proto, 64);
        ip.set_src_bytes(src);
        ip.set_dst_bytes(dst);
    }

    fn pseudo(src: [u8; 16], dst: [u8; 16], proto: u8, len: usize) -> u64 {
        checksum::pseudo_v6(src, dst, proto, len as u32)
    }

    fn icmp_is_error(t: u8) -> bool {
        matches!(
            t,
            icmp::v6::DEST_UNREACH | icmp::v6::PACKET_TOO_BIG | icmp::v6::TIME_EXCEEDED | icmp::v6::PARAM_PROBLEM
        )
    }

    fn icmp_too_big(mtu: u16) -> (u8, u8, u32) {
        (icmp::v6::PACKET_TOO_BIG, 0, u32::from(mtu))
    }

    fn icmp_time_exceeded() -> (u8, u8, u32) {
        (3, 0, 0)
    }

    fn icmp_seed(src: [u8; 16], dst: [u8; 16], len: usize) -> u64 {
        checksum::pseudo_v6(src, dst, proto::ICMPV6, len as u32)
    }
}

fn l3_v4<T: AsRef<[u8]>>(ip: &Ipv4Packet<T>, fragmented: bool) -> L3<[u8; 4]> {
    L3 {
        src: ip.src_bytes(),
        dst: ip.dst_bytes(),
        proto: ip.protocol(),
        l4_off: ip.header_len(),
        len: usize::from(ip.total_len()),
        fragmented,
        tos: ip.tos(),
        dont_frag: ip.dont_frag(),
        ttl: ip.ttl(),
    }
}

fn l3_v6<T: AsRef<[u8]>>(ip: &Ipv6Packet<T>, ul: &crate::wire::ipv6::UpperLayer) -> L3<[u8; 16]> {
    L3 {
        src: ip.src_bytes(),
        dst: ip.dst_bytes(),
        proto: ul.proto,
        l4_off: ul.offset,
        len: ip.total_len(),
        fragmented: ul.fragmented,
        tos: ip.traffic_class(),
        dont_frag: true,
        ttl: ip.hop_limit(),
    }
}

/// Formats an address of either family (for listings and errors).
/// The TCP/UDP flow an ICMP error quotes (its payload `q`), reversed: the
/// quoted packet travelled the other way, so the tuple is that of a packet
/// in the error's direction. `None` for anything else.
pub fn quoted_flow<F: Family>(q: &[u8]) -> Option<Quoted<F::Addr>> {
    let inner = F::parse_quoted(q)?;
    if (inner.proto != proto::TCP && inner.proto != proto::UDP) || q.len() < inner.l4_off + 4 {
        return None;
    }
    let (sport, dport) = (crate::wire::be16(q, inner.l4_off), crate::wire::be16(q, inner.l4_off + 2));
    let tuple = Tuple { src: inner.dst, dst: inner.src, sport: dport, dport: sport, proto: inner.proto };
    Some(Quoted { inner, tuple })
}

/// See [`quoted_flow`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<A> {
    /// The quoted header, as it was sent.
    pub inner: L3<A>,
    /// The flow in the error's direction.
    pub tuple: Tuple<A>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Pkt;
    use proptest::prelude::*;

    /// What the full parser says of `b`, when it takes it as plain.
    fn full<F: Family>(b: &[u8]) -> Option<L3<F::Addr>> {
        F::parse(b).ok().filter(|ip| !ip.fragmented)
    }

    fn agrees<F: Family>(b: &[u8]) -> Result<(), TestCaseError> {
        if let Some(plain) = F::parse_plain(b) {
            prop_assert_eq!(Some(plain), full::<F>(b));
            prop_assert!(plain.proto == proto::TCP || plain.proto == proto::UDP || !F::IS_V6);
        }
        Ok(())
    }

    /// Frames of every kind with some of their header bytes changed.
    fn mangled(v6: bool) -> impl Strategy<Value = Vec<u8>> {
        let src = if v6 { "[2001:db8::1]:1024" } else { "198.18.0.1:1024" };
        let dst = if v6 { "[2001:db8::2]:80" } else { "198.18.0.2:80" };
        let frames = [
            Pkt::tcp(src.parse().unwrap(), dst.parse().unwrap(), 0x10).build(),
            Pkt::udp(src.parse().unwrap(), dst.parse().unwrap()).build(),
        ];
        (0..frames.len(), proptest::collection::vec((0usize..60, any::<u8>()), 0..4), 0usize..80).prop_map(
            move |(k, edits, cut)| {
                let mut b = frames[k][14..].to_vec();
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

    proptest! {
        #[test]
        fn a_plain_v4_header_is_what_the_full_parser_reads(b in mangled(false)) {
            agrees::<V4>(&b)?;
        }

        #[test]
        fn a_plain_v6_header_is_what_the_full_parser_reads(b in mangled(true)) {
            agrees::<V6>(&b)?;
        }

        #[test]
        fn arbitrary_bytes_parse_plain_only_as_the_full_parser_does(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            agrees::<V4>(&b)?;
            agrees::<V6>(&b)?;
        }
    }

    #[test]
    fn plain_headers_take_the_short_way() {
        for (src, dst) in [("198.18.0.1:1024", "198.18.0.2:80"), ("[2001:db8::1]:1024", "[2001:db8::2]:80")] {
            let f = Pkt::tcp(src.parse().unwrap(), dst.parse().unwrap(), 0x10).build();
            let plain = if src.starts_with('[') {
                V6::parse_plain(&f[14..]).map(|_| ())
            } else {
                V4::parse_plain(&f[14..]).map(|_| ())
            };
            assert!(plain.is_some(), "{src}: a TCP segment's header is plain");
        }
    }
}
