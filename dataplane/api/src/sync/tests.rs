use super::*;
use proptest::prelude::*;

fn v4_conn() -> Record {
    Record {
        proto: PROTO_TCP,
        flags: flags::MASQ,
        state: 1,
        client: "198.18.0.10:40000".parse().unwrap(),
        virt: "198.18.1.1:80".parse().unwrap(),
        dest: "198.19.0.11:8080".parse().unwrap(),
        fwmark: 0,
        timeout: 900,
        seq: None,
        local: None,
        reveal: None,
        splice: None,
    }
}

fn one(msg: &[u8]) -> Vec<Item> {
    match parse(msg, 0) {
        Ok(Message::Conns(r)) => r.collect(),
        other => panic!("not a conns message: {other:?}"),
    }
}

#[test]
fn ipv4_record_is_the_kernels_layout() {
    let mut b = Builder::new(7, 1472);
    assert!(b.push(&v4_conn()));
    let m = b.bytes();
    // Header: reserved 0, syncid, size, one conn, version 1, spare 0.
    assert_eq!(&m[..8], &[0, 7, 0, 44, 1, 1, 0, 0]);
    let r = &m[8..];
    assert_eq!(r[0], 0, "type: IPv4");
    assert_eq!(r[1], 6, "TCP");
    assert_eq!(u16::from_be_bytes([r[2], r[3]]), 36, "version 0, size 36");
    assert_eq!(&r[4..8], &[0, 0, 0, 0], "flags: MASQ");
    assert_eq!(&r[8..10], &[0, 1], "ESTABLISHED");
    assert_eq!(u16::from_be_bytes([r[10], r[11]]), 40000);
    assert_eq!(u16::from_be_bytes([r[12], r[13]]), 80);
    assert_eq!(u16::from_be_bytes([r[14], r[15]]), 8080);
    assert_eq!(&r[16..20], &[0, 0, 0, 0], "fwmark");
    assert_eq!(u32::from_be_bytes([r[20], r[21], r[22], r[23]]), 900);
    assert_eq!(&r[24..28], &[198, 18, 0, 10]);
    assert_eq!(&r[28..32], &[198, 18, 1, 1]);
    assert_eq!(&r[32..36], &[198, 19, 0, 11]);
    assert_eq!(one(m), vec![Item::Conn(v4_conn())]);
}

#[test]
fn ipv6_and_every_option_round_trip_with_padding() {
    let mut a = v4_conn();
    a.local = Some("198.18.2.1:1025".parse().unwrap());
    a.reveal = Some(Reveal { pp_version: 2, armed: true, toa: false, udp_pending: false, pp_len: 28, at: 77 });
    let b6 = Record {
        proto: PROTO_UDP,
        flags: flags::DROUTE | flags::INACTIVE,
        state: 0,
        client: "[2001:db8::10]:5353".parse().unwrap(),
        virt: "[2001:db8:1::1]:53".parse().unwrap(),
        dest: "[2001:db8:2::11]:53".parse().unwrap(),
        fwmark: 9,
        timeout: 300,
        seq: Some((Seq { init_seq: 1, delta: 2, previous_delta: 3 }, Seq { init_seq: 4, delta: 5, previous_delta: 6 })),
        local: None,
        reveal: None,
        splice: None,
    };
    let mut b = Builder::new(1, 1472);
    assert!(b.push(&a) && b.push(&b6) && b.push(&a));
    let m = b.bytes();
    // 36 + 8 (local) + 10 (reveal) = 54, padded to 56; IPv6: 72 + 26.
    assert_eq!(a.wire_len(), 54);
    assert_eq!(m[8 + 56], 1, "the IPv6 record starts on a 4-byte boundary");
    assert_eq!(one(m), vec![Item::Conn(a), Item::Conn(b6), Item::Conn(a)]);
}

#[test]
fn a_full_message_refuses_more() {
    let mut b = Builder::new(1, 300);
    let mut n = 0;
    while b.push(&v4_conn()) {
        n += 1;
    }
    assert_eq!(n, 8, "8 + 8 * 36 = 296 <= 300 < 296 + 36");
    assert!(b.bytes().len() <= 300);
    assert_eq!(one(b.bytes()).len(), 8);
}

#[test]
fn bad_headers_are_named() {
    let mut b = Builder::new(5, 1472);
    b.push(&v4_conn());
    let good = b.bytes().to_vec();
    assert_eq!(parse(&good[..3], 0), Err(BadMessage::Short));
    assert_eq!(parse(&good[..40], 0), Err(BadMessage::Size));
    assert_eq!(parse(&good, 6), Err(BadMessage::Syncid));
    assert!(parse(&good, 5).is_ok() && parse(&good, 0).is_ok());
    let mut v0 = good.clone();
    v0[0] = 1;
    assert_eq!(parse(&v0, 0), Err(BadMessage::Version0));
    let mut spare = good.clone();
    spare[7] = 1;
    assert_eq!(parse(&spare, 0), Err(BadMessage::Version0));
    assert_eq!(parse(&bulk_request(5), 5), Ok(Message::BulkRequest));
}

#[test]
fn broken_records_end_the_message_and_bad_ones_are_skipped() {
    let mut b = Builder::new(5, 1472);
    b.push(&v4_conn());
    b.push(&v4_conn());
    let good = b.bytes().to_vec();
    // A count larger than the records: the walk ends at a truncation.
    let mut more = good.clone();
    more[4] = 3;
    assert_eq!(one(&more)[2], Item::Broken(BadMessage::Truncated));
    // A record size past the end.
    let mut long = good.clone();
    long[8 + 3] = 200;
    assert_eq!(one(&long), vec![Item::Broken(BadMessage::Truncated)]);
    let mut ver = good.clone();
    ver[8 + 2] = 0x10;
    assert_eq!(one(&ver), vec![Item::Broken(BadMessage::RecordVersion)]);
    let mut fam = good.clone();
    fam[8] = 2;
    assert_eq!(one(&fam), vec![Item::Broken(BadMessage::Family)]);
    let mut state = good.clone();
    state[8 + 9] = 11;
    assert_eq!(one(&state), vec![Item::Skipped(BadRecord::State), Item::Conn(v4_conn())]);
    let mut proto = good.clone();
    proto[8 + 1] = 1;
    assert_eq!(one(&proto)[0], Item::Skipped(BadRecord::Protocol));
}

/// A record with one raw option appended (its size fixed up).
fn with_option(opt_bytes: &[u8]) -> Vec<u8> {
    let mut b = Builder::new(1, 1472);
    b.push(&v4_conn());
    let mut m = b.bytes().to_vec();
    m.extend_from_slice(opt_bytes);
    let rsize = (36 + opt_bytes.len()) as u16;
    m[8 + 2..8 + 4].copy_from_slice(&rsize.to_be_bytes());
    let size = m.len() as u16;
    m[2..4].copy_from_slice(&size.to_be_bytes());
    m
}

#[test]
fn options_follow_the_kernels_rules() {
    // Unknown but skippable: the record stands.
    assert_eq!(one(&with_option(&[0x47, 2, 9, 9])), vec![Item::Conn(v4_conn())]);
    // Unknown and mandatory: the record is skipped.
    assert_eq!(one(&with_option(&[0x07, 2, 9, 9])), vec![Item::Skipped(BadRecord::MandatoryParam)]);
    // Zero length, past the record, a bad SEQ length, a repeat: broken.
    assert_eq!(one(&with_option(&[0x47, 0])), vec![Item::Broken(BadMessage::BadOption)]);
    assert_eq!(one(&with_option(&[0x47, 9, 1])), vec![Item::Broken(BadMessage::BadOption)]);
    assert_eq!(one(&with_option(&[1, 2, 0, 0])), vec![Item::Broken(BadMessage::BadOption)]);
    let local = [opt::XDPVS_LOCAL, 6, 4, 1, 198, 18, 2, 1];
    let twice: Vec<u8> = local.iter().chain(local.iter()).copied().collect();
    assert_eq!(one(&with_option(&twice)), vec![Item::Broken(BadMessage::BadOption)]);
    // A malformed xdpvs parameter skips its record.
    assert_eq!(one(&with_option(&[opt::XDPVS_LOCAL, 2, 4, 1])), vec![Item::Skipped(BadRecord::XdpvsParam)]);
    // A splice without the sequence shift it goes with, or with a window
    // scale past 14, skips its record.
    let splice = [opt::XDPVS_SPLICE, 12, 1, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 9];
    assert_eq!(one(&with_option(&splice)), vec![Item::Skipped(BadRecord::XdpvsParam)]);
    let mut seq = vec![opt::SEQ_DATA, 24];
    seq.extend_from_slice(&[0; 24]);
    let mut wide = seq.clone();
    wide.extend_from_slice(&[opt::XDPVS_SPLICE, 12, 1, 7, 7, 15, 7, 7, 0, 0, 0, 0, 0, 9]);
    assert_eq!(one(&with_option(&wide)), vec![Item::Skipped(BadRecord::XdpvsParam)]);
    seq.extend_from_slice(&splice);
    let Item::Conn(r) = &one(&with_option(&seq))[0] else { panic!("a splice with its shift stands") };
    assert_eq!(r.splice.map(|s| (s.waiting, s.ws_client, s.ts_delta)), Some((true, 7, 9)));
}

#[test]
fn daemon_line_is_ipvsadms() {
    let d = DaemonSpec { iface: "eth1".into(), syncid: 3, maxlen: None, group: None, port: None, ttl: None };
    assert_eq!(
        daemon_line(Role::Master, &d, d.maxlen_for(1500)),
        "master sync daemon (mcast=eth1, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
    );
}

fn arb_addr(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        any::<[u8; 16]>().prop_map(IpAddr::from).boxed()
    } else {
        any::<[u8; 4]>().prop_map(IpAddr::from).boxed()
    }
}

fn arb_record() -> impl Strategy<Value = Record> {
    any::<bool>().prop_flat_map(|v6| {
        (
            (arb_addr(v6), arb_addr(v6), arb_addr(v6), any::<[u16; 4]>()),
            (0u16..11, any::<u32>(), any::<u32>(), any::<bool>()),
            (
                proptest::option::of((arb_addr(v6), any::<u16>())),
                proptest::option::of((0u8..3, any::<u32>())),
                proptest::option::of((any::<[u32; 2]>(), 0u8..8, [0u8..15, 0u8..15, 0u8..15, 0u8..15, 0u8..15])),
            ),
        )
            .prop_map(|((c, v, d, p), (state, mark, timeout, udp), (local, reveal, splice))| Record {
                proto: if udp { PROTO_UDP } else { PROTO_TCP },
                flags: flags::TUNNEL,
                state: if udp { 0 } else { state },
                client: SocketAddr::new(c, p[0]),
                virt: SocketAddr::new(v, p[1]),
                dest: SocketAddr::new(d, p[2]),
                fwmark: mark,
                timeout,
                seq: splice.map(|([cookie, delta], _, _)| {
                    (Seq::default(), Seq { init_seq: cookie, delta, previous_delta: delta })
                }),
                local: local.map(|(a, port)| SocketAddr::new(a, port)),
                reveal: reveal.map(|(v, at)| Reveal { pp_version: v, at, ..Reveal::default() }),
                splice: splice.map(|([_, delta], bits, w)| Splice {
                    waiting: bits & 1 != 0,
                    ts: bits & 2 != 0,
                    client_scales: bits & 4 != 0,
                    ws_client: w[0],
                    win_in: (w[1], w[2]),
                    win_out: (w[3], w[4]),
                    ts_delta: delta ^ 0x55,
                }),
            })
    })
}

proptest! {
    #[test]
    fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Message::Conns(r)) = parse(&bytes, 0) {
            prop_assert!(r.count() <= 255);
        }
    }

    #[test]
    fn records_round_trip(rs in proptest::collection::vec(arb_record(), 1..20)) {
        let mut b = Builder::new(9, 1472);
        let pushed: Vec<Record> = rs.into_iter().take_while(|r| b.push(r)).collect();
        let back = one(b.bytes());
        let sane = |x: &Record| {
            let m = |a: IpAddr| a.is_multicast() || a.is_loopback();
            !(m(x.client.ip()) || m(x.dest.ip()) || x.dest.ip().is_unspecified() || x.local.is_some_and(|l| m(l.ip())))
        };
        for (p, got) in pushed.iter().zip(back) {
            if sane(p) {
                prop_assert_eq!(got, Item::Conn(*p));
            } else {
                prop_assert_eq!(got, Item::Skipped(BadRecord::Address));
            }
        }
    }
}
