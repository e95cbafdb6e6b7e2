//! The frame pipeline in every mode (DR, TUN, NAT, FULLNAT) and family:
//! a few frames, each a well-formed client or server packet the fuzzer
//! shapes (ports, flags, options, payload) and then damages byte by byte,
//! or raw bytes, go through one core. It never panics, never writes past
//! the frame's room, and every frame it transmits is IP that parses with a
//! good IPv4 header checksum.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use xdpvs::lb::core::{Core, CoreParams};
use xdpvs::lb::frame::Frame;
use xdpvs::lb::snapshot::Snapshot;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{topo, Pkt, Summary};
use xdpvs_api::config::{Fwd, Proto, SchedKind};

#[derive(Arbitrary, Debug)]
struct Input {
    mode: u8,
    frames: Vec<Shaped>,
}

#[derive(Arbitrary, Debug)]
struct Shaped {
    /// 0: client → VIP; 1: real server → client (or → local address); 2: raw.
    kind: u8,
    udp: bool,
    port: u16,
    flags: u8,
    seq: u32,
    options: Vec<u8>,
    payload: Vec<u8>,
    /// (offset, xor) damage after building.
    damage: Vec<(u16, u8)>,
    raw: Vec<u8>,
    /// Seconds to let pass before this frame.
    wait: u8,
}

const HEADROOM: usize = 256;

fn frame(s: &Shaped, a: &topo::Addrs, fwd: Fwd) -> Vec<u8> {
    if s.kind % 3 == 2 {
        return s.raw.clone();
    }
    let (src, dst, src_mac, dst_mac) = if s.kind % 3 == 0 {
        (SocketAddr::new(a.client, s.port), SocketAddr::new(a.vip, 80), topo::CLIENT_MAC, topo::CLIENT_IF_MAC)
    } else {
        let to = if fwd == Fwd::FullNat { a.lip } else { a.client };
        (SocketAddr::new(a.rs[0], 8080), SocketAddr::new(to, s.port), topo::RS_MACS[0], topo::RS_IF_MAC)
    };
    let mut p = if s.udp { Pkt::udp(src, dst) } else { Pkt::tcp(src, dst, s.flags) };
    p.src_mac = src_mac;
    p.dst_mac = dst_mac;
    p.seq = s.seq;
    p.options = s.options.iter().take(40).copied().collect();
    p.payload = s.payload.iter().take(1600).copied().collect();
    let mut f = p.build();
    let n = f.len().max(1);
    for &(at, x) in s.damage.iter().take(8) {
        if let Some(b) = f.get_mut(usize::from(at) % n) {
            *b ^= x;
        }
    }
    f
}

fuzz_target!(|input: Input| {
    let fwd = [Fwd::Dr, Fwd::Tun, Fwd::Nat, Fwd::FullNat][usize::from(input.mode % 4)];
    let v6 = input.mode & 4 != 0;
    // Built once per mode (a Maglev table is 65537 entries); a fresh core per input.
    static SNAPSHOTS: OnceLock<Vec<Arc<Snapshot>>> = OnceLock::new();
    let snaps = SNAPSHOTS.get_or_init(|| {
        (0..16u8)
            .map(|m| {
                let fwd = [Fwd::Dr, Fwd::Tun, Fwd::Nat, Fwd::FullNat][usize::from(m % 4)];
                let sched = if m & 8 != 0 { SchedKind::Mh } else { SchedKind::Rr };
                topo::snapshot(&topo::config(m & 4 != 0, Proto::Tcp, fwd, sched, 3).0)
            })
            .collect()
    });
    let mut core = Core::new(
        snaps[usize::from(input.mode % 16)].clone(),
        CoreParams { max_sessions: 64, reserve_sessions: 16, ..CoreParams::default() },
        0,
    );
    let a = if v6 { topo::v6() } else { topo::v4() };
    let mut now = 0u32;
    for s in input.frames.iter().take(8) {
        now += u32::from(s.wait) * xdpvs::lb::TICKS_PER_SEC;
        core.housekeep(now);
        let bytes = frame(s, &a, fwd);
        let room = HEADROOM + bytes.len() + 256;
        let mut buf = vec![0u8; room];
        buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(&bytes);
        let Some(mut f) = Frame::new(&mut buf, HEADROOM, bytes.len()) else { continue };
        if let Verdict::Tx { .. } = core.process(&mut f, now) {
            let out = f.data().to_vec();
            let sum = Summary::parse(&out).expect("a transmitted frame is IP");
            assert!(sum.ip.ip_csum_ok, "a transmitted IPv4 header with a bad checksum");
        }
    }
});
