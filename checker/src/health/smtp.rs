//! `SMTP_CHECK`: keepalived's dialogue — the server's greeting must be 220,
//! `HELO name` must be answered 250, and `QUIT` must be answered; every
//! read and write is bounded by `connect_timeout`.
//!
//! Unlike keepalived, which reads only a reply's first line, a multi-line
//! reply (RFC 5321 4.2.1: `220-…` lines, then `220 …`) is read whole, so a
//! server that greets on several lines passes.

use super::{tcp, Target};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// A reply longer than this is not an SMTP server's: the check fails
/// rather than read on.
const REPLY_MAX: usize = 4096;

pub async fn check(t: &Target, helo: &str) -> Result<(), String> {
    let s = tcp::connect(t).await.map_err(|_| format!("Could not connect to server {}", t.name))?;
    let (r, mut w) = s.into_split();
    dialogue(&mut BufReader::new(r), &mut w, helo, t.timeout, &t.name).await
}

/// The dialogue over a connected stream (`r`, `w`) with server `name`.
async fn dialogue<R, W>(r: &mut R, w: &mut W, helo: &str, timeout: Duration, name: &str) -> Result<(), String>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if reply(r, timeout, name).await? != Some(220) {
        return Err(format!("Bad greeting banner from server {name}"));
    }
    send(w, format!("HELO {helo}\r\n").as_bytes(), timeout, name).await?;
    if reply(r, timeout, name).await? != Some(250) {
        return Err(format!("Bad HELO response from server {name}"));
    }
    send(w, b"QUIT\r\n", timeout, name).await?;
    reply(r, timeout, name).await.map(drop)
}

pub(crate) async fn send<W: AsyncWrite + Unpin>(
    w: &mut W,
    line: &[u8],
    timeout: Duration,
    name: &str,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, w.write_all(line)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(format!("Write failure to server {name}")),
        Err(_) => Err(format!("Write timeout to server {name}")),
    }
}

/// One reply's code: `None` when a line does not start with a code and
/// a space or dash (or the lines' codes differ).
pub(crate) async fn reply<R: AsyncBufRead + Unpin>(
    r: &mut R,
    timeout: Duration,
    name: &str,
) -> Result<Option<u16>, String> {
    let mut text = Vec::new();
    let mut code = None;
    loop {
        let start = text.len();
        let mut limited = (&mut *r).take((REPLY_MAX - start) as u64);
        match tokio::time::timeout(timeout, limited.read_until(b'\n', &mut text)).await {
            Err(_) => return Err(format!("Read timeout from server {name}")),
            Ok(Err(_) | Ok(0)) => return Err(format!("Read failure from server {name}")),
            Ok(Ok(_)) if !text.ends_with(b"\n") => return Err(format!("Read failure from server {name}")),
            Ok(Ok(_)) => {}
        }
        let Some((c, more)) = reply_line(&text[start..]) else { return Ok(None) };
        if code.is_some_and(|k| k != c) {
            return Ok(None);
        }
        code = Some(c);
        if !more {
            return Ok(code);
        }
    }
}

/// A reply line's code, and whether more lines follow (`NNN-`), or `None`
/// for a line that is not a reply's.
fn reply_line(line: &[u8]) -> Option<(u16, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (digits, rest) = line.split_at_checked(3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match rest.first() {
        None | Some(b' ') => Some((code, false)),
        Some(b'-') => Some((code, true)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, split};

    /// The dialogue against a server that answers each client line with
    /// the next of `answers` (the first before the client speaks), and
    /// hangs up on the line after its last; returns the verdict and what
    /// the client sent.
    async fn against(answers: &'static [&'static str]) -> (Result<(), String>, String) {
        let (client, server) = duplex(8192);
        let srv = tokio::spawn(async move {
            let (r, mut w) = split(server);
            let mut r = BufReader::new(r);
            let mut heard = String::new();
            for (i, a) in answers.iter().enumerate() {
                if i > 0 && r.read_line(&mut heard).await.unwrap_or(0) == 0 {
                    break;
                }
                if w.write_all(a.as_bytes()).await.is_err() {
                    break;
                }
            }
            // Out of answers: hear the client's next line, then hang up.
            let _ = r.read_line(&mut heard).await;
            heard
        });
        let (r, mut w) = split(client);
        let v = dialogue(&mut BufReader::new(r), &mut w, "foo.bar.com", Duration::from_secs(2), "[198.19.0.11]:tcp:25")
            .await;
        drop(w);
        (v, srv.await.unwrap())
    }

    #[tokio::test]
    async fn a_server_that_greets_answers_helo_and_quit_passes() {
        let (v, heard) = against(&["220 mx.example.com ESMTP\r\n", "250 mx.example.com\r\n", "221 Bye\r\n"]).await;
        assert_eq!(v, Ok(()));
        assert_eq!(heard, "HELO foo.bar.com\r\nQUIT\r\n");
    }

    #[tokio::test]
    async fn a_multi_line_greeting_passes() {
        const GREET: &str = "220-mx.example.com ESMTP\r\n220-no UCE\r\n220 ready\r\n";
        let (v, _) = against(&[GREET, "250 ok\n", "221 Bye\n"]).await;
        assert_eq!(v, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn each_failure_is_named_in_keepalived_words() {
        let name = "[198.19.0.11]:tcp:25";
        let cases: [(&'static [&'static str], String); 6] = [
            (&["554 no service\r\n"], format!("Bad greeting banner from server {name}")),
            (&["220-first\r\n250 other\r\n"], format!("Bad greeting banner from server {name}")),
            (&["hello\r\n"], format!("Bad greeting banner from server {name}")),
            (&["220 ok\r\n", "550 go away\r\n"], format!("Bad HELO response from server {name}")),
            (&["220 ok\r\n", "250 ok\r\n"], format!("Read failure from server {name}")),
            (&["220 ok\r\n", "250 ok\r\n221 Bye"], format!("Read failure from server {name}")),
        ];
        for (answers, want) in cases {
            assert_eq!(against(answers).await.0, Err(want), "{answers:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out() {
        let (client, _server) = duplex(64);
        let (r, mut w) = split(client);
        let v = dialogue(&mut BufReader::new(r), &mut w, "x", Duration::from_secs(3), "s").await;
        assert_eq!(v, Err("Read timeout from server s".into()));
    }

    #[tokio::test]
    async fn an_endless_reply_is_cut_off() {
        let (client, server) = duplex(1 << 16);
        tokio::spawn(async move {
            let (_r, mut w) = split(server);
            let line = format!("220-{}\r\n", "x".repeat(200));
            while w.write_all(line.as_bytes()).await.is_ok() {}
        });
        let (r, mut w) = split(client);
        let v = dialogue(&mut BufReader::new(r), &mut w, "x", Duration::from_secs(2), "s").await;
        assert_eq!(v, Err("Read failure from server s".into()));
    }

    #[test]
    fn reply_lines() {
        assert_eq!(reply_line(b"220 ok\r\n"), Some((220, false)));
        assert_eq!(reply_line(b"220\r\n"), Some((220, false)));
        assert_eq!(reply_line(b"250-more\n"), Some((250, true)));
        for bad in [&b"22 ok\r\n"[..], b"2200 ok\r\n", b"abc ok\r\n", b"220ok\r\n", b"220 ok", b""] {
            assert_eq!(reply_line(bad), None, "{bad:?}");
        }
    }
}
