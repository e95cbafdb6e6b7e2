//! `perf xsk-fwd`: the AF_XDP ceiling on a path, built from xdpvs's own xsk
//! layer and steering program but no engine: frames to the benchmark's
//! service (UDP and TCP to VIP:5000) are received on `--in` queue 0, get the
//! next hop's MACs, and go out on `--out`. What every xdpvs mode costs on
//! top of this is the engine's; what this costs is AF_XDP's (copy mode on
//! veth). Runs until SIGTERM/SIGINT or `--seconds`, then prints its counts.
//!
//! The loop is the worker's own: busy polls, then poll(2) when idle
//! (`--spin`, default 256), optionally at SCHED_FIFO (`--rt-priority`), so
//! the same scheduling choices can be compared on the bare path.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdpvs::lb::core::BATCH;
use xdpvs::lb::net::NetState;
use xdpvs::lb::snapshot::Snapshot;
use xdpvs::lb::Verdict;
use xdpvs::wire::ethernet::parse_mac;
use xdpvs::xsk::steer::{owned_keys, Mode, Steer};
use xdpvs::xsk::{open_ports, poll_readable, Held, Io, Shared};
use xdpvs_api::config::{Config, Match, Proto, SchedKind, ServiceKey, ServiceSpec};

#[derive(clap::Args)]
pub struct Args {
    /// Interface frames come in on (queue 0); the steering program goes here.
    #[arg(long = "in")]
    input: String,
    /// Interface they go out on.
    #[arg(long = "out")]
    output: String,
    /// The next hop's MAC on `--out`.
    #[arg(long)]
    dst_mac: String,
    /// The service address whose UDP/TCP port 5000 is steered.
    #[arg(long)]
    vip: IpAddr,
    /// Empty polls before sleeping in poll(2).
    #[arg(long, default_value_t = 256)]
    spin: u32,
    /// Run at SCHED_FIFO PRIO (with `--spin 0`: sleep as soon as idle).
    #[arg(long)]
    rt_priority: Option<u8>,
    /// Stop after this many seconds (0: at SIGTERM/SIGINT only).
    #[arg(long, default_value_t = 0.0)]
    seconds: f64,
}

fn mac_of(iface: &str) -> Result<[u8; 6], String> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).map_err(|e| format!("{iface}: {e}"))?;
    parse_mac(s.trim()).ok_or_else(|| format!("{iface}: no MAC"))
}

/// The steering program's keys for the benchmark's service.
fn steered(vip: IpAddr) -> Result<std::collections::HashSet<xdpvs::xsk::steer::Key>, String> {
    let mut cfg = Config::default();
    for proto in [Proto::Udp, Proto::Tcp] {
        let key = ServiceKey::Addr(Match { proto, addr: vip, port: 5000 });
        cfg.add_service(ServiceSpec::new(key, SchedKind::Rr)).map_err(|e| e.to_string())?;
    }
    Ok(owned_keys(&Snapshot::new(cfg, Arc::new(NetState::default()))))
}

pub fn run(a: &Args) -> Result<String, String> {
    let dst = parse_mac(&a.dst_mac).ok_or("--dst-mac looks like aa:bb:cc:dd:ee:ff")?;
    let (in_mac, out_mac) = (mac_of(&a.input)?, mac_of(&a.output)?);
    let shared = Shared::new(16 << 20, false).map_err(|e| format!("UMEM: {e}"))?;
    let ports = open_ports(&shared, &[(a.input.clone(), 0), (a.output.clone(), 0)], true).map_err(|e| e.to_string())?;
    let keys = steered(a.vip)?;
    let mut steer = Steer::attach(&a.input, Mode::Native).map_err(|e| e.to_string())?;
    steer.set_socket(0, ports[0].fd()).map_err(|e| e.to_string())?;
    steer.set_mac(in_mac).and_then(|()| steer.sync(&keys)).map_err(|e| e.to_string())?;
    if let Some(p) = a.rt_priority {
        use thread_priority::*;
        let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        let prio = ThreadPriority::from_posix(ScheduleParams { sched_priority: i32::from(p) });
        set_thread_priority_and_policy(thread_native_id(), prio, policy)
            .map_err(|e| format!("SCHED_FIFO {p}: {e:?}"))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    let mut io = Io::new(shared.clone(), ports, 0, shared.frames());
    let fds = io.fds();
    let verdicts = [Verdict::Tx { iface: 1 }; BATCH];
    let mut held: Vec<Held> = Vec::with_capacity(BATCH);
    let (start, end) = (Instant::now(), Duration::from_secs_f64(a.seconds));
    let (mut idle, mut forwarded) = (0u32, 0u64);
    println!("xsk-fwd up: {} -> {}", a.input, a.output);
    while !stop.load(Ordering::Relaxed) && (a.seconds == 0.0 || start.elapsed() < end) {
        io.reap_completions();
        io.refill();
        io.receive(&mut held, BATCH);
        if held.is_empty() {
            idle += 1;
            if idle > a.spin {
                poll_readable(&fds, 100);
            }
            continue;
        }
        idle = 0;
        io.with_frames(&mut held, |frames| {
            for f in frames.iter_mut() {
                let d = f.data_mut();
                if d.len() >= 12 {
                    d[..6].copy_from_slice(&dst);
                    d[6..12].copy_from_slice(&out_mac);
                }
            }
        });
        forwarded += held.len() as u64;
        let n = held.len();
        io.dispose(&mut held, &verdicts[..n], |i| Some(usize::from(i)), |_, _| false, |_, _| false);
    }
    Ok(serde_json::json!({"forwarded": forwarded, "seconds": start.elapsed().as_secs_f64()}).to_string())
}
