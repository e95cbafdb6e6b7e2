//! FULLNAT hands the real server the client's address: PROXY protocol v1/v2
//! (TCP: in front of the first data, the stream shifted both ways for the
//! life of the connection; UDP: the first datagram) and TOA (the first ACK).
//! Packet in, packet out, through one core.

mod common;
use common::*;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{topo, Pkt, Summary};
use xdpvs::wire::proxy::V2_SIGNATURE;
use xdpvs_api::config::{ConfigError, DestSpec, Fwd, Proto, ProxyProtocol, SchedKind};

const FIN_: u8 = 0x01;
const PSH_ACK: u8 = 0x18;

/// A FULLNAT core whose service sends `pp` / TOA.
fn harness(v6: bool, proto: Proto, pp: Option<ProxyProtocol>, toa: bool) -> H {
    let mut h = H::new(v6, proto, Fwd::FullNat, SchedKind::Rr, 1);
    let sl = h.cfg.find_service(&h.key).unwrap();
    let mut spec = h.cfg.service(sl).unwrap().spec.clone();
    spec.proxy_protocol = pp;
    spec.toa = toa;
    h.cfg.edit_service(spec).expect("FULLNAT service takes it");
    h.publish();
    h
}

/// One TCP connection through the harness: the client's port and ISN, the
/// local port the director chose.
struct Conn {
    v6: bool,
    cport: u16,
    lport: u16,
}

impl Conn {
    /// SYN (seq `isn`), SYN-ACK (server ISN 5000), the handshake's ACK.
    fn open(h: &mut H, v6: bool, isn: u32, syn_opts: &[u8]) -> (Conn, Summary, Summary) {
        let mut syn = to_vip(v6, Proto::Tcp, 40000, SYN_);
        syn.seq = isn;
        syn.options = syn_opts.to_vec();
        let (_, s) = h.tx(&syn.build());
        assert_eq!((s.ip.seq, s.ip.tcp_options.as_slice()), (isn, syn_opts), "the SYN goes as it came");
        let c = Conn { v6, cport: 40000, lport: s.ip.sport };
        let sa_ = c.server_sends(SYNACK, 5000, isn.wrapping_add(1), &[], b"");
        let (_, back) = h.tx(&sa_.build());
        assert_eq!(back.ip.ack, isn.wrapping_add(1), "the SYN-ACK acknowledges the SYN as it was");
        let (_, ack) = h.tx(&c.client_sends(ACK_, isn.wrapping_add(1), &[], b"").build());
        (c, s, ack)
    }

    fn client_sends(&self, flags: u8, seq: u32, opts: &[u8], data: &[u8]) -> Pkt {
        let mut p = to_vip(self.v6, Proto::Tcp, self.cport, flags).payload(data);
        p.seq = seq;
        p.ack = Some(5001);
        p.options = opts.to_vec();
        p
    }

    fn server_sends(&self, flags: u8, seq: u32, ack: u32, opts: &[u8], data: &[u8]) -> Pkt {
        let a = addrs(self.v6);
        let mut p = Pkt::tcp(sa(a.rs[0], 8080), sa(a.lip, self.lport), flags).payload(data);
        p.seq = seq;
        p.ack = Some(ack);
        p.options = opts.to_vec();
        p.src_mac = topo::RS_MACS[0];
        p.dst_mac = topo::RS_IF_MAC;
        p
    }
}

fn v2_tcp4_header() -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend([0x21, 0x11, 0, 12, 198, 18, 0, 100, 198, 18, 0, 10, 0x9c, 0x40, 0, 80]);
    h
}

#[test]
fn v2_goes_in_front_of_the_first_data_and_shifts_the_stream_both_ways() {
    let mut h = harness(false, Proto::Tcp, Some(ProxyProtocol::V2), false);
    let (c, _, ack) = Conn::open(&mut h, false, 1000, &[]);
    assert_eq!((ack.ip.seq, ack.ip.payload.len()), (1001, 0), "the handshake's ACK carries nothing");
    // The first data: the header in front, same sequence number.
    let (_, d1) = h.tx(&c.client_sends(PSH_ACK, 1001, &[], b"GET / HTTP/1.0\r\n").build());
    let hdr = v2_tcp4_header();
    assert_eq!(d1.ip.seq, 1001);
    assert_eq!(&d1.ip.payload[..28], &hdr[..]);
    assert_eq!(&d1.ip.payload[28..], b"GET / HTTP/1.0\r\n");
    assert!(d1.ip.ip_csum_ok && d1.ip.l4_csum_ok);
    assert_eq!(d1.ip.len, 20 + 20 + 28 + 16);
    // The next segment moves up by the header.
    let (_, d2) = h.tx(&c.client_sends(PSH_ACK, 1017, &[], b"\r\n").build());
    assert_eq!((d2.ip.seq, d2.ip.payload.as_slice()), (1017 + 28, &b"\r\n"[..]));
    assert!(d2.ip.l4_csum_ok);
    // The server acknowledges all of it, with a SACK block (NOP NOP SACK
    // of 1 block): both come back in the client's numbering.
    let mut sack = vec![1, 1, 5, 10];
    sack.extend((1001u32 + 28 + 16).to_be_bytes());
    sack.extend((1001u32 + 28 + 18).to_be_bytes());
    let (_, a) = h.tx(&c.server_sends(ACK_, 5001, 1001 + 28 + 18, &sack, b"").build());
    assert_eq!(a.ip.ack, 1019);
    assert_eq!(&a.ip.tcp_options[4..8], &1017u32.to_be_bytes());
    assert_eq!(&a.ip.tcp_options[8..12], &1019u32.to_be_bytes());
    assert!(a.ip.l4_csum_ok);
    // A retransmission of the first segment carries the same header.
    let (_, again) = h.tx(&c.client_sends(PSH_ACK, 1001, &[], b"GET / HTTP/1.0\r\n").build());
    assert_eq!(again.ip.payload, d1.ip.payload);
    // An acknowledgement of part of the header is of nothing the client sent.
    let (_, part) = h.tx(&c.server_sends(ACK_, 5001, 1001 + 10, &[], b"").build());
    assert_eq!(part.ip.ack, 1001);
    // The client's FIN, after its data: shifted too.
    let (_, fin) = h.tx(&c.client_sends(FIN_ | ACK_, 1019, &[], b"").build());
    assert_eq!(fin.ip.seq, 1019 + 28);
    assert_eq!(h.core.stats().proxy_inserted, 2);
    assert!(h.drops().is_empty(), "{:?}", h.drops());
}

#[test]
fn v1_for_ipv6_and_ipv4_clients() {
    for v6 in [false, true] {
        let mut h = harness(v6, Proto::Tcp, Some(ProxyProtocol::V1), false);
        let (c, _, _) = Conn::open(&mut h, v6, 77, &[]);
        let (_, d) = h.tx(&c.client_sends(PSH_ACK, 78, &[], b"x").build());
        let line: &[u8] = if v6 {
            b"PROXY TCP6 2001:db8::100 2001:db8::10 40000 80\r\nx"
        } else {
            b"PROXY TCP4 198.18.0.100 198.18.0.10 40000 80\r\nx"
        };
        assert_eq!(d.ip.payload, line);
        assert!(d.ip.l4_csum_ok, "v6={v6}");
        let n = line.len() as u32 - 1;
        let (_, d2) = h.tx(&c.client_sends(PSH_ACK, 79, &[], b"y").build());
        assert_eq!(d2.ip.seq, 79 + n);
        let (_, a) = h.tx(&c.server_sends(ACK_, 5001, 80 + n, &[], b"").build());
        assert_eq!(a.ip.ack, 80);
    }
}

/// The client's ISN just below 2³²: the stream wraps, the shift holds.
#[test]
fn the_shift_holds_across_the_wrap() {
    let mut h = harness(true, Proto::Tcp, Some(ProxyProtocol::V2), false);
    let isn = u32::MAX - 5;
    let (c, _, _) = Conn::open(&mut h, true, isn, &[]);
    let mut seq = isn.wrapping_add(1);
    for k in 0..6u32 {
        let data = vec![b'a' + k as u8; 3];
        let (_, d) = h.tx(&c.client_sends(PSH_ACK, seq, &[], &data).build());
        let want = if k == 0 { seq } else { seq.wrapping_add(52) };
        assert_eq!(d.ip.seq, want, "segment {k}");
        assert!(d.ip.l4_csum_ok);
        seq = seq.wrapping_add(3);
        let (_, a) = h.tx(&c.server_sends(ACK_, 5001, seq.wrapping_add(52), &[], b"").build());
        assert_eq!(a.ip.ack, seq, "segment {k}'s acknowledgement");
    }
    assert!(seq < 100, "wrapped");
}

/// A first segment that fills the MTU: the header goes in, the data's tail
/// stays behind (the client sends it again, shifted), and its FIN with it.
#[test]
fn a_full_first_segment_is_shortened_to_fit() {
    let mut h = harness(false, Proto::Tcp, Some(ProxyProtocol::V2), false);
    let (c, _, _) = Conn::open(&mut h, false, 1000, &[]);
    let data: Vec<u8> = (0..1460u32).map(|i| i as u8).collect();
    let (_, d) = h.tx(&c.client_sends(FIN_ | PSH_ACK, 1001, &[], &data).build());
    assert_eq!(d.ip.len, 1500);
    assert_eq!(d.ip.payload.len(), 1460);
    assert_eq!(&d.ip.payload[28..], &data[..1432]);
    assert_eq!(d.ip.tcp_flags & FIN_, 0, "the FIN stays with the cut-off tail");
    assert!(d.ip.l4_csum_ok);
    let (_, a) = h.tx(&c.server_sends(ACK_, 5001, 1001 + 1460, &[], b"").build());
    assert_eq!(a.ip.ack, 1001 + 1432, "the client sees its tail unacknowledged");
    let (_, tail) = h.tx(&c.client_sends(FIN_ | PSH_ACK, 1001 + 1432, &[], &data[1432..]).build());
    assert_eq!(tail.ip.seq, 1001 + 1460);
    assert_eq!(tail.ip.payload, &data[1432..]);
    assert_eq!(h.core.stats().proxy_shortened, 1);
}

/// TOA: option 254 with the client's port and address on the first ACK,
/// on no other segment; room made from NOPs and timestamps.
#[test]
fn toa_on_the_first_ack_only() {
    for v6 in [false, true] {
        let mut h = harness(v6, Proto::Tcp, None, true);
        let ts = [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7];
        let mut syn = to_vip(v6, Proto::Tcp, 40000, SYN_);
        syn.options = ts.to_vec();
        let (_, s) = h.tx(&syn.build());
        assert_eq!(s.ip.tcp_options, ts, "the SYN is untouched");
        let c = Conn { v6, cport: 40000, lport: s.ip.sport };
        h.tx(&c.server_sends(SYNACK, 5000, 1001, &[], b"").build());
        let (_, ack) = h.tx(&c.client_sends(ACK_, 1001, &ts, b"").build());
        let a = addrs(v6);
        let mut toa = vec![254, if v6 { 20 } else { 8 }, 0x9c, 0x40];
        match a.client {
            std::net::IpAddr::V4(x) => toa.extend(x.octets()),
            std::net::IpAddr::V6(x) => toa.extend(x.octets()),
        }
        let mut want = ts.to_vec();
        want.extend(&toa);
        assert_eq!(ack.ip.tcp_options, want, "v6={v6}");
        assert!(ack.ip.ip_csum_ok && ack.ip.l4_csum_ok);
        let (_, d) = h.tx(&c.client_sends(PSH_ACK, 1001, &ts, b"GET").build());
        assert_eq!(d.ip.tcp_options, ts, "no TOA on later segments");
        assert_eq!((d.ip.seq, d.ip.payload.as_slice()), (1001, &b"GET"[..]), "TOA alone shifts nothing");
        assert_eq!(h.core.stats().toa_added, 1);
    }
}

/// A SYN with 40 option bytes connects; a first ACK with 40 bytes of
/// timestamps, SACK blocks and NOPs gets TOA where the NOPs were.
#[test]
fn toa_makes_room_and_a_full_syn_connects() {
    // MSS, SACK-permitted, timestamps, window scale, then NOPs to 40 bytes.
    let mut opts = vec![2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 3, 3, 7];
    opts.resize(40, 1);
    let mut h = harness(false, Proto::Tcp, Some(ProxyProtocol::V2), true);
    Conn::open(&mut h, false, 1000, &opts);
    assert_eq!(h.core.stats().toa_added, 1, "the handshake's ACK got it");

    let mut h = harness(false, Proto::Tcp, None, true);
    let mut syn = to_vip(false, Proto::Tcp, 40000, SYN_);
    syn.options = opts.clone();
    let (_, s) = h.tx(&syn.build());
    let c = Conn { v6: false, cport: 40000, lport: s.ip.sport };
    let mut first = vec![1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 1, 1, 1, 5, 18];
    first.extend([0u8; 16]);
    first.extend([1, 1, 1, 1, 1, 1, 1, 1]);
    assert_eq!(first.len(), 40);
    let (_, ack) = h.tx(&c.client_sends(ACK_, 1001, &first, b"").build());
    let o = &ack.ip.tcp_options;
    assert_eq!(o.len(), 36, "NOPs out, TOA in: {o:?}");
    assert_eq!(&o[..10], &first[2..12], "timestamps kept");
    assert_eq!(&o[10..28], &first[14..32], "SACK blocks kept");
    assert_eq!(&o[28..], &[254, 8, 0x9c, 0x40, 198, 18, 0, 100]);
    assert!(ack.ip.l4_csum_ok);
}

#[test]
fn udp_v2_on_the_first_datagram() {
    for v6 in [false, true] {
        let mut h = harness(v6, Proto::Udp, Some(ProxyProtocol::V2), false);
        let (_, d1) = h.tx(&to_vip(v6, Proto::Udp, 40000, 0).build());
        let hl = if v6 { 52 } else { 28 };
        assert_eq!(&d1.ip.payload[..12], &V2_SIGNATURE);
        assert_eq!(d1.ip.payload[13], if v6 { 0x22 } else { 0x12 }, "UDP over the client's family");
        assert_eq!(&d1.ip.payload[hl..], b"ping");
        assert!(d1.ip.ip_csum_ok && d1.ip.l4_csum_ok);
        let (_, d2) = h.tx(&to_vip(v6, Proto::Udp, 40000, 0).build());
        assert_eq!(d2.ip.payload, b"ping", "the flow's later datagrams go as they are");
        assert_eq!(h.core.stats().proxy_inserted, 1);
    }
}

/// A datagram with no room for the header before the MTU is dropped, by
/// name, and the next one still carries it.
#[test]
fn udp_with_no_room_is_dropped_by_name() {
    let mut h = harness(false, Proto::Udp, Some(ProxyProtocol::V2), false);
    let big = vec![7u8; 1472];
    assert!(matches!(h.send(&to_vip(false, Proto::Udp, 40000, 0).payload(&big).build()).0, Verdict::Drop(_)));
    assert_eq!(h.drops(), vec![("proxy_no_room", 1)]);
    let (_, d) = h.tx(&to_vip(false, Proto::Udp, 40000, 0).build());
    assert_eq!(&d.ip.payload[..12], &V2_SIGNATURE);
}

#[test]
fn only_fullnat_services_take_it() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let sl = h.cfg.find_service(&h.key).unwrap();
    let mut spec = h.cfg.service(sl).unwrap().spec.clone();
    spec.proxy_protocol = Some(ProxyProtocol::V2);
    let e = h.cfg.edit_service(spec.clone()).unwrap_err();
    assert!(matches!(e, ConfigError::ClientAddrNeedsFullNat("--proxy-protocol", _, _)), "{e}");
    assert!(e.to_string().contains("198.19.0.11:8080 is Masq (-m)"), "{e}");
    // A FULLNAT service with it refuses a DR server.
    let mut h = harness(false, Proto::Tcp, None, true);
    let d = DestSpec { addr: addrs(false).rs[1], port: 8080, weight: 1, fwd: Fwd::Dr, u_threshold: 0, l_threshold: 0 };
    let e = h.cfg.add_dest(&h.key.clone(), d).unwrap_err();
    assert!(e.to_string().starts_with("--toa needs FULLNAT (-b) real servers"), "{e}");
    // v1 and TOA are TCP's.
    let mut h = H::new(false, Proto::Udp, Fwd::FullNat, SchedKind::Rr, 1);
    let sl = h.cfg.find_service(&h.key).unwrap();
    let mut spec = h.cfg.service(sl).unwrap().spec.clone();
    spec.proxy_protocol = Some(ProxyProtocol::V1);
    assert_eq!(h.cfg.edit_service(spec.clone()), Err(ConfigError::ProxyV1NotTcp));
    spec.proxy_protocol = None;
    spec.toa = true;
    assert_eq!(h.cfg.edit_service(spec), Err(ConfigError::ToaNotTcp));
    h.publish();
}
