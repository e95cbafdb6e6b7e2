//! Fragments to a service, packet in, packet out, through one core: every
//! fragment of a datagram is held until the datagram is complete, then each
//! goes on as the first fragment's session says (DR, TUN, NAT, FULLNAT;
//! IPv4 and IPv6; in any arrival order); the datagram the server gets back
//! together is the client's, its transport checksum right for the new
//! addresses. Overlapping, oversized, malformed and incomplete trains are
//! dropped whole and counted.

mod common;
use common::*;
use std::net::IpAddr;
use xdpvs::lb::stats::DropReason;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{ether, ip_packet, topo, Pkt, Summary};
use xdpvs::wire::checksum;
use xdpvs_api::config::{Fwd, Proto, SchedKind};

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The IP packet `ip` cut into fragments of at most `size` data bytes
/// (a multiple of 8), as whole frames; IPv6 gets a fragment header.
fn fragments(ip: &[u8], v6: bool, size: usize, id: u32) -> Vec<Vec<u8>> {
    let hl = if v6 { 40 } else { 20 };
    let data = &ip[hl..];
    let mut out = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let end = (off + size).min(data.len());
        let more = end < data.len();
        out.push(fragment(ip, v6, off, &data[off..end], more, id));
        off = end;
    }
    out
}

/// One fragment of `ip` carrying `piece` at `off`.
fn fragment(ip: &[u8], v6: bool, off: usize, piece: &[u8], more: bool, id: u32) -> Vec<u8> {
    let a = addrs(v6);
    let mut p = if v6 {
        let mut h = ip[..40].to_vec();
        let next = h[6];
        h[6] = 44;
        let om = (off as u16) | u16::from(more);
        h.extend_from_slice(&[next, 0]);
        h.extend_from_slice(&om.to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(piece);
        let plen = (h.len() - 40) as u16;
        h[4..6].copy_from_slice(&plen.to_be_bytes());
        h
    } else {
        let mut h = ip[..20].to_vec();
        h.extend_from_slice(piece);
        let total = h.len() as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&(id as u16).to_be_bytes());
        let ff = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&ff.to_be_bytes());
        h[10..12].fill(0);
        let c = !checksum::fold(checksum::sum(&h[..20], 0));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    };
    let _ = a;
    p = ether(topo::CLIENT_MAC, topo::CLIENT_IF_MAC, None, v6, &p);
    p
}

/// Sends every frame of `order` (indices into `frags`); returns the frames
/// sent on (the last one's verdict in place, the held ones as emitted).
fn send_all(h: &mut H, frags: &[Vec<u8>], order: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let (v, f) = h.send(&frags[i]);
        if k + 1 < order.len() {
            assert_eq!(v, Verdict::Taken, "fragment {i} held ({:?})", h.drops());
        } else {
            assert!(matches!(v, Verdict::Tx { .. }), "the last fragment completes the datagram: {v:?} {:?}", h.drops());
            out.push(f);
        }
    }
    h.core.take_emitted(|_, b| out.push(b.to_vec()));
    out
}

/// The IP packets inside the frames (a tunnel's inner packet for TUN).
fn ip_of(frame: &[u8], tun: bool) -> Vec<u8> {
    let l3 = 14;
    let outer = &frame[l3..];
    if !tun {
        return outer.to_vec();
    }
    let hl = if outer[0] >> 4 == 6 { 40 } else { usize::from(outer[0] & 0xf) * 4 };
    outer[hl..].to_vec()
}

/// Puts fragments back together: (src, dst, the transport bytes).
fn reassemble(ips: &[Vec<u8>]) -> (IpAddr, IpAddr, u8, Vec<u8>) {
    let mut parts: Vec<(usize, Vec<u8>)> = Vec::new();
    let (mut src, mut dst, mut proto) = (IpAddr::from([0, 0, 0, 0]), IpAddr::from([0, 0, 0, 0]), 0);
    for ip in ips {
        let s = Summary::parse(&ether(topo::CLIENT_MAC, topo::CLIENT_IF_MAC, None, ip[0] >> 4 == 6, ip)).unwrap();
        (src, dst) = (s.ip.src, s.ip.dst);
        if ip[0] >> 4 == 6 {
            assert_eq!(ip[6], 44, "a fragment header");
            proto = ip[40];
            let off = usize::from(be16(ip, 42) & 0xfff8);
            parts.push((off, ip[48..].to_vec()));
        } else {
            assert!(s.ip.ip_csum_ok, "IPv4 header checksum");
            proto = ip[9];
            let off = usize::from(be16(ip, 6) & 0x1fff) * 8;
            let hl = usize::from(ip[0] & 0xf) * 4;
            parts.push((off, ip[hl..usize::from(be16(ip, 2))].to_vec()));
        }
    }
    parts.sort();
    let mut data = Vec::new();
    for (off, p) in parts {
        assert_eq!(off, data.len(), "contiguous");
        data.extend(p);
    }
    (src, dst, proto, data)
}

fn l4_checksum_ok(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> bool {
    let seed = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_v4(s.octets(), d.octets(), proto, l4.len() as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_v6(s.octets(), d.octets(), proto, l4.len() as u32),
        _ => unreachable!(),
    };
    checksum::fold(checksum::sum(l4, seed)) == 0xffff
}

fn datagram(v6: bool, proto: Proto, len: usize) -> (Pkt, Vec<u8>) {
    let payload: Vec<u8> = (0..len).map(|k| (k * 7 % 251) as u8).collect();
    let p = to_vip(v6, proto, 41000, SYN_).payload(&payload);
    let ip = p.ip_packet();
    (p, ip)
}

fn through(v6: bool, proto: Proto, fwd: Fwd, order: &[usize]) {
    let mut h = H::new(v6, proto, fwd, SchedKind::Rr, 1);
    let (p, ip) = datagram(v6, proto, 4000);
    let frags = fragments(&ip, v6, 1400, 0x1234_5678);
    assert_eq!(frags.len(), 3);
    let out = send_all(&mut h, &frags, order);
    assert_eq!(out.len(), 3, "every fragment went on");
    let a = addrs(v6);
    for f in &out {
        let s = Summary::parse(f).unwrap();
        let want_dst = if fwd == Fwd::Dr { a.vip } else { a.rs[0] };
        assert_eq!(s.ip.dst, want_dst, "{fwd:?}: to the server");
        if fwd == Fwd::Dr {
            assert_eq!(s.dst_mac, topo::RS_MACS[0], "DR: the server's MAC");
        }
    }
    let ips: Vec<Vec<u8>> = out.iter().map(|f| ip_of(f, fwd == Fwd::Tun)).collect();
    let (src, dst, pr, l4) = reassemble(&ips);
    let want_src = if fwd == Fwd::FullNat { a.lip } else { a.client };
    let want_dst = if matches!(fwd, Fwd::Dr | Fwd::Tun) { a.vip } else { a.rs[0] };
    assert_eq!((src, dst, pr), (want_src, want_dst, p.proto), "{fwd:?}");
    assert_eq!(&l4[l4.len() - 4000..], &p.payload[..], "the data arrives whole");
    assert!(l4_checksum_ok(src, dst, pr, &l4), "{fwd:?} v6={v6}: the checksum is right for the new addresses");
    if matches!(fwd, Fwd::Nat | Fwd::FullNat) {
        assert_eq!(be16(&l4, 2), 8080, "the server's port");
    }
    assert_eq!(h.core.stats().frag_reassembled, 1);
    assert!(h.drops().is_empty(), "{:?}", h.drops());
    assert_eq!(h.core.session_count().0 + h.core.session_count().1, 1, "one session for the datagram");
}

#[test]
fn udp_datagrams_in_fragments_reach_the_server_whole_in_every_mode() {
    for v6 in [false, true] {
        for fwd in [Fwd::Dr, Fwd::Tun, Fwd::Nat, Fwd::FullNat] {
            through(v6, Proto::Udp, fwd, &[0, 1, 2]);
            through(v6, Proto::Udp, fwd, &[2, 0, 1]);
            through(v6, Proto::Udp, fwd, &[1, 2, 0]);
        }
    }
}

#[test]
fn tcp_segments_in_fragments_reach_the_server_whole_in_every_mode() {
    for v6 in [false, true] {
        for fwd in [Fwd::Dr, Fwd::Tun, Fwd::Nat, Fwd::FullNat] {
            through(v6, Proto::Tcp, fwd, &[2, 1, 0]);
        }
    }
}

#[test]
fn a_fullnat_reply_in_fragments_reaches_the_client() {
    let mut h = H::new(false, Proto::Udp, Fwd::FullNat, SchedKind::Rr, 1);
    let (_, s) = h.tx(&to_vip(false, Proto::Udp, 41001, 0).build());
    let a = addrs(false);
    let payload: Vec<u8> = (0..3000).map(|k| k as u8).collect();
    let mut reply = Pkt::udp(sa(a.rs[0], 8080), sa(a.lip, s.ip.sport)).payload(&payload);
    reply.src_mac = topo::RS_MACS[0];
    reply.dst_mac = topo::RS_IF_MAC;
    let frags: Vec<Vec<u8>> = fragments(&reply.ip_packet(), false, 1400, 9)
        .into_iter()
        .map(|f| ether(topo::RS_MACS[0], topo::RS_IF_MAC, None, false, &f[14..]))
        .collect();
    let out = send_all(&mut h, &frags, &[1, 2, 0]);
    let ips: Vec<Vec<u8>> = out.iter().map(|f| ip_of(f, false)).collect();
    let (src, dst, _, l4) = reassemble(&ips);
    assert_eq!((src, dst), (a.vip, a.client));
    assert_eq!((be16(&l4, 0), be16(&l4, 2)), (80, 41001));
    assert!(l4_checksum_ok(src, dst, 17, &l4));
    assert_eq!(&l4[8..], &payload[..]);
}

#[test]
fn overlapping_trains_are_dropped_whole_and_counted() {
    for v6 in [false, true] {
        let mut h = H::new(v6, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
        let (_, ip) = datagram(v6, Proto::Udp, 4000);
        let hl = if v6 { 40 } else { 20 };
        let data = &ip[hl..];
        let a = fragment(&ip, v6, 0, &data[..1400], true, 7);
        let b = fragment(&ip, v6, 1392, &data[1392..2800], true, 7);
        assert_eq!(h.send(&a).0, Verdict::Taken);
        assert_eq!(h.send(&b).0, Verdict::Drop(DropReason::FragOverlap));
        assert_eq!(h.core.stats().dropped(DropReason::FragOverlap), 2, "both fragments counted");
        // The train is gone: the rest of it makes a new train, never a datagram.
        let c = fragment(&ip, v6, 2800, &data[2800..], false, 7);
        assert_eq!(h.send(&c).0, Verdict::Taken);
        assert_eq!(h.core.session_count(), (0, 0));
    }
}

#[test]
fn incomplete_trains_time_out_and_are_counted() {
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
    let (_, ip) = datagram(false, Proto::Udp, 4000);
    let frags = fragments(&ip, false, 1400, 3);
    assert_eq!(h.send(&frags[0]).0, Verdict::Taken);
    assert_eq!(h.send(&frags[2]).0, Verdict::Taken);
    h.advance(2);
    assert_eq!(h.core.stats().dropped(DropReason::FragTimeout), 0);
    h.advance(2);
    assert_eq!(h.core.stats().dropped(DropReason::FragTimeout), 2, "two fragments waited 3 s in vain");
    // The missing one alone is a new train.
    assert_eq!(h.send(&frags[1]).0, Verdict::Taken);
}

#[test]
fn tiny_first_fragments_and_huge_datagrams_are_refused() {
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
    let (_, ip) = datagram(false, Proto::Udp, 4000);
    let data = &ip[20..];
    // A first fragment of 8 bytes: the UDP header fits (8); TCP's would not.
    let (_, tip) = datagram(false, Proto::Tcp, 100);
    let t = &tip[20..];
    let a = fragment(&tip, false, 0, &t[..8], true, 5);
    let b = fragment(&tip, false, 8, &t[8..], false, 5);
    assert_eq!(h.send(&a).0, Verdict::Taken);
    assert_eq!(h.send(&b).0, Verdict::Drop(DropReason::FragMalformed), "no ports in the first fragment");
    // A fragment reaching past 65,535 bytes.
    let big = fragment(&ip, false, 65528, &data[..16], false, 6);
    assert_eq!(h.send(&big).0, Verdict::Drop(DropReason::FragTooBig));
    // Not a multiple of 8 before the last.
    let odd = fragment(&ip, false, 0, &data[..13], true, 8);
    assert_eq!(h.send(&odd).0, Verdict::Drop(DropReason::FragMalformed));
}

#[test]
fn too_many_fragments_drop_the_train() {
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
    let (_, ip) = datagram(false, Proto::Udp, 4000);
    let frags = fragments(&ip, false, 8, 11);
    let mut dropped = None;
    for (k, f) in frags.iter().enumerate() {
        match h.send(f).0 {
            Verdict::Taken => {}
            Verdict::Drop(d) => {
                dropped = Some((k, d));
                break;
            }
            v => panic!("{v:?}"),
        }
    }
    assert_eq!(dropped, Some((64, DropReason::FragTooMany)));
    assert_eq!(h.core.stats().dropped(DropReason::FragTooMany), 65);
}

#[test]
fn fragments_to_no_service_address_are_the_kernels() {
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
    let a = addrs(false);
    let p = Pkt::udp(sa(a.client, 1), sa("198.18.0.1".parse().unwrap(), 53)).payload(&[1; 3000]);
    let frags = fragments(&p.ip_packet(), false, 1400, 1);
    assert_eq!(h.send(&frags[0]).0, Verdict::Pass);
    let _ = ip_packet;
}
