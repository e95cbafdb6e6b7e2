//! `MISC_CHECK`: `misc_path` run by `/bin/sh -c` in a process group of its
//! own (as `user` if set), killed with its whole group when it outlives
//! `misc_timeout`. Exit 0 passes, 1 fails; with `misc_dynamic`, 2-255 pass
//! and set the weight to the code minus 2 (keepalived's rule).

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::process::Stdio;
use std::time::Duration;

pub async fn check(path: &str, timeout: Duration, dynamic: bool, user: Option<&str>) -> Result<Option<u32>, String> {
    let mut cmd = super::script(path, user, None).map_err(|e| format!("MISC_CHECK {e}"))?;
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("Misc check to {path} failed: cannot run it: {e}."))?;
    let group = child.id().map(|p| Pid::from_raw(p as i32));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => s.map_err(|e| format!("Misc check to {path}: {e}"))?,
        Err(_) => {
            if let Some(g) = group {
                let _ = killpg(g, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            return Err(format!("Misc check to {path} timed out."));
        }
    };
    // Whatever the script left behind in its group goes with it.
    if let Some(g) = group {
        let _ = killpg(g, Signal::SIGKILL);
    }
    match status.code() {
        Some(0) => Ok(None),
        Some(c) if dynamic && c >= 2 => Ok(Some(c as u32 - 2)),
        Some(c) => Err(format!("Misc check to {path} failed with exit status {c}.")),
        None => Err(format!("Misc check to {path} was killed by a signal.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_codes_weights_and_timeouts() {
        let s = Duration::from_secs(5);
        assert_eq!(check("exit 0", s, false, None).await, Ok(None));
        assert!(check("exit 1", s, false, None).await.is_err());
        assert_eq!(check("exit 12", s, true, None).await, Ok(Some(10)));
        assert!(check("exit 12", s, false, None).await.is_err());
        let t = std::time::Instant::now();
        let r = check("sleep 30 & sleep 30", Duration::from_millis(200), false, None).await;
        assert_eq!(r, Err("Misc check to sleep 30 & sleep 30 timed out.".into()));
        assert!(t.elapsed() < Duration::from_secs(3), "killed at its timeout, its group with it");
    }
}
