//! The status of every checker, for operators: up or down, the last result
//! and why, since when, failures in a row. The running checker writes it
//! (at most once a second, atomically: a new file renamed over the old) to
//! `/dev/shm/xdpvs-checker-INSTANCE.json`; `xdpvs-checker --status
//! [--json]` prints it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One checker's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// `[198.18.0.10]:tcp:80`.
    pub virtual_server: String,
    /// `[198.19.0.11]:tcp:8080`.
    pub real_server: String,
    /// `TCP_CHECK`, `HTTP_GET`, …
    pub check: String,
    /// "up", "down", or "unknown" before the first verdict.
    pub state: String,
    /// Seconds since the epoch of the last change of state.
    pub since: u64,
    pub failures_in_row: u32,
    /// "ok" or the failure's log line.
    pub last: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub config: String,
    pub written: u64,
    pub checks: Vec<Row>,
}

pub fn path(instance: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/xdpvs-checker-{instance}.json"))
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

/// Writes `s` for `instance`: a fresh file (never following a link),
/// renamed over the old one.
pub fn write(instance: &str, s: &Status) -> Result<(), String> {
    let p = path(instance);
    let tmp = p.with_extension(format!("json.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let text = serde_json::to_vec_pretty(s).map_err(|e| e.to_string())?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::io::Write::write_all(&mut f, &text).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &p).map_err(|e| format!("{}: {e}", p.display()))
}

pub fn remove(instance: &str) {
    let _ = std::fs::remove_file(path(instance));
}

/// `--status`: the table, or the JSON.
pub fn show(instance: &str, json: bool) -> Result<String, String> {
    let p = path(instance);
    let text = std::fs::read_to_string(&p).map_err(|e| {
        format!(
            "no status for instance {instance} ({}: {e}): is xdpvs-checker --instance {instance} running?",
            p.display()
        )
    })?;
    let s: Status = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    if json {
        return Ok(text);
    }
    let mut out = format!(
        "xdpvs-checker pid {} ({}), status of {} ago\n{:<26} {:<28} {:<10} {:<7} {:<20} {:>5}  {}\n",
        s.pid,
        s.config,
        ago(now().saturating_sub(s.written)),
        "VIRTUAL SERVER",
        "REAL SERVER",
        "CHECK",
        "STATE",
        "SINCE",
        "FAILS",
        "LAST"
    );
    for r in &s.checks {
        out.push_str(&format!(
            "{:<26} {:<28} {:<10} {:<7} {:<20} {:>5}  {}\n",
            r.virtual_server,
            r.real_server,
            r.check,
            r.state,
            format!("{} ago", ago(now().saturating_sub(r.since))),
            r.failures_in_row,
            r.last
        ));
    }
    Ok(out)
}

fn ago(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}
