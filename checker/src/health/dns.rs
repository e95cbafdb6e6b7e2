//! `DNS_CHECK`: one query (RFC 1035) for `name` of `type` over UDP,
//! answered within the timeout with the same identifier, as a response,
//! without an error code. (keepalived retries a DNS check 3 times by
//! default.)

use super::Target;
use tokio::net::UdpSocket;

/// The query message for `name` (`.` is the root) of type `qtype`, class IN.
pub fn query(id: u16, qtype: u16, name: &str) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend(id.to_be_bytes());
    q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        if label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.push(0);
    q.extend(qtype.to_be_bytes());
    q.extend(1u16.to_be_bytes());
    (q.len() <= 512).then_some(q)
}

/// Whether `r` answers query `id` without error.
pub fn answers(r: &[u8], id: u16) -> Result<(), String> {
    if r.len() < 12 || r[..2] != id.to_be_bytes() || r[2] & 0x80 == 0 {
        return Err("not a response to the query".into());
    }
    match r[3] & 0x0f {
        0 => Ok(()),
        rc => Err(format!("response code {rc}")),
    }
}

pub async fn check(t: &Target, qtype: u16, name: &str) -> Result<(), String> {
    let id = (std::process::id() as u16) ^ t.addr.port();
    let q = query(id, qtype, name).ok_or_else(|| format!("DNS_CHECK name '{name}' is not a DNS name"))?;
    let any = if t.addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    let s = UdpSocket::bind(any).await.map_err(|e| e.to_string())?;
    s.connect(t.addr).await.map_err(|e| format!("DNS connect to {}: {e}", t.name))?;
    s.send(&q).await.map_err(|e| format!("DNS query to {} failed: {e}.", t.name))?;
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(t.timeout, s.recv(&mut buf)).await {
        Ok(Ok(n)) => answers(&buf[..n], id).map_err(|e| format!("DNS check to {} failed: {e}.", t.name)),
        Ok(Err(e)) => Err(format!("DNS check to {} failed: {e}.", t.name)),
        Err(_) => Err(format!("DNS check to {} timed out.", t.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_and_the_answer() {
        let q = query(0x1234, 1, "www.example.com.").unwrap();
        assert_eq!(&q[..12], &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(&query(1, 6, ".").unwrap()[12..], &[0, 0, 6, 0, 1]);
        assert!(query(1, 1, &"a".repeat(64)).is_none());
        let mut r = q.clone();
        r[2] |= 0x80;
        assert_eq!(answers(&r, 0x1234), Ok(()));
        r[3] |= 3;
        assert_eq!(answers(&r, 0x1234), Err("response code 3".into()));
        assert!(answers(&q, 0x1234).is_err(), "a query is no answer");
        assert!(answers(&r[..5], 0x1234).is_err());
    }
}
