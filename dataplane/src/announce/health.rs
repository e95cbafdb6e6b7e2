//! Whether this director can serve, and each VIP protocol's own condition:
//! pure functions of what the announcer reads, so each rule is tested alone.

use std::net::IpAddr;
use std::time::Duration;
use xdpvs_api::config::{Config, ServiceKey};

/// A worker that has not published its stats for this long is stalled
/// (they publish every 20 ms, idle or not).
pub const STALLED_AFTER: Duration = Duration::from_millis(500);
/// A published generation the workers have not all adopted within this
/// long means a worker is not running its configuration.
pub const ADOPT_WITHIN: Duration = Duration::from_millis(500);

/// One worker, as its stats area shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub generation: u64,
    /// Since it last published.
    pub silent: Duration,
}

/// What the director's health depends on.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub cfg: &'a Config,
    pub workers: &'a [Worker],
    /// The generation published, and for how long.
    pub published: (u64, Duration),
    pub stopping: bool,
    /// Time left before a new backup's bulk sync is in (none: not waiting).
    pub settling: Option<Duration>,
}

/// `Ok` when the director can serve; else why not. The order is the order
/// an operator would look in.
pub fn director(f: &Facts<'_>) -> Result<(), String> {
    if f.stopping {
        return Err("xdpvs is stopping".into());
    }
    for (i, w) in f.workers.iter().enumerate() {
        if w.silent > STALLED_AFTER {
            return Err(format!("worker {i} stalled: no progress for {} ms", w.silent.as_millis()));
        }
        if w.generation < f.published.0 && f.published.1 > ADOPT_WITHIN {
            return Err(format!(
                "worker {i} runs configuration generation {} of {} published {} ms ago",
                w.generation,
                f.published.0,
                f.published.1.as_millis()
            ));
        }
    }
    if let Some(left) = f.settling {
        return Err(format!("settling: {} ms more for the sync daemons' bulk transfer", left.as_millis()));
    }
    if f.cfg.services().next().is_none() {
        return Err("no configuration loaded: no virtual service".into());
    }
    Ok(())
}

/// `Ok` when every VIP of `vips` (empty: every VIP of a service) has a
/// service with a real server of weight above 0; else the first that has
/// none.
pub fn vips_served(cfg: &Config, vips: &[IpAddr]) -> Result<(), String> {
    let all: Vec<IpAddr>;
    let want = if vips.is_empty() {
        all = service_vips(cfg);
        &all[..]
    } else {
        vips
    };
    for &vip in want {
        let mut services = cfg.services().filter(|(_, s)| key_vip(&s.spec.key) == Some(vip)).peekable();
        if services.peek().is_none() {
            return Err(format!("VIP {vip} has no virtual service"));
        }
        let usable = services.any(|(_, s)| s.dests.iter().any(|&d| cfg.dest(d).is_some_and(|d| d.spec.weight > 0)));
        if !usable {
            return Err(format!("VIP {vip} has no real server of weight above 0"));
        }
    }
    Ok(())
}

/// The VIPs of the address services, each once, in order.
pub fn service_vips(cfg: &Config) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = cfg.services().filter_map(|(_, s)| key_vip(&s.spec.key)).collect();
    v.sort();
    v.dedup();
    v
}

fn key_vip(k: &ServiceKey) -> Option<IpAddr> {
    match k {
        ServiceKey::Addr(m) => Some(m.addr),
        ServiceKey::Fwmark { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpvs_api::admin::apply_rules;

    fn cfg(rules: &str) -> Config {
        let mut c = Config::default();
        let a = apply_rules(&mut c, rules);
        assert!(a.errors.is_empty(), "{:?}", a.errors);
        c
    }

    const RULES: &str = "-A -t 198.18.10.10:80 -s mh\n-a -t 198.18.10.10:80 -r 198.19.0.11:80 -g -w 1\n\
                         -A -t 198.18.10.20:80 -s mh\n-a -t 198.18.10.20:80 -r 198.19.0.12:80 -g -w 0\n";

    fn facts<'a>(c: &'a Config, w: &'a [Worker]) -> Facts<'a> {
        Facts { cfg: c, workers: w, published: (c.generation, Duration::from_secs(5)), stopping: false, settling: None }
    }

    #[test]
    fn fresh_workers_running_the_rules_can_serve() {
        let c = cfg(RULES);
        let w = [Worker { generation: c.generation, silent: Duration::from_millis(20) }; 2];
        assert_eq!(director(&facts(&c, &w)), Ok(()));
    }

    #[test]
    fn a_stalled_worker_a_stale_generation_a_stop_or_no_rules_cannot() {
        let c = cfg(RULES);
        let fresh = Worker { generation: c.generation, silent: Duration::from_millis(20) };
        let stalled = [fresh, Worker { silent: Duration::from_millis(800), ..fresh }];
        assert!(director(&facts(&c, &stalled)).unwrap_err().contains("worker 1 stalled"));
        let behind = [Worker { generation: c.generation - 1, ..fresh }];
        assert!(director(&facts(&c, &behind)).unwrap_err().contains("generation"));
        let mut just = facts(&c, &behind);
        just.published.1 = Duration::from_millis(10);
        assert_eq!(director(&just), Ok(()), "a generation being adopted is no fault");
        let mut f = facts(&c, std::slice::from_ref(&fresh));
        f.stopping = true;
        assert_eq!(director(&f).unwrap_err(), "xdpvs is stopping");
        f.stopping = false;
        f.settling = Some(Duration::from_millis(700));
        assert!(director(&f).unwrap_err().contains("bulk transfer"));
        let empty = Config::default();
        assert!(director(&facts(&empty, &[])).unwrap_err().contains("no virtual service"));
    }

    #[test]
    fn each_vip_needs_a_usable_server() {
        let c = cfg(RULES);
        let v10: IpAddr = "198.18.10.10".parse().unwrap();
        let v20: IpAddr = "198.18.10.20".parse().unwrap();
        assert_eq!(vips_served(&c, &[v10]), Ok(()));
        assert!(vips_served(&c, &[v20]).unwrap_err().contains("198.18.10.20 has no real server of weight above 0"));
        assert!(vips_served(&c, &[]).unwrap_err().contains("198.18.10.20"), "empty: every VIP");
        assert!(vips_served(&c, &["198.18.10.30".parse().unwrap()]).unwrap_err().contains("no virtual service"));
        assert_eq!(service_vips(&c), vec![v10, v20]);
    }
}
