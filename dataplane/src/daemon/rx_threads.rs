//! The kernel threads that receive for xdpvs's interfaces (threaded NAPI,
//! `napi/<iface>-<id>`), checked at start: one at a real-time priority the
//! workers do not exceed preempts a worker whenever frames arrive, so a
//! flood gives it the worker's CPU and the worker delivers a fraction of
//! what it can (receive livelock). Workers above it (`--rt-priority`, which
//! also makes them sleep as soon as their ring is empty) keep their share:
//! the receive thread runs when they sleep, and frames that arrive while
//! they work wait in, or drop at, the device's ring.

/// A receive thread at a real-time priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtReceiver {
    pub pid: u32,
    pub name: String,
    pub iface: String,
    /// "SCHED_FIFO" or "SCHED_RR".
    pub policy: &'static str,
    pub priority: u32,
}

/// The kernel's comm is at most 15 bytes: `napi/<iface>-` may be cut.
const COMM_LEN: usize = 15;

/// Whether `comm` is a NAPI thread of `iface`.
fn receives_for(comm: &str, iface: &str) -> bool {
    let prefix = format!("napi/{iface}-");
    if prefix.len() <= COMM_LEN {
        comm.starts_with(&prefix)
    } else {
        comm.len() == COMM_LEN && prefix.starts_with(comm)
    }
}

/// Policy and real-time priority from a `/proc/PID/stat` line (fields 41
/// and 40; the command name in parentheses may hold spaces).
pub fn rt_policy(stat: &str) -> Option<(&'static str, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    let (prio, policy) = (f.get(40 - 3)?.parse().ok()?, f.get(41 - 3)?.parse::<u32>().ok()?);
    match policy {
        1 => Some(("SCHED_FIFO", prio)),
        2 => Some(("SCHED_RR", prio)),
        _ => None,
    }
}

/// Receive threads of `ifaces` at a real-time priority, from /proc.
pub fn rt_receivers(ifaces: &[String]) -> Vec<RtReceiver> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else { continue };
        let comm = comm.trim_end();
        let Some(iface) = ifaces.iter().find(|i| receives_for(comm, i)) else { continue };
        let Some((policy, priority)) =
            std::fs::read_to_string(e.path().join("stat")).ok().as_deref().and_then(rt_policy)
        else {
            continue;
        };
        found.push(RtReceiver { pid, name: comm.to_string(), iface: iface.clone(), policy, priority });
    }
    found.sort_by_key(|r| std::cmp::Reverse(r.priority));
    found
}

/// The warning for a receive thread the workers (at `workers`, None:
/// normal priority) do not preempt, or None.
pub fn warning(r: &RtReceiver, workers: Option<u8>) -> Option<String> {
    let need = r.priority + 1;
    if workers.is_some_and(|w| u32::from(w) >= need) {
        return None;
    }
    let now = match workers {
        Some(w) => format!("the workers run at SCHED_FIFO {w}"),
        None => "the workers run at normal priority".to_string(),
    };
    Some(format!(
        "{} (pid {}) receives for {} at {} {} and {now}: under a flood it takes their CPU; \
         start xdpvs with --rt-priority {need} or higher (or run the thread at normal priority)",
        r.name, r.pid, r.iface, r.policy, r.priority
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(comm: &str, prio: u32, policy: u32) -> String {
        // Fields 3..39 as zeros, then rt_priority (40) and policy (41).
        let mid = vec!["0"; 40 - 3].join(" ");
        format!("123 ({comm}) {mid} {prio} {policy} 0 0")
    }

    #[test]
    fn policy_and_priority_come_from_fields_40_and_41() {
        assert_eq!(rt_policy(&stat("napi/d0-3481", 10, 1)), Some(("SCHED_FIFO", 10)));
        assert_eq!(rt_policy(&stat("napi/d0-3481", 5, 2)), Some(("SCHED_RR", 5)));
        assert_eq!(rt_policy(&stat("napi/d0-3481", 0, 0)), None);
        // A name with spaces and parentheses.
        assert_eq!(rt_policy(&stat("a (b) c", 7, 1)), Some(("SCHED_FIFO", 7)));
        assert_eq!(rt_policy("123 (short) R 1 2"), None);
        assert_eq!(rt_policy("garbage"), None);
    }

    #[test]
    fn napi_threads_match_their_interface_even_cut_short() {
        assert!(receives_for("napi/d0-3481", "d0"));
        assert!(!receives_for("napi/d01-3481", "d0"));
        assert!(!receives_for("napi/d1-3481", "d0"));
        // "napi/enp3s0f0np0-" is 17 bytes: the comm holds its first 15.
        assert!(receives_for("napi/enp3s0f0np", "enp3s0f0np0"));
        assert!(!receives_for("napi/enp3s0f0np", "enp4s0f0np0"));
    }

    #[test]
    fn the_warning_names_the_thread_and_the_priority_that_fixes_it() {
        let r =
            RtReceiver { pid: 9, name: "napi/d0-3481".into(), iface: "d0".into(), policy: "SCHED_FIFO", priority: 10 };
        let w = warning(&r, None).expect("normal-priority workers");
        assert!(w.contains("napi/d0-3481 (pid 9) receives for d0 at SCHED_FIFO 10"), "{w}");
        assert!(w.contains("--rt-priority 11 or higher"), "{w}");
        assert!(warning(&r, Some(10))
            .expect("equal priority")
            .contains("SCHED_FIFO 10 and the workers run at SCHED_FIFO 10"));
        assert_eq!(warning(&r, Some(11)), None);
    }
}
