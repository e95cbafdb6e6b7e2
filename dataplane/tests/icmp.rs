//! ICMP: errors that quote a tracked flow reach that flow's peer, rewritten
//! to match; TUN answers "too big" instead of dropping silently.

mod common;
use common::*;
use xdpvs::lb::stats::DropReason;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{icmp_error, topo, IpSummary, Pkt};
use xdpvs::wire::icmp::{v4, v6};
use xdpvs_api::config::{Fwd, Proto, SchedKind};

/// (type, code, rest) of frag-needed / packet-too-big with `mtu`.
fn too_big(v6: bool, mtu: u32) -> (u8, u8, u32) {
    if v6 {
        (v6::PACKET_TOO_BIG, 0, mtu)
    } else {
        (v4::DEST_UNREACH, v4::FRAG_NEEDED, mtu)
    }
}

/// A router on the client path says the VIP's reply was too big: the error
/// must reach the real server, quoting what the real server sent.
#[test]
fn frag_needed_from_client_side_reaches_the_real_server() {
    for v6 in [false, true] {
        for fwd in [Fwd::Dr, Fwd::Nat, Fwd::FullNat, Fwd::Tun] {
            let a = addrs(v6);
            let mut h = H::new(v6, Proto::Tcp, fwd, SchedKind::Rr, 1);
            let (_, syn) = h.tx(&to_vip(v6, Proto::Tcp, 40000, SYN_).build());
            let (lip, lport) = if fwd == Fwd::FullNat { (syn.ip.src, syn.ip.sport) } else { (a.client, 40000) };
            // What the client side saw of the server's reply: VIP:80 -> client:40000.
            let reply_seen = Pkt::tcp(sa(a.vip, 80), sa(a.client, 40000), SYNACK).payload(&[7; 100]).ip_packet();
            let router = if v6 { "2001:db8::fe" } else { "198.18.0.254" }.parse().unwrap();
            let (t, c, r) = too_big(v6, 1400);
            let err = icmp_error(([2, 0, 0, 0, 0, 0xfe], topo::CLIENT_IF_MAC), router, a.vip, t, c, r, &reply_seen);
            let (iface, out) = h.tx(&err);
            let ctx = format!("v6={v6} {fwd:?}: {out:#?}");
            assert_eq!((iface, out.dst_mac), (1, topo::RS_MACS[0]), "{ctx}");
            // For TUN the ICMP travels inside the tunnel.
            let icmp = if fwd == Fwd::Tun { *out.ip.inner.clone().expect("tunnelled") } else { out.ip.clone() };
            assert!(icmp.l4_csum_ok && icmp.ip_csum_ok, "{ctx}");
            assert_eq!(icmp.icmp_type, Some((t, c, r)), "{ctx}");
            let q = icmp.inner.expect("a quoted packet");
            assert!(q.ip_csum_ok, "{ctx}");
            match fwd {
                Fwd::Dr | Fwd::Tun => {
                    assert_eq!(
                        (icmp.dst, q.src, q.sport, q.dst, q.dport),
                        (a.vip, a.vip, 80, a.client, 40000),
                        "{ctx}"
                    );
                }
                Fwd::Nat | Fwd::FullNat => {
                    assert_eq!(icmp.dst, a.rs[0], "{ctx}");
                    assert_eq!((q.src, q.sport, q.dst, q.dport), (a.rs[0], 8080, lip, lport), "{ctx}");
                    assert!(q.l4_csum_ok, "quoted TCP checksum follows the rewrite: {ctx}");
                }
            }
        }
    }
}

/// A real server says a client's datagram could not be delivered: the error
/// reaches the client, from the VIP, quoting what the client sent.
#[test]
fn port_unreachable_from_real_server_reaches_the_client() {
    for v6 in [false, true] {
        for fwd in [Fwd::Nat, Fwd::FullNat] {
            let a = addrs(v6);
            let mut h = H::new(v6, Proto::Udp, fwd, SchedKind::Rr, 1);
            let (_, fwd_pkt) = h.tx(&to_vip(v6, Proto::Udp, 40000, 0).build());
            // The RS quotes the packet it received (after our rewrite).
            let quoted = {
                let mut p = Pkt::udp(sa(fwd_pkt.ip.src, fwd_pkt.ip.sport), sa(fwd_pkt.ip.dst, fwd_pkt.ip.dport))
                    .payload(b"ping");
                p.ttl = 63;
                p.ip_packet()
            };
            let (t, c) = if v6 { (v6::DEST_UNREACH, 4) } else { (v4::DEST_UNREACH, 3) };
            let err = icmp_error((topo::RS_MACS[0], topo::RS_IF_MAC), a.rs[0], fwd_pkt.ip.src, t, c, 0, &quoted);
            let (iface, out) = h.tx(&err);
            let ctx = format!("v6={v6} {fwd:?}: {out:#?}");
            assert_eq!((iface, out.dst_mac), (0, topo::CLIENT_MAC), "{ctx}");
            assert_eq!((out.ip.src, out.ip.dst), (a.vip, a.client), "{ctx}");
            assert!(out.ip.l4_csum_ok && out.ip.ip_csum_ok, "{ctx}");
            let q = out.ip.inner.expect("quoted");
            assert_eq!((q.src, q.sport, q.dst, q.dport), (a.client, 40000, a.vip, 80), "{ctx}");
            assert!(q.l4_csum_ok, "{ctx}");
        }
    }
}

#[test]
fn tun_too_big_answers_the_client() {
    for v6 in [false, true] {
        let a = addrs(v6);
        let mut h = H::new(v6, Proto::Tcp, Fwd::Tun, SchedKind::Rr, 1);
        h.tx(&to_vip(v6, Proto::Tcp, 40000, SYN_).build());
        let hdr = if v6 { 40 } else { 20 };
        // Exactly fits after encapsulation: forwarded.
        let fits = to_vip(v6, Proto::Tcp, 40000, ACK_).payload(&vec![1u8; 1500 - hdr - hdr - 20]);
        let (_, out) = h.tx(&fits.build());
        assert_eq!(out.ip.len, 1500);
        // One byte more: "too big" back to the client, from the VIP.
        let big = to_vip(v6, Proto::Tcp, 40000, ACK_).payload(&vec![1u8; 1500 - hdr - hdr - 20 + 1]);
        let sent = IpSummary::parse(&big.ip_packet(), false).unwrap();
        let (iface, out) = h.tx(&big.build());
        let ctx = format!("v6={v6}: {out:#?}");
        assert_eq!((iface, out.dst_mac), (0, topo::CLIENT_MAC), "{ctx}");
        assert_eq!((out.ip.src, out.ip.dst), (a.vip, a.client), "{ctx}");
        let mtu = if v6 { 1460 } else { 1480 };
        assert_eq!(out.ip.icmp_type, Some(too_big(v6, mtu)), "{ctx}");
        assert!(out.ip.l4_csum_ok && out.ip.ip_csum_ok, "{ctx}");
        assert!(out.ip.len <= if v6 { 1280 } else { 576 }, "{ctx}");
        let q = out.ip.inner.expect("quoted");
        assert_eq!((q.src, q.dst, q.sport, q.dport), (sent.src, sent.dst, sent.sport, sent.dport), "{ctx}");
        assert_eq!(h.core.stats().icmp_generated, 1);
    }
    // IPv4 without DF: no ICMP, a named drop.
    let mut h = H::new(false, Proto::Udp, Fwd::Tun, SchedKind::Rr, 1);
    let mut p = to_vip(false, Proto::Udp, 40000, 0).payload(&[0u8; 1472]);
    p.df = false;
    assert_eq!(h.send(&p.build()).0, Verdict::Drop(DropReason::TooBigNoDf));
}

#[test]
fn errors_about_unknown_flows_go_to_the_kernel() {
    let a = addrs(false);
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let reply_seen = Pkt::tcp(sa(a.vip, 80), sa(a.client, 1), SYNACK).ip_packet();
    let err = icmp_error((topo::CLIENT_MAC, topo::CLIENT_IF_MAC), a.client, a.vip, 3, 3, 0, &reply_seen);
    assert_eq!(h.send(&err).0, Verdict::Pass);
}
