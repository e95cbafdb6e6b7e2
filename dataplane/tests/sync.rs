//! Connection sync through the engine: a master core queues a connection's
//! record when IPVS would send it, the record goes through the wire format,
//! and a backup core that never saw the SYN forwards the connection's
//! mid-flow packets (and, NAT/FULLNAT, its replies) in every mode and family.

mod common;
use common::*;
use xdpvs::lb::core::InstallError;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{topo, Pkt};
use xdpvs_api::config::{Fwd, Proto, SchedKind};
use xdpvs_api::sync::{self as sync, flags, DaemonSpec, Item, Message, Record, Role};

const PSH_ACK: u8 = 0x18;

fn master(v6: bool, fwd: Fwd) -> H {
    let mut h = H::new(v6, Proto::Tcp, fwd, SchedKind::Rr, 2);
    let d = DaemonSpec { iface: "rs0".into(), syncid: 1, maxlen: None, group: None, port: None, ttl: None };
    h.cfg.start_daemon(Role::Master, d).unwrap();
    h.publish();
    h
}

fn client(v6: bool, flags: u8, seq: u32, data: &[u8]) -> Pkt {
    let mut p = to_vip(v6, Proto::Tcp, 40000, flags).payload(data);
    p.seq = seq;
    p.ack = Some(5001);
    p
}

/// Handshake and one request through `h`; the server's SYN-ACK goes back
/// for two-way modes. Returns the server the connection went to and (FULLNAT)
/// the local port.
fn open(h: &mut H, v6: bool, fwd: Fwd) -> (std::net::IpAddr, u16) {
    let (_, syn) = h.tx(&client(v6, SYN_, 100, b"").build());
    let a = addrs(v6);
    let rs = match fwd {
        Fwd::Dr => a.rs[topo::RS_MACS.iter().position(|&m| m == syn.dst_mac).expect("a real server's MAC")],
        _ => syn.ip.dst,
    };
    if fwd.two_way() {
        let to = if fwd == Fwd::FullNat { sa(a.lip, syn.ip.sport) } else { sa(a.client, 40000) };
        let mut sa_ = Pkt::tcp(sa(rs, 8080), to, SYNACK);
        sa_.seq = 5000;
        sa_.ack = Some(101);
        sa_.src_mac = topo::RS_MACS[a.rs.iter().position(|&x| x == rs).unwrap()];
        sa_.dst_mac = topo::RS_IF_MAC;
        h.tx(&sa_.build());
    }
    h.tx(&client(v6, ACK_, 101, b"").build());
    h.tx(&client(v6, PSH_ACK, 101, b"GET / HTTP/1.0\r\n\r\n").build());
    (rs, syn.ip.sport)
}

/// The master's queued records, through the wire and back.
fn over_the_wire(h: &mut H) -> Vec<Record> {
    let mut b = sync::Builder::new(1, 1472);
    for r in h.core.take_sync() {
        assert!(b.push(&r));
    }
    match sync::parse(b.bytes(), 1).unwrap() {
        Message::Conns(rs) => rs
            .map(|i| match i {
                Item::Conn(r) => r,
                other => panic!("a good record, not {other:?}"),
            })
            .collect(),
        Message::BulkRequest => panic!("records, not a bulk request"),
    }
}

#[test]
fn a_backup_forwards_mid_flow_packets_in_every_mode_and_family() {
    for v6 in [false, true] {
        for fwd in [Fwd::Nat, Fwd::FullNat, Fwd::Dr, Fwd::Tun] {
            let mut m = master(v6, fwd);
            let (rs, lport) = open(&mut m, v6, fwd);
            let recs = over_the_wire(&mut m);
            assert_eq!(recs.len(), 1, "{fwd:?} v6={v6}: one record, at the third packet");
            let r = recs[0];
            assert_eq!((r.state, r.dest.ip(), r.timeout), (1, rs, 900), "{fwd:?}: ESTABLISHED to {rs}");
            assert_eq!(
                r.flags & flags::FWD_MASK,
                match fwd {
                    Fwd::Nat | Fwd::FullNat => flags::MASQ,
                    Fwd::Tun => flags::TUNNEL,
                    Fwd::Dr => flags::DROUTE,
                }
            );
            assert_eq!(r.local.map(|l| l.port()), (fwd == Fwd::FullNat).then_some(lport));

            let mut b = H::new(v6, Proto::Tcp, fwd, SchedKind::Rr, 2);
            b.core.install(&r, 0).expect("installs");
            assert_eq!(b.conns(rs), (1, 0), "{fwd:?}: counted active on the backup");
            // A mid-flow segment (no SYN seen here) goes to the same server.
            let (_, out) = b.tx(&client(v6, PSH_ACK, 119, b"more").build());
            let a = addrs(v6);
            let got = match fwd {
                Fwd::Dr => a.rs[topo::RS_MACS.iter().position(|&m| m == out.dst_mac).unwrap()],
                _ => out.ip.dst,
            };
            assert_eq!(got, rs, "{fwd:?} v6={v6}: same real server");
            if fwd == Fwd::FullNat {
                assert_eq!(out.ip.sport, lport, "the original local port");
            }
            if fwd.two_way() {
                let a = addrs(v6);
                let to = if fwd == Fwd::FullNat { sa(a.lip, lport) } else { sa(a.client, 40000) };
                let mut reply = Pkt::tcp(sa(rs, 8080), to, PSH_ACK).payload(b"HTTP/1.0 200 OK\r\n");
                reply.seq = 5001;
                reply.ack = Some(123);
                reply.src_mac = topo::RS_MACS[a.rs.iter().position(|&x| x == rs).unwrap()];
                reply.dst_mac = topo::RS_IF_MAC;
                let (_, back) = b.tx(&reply.build());
                assert_eq!((back.ip.src, back.ip.sport), (a.vip, 80), "{fwd:?}: the reply comes from the VIP");
                assert_eq!((back.ip.dst, back.ip.dport), (a.client, 40000));
            }
            assert!(b.drops().is_empty(), "{:?}", b.drops());
        }
    }
}

#[test]
fn state_changes_go_at_once_and_updates_follow_them() {
    let mut m = master(false, Fwd::Nat);
    let (rs, _) = open(&mut m, false, Fwd::Nat);
    let first = over_the_wire(&mut m);
    let mut b = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 2);
    b.core.install(&first[0], 0).unwrap();
    // The client closes: CLOSE_WAIT (IPVS's word for a client's FIN) goes out at once.
    m.tx(&client(false, 0x11, 119, b"").build());
    let fin = over_the_wire(&mut m);
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].state, 7, "CLOSE_WAIT");
    assert_ne!(fin[0].flags & flags::INACTIVE, 0);
    b.core.install(&fin[0], 0).unwrap();
    assert_eq!(b.conns(rs), (0, 1), "the backup's counts follow: now inactive");
    assert_eq!(b.core.stats().sync_updated, 1);
}

#[test]
fn one_record_in_fifty_packets_after_the_third() {
    let mut m = master(false, Fwd::Dr);
    open(&mut m, false, Fwd::Dr);
    assert_eq!(over_the_wire(&mut m).len(), 1);
    for k in 0..100u32 {
        m.tx(&client(false, PSH_ACK, 119 + 4 * k, b"data").build());
    }
    assert_eq!(over_the_wire(&mut m).len(), 2, "packets 53 and 103");
}

#[test]
fn records_for_unknown_services_servers_or_ports_are_refused_by_name() {
    let mut m = master(false, Fwd::FullNat);
    open(&mut m, false, Fwd::FullNat);
    let r = over_the_wire(&mut m)[0];
    let mut b = H::new(false, Proto::Tcp, Fwd::FullNat, SchedKind::Rr, 2);
    let mut other = r;
    other.virt.set_port(81);
    assert_eq!(b.core.install(&other, 0), Err(InstallError::NoService));
    let mut gone = r;
    gone.dest.set_ip("198.19.0.99".parse().unwrap());
    assert_eq!(b.core.install(&gone, 0), Err(InstallError::NoDest));
    // Another director's local address: held as it is (ECMP may move the
    // flow here), its port reserved nowhere.
    let mut foreign = r;
    foreign.local = Some("198.19.0.251:2000".parse().unwrap());
    foreign.client.set_port(40003);
    b.core.install(&foreign, 0).unwrap();
    let held = b.core.sessions().into_iter().find(|s| s.client.port() == 40003).expect("the foreign session");
    assert_eq!(held.local, Some("198.19.0.251:2000".parse().unwrap()));
    b.core.install(&r, 0).unwrap();
    // The port is taken on the backup: a second connection on it is refused,
    // and new connections get other ports.
    let mut twin = r;
    twin.client.set_port(40001);
    assert_eq!(b.core.install(&twin, 0), Err(InstallError::LocalPort));
    let (_, syn) = b.tx(&to_vip(false, Proto::Tcp, 40002, SYN_).build());
    assert_ne!(syn.ip.sport, r.local.unwrap().port());
}

#[test]
fn a_bulk_walk_sends_every_syncable_session() {
    let mut m = master(false, Fwd::Nat);
    open(&mut m, false, Fwd::Nat);
    // A half-open connection is not sent.
    m.tx(&to_vip(false, Proto::Tcp, 40100, SYN_).build());
    let mut all = Vec::new();
    let mut cursor = 0;
    while let Some(next) = m.core.sync_step(cursor, 1, &mut |r| all.push(r)) {
        cursor = next;
    }
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].client.port(), 40000);
    assert!(matches!(m.send(&to_vip(false, Proto::Tcp, 40100, ACK_).build()).0, Verdict::Tx { .. }));
}

#[test]
fn a_persistence_template_follows_its_connection_and_keeps_the_client_on_its_server() {
    let mut m = master(false, Fwd::Nat);
    let slot = m.cfg.find_service(&m.key).unwrap();
    let mut spec = m.cfg.service(slot).unwrap().spec.clone();
    spec.persistent = Some(300);
    m.cfg.edit_service(spec.clone()).unwrap();
    m.publish();
    let (rs, _) = open(&mut m, false, Fwd::Nat);
    let recs = over_the_wire(&mut m);
    assert_eq!(recs.len(), 2, "the connection, then its template");
    assert!(!recs[0].is_template() && recs[1].is_template());
    assert_eq!((recs[1].client.port(), recs[1].virt.port(), recs[1].timeout), (0, 80, 300));
    let mut b = H::new(false, Proto::Tcp, Fwd::Nat, SchedKind::Rr, 2);
    b.cfg.edit_service(spec).unwrap();
    b.publish();
    for r in &recs {
        b.core.install(r, 0).unwrap();
    }
    // rr would alternate; the synced template keeps the client on its server.
    for port in [41000, 41001, 41002, 41003] {
        let (_, syn) = b.tx(&to_vip(false, Proto::Tcp, port, SYN_).build());
        assert_eq!(syn.ip.dst, rs, "new connection from port {port}");
    }
}
