//! Core ownership: the pure function the I/O layer steers by agrees with
//! where sessions live, for both directions and for ICMP errors.

mod common;
use common::*;
use std::net::IpAddr;
use std::sync::Arc;
use xdpvs::lb::core::{Core, CoreParams};
use xdpvs::lb::frame::Frame;
use xdpvs::lb::owner::owner_of;
use xdpvs::lb::snapshot::Snapshot;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{icmp_error, topo, Pkt, Summary};
use xdpvs_api::config::{Fwd, Proto, SchedKind};

fn process(core: &mut Core, f: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + f.len() + 64];
    buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
    let mut fr = Frame::new(&mut buf, HEADROOM, f.len()).unwrap();
    let v = core.process(&mut fr, 0);
    (v, fr.data().to_vec())
}

#[test]
fn both_directions_and_errors_land_on_the_owner() {
    for fwd in [Fwd::Nat, Fwd::FullNat] {
        for v6 in [false, true] {
            let (cfg, _) = topo::config(v6, Proto::Tcp, fwd, SchedKind::Rr, 3);
            let cfg = topo::snapshot(&cfg);
            let n = 4u16;
            let mut cores: Vec<Core> = (0..n)
                .map(|id| {
                    Core::new(
                        cfg.clone(),
                        CoreParams { id, ncores: n, max_sessions: 1024, reserve_sessions: 64, ..CoreParams::default() },
                        0,
                    )
                })
                .collect();
            let a = addrs(v6);
            let mut per_core = vec![0; n as usize];
            for i in 0..200u16 {
                let client: IpAddr = if v6 {
                    format!("2001:db8:9::{i:x}").parse().unwrap()
                } else {
                    IpAddr::from([198, 18, 9, (i % 250) as u8])
                };
                let syn = Pkt::tcp(sa(client, 10000 + i), sa(a.vip, 80), SYN_).build();
                let o = owner_of(&cfg, n, &syn);
                per_core[o as usize] += 1;
                // Any other core hands it over.
                let other = (o + 1) % n;
                assert_eq!(process(&mut cores[other as usize], &syn).0, Verdict::Handoff(o));
                let (v, out) = process(&mut cores[o as usize], &syn);
                assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
                let s = Summary::parse(&out).unwrap();
                // The real server's reply.
                let mut reply = Pkt::tcp(sa(s.ip.dst, s.ip.dport), sa(s.ip.src, s.ip.sport), SYNACK);
                reply.src_mac = topo::RS_MACS[0];
                let reply = reply.build();
                assert_eq!(owner_of(&cfg, n, &reply), o, "{fwd:?}: reply steered to another core");
                if fwd == Fwd::FullNat {
                    assert_eq!(s.ip.sport % n, o, "local port from the owner's partition");
                }
                assert!(matches!(process(&mut cores[o as usize], &reply).0, Verdict::Tx { iface: 0 }));
                // An ICMP error from the real server about that flow.
                let quoted = Pkt::tcp(sa(s.ip.src, s.ip.sport), sa(s.ip.dst, s.ip.dport), SYN_).ip_packet();
                let (t, c) = if v6 { (1, 4) } else { (3, 3) };
                let err = icmp_error((topo::RS_MACS[0], topo::RS_IF_MAC), s.ip.dst, s.ip.src, t, c, 0, &quoted);
                assert_eq!(owner_of(&cfg, n, &err), o, "{fwd:?}: ICMP error steered to another core");
            }
            assert!(per_core.iter().all(|&c| c > 20), "ownership spreads: {per_core:?}");
        }
    }
}

#[test]
fn one_core_owns_everything() {
    let (cfg, _) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let f = to_vip(false, Proto::Tcp, 1, SYN_).build();
    assert_eq!(owner_of(&cfg, 1, &f), 0);
    assert_eq!(owner_of(&cfg, 3, &[1, 2, 3]), 0);
}

#[test]
fn fullnat_ports_follow_the_nic_rss_table() {
    use xdpvs::lb::rss::Rss;
    // A NIC on the real-server side with Microsoft's verification key and a
    // table spreading over two queues.
    const KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca,
        0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b,
        0xbe, 0xac, 0x01, 0xfa,
    ];
    let rss = Rss { key: KEY.to_vec(), indir: (0..128).map(|i| (i % 2) as u16).collect() };
    let (cfg, _) = topo::config(false, Proto::Tcp, Fwd::FullNat, SchedKind::Rr, 3);
    let mut net = topo::net();
    net.ifaces[1].rss = Some(rss.clone());
    let cfg = Arc::new(Snapshot::new(cfg, Arc::new(net)));
    let a = addrs(false);
    let lip = match a.lip {
        IpAddr::V4(v) => v.octets(),
        IpAddr::V6(_) => unreachable!(),
    };
    let mut landed = [0usize; 2];
    for id in 0..2u16 {
        let mut core = Core::new(
            cfg.clone(),
            CoreParams { id, ncores: 2, max_sessions: 4096, reserve_sessions: 64, ..CoreParams::default() },
            0,
        );
        for i in 0..400u16 {
            let client = IpAddr::from([198, 18, 9, (i % 250) as u8]);
            let syn = Pkt::tcp(sa(client, 20000 + i), sa(a.vip, 80), SYN_).build();
            if owner_of(&cfg, 2, &syn) != id {
                continue;
            }
            let (v, out) = process(&mut core, &syn);
            assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
            let s = Summary::parse(&out).unwrap();
            let IpAddr::V4(rip) = s.ip.dst else { unreachable!() };
            let q = rss.queue(&rip.octets(), &lip, s.ip.dport, s.ip.sport).unwrap();
            landed[usize::from(q == id)] += 1;
            assert_eq!(s.ip.sport % 2, id, "the port stays in the core's partition");
        }
    }
    assert_eq!(landed[0], 0, "every reply hashes to its owner's queue ({} did)", landed[1]);
    assert!(landed[1] > 300);
}
