//! `UDP_CHECK`: `payload` sent from a connected socket; the kernel reports
//! an ICMP port-unreachable for it as a refused receive, which fails the
//! check. Without `require_reply` silence until the timeout passes; with
//! it a reply must come, start with those bytes, and have a length in
//! `min_reply_length..=max_reply_length`.

use super::Target;
use tokio::net::UdpSocket;

pub async fn check(
    t: &Target,
    payload: &[u8],
    require: Option<&[u8]>,
    (min, max): (usize, usize),
) -> Result<(), String> {
    let any = if t.addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    let local = t.bind.map_or_else(|| any.to_string(), |b| b.to_string());
    let s = UdpSocket::bind(&local).await.map_err(|e| format!("UDP socket for {}: {e}", t.name))?;
    s.connect(t.addr).await.map_err(|e| format!("UDP connect to {}: {e}", t.name))?;
    s.send(payload).await.map_err(|e| format!("UDP send to {} failed: {e}.", t.name))?;
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(t.timeout, s.recv(&mut buf)).await {
        Ok(Ok(n)) => match require {
            Some(want) if !buf[..n].starts_with(want) => Err(format!("UDP check to {}: unexpected reply.", t.name)),
            Some(_) if n < min || n > max => Err(format!("UDP check to {}: reply of {n} bytes.", t.name)),
            _ => Ok(()),
        },
        Ok(Err(e)) => Err(format!("UDP check to {} failed: {e}.", t.name)),
        Err(_) if require.is_some() => Err(format!("UDP check to {}: no reply.", t.name)),
        Err(_) => Ok(()),
    }
}
