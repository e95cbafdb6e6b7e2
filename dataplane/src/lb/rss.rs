//! Receive-side scaling: the Toeplitz hash NICs use to pick a receive queue,
//! so FULLNAT can choose local ports whose replies arrive on the queue of
//! the core that owns the session (no handoff).
//!
//! Input for TCP/UDP, as NICs hash it: source address, destination address,
//! source port, destination port, all in network order.

/// A NIC's RSS configuration, as `ethtool -x` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rss {
    /// The hash key (40 bytes on most NICs).
    pub key: Vec<u8>,
    /// Indirection table: entry `hash % len` names the receive queue.
    pub indir: Vec<u16>,
}

/// The Toeplitz hash of `input` under `key` (key must be ≥ input + 4 bytes).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut result = 0u32;
    // The 32-bit window of the key aligned with the current input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                result ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    result
}

impl Rss {
    /// The queue a TCP/UDP packet `src:sport → dst:dport` lands on.
    pub fn queue(&self, src: &[u8], dst: &[u8], sport: u16, dport: u16) -> Option<u16> {
        if self.indir.is_empty() || self.key.len() < src.len() + dst.len() + 4 + 4 {
            return None;
        }
        let mut input = [0u8; 36];
        let n = src.len() + dst.len() + 4;
        input[..src.len()].copy_from_slice(src);
        input[src.len()..src.len() + dst.len()].copy_from_slice(dst);
        input[n - 4..n - 2].copy_from_slice(&sport.to_be_bytes());
        input[n - 2..n].copy_from_slice(&dport.to_be_bytes());
        let h = toeplitz(&self.key, &input[..n]);
        Some(self.indir[h as usize % self.indir.len()])
    }
}

/// Parses `ethtool -x DEV` output.
pub fn parse_ethtool_x(text: &str) -> Option<Rss> {
    let mut indir = Vec::new();
    let mut key = Vec::new();
    let mut in_key = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("RSS hash key") {
            in_key = true;
            continue;
        }
        if in_key {
            if l.is_empty() || l.starts_with("RSS hash function") {
                in_key = false;
                continue;
            }
            for b in l.split(':') {
                key.push(u8::from_str_radix(b.trim(), 16).ok()?);
            }
            continue;
        }
        if let Some((idx, rest)) = l.split_once(':') {
            if idx.trim().parse::<usize>().is_ok() {
                for q in rest.split_whitespace() {
                    indir.push(q.parse().ok()?);
                }
            }
        }
    }
    (!indir.is_empty() && key.len() >= 12).then_some(Rss { key, indir })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's RSS verification key and first IPv4/TCP vector.
    const KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca,
        0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b,
        0xbe, 0xac, 0x01, 0xfa,
    ];

    #[test]
    fn microsoft_verification_vector() {
        // Source 66.9.149.187:2794, destination 161.142.100.80:1766.
        let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(toeplitz(&KEY, &input[..8]), 0x323e_8fc2, "IPv4 addresses only");
        assert_eq!(toeplitz(&KEY, &input), 0x51cc_c178, "IPv4 with TCP ports");
    }

    #[test]
    fn queue_and_ethtool_parsing() {
        let text = "RX flow hash indirection table for eth1 with 2 RX ring(s):\n    0:      0     1     0     1\n    4:      1     0     1     0\nRSS hash key:\n6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa\nRSS hash function:\n    toeplitz: on\n";
        let rss = parse_ethtool_x(text).expect("parses");
        assert_eq!(rss.key, KEY.to_vec());
        assert_eq!(rss.indir, vec![0, 1, 0, 1, 1, 0, 1, 0]);
        let q = rss.queue(&[66, 9, 149, 187], &[161, 142, 100, 80], 2794, 1766).unwrap();
        assert_eq!(q, rss.indir[0x51cc_c178usize % 8]);
        assert!(parse_ethtool_x("Cannot get RX ring count: Operation not supported").is_none());
    }
}
