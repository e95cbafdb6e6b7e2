//! Internet checksum (RFC 1071) and incremental updates (RFC 1624).
//!
//! Sums are kept as `u32`/`u64` partial sums of big-endian 16-bit words and
//! folded at the end. Incremental updates use RFC 1624 equation 3,
//! `HC' = ~(~HC + ~m + m')`, which never produces the negative zero that
//! RFC 1141's form can.

/// Adds `data` to a partial one's-complement sum (big-endian 16-bit words; an
/// odd trailing byte is padded with zero, as RFC 1071 says).
///
/// The words are added as they lie in memory, little-endian, and the sum is
/// turned to big-endian once at the end: RFC 1071's byte-order independence
/// (section 2B) makes that the same sum, without a byte swap per word. And
/// since 2^16 = 1 modulo 2^16 - 1, a word's lane in the accumulator does not
/// change the folded sum, so 64-, 32- and 16-bit pieces add alike: 32 bytes
/// per turn in four 64-bit adds, their carries counted apart and added back.
#[inline]
pub fn sum(data: &[u8], initial: u64) -> u64 {
    let word = |c: &[u8], i: usize| {
        u64::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3], c[i + 4], c[i + 5], c[i + 6], c[i + 7]])
    };
    let (mut acc, mut carries) = (0u64, 0u64);
    let mut add = |w: u64| {
        let (s, c) = acc.overflowing_add(w);
        acc = s;
        carries += u64::from(c);
    };
    let mut blocks = data.chunks_exact(32);
    for c in &mut blocks {
        add(word(c, 0));
        add(word(c, 8));
        add(word(c, 16));
        add(word(c, 24));
    }
    let mut eights = blocks.remainder().chunks_exact(8);
    for c in &mut eights {
        add(word(c, 0));
    }
    // The last 0-7 bytes: a 4-, a 2- and a 1-byte piece (a trailing odd
    // byte is the high byte of its big-endian word: the low byte here).
    let mut rest = eights.remainder();
    let mut tail = 0u64;
    if let [a, b, c, d, more @ ..] = rest {
        tail += u64::from(u32::from_le_bytes([*a, *b, *c, *d]));
        rest = more;
    }
    if let [a, b, more @ ..] = rest {
        tail += u64::from(u16::from_le_bytes([*a, *b]));
        rest = more;
    }
    if let [a] = rest {
        tail += u64::from(*a);
    }
    add(tail);
    // `carries` counts 2^64s, each 1 modulo 2^16 - 1.
    let native = fold(acc) as u64 + carries;
    let be = u64::from(fold(native).swap_bytes());
    // Below 2^33, so that callers may add partial sums together.
    let (s, c) = initial.overflowing_add(be);
    let acc = s + u64::from(c);
    (acc & 0xffff_ffff) + (acc >> 32)
}

/// Folds a partial sum to 16 bits (not complemented): two additions with
/// end-around carry, no loop (64 to 32 bits, 32 to 16). The carry out of
/// each is added back in; that cannot carry again (a sum that carried is at
/// most `2 * max - 2^n`, one below the top).
#[inline]
pub fn fold(acc: u64) -> u16 {
    let (s, c) = (acc as u32).overflowing_add((acc >> 32) as u32);
    let s = s + u32::from(c);
    let (t, c) = (s as u16).overflowing_add((s >> 16) as u16);
    t + u16::from(c)
}

/// The checksum of `data`: the complement of its folded sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Partial sum of the IPv4 pseudo-header (RFC 793 / 768): the addresses as
/// 32-bit words (see [`sum`] on lanes).
#[inline]
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u64 {
    u64::from(u32::from_be_bytes(src)) + u64::from(u32::from_be_bytes(dst)) + u64::from(proto) + u64::from(len)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u64 {
    let half = |a: [u8; 16]| {
        let x = u128::from_be_bytes(a);
        u64::from(fold((x >> 64) as u64)) + u64::from(fold(x as u64))
    };
    half(src) + half(dst) + u64::from(next_header) + u64::from(len >> 16) + u64::from(len & 0xffff)
}

/// RFC 1624 eq. 3, `HC' = ~(~HC + ~m + m')`, with `~m + m'` already summed
/// (by [`delta`], or by hand): returns the new checksum field.
#[inline]
pub fn apply(check: u16, delta: u64) -> u16 {
    !fold(u64::from(!check) + delta)
}

/// `~m + m'` of replacing the words `old` with `new` (equal, even length:
/// addresses, ports), 32 bits at a time (see [`sum`] on lanes): one
/// difference serves every checksum that covers the field (the IPv4 header's
/// and the TCP/UDP pseudo-header's).
#[inline]
pub fn delta(old: &[u8], new: &[u8]) -> u64 {
    debug_assert_eq!(old.len(), new.len());
    let mut acc = 0u64;
    let (mut o4, mut n4) = (old.chunks_exact(4), new.chunks_exact(4));
    for (o, n) in (&mut o4).zip(&mut n4) {
        acc += u64::from(!u32::from_be_bytes([o[0], o[1], o[2], o[3]]));
        acc += u64::from(u32::from_be_bytes([n[0], n[1], n[2], n[3]]));
    }
    for (o, n) in o4.remainder().chunks_exact(2).zip(n4.remainder().chunks_exact(2)) {
        acc += u64::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u64::from(u16::from_be_bytes([n[0], n[1]]));
    }
    acc
}

/// `~m + m'` of one 16-bit word.
#[inline]
pub fn delta16(old: u16, new: u16) -> u64 {
    u64::from(!old) + u64::from(new)
}

/// RFC 1624 eq. 3 for one 16-bit word: returns the new checksum field.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    apply(check, delta16(old, new))
}

/// RFC 1624 eq. 3 for one 32-bit field at an even offset (a TCP sequence
/// or acknowledgement number).
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    apply(check, u64::from(!old) + u64::from(new))
}

/// RFC 1624 eq. 3 for a run of words (`old` and `new` have equal, even length:
/// addresses, ports).
#[inline]
pub fn update(check: u16, old: &[u8], new: &[u8]) -> u16 {
    apply(check, delta(old, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 word by word: what [`sum`] must agree with.
    fn reference(data: &[u8], initial: u64) -> u16 {
        let mut acc = initial;
        for w in data.chunks(2) {
            acc += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// Folding 16 bits at a time until nothing is left over.
    fn fold_slowly(mut acc: u64) -> u16 {
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn fold_at_the_edges_is_the_slow_fold() {
        for acc in [0, 1, 0xffff, 0x1_0000, 0x1_fffe, 0xffff_ffff, 0x1_0000_0000, 0x1_ffff_fffe, u64::MAX, u64::MAX - 1]
        {
            assert_eq!(fold(acc), fold_slowly(acc), "{acc:#x}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fold_is_the_slow_fold(acc: u64) {
            proptest::prop_assert_eq!(fold(acc), fold_slowly(acc));
        }

        #[test]
        fn sum_matches_rfc1071_word_by_word(data in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), seed in 0u64..(1 << 40)) {
            proptest::prop_assert_eq!(fold(sum(&data, seed)), reference(&data, seed));
        }

        #[test]
        fn pseudo_headers_match_their_bytes(src: [u8; 16], dst: [u8; 16], proto: u8, len: u16) {
            let mut v6 = src.to_vec();
            v6.extend_from_slice(&dst);
            v6.extend_from_slice(&[0, 0, (len >> 8) as u8, len as u8, 0, 0, 0, proto]);
            proptest::prop_assert_eq!(fold(pseudo_v6(src, dst, proto, u32::from(len))), reference(&v6, 0));
            let (s4, d4) = ([src[0], src[1], src[2], src[3]], [dst[0], dst[1], dst[2], dst[3]]);
            let v4 = [&s4[..], &d4[..], &[0, proto, (len >> 8) as u8, len as u8]].concat();
            proptest::prop_assert_eq!(fold(pseudo_v4(s4, d4, proto, len)), reference(&v4, 0));
        }
    }

    proptest::proptest! {
        #[test]
        fn incremental_update_matches_a_full_recompute(
            mut data in proptest::collection::vec(proptest::num::u8::ANY, 40..41),
            at in 0usize..10,
            new in proptest::collection::vec(proptest::num::u8::ANY, 2..18),
        ) {
            let (at, len) = (at * 2, new.len() & !1);
            let len = len.min(data.len() - at);
            let check = checksum(&data);
            let old = data[at..at + len].to_vec();
            data[at..at + len].copy_from_slice(&new[..len]);
            let want = checksum(&data);
            let got = update(check, &old, &new[..len]);
            // Equal as one's-complement numbers (0x0000 and 0xffff are one).
            proptest::prop_assert!(got == want || (got | want) == 0xffff && (got & want) == 0, "{got:#x} {want:#x}");
        }
    }

    #[test]
    fn all_ones_stays_all_ones() {
        // The largest sums fold to 0xffff, never to 0 (one's complement).
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(fold(sum(&[0xff; 64], 0)), 0xffff);
        assert!(sum(&[0xff; 64], u64::MAX) < 1 << 33);
    }

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
