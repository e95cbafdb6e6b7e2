//! Connection sync's cost (`perf sync`): a master's forwarding rate with a
//! sync daemon running and without, in one process, alternating runs (the
//! worker's drain of the core's queue included); records per second a
//! backup core installs; bytes on the wire per synced connection.

use crate::engine::{core_with, frames, order, pass_batched_with};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;
use xdpvs::lb::core::{Core, BATCH};
use xdpvs::testkit::topo;
use xdpvs::wire::tcp::flags::{ACK, SYN};
use xdpvs_api::config::{Fwd, Proto, SchedKind};
use xdpvs_api::sync::{Builder, DaemonSpec, Record, Role};

const FRAME: usize = 2048;

/// A core with a master sync daemon configured, or not.
fn core(n: u32, fwd: Fwd, master: bool) -> Core {
    let mut c = core_with(n, fwd, None);
    if master {
        let (mut cfg, _) = topo::config(false, Proto::Tcp, fwd, SchedKind::Rr, 4);
        let d = DaemonSpec { iface: "eth1".into(), syncid: 1, maxlen: None, group: None, port: None, ttl: None };
        cfg.start_daemon(Role::Master, d).expect("fresh config");
        cfg.bump_generation();
        let next = c.config().next(cfg, c.config().net.clone());
        c.set_config(Arc::new(next));
    }
    c
}

/// Every frame through `core` in bursts, the queued records drained after
/// each as the worker drains them; (transmitted, records).
fn pass(core: &mut Core, frames: &[u8], bufs: &mut [u8]) -> (usize, usize) {
    let mut records = 0;
    let tx = pass_batched_with(core, frames, bufs, 1, &mut |c| {
        for r in c.take_sync() {
            black_box(r);
            records += 1;
        }
    });
    (tx, records)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// All sessions of `c` as records (a bulk walk).
fn walk(c: &Core) -> Vec<Record> {
    let mut out = Vec::new();
    let mut cursor = 0;
    while let Some(next) = c.sync_step(cursor, 4096, &mut |r| out.push(r)) {
        cursor = next;
    }
    out
}

/// Bytes per record in full messages of IPVS's default length.
fn wire_bytes(records: &[Record]) -> f64 {
    let (mut b, mut bytes) = (Builder::new(1, 1472), 0usize);
    for r in records {
        if !b.push(r) {
            bytes += b.bytes().len() + 28;
            b.reset(1);
            b.push(r);
        }
    }
    bytes += b.bytes().len() + 28;
    bytes as f64 / records.len() as f64
}

pub fn run(quick: bool) -> Result<String, String> {
    let n = 10_000usize;
    let rounds = if quick { 5 } else { 100 };
    let runs = if quick { 3 } else { 9 };
    let seq: Vec<u32> = (0..n as u32).collect();
    let (syn, ack) = (frames(&seq, SYN), frames(&seq, ACK));
    let est = frames(&order(n, rounds), ACK);
    let mut bufs = vec![0u8; FRAME * BATCH];
    let mut cores: Vec<Core> = [false, true]
        .into_iter()
        .map(|m| {
            let mut c = core(n as u32 * 2, Fwd::Nat, m);
            assert_eq!(pass(&mut c, &syn, &mut bufs).0, n, "every flow gets a session");
            pass(&mut c, &ack, &mut bufs);
            c
        })
        .collect();
    let mut times = [Vec::new(), Vec::new()];
    let mut records = 0;
    for _ in 0..runs {
        for (k, (c, t)) in cores.iter_mut().zip(times.iter_mut()).enumerate() {
            let start = Instant::now();
            let (tx, r) = pass(c, &est, &mut bufs);
            t.push(est.len() as f64 / 64.0 / start.elapsed().as_secs_f64() / 1e6);
            assert_eq!(tx, est.len() / 64, "every established packet forwarded");
            if k == 1 {
                records = r;
            }
        }
    }
    let [mut off, mut on] = times;
    let (off, on) = (median(&mut off), median(&mut on));
    // A backup installs what a master holds.
    let recs = walk(&cores[1]);
    let mut backup = core(n as u32 * 2, Fwd::Nat, false);
    let t = Instant::now();
    let installed = recs.iter().filter(|r| backup.install(r, 1).is_ok()).count();
    let install_rate = installed as f64 / t.elapsed().as_secs_f64();
    assert_eq!(installed, recs.len(), "every record installs");
    // FULLNAT records carry the local address: bytes per connection.
    let mut full = core(n as u32 * 2, Fwd::FullNat, false);
    pass(&mut full, &syn, &mut bufs);
    pass(&mut full, &ack, &mut bufs);
    let full_recs = walk(&full);
    Ok(serde_json::json!({
        "sessions": n,
        "nat_mpps_sync_off": (off * 1000.0).round() / 1000.0,
        "nat_mpps_sync_on": (on * 1000.0).round() / 1000.0,
        "ratio_on_off": ((on / off) * 1000.0).round() / 1000.0,
        "records_per_packet": (records as f64 / (est.len() / 64) as f64 * 1e4).round() / 1e4,
        "backup_installs_per_s": install_rate.round(),
        "wire_bytes_per_conn_nat": (wire_bytes(&recs) * 10.0).round() / 10.0,
        "wire_bytes_per_conn_fullnat": (wire_bytes(&full_recs) * 10.0).round() / 10.0,
    })
    .to_string())
}
