//! A paced AF_XDP traffic generator: UDP frames from many source ports (one
//! flow each) to one destination, at a target rate, from one interface's
//! queue 0. Used by the veth benchmarks; prints what it sent.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use xdpvs::testkit::Pkt;
use xdpvs::wire::ethernet::parse_mac;
use xdpvs::xsk::{open_ports, Io, Shared};

#[derive(clap::Args)]
pub struct Args {
    /// Interface to send on (queue 0).
    #[arg(long)]
    iface: String,
    /// Source MAC (the interface's).
    #[arg(long)]
    src_mac: String,
    /// Destination MAC (the next hop's).
    #[arg(long)]
    dst_mac: String,
    /// Source address.
    #[arg(long)]
    src: IpAddr,
    /// Destination address:port.
    #[arg(long)]
    dst: SocketAddr,
    /// Flows (source ports 10000 + k).
    #[arg(long, default_value_t = 256)]
    flows: u16,
    /// Frame size in bytes (without FCS), at least 60.
    #[arg(long, default_value_t = 60)]
    size: usize,
    /// Offered rate, packets per second.
    #[arg(long)]
    pps: u64,
    /// Duration in seconds.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
}

pub fn run(a: &Args) -> Result<String, String> {
    let (Some(src_mac), Some(dst_mac)) = (parse_mac(&a.src_mac), parse_mac(&a.dst_mac)) else {
        return Err("MAC addresses look like aa:bb:cc:dd:ee:ff".into());
    };
    let templates: Vec<Vec<u8>> = (0..a.flows)
        .map(|k| {
            let hdr = if a.src.is_ipv6() { 14 + 40 + 8 } else { 14 + 20 + 8 };
            let mut p =
                Pkt::udp(SocketAddr::new(a.src, 10000 + k), a.dst)
                    .payload(&vec![0x5a; a.size.max(60).saturating_sub(hdr)]);
            p.src_mac = src_mac;
            p.dst_mac = dst_mac;
            p.build()
        })
        .collect();
    let shared = Shared::new(16 << 20, false).map_err(|e| format!("UMEM: {e}"))?;
    let ports = open_ports(&shared, &[(a.iface.clone(), 0)], true).map_err(|e| e.to_string())?;
    let mut io = Io::new(shared.clone(), ports, 0, shared.frames());
    let start = Instant::now();
    let end = Duration::from_secs_f64(a.seconds);
    let mut sent = 0u64;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= end {
            break;
        }
        let target = (elapsed.as_secs_f64() * a.pps as f64) as u64;
        io.reap_completions();
        while sent < target {
            let burst = (target - sent).min(64) as usize;
            let base = sent;
            let n = io.transmit_new(0, burst, |k, buf| {
                let t = &templates[((base + k as u64) % templates.len() as u64) as usize];
                buf[..t.len()].copy_from_slice(t);
                t.len()
            });
            if n == 0 {
                io.reap_completions();
                break;
            }
            sent += n as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Let the last transmissions complete.
    std::thread::sleep(Duration::from_millis(50));
    io.reap_completions();
    Ok(serde_json::json!({"sent": sent, "seconds": secs, "offered_pps": (sent as f64 / secs).round()}).to_string())
}
