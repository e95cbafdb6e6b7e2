//! BGP announcements through BIRD (a control-plane thread; it never shares
//! a thread with a worker). xdpvs does not speak BGP: BIRD does, to the
//! routers, and xdpvs enables and disables BIRD static protocols over its
//! control socket ([`bird`]) as the director's health ([`health`]) says:
//!
//! - a "vips" protocol is enabled while the director can serve (every
//!   worker fresh and running the published rules, a virtual service, not
//!   drained by `xdpvsadm --drain`, not stopping, a new sync backup's bulk
//!   transfer in) and each of its VIPs has a real server of weight above 0;
//! - a "laddrs" protocol (FULLNAT local addresses, whose replies must come
//!   back here) is enabled while xdpvs runs, and disabled last at a stop.
//!
//! A planned stop ([`Handle::withdraw`]): the VIPs first, then the daemon
//! waits for their flows to leave (the routers move them), then the local
//! addresses, then the workers stop. What BIRD was told, and why, is in
//! the region (`BLOB_BGP`) for `xdpvsadm -L --bgp` and the metrics.

pub mod bird;
pub mod health;
pub mod watchdog;

use crate::worker::Published;
use bird::{Answer, Bird};
use health::{Facts, Worker};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xdpvs_api::msg::{BgpView, ProtocolView};
use xdpvs_api::shm::{monotonic_ns, Region, BLOB_BGP};

/// How often the announcer looks.
const EVERY: Duration = Duration::from_millis(50);
/// BIRD is told the wanted state again this often (a restarted BIRD starts
/// from its configuration).
const REASSERT: Duration = Duration::from_secs(2);
/// After BIRD could not be told, it is told again this soon.
const RETRY: Duration = Duration::from_millis(200);
/// A new backup's bulk transfer is in within this long (3 asks 400 ms
/// apart); xdpvs's first announcement waits as long.
const SETTLE: Duration = Duration::from_secs(2);

/// What a protocol announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vips,
    Laddrs,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Vips => "vips",
            Kind::Laddrs => "laddrs",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub kind: Kind,
    /// The VIPs it waits on (empty: every VIP).
    pub vips: Vec<IpAddr>,
}

/// The announcer's settings (the daemon's `bird_*` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub socket: PathBuf,
    pub protocols: Vec<Protocol>,
    pub drain_timeout: Duration,
}

impl Settings {
    /// From the options; none when no protocol is named.
    pub fn from_options(
        socket: Option<PathBuf>,
        vips: &[String],
        laddrs: &[String],
        drain_timeout: Option<u32>,
    ) -> Result<Option<Settings>, String> {
        let mut protocols = Vec::new();
        for v in vips {
            protocols.push(parse_protocol(v, Kind::Vips)?);
        }
        for l in laddrs {
            protocols.push(parse_protocol(l, Kind::Laddrs)?);
        }
        if protocols.is_empty() {
            return match socket {
                Some(s) => Err(format!(
                    "bird_socket {} names no protocol to drive: add bird_vips (and bird_laddrs for FULLNAT)",
                    s.display()
                )),
                None => Ok(None),
            };
        }
        if let Some(d) = protocols
            .iter()
            .enumerate()
            .find_map(|(i, p)| protocols[..i].iter().any(|q| q.name == p.name).then_some(&p.name))
        {
            return Err(format!("BIRD protocol '{d}' is named twice in bird_vips / bird_laddrs"));
        }
        Ok(Some(Settings {
            socket: socket.unwrap_or_else(|| PathBuf::from("/run/bird/bird.ctl")),
            protocols,
            drain_timeout: Duration::from_secs(u64::from(drain_timeout.unwrap_or(10))),
        }))
    }
}

/// "NAME" or "NAME=VIP,VIP" (vips only); NAME as BIRD spells symbols.
fn parse_protocol(text: &str, kind: Kind) -> Result<Protocol, String> {
    let (name, list) = match text.split_once('=') {
        Some((n, l)) => (n.trim(), Some(l)),
        None => (text.trim(), None),
    };
    let symbol = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !symbol {
        return Err(format!(
            "'{name}' is not a BIRD protocol name (a letter or _, then letters, digits, _), in bird_{} = \"{text}\"",
            kind.name()
        ));
    }
    let mut vips = Vec::new();
    if let Some(list) = list {
        if kind == Kind::Laddrs {
            return Err(format!("bird_laddrs \"{text}\": a local-address protocol takes no VIP list"));
        }
        for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            vips.push(a.parse().map_err(|_| format!("'{a}' in bird_vips \"{text}\" is not an IP address"))?);
        }
    }
    Ok(Protocol { name: name.to_string(), kind, vips })
}

/// Stages of a planned stop.
const RUNNING: u8 = 0;
const VIPS_WITHDRAWN: u8 = 1;
const ALL_WITHDRAWN: u8 = 2;

#[derive(Default)]
struct Shared {
    /// The stage asked for, and the stage BIRD confirmed.
    asked: AtomicU8,
    reached: AtomicU8,
    end: AtomicBool,
}

/// The running announcer.
pub struct Handle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    pub settings: Settings,
}

/// Starts the announcer thread.
pub fn spawn(settings: Settings, published: Arc<Published>, region: Arc<Region>) -> Result<Handle, String> {
    let shared = Arc::new(Shared::default());
    let mut a = Announcer::new(settings.clone(), published, region, shared.clone());
    let thread = std::thread::Builder::new()
        .name("xdpvs-bgp".into())
        .spawn(move || a.run())
        .map_err(|e| format!("cannot start the BGP announcer thread: {e}"))?;
    tracing::info!(
        "BGP through BIRD at {}: {}",
        settings.socket.display(),
        settings.protocols.iter().map(|p| format!("{} ({})", p.name, p.kind.name())).collect::<Vec<_>>().join(", ")
    );
    Ok(Handle { shared, thread: Some(thread), settings })
}

impl Handle {
    /// A planned stop's step: the VIPs (`all` false) or everything
    /// withdrawn; waits for BIRD to confirm, at most 2 s.
    pub fn withdraw(&self, all: bool) -> bool {
        let stage = if all { ALL_WITHDRAWN } else { VIPS_WITHDRAWN };
        self.shared.asked.fetch_max(stage, Ordering::AcqRel);
        let t = Instant::now();
        while self.shared.reached.load(Ordering::Acquire) < stage {
            if t.elapsed() > Duration::from_secs(2) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.end.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One protocol's state as the announcer keeps it.
struct Tracked {
    p: Protocol,
    view: ProtocolView,
    /// What BIRD last confirmed, and when it was told.
    confirmed: Option<bool>,
    told: Option<Instant>,
}

struct Announcer {
    socket: PathBuf,
    bird: Bird,
    tracked: Vec<Tracked>,
    published: Arc<Published>,
    region: Arc<Region>,
    shared: Arc<Shared>,
    /// The generation last seen published, since when.
    generation: (u64, Instant),
    /// Nothing is announced before this: xdpvs's first seconds (a checker
    /// starts the sync daemons), and a new sync backup's bulk transfer.
    settle_until: Instant,
    backup_seen: bool,
    view: BgpView,
    last_write: Option<Instant>,
}

impl Announcer {
    fn new(s: Settings, published: Arc<Published>, region: Arc<Region>, shared: Arc<Shared>) -> Self {
        let tracked = s
            .protocols
            .iter()
            .map(|p| Tracked {
                p: p.clone(),
                view: ProtocolView {
                    name: p.name.clone(),
                    kind: p.kind.name().into(),
                    vips: p.vips.clone(),
                    want: false,
                    announced: false,
                    reason: "starting".into(),
                    announcements: 0,
                    withdrawals: 0,
                },
                confirmed: None,
                told: None,
            })
            .collect();
        let g = published.generation.load(Ordering::Acquire);
        Self {
            socket: s.socket.clone(),
            bird: Bird::new(&s.socket),
            tracked,
            published,
            region,
            shared,
            generation: (g, Instant::now()),
            settle_until: Instant::now() + SETTLE,
            backup_seen: false,
            view: BgpView { socket: s.socket.display().to_string(), ..BgpView::default() },
            last_write: None,
        }
    }

    fn run(&mut self) {
        while !self.shared.end.load(Ordering::Acquire) {
            let asked = self.shared.asked.load(Ordering::Acquire);
            self.step(asked);
            std::thread::sleep(EVERY);
        }
    }

    /// One look: judge, tell BIRD what changed, publish the view.
    fn step(&mut self, asked: u8) {
        let snap = self.published.config.load_full();
        let cfg: &xdpvs_api::config::Config = &snap;
        let now = Instant::now();
        let g = self.published.generation.load(Ordering::Acquire);
        if g != self.generation.0 {
            self.generation = (g, now);
        }
        let backup = cfg.sync.backup.is_some();
        if backup && !self.backup_seen {
            self.settle_until = self.settle_until.max(now + SETTLE);
        }
        self.backup_seen = backup;
        let settling = (self.settle_until > now).then(|| self.settle_until - now);
        let workers = self.workers();
        let facts = Facts {
            cfg,
            workers: &workers,
            published: (g, now - self.generation.1),
            stopping: asked >= VIPS_WITHDRAWN,
            settling,
        };
        let director = health::director(&facts).and_then(|()| {
            if cfg.drained {
                Err("drained by hand (xdpvsadm --drain)".into())
            } else {
                Ok(())
            }
        });
        self.view.healthy = director.is_ok();
        self.view.reason = director.clone().err().unwrap_or_default();
        self.view.drained = cfg.drained;
        for i in 0..self.tracked.len() {
            let want = match self.tracked[i].p.kind {
                Kind::Vips => director.clone().and_then(|()| health::vips_served(cfg, &self.tracked[i].p.vips)),
                Kind::Laddrs if asked >= ALL_WITHDRAWN => Err("xdpvs is stopping".into()),
                Kind::Laddrs => match settling {
                    Some(left) => {
                        Err(format!("settling: {} ms more for the sync daemons' bulk transfer", left.as_millis()))
                    }
                    None => Ok(()),
                },
            };
            self.tell(i, want, now);
        }
        if asked > RUNNING && self.withdrawn_for(asked) {
            self.shared.reached.fetch_max(asked, Ordering::AcqRel);
        }
        self.publish(now);
    }

    /// Every protocol the stage withdraws is confirmed withdrawn.
    fn withdrawn_for(&self, stage: u8) -> bool {
        self.tracked
            .iter()
            .filter(|t| t.p.kind == Kind::Vips || stage >= ALL_WITHDRAWN)
            .all(|t| t.confirmed == Some(false))
    }

    /// Tells BIRD protocol `i`'s wanted state when it changed, or again
    /// after a while.
    fn tell(&mut self, i: usize, want: Result<(), String>, now: Instant) {
        let t = &mut self.tracked[i];
        let on = want.is_ok();
        let reason = want.err().unwrap_or_default();
        if t.view.want != on || t.view.reason != reason {
            if on {
                tracing::info!("BGP: announcing {} ({})", t.p.name, t.p.kind.name());
            } else if t.view.want || t.told.is_none() {
                tracing::info!("BGP: withdrawing {}: {reason}", t.p.name);
            }
        }
        t.view.want = on;
        t.view.reason = reason;
        let due = match (t.confirmed, t.told) {
            (_, None) => true,
            (Some(c), Some(at)) => c != on || now - at >= REASSERT,
            // After an error, again in a moment.
            (None, Some(at)) => now - at >= RETRY,
        };
        if !due {
            return;
        }
        t.told = Some(now);
        match self.bird.set(&t.p.name, on) {
            Ok(a) => {
                if a == Answer::Done || t.confirmed.is_none() {
                    if on {
                        t.view.announcements += u64::from(a == Answer::Done);
                    } else {
                        t.view.withdrawals += u64::from(a == Answer::Done);
                    }
                }
                t.confirmed = Some(on);
                t.view.announced = on;
            }
            Err(e) => {
                t.confirmed = None;
                t.view.announced = false;
                self.view.errors += 1;
                if self.view.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!("BGP: {e}");
                }
                self.view.last_error = Some(e);
            }
        }
    }

    /// Each worker's generation and silence, from its stats area.
    fn workers(&self) -> Vec<Worker> {
        let now = monotonic_ns();
        (0..self.region.layout().ncores)
            .map(|c| match self.region.read_core(c) {
                Ok(r) => Worker {
                    generation: r.generation,
                    silent: Duration::from_nanos(now.saturating_sub(r.published_ns)),
                },
                Err(_) => Worker { generation: 0, silent: Duration::MAX },
            })
            .collect()
    }

    /// The view into the region when it changed, and every second.
    fn publish(&mut self, now: Instant) {
        let protocols: Vec<ProtocolView> = self.tracked.iter().map(|t| t.view.clone()).collect();
        let changed = protocols != self.view.protocols;
        self.view.protocols = protocols;
        if changed || self.last_write.is_none_or(|t| now - t >= Duration::from_secs(1)) {
            self.last_write = Some(now);
            if let Err(e) = self.region.write_blob(BLOB_BGP, &serde_json::to_vec(&self.view).unwrap_or_default()) {
                tracing::warn!("BGP view for {}: {e}", self.socket.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_and_vip_lists_are_checked() {
        let s = Settings::from_options(
            None,
            &["vips".into(), "web=198.18.10.10, 2001:db8::10".into()],
            &["laddrs".into()],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.socket, PathBuf::from("/run/bird/bird.ctl"));
        assert_eq!(s.protocols.len(), 3);
        assert_eq!(
            s.protocols[1].vips,
            vec!["198.18.10.10".parse::<IpAddr>().unwrap(), "2001:db8::10".parse().unwrap()]
        );
        assert_eq!(s.protocols[2].kind, Kind::Laddrs);
        assert_eq!(s.drain_timeout, Duration::from_secs(10));
        assert_eq!(Settings::from_options(None, &[], &[], None), Ok(None));
        let err = |v: &[&str], l: &[&str]| {
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            let l: Vec<String> = l.iter().map(|s| s.to_string()).collect();
            Settings::from_options(None, &v, &l, None).unwrap_err()
        };
        assert!(err(&["9vips"], &[]).contains("'9vips' is not a BIRD protocol name"));
        assert!(err(&["v ips"], &[]).contains("not a BIRD protocol name"));
        assert!(err(&["web=198.18.10.x"], &[]).contains("'198.18.10.x'"));
        assert!(err(&[], &["l=198.19.1.1"]).contains("takes no VIP list"));
        assert!(err(&["vips"], &["vips"]).contains("named twice"));
        assert!(Settings::from_options(Some("/run/b.ctl".into()), &[], &[], None).unwrap_err().contains("bird_vips"));
    }
}
