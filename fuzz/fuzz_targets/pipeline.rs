//! The frame pipeline in every mode (DR, TUN, NAT, FULLNAT) and family:
//! a few frames, each a well-formed client or server packet the fuzzer
//! shapes (ports, flags, options, payload) and then damages byte by byte,
//! or raw bytes, go through one core. It never panics, never writes past
//! the frame's room, and every frame it transmits is IP that parses with a
//! good IPv4 header checksum. With the SYN proxy on (NAT and FULLNAT
//! modes), frames can also answer what the director last sent: the client
//! ACKs the cookie of the last SYN-ACK, the server answers the last SYN,
//! so the splice's paths are reached, not only the cookie checks.
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
    /// 0: client → VIP; 1: real server → client (or → local address); 2: raw;
    /// 3: the client's ACK of the last cookie; 4: the server's SYN-ACK to
    /// the last SYN it was sent.
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
    /// Nonzero: sent as fragments of `8 × (split & 0x3f)` data bytes (the
    /// last first when `split & 0x40`), before any damage.
    split: u8,
}

/// `frame` (Ethernet + IP) as fragments of `size` data bytes; IPv6 gets a
/// fragment header.
fn fragments(frame: &[u8], v6: bool, size: usize, id: u32) -> Vec<Vec<u8>> {
    let hl = if v6 { 40 } else { 20 };
    if frame.len() < 14 + hl {
        return vec![frame.to_vec()];
    }
    let (head, data) = frame.split_at(14 + hl);
    let mut out = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let end = (off + size).min(data.len());
        let more = end < data.len();
        let mut f = head.to_vec();
        if v6 {
            let next = f[14 + 6];
            f[14 + 6] = 44;
            f.extend_from_slice(&[next, 0]);
            f.extend_from_slice(&((off as u16 & 0xfff8) | u16::from(more)).to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&data[off..end]);
            let plen = (f.len() - 14 - 40) as u16;
            f[18..20].copy_from_slice(&plen.to_be_bytes());
        } else {
            f.extend_from_slice(&data[off..end]);
            let total = (f.len() - 14) as u16;
            f[16..18].copy_from_slice(&total.to_be_bytes());
            f[18..20].copy_from_slice(&(id as u16).to_be_bytes());
            let ff = ((off / 8) as u16 & 0x1fff) | if more { 0x2000 } else { 0 };
            f[20..22].copy_from_slice(&ff.to_be_bytes());
            f[24..26].fill(0);
            let c = !xdpvs::wire::checksum::fold(xdpvs::wire::checksum::sum(&f[14..34], 0));
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
        out.push(f);
        off = end;
    }
    out
}

const HEADROOM: usize = 256;

/// What the director last sent that a later frame may answer.
#[derive(Default)]
struct Seen {
    /// The last SYN-ACK to the client: (client port, its ack, the cookie).
    cookie: Option<(u16, u32, u32)>,
    /// The last SYN to a server: (where from, its sequence number).
    syn: Option<(SocketAddr, u32)>,
}

fn frame(s: &Shaped, a: &topo::Addrs, fwd: Fwd, seen: &Seen) -> Vec<Vec<u8>> {
    let kind = s.kind % 5;
    if kind == 2 {
        return vec![s.raw.clone()];
    }
    let (mut src, mut dst, src_mac, dst_mac) = if kind == 0 || kind == 3 {
        (SocketAddr::new(a.client, s.port), SocketAddr::new(a.vip, 80), topo::CLIENT_MAC, topo::CLIENT_IF_MAC)
    } else {
        let to = if fwd == Fwd::FullNat { a.lip } else { a.client };
        (SocketAddr::new(a.rs[0], 8080), SocketAddr::new(to, s.port), topo::RS_MACS[0], topo::RS_IF_MAC)
    };
    let (mut seq, mut ack, mut flags) = (s.seq, None, s.flags);
    match (kind, seen.cookie, seen.syn) {
        (3, Some((port, isn1, cookie)), _) => {
            src.set_port(port);
            (seq, ack, flags) = (isn1, Some(cookie.wrapping_add(1)), s.flags | 0x10);
        }
        (4, _, Some((from, syn_seq))) => {
            dst = from;
            (ack, flags) = (Some(syn_seq.wrapping_add(1)), s.flags | 0x12);
        }
        _ => {}
    }
    let mut p = if s.udp && kind < 3 { Pkt::udp(src, dst) } else { Pkt::tcp(src, dst, flags) };
    p.src_mac = src_mac;
    p.dst_mac = dst_mac;
    p.seq = seq;
    p.ack = ack;
    p.options = s.options.iter().take(40).copied().collect();
    p.payload = s.payload.iter().take(1600).copied().collect();
    let whole = p.build();
    let mut frames = if s.split & 0x3f != 0 {
        fragments(&whole, a.vip.is_ipv6(), 8 * usize::from(s.split & 0x3f), u32::from(s.port) << 8 | u32::from(s.split))
    } else {
        vec![whole]
    };
    if s.split & 0x40 != 0 {
        frames.reverse();
    }
    for f in frames.iter_mut() {
        let n = f.len().max(1);
        for &(at, x) in s.damage.iter().take(8) {
            if let Some(b) = f.get_mut(usize::from(at) % n) {
                *b ^= x;
            }
        }
    }
    frames
}

/// A frame the core sent is IP, with a good IPv4 header checksum.
fn sent_ok(out: &[u8]) -> Summary {
    let sum = Summary::parse(out).expect("a transmitted frame is IP");
    assert!(sum.ip.ip_csum_ok, "a transmitted IPv4 header with a bad checksum");
    sum
}

fuzz_target!(|input: Input| {
    let fwd = [Fwd::Dr, Fwd::Tun, Fwd::Nat, Fwd::FullNat][usize::from(input.mode % 4)];
    let v6 = input.mode & 4 != 0;
    // Built once per mode (a Maglev table is 65537 entries); a fresh core
    // per input. Bit 16: the SYN proxy on (NAT and FULLNAT).
    static SNAPSHOTS: OnceLock<Vec<Arc<Snapshot>>> = OnceLock::new();
    let snaps = SNAPSHOTS.get_or_init(|| {
        (0..32u8)
            .map(|m| {
                let fwd = [Fwd::Dr, Fwd::Tun, Fwd::Nat, Fwd::FullNat][usize::from(m % 4)];
                let sched = if m & 8 != 0 { SchedKind::Mh } else { SchedKind::Rr };
                let (mut cfg, key) = topo::config(m & 4 != 0, Proto::Tcp, fwd, sched, 3);
                if m & 16 != 0 && fwd.two_way() {
                    let slot = cfg.find_service(&key).expect("made");
                    let mut spec = cfg.service(slot).expect("made").spec.clone();
                    spec.synproxy = true;
                    cfg.edit_service(spec).expect("NAT/FULLNAT take the SYN proxy");
                }
                topo::snapshot(&cfg)
            })
            .collect()
    });
    let mut core = Core::new(
        snaps[usize::from(input.mode % 32)].clone(),
        CoreParams { max_sessions: 64, reserve_sessions: 16, ..CoreParams::default() },
        0,
    );
    let a = if v6 { topo::v6() } else { topo::v4() };
    let mut now = 0u32;
    let mut seen = Seen::default();
    for s in input.frames.iter().take(8) {
        now += u32::from(s.wait) * xdpvs::lb::TICKS_PER_SEC;
        core.housekeep(now);
        for bytes in frame(s, &a, fwd, &seen).iter().take(80) {
            let room = HEADROOM + bytes.len() + 256;
            let mut buf = vec![0u8; room];
            buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
            let Some(mut f) = Frame::new(&mut buf, HEADROOM, bytes.len()) else { continue };
            let v = core.process(&mut f, now);
            core.take_emitted(|_, b| {
                sent_ok(b);
            });
            let Verdict::Tx { .. } = v else { continue };
            let sum = sent_ok(f.data());
            let flags = sum.ip.tcp_flags & 0x12;
            if sum.ip.proto == 6 && flags == 0x12 && sum.ip.dst == a.client {
                seen.cookie = Some((sum.ip.dport, sum.ip.ack, sum.ip.seq));
            } else if sum.ip.proto == 6 && flags == 0x02 && sum.ip.dst == a.rs[0] {
                seen.syn = Some((SocketAddr::new(sum.ip.src, sum.ip.sport), sum.ip.seq));
            }
        }
    }
});
