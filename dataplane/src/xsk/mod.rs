//! AF_XDP: the UMEM and one socket per (device, queue), on `xdpilone`.
//!
//! This module and the shared-memory module are the only places that may use
//! `unsafe`. The invariant everything here rests on:
//!
//! **Each UMEM chunk is in exactly one place at a time**: a kernel ring (fill,
//! rx, tx, completion), a worker's free stack, or the worker's current burst.
//! Chunks enter the kernel only from the free stack or a burst, leave it only
//! through the rx or completion ring, and a worker touches a chunk's bytes only
//! while it sits in that worker's burst. Workers own disjoint sets of chunks
//! (a handed-over chunk changes owner with its descriptor).
//!
//! Rings may grant fewer slots than asked (xdpilone checks a cached index):
//! every producer uses the count it got and keeps the rest where it was.

#![allow(unsafe_code)]

pub mod steer;

use crate::lb::core::BATCH;
use crate::lb::frame::Frame;
use crate::lb::stats::DropReason;
use crate::lb::Verdict;
use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, FromRawFd};
use std::ptr::NonNull;
use std::sync::Arc;
use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

/// Size of one UMEM chunk (a page: any Ethernet frame up to 4 KiB fits).
pub const FRAME_SIZE: u32 = 4096;
/// Room the kernel leaves in front of received data (encapsulation and ICMP
/// generation grow frames into it).
pub const HEADROOM: u32 = 128;
/// Descriptors per ring.
pub const RING: u32 = 2048;

/// Anonymous memory for the UMEM: 2 MiB huge pages when reserved, else
/// normal pages.
struct Area {
    ptr: NonNull<u8>,
    len: usize,
    huge: bool,
}

impl Area {
    fn new(len: usize, want_huge: bool) -> io::Result<Area> {
        let map = |flags: i32| {
            // SAFETY: an anonymous private mapping at an address of the
            // kernel's choice aliases no Rust object; the result is checked.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | flags,
                    -1,
                    0,
                )
            };
            (p != libc::MAP_FAILED).then(|| NonNull::new(p.cast::<u8>())).flatten()
        };
        if want_huge {
            if let Some(ptr) = map(libc::MAP_HUGETLB) {
                return Ok(Area { ptr, len, huge: true });
            }
        }
        map(0).map(|ptr| Area { ptr, len, huge: false }).ok_or_else(io::Error::last_os_error)
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; the Umem that
        // registered this memory with the kernel is dropped before the Area
        // (field order in `Shared`), and no slice into it outlives a burst.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The UMEM: registered memory shared by every socket of the daemon.
pub struct Shared {
    umem: Umem,
    area: Area,
    frames: u32,
}

// SAFETY: the Umem handle is only used for setup calls (socket creation and
// binding, done before workers start); chunk memory is reached only through
// the ownership protocol above, so sharing the handle across threads
// shares no unsynchronised state.
unsafe impl Sync for Shared {}
// SAFETY: as above: moving the handle to another thread moves no chunk.
unsafe impl Send for Shared {}

impl Shared {
    /// Maps `bytes` of UMEM (rounded down to whole chunks). Returns the UMEM
    /// and whether huge pages back it.
    pub fn new(bytes: usize, hugepages: bool) -> io::Result<Arc<Shared>> {
        let frames = (bytes / FRAME_SIZE as usize).max(2 * RING as usize) as u32;
        let len = frames as usize * FRAME_SIZE as usize;
        let area = Area::new(len, hugepages)?;
        let cfg =
            UmemConfig { fill_size: RING, complete_size: RING, frame_size: FRAME_SIZE, headroom: HEADROOM, flags: 0 };
        let region = NonNull::slice_from_raw_parts(area.ptr, len);
        // SAFETY: `region` is a page-aligned private mapping that lives in the
        // same `Shared` as the Umem and is unmapped only after it (field order).
        let umem = unsafe { Umem::new(cfg, region) }.map_err(|e| io::Error::from_raw_os_error(e.get_raw()))?;
        Ok(Arc::new(Shared { umem, area, frames }))
    }

    pub fn frames(&self) -> u32 {
        self.frames
    }

    pub fn hugepages(&self) -> bool {
        self.area.huge
    }

    /// The chunk starting at UMEM offset `base`.
    ///
    /// # Safety
    /// The caller holds chunk `base` (see the module invariant): no ring and
    /// no other live slice refers to it.
    // The UMEM is memory shared with the kernel: exclusivity comes from the
    // chunk-ownership protocol (the caller's duty above), not from `&mut self`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn chunk(&self, base: u64) -> &mut [u8] {
        debug_assert!(base % u64::from(FRAME_SIZE) == 0 && base < u64::from(self.frames) * u64::from(FRAME_SIZE));
        // SAFETY: in bounds (checked above in debug, guaranteed by the
        // ownership protocol: bases come from our own range or from the
        // kernel's rings for this UMEM), and exclusive per the caller's duty.
        unsafe { std::slice::from_raw_parts_mut(self.area.ptr.as_ptr().add(base as usize), FRAME_SIZE as usize) }
    }
}

fn errno(what: &str, e: xdpilone::Errno) -> io::Error {
    let os = io::Error::from_raw_os_error(e.get_raw());
    io::Error::new(os.kind(), format!("{what}: {os}"))
}

/// One AF_XDP socket bound to (device, queue).
pub struct Port {
    pub iface: String,
    pub queue: u32,
    dev: DeviceQueue,
    rx: RingRx,
    tx: RingTx,
    _user: User,
    sock_fd: i32,
}

impl Port {
    /// The socket's fd, for the XSKMAP.
    pub fn fd(&self) -> i32 {
        self.sock_fd
    }
}

/// Opens sockets for `(iface, queue)` pairs on `shared`. The first pair
/// uses the UMEM's own socket. Binding retries EBUSY for a while (a queue
/// just released by a previous instance stays busy for 10–20 ms).
pub fn open_ports(shared: &Shared, pairs: &[(String, u32)], first: bool) -> io::Result<Vec<Port>> {
    let mut ports = Vec::new();
    for (k, (iface, queue)) in pairs.iter().enumerate() {
        let name =
            CString::new(iface.as_str()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name"))?;
        let mut info = IfInfo::invalid();
        info.from_name(&name).map_err(|e| errno(&format!("interface {iface}"), e))?;
        info.set_queue(*queue);
        let sock = if first && k == 0 { Socket::with_shared(&info, &shared.umem) } else { Socket::new(&info) }
            .map_err(|e| errno(&format!("AF_XDP socket on {iface} queue {queue}"), e))?;
        let dev = shared
            .umem
            .fq_cq(&sock)
            .map_err(|e| errno(&format!("fill/completion rings on {iface} queue {queue}"), e))?;
        // Only the UMEM's own socket may pass bind flags; sockets sharing the
        // UMEM inherit them (the kernel refuses flags with XDP_SHARED_UMEM).
        let owner = first && k == 0;
        let bind_flags = if owner { SocketConfig::XDP_BIND_NEED_WAKEUP } else { 0 };
        let cfg = SocketConfig { rx_size: NonZeroU32::new(RING), tx_size: NonZeroU32::new(RING), bind_flags };
        let user =
            shared.umem.rx_tx(&sock, &cfg).map_err(|e| errno(&format!("rx/tx rings on {iface} queue {queue}"), e))?;
        let rx = user.map_rx().map_err(|e| errno("map rx ring", e))?;
        let tx = user.map_tx().map_err(|e| errno("map tx ring", e))?;
        let mut tries = 0;
        loop {
            match shared.umem.bind(&user) {
                Ok(()) => break,
                Err(e) if e.get_raw() == libc::EBUSY && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(e) => return Err(errno(&format!("bind AF_XDP socket to {iface} queue {queue}"), e)),
            }
        }
        let sock_fd = rx.as_raw_fd();
        ports.push(Port { iface: iface.clone(), queue: *queue, dev, rx, tx, _user: user, sock_fd });
    }
    Ok(ports)
}

/// A received frame the worker holds: chunk base, data offset in the chunk,
/// length, and the port it came from.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub(crate) base: u64,
    head: u32,
    len: u32,
    pub port: u16,
}

/// Send calls one kick makes at most (each sends up to 32 frames in copy mode).
const MAX_KICKS: u32 = 16;

/// Has the kernel send what the tx ring holds; returns the send calls made.
///
/// Copy mode transmits only on a send call, whatever the ring's need_wakeup
/// flag says (sockets sharing the UMEM on another queue were seen to stall
/// when the kick waited for the flag), and each call sends at most 32 frames
/// (the kernel's TX_BATCH_SIZE). So: call again while the ring still holds
/// frames and the last call took some; stop when it took none (the device
/// is busy, or a zero-copy driver sends them later). A ring left full with
/// no kick would never drain: every later frame would find it full.
fn kick(tx: &RingTx) -> u64 {
    let (mut left, mut calls) = (tx.pending(), 0);
    while left > 0 && calls < MAX_KICKS {
        tx.wake();
        calls += 1;
        let now = tx.pending();
        if now >= left {
            break;
        }
        left = now;
    }
    u64::from(calls)
}

/// Counters of one worker's I/O.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoStats {
    pub rx: u64,
    pub tx: u64,
    pub tx_ring_full: u64,
    pub fill_short: u64,
    /// Frames for another core whose channel was full (dropped).
    pub handoff_full: u64,
    pub wakeups: u64,
}

/// One worker's sockets and chunks.
///
/// Each worker owns a contiguous range of chunks. A frame handed to another
/// worker takes its chunk along; when that chunk is freed there, it is
/// queued in `foreign` to go home (`take_foreign` / `give_back`), so no
/// worker's fill rings starve while another's free stack swells.
pub struct Io {
    shared: Arc<Shared>,
    ports: Vec<Port>,
    free: Vec<u64>,
    foreign: Vec<u64>,
    first: u64,
    count: u64,
    pub stats: IoStats,
}

impl Io {
    /// A worker owning `ports` and the chunks `first..first + count`.
    pub fn new(shared: Arc<Shared>, ports: Vec<Port>, first: u32, count: u32) -> Io {
        let free = (first..first + count).rev().map(|i| u64::from(i) * u64::from(FRAME_SIZE)).collect();
        let mut io = Io {
            shared,
            ports,
            free,
            foreign: Vec::with_capacity(count as usize),
            first: u64::from(first),
            count: u64::from(count),
            stats: IoStats::default(),
        };
        io.refill();
        io
    }

    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// Frames on port `port`'s tx ring the kernel has not taken yet.
    pub fn tx_pending(&self, port: usize) -> u32 {
        self.ports[port].tx.pending()
    }

    /// Gives each port's fill ring chunks from the free stack, keeping a
    /// stash for transmit-side growth; uses only the slots the ring grants.
    pub fn refill(&mut self) {
        let stash = RING as usize / 4;
        let nports = self.ports.len().max(1);
        for p in &mut self.ports {
            // Keep about half a ring posted; `pending` is what the kernel has not taken yet.
            let want = ((RING / 2).saturating_sub(p.dev.pending()) as usize)
                .min(self.free.len().saturating_sub(stash / nports));
            if want == 0 {
                continue;
            }
            let mut w = p.dev.fill(want as u32);
            let mut n = 0;
            while n < want {
                let Some(&c) = self.free.last() else { break };
                if !w.insert_once(c) {
                    break;
                }
                self.free.pop();
                n += 1;
            }
            w.commit();
            drop(w);
            if n < want {
                self.stats.fill_short += 1;
            }
            // Zero-copy drivers ask to be woken when they ran dry.
            if p.dev.needs_wakeup() {
                p.dev.wake();
                self.stats.wakeups += 1;
            }
        }
    }

    /// Takes completed transmissions back into the free stack.
    pub fn reap_completions(&mut self) {
        for p in &mut self.ports {
            let mut r = p.dev.complete(RING);
            while let Some(addr) = r.read() {
                let base = addr - addr % u64::from(FRAME_SIZE);
                if (base / u64::from(FRAME_SIZE)).wrapping_sub(self.first) < self.count {
                    self.free.push(base);
                } else {
                    self.foreign.push(base);
                }
            }
            r.release();
        }
    }

    /// Receives up to `max` frames in all from the ports into `held`.
    pub fn receive(&mut self, held: &mut Vec<Held>, max: usize) -> usize {
        let before = held.len();
        for (i, p) in self.ports.iter_mut().enumerate() {
            let room = max.saturating_sub(held.len() - before);
            if room == 0 {
                break;
            }
            let mut r = p.rx.receive(room as u32);
            while let Some(XdpDesc { addr, len, .. }) = r.read() {
                let base = addr - addr % u64::from(FRAME_SIZE);
                held.push(Held { base, head: (addr - base) as u32, len, port: i as u16 });
            }
            r.release();
        }
        let n = held.len() - before;
        self.stats.rx += n as u64;
        n
    }

    /// Lends the held chunks (at most [`BATCH`]) to `f` as engine frames.
    pub fn with_frames<R>(&mut self, held: &mut [Held], f: impl FnOnce(&mut [Frame<'_>]) -> R) -> R {
        assert!(held.len() <= BATCH, "a burst is at most BATCH frames");
        let shared = &self.shared;
        let mut it = held.iter();
        let mut frames: [Frame<'_>; BATCH] = std::array::from_fn(|_| match it.next() {
            Some(h) => {
                // SAFETY: `h` came out of an rx ring (or a handoff) and sits
                // in this worker's burst: no ring and no other slice refers to
                // its chunk, and each held chunk appears once in `held`.
                let chunk = unsafe { shared.chunk(h.base) };
                Frame::new(chunk, h.head as usize, h.len as usize)
                    .unwrap_or_else(|| Frame::new(&mut [], 0, 0).expect("empty frame"))
            }
            None => Frame::new(&mut [], 0, 0).expect("empty frame"),
        });
        let n = held.len();
        let r = f(&mut frames[..n]);
        for (h, fr) in held.iter_mut().zip(&frames[..n]) {
            h.head = fr.head() as u32;
            h.len = fr.len() as u32;
        }
        r
    }

    /// Sends every held frame whose verdict is `Tx` on the port `port_of`
    /// names, gives `Handoff` frames to `handoff` (the chunk changes owner
    /// when it returns true), frees the rest (and any frame a full tx ring
    /// could not take).
    pub fn dispose(
        &mut self,
        held: &mut Vec<Held>,
        verdicts: &[Verdict],
        port_of: impl Fn(u16) -> Option<usize>,
        mut handoff: impl FnMut(u16, Held) -> bool,
        mut park: impl FnMut(Held, DropReason) -> bool,
    ) {
        for (h, v) in held.iter().zip(verdicts) {
            let target = match v {
                Verdict::Tx { iface } => port_of(*iface),
                Verdict::Handoff(core) => {
                    if !handoff(*core, *h) {
                        self.stats.handoff_full += 1;
                        self.release(h.base);
                    }
                    continue;
                }
                Verdict::Park(why) => {
                    if !park(*h, *why) {
                        self.release(h.base);
                    }
                    continue;
                }
                _ => None,
            };
            let Some(t) = target else {
                self.release(h.base);
                continue;
            };
            let p = &mut self.ports[t];
            let mut w = p.tx.transmit(1);
            let sent = w.insert_once(XdpDesc { addr: h.base + u64::from(h.head), len: h.len, options: 0 });
            w.commit();
            drop(w);
            if sent {
                self.stats.tx += 1;
            } else {
                self.stats.tx_ring_full += 1;
                self.release(h.base);
            }
        }
        held.clear();
        for p in &self.ports {
            self.stats.wakeups += kick(&p.tx);
        }
    }

    /// Transmits up to `n` new frames on port `port`: each takes a free
    /// chunk, `write(k, buf)` fills frame `k` into the chunk's data area and
    /// returns its length. Returns how many went onto the ring (it may grant
    /// fewer slots; untaken chunks stay free). For traffic generators.
    pub fn transmit_new(&mut self, port: usize, n: usize, mut write: impl FnMut(usize, &mut [u8]) -> usize) -> usize {
        let head = HEADROOM as usize;
        let p = &mut self.ports[port];
        let mut w = p.tx.transmit(n as u32);
        let mut sent = 0;
        while sent < n {
            let Some(&base) = self.free.last() else { break };
            // SAFETY: `base` is on this worker's free stack: no ring and no
            // other slice refers to its chunk until it is submitted below.
            let chunk = unsafe { self.shared.chunk(base) };
            let len = write(sent, &mut chunk[head..]).min(FRAME_SIZE as usize - head);
            if !w.insert_once(XdpDesc { addr: base + head as u64, len: len as u32, options: 0 }) {
                break;
            }
            self.free.pop();
            sent += 1;
        }
        w.commit();
        drop(w);
        self.stats.tx += sent as u64;
        // Also when nothing fitted: a full ring drains only on a send call.
        self.stats.wakeups += kick(&p.tx);
        sent
    }

    /// Frees the chunk of a frame this worker will not send (a parked frame
    /// given up on).
    pub fn discard(&mut self, h: Held) {
        self.release(h.base);
    }

    /// Frees a chunk: onto the free stack if ours, else queued to go home.
    fn release(&mut self, base: u64) {
        if (base / u64::from(FRAME_SIZE)).wrapping_sub(self.first) < self.count {
            self.free.push(base);
        } else {
            self.foreign.push(base);
        }
    }

    /// Hands every chunk owned by another worker to `send(owner, base)`
    /// (owner = index of the worker whose range holds it); keeps those it
    /// could not send for the next round.
    pub fn return_foreign(&mut self, mut send: impl FnMut(usize, u64) -> bool) {
        let per = self.count.max(1);
        let mut kept = 0;
        for k in 0..self.foreign.len() {
            let base = self.foreign[k];
            let owner = ((base / u64::from(FRAME_SIZE)) / per) as usize;
            if !send(owner, base) {
                self.foreign[kept] = base;
                kept += 1;
            }
        }
        self.foreign.truncate(kept);
    }

    /// Takes back a chunk of ours that another worker returned.
    pub fn give_back(&mut self, base: u64) {
        self.release(base);
    }

    /// Frames in the free stack (for tests and stats).
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// True when any port has received frames waiting.
    pub fn rx_pending(&self) -> bool {
        self.ports.iter().any(|p| p.rx.available() > 0)
    }

    /// Raw fds of the rx rings, for poll(2) when idle.
    pub fn fds(&self) -> Vec<i32> {
        self.ports.iter().map(|p| p.sock_fd).collect()
    }
}

/// The kernel's own counters of a worker's AF_XDP sockets
/// (`XDP_STATISTICS`), summed over its sockets: frames lost before xdpvs
/// saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Dropped by the kernel (no room, or the socket could not take them).
    pub rx_dropped: u64,
    /// Dropped because the receive ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when the kernel needed a frame.
    pub fill_ring_empty: u64,
    /// Descriptors xdpvs put on a ring that the kernel refused.
    pub invalid_descs: u64,
}

impl Io {
    /// The sockets' `XDP_STATISTICS` (one getsockopt per socket: call it
    /// off the packet path).
    pub fn xsk_stats(&self) -> XskStats {
        let mut t = XskStats::default();
        for p in &self.ports {
            if let Ok(s) = p.dev.statistics_v2() {
                t.rx_dropped += s.rx_dropped;
                t.rx_ring_full += s.rx_ring_full;
                t.fill_ring_empty += s.rx_fill_ring_empty_descs;
                t.invalid_descs += s.rx_invalid_descs + s.tx_invalid_descs;
            }
        }
        t
    }
}

/// Waits until one of `fds` (at most 16 are watched) is readable or
/// `timeout_ms` passes; true if one is. No allocation: idle workers call it.
pub fn poll_readable(fds: &[i32], timeout_ms: i32) -> bool {
    poll_which(fds, timeout_ms) != 0
}

/// [`poll_readable`], answering which: bit `i` is set when `fds[i]` is
/// readable.
pub fn poll_which(fds: &[i32], timeout_ms: i32) -> u16 {
    let mut p = [libc::pollfd { fd: -1, events: libc::POLLIN, revents: 0 }; 16];
    let n = fds.len().min(p.len());
    for (slot, &fd) in p.iter_mut().zip(fds) {
        slot.fd = fd;
    }
    // SAFETY: `p[..n]` is a valid array of pollfd structs that lives across
    // the call; poll only writes their `revents`.
    if unsafe { libc::poll(p.as_mut_ptr(), n as libc::nfds_t, timeout_ms) } <= 0 {
        return 0;
    }
    p[..n].iter().enumerate().filter(|(_, q)| q.revents != 0).fold(0, |m, (i, _)| m | 1 << i)
}

/// An eventfd that wakes a worker sleeping in [`poll_readable`] (a new
/// configuration generation must not wait for the poll timeout).
pub struct Waker {
    fd: std::os::fd::OwnedFd,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new
        // descriptor we own from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by no one else.
        Ok(Waker { fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) } })
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Makes the descriptor readable (the sleeping worker returns from poll).
    pub fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to our eventfd.
        unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    /// Clears it (non-blocking; nothing to clear is fine).
    pub fn clear(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live local buffer from our eventfd.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    }
}
