//! The engine benchmark.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;
use xdpvs::lb::core::{Core, CoreParams, BATCH};
use xdpvs::lb::frame::Frame;
use xdpvs::lb::sched::mh::{Maglev, DEFAULT_TABLE_SIZE};
use xdpvs::lb::Verdict;
use xdpvs::testkit::{topo, Pkt};
use xdpvs::wire::tcp::flags::{ACK, SYN};
use xdpvs_api::config::{Fwd, Proto, ProxyProtocol, SchedKind};

const HEADROOM: usize = 256;
const FRAME: usize = 2048;

pub struct Results {
    pub established_mpps_10k: f64,
    pub established_mpps_1m: f64,
    pub new_conn_mpps: f64,
    pub bytes_per_session: f64,
    pub heap_bytes_per_session: f64,
    pub maglev_build_ms_1000: f64,
    pub sessions_large: usize,
    pub unbatched_mpps_10k: f64,
    pub new_conn_reaping_mpps: f64,
    pub unbatched_mpps_1m: f64,
    pub handoff_classify_ns: f64,
    pub handoff_channel_ns: f64,
    /// Established FULLNAT, 10k sessions, without and with PROXY protocol
    /// v2 (every packet's sequence number shifted), medians of alternating
    /// runs in this process.
    pub fullnat_mpps_10k: f64,
    pub fullnat_proxy_mpps_10k: f64,
}

impl Results {
    pub fn table(&self) -> String {
        format!(
            "engine benchmark (one core, NAT, 64-byte TCP frames, copy-in included, bursts of 32)\n\
             established, 10k sessions : {:>8.2} Mpps ({:.2} one frame at a time)\n\
             established, {:>4}k sessions: {:>8.2} Mpps ({:.2} one frame at a time)\n\
             new connections           : {:>8.2} Mpps ({:.2} with the reaper expiring as many meanwhile)\n\
             memory per IPv4 session   : {:>8.1} bytes (RSS delta; {:.1} bytes of table heap)\n\
             Maglev build, 1000 RS     : {:>8.3} ms (M = 65537)\n\
             handoff to another core   : {:>8.1} ns classify + {:.1} ns channel per frame (+ the owner's processing)\n\
             FULLNAT established, 10k  : {:>8.2} Mpps without, {:.2} Mpps with PROXY protocol v2 (ratio {:.3}, alternating runs)",
            self.established_mpps_10k,
            self.unbatched_mpps_10k,
            self.sessions_large / 1000,
            self.established_mpps_1m,
            self.unbatched_mpps_1m,
            self.new_conn_mpps,
            self.new_conn_reaping_mpps,
            self.bytes_per_session,
            self.heap_bytes_per_session,
            self.maglev_build_ms_1000,
            self.handoff_classify_ns,
            self.handoff_channel_ns,
            self.fullnat_mpps_10k,
            self.fullnat_proxy_mpps_10k,
            self.fullnat_proxy_mpps_10k / self.fullnat_mpps_10k
        )
    }

    pub fn json(&self) -> String {
        serde_json::json!({
            "established_mpps_10k": round(self.established_mpps_10k),
            "established_mpps_1m": round(self.established_mpps_1m),
            "new_conn_mpps": round(self.new_conn_mpps),
            "bytes_per_session": round(self.bytes_per_session),
            "heap_bytes_per_session": round(self.heap_bytes_per_session),
            "maglev_build_ms_1000": round(self.maglev_build_ms_1000),
            "sessions_large": self.sessions_large,
            "unbatched_mpps_10k": round(self.unbatched_mpps_10k),
            "new_conn_with_reaping_mpps": round(self.new_conn_reaping_mpps),
            "handoff_classify_ns": round(self.handoff_classify_ns),
            "handoff_channel_ns": round(self.handoff_channel_ns),
            "unbatched_mpps_1m": round(self.unbatched_mpps_1m),
            "fullnat_mpps_10k": round(self.fullnat_mpps_10k),
            "fullnat_proxy_mpps_10k": round(self.fullnat_proxy_mpps_10k),
        })
        .to_string()
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Resident set size of this process, from /proc (Linux).
fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s.split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Client `i` of a large population (off-link: reached via the gateway).
fn client(i: usize) -> IpAddr {
    IpAddr::from([198, 18, 16 + (i >> 8) as u8, (i & 0xff) as u8])
}

/// One 64-byte frame of flow `i` (a SYN at sequence number 1000; anything
/// else past the client's first data byte, as mid-connection).
fn frame(vip: IpAddr, i: usize, flags: u8) -> Vec<u8> {
    let mut p = Pkt::tcp((client(i / 60000), 1024 + (i % 60000) as u16).into(), (vip, 80).into(), flags);
    p.seq = if flags & SYN != 0 { 1000 } else { 2001 };
    let mut f = p.build();
    f.resize(64, 0);
    f
}

/// Frames of the flows in `order`, laid out in the order they will be sent:
/// the benchmark reads them as a stream, as a NIC's ring would present them.
pub(crate) fn frames(order: &[u32], flags: u8) -> Vec<u8> {
    let vip = topo::v4().vip;
    let mut v = Vec::with_capacity(order.len() * 64);
    for &i in order {
        v.extend_from_slice(&frame(vip, i as usize, flags));
    }
    v
}

fn core(max: u32) -> Core {
    core_with(max, Fwd::Nat, None)
}

/// A core whose one service forwards by `fwd`, with PROXY protocol `pp`.
pub(crate) fn core_with(max: u32, fwd: Fwd, pp: Option<ProxyProtocol>) -> Core {
    let (mut cfg, key) = topo::config(false, Proto::Tcp, fwd, SchedKind::Rr, 4);
    let mut spec = cfg.service(cfg.find_service(&key).expect("made above")).expect("made above").spec.clone();
    spec.proxy_protocol = pp;
    cfg.edit_service(spec).expect("a FULLNAT service takes the PROXY protocol");
    let p = CoreParams { max_sessions: max, reserve_sessions: max, reap_budget: 256, ..CoreParams::default() };
    Core::new(topo::snapshot(&cfg), p, 0)
}

/// Runs every frame of `frames` through `core` once, copy-in included;
/// returns how many were transmitted.
fn pass(core: &mut Core, frames: &[u8], buf: &mut [u8]) -> usize {
    let mut tx = 0;
    for f in frames.chunks_exact(64) {
        buf[HEADROOM..HEADROOM + 64].copy_from_slice(f);
        let mut fr = Frame::new(buf, HEADROOM, 64).expect("buffer fits");
        if let Verdict::Tx { .. } = core.process(&mut fr, 1) {
            tx += 1;
        }
        black_box(fr.data());
    }
    tx
}

/// Like [`pass`], in bursts of [`BATCH`] through `process_batch`, as the
/// AF_XDP worker feeds the engine.
fn pass_batched(core: &mut Core, frames: &[u8], bufs: &mut [u8]) -> usize {
    pass_batched_at(core, frames, bufs, 1, false)
}

/// [`pass_batched`] at time `now`; with `reap`, the reaper runs after every
/// burst as the worker loop runs it.
fn pass_batched_at(core: &mut Core, frames: &[u8], bufs: &mut [u8], now: u32, reap: bool) -> usize {
    pass_batched_with(core, frames, bufs, now, &mut |c| {
        if reap {
            c.housekeep(now);
        }
    })
}

/// Every frame of `frames` through `core` in bursts of [`BATCH`] at time
/// `now`, `after` running after each burst (what the worker does between
/// bursts: reaping, draining sync records, publishing); returns how many
/// were transmitted.
pub(crate) fn pass_batched_with(
    core: &mut Core,
    frames: &[u8],
    bufs: &mut [u8],
    now: u32,
    after: &mut dyn FnMut(&mut Core),
) -> usize {
    let mut tx = 0;
    let mut verdicts = [Verdict::Pass; BATCH];
    let mut burst: Vec<Frame<'_>> =
        bufs.chunks_mut(FRAME).map(|b| Frame::new(b, HEADROOM, 64).expect("fits")).collect();
    for src in frames.chunks(64 * BATCH) {
        let n = src.len() / 64;
        for (f, data) in burst.iter_mut().zip(src.chunks_exact(64)) {
            f.reset(HEADROOM, 64);
            f.data_mut().copy_from_slice(data);
        }
        core.process_batch(&mut burst[..n], now, &mut verdicts[..n]);
        after(core);
        tx += verdicts[..n].iter().filter(|v| matches!(v, Verdict::Tx { .. })).count();
        black_box(&burst);
    }
    tx
}

/// Memory: a table sized for `n` filled with `n` sessions (RSS delta
/// from before the table existed, and the table's own heap accounting).
pub fn memory(n: usize) -> (f64, f64) {
    let syn = frames(&(0..n as u32).collect::<Vec<_>>(), SYN);
    let mut bufs = vec![0u8; FRAME * BATCH];
    let rss0 = rss_bytes();
    let mut c = core(n as u32);
    assert_eq!(pass_batched(&mut c, &syn, &mut bufs), n);
    let per = |b: usize| b as f64 / n as f64;
    (per(rss_bytes().saturating_sub(rss0)), per(c.session_heap_bytes()))
}

/// New connections in recycled memory: a table that held `n` embryonic
/// sessions (SYN_RECV) gets `n` SYNs of new flows after those timed out.
/// Returns (Mpps with the old sessions reaped before the timed loop, Mpps
/// with the reaper running after every burst inside it: one session created
/// and one expired per SYN).
pub fn new_connections(n: usize) -> (f64, f64) {
    let gen = |k: u32| frames(&(k * n as u32..(k + 1) * n as u32).collect::<Vec<_>>(), SYN);
    let mut bufs = vec![0u8; FRAME * BATCH];
    let mut c = core((n + n / 4) as u32);
    let tick = xdpvs::lb::TICKS_PER_SEC;
    assert_eq!(pass_batched_at(&mut c, &gen(0), &mut bufs, 1, false), n);
    // Creation alone: the first generation is reaped before the clock starts.
    let t1 = 1 + 61 * tick;
    while c.housekeep(t1) > 0 {}
    let syn = gen(1);
    let t = Instant::now();
    assert_eq!(pass_batched_at(&mut c, &syn, &mut bufs, t1, false), n, "every SYN opened a session");
    let create = n as f64 / t.elapsed().as_secs_f64() / 1e6;
    // Steady state: the second generation times out while the third arrives.
    let syn = gen(2);
    let expired = c.stats().sessions_expired;
    let t = Instant::now();
    assert_eq!(pass_batched_at(&mut c, &syn, &mut bufs, t1 + 61 * tick, true), n, "every SYN opened a session");
    let steady = n as f64 / t.elapsed().as_secs_f64() / 1e6;
    assert!(c.stats().sessions_expired - expired >= n as u64 * 9 / 10, "the old sessions were reaped meanwhile");
    (create, steady)
}

/// What handing a frame to its owning core costs, in ns per frame: the
/// receiving core's classification (the engine answers `Handoff`), plus a
/// descriptor's trip through a bounded channel to a thread on the other CPU,
/// plus the owner classifying it again. Returns (classify ns, channel ns).
pub fn handoff(n: usize) -> (f64, f64) {
    let (cfg, _) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 4);
    let cfg = topo::snapshot(&cfg);
    let p =
        |id| CoreParams { id, ncores: 2, max_sessions: 1 << 16, reserve_sessions: 1 << 12, ..CoreParams::default() };
    let mut c0 = Core::new(cfg.clone(), p(0), 0);
    // Frames core 1 owns (ownership follows the client address).
    let vip = topo::v4().vip;
    let syn: Vec<u8> = (0..65536usize)
        .map(|i| {
            let mut f = Pkt::tcp((client(i), 1024).into(), (vip, 80).into(), SYN).build();
            f.resize(64, 0);
            f
        })
        .filter(|f| xdpvs::lb::owner::owner_of(&cfg, 2, f) == 1)
        .take(n)
        .flatten()
        .collect();
    let owned_by_1 = syn.len() / 64;
    let mut buf = vec![0u8; FRAME];
    let t = Instant::now();
    let mut handed = 0;
    for f in syn.chunks_exact(64) {
        buf[HEADROOM..HEADROOM + 64].copy_from_slice(f);
        let mut fr = Frame::new(&mut buf, HEADROOM, 64).expect("fits");
        handed += usize::from(matches!(c0.process(&mut fr, 1), Verdict::Handoff(1)));
    }
    let classify = t.elapsed().as_secs_f64() * 1e9 / owned_by_1 as f64;
    assert_eq!(handed, owned_by_1);
    // The descriptor's trip to the other CPU.
    let (tx, rx) = crossbeam_channel::bounded::<(u64, u32, u32, u16)>(2048);
    let total = 4_000_000u64;
    let consumer = std::thread::spawn(move || {
        // By id: once the main thread is pinned, get_core_ids() lists only its CPU.
        core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
        let mut sum = 0u64;
        let mut got = 0u64;
        while got < total {
            if let Ok(d) = rx.try_recv() {
                sum = sum.wrapping_add(d.0);
                got += 1;
            }
        }
        sum
    });
    let t = Instant::now();
    let mut i = 0u64;
    while i < total {
        if tx.try_send((i, 128, 64, 0)).is_ok() {
            i += 1;
        }
    }
    black_box(consumer.join().expect("consumer thread"));
    let channel = t.elapsed().as_secs_f64() * 1e9 / total as f64;
    (classify, channel)
}

/// A shuffled visiting order (xorshift; reproducible).
pub(crate) fn order(n: usize, rounds: usize) -> Vec<u32> {
    let mut v: Vec<u32> = (0..rounds).flat_map(|_| 0..n as u32).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// Established FULLNAT over `n` flows, without and with PROXY protocol v2,
/// batched: the medians of `runs` alternating runs, (without, with) Mpps.
pub fn proxy_cost(n: usize, rounds: usize, runs: usize) -> (f64, f64) {
    let seq: Vec<u32> = (0..n as u32).collect();
    let (syn, est) = (frames(&seq, SYN), frames(&order(n, rounds), ACK));
    let mut bufs = vec![0u8; FRAME * BATCH];
    let mut cores: Vec<Core> = [None, Some(ProxyProtocol::V2)]
        .into_iter()
        .map(|pp| {
            let mut c = core_with(n as u32 * 2, Fwd::FullNat, pp);
            assert_eq!(pass_batched(&mut c, &syn, &mut bufs), n, "every flow gets a session");
            c
        })
        .collect();
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (c, t) in cores.iter_mut().zip(times.iter_mut()) {
            let start = Instant::now();
            assert_eq!(pass_batched(c, &est, &mut bufs), est.len() / 64, "every established packet forwarded");
            t.push(est.len() as f64 / 64.0 / start.elapsed().as_secs_f64() / 1e6);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [mut a, mut b] = times;
    (median(&mut a), median(&mut b))
}

/// (batched, one frame at a time) Mpps over `n` established flows.
pub fn established(n: usize, rounds: usize) -> (f64, f64) {
    let mut c = core(n as u32 * 2);
    let seq: Vec<u32> = (0..n as u32).collect();
    let mut buf = vec![0u8; FRAME];
    assert_eq!(pass(&mut c, &frames(&seq, SYN), &mut buf), n, "every flow gets a session");
    let est = frames(&order(n, rounds), ACK);
    let packets = est.len() / 64;
    let mut bufs = vec![0u8; FRAME * BATCH];
    let t = Instant::now();
    let tx = pass_batched(&mut c, &est, &mut bufs);
    let batched = packets as f64 / t.elapsed().as_secs_f64() / 1e6;
    assert_eq!(tx, packets, "every established packet forwarded");
    let t = Instant::now();
    let tx = pass(&mut c, &est, &mut buf);
    let single = packets as f64 / t.elapsed().as_secs_f64() / 1e6;
    assert_eq!(tx, packets, "every established packet forwarded");
    (batched, single)
}

pub fn run(quick: bool) -> Results {
    let (small, large, rounds) = if quick { (10_000, 50_000, 2) } else { (10_000, 1_000_000, 2) };
    let (established_mpps_10k, single_10k) = established(small, if quick { 10 } else { 200 });
    let (established_mpps_1m, single_1m) = established(large, rounds);

    let (bytes_per_session, heap_bytes_per_session) = memory(large);
    let (new_conn_mpps, new_conn_reaping_mpps) = new_connections(large);

    let (handoff_classify_ns, handoff_channel_ns) = handoff(if quick { 20_000 } else { 200_000 });
    let (fullnat_mpps_10k, fullnat_proxy_mpps_10k) = proxy_cost(small, if quick { 5 } else { 50 }, 7);
    let members: Vec<(IpAddr, u16, u32)> =
        (0..1000usize).map(|i| (IpAddr::from([198, 19, (i >> 8) as u8, (i & 0xff) as u8]), 80, 1)).collect();
    let mut times: Vec<f64> = (0..if quick { 3 } else { 15 })
        .map(|_| {
            let t = Instant::now();
            black_box(Maglev::build(black_box(&members), DEFAULT_TABLE_SIZE));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Results {
        established_mpps_10k,
        established_mpps_1m,
        new_conn_mpps,
        bytes_per_session,
        heap_bytes_per_session,
        maglev_build_ms_1000: times[times.len() / 2],
        unbatched_mpps_10k: single_10k,
        handoff_classify_ns,
        handoff_channel_ns,
        new_conn_reaping_mpps,
        unbatched_mpps_1m: single_1m,
        sessions_large: large,
        fullnat_mpps_10k,
        fullnat_proxy_mpps_10k,
    }
}
