//! The daemon's side of the control protocol: it answers the typed requests
//! of `xdpvs_api::msg` against its configuration, keeps the `-Z` zero points,
//! runs IPVS's rate estimator, and builds the views it publishes.

use hashbrown::{HashMap, HashSet};
use std::time::{Duration, Instant};
use xdpvs_api::admin::{apply, apply_rules, note};
use xdpvs_api::config::{Config, ServiceKey};
use xdpvs_api::counters::Stats;
use xdpvs_api::msg::{ObjectId, RateEntry, Rates, Request, Totals, View};
use xdpvs_api::shm::Region;

/// IPVS's rate estimator state for one object (`ip_vs_est.c`): every 2 s,
/// rate += (delta·2^9 − rate) / 4 for connections and packets (read back
/// as (x + 0x1FF) >> 10 per second) and delta·2^4 for bytes (read back as
/// (x + 0xF) >> 5).
#[derive(Debug, Clone, Copy, Default)]
struct Est {
    last: Stats,
    scaled: [i64; 5],
}

impl Est {
    fn starting_at(now: Stats) -> Self {
        Self { last: now, scaled: [0; 5] }
    }

    fn step(&mut self, now: &Stats) {
        let (last, now) = (self.last.fields(), now.fields());
        for (k, scaled) in self.scaled.iter_mut().enumerate() {
            let shift = if k < 3 { 9 } else { 4 };
            let delta = now[k].wrapping_sub(last[k]) as i64;
            *scaled += ((delta << shift) - *scaled) >> 2;
        }
        self.last = Stats::from_fields(now);
    }

    fn read(&self) -> Stats {
        let mut r = [0u64; 5];
        for (k, (out, x)) in r.iter_mut().zip(self.scaled).enumerate() {
            let x = x.max(0) as u64;
            *out = if k < 3 { (x + 0x1FF) >> 10 } else { (x + 0xF) >> 5 };
        }
        Stats::from_fields(r)
    }
}

/// The daemon's control-plane state beside its [`Config`]: `-Z` baselines
/// and rate estimators, by object.
#[derive(Debug, Default)]
pub struct Control {
    baselines: HashMap<ObjectId, Stats>,
    est: HashMap<ObjectId, Est>,
    /// The daemon's interfaces (a local address's `-F` must name one).
    ifaces: Vec<String>,
    /// `-R` text arriving in parts, by id, with when its last part came.
    parts: HashMap<u64, (String, Instant)>,
}

/// At most this much `-R` text waits in parts, and for this long.
const PARTS_MAX_BYTES: usize = 256 << 20;
const PARTS_TTL: Duration = Duration::from_secs(60);

/// What a handled request did.
pub struct Outcome {
    pub text: String,
    /// The configuration changed: publish it.
    pub changed: bool,
}

/// Every counted object of `cfg` with its current totals.
fn objects<'a>(cfg: &'a Config, t: &'a Totals) -> impl Iterator<Item = (ObjectId, Stats)> + 'a {
    cfg.services().flat_map(move |(slot, s)| {
        let svc = ((false, slot, s.serial), t.services.get(&(slot, s.serial)).copied().unwrap_or_default());
        let dests = s.dests.iter().filter_map(move |&d| {
            let dc = cfg.dest(d)?;
            Some(((true, d, dc.serial), t.dests.get(&(d, dc.serial)).map(|x| x.stats).unwrap_or_default()))
        });
        std::iter::once(svc).chain(dests)
    })
}

/// Every local address's interface (`-F`) is one the daemon serves.
pub fn check_ifaces(cfg: &Config, ifaces: &[String]) -> Result<(), String> {
    let bad = (0..cfg.laddr_slots() as u32).filter_map(|l| cfg.laddr(l)?.iface.clone()).find(|i| !ifaces.contains(i));
    match bad {
        Some(i) => Err(format!(
            "no interface named '{i}' among xdpvs's interfaces ({}): -F names one of them",
            ifaces.join(", ")
        )),
        None => Ok(()),
    }
}

/// Every sync daemon's interface exists (the sync sockets are the
/// kernel's, so any interface will do, not only xdpvs's).
pub fn check_sync(cfg: &Config) -> Result<(), String> {
    for (role, d) in [("master", &cfg.sync.master), ("backup", &cfg.sync.backup)] {
        if let Some(d) = d {
            if !std::path::Path::new("/sys/class/net").join(&d.iface).exists() {
                return Err(format!(
                    "no interface named '{}' for the {role} sync daemon: --mcast-interface names one of this host's",
                    d.iface
                ));
            }
        }
    }
    Ok(())
}

impl Control {
    pub fn new(ifaces: Vec<String>) -> Self {
        Self { ifaces, ..Self::default() }
    }

    /// Handles one request against `cfg` (changed only on success).
    pub fn handle(&mut self, cfg: &mut Config, region: &Region, req: &[u8]) -> Result<Outcome, String> {
        match Request::decode(req)? {
            Request::Command(cmd) => {
                let mut next = cfg.clone();
                apply(&mut next, &cmd).map_err(|e| e.to_string())?;
                check_sync(&next)?;
                check_capacity(&next, region)?;
                check_ifaces(&next, &self.ifaces)?;
                let text = note(&next, &cmd).unwrap_or_default();
                *cfg = next;
                Ok(Outcome { text, changed: true })
            }
            Request::Zero(key) => {
                self.zero(cfg, region, key.as_ref())?;
                Ok(Outcome { text: String::new(), changed: false })
            }
            Request::Rules(text) => self.restore(cfg, region, &text),
            Request::RulesPart { id, text, last } => self.part(cfg, region, id, text, last),
            Request::Converge { owned, rules } => {
                let next = xdpvs_api::admin::converge(cfg, &owned, &rules)?;
                check_capacity(&next, region)?;
                check_ifaces(&next, &self.ifaces)?;
                let changed = xdpvs_api::admin::save(&next) != xdpvs_api::admin::save(cfg);
                if changed {
                    *cfg = next;
                }
                Ok(Outcome { text: String::new(), changed })
            }
        }
    }

    /// One part of a long `-R`: kept until the last, then all restored at once.
    fn part(
        &mut self,
        cfg: &mut Config,
        region: &Region,
        id: u64,
        text: String,
        last: bool,
    ) -> Result<Outcome, String> {
        self.parts.retain(|_, (_, at)| at.elapsed() < PARTS_TTL);
        let held: usize = self.parts.values().map(|(t, _)| t.len()).sum();
        if held + text.len() > PARTS_MAX_BYTES {
            self.parts.remove(&id);
            return Err(format!("-R input over {} MiB (nothing applied)", PARTS_MAX_BYTES >> 20));
        }
        let entry = self.parts.entry(id).or_insert_with(|| (String::new(), Instant::now()));
        entry.0.push_str(&text);
        entry.1 = Instant::now();
        if !last {
            return Ok(Outcome { text: String::new(), changed: false });
        }
        let all = self.parts.remove(&id).map(|(t, _)| t).unwrap_or_default();
        self.restore(cfg, region, &all)
    }

    /// `-R`: all or nothing.
    fn restore(&mut self, cfg: &mut Config, region: &Region, text: &str) -> Result<Outcome, String> {
        let mut next = cfg.clone();
        let applied = apply_rules(&mut next, text);
        if let Some((line, e)) = applied.errors.first() {
            return Err(format!("line {line}: {e} (nothing applied)"));
        }
        check_capacity(&next, region)?;
        check_ifaces(&next, &self.ifaces).map_err(|e| format!("{e} (nothing applied)"))?;
        let notes: Vec<String> = applied.notes(&next).into_iter().map(|(_, n)| n).collect();
        let changed = !applied.commands.is_empty();
        if changed {
            *cfg = next;
        }
        Ok(Outcome { text: notes.join("\n"), changed })
    }

    /// `-Z [service]`: the current totals become the zero point.
    fn zero(&mut self, cfg: &Config, region: &Region, key: Option<&ServiceKey>) -> Result<(), String> {
        let only = match key {
            Some(k) => Some(cfg.find_service(k).ok_or("No such service")?),
            None => None,
        };
        let t = Totals::read(region).map_err(|e| e.to_string())?;
        for (id, now) in objects(cfg, &t) {
            let svc = if id.0 { cfg.dest(id.1).map(|d| d.svc) } else { Some(id.1) };
            if only.is_none() || svc == only {
                self.baselines.insert(id, now);
                self.est.insert(id, Est::starting_at(now));
            }
        }
        Ok(())
    }

    /// Every 2 s: one estimator step for every service and real server.
    pub fn estimate(&mut self, cfg: &Config, region: &Region) -> Result<Rates, String> {
        let t = Totals::read(region).map_err(|e| e.to_string())?;
        let mut live = HashSet::new();
        let mut rates = Rates::default();
        for (id, now) in objects(cfg, &t) {
            live.insert(id);
            let e = self.est.entry(id).or_insert(Est::starting_at(now));
            e.step(&now);
            let entry = RateEntry { slot: id.1, serial: id.2, rate: e.read() };
            if id.0 {
                rates.dests.push(entry);
            } else {
                rates.services.push(entry);
            }
        }
        self.est.retain(|k, _| live.contains(k));
        self.baselines.retain(|k, _| live.contains(k));
        Ok(rates)
    }

    /// The configuration as readers see it (the view blob).
    pub fn view(&self, cfg: &Config, region: &Region) -> View {
        View::of(cfg, region, |id| self.baselines.get(&id).copied().unwrap_or_default())
    }
}

fn check_capacity(cfg: &Config, region: &Region) -> Result<(), String> {
    let l = region.layout();
    if cfg.service_slots() > l.max_services {
        return Err(format!("too many services: this xdpvs holds at most {}", l.max_services));
    }
    if cfg.dest_slots() > l.max_dests {
        return Err(format!("too many real servers: this xdpvs holds at most {}", l.max_dests));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimator_follows_ipvs() {
        // 1000 conns/s, 2 s per step: the estimate climbs towards 1000.
        let mut e = Est::default();
        let mut now = Stats::default();
        let mut seen = Vec::new();
        for _ in 0..60 {
            now.conns += 2000;
            now.inbytes += 2_000_000;
            e.step(&now);
            seen.push(e.read());
        }
        assert_eq!(seen[0].conns, 250, "a quarter of the way after one step");
        assert_eq!(seen[59].conns, 1000);
        assert_eq!(seen[59].inbytes, 1_000_000);
        // Traffic stops: the estimate decays to zero.
        for _ in 0..60 {
            e.step(&now);
        }
        assert_eq!(e.read(), Stats::default());
    }
}
