//! The checker's one loop: verdicts in, health kept per real server, and on
//! every change of who is in a pool the desired configuration rendered and
//! converged onto the daemon, logged in keepalived's words (`Removing
//! service [198.19.0.11]:tcp:80 from VS [198.18.0.10]:tcp:80`), the
//! `notify_up`/`notify_down` script run. SIGHUP re-reads the file: checks
//! whose server and settings are unchanged keep running and keep their
//! health; only the difference reaches the daemon. A restarted daemon
//! (a new region, looked for every second) gets the checker's services at
//! once, and every 5 s the daemon is told again (a no-op when nothing
//! changed: its own SIGHUP may have dropped them). On exit the
//! configuration stays in force.

use crate::alert;
use crate::conf::{self, model::Conf, model::Head, model::VirtualServer};
use crate::desired::{self, Health, Quorums, RsKey};
use crate::director::Director;
use crate::health::{self, Verdict};
use crate::status::{self, Row};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use xdpvs_api::config::{Proto, ServiceKey};

/// A check's latest verdict (`None`: none yet).
type Latest = Option<Result<Option<u32>, String>>;

/// One running check: its settings (to tell a changed one on reload) and task.
struct Running {
    check: conf::model::Check,
    task: JoinHandle<()>,
}

pub struct Manager {
    path: PathBuf,
    director: Director,
    conf: Conf,
    /// Latest verdict of every check of every real server.
    verdicts: HashMap<RsKey, Vec<Latest>>,
    health: HashMap<RsKey, Health>,
    quorums: Quorums,
    running: HashMap<(RsKey, usize), Running>,
    /// The services the checker made (removed when the file drops them).
    owned: HashSet<ServiceKey>,
    tx: mpsc::Sender<Verdict>,
    rx: mpsc::Receiver<Verdict>,
    places: HashMap<Head, String>,
    instance: String,
    /// keepalived's `-i`: which `@ID` lines apply.
    config_id: String,
    /// Every check's status row, and whether it changed since last written.
    rows: HashMap<(RsKey, usize), Row>,
    dirty: bool,
    /// `ha_suspend` virtual servers whose address this director does not
    /// hold (the VRRP backup): their checks' verdicts wait.
    suspended: HashSet<Head>,
    /// Seconds since the daemon was last told (every 5 s it is told again:
    /// a restarted daemon, or a SIGHUP of its own rules file, gets the
    /// checker's services back), and the last refusal said.
    since_told: u32,
    last_error: Option<String>,
}

impl Manager {
    pub fn new(
        path: PathBuf,
        config_id: String,
        instance: String,
        director: Director,
        loaded: conf::Loaded,
    ) -> Manager {
        let (tx, rx) = mpsc::channel(4096);
        let mut m = Manager {
            path,
            director,
            conf: Conf::default(),
            verdicts: HashMap::new(),
            health: HashMap::new(),
            quorums: Quorums::new(),
            running: HashMap::new(),
            owned: HashSet::new(),
            tx,
            rx,
            places: HashMap::new(),
            instance,
            config_id,
            rows: HashMap::new(),
            dirty: true,
            suspended: HashSet::new(),
            since_told: 0,
            last_error: None,
        };
        m.adopt(&loaded.conf);
        m.install(loaded);
        m
    }

    /// Runs until SIGTERM or SIGINT.
    pub async fn run(mut self) -> Result<(), String> {
        let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        self.ha_suspend();
        self.follow_sync();
        self.follow_timeouts();
        self.converge().await;
        loop {
            tokio::select! {
                Some(v) = self.rx.recv() => self.verdict(v).await,
                _ = hup.recv() => self.reload().await,
                _ = tick.tick() => {
                    self.ha_suspend();
                    self.follow_sync();
                    self.follow_timeouts();
                    self.write_status();
                    self.since_told += 1;
                    if self.director.reopen() {
                        tracing::info!("xdpvs restarted: giving it the checker's services");
                        self.converge().await;
                    } else if self.since_told >= 5 {
                        self.converge().await;
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        status::remove(&self.instance);
        self.omega().await;
        tracing::info!("Stopping: the configuration stays in force on the director");
        Ok(())
    }

    /// A restarted checker starts from what the daemon runs: a real server
    /// in its pool at a weight is up, one missing (or at weight 0 under
    /// `inhibit_on_failure`) from a service that exists is down. No blip.
    fn adopt(&mut self, conf: &Conf) {
        let Ok(view) = self.director.view() else { return };
        for vs in &conf.services {
            for key in desired::service_keys(conf, vs) {
                let Some(svc) = view.services.iter().find(|s| s.spec.key == key) else { continue };
                self.owned.insert(key);
                for r in &vs.reals {
                    let d = svc.dests.iter().find(|d| d.spec.addr == r.addr && (d.spec.port == r.port || r.port == 0));
                    let up = d.is_some_and(|d| d.spec.weight > 0 || (r.weight == 0 && !r.timing.inhibit_on_failure));
                    let weight = d.map(|d| d.spec.weight).filter(|&w| up && w != r.weight);
                    self.health.insert((vs.head.clone(), r.addr, r.port), Health { up, weight });
                }
            }
        }
    }

    /// Takes `loaded` as the configuration: checks started for what is new
    /// or changed, stopped for what is gone, kept for the rest.
    fn install(&mut self, loaded: conf::Loaded) {
        if let Err(e) = health::tls::configure(loaded.conf.ssl.as_ref()) {
            tracing::warn!("{e}");
        }
        let mut want: HashMap<(RsKey, usize), (VirtualServer, conf::model::RealServer, conf::model::Check)> =
            HashMap::new();
        self.places.clear();
        for (vs, place) in loaded.conf.services.iter().zip(loaded.places.iter().cloned()) {
            self.places.insert(vs.head.clone(), place);
            for r in &vs.reals {
                for (i, c) in r.checks.iter().enumerate() {
                    want.insert(((vs.head.clone(), r.addr, r.port), i), (vs.clone(), r.clone(), c.clone()));
                }
            }
        }
        self.running.retain(|k, run| {
            let keep = want.get(k).is_some_and(|(_, _, c)| *c == run.check);
            if !keep {
                run.task.abort();
            }
            keep
        });
        let keys: HashSet<RsKey> = want.keys().map(|(k, _)| k.clone()).collect();
        let all: HashSet<RsKey> = loaded
            .conf
            .services
            .iter()
            .flat_map(|vs| vs.reals.iter().map(move |r| (vs.head.clone(), r.addr, r.port)))
            .collect();
        self.verdicts.retain(|k, _| keys.contains(k));
        self.health.retain(|k, _| all.contains(k));
        // A server the checker has no word on yet starts as keepalived starts
        // it: up, or down under `alpha`.
        for vs in &loaded.conf.services {
            for r in &vs.reals {
                let up = !r.timing.alpha || r.checks.is_empty();
                self.health.entry((vs.head.clone(), r.addr, r.port)).or_insert(Health { up, weight: None });
            }
        }
        self.rows.retain(|k, _| want.contains_key(k));
        for (k, (vs, r, c)) in &want {
            self.rows.entry(k.clone()).or_insert_with(|| Row {
                virtual_server: vs_name(vs),
                real_server: health::server_name(r.addr, proto_word(vs.proto), r.port),
                check: kind_name(&c.kind).into(),
                state: "unknown".into(),
                since: status::now(),
                failures_in_row: 0,
                last: String::new(),
            });
        }
        self.dirty = true;
        for (k, (vs, r, c)) in want {
            let n = r.checks.len();
            let v = self.verdicts.entry(k.0.clone()).or_default();
            v.resize(n, None);
            if self.running.contains_key(&k) {
                continue;
            }
            let t = health::target(&vs, &r, &c);
            let task = tokio::spawn(health::run(k.0.clone(), k.1, c.clone(), t, self.tx.clone()));
            self.running.insert(k, Running { check: c, task });
        }
        self.conf = loaded.conf;
    }

    async fn reload(&mut self) {
        let loaded = conf::load_as(&self.path, &self.config_id);
        for w in loaded.warnings() {
            tracing::info!("{w}");
        }
        if !loaded.ok() {
            for e in loaded.errors() {
                tracing::warn!("{e}");
            }
            tracing::warn!("Reload of {} refused: the running configuration stays", self.path.display());
            return;
        }
        tracing::info!("Reloading {}", self.path.display());
        self.install(loaded);
        self.converge().await;
    }

    async fn verdict(&mut self, v: Verdict) {
        if self.suspended.contains(&v.rs.0) {
            return;
        }
        let Some(was) = self.verdicts.get(&v.rs).and_then(|s| s.get(v.check)).cloned() else { return };
        self.log_verdict(&v, was.as_ref().map(|r| r.is_ok()));
        self.note_row(&v);
        let Some(slots) = self.verdicts.get_mut(&v.rs) else { return };
        slots[v.check] = Some(v.result.clone());
        let up = slots.iter().all(|s| !matches!(s, Some(Err(_))));
        let weight =
            slots.iter().filter_map(|s| s.as_ref().and_then(|r| r.as_ref().ok().copied().flatten())).next_back();
        let old = self.health.get(&v.rs).copied();
        let new = Health { up, weight };
        self.mail_check(&v, !matches!(was, Some(Err(_))), old.is_none_or(|o| o.up), up);
        if old != Some(new) {
            self.health.insert(v.rs.clone(), new);
            if old.map(|o| o.up) != Some(up) {
                self.announce(&v.rs, up);
            }
            self.converge().await;
        }
    }

    fn note_row(&mut self, v: &Verdict) {
        let Some(row) = self.rows.get_mut(&(v.rs.clone(), v.check)) else { return };
        let state = if v.result.is_ok() { "up" } else { "down" };
        if row.state != state {
            row.state = state.into();
            row.since = status::now();
        }
        row.failures_in_row = if v.result.is_ok() { 0 } else { row.failures_in_row + 1 };
        row.last = match &v.result {
            Ok(Some(w)) => format!("ok (weight {w})"),
            Ok(None) => "ok".into(),
            Err(e) => e.clone(),
        };
        self.dirty = true;
    }

    /// `ha_suspend`: a virtual server's checks count only while its address
    /// is on one of this director's interfaces (keepalived's words when that
    /// changes).
    fn ha_suspend(&mut self) {
        let local = local_addrs();
        for vs in &self.conf.services {
            let Head::Addr(a, _) = vs.head else { continue };
            if !vs.ha_suspend {
                continue;
            }
            let held = local.contains(&a);
            if held && self.suspended.remove(&vs.head) {
                tracing::info!("Activating healthchecker for service {}", vs_name(vs));
            } else if !held && self.suspended.insert(vs.head.clone()) {
                tracing::info!("Suspending healthchecker for service {}", vs_name(vs));
            }
        }
    }

    /// `lvs_sync_daemon`: the sync daemons as keepalived runs them — with a
    /// VRRP instance, the master daemon while this director holds the
    /// instance's addresses and the backup daemon otherwise; without one,
    /// both. Checked every second against what the daemon runs, so a missed
    /// change or a restarted xdpvs is put right.
    fn follow_sync(&mut self) {
        use xdpvs_api::sync::Role;
        let Some(d) = self.conf.sync_daemon.clone() else { return };
        let spec = conf::vrrp::resolved(&d, &self.conf.vrrp);
        let local = local_addrs();
        let want_master = match d.instance.as_ref().and_then(|i| self.conf.vrrp.get(i)) {
            None => true,
            Some(inst) => !inst.addrs.is_empty() && inst.addrs.iter().all(|a| local.contains(a)),
        };
        let want_backup = d.instance.is_none() || !want_master;
        let Ok(view) = self.director.sync_view() else { return };
        for (role, want, have) in [
            (Role::Master, want_master, view.master.map(|v| v.spec)),
            (Role::Backup, want_backup, view.backup.map(|v| v.spec)),
        ] {
            let right = if want { have.as_ref() == Some(&spec) } else { have.is_none() };
            if right {
                continue;
            }
            if have.is_some() {
                if let Err(e) = self.director.command(xdpvs_api::admin::Command::StopDaemon(role)) {
                    tracing::warn!("lvs_sync_daemon: stopping the {} sync daemon: {e}", role.name());
                    continue;
                }
            }
            if want {
                let state = d
                    .instance
                    .as_deref()
                    .map(|i| format!(" (VRRP instance {i} is {})", if want_master { "MASTER" } else { "BACKUP" }))
                    .unwrap_or_default();
                match self.director.command(xdpvs_api::admin::Command::StartDaemon(role, spec.clone())) {
                    Ok(()) => tracing::info!(
                        "Starting IPVS sync daemon {} on {}, syncid {}{state}",
                        role.name(),
                        spec.iface,
                        spec.syncid
                    ),
                    Err(e) => tracing::warn!("lvs_sync_daemon: starting the {} sync daemon: {e}", role.name()),
                }
            } else {
                tracing::info!("Stopped IPVS sync daemon {}", role.name());
            }
        }
    }

    /// `lvs_timeouts`: the daemon's timeouts made what the file says
    /// (what it leaves unset stays), checked every second like the sync
    /// daemons, so a restarted xdpvs gets them back.
    fn follow_timeouts(&mut self) {
        let Some(want) = self.conf.lvs_timeouts else { return };
        let Ok(view) = self.director.view() else { return };
        let have = [view.timeouts.tcp, view.timeouts.tcpfin, view.timeouts.udp];
        if want.iter().zip(have).all(|(&w, h)| w == 0 || w == h) {
            return;
        }
        let [tcp, fin, udp] = want;
        match self.director.command(xdpvs_api::admin::Command::SetTimeouts(tcp, fin, udp)) {
            Ok(()) => tracing::info!("Set LVS timeouts: tcp {tcp} tcpfin {fin} udp {udp} (0: unchanged)"),
            Err(e) => tracing::warn!("lvs_timeouts: {e}"),
        }
    }

    fn write_status(&mut self) {
        if !self.dirty {
            return;
        }
        let mut checks: Vec<Row> = self.rows.values().cloned().collect();
        checks.sort_by(|a, b| {
            (&a.virtual_server, &a.real_server, &a.check).cmp(&(&b.virtual_server, &b.real_server, &b.check))
        });
        let s = status::Status {
            pid: std::process::id(),
            config: self.path.display().to_string(),
            written: status::now(),
            checks,
        };
        match status::write(&self.instance, &s) {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::warn!("xdpvs-checker: cannot write the status: {e}"),
        }
    }

    /// A failure is logged when the check turns bad (every time with
    /// `log_all_failures`), a success when it turns good again.
    fn log_verdict(&self, v: &Verdict, was_ok: Option<bool>) {
        match &v.result {
            Err(why) => {
                let log_all = self.check_of(&v.rs, v.check).is_some_and(|c| c.timing.log_all_failures);
                if was_ok != Some(false) || log_all {
                    tracing::warn!("{why}");
                }
            }
            Ok(_) if was_ok == Some(false) => {
                if let Some(t) = self.target_name(&v.rs, v.check) {
                    tracing::info!("{} connection to {t} success.", self.kind_word(&v.rs, v.check));
                }
            }
            Ok(_) => {}
        }
    }

    /// keepalived's mail for a checker that passed or failed when it had
    /// not (`checker_was_up`), its real server alive before and after
    /// (`rs_was`, `rs_is`): sent when the server alerts, and its state
    /// changed or every checker's change is mailed.
    fn mail_check(&self, v: &Verdict, checker_was_up: bool, rs_was: bool, rs_is: bool) {
        let a = &self.conf.alerts;
        if !a.on() || checker_was_up == v.result.is_ok() || (a.no_checker_emails && rs_was == rs_is) {
            return;
        }
        let Some((vs, r)) = self.find(&v.rs) else { return };
        let Some(body) = self.check_of(&v.rs, v.check).and_then(|c| alert::check_body(&c.kind, v.result.is_ok()))
        else {
            return;
        };
        if a.real_server(r.smtp_alert) {
            let who = health::server_name(r.addr, proto_word(vs.proto), r.port);
            alert::spawn(a, alert::real_server(a, &who, &vs_name(vs), rs_is, body));
        }
    }

    /// Logs the pool change and runs the server's notify script.
    fn announce(&self, rs: &RsKey, up: bool) {
        let Some((vs, r)) = self.find(rs) else { return };
        let proto = proto_word(vs.proto);
        let who = health::server_name(r.addr, proto, r.port);
        let what = match (up, r.timing.inhibit_on_failure) {
            (true, false) => "Adding service",
            (true, true) => "Enabling service",
            (false, false) => "Removing service",
            (false, true) => "Disabling service",
        };
        let dir = if up { "to" } else { "from" };
        tracing::info!("{what} {who} {dir} VS {}", vs_name(vs));
        let n = if up { &r.notify_up } else { &r.notify_down };
        if let Some(n) = n {
            match health::script(&n.script, n.user.as_deref(), n.group.as_deref()) {
                Ok(mut cmd) => {
                    tokio::spawn(async move {
                        let _ = cmd.status().await;
                    });
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }

    async fn converge(&mut self) {
        let places = self.places.clone();
        let before = self.quorums.clone();
        let (cfg, errors) = desired::render(&self.conf, &self.health, &mut self.quorums, |vs| {
            places.get(&vs.head).cloned().unwrap_or_default()
        });
        self.quorum_changes(&before);
        for e in errors {
            tracing::warn!("{e}");
        }
        let keys: HashSet<ServiceKey> = cfg.services().map(|(_, s)| s.spec.key).collect();
        let owned: Vec<ServiceKey> = self.owned.union(&keys).copied().collect();
        let rules = xdpvs_api::admin::save(&cfg);
        self.since_told = 0;
        match self.director.converge(owned, rules) {
            Ok(notes) => {
                for n in notes.lines().filter(|l| !l.is_empty()) {
                    tracing::info!("xdpvs: {n}");
                }
                if self.last_error.take().is_some() {
                    tracing::info!("xdpvs took the checker's configuration again");
                }
                self.owned = keys;
            }
            // Said once, not every 5 s.
            Err(e) if self.last_error.as_deref() != Some(e.as_str()) => {
                tracing::warn!("xdpvs refused the checker's configuration: {e}");
                self.last_error = Some(e);
            }
            Err(_) => {}
        }
    }

    /// `omega`: at shutdown, the virtual server's real servers that are up
    /// get their `notify_down`, and a held quorum its `quorum_down` (waited
    /// for, 5 s at most).
    async fn omega(&self) {
        let mut runs = Vec::new();
        let mut mails = Vec::new();
        let a = &self.conf.alerts;
        for vs in self.conf.services.iter().filter(|v| v.omega) {
            for r in &vs.reals {
                let up = self.health.get(&(vs.head.clone(), r.addr, r.port)).is_some_and(|h| h.up);
                if let Some(n) = r.notify_down.as_ref().filter(|_| up) {
                    runs.push(health::script(&n.script, n.user.as_deref(), n.group.as_deref()));
                }
                if up && a.on() && a.real_server(r.smtp_alert) {
                    let who = health::server_name(r.addr, proto_word(vs.proto), r.port);
                    mails.push(alert::real_server(a, &who, &vs_name(vs), false, "=> Shutting down <="));
                }
            }
            if let Some(q) = vs.quorum_down.as_ref().filter(|_| self.quorums.get(&vs.head).copied().unwrap_or(true)) {
                runs.push(health::script(q, None, None));
            }
        }
        let all = async {
            for m in &mails {
                if let Err(e) = alert::deliver(a, m).await {
                    tracing::warn!("{e}");
                }
            }
            for r in runs {
                match r {
                    Ok(mut cmd) => {
                        let _ = cmd.status().await;
                    }
                    Err(e) => tracing::warn!("{e}"),
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), all).await;
    }

    /// keepalived's quorum lines, scripts and sorry-server lines for every
    /// virtual server whose quorum came or went since `before`.
    fn quorum_changes(&self, before: &Quorums) {
        for vs in &self.conf.services {
            let now = self.quorums.get(&vs.head).copied().unwrap_or(true);
            if before.get(&vs.head).copied().unwrap_or(true) == now {
                continue;
            }
            let (q, h, live, name) = (vs.quorum, vs.hysteresis, desired::live_weight(vs, &self.health), vs_name(vs));
            if now {
                tracing::info!("Gained quorum {q}+{h}={} <= {live} for VS {name}", q + h);
            } else {
                tracing::warn!("Lost quorum {q}-{h} > {live} for VS {name}");
            }
            let a = &self.conf.alerts;
            if a.on() && a.virtual_server(vs.smtp_alert) {
                let body = if now {
                    format!("=> Gained quorum {q}+{h}={} <= {live} <=", q + h)
                } else {
                    format!("=> Lost quorum {q}+{h}={} <= {live} <=", q.saturating_sub(h))
                };
                alert::spawn(a, alert::virtual_server(a, &name, now, &body));
            }
            if let Some(s) = &vs.sorry {
                let who = health::server_name(s.addr, proto_word(vs.proto), s.port);
                if now {
                    tracing::info!("Removing sorry server {who} from VS {name}");
                } else {
                    tracing::info!("Adding sorry server {who} to VS {name}");
                }
            }
            if let Some(script) = if now { &vs.quorum_up } else { &vs.quorum_down } {
                let script = script.clone();
                tokio::spawn(async move {
                    let _ = tokio::process::Command::new("/bin/sh").arg("-c").arg(&script).status().await;
                });
            }
        }
    }

    fn find(&self, rs: &RsKey) -> Option<(&VirtualServer, &conf::model::RealServer)> {
        let vs = self.conf.services.iter().find(|v| v.head == rs.0)?;
        Some((vs, vs.reals.iter().find(|r| r.addr == rs.1 && r.port == rs.2)?))
    }

    fn check_of(&self, rs: &RsKey, i: usize) -> Option<&conf::model::Check> {
        self.find(rs)?.1.checks.get(i)
    }

    fn target_name(&self, rs: &RsKey, i: usize) -> Option<String> {
        let (vs, r) = self.find(rs)?;
        Some(health::target(vs, r, r.checks.get(i)?).name)
    }

    fn kind_word(&self, rs: &RsKey, i: usize) -> &'static str {
        match self.check_of(rs, i).map(|c| &c.kind) {
            Some(conf::model::CheckKind::Http { .. }) => "HTTP",
            Some(conf::model::CheckKind::Misc { .. }) => "Misc",
            Some(conf::model::CheckKind::Udp { .. }) => "UDP",
            Some(conf::model::CheckKind::Ping) => "ICMP",
            Some(conf::model::CheckKind::Dns { .. }) => "DNS",
            Some(conf::model::CheckKind::File { .. }) => "FILE",
            Some(conf::model::CheckKind::Smtp { .. }) => "SMTP",
            _ => "TCP",
        }
    }
}

/// The checker's keyword.
fn kind_name(k: &conf::model::CheckKind) -> &'static str {
    match k {
        conf::model::CheckKind::Tcp => "TCP_CHECK",
        conf::model::CheckKind::Http { tls: false, .. } => "HTTP_GET",
        conf::model::CheckKind::Http { tls: true, .. } => "SSL_GET",
        conf::model::CheckKind::Misc { .. } => "MISC_CHECK",
        conf::model::CheckKind::Udp { .. } => "UDP_CHECK",
        conf::model::CheckKind::Ping => "PING_CHECK",
        conf::model::CheckKind::Dns { .. } => "DNS_CHECK",
        conf::model::CheckKind::File { .. } => "FILE_CHECK",
        conf::model::CheckKind::Smtp { .. } => "SMTP_CHECK",
        conf::model::CheckKind::Unsupported(k) => k,
    }
}

fn proto_word(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// `[198.18.0.10]:tcp:80`, `FWM 99`, `[group NAME]`, as keepalived names a
/// virtual server.
pub fn vs_name(vs: &VirtualServer) -> String {
    match &vs.head {
        Head::Addr(a, p) => health::server_name(*a, proto_word(vs.proto), *p),
        Head::Fwmark(m) => format!("FWM {m}"),
        Head::Group(g) => format!("[{g}]:{}", proto_word(vs.proto)),
    }
}

/// Every address on this host's interfaces.
fn local_addrs() -> HashSet<std::net::IpAddr> {
    nix::ifaddrs::getifaddrs()
        .map(|it| {
            it.filter_map(|i| i.address)
                .filter_map(|a| {
                    a.as_sockaddr_in()
                        .map(|s| std::net::IpAddr::V4(s.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|s| std::net::IpAddr::V6(s.ip())))
                })
                .collect()
        })
        .unwrap_or_default()
}
