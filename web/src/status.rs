//! The live status page, in the spirit of HAProxy's `stats` page: services
//! and real servers (weight, health, method, active/inactive connections,
//! rates, bytes), the per-core view and drops by reason, refreshed in place
//! every 2 s (the page fetches `status.json`).
//!
//! - HTTP Basic auth as `stats auth` (`status_auth = "user:pass"`); a
//!   listener off loopback without it is refused at start.
//! - Admin mode as `stats admin` (`status_admin = true`): drain a server
//!   (weight 0), restore it (its weight before), or take it out — each a
//!   normal configuration command through the region, as `xdpvsadm` sends
//!   it. A POST must carry the page's token (a header a cross-site form
//!   cannot set) and, if the browser names an Origin, this host's.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xdpvs_api::admin::Command;
use xdpvs_api::counters::{Counter, DropReason};
use xdpvs_api::msg::{check_status_path, decode_blob, CheckStatus, Rates, Request, Totals, View, OK};
use xdpvs_api::shm::{Region, BLOB_RATES, BLOB_VIEW};
use xdpvs_api::text::{addr_port, service_arg};

const PAGE: &str = include_str!("status.html");

/// The page's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub addr: SocketAddr,
    /// `user:pass` for HTTP Basic auth.
    pub auth: Option<String>,
    pub admin: bool,
}

impl Settings {
    /// A listener off loopback needs auth (as a stats page on the open
    /// network would).
    pub fn check(&self) -> Result<(), String> {
        if self.auth.is_none() && !self.addr.ip().is_loopback() {
            return Err(format!(
                "the status page on {} would be open to the network: set status_auth = \"user:pass\", or bind it to 127.0.0.1",
                self.addr
            ));
        }
        if self.auth.as_deref().is_some_and(|a| !a.contains(':')) {
            return Err("status_auth takes \"user:password\"".into());
        }
        Ok(())
    }
}

struct Page {
    instance: String,
    settings: Settings,
    token: String,
    /// Weights of drained servers, to restore them (by service, server).
    drained: Mutex<HashMap<(String, String), u32>>,
}

/// The page's routes for `instance`.
pub fn router(instance: String, settings: Settings) -> Router {
    let page = Arc::new(Page { instance, settings, token: token(), drained: Mutex::new(HashMap::new()) });
    Router::new()
        .route("/", get(index))
        .route("/status.json", get(status))
        .route("/admin", post(admin))
        .with_state(page)
}

/// A token for this process's pages (from the kernel's random source).
fn token() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The request's Basic credentials are the configured ones (or none are configured).
fn authorized(p: &Page, h: &HeaderMap) -> bool {
    let Some(want) = &p.settings.auth else { return true };
    let got = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "));
    got.is_some_and(|b64| b64.trim() == base64(want.as_bytes()))
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"xdpvs\"")], "authentication required\n")
        .into_response()
}

async fn index(State(p): State<Arc<Page>>, h: HeaderMap) -> Response {
    if !authorized(&p, &h) {
        return unauthorized();
    }
    Html(PAGE.replace("{{TOKEN}}", &p.token)).into_response()
}

async fn status(State(p): State<Arc<Page>>, h: HeaderMap) -> Response {
    if !authorized(&p, &h) {
        return unauthorized();
    }
    match snapshot(&p) {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}

/// What the page shows, read from the region as `xdpvsadm -L` reads it.
fn snapshot(p: &Page) -> Result<Value, String> {
    let region = Region::open(&p.instance).map_err(|e| e.to_string())?;
    let view: View = decode_blob("configuration view", &region.read_blob(BLOB_VIEW).map_err(|e| e.to_string())?)?;
    let rates: Rates =
        decode_blob("rate estimate", &region.read_blob(BLOB_RATES).map_err(|e| e.to_string())?).unwrap_or_default();
    let totals = Totals::read(&region).map_err(|e| e.to_string())?;
    let checks: CheckStatus = std::fs::read(check_status_path(&p.instance))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let rate = |v: &[xdpvs_api::msg::RateEntry], slot, serial| {
        v.iter().find(|r| (r.slot, r.serial) == (slot, serial)).map(|r| r.rate).unwrap_or_default()
    };
    let services: Vec<Value> = view
        .services
        .iter()
        .map(|s| {
            let st = totals.services.get(&(s.slot, s.serial)).copied().unwrap_or_default();
            let r = rate(&rates.services, s.slot, s.serial);
            let dests: Vec<Value> = s
                .dests
                .iter()
                .map(|d| {
                    let t = totals.dests.get(&(d.slot, d.serial)).copied().unwrap_or_default();
                    let r = rate(&rates.dests, d.slot, d.serial);
                    let server = addr_port(d.spec.addr, d.spec.port);
                    let health = checks
                        .checks
                        .iter()
                        .find(|c| c.real_server.contains(&format!("[{}]", d.spec.addr)))
                        .map_or("—".to_string(), |c| c.state.clone());
                    json!({"id": server, "server": server, "method": d.spec.fwd.name(), "weight": d.spec.weight,
                        "health": health, "active": t.active, "inactive": t.inactive, "conns": t.stats.conns,
                        "cps": r.conns, "inpps": r.inpkts, "outpps": r.outpkts,
                        "inbytes": t.stats.inbytes, "outbytes": t.stats.outbytes})
                })
                .collect();
            let (active, inactive) = s.dests.iter().fold((0, 0), |(a, i), d| {
                let t = totals.dests.get(&(d.slot, d.serial)).copied().unwrap_or_default();
                (a + t.active, i + t.inactive)
            });
            json!({"id": service_arg(&s.spec.key), "name": service_arg(&s.spec.key), "scheduler": s.spec.sched.name(),
                "active": active, "inactive": inactive, "conns": st.conns, "cps": r.conns, "inpps": r.inpkts,
                "outpps": r.outpkts, "inbytes": st.inbytes, "outbytes": st.outbytes, "dests": dests})
        })
        .collect();
    let cores: Vec<Value> = totals
        .cores
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let g = |k| c.counters.get(k);
            json!({"core": i, "rx": g(Counter::Rx), "tx": g(Counter::Tx),
                "sessions": g(Counter::SessionsV4) + g(Counter::SessionsV6),
                "handoff_in": g(Counter::HandoffIn), "handoff_out": g(Counter::HandoffOut),
                "dropped": DropReason::ALL.iter().map(|&d| c.counters.dropped(d)).sum::<u64>()})
        })
        .collect();
    let drops: Vec<(&str, u64)> = DropReason::ALL
        .iter()
        .map(|&d| (d.name(), totals.cores.iter().map(|c| c.counters.dropped(d)).sum::<u64>()))
        .filter(|x| x.1 > 0)
        .collect();
    Ok(json!({"instance": p.instance, "generation": view.generation, "admin": p.settings.admin,
        "services": services, "cores": cores, "drops": drops}))
}

/// An admin action from the page.
#[derive(Debug, serde::Deserialize)]
struct Action {
    action: String,
    service: String,
    dest: String,
}

async fn admin(State(p): State<Arc<Page>>, h: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&p, &h) {
        return unauthorized();
    }
    if !p.settings.admin {
        return (StatusCode::FORBIDDEN, "admin mode is off (status_admin = true)\n").into_response();
    }
    if let Err(why) = same_site(&p, &h) {
        return (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
    }
    let Ok(a) = serde_json::from_slice::<Action>(&body) else {
        return (StatusCode::BAD_REQUEST, "expected {\"action\", \"service\", \"dest\"}\n").into_response();
    };
    match act(&p, &a) {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
    }
}

/// A cross-site request is refused: the page's token must come as a
/// header, and an Origin, when the browser sends one, must be this host.
fn same_site(p: &Page, h: &HeaderMap) -> Result<(), &'static str> {
    let token = h.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if token != Some(p.token.as_str()) {
        return Err("refused: no valid X-CSRF-Token (a cross-site request?)");
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) if o.split("://").nth(1) != Some(host) => Err("refused: a request from another origin"),
        _ => Ok(()),
    }
}

/// Drain, restore or remove: one configuration command each.
fn act(p: &Page, a: &Action) -> Result<(), String> {
    let region = Region::open(&p.instance).map_err(|e| e.to_string())?;
    let view: View = decode_blob("configuration view", &region.read_blob(BLOB_VIEW).map_err(|e| e.to_string())?)?;
    let svc = view.services.iter().find(|s| service_arg(&s.spec.key) == a.service).ok_or("no such service")?;
    let d = svc.dests.iter().find(|d| addr_port(d.spec.addr, d.spec.port) == a.dest).ok_or("no such real server")?;
    let key = (a.service.clone(), a.dest.clone());
    let mut drained = p.drained.lock().map_err(|_| "poisoned")?;
    let cmd = match a.action.as_str() {
        "drain" => {
            if d.spec.weight > 0 {
                drained.insert(key, d.spec.weight);
            }
            Command::EditDest(svc.spec.key, xdpvs_api::config::DestSpec { weight: 0, ..d.spec })
        }
        "restore" => {
            let w = drained.remove(&key).unwrap_or(1);
            Command::EditDest(svc.spec.key, xdpvs_api::config::DestSpec { weight: w, ..d.spec })
        }
        "remove" => Command::DelDest(svc.spec.key, d.spec.addr, d.spec.port),
        other => return Err(format!("unknown action '{other}': drain, restore or remove")),
    };
    let (status, text, _) =
        region.call(&Request::Command(cmd).encode(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    if status == OK {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&text).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_and_the_open_network() {
        assert_eq!(base64(b"admin:s3cret"), "YWRtaW46czNjcmV0");
        assert_eq!(base64(b"ab"), "YWI=");
        let open = Settings { addr: "0.0.0.0:8080".parse().unwrap(), auth: None, admin: false };
        assert!(open.check().unwrap_err().contains("open to the network"));
        let local = Settings { addr: "127.0.0.1:8080".parse().unwrap(), auth: None, admin: true };
        assert!(local.check().is_ok());
        let bad = Settings { auth: Some("nocolon".into()), ..local };
        assert!(bad.check().is_err());
    }
}
