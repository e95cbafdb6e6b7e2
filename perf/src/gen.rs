//! A paced AF_XDP traffic generator: UDP (or TCP) frames from many source
//! ports (one flow each) to one destination, at a target rate, from one
//! interface's queue 0. Used by the veth benchmarks; prints what it sent.
//!
//! `--tcp` sends one SYN per flow first (so a balancer has a session for
//! each), then ACK segments. `--stamp` writes a magic and the send time
//! (CLOCK_MONOTONIC ns) at the start of the UDP payload, for `perf recv`'s
//! latency histogram (the UDP checksum is 0, which IPv4 allows).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use xdpvs::testkit::Pkt;
use xdpvs::wire::ethernet::parse_mac;
use xdpvs::wire::tcp::flags::{ACK, PSH, SYN};
use xdpvs::xsk::{open_ports, Io, Shared};
use xdpvs_api::shm::monotonic_ns;

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
    /// TCP segments instead of UDP datagrams.
    #[arg(long)]
    tcp: bool,
    /// With --tcp: no SYN first (the flows are mid-stream).
    #[arg(long)]
    no_syn: bool,
    /// Time-stamp every datagram (UDP over IPv4 only).
    #[arg(long)]
    stamp: bool,
    /// A spoofed SYN flood: every frame a SYN from a random address of this
    /// IPv4 prefix (e.g. 198.18.128.0/17), a random port and ISN, checksums
    /// valid (`--src` and `--flows` are unused).
    #[arg(long)]
    spoof: Option<String>,
}

/// A spoofing prefix: its base address and the mask of its host part.
fn spoof_prefix(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--spoof {s}: an IPv4 prefix, like 198.18.128.0/17");
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let a: std::net::Ipv4Addr = a.parse().map_err(|_| bad())?;
    let l: u32 = l.parse().ok().filter(|l| (1..=32).contains(l)).ok_or_else(bad)?;
    let host = if l == 32 { 0 } else { u32::MAX >> l };
    Ok((u32::from(a) & !host, host))
}

/// Turns the IPv4 SYN in `f` into one from `src:sport` with ISN `seq`,
/// both checksums recomputed.
fn spoofed(f: &mut [u8], src: u32, sport: u16, seq: u32) {
    use xdpvs::wire::checksum::{fold, pseudo_v4, sum};
    f[26..30].copy_from_slice(&src.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[38..42].copy_from_slice(&seq.to_be_bytes());
    f[24..26].fill(0);
    let c = !fold(sum(&f[14..34], 0));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let len = usize::from(u16::from_be_bytes([f[16], f[17]])) - 20;
    f[50..52].fill(0);
    let (s, d) = (<[u8; 4]>::try_from(&f[26..30]).expect("4"), <[u8; 4]>::try_from(&f[30..34]).expect("4"));
    let c = !fold(sum(&f[34..34 + len], pseudo_v4(s, d, 6, len as u16)));
    f[50..52].copy_from_slice(&c.to_be_bytes());
}

/// Marks a stamped payload: the magic, then the send time.
pub const STAMP_MAGIC: u64 = u64::from_le_bytes(*b"xdpvsTS1");

pub fn run(a: &Args) -> Result<String, String> {
    let (Some(src_mac), Some(dst_mac)) = (parse_mac(&a.src_mac), parse_mac(&a.dst_mac)) else {
        return Err("MAC addresses look like aa:bb:cc:dd:ee:ff".into());
    };
    let hdr = match (a.src.is_ipv6(), a.tcp) {
        (false, false) => 14 + 20 + 8,
        (true, false) => 14 + 40 + 8,
        (false, true) => 14 + 20 + 20,
        (true, true) => 14 + 40 + 20,
    };
    if a.stamp && (a.tcp || a.src.is_ipv6()) {
        return Err("--stamp is for UDP over IPv4".into());
    }
    let spoof = a.spoof.as_deref().map(spoof_prefix).transpose()?;
    if spoof.is_some() && (!a.tcp || a.src.is_ipv6() || a.stamp) {
        return Err("--spoof is for TCP over IPv4 (--tcp), without --stamp".into());
    }
    let fill = vec![0x5a; a.size.max(60).saturating_sub(hdr).max(if a.stamp { 16 } else { 0 })];
    let frame = |k: u16, flags: u8| {
        let (src, dst) = (SocketAddr::new(a.src, 10000 + k), a.dst);
        let mut p = if a.tcp { Pkt::tcp(src, dst, flags) } else { Pkt::udp(src, dst) }.payload(&fill);
        p.src_mac = src_mac;
        p.dst_mac = dst_mac;
        let mut f = p.build();
        if a.stamp {
            f[14 + 20 + 6..14 + 20 + 8].fill(0);
        }
        f
    };
    let templates: Vec<Vec<u8>> = match spoof {
        Some(_) => vec![frame(0, SYN)],
        None => (0..a.flows).map(|k| frame(k, ACK | PSH)).collect(),
    };
    let syns: Vec<Vec<u8>> =
        if a.tcp && !a.no_syn && spoof.is_none() { (0..a.flows).map(|k| frame(k, SYN)).collect() } else { Vec::new() };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let stamp_at = 14 + 20 + 8;
    let shared = Shared::new(16 << 20, false).map_err(|e| format!("UMEM: {e}"))?;
    let ports = open_ports(&shared, &[(a.iface.clone(), 0)], true).map_err(|e| e.to_string())?;
    let mut io = Io::new(shared.clone(), ports, 0, shared.frames());
    // TCP: every flow's SYN first, unpaced but bounded by the ring.
    let mut k = 0;
    while k < syns.len() {
        io.reap_completions();
        let n = io.transmit_new(0, (syns.len() - k).min(64), |i, buf| {
            let t = &syns[k + i];
            buf[..t.len()].copy_from_slice(t);
            t.len()
        });
        k += n;
    }
    if !syns.is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
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
            let now = if a.stamp { monotonic_ns() } else { 0 };
            let n = io.transmit_new(0, burst, |k, buf| {
                let t = &templates[((base + k as u64) % templates.len() as u64) as usize];
                buf[..t.len()].copy_from_slice(t);
                if let Some((net, host)) = spoof {
                    // xorshift64*: a new source, port and ISN per frame.
                    rng ^= rng >> 12;
                    rng ^= rng << 25;
                    rng ^= rng >> 27;
                    let r = rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
                    let sport = 1024 + (r >> 48) as u16 % 64512;
                    spoofed(&mut buf[..t.len()], net | (r as u32 & host), sport, (r >> 16) as u32);
                }
                if a.stamp {
                    buf[stamp_at..stamp_at + 8].copy_from_slice(&STAMP_MAGIC.to_le_bytes());
                    buf[stamp_at + 8..stamp_at + 16].copy_from_slice(&now.to_le_bytes());
                }
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
