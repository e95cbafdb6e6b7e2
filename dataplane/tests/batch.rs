//! `process_batch` must behave exactly like `process` one frame at a time:
//! same verdicts, same bytes out, same counters — with flows created, hit and
//! ended inside one burst, above and below the two-pass probe threshold.

mod common;
use common::*;
use std::net::IpAddr;
use xdpvs::lb::core::{CoreParams, BATCH};
use xdpvs::lb::frame::Frame;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{icmp_error, topo, Pkt};
use xdpvs::wire::tcp::flags::*;
use xdpvs_api::config::{Fwd, Proto, SchedKind};

/// A reproducible mix: SYNs of new flows, data of earlier flows, server
/// replies, RSTs, ICMP errors, junk.
fn traffic(flows: u32, n: usize, seed: u64) -> Vec<Vec<u8>> {
    let a = addrs(false);
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let client = |i: u32| IpAddr::from([198, 18, 1 + (i >> 8) as u8, i as u8]);
    (0..n)
        .map(|_| {
            let r = next();
            let i = (r >> 8) as u32 % flows;
            let c = sa(client(i), 1024 + (i % 50000) as u16);
            match r % 10 {
                0..=3 => Pkt::tcp(c, sa(a.vip, 80), SYN).build(),
                4..=6 => Pkt::tcp(c, sa(a.vip, 80), ACK | PSH).payload(b"data").build(),
                7 => {
                    // A reply from the server the flow would be on, if any: any real server.
                    let mut p = Pkt::tcp(
                        sa(a.rs[(r >> 40) as usize % 3], 8080),
                        sa(a.lip, 1024 + (r >> 20) as u16 % 60000),
                        ACK,
                    );
                    p.src_mac = topo::RS_MACS[0];
                    p.build()
                }
                8 => Pkt::tcp(c, sa(a.vip, 80), RST).build(),
                _ => {
                    if r & 1 == 0 {
                        let q = Pkt::tcp(sa(a.vip, 80), c, SYN | ACK).ip_packet();
                        icmp_error((topo::CLIENT_MAC, topo::CLIENT_IF_MAC), c.ip(), a.vip, 3, 4, 1400, &q)
                    } else {
                        let mut f = Pkt::tcp(c, sa(a.vip, 80), ACK).build();
                        let k = (r >> 32) as usize % f.len();
                        f[k] ^= 0x10;
                        f
                    }
                }
            }
        })
        .collect()
}

/// Returns the sessions the run ended with.
fn run_both(flows: u32, n: usize, seed: u64) -> u32 {
    let core = || {
        let (cfg, key) = topo::config(false, Proto::Tcp, Fwd::FullNat, SchedKind::Wlc, 3);
        H::with(cfg, key, CoreParams { max_sessions: 1 << 17, reserve_sessions: 1 << 10, ..CoreParams::default() })
    };
    let (mut one, mut many) = (core(), core());
    let frames = traffic(flows, n, seed);
    let expect: Vec<(Verdict, Vec<u8>)> = frames.iter().map(|f| one.send(f)).collect();
    let mut got = Vec::new();
    for burst in frames.chunks(BATCH + 7) {
        let mut bufs: Vec<Vec<u8>> = burst
            .iter()
            .map(|f| {
                let mut b = vec![0u8; HEADROOM + f.len() + 64];
                b[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                b
            })
            .collect();
        let mut fr: Vec<Frame<'_>> =
            bufs.iter_mut().zip(burst).map(|(b, f)| Frame::new(b, HEADROOM, f.len()).unwrap()).collect();
        let mut v = vec![Verdict::Pass; fr.len()];
        many.core.process_batch(&mut fr, 0, &mut v);
        got.extend(v.into_iter().zip(fr.iter().map(|f| f.data().to_vec())));
    }
    for (i, (e, g)) in expect.iter().zip(&got).enumerate() {
        assert_eq!(e, g, "frame {i} differs between process and process_batch");
    }
    assert_eq!(one.core.stats(), many.core.stats());
    assert_eq!(one.core.session_count(), many.core.session_count());
    many.core.session_count().0
}

#[test]
fn batch_equals_one_at_a_time_small_table() {
    assert!(run_both(500, 5_000, 7) < 1000);
}

#[test]
fn batch_equals_one_at_a_time_above_two_pass_threshold() {
    let sessions = run_both(50_000, 100_000, 11);
    assert!(sessions > 20_000, "only {sessions} sessions: below the two-pass threshold");
}
