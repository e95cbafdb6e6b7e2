//! One core's poll loop: rx burst → engine → tx burst → housekeeping.
//!
//! A worker owns one queue index on every device, its own chunks of the
//! UMEM and its own engine core (session tables, counters). It never blocks
//! on the control plane: a new configuration is picked up between bursts
//! (an atomic generation number says when), stats are published with a
//! `try_lock` that skips a round rather than wait, and frames another core
//! owns go to that core through a bounded channel.

use crate::lb::config::Config;
use crate::lb::core::{Core, DestRt, BATCH};
use crate::lb::stats::{CoreStats, Counters};
use crate::lb::{Verdict, TICKS_PER_SEC};
use crate::xsk::{poll_readable, Held, Io, IoStats};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The configuration the control thread publishes.
pub struct Published {
    pub generation: AtomicU64,
    pub config: Mutex<Arc<Config>>,
}

impl Published {
    pub fn new(cfg: Arc<Config>) -> Self {
        Self { generation: AtomicU64::new(cfg.generation), config: Mutex::new(cfg) }
    }

    /// Publishes a new generation (control thread).
    pub fn publish(&self, cfg: Arc<Config>) {
        let g = cfg.generation;
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
        self.generation.store(g, Ordering::Release);
    }
}

/// What a worker reports, a few times a second.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub core: CoreStats,
    pub io: IoStats,
    pub dests: Vec<(u32, DestRt)>,
    pub services: Vec<(u32, Counters)>,
    pub sessions: (u32, u32),
    pub handoff_out: u64,
    pub handoff_in: u64,
    pub generation: u64,
}

/// The engine clock: ticks since the daemon started.
pub fn ticks(start: Instant) -> u32 {
    (start.elapsed().as_millis() / u128::from(1000 / TICKS_PER_SEC)) as u32
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
    pub snapshot: Arc<Mutex<Snapshot>>,
    pub start: Instant,
    /// Busy polls without traffic before sleeping in poll(2).
    pub spin: u32,
}

impl Worker {
    pub fn run(mut self) {
        let mut held: Vec<Held> = Vec::with_capacity(BATCH);
        let mut verdicts = [Verdict::Pass; BATCH];
        let mut generation = self.published.generation.load(Ordering::Acquire);
        let mut idle = 0u32;
        let (mut handoff_out, mut handoff_in) = (0u64, 0u64);
        let mut last_upkeep = Instant::now();
        let fds = self.io.fds();
        while !self.stop.load(Ordering::Relaxed) {
            let g = self.published.generation.load(Ordering::Acquire);
            if g != generation {
                let cfg = self.published.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
                generation = cfg.generation;
                self.core.set_config(cfg);
            }
            for inbox in &self.inboxes {
                while held.len() < BATCH {
                    match inbox.try_recv() {
                        Ok(h) => {
                            held.push(h);
                            handoff_in += 1;
                        }
                        Err(_) => break,
                    }
                }
            }
            self.io.reap_completions();
            for r in &self.returns_in {
                while let Ok(base) = r.try_recv() {
                    self.io.give_back(base);
                }
            }
            let out = &self.returns_out;
            self.io.return_foreign(|owner, base| out.get(owner).is_some_and(|s| s.try_send(base).is_ok()));
            self.io.refill();
            let room = BATCH - held.len();
            self.io.receive(&mut held, room);
            if held.is_empty() {
                idle += 1;
                if idle > self.spin {
                    poll_readable(&fds, 1);
                }
            } else {
                idle = 0;
                let now = ticks(self.start);
                let n = held.len();
                let core = &mut self.core;
                self.io.with_frames(&mut held, |frames| core.process_batch(frames, now, &mut verdicts[..n]));
                let port_of = &self.port_of_iface;
                let peers = &self.peers;
                self.io.dispose(
                    &mut held,
                    &verdicts[..n],
                    |iface| port_of.get(usize::from(iface)).copied().flatten(),
                    |to, h| match peers.get(usize::from(to)).map(|p| p.try_send(h)) {
                        Some(Ok(())) => {
                            handoff_out += 1;
                            true
                        }
                        Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
                    },
                );
            }
            if idle > self.spin || last_upkeep.elapsed() >= Duration::from_millis(20) {
                last_upkeep = Instant::now();
                self.core.housekeep(ticks(self.start));
                for a in self.core.take_resolve_requests() {
                    let _ = self.resolve.try_send(a);
                }
                if let Ok(mut s) = self.snapshot.try_lock() {
                    self.fill(&mut s, generation, handoff_out, handoff_in);
                }
            }
        }
        // Last word: a complete snapshot (waiting is fine now).
        let snapshot = self.snapshot.clone();
        let mut s = snapshot.lock().unwrap_or_else(|e| e.into_inner());
        self.fill(&mut s, generation, handoff_out, handoff_in);
    }

    fn fill(&self, s: &mut Snapshot, generation: u64, handoff_out: u64, handoff_in: u64) {
        s.core = self.core.stats().clone();
        s.io = self.io.stats;
        s.sessions = self.core.session_count();
        s.handoff_out = handoff_out;
        s.handoff_in = handoff_in;
        s.generation = generation;
        let cfg = self.core.config();
        s.dests.clear();
        s.dests.extend((0..cfg.dest_slots() as u32).filter_map(|d| Some((d, *self.core.dest_rt(d)?))));
        s.services.clear();
        s.services.extend(cfg.services().filter_map(|(i, _)| Some((i, self.core.svc_rt(i)?.stats))));
    }
}
