//! Building and inspecting frames: the fixture tables, the engine benchmark
//! and `xdpvs simulate` use it. Frames built here carry correct checksums;
//! [`Summary`] reads a frame back and says whether its checksums hold.

use crate::lb::net::{Iface, NetState, Route};
use crate::lb::snapshot::Snapshot;
use crate::wire::ethernet::{ethertype, EthernetFrame, Mac};
use crate::wire::icmp::IcmpPacket;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::tcp::TcpSegment;
use crate::wire::udp::UdpDatagram;
use crate::wire::{checksum, proto, put16, put32};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use xdpvs_api::config::{Config, DestSpec, Fwd, Match, Proto, SchedKind, ServiceKey, ServiceSpec};

/// A TCP/UDP packet to build.
#[derive(Debug, Clone)]
pub struct Pkt {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub vlan: Option<u16>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub proto: u8,
    pub tcp_flags: u8,
    pub seq: u32,
    /// The acknowledgement number (`None`: 1 when ACK is set, else 0).
    pub ack: Option<u32>,
    /// TCP option bytes (a multiple of 4).
    pub options: Vec<u8>,
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
    pub payload: Vec<u8>,
}

impl Pkt {
    pub fn tcp(src: SocketAddr, dst: SocketAddr, flags: u8) -> Self {
        Self {
            src_mac: [2, 0, 0, 0, 0, 0xaa],
            dst_mac: [2, 0, 0, 0, 0, 1],
            vlan: None,
            src,
            dst,
            proto: proto::TCP,
            tcp_flags: flags,
            seq: 1000,
            ack: None,
            options: Vec::new(),
            ttl: 64,
            tos: 0,
            df: true,
            payload: Vec::new(),
        }
    }

    pub fn udp(src: SocketAddr, dst: SocketAddr) -> Self {
        Self { proto: proto::UDP, tcp_flags: 0, ..Self::tcp(src, dst, 0) }
    }

    pub fn payload(mut self, p: &[u8]) -> Self {
        self.payload = p.to_vec();
        self
    }

    /// The L4 segment with its checksum.
    fn l4(&self) -> Vec<u8> {
        let mut l4 = if self.proto == proto::TCP {
            let mut h = vec![0u8; 20];
            put16(&mut h, 0, self.src.port());
            put16(&mut h, 2, self.dst.port());
            put32(&mut h, 4, self.seq);
            put32(&mut h, 8, self.ack.unwrap_or(if self.tcp_flags & 0x10 != 0 { 1 } else { 0 }));
            h[12] = (((20 + self.options.len()) / 4) << 4) as u8;
            h.extend_from_slice(&self.options);
            h[13] = self.tcp_flags;
            put16(&mut h, 14, 65535);
            h
        } else {
            let mut h = vec![0u8; 8];
            put16(&mut h, 0, self.src.port());
            put16(&mut h, 2, self.dst.port());
            put16(&mut h, 4, (8 + self.payload.len()) as u16);
            h
        };
        l4.extend_from_slice(&self.payload);
        let seed = pseudo(self.src.ip(), self.dst.ip(), self.proto, l4.len());
        let mut c = !checksum::fold(checksum::sum(&l4, seed));
        if self.proto == proto::UDP && c == 0 {
            c = 0xffff;
        }
        let at = if self.proto == proto::TCP { 16 } else { 6 };
        put16(&mut l4, at, c);
        l4
    }

    /// The IP packet (header + L4).
    pub fn ip_packet(&self) -> Vec<u8> {
        ip_packet(self.src.ip(), self.dst.ip(), self.proto, &self.l4(), self.ttl, self.tos, self.df)
    }

    /// The whole Ethernet frame.
    pub fn build(&self) -> Vec<u8> {
        ether(self.src_mac, self.dst_mac, self.vlan, self.src.is_ipv6(), &self.ip_packet())
    }
}

fn pseudo(src: IpAddr, dst: IpAddr, proto_nr: u8, len: usize) -> u64 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_v4(s.octets(), d.octets(), proto_nr, len as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_v6(s.octets(), d.octets(), proto_nr, len as u32),
        _ => panic!("mixed address families"),
    }
}

/// An IP packet around `payload` (IPv4 with a valid header checksum).
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto_nr: u8, payload: &[u8], ttl: u8, tos: u8, df: bool) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut b = vec![0u8; 20 + payload.len()];
            let mut ip = Ipv4Packet::new_unchecked(&mut b[..]);
            ip.init(
                tos,
                (20 + payload.len()) as u16,
                0x1234,
                if df { crate::wire::ipv4::FLAG_DF } else { 0 },
                ttl,
                proto_nr,
            );
            ip.set_src_bytes(s.octets());
            ip.set_dst_bytes(d.octets());
            ip.fill_checksum();
            b[20..].copy_from_slice(payload);
            b
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut b = vec![0u8; 40 + payload.len()];
            let mut ip = Ipv6Packet::new_unchecked(&mut b[..]);
            ip.init(tos, 0xbeef, payload.len() as u16, proto_nr, ttl);
            ip.set_src_bytes(s.octets());
            ip.set_dst_bytes(d.octets());
            b[40..].copy_from_slice(payload);
            b
        }
        _ => panic!("mixed address families"),
    }
}

/// An Ethernet frame around an IP packet.
pub fn ether(src: Mac, dst: Mac, vlan: Option<u16>, v6: bool, ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(18 + ip.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(v) = vlan {
        f.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&(if v6 { ethertype::IPV6 } else { ethertype::IPV4 }).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// An ICMP(v6) error from `src` to `dst` quoting `quoted` (an IP packet,
/// cut to what fits the family's limit).
pub fn icmp_error(
    (src_mac, dst_mac): (Mac, Mac),
    src: IpAddr,
    dst: IpAddr,
    ty: u8,
    code: u8,
    rest: u32,
    quoted: &[u8],
) -> Vec<u8> {
    let v6 = src.is_ipv6();
    let max = if v6 { 1280 - 48 } else { 576 - 28 };
    let q = &quoted[..quoted.len().min(max)];
    let mut m = vec![0u8; 8 + q.len()];
    IcmpPacket::new_unchecked(&mut m[..]).init(ty, code, rest);
    m[8..].copy_from_slice(q);
    let proto_nr = if v6 { proto::ICMPV6 } else { proto::ICMP };
    let seed = if v6 { pseudo(src, dst, proto_nr, m.len()) } else { 0 };
    let c = !checksum::fold(checksum::sum(&m, seed));
    put16(&mut m, 2, c);
    ether(src_mac, dst_mac, None, v6, &ip_packet(src, dst, proto_nr, &m, 64, 0, false))
}

/// What a frame says, read back for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub dst_mac: Mac,
    pub src_mac: Mac,
    pub vlan: Option<u16>,
    pub ip: IpSummary,
}

/// One IP packet (and what it carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSummary {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
    pub len: usize,
    /// The IPv4 header checksum holds (always true for IPv6).
    pub ip_csum_ok: bool,
    /// TCP/UDP ports (zero for other protocols).
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// TCP sequence and acknowledgement numbers, and the option bytes.
    pub seq: u32,
    pub ack: u32,
    pub tcp_options: Vec<u8>,
    /// The TCP/UDP/ICMP checksum holds.
    pub l4_csum_ok: bool,
    pub icmp_type: Option<(u8, u8, u32)>,
    /// The packet inside: the inner packet of a tunnel, or the packet an
    /// ICMP error quotes (parsed leniently: it may be cut short).
    pub inner: Option<Box<IpSummary>>,
    pub payload: Vec<u8>,
}

impl Summary {
    pub fn parse(f: &[u8]) -> Option<Self> {
        let eth = EthernetFrame::new_checked(f).ok()?;
        let (ty, off, vlan) = eth.payload_offset().ok()?;
        if ty != ethertype::IPV4 && ty != ethertype::IPV6 {
            return None;
        }
        Some(Self { dst_mac: eth.dst(), src_mac: eth.src(), vlan, ip: IpSummary::parse(&f[off..], false)? })
    }
}

/// The IP header's fields a summary keeps.
struct Header {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ttl: u8,
    tos: u8,
    df: bool,
    /// Offset of the upper layer.
    hl: usize,
    len: usize,
    csum_ok: bool,
}

impl Header {
    fn parse(b: &[u8], quoted: bool) -> Option<Header> {
        match b.first()? >> 4 {
            4 => {
                let ip =
                    if quoted { Ipv4Packet::new_checked_quoted(b).ok()? } else { Ipv4Packet::new_checked(b).ok()? };
                Some(Header {
                    src: IpAddr::V4(ip.src()),
                    dst: IpAddr::V4(ip.dst()),
                    proto: ip.protocol(),
                    ttl: ip.ttl(),
                    tos: ip.tos(),
                    df: ip.dont_frag(),
                    hl: ip.header_len(),
                    len: usize::from(ip.total_len()).min(b.len()),
                    csum_ok: ip.verify_checksum(),
                })
            }
            6 => {
                let ip =
                    if quoted { Ipv6Packet::new_checked_quoted(b).ok()? } else { Ipv6Packet::new_checked(b).ok()? };
                let ul = ip.upper_layer().ok()?;
                Some(Header {
                    src: IpAddr::V6(ip.src()),
                    dst: IpAddr::V6(ip.dst()),
                    proto: ul.proto,
                    ttl: ip.hop_limit(),
                    tos: ip.traffic_class(),
                    df: true,
                    hl: ul.offset,
                    len: ip.total_len().min(b.len()),
                    csum_ok: true,
                })
            }
            _ => None,
        }
    }
}

impl IpSummary {
    /// Parses an IP packet; `quoted`: it may be cut short (ICMP payload).
    pub fn parse(b: &[u8], quoted: bool) -> Option<Self> {
        let h = Header::parse(b, quoted)?;
        let l4 = &b[h.hl.min(h.len)..h.len];
        let mut s = Self {
            src: h.src,
            dst: h.dst,
            proto: h.proto,
            ttl: h.ttl,
            tos: h.tos,
            df: h.df,
            len: h.len,
            ip_csum_ok: h.csum_ok,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            seq: 0,
            ack: 0,
            tcp_options: Vec::new(),
            l4_csum_ok: false,
            icmp_type: None,
            inner: None,
            payload: Vec::new(),
        };
        s.read_l4(l4);
        Some(s)
    }

    /// Ports, flags, payload and checksum of the upper layer; the packet
    /// inside a tunnel or an ICMP error.
    fn read_l4(&mut self, l4: &[u8]) {
        let seed = pseudo(self.src, self.dst, self.proto, l4.len());
        let sum_ok = checksum::fold(checksum::sum(l4, seed)) == 0xffff;
        if matches!(self.proto, proto::TCP | proto::UDP) && l4.len() >= 4 {
            self.sport = u16::from_be_bytes([l4[0], l4[1]]);
            self.dport = u16::from_be_bytes([l4[2], l4[3]]);
        }
        match self.proto {
            proto::TCP => {
                if let Ok(t) = TcpSegment::new_checked(l4) {
                    self.tcp_flags = t.flags();
                    (self.seq, self.ack) = (t.seq(), t.ack_number());
                    self.tcp_options = l4[20..t.header_len()].to_vec();
                    self.payload = t.payload().to_vec();
                }
                self.l4_csum_ok = sum_ok;
            }
            proto::UDP => {
                if let Ok(u) = UdpDatagram::new_checked(l4) {
                    self.payload = u.payload().to_vec();
                    self.l4_csum_ok = sum_ok || (self.src.is_ipv4() && u.checksum() == 0);
                }
            }
            proto::ICMP | proto::ICMPV6 => {
                let seed = if self.proto == proto::ICMPV6 { seed } else { 0 };
                self.l4_csum_ok = checksum::fold(checksum::sum(l4, seed)) == 0xffff;
                if let Ok(m) = IcmpPacket::new_checked(l4) {
                    self.icmp_type = Some((m.msg_type(), m.code(), m.rest()));
                    self.inner = IpSummary::parse(m.payload(), true).map(Box::new);
                }
            }
            proto::IPIP | proto::IPV6 => {
                self.l4_csum_ok = true;
                self.inner = IpSummary::parse(l4, false).map(Box::new);
            }
            _ => {}
        }
    }
}

/// Addresses of the standard test topology: a client side (interface 0) and
/// a real-server side (interface 1), in the benchmark ranges.
pub mod topo {
    use super::*;

    pub const CLIENT_IF_MAC: Mac = [2, 0, 0, 0, 0, 1];
    pub const RS_IF_MAC: Mac = [2, 0, 0, 0, 1, 1];
    pub const CLIENT_MAC: Mac = [2, 0, 0, 0, 0, 0xaa];
    pub const RS_MACS: [Mac; 4] =
        [[2, 0, 0, 0, 1, 0x11], [2, 0, 0, 0, 1, 0x12], [2, 0, 0, 0, 1, 0x13], [2, 0, 0, 0, 1, 0x14]];

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    /// (director on client side, director on RS side, client, VIP, RS 1..4, local address)
    pub struct Addrs {
        pub dir_client: IpAddr,
        pub dir_rs: IpAddr,
        pub client: IpAddr,
        pub vip: IpAddr,
        pub rs: [IpAddr; 4],
        pub lip: IpAddr,
        pub client_net: (IpAddr, u8),
        pub rs_net: (IpAddr, u8),
    }

    pub fn v4() -> Addrs {
        Addrs {
            dir_client: ip("198.18.0.1"),
            dir_rs: ip("198.19.0.1"),
            client: ip("198.18.0.100"),
            vip: ip("198.18.0.10"),
            rs: [ip("198.19.0.11"), ip("198.19.0.12"), ip("198.19.0.13"), ip("198.19.0.14")],
            lip: ip("198.19.0.250"),
            client_net: (ip("198.18.0.0"), 24),
            rs_net: (ip("198.19.0.0"), 24),
        }
    }

    pub fn v6() -> Addrs {
        Addrs {
            dir_client: ip("2001:db8::1"),
            dir_rs: ip("2001:db8:1::1"),
            client: ip("2001:db8::100"),
            vip: ip("2001:db8::10"),
            rs: [ip("2001:db8:1::11"), ip("2001:db8:1::12"), ip("2001:db8:1::13"), ip("2001:db8:1::14")],
            lip: ip("2001:db8:1::250"),
            client_net: (ip("2001:db8::"), 64),
            rs_net: (ip("2001:db8:1::"), 64),
        }
    }

    /// Interfaces, on-link routes for both families, and resolved neighbours
    /// (the client and the four real servers of each family). A default route
    /// via a gateway on the client side serves other clients.
    pub fn net() -> NetState {
        let (a4, a6) = (v4(), v6());
        let addr4 = |a: IpAddr| match a {
            IpAddr::V4(a) => Some(a),
            _ => None,
        };
        let addr6 = |a: IpAddr| match a {
            IpAddr::V6(a) => Some(a),
            _ => None,
        };
        let mut n = NetState::new(vec![
            Iface {
                name: "client0".into(),
                mac: CLIENT_IF_MAC,
                mtu: 1500,
                addr4: addr4(a4.dir_client),
                addr6: addr6(a6.dir_client),
                rss: None,
            },
            Iface {
                name: "rs0".into(),
                mac: RS_IF_MAC,
                mtu: 1500,
                addr4: addr4(a4.dir_rs),
                addr6: addr6(a6.dir_rs),
                rss: None,
            },
        ]);
        for a in [&a4, &a6] {
            n.add_route(Route { net: a.client_net.0, prefix: a.client_net.1, iface: 0, gateway: None });
            n.add_route(Route { net: a.rs_net.0, prefix: a.rs_net.1, iface: 1, gateway: None });
            n.set_neighbour(a.client, 0, Some(CLIENT_MAC));
            for (i, rs) in a.rs.iter().enumerate() {
                n.set_neighbour(*rs, 1, Some(RS_MACS[i]));
            }
        }
        n.add_route(Route { net: ip("0.0.0.0"), prefix: 0, iface: 0, gateway: Some(ip("198.18.0.254")) });
        n.add_route(Route { net: ip("::"), prefix: 0, iface: 0, gateway: Some(ip("2001:db8::fe")) });
        n.set_neighbour(ip("198.18.0.254"), 0, Some([2, 0, 0, 0, 0, 0xfe]));
        n.set_neighbour(ip("2001:db8::fe"), 0, Some([2, 0, 0, 0, 0, 0xfe]));
        n
    }

    /// A configuration with one service `proto VIP:80` (`sched`) and `n` real
    /// servers on port 8080 forwarded by `fwd` (weights 1), plus the local
    /// address for FULLNAT.
    pub fn config(v6: bool, proto_: Proto, fwd: Fwd, sched: SchedKind, n: usize) -> (Config, ServiceKey) {
        let a = if v6 { super::topo::v6() } else { super::topo::v4() };
        let mut c = Config::default();
        let key = ServiceKey::Addr(Match { proto: proto_, addr: a.vip, port: 80 });
        c.add_service(ServiceSpec::new(key, sched)).expect("fresh config");
        for rs in a.rs.iter().take(n) {
            c.add_dest(&key, DestSpec { addr: *rs, port: 8080, weight: 1, fwd, u_threshold: 0, l_threshold: 0 })
                .expect("fresh service");
        }
        c.add_laddr(&key, a.lip, None).expect("fresh service");
        (c, key)
    }

    /// `cfg` over [`net`], as a core runs it.
    pub fn snapshot(cfg: &Config) -> Arc<Snapshot> {
        Arc::new(Snapshot::new(cfg.clone(), Arc::new(net())))
    }
}
