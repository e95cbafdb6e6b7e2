//! Ethernet II frames and 802.1Q / 802.1ad VLAN tags.

use super::{be16, put16, Error, Field};

pub const HEADER_LEN: usize = 14;
pub const VLAN_TAG_LEN: usize = 4;
/// Tags the walker accepts in front of the payload (802.1ad + 802.1Q).
pub const MAX_VLAN_TAGS: usize = 2;

pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
}

mod field {
    use super::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: usize = 12;
}

/// A MAC address.
pub type Mac = [u8; 6];

/// A view of an Ethernet II frame.
#[derive(Debug)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks that the fixed header and any VLAN tags fit.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let f = Self::new_unchecked(buffer);
        f.payload_offset()?;
        Ok(f)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst(&self) -> Mac {
        mac_at(self.buffer.as_ref(), field::DST)
    }

    pub fn src(&self) -> Mac {
        mac_at(self.buffer.as_ref(), field::SRC)
    }

    /// The outer EtherType (0x8100 when tagged).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The EtherType of an untagged frame with a whole header; `None` for
    /// a tagged or short one.
    #[inline]
    pub fn untagged_ethertype(&self) -> Option<u16> {
        let b = self.buffer.as_ref().get(..HEADER_LEN)?;
        Some(be16(b, field::ETHERTYPE)).filter(|&t| t != ethertype::VLAN && t != ethertype::QINQ)
    }

    /// Walks up to [`MAX_VLAN_TAGS`] tags: returns the inner EtherType, the
    /// offset of the payload and the innermost VLAN ID (if tagged).
    pub fn payload_offset(&self) -> Result<(u16, usize, Option<u16>), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let mut ty = be16(b, field::ETHERTYPE);
        let mut off = HEADER_LEN;
        let mut vid = None;
        for _ in 0..MAX_VLAN_TAGS {
            if ty != ethertype::VLAN && ty != ethertype::QINQ {
                break;
            }
            let tag = VlanTag::new_checked(&b[off..])?;
            vid = Some(tag.vid());
            ty = tag.ethertype();
            off += VLAN_TAG_LEN;
        }
        Ok((ty, off, vid))
    }

    pub fn payload(&self) -> &[u8] {
        let off = self.payload_offset().map(|p| p.1).unwrap_or(HEADER_LEN);
        &self.buffer.as_ref()[off..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, mac: Mac) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }

    pub fn set_src(&mut self, mac: Mac) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }

    pub fn set_ethertype(&mut self, ty: u16) {
        put16(self.buffer.as_mut(), field::ETHERTYPE, ty);
    }
}

fn mac_at(b: &[u8], f: Field) -> Mac {
    let mut m = [0; 6];
    m.copy_from_slice(&b[f]);
    m
}

/// A view of one 802.1Q tag (TCI + inner EtherType) following the MACs.
#[derive(Debug)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < VLAN_TAG_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self { buffer })
    }

    pub fn pcp(&self) -> u8 {
        self.buffer.as_ref()[0] >> 5
    }

    pub fn vid(&self) -> u16 {
        be16(self.buffer.as_ref(), 0) & 0x0fff
    }

    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: &Mac) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    static TAGGED: [u8; 22] =
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x81, 0x00, 0x20, 0x0a, 0x08, 0x00, 0x45, 0, 0, 20];

    #[test]
    fn walks_vlan_tag() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.payload_offset().unwrap(), (ethertype::IPV4, 18, Some(10)));
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.payload()[0], 0x45);
    }

    #[test]
    fn truncated_tag_is_refused() {
        assert_eq!(EthernetFrame::new_checked(&TAGGED[..16]).unwrap_err(), Error::Truncated);
        assert!(EthernetFrame::new_checked(&TAGGED[..13]).is_err());
    }

    #[test]
    fn mac_text_round_trip() {
        let m = parse_mac("02:00:0a:ff:00:01").unwrap();
        assert_eq!(fmt_mac(&m), "02:00:0a:ff:00:01");
        assert!(parse_mac("02:00:0a:ff:00").is_none());
        assert!(parse_mac("02:00:0a:ff:00:01:02").is_none());
    }
}
