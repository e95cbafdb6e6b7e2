//! `-L --daemon`: the sync daemons as ipvsadm lists them, and with
//! `--stats` (our addition) the sync thread's and the workers' counters.

use serde_json::{json, Value};
use xdpvs_api::counters::Counter;
use xdpvs_api::msg::{SyncView, Totals};
use xdpvs_api::sync::{daemon_line, Role};

/// The workers' sync counters, summed over the cores.
const WORKER_COUNTERS: &[Counter] = &[
    Counter::SyncQueued,
    Counter::SyncRingFull,
    Counter::SyncInstalled,
    Counter::SyncUpdated,
    Counter::SyncNoService,
    Counter::SyncNoDest,
    Counter::SyncTableFull,
    Counter::SyncLocalPort,
];

fn worker_sums(t: &Totals) -> Vec<(&'static str, u64)> {
    WORKER_COUNTERS.iter().map(|&c| (c.name(), t.cores.iter().map(|r| r.counters.get(c)).sum())).collect()
}

/// ipvsadm's lines, one per running daemon, master first.
pub fn render(v: &SyncView, totals: &Totals, stats: bool) -> String {
    let mut s = String::new();
    for (role, d) in [(Role::Master, &v.master), (Role::Backup, &v.backup)] {
        if let Some(d) = d {
            s.push_str(&daemon_line(role, &d.spec, d.maxlen));
            s.push('\n');
            if let Some(e) = &d.error {
                s.push_str(&format!("  not running: {e}\n"));
            }
        }
    }
    if !stats {
        return s;
    }
    let st = &v.stats;
    s.push_str(&format!(
        "Sent: {} datagrams, {} records, {} bytes, {} errors\nReceived: {} datagrams, {} records\n",
        st.sent_datagrams, st.sent_records, st.sent_bytes, st.send_errors, st.received_datagrams, st.received_records
    ));
    s.push_str(&format!(
        "Bulk requests: {} sent, {} received; records for a full core inbox: {}\n",
        st.bulk_requests_sent, st.bulk_requests_received, st.core_inbox_full
    ));
    let pairs = |v: &[(String, u64)]| v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ");
    s.push_str(&format!("Datagrams dropped: {}\n", pairs(&st.bad_datagrams)));
    s.push_str(&format!("Records skipped: {}\n", pairs(&st.bad_records)));
    let w: Vec<(String, u64)> = worker_sums(totals).into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    s.push_str(&format!("Workers: {}\n", pairs(&w)));
    s
}

pub fn to_json(v: &SyncView, totals: &Totals) -> Value {
    let workers: serde_json::Map<String, Value> =
        worker_sums(totals).into_iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
    json!({"master": v.master, "backup": v.backup, "stats": v.stats, "workers": workers})
}
