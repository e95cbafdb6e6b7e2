//! xdpvs-web: the daemon's HTTP side, outside the workers. It reads the
//! instance's shared-memory region exactly as `xdpvsadm` does (links
//! `xdpvs-api` only, never the engine) and serves:
//! - `/metrics` ([`metrics`]): Prometheus text — node_exporter's `ipvs`
//!   collector's names and labels, so a dashboard built for IPVS works
//!   unchanged, and xdpvs's own under `xdpvs_`;
//! - the status page ([`status`]): services, servers, cores and drops,
//!   refreshed in place; Basic auth and an admin mode as HAProxy's.
//!
//! Each listener runs on a thread of its own with a current-thread tokio
//! runtime; [`serve`] returns once the listener is bound (or why not).

pub mod metrics;
pub mod status;

use std::net::SocketAddr;

/// The metrics routes of `instance`.
pub fn metrics_router(instance: String) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let instance = instance.clone();
            async move { metrics::response(&instance) }
        }),
    )
}

/// Serves `app` on `addr` (`what` names it in errors) until the process
/// ends; returns once the socket is bound.
pub fn serve(what: &'static str, addr: SocketAddr, app: axum::Router) -> Result<std::thread::JoinHandle<()>, String> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| format!("cannot serve the {what} on {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("{what} listener: {e}"))?;
    std::thread::Builder::new()
        .name(format!("xdpvs-{}", what.split(' ').next_back().unwrap_or("web")))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
                Ok(rt) => rt,
                Err(e) => return tracing::error!("{what}: no runtime: {e}"),
            };
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => {
                        if let Err(e) = axum::serve(l, app).await {
                            tracing::info!("{what}: {e}");
                        }
                    }
                    Err(e) => tracing::info!("{what}: {e}"),
                }
            });
        })
        .map_err(|e| format!("cannot start the {what} thread: {e}"))
}
