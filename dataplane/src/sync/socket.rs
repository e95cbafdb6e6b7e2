//! The sync daemons' multicast sockets, as IPVS makes them: the master's
//! sends on the sync interface (multicast loop off, the daemon's TTL) to
//! `group:port`; a receiving socket is bound to `group:port` on the
//! interface and joined to the group (a master has one too, to hear bulk
//! requests).

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use xdpvs_api::sync::DaemonSpec;

fn ifindex(iface: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(iface).map_err(|e| {
        io::Error::other(format!("no interface named '{iface}' ({e}): --mcast-interface names a kernel interface"))
    })
}

fn udp(group: IpAddr) -> io::Result<Socket> {
    let domain = if group.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// The master's sending socket, connected to the group.
pub fn sender(d: &DaemonSpec) -> io::Result<UdpSocket> {
    let group = d.group();
    let idx = ifindex(&d.iface)?;
    let s = udp(group)?;
    s.bind_device(Some(d.iface.as_bytes()))?;
    match group {
        IpAddr::V4(_) => {
            s.set_multicast_loop_v4(false)?;
            s.set_multicast_ttl_v4(u32::from(d.ttl()))?;
        }
        IpAddr::V6(_) => {
            s.set_multicast_loop_v6(false)?;
            s.set_multicast_hops_v6(u32::from(d.ttl()))?;
            s.set_multicast_if_v6(idx)?;
        }
    }
    s.set_send_buffer_size(4 << 20)?;
    s.connect(&SockAddr::from(SocketAddr::new(group, d.port())))?;
    Ok(s.into())
}

/// A socket that hears the group on the daemon's interface.
pub fn receiver(d: &DaemonSpec) -> io::Result<UdpSocket> {
    let group = d.group();
    let idx = ifindex(&d.iface)?;
    let s = udp(group)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind_device(Some(d.iface.as_bytes()))?;
    // Room for a bulk sync's burst (tens of thousands of records).
    s.set_recv_buffer_size(8 << 20)?;
    s.bind(&SockAddr::from(SocketAddr::new(group, d.port())))?;
    match group {
        IpAddr::V4(g) => s.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(idx))?,
        IpAddr::V6(g) => s.join_multicast_v6(&g, idx)?,
    }
    Ok(s.into())
}

/// The interface's MTU (for IPVS's default message length).
pub fn mtu(iface: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/mtu"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1500)
}
