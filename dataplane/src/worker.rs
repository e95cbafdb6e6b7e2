//! One core's poll loop: rx burst → engine → tx burst → housekeeping.
//!
//! A worker owns one queue index on every device, its own chunks of the
//! UMEM and its own engine core (session tables, counters). It never blocks
//! on the control plane: a new configuration is picked up between bursts
//! (an atomic generation number says when), stats go to this core's area of
//! the shared-memory region (it is the area's only writer: readers retry,
//! the worker never waits), a connection listing is streamed in bounded
//! steps, and frames another core owns go to that core through a bounded
//! channel.

use crate::lb::core::{Core, InstallError, BATCH};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use crate::lb::{Verdict, TICKS_PER_SEC};
use crate::xsk::{poll_which, Held, Io, Waker};
use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdpvs_api::counters::{Counter, CounterArray};
use xdpvs_api::shm::{CoreWrite, DestEntry, Region, SvcEntry};

/// The configuration the control thread publishes.
pub struct Published {
    pub generation: AtomicU64,
    /// Swapped whole by the control thread; a worker's load never waits.
    pub config: ArcSwap<Snapshot>,
    /// One per worker: wakes it from an idle poll to adopt a generation.
    pub wakers: Vec<Arc<Waker>>,
}

impl Published {
    pub fn new(cfg: Arc<Snapshot>, wakers: Vec<Arc<Waker>>) -> Self {
        Self { generation: AtomicU64::new(cfg.generation), config: ArcSwap::new(cfg), wakers }
    }

    /// Publishes a new generation (control thread) and wakes idle workers.
    pub fn publish(&self, cfg: Arc<Snapshot>) {
        let g = cfg.generation;
        self.config.store(cfg);
        self.generation.store(g, Ordering::Release);
        for w in &self.wakers {
            w.wake();
        }
    }
}

/// At most this many frames wait for a neighbour at once ([`Verdict::Park`]),
/// each at most [`PARK_FOR`] (the kernel queues 3 packets per incomplete
/// neighbour; a client retransmits after 1 s).
const PARK_MAX: usize = 64;
const PARK_FOR: Duration = Duration::from_millis(500);
/// How often [`Worker::upkeep`] runs while traffic flows, and while the
/// worker sleeps between frames (not at every wake-up: at a low rate that
/// would be at every frame, for counters no reader needs fresher).
const UPKEEP_BUSY: Duration = Duration::from_millis(20);
const UPKEEP_IDLE: Duration = Duration::from_millis(1);

/// The engine clock: ticks since the daemon started.
pub fn ticks(start: Instant) -> u32 {
    ticks_at(start, Instant::now())
}

/// [`ticks`] at `now`.
fn ticks_at(start: Instant, now: Instant) -> u32 {
    (now.saturating_duration_since(start).as_millis() / u128::from(1000 / TICKS_PER_SEC)) as u32
}

pub struct Worker {
    pub id: u16,
    pub core: Core,
    pub io: Io,
    /// Engine interface index → this worker's port index.
    pub port_of_iface: Vec<Option<usize>>,
    pub published: Arc<Published>,
    pub stop: Arc<AtomicBool>,
    /// One channel from each core (single producer, single consumer).
    pub inboxes: Vec<Receiver<Held>>,
    /// One channel to each core.
    pub peers: Vec<Sender<Held>>,
    /// Chunks going home: one channel from each core, one to each core.
    pub returns_in: Vec<Receiver<u64>>,
    pub returns_out: Vec<Sender<u64>>,
    pub resolve: Sender<IpAddr>,
    /// Where this worker's stats and connection listings go.
    pub region: Arc<Region>,
    pub start: Instant,
    /// Busy polls without traffic before sleeping in poll(2).
    pub spin: u32,
    /// This worker's ring to the sync thread and its inbox from it.
    pub sync: crate::sync::WorkerLinks,
}

/// A worker loop's own state between turns (buffers allocated once).
struct Turn {
    /// The frames of this turn.
    held: Vec<Held>,
    verdicts: [Verdict; BATCH],
    generation: u64,
    /// Empty polls in a row.
    idle: u32,
    handoff_out: u64,
    handoff_in: u64,
    last_upkeep: Instant,
    /// This turn's clock read.
    now: Instant,
    waker: Option<Arc<Waker>>,
    /// What an idle worker sleeps on: its sockets and its waker.
    fds: Vec<i32>,
    publish: Publish,
    dump: Dump,
    /// Frames waiting for a neighbour, and when each first waited.
    parked: Vec<(Held, Instant, DropReason)>,
    /// The parked frames offered again in this turn, by chunk, with that time.
    offered: Vec<(u64, Instant)>,
    sync: SyncTurn,
}

/// A worker's sync bookkeeping: its counters and a bulk walk in progress.
#[derive(Default)]
struct SyncTurn {
    queued: u64,
    ring_full: u64,
    /// The bulk request answered last, and the walk's cursor (`None`: done).
    bulk_seen: u64,
    bulk_cursor: Option<u64>,
}

impl Worker {
    /// Runs until told to stop; gives its engine core back (a handover
    /// saves its sessions).
    pub fn run(mut self) -> Core {
        let waker = self.published.wakers.get(usize::from(self.id)).cloned();
        // The waker first: it is watched however many sockets follow.
        let mut fds: Vec<i32> = waker.iter().map(|w| w.fd()).collect();
        fds.extend(self.io.fds());
        let mut t = Turn {
            held: Vec::with_capacity(BATCH),
            verdicts: [Verdict::Pass; BATCH],
            generation: self.published.generation.load(Ordering::Acquire),
            idle: 0,
            handoff_out: 0,
            handoff_in: 0,
            last_upkeep: Instant::now(),
            now: Instant::now(),
            waker,
            fds,
            publish: Publish::default(),
            dump: Dump::default(),
            parked: Vec::with_capacity(PARK_MAX),
            offered: Vec::with_capacity(PARK_MAX),
            sync: SyncTurn { bulk_seen: self.sync.shared.bulk.load(Ordering::Acquire), ..SyncTurn::default() },
        };
        self.region.adopted(usize::from(self.id), t.generation);
        while !self.stop.load(Ordering::Relaxed) {
            // One clock read per turn (a read is a tenth of a microsecond
            // here: at a low rate, a turn is a frame).
            t.now = Instant::now();
            self.adopt(&mut t);
            self.dump_step(&mut t.dump, if t.idle > self.spin { 4096 } else { 256 });
            self.take_handoffs(&mut t);
            self.sync_step(&mut t.sync, ticks_at(self.start, t.now));
            self.tend_rings();
            let room = BATCH - t.held.len();
            self.io.receive(&mut t.held, room);
            if t.held.is_empty() {
                self.idle(&mut t);
            } else {
                t.idle = 0;
                self.burst(&mut t);
            }
            let every = if t.idle > self.spin { UPKEEP_IDLE } else { UPKEEP_BUSY };
            if t.now.saturating_duration_since(t.last_upkeep) >= every {
                self.upkeep(&mut t);
            }
        }
        // Last word: the final counters.
        self.publish(&mut t.publish, &t.sync, t.handoff_out, t.handoff_in);
        self.core
    }

    /// A new generation: adopt it, and offer the parked frames again (it may
    /// carry the neighbours they wait for); offer them again too when a
    /// SYN-proxied connection they may wait for was spliced.
    fn adopt(&mut self, t: &mut Turn) {
        t.offered.clear();
        let spliced = self.core.take_reoffer();
        if self.published.generation.load(Ordering::Acquire) != t.generation {
            let cfg = self.published.config.load_full();
            t.generation = cfg.generation;
            self.core.set_config(cfg);
            self.region.adopted(usize::from(self.id), t.generation);
        } else if !spliced {
            return;
        }
        while t.held.len() < BATCH {
            let Some((h, since, _)) = t.parked.pop() else { break };
            t.offered.push((h.base, since));
            t.held.push(h);
        }
    }

    /// Frames other cores handed to this one.
    fn take_handoffs(&self, t: &mut Turn) {
        for inbox in &self.inboxes {
            while t.held.len() < BATCH {
                let Ok(h) = inbox.try_recv() else { break };
                t.held.push(h);
                t.handoff_in += 1;
            }
        }
    }

    /// Completions reaped, chunks sent home and taken back, fill rings refilled.
    fn tend_rings(&mut self) {
        self.io.reap_completions();
        for r in &self.returns_in {
            while let Ok(base) = r.try_recv() {
                self.io.give_back(base);
            }
        }
        let out = &self.returns_out;
        self.io.return_foreign(|owner, base| out.get(owner).is_some_and(|s| s.try_send(base).is_ok()));
        self.io.refill();
    }

    /// Nothing came: after `spin` empty polls, sleep in poll(2).
    fn idle(&self, t: &mut Turn) {
        t.idle += 1;
        if t.idle > self.spin {
            // The waker (the first descriptor) is read only when it was
            // written: a read at every wake-up is a system call per frame at
            // a low rate.
            let ready = poll_which(&t.fds, 1);
            if let Some(w) = t.waker.as_ref().filter(|_| ready & 1 != 0) {
                w.clear();
            }
        }
    }

    /// One burst through the engine, then each frame where its verdict says.
    fn burst(&mut self, t: &mut Turn) {
        let now = ticks_at(self.start, t.now);
        let n = t.held.len();
        let core = &mut self.core;
        let verdicts = &mut t.verdicts;
        self.io.with_frames(&mut t.held, |frames| core.process_batch(frames, now, &mut verdicts[..n]));
        for r in self.core.take_sync() {
            match self.sync.out.try_send(r) {
                Ok(()) => t.sync.queued += 1,
                Err(_) => t.sync.ring_full += 1,
            }
        }
        let (port_of, peers, core) = (&self.port_of_iface, &self.peers, &mut self.core);
        let (parked, offered, handoff_out) = (&mut t.parked, &t.offered, &mut t.handoff_out);
        self.io.dispose(
            &mut t.held,
            &t.verdicts[..n],
            |iface| port_of.get(usize::from(iface)).copied().flatten(),
            |to, h| match peers.get(usize::from(to)).map(|p| p.try_send(h)) {
                Some(Ok(())) => {
                    *handoff_out += 1;
                    true
                }
                Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
            },
            |h, why| {
                let since = offered.iter().find(|o| o.0 == h.base).map_or_else(Instant::now, |o| o.1);
                if parked.len() < PARK_MAX && since.elapsed() < PARK_FOR {
                    parked.push((h, since, why));
                    true
                } else {
                    core.give_up(why);
                    false
                }
            },
        );
        // Fragments of datagrams completed in this burst, held until now.
        let (port_of, io) = (&self.port_of_iface, &mut self.io);
        self.core.take_emitted(|iface, bytes| {
            if let Some(p) = port_of.get(usize::from(iface)).copied().flatten() {
                io.transmit_new(p, 1, |_, buf| {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    n
                });
            }
        });
        // Frames are waiting: the control thread hears of it now.
        if self.core.wants_resolve() {
            self.ask_resolve();
            self.region.ring();
        }
    }

    fn ask_resolve(&mut self) {
        for a in self.core.take_resolve_requests() {
            let _ = self.resolve.try_send(a);
        }
    }

    /// Every [`UPKEEP_BUSY`], or [`UPKEEP_IDLE`] while idle: parked frames
    /// whose neighbour never came are dropped (counted), sessions expire,
    /// stats are published.
    fn upkeep(&mut self, t: &mut Turn) {
        t.last_upkeep = Instant::now();
        let (core, io) = (&mut self.core, &mut self.io);
        t.parked.retain(|&(h, since, why)| {
            let keep = since.elapsed() < PARK_FOR;
            if !keep {
                core.give_up(why);
                io.discard(h);
            }
            keep
        });
        self.core.housekeep(ticks(self.start));
        self.ask_resolve();
        self.publish(&mut t.publish, &t.sync, t.handoff_out, t.handoff_in);
    }

    /// Sync: records the sync thread received for this core are installed
    /// (a bounded number per turn), and a peer's bulk request is answered by
    /// walking the tables onto the ring in steps, as room allows.
    fn sync_step(&mut self, s: &mut SyncTurn, now: u32) {
        for _ in 0..2048 {
            let Ok(r) = self.sync.inbox.try_recv() else { break };
            let _ = self.core.install(&r, now);
        }
        let bulk = self.sync.shared.bulk.load(Ordering::Acquire);
        if bulk != s.bulk_seen {
            s.bulk_seen = bulk;
            s.bulk_cursor = Some(0);
        }
        let Some(cursor) = s.bulk_cursor else { return };
        let room = crate::sync::RING.saturating_sub(self.sync.out.len());
        if room < 512 {
            return;
        }
        let out = &self.sync.out;
        let (queued, full) = (&mut s.queued, &mut s.ring_full);
        s.bulk_cursor = self.core.sync_step(cursor, 256, &mut |r| match out.try_send(r) {
            Ok(()) => *queued += 1,
            Err(_) => *full += 1,
        });
    }

    /// Writes this core's counters and per-service / per-server stats to
    /// its area of the region (buffers reused: no allocation once warm).
    fn publish(&self, out: &mut Publish, sync: &SyncTurn, handoff_out: u64, handoff_in: u64) {
        let st = self.core.stats();
        let io = &self.io.stats;
        let xsk = self.io.xsk_stats();
        let (s4, s6) = self.core.session_count();
        let mut c = CounterArray::default();
        for (k, v) in [
            (Counter::Rx, st.rx),
            (Counter::Tx, st.tx),
            (Counter::IcmpForwarded, st.icmp_forwarded),
            (Counter::IcmpGenerated, st.icmp_generated),
            (Counter::HandoffIn, handoff_in),
            (Counter::HandoffOut, handoff_out),
            (Counter::IoRx, io.rx),
            (Counter::IoTx, io.tx),
            (Counter::TxRingFull, io.tx_ring_full),
            (Counter::FillShort, io.fill_short),
            (Counter::SessionsV4, u64::from(s4)),
            (Counter::SessionsV6, u64::from(s6)),
            (Counter::XskRxDropped, xsk.rx_dropped),
            (Counter::XskRxRingFull, xsk.rx_ring_full),
            (Counter::XskFillRingEmpty, xsk.fill_ring_empty),
            (Counter::XskInvalidDescs, xsk.invalid_descs),
            (Counter::ProxyInserted, st.proxy_inserted),
            (Counter::ProxyShortened, st.proxy_shortened),
            (Counter::ToaAdded, st.toa_added),
            (Counter::ToaNoRoom, st.toa_no_room),
            (Counter::SyncQueued, sync.queued),
            (Counter::SyncRingFull, sync.ring_full + st.sync_queue_full),
            (Counter::SyncInstalled, st.sync_installed),
            (Counter::SyncUpdated, st.sync_updated),
            (Counter::SyncNoService, st.sync_refused[InstallError::NoService as usize]),
            (Counter::SyncNoDest, st.sync_refused[InstallError::NoDest as usize]),
            (Counter::SyncTableFull, st.sync_refused[InstallError::TableFull as usize]),
            (Counter::SyncLocalPort, st.sync_refused[InstallError::LocalPort as usize]),
            (Counter::TcpMidflow, st.midflow),
            (Counter::EvictedHalfOpen, st.evicted_half_open),
            (Counter::SynproxyCookies, st.synproxy_cookies),
            (Counter::SynproxyAccepted, st.synproxy_accepted),
            (Counter::SynproxySpliced, st.synproxy_spliced),
            (Counter::FragHeld, st.frag_held),
            (Counter::FragReassembled, st.frag_reassembled),
        ] {
            c.set(k, v);
        }
        for &d in DropReason::ALL {
            c.set_dropped(d, st.dropped(d));
        }
        for (k, &state) in xdpvs_api::counters::SessionState::ALL.iter().enumerate() {
            c.set_sessions(state, st.by_state[k]);
        }
        // Every frame here was steered to xdpvs: one the engine would give
        // the kernel is lost, and counted so.
        c.set_dropped(DropReason::NotOurs, st.pass);
        c.set_dropped(DropReason::HandoffFull, io.handoff_full);
        let cfg = self.core.config();
        out.services.clear();
        out.services.extend(cfg.services().filter_map(|(i, _)| {
            let rt = self.core.svc_rt(i)?;
            Some(SvcEntry { slot: i, serial: rt.serial, stats: rt.stats })
        }));
        out.dests.clear();
        out.dests.extend((0..cfg.dest_slots() as u32).filter_map(|d| {
            let rt = self.core.dest_rt(d)?;
            cfg.dest(d)?;
            Some(DestEntry {
                slot: d,
                serial: rt.serial,
                active: rt.active,
                inactive: rt.inactive,
                persist: rt.persist,
                stats: rt.stats,
            })
        }));
        self.region
            .write_core(usize::from(self.id), &CoreWrite { counters: &c, services: &out.services, dests: &out.dests });
    }

    /// A connection listing in progress: at most `budget` records per turn,
    /// and only as many as the ring has room for.
    fn dump_step(&self, d: &mut Dump, budget: usize) {
        let me = usize::from(self.id);
        let req = self.region.dump_request(me);
        if req == 0 || req == d.finished {
            return;
        }
        if req != d.active {
            d.active = req;
            d.cursor = 0;
            self.region.dump_start(me, req);
        }
        let room = self.region.dump_room(me).min(budget);
        if room == 0 {
            return;
        }
        let region = &self.region;
        match self.core.sessions_step(d.cursor, room, &mut |s| region.dump_push(me, &s.encode())) {
            Some(next) => d.cursor = next,
            None => {
                self.region.dump_finish(me, req);
                d.finished = req;
            }
        }
    }
}

/// Reused buffers of [`Worker::publish`].
#[derive(Default)]
struct Publish {
    services: Vec<SvcEntry>,
    dests: Vec<DestEntry>,
}

/// A worker's side of a connection listing.
#[derive(Default)]
struct Dump {
    active: u64,
    finished: u64,
    cursor: u64,
}
