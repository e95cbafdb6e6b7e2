//! The checks: one task per checker of each real server, keepalived's
//! schedule (a random warm-up up to `warmup`, then every `delay_loop`; a
//! failed attempt is retried `retry` times, `delay_before_retry` apart, and
//! only when every attempt failed is the check failed), each attempt bounded
//! by its own timeout. A task reports each verdict on a channel; it never
//! touches the configuration, so a hung server or script delays nothing but
//! its own check.

mod dns;
mod file;
mod http;
mod misc;
mod ping;
pub(crate) mod smtp;
mod tcp;
pub(crate) mod tls;
mod udp;

use crate::conf::model::{Check, CheckKind, RealServer, VirtualServer};
use crate::desired::RsKey;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::mpsc;

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub rs: RsKey,
    /// The checker's index among its real server's.
    pub check: usize,
    /// `Ok(weight)`: passed (`Some` from `misc_dynamic`); `Err`: the log
    /// line that says why it failed, in keepalived's words.
    pub result: Result<Option<u32>, String>,
}

/// Where and how one check connects.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub bind: Option<SocketAddr>,
    pub timeout: Duration,
    /// `[198.19.0.11]:tcp:80`, as keepalived names a server in its logs.
    pub name: String,
}

/// The target of `c` (of real server `rs` of `vs`).
pub fn target(vs: &VirtualServer, rs: &RealServer, c: &Check) -> Target {
    let vport = match vs.head {
        crate::conf::model::Head::Addr(_, p) => p,
        _ => 0,
    };
    let ip = c.connect_ip.unwrap_or(rs.addr);
    let port = c.connect_port.unwrap_or(if rs.port != 0 { rs.port } else { vport });
    let bind = match (c.bindto, c.bind_port) {
        (None, None) => None,
        (a, p) => Some(SocketAddr::new(
            a.unwrap_or(if ip.is_ipv6() { IpAddr::from([0u16; 8]) } else { IpAddr::from([0u8; 4]) }),
            p.unwrap_or(0),
        )),
    };
    Target {
        addr: SocketAddr::new(ip, port),
        bind,
        timeout: c.timing.connect_timeout,
        name: server_name(ip, "tcp", port),
    }
}

/// `[ADDR]:PROTO:PORT`.
pub fn server_name(ip: IpAddr, proto: &str, port: u16) -> String {
    format!("[{ip}]:{proto}:{port}")
}

/// `script` run by `/bin/sh -c`, as `user` (and `group`, else the user's) if given.
pub fn script(script: &str, user: Option<&str>, group: Option<&str>) -> Result<tokio::process::Command, String> {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(script).stdin(std::process::Stdio::null());
    if let Some(name) = user {
        let u =
            nix::unistd::User::from_name(name).ok().flatten().ok_or_else(|| format!("{script}: no user '{name}'"))?;
        let gid = match group {
            Some(g) => {
                nix::unistd::Group::from_name(g).ok().flatten().ok_or_else(|| format!("{script}: no group '{g}'"))?.gid
            }
            None => u.gid,
        };
        cmd.uid(u.uid.as_raw()).gid(gid.as_raw());
    }
    Ok(cmd)
}

/// One attempt of check `c` against `t`.
async fn attempt(c: &Check, t: &Target) -> Result<Option<u32>, String> {
    match &c.kind {
        CheckKind::Tcp => tcp::check(t).await.map(|()| None),
        CheckKind::Http { .. } => http::check(c, t).await.map(|()| None),
        CheckKind::Misc { path, timeout, dynamic, user } => {
            misc::check(path, timeout.unwrap_or(c.timing.delay_loop), *dynamic, user.as_deref()).await
        }
        CheckKind::Udp { payload, require_reply, min_reply, max_reply } => {
            udp::check(t, payload, require_reply.as_deref(), (*min_reply, *max_reply)).await.map(|()| None)
        }
        CheckKind::Ping => ping::check(t).await.map(|()| None),
        CheckKind::Smtp { helo } => smtp::check(t, helo).await.map(|()| None),
        CheckKind::Dns { qtype, name } => dns::check(t, *qtype, name).await.map(|()| None),
        CheckKind::File { file, weight, dynamic, base } => file::check(file, *weight, *dynamic, *base),
        CheckKind::Unsupported(k) => Err(format!("{k} is not run by xdpvs-checker")),
    }
}

/// A check's verdict: the first passing attempt, or the last failure after
/// `retry` more attempts.
pub async fn verdict(c: &Check, t: &Target) -> Result<Option<u32>, String> {
    let mut last = attempt(c, t).await;
    for _ in 0..c.retry() {
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(c.delay_before_retry()).await;
        last = attempt(c, t).await;
    }
    last
}

/// Runs check `idx` of `rs` forever, reporting every verdict to `out`;
/// ends when the receiver is gone.
pub async fn run(rs: RsKey, idx: usize, c: Check, t: Target, out: mpsc::Sender<Verdict>) {
    if let CheckKind::File { file, .. } = &c.kind {
        file::init(file);
    }
    if let Some(w) = c.timing.warmup.filter(|w| !w.is_zero()) {
        tokio::time::sleep(w.mul_f64(jitter(&t.name))).await;
    }
    loop {
        let result = verdict(&c, &t).await;
        if out.send(Verdict { rs: rs.clone(), check: idx, result }).await.is_err() {
            return;
        }
        tokio::time::sleep(c.timing.delay_loop).await;
    }
}

/// A number in [0, 1) that differs per server (the warm-up's spread).
fn jitter(name: &str) -> f64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::model::{Check, CheckKind, Head, Timing};
    use tokio::time::Instant;

    fn tcp_check(retry: u32, before_retry: u64) -> Check {
        Check {
            kind: CheckKind::Tcp,
            at: Default::default(),
            timing: Timing {
                retry: Some(retry),
                delay_before_retry: Some(Duration::from_secs(before_retry)),
                delay_loop: Duration::from_secs(7),
                connect_timeout: Duration::from_secs(1),
                ..Timing::default()
            },
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
        }
    }

    fn to(port: u16) -> Target {
        Target {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            bind: None,
            timeout: Duration::from_secs(1),
            name: server_name(IpAddr::from([127, 0, 0, 1]), "tcp", port),
        }
    }

    /// A port nothing listens on, held (bound, never listening) so no other
    /// program can take it while the test runs: connecting is refused.
    fn closed_port() -> (socket2::Socket, u16) {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        let port = s.local_addr().unwrap().as_socket().unwrap().port();
        (s, port)
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_retried_delay_before_retry_apart() {
        let (_held, port) = closed_port();
        let t = to(port);
        let start = Instant::now();
        let r = verdict(&tcp_check(3, 2), &t).await;
        assert_eq!(r, Err(format!("TCP connection to {} failed.", t.name)));
        assert_eq!(start.elapsed().as_secs(), 6, "three retries, 2 s apart");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_needs_no_retry() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let t = to(l.local_addr().unwrap().port());
        let start = Instant::now();
        assert_eq!(verdict(&tcp_check(3, 2), &t).await, Ok(None));
        assert_eq!(start.elapsed().as_secs(), 0);
    }

    /// The schedule: a warm-up under `warmup`, then a verdict every
    /// `delay_loop` plus the retries' delays.
    #[tokio::test(start_paused = true)]
    async fn warmup_then_every_delay_loop() {
        let (_held, port) = closed_port();
        let t = to(port);
        let mut c = tcp_check(1, 3);
        c.timing.warmup = Some(Duration::from_secs(20));
        let (tx, mut rx) = mpsc::channel(8);
        let start = Instant::now();
        let rs = (Head::Addr(IpAddr::from([198, 18, 0, 10]), 80), IpAddr::from([127, 0, 0, 1]), 0);
        tokio::spawn(run(rs, 0, c, t, tx));
        let mut at = Vec::new();
        for _ in 0..3 {
            let v = rx.recv().await.unwrap();
            assert!(v.result.is_err());
            at.push(start.elapsed().as_secs_f64());
        }
        let warm = at[0] - 3.0;
        assert!(
            (0.0..20.0).contains(&warm),
            "first verdict after a warm-up under 20 s, then one retry 3 s later: {at:?}"
        );
        for w in at.windows(2) {
            assert!((w[1] - w[0] - 10.0).abs() < 0.01, "delay_loop 7 s + one retry 3 s apart: {at:?}");
        }
    }
}
