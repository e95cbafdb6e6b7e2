//! Zero-copy typed views over packet bytes.
//!
//! # Contract (one for the whole module)
//! Every view wraps a buffer `T: AsRef<[u8]>` (`AsMut` for setters). Untrusted
//! bytes enter through `new_checked`, which verifies every length the view's
//! accessors rely on; after it succeeds no accessor can panic or fail. Views
//! built with `new_unchecked` are for buffers the caller has already checked
//! (or built). Nothing here allocates, and nothing here uses `unsafe`.
//!
//! Multi-byte fields are network byte order on the wire and host order in the
//! API. Checksums are computed by [`checksum`]; the views only expose fields.
//!
//! IPv4 options: the header length (IHL) is honoured and the options are
//! carried untouched; none is interpreted. IPv6 extension headers: hop-by-hop,
//! routing, destination options, fragment and AH are walked to find the upper
//! layer ([`ipv6::Ipv6Packet::upper_layer`]); ESP ends the walk (opaque).

#![forbid(unsafe_code)]

pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod proxy;
pub mod tcp;
pub mod udp;

use core::ops::Range;

/// A byte range of a header field.
pub(crate) type Field = Range<usize>;

/// Why a buffer was refused as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header (or a length field) says.
    #[error("buffer shorter than the header requires")]
    Truncated,
    /// The IP version field does not match the view.
    #[error("wrong IP version")]
    BadVersion,
    /// A header-length field is below its minimum.
    #[error("header length field below minimum")]
    BadHeaderLen,
    /// A total/payload length field is inconsistent with the header.
    #[error("length field inconsistent with header")]
    BadLength,
    /// A TCP option's length byte is malformed.
    #[error("malformed TCP option")]
    BadOption,
    /// More IPv6 extension headers than the walker accepts.
    #[error("too many IPv6 extension headers")]
    TooManyExtHeaders,
}

/// IP protocol numbers used by the balancer.
pub mod proto {
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6: u8 = 41;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NONE: u8 = 59;
    pub const DSTOPTS: u8 = 60;
}

/// The big-endian u16 at `at` (one bounds check for both bytes).
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    let w: &[u8; 2] = b[at..at + 2].first_chunk().expect("a 2-byte slice");
    u16::from_be_bytes(*w)
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    let w: &[u8; 4] = b[at..at + 4].first_chunk().expect("a 4-byte slice");
    u32::from_be_bytes(*w)
}

#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
