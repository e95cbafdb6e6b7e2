//! The connection sync thread (IPVS's `ip_vs_sync.c` master and backup
//! threads in one control-plane thread; it never shares a thread with a
//! worker).
//!
//! - Master: each worker writes the records its engine queued to its own
//!   single-producer ring ([`Links`]); this thread drains the rings, packs
//!   records into messages of up to `sync_maxlen` bytes and multicasts a
//!   message when it is full or its first record has waited 20 ms.
//! - Backup: datagrams are checked record by record (`xdpvs_api::sync`),
//!   bad ones counted by reason, and each good record goes to the core that
//!   owns its client (the ownership function decides), which installs it.
//! - Bulk sync (beyond IPVS): a starting backup asks for the whole table; a
//!   master that hears the request has every worker walk its tables onto
//!   its ring.
//!
//! Which daemons run is part of the configuration (`--start-daemon`): the
//! thread follows each published generation.

pub mod journal;
mod socket;

use crate::worker::Published;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xdpvs_api::config::Config;
use xdpvs_api::msg::{DaemonView, SyncStats, SyncView};
use xdpvs_api::shm::{Region, BLOB_SYNC};
use xdpvs_api::sync::{self as wire, BadMessage, BadRecord, Builder, DaemonSpec, Item, Message, Record, Role};

/// Records a worker's ring holds (a burst of state changes, or a bulk walk
/// in steps).
pub const RING: usize = 8192;
/// A message waits at most this long for more records (IPVS: 20 ms).
const SEND_DELAY: Duration = Duration::from_millis(20);
/// A backup asks for the table this many times, this far apart.
const BULK_ASKS: u32 = 3;
const BULK_EVERY: Duration = Duration::from_millis(400);
/// A master answers one bulk request per this long.
const BULK_MIN_GAP: Duration = Duration::from_millis(1000);

/// What the workers and the sync thread share.
#[derive(Default)]
pub struct Shared {
    /// Bumped when a peer asks for the whole table: each worker walks its
    /// tables once per new value.
    pub bulk: AtomicU64,
    pub stop: AtomicBool,
}

/// A worker's ends: its ring to the sync thread, its inbox from it.
pub struct WorkerLinks {
    pub out: Sender<Record>,
    pub inbox: Receiver<Record>,
    pub shared: Arc<Shared>,
}

/// The sync thread's ends of every worker's links.
pub struct Links {
    rings: Vec<Receiver<Record>>,
    inboxes: Vec<Sender<Record>>,
    shared: Arc<Shared>,
}

/// Links for `n` workers.
pub fn links(n: usize) -> (Links, Vec<WorkerLinks>) {
    let shared = Arc::new(Shared::default());
    let mut mine = Links { rings: Vec::new(), inboxes: Vec::new(), shared: shared.clone() };
    let theirs = (0..n)
        .map(|_| {
            let (out, ring) = bounded(RING);
            let (inbox_tx, inbox) = bounded(RING);
            mine.rings.push(ring);
            mine.inboxes.push(inbox_tx);
            WorkerLinks { out, inbox, shared: shared.clone() }
        })
        .collect();
    (mine, theirs)
}

/// One running daemon: its settings and sockets.
struct Daemon {
    spec: DaemonSpec,
    maxlen: u16,
    send: Option<UdpSocket>,
    recv: Option<UdpSocket>,
    error: Option<String>,
}

impl Daemon {
    fn open(role: Role, spec: &DaemonSpec) -> Daemon {
        let maxlen = spec.maxlen_for(socket::mtu(&spec.iface));
        let send = if role == Role::Master { socket::sender(spec).map(Some) } else { Ok(None) };
        let opened = send.and_then(|send| socket::receiver(spec).map(|recv| (send, recv)));
        match opened {
            Ok((send, recv)) => {
                tracing::info!("sync: {}", wire::daemon_line(role, spec, maxlen));
                Daemon { spec: spec.clone(), maxlen, send, recv: Some(recv), error: None }
            }
            Err(e) => {
                let error = format!("the {} sync daemon cannot open its socket: {e}", role.name());
                tracing::warn!("sync: {error} (retried every second)");
                Daemon { spec: spec.clone(), maxlen, send: None, recv: None, error: Some(error) }
            }
        }
    }

    fn view(&self) -> DaemonView {
        DaemonView { spec: self.spec.clone(), maxlen: self.maxlen, error: self.error.clone() }
    }
}

/// The thread's state.
struct SyncThread {
    links: Links,
    published: Arc<Published>,
    region: Arc<Region>,
    master: Option<Daemon>,
    backup: Option<Daemon>,
    /// The master's message being filled, and when its first record came.
    out: Option<(Builder, Instant)>,
    stats: SyncStats,
    bad_msgs: HashMap<BadMessage, u64>,
    bad_recs: HashMap<BadRecord, u64>,
    /// Bulk requests still to send, and when the last went.
    bulk_asks: u32,
    last_ask: Instant,
    last_bulk_answer: Option<Instant>,
    last_retry: Instant,
    last_publish: Instant,
    /// `--handover`: every record also goes to the crash journal.
    journal: Option<journal::Journal>,
    buf: Vec<u8>,
    /// Cores given records since they were last woken.
    woken: Vec<bool>,
}

/// Starts the sync thread (`journal`: the state file a handover keeps the
/// crash journal beside, and the sessions taken over at start, which the
/// new journal begins with).
pub fn spawn(
    links: Links,
    published: Arc<Published>,
    region: Arc<Region>,
    journal: Option<(&std::path::Path, &[Record])>,
) -> Result<JoinHandle<()>, String> {
    let now = Instant::now();
    let journal = journal
        .map(|(p, taken)| {
            let mut j = journal::Journal::create(p)?;
            taken.iter().try_for_each(|r| j.push(r))?;
            j.tick(true).map(|_| j)
        })
        .transpose()
        .map_err(|e| format!("cannot start the crash journal: {e}"))?;
    let mut t = SyncThread {
        links,
        published,
        region,
        master: None,
        backup: None,
        out: None,
        stats: SyncStats::default(),
        bad_msgs: HashMap::new(),
        bad_recs: HashMap::new(),
        bulk_asks: 0,
        last_ask: now,
        last_bulk_answer: None,
        last_retry: now,
        last_publish: now,
        journal,
        buf: vec![0; wire::MAX_MESSAGE + 1],
        woken: Vec::new(),
    };
    t.woken = vec![false; t.links.inboxes.len()];
    std::thread::Builder::new()
        .name("xdpvs-sync".into())
        .spawn(move || t.run())
        .map_err(|e| format!("cannot start the sync thread: {e}"))
}

impl SyncThread {
    fn run(&mut self) {
        while !self.links.shared.stop.load(Ordering::Relaxed) {
            let cfg = self.published.config.load_full();
            self.follow(&cfg);
            let busy = self.drain_rings() | self.receive(&cfg);
            self.wake_given();
            self.flush(false);
            self.tend_journal(false);
            self.ask_bulk();
            self.publish_view(false);
            if !busy {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        self.drain_rings();
        self.flush(true);
        self.tend_journal(true);
        self.publish_view(true);
    }

    /// The journal written (and rotated, with the workers walking their
    /// tables onto the new file); a failing journal is said once and dropped.
    fn tend_journal(&mut self, now: bool) {
        let Some(j) = self.journal.as_mut() else { return };
        let done = j.tick(now).and_then(|full| if full { j.rotate().map(|()| true) } else { Ok(false) });
        match done {
            Ok(true) => {
                self.links.shared.bulk.fetch_add(1, Ordering::Release);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("sync: the crash journal failed ({e}); a crash would now lose connections");
                self.journal = None;
            }
        }
    }

    /// Starts, stops or reopens the daemons the configuration names.
    fn follow(&mut self, cfg: &Config) {
        let retry = self.last_retry.elapsed() >= Duration::from_secs(1);
        if retry {
            self.last_retry = Instant::now();
        }
        for role in [Role::Master, Role::Backup] {
            let want = cfg.sync.get(role);
            let slot = match role {
                Role::Master => &mut self.master,
                Role::Backup => &mut self.backup,
            };
            let stale = match (slot.as_ref(), want) {
                (Some(d), Some(w)) => d.spec != *w || (retry && d.error.is_some()),
                (None, None) => false,
                _ => true,
            };
            if !stale {
                continue;
            }
            if slot.is_some() && want.is_none() {
                tracing::info!("sync: {} sync daemon stopped", role.name());
            }
            *slot = want.map(|w| Daemon::open(role, w));
            if role == Role::Master {
                self.out = None;
            }
            if role == Role::Backup && slot.as_ref().is_some_and(|d| d.error.is_none()) {
                self.bulk_asks = BULK_ASKS;
                self.last_ask = Instant::now() - BULK_EVERY;
            }
            self.last_publish = Instant::now() - Duration::from_secs(1);
        }
    }

    /// Every worker's ring into messages (or nowhere, without a master).
    fn drain_rings(&mut self) -> bool {
        let mut any = false;
        for k in 0..self.links.rings.len() {
            while let Ok(r) = self.links.rings[k].try_recv() {
                any = true;
                self.add(&r);
            }
        }
        any
    }

    fn add(&mut self, r: &Record) {
        if let Some(j) = self.journal.as_mut() {
            if let Err(e) = j.push(r) {
                tracing::warn!("sync: the crash journal failed ({e}); a crash would now lose connections");
                self.journal = None;
            }
        }
        let Some(m) = self.master.as_ref().filter(|m| m.send.is_some()) else { return };
        let (syncid, maxlen) = (m.spec.syncid, usize::from(m.maxlen));
        let (b, _) = self.out.get_or_insert_with(|| (Builder::new(syncid, maxlen), Instant::now()));
        if b.push(r) {
            return;
        }
        self.flush(true);
        let mut b = Builder::new(syncid, maxlen);
        b.push(r);
        self.out = Some((b, Instant::now()));
    }

    /// Sends the message being filled when it has waited long enough (or now).
    fn flush(&mut self, now: bool) {
        let due = self.out.as_ref().is_some_and(|(b, at)| !b.is_empty() && (now || at.elapsed() >= SEND_DELAY));
        if !due {
            return;
        }
        let Some((b, _)) = self.out.take() else { return };
        let Some(sock) = self.master.as_ref().and_then(|m| m.send.as_ref()) else { return };
        let bytes = b.bytes();
        match sock.send(bytes) {
            Ok(_) => {
                self.stats.sent_datagrams += 1;
                self.stats.sent_records += u64::from(bytes[4]);
                self.stats.sent_bytes += bytes.len() as u64;
            }
            Err(_) => self.stats.send_errors += 1,
        }
    }

    /// Datagrams on both daemons' sockets: records for the backup, bulk
    /// requests for the master.
    fn receive(&mut self, cfg: &Config) -> bool {
        let mut any = false;
        for role in [Role::Backup, Role::Master] {
            for _ in 0..256 {
                let d = match role {
                    Role::Master => self.master.as_ref(),
                    Role::Backup => self.backup.as_ref(),
                };
                let Some((sock, syncid)) = d.and_then(|d| d.recv.as_ref().map(|s| (s, d.spec.syncid))) else { break };
                let mut buf = std::mem::take(&mut self.buf);
                let got = sock.recv(&mut buf);
                if let Ok(n) = got {
                    any = true;
                    self.handle(role, cfg, &buf[..n], syncid);
                }
                self.buf = buf;
                if got.is_err() {
                    break;
                }
            }
        }
        any
    }

    fn handle(&mut self, role: Role, cfg: &Config, d: &[u8], syncid: u8) {
        match (role, wire::parse(d, syncid)) {
            (Role::Master, Ok(Message::BulkRequest)) => self.answer_bulk(),
            (Role::Backup, Ok(Message::Conns(records))) => {
                self.stats.received_datagrams += 1;
                for item in records {
                    match item {
                        Item::Conn(r) => {
                            self.stats.received_records += 1;
                            self.route(cfg, r);
                        }
                        Item::Skipped(why) => *self.bad_recs.entry(why).or_default() += 1,
                        Item::Broken(why) => *self.bad_msgs.entry(why).or_default() += 1,
                    }
                }
            }
            (Role::Backup, Err(why)) => {
                self.stats.received_datagrams += 1;
                *self.bad_msgs.entry(why).or_default() += 1;
            }
            // The master's socket hears records only from another master;
            // the backup's hears bulk requests from other backups.
            _ => {}
        }
    }

    /// A record to the core that owns its client.
    fn route(&mut self, cfg: &Config, r: Record) {
        let core = crate::daemon::handover::owner(cfg, self.links.inboxes.len() as u16, &r);
        let inbox = &self.links.inboxes[usize::from(core)];
        let mut r = r;
        // A full inbox (a bulk sync's burst): wake the worker and give it a
        // moment; this thread may wait, a worker never does.
        for _ in 0..50 {
            match inbox.try_send(r) {
                Ok(()) => {
                    self.woken[usize::from(core)] = true;
                    return;
                }
                Err(TrySendError::Full(back)) => {
                    r = back;
                    self.wake(usize::from(core));
                    std::thread::sleep(Duration::from_micros(100));
                }
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        self.stats.core_inbox_full += 1;
    }

    fn wake(&self, core: usize) {
        if let Some(w) = self.published.wakers.get(core) {
            w.wake();
        }
    }

    /// Wakes the workers that were given records (an idle one sleeps in poll).
    fn wake_given(&mut self) {
        for k in 0..self.woken.len() {
            if std::mem::take(&mut self.woken[k]) {
                self.wake(k);
            }
        }
    }

    fn answer_bulk(&mut self) {
        self.stats.bulk_requests_received += 1;
        if self.last_bulk_answer.is_some_and(|t| t.elapsed() < BULK_MIN_GAP) {
            return;
        }
        self.last_bulk_answer = Some(Instant::now());
        self.links.shared.bulk.fetch_add(1, Ordering::Release);
    }

    /// A starting backup asks its master for the whole table.
    fn ask_bulk(&mut self) {
        if self.bulk_asks == 0 || self.last_ask.elapsed() < BULK_EVERY {
            return;
        }
        let Some(b) = self.backup.as_ref().filter(|b| b.error.is_none()) else { return };
        self.bulk_asks -= 1;
        self.last_ask = Instant::now();
        let req = wire::bulk_request(b.spec.syncid);
        let sent = socket::sender(&b.spec).and_then(|s| s.send(&req));
        match sent {
            Ok(_) => self.stats.bulk_requests_sent += 1,
            Err(_) => self.stats.send_errors += 1,
        }
    }

    fn publish_view(&mut self, now: bool) {
        if !now && self.last_publish.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last_publish = Instant::now();
        let mut stats = self.stats.clone();
        stats.bad_datagrams = BadMessage::ALL
            .iter()
            .map(|b| (b.name().to_string(), self.bad_msgs.get(b).copied().unwrap_or(0)))
            .collect();
        stats.bad_records =
            BadRecord::ALL.iter().map(|b| (b.name().to_string(), self.bad_recs.get(b).copied().unwrap_or(0))).collect();
        let view = SyncView {
            master: self.master.as_ref().map(Daemon::view),
            backup: self.backup.as_ref().map(Daemon::view),
            stats,
        };
        let _ = self.region.write_blob(BLOB_SYNC, &serde_json::to_vec(&view).unwrap_or_default());
    }
}
