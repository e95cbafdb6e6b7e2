//! The dead man's switch: a small process xdpvs starts (itself, as
//! `xdpvs bgp-watchdog`) before it opens any socket or XDP program, so that
//! a crashed or killed xdpvs (SIGKILL, an abort, the OOM killer) does not
//! leave BIRD announcing VIPs that nothing serves. It watches xdpvs's pid
//! (and start time, against reuse) in /proc every 50 ms; when xdpvs is
//! gone it disables the protocols and exits. A planned stop withdraws by
//! itself, then ends the watchdog.

use super::bird::Bird;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(50);
/// BIRD may be restarting: keep trying this long.
const TRY_FOR: Duration = Duration::from_secs(10);

/// Starts the watchdog for this process.
pub fn start(socket: &Path, protocols: &[String]) -> Result<Child, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find xdpvs's own binary for the BGP watchdog: {e}"))?;
    let mut c = Command::new(exe);
    c.arg("bgp-watchdog").arg("--pid").arg(std::process::id().to_string()).arg("--bird-socket").arg(socket);
    for p in protocols {
        c.arg("--protocol").arg(p);
    }
    c.stdin(Stdio::null()).spawn().map_err(|e| format!("cannot start the BGP watchdog: {e}"))
}

/// A process's state letter and start time (/proc/PID/stat fields 3 and 22).
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f.first()?.chars().next()?, f.get(19)?.parse().ok()?))
}

/// Whether process `pid`, started at `started`, is still running.
fn alive(pid: u32, started: u64) -> bool {
    matches!(stat(pid), Some((state, t)) if t == started && state != 'Z' && state != 'X')
}

/// The watchdog's life: wait for xdpvs to go, then withdraw.
pub fn run(pid: u32, socket: PathBuf, protocols: &[String]) -> i32 {
    let Some((_, started)) = stat(pid) else {
        eprintln!("xdpvs bgp-watchdog: process {pid} is not running");
        return 1;
    };
    while alive(pid, started) {
        std::thread::sleep(EVERY);
    }
    tracing::warn!("BGP watchdog: xdpvs (pid {pid}) is gone; withdrawing {}", protocols.join(", "));
    let mut bird = Bird::new(&socket);
    let t0 = Instant::now();
    let mut left: Vec<&String> = protocols.iter().collect();
    while !left.is_empty() && t0.elapsed() < TRY_FOR {
        left.retain(|p| match bird.set(p, false) {
            Ok(_) => false,
            Err(e) => {
                tracing::warn!("BGP watchdog: {e}");
                true
            }
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    if left.is_empty() {
        tracing::info!("BGP watchdog: withdrawn in {:.3} s", t0.elapsed().as_secs_f64());
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_child_is_not() {
        let me = std::process::id();
        let (state, started) = stat(me).expect("our own stat");
        assert_ne!(state, 'Z');
        assert!(alive(me, started));
        assert!(!alive(me, started + 1), "another start time: a reused pid");
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        let (_, t) = stat(pid).unwrap_or(('R', 0));
        child.wait().unwrap();
        assert!(!alive(pid, t), "an exited process");
    }
}
