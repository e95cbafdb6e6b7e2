//! One core's balancer: the packet pipeline, its session tables and its
//! counters.
//!
//! [`Core::process`] takes one frame and returns a [`Verdict`]. A frame's
//! path reads top to bottom in one function per direction:
//! - [`State::inbound`] (client → service): checksum → session (or, on a
//!   miss: schedule, persistence, local port, next hops) → TCP state step →
//!   rewrite for the mode (DR: L2 only; NAT: DNAT; FULLNAT: SNAT+DNAT; TUN:
//!   encapsulate, or ICMP too-big back to the client) → L2 → transmit;
//! - [`State::outbound`] (real server → client, NAT/FULLNAT): checksum →
//!   session → state step → reverse rewrite → L2 → transmit;
//! - [`State::icmp`]: an ICMP error quoting a tracked flow goes to that
//!   flow's peer with the quoted header rewritten to match.
//!
//! Every early return is a named [`DropReason`] (counted) or a pass to the kernel.
//! The configuration is an `Arc<Snapshot>` swapped between batches
//! ([`Core::set_config`]); nothing on the packet path allocates, locks or
//! touches an atomic once the tables are warm.

use super::family::{Family, HeaderOpts, L3, V4, V6};
use super::frame::Frame;
use super::net::NextHopError;
use super::sched::{AnyScheduler, Candidates, Flow, Load, Scheduler};
use super::session::{flag, Refused, Session, SessionTable, Side, Tables, Tuple, NIL, TEMPLATE_PROTO};
use super::snapshot::Snapshot;
use super::stats::{CoreStats, DropReason, Stats};
use super::tcp_state::{next_state, Dir, TcpState};
use super::{Verdict, TICKS_PER_SEC};
use crate::wire::checksum;
use crate::wire::ethernet::{ethertype, EthernetFrame};
use crate::wire::icmp::{IcmpPacket, HEADER_LEN as ICMP_HDR};
use crate::wire::tcp::{flags as tcpf, TcpSegment};
use crate::wire::udp::UdpDatagram;
use crate::wire::{be16, proto, put16};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use xdpvs_api::config::{Fwd, Proto, Service, ServiceKey};
use xdpvs_api::msg::{Conn, ConnState};

/// Fixed parameters of a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreParams {
    pub id: u16,
    pub ncores: u16,
    /// Sessions (templates included) per address family on this core.
    pub max_sessions: u32,
    /// Sessions to reserve index room for up front.
    pub reserve_sessions: u32,
    /// FULLNAT local port range; this core takes the ports `p % ncores == id`.
    pub lport_min: u16,
    pub lport_max: u16,
    /// Hash seed of the session index.
    pub seed: u64,
    /// Queue entries the reaper may look at per [`Core::housekeep`] call.
    pub reap_budget: usize,
}

impl Default for CoreParams {
    fn default() -> Self {
        Self {
            id: 0,
            ncores: 1,
            max_sessions: 1 << 20,
            reserve_sessions: 1 << 16,
            lport_min: 1024,
            lport_max: 65535,
            seed: 0x5eed_c0de_0f0f,
            reap_budget: 1024,
        }
    }
}

/// Per-core runtime state of a real server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestRt {
    pub serial: u32,
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates bound to it.
    pub persist: u32,
    pub overloaded: bool,
    pub stats: Stats,
    /// Next hop toward it, resolved once per configuration generation.
    nh: Option<u32>,
}

/// Per-core runtime state of a service.
#[derive(Debug, Clone)]
pub struct SvcRt {
    pub serial: u32,
    pub epoch: u32,
    pub sched: AnyScheduler,
    pub stats: Stats,
    laddr_next: usize,
}

/// This core's share of one local address's ports, handed out FIFO so a
/// port rests as long as possible before reuse (TIME_WAIT on the server).
#[derive(Debug, Clone, Default)]
struct PortPool {
    serial: u32,
    free: VecDeque<u16>,
}

impl PortPool {
    fn new(serial: u32, p: &CoreParams) -> Self {
        let n = u32::from(p.ncores.max(1));
        let free = (u32::from(p.lport_min)..=u32::from(p.lport_max))
            .filter(|&port| port % n == u32::from(p.id))
            .map(|port| port as u16)
            .collect();
        Self { serial, free }
    }
}

/// The real servers of a service as this core's schedulers see them.
struct SvcCandidates<'a> {
    slots: &'a [u32],
    cfg: &'a Snapshot,
    rt: &'a [DestRt],
}

impl Candidates for SvcCandidates<'_> {
    fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn load(&self, i: usize) -> Load {
        let slot = self.slots[i];
        let weight = self.cfg.dest(slot).map_or(0, |d| d.spec.weight);
        let rt = self.rt.get(slot as usize).copied().unwrap_or_default();
        Load { weight, active: rt.active, inactive: rt.inactive, overloaded: rt.overloaded }
    }
}

/// Ports and flags of a TCP/UDP header, read once.
#[derive(Debug, Clone, Copy)]
struct L4 {
    sport: u16,
    dport: u16,
    flags: u8,
}

fn parse_l4(b: &[u8], proto_nr: u8) -> Option<L4> {
    match proto_nr {
        proto::TCP => {
            let t = TcpSegment::new_checked(b).ok()?;
            Some(L4 { sport: t.src_port(), dport: t.dst_port(), flags: t.flags() })
        }
        _ => {
            let u = UdpDatagram::new_checked(b).ok()?;
            Some(L4 { sport: u.src_port(), dport: u.dst_port(), flags: 0 })
        }
    }
}

/// Verifies the TCP/UDP/ICMP checksum of the IP packet `b`.
fn l4_checksum_ok<F: Family>(b: &[u8], ip: &L3<F::Addr>) -> bool {
    let l4 = &b[ip.l4_off..ip.len];
    let seed = match ip.proto {
        proto::UDP if !F::IS_V6 && be16(l4, 6) == 0 => return true,
        proto::TCP | proto::UDP => F::pseudo(ip.src, ip.dst, ip.proto, l4.len()),
        _ => F::icmp_seed(ip.src, ip.dst, l4.len()),
    };
    checksum::fold(checksum::sum(l4, seed)) == 0xffff
}

/// Rewrites addresses and ports of the IP packet `b` (which may be a packet
/// quoted in an ICMP error, cut short after its ports): the IPv4 header
/// checksum and the L4 checksum (when present in `b`) are updated
/// incrementally, RFC 1624.
fn rewrite<F: Family>(
    b: &mut [u8],
    l4_off: usize,
    proto_nr: u8,
    src: Option<(F::Addr, u16)>,
    dst: Option<(F::Addr, u16)>,
) {
    let csum_at = l4_off + if proto_nr == proto::TCP { 16 } else { 6 };
    let has_csum = b.len() >= csum_at + 2;
    let mut csum = if has_csum { be16(b, csum_at) } else { 0 };
    let no_csum = proto_nr == proto::UDP && csum == 0 && !F::IS_V6;
    if let Some((a, p)) = src {
        let old = F::read_addr(b, F::SRC_OFF);
        csum = checksum::update(csum, old.as_ref(), a.as_ref());
        csum = checksum::update16(csum, be16(b, l4_off), p);
        F::set_src(b, a);
        put16(b, l4_off, p);
    }
    if let Some((a, p)) = dst {
        let old = F::read_addr(b, F::DST_OFF);
        csum = checksum::update(csum, old.as_ref(), a.as_ref());
        csum = checksum::update16(csum, be16(b, l4_off + 2), p);
        F::set_dst(b, a);
        put16(b, l4_off + 2, p);
    }
    if has_csum && !no_csum {
        if proto_nr == proto::UDP && csum == 0 {
            csum = 0xffff;
        }
        put16(b, csum_at, csum);
    }
}

/// Recomputes the ICMP checksum of the IP packet `b[..len]`.
fn fill_icmp_checksum<F: Family>(b: &mut [u8], l4_off: usize, len: usize) {
    let (src, dst) = (F::read_addr(b, F::SRC_OFF), F::read_addr(b, F::DST_OFF));
    put16(b, l4_off + 2, 0);
    let c = !checksum::fold(checksum::sum(&b[l4_off..len], F::icmp_seed(src, dst, len - l4_off)));
    put16(b, l4_off + 2, c);
}

/// The tuple of a persistence template (IPVS `ip_vs_sched_persist`):
/// `<client & netmask, 0, VIP or fwmark, vport or 0>`.
fn template_tuple<F: Family>(svc: &Service, cip: F::Addr, vip: F::Addr, proto_nr: u8) -> Tuple<F::Addr> {
    let src = F::mask(cip, svc.spec.netmask);
    match svc.spec.key {
        ServiceKey::Fwmark { mark, .. } => {
            Tuple { src, dst: F::mark_addr(mark), sport: 0, dport: 0, proto: TEMPLATE_PROTO }
        }
        ServiceKey::Addr(m) => Tuple { src, dst: vip, sport: 0, dport: m.port, proto: TEMPLATE_PROTO | proto_nr },
    }
}

/// Per-core thresholds: a limit is shared evenly between the cores.
fn per_core(limit: u32, ncores: u16) -> u32 {
    if limit == 0 {
        0
    } else {
        limit.div_ceil(u32::from(ncores.max(1)))
    }
}

/// Frames [`Core::process_batch`] works on at once.
pub const BATCH: usize = 32;

/// Table footprint (slots ever used) from which [`Core::process_batch`]
/// probes the index in two passes (measured: below it everything is in cache
/// and the extra pass only costs; above it the overlapped misses win, 2.7x at
/// a million sessions).
const WARM_FROM_SESSIONS: usize = 16 * 1024;

/// What the first look at a frame found.
#[derive(Debug, Clone, Copy)]
enum Pre {
    /// Decided already: not IP, a malformed header, another core's frame.
    Done(Verdict),
    V4(Parsed<[u8; 4]>),
    V6(Parsed<[u8; 16]>),
}

/// A parsed IP frame; `l4` is set for an unfragmented TCP/UDP packet whose
/// header checked out, `hint` by the probe.
#[derive(Debug, Clone, Copy)]
struct Parsed<A> {
    l3: usize,
    ip: L3<A>,
    l4: Option<L4>,
    /// Set by the first probe pass.
    hash: Option<u64>,
    /// Set by the probe: what the lookup found, and the table's insert count
    /// when it looked (a miss stays valid until that moves).
    hint: Option<Option<(u32, Side)>>,
    probed_at: u64,
}

impl<A: Copy> Parsed<A> {
    #[inline]
    fn tuple(&self) -> Option<Tuple<A>> {
        let l4 = self.l4?;
        Some(Tuple { src: self.ip.src, dst: self.ip.dst, sport: l4.sport, dport: l4.dport, proto: self.ip.proto })
    }
}

/// Everything a core mutates.
pub struct State {
    p: CoreParams,
    t: Tables,
    dest_rt: Vec<DestRt>,
    svc_rt: Vec<Option<SvcRt>>,
    pools: Vec<PortPool>,
    pub stats: CoreStats,
    now: u32,
    ident: u16,
    resolve: [Option<IpAddr>; 16],
    resolve_len: usize,
    last_sched_upkeep: u32,
    /// The parse results of one burst (kept: no allocation per burst).
    pre: Vec<Pre>,
}

/// One core: its configuration snapshot and its state.
pub struct Core {
    cfg: Arc<Snapshot>,
    st: State,
}

impl Core {
    pub fn new(cfg: Arc<Snapshot>, p: CoreParams, now: u32) -> Self {
        let st = State {
            p,
            t: Tables {
                v4: SessionTable::new(p.max_sessions, p.reserve_sessions, p.seed, now),
                v6: SessionTable::new(p.max_sessions, p.reserve_sessions.min(4096), p.seed ^ 0x66, now),
            },
            dest_rt: Vec::new(),
            svc_rt: Vec::new(),
            pools: Vec::new(),
            stats: CoreStats::default(),
            now,
            ident: (p.seed as u16) ^ p.id,
            resolve: [None; 16],
            resolve_len: 0,
            last_sched_upkeep: now,
            pre: Vec::with_capacity(BATCH),
        };
        let mut core = Self { cfg: Arc::new(Snapshot::default()), st };
        core.set_config(cfg);
        core
    }

    pub fn params(&self) -> &CoreParams {
        &self.st.p
    }

    pub fn config(&self) -> &Arc<Snapshot> {
        &self.cfg
    }

    pub fn stats(&self) -> &CoreStats {
        &self.st.stats
    }

    pub fn dest_rt(&self, slot: u32) -> Option<&DestRt> {
        self.st.dest_rt.get(slot as usize).filter(|r| r.serial != 0)
    }

    pub fn svc_rt(&self, slot: u32) -> Option<&SvcRt> {
        self.st.svc_rt.get(slot as usize)?.as_ref()
    }

    /// Live sessions (v4, v6), templates included.
    pub fn session_count(&self) -> (u32, u32) {
        (self.st.t.v4.len(), self.st.t.v6.len())
    }

    /// Heap bytes of the session tables.
    pub fn session_heap_bytes(&self) -> usize {
        self.st.t.v4.heap_bytes() + self.st.t.v6.heap_bytes()
    }

    /// A parked frame (see [`Verdict::Park`]) that will not be offered
    /// again: counted as dropped for its unresolved neighbour.
    pub fn give_up(&mut self) -> Verdict {
        self.st.drop(DropReason::NeighUnresolved)
    }

    /// Whether [`Self::take_resolve_requests`] has anything.
    pub fn wants_resolve(&self) -> bool {
        self.st.resolve_len > 0
    }

    /// Addresses whose neighbour entry is missing: ask the kernel to resolve them.
    pub fn take_resolve_requests(&mut self) -> impl Iterator<Item = IpAddr> + '_ {
        let n = std::mem::take(&mut self.st.resolve_len);
        self.st.resolve[..n].iter_mut().filter_map(Option::take)
    }

    /// Adopts a new configuration generation (between batches). Stats of
    /// real servers and services that still exist carry over; schedulers of
    /// changed services are rebuilt; local addresses get this core's ports.
    pub fn set_config(&mut self, cfg: Arc<Snapshot>) {
        let st = &mut self.st;
        st.dest_rt.resize(cfg.dest_slots(), DestRt::default());
        st.dest_rt.truncate(cfg.dest_slots());
        for (slot, rt) in st.dest_rt.iter_mut().enumerate() {
            match cfg.dest(slot as u32) {
                Some(d) if d.serial == rt.serial => {
                    let u = per_core(d.spec.u_threshold, st.p.ncores);
                    rt.overloaded = u != 0 && rt.active + rt.inactive >= u;
                    rt.nh = None;
                }
                Some(d) => *rt = DestRt { serial: d.serial, ..DestRt::default() },
                None => *rt = DestRt::default(),
            }
        }
        st.svc_rt.resize_with(cfg.service_slots(), || None);
        st.svc_rt.truncate(cfg.service_slots());
        for (slot, rt) in st.svc_rt.iter_mut().enumerate() {
            match cfg.service(slot as u32) {
                Some(s) if rt.as_ref().is_some_and(|r| r.serial == s.serial && r.epoch == s.epoch) => {}
                Some(s) => {
                    let stats = rt.as_ref().filter(|r| r.serial == s.serial).map(|r| r.stats).unwrap_or_default();
                    let c = SvcCandidates { slots: &s.dests, cfg: &cfg, rt: &st.dest_rt };
                    *rt = Some(SvcRt {
                        serial: s.serial,
                        epoch: s.epoch,
                        sched: AnyScheduler::new(s, cfg.maglev(slot as u32), &c),
                        stats,
                        laddr_next: 0,
                    });
                }
                None => *rt = None,
            }
        }
        st.pools.resize_with(cfg.laddr_slots(), PortPool::default);
        st.pools.truncate(cfg.laddr_slots());
        for (slot, pool) in st.pools.iter_mut().enumerate() {
            match cfg.laddr(slot as u32) {
                Some(l) if l.serial == pool.serial => {}
                Some(l) => *pool = PortPool::new(l.serial, &st.p),
                None => *pool = PortPool::default(),
            }
        }
        self.cfg = cfg;
    }

    /// Processes one frame in place.
    pub fn process(&mut self, frame: &mut Frame<'_>, now: u32) -> Verdict {
        let cfg = &*self.cfg;
        let st = &mut self.st;
        st.now = now;
        let pre = st.classify(cfg, frame);
        st.finish(cfg, frame, pre)
    }

    /// Processes a burst of frames in place; `out[i]` is the verdict of
    /// `frames[i]`. Works in groups of [`BATCH`]: every frame of a group is
    /// parsed, then the session index is probed for all of them in one tight
    /// loop (their cache misses overlap instead of queueing), then each frame
    /// runs the pipeline with the probe as a hint it re-validates.
    pub fn process_batch(&mut self, frames: &mut [Frame<'_>], now: u32, out: &mut [Verdict]) {
        assert!(out.len() >= frames.len(), "one verdict slot per frame");
        let cfg = &*self.cfg;
        let st = &mut self.st;
        st.now = now;
        let mut pre = std::mem::take(&mut st.pre);
        for (frames, out) in frames.chunks_mut(BATCH).zip(out.chunks_mut(BATCH)) {
            pre.clear();
            for f in frames.iter_mut() {
                let p = st.classify(cfg, f);
                pre.push(p);
            }
            // Two probe passes pay off once the index outgrows the caches:
            // the first brings in index entries, the second the sessions.
            if st.t.v4.footprint() + st.t.v6.footprint() >= WARM_FROM_SESSIONS {
                let mut sink = 0;
                for p in pre.iter_mut() {
                    sink ^= st.warm(p);
                }
                std::hint::black_box(sink);
            }
            for p in pre.iter_mut() {
                st.probe(p);
            }
            for ((f, p), o) in frames.iter_mut().zip(pre.iter()).zip(out.iter_mut()) {
                *o = st.finish(cfg, f, *p);
            }
        }
        st.pre = pre;
    }

    /// Expires due sessions (bounded work per call) and does scheduler upkeep.
    /// Returns how many sessions and templates ended.
    pub fn housekeep(&mut self, now: u32) -> usize {
        let cfg = &*self.cfg;
        let st = &mut self.st;
        st.now = now;
        let n = st.reap::<V4>(cfg) + st.reap::<V6>(cfg);
        if now.wrapping_sub(st.last_sched_upkeep) >= 60 * TICKS_PER_SEC {
            st.last_sched_upkeep = now;
            for rt in st.svc_rt.iter_mut().flatten() {
                rt.sched.housekeep(now);
            }
        }
        n
    }

    /// Every live session and template (control path: `-L -c`).
    pub fn sessions(&self) -> Vec<Conn> {
        let mut v = Vec::new();
        let mut cursor = 0;
        while let Some(next) = self.sessions_step(cursor, usize::MAX, &mut |i| v.push(i.clone())) {
            cursor = next;
        }
        v
    }

    /// A listing in steps: hands at most `max` sessions from `cursor` on to
    /// `emit` (walking a bounded stretch of slots, so a step costs little on
    /// the packet path) and returns where to resume, or `None` when done.
    /// Cursor 0 starts over; sessions added or removed meanwhile may or may
    /// not appear, as with IPVS's /proc listing.
    pub fn sessions_step(&self, cursor: u64, max: usize, emit: &mut dyn FnMut(&Conn)) -> Option<u64> {
        const V6: u64 = 1 << 32;
        let walk = max.saturating_mul(4).saturating_add(64);
        if cursor & V6 == 0 {
            match self.st.list_step::<V4>(&self.cfg, cursor as u32, max, walk, emit) {
                Some(next) => Some(u64::from(next)),
                None => Some(V6),
            }
        } else {
            self.st.list_step::<V6>(&self.cfg, cursor as u32, max, walk, emit).map(|next| V6 | u64::from(next))
        }
    }
}

impl State {
    #[inline]
    fn pass(&mut self) -> Verdict {
        self.stats.pass += 1;
        Verdict::Pass
    }

    #[inline]
    fn drop(&mut self, d: DropReason) -> Verdict {
        self.stats.drop(d);
        Verdict::Drop(d)
    }

    /// A session's next hop failed: an unresolved neighbour parks the
    /// (untouched) frame, anything else drops it.
    #[inline]
    fn park_or_drop(&mut self, d: DropReason) -> Verdict {
        if d == DropReason::NeighUnresolved {
            Verdict::Park
        } else {
            self.drop(d)
        }
    }

    /// DropReason `d` if `dst` is the balancer's address, else pass to the kernel.
    fn ours_or_pass(&mut self, cfg: &Snapshot, dst: IpAddr, d: DropReason) -> Verdict {
        if cfg.is_local(dst) {
            self.drop(d)
        } else {
            self.pass()
        }
    }

    fn request_resolve(&mut self, a: IpAddr) {
        if self.resolve[..self.resolve_len].contains(&Some(a)) || self.resolve_len == self.resolve.len() {
            return;
        }
        self.resolve[self.resolve_len] = Some(a);
        self.resolve_len += 1;
    }

    fn next_hop(&mut self, cfg: &Snapshot, dst: IpAddr, need_on_link: bool) -> Result<u32, DropReason> {
        match cfg.net.next_hop(dst) {
            Ok(nh) if need_on_link && !nh.on_link => Err(DropReason::DrNotOnLink),
            Ok(nh) => Ok(nh.neigh),
            Err(NextHopError::NoRoute) => Err(DropReason::NoRoute),
            Err(NextHopError::Unresolved(a)) => {
                self.request_resolve(a);
                Err(DropReason::NeighUnresolved)
            }
        }
    }

    /// Sets the MACs for next hop `nh` and answers the transmit verdict.
    fn l2(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>, nh: u32) -> Verdict {
        let Some(n) = cfg.net.neighbour(nh) else {
            return self.drop(DropReason::NoRoute);
        };
        let Some(mac) = n.mac else {
            let a = n.addr;
            self.request_resolve(a);
            return self.drop(DropReason::NeighUnresolved);
        };
        let Some(ifc) = cfg.net.ifaces.get(usize::from(n.iface)) else {
            return self.drop(DropReason::NoRoute);
        };
        let mut eth = EthernetFrame::new_unchecked(frame.data_mut());
        eth.set_dst(mac);
        eth.set_src(ifc.mac);
        self.stats.tx += 1;
        Verdict::Tx { iface: n.iface }
    }

    /// First look at a frame: ownership, L2, the IP header (checksum
    /// verified, link padding trimmed) and the TCP/UDP ports.
    fn classify(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>) -> Pre {
        self.stats.rx += 1;
        if self.p.ncores > 1 {
            let owner = super::owner::owner_of(cfg, self.p.ncores, frame.data());
            if owner != self.p.id {
                self.stats.handoff += 1;
                return Pre::Done(Verdict::Handoff(owner));
            }
        }
        let Ok((ty, l3, _)) = EthernetFrame::new_unchecked(frame.data()).payload_offset() else {
            return Pre::Done(self.pass());
        };
        match ty {
            ethertype::IPV4 => self.parse::<V4>(frame, l3).map_or_else(Pre::Done, Pre::V4),
            ethertype::IPV6 => self.parse::<V6>(frame, l3).map_or_else(Pre::Done, Pre::V6),
            _ => Pre::Done(self.pass()),
        }
    }

    fn parse<F: Family>(&mut self, frame: &mut Frame<'_>, l3: usize) -> Result<Parsed<F::Addr>, Verdict> {
        let ip = F::parse(&frame.data()[l3..], true).map_err(|d| self.drop(d))?;
        // Drop link-layer padding: only the IP packet travels on.
        frame.set_len(l3 + ip.len);
        let flow = (ip.proto == proto::TCP || ip.proto == proto::UDP) && !ip.fragmented;
        let l4 = if flow { parse_l4(&frame.data()[l3 + ip.l4_off..l3 + ip.len], ip.proto) } else { None };
        Ok(Parsed { l3, ip, l4, hash: None, hint: None, probed_at: 0 })
    }

    /// Hashes the flow and reads its index entries (first pass over a burst).
    #[inline]
    fn warm(&self, p: &mut Pre) -> u32 {
        match p {
            Pre::V4(x) => x.tuple().map_or(0, |t| {
                let h = self.t.v4.hash(&t);
                x.hash = Some(h);
                self.t.v4.warm(h)
            }),
            Pre::V6(x) => x.tuple().map_or(0, |t| {
                let h = self.t.v6.hash(&t);
                x.hash = Some(h);
                self.t.v6.warm(h)
            }),
            Pre::Done(_) => 0,
        }
    }

    /// Looks the flow up (second pass), bringing its session into the cache;
    /// [`Self::ip`] re-validates the answer.
    #[inline]
    fn probe(&mut self, p: &mut Pre) {
        fn go<F: Family>(t: &SessionTable<F>, x: &mut Parsed<F::Addr>) {
            if let Some(tuple) = x.tuple() {
                x.hint = Some(t.lookup_hashed(&tuple, x.hash.unwrap_or_else(|| t.hash(&tuple))));
                x.probed_at = t.inserts();
            }
        }
        match p {
            Pre::V4(x) => go(&self.t.v4, x),
            Pre::V6(x) => go(&self.t.v6, x),
            Pre::Done(_) => {}
        }
    }

    fn finish(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>, p: Pre) -> Verdict {
        match p {
            Pre::Done(v) => v,
            Pre::V4(x) => self.ip::<V4>(cfg, frame, x),
            Pre::V6(x) => self.ip::<V6>(cfg, frame, x),
        }
    }

    /// IP dispatch: ICMP, a session hit either way, a new flow, or not ours.
    fn ip<F: Family>(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>, p: Parsed<F::Addr>) -> Verdict {
        let (l3, ip) = (p.l3, p.ip);
        if ip.proto == F::ICMP_PROTO {
            return self.icmp::<F>(cfg, frame, l3, &ip);
        }
        let Some(proto) = Proto::from_number(ip.proto) else {
            return self.pass();
        };
        if ip.fragmented {
            return self.ours_or_pass(cfg, F::to_ip(ip.dst), DropReason::Fragment);
        }
        let (Some(l4), Some(t)) = (p.l4, p.tuple()) else {
            return self.ours_or_pass(cfg, F::to_ip(ip.dst), DropReason::L4Malformed);
        };
        let table = F::table(&mut self.t);
        let found = match p.hint {
            Some(Some((i, side))) if table.holds(i, side, &t) => Some((i, side)),
            Some(None) if table.inserts() == p.probed_at => None,
            _ => table.lookup(&t),
        };
        let hit = match found {
            Some((i, _)) if table.get(i).expires <= self.now => {
                self.expire::<F>(cfg, i);
                None
            }
            Some((i, Side::In)) if proto == Proto::Tcp && self.new_conn_on_old::<F>(cfg, i, l4.flags) => {
                self.expire::<F>(cfg, i);
                None
            }
            // One-packet scheduling: every datagram is a new connection.
            Some((i, Side::In)) if F::table(&mut self.t).get(i).has(flag::ONE_PACKET) => {
                self.expire::<F>(cfg, i);
                None
            }
            hit => hit,
        };
        match hit {
            Some((i, Side::In)) => self.inbound::<F>(cfg, frame, l3, &ip, &l4, Ok(i)),
            Some((i, Side::Out)) => self.outbound::<F>(cfg, frame, l3, &ip, &l4, i),
            None => match cfg.lookup(proto, F::to_ip(ip.dst), l4.dport) {
                Some(svc) => self.inbound::<F>(cfg, frame, l3, &ip, &l4, Err(svc)),
                None if cfg.laddr_slot(F::to_ip(ip.dst)).is_some() => self.drop(DropReason::NoSession),
                None => self.pass(),
            },
        }
    }

    /// Client → service. `hit`: the session, or the service to schedule in.
    fn inbound<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        l4: &L4,
        hit: Result<u32, u32>,
    ) -> Verdict {
        if cfg.settings.verify_l4_checksum && !l4_checksum_ok::<F>(&frame.data()[l3..], ip) {
            return self.drop(DropReason::BadL4Checksum);
        }
        // 1. The session: found, or scheduled now.
        let i = match hit {
            Ok(i) => match self.check_dest::<F>(cfg, i) {
                Ok(()) => i,
                Err(d) => return self.drop(d),
            },
            Err(svc) => match self.new_session::<F>(cfg, svc, ip, l4) {
                Ok(i) => i,
                Err(d) => return self.drop(d),
            },
        };
        // 2. The next hop (before the state moves: a parked frame comes back
        // and must find the session as it left it); state and timeout.
        if let Err(d) = self.session_hop::<F>(cfg, i, true) {
            return self.park_or_drop(d);
        }
        self.step::<F>(cfg, i, Dir::Input, l4.flags);
        let s = *F::table(&mut self.t).get(i);
        // 3. Rewrite for the real server's forwarding method.
        let b = &mut frame.data_mut()[l3..];
        match s.fwd {
            Fwd::Dr => {}
            Fwd::Nat | Fwd::FullNat => {
                if !F::decrement_ttl(b) {
                    return self.drop(DropReason::TtlExceeded);
                }
                let snat = (s.fwd == Fwd::FullNat).then_some((s.lip, s.lport));
                rewrite::<F>(b, ip.l4_off, ip.proto, snat, Some((s.rip, s.rport)));
            }
            Fwd::Tun => {
                if let Err(v) = self.encap::<F>(cfg, frame, l3, ip, &s) {
                    return v;
                }
            }
        }
        // 4. Count and send.
        self.count::<F>(cfg, &s, ip.len, true);
        self.l2(cfg, frame, s.nh_rs)
    }

    /// Real server → client (NAT/FULLNAT replies).
    fn outbound<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        l4: &L4,
        i: u32,
    ) -> Verdict {
        if cfg.settings.verify_l4_checksum && !l4_checksum_ok::<F>(&frame.data()[l3..], ip) {
            return self.drop(DropReason::BadL4Checksum);
        }
        if let Err(d) = self.check_dest::<F>(cfg, i) {
            return self.drop(d);
        }
        if let Err(d) = self.session_hop::<F>(cfg, i, false) {
            return self.park_or_drop(d);
        }
        self.step::<F>(cfg, i, Dir::Output, l4.flags);
        let s = *F::table(&mut self.t).get(i);
        let b = &mut frame.data_mut()[l3..];
        if !F::decrement_ttl(b) {
            return self.drop(DropReason::TtlExceeded);
        }
        let dnat = (s.fwd == Fwd::FullNat).then_some((s.cip, s.cport));
        rewrite::<F>(b, ip.l4_off, ip.proto, Some((s.vip, s.vport)), dnat);
        self.count::<F>(cfg, &s, ip.len, false);
        self.l2(cfg, frame, s.nh_client)
    }

    /// ICMP: errors about tracked flows go to the flow's peer; the rest
    /// (echo to the VIP, errors about unknown flows) is the kernel's.
    fn icmp<F: Family>(&mut self, cfg: &Snapshot, frame: &mut Frame<'_>, l3: usize, ip: &L3<F::Addr>) -> Verdict {
        let (start, end) = (l3 + ip.l4_off, l3 + ip.len);
        let Ok(msg) = IcmpPacket::new_checked(&frame.data()[start..end]) else {
            return self.ours_or_pass(cfg, F::to_ip(ip.dst), DropReason::L4Malformed);
        };
        if !F::icmp_is_error(msg.msg_type()) || ip.fragmented {
            return self.pass();
        }
        let q = msg.payload();
        let Some(inner) = F::parse_quoted(q) else {
            return self.pass();
        };
        if (inner.proto != proto::TCP && inner.proto != proto::UDP) || q.len() < inner.l4_off + 4 {
            return self.pass();
        }
        let (isport, idport) = (be16(q, inner.l4_off), be16(q, inner.l4_off + 2));
        // The quoted packet travelled the other way: reversed, it is the
        // tuple of a packet in this error's direction.
        let t = Tuple { src: inner.dst, dst: inner.src, sport: idport, dport: isport, proto: inner.proto };
        let Some((i, side)) = F::table(&mut self.t).lookup(&t) else {
            return self.pass();
        };
        if cfg.settings.verify_l4_checksum && !l4_checksum_ok::<F>(&frame.data()[l3..], ip) {
            return self.drop(DropReason::BadL4Checksum);
        }
        if let Err(d) = self.check_dest::<F>(cfg, i) {
            return self.drop(d);
        }
        if let Err(d) = self.session_hop::<F>(cfg, i, side == Side::In) {
            return self.drop(d);
        }
        let s = *F::table(&mut self.t).get(i);
        let inner_at = ip.l4_off + ICMP_HDR;
        self.stats.icmp_forwarded += 1;
        match side {
            // From the client's side about what the real server sent: to the real server.
            Side::In => {
                match s.fwd {
                    Fwd::Dr => {}
                    Fwd::Tun => {
                        if let Err(v) = self.encap::<F>(cfg, frame, l3, ip, &s) {
                            return v;
                        }
                    }
                    Fwd::Nat | Fwd::FullNat => {
                        let b = &mut frame.data_mut()[l3..end];
                        if !F::decrement_ttl(b) {
                            return self.drop(DropReason::TtlExceeded);
                        }
                        let local = (s.fwd == Fwd::FullNat).then_some((s.lip, s.lport));
                        rewrite::<F>(&mut b[inner_at..], inner.l4_off, inner.proto, Some((s.rip, s.rport)), local);
                        F::set_dst(b, s.rip);
                        if s.fwd == Fwd::FullNat {
                            F::set_src(b, s.lip);
                        }
                        fill_icmp_checksum::<F>(b, ip.l4_off, ip.len);
                    }
                }
                self.count::<F>(cfg, &s, ip.len, true);
                self.l2(cfg, frame, s.nh_rs)
            }
            // From the real server's side about what we sent it: to the client.
            Side::Out => {
                let b = &mut frame.data_mut()[l3..end];
                if !F::decrement_ttl(b) {
                    return self.drop(DropReason::TtlExceeded);
                }
                let client = (s.fwd == Fwd::FullNat).then_some((s.cip, s.cport));
                rewrite::<F>(&mut b[inner_at..], inner.l4_off, inner.proto, client, Some((s.vip, s.vport)));
                F::set_src(b, s.vip);
                if s.fwd == Fwd::FullNat {
                    F::set_dst(b, s.cip);
                }
                fill_icmp_checksum::<F>(b, ip.l4_off, ip.len);
                self.count::<F>(cfg, &s, ip.len, false);
                self.l2(cfg, frame, s.nh_client)
            }
        }
    }

    /// TUN: encapsulate toward the real server (outer TTL 64, DSCP/ECN
    /// copied, DF copied), or answer "too big" when it would not fit.
    fn encap<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        s: &Session<F::Addr>,
    ) -> Result<(), Verdict> {
        let Some(iface) = cfg.net.neighbour(s.nh_rs).map(|n| n.iface) else {
            return Err(self.drop(DropReason::NoRoute));
        };
        let mtu = cfg.net.ifaces.get(usize::from(iface)).map_or(1500, |i| usize::from(i.mtu));
        if ip.len + F::HEADER_LEN > mtu {
            if !ip.dont_frag {
                return Err(self.drop(DropReason::TooBigNoDf));
            }
            let path_mtu = mtu.saturating_sub(F::HEADER_LEN);
            return Err(self.too_big::<F>(cfg, frame, l3, ip, path_mtu, s.nh_client));
        }
        let Some(src) = cfg.net.iface_addr(iface, F::IS_V6).and_then(F::from_ip) else {
            return Err(self.drop(DropReason::NoSourceAddr));
        };
        if !frame.push_head(F::HEADER_LEN) {
            return Err(self.drop(DropReason::NoHeadroom));
        }
        self.ident = self.ident.wrapping_add(1);
        let d = frame.data_mut();
        d.copy_within(F::HEADER_LEN..F::HEADER_LEN + l3, 0);
        F::write_header(
            &mut d[l3..],
            src,
            s.rip,
            F::TUNNEL_PROTO,
            ip.len,
            HeaderOpts { tos: ip.tos, ident: self.ident, dont_frag: ip.dont_frag },
        );
        Ok(())
    }

    /// Turns the frame, in place, into an ICMP "fragmentation needed" /
    /// "packet too big" from the VIP to the client, quoting the packet.
    fn too_big<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        mtu: usize,
        nh_client: u32,
    ) -> Verdict {
        let nh = if nh_client != NIL {
            nh_client
        } else {
            match self.next_hop(cfg, F::to_ip(ip.src), false) {
                Ok(nh) => nh,
                Err(d) => return self.drop(d),
            }
        };
        let mtu = if F::IS_V6 { mtu.max(1280) } else { mtu };
        let quote = ip.len.min(F::ICMP_ERROR_MAX - F::HEADER_LEN - ICMP_HDR);
        let grow = F::HEADER_LEN + ICMP_HDR;
        if !frame.push_head(grow) {
            return self.drop(DropReason::NoHeadroom);
        }
        frame.data_mut().copy_within(grow..grow + l3, 0);
        frame.set_len(l3 + grow + quote);
        self.ident = self.ident.wrapping_add(1);
        let d = &mut frame.data_mut()[l3..];
        let (ty, code, rest) = F::icmp_too_big(mtu.min(usize::from(u16::MAX)) as u16);
        IcmpPacket::new_unchecked(&mut d[F::HEADER_LEN..]).init(ty, code, rest);
        F::write_header(
            d,
            ip.dst,
            ip.src,
            F::ICMP_PROTO,
            ICMP_HDR + quote,
            HeaderOpts { tos: 0, ident: self.ident, dont_frag: false },
        );
        fill_icmp_checksum::<F>(d, F::HEADER_LEN, grow + quote);
        self.stats.icmp_generated += 1;
        self.l2(cfg, frame, nh)
    }

    /// The session's next hop toward its real server (`to_rs`) or its
    /// client, resolved now if it was not when the session began.
    fn session_hop<F: Family>(&mut self, cfg: &Snapshot, i: u32, to_rs: bool) -> Result<u32, DropReason> {
        let s = *F::table(&mut self.t).get(i);
        let nh = if to_rs { s.nh_rs } else { s.nh_client };
        if nh != NIL {
            return Ok(nh);
        }
        let addr = F::to_ip(if to_rs { s.rip } else { s.cip });
        let nh = self.next_hop(cfg, addr, to_rs && s.fwd == Fwd::Dr)?;
        let s = F::table(&mut self.t).get_mut(i);
        if to_rs {
            s.nh_rs = nh;
        } else {
            s.nh_client = nh;
        }
        Ok(nh)
    }

    /// A client's SYN on the tuple of a connection that has ended (IPVS's
    /// `conn_reuse_mode` 1 and 2: TIME_WAIT, CLOSE, or FIN_WAIT when replies
    /// are not seen, as in DR/TUN), or of one whose real server is quiesced
    /// (`expire_nodest_conn`): a new connection reusing the client's port,
    /// scheduled afresh rather than pinned to the old server. Connections a
    /// persistence template controls keep it (the template decides).
    fn new_conn_on_old<F: Family>(&mut self, cfg: &Snapshot, i: u32, flags: u8) -> bool {
        if flags & (tcpf::SYN | tcpf::ACK) != tcpf::SYN {
            return false;
        }
        let s = F::table(&mut self.t).get(i);
        if s.has(flag::TEMPLATE) || s.tmpl != NIL {
            return false;
        }
        let ended = match TcpState::from_u8(s.state) {
            TcpState::TimeWait | TcpState::Close => true,
            TcpState::FinWait => s.has(flag::NOOUTPUT),
            _ => false,
        };
        let quiesced = cfg.settings.expire_nodest_conn
            && cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial && d.spec.weight == 0);
        ended || quiesced
    }

    /// A session whose real server is gone ends here (expire_nodest_conn).
    fn check_dest<F: Family>(&mut self, cfg: &Snapshot, i: u32) -> Result<(), DropReason> {
        let s = F::table(&mut self.t).get(i);
        if cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial) || !cfg.settings.expire_nodest_conn {
            return Ok(());
        }
        self.expire::<F>(cfg, i);
        Err(DropReason::DestRemoved)
    }

    /// One TCP state step (and the ActiveConn/InActConn moves IPVS makes),
    /// then the new timeout.
    fn step<F: Family>(&mut self, cfg: &Snapshot, i: u32, dir: Dir, tcp_flags: u8) {
        let s = F::table(&mut self.t).get_mut(i);
        let secs = if s.proto == proto::TCP {
            let dir = if s.has(flag::NOOUTPUT) {
                if dir == Dir::Output {
                    s.flags &= !flag::NOOUTPUT;
                    Dir::Output
                } else {
                    Dir::InputOnly
                }
            } else {
                dir
            };
            let old = TcpState::from_u8(s.state);
            let new = next_state(old, dir, tcp_flags);
            if new != old {
                s.state = new as u8;
                let live = cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial);
                let rt = self.dest_rt.get_mut(s.dest as usize).filter(|_| live);
                if !s.has(flag::INACTIVE) && new != TcpState::Established {
                    s.flags |= flag::INACTIVE;
                    if let Some(rt) = rt {
                        rt.active = rt.active.saturating_sub(1);
                        rt.inactive += 1;
                    }
                } else if s.has(flag::INACTIVE) && new == TcpState::Established {
                    s.flags &= !flag::INACTIVE;
                    if let Some(rt) = rt {
                        rt.inactive = rt.inactive.saturating_sub(1);
                        rt.active += 1;
                    }
                }
            }
            cfg.timeouts.tcp(new)
        } else {
            cfg.timeouts.udp
        };
        s.expires = self.now + secs * TICKS_PER_SEC;
    }

    fn count<F: Family>(&mut self, cfg: &Snapshot, s: &Session<F::Addr>, bytes: usize, inbound: bool) {
        if cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial) {
            if let Some(rt) = self.dest_rt.get_mut(s.dest as usize) {
                if inbound {
                    rt.stats.count_in(bytes);
                } else {
                    rt.stats.count_out(bytes);
                }
            }
        }
        if let Some(Some(rt)) = self.svc_rt.get_mut(usize::from(s.svc)) {
            if inbound {
                rt.stats.count_in(bytes);
            } else {
                rt.stats.count_out(bytes);
            }
        }
    }

    fn schedule(&mut self, cfg: &Snapshot, svc_slot: u32, svc: &Service, flow: &Flow) -> Result<u32, DropReason> {
        let rt = self.svc_rt.get_mut(svc_slot as usize).and_then(Option::as_mut).ok_or(DropReason::NoDest)?;
        let c = SvcCandidates { slots: &svc.dests, cfg, rt: &self.dest_rt };
        let pos = rt.sched.schedule(&c, flow).ok_or(DropReason::NoDest)?;
        Ok(svc.dests[pos])
    }

    /// Persistence (IPVS `ip_vs_sched_persist`): reuse the client's template
    /// while its server is usable, else schedule and make a new template.
    /// Returns the server and the template slot.
    fn persist<F: Family>(
        &mut self,
        cfg: &Snapshot,
        svc_slot: u32,
        svc: &Service,
        ip: &L3<F::Addr>,
        flow: &Flow,
        timeout: u32,
    ) -> Result<(u32, u32), DropReason> {
        let now = self.now;
        let ticks = timeout * TICKS_PER_SEC;
        let key = template_tuple::<F>(svc, ip.src, ip.dst, ip.proto);
        let table = F::table(&mut self.t);
        if let Some((ti, _)) = table.lookup(&key) {
            let t = *table.get(ti);
            let usable = t.expires > now
                && cfg.dest(t.dest).is_some_and(|d| {
                    d.serial == t.dest_serial && !(cfg.settings.expire_quiescent_template && d.spec.weight == 0)
                });
            if usable {
                return Ok((t.dest, ti));
            }
            if t.n_control == 0 {
                self.expire::<F>(cfg, ti);
            } else {
                F::table(&mut self.t).unhash_template(ti);
            }
        }
        let dest = self.schedule(cfg, svc_slot, svc, flow)?;
        let d = cfg.dest(dest).expect("a scheduled slot is live");
        let t = Session {
            cip: key.src,
            vip: key.dst,
            rip: F::from_ip(d.spec.addr).unwrap_or_default(),
            lip: key.src,
            cport: 0,
            vport: key.dport,
            rport: d.spec.port,
            lport: 0,
            proto: key.proto,
            flags: flag::TEMPLATE,
            fwd: d.spec.fwd,
            expires: now + ticks,
            tmpl: ticks,
            n_control: 0,
            dest,
            dest_serial: d.serial,
            svc: svc_slot as u16,
            ..Session::default()
        };
        let ti = F::table(&mut self.t).insert(t).map_err(|_| DropReason::SessionTableFull)?;
        if let Some(rt) = self.dest_rt.get_mut(dest as usize) {
            rt.persist += 1;
        }
        Ok((dest, ti))
    }

    /// FULLNAT: a local address of the service (round robin) and one of this
    /// core's ports on it.
    ///
    /// Where the NIC toward the real server exposes its RSS key and table,
    /// the port is one whose reply (`RIP:rport → LIP:lport`) hashes to this
    /// core's queue, so replies need no handoff (a few tries, else any port).
    fn take_lport<F: Family>(
        &mut self,
        cfg: &Snapshot,
        svc_slot: u32,
        svc: &Service,
        reply_from: (F::Addr, u16, u32),
    ) -> Result<(F::Addr, u16, u16), DropReason> {
        let (rip, rport, nh_rs) = reply_from;
        let rss = (self.p.ncores > 1)
            .then(|| {
                cfg.net
                    .neighbour(nh_rs)
                    .and_then(|n| cfg.net.ifaces.get(usize::from(n.iface)))
                    .and_then(|i| i.rss.as_ref())
            })
            .flatten();
        let tries = 4 * usize::from(self.p.ncores);
        let me = self.p.id;
        let n = svc.laddrs.len();
        if n == 0 {
            return Err(DropReason::NoLocalAddr);
        }
        let rt = self.svc_rt.get_mut(svc_slot as usize).and_then(Option::as_mut).ok_or(DropReason::NoLocalAddr)?;
        for k in 0..n {
            let at = (rt.laddr_next + k) % n;
            let slot = svc.laddrs[at];
            let (Some(l), Some(pool)) = (cfg.laddr(slot), self.pools.get_mut(slot as usize)) else {
                continue;
            };
            if pool.serial != l.serial {
                continue;
            }
            let Some(a) = F::from_ip(l.addr) else { continue };
            if let Some(rss) = rss {
                // Rotate non-matching ports to the back: O(1) per try.
                for _ in 0..tries.min(pool.free.len()) {
                    let p = pool.free[0];
                    if rss.queue(rip.as_ref(), a.as_ref(), rport, p) == Some(me) {
                        break;
                    }
                    pool.free.rotate_left(1);
                }
            }
            if let Some(port) = pool.free.pop_front() {
                rt.laddr_next = (at + 1) % n;
                return Ok((a, port, l.serial as u16));
            }
        }
        Err(DropReason::NoLocalPort)
    }

    fn release_lport<F: Family>(&mut self, cfg: &Snapshot, lip: F::Addr, lport: u16, serial: u16) {
        if let Some(slot) = cfg.laddr_slot(F::to_ip(lip)) {
            if let Some(pool) = self.pools.get_mut(slot as usize).filter(|p| p.serial as u16 == serial) {
                pool.free.push_back(lport);
            }
        }
    }

    /// A new connection: schedule (with persistence), take a local port
    /// (FULLNAT), resolve next hops, store, and bind to the real server.
    fn new_session<F: Family>(
        &mut self,
        cfg: &Snapshot,
        svc_slot: u32,
        ip: &L3<F::Addr>,
        l4: &L4,
    ) -> Result<u32, DropReason> {
        let now = self.now;
        let svc = cfg.service(svc_slot).ok_or(DropReason::NoDest)?;
        if ip.proto == proto::TCP {
            let f = l4.flags & (tcpf::SYN | tcpf::ACK | tcpf::RST | tcpf::FIN);
            let schedulable = if cfg.settings.sloppy_tcp { f & tcpf::RST == 0 } else { f == tcpf::SYN };
            if !schedulable {
                return Err(DropReason::TcpNoSession);
            }
        }
        let flow = Flow { src: F::to_ip(ip.src), sport: l4.sport, dst: F::to_ip(ip.dst), dport: l4.dport, now };
        let (dest, tmpl) = match svc.spec.persistent {
            Some(timeout) => self.persist::<F>(cfg, svc_slot, svc, ip, &flow, timeout)?,
            None => (self.schedule(cfg, svc_slot, svc, &flow)?, NIL),
        };
        let d = cfg.dest(dest).expect("a scheduled slot is live");
        let fwd = d.spec.fwd;
        let rip = F::from_ip(d.spec.addr).ok_or(DropReason::NoDest)?;
        let rport = if fwd.two_way() && d.spec.port != 0 { d.spec.port } else { l4.dport };
        // An unresolved neighbour does not stop the session (IPVS lets the
        // kernel queue the packet meanwhile): this packet is dropped, counted,
        // and a later one (the retransmission) finds the hop resolved and the
        // same real server.
        let nh_rs = match self.dest_rt.get(dest as usize).and_then(|r| r.nh) {
            Some(nh) => nh,
            None => match self.next_hop(cfg, d.spec.addr, fwd == Fwd::Dr) {
                Ok(nh) => {
                    if let Some(rt) = self.dest_rt.get_mut(dest as usize) {
                        rt.nh = Some(nh);
                    }
                    nh
                }
                Err(DropReason::NeighUnresolved) => NIL,
                Err(e) => return Err(e),
            },
        };
        let nh_client = match self.next_hop(cfg, flow.src, false) {
            Ok(nh) => nh,
            Err(DropReason::NeighUnresolved) => NIL,
            Err(e) if fwd.two_way() => return Err(e),
            Err(_) => NIL,
        };
        let (lip, lport, laddr_serial) = if fwd == Fwd::FullNat {
            self.take_lport::<F>(cfg, svc_slot, svc, (rip, rport, nh_rs))?
        } else {
            (ip.src, l4.sport, 0)
        };
        let s = Session {
            cip: ip.src,
            vip: ip.dst,
            rip,
            lip,
            cport: l4.sport,
            vport: l4.dport,
            rport,
            lport,
            proto: ip.proto,
            state: TcpState::None as u8,
            flags: flag::INACTIVE
                | if fwd.two_way() { flag::HASHED_OUT } else { flag::NOOUTPUT }
                | if svc.spec.ops && ip.proto == proto::UDP { flag::ONE_PACKET } else { 0 },
            fwd,
            expires: now + cfg.timeouts.tcp(TcpState::None) * TICKS_PER_SEC,
            tmpl,
            dest,
            dest_serial: d.serial,
            nh_rs,
            nh_client,
            laddr_serial,
            svc: svc_slot as u16,
            ..Session::default()
        };
        let table = F::table(&mut self.t);
        let stored = table.insert(s).map_err(|r| match r {
            Refused::Full => DropReason::SessionTableFull,
            Refused::Conflict => DropReason::TupleConflict,
        });
        let i = match stored {
            Ok(i) => i,
            Err(e) => {
                if fwd == Fwd::FullNat {
                    self.release_lport::<F>(cfg, lip, lport, laddr_serial);
                }
                return Err(e);
            }
        };
        if tmpl != NIL {
            let t = F::table(&mut self.t).get_mut(tmpl);
            t.n_control += 1;
            t.expires = now + t.tmpl;
        }
        let u = per_core(d.spec.u_threshold, self.p.ncores);
        if let Some(rt) = self.dest_rt.get_mut(dest as usize) {
            rt.inactive += 1;
            rt.stats.conns += 1;
            if u != 0 && rt.active + rt.inactive >= u {
                rt.overloaded = true;
            }
        }
        if let Some(Some(rt)) = self.svc_rt.get_mut(svc_slot as usize) {
            rt.stats.conns += 1;
        }
        self.stats.sessions_created += 1;
        Ok(i)
    }

    /// Ends a session (or re-arms a template that still controls connections).
    fn expire<F: Family>(&mut self, cfg: &Snapshot, i: u32) {
        let now = self.now;
        let table = F::table(&mut self.t);
        let s = *table.get(i);
        let dest = cfg.dest(s.dest).filter(|d| d.serial == s.dest_serial);
        let rt = self.dest_rt.get_mut(s.dest as usize).filter(|_| dest.is_some());
        if s.has(flag::TEMPLATE) {
            if s.n_control > 0 {
                table.rearm(i, now + s.tmpl);
                return;
            }
            if let Some(rt) = rt {
                rt.persist = rt.persist.saturating_sub(1);
            }
            table.remove(i);
            self.stats.sessions_expired += 1;
            return;
        }
        if let (Some(rt), Some(d)) = (rt, dest) {
            if s.has(flag::INACTIVE) {
                rt.inactive = rt.inactive.saturating_sub(1);
            } else {
                rt.active = rt.active.saturating_sub(1);
            }
            // IPVS's overload release: below the lower threshold, or below
            // 3/4 of the upper one when no lower threshold is set.
            let (u, l) = (per_core(d.spec.u_threshold, self.p.ncores), per_core(d.spec.l_threshold, self.p.ncores));
            let total = rt.active + rt.inactive;
            if (l != 0 && total < l) || (l == 0 && (u == 0 || total * 4 < u * 3)) {
                rt.overloaded = false;
            }
        }
        if s.tmpl != NIL {
            let t = table.get_mut(s.tmpl);
            t.n_control = t.n_control.saturating_sub(1);
        }
        table.remove(i);
        if s.fwd == Fwd::FullNat {
            self.release_lport::<F>(cfg, s.lip, s.lport, s.laddr_serial);
        }
        self.stats.sessions_expired += 1;
    }

    fn reap<F: Family>(&mut self, cfg: &Snapshot) -> usize {
        let mut buf = [0u32; 64];
        let mut total = 0;
        let mut budget = self.p.reap_budget;
        while budget > 0 {
            let n = F::table(&mut self.t).due(self.now, budget, &mut buf);
            // Bring the index entries of the whole batch in first: their
            // misses overlap instead of queueing one removal after another.
            let table = F::table_ref(&self.t);
            std::hint::black_box(buf[..n].iter().fold(0, |acc, &i| acc ^ table.warm_slot(i)));
            for &i in &buf[..n] {
                if F::table(&mut self.t).get(i).has(flag::LIVE) {
                    self.expire::<F>(cfg, i);
                }
            }
            total += n;
            if n < buf.len() {
                break;
            }
            budget = budget.saturating_sub(n);
        }
        total
    }

    /// One step of a listing: up to `max` sessions from slot `from`,
    /// looking at no more than `walk` slots; the slot to resume from, or
    /// `None` at the end of the table.
    fn list_step<F: Family>(
        &self,
        cfg: &Snapshot,
        from: u32,
        max: usize,
        walk: usize,
        emit: &mut dyn FnMut(&Conn),
    ) -> Option<u32> {
        let sa = |a: F::Addr, p: u16| SocketAddr::new(F::to_ip(a), p);
        let table = F::table_ref(&self.t);
        let end = u64::from(from).saturating_add(walk as u64).min(u64::from(table.slots())) as u32;
        for (n, (i, s)) in table.iter_from(from).enumerate() {
            if i >= end {
                break;
            }
            if n == max {
                return Some(i);
            }
            let template = s.has(flag::TEMPLATE);
            let proto_nr = s.proto & !TEMPLATE_PROTO;
            let state =
                if proto_nr == proto::UDP { ConnState::Udp } else { ConnState::Tcp(TcpState::from_u8(s.state)) };
            let vip = match cfg.service(u32::from(s.svc)).map(|x| x.spec.key) {
                Some(ServiceKey::Fwmark { mark, .. }) if template => IpAddr::from(mark.to_be_bytes()),
                _ => F::to_ip(s.vip),
            };
            emit(&Conn {
                proto: proto_nr,
                template,
                state,
                expires_in: s.expires.saturating_sub(self.now) / TICKS_PER_SEC,
                client: sa(s.cip, s.cport),
                virt: SocketAddr::new(vip, s.vport),
                dest: sa(s.rip, s.rport),
                local: (s.fwd == Fwd::FullNat && !template).then(|| sa(s.lip, s.lport)),
                fwd: s.fwd,
                svc: u32::from(s.svc),
            });
        }
        (end < table.slots()).then_some(end)
    }
}
