//! Packet-in / packet-out fixture table: every forwarding mode × IPv4/IPv6 ×
//! TCP/UDP × each direction the mode has. Each case states the frame that
//! goes in and the fields of the frame that must come out.

mod common;
use common::*;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{topo, Pkt};
use xdpvs::wire::proto as ipproto;
use xdpvs_api::config::{Fwd, Proto, SchedKind};

#[derive(Debug, Clone, Copy)]
struct Case {
    v6: bool,
    proto: Proto,
    fwd: Fwd,
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for v6 in [false, true] {
        for proto in [Proto::Tcp, Proto::Udp] {
            for fwd in [Fwd::Dr, Fwd::Nat, Fwd::FullNat, Fwd::Tun] {
                v.push(Case { v6, proto, fwd });
            }
        }
    }
    v
}

fn check(c: Case) -> Result<(), String> {
    let a = addrs(c.v6);
    let mut h = H::new(c.v6, c.proto, c.fwd, SchedKind::Rr, 1);
    let first = if c.proto == Proto::Tcp { SYN_ } else { 0 };
    let pkt = to_vip(c.v6, c.proto, 40000, first);
    let sent = xdpvs::testkit::IpSummary::parse(&pkt.ip_packet(), false).unwrap();
    let (iface, out) = h.tx(&pkt.build());
    let ensure = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{c:?} inbound: {what}; got {out:#?}"))
        }
    };
    ensure(iface == 1, "leaves on the real-server side")?;
    ensure(
        out.dst_mac == topo::RS_MACS[0] && out.src_mac == topo::RS_IF_MAC,
        "MACs: RS's, from the director's RS-side interface",
    )?;
    ensure(out.ip.ip_csum_ok && out.ip.l4_csum_ok, "checksums valid")?;
    let lport = match c.fwd {
        Fwd::Dr => {
            ensure(out.ip == sent, "DR leaves the IP packet untouched")?;
            None
        }
        Fwd::Nat => {
            ensure(out.ip.src == a.client && out.ip.sport == 40000, "NAT keeps the client as source")?;
            ensure(out.ip.dst == a.rs[0] && out.ip.dport == 8080, "NAT: destination becomes RIP:rport")?;
            ensure(out.ip.ttl == 63, "TTL decremented")?;
            ensure(out.ip.payload == sent.payload, "payload intact")?;
            None
        }
        Fwd::FullNat => {
            ensure(out.ip.src == a.lip && (1024..=65535).contains(&out.ip.sport), "FULLNAT: source becomes LIP:lport")?;
            ensure(out.ip.dst == a.rs[0] && out.ip.dport == 8080, "FULLNAT: destination becomes RIP:rport")?;
            ensure(out.ip.ttl == 63, "TTL decremented")?;
            ensure(out.ip.payload == sent.payload, "payload intact")?;
            Some(out.ip.sport)
        }
        Fwd::Tun => {
            let outer_proto = if c.v6 { ipproto::IPV6 } else { ipproto::IPIP };
            ensure(out.ip.proto == outer_proto, "TUN: IPIP / IPv6-in-IPv6")?;
            ensure(out.ip.src == a.dir_rs && out.ip.dst == a.rs[0], "TUN: outer director → RIP")?;
            ensure(out.ip.ttl == 64 && out.ip.tos == sent.tos, "TUN: outer TTL 64, DSCP copied")?;
            ensure(out.ip.inner.as_deref() == Some(&sent), "TUN: inner packet untouched")?;
            None
        }
    };
    // Replies: through the director for NAT/FULLNAT, not ours otherwise.
    let reply_dst = match lport {
        Some(p) => sa(a.lip, p),
        None => sa(a.client, 40000),
    };
    let mut reply = match c.proto {
        Proto::Tcp => Pkt::tcp(sa(a.rs[0], 8080), reply_dst, SYNACK),
        Proto::Udp => Pkt::udp(sa(a.rs[0], 8080), reply_dst).payload(b"pong"),
    };
    reply.src_mac = topo::RS_MACS[0];
    reply.dst_mac = topo::RS_IF_MAC;
    if !c.fwd.two_way() {
        let (v, _) = h.send(&reply.build());
        return if v == Verdict::Pass {
            Ok(())
        } else {
            Err(format!("{c:?}: a real server's direct reply is not the director's, got {v:?}"))
        };
    }
    let rsent = xdpvs::testkit::IpSummary::parse(&reply.ip_packet(), false).unwrap();
    let (iface, out) = h.tx(&reply.build());
    let ensure = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{c:?} outbound: {what}; got {out:#?}"))
        }
    };
    ensure(iface == 0, "leaves on the client side")?;
    ensure(out.dst_mac == topo::CLIENT_MAC && out.src_mac == topo::CLIENT_IF_MAC, "MACs: client's")?;
    ensure(out.ip.src == a.vip && out.ip.sport == 80, "source becomes VIP:vport")?;
    ensure(out.ip.dst == a.client && out.ip.dport == 40000, "destination is the client")?;
    ensure(out.ip.ttl == 63 && out.ip.ip_csum_ok && out.ip.l4_csum_ok, "TTL decremented, checksums valid")?;
    ensure(out.ip.payload == rsent.payload, "payload intact")?;
    Ok(())
}

#[test]
fn every_mode_family_protocol_and_direction() {
    let failures: Vec<String> = cases().into_iter().filter_map(|c| check(c).err()).collect();
    assert!(failures.is_empty(), "{} of 16 cases failed:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn vlan_tag_is_kept() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let mut p = to_vip(false, Proto::Tcp, 40000, SYN_);
    p.vlan = Some(42);
    let (_, out) = h.tx(&p.build());
    assert_eq!(out.vlan, Some(42));
    assert!(out.ip.l4_csum_ok);
}

#[test]
fn ip_options_are_carried() {
    // An IPv4 header with 4 bytes of options (NOP NOP NOP EOL).
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let p = to_vip(false, Proto::Tcp, 40000, SYN_);
    let ip = p.ip_packet();
    let mut with_opts = Vec::new();
    with_opts.extend_from_slice(&ip[..20]);
    with_opts.extend_from_slice(&[1, 1, 1, 0]);
    with_opts.extend_from_slice(&ip[20..]);
    with_opts[0] = 0x46;
    let tl = (with_opts.len() as u16).to_be_bytes();
    with_opts[2..4].copy_from_slice(&tl);
    with_opts[10..12].copy_from_slice(&[0, 0]);
    let c = !xdpvs::wire::checksum::fold(xdpvs::wire::checksum::sum(&with_opts[..24], 0));
    with_opts[10..12].copy_from_slice(&c.to_be_bytes());
    let frame = xdpvs::testkit::ether(p.src_mac, p.dst_mac, None, false, &with_opts);
    let (_, out) = h.tx(&frame);
    assert_eq!((out.ip.dst, out.ip.dport), (addrs(false).rs[0], 8080));
    assert!(out.ip.ip_csum_ok && out.ip.l4_csum_ok);
    assert_eq!(out.ip.len, with_opts.len());
}

#[test]
fn link_padding_is_trimmed() {
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
    let mut f = to_vip(false, Proto::Udp, 40000, 0).payload(b"").build();
    f.resize(60, 0xee); // a minimum-size Ethernet frame with padding
    let (v, out) = h.send(&f);
    assert!(matches!(v, Verdict::Tx { .. }));
    assert_eq!(out.len(), 14 + 28, "padding must not be forwarded");
}

#[test]
fn not_ours_goes_to_the_kernel() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let a = addrs(false);
    // TCP to the director's own address, to another port of the VIP, UDP to the VIP:80 (a TCP service), ARP.
    for p in [
        Pkt::tcp(sa(a.client, 1), sa(a.dir_client, 22), SYN_),
        Pkt::tcp(sa(a.client, 1), sa(a.vip, 81), SYN_),
        Pkt::udp(sa(a.client, 1), sa(a.vip, 80)),
    ] {
        assert_eq!(h.send(&p.build()).0, Verdict::Pass, "{p:?}");
    }
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&topo::CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    assert_eq!(h.send(&arp).0, Verdict::Pass);
    // ICMP echo to the VIP: the kernel answers it.
    let echo = xdpvs::testkit::icmp_error((topo::CLIENT_MAC, topo::CLIENT_IF_MAC), a.client, a.vip, 8, 0, 1, &[]);
    assert_eq!(h.send(&echo).0, Verdict::Pass);
    assert_eq!(h.core.stats().pass, 5);
}
