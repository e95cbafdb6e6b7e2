//! Core ownership: which core holds the session a frame belongs to.
//!
//! A pure function of the frame and the configuration, so the I/O layer can
//! steer a frame before any engine state is touched:
//! - traffic to a service, and replies from a real server to a client (NAT),
//!   belong to `hash(client address under the widest persistence netmask)`;
//!   hashing the address alone keeps every flow a persistence template covers
//!   on one core;
//! - traffic to a FULLNAT local address belongs to `local port mod cores`
//!   (each core hands out only its own ports);
//! - an ICMP error belongs where the packet it quotes, reversed, would.

use super::family::{quoted_flow, Family, L3, V4, V6};
use super::mix;
use super::session::addr_word;
use crate::wire::ethernet::{ethertype, EthernetFrame};
use crate::wire::icmp::IcmpPacket;
use crate::wire::{be16, proto};
use xdpvs_api::config::{Config, Proto};

/// The owning core of `frame` among `ncores` (0 for anything unparsable:
/// whoever gets it drops or passes it).
pub fn owner_of(cfg: &Config, ncores: u16, frame: &[u8]) -> u16 {
    if ncores <= 1 {
        return 0;
    }
    let Ok((ty, l3, _)) = EthernetFrame::new_unchecked(frame).payload_offset() else {
        return 0;
    };
    fn ip<F: Family>(cfg: &Config, n: u16, b: &[u8]) -> u16 {
        F::parse(b).map_or(0, |ip| of_packet::<F>(cfg, n, b, ip))
    }
    match ty {
        ethertype::IPV4 => ip::<V4>(cfg, ncores, &frame[l3..]),
        ethertype::IPV6 => ip::<V6>(cfg, ncores, &frame[l3..]),
        _ => 0,
    }
}

/// The owning core of the IP packet `b`, whose header `ip` is parsed.
#[inline]
pub fn of_packet<F: Family>(cfg: &Config, n: u16, b: &[u8], ip: L3<F::Addr>) -> u16 {
    let l4 = &b[ip.l4_off.min(b.len())..ip.len.min(b.len())];
    if ip.proto == F::ICMP_PROTO {
        let Ok(icmp) = IcmpPacket::new_checked(l4) else {
            return 0;
        };
        if !F::icmp_is_error(icmp.msg_type()) {
            return 0;
        }
        return quoted_flow::<F>(icmp.payload()).map_or(0, |q| {
            classify::<F>(cfg, n, q.tuple.proto, q.tuple.src, q.tuple.sport, q.tuple.dst, q.tuple.dport)
        });
    }
    if (ip.proto != proto::TCP && ip.proto != proto::UDP) || l4.len() < 4 {
        return 0;
    }
    if ip.fragmented {
        // Only the first fragment has ports: every fragment of a datagram to
        // a service goes where its client's flows do (that needs no port);
        // to a local address, to core 0.
        if cfg.laddr_slot(F::to_ip(ip.dst)).is_some() {
            return 0;
        }
        return client_core::<F>(cfg, n, ip.src);
    }
    classify::<F>(cfg, n, ip.proto, ip.src, be16(l4, 0), ip.dst, be16(l4, 2))
}

/// Owner of a packet `src:sport → dst:dport`.
pub fn classify<F: Family>(
    cfg: &Config,
    n: u16,
    proto_nr: u8,
    src: F::Addr,
    _sport: u16,
    dst: F::Addr,
    dport: u16,
) -> u16 {
    let dst_ip = F::to_ip(dst);
    if cfg.laddr_slot(dst_ip).is_some() {
        return dport % n;
    }
    let to_service = Proto::from_number(proto_nr).is_some_and(|p| cfg.lookup(p, dst_ip, dport).is_some());
    let client = if to_service { src } else { dst };
    client_core::<F>(cfg, n, client)
}

/// The core of a client address.
pub fn client_core<F: Family>(cfg: &Config, n: u16, client: F::Addr) -> u16 {
    let (p4, p6) = cfg.owner_prefix();
    let masked = F::mask(client, if F::IS_V6 { p6 } else { p4 });
    ((mix(addr_word(masked.as_ref())) >> 32) % u64::from(n)) as u16
}
