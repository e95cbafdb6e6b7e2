//! The daemon: options, startup, workers, the control loop, shutdown.
//!
//! Startup order: interfaces and the kernel's routes/neighbours → rules
//! (`--restore`, ipvsadm `-S` format) → UMEM → XDP program on every
//! interface → one AF_XDP socket per (interface, queue) → workers pinned to
//! cores. Every failure is one line naming the fix, and a non-zero exit.
//!
//! The control loop (this thread) sleeps on the shared-memory region's
//! doorbell; it answers `xdpvsadm` commands as they arrive (validated on a
//! copy, applied whole or not at all), refreshes routes and neighbours every
//! second (and at once when a worker asks for a resolution), re-reads the
//! rules on SIGHUP, publishes each new configuration generation to the
//! workers, the steering maps and the region's view, and runs IPVS's 2-second
//! rate estimator. SIGTERM and SIGINT stop the workers; dropping the sockets
//! and the programs' links then detaches everything, and the region goes.

use crate::admin::{apply_line, note};
use crate::control::{Control, FAILED, OK};
use crate::grammar::parse_rules;
use crate::lb::config::Config;
use crate::lb::core::{Core, CoreParams};
use crate::lb::net::NetState;
use crate::netinfo;
use crate::shm::{Region, BLOB_RATES, BLOB_VIEW};
use crate::worker::{Published, Worker};
use crate::xsk::steer::{owned_keys, Mode, Steer};
use crate::xsk::{open_ports, Io, Shared, RING};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Daemon options: the TOML file's keys, overridden by flags.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Instance name (several daemons on one host need different names).
    pub instance: Option<String>,
    /// Interfaces: one (one-arm, as LVS-DR) or client side + server side.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// CPUs to pin workers on, in order (default: CPUs 1, 2, … then 0).
    #[serde(default)]
    pub cores: Vec<usize>,
    /// Queues per device (default: every rx queue of the device with fewest).
    pub queues: Option<u32>,
    /// native | generic | auto.
    pub xdp_mode: Option<String>,
    /// UMEM size in MiB (default 16 per queue and interface).
    pub umem_mb: Option<usize>,
    /// Use 2 MiB huge pages for the UMEM when reserved.
    pub hugepages: Option<bool>,
    /// Rules to load at start (ipvsadm `-S` format); SIGHUP re-reads them.
    pub restore: Option<PathBuf>,
    /// Group (name or number) allowed to use `xdpvsadm` on this instance
    /// (the region becomes mode 0660); default: root only (0600).
    pub shm_group: Option<String>,
    /// Sessions per worker and address family.
    pub max_sessions: Option<u32>,
    /// Busy polls without traffic before a worker sleeps in poll(2).
    pub idle_spin: Option<u32>,
}

impl Options {
    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Options, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// `self` with every field `over` sets replaced.
    pub fn overridden_by(mut self, over: Options) -> Options {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(instance, queues, xdp_mode, umem_mb, hugepages, restore, shm_group, max_sessions, idle_spin);
        if !over.interfaces.is_empty() {
            self.interfaces = over.interfaces;
        }
        if !over.cores.is_empty() {
            self.cores = over.cores;
        }
        self
    }

    fn mode(&self) -> Result<Mode, String> {
        match self.xdp_mode.as_deref().unwrap_or("auto") {
            "native" | "drv" | "driver" => Ok(Mode::Native),
            "generic" | "skb" => Ok(Mode::Generic),
            "auto" => Ok(Mode::Auto),
            other => Err(format!("unknown XDP mode '{other}': use native, generic or auto")),
        }
    }
}

/// Asks the kernel to resolve the next hop of every real server, and every
/// gateway of the interfaces' routes (the way back to routed clients), that
/// has none yet: the kernel never sees the traffic xdpvs forwards, so it
/// would not look them up by itself, and a first connection would lose its
/// first packet to the wait. True if anything was asked.
fn resolve_servers(cfg: &Config, net: &NetState) -> bool {
    let servers =
        cfg.services().flat_map(|(_, svc)| svc.dests.iter().filter_map(|&d| cfg.dest(d)).map(|d| d.spec.addr));
    let gateways = net.routes().iter().filter_map(|r| r.gateway);
    let mut asked: Vec<IpAddr> = Vec::new();
    for a in servers.chain(gateways) {
        if let Err(crate::lb::net::NextHopError::Unresolved(hop)) = net.next_hop(a) {
            if !asked.contains(&hop) {
                netinfo::resolve(hop);
                asked.push(hop);
            }
        }
    }
    !asked.is_empty()
}

/// Applies a rules file to a fresh configuration over `net`.
pub fn load_rules(path: &std::path::Path, net: NetState) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read rules {}: {e}", path.display()))?;
    let mut cfg = Config::new(net);
    let mut errors = Vec::new();
    for (line, r) in parse_rules(&text) {
        match apply_line(&mut cfg, r) {
            Ok(c) => {
                if let Some(n) = note(&cfg, &c) {
                    eprintln!("xdpvs: {}:{line}: note: {n}", path.display());
                }
            }
            Err(e) => errors.push(format!("{}:{line}: {e}", path.display())),
        }
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors.join("\n"))
    }
}

/// A group name or number as a gid (names from /etc/group).
fn group_id(g: &str) -> Result<u32, String> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[0] == g).then(|| f[2].parse().ok()).flatten()
            })
        })
        .ok_or_else(|| format!("unknown group '{g}' for shm_group: use an existing group name or number"))
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

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(opts: Options) -> Result<(), String> {
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
    let names = opts.interfaces.clone();
    let ifaces = names.iter().map(|n| netinfo::iface(n)).collect::<Result<Vec<_>, _>>()?;
    let mut net = NetState::new(ifaces);
    netinfo::refresh(&mut net, &names)?;
    let mut cfg = match &opts.restore {
        Some(p) => load_rules(p, net.clone())?,
        None => Config::new(net.clone()),
    };
    let queues = opts.queues.unwrap_or_else(|| names.iter().map(|n| netinfo::rx_queues(n)).min().unwrap_or(1)).max(1);
    for n in &names {
        let have = netinfo::rx_queues(n);
        if have < queues {
            return Err(format!("{n} has {have} rx queue(s) but --queues asks for {queues}: lower --queues or add queues (ethtool -L {n} combined {queues})"));
        }
    }
    let instance = opts.instance.clone().unwrap_or_else(|| "default".into());
    let gid = opts.shm_group.as_deref().map(group_id).transpose()?;
    let region = Arc::new(Region::create(&instance, queues as usize, gid).map_err(|e| e.to_string())?);
    let mut control = Control::default();
    let umem_mb = opts.umem_mb.unwrap_or(16 * queues as usize * names.len());
    let shared = Shared::new(umem_mb << 20, opts.hugepages.unwrap_or(true)).map_err(|e| {
        format!(
            "cannot allocate the {umem_mb} MiB UMEM: {e} (as root, xdpvs locks it with CAP_IPC_LOCK; lower --umem-mb)"
        )
    })?;
    if opts.hugepages.unwrap_or(true) && !shared.hugepages() {
        eprintln!("xdpvs: no free 2 MiB huge pages reserved: the UMEM uses normal pages (echo N > /proc/sys/vm/nr_hugepages to reserve)");
    }
    let mut steers =
        names.iter().map(|n| Steer::attach(n, mode)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let frames_per_worker = shared.frames() / queues;
    if frames_per_worker < 2 * RING * names.len() as u32 {
        return Err(format!("--umem-mb {umem_mb} is too small for {queues} queues on {} interfaces", names.len()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| format!("cannot install signal handler: {e}"))?;

    if resolve_servers(&cfg, &net) {
        // The restored servers' neighbours, before the first client arrives.
        std::thread::sleep(Duration::from_millis(30));
        if let Err(e) = netinfo::refresh(&mut net, &names) {
            eprintln!("xdpvs: reading routes and neighbours: {e}");
        }
    }
    cfg.set_net(Arc::new(net.clone()));
    let wakers = (0..queues)
        .map(|_| crate::xsk::Waker::new().map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot create an eventfd: {e}"))?;
    let published = Arc::new(Published::new(Arc::new(cfg.clone()), wakers));
    let (resolve_tx, resolve_rx) = crossbeam_channel::bounded::<IpAddr>(1024);
    // channels[from][to]: one bounded lock-free ring per ordered core pair.
    let channels: Vec<Vec<_>> =
        (0..queues).map(|_| (0..queues).map(|_| crossbeam_channel::bounded(RING as usize)).collect()).collect();
    // returns[from][to]: chunks going back to the worker that owns them.
    let returns: Vec<Vec<_>> = (0..queues)
        .map(|_| (0..queues).map(|_| crossbeam_channel::bounded::<u64>(frames_per_worker as usize)).collect())
        .collect();
    let start = Instant::now();
    let cpus: Vec<usize> = if opts.cores.is_empty() {
        let n = core_affinity::get_core_ids().map_or(1, |v| v.len());
        (0..queues as usize).map(|q| (q + 1) % n.max(1)).collect()
    } else {
        opts.cores.clone()
    };
    let mut handles = Vec::new();
    for q in 0..queues {
        let pairs: Vec<(String, u32)> = names.iter().map(|n| (n.clone(), q)).collect();
        let ports = open_ports(&shared, &pairs, q == 0)
            .map_err(|e| format!("{e} (is another AF_XDP program using queue {q}?)"))?;
        for (i, p) in ports.iter().enumerate() {
            steers[i].set_socket(q, p.fd()).map_err(|e| e.to_string())?;
        }
        let io = Io::new(shared.clone(), ports, q * frames_per_worker, frames_per_worker);
        let params = CoreParams {
            id: q as u16,
            ncores: queues as u16,
            max_sessions: opts.max_sessions.unwrap_or(1 << 20),
            reserve_sessions: 1 << 16,
            seed: 0x5eed ^ u64::from(q),
            ..CoreParams::default()
        };
        let core = Core::new(published.config.load_full(), params, crate::worker::ticks(start));
        let worker = Worker {
            id: q as u16,
            core,
            io,
            port_of_iface: (0..names.len()).map(Some).collect(),
            published: published.clone(),
            stop: stop.clone(),
            inboxes: channels.iter().map(|from| from[q as usize].1.clone()).collect(),
            peers: channels[q as usize].iter().map(|c| c.0.clone()).collect(),
            returns_in: returns.iter().map(|from| from[q as usize].1.clone()).collect(),
            returns_out: returns[q as usize].iter().map(|c| c.0.clone()).collect(),
            resolve: resolve_tx.clone(),
            region: region.clone(),
            start,
            spin: opts.idle_spin.unwrap_or(256),
        };
        let cpu = cpus.get(q as usize).copied();
        handles.push(
            std::thread::Builder::new()
                .name(format!("xdpvs-w{q}"))
                .spawn(move || {
                    if let Some(c) = cpu {
                        core_affinity::set_for_current(core_affinity::CoreId { id: c });
                    }
                    worker.run()
                })
                .map_err(|e| format!("cannot start worker {q}: {e}"))?,
        );
    }
    let sync = |steers: &mut Vec<Steer>, cfg: &Config| -> Result<(), String> {
        let keys = owned_keys(cfg);
        steers.iter_mut().try_for_each(|s| s.sync(&keys)).map_err(|e| e.to_string())
    };
    sync(&mut steers, &cfg)?;
    let show = |control: &Control, cfg: &Config| {
        region.set_generation(cfg.generation);
        if let Err(e) = region.write_blob(BLOB_VIEW, control.view(cfg, &region).to_string().as_bytes()) {
            eprintln!("xdpvs: the configuration view does not fit the region: {e}");
        }
    };
    show(&control, &cfg);
    eprintln!(
        "xdpvs: instance {} up: {} on {} queue(s), XDP {}, UMEM {} MiB{}, {} service(s)",
        instance,
        names.join(" + "),
        queues,
        steers.iter().map(|s| format!("{}={:?}", s.iface, s.mode)).collect::<Vec<_>>().join(" "),
        umem_mb,
        if shared.hugepages() { " on huge pages" } else { "" },
        cfg.services().count()
    );

    let mut last_refresh = Instant::now();
    // Real servers' next hops are resolved ahead of their first connection.
    let mut servers_changed = true;
    let mut last_estimate = Instant::now();
    let mut last_reclaim = Instant::now();
    let mut bell = 0;
    while !stop.load(Ordering::Relaxed) {
        region.wait_doorbell(&mut bell, Duration::from_millis(20));
        region.beat();
        let mut changed = false;
        // Commands, one at a time: each validated on a copy, then published
        // before it is answered (its generation goes with the answer).
        while let Some((slot, req)) = region.next_request() {
            match control.handle(&mut cfg, &region, &req) {
                Ok(o) => {
                    if o.changed {
                        servers_changed = true;
                        // Workers first (they pick it up within microseconds),
                        // then the steering maps, the view and the answer.
                        published.publish(Arc::new(cfg.clone()));
                        if let Err(e) = sync(&mut steers, &cfg) {
                            eprintln!("xdpvs: updating the steering maps: {e}");
                        }
                    }
                    show(&control, &cfg);
                    region.answer(slot, OK, o.text.as_bytes(), cfg.generation);
                }
                Err(e) => region.answer(slot, FAILED, e.as_bytes(), cfg.generation),
            }
        }
        if last_reclaim.elapsed() >= Duration::from_secs(1) {
            last_reclaim = Instant::now();
            region.reclaim();
        }
        if last_estimate.elapsed() >= Duration::from_secs(2) {
            last_estimate += Duration::from_secs(2);
            let rates = control.estimate(&cfg, &region).to_string();
            let _ = region.write_blob(BLOB_RATES, rates.as_bytes());
        }
        // Workers asked: frames wait parked for the answer (look again every
        // 2 ms for up to 30 ms). Servers' hops asked ahead of traffic: a few
        // looks. Otherwise one look a second.
        let mut tries = 0;
        let mut reloaded = None;
        while let Ok(a) = resolve_rx.try_recv() {
            netinfo::resolve(a);
            tries = 15;
        }
        if servers_changed || last_refresh.elapsed() >= Duration::from_secs(1) {
            servers_changed = false;
            if resolve_servers(&cfg, &net) {
                tries = tries.max(3);
            }
        }
        if tries > 0 || last_refresh.elapsed() >= Duration::from_secs(1) {
            last_refresh = Instant::now();
            for _ in 0..tries.max(1) {
                if tries > 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
                match netinfo::refresh(&mut net, &names) {
                    Ok(true) => {
                        cfg.set_net(Arc::new(net.clone()));
                        changed = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        eprintln!("xdpvs: reading routes and neighbours: {e}");
                        break;
                    }
                }
            }
        }
        if hup.swap(false, Ordering::Relaxed) {
            if let Some(p) = &opts.restore {
                // Apply the difference: what stays keeps its flows.
                let mut next = cfg.clone();
                match load_rules(p, net.clone())
                    .and_then(|want| crate::admin::reconcile(&mut next, &want).map_err(|e| e.to_string()))
                {
                    Ok(()) => {
                        cfg = next;
                        changed = true;
                        servers_changed = true;
                        reloaded = Some(p.clone());
                    }
                    Err(e) => eprintln!("xdpvs: keeping the running rules; {e}"),
                }
            }
        }
        if changed {
            if let Err(e) = sync(&mut steers, &cfg) {
                eprintln!("xdpvs: updating the steering maps: {e}");
            }
            published.publish(Arc::new(cfg.clone()));
            show(&control, &cfg);
            if let Some(p) = reloaded {
                // Said once it is published: workers adopt it before their next burst.
                eprintln!("xdpvs: reloaded {} (generation {})", p.display(), cfg.generation);
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    drop(steers);
    eprintln!("xdpvs: stopped; XDP programs detached");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_flags_override() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let o = Options::from_file(&root.join("configs/xdpvs.toml")).expect("the example parses");
        assert_eq!(o.interfaces, vec!["eth0", "eth1"]);
        assert_eq!((o.queues, o.mode().unwrap()), (Some(2), Mode::Auto));
        let flags =
            Options { interfaces: vec!["veth0".into()], xdp_mode: Some("generic".into()), ..Options::default() };
        let o = o.overridden_by(flags);
        assert_eq!(o.interfaces, vec!["veth0"]);
        assert_eq!(o.mode().unwrap(), Mode::Generic);
        assert_eq!(o.cores, vec![1, 2], "unset flags keep the file's values");
        let bad = Options { xdp_mode: Some("turbo".into()), ..Options::default() };
        assert!(bad.mode().unwrap_err().contains("turbo"));
        assert!(toml::from_str::<Options>("interfacez = []").is_err(), "unknown keys are refused");
    }

    #[test]
    fn example_rules_load() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cfg =
            load_rules(&root.join("configs/example.rules"), NetState::default()).expect("the example rules apply");
        assert_eq!(cfg.services().count(), 3);
    }
}
