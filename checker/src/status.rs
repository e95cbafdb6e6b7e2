//! The status of every checker, for operators: up or down, the last result
//! and why, since when, failures in a row. The running checker writes it
//! (at most once a second, atomically: a new file renamed over the old) to
//! `/dev/shm/xdpvs-checker-INSTANCE.json`; `xdpvs-checker --status
//! [--json]` prints it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use xdpvs_api::msg::{CheckRow as Row, CheckStatus as Status};

pub fn path(instance: &str) -> PathBuf {
    xdpvs_api::msg::check_status_path(instance)
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
