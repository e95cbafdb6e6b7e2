//! Counters: per-core, plain integers (one writer per core, no atomics on the
//! packet path). The control plane sums cores when it reports. The names and
//! the drop reasons are defined once, in `xdpvs_api::counters`.

pub use xdpvs_api::counters::{DropReason, Stats};

/// One core's global counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreStats {
    pub rx: u64,
    pub tx: u64,
    pub pass: u64,
    pub handoff: u64,
    pub sessions_created: u64,
    pub sessions_expired: u64,
    pub icmp_forwarded: u64,
    pub icmp_generated: u64,
    pub proxy_inserted: u64,
    pub proxy_shortened: u64,
    pub toa_added: u64,
    pub toa_no_room: u64,
    /// Sync: records not queued because the core's queue was full.
    pub sync_queue_full: u64,
    /// Sync (backup): records installed as new sessions, records that
    /// updated one, records refused (by `InstallError`).
    pub sync_installed: u64,
    pub sync_updated: u64,
    pub sync_refused: [u64; 5],
    /// TCP flows picked up mid-connection (mh/sh/dh, no SYN seen here).
    pub midflow: u64,
    /// Half-open sessions evicted to make room in a full table.
    pub evicted_half_open: u64,
    /// SYN proxy: cookies sent, cookie ACKs accepted, SYN-ACKs spliced.
    pub synproxy_cookies: u64,
    pub synproxy_accepted: u64,
    pub synproxy_spliced: u64,
    /// Fragments held, trains completed.
    pub frag_held: u64,
    pub frag_reassembled: u64,
    pub drops: Drops,
    /// Sessions held, by `xdpvs_api::counters::SessionState` (gauges).
    pub by_state: [u64; xdpvs_api::counters::SessionState::COUNT],
}

/// A count per drop reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drops(pub [u64; DropReason::COUNT]);

impl Default for Drops {
    fn default() -> Self {
        Self([0; DropReason::COUNT])
    }
}

impl std::ops::Deref for Drops {
    type Target = [u64; DropReason::COUNT];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Drops {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl CoreStats {
    #[inline]
    pub fn drop(&mut self, d: DropReason) {
        self.drops[d as usize] += 1;
    }

    /// `n` more frames dropped for `d`.
    #[inline]
    pub fn drop_n(&mut self, d: DropReason, n: u64) {
        self.drops[d as usize] += n;
    }

    pub fn dropped(&self, d: DropReason) -> u64 {
        self.drops[d as usize]
    }

    /// A session of `slot` came (`+`) or went.
    #[inline]
    pub fn held(&mut self, slot: usize, came: bool) {
        let v = &mut self.by_state[slot];
        *v = if came { *v + 1 } else { v.saturating_sub(1) };
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}
