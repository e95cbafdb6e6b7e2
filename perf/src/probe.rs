//! The far ends of the veth benchmarks, on plain sockets:
//!
//! - `recv`: a UDP receiver on the real server that reads `perf gen
//!   --stamp` time stamps and keeps the one-way delay (same host, same
//!   clock) in an HDR histogram;
//! - `cps-server` / `cps`: whole TCP connections (handshake, one request
//!   byte, both FINs) as fast as a few client threads can open them.

use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdpvs_api::shm::monotonic_ns;

use crate::gen::STAMP_MAGIC;

/// Receives for `seconds` on `bind`; JSON: received, stamped, latency µs.
pub fn recv(bind: SocketAddr, seconds: f64) -> Result<String, String> {
    let s = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).map_err(|e| e.to_string())?;
    let (mut received, mut stamped) = (0u64, 0u64);
    let mut buf = [0u8; 2048];
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        let Ok(n) = s.recv(&mut buf) else { continue };
        received += 1;
        if n >= 16 && u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")) == STAMP_MAGIC {
            let sent = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
            let delay = monotonic_ns().saturating_sub(sent).max(1);
            let _ = h.record(delay);
            stamped += 1;
        }
    }
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(serde_json::json!({"received": received, "stamped": stamped,
        "latency_us": {"p50": us(0.5), "p99": us(0.99), "p999": us(0.999), "max": h.max() as f64 / 1000.0}})
    .to_string())
}

/// Accepts connections on `bind` until killed: reads to end of stream, closes.
pub fn cps_server(bind: SocketAddr, threads: usize) -> Result<(), String> {
    let l = TcpListener::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let l = l.try_clone().expect("listener clone");
            std::thread::spawn(move || loop {
                if let Ok((mut c, _)) = l.accept() {
                    let mut b = [0u8; 64];
                    while matches!(c.read(&mut b), Ok(n) if n > 0) {}
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// Opens whole connections to `dst` from `threads` threads for `seconds`;
/// JSON: completed, failed, cps.
pub fn cps(dst: SocketAddr, threads: usize, seconds: f64) -> Result<String, String> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (done, failed, stop) = (done.clone(), failed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = TcpStream::connect_timeout(&dst, Duration::from_secs(1)).and_then(|mut c| {
                        c.set_read_timeout(Some(Duration::from_secs(1)))?;
                        c.write_all(b"x")?;
                        c.shutdown(std::net::Shutdown::Write)?;
                        let mut b = [0u8; 16];
                        while c.read(&mut b)? > 0 {}
                        Ok(())
                    });
                    if ok.is_ok() { &done } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    Ok(serde_json::json!({"completed": n, "failed": failed.load(Ordering::Relaxed), "seconds": secs,
        "cps": (n as f64 / secs).round()})
    .to_string())
}
