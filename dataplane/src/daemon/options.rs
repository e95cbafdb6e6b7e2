//! The daemon's options: the TOML file's keys, overridden by flags.

use crate::xsk::steer::Mode;
use serde::Deserialize;
use std::path::PathBuf;

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
    /// Half-open TCP sessions (a SYN, no handshake yet) per worker: past it
    /// a new one takes the oldest one's place (default: the table's size).
    pub max_half_open: Option<u32>,
    /// Half-open TCP sessions per service and worker: past it the service's
    /// new SYNs are refused (`half_open_service_limit`), so one flooded
    /// service cannot take the others' room (default: no limit).
    pub max_half_open_per_service: Option<u32>,
    /// Busy polls without traffic before a worker sleeps in poll(2).
    pub idle_spin: Option<u32>,
    /// Workers at SCHED_FIFO with this priority (1-99), sleeping in poll(2)
    /// as soon as their rings are empty (no busy polling unless `idle_spin`
    /// says so): a real-time receive thread on a worker's CPU gets the CPU
    /// back whenever the worker has nothing to do, so under a flood the two
    /// alternate instead of one starving the other.
    pub rt_priority: Option<u8>,
    /// Restart without loss: at a stop, the sessions go to `state_file` and
    /// the XDP program stays, dropping (not passing to the kernel, which
    /// would answer with RSTs) what xdpvs owns for up to this many seconds,
    /// until the next xdpvs takes over. 0 or unset: detach at stop.
    pub handover: Option<u32>,
    /// Where a handover keeps the sessions (default
    /// /run/xdpvs/INSTANCE.sessions).
    pub state_file: Option<PathBuf>,
    /// IPVS's `sync_threshold`: a master sends an established connection
    /// at its THRESHOLD-th packet and every PERIOD packets after (default
    /// [3, 50]; PERIOD 0: once).
    pub sync_threshold: Option<[u16; 2]>,
    /// IPVS's `sync_refresh_period` (seconds, default 0: off): an unchanged
    /// connection is sent again at most this often.
    pub sync_refresh_period: Option<u32>,
    /// Where to serve Prometheus metrics (off unless set; e.g.
    /// "127.0.0.1:9595").
    pub metrics: Option<std::net::SocketAddr>,
    /// Where to serve the status page (off unless set).
    pub status: Option<std::net::SocketAddr>,
    /// The status page's HTTP Basic credentials, "user:pass" (as HAProxy's
    /// `stats auth`); required off loopback.
    pub status_auth: Option<String>,
    /// The status page may drain, restore and remove real servers (as
    /// HAProxy's `stats admin`).
    pub status_admin: Option<bool>,
    /// BIRD's control socket (default /run/bird/bird.ctl when a protocol
    /// below is named).
    pub bird_socket: Option<PathBuf>,
    /// BIRD static protocols announcing VIPs, "NAME" or "NAME=VIP,VIP":
    /// enabled while this director can serve (workers fresh, rules loaded,
    /// not drained) and each of its VIPs (default: every VIP) has a real
    /// server of weight above 0; disabled otherwise and first at a stop.
    #[serde(default)]
    pub bird_vips: Vec<String>,
    /// BIRD static protocols announcing this director's FULLNAT local
    /// addresses: enabled while xdpvs runs, disabled last at a stop.
    #[serde(default)]
    pub bird_laddrs: Vec<String>,
    /// Other directors' FULLNAT local addresses this one stands by for
    /// (announced here at a lower preference): their replies meet the
    /// sessions synced from their owner.
    #[serde(default)]
    pub standby_laddrs: Vec<std::net::IpAddr>,
    /// A planned stop with BGP: after the VIPs are withdrawn, wait until
    /// no client packet has come for a second, at most this long (default 10 s).
    pub drain_timeout: Option<u32>,
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
        take!(
            instance,
            queues,
            xdp_mode,
            umem_mb,
            hugepages,
            restore,
            shm_group,
            max_sessions,
            max_half_open,
            max_half_open_per_service,
            idle_spin,
            rt_priority,
            handover,
            state_file,
            sync_threshold,
            sync_refresh_period,
            metrics,
            status,
            status_auth,
            status_admin,
            bird_socket,
            drain_timeout
        );
        if !over.interfaces.is_empty() {
            self.interfaces = over.interfaces;
        }
        if !over.bird_vips.is_empty() {
            self.bird_vips = over.bird_vips;
        }
        if !over.bird_laddrs.is_empty() {
            self.bird_laddrs = over.bird_laddrs;
        }
        if !over.standby_laddrs.is_empty() {
            self.standby_laddrs = over.standby_laddrs;
        }
        if !over.cores.is_empty() {
            self.cores = over.cores;
        }
        self
    }

    /// The handover's hold, if a handover is asked for.
    pub fn handover(&self) -> Option<std::time::Duration> {
        self.handover.filter(|&s| s > 0).map(|s| std::time::Duration::from_secs(u64::from(s)))
    }

    /// Where a handover keeps the sessions.
    pub fn state_file(&self) -> PathBuf {
        self.state_file.clone().unwrap_or_else(|| {
            PathBuf::from(format!("/run/xdpvs/{}.sessions", self.instance.as_deref().unwrap_or("default")))
        })
    }

    /// When a sync master sends a connection (IPVS's sysctls).
    pub fn sync_timing(&self) -> Result<xdpvs_api::sync::Timing, String> {
        let mut t = xdpvs_api::sync::Timing::default();
        if let Some([threshold, period]) = self.sync_threshold {
            if period != 0 && threshold >= period {
                return Err(format!(
                    "sync_threshold {threshold} {period}: the threshold must be below the period (IPVS's default: 3 50), or the period 0"
                ));
            }
            (t.threshold, t.period) = (threshold, period);
        }
        if let Some(r) = self.sync_refresh_period {
            t.refresh_period = r;
        }
        Ok(t)
    }

    /// The status page's settings, checked (none if it is off).
    pub fn status_page(&self) -> Result<Option<xdpvs_web::status::Settings>, String> {
        let Some(addr) = self.status else { return Ok(None) };
        let s = xdpvs_web::status::Settings {
            addr,
            auth: self.status_auth.clone(),
            admin: self.status_admin.unwrap_or(false),
        };
        s.check()?;
        Ok(Some(s))
    }

    /// The announcer's settings, checked (none without a BIRD protocol).
    pub fn announce(&self) -> Result<Option<crate::announce::Settings>, String> {
        crate::announce::Settings::from_options(
            self.bird_socket.clone(),
            &self.bird_vips,
            &self.bird_laddrs,
            self.drain_timeout,
        )
    }

    pub fn mode(&self) -> Result<Mode, String> {
        match self.xdp_mode.as_deref().unwrap_or("auto") {
            "native" | "drv" | "driver" => Ok(Mode::Native),
            "generic" | "skb" => Ok(Mode::Generic),
            "auto" => Ok(Mode::Auto),
            other => Err(format!("unknown XDP mode '{other}': use native, generic or auto")),
        }
    }
}

/// A group name or number as a gid (names from /etc/group).
pub fn group_id(g: &str) -> Result<u32, String> {
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
        assert_eq!(o.handover(), Some(std::time::Duration::from_secs(10)));
        assert_eq!(o.sync_timing().unwrap(), xdpvs_api::sync::Timing::default());
        let t = Options { sync_threshold: Some([50, 3]), ..Options::default() };
        assert!(t.sync_timing().unwrap_err().contains("below the period"));
    }
}
