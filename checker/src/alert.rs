//! keepalived's e-mail alerts, sent as keepalived sends them: one SMTP
//! conversation a mail (greeting 220; `HELO` 250; `MAIL FROM` 250; a
//! `RCPT TO` for each address, 250; `DATA` 354; the message, 250; `QUIT`
//! 221), every step bounded by `smtp_connect_timeout`, with keepalived's
//! headers (`Date`, `From`, `Subject`, `X-Mailer: Keepalived`, `To`) and
//! subjects (`[ROUTER_ID] Realserver RS of virtual server VS - UP|DOWN`,
//! `[ROUTER_ID] Virtualserver VS - UP|DOWN`), so that the filters and
//! pagers built on keepalived's mail keep working. A mail is sent by a task
//! of its own: an unreachable mail server delays no check.

use crate::conf::alerts::Alerts;
use crate::conf::model::CheckKind;
use crate::health::smtp::{reply, send};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufRead, AsyncWrite, BufReader};

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

/// A real server's alert: `up` is the server's state after the change.
pub fn real_server(a: &Alerts, rs: &str, vs: &str, up: bool, body: &str) -> Mail {
    let state = if up { "UP" } else { "DOWN" };
    Mail { subject: format!("[{}] Realserver {rs} of virtual server {vs} - {state}", a.router_id), body: body.into() }
}

/// A virtual server's alert (its quorum).
pub fn virtual_server(a: &Alerts, vs: &str, up: bool, body: &str) -> Mail {
    let state = if up { "UP" } else { "DOWN" };
    Mail { subject: format!("[{}] Virtualserver {vs} - {state}", a.router_id), body: body.into() }
}

/// keepalived's body for checker `kind` passing (`up`) or failing; `None`
/// for the checkers keepalived mails nothing for.
pub fn check_body(kind: &CheckKind, up: bool) -> Option<&'static str> {
    Some(match (kind, up) {
        (CheckKind::Tcp, true) => "=> TCP CHECK succeed on service <=",
        (CheckKind::Tcp, false) => "=> TCP CHECK failed on service <=",
        (CheckKind::Http { .. } | CheckKind::Smtp { .. }, true) => "=> CHECK succeed on service <=",
        (CheckKind::Http { .. }, false) => "=> CHECK failed on service : HTTP request failed <=",
        (CheckKind::Smtp { .. }, false) => "=> CHECK failed on service <=",
        (CheckKind::Misc { .. }, true) => "=> MISC CHECK succeeded on service <=",
        (CheckKind::Misc { .. }, false) => "=> MISC CHECK failed on service <=",
        (CheckKind::Udp { .. }, true) => "=> UDP CHECK succeed on service <=",
        (CheckKind::Udp { .. }, false) => "=> UDP CHECK failed on service <=",
        (CheckKind::Ping, true) => "=> ICMP CHECK succeed on service <=",
        (CheckKind::Ping, false) => "=> ICMP CHECK failed on service <=",
        (CheckKind::Dns { .. }, true) => "=> DNS_CHECK: succeed on service <=",
        (CheckKind::Dns { .. }, false) => "=> DNS_CHECK: failed on service <=",
        (CheckKind::File { .. } | CheckKind::Unsupported(_), _) => return None,
    })
}

/// Sends `m` from a task of its own, logging the outcome.
pub fn spawn(a: &Alerts, m: Mail) {
    let a = a.clone();
    tokio::spawn(async move {
        match deliver(&a, &m).await {
            Ok(()) => tracing::info!("SMTP alert successfully sent."),
            Err(e) => tracing::warn!("{e}"),
        }
    });
}

/// One mail's conversation with the server.
pub async fn deliver(a: &Alerts, m: &Mail) -> Result<(), String> {
    let Some((host, port)) = &a.server else { return Ok(()) };
    let name = format!("[{host}]:{port}");
    let connect = async {
        let addr = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .ok()
            .and_then(|mut it| it.next())
            .ok_or_else(|| format!("Error connecting SMTP server {name}: no address"))?;
        tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("Error connecting SMTP server {name}: {e}"))
    };
    let s = match tokio::time::timeout(a.timeout, connect).await {
        Ok(s) => s?,
        Err(_) => return Err(format!("Timeout connecting SMTP server {name}")),
    };
    let (r, mut w) = s.into_split();
    conversation(&mut BufReader::new(r), &mut w, a, m, &rfc822(SystemTime::now()), &name).await
}

async fn conversation<R, W>(r: &mut R, w: &mut W, a: &Alerts, m: &Mail, date: &str, name: &str) -> Result<(), String>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let t = a.timeout;
    expect(reply(r, t, name).await?, 220, "(E)SMTP", name)?;
    let mut steps: Vec<(String, u16, &str)> =
        vec![(format!("HELO {}\r\n", a.helo), 250, "HELO"), (format!("MAIL FROM:<{}>\r\n", a.from), 250, "MAIL")];
    steps.extend(a.to.iter().map(|to| (format!("RCPT TO:<{to}>\r\n"), 250, "RCPT")));
    steps.push(("DATA\r\n".into(), 354, "DATA"));
    steps.push((message(a, m, date), 250, "BODY"));
    steps.push(("QUIT\r\n".into(), 221, "QUIT"));
    for (line, code, cmd) in steps {
        send(w, line.as_bytes(), t, name).await?;
        expect(reply(r, t, name).await?, code, cmd, name)?;
    }
    Ok(())
}

fn expect(got: Option<u16>, want: u16, cmd: &str, name: &str) -> Result<(), String> {
    match got {
        Some(c) if c == want => Ok(()),
        Some(c) => Err(format!("Error processing {cmd} cmd on SMTP server {name}. SMTP status code = {c}")),
        None => Err(format!("Error processing {cmd} cmd on SMTP server {name}: not an SMTP reply")),
    }
}

/// The message after `DATA`, ended by its lone dot (body lines that
/// start with a dot doubled, RFC 5321 4.5.2).
fn message(a: &Alerts, m: &Mail, date: &str) -> String {
    let body: Vec<String> =
        m.body.lines().map(|l| if l.starts_with('.') { format!(".{l}") } else { l.to_string() }).collect();
    format!(
        "Date: {date}\r\nFrom: {}\r\nSubject: {}\r\nX-Mailer: Keepalived\r\nTo: {}\r\n\r\n{}\r\n\r\n.\r\n",
        a.from,
        m.subject,
        a.to.join(", "),
        body.join("\r\n")
    )
}

/// `Thu, 03 Dec 2026 09:41:07 +0000` (RFC 5322's date, in UTC).
fn rfc822(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, split, AsyncBufReadExt, AsyncWriteExt};

    fn alerts() -> Alerts {
        Alerts {
            server: Some(("198.19.0.11".into(), 25)),
            to: vec!["ops@example.com".into(), "noc@example.com".into()],
            from: "lvs@example.com".into(),
            helo: "director1".into(),
            timeout: Duration::from_secs(2),
            router_id: "LVS_1".into(),
            ..Alerts::defaults()
        }
    }

    /// The conversation against a server answering `codes` in turn (the
    /// message after DATA read up to its dot); what the client said.
    async fn against(codes: &'static [u16]) -> (Result<(), String>, String) {
        let (client, server) = duplex(1 << 16);
        let srv = tokio::spawn(async move {
            let (r, mut w) = split(server);
            let mut r = BufReader::new(r);
            let mut heard = String::new();
            let mut data = false;
            for (i, c) in codes.iter().enumerate() {
                if i > 0 {
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return heard;
                        }
                        heard.push_str(&line);
                        if !data || line == ".\r\n" {
                            break;
                        }
                    }
                }
                data = heard.ends_with("DATA\r\n");
                if w.write_all(format!("{c} ok\r\n").as_bytes()).await.is_err() {
                    break;
                }
            }
            heard
        });
        let (r, mut w) = split(client);
        let a = alerts();
        let m = real_server(
            &a,
            "[198.19.0.12]:tcp:8080",
            "[198.18.0.10]:tcp:80",
            false,
            "=> TCP CHECK failed on service <=",
        );
        let v =
            conversation(&mut BufReader::new(r), &mut w, &a, &m, "Thu, 03 Dec 2026 09:41:07 +0000", "[198.19.0.11]:25")
                .await;
        drop(w);
        (v, srv.await.unwrap())
    }

    #[tokio::test]
    async fn an_alert_is_keepalived_s_conversation_and_message() {
        let (v, heard) = against(&[220, 250, 250, 250, 250, 354, 250, 221]).await;
        assert_eq!(v, Ok(()));
        assert_eq!(
            heard,
            "HELO director1\r\nMAIL FROM:<lvs@example.com>\r\nRCPT TO:<ops@example.com>\r\nRCPT TO:<noc@example.com>\r\n\
             DATA\r\nDate: Thu, 03 Dec 2026 09:41:07 +0000\r\nFrom: lvs@example.com\r\n\
             Subject: [LVS_1] Realserver [198.19.0.12]:tcp:8080 of virtual server [198.18.0.10]:tcp:80 - DOWN\r\n\
             X-Mailer: Keepalived\r\nTo: ops@example.com, noc@example.com\r\n\r\n=> TCP CHECK failed on service <=\r\n\r\n.\r\n\
             QUIT\r\n"
        );
    }

    #[tokio::test]
    async fn a_refused_step_is_named_with_its_code() {
        let (v, _) = against(&[220, 250, 250, 550]).await;
        assert_eq!(v, Err("Error processing RCPT cmd on SMTP server [198.19.0.11]:25. SMTP status code = 550".into()));
        let (v, _) = against(&[554]).await;
        assert_eq!(
            v,
            Err("Error processing (E)SMTP cmd on SMTP server [198.19.0.11]:25. SMTP status code = 554".into())
        );
    }

    #[tokio::test]
    async fn no_server_is_a_bounded_failure() {
        // A port nothing listens on, held so no one takes it.
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        drop(held);
        let a = Alerts { server: Some(("127.0.0.1".into(), port)), ..alerts() };
        let e = deliver(&a, &real_server(&a, "r", "v", true, "b")).await.unwrap_err();
        assert!(e.starts_with(&format!("Error connecting SMTP server [127.0.0.1]:{port}")), "{e}");
    }

    #[test]
    fn dates_and_dots() {
        assert_eq!(rfc822(SystemTime::UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_290_867);
        assert_eq!(rfc822(t), "Thu, 03 Dec 2026 09:41:07 +0000");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc822(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
        let a = alerts();
        let m = Mail { subject: "s".into(), body: "a\n.b".into() };
        assert!(message(&a, &m, "d").ends_with("\r\n\r\na\r\n..b\r\n\r\n.\r\n"));
    }
}
