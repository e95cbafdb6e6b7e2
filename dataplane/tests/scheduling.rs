//! Scheduling through the whole pipeline: splits, stickiness, persistence
//! templates (netmask, multi-port fwmark services), and Maglev.

mod common;
use common::*;
use std::collections::HashMap;
use std::net::IpAddr;
use xdpvs::testkit::{topo, Pkt};
use xdpvs_api::config::{DestSpec, Fwd, Match, Proto, SchedKind, ServiceKey, ServiceSpec};

fn split(h: &mut H, n: u16, from: impl Fn(u16) -> Pkt) -> HashMap<IpAddr, usize> {
    let mut m = HashMap::new();
    for i in 0..n {
        let (_, o) = h.tx(&from(i).build());
        *m.entry(o.ip.dst).or_insert(0) += 1;
    }
    m
}

fn set_weights(h: &mut H, w: &[u32]) {
    let a = addrs(false);
    let key = h.key;
    for (i, &w) in w.iter().enumerate() {
        h.cfg
            .edit_dest(
                &key,
                DestSpec { addr: a.rs[i], port: 8080, weight: w, fwd: Fwd::Nat, u_threshold: 0, l_threshold: 0 },
            )
            .unwrap();
    }
    h.publish();
}

#[test]
fn rr_and_wrr_sequences_through_the_engine() {
    let a = addrs(false);
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 3);
    let seq: Vec<IpAddr> = (0..6).map(|i| h.tx(&to_vip(false, Proto::Udp, 100 + i, 0).build()).1.ip.dst).collect();
    // IPVS lists servers newest first.
    assert_eq!(seq, vec![a.rs[2], a.rs[1], a.rs[0], a.rs[2], a.rs[1], a.rs[0]]);

    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Wrr, 3);
    set_weights(&mut h, &[2, 3, 4]);
    let seq: Vec<IpAddr> = (0..9).map(|i| h.tx(&to_vip(false, Proto::Udp, 100 + i, 0).build()).1.ip.dst).collect();
    let (x, y, z) = (a.rs[2], a.rs[1], a.rs[0]); // weights 4, 3, 2 in list order
    assert_eq!(seq, vec![x, x, y, x, y, z, x, y, z]);
    let m = split(&mut h, 900, |i| to_vip(false, Proto::Udp, 2000 + i, 0));
    assert_eq!((m[&x], m[&y], m[&z]), (400, 300, 200));
}

#[test]
fn sh_keeps_a_client_on_one_server() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Sh, 3);
    let a = addrs(false);
    let mut seen = std::collections::HashSet::new();
    for cp in 0..50u16 {
        let (_, o) = h.tx(&to_vip(false, Proto::Tcp, 1000 + cp, SYN_).build());
        seen.insert(o.ip.dst);
    }
    assert_eq!(seen.len(), 1, "one client, one server");
    // Different clients spread.
    let m = split(&mut h, 200, |i| {
        let c = IpAddr::from([198, 18, 5, (i % 200) as u8 + 20]);
        Pkt::tcp(sa(c, 5000), sa(a.vip, 80), SYN_)
    });
    assert_eq!(m.len(), 3, "{m:?}");
}

#[test]
fn persistence_sticks_within_netmask_and_times_out() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 3);
    let key = h.key;
    let mut spec = ServiceSpec::new(key, SchedKind::Rr);
    spec.persistent = Some(100);
    spec.netmask = 24;
    h.cfg.edit_service(spec).unwrap();
    h.publish();
    let a = addrs(false);
    let from = |host: u8, cp: u16| Pkt::tcp(sa(IpAddr::from([198, 18, 5, host]), cp), sa(a.vip, 80), SYN_);
    let (_, first) = h.tx(&from(100, 1).build());
    for (host, cp) in [(100, 2), (101, 3), (254, 4)] {
        let (_, o) = h.tx(&from(host, cp).build());
        assert_eq!(o.ip.dst, first.ip.dst, "client {host} in the same /24 must stick");
    }
    let tmpl: Vec<_> = h.core.sessions().into_iter().filter(|s| s.template).collect();
    assert_eq!(tmpl.len(), 1);
    assert_eq!(tmpl[0].client.ip(), IpAddr::from([198, 18, 5, 0]));
    // The template outlives its connections (SYN_RECV: 60 s) until its own timeout.
    h.advance(60);
    assert_eq!(h.core.session_count().0, 1, "only the template remains");
    h.advance(40);
    assert_eq!(h.core.session_count().0, 0);
    // A fresh template is scheduled anew (rr moves on).
    let (_, o) = h.tx(&from(100, 9).build());
    assert_ne!(o.ip.dst, first.ip.dst);
}

#[test]
fn template_controlling_connections_is_rearmed() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 3);
    let key = h.key;
    let mut spec = ServiceSpec::new(key, SchedKind::Rr);
    spec.persistent = Some(30);
    h.cfg.edit_service(spec).unwrap();
    h.publish();
    let (_, first) = h.tx(&to_vip(false, Proto::Tcp, 1, SYN_).build());
    h.tx(&to_vip(false, Proto::Tcp, 1, ACK_).build()); // ESTABLISHED: 900 s
    h.advance(31);
    assert_eq!(h.core.session_count().0, 2, "a template controlling a connection does not expire");
    let (_, o) = h.tx(&to_vip(false, Proto::Tcp, 2, SYN_).build());
    assert_eq!(o.ip.dst, first.ip.dst, "persistence holds while the template lives");
}

#[test]
fn fwmark_service_shares_persistence_across_ports() {
    let (mut cfg, key) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 0);
    cfg.del_service(&key).unwrap();
    let a = addrs(false);
    let fw = ServiceKey::Fwmark { mark: 7, v6: false };
    let mut spec = ServiceSpec::new(fw, SchedKind::Rr);
    spec.matches =
        vec![Match { proto: Proto::Tcp, addr: a.vip, port: 80 }, Match { proto: Proto::Tcp, addr: a.vip, port: 443 }];
    spec.persistent = Some(300);
    cfg.add_service(spec).unwrap();
    for rs in &a.rs[..3] {
        cfg.add_dest(&fw, DestSpec { addr: *rs, port: 0, weight: 1, fwd: Fwd::Nat, u_threshold: 0, l_threshold: 0 })
            .unwrap();
    }
    let mut h = H::with(cfg, fw, xdpvs::lb::core::CoreParams::default());
    let (_, http) = h.tx(&Pkt::tcp(sa(a.client, 1), sa(a.vip, 80), SYN_).build());
    let (_, https) = h.tx(&Pkt::tcp(sa(a.client, 2), sa(a.vip, 443), SYN_).build());
    assert_eq!(http.ip.dst, https.ip.dst, "80 and 443 share one persistence template");
    assert_eq!((http.ip.dport, https.ip.dport), (80, 443), "port 0 real servers keep the client's port");
    let other = IpAddr::from([198, 18, 5, 101]);
    let (_, o) = h.tx(&Pkt::tcp(sa(other, 1), sa(a.vip, 443), SYN_).build());
    assert_ne!(o.ip.dst, http.ip.dst, "another client is scheduled afresh");
}

#[test]
fn quiesced_server_gets_no_new_persistent_clients() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 2);
    let key = h.key;
    let mut spec = ServiceSpec::new(key, SchedKind::Rr);
    spec.persistent = Some(300);
    h.cfg.edit_service(spec).unwrap();
    h.publish();
    let (_, first) = h.tx(&to_vip(false, Proto::Tcp, 1, SYN_).build());
    let i = addrs(false).rs.iter().position(|r| *r == first.ip.dst).unwrap();
    let w: Vec<u32> = (0..2).map(|k| if k == i { 0 } else { 1 }).collect();
    set_weights(&mut h, &w);
    let (_, est) = h.tx(&to_vip(false, Proto::Tcp, 1, ACK_).build());
    assert_eq!(est.ip.dst, first.ip.dst, "the established connection continues");
    let (_, next) = h.tx(&to_vip(false, Proto::Tcp, 2, SYN_).build());
    assert_ne!(next.ip.dst, first.ip.dst, "a new connection of the same client leaves the quiesced server");
}

#[test]
fn maglev_spreads_and_is_stable_across_cores() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Mh, 4);
    let a = addrs(false);
    let pkt =
        |i: u16| Pkt::tcp(sa(IpAddr::from([198, 18, 10 + (i / 250) as u8, (i % 250) as u8]), 7), sa(a.vip, 80), SYN_);
    let m = split(&mut h, 2000, pkt);
    assert_eq!(m.len(), 4);
    for (rs, n) in &m {
        assert!((350..=650).contains(n), "{rs}: {n} of 2000");
    }
    // A second core (same configuration) picks the same servers.
    let mut h2 = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Mh, 4);
    for i in 0..100 {
        assert_eq!(h.tx(&pkt(i).build()).1.ip.dst, h2.tx(&pkt(i).build()).1.ip.dst);
    }
}

#[test]
fn every_scheduler_runs_in_the_engine_and_never_picks_weight_zero() {
    let a = addrs(false);
    for kind in SchedKind::ALL {
        let mut h = H::new(false, Proto::Udp, Fwd::Nat, kind, 3);
        set_weights(&mut h, &[1, 0, 2]);
        for i in 0..300u16 {
            let c = IpAddr::from([198, 18, 5, (i % 200) as u8 + 20]);
            let (v, out) = h.send(&Pkt::udp(sa(c, 1000 + i), sa(a.vip, 80)).payload(b"x").build());
            match v {
                xdpvs::lb::Verdict::Tx { .. } => {
                    let s = xdpvs::testkit::Summary::parse(&out).unwrap();
                    assert_ne!(s.ip.dst, a.rs[1], "{}: picked the weight-0 server", kind.name());
                }
                // sh and dh give no server when the hashed one is unavailable,
                // ovf when every server has more active connections than its weight (IPVS).
                xdpvs::lb::Verdict::Drop(xdpvs::lb::stats::DropReason::NoDest)
                    if matches!(kind, SchedKind::Sh | SchedKind::Dh | SchedKind::Mh | SchedKind::Ovf) => {}
                v => panic!("{}: {v:?}", kind.name()),
            }
        }
    }
}

/// One-packet scheduling (`-o`, UDP): every datagram of one client socket is
/// scheduled on its own (rr walks the servers), a reply to the latest
/// datagram is translated back, and the session table holds one session per
/// client socket, not one per datagram. Without `-o` the flow sticks.
#[test]
fn one_packet_scheduling_schedules_every_datagram() {
    for fwd in [Fwd::Nat, Fwd::FullNat, Fwd::Dr] {
        for ops in [true, false] {
            let a = addrs(false);
            let mut h = H::new(false, Proto::Udp, fwd, SchedKind::Rr, 3);
            let mut spec = h.cfg.service(h.cfg.find_service(&h.key).unwrap()).unwrap().spec.clone();
            spec.ops = ops;
            h.cfg.edit_service(spec).unwrap();
            h.publish();
            let mut seen = Vec::new();
            for _ in 0..6 {
                let (_, out) = h.tx(&to_vip(false, Proto::Udp, 5353, 0).build());
                // The server, by its MAC (DR leaves the IP packet as it is).
                seen.push(topo::RS_MACS.iter().position(|m| *m == out.dst_mac).expect("a real server's MAC"));
            }
            let distinct: std::collections::HashSet<_> = seen.iter().collect();
            if ops {
                assert_eq!(distinct.len(), 3, "{fwd:?} -o: six datagrams over the three servers: {seen:?}");
                assert_eq!(seen[0..3], seen[3..6], "{fwd:?} -o: rr order repeats");
            } else {
                assert_eq!(distinct.len(), 1, "{fwd:?} without -o: one flow, one server: {seen:?}");
            }
            assert_eq!(h.core.session_count().0, 1, "{fwd:?}: one session per client socket");
            if fwd == Fwd::Nat {
                // The server that got the last datagram answers: back from the VIP.
                let last = *seen.last().unwrap();
                let mut reply = Pkt::udp(sa(a.rs[last], 8080), sa(a.client, 5353)).payload(b"pong");
                reply.src_mac = topo::RS_MACS[last];
                reply.dst_mac = topo::RS_IF_MAC;
                let (_, back) = h.tx(&reply.build());
                assert_eq!((back.ip.src, back.ip.sport, back.ip.dst), (a.vip, 80, a.client));
            }
        }
    }
}
