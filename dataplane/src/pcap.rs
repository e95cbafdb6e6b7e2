//! Minimal pcap (libpcap classic format) writer, for captures of what the
//! engine did (`xdpvs simulate --pcap`), readable by tcpdump and tshark.

use std::io::{self, Write};

/// Writes a pcap stream of Ethernet frames.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        // Magic, version 2.4, GMT offset 0, accuracy 0, snaplen 65535, LINKTYPE_ETHERNET.
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&65535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(Self { out })
    }

    /// Appends one frame stamped `micros` after the epoch.
    pub fn write(&mut self, micros: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u32;
        self.out.write_all(&((micros / 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&((micros % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(frame)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(1_500_000, &[1, 2, 3]).unwrap();
        let b = w.into_inner();
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&b[24..28], &1u32.to_le_bytes());
        assert_eq!(&b[28..32], &500_000u32.to_le_bytes());
    }
}
