//! Untrusted input: no byte sequence panics the parsers or the pipeline; a
//! single flipped bit in a valid frame that opens or answers a flow either
//! yields a valid frame or a counted drop (or a pass to the kernel); and a
//! flipped bit in an established flow's segment (whose L4 checksum is left
//! to its receiver) never leaves with a checksum made valid.

mod common;
use common::*;
use proptest::prelude::*;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{icmp_error, topo, Pkt, Summary};
use xdpvs::wire::{ethernet, icmp, ipv4, ipv6, tcp, udp};
use xdpvs_api::config::{Fwd, Proto, SchedKind};

fn all_views(b: &[u8]) {
    if let Ok(e) = ethernet::EthernetFrame::new_checked(b) {
        let _ = (e.src(), e.dst(), e.payload());
    }
    if let Ok(p) = ipv4::Ipv4Packet::new_checked(b) {
        let _ = (p.payload(), p.verify_checksum(), p.src(), p.dst());
    }
    if let Ok(p) = ipv4::Ipv4Packet::new_checked_quoted(b) {
        let _ = (p.payload(), p.verify_checksum());
    }
    if let Ok(p) = ipv6::Ipv6Packet::new_checked_quoted(b) {
        let _ = p.upper_layer();
    }
    if let Ok(t) = tcp::TcpSegment::new_checked(b) {
        let _ = (t.payload(), t.options().count());
    }
    if let Ok(u) = udp::UdpDatagram::new_checked(b) {
        let _ = u.payload();
    }
    if let Ok(m) = icmp::IcmpPacket::new_checked(b) {
        let _ = m.payload();
    }
}

fn harnesses() -> Vec<H> {
    let mut v = Vec::new();
    for v6 in [false, true] {
        for fwd in [Fwd::Dr, Fwd::Nat, Fwd::FullNat, Fwd::Tun] {
            v.push(H::new(v6, Proto::Tcp, fwd, SchedKind::Rr, 2));
        }
    }
    v
}

/// A valid frame of each kind the pipeline handles.
fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for v6 in [false, true] {
        let a = addrs(v6);
        v.push(to_vip(v6, Proto::Tcp, 40000, SYN_).payload(b"hello").build());
        v.push(to_vip(v6, Proto::Udp, 40000, 0).build());
        let mut r = Pkt::tcp(sa(a.rs[0], 8080), sa(a.client, 40000), SYNACK).payload(b"world");
        r.src_mac = topo::RS_MACS[0];
        v.push(r.build());
        let q = Pkt::tcp(sa(a.vip, 80), sa(a.client, 40000), SYNACK).ip_packet();
        let (t, c) = if v6 { (2, 0) } else { (3, 4) };
        v.push(icmp_error((topo::CLIENT_MAC, topo::CLIENT_IF_MAC), a.client, a.vip, t, c, 1400, &q));
    }
    v
}

fn run(h: &mut H, f: &[u8]) -> (Verdict, Vec<u8>) {
    let before = h.core.stats().clone();
    let (v, out) = h.send(f);
    let after = h.core.stats();
    match v {
        Verdict::Drop(d) => assert_eq!(after.dropped(d), before.dropped(d) + 1, "drop {d:?} not counted"),
        Verdict::Pass => assert_eq!(after.pass, before.pass + 1),
        Verdict::Tx { .. } => assert_eq!(after.tx, before.tx + 1),
        Verdict::Handoff(_) => {}
        // Waiting for a neighbour: the frame as it came (link padding aside).
        Verdict::Park(_) => assert_eq!(&out[..], &f[..out.len()], "a parked frame was modified"),
        // A fragment held for its datagram.
        Verdict::Taken => assert_eq!(after.frag_held, before.frag_held + 1),
    }
    (v, out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        all_views(&b);
        let mut h = H::new(false, Proto::Tcp, Fwd::FullNat, SchedKind::Rr, 2);
        run(&mut h, &b);
    }

    #[test]
    fn arbitrary_payload_after_valid_headers_never_panics(
        seed in 0usize..8,
        at in 14usize..120,
        junk in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut f = seeds()[seed].clone();
        for (i, b) in junk.iter().enumerate() {
            if at + i < f.len() {
                f[at + i] = *b;
            }
        }
        all_views(&f[14..]);
        for h in &mut harnesses() {
            run(h, &f);
            run(h, &f[..f.len().min(at)]);
        }
    }
}

#[test]
fn single_bit_flips_forward_valid_frames_or_count_drops() {
    let mut checked = 0;
    let mut hs = harnesses();
    // Warm the flows first so replies and errors have a session.
    for h in &mut hs {
        for s in seeds().iter().step_by(4) {
            h.send(s);
        }
    }
    for seed in seeds() {
        for bit in 0..seed.len() * 8 {
            let mut f = seed.clone();
            f[bit / 8] ^= 1 << (bit % 8);
            for h in &mut hs {
                let (v, out) = run(h, &f);
                if let Verdict::Tx { .. } = v {
                    let s = Summary::parse(&out).unwrap_or_else(|| panic!("unparsable frame out for bit {bit}"));
                    let mut ip = s.ip;
                    loop {
                        assert!(
                            ip.ip_csum_ok && ip.l4_csum_ok,
                            "bit {bit} of {seed:02x?}: invalid frame forwarded: {ip:#?}"
                        );
                        match ip.inner {
                            Some(inner) if ip.proto == 4 || ip.proto == 41 => ip = *inner,
                            _ => break,
                        }
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000);
}

/// All the checksums of `s`, outer and inner, hold.
fn checks_out(s: &Summary) -> bool {
    let mut ip = &s.ip;
    loop {
        if !(ip.ip_csum_ok && ip.l4_csum_ok) {
            return false;
        }
        match &ip.inner {
            Some(inner) if ip.proto == 4 || ip.proto == 41 => ip = inner,
            _ => return true,
        }
    }
}

/// `s` with the IPv6 fields no checksum covers (at every level) as in `clean`.
fn uncovered_as(mut s: Summary, clean: &Summary) -> Summary {
    let (mut ip, mut c) = (&mut s.ip, &clean.ip);
    loop {
        if ip.src.is_ipv6() {
            (ip.tos, ip.ttl) = (c.tos, c.ttl);
        }
        match (&mut ip.inner, &c.inner) {
            (Some(a), Some(b)) => (ip, c) = (a, b),
            _ => return s,
        }
    }
}

/// A harness with an established connection from client port 40000; its
/// data segments both ways (the server's only through NAT/FULLNAT).
fn established(v6: bool, fwd: Fwd) -> (H, Vec<Vec<u8>>) {
    let mut h = H::new(v6, Proto::Tcp, fwd, SchedKind::Rr, 2);
    let (_, out) = h.tx(&to_vip(v6, Proto::Tcp, 40000, SYN_).build());
    let mut segments = vec![to_vip(v6, Proto::Tcp, 40000, ACK_ | tcp::flags::PSH).payload(b"hello, server").build()];
    if fwd.two_way() {
        let reply = |flags| {
            let mut r = Pkt::tcp(sa(out.ip.dst, out.ip.dport), sa(out.ip.src, out.ip.sport), flags);
            r.src_mac = topo::RS_MACS[0];
            r
        };
        h.tx(&reply(SYNACK).build());
        segments.push(reply(ACK_ | tcp::flags::PSH).payload(b"hello, client").build());
    }
    h.tx(&to_vip(v6, Proto::Tcp, 40000, ACK_).build());
    (h, segments)
}

#[test]
fn a_corrupted_established_segment_never_leaves_with_a_valid_checksum() {
    for v6 in [false, true] {
        for fwd in [Fwd::Dr, Fwd::Nat, Fwd::FullNat, Fwd::Tun] {
            let (mut h, segments) = established(v6, fwd);
            let mut kept = 0;
            for seg in segments {
                let (_, clean) = h.tx(&seg);
                assert!(checks_out(&clean), "{fwd:?} v6={v6}: the clean segment went out broken");
                for bit in 0..seg.len() * 8 {
                    let mut f = seg.clone();
                    f[bit / 8] ^= 1 << (bit % 8);
                    let (v, out) = run(&mut h, &f);
                    let Verdict::Tx { .. } = v else { continue };
                    let s = Summary::parse(&out).unwrap_or_else(|| panic!("unparsable frame out for bit {bit}"));
                    if s.ip.icmp_type.is_some() {
                        // The director's own answer (an IPv6 hop limit
                        // flipped to 1: time exceeded), not the segment.
                        continue;
                    }
                    if checks_out(&s) {
                        // Only a bit the director overwrites anyway (a MAC),
                        // or one no checksum covers (IPv6's traffic class,
                        // flow label, hop limit), may go unseen: otherwise
                        // the frame is the clean one's.
                        assert_eq!(
                            uncovered_as(s, &clean),
                            clean,
                            "{fwd:?} v6={v6}: bit {bit} of {seg:02x?} left with valid checksums"
                        );
                    } else {
                        kept += 1;
                    }
                }
            }
            // The receiver's check had work: payload flips were forwarded.
            assert!(kept > 100, "{fwd:?} v6={v6}: {kept} corrupted segments forwarded");
            assert!(h.core.short_way_taken() > 100, "{fwd:?} v6={v6}: the short way was not taken");
        }
    }
}
