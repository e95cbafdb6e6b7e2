//! The programs' logs (xdpvs, xdpvs-checker): one line per event on
//! standard error with its level (`tracing`), filtered by `XDPVS_LOG`
//! (default `info`, e.g. `XDPVS_LOG=debug`); under systemd (the journal
//! stamps each line itself) without a timestamp.

/// Installs the log format for this process.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("XDPVS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_target(false);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        fmt.with_env_filter(filter).without_time().init();
    } else {
        fmt.with_env_filter(filter).init();
    }
}
