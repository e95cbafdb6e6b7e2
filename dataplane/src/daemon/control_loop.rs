//! The control thread after startup: one method per duty, run in turn by
//! [`ControlLoop::run`] each time the region's doorbell rings (a command, a
//! worker asking for a next hop, a kernel event) or 20 ms pass.
//!
//! - commands: each validated on a copy, published before it is answered
//!   (its generation goes with the answer);
//! - the kernel: next hops the workers asked for are handed to the kernel's
//!   resolution; its link, address, route and neighbour events (the netlink
//!   thread's flag) make it re-read the network state, so a learned
//!   neighbour reaches the workers at once;
//! - SIGHUP: the rules file re-read, only the difference applied;
//! - every second, while an fwmark service follows netfilter, the MARK
//!   rules re-read and its matches kept equal to what they mark;
//! - every 2 s, IPVS's rate estimator; every second, dead clients' slots.

use super::startup::{resolve_servers, Running};
use crate::control::{check_ifaces, Control};
use crate::netlink;
use crate::xsk::steer::owned_keys;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdpvs_api::admin::reconcile;
use xdpvs_api::msg::{FAILED, OK};
use xdpvs_api::shm::{BLOB_RATES, BLOB_VIEW};

/// A drain ends when no client packet has come for this long.
const QUIET: Duration = Duration::from_secs(1);
/// After the local addresses are withdrawn, forwarding goes on this long.
const LADDR_GRACE: Duration = Duration::from_secs(1);

pub struct ControlLoop {
    r: Running,
    control: Control,
    /// Something the workers run changed: publish it.
    changed: bool,
    /// Real servers changed: ask for their next hops now.
    servers_changed: bool,
    last_resolve: Instant,
    last_estimate: Instant,
    last_reclaim: Instant,
    last_marks: Instant,
    last_hold: Instant,
    /// The MARK rules left out, as last said (said again only when they change).
    mark_warnings: Vec<String>,
    bell: u32,
}

impl ControlLoop {
    pub fn new(r: Running) -> Self {
        let now = Instant::now();
        let control = Control::new(r.names.clone());
        let c = ControlLoop {
            r,
            control,
            changed: false,
            servers_changed: true,
            last_resolve: now,
            last_estimate: now,
            last_reclaim: now,
            last_marks: now - Duration::from_secs(1),
            last_hold: now,
            mark_warnings: Vec::new(),
            bell: 0,
        };
        c.show();
        c
    }

    pub fn run(&mut self) {
        while !self.r.signals.stop.load(Ordering::Relaxed) {
            self.r.region.wait_doorbell(&mut self.bell, Duration::from_millis(20));
            self.r.region.beat();
            self.answer_commands();
            self.reclaim_slots();
            self.estimate_rates();
            self.follow_kernel();
            self.follow_marks();
            self.keep_holding();
            let reloaded = self.reload_on_hup();
            if std::mem::take(&mut self.changed) {
                self.publish();
                if let Some(p) = reloaded {
                    // Said once it is published: workers adopt it before their next burst.
                    tracing::info!("reloaded {} (generation {})", p.display(), self.r.cfg.generation);
                }
            }
        }
    }

    /// Stops the workers and detaches every XDP program, or, with a
    /// handover, saves the sessions and leaves the programs holding.
    pub fn shutdown(mut self) {
        self.withdraw_and_drain();
        self.r.signals.workers.store(true, Ordering::Relaxed);
        let hold = self.r.opts.handover();
        if let Some(h) = hold {
            self.hold(h);
            for s in &mut self.r.steers {
                s.keep = true;
            }
        }
        let cores: Vec<_> = self.r.workers.into_iter().filter_map(|h| h.join().ok()).collect();
        if hold.is_some() {
            tracing::info!("stopped forwarding at {:.6} (unix time)", super::startup::unix_now());
        }
        self.r.sync_shared.stop.store(true, Ordering::Relaxed);
        let _ = self.r.sync.join();
        let _ = self.r.watcher.join();
        if let Some(h) = hold {
            let path = self.r.opts.state_file();
            match super::handover::save(&path, &cores) {
                Ok(n) => {
                    let (cur, prev) = crate::sync::journal::paths(&path);
                    let _ = std::fs::remove_file(cur);
                    let _ = std::fs::remove_file(prev);
                    tracing::info!(
                    "{n} session(s) saved to {}; the XDP programs drop owned traffic for up to {} s until the next xdpvs",
                    path.display(),
                    h.as_secs()
                    )
                }
                Err(e) => tracing::error!("{e} (the crash journal stays for the next xdpvs)"),
            }
            drop(self.r.steers);
            return;
        }
        drop(self.r.steers);
        tracing::info!("stopped; XDP programs detached");
    }

    /// A planned stop with BGP: the VIPs withdrawn, their flows let go
    /// (the routers move them to the other directors; what still comes is
    /// forwarded) until no client packet has come for a second or the
    /// drain timeout, then the local addresses withdrawn. Commands are
    /// answered meanwhile.
    fn withdraw_and_drain(&mut self) {
        let Some(a) = self.r.announce.as_ref() else { return };
        let (timeout, t0) = (a.settings.drain_timeout, Instant::now());
        if !a.withdraw(false) {
            tracing::warn!("BGP: BIRD did not confirm the VIPs' withdrawal; draining anyway");
        }
        tracing::info!("BGP: VIPs withdrawn; draining for at most {} s", timeout.as_secs());
        let (mut last, mut quiet_since) = (self.client_packets(), Instant::now());
        while t0.elapsed() < timeout && quiet_since.elapsed() < QUIET {
            std::thread::sleep(Duration::from_millis(20));
            self.r.region.beat();
            self.answer_commands();
            let now = self.client_packets();
            if now != last {
                (last, quiet_since) = (now, Instant::now());
            }
        }
        let Some(a) = self.r.announce.as_ref() else { return };
        if a.withdraw(true) {
            // Withdrawn: the watchdog has nothing left to do.
            if let Some(mut w) = self.r.watchdog.take() {
                let _ = w.kill();
                let _ = w.wait();
            }
        } else {
            tracing::warn!("BGP: BIRD did not confirm the local addresses' withdrawal (the watchdog will try)");
        }
        // Forwarding goes on while the routers take the withdrawal (BGP
        // updates reach a switch's FIB in milliseconds to a second): replies
        // already on their way here still find their sessions.
        let t1 = Instant::now();
        while t1.elapsed() < LADDR_GRACE {
            std::thread::sleep(Duration::from_millis(20));
            self.r.region.beat();
            self.answer_commands();
        }
        tracing::info!("BGP: drained in {:.1} s; stopping", t0.elapsed().as_secs_f64());
    }

    /// Client packets the services received so far (every core).
    fn client_packets(&self) -> u64 {
        (0..self.r.region.layout().ncores)
            .filter_map(|c| self.r.region.read_core(c).ok())
            .flat_map(|r| r.services.into_iter().map(|s| s.stats.inpkts))
            .sum()
    }

    /// A handover's hold, kept `h` ahead of now: should xdpvs die, its
    /// programs drop owned traffic for that long, then give it to the kernel.
    fn hold(&mut self, h: Duration) {
        let until = xdpvs_api::shm::monotonic_ns() + h.as_nanos() as u64;
        for s in &mut self.r.steers {
            if let Err(e) = s.hold_until(until) {
                tracing::info!("{e}");
            }
        }
    }

    /// Commands, one at a time.
    fn answer_commands(&mut self) {
        while let Some((slot, req)) = self.r.region.next_request() {
            match self.control.handle(&mut self.r.cfg, &self.r.region, &req) {
                Ok(o) => {
                    if o.changed {
                        self.servers_changed = true;
                        self.publish();
                    } else {
                        self.show();
                    }
                    self.r.region.answer(slot, OK, o.text.as_bytes(), self.r.cfg.generation);
                }
                Err(e) => self.r.region.answer(slot, FAILED, e.as_bytes(), self.r.cfg.generation),
            }
        }
    }

    /// Every second, with a handover: the hold moves on.
    fn keep_holding(&mut self) {
        let Some(h) = self.r.opts.handover() else { return };
        if self.last_hold.elapsed() >= Duration::from_secs(1) {
            self.last_hold = Instant::now();
            self.hold(h);
        }
    }

    fn reclaim_slots(&mut self) {
        if self.last_reclaim.elapsed() >= Duration::from_secs(1) {
            self.last_reclaim = Instant::now();
            self.r.region.reclaim();
        }
    }

    fn estimate_rates(&mut self) {
        if self.last_estimate.elapsed() >= Duration::from_secs(2) {
            self.last_estimate += Duration::from_secs(2);
            match self.control.estimate(&self.r.cfg, &self.r.region) {
                Ok(rates) => {
                    let bytes = serde_json::to_vec(&rates).unwrap_or_default();
                    let _ = self.r.region.write_blob(BLOB_RATES, &bytes);
                }
                Err(e) => tracing::warn!("rate estimate skipped: {e}"),
            }
        }
    }

    /// Next hops asked for, and the kernel's news.
    fn follow_kernel(&mut self) {
        while let Ok(a) = self.r.resolve.try_recv() {
            netlink::resolve(a);
        }
        if self.servers_changed || self.last_resolve.elapsed() >= Duration::from_secs(1) {
            self.servers_changed = false;
            self.last_resolve = Instant::now();
            resolve_servers(&self.r.cfg, &self.r.net);
        }
        if self.r.kernel_changed.swap(false, Ordering::Acquire) {
            match self.r.kernel.refresh(&mut self.r.net) {
                Ok(true) => {
                    self.r.cfg.bump_generation();
                    self.changed = true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("reading routes and neighbours: {e}"),
            }
        }
    }

    /// fwmark services without `--match`: their matches are what netfilter's
    /// MARK rules for their mark cover (read once a second while any such
    /// service exists).
    fn follow_marks(&mut self) {
        if self.last_marks.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_marks = Instant::now();
        let following: Vec<_> =
            self.r.cfg.services().filter(|(_, s)| s.spec.netfilter).map(|(_, s)| s.spec.clone()).collect();
        if following.is_empty() {
            return;
        }
        let marks = crate::marks::read();
        if marks.warnings != self.mark_warnings {
            for w in marks.warnings.iter().filter(|w| !self.mark_warnings.contains(w)) {
                tracing::warn!("{w}");
            }
            self.mark_warnings = marks.warnings.clone();
        }
        for spec in following {
            let xdpvs_api::config::ServiceKey::Fwmark { mark, v6 } = spec.key else { continue };
            let mut want: Vec<_> =
                marks.covers.get(&mark).into_iter().flatten().filter(|m| m.addr.is_ipv6() == v6).copied().collect();
            want.sort();
            let mut have = spec.matches.clone();
            have.sort();
            if want == have {
                continue;
            }
            let mut next = self.r.cfg.clone();
            match next.edit_service(xdpvs_api::config::ServiceSpec { matches: want.clone(), ..spec }) {
                Ok(()) => {
                    tracing::info!("fwmark service {mark} follows netfilter: {} match(es)", want.len());
                    self.r.cfg = next;
                    self.changed = true;
                }
                Err(e) => tracing::warn!("fwmark service {mark}: netfilter's MARK rules cannot be followed: {e}"),
            }
        }
    }

    /// SIGHUP: apply the difference, so what stays keeps its flows.
    fn reload_on_hup(&mut self) -> Option<std::path::PathBuf> {
        if !self.r.signals.hup.swap(false, Ordering::Relaxed) {
            return None;
        }
        let p = self.r.opts.restore.clone()?;
        let mut next = self.r.cfg.clone();
        let want = super::load_rules(&p).and_then(|want| check_ifaces(&want, &self.r.names).map(|()| want));
        match want.and_then(|want| reconcile(&mut next, &want).map_err(|e| e.to_string())) {
            Ok(()) => {
                self.r.cfg = next;
                self.changed = true;
                self.servers_changed = true;
                Some(p)
            }
            Err(e) => {
                tracing::warn!("keeping the running rules; {e}");
                None
            }
        }
    }

    /// Workers first (they pick it up within microseconds), then the
    /// steering maps and the region's view.
    fn publish(&mut self) {
        let next = self.r.snapshot.next(self.r.cfg.clone(), Arc::new(self.r.net.clone()));
        self.r.snapshot = Arc::new(next);
        self.r.published.publish(self.r.snapshot.clone());
        let keys = owned_keys(&self.r.snapshot);
        let macs: Vec<[u8; 6]> = self.r.net.ifaces.iter().map(|i| i.mac).collect();
        let synced =
            self.r.steers.iter_mut().zip(macs).try_for_each(|(s, mac)| s.set_mac(mac).and_then(|()| s.sync(&keys)));
        if let Err(e) = synced {
            tracing::warn!("updating the steering maps: {e}");
        }
        self.show();
    }

    fn show(&self) {
        let region = &self.r.region;
        region.set_generation(self.r.cfg.generation);
        let view = serde_json::to_vec(&self.control.view(&self.r.cfg, region)).unwrap_or_default();
        if let Err(e) = region.write_blob(BLOB_VIEW, &view) {
            tracing::warn!("the configuration view does not fit the region: {e}");
        }
    }
}
