//! Moving a TCP segment's numbers in place: the sequence and
//! acknowledgement numbers, the window, SACK edges and timestamps, each
//! through one mapping, the checksum updated incrementally (RFC 1624).
//! What the client-address header (`reveal.rs`) and the SYN proxy
//! (`synproxy.rs`) shift share this one walk.

use crate::wire::tcp::flags as tcpf;
use crate::wire::{be16, be32, checksum, put16, put32};

/// A number a mapping may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Seq,
    /// Only when the ACK flag is set.
    Ack,
    Window,
    SackEdge,
    TsVal,
    TsEcr,
}

const SACK: u8 = 5;
const TIMESTAMPS: u8 = 8;

/// Maps every number of the TCP segment `b` (header at 0) through `f`;
/// false when a moved option number sat at an odd offset, so the checksum
/// could not follow (the caller recomputes it).
pub(super) fn remap(b: &mut [u8], f: impl Fn(Field, u32) -> u32) -> bool {
    let mut csum = be16(b, 16);
    let mut aligned = true;
    let mut set = |b: &mut [u8], at: usize, field: Field, csum: &mut u16| {
        let old = be32(b, at);
        let new = f(field, old);
        if new != old {
            if at % 2 == 0 {
                *csum = checksum::update32(*csum, old, new);
            } else {
                aligned = false;
            }
            put32(b, at, new);
        }
    };
    set(b, 4, Field::Seq, &mut csum);
    if b[13] & tcpf::ACK != 0 {
        set(b, 8, Field::Ack, &mut csum);
    }
    let win = be16(b, 14);
    let new_win = f(Field::Window, u32::from(win)).min(0xffff) as u16;
    if new_win != win {
        csum = checksum::update16(csum, win, new_win);
        put16(b, 14, new_win);
    }
    let hl = (usize::from(b[12] >> 4) * 4).min(b.len());
    let mut k = 20;
    while k + 1 < hl {
        match b[k] {
            0 => break,
            1 => k += 1,
            kind => {
                let len = usize::from(b[k + 1]).max(2);
                let end = (k + len).min(hl);
                if kind == SACK {
                    let mut e = k + 2;
                    while e + 4 <= end {
                        set(b, e, Field::SackEdge, &mut csum);
                        e += 4;
                    }
                } else if kind == TIMESTAMPS && len == 10 && end == k + 10 {
                    set(b, k + 2, Field::TsVal, &mut csum);
                    set(b, k + 6, Field::TsEcr, &mut csum);
                }
                k += len;
            }
        }
    }
    put16(b, 16, csum);
    aligned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{fold, sum};
    use proptest::prelude::*;

    /// A segment with NOP NOP TS, then (at an odd offset) NOP SACK.
    fn segment() -> Vec<u8> {
        let mut b = vec![0u8; 20];
        b[12] = 0xb0; // 44 bytes of header
        b[13] = tcpf::ACK;
        put32(&mut b, 4, 1000);
        put32(&mut b, 8, 2000);
        put16(&mut b, 14, 512);
        b.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
        b.extend_from_slice(&[1, 5, 10, 0, 0, 0x07, 0xd0, 0, 0, 0x08, 0x00, 0]);
        b.extend_from_slice(b"data");
        let c = !fold(sum(&b, 0));
        put16(&mut b, 16, c);
        b
    }

    fn checks(b: &[u8]) -> bool {
        fold(sum(b, 0)) == 0xffff
    }

    #[test]
    fn every_number_moves_and_the_checksum_follows() {
        let mut b = segment();
        let aligned = remap(&mut b, |f, v| match f {
            Field::Seq => v + 1,
            Field::Ack | Field::SackEdge => v - 100,
            Field::Window => v * 2,
            Field::TsVal => v + 10,
            Field::TsEcr => v - 1,
        });
        assert_eq!((be32(&b, 4), be32(&b, 8), be16(&b, 14)), (1001, 1900, 1024));
        assert_eq!((be32(&b, 24), be32(&b, 28)), (17, 8));
        assert_eq!((be32(&b, 35), be32(&b, 39)), (1900, 1948));
        assert!(!aligned, "the SACK edges sat at odd offsets: the caller recomputes");
        let mut even = segment();
        assert!(remap(&mut even, |f, v| if f == Field::TsVal { v + 3 } else { v }));
        assert!(checks(&even));
    }

    #[test]
    fn the_window_saturates() {
        let mut b = segment();
        remap(&mut b, |f, v| if f == Field::Window { v << 8 } else { v });
        assert_eq!(be16(&b, 14), 0xffff);
        assert!(checks(&b));
    }

    proptest! {
        #[test]
        fn aligned_moves_keep_the_checksum(d: u32, w in 0u32..20) {
            let mut b = segment();
            let ok = remap(&mut b, |f, v| match f {
                Field::Seq | Field::TsVal => v.wrapping_add(d),
                Field::Ack | Field::TsEcr => v.wrapping_sub(d),
                Field::Window => v >> (w % 8),
                Field::SackEdge => v,
            });
            prop_assert!(ok);
            prop_assert!(checks(&b));
        }

        #[test]
        fn any_bytes_are_walked_without_panic(mut b in proptest::collection::vec(any::<u8>(), 20..80)) {
            remap(&mut b, |_, v| v.wrapping_add(1));
        }
    }
}
