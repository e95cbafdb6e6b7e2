//! Shared harness: a core over the standard topology, frames in and out.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use xdpvs::lb::core::{Core, CoreParams};
use xdpvs::lb::frame::Frame;
use xdpvs::lb::net::NetState;
use xdpvs::lb::{Verdict, TICKS_PER_SEC};
use xdpvs::testkit::{topo, Pkt, Summary};
use xdpvs::wire::tcp::flags::*;
use xdpvs_api::config::{Config, Fwd, Proto, SchedKind, ServiceKey};

pub const HEADROOM: usize = 256;

pub struct H {
    pub core: Core,
    pub now: u32,
    pub cfg: Config,
    /// The network state the next [`H::publish`] goes out with.
    pub net: NetState,
    pub key: ServiceKey,
}

impl H {
    pub fn new(v6: bool, proto: Proto, fwd: Fwd, sched: SchedKind, n: usize) -> Self {
        let (cfg, key) = topo::config(v6, proto, fwd, sched, n);
        Self::with(cfg, key, CoreParams { max_sessions: 4096, reserve_sessions: 1024, ..CoreParams::default() })
    }

    pub fn with(cfg: Config, key: ServiceKey, p: CoreParams) -> Self {
        let core = Core::new(topo::snapshot(&cfg), p, 0);
        Self { core, now: 0, cfg, net: topo::net(), key }
    }

    /// Publishes the edited configuration (and network state) to the core,
    /// as the daemon does: a new generation.
    pub fn publish(&mut self) {
        self.cfg.bump_generation();
        let next = self.core.config().next(self.cfg.clone(), Arc::new(self.net.clone()));
        self.core.set_config(Arc::new(next));
    }

    pub fn send(&mut self, frame: &[u8]) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0u8; HEADROOM + frame.len() + 256];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let mut f = Frame::new(&mut buf, HEADROOM, frame.len()).unwrap();
        let v = self.core.process(&mut f, self.now);
        (v, f.data().to_vec())
    }

    /// Sends and expects a transmit; returns the interface and the frame read back.
    pub fn tx(&mut self, frame: &[u8]) -> (u16, Summary) {
        match self.send(frame) {
            (Verdict::Tx { iface }, out) => (iface, Summary::parse(&out).expect("an IP frame")),
            (v, _) => panic!("expected a transmit, got {v:?} (drops: {:?})", self.drops()),
        }
    }

    pub fn advance(&mut self, secs: u32) -> usize {
        self.now += secs * TICKS_PER_SEC;
        self.core.housekeep(self.now)
    }

    pub fn drops(&self) -> Vec<(&'static str, u64)> {
        xdpvs::lb::stats::DropReason::ALL
            .iter()
            .map(|d| (d.name(), self.core.stats().dropped(*d)))
            .filter(|x| x.1 > 0)
            .collect()
    }

    /// (ActiveConn, InActConn) of real server `i` (0-based, in the order added).
    pub fn conns(&self, rs: IpAddr) -> (u32, u32) {
        let slot = self.cfg.find_dest(self.cfg.find_service(&self.key).unwrap(), rs, 8080).unwrap();
        let rt = self.core.dest_rt(slot).unwrap();
        (rt.active, rt.inactive)
    }
}

pub fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

pub fn addrs(v6: bool) -> topo::Addrs {
    if v6 {
        topo::v6()
    } else {
        topo::v4()
    }
}

/// Client → VIP:80 from `cport`.
pub fn to_vip(v6: bool, proto: Proto, cport: u16, flags: u8) -> Pkt {
    let a = addrs(v6);
    match proto {
        Proto::Tcp => Pkt::tcp(sa(a.client, cport), sa(a.vip, 80), flags),
        Proto::Udp => Pkt::udp(sa(a.client, cport), sa(a.vip, 80)).payload(b"ping"),
    }
}

pub const SYN_: u8 = SYN;
pub const SYNACK: u8 = SYN | ACK;
pub const ACK_: u8 = ACK;
