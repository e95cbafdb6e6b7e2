//! The SYN proxy (`-j enable`), packet in, packet out, through one core:
//! the cookie SYN-ACK (no session), the ACK turned into the server's SYN,
//! the client's segments held until the server's SYN-ACK, that SYN-ACK
//! turned into the server's ACK, and every later segment's numbers moved
//! (sequence, acknowledgement, SACK, timestamps, windows), in NAT and
//! FULLNAT, IPv4 and IPv6; a bad cookie's RST; the configuration's rules;
//! a synced session keeping the shift.

mod common;
use common::*;
use xdpvs::lb::core::{Core, CoreParams};
use xdpvs::lb::stats::DropReason;
use xdpvs::lb::Verdict;
use xdpvs::testkit::{topo, Pkt, Summary};
use xdpvs_api::config::{ConfigError, DestSpec, Fwd, Proto, SchedKind};
use xdpvs_api::counters::Counter;

const RST: u8 = 0x04;
const PSH_ACK: u8 = 0x18;
const CLIENT_TSVAL: u32 = 700;
const SERVER_ISN: u32 = 90_000;
const SERVER_TSVAL: u32 = 5_000_000;

fn harness(v6: bool, fwd: Fwd) -> H {
    let mut h = H::new(v6, Proto::Tcp, fwd, SchedKind::Rr, 1);
    let sl = h.cfg.find_service(&h.key).unwrap();
    let mut spec = h.cfg.service(sl).unwrap().spec.clone();
    spec.synproxy = true;
    h.cfg.edit_service(spec).expect("a NAT/FULLNAT TCP service takes -j enable");
    h.publish();
    h
}

/// MSS 1460, SACK permitted, timestamps, window scale 7 (Linux's SYN).
fn syn_options(tsval: u32) -> Vec<u8> {
    let mut o = vec![2, 4, 5, 180, 4, 2, 8, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 7]);
    o
}

fn ts_option(val: u32, ecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&val.to_be_bytes());
    o.extend_from_slice(&ecr.to_be_bytes());
    o
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// (TSval, TSecr) among a segment's options.
fn ts_of(opts: &[u8]) -> Option<(u32, u32)> {
    let mut k = 0;
    while k + 1 < opts.len() {
        match opts[k] {
            0 => return None,
            1 => k += 1,
            8 => return Some((be32(opts, k + 2), be32(opts, k + 6))),
            _ => k += usize::from(opts[k + 1]).max(2),
        }
    }
    None
}

/// The window field of a transmitted frame.
fn window(frame: &[u8], v6: bool) -> u16 {
    let ihl = if v6 { 40 } else { usize::from(frame[14] & 0xf) * 4 };
    be16(frame, 14 + ihl + 14)
}

fn counter(h: &H, c: Counter) -> u64 {
    let s = h.core.stats();
    match c {
        Counter::SynproxyCookies => s.synproxy_cookies,
        Counter::SynproxyAccepted => s.synproxy_accepted,
        Counter::SynproxySpliced => s.synproxy_spliced,
        _ => unreachable!(),
    }
}

/// A client of the harness on `cport`.
struct Client {
    v6: bool,
    cport: u16,
    isn: u32,
}

impl Client {
    fn sends(&self, flags: u8, seq: u32, ack: u32, opts: Vec<u8>, data: &[u8]) -> Pkt {
        let mut p = to_vip(self.v6, Proto::Tcp, self.cport, flags).payload(data);
        p.seq = seq;
        p.ack = Some(ack);
        p.options = opts;
        p
    }

    /// The SYN, answered by the director: the cookie and the director's TSval.
    fn syn(&self, h: &mut H) -> (u32, u32) {
        let mut syn = to_vip(self.v6, Proto::Tcp, self.cport, SYN_);
        syn.seq = self.isn;
        syn.options = syn_options(CLIENT_TSVAL);
        let (_, s) = h.tx(&syn.build());
        let a = addrs(self.v6);
        assert_eq!(
            (s.ip.src, s.ip.dst, s.ip.sport, s.ip.dport),
            (a.vip, a.client, 80, self.cport),
            "back to the client"
        );
        assert_eq!((s.ip.tcp_flags, s.ip.ack), (SYNACK, self.isn.wrapping_add(1)));
        assert!(s.ip.l4_csum_ok && s.ip.ip_csum_ok, "checksums hold");
        let opts = &s.ip.tcp_options;
        let (tsval, tsecr) = ts_of(opts).expect("timestamps answered");
        assert_eq!(tsecr, CLIENT_TSVAL, "the client's TSval echoed");
        assert!(opts.windows(4).any(|w| w == [1, 3, 3, 7]), "window scale 7 announced: {opts:?}");
        assert!(opts.windows(2).any(|w| w == [4, 2]), "SACK permitted: {opts:?}");
        (s.ip.seq, tsval)
    }
}

/// SYN, cookie ACK, the server's SYN-ACK (window scale `server_ws`):
/// returns the cookie and where the server's SYN came from.
fn handshake(h: &mut H, c: &Client, fwd: Fwd, server_ws: u8) -> (u32, std::net::SocketAddr) {
    let a = addrs(c.v6);
    let (cookie, ts) = c.syn(h);
    assert_eq!(ts, 0, "the director's clock starts at 0 in the harness");
    assert_eq!(h.core.session_count(), (0, 0), "a SYN makes no session");
    let ack = c.sends(ACK_, c.isn.wrapping_add(1), cookie.wrapping_add(1), ts_option(CLIENT_TSVAL + 1, ts), b"");
    let (_, syn) = h.tx(&ack.build());
    assert_eq!(syn.ip.dst, a.rs[0]);
    assert_eq!(syn.ip.src, if fwd == Fwd::FullNat { a.lip } else { a.client });
    assert_eq!((syn.ip.tcp_flags, syn.ip.seq), (SYN_, c.isn), "the client's own SYN goes to the server");
    let o = &syn.ip.tcp_options;
    assert!(o.starts_with(&[2, 4, 5, 180]), "the client's MSS: {o:?}");
    assert!(o.windows(4).any(|w| w == [1, 3, 3, 7]), "the client's window scale: {o:?}");
    assert!(o.windows(2).any(|w| w == [4, 2]), "SACK permitted: {o:?}");
    assert_eq!(ts_of(o), Some((CLIENT_TSVAL + 1, 0)), "the client's TSval");
    assert!(syn.ip.l4_csum_ok);
    let from = sa(syn.ip.src, syn.ip.sport);
    // Data before the server answered waits.
    let early =
        c.sends(PSH_ACK, c.isn.wrapping_add(1), cookie.wrapping_add(1), ts_option(CLIENT_TSVAL + 2, ts), b"GET");
    assert_eq!(h.send(&early.build()).0, Verdict::Park(DropReason::SynproxyNoAnswer));
    // The server's SYN-ACK becomes its ACK.
    let mut opts = vec![2, 4, 5, 180, 1, 1, 8, 10];
    opts.extend_from_slice(&SERVER_TSVAL.to_be_bytes());
    opts.extend_from_slice(&(CLIENT_TSVAL + 1).to_be_bytes());
    opts.extend_from_slice(&[1, 3, 3, server_ws]);
    let (_, back) = h.tx(&server(c.v6, from, SYNACK, SERVER_ISN, c.isn.wrapping_add(1), opts, b"").build());
    assert_eq!((back.ip.src, back.ip.dst), (syn.ip.src, a.rs[0]), "the ACK goes back to the server");
    assert_eq!((back.ip.sport, back.ip.dport), (from.port(), 8080));
    assert_eq!((back.ip.tcp_flags, back.ip.seq, back.ip.ack), (ACK_, c.isn.wrapping_add(1), SERVER_ISN + 1));
    assert_eq!(ts_of(&back.ip.tcp_options), Some((CLIENT_TSVAL + 1, SERVER_TSVAL)));
    assert!(back.ip.l4_csum_ok && back.ip.ip_csum_ok);
    assert!(h.core.take_reoffer(), "the parked segment may go now");
    (cookie, from)
}

/// From the real server to `to` (what its SYN came from).
fn server(v6: bool, to: std::net::SocketAddr, flags: u8, seq: u32, ack: u32, opts: Vec<u8>, data: &[u8]) -> Pkt {
    let a = addrs(v6);
    let mut p = Pkt::tcp(sa(a.rs[0], 8080), to, flags).payload(data);
    p.seq = seq;
    p.ack = Some(ack);
    p.options = opts;
    p.src_mac = topo::RS_MACS[0];
    p.dst_mac = topo::RS_IF_MAC;
    p
}

fn spliced_both_ways(v6: bool, fwd: Fwd) {
    let mut h = harness(v6, fwd);
    let c = Client { v6, cport: 40000, isn: 0xffff_fff0 };
    let (cookie, from) = handshake(&mut h, &c, fwd, 5);
    let delta = cookie.wrapping_sub(SERVER_ISN);
    // The client's data (the one parked, offered again), SACKing server
    // data it has: the ack and the SACK edges in the server's numbering.
    // (The director's TSval was 0; the client echoes 3 ms later.)
    let mut opts = ts_option(CLIENT_TSVAL + 2, 3);
    opts.extend_from_slice(&[1, 1, 5, 10]);
    opts.extend_from_slice(&cookie.wrapping_add(100).to_be_bytes());
    opts.extend_from_slice(&cookie.wrapping_add(200).to_be_bytes());
    let data = c.sends(PSH_ACK, c.isn.wrapping_add(1), cookie.wrapping_add(1), opts, b"GET / HTTP/1.0\r\n\r\n");
    let (v, raw) = h.send(&data.build());
    assert!(matches!(v, Verdict::Tx { .. }), "{v:?}: {:?}", h.drops());
    let s = Summary::parse(&raw).unwrap();
    assert_eq!((s.ip.seq, s.ip.ack), (c.isn.wrapping_add(1), SERVER_ISN + 1), "the ack in the server's numbering");
    let o = &s.ip.tcp_options;
    assert_eq!(be32(o, 16), SERVER_ISN + 100, "SACK edges moved: {o:?}");
    assert_eq!(be32(o, 20), SERVER_ISN + 200);
    let ts = ts_of(o).unwrap();
    assert_eq!(
        ts,
        (CLIENT_TSVAL + 2, SERVER_TSVAL + 3),
        "the client's TSval untouched, its echo in the server's clock"
    );
    assert!(s.ip.l4_csum_ok, "checksum follows");
    assert_eq!(window(&raw, v6), 65535, "client and server both scale by 7: the window as sent");
    // The server's data: the sequence number in the director's numbering,
    // its TSval in the director's clock, its window (scale 5) read by 7.
    let reply =
        server(v6, from, PSH_ACK, SERVER_ISN + 1, c.isn.wrapping_add(19), ts_option(SERVER_TSVAL + 9, 1), b"OK");
    let (v, raw) = h.send(&reply.build());
    assert!(matches!(v, Verdict::Tx { .. }), "{v:?}: {:?}", h.drops());
    let s = Summary::parse(&raw).unwrap();
    let a = addrs(v6);
    assert_eq!((s.ip.src, s.ip.dst, s.ip.sport, s.ip.dport), (a.vip, a.client, 80, c.cport));
    assert_eq!(s.ip.seq, cookie.wrapping_add(1), "server ISN + 1 is cookie + 1 to the client");
    assert_eq!(s.ip.seq, (SERVER_ISN + 1).wrapping_add(delta));
    assert_eq!(s.ip.ack, c.isn.wrapping_add(19), "the client's numbers were never moved");
    let (tsval, _) = ts_of(&s.ip.tcp_options).unwrap();
    assert_eq!(tsval, 9, "the server's clock, moved onto the director's");
    assert_eq!(window(&raw, v6), 65535 >> 2, "scale 5 read as scale 7");
    assert!(s.ip.l4_csum_ok);
    assert_eq!((counter(&h, Counter::SynproxyCookies), counter(&h, Counter::SynproxyAccepted)), (1, 1));
    assert_eq!(counter(&h, Counter::SynproxySpliced), 1);
    assert!(h.drops().is_empty(), "{:?}", h.drops());
}

#[test]
fn nat_v4_splices_both_ways() {
    spliced_both_ways(false, Fwd::Nat);
}

#[test]
fn fullnat_v4_splices_both_ways() {
    spliced_both_ways(false, Fwd::FullNat);
}

#[test]
fn nat_v6_splices_both_ways() {
    spliced_both_ways(true, Fwd::Nat);
}

#[test]
fn fullnat_v6_splices_both_ways() {
    spliced_both_ways(true, Fwd::FullNat);
}

#[test]
fn a_bad_cookie_gets_a_reset_and_makes_nothing() {
    for v6 in [false, true] {
        let mut h = harness(v6, Fwd::FullNat);
        let c = Client { v6, cport: 40001, isn: 77 };
        let (cookie, _) = c.syn(&mut h);
        for bad in [cookie.wrapping_add(2), cookie ^ 0x8000_0000, 12345] {
            let (_, rst) = h.tx(&c.sends(ACK_, 78, bad, vec![], b"").build());
            assert_eq!((rst.ip.tcp_flags, rst.ip.seq), (RST, bad), "a RST at the ACK's number");
            assert_eq!(rst.ip.dst, addrs(v6).client);
            assert!(rst.ip.l4_csum_ok);
        }
        // The right cookie from another port, or for another ISN, fails too.
        let other = Client { cport: 40002, ..c };
        assert_eq!(h.tx(&other.sends(ACK_, 78, cookie.wrapping_add(1), vec![], b"").build()).1.ip.tcp_flags, RST);
        assert_eq!(h.tx(&c.sends(ACK_, 79, cookie.wrapping_add(1), vec![], b"").build()).1.ip.tcp_flags, RST);
        assert_eq!(h.core.stats().dropped(DropReason::SynproxyBadCookie), 5);
        assert_eq!(h.core.session_count(), (0, 0));
    }
}

#[test]
fn a_spoofed_flood_makes_no_session_and_reaches_no_server() {
    let mut h = harness(false, Fwd::Nat);
    for k in 0..2000u32 {
        let mut syn = to_vip(false, Proto::Tcp, 1024 + (k % 60000) as u16, SYN_);
        syn.src = sa(format!("198.18.{}.{}", 64 + k / 250, 1 + k % 250).parse().unwrap(), 1024 + k as u16);
        syn.seq = k.wrapping_mul(2_654_435_761);
        let (_, s) = h.tx(&syn.build());
        assert_eq!(s.ip.tcp_flags, SYNACK, "every SYN answered here");
    }
    assert_eq!(h.core.session_count(), (0, 0));
    assert_eq!(h.conns(addrs(false).rs[0]), (0, 0), "nothing reached the server");
    // A real client still gets through.
    let c = Client { v6: false, cport: 50000, isn: 5 };
    handshake(&mut h, &c, Fwd::Nat, 7);
}

#[test]
fn a_client_without_options_gets_none_back() {
    let mut h = harness(false, Fwd::Nat);
    let syn = to_vip(false, Proto::Tcp, 40003, SYN_);
    let (_, s) = h.tx(&syn.build());
    assert_eq!(&s.ip.tcp_options[..2], &[2, 4], "only an MSS");
    assert_eq!(s.ip.tcp_options.len(), 4);
    let (_, syn) =
        h.tx(&to_vip(false, Proto::Tcp, 40003, ACK_).seq_ack(syn_seq(&syn), s.ip.seq.wrapping_add(1)).build());
    assert_eq!(syn.ip.tcp_options, vec![2, 4, 2, 24], "the server hears MSS 536 (none offered) and nothing else");
}

fn syn_seq(p: &Pkt) -> u32 {
    p.seq.wrapping_add(1)
}

trait SeqAck {
    fn seq_ack(self, seq: u32, ack: u32) -> Self;
}

impl SeqAck for Pkt {
    fn seq_ack(mut self, seq: u32, ack: u32) -> Self {
        self.seq = seq;
        self.ack = Some(ack);
        self
    }
}

#[test]
fn a_server_reset_reaches_the_client_in_its_numbering() {
    let mut h = harness(false, Fwd::FullNat);
    let c = Client { v6: false, cport: 40004, isn: 1000 };
    let (cookie, ts) = c.syn(&mut h);
    let (_, syn) = h.tx(&c.sends(ACK_, 1001, cookie.wrapping_add(1), ts_option(1, ts), b"").build());
    let (_, rst) = h.tx(&server(false, sa(syn.ip.src, syn.ip.sport), RST | ACK_, 0, 1001, vec![], b"").build());
    assert_eq!((rst.ip.dst, rst.ip.tcp_flags & RST), (addrs(false).client, RST));
    assert_eq!(rst.ip.seq, cookie.wrapping_add(1), "in the client's window");
}

#[test]
fn dr_and_tun_servers_and_udp_are_refused_by_name() {
    for fwd in [Fwd::Dr, Fwd::Tun] {
        let (mut cfg, key) = topo::config(false, Proto::Tcp, fwd, SchedKind::Rr, 1);
        let sl = cfg.find_service(&key).unwrap();
        let mut spec = cfg.service(sl).unwrap().spec.clone();
        spec.synproxy = true;
        let e = cfg.edit_service(spec).unwrap_err();
        assert!(matches!(e, ConfigError::SynproxyNeedsNat(..)), "{e}");
        assert!(e.to_string().contains("SYN-ACK"), "{e}");
        let mut h = harness(false, Fwd::Nat);
        let d = DestSpec { addr: addrs(false).rs[1], port: 8080, weight: 1, fwd, u_threshold: 0, l_threshold: 0 };
        assert!(matches!(h.cfg.add_dest(&h.key, d), Err(ConfigError::SynproxyNeedsNat(..))));
    }
    let (mut cfg, key) = topo::config(false, Proto::Udp, Fwd::Nat, SchedKind::Rr, 1);
    let sl = cfg.find_service(&key).unwrap();
    let mut spec = cfg.service(sl).unwrap().spec.clone();
    spec.synproxy = true;
    assert!(matches!(cfg.edit_service(spec), Err(ConfigError::SynproxyNotTcp)));
}

#[test]
fn a_synced_session_keeps_the_shift() {
    let mut h = harness(false, Fwd::Nat);
    let c = Client { v6: false, cport: 40005, isn: 42 };
    let (cookie, from) = handshake(&mut h, &c, Fwd::Nat, 7);
    let mut records = Vec::new();
    h.core.sync_step(0, 100, &mut |r| records.push(r));
    assert_eq!(records.len(), 1);
    let r = &records[0];
    let (_, out) = r.seq.expect("IPVS's SEQ_DATA carries the shift");
    assert_eq!((out.init_seq, out.delta), (cookie, cookie.wrapping_sub(SERVER_ISN)));
    // Another director installs it, and the server's next segment reaches
    // the client in the director's numbering there.
    let mut backup = Core::new(h.core.config().clone(), CoreParams { cookie_key: [9, 9], ..CoreParams::default() }, 0);
    backup.install(r, 0).expect("installed");
    let mut b = H { core: backup, now: 0, cfg: h.cfg.clone(), net: h.net.clone(), key: h.key };
    let reply = server(false, from, PSH_ACK, SERVER_ISN + 1, 43, ts_option(SERVER_TSVAL + 1, 1), b"x");
    let (_, s) = b.tx(&reply.build());
    assert_eq!(s.ip.seq, cookie.wrapping_add(1));
    assert!(s.ip.l4_csum_ok);
}
