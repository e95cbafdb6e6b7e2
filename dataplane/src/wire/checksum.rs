//! Internet checksum (RFC 1071) and incremental updates (RFC 1624).
//!
//! Sums are kept as `u32`/`u64` partial sums of big-endian 16-bit words and
//! folded at the end. Incremental updates use RFC 1624 equation 3,
//! `HC' = ~(~HC + ~m + m')`, which never produces the negative zero that
//! RFC 1141's form can.

/// Adds `data` to a partial one's-complement sum (big-endian 16-bit words; an
/// odd trailing byte is padded with zero, as RFC 1071 says).
pub fn sum(data: &[u8], initial: u64) -> u64 {
    let mut acc = initial;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Add the two 32-bit halves: each fits in 33 bits, so the u64 cannot
        // overflow for any frame shorter than 2^31 words.
        acc += w >> 32;
        acc += w & 0xffff_ffff;
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = words.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

/// Folds a partial sum to 16 bits (not complemented).
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum of `data`: the complement of its folded sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Partial sum of the IPv4 pseudo-header (RFC 793 / 768).
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u64 {
    sum(&src, 0) + sum(&dst, 0) + u64::from(proto) + u64::from(len)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u64 {
    sum(&src, 0) + sum(&dst, 0) + u64::from(next_header) + u64::from(len >> 16) + u64::from(len & 0xffff)
}

/// RFC 1624 eq. 3 for one 16-bit word: returns the new checksum field.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!check) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// RFC 1624 eq. 3 for one 32-bit field at an even offset (a TCP sequence
/// or acknowledgement number).
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let w = |x: u32| [(x >> 16) as u16, x as u16];
    let [o1, o2] = w(old);
    let [n1, n2] = w(new);
    let acc = u64::from(!check) + u64::from(!o1) + u64::from(!o2) + u64::from(n1) + u64::from(n2);
    !fold(acc)
}

/// RFC 1624 eq. 3 for a run of words (`old` and `new` have equal, even length:
/// addresses, ports).
#[inline]
pub fn update(check: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let mut acc = u64::from(!check);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += u64::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u64::from(u16::from_be_bytes([n[0], n[1]]));
    }
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56], 0)), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut data: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37)).collect();
        let check = checksum(&data);
        let old = [data[10], data[11], data[12], data[13]];
        let new = [0xc6, 0x12, 0x00, 0x07];
        data[10..14].copy_from_slice(&new);
        assert_eq!(update(check, &old, &new), checksum(&data));
        let w = u16::from_be_bytes([data[20], data[21]]);
        data[20..22].copy_from_slice(&0xbeefu16.to_be_bytes());
        let c2 = update16(
            checksum(&{
                let mut d = data.clone();
                d[20..22].copy_from_slice(&w.to_be_bytes());
                d
            }),
            w,
            0xbeef,
        );
        assert_eq!(c2, checksum(&data));
        let check = checksum(&data);
        let old = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        data[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(update32(check, old, 0xdead_beef), checksum(&data));
    }
}
