//! The XDP steering program: load it per device, attach it, give it the
//! queue's AF_XDP sockets and keep its `owned` map in step with the
//! configuration (see `bpf/steer.c` for what each key kind means).

use crate::lb::snapshot::Snapshot;
use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, XskMap};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::Ebpf;
use std::collections::HashSet;
use std::net::IpAddr;
use xdpvs_api::config::Fwd;

static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.o"));

const KIND_SERVICE: u8 = 1;
const KIND_VIP: u8 = 2;
const KIND_LOCAL: u8 = 3;
const KIND_REAL: u8 = 4;
const KIND_HOST: u8 = 5;
/// `proto` of a real server's ICMP marker.
const PROTO_ICMP_MARK: u8 = 255;

/// `struct owned_key` of steer.c, as bytes.
pub type Key = [u8; 24];

fn key(kind: u8, proto: u8, addr: IpAddr, port: u16) -> Key {
    let mut k = [0u8; 24];
    k[0] = kind;
    k[2] = proto;
    k[4..6].copy_from_slice(&port.to_be_bytes());
    match addr {
        IpAddr::V4(a) => {
            k[1] = 4;
            k[8..12].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            k[1] = 6;
            k[8..24].copy_from_slice(&a.octets());
        }
    }
    k
}

/// Every key the configuration asks the program to steer, and the host's
/// own addresses it must never steer.
pub fn owned_keys(cfg: &Snapshot) -> HashSet<Key> {
    let mut keys: HashSet<Key> = cfg.net.host_addrs.iter().map(|&a| key(KIND_HOST, 0, a, 0)).collect();
    // Another director's local addresses: their replies meet synced sessions here.
    keys.extend(cfg.standby_laddrs.iter().map(|&a| key(KIND_LOCAL, 0, a, 0)));
    for (_, s) in cfg.services() {
        let matches: Vec<_> = s.matches().collect();
        for m in &matches {
            keys.insert(key(KIND_SERVICE, m.proto.number(), m.addr, m.port));
            keys.insert(key(KIND_VIP, 0, m.addr, 0));
        }
        for &l in &s.laddrs {
            if let Some(l) = cfg.laddr(l) {
                keys.insert(key(KIND_LOCAL, 0, l.addr, 0));
            }
        }
        for &d in &s.dests {
            let Some(d) = cfg.dest(d) else { continue };
            if d.spec.fwd != Fwd::Nat {
                continue;
            }
            keys.insert(key(KIND_REAL, PROTO_ICMP_MARK, d.spec.addr, 0));
            for m in &matches {
                // A real server on port 0 answers from the port the client asked for.
                let port = if d.spec.port != 0 { d.spec.port } else { m.port };
                keys.insert(key(KIND_REAL, m.proto.number(), d.spec.addr, port));
            }
        }
    }
    keys
}

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Native,
    Generic,
    /// Native, falling back to generic.
    Auto,
}

/// Why the program could not be set up, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    #[error("no network interface named '{0}' (see `ip link`)")]
    UnknownInterface(String),
    #[error("{0} already has an XDP program attached (another xdpvs instance?): stop it, or detach with `ip link set dev {0} xdp off`")]
    Busy(String),
    #[error(
        "not permitted to load XDP programs: run xdpvs as root (it needs CAP_NET_ADMIN, CAP_BPF and CAP_IPC_LOCK)"
    )]
    Permission,
    #[error("{iface}: native XDP is not supported by this driver: use --xdp-mode generic (or auto)")]
    NoNative { iface: String },
    #[error("{0}: {1}")]
    Other(String, String),
}

fn os_code(e: &ProgramError) -> Option<i32> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.raw_os_error();
        }
        src = s.source();
    }
    None
}

fn classify(iface: &str, e: ProgramError) -> SteerError {
    if let ProgramError::UnknownInterface { name } = &e {
        return SteerError::UnknownInterface(name.clone());
    }
    match os_code(&e) {
        Some(libc::EBUSY) | Some(libc::EEXIST) => SteerError::Busy(iface.to_string()),
        Some(libc::EPERM) | Some(libc::EACCES) => SteerError::Permission,
        _ => SteerError::Other(iface.to_string(), e.to_string()),
    }
}

/// The program attached to one device.
pub struct Steer {
    pub iface: String,
    pub mode: Mode,
    bpf: Ebpf,
    link: Option<XdpLinkId>,
    /// Attached through rtnetlink (a handover daemon's): (ifindex, flags).
    netlink: Option<(u32, u32)>,
    /// Leave the program attached when dropped (a restart follows).
    pub keep: bool,
}

impl Drop for Steer {
    /// Detaches explicitly: a program attached through netlink (aya's
    /// fallback when bpf_link is refused, or ours for a handover) would
    /// otherwise outlive us. A kept one stays, dropping what it owns until
    /// its hold runs out.
    fn drop(&mut self) {
        if let Some((ifindex, flags)) = self.netlink.take() {
            if !self.keep {
                if let Err(e) = crate::netlink::set_xdp(ifindex, -1, flags) {
                    tracing::warn!("detaching the XDP program from {}: {e}", self.iface);
                }
            }
            return;
        }
        let Some(id) = self.link.take() else { return };
        if let Some(p) = self.bpf.program_mut("xdpvs_steer") {
            let prog: Result<&mut Xdp, _> = p.try_into();
            if let Ok(prog) = prog {
                if let Err(e) = prog.detach(id) {
                    tracing::warn!("detaching the XDP program from {}: {e}", self.iface);
                }
            }
        }
    }
}

impl Steer {
    /// Loads the program for `iface` (not attached yet: fill its maps first).
    pub fn load(iface: &str, mode: Mode) -> Result<Steer, SteerError> {
        let mut bpf = Ebpf::load(PROGRAM).map_err(|e| {
            let perm = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error)
                .is_some_and(|c| c == libc::EPERM);
            if perm {
                SteerError::Permission
            } else {
                SteerError::Other(iface.into(), format!("loading the XDP program: {e}"))
            }
        })?;
        Self::program(&mut bpf, iface)?.load().map_err(|e| classify(iface, e))?;
        Ok(Steer { iface: iface.into(), mode, bpf, link: None, netlink: None, keep: false })
    }

    fn program<'a>(bpf: &'a mut Ebpf, iface: &str) -> Result<&'a mut Xdp, SteerError> {
        bpf.program_mut("xdpvs_steer")
            .ok_or_else(|| SteerError::Other(iface.into(), "program xdpvs_steer missing from the object".into()))?
            .try_into()
            .map_err(|e: ProgramError| SteerError::Other(iface.into(), e.to_string()))
    }

    /// Loads and attaches by bpf_link: detached when xdpvs exits, however it exits.
    pub fn attach(iface: &str, mode: Mode) -> Result<Steer, SteerError> {
        let mut s = Self::load(iface, mode)?;
        let prog = Self::program(&mut s.bpf, iface)?;
        let (used, link) = match mode {
            Mode::Native => {
                let id = prog.attach(iface, XdpMode::Driver).map_err(|e| match classify(iface, e) {
                    SteerError::Other(..) => SteerError::NoNative { iface: iface.into() },
                    other => other,
                })?;
                (Mode::Native, id)
            }
            Mode::Generic => (Mode::Generic, prog.attach(iface, XdpMode::Skb).map_err(|e| classify(iface, e))?),
            Mode::Auto => match prog.attach(iface, XdpMode::Driver) {
                Ok(id) => (Mode::Native, id),
                Err(e) => match classify(iface, e) {
                    SteerError::Other(..) => {
                        (Mode::Generic, prog.attach(iface, XdpMode::Skb).map_err(|e| classify(iface, e))?)
                    }
                    other => return Err(other),
                },
            },
        };
        s.mode = used;
        s.link = Some(link);
        Ok(s)
    }

    /// Attaches a loaded (and primed) program through rtnetlink, replacing
    /// the program a previous xdpvs left (in one step: no frame meets no
    /// program). It stays attached after xdpvs exits if [`Self::keep`].
    pub fn attach_replacing(&mut self) -> Result<(), SteerError> {
        let iface = self.iface.clone();
        let ifindex =
            nix::net::if_::if_nametoindex(iface.as_str()).map_err(|_| SteerError::UnknownInterface(iface.clone()))?;
        let fd = {
            use std::os::fd::{AsFd, AsRawFd};
            let prog = Self::program(&mut self.bpf, &iface)?;
            let fd = prog.fd().map_err(|e| SteerError::Other(iface.clone(), e.to_string()))?;
            fd.as_fd().as_raw_fd()
        };
        let tries: &[(Mode, u32)] = match self.mode {
            Mode::Native => &[(Mode::Native, crate::netlink::XDP_FLAGS_DRV_MODE)],
            Mode::Generic => &[(Mode::Generic, crate::netlink::XDP_FLAGS_SKB_MODE)],
            Mode::Auto => &[
                (Mode::Native, crate::netlink::XDP_FLAGS_DRV_MODE),
                (Mode::Generic, crate::netlink::XDP_FLAGS_SKB_MODE),
            ],
        };
        let mut last = None;
        for &(mode, flags) in tries {
            match crate::netlink::set_xdp(ifindex, fd, flags) {
                Ok(()) => {
                    self.mode = mode;
                    self.netlink = Some((ifindex, flags));
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.map_or_else(String::new, |e| e.to_string());
        Err(match e {
            _ if e.contains("busy") || e.contains("exists") => SteerError::Busy(iface),
            _ => SteerError::Other(iface, format!("attaching through netlink: {e}")),
        })
    }

    /// Owned traffic with no socket bound is dropped, not passed, until
    /// CLOCK_MONOTONIC `until_ns` (0: passed, as without a handover).
    pub fn hold_until(&mut self, until_ns: u64) -> Result<(), SteerError> {
        let iface = self.iface.clone();
        let map = self
            .bpf
            .map_mut("hold_until")
            .ok_or_else(|| SteerError::Other(iface.clone(), "hold_until map missing".into()))?;
        let mut arr: Array<&mut MapData, u64> =
            Array::try_from(map).map_err(|e| SteerError::Other(iface.clone(), e.to_string()))?;
        arr.set(0, until_ns, 0).map_err(|e| SteerError::Other(iface, format!("hold_until: {e}")))
    }

    /// Puts the AF_XDP socket `fd` of `queue` in the program's XSKMAP.
    pub fn set_socket(&mut self, queue: u32, fd: i32) -> Result<(), SteerError> {
        let iface = self.iface.clone();
        let map =
            self.bpf.map_mut("xsks").ok_or_else(|| SteerError::Other(iface.clone(), "xsks map missing".into()))?;
        let mut xsks: XskMap<&mut MapData> =
            XskMap::try_from(map).map_err(|e| SteerError::Other(iface.clone(), e.to_string()))?;
        xsks.set(queue, fd, 0).map_err(|e| SteerError::Other(iface, format!("XSKMAP[{queue}]: {e}")))
    }

    /// Tells the program the interface's MAC: frames to any other
    /// destination (broadcast, another host) stay with the kernel.
    pub fn set_mac(&mut self, mac: [u8; 6]) -> Result<(), SteerError> {
        let iface = self.iface.clone();
        let map = self
            .bpf
            .map_mut("self_mac")
            .ok_or_else(|| SteerError::Other(iface.clone(), "self_mac map missing".into()))?;
        let mut arr: Array<&mut MapData, u64> =
            Array::try_from(map).map_err(|e| SteerError::Other(iface.clone(), e.to_string()))?;
        let mut word = [0u8; 8];
        word[..6].copy_from_slice(&mac);
        arr.set(0, u64::from_ne_bytes(word), 0).map_err(|e| SteerError::Other(iface, format!("self_mac: {e}")))
    }

    /// Makes the `owned` map hold exactly `keys`.
    pub fn sync(&mut self, keys: &HashSet<Key>) -> Result<(), SteerError> {
        let iface = self.iface.clone();
        let err = |e: aya::maps::MapError| SteerError::Other(iface.clone(), format!("owned map: {e}"));
        let map = self
            .bpf
            .map_mut("owned")
            .ok_or_else(|| SteerError::Other(self.iface.clone(), "owned map missing".into()))?;
        let mut owned: BpfHashMap<&mut MapData, Key, u8> = BpfHashMap::try_from(map).map_err(err)?;
        let stale: Vec<Key> = owned.keys().filter_map(Result::ok).filter(|k| !keys.contains(k)).collect();
        for k in &stale {
            owned.remove(k).map_err(err)?;
        }
        for k in keys {
            owned.insert(k, 1, 0).map_err(err)?;
        }
        Ok(())
    }

    /// (frames redirected to xdpvs, frames passed to the kernel), all CPUs.
    pub fn counters(&self) -> (u64, u64) {
        let Some(map) = self.bpf.map("counters") else { return (0, 0) };
        let Ok(arr) = PerCpuArray::<&MapData, u64>::try_from(map) else { return (0, 0) };
        let sum = |i: u32| arr.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0);
        (sum(0), sum(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::topo;

    #[test]
    fn keys_cover_services_vips_locals_and_nat_servers() {
        let (cfg, _) =
            topo::config(false, xdpvs_api::config::Proto::Tcp, Fwd::Nat, xdpvs_api::config::SchedKind::Rr, 2);
        let k = owned_keys(&topo::snapshot(&cfg));
        let a = topo::v4();
        assert!(k.contains(&key(KIND_SERVICE, 6, a.vip, 80)));
        assert!(k.contains(&key(KIND_VIP, 0, a.vip, 0)));
        assert!(k.contains(&key(KIND_LOCAL, 0, a.lip, 0)));
        assert!(k.contains(&key(KIND_REAL, 6, a.rs[0], 8080)));
        assert!(k.contains(&key(KIND_REAL, PROTO_ICMP_MARK, a.rs[1], 0)));
        assert_eq!(k.iter().filter(|k| k[0] != KIND_HOST).count(), 2 + 1 + 2 * 2);
        // Layout of struct owned_key: kind, family, proto, pad, port (network order), pad, addr[16].
        assert_eq!(&key(KIND_SERVICE, 17, a.vip, 53)[..8], &[1, 4, 17, 0, 0, 53, 0, 0]);
        let (dr, _) = topo::config(false, xdpvs_api::config::Proto::Tcp, Fwd::Dr, xdpvs_api::config::SchedKind::Rr, 2);
        assert!(
            !owned_keys(&topo::snapshot(&dr)).iter().any(|k| k[0] == KIND_REAL),
            "DR replies never pass the director"
        );
    }
}
