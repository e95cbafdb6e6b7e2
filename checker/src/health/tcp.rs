//! `TCP_CHECK`: the server accepts a connection within `connect_timeout`.

use super::Target;
use tokio::net::{TcpSocket, TcpStream};

/// A connection to `t`, from its bind address if it has one.
pub async fn connect(t: &Target) -> Result<TcpStream, String> {
    let sock = if t.addr.is_ipv6() { TcpSocket::new_v6() } else { TcpSocket::new_v4() }
        .map_err(|e| format!("TCP socket for {}: {e}", t.name))?;
    if let Some(b) = t.bind {
        sock.bind(b).map_err(|e| format!("TCP bind to {b} for {}: {e}", t.name))?;
    }
    match tokio::time::timeout(t.timeout, sock.connect(t.addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(_)) | Err(_) => Err(format!("TCP connection to {} failed.", t.name)),
    }
}

pub async fn check(t: &Target) -> Result<(), String> {
    connect(t).await.map(drop)
}
