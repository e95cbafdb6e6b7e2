//! UDP header (RFC 768).

use super::{be16, put16, Error};

pub const HEADER_LEN: usize = 8;
pub const CHECKSUM_OFFSET: usize = 6;

/// A view of a UDP datagram.
#[derive(Debug)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks the header fits and the length field is within the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = Self::new_unchecked(buffer);
        let len = d.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(d.len());
        if l < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if l > len {
            return Err(Error::Truncated);
        }
        Ok(d)
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

    pub fn len(&self) -> u16 {
        be16(self.b(), 4)
    }

    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        be16(self.b(), CHECKSUM_OFFSET)
    }

    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..usize::from(self.len()).clamp(HEADER_LEN, self.b().len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 0, p);
    }

    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 2, p);
    }

    pub fn set_len(&mut self, l: u16) {
        put16(self.buffer.as_mut(), 4, l);
    }

    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), CHECKSUM_OFFSET, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_field_checked() {
        let b = [0x13, 0x88, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0xab, 0xcd];
        let d = UdpDatagram::new_checked(&b[..]).unwrap();
        assert_eq!((d.src_port(), d.dst_port(), d.payload()), (5000, 53, &[0xab, 0xcd][..]));
        assert_eq!(UdpDatagram::new_checked(&b[..9]).unwrap_err(), Error::Truncated);
        let mut bad = b;
        bad[5] = 4;
        assert_eq!(UdpDatagram::new_checked(&bad[..]).unwrap_err(), Error::BadLength);
    }
}
