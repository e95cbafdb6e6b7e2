//! TCP header (RFC 9293) with a checked option walker.

use super::{be16, be32, put16, Error};

pub const MIN_HEADER_LEN: usize = 20;
/// Offset of the checksum field (quoted-header rewrites need it).
pub const CHECKSUM_OFFSET: usize = 16;

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// A view of a TCP segment.
#[derive(Debug)]
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks that the header, with its options, fits in the buffer, and
    /// that every option's length is whole (at least 2, inside the header).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let s = Self::new_unchecked(buffer);
        let len = s.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = s.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        if !options_well_formed(&s.buffer.as_ref()[MIN_HEADER_LEN..hl]) {
            return Err(Error::BadOption);
        }
        Ok(s)
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn src_port(&self) -> u16 {
        be16(self.b(), 0)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.b(), 2)
    }

    pub fn seq(&self) -> u32 {
        be32(self.b(), 4)
    }

    pub fn ack_number(&self) -> u32 {
        be32(self.b(), 8)
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.b()[12] >> 4) * 4
    }

    pub fn flags(&self) -> u8 {
        self.b()[13]
    }

    pub fn window(&self) -> u16 {
        be16(self.b(), 14)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.b(), CHECKSUM_OFFSET)
    }

    /// The option bytes, walked by [`TcpOptions`].
    pub fn options(&self) -> TcpOptions<'_> {
        TcpOptions { rest: &self.b()[MIN_HEADER_LEN..self.header_len()] }
    }

    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 0, p);
    }

    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 2, p);
    }

    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), CHECKSUM_OFFSET, c);
    }
}

/// Every option of `opts` ends inside it: EOL and NOP are one byte, any
/// other kind has a length byte of at least 2 (RFC 9293 §3.1).
fn options_well_formed(opts: &[u8]) -> bool {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return true,
            1 => i += 1,
            _ => match opts.get(i + 1) {
                Some(&l) if l >= 2 && i + usize::from(l) <= opts.len() => i += usize::from(l),
                _ => return false,
            },
        }
    }
    true
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Sack(&'a [u8]),
    Timestamps(u32, u32),
    Other { kind: u8, data: &'a [u8] },
}

/// Iterator over TCP options; yields `Err(BadOption)` once and stops on a
/// malformed length.
#[derive(Debug)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, tail) = self.rest.split_first()?;
        match kind {
            0 => {
                self.rest = &[];
                Some(Ok(TcpOption::EndOfList))
            }
            1 => {
                self.rest = tail;
                Some(Ok(TcpOption::Nop))
            }
            _ => {
                let len = match tail.first() {
                    Some(&l) if usize::from(l) >= 2 && usize::from(l) <= self.rest.len() => usize::from(l),
                    _ => {
                        self.rest = &[];
                        return Some(Err(Error::BadOption));
                    }
                };
                let data = &self.rest[2..len];
                self.rest = &self.rest[len..];
                let opt = match (kind, data.len()) {
                    (2, 2) => TcpOption::Mss(be16(data, 0)),
                    (3, 1) => TcpOption::WindowScale(data[0]),
                    (4, 0) => TcpOption::SackPermitted,
                    (5, n) if n % 8 == 0 => TcpOption::Sack(data),
                    (8, 8) => TcpOption::Timestamps(be32(data, 0), be32(data, 4)),
                    (2..=5 | 8, _) => return Some(Err(Error::BadOption)),
                    _ => TcpOption::Other { kind, data },
                };
                Some(Ok(opt))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SYN with MSS 1460, SACK-permitted, timestamps, NOP, window scale 7.
    static SYN: [u8; 40] = [
        0xc3, 0x50, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2, 4, 0x05, 0xb4, 4, 2, 8,
        10, 0, 0, 0, 9, 0, 0, 0, 0, 1, 3, 3, 7,
    ];

    #[test]
    fn walks_syn_options() {
        let s = TcpSegment::new_checked(&SYN[..]).unwrap();
        assert_eq!((s.src_port(), s.dst_port()), (50000, 80));
        assert_eq!(s.flags(), flags::SYN);
        let opts: Vec<_> = s.options().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps(9, 0),
                TcpOption::Nop,
                TcpOption::WindowScale(7)
            ]
        );
    }

    #[test]
    fn bad_option_length_stops_walk() {
        let mut seg = SYN;
        seg[21] = 60; // MSS length past the end
        assert_eq!(TcpSegment::new_checked(&seg[..]).err(), Some(Error::BadOption), "refused when checked");
        let s = TcpSegment::new_unchecked(&seg[..]);
        let mut it = s.options();
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
        assert_eq!(it.next(), None);
        seg[21] = 3; // MSS with wrong length
        let s = TcpSegment::new_unchecked(&seg[..]);
        assert_eq!(s.options().next(), Some(Err(Error::BadOption)));
    }

    #[test]
    fn data_offset_checked() {
        let mut seg = SYN;
        seg[12] = 0x40;
        assert_eq!(TcpSegment::new_checked(&seg[..]).unwrap_err(), Error::BadHeaderLen);
        seg[12] = 0xf0;
        assert_eq!(TcpSegment::new_checked(&seg[..]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn options_with_a_length_below_two_are_malformed() {
        let mut seg = [0u8; 28];
        seg[12] = 7 << 4; // 28-byte header
        seg[20..24].copy_from_slice(&[2, 4, 5, 180]); // MSS 1460
        seg[24..28].copy_from_slice(&[1, 1, 0, 0]);
        assert!(TcpSegment::new_checked(&seg[..]).is_ok());
        for bad in [[1, 30, 0, 0], [1, 8, 1, 0], [1, 1, 1, 8]] {
            seg[24..28].copy_from_slice(&bad);
            assert_eq!(TcpSegment::new_checked(&seg[..]).err(), Some(Error::BadOption), "{bad:?}");
        }
        seg[24..28].copy_from_slice(&[1, 1, 19, 0]);
        assert_eq!(TcpSegment::new_checked(&seg[..]).err(), Some(Error::BadOption), "length 0");
        seg[24..28].copy_from_slice(&[1, 1, 19, 1]);
        assert_eq!(TcpSegment::new_checked(&seg[..]).err(), Some(Error::BadOption), "length 1");
    }
}
