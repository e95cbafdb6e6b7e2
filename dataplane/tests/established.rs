//! The short way an established flow's packets take must answer exactly as
//! the full way: the same verdict and bytes out for every frame, the same
//! counters and sessions at the end. Two cores see the same traffic, one
//! with the short way and one without, for every forwarding method, both
//! families, TCP and UDP: handshakes, data both ways, FINs, RSTs, corrupted
//! frames, TTL 1, frames past the MTU, time passing, a server drained and
//! one removed.

mod common;
use common::*;
use std::net::IpAddr;
use xdpvs::lb::core::CoreParams;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{topo, Pkt, Summary};
use xdpvs::wire::tcp::flags::*;
use xdpvs_api::config::{DestSpec, Fwd, Proto, SchedKind};

/// A flow the client opened: its client port, and the tuple its server
/// sees (from the director's output), when the director forwarded it.
struct Flow {
    cport: u16,
    server_side: Option<(IpAddr, u16, IpAddr, u16)>,
}

struct Pair {
    short: H,
    full: H,
    v6: bool,
    proto: Proto,
    fwd: Fwd,
    frames: usize,
    forwarded_in: usize,
    forwarded_out: usize,
}

impl Pair {
    fn new(v6: bool, proto: Proto, fwd: Fwd) -> Self {
        let core = |short_way| {
            let (cfg, key) = topo::config(v6, proto, fwd, SchedKind::Rr, 3);
            H::with(
                cfg,
                key,
                CoreParams { max_sessions: 4096, reserve_sessions: 1024, short_way, ..Default::default() },
            )
        };
        Self { short: core(true), full: core(false), v6, proto, fwd, frames: 0, forwarded_in: 0, forwarded_out: 0 }
    }

    /// Both cores take `frame`; their answers must be the same.
    fn send(&mut self, frame: &[u8], what: &str) -> (Verdict, Vec<u8>) {
        let a = self.short.send(frame);
        let b = self.full.send(frame);
        assert_eq!(a, b, "{:?} {:?} v6={}: {what}: the short way answered differently", self.fwd, self.proto, self.v6);
        self.frames += 1;
        a
    }

    fn advance(&mut self, secs: u32) {
        assert_eq!(self.short.advance(secs), self.full.advance(secs), "sessions ended after {secs} s");
    }

    fn edit(&mut self, f: impl Fn(&mut H)) {
        f(&mut self.short);
        f(&mut self.full);
        self.short.publish();
        self.full.publish();
    }

    fn client_pkt(&self, cport: u16, flags: u8, payload: &[u8]) -> Pkt {
        let a = addrs(self.v6);
        match self.proto {
            Proto::Tcp => Pkt::tcp(sa(a.client, cport), sa(a.vip, 80), flags).payload(payload),
            Proto::Udp => Pkt::udp(sa(a.client, cport), sa(a.vip, 80)).payload(payload),
        }
    }

    fn server_pkt(&self, side: (IpAddr, u16, IpAddr, u16), flags: u8, payload: &[u8]) -> Pkt {
        let (rip, rport, to, to_port) = side;
        let mut p = match self.proto {
            Proto::Tcp => Pkt::tcp(sa(rip, rport), sa(to, to_port), flags).payload(payload),
            Proto::Udp => Pkt::udp(sa(rip, rport), sa(to, to_port)).payload(payload),
        };
        p.src_mac = topo::RS_MACS[0];
        p
    }
}

/// xorshift64: the same traffic on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run(v6: bool, proto: Proto, fwd: Fwd, seed: u64) -> Pair {
    let mut p = Pair::new(v6, proto, fwd);
    let mut rng = Rng(seed);
    let mut flows: Vec<Flow> = Vec::new();
    let body = [0x5au8; 1600];
    let a = addrs(v6);
    for step in 0..3000 {
        // Now and then: a server drained, one removed, a long quiet spell.
        match step {
            1000 => {
                let spec = DestSpec { addr: a.rs[0], port: 8080, weight: 0, fwd, u_threshold: 0, l_threshold: 0 };
                p.edit(|h| h.cfg.edit_dest(&h.key.clone(), spec).expect("a server of the service"));
            }
            1800 => p.edit(|h| h.cfg.del_dest(&h.key.clone(), a.rs[1], 8080).expect("a server of the service")),
            2400 => p.advance(1000),
            _ => {}
        }
        let op = rng.below(98);
        if flows.is_empty() || op < 12 {
            let cport = 2000 + flows.len() as u16;
            let (v, out) = p.send(&p.client_pkt(cport, SYN, b"").build(), "a new flow");
            let server_side = matches!(v, Verdict::Tx { .. })
                .then(|| Summary::parse(&out).expect("an IP frame").ip)
                .map(|ip| (ip.dst, ip.dport, ip.src, ip.sport));
            flows.push(Flow { cport, server_side });
            continue;
        }
        let f = &flows[rng.below(flows.len() as u64) as usize];
        let len = rng.below(400) as usize;
        let frame = match op {
            12..=49 => p.client_pkt(f.cport, ACK | PSH, &body[..len]).build(),
            50..=79 => match f.server_side {
                Some(side) => {
                    let flags = if rng.below(8) == 0 { SYN | ACK } else { ACK | PSH };
                    p.server_pkt(side, flags, &body[..len]).build()
                }
                None => continue,
            },
            80..=83 => p.client_pkt(f.cport, FIN | ACK, b"").build(),
            84..=85 => match f.server_side {
                Some(side) => p.server_pkt(side, FIN | ACK, b"").build(),
                None => continue,
            },
            86..=87 => p.client_pkt(f.cport, RST, b"").build(),
            88..=90 => {
                let mut b = p.client_pkt(f.cport, ACK, &body[..len]).build();
                let k = 14 + rng.below((b.len() - 14) as u64) as usize;
                b[k] ^= 1 << rng.below(8);
                b
            }
            91..=92 => {
                let mut pkt = p.client_pkt(f.cport, ACK, b"x");
                pkt.ttl = 1;
                pkt.build()
            }
            93..=95 => p.client_pkt(f.cport, ACK, &body[..1480]).build(),
            _ => {
                p.advance([1, 1, 5, 30, 90][rng.below(5) as usize]);
                continue;
            }
        };
        let (v, out) = p.send(&frame, "a packet of a flow");
        if let (Verdict::Tx { .. }, Some(s)) = (v, Summary::parse(&out)) {
            if s.ip.src == a.client || s.ip.dst != a.client {
                p.forwarded_in += 1;
            } else {
                p.forwarded_out += 1;
            }
        }
    }
    assert_eq!(p.short.core.stats(), p.full.core.stats(), "{fwd:?} {proto:?} v6={v6}: counters");
    assert_eq!(p.short.core.session_count(), p.full.core.session_count(), "{fwd:?} {proto:?} v6={v6}: sessions");
    p
}

#[test]
fn the_short_way_answers_as_the_full_way_in_every_mode() {
    for fwd in [Fwd::Nat, Fwd::FullNat, Fwd::Dr, Fwd::Tun] {
        for v6 in [false, true] {
            for proto in [Proto::Tcp, Proto::Udp] {
                let p = run(v6, proto, fwd, 0x9e37_79b9 ^ (fwd as u64) << 8 ^ u64::from(v6) << 4 ^ proto as u64);
                // The traffic did reach the short way's ground: flows
                // forwarded both ways (replies only through NAT/FULLNAT).
                assert!(p.forwarded_in > 300, "{fwd:?} {proto:?} v6={v6}: {} forwarded in", p.forwarded_in);
                if matches!(fwd, Fwd::Nat | Fwd::FullNat) {
                    assert!(p.forwarded_out > 200, "{fwd:?} {proto:?} v6={v6}: {} forwarded out", p.forwarded_out);
                }
                assert!(p.frames > 2500);
                let taken = p.short.core.short_way_taken();
                assert!(taken * 4 > p.forwarded_in as u64, "{fwd:?} {proto:?} v6={v6}: {taken} took the short way");
                assert_eq!(p.full.core.short_way_taken(), 0);
            }
        }
    }
}
