//! `perf metrics`: the engine's forwarding rate while the metrics endpoint
//! renders the region every second (as a Prometheus scrape does) and while
//! nothing scrapes it, alternating runs in one process. The engine core
//! publishes its counters to a real region (as a worker does, every 20 ms);
//! the scraper is `xdpvs_web::metrics::render`, on its own thread.

use crate::engine::{core_with, frames, order, pass_batched_with};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdpvs::lb::core::BATCH;
use xdpvs::wire::tcp::flags::{ACK, SYN};
use xdpvs_api::config::Fwd;
use xdpvs_api::counters::{Counter, CounterArray};
use xdpvs_api::msg::View;
use xdpvs_api::shm::{CoreWrite, Region, BLOB_VIEW};

const FRAME: usize = 2048;

pub fn run(quick: bool) -> Result<String, String> {
    let instance = format!("perf-metrics-{}", std::process::id());
    let region = Arc::new(Region::create(&instance, 1, None).map_err(|e| e.to_string())?);
    let view = View { generation: 1, ncores: 1, ..View::default() };
    region.write_blob(BLOB_VIEW, &serde_json::to_vec(&view).map_err(|e| e.to_string())?)?;
    let n = 10_000usize;
    let seq: Vec<u32> = (0..n as u32).collect();
    let est = frames(&order(n, if quick { 5 } else { 50 }), ACK);
    let mut core = core_with(n as u32 * 2, Fwd::Nat, None);
    let mut bufs = vec![0u8; FRAME * BATCH];
    // As a worker: the counters go to the region every 20 ms.
    let mut pass = |core: &mut xdpvs::lb::core::Core, src: &[u8]| {
        let mut last = Instant::now();
        pass_batched_with(core, src, &mut bufs, 1, &mut |core| {
            if last.elapsed() >= Duration::from_millis(20) {
                last = Instant::now();
                let mut c = CounterArray::default();
                c.set(Counter::Rx, core.stats().rx);
                c.set(Counter::Tx, core.stats().tx);
                region.write_core(0, &CoreWrite { counters: &c, services: &[], dests: &[] });
            }
        });
    };
    pass(&mut core, &frames(&seq, SYN));
    let scraping = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));
    let scraper = {
        let (scraping, stop, scrapes, instance) = (scraping.clone(), stop.clone(), scrapes.clone(), instance.clone());
        std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
            while !stop.load(Ordering::Relaxed) {
                if scraping.load(Ordering::Relaxed) && xdpvs_web::metrics::render(&instance).is_ok() {
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let mut times = [Vec::new(), Vec::new()];
    let runs = if quick { 3 } else { 9 };
    let t_start = Instant::now();
    for _ in 0..runs {
        for (k, t) in times.iter_mut().enumerate() {
            scraping.store(k == 1, Ordering::Relaxed);
            let start = Instant::now();
            let mut packets = 0usize;
            // Long enough for a few scrapes in each scraped run.
            while start.elapsed() < Duration::from_secs(if quick { 1 } else { 3 }) {
                pass(&mut core, &est);
                packets += est.len() / 64;
            }
            t.push(packets as f64 / start.elapsed().as_secs_f64() / 1e6);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = scraper.join();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [mut off, mut on] = times;
    let (off, on) = (median(&mut off), median(&mut on));
    Ok(serde_json::json!({
        "nat_mpps_not_scraped": (off * 1000.0).round() / 1000.0,
        "nat_mpps_scraped_every_second": (on * 1000.0).round() / 1000.0,
        "ratio": ((on / off) * 1000.0).round() / 1000.0,
        "scrapes": scrapes.load(Ordering::Relaxed),
        "seconds": t_start.elapsed().as_secs(),
    })
    .to_string())
}
