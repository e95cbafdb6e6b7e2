//! Hostile input to the engine: spoofed and martian sources, TTL running
//! out, frames too big for the egress link, malformed TCP options. Each is
//! dropped under its own reason, leaves no session behind, and is answered
//! with ICMP where a router would answer.

mod common;
use common::*;
use std::net::IpAddr;
use xdpvs::lb::stats::DropReason;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{Pkt, Summary};
use xdpvs_api::config::{Fwd, Proto, SchedKind};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A SYN to the VIP from `src`.
fn syn_from(v6: bool, src: IpAddr, port: u16) -> Vec<u8> {
    Pkt::tcp(sa(src, port), sa(addrs(v6).vip, 80), SYN_).build()
}

#[test]
fn spoofed_and_martian_sources_leave_no_state() {
    for v6 in [false, true] {
        let a = addrs(v6);
        let mut h = H::new(v6, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 3);
        let cases: Vec<(IpAddr, u16, DropReason)> = if v6 {
            vec![
                (ip("::1"), 1000, DropReason::MartianSource),
                (ip("ff02::1"), 1000, DropReason::MartianSource),
                (ip("::"), 1000, DropReason::MartianSource),
                (a.vip, 1000, DropReason::SpoofedSource),
                (a.rs[0], 1000, DropReason::SpoofedSource),
                (a.lip, 1000, DropReason::SpoofedSource),
                (a.client, 0, DropReason::ZeroSourcePort),
            ]
        } else {
            vec![
                (ip("127.0.0.1"), 1000, DropReason::MartianSource),
                (ip("0.1.2.3"), 1000, DropReason::MartianSource),
                (ip("224.0.0.1"), 1000, DropReason::MartianSource),
                (ip("255.255.255.255"), 1000, DropReason::MartianSource),
                (a.vip, 1000, DropReason::SpoofedSource),
                (a.rs[1], 1000, DropReason::SpoofedSource),
                (a.lip, 1000, DropReason::SpoofedSource),
                (a.client, 0, DropReason::ZeroSourcePort),
            ]
        };
        for (src, port, why) in cases {
            assert_eq!(h.send(&syn_from(v6, src, port)).0, Verdict::Drop(why), "{src}:{port}");
            assert!(h.core.stats().dropped(why) > 0, "{why:?} counted");
        }
        assert_eq!(h.core.session_count(), (0, 0), "no session for any of them");
        // A real client still connects.
        h.tx(&to_vip(v6, Proto::Tcp, 40000, SYN_).build());
    }
}

#[test]
fn ttl_one_gets_time_exceeded_and_no_session() {
    for v6 in [false, true] {
        let a = addrs(v6);
        let mut h = H::new(v6, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 3);
        let mut p = to_vip(v6, Proto::Tcp, 40000, SYN_);
        p.ttl = 1;
        let (iface, out) = h.tx(&p.build());
        assert_eq!(iface, 0, "back out of the client side");
        assert_eq!((out.ip.src, out.ip.dst), (a.vip, a.client), "from the address the client sent to");
        let want = if v6 { (3, 0) } else { (11, 0) };
        assert_eq!(out.ip.icmp_type.map(|t| (t.0, t.1)), Some(want), "time exceeded");
        let quoted = out.ip.inner.as_ref().expect("the packet quoted");
        assert_eq!((quoted.src, quoted.dport), (a.client, 80));
        assert_eq!(h.core.session_count(), (0, 0), "no state for a packet that is dropped");
        assert_eq!(h.core.stats().dropped(DropReason::TtlExceeded), 1);
        // DR forwards at layer 2 and decrements nothing: TTL 1 goes on.
        let mut dr = H::new(v6, Proto::Tcp, Fwd::Dr, SchedKind::Rr, 3);
        let (iface, _) = dr.tx(&p.build());
        assert_eq!(iface, 1);
    }
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 3);
    let mut sent = 0;
    for port in 0..200u16 {
        let mut p = to_vip(false, Proto::Tcp, 20000 + port, SYN_);
        p.ttl = 1;
        if matches!(h.send(&p.build()).0, Verdict::Tx { .. }) {
            sent += 1;
        }
    }
    assert_eq!(sent, 50, "a burst of 50, then nothing until the bucket refills");
    assert_eq!(h.core.stats().dropped(DropReason::TtlExceeded), 200, "every one counted");
    h.advance(1);
    let mut p = to_vip(false, Proto::Tcp, 30000, SYN_);
    p.ttl = 1;
    assert!(matches!(h.send(&p.build()).0, Verdict::Tx { .. }), "refilled a second later");
}

#[test]
fn too_big_for_the_egress_link() {
    for v6 in [false, true] {
        for fwd in [Fwd::Nat, Fwd::FullNat, Fwd::Dr] {
            let a = addrs(v6);
            let mut h = H::new(v6, Proto::Tcp, fwd, SchedKind::Rr, 1);
            h.tx(&to_vip(v6, Proto::Tcp, 40000, SYN_).build());
            let mut big = to_vip(v6, Proto::Tcp, 40000, ACK_).payload(&[7u8; 2000]);
            let (iface, out) = h.tx(&big.build());
            assert_eq!(iface, 0, "{fwd:?} v6={v6}: the error goes back to the client");
            assert_eq!((out.ip.src, out.ip.dst), (a.vip, a.client));
            let want = if v6 { (2, 0, 1500) } else { (3, 4, 1500) };
            assert_eq!(out.ip.icmp_type, Some(want), "{fwd:?} v6={v6}: frag needed / packet too big, MTU 1500");
            assert_eq!(h.core.stats().dropped(DropReason::TooBig), 1);
            if !v6 {
                big.df = false;
                assert_eq!(h.send(&big.build()).0, Verdict::Drop(DropReason::TooBigNoDf), "no fragmentation here");
            }
            // What fits goes on.
            let fits = to_vip(v6, Proto::Tcp, 40000, ACK_).payload(&[7u8; 1000]).build();
            assert_eq!(h.tx(&fits).0, 1);
        }
    }
}

#[test]
fn tcp_options_shorter_than_two_are_malformed() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 3);
    let mut f = to_vip(false, Proto::Tcp, 40000, SYN_).build();
    // The SYN's TCP header grows by 4 option bytes: NOP NOP, kind 30 length 1.
    let l4 = 14 + 20;
    f.splice(l4 + 20..l4 + 20, [1u8, 1, 30, 1]);
    f[l4 + 12] = 6 << 4;
    let total = (f.len() - 14) as u16;
    f[14 + 2..14 + 4].copy_from_slice(&total.to_be_bytes());
    // Fix the IPv4 header checksum; the TCP checksum does not matter here:
    // the header is refused before it is verified.
    f[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let sum = xdpvs::wire::checksum::fold(xdpvs::wire::checksum::sum(&f[14..34], 0));
    f[14 + 10..14 + 12].copy_from_slice(&(!sum).to_be_bytes());
    assert!(Summary::parse(&f).is_some());
    assert_eq!(h.send(&f).0, Verdict::Drop(DropReason::L4Malformed));
    assert_eq!(h.core.session_count(), (0, 0));
}
