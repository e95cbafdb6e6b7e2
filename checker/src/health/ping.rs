//! `PING_CHECK`: one ICMP (or ICMPv6) echo request, answered within the
//! timeout. From an unprivileged ping socket where the system allows one
//! (`net.ipv4.ping_group_range`: the kernel fills in the identifier and
//! checksum), else from a raw socket (CAP_NET_RAW), matched by identifier.

use super::Target;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::ErrorKind;
use tokio::net::UdpSocket;

pub async fn check(t: &Target) -> Result<(), String> {
    let v6 = t.addr.is_ipv6();
    let (domain, proto) = if v6 { (Domain::IPV6, Protocol::ICMPV6) } else { (Domain::IPV4, Protocol::ICMPV4) };
    let (raw, is_raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied) || e.raw_os_error() == Some(13) => {
            let s =
                Socket::new(domain, Type::RAW, Some(proto)).map_err(|e| format!("ICMP socket for {}: {e}", t.name))?;
            (s, true)
        }
        Err(e) => return Err(format!("ICMP socket for {}: {e}", t.name)),
    };
    raw.set_nonblocking(true).map_err(|e| e.to_string())?;
    let s = UdpSocket::from_std(std::net::UdpSocket::from(raw)).map_err(|e| e.to_string())?;
    s.connect(std::net::SocketAddr::new(t.addr.ip(), 0))
        .await
        .map_err(|e| format!("ICMP connect to {}: {e}", t.name))?;
    let (echo, reply) = if v6 { (128u8, 129u8) } else { (8u8, 0u8) };
    let id = (std::process::id() as u16).to_be_bytes();
    let seq = t.addr.port().to_be_bytes();
    let mut req = [echo, 0, 0, 0, id[0], id[1], seq[0], seq[1], b'x', b'd', b'p', b'v', b's', 0, 0, 0];
    if is_raw && !v6 {
        // ICMPv4's checksum is ours to fill on a raw socket (ICMPv6's the kernel's).
        let c = !fold(req.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum());
        req[2..4].copy_from_slice(&c.to_be_bytes());
    }
    s.send(&req).await.map_err(|e| format!("ICMP echo to {} failed: {e}.", t.name))?;
    let mut buf = [0u8; 1500];
    let answered = async {
        loop {
            let n = s.recv(&mut buf).await?;
            // A raw IPv4 socket hands over the IP header too.
            let off = if is_raw && !v6 { usize::from(buf[0] & 0x0f) * 4 } else { 0 };
            let m = &buf[off.min(n)..n];
            let ours = !is_raw || m.get(4..6) == Some(&id[..]);
            if m.len() >= 8 && m[0] == reply && m[6..8] == seq && ours {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    match tokio::time::timeout(t.timeout, answered).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("ICMP echo to {} failed: {e}.", t.name)),
        Err(_) => Err(format!("ICMP echo to {} timed out.", t.name)),
    }
}

fn fold(mut x: u32) -> u16 {
    while x >> 16 != 0 {
        x = (x & 0xffff) + (x >> 16);
    }
    x as u16
}
