//! One core's balancer: its configuration snapshot, session tables,
//! per-core runtime state of services and real servers, and counters.
//!
//! [`Core::process`] (one frame) and [`Core::process_batch`] (a burst) take
//! frames and return [`Verdict`]s. The work is split by concern, one file
//! each, as IPVS and DPVS split theirs:
//! - `pipeline`: the first look at a frame and one top-to-bottom function
//!   per direction (`inbound`, `outbound`);
//! - `established`: the short way for an established flow's packet;
//! - `xmit`: rewrites with incremental checksums, next hops and MACs, TUN
//!   encapsulation, ICMP "too big";
//! - `icmp`: ICMP errors about tracked flows;
//! - `conn`: scheduling, persistence, a session's life (states, counters,
//!   expiry);
//! - `laddr`: FULLNAT local ports;
//! - `listing`: sessions as connections for `-L -c`.
//!
//! Every early return is a named [`DropReason`] (counted), a park or a pass
//! to the kernel. The configuration is an `Arc<Snapshot>` swapped between
//! batches ([`Core::set_config`]); nothing on the packet path allocates,
//! locks or touches an atomic once the tables are warm.

mod conn;
mod established;
mod fragments;
mod icmp;
mod laddr;
mod listing;
mod numbers;
mod pipeline;
mod reveal;
mod sync;
mod synproxy;
mod xmit;

pub use sync::{InstallError, SYNC_OUT_MAX};

use super::family::{V4, V6};
use super::frame::Frame;
use super::sched::{AnyScheduler, Candidates, Load};
use super::session::{SessionTable, Tables};
use super::snapshot::Snapshot;
use super::stats::{CoreStats, DropReason, Stats};
use super::{Verdict, TICKS_PER_SEC};
use laddr::PortPool;
use pipeline::Pre;
use std::net::IpAddr;
use std::sync::Arc;

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
    /// The SYN proxy's cookie master key (random in the daemon).
    pub cookie_key: [u64; 2],
    /// Half-open TCP sessions (a SYN, no handshake yet) on this core, in
    /// all (past it, a new one takes the oldest one's place) and per
    /// service (past it, the service's new SYNs are refused).
    pub max_half_open: u32,
    pub max_half_open_per_service: u32,
    /// An established flow's packet takes the short way (`established`);
    /// `false`: every packet goes the full way (tests hold the two to the
    /// same answers).
    pub short_way: bool,
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
            cookie_key: [0x0c00_c1e5, 0x005e_c2e7],
            max_half_open: u32::MAX,
            max_half_open_per_service: u32::MAX,
            short_way: true,
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
    pub(super) nh: Option<u32>,
}

/// Per-core runtime state of a service.
#[derive(Debug, Clone)]
pub struct SvcRt {
    pub serial: u32,
    pub epoch: u32,
    pub sched: AnyScheduler,
    pub stats: Stats,
    pub(super) laddr_next: usize,
    /// Its TCP sessions on this core with no handshake yet.
    pub half_open: u32,
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

    fn addr(&self, i: usize) -> (std::net::IpAddr, u16) {
        self.cfg.dest(self.slots[i]).map_or((std::net::IpAddr::from([0u8; 4]), 0), |d| (d.spec.addr, d.spec.port))
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

/// ICMP errors a core sends: at most a burst of this many, refilled at
/// this many per second (the kernel's own default limit is 1000/s per host,
/// with a burst of 50).
const ICMP_BURST: u32 = 50;
const ICMP_PER_SEC: u32 = 1000;

/// Frames [`Core::process_batch`] works on at once.
pub const BATCH: usize = 32;

/// Table footprint (slots ever used) from which [`Core::process_batch`]
/// probes the index in two passes (measured: below it everything is in cache
/// and the extra pass only costs; above it the overlapped misses win, 2.7x at
/// a million sessions).
const WARM_FROM_SESSIONS: usize = 16 * 1024;

/// Everything a core mutates.
pub struct State {
    params: CoreParams,
    tables: Tables,
    dest_rt: Vec<DestRt>,
    svc_rt: Vec<Option<SvcRt>>,
    pools: Vec<PortPool>,
    pub stats: CoreStats,
    now: u32,
    ident: u16,
    /// ICMP errors this core may still send, and when the bucket was last filled.
    icmp_tokens: u32,
    icmp_refilled: u32,
    resolve: [Option<IpAddr>; 16],
    resolve_len: usize,
    last_sched_upkeep: u32,
    /// The parse results of one burst (kept: no allocation per burst).
    pre: Vec<Pre>,
    /// Sync records queued for the worker (master side).
    sync_out: Vec<xdpvs_api::sync::Record>,
    /// SYN proxy: the cookie secret; the splice a cookie ACK hands the
    /// session it is about to make; frames parked for a SYN-ACK may go on.
    cookies: crate::lb::syncookie::Secret,
    splice_next: Option<crate::lb::session::Splice>,
    reoffer: bool,
    /// Fragment trains; the held fragments of completed ones, to send; a
    /// datagram's first fragment is going through the pipeline.
    defrag: crate::lb::defrag::Defrag,
    emits: Vec<fragments::Emit>,
    defragging: bool,
    /// Packets that took the short way.
    short_taken: u64,
}

/// One core: its configuration snapshot and its state.
pub struct Core {
    cfg: Arc<Snapshot>,
    state: State,
}

impl Core {
    pub fn new(cfg: Arc<Snapshot>, p: CoreParams, now: u32) -> Self {
        let state = State {
            params: p,
            tables: Tables {
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
            icmp_tokens: ICMP_BURST,
            icmp_refilled: now,
            pre: Vec::with_capacity(BATCH),
            sync_out: Vec::with_capacity(SYNC_OUT_MAX),
            cookies: crate::lb::syncookie::Secret::new(p.cookie_key),
            splice_next: None,
            reoffer: false,
            defrag: crate::lb::defrag::Defrag::new(),
            emits: Vec::with_capacity(fragments::EMITS_MAX),
            defragging: false,
            short_taken: 0,
        };
        let mut core = Self { cfg: Arc::new(Snapshot::default()), state };
        core.set_config(cfg);
        core
    }

    pub fn params(&self) -> &CoreParams {
        &self.state.params
    }

    pub fn config(&self) -> &Arc<Snapshot> {
        &self.cfg
    }

    pub fn stats(&self) -> &CoreStats {
        &self.state.stats
    }

    /// Packets that took the short way so far (for tests and benchmarks: an
    /// operator sees the same counters either way).
    pub fn short_way_taken(&self) -> u64 {
        self.state.short_taken
    }

    pub fn dest_rt(&self, slot: u32) -> Option<&DestRt> {
        self.state.dest_rt.get(slot as usize).filter(|r| r.serial != 0)
    }

    pub fn svc_rt(&self, slot: u32) -> Option<&SvcRt> {
        self.state.svc_rt.get(slot as usize)?.as_ref()
    }

    /// Live sessions (v4, v6), templates included.
    pub fn session_count(&self) -> (u32, u32) {
        (self.state.tables.v4.len(), self.state.tables.v6.len())
    }

    /// Heap bytes of the session tables.
    pub fn session_heap_bytes(&self) -> usize {
        self.state.tables.v4.heap_bytes() + self.state.tables.v6.heap_bytes()
    }

    /// A parked frame (see [`Verdict::Park`]) that will not be offered
    /// again: counted as dropped for the reason it was parked with.
    pub fn give_up(&mut self, why: DropReason) -> Verdict {
        self.state.drop(why)
    }

    /// Hands every held fragment a completed datagram sends on to `send`
    /// (its interface and frame), then frees it. The worker calls it after
    /// each burst.
    pub fn take_emitted(&mut self, mut send: impl FnMut(u16, &[u8])) {
        let st = &mut self.state;
        for e in st.emits.drain(..) {
            let (at, len) = (usize::from(e.head), usize::from(e.len));
            send(e.iface, &st.defrag.slot(e.slot)[at..at + len]);
            st.defrag.free_slot(e.slot);
        }
    }

    /// Whether frames parked for a SYN-ACK should be offered again now (a
    /// SYN-proxied connection was spliced); reading clears it.
    pub fn take_reoffer(&mut self) -> bool {
        std::mem::take(&mut self.state.reoffer)
    }

    /// Whether [`Self::take_resolve_requests`] has anything.
    pub fn wants_resolve(&self) -> bool {
        self.state.resolve_len > 0
    }

    /// Addresses whose neighbour entry is missing: ask the kernel to resolve them.
    pub fn take_resolve_requests(&mut self) -> impl Iterator<Item = IpAddr> + '_ {
        let n = std::mem::take(&mut self.state.resolve_len);
        self.state.resolve[..n].iter_mut().filter_map(Option::take)
    }

    /// Adopts a new configuration generation (between batches). Stats of
    /// real servers and services that still exist carry over; schedulers of
    /// changed services are rebuilt; local addresses get this core's ports.
    pub fn set_config(&mut self, cfg: Arc<Snapshot>) {
        let state = &mut self.state;
        state.dest_rt.resize(cfg.dest_slots(), DestRt::default());
        state.dest_rt.truncate(cfg.dest_slots());
        for (slot, rt) in state.dest_rt.iter_mut().enumerate() {
            match cfg.dest(slot as u32) {
                Some(d) if d.serial == rt.serial => {
                    let u = per_core(d.spec.u_threshold, state.params.ncores);
                    rt.overloaded = u != 0 && rt.active + rt.inactive >= u;
                    rt.nh = None;
                }
                Some(d) => *rt = DestRt { serial: d.serial, ..DestRt::default() },
                None => *rt = DestRt::default(),
            }
        }
        state.svc_rt.resize_with(cfg.service_slots(), || None);
        state.svc_rt.truncate(cfg.service_slots());
        for (slot, rt) in state.svc_rt.iter_mut().enumerate() {
            match cfg.service(slot as u32) {
                Some(s) if rt.as_ref().is_some_and(|r| r.serial == s.serial && r.epoch == s.epoch) => {}
                Some(s) => {
                    let kept = rt.as_ref().filter(|r| r.serial == s.serial);
                    let (stats, half_open) = kept.map_or((Stats::default(), 0), |r| (r.stats, r.half_open));
                    let c = SvcCandidates { slots: &s.dests, cfg: &cfg, rt: &state.dest_rt };
                    *rt = Some(SvcRt {
                        serial: s.serial,
                        epoch: s.epoch,
                        sched: AnyScheduler::new(s, cfg.maglev(slot as u32), &c),
                        stats,
                        laddr_next: 0,
                        half_open,
                    });
                }
                None => *rt = None,
            }
        }
        state.pools.resize_with(cfg.laddr_slots(), PortPool::default);
        state.pools.truncate(cfg.laddr_slots());
        for (slot, pool) in state.pools.iter_mut().enumerate() {
            match cfg.laddr(slot as u32) {
                Some(l) if l.serial == pool.serial => {}
                Some(l) => *pool = PortPool::new(l.serial, &state.params),
                None => *pool = PortPool::default(),
            }
        }
        self.cfg = cfg;
    }

    /// Processes one frame in place.
    pub fn process(&mut self, frame: &mut Frame<'_>, now: u32) -> Verdict {
        let cfg = &*self.cfg;
        let state = &mut self.state;
        state.now = now;
        let pre = state.classify(cfg, frame);
        state.finish(cfg, frame, pre)
    }

    /// Processes a burst of frames in place; `out[i]` is the verdict of
    /// `frames[i]`. Works in groups of [`BATCH`]: every frame of a group is
    /// parsed, then the session index is probed for all of them in one tight
    /// loop (their cache misses overlap instead of queueing), then each frame
    /// runs the pipeline with the probe as a hint it re-validates.
    pub fn process_batch(&mut self, frames: &mut [Frame<'_>], now: u32, out: &mut [Verdict]) {
        assert!(out.len() >= frames.len(), "one verdict slot per frame");
        let cfg = &*self.cfg;
        let state = &mut self.state;
        state.now = now;
        let mut pre = std::mem::take(&mut state.pre);
        for (frames, out) in frames.chunks_mut(BATCH).zip(out.chunks_mut(BATCH)) {
            pre.clear();
            for f in frames.iter_mut() {
                let p = state.classify(cfg, f);
                pre.push(p);
            }
            // Two probe passes pay off once the index outgrows the caches:
            // the first brings in index entries, the second the sessions.
            if state.tables.v4.footprint() + state.tables.v6.footprint() >= WARM_FROM_SESSIONS {
                let mut sink = 0;
                for p in pre.iter_mut() {
                    sink ^= state.warm(p);
                }
                std::hint::black_box(sink);
            }
            for p in pre.iter_mut() {
                state.probe(p);
            }
            for ((f, p), o) in frames.iter_mut().zip(pre.iter()).zip(out.iter_mut()) {
                *o = state.finish(cfg, f, *p);
            }
        }
        state.pre = pre;
    }

    /// Expires due sessions (bounded work per call) and does scheduler upkeep.
    /// Returns how many sessions and templates ended.
    pub fn housekeep(&mut self, now: u32) -> usize {
        let cfg = &*self.cfg;
        let state = &mut self.state;
        state.now = now;
        let n = state.reap::<V4>(cfg) + state.reap::<V6>(cfg);
        let late = state.defrag.expire(now);
        state.stats.drop_n(DropReason::FragTimeout, late as u64);
        if now.wrapping_sub(state.last_sched_upkeep) >= 60 * TICKS_PER_SEC {
            state.last_sched_upkeep = now;
            for rt in state.svc_rt.iter_mut().flatten() {
                rt.sched.housekeep(now);
            }
        }
        n
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
            Verdict::Park(d)
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
}
