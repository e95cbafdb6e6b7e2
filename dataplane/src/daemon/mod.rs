//! The daemon: options, startup, workers, the control loop, shutdown.
//!
//! - [`options`]: the TOML file's keys and the flags over them;
//! - [`startup`]: everything before the first packet, in order: privileges,
//!   interfaces and the kernel's state (netlink), rules (`--restore`), the
//!   region, the UMEM, the XDP program on every interface, one AF_XDP
//!   socket per (interface, queue), workers pinned to cores. Every failure
//!   is one line naming the fix, and a non-zero exit;
//! - [`control_loop`]: the control thread from then on: commands, the
//!   kernel's events, SIGHUP reloads, the rate estimator, publishing;
//!   SIGTERM and SIGINT end it, then the workers stop, dropping the sockets
//!   and the programs' links detaches everything, and the region goes.

pub mod control_loop;
pub mod handover;
pub mod options;
pub mod rx_threads;
pub mod startup;

pub use options::Options;

use std::path::Path;
use xdpvs_api::admin::apply_rules;
use xdpvs_api::config::Config;

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(opts: Options) -> Result<(), String> {
    let running = startup::Startup::check(opts)?.start()?;
    let mut control = control_loop::ControlLoop::new(running);
    control.run();
    control.shutdown();
    Ok(())
}

/// Applies a rules file (ipvsadm `-S` format) to a fresh configuration;
/// every bad line is named with its file and line.
pub fn load_rules(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read rules {}: {e}", path.display()))?;
    let mut cfg = Config::default();
    let applied = apply_rules(&mut cfg, &text);
    for (line, n) in applied.notes(&cfg) {
        tracing::info!("{}:{line}: note: {n}", path.display());
    }
    if applied.errors.is_empty() {
        Ok(cfg)
    } else {
        let errors: Vec<String> = applied.errors.iter().map(|(l, e)| format!("{}:{l}: {e}", path.display())).collect();
        Err(errors.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn example_rules_load() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cfg = super::load_rules(&root.join("configs/example.rules")).expect("the example rules apply");
        assert_eq!(cfg.services().count(), 4);
    }
}
