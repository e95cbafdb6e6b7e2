//! `HTTP_GET`: each `url` fetched within `connect_timeout` must answer a
//! status in its `status_code` ranges (default 200-299) and, with `digest`,
//! a body whose MD5 is that digest (as keepalived's `genhash` prints it).
//! The request is keepalived's: `GET PATH HTTP/1.0` (or 1.1 with
//! `Connection: close`), `User-Agent: KeepAliveClient`, `Host:` the
//! virtual host or the server's address. `SSL_GET` is the same over TLS
//! (`tls`). The response head is parsed by
//! `httparse`; a chunked body is de-chunked before it is hashed.

use super::Target;
use crate::conf::model::{Check, CheckKind, HttpProtocol, Url};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most of a response read (keepalived hashes whole pages, not files).
const MAX_RESPONSE: usize = 16 << 20;

pub async fn check(c: &Check, t: &Target) -> Result<(), String> {
    let CheckKind::Http { tls, urls, protocol, virtualhost, sni } = &c.kind else {
        return Err("not an HTTP check".into());
    };
    let default = [Url { path: "/".into(), digest: None, status: Vec::new(), virtualhost: None, regex: None }];
    let urls: &[Url] = if urls.is_empty() { &default } else { urls };
    for u in urls {
        let host = u.virtualhost.as_deref().or(virtualhost.as_deref());
        let tls = tls.then(|| sni.as_deref().or(host));
        let resp = tokio::time::timeout(t.timeout, fetch(t, &request(u, host, *protocol, t), tls))
            .await
            .map_err(|_| format!("Timeout connecting server {} url({}).", t.name, u.path))??;
        judge(u, &resp, t)?;
    }
    Ok(())
}

fn request(u: &Url, host: Option<&str>, p: HttpProtocol, t: &Target) -> Vec<u8> {
    let host = host.map_or_else(|| authority(t), str::to_string);
    let (version, close) = match p {
        HttpProtocol::V10 => ("1.0", ""),
        HttpProtocol::V10Close => ("1.0", "Connection: close\r\n"),
        HttpProtocol::V11 => ("1.1", "Connection: close\r\n"),
    };
    format!("GET {} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\nHost: {host}\r\n{close}\r\n", u.path).into_bytes()
}

/// `ADDR:PORT` as a Host header writes it.
fn authority(t: &Target) -> String {
    match t.addr {
        std::net::SocketAddr::V4(a) => a.to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// The whole response to `req`; `tls`: over TLS, with this SNI name if any.
async fn fetch(t: &Target, req: &[u8], tls: Option<Option<&str>>) -> Result<Vec<u8>, String> {
    let s = super::tcp::connect(t).await.map_err(|_| format!("Error connecting server {}.", t.name))?;
    match tls {
        None => exchange(s, req, t).await,
        Some(sni) => {
            let s = super::tls::wrap(s, t.addr.ip(), sni)
                .await
                .map_err(|e| format!("SSL handshake with server {} failed: {e}.", t.name))?;
            exchange(s, req, t).await
        }
    }
}

async fn exchange<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    mut s: S,
    req: &[u8],
    t: &Target,
) -> Result<Vec<u8>, String> {
    s.write_all(req).await.map_err(|e| format!("Error sending request to server {}: {e}.", t.name))?;
    let mut buf = Vec::new();
    // A TLS server may close without close_notify once the body is sent.
    match (&mut s).take(MAX_RESPONSE as u64).read_to_end(&mut buf).await {
        Ok(_) => Ok(buf),
        Err(_) if !buf.is_empty() => Ok(buf),
        Err(e) => Err(format!("Error reading data from {}: {e}.", t.name)),
    }
}

/// The response against the url's expectations.
fn judge(u: &Url, resp: &[u8], t: &Target) -> Result<(), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(resp) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err(format!("Invalid HTTP response from {} url({}).", t.name, u.path)),
    };
    let code = r.code.unwrap_or(0);
    let ok = if u.status.is_empty() {
        (200..300).contains(&code)
    } else {
        u.status.iter().any(|&(a, b)| (a..=b).contains(&code))
    };
    if !ok {
        return Err(format!("HTTP status code error to {} url({}), status_code [{code}].", t.name, u.path));
    }
    if u.digest.is_none() && u.regex.is_none() {
        return Ok(());
    }
    let chunked = r.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value).to_ascii_lowercase().contains("chunked")
    });
    let body = &resp[head..];
    let body = if chunked {
        dechunk(body).ok_or_else(|| format!("Bad chunked body from {}.", t.name))?
    } else {
        body.to_vec()
    };
    if let Some(want) = &u.digest {
        let got = hex(&Md5::digest(&body));
        if &got != want {
            return Err(format!("MD5 digest error to {} url[{}], MD5SUM [{got}].", t.name, u.path));
        }
    }
    if let Some(re) = u.regex.as_ref().filter(|re| !re.passes(&body)) {
        let how = if re.no_match { "found" } else { "not found" };
        return Err(format!("Regex match failed to {} url({}): '{}' {how}.", t.name, u.path, re.pattern));
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A chunked body's data (RFC 9112 §7.1); `None` when malformed.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            addr: "198.19.0.11:80".parse().unwrap(),
            bind: None,
            timeout: std::time::Duration::from_secs(1),
            name: "[198.19.0.11]:tcp:80".into(),
        }
    }

    #[test]
    fn status_ranges_and_digest() {
        let t = target();
        let mut u = Url { path: "/".into(), digest: None, status: Vec::new(), virtualhost: None, regex: None };
        assert!(judge(&u, b"HTTP/1.1 200 OK\r\n\r\nhello", &t).is_ok());
        let e = judge(&u, b"HTTP/1.1 500 Oops\r\n\r\n", &t).unwrap_err();
        assert_eq!(e, "HTTP status code error to [198.19.0.11]:tcp:80 url(/), status_code [500].");
        u.status = vec![(500, 500)];
        assert!(judge(&u, b"HTTP/1.1 500 Oops\r\n\r\n", &t).is_ok());
        u.status.clear();
        // MD5("hello") = 5d41402abc4b2a76b9719d911017c592.
        u.digest = Some("5d41402abc4b2a76b9719d911017c592".into());
        assert!(judge(&u, b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", &t).is_ok());
        assert!(judge(
            &u,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
            &t
        )
        .is_ok());
        assert!(judge(&u, b"HTTP/1.0 200 OK\r\n\r\nhellO", &t).unwrap_err().starts_with("MD5 digest error"));
        assert!(judge(&u, b"garbage", &t).is_err());
    }

    #[test]
    fn the_request_is_keepalived_s() {
        let u = Url { path: "/health".into(), digest: None, status: Vec::new(), virtualhost: None, regex: None };
        let r = request(&u, None, HttpProtocol::V10, &target());
        assert_eq!(r, b"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 198.19.0.11:80\r\n\r\n");
        let r = request(&u, Some("www.example.com"), HttpProtocol::V11, &target());
        assert!(r.ends_with(b"Host: www.example.com\r\nConnection: close\r\n\r\n"));
    }
}
