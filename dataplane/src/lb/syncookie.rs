//! SYN cookies for the SYN proxy (`-j enable`): the initial sequence number
//! the director answers a client's SYN with carries, authenticated, what
//! the client's SYN offered, so no state is kept until its ACK comes back.
//!
//! A cookie is `count mod 4` (2 bits) · `data` (9 bits) · a 21-bit MAC:
//! `count` is the minute it was made, `data` what the SYN offered (the MSS
//! index (3), the client's window scale (4; 15: none), SACK permitted (1),
//! timestamps (1)), and the MAC SipHash-1-3 over the connection's
//! addresses and ports, the client's ISN, `count` and `data`. A check takes
//! the one minute of the last [`MAX_AGE`] + 1 with those 2 bits and
//! recomputes the MAC: a guessed cookie passes one time in 2^21, and an ACK
//! for another ISN, port or address does not pass at all.
//!
//! The MAC's key is derived from the process's random master key and the
//! hour (`count >> 6`), so the secret rotates every 64 minutes, and a
//! cookie made just before a rotation still checks after it (its minute
//! names its hour).

use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// The MSS values a cookie can name (an offered MSS is rounded down to one).
pub const MSS_TABLE: [u16; 8] = [536, 1024, 1220, 1280, 1360, 1440, 1452, 1460];

/// Minutes a cookie stays good after it was made (a client's ACK after
/// three SYN-ACK retransmissions still passes).
pub const MAX_AGE: u32 = 3;
const _: () = assert!(MAX_AGE < 4, "a cookie names its minute by 2 bits");

const MAC_BITS: u32 = 21;
const MAC_MASK: u32 = (1 << MAC_BITS) - 1;
const DATA_MASK: u32 = 0x1ff;
const NO_WSCALE: u8 = 15;

/// What a client's SYN offered, as a cookie keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer {
    /// The MSS (one of [`MSS_TABLE`]; no larger than what the client offered).
    pub mss: u16,
    /// The client's window scale, if it offered one (0–14).
    pub wscale: Option<u8>,
    pub sack: bool,
    pub timestamps: bool,
}

impl Offer {
    /// The offer as a cookie can keep it: the MSS rounded down to the table
    /// (the smallest entry if below it), a window scale above 14 taken as 14
    /// (RFC 7323).
    pub fn rounded(mss: u16, wscale: Option<u8>, sack: bool, timestamps: bool) -> Self {
        let i = mss_index(mss);
        Self { mss: MSS_TABLE[i], wscale: wscale.map(|w| w.min(14)), sack, timestamps }
    }

    fn data(&self) -> u32 {
        let ws = self.wscale.map_or(NO_WSCALE, |w| w.min(14));
        mss_index(self.mss) as u32 | u32::from(ws) << 3 | u32::from(self.sack) << 7 | u32::from(self.timestamps) << 8
    }

    fn from_data(d: u32) -> Self {
        let ws = ((d >> 3) & 0xf) as u8;
        Self {
            mss: MSS_TABLE[(d & 7) as usize],
            wscale: (ws != NO_WSCALE).then_some(ws),
            sack: d & 0x80 != 0,
            timestamps: d & 0x100 != 0,
        }
    }
}

fn mss_index(mss: u16) -> usize {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0)
}

/// The connection a cookie is for, as the client's SYN names it.
#[derive(Debug, Clone, Copy)]
pub struct Flow<'a> {
    pub src: &'a [u8],
    pub dst: &'a [u8],
    pub sport: u16,
    pub dport: u16,
}

/// The process's cookie secret.
#[derive(Debug, Clone, Copy)]
pub struct Secret {
    master: [u64; 2],
}

impl Secret {
    pub fn new(master: [u64; 2]) -> Self {
        Self { master }
    }

    /// The hour's key, derived from the master key.
    fn key(&self, hour: u32) -> (u64, u64) {
        let mut h = SipHasher13::new_with_keys(self.master[0], self.master[1]);
        h.write_u32(hour);
        let a = h.finish();
        h.write_u8(1);
        (a, h.finish())
    }

    fn mac(&self, f: &Flow<'_>, isn: u32, count: u32, data: u32) -> u32 {
        let (k0, k1) = self.key(count >> 6);
        let mut h = SipHasher13::new_with_keys(k0, k1);
        h.write(f.src);
        h.write(f.dst);
        h.write_u16(f.sport);
        h.write_u16(f.dport);
        h.write_u32(isn);
        h.write_u32(count);
        h.write_u32(data);
        h.finish() as u32 & MAC_MASK
    }

    /// The cookie for a SYN with sequence number `isn` at minute `count`.
    pub fn make(&self, f: &Flow<'_>, isn: u32, count: u32, offer: &Offer) -> u32 {
        let data = offer.data();
        (count & 3) << 30 | data << MAC_BITS | self.mac(f, isn, count, data)
    }

    /// What `cookie` (the client's ACK number less one) kept, if it is one
    /// this director made for the flow whose ISN was `isn` (the ACK's
    /// sequence number less one), at most [`MAX_AGE`] minutes before `count`.
    pub fn check(&self, f: &Flow<'_>, isn: u32, cookie: u32, count: u32) -> Option<Offer> {
        let data = (cookie >> MAC_BITS) & DATA_MASK;
        let made = (0..=MAX_AGE).map(|age| count.wrapping_sub(age)).find(|m| m & 3 == cookie >> 30)?;
        (self.mac(f, isn, made, data) == cookie & MAC_MASK).then(|| Offer::from_data(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: [u8; 4] = [198, 18, 0, 1];
    const DST: [u8; 4] = [198, 18, 0, 10];

    fn flow(sport: u16) -> Flow<'static> {
        Flow { src: &SRC, dst: &DST, sport, dport: 80 }
    }

    #[test]
    fn a_cookie_checks_and_gives_back_the_offer() {
        let s = Secret::new([1, 2]);
        let o = Offer::rounded(1460, Some(7), true, true);
        let c = s.make(&flow(40000), 12345, 100, &o);
        assert_eq!(s.check(&flow(40000), 12345, c, 100), Some(o));
        assert_eq!(s.check(&flow(40000), 12345, c, 100 + MAX_AGE), Some(o), "still good after MAX_AGE minutes");
        assert_eq!(s.check(&flow(40000), 12345, c, 101 + MAX_AGE), None, "too old");
        assert_eq!(s.check(&flow(40001), 12345, c, 100), None, "another port");
        assert_eq!(s.check(&flow(40000), 12346, c, 100), None, "another ISN");
        assert_eq!(Secret::new([1, 3]).check(&flow(40000), 12345, c, 100), None, "another secret");
    }

    #[test]
    fn a_cookie_made_before_the_hour_turns_checks_after() {
        let s = Secret::new([9, 9]);
        let o = Offer::rounded(536, None, false, false);
        let c = s.make(&flow(1), 7, 63, &o);
        assert_eq!(s.check(&flow(1), 7, c, 64), Some(o));
        assert_eq!(s.check(&flow(1), 7, c, 66), Some(o));
    }

    #[test]
    fn the_mss_rounds_down_to_the_table() {
        assert_eq!(Offer::rounded(1500, None, false, false).mss, 1460);
        assert_eq!(Offer::rounded(1459, None, false, false).mss, 1452);
        assert_eq!(Offer::rounded(100, None, false, false).mss, 536);
        assert_eq!(Offer::rounded(1460, Some(20), false, false).wscale, Some(14));
    }

    proptest! {
        #[test]
        fn every_offer_round_trips(mss in 0u16.., ws in proptest::option::of(0u8..15), sack: bool, ts: bool,
                                   isn: u32, count in 0u32..1_000_000, port: u16) {
            let s = Secret::new([isn as u64, 77]);
            let o = Offer::rounded(mss, ws, sack, ts);
            let c = s.make(&flow(port), isn, count, &o);
            prop_assert_eq!(s.check(&flow(port), isn, c, count), Some(o));
        }
    }

    /// A guessed cookie passes about once in 2^MAC_BITS tries (the MAC's
    /// width): 2^20 fixed guesses over many flows and ISNs, where about
    /// half a pass is expected. (Deterministic: random guesses made this a
    /// test that failed once in a hundred runs by design.)
    #[test]
    fn guessed_cookies_rarely_pass() {
        let s = Secret::new([5, 6]);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut passes = 0;
        for _ in 0..1u32 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (guess, isn, port) = (x as u32, (x >> 32) as u32, (x >> 48) as u16);
            passes += usize::from(s.check(&flow(port), isn, guess, 1000).is_some());
        }
        assert!(passes <= 4, "{passes} of 2^20 guessed cookies passed, about 0.5 expected");
    }
}
