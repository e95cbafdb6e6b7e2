//! `perf checker`: xdpvs-checker's checks at scale, on loopback. N real
//! servers (a child process: half answer HTTP 200 at once, half accept and
//! never answer), one HTTP_GET each at `delay_loop 1` and `connect_timeout
//! 0.5`, run by the checker's own task per check (`health::run`) on one
//! thread for S seconds. Reports the CPU share of the checking process and
//! how far each verdict lands from its schedule: a healthy check every
//! delay_loop plus its round trip, a hung one every delay_loop plus the
//! timeout (so the spread is the timeout's accuracy).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xdpvs_checker::conf::model::{Check, CheckKind, Head, HttpProtocol, Timing};
use xdpvs_checker::health;

const DELAY_LOOP: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_millis(500);

/// The servers' side (`perf checker-servers`): prints each listener's port
/// (healthy ones first), then serves until killed.
pub fn servers(n: usize) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let mut ports = Vec::new();
        for i in 0..n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
            ports.push(l.local_addr().map_err(|e| e.to_string())?.port());
            let hung = i >= n / 2;
            tokio::spawn(async move {
                loop {
                    let Ok((mut s, _)) = l.accept().await else { return };
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        if hung {
                            // Accepts, never answers: the client's timeout ends it.
                            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                            return;
                        }
                        let _ = s.read(&mut buf).await;
                        let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                    });
                }
            });
        }
        println!("{}", ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" "));
        std::future::pending::<()>().await;
        Ok(String::new())
    })
}

/// This process's CPU time (user + system), from /proc (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<u64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn check() -> Check {
    Check {
        kind: CheckKind::Http {
            tls: false,
            urls: Vec::new(),
            protocol: HttpProtocol::V10,
            virtualhost: None,
            sni: None,
        },
        at: Default::default(),
        timing: Timing { delay_loop: DELAY_LOOP, connect_timeout: TIMEOUT, retry: Some(0), ..Timing::default() },
        connect_ip: None,
        connect_port: None,
        bindto: None,
        bind_port: None,
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0)
}

pub fn run(n: usize, secs: u64) -> Result<String, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(me)
        .args(["checker-servers", "--n", &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the servers: {e}"))?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("piped")), &mut line)
        .map_err(|e| e.to_string())?;
    let ports: Vec<u16> = line.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    if ports.len() != n {
        let _ = child.kill();
        return Err(format!("the servers gave {} ports of {n}", ports.len()));
    }
    let result = measure(&ports, secs);
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn measure(ports: &[u16], secs: u64) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel(65536);
        let lo = IpAddr::from([127, 0, 0, 1]);
        for (i, &p) in ports.iter().enumerate() {
            let t = health::Target {
                addr: SocketAddr::new(lo, p),
                bind: None,
                timeout: TIMEOUT,
                name: health::server_name(lo, "tcp", p),
            };
            let rs = (Head::Addr(lo, 80), lo, p);
            tokio::spawn(health::run(rs, i, check(), t, tx.clone()));
        }
        // Warm-up: the first round starts everything at once.
        let warm = Instant::now() + Duration::from_secs(2);
        while Instant::now() < warm {
            let _ = tokio::time::timeout_at(warm.into(), rx.recv()).await;
        }
        let (cpu0, t0) = (cpu_time(), Instant::now());
        let end = t0 + Duration::from_secs(secs);
        let mut last: HashMap<u16, Instant> = HashMap::new();
        let (mut ok_gap, mut hung_gap, mut wrong) = (Vec::new(), Vec::new(), 0usize);
        let half = ports.len() / 2;
        while let Ok(Some(v)) = tokio::time::timeout_at(end.into(), rx.recv()).await {
            let now = Instant::now();
            let hung = v.check >= half;
            if v.result.is_ok() == hung {
                wrong += 1;
            }
            if let Some(prev) = last.insert(v.rs.2, now) {
                let gap = now.duration_since(prev).as_secs_f64();
                if hung {
                    hung_gap.push((gap - (DELAY_LOOP + TIMEOUT).as_secs_f64()) * 1e3);
                } else {
                    ok_gap.push((gap - DELAY_LOOP.as_secs_f64()) * 1e3);
                }
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_time().saturating_sub(cpu0).as_secs_f64();
        let checks = ok_gap.len() + hung_gap.len();
        let json = serde_json::json!({
            "servers": ports.len(),
            "seconds": round(wall),
            "checks_per_second": round(checks as f64 / wall),
            "cpu_share": round(cpu / wall),
            "wrong_verdicts": wrong,
            "healthy_interval_over_delay_loop_ms": {"p50": round(percentile(&mut ok_gap, 0.5)), "p99": round(percentile(&mut ok_gap, 0.99)), "max": round(percentile(&mut ok_gap, 1.0))},
            "timeout_interval_over_delay_loop_plus_timeout_ms": {"p50": round(percentile(&mut hung_gap, 0.5)), "p99": round(percentile(&mut hung_gap, 0.99)), "max": round(percentile(&mut hung_gap, 1.0))},
        });
        Ok(json.to_string())
    })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
