//! Startup: everything before the first packet, one method per step, in
//! the order [`Startup::start`] runs them. What it leaves running is a
//! [`Running`], handed to the control loop.

use super::options::{group_id, Options};
use crate::lb::core::{Core, CoreParams};
use crate::lb::net::{NetState, NextHopError};
use crate::lb::snapshot::Snapshot;
use crate::netlink::{self, Kernel};
use crate::worker::{Published, Worker};
use crate::xsk::steer::{owned_keys, Mode, Steer};
use crate::xsk::{open_ports, Held, Io, Shared, Waker, RING};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xdpvs_api::config::Config;
use xdpvs_api::shm::Region;

/// Wall-clock time in seconds (for the handover's log lines).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Checked options: what startup will build.
pub struct Startup {
    opts: Options,
    mode: Mode,
    kernel: Kernel,
    names: Vec<String>,
    queues: u32,
    instance: String,
}

/// What startup leaves running: the control loop's inputs.
pub struct Running {
    pub opts: Options,
    pub names: Vec<String>,
    pub region: Arc<Region>,
    pub steers: Vec<Steer>,
    pub published: Arc<Published>,
    pub workers: Vec<JoinHandle<Core>>,
    pub kernel: Kernel,
    pub net: NetState,
    pub cfg: Config,
    pub snapshot: Arc<Snapshot>,
    pub signals: Signals,
    /// Set by the netlink thread when the kernel's state moved.
    pub kernel_changed: Arc<AtomicBool>,
    /// The netlink thread (it holds the region to ring it).
    pub watcher: JoinHandle<()>,
    /// Next hops the workers want resolved.
    pub resolve: Receiver<IpAddr>,
    /// The connection sync thread, and what tells it to stop.
    pub sync: JoinHandle<()>,
    pub sync_shared: Arc<crate::sync::Shared>,
    /// The BGP announcer, when BIRD protocols are named, and its watchdog
    /// process (it withdraws them should xdpvs die).
    pub announce: Option<crate::announce::Handle>,
    pub watchdog: Option<std::process::Child>,
}

/// The flags the signal handlers set.
pub struct Signals {
    pub stop: Arc<AtomicBool>,
    pub hup: Arc<AtomicBool>,
    /// The workers' own stop: set after a planned stop's withdrawal and
    /// drain (they forward until then).
    pub workers: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        let err = |e: std::io::Error| format!("cannot install signal handler: {e}");
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, stop.clone()).map_err(err)?;
        }
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone()).map_err(err)?;
        Ok(Signals { stop, hup, workers: Arc::new(AtomicBool::new(false)) })
    }
}

/// One bounded lock-free channel per ordered core pair: `grid[from][to]`.
struct Grid<T> {
    grid: Vec<Vec<(Sender<T>, Receiver<T>)>>,
}

impl<T> Grid<T> {
    fn new(n: usize, cap: usize) -> Self {
        Self { grid: (0..n).map(|_| (0..n).map(|_| bounded(cap)).collect()).collect() }
    }

    /// Core `q`'s receiving ends (one from each core).
    fn inboxes(&self, q: usize) -> Vec<Receiver<T>> {
        self.grid.iter().map(|from| from[q].1.clone()).collect()
    }

    /// Core `q`'s sending ends (one to each core).
    fn outboxes(&self, q: usize) -> Vec<Sender<T>> {
        self.grid[q].iter().map(|c| c.0.clone()).collect()
    }
}

/// Channels and buffers every worker gets a share of.
struct Plumbing {
    shared: Arc<Shared>,
    frames_per_worker: u32,
    handoff: Grid<Held>,
    returns: Grid<u64>,
    resolve: Sender<IpAddr>,
    start: Instant,
    cpus: Vec<usize>,
    /// The SYN proxy's cookie secret, one for all workers (a flow's SYN and
    /// ACK may reach different cores when steering changes).
    cookie_key: [u64; 2],
    /// The session index's hash seed (each worker's is this and its queue):
    /// secret, so nobody can aim packets at one bucket of it.
    index_seed: u64,
}

/// The calling thread at SCHED_FIFO `prio`.
fn real_time(prio: u8) -> Result<(), String> {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy, ScheduleParams, ThreadPriority,
        ThreadSchedulePolicy,
    };
    let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    let priority = ThreadPriority::from_posix(ScheduleParams { sched_priority: i32::from(prio) });
    set_thread_priority_and_policy(thread_native_id(), priority, policy).map_err(|e| {
        format!(
            "cannot run at SCHED_FIFO {prio} ({e:?}): xdpvs needs CAP_SYS_NICE for --rt-priority, or drop the option"
        )
    })
}

/// 16 bytes from the kernel's random pool (`what`: the secret they become).
fn random_key(what: &str) -> Result<[u64; 2], String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("reading /dev/urandom for {what}: {e}"))?;
    let (lo, hi) = b.split_at(8);
    Ok([u64::from_ne_bytes(lo.try_into().expect("8")), u64::from_ne_bytes(hi.try_into().expect("8"))])
}

/// The capabilities xdpvs cannot work without, missing from this process
/// (effective set, from /proc/self/status): XDP and AF_XDP need CAP_NET_ADMIN
/// and CAP_BPF (or CAP_SYS_ADMIN), the UMEM CAP_IPC_LOCK, AF_XDP sockets
/// CAP_NET_RAW.
fn missing_capabilities() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(eff) =
        status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        return Vec::new(); // not Linux's procfs: let the calls themselves tell
    };
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    let (net_admin, net_raw, ipc_lock, sys_admin, bpf) = (12, 13, 14, 21, 39);
    let mut missing = Vec::new();
    for (bit, name) in [(net_admin, "CAP_NET_ADMIN"), (net_raw, "CAP_NET_RAW"), (ipc_lock, "CAP_IPC_LOCK")] {
        if !has(bit) {
            missing.push(name);
        }
    }
    if !has(bpf) && !has(sys_admin) {
        missing.push("CAP_BPF");
    }
    missing
}

/// Asks the kernel to resolve the next hop of every real server, and every
/// gateway of the interfaces' routes (the way back to routed clients), that
/// has none yet: the kernel never sees the traffic xdpvs forwards, so it
/// would not look them up by itself, and a first connection would lose its
/// first packet to the wait. True if anything was asked.
pub fn resolve_servers(cfg: &Config, net: &NetState) -> bool {
    let servers =
        cfg.services().flat_map(|(_, svc)| svc.dests.iter().filter_map(|&d| cfg.dest(d)).map(|d| d.spec.addr));
    let gateways = net.routes().iter().filter_map(|r| r.gateway);
    let mut asked: Vec<IpAddr> = Vec::new();
    for a in servers.chain(gateways) {
        if let Err(NextHopError::Unresolved(hop)) = net.next_hop(a) {
            if !asked.contains(&hop) {
                netlink::resolve(hop);
                asked.push(hop);
            }
        }
    }
    !asked.is_empty()
}

impl Startup {
    /// Privileges, interfaces, XDP mode and queue count, before anything is built.
    pub fn check(opts: Options) -> Result<Startup, String> {
        let missing = missing_capabilities();
        if !missing.is_empty() {
            return Err(format!(
                "not enough privileges (missing {}): run xdpvs as root (sudo xdpvs …) or grant them with setcap",
                missing.join(", ")
            ));
        }
        if opts.interfaces.is_empty() {
            return Err(
                "no interface given: use --iface DEV (once for one-arm, twice for client side + server side)".into()
            );
        }
        let mode = opts.mode()?;
        opts.announce()?;
        let names = opts.interfaces.clone();
        let kernel = Kernel::open(&names)?;
        let queues = Self::queues(&opts, &names)?;
        let instance = opts.instance.clone().unwrap_or_else(|| "default".into());
        Ok(Startup { opts, mode, kernel, names, queues, instance })
    }

    fn queues(opts: &Options, names: &[String]) -> Result<u32, String> {
        let have = |n: &String| netlink::rx_queues(n);
        let queues = opts.queues.unwrap_or_else(|| names.iter().map(have).min().unwrap_or(1)).max(1);
        for n in names {
            if have(n) < queues {
                return Err(format!(
                    "{n} has {} rx queue(s) but --queues asks for {queues}: lower --queues or add queues (ethtool -L {n} combined {queues})",
                    have(n)
                ));
            }
        }
        Ok(queues)
    }

    /// Builds everything and starts the workers.
    pub fn start(mut self) -> Result<Running, String> {
        let mut net = self.read_network()?;
        let mut cfg = match &self.opts.restore {
            Some(p) => super::load_rules(p)?,
            None => Config::default(),
        };
        cfg.sync_timing = self.opts.sync_timing()?;
        cfg.sync_journal = self.opts.handover().is_some();
        cfg.standby_laddrs.clone_from(&self.opts.standby_laddrs);
        cfg.announcing = !self.opts.bird_vips.is_empty();
        crate::control::check_ifaces(&cfg, &self.names)?;
        let gid = self.opts.shm_group.as_deref().map(group_id).transpose()?;
        let region = Arc::new(Region::create(&self.instance, self.queues as usize, gid).map_err(|e| e.to_string())?);
        // Once the instance is ours (a second xdpvs of it must not withdraw
        // the first one's routes as it gives up), and before any socket or
        // XDP program is opened (the watchdog must not inherit them).
        let watchdog = match self.opts.announce()? {
            Some(s) => {
                let names: Vec<String> = s.protocols.iter().map(|p| p.name.clone()).collect();
                Some(crate::announce::watchdog::start(&s.socket, &names)?)
            }
            None => None,
        };
        let (shared, umem_mb) = self.umem()?;
        let signals = Signals::install()?;
        Self::resolve_ahead(&cfg, &mut self.kernel, &mut net);
        let snapshot = Arc::new(Snapshot::new(cfg.clone(), Arc::new(net.clone())));
        let mut steers = self.attach_xdp(&snapshot, &net)?;
        let mut taken_over = self.take_over(&cfg)?;
        let journal_start: Vec<xdpvs_api::sync::Record> = taken_over.iter().flatten().copied().collect();
        let published = Arc::new(Published::new(snapshot.clone(), self.wakers()?));
        let (resolve_tx, resolve) = bounded::<IpAddr>(1024);
        let plumbing = self.plumbing(shared.clone(), resolve_tx)?;
        let (sync_links, worker_links) = crate::sync::links(self.queues as usize);
        let sync_shared = worker_links.first().map(|l| l.shared.clone()).unwrap_or_default();
        let workers = worker_links
            .into_iter()
            .enumerate()
            .map(|(q, l)| {
                let sessions = std::mem::take(&mut taken_over[q]);
                self.spawn_worker(q as u32, l, sessions, &plumbing, &mut steers, &published, &region, &signals)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.opts.handover().is_some() {
            tracing::info!("forwarding at {:.6} (unix time)", unix_now());
        }
        let state_file = self.opts.state_file();
        let journal = self.opts.handover().map(|_| (state_file.as_path(), journal_start.as_slice()));
        let sync = crate::sync::spawn(sync_links, published.clone(), region.clone(), journal)?;
        let kernel_changed = Arc::new(AtomicBool::new(false));
        let bell = region.clone();
        let watcher = netlink::watch(kernel_changed.clone(), signals.stop.clone(), move || bell.ring())?;
        let keys = owned_keys(&snapshot);
        let macs = net.ifaces.iter().map(|i| i.mac);
        steers
            .iter_mut()
            .zip(macs)
            .try_for_each(|(s, mac)| s.set_mac(mac).and_then(|()| s.sync(&keys)))
            .map_err(|e| e.to_string())?;
        if let Some(addr) = self.opts.metrics {
            xdpvs_web::serve("metrics", addr, xdpvs_web::metrics_router(self.instance.clone()))?;
            tracing::info!("metrics on http://{addr}/metrics");
        }
        if let Some(s) = self.opts.status_page()? {
            let addr = s.addr;
            let (auth, admin) = (s.auth.is_some(), s.admin);
            xdpvs_web::serve("status page", addr, xdpvs_web::status::router(self.instance.clone(), s))?;
            tracing::info!(
                "status page on http://{addr}/{}{}",
                if auth { " (Basic auth)" } else { "" },
                if admin { ", admin mode" } else { "" }
            );
        }
        let announce = match self.opts.announce()? {
            Some(s) => Some(crate::announce::spawn(s, published.clone(), region.clone())?),
            None => None,
        };
        self.say_up(&steers, &shared, umem_mb, &cfg);
        for r in super::rx_threads::rt_receivers(&self.names) {
            if let Some(w) = super::rx_threads::warning(&r, self.opts.rt_priority) {
                tracing::warn!("{w}");
            }
        }
        Ok(Running {
            opts: self.opts,
            names: self.names,
            region,
            steers,
            published,
            workers,
            kernel: self.kernel,
            net,
            cfg,
            snapshot,
            signals,
            kernel_changed,
            watcher,
            resolve,
            sync,
            sync_shared,
            announce,
            watchdog,
        })
    }

    /// The served interfaces and the kernel's routes and neighbours.
    fn read_network(&mut self) -> Result<NetState, String> {
        let mut net = NetState::new(self.kernel.ifaces(netlink::rss)?);
        self.kernel.refresh(&mut net)?;
        Ok(net)
    }

    /// The restored servers' neighbours, before the first client arrives.
    fn resolve_ahead(cfg: &Config, kernel: &mut Kernel, net: &mut NetState) {
        if resolve_servers(cfg, net) {
            std::thread::sleep(Duration::from_millis(30));
            if let Err(e) = kernel.refresh(net) {
                tracing::warn!("reading routes and neighbours: {e}");
            }
        }
    }

    fn umem(&self) -> Result<(Arc<Shared>, usize), String> {
        let umem_mb = self.opts.umem_mb.unwrap_or(16 * self.queues as usize * self.names.len());
        let huge = self.opts.hugepages.unwrap_or(true);
        let shared = Shared::new(umem_mb << 20, huge).map_err(|e| {
            format!("cannot allocate the {umem_mb} MiB UMEM: {e} (as root, xdpvs locks it with CAP_IPC_LOCK; lower --umem-mb)")
        })?;
        if huge && !shared.hugepages() {
            tracing::warn!("no free 2 MiB huge pages reserved: the UMEM uses normal pages (echo N > /proc/sys/vm/nr_hugepages to reserve)");
        }
        if shared.frames() / self.queues < 2 * RING * self.names.len() as u32 {
            return Err(format!(
                "--umem-mb {umem_mb} is too small for {} queues on {} interfaces",
                self.queues,
                self.names.len()
            ));
        }
        Ok((shared, umem_mb))
    }

    /// The XDP program on every interface. With a handover it is filled
    /// first (what it owns, the MAC, a hold that drops owned traffic until
    /// the sockets bind) and then replaces, in one step, the program a
    /// previous xdpvs left there; without, it is attached by bpf_link.
    fn attach_xdp(&self, snapshot: &Snapshot, net: &NetState) -> Result<Vec<Steer>, String> {
        let keys = owned_keys(snapshot);
        let hold = self.opts.handover();
        let mut steers = Vec::new();
        for (n, iface) in self.names.iter().zip(&net.ifaces) {
            let mut s = match hold {
                Some(_) => Steer::load(n, self.mode),
                None => Steer::attach(n, self.mode),
            }
            .map_err(|e| e.to_string())?;
            s.set_mac(iface.mac).and_then(|()| s.sync(&keys)).map_err(|e| e.to_string())?;
            if let Some(h) = hold {
                s.hold_until(xdpvs_api::shm::monotonic_ns() + h.as_nanos() as u64).map_err(|e| e.to_string())?;
                s.attach_replacing().map_err(|e| e.to_string())?;
            }
            steers.push(s);
        }
        Ok(steers)
    }

    /// With a handover: the sessions the previous xdpvs saved, by owning core.
    fn take_over(&self, cfg: &Config) -> Result<Vec<Vec<xdpvs_api::sync::Record>>, String> {
        let mut by_core = vec![Vec::new(); self.queues as usize];
        if self.opts.handover().is_none() {
            return Ok(by_core);
        }
        let path = self.opts.state_file();
        let records = if path.exists() {
            // A clean stop: the state file is whole; a journal beside it is stale.
            let r = super::handover::load(&path)?;
            let _ = crate::sync::journal::replay(&path);
            tracing::info!("taking over {} session(s) from {}", r.len(), path.display());
            r
        } else {
            let (r, bad) = crate::sync::journal::replay(&path);
            if !r.is_empty() || bad > 0 {
                tracing::warn!(
                    "the previous xdpvs did not stop cleanly: taking over {} session(s) from its journal ({bad} torn or malformed part(s))",
                    r.len()
                );
            }
            r
        };
        for r in records {
            let q = super::handover::owner(cfg, self.queues as u16, &r);
            by_core[usize::from(q)].push(r);
        }
        Ok(by_core)
    }

    /// One eventfd per worker, to wake it from an idle poll.
    fn wakers(&self) -> Result<Vec<Arc<Waker>>, String> {
        (0..self.queues)
            .map(|_| Waker::new().map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot create an eventfd: {e}"))
    }

    fn plumbing(&self, shared: Arc<Shared>, resolve: Sender<IpAddr>) -> Result<Plumbing, String> {
        let n = self.queues as usize;
        let frames_per_worker = shared.frames() / self.queues;
        let cpus = if self.opts.cores.is_empty() {
            let have = core_affinity::get_core_ids().map_or(1, |v| v.len()).max(1);
            (0..n).map(|q| (q + 1) % have).collect()
        } else {
            self.opts.cores.clone()
        };
        Ok(Plumbing {
            shared,
            frames_per_worker,
            handoff: Grid::new(n, RING as usize),
            returns: Grid::new(n, frames_per_worker as usize),
            resolve,
            start: Instant::now(),
            cpus,
            cookie_key: random_key("the SYN cookie secret")?,
            index_seed: random_key("the session index's hash seed")?[0],
        })
    }

    /// Worker `q`: its sockets on every interface, its engine core, its
    /// channels, and its thread pinned to its CPU.
    #[allow(clippy::too_many_arguments)]
    fn spawn_worker(
        &self,
        q: u32,
        sync: crate::sync::WorkerLinks,
        sessions: Vec<xdpvs_api::sync::Record>,
        p: &Plumbing,
        steers: &mut [Steer],
        published: &Arc<Published>,
        region: &Arc<Region>,
        signals: &Signals,
    ) -> Result<JoinHandle<Core>, String> {
        let pairs: Vec<(String, u32)> = self.names.iter().map(|n| (n.clone(), q)).collect();
        let ports = open_ports(&p.shared, &pairs, q == 0)
            .map_err(|e| format!("{e} (is another AF_XDP program using queue {q}?)"))?;
        for (steer, port) in steers.iter_mut().zip(&ports) {
            steer.set_socket(q, port.fd()).map_err(|e| e.to_string())?;
        }
        let params = CoreParams {
            id: q as u16,
            ncores: self.queues as u16,
            max_sessions: self.opts.max_sessions.unwrap_or(1 << 20),
            reserve_sessions: 1 << 16,
            seed: p.index_seed ^ u64::from(q),
            cookie_key: p.cookie_key,
            max_half_open: self.opts.max_half_open.unwrap_or(u32::MAX),
            max_half_open_per_service: self.opts.max_half_open_per_service.unwrap_or(u32::MAX),
            ..CoreParams::default()
        };
        let qi = q as usize;
        let now = crate::worker::ticks(p.start);
        let mut core = Core::new(published.config.load_full(), params, now);
        let refused = sessions.iter().filter(|r| core.install(r, now).is_err()).count();
        if refused > 0 {
            tracing::warn!("worker {q}: {refused} saved session(s) refused (their service or server is gone)");
        }
        let worker = Worker {
            id: q as u16,
            core,
            io: Io::new(p.shared.clone(), ports, q * p.frames_per_worker, p.frames_per_worker),
            port_of_iface: (0..self.names.len()).map(Some).collect(),
            published: published.clone(),
            stop: signals.workers.clone(),
            inboxes: p.handoff.inboxes(qi),
            peers: p.handoff.outboxes(qi),
            returns_in: p.returns.inboxes(qi),
            returns_out: p.returns.outboxes(qi),
            resolve: p.resolve.clone(),
            region: region.clone(),
            start: p.start,
            spin: self.opts.idle_spin.unwrap_or(if self.opts.rt_priority.is_some() { 0 } else { 256 }),
            sync,
        };
        let cpu = p.cpus.get(qi).copied();
        let rt = self.opts.rt_priority;
        let (told, heard) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(format!("xdpvs-w{q}"))
            .spawn(move || {
                if let Some(c) = cpu {
                    core_affinity::set_for_current(core_affinity::CoreId { id: c });
                }
                let _ = told.send(rt.map(real_time).transpose());
                worker.run()
            })
            .map_err(|e| format!("cannot start worker {q}: {e}"))?;
        match heard.recv() {
            Ok(Ok(_)) => Ok(handle),
            Ok(Err(e)) => Err(format!("worker {q}: {e}")),
            Err(_) => Err(format!("worker {q} ended at start")),
        }
    }

    fn say_up(&self, steers: &[Steer], shared: &Shared, umem_mb: usize, cfg: &Config) {
        tracing::info!(
            "instance {} up: {} on {} queue(s), XDP {}, UMEM {} MiB{}, {} service(s)",
            self.instance,
            self.names.join(" + "),
            self.queues,
            steers.iter().map(|s| format!("{}={:?}", s.iface, s.mode)).collect::<Vec<_>>().join(" "),
            umem_mb,
            if shared.hugepages() { " on huge pages" } else { "" },
            cfg.services().count()
        );
    }
}
