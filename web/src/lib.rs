//! xdpvs-web: the daemon's HTTP side, outside the workers. It reads the
//! instance's shared-memory region exactly as `xdpvsadm` does (links
//! `xdpvs-api` only, never the engine) and serves:
//! - `/metrics`: Prometheus text — node_exporter's `ipvs` collector's names
//!   and labels, so a dashboard built for IPVS works unchanged, and
//!   xdpvs's own under `xdpvs_` ([`metrics`]).
//!
//! It runs on a thread of its own with a current-thread tokio runtime;
//! [`serve`] returns once the listener is bound (or why it cannot be).

pub mod metrics;

use std::net::SocketAddr;

/// Serves `instance`'s metrics on `addr` until the process ends; returns
/// once the socket is bound (a bind error names the address).
pub fn serve(instance: String, addr: SocketAddr) -> Result<std::thread::JoinHandle<()>, String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot serve metrics on {addr}: {e} (metrics = \"127.0.0.1:PORT\" in xdpvs.toml)"))?;
    listener.set_nonblocking(true).map_err(|e| format!("metrics listener: {e}"))?;
    std::thread::Builder::new()
        .name("xdpvs-web".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
                Ok(rt) => rt,
                Err(e) => return eprintln!("xdpvs: metrics: no runtime: {e}"),
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return eprintln!("xdpvs: metrics: {e}"),
                };
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let instance = instance.clone();
                        async move { metrics::response(&instance) }
                    }),
                );
                if let Err(e) = axum::serve(listener, app).await {
                    eprintln!("xdpvs: metrics: {e}");
                }
            });
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))
}
