//! Sessions over time: TCP states and IPVS's connection counting, timeouts,
//! table limits, configuration changes under established flows.

mod common;
use common::*;
use xdpvs::lb::core::CoreParams;
use xdpvs::lb::stats::DropReason;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{topo, Pkt};
use xdpvs::wire::tcp::flags::*;
use xdpvs_api::config::{DestSpec, Fwd, Match, Proto, SchedKind, ServiceKey, ServiceSpec};

fn states(h: &H) -> Vec<&'static str> {
    h.core.sessions().iter().filter(|s| !s.template).map(|s| s.state.name()).collect()
}

/// A NAT connection from client port `cp`: client packets in, server packets out.
struct Conn {
    cp: u16,
    v6: bool,
}

impl Conn {
    fn c(&self, h: &mut H, flags: u8) {
        let (v, _) = h.send(&to_vip(self.v6, Proto::Tcp, self.cp, flags).build());
        assert!(matches!(v, Verdict::Tx { iface: 1 }), "client segment {flags:#x}: {v:?} {:?}", h.drops());
    }
    fn s(&self, h: &mut H, flags: u8) {
        let a = addrs(self.v6);
        let mut p = Pkt::tcp(sa(a.rs[0], 8080), sa(a.client, self.cp), flags);
        p.src_mac = topo::RS_MACS[0];
        let (v, _) = h.send(&p.build());
        assert!(matches!(v, Verdict::Tx { iface: 0 }), "server segment {flags:#x}: {v:?} {:?}", h.drops());
    }
}

#[test]
fn nat_connection_walks_ipvs_states_and_counts() {
    for v6 in [false, true] {
        let mut h = H::new(v6, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
        let rs = addrs(v6).rs[0];
        let k = Conn { cp: 40000, v6 };
        k.c(&mut h, SYN);
        assert_eq!((states(&h), h.conns(rs)), (vec!["SYN_RECV"], (0, 1)));
        k.s(&mut h, SYN | ACK);
        k.c(&mut h, ACK);
        assert_eq!((states(&h), h.conns(rs)), (vec!["ESTABLISHED"], (1, 0)), "handshake done: one ActiveConn");
        k.c(&mut h, ACK | PSH);
        k.s(&mut h, ACK);
        k.c(&mut h, FIN | ACK);
        assert_eq!((states(&h), h.conns(rs)), (vec!["CLOSE_WAIT"], (0, 1)));
        k.s(&mut h, ACK);
        k.s(&mut h, FIN | ACK);
        assert_eq!(states(&h), vec!["TIME_WAIT"]);
        k.c(&mut h, ACK);
        // TIME_WAIT lasts 120 s.
        assert_eq!(h.advance(119), 0);
        assert_eq!(h.advance(1), 1);
        assert_eq!((h.core.session_count(), h.conns(rs)), ((0, 0), (0, 0)));
    }
}

#[test]
fn resets_close_and_idle_established_expires_after_900s() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let rs = addrs(false).rs[0];
    let a = Conn { cp: 1, v6: false };
    let b = Conn { cp: 2, v6: false };
    for k in [&a, &b] {
        k.c(&mut h, SYN);
        k.s(&mut h, SYN | ACK);
        k.c(&mut h, ACK);
    }
    assert_eq!(h.conns(rs), (2, 0));
    a.s(&mut h, RST);
    assert_eq!(h.conns(rs), (1, 1));
    assert_eq!(h.advance(10), 1, "CLOSE lasts 10 s");
    assert_eq!(h.advance(889), 0);
    assert_eq!(h.advance(1), 1, "ESTABLISHED lasts 900 s");
    assert_eq!(h.conns(rs), (0, 0));
}

#[test]
fn dr_connection_uses_input_only_table() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Dr, SchedKind::Rr, 1);
    let rs = addrs(false).rs[0];
    for f in [SYN, ACK, ACK | PSH] {
        h.tx(&to_vip(false, Proto::Tcp, 7, f).build());
    }
    assert_eq!((states(&h), h.conns(rs)), (vec!["ESTABLISHED"], (1, 0)));
    h.tx(&to_vip(false, Proto::Tcp, 7, FIN | ACK).build());
    assert_eq!(states(&h), vec!["FIN_WAIT"]);
}

#[test]
fn udp_times_out_after_300s_and_set_changes_it() {
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
    h.tx(&to_vip(false, Proto::Udp, 5000, 0).build());
    assert_eq!(h.advance(299), 0);
    assert_eq!(h.advance(1), 1);
    h.cfg.set_timeouts(0, 0, 20).unwrap();
    h.publish();
    h.tx(&to_vip(false, Proto::Udp, 5000, 0).build());
    assert_eq!(h.advance(19), 0);
    // A packet refreshes the timeout.
    h.tx(&to_vip(false, Proto::Udp, 5000, 0).build());
    assert_eq!(h.advance(19), 0);
    assert_eq!(h.advance(1), 1);
}

#[test]
fn non_syn_without_session_is_dropped_not_scheduled() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let (v, _) = h.send(&to_vip(false, Proto::Tcp, 9, ACK).build());
    assert_eq!(v, Verdict::Drop(DropReason::TcpNoSession));
    assert_eq!(h.core.session_count(), (0, 0));
}

/// A flow ECMP moved here mid-connection: an mh/sh/dh service forwards it
/// to the server a SYN on any director picks and makes its session; RSTs,
/// other schedulers and FULLNAT (a new local port) are dropped, each named.
#[test]
fn midflow_segments_of_shared_table_services_are_picked_up() {
    for sched in [SchedKind::Mh, SchedKind::Sh, SchedKind::Dh] {
        for fwd in [Fwd::Dr, Fwd::Tun, Fwd::Nat] {
            for cp in [1000u16, 2000, 3000] {
                let mut fresh = H::new(false, Proto::Tcp, fwd, sched, 3);
                let (_, by_syn) = fresh.tx(&to_vip(false, Proto::Tcp, cp, SYN).build());
                let mut h = H::new(false, Proto::Tcp, fwd, sched, 3);
                let (_, by_ack) = h.tx(&to_vip(false, Proto::Tcp, cp, ACK | PSH).build());
                let to = |x: &xdpvs::testkit::Summary| (x.dst_mac, x.ip.dst, x.ip.inner.as_ref().map(|i| i.dst));
                assert_eq!(to(&by_ack), to(&by_syn), "{sched:?} {fwd:?}: the moved flow went elsewhere");
                assert_eq!(states(&h), vec!["ESTABLISHED"], "{sched:?} {fwd:?}");
                assert_eq!(h.core.stats().midflow, 1);
                let (v, _) = h.send(&to_vip(false, Proto::Tcp, cp + 1, RST).build());
                assert_eq!(v, Verdict::Drop(DropReason::TcpNoSession), "an RST makes no session");
            }
        }
        let mut h = H::new(false, Proto::Tcp, Fwd::FullNat, sched, 3);
        let (v, _) = h.send(&to_vip(false, Proto::Tcp, 9, ACK).build());
        assert_eq!(v, Verdict::Drop(DropReason::TcpMidflowFullnat));
        assert_eq!(h.core.session_count(), (0, 0));
    }
}

#[test]
fn full_table_refuses_new_flows_and_keeps_established() {
    let (cfg, key) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let mut h = H::with(cfg, key, CoreParams { max_sessions: 3, reserve_sessions: 3, ..CoreParams::default() });
    let conns: Vec<Conn> = (1..=3).map(|cp| Conn { cp, v6: false }).collect();
    for k in &conns {
        k.c(&mut h, SYN);
        k.s(&mut h, SYN | ACK);
        k.c(&mut h, ACK);
    }
    let (v, _) = h.send(&to_vip(false, Proto::Tcp, 4, SYN).build());
    assert_eq!(v, Verdict::Drop(DropReason::SessionTableFull), "no half-open session to give up");
    assert_eq!(h.core.stats().dropped(DropReason::SessionTableFull), 1);
    assert_eq!(h.core.stats().evicted_half_open, 0);
    for k in &conns {
        k.c(&mut h, ACK | PSH);
    }
}

/// A SYN flood fills the table with half-open sessions: each new flow
/// takes the place of the oldest of them, established connections stay.
#[test]
fn a_full_table_gives_up_its_oldest_half_open_session_first() {
    let (cfg, key) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let mut h = H::with(cfg, key, CoreParams { max_sessions: 4, reserve_sessions: 4, ..CoreParams::default() });
    let est: Vec<Conn> = (1..=2).map(|cp| Conn { cp, v6: false }).collect();
    for k in &est {
        k.c(&mut h, SYN);
        k.s(&mut h, SYN | ACK);
        k.c(&mut h, ACK);
    }
    h.tx(&to_vip(false, Proto::Tcp, 3, SYN).build());
    h.tx(&to_vip(false, Proto::Tcp, 4, SYN).build());
    // A flood of 100 more SYNs: each evicts the oldest half-open one.
    for cp in 100..200 {
        h.tx(&to_vip(false, Proto::Tcp, cp, SYN).build());
    }
    assert_eq!(h.core.stats().evicted_half_open, 100);
    assert_eq!(h.core.stats().dropped(DropReason::SessionTableFull), 0);
    let (v, _) = h.send(&to_vip(false, Proto::Tcp, 3, ACK).build());
    assert_eq!(v, Verdict::Drop(DropReason::TcpNoSession), "the oldest half-open session went first");
    // The newest flood SYN's connection completes; the established ones go on.
    let last = Conn { cp: 199, v6: false };
    last.s(&mut h, SYN | ACK);
    last.c(&mut h, ACK);
    for k in &est {
        k.c(&mut h, ACK | PSH);
        k.s(&mut h, ACK);
    }
    assert_eq!(h.core.session_count(), (4, 0));
    assert_eq!(states(&h).iter().filter(|s| **s == "ESTABLISHED").count(), 3);
}

/// Past `max_half_open` a new SYN takes the oldest half-open session's
/// place even with room in the table; established ones never go.
#[test]
fn the_half_open_limit_evicts_oldest_half_open_first() {
    let (cfg, key) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let p = CoreParams { max_sessions: 1000, reserve_sessions: 64, max_half_open: 3, ..CoreParams::default() };
    let mut h = H::with(cfg, key, p);
    let est = Conn { cp: 1, v6: false };
    est.c(&mut h, SYN);
    est.s(&mut h, SYN | ACK);
    est.c(&mut h, ACK);
    for cp in 10..20 {
        h.tx(&to_vip(false, Proto::Tcp, cp, SYN).build());
    }
    assert_eq!(h.core.stats().evicted_half_open, 7, "10 SYNs, room for 3");
    assert_eq!(h.core.session_count(), (4, 0), "3 half-open and the established one");
    let (v, _) = h.send(&to_vip(false, Proto::Tcp, 10, ACK).build());
    assert_eq!(v, Verdict::Drop(DropReason::TcpNoSession), "the oldest went first");
    est.c(&mut h, ACK | PSH);
    // A completed handshake leaves the half-open count: room again.
    let k = Conn { cp: 19, v6: false };
    k.s(&mut h, SYN | ACK);
    k.c(&mut h, ACK);
    h.tx(&to_vip(false, Proto::Tcp, 30, SYN).build());
    assert_eq!(h.core.stats().evicted_half_open, 7, "19 is established now: 3 half-open fit again");
}

/// Past `max_half_open_per_service` a service's new SYNs are refused and
/// counted; another service on the core keeps taking them.
#[test]
fn the_per_service_limit_refuses_the_flooded_service_only() {
    let (mut cfg, key) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 1);
    let a = addrs(false);
    let other = ServiceKey::Addr(Match { proto: Proto::Tcp, addr: a.vip, port: 81 });
    cfg.add_service(ServiceSpec::new(other, SchedKind::Rr)).unwrap();
    cfg.add_dest(
        &other,
        DestSpec { addr: a.rs[0], port: 8081, weight: 1, fwd: Fwd::Nat, u_threshold: 0, l_threshold: 0 },
    )
    .unwrap();
    let p =
        CoreParams { max_sessions: 1000, reserve_sessions: 64, max_half_open_per_service: 5, ..CoreParams::default() };
    let mut h = H::with(cfg, key, p);
    for cp in 10..20 {
        let v = h.send(&to_vip(false, Proto::Tcp, cp, SYN).build()).0;
        if cp < 15 {
            assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
        } else {
            assert_eq!(v, Verdict::Drop(DropReason::HalfOpenServiceLimit));
        }
    }
    assert_eq!(h.core.stats().dropped(DropReason::HalfOpenServiceLimit), 5);
    let mut syn = to_vip(false, Proto::Tcp, 50, SYN);
    syn.dst = sa(a.vip, 81);
    h.tx(&syn.build());
    // Half-open sessions that time out make room.
    h.advance(61);
    h.tx(&to_vip(false, Proto::Tcp, 60, SYN).build());
}

#[test]
fn weight_zero_drains_and_removal_ends_flows() {
    let mut h = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 2);
    let a = addrs(false);
    // rr over [rs1, rs0] (newest first).
    let (_, first) = h.tx(&to_vip(false, Proto::Tcp, 1, SYN).build());
    assert_eq!(first.ip.dst, a.rs[1]);
    let spec = |w| DestSpec { addr: a.rs[1], port: 8080, weight: w, fwd: Fwd::Nat, u_threshold: 0, l_threshold: 0 };
    h.cfg.edit_dest(&h.key.clone(), spec(0)).unwrap();
    h.publish();
    // The established flow continues to rs1; every new one goes to rs0.
    let (_, again) = h.tx(&to_vip(false, Proto::Tcp, 1, ACK).build());
    assert_eq!(again.ip.dst, a.rs[1]);
    for cp in 2..10 {
        let (_, o) = h.tx(&to_vip(false, Proto::Tcp, cp, SYN).build());
        assert_eq!(o.ip.dst, a.rs[0], "quiesced server got a new connection");
    }
    // Removing rs0 ends its flows at their next packet.
    h.cfg.del_dest(&h.key.clone(), a.rs[0], 8080).unwrap();
    h.publish();
    let (v, _) = h.send(&to_vip(false, Proto::Tcp, 2, ACK).build());
    assert_eq!(v, Verdict::Drop(DropReason::DestRemoved));
    let (_, o) = h.tx(&to_vip(false, Proto::Tcp, 1, ACK).build());
    assert_eq!(o.ip.dst, a.rs[1], "other flows untouched by the removal");
    // No server with weight > 0 left: new flows find none.
    let (v, _) = h.send(&to_vip(false, Proto::Tcp, 50, SYN).build());
    assert_eq!(v, Verdict::Drop(DropReason::NoDest));
}

#[test]
fn upper_threshold_with_three_quarter_reentry() {
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 2);
    let a = addrs(false);
    let key = h.key;
    h.cfg
        .edit_dest(
            &key,
            DestSpec { addr: a.rs[1], port: 8080, weight: 1, fwd: Fwd::Nat, u_threshold: 4, l_threshold: 0 },
        )
        .unwrap();
    h.cfg
        .edit_dest(
            &key,
            DestSpec { addr: a.rs[0], port: 8080, weight: 1, fwd: Fwd::Nat, u_threshold: 0, l_threshold: 0 },
        )
        .unwrap();
    h.publish();
    let mut to_rs1 = 0;
    for cp in 0..20u16 {
        let (_, o) = h.tx(&to_vip(false, Proto::Udp, 1000 + cp, 0).build());
        to_rs1 += usize::from(o.ip.dst == a.rs[1]);
    }
    assert_eq!(to_rs1, 4, "rs1 takes connections up to its upper threshold");
    assert_eq!(h.conns(a.rs[1]), (0, 4));
    // Expire everything: 3/4 rule lets it back in once below 3.
    h.advance(300);
    let (_, o) = h.tx(&to_vip(false, Proto::Udp, 5000, 0).build());
    let (_, o2) = h.tx(&to_vip(false, Proto::Udp, 5001, 0).build());
    assert!(o.ip.dst == a.rs[1] || o2.ip.dst == a.rs[1], "back in service after the connections ended");
}

#[test]
fn lower_threshold_governs_reentry() {
    let mut h = H::new(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
    let a = addrs(false);
    let key = h.key;
    h.cfg
        .edit_dest(
            &key,
            DestSpec { addr: a.rs[0], port: 8080, weight: 1, fwd: Fwd::Nat, u_threshold: 4, l_threshold: 2 },
        )
        .unwrap();
    h.publish();
    for cp in 0..4u16 {
        h.tx(&to_vip(false, Proto::Udp, 1000 + cp, 0).build());
        h.now += 10; // one second apart
    }
    let (v, _) = h.send(&to_vip(false, Proto::Udp, 2000, 0).build());
    assert_eq!(v, Verdict::Drop(DropReason::NoDest), "overloaded at the upper threshold");
    // One ends (3 left): 3 is not below the lower threshold 2.
    h.now = 300 * 10;
    h.core.housekeep(h.now);
    assert_eq!(h.conns(a.rs[0]), (0, 3));
    assert_eq!(h.send(&to_vip(false, Proto::Udp, 2001, 0).build()).0, Verdict::Drop(DropReason::NoDest));
    h.now += 20;
    h.core.housekeep(h.now);
    assert_eq!(h.conns(a.rs[0]), (0, 1));
    assert!(matches!(h.send(&to_vip(false, Proto::Udp, 2002, 0).build()).0, Verdict::Tx { .. }));
}

#[test]
fn config_swap_keeps_established_flows() {
    let mut h = H::new(false, Proto::Tcp, Fwd::FullNat, SchedKind::Rr, 3);
    let mut before = Vec::new();
    for cp in 1..=30 {
        let (_, o) = h.tx(&to_vip(false, Proto::Tcp, cp, SYN).build());
        before.push((o.ip.dst, o.ip.sport));
    }
    // Change the scheduler and a weight; add a server.
    let key = h.key;
    let mut spec = xdpvs_api::config::ServiceSpec::new(key, SchedKind::Wlc);
    spec.flags = 0;
    h.cfg.edit_service(spec).unwrap();
    h.cfg
        .add_dest(
            &key,
            DestSpec {
                addr: addrs(false).rs[3],
                port: 8080,
                weight: 5,
                fwd: Fwd::FullNat,
                u_threshold: 0,
                l_threshold: 0,
            },
        )
        .unwrap();
    h.publish();
    for (i, cp) in (1..=30).enumerate() {
        let (_, o) = h.tx(&to_vip(false, Proto::Tcp, cp, ACK).build());
        assert_eq!((o.ip.dst, o.ip.sport), before[i], "flow {cp} moved after a configuration change");
    }
}

#[test]
fn fullnat_ports_return_to_the_pool() {
    let mut h = H::new(false, Proto::Udp, Fwd::FullNat, SchedKind::Rr, 1);
    let mut ports = std::collections::HashSet::new();
    for cp in 0..100u16 {
        let (_, o) = h.tx(&to_vip(false, Proto::Udp, cp + 1, 0).build());
        assert!(ports.insert(o.ip.sport), "local port handed out twice");
    }
    assert_eq!(h.advance(300), 100);
    assert_eq!(h.core.session_count(), (0, 0));
}

#[test]
fn fullnat_without_local_address_is_a_named_drop() {
    let mut h = H::new(false, Proto::Tcp, Fwd::FullNat, SchedKind::Rr, 1);
    let key = h.key;
    h.cfg.del_laddr(&key, addrs(false).lip).unwrap();
    h.publish();
    assert_eq!(h.send(&to_vip(false, Proto::Tcp, 1, SYN).build()).0, Verdict::Drop(DropReason::NoLocalAddr));
}

#[test]
fn unresolved_neighbour_keeps_the_session_and_its_server() {
    let a = addrs(false);
    let (cfg, key) = topo::config(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 3);
    let mut h = H::with(cfg, key, CoreParams::default());
    // Forget the real servers' MACs.
    for rs in &a.rs {
        h.net.set_neighbour(*rs, 1, None);
    }
    h.publish();
    let syn = to_vip(false, Proto::Tcp, 1, SYN).build();
    let (v, parked) = h.send(&syn);
    assert_eq!(v, Verdict::Park(DropReason::NeighUnresolved), "the frame waits for the neighbour");
    assert_eq!(parked, syn, "a parked frame is left as it came");
    assert_eq!(h.core.session_count().0, 1, "the session exists though its first packet waits");
    let asked: Vec<_> = h.core.take_resolve_requests().collect();
    assert_eq!(asked.len(), 1, "the kernel is asked to resolve the real server");
    // Still unresolved when offered again: parked again, nothing counted.
    assert_eq!(h.send(&parked).0, Verdict::Park(DropReason::NeighUnresolved));
    assert_eq!(h.core.stats().dropped(DropReason::NeighUnresolved), 0);
    // The kernel resolved it; the parked SYN goes to the scheduled server.
    for (i, rs) in a.rs.iter().enumerate() {
        h.net.set_neighbour(*rs, 1, Some(topo::RS_MACS[i]));
    }
    h.publish();
    let (_, out) = h.tx(&parked);
    assert_eq!(out.ip.dst.to_string(), asked[0].to_string());
    assert_eq!(out.ip.ttl, 63, "rewritten once: the TTL went down by one");
    assert_eq!(
        h.core.give_up(DropReason::NeighUnresolved),
        Verdict::Drop(DropReason::NeighUnresolved),
        "a frame never offered again is a counted drop"
    );
    // And no pick was wasted: the next client gets the next server in rr order.
    let (_, next) = h.tx(&to_vip(false, Proto::Tcp, 2, SYN).build());
    assert_ne!(next.ip.dst, out.ip.dst);
}

/// A client reusing its port for a new connection after the old one ended
/// (IPVS conn_reuse_mode): the new SYN is scheduled afresh, in DR (replies
/// unseen: the old session sits in FIN_WAIT) and in NAT (TIME_WAIT).
#[test]
fn a_reused_client_port_is_scheduled_afresh() {
    for fwd in [Fwd::Dr, Fwd::Nat] {
        let mut h = H::new(false, Proto::Tcp, fwd, SchedKind::Rr, 3);
        let dst = |h: &mut H, flags| h.tx(&to_vip(false, Proto::Tcp, 40000, flags).build()).1.dst_mac;
        let first = dst(&mut h, SYN);
        dst(&mut h, ACK);
        if fwd == Fwd::Nat {
            let a = addrs(false);
            let rs = h.cfg.services().next().unwrap().1.dests[0];
            let rip = h.cfg.dest(rs).unwrap().spec.addr;
            let i = a.rs.iter().position(|r| *r == rip).unwrap();
            let mut p = Pkt::tcp(sa(rip, 8080), sa(a.client, 40000), FIN | ACK);
            p.src_mac = topo::RS_MACS[i];
            h.send(&p.build());
            dst(&mut h, FIN | ACK);
            assert_eq!(states(&h), vec!["TIME_WAIT"], "{fwd:?}");
        } else {
            dst(&mut h, FIN | ACK);
            assert_eq!(states(&h), vec!["FIN_WAIT"], "{fwd:?}");
        }
        // A retransmitted ACK stays on the old connection...
        assert_eq!(dst(&mut h, ACK), first);
        // ...a new SYN from the same port is a new connection: the next server.
        let second = dst(&mut h, SYN);
        assert_ne!(second, first, "{fwd:?}: the new connection was pinned to the old server");
        assert_eq!(states(&h), vec!["SYN_RECV"], "{fwd:?}: the old session made way");
        // A retransmission of that SYN stays with it.
        assert_eq!(dst(&mut h, SYN), second);
    }
}

#[test]
fn sessions_are_counted_by_state_as_they_move_and_end() {
    use xdpvs_api::counters::SessionState as S;
    let mut h = H::new(false, Proto::Tcp, Fwd::Dr, SchedKind::Rr, 1);
    let by = |h: &H, s: S| h.core.stats().by_state[s as usize];
    h.tx(&to_vip(false, Proto::Tcp, 40000, SYN_).build());
    assert_eq!(by(&h, S::SynRecv), 1);
    h.tx(&to_vip(false, Proto::Tcp, 40000, ACK_).build());
    assert_eq!((by(&h, S::SynRecv), by(&h, S::Established)), (0, 1));
    let mut u = H::new(false, Proto::Udp, Fwd::Dr, SchedKind::Rr, 1);
    u.tx(&to_vip(false, Proto::Udp, 40001, 0).build());
    assert_eq!(by(&u, S::Udp), 1);
    u.advance(1000);
    assert_eq!(by(&u, S::Udp), 0);
    h.advance(1000);
    let total: u64 = h.core.stats().by_state.iter().sum();
    assert_eq!(total, 0, "every ended session left its gauge");
}
