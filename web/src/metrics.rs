//! `/metrics`: one scrape reads the region (the configuration view, every
//! core's counters, the rate estimates, the sync thread's view) and the
//! checker's status file, and writes Prometheus text with
//! `prometheus-client`:
//! - node_exporter's `ipvs` collector, names and labels exactly:
//!   `node_ipvs_{connections,incoming_packets,outgoing_packets,
//!   incoming_bytes,outgoing_bytes}_total` (all services), and per real
//!   server `node_ipvs_backend_connections_{active,inactive}` and
//!   `node_ipvs_backend_weight` labelled `local_address, local_port,
//!   remote_address, remote_port, proto, local_mark`. The counters are
//!   the raw totals (`xdpvsadm -Z` does not reset them: a counter only
//!   grows);
//! - xdpvs's own, `xdpvs_…`: every per-core counter and drop reason (their
//!   one definition, `xdpvs_api::counters`), sessions, the configuration's
//!   generation and age, per service and server counters and IPVS's rate
//!   estimates, health checks, the sync daemons and their counters.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use xdpvs_api::config::{Proto, ServiceKey};
use xdpvs_api::counters::{Counter, DropReason, Stats};
use xdpvs_api::msg::{check_status_path, decode_blob, BgpView, CheckStatus, Rates, SyncView, Totals, View};
use xdpvs_api::shm::{monotonic_ns, Region, BLOB_BGP, BLOB_RATES, BLOB_SYNC, BLOB_VIEW};

type Labels = Vec<(String, String)>;

/// What one scrape read.
#[derive(Debug)]
struct Scrape {
    view: View,
    totals: Totals,
    rates: Rates,
    sync: SyncView,
    bgp: BgpView,
    checks: CheckStatus,
    now_ns: u64,
}

/// The answer to `GET /metrics`.
pub fn response(instance: &str) -> axum::response::Response {
    match render(instance) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// The metrics of `instance` as Prometheus text.
pub fn render(instance: &str) -> Result<String, String> {
    let region = Region::open(instance).map_err(|e| e.to_string())?;
    let blob = |b| region.read_blob(b).map_err(|e| e.to_string());
    let view: View = decode_blob("configuration view", &blob(BLOB_VIEW)?)?;
    let rates: Rates = decode_blob("rate estimate", &blob(BLOB_RATES)?).unwrap_or_default();
    let sync_blob = blob(BLOB_SYNC)?;
    let sync: SyncView = if sync_blob.is_empty() { SyncView::default() } else { decode_blob("sync view", &sync_blob)? };
    let bgp_blob = blob(BLOB_BGP)?;
    let bgp: BgpView = if bgp_blob.is_empty() { BgpView::default() } else { decode_blob("BGP view", &bgp_blob)? };
    let totals = Totals::read(&region).map_err(|e| e.to_string())?;
    let checks = std::fs::read(check_status_path(instance))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { view, totals, rates, sync, bgp, checks, now_ns: monotonic_ns() }));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).map_err(|e| e.to_string())?;
    Ok(out)
}

/// One metric family: `rows` of (labels, value).
fn family<V: Into<f64>>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    rows: impl IntoIterator<Item = (Labels, V)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, ty)?;
    for (labels, v) in rows {
        let fam = m.encode_family(&labels)?;
        let v: f64 = v.into();
        // Whole numbers as integers, as node_exporter writes them.
        let whole = v.fract() == 0.0 && v.abs() < 9e15;
        match ty {
            MetricType::Counter if whole => ConstCounter::new(v as u64).encode(fam)?,
            MetricType::Counter => ConstCounter::new(v).encode(fam)?,
            _ if whole => ConstGauge::new(v as i64).encode(fam)?,
            _ => ConstGauge::new(v).encode(fam)?,
        }
    }
    Ok(())
}

fn l(pairs: &[(&str, String)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// node_exporter's labels of a service: (local_address, local_port, proto, local_mark).
fn service_labels(key: &ServiceKey) -> Vec<(&'static str, String)> {
    match key {
        ServiceKey::Addr(m) => vec![
            ("local_address", m.addr.to_string()),
            ("local_port", m.port.to_string()),
            (
                "proto",
                match m.proto {
                    Proto::Tcp => "TCP",
                    Proto::Udp => "UDP",
                }
                .to_string(),
            ),
            ("local_mark", String::new()),
        ],
        ServiceKey::Fwmark { mark, .. } => vec![
            ("local_address", String::new()),
            ("local_port", String::new()),
            ("proto", "FWM".to_string()),
            ("local_mark", mark.to_string()),
        ],
    }
}

const STAT_HELP: [(&str, &str); 5] = [
    ("connections", "connections scheduled"),
    ("incoming_packets", "packets from clients"),
    ("outgoing_packets", "packets to clients"),
    ("incoming_bytes", "bytes from clients"),
    ("outgoing_bytes", "bytes to clients"),
];

impl Scrape {
    fn all_services(&self) -> Stats {
        self.totals
            .services
            .values()
            .fold(Stats::default(), |a, s| Stats::from_fields(std::array::from_fn(|k| a.fields()[k] + s.fields()[k])))
    }

    /// Every real server: its node_exporter labels, totals and weight.
    fn backends(&self) -> Vec<(Labels, xdpvs_api::msg::DestTotals, u32)> {
        let mut out = Vec::new();
        for s in &self.view.services {
            for d in &s.dests {
                let mut labels = service_labels(&s.spec.key);
                labels.insert(2, ("remote_address", d.spec.addr.to_string()));
                labels.insert(3, ("remote_port", d.spec.port.to_string()));
                let t = self.totals.dests.get(&(d.slot, d.serial)).copied().unwrap_or_default();
                out.push((l(&labels), t, d.spec.weight));
            }
        }
        out
    }

    fn node_ipvs(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.all_services().fields();
        for (k, (name, help)) in STAT_HELP.iter().enumerate() {
            let help = format!("The total number of {help} (all virtual services).");
            family(enc, &format!("node_ipvs_{name}"), &help, MetricType::Counter, [(Vec::new(), all[k] as f64)])?;
        }
        let b = self.backends();
        let gauge = |f: &dyn Fn(&(Labels, xdpvs_api::msg::DestTotals, u32)) -> f64| {
            b.iter().map(|x| (x.0.clone(), f(x))).collect::<Vec<_>>()
        };
        family(
            enc,
            "node_ipvs_backend_connections_active",
            "The current active connections by local and remote address.",
            MetricType::Gauge,
            gauge(&|x| f64::from(x.1.active)),
        )?;
        family(
            enc,
            "node_ipvs_backend_connections_inactive",
            "The current inactive connections by local and remote address.",
            MetricType::Gauge,
            gauge(&|x| f64::from(x.1.inactive)),
        )?;
        family(
            enc,
            "node_ipvs_backend_weight",
            "The current backend weight by local and remote address.",
            MetricType::Gauge,
            gauge(&|x| f64::from(x.2)),
        )
    }

    fn per_object(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let b = self.backends();
        for (k, (name, help)) in STAT_HELP.iter().enumerate() {
            let rows = b.iter().map(|x| (x.0.clone(), x.1.stats.fields()[k] as f64));
            family(enc, &format!("xdpvs_backend_{name}"), &format!("Real server: {help}."), MetricType::Counter, rows)?;
            let rows = self.view.services.iter().map(|s| {
                let v = self.totals.services.get(&(s.slot, s.serial)).map_or(0, |x| x.fields()[k]);
                (l(&service_labels(&s.spec.key)), v as f64)
            });
            family(
                enc,
                &format!("xdpvs_service_{name}"),
                &format!("Virtual service: {help}."),
                MetricType::Counter,
                rows,
            )?;
            let rows = self.view.services.iter().map(|s| {
                let r = self.rates.services.iter().find(|r| (r.slot, r.serial) == (s.slot, s.serial));
                (l(&service_labels(&s.spec.key)), r.map_or(0, |r| r.rate.fields()[k]) as f64)
            });
            let help = format!("Virtual service: {help} per second (IPVS's 2-second estimator, as --rate).");
            family(enc, &format!("xdpvs_service_{name}_per_second"), &help, MetricType::Gauge, rows)?;
        }
        Ok(())
    }

    fn cores(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let core = |i: usize| vec![("core".to_string(), i.to_string())];
        for &c in Counter::ALL.iter().filter(|c| !matches!(c, Counter::SessionsV4 | Counter::SessionsV6)) {
            let rows = self.totals.cores.iter().enumerate().map(|(i, r)| (core(i), r.counters.get(c) as f64));
            family(
                enc,
                &format!("xdpvs_{}", c.name()),
                &format!("Per core: {}.", c.name()),
                MetricType::Counter,
                rows,
            )?;
        }
        let rows = self.totals.cores.iter().enumerate().flat_map(|(i, r)| {
            [("4", Counter::SessionsV4), ("6", Counter::SessionsV6)].map(|(fam, c)| {
                let mut labels = core(i);
                labels.push(("family".into(), fam.into()));
                (labels, r.counters.get(c) as f64)
            })
        });
        family(
            enc,
            "xdpvs_sessions",
            "Sessions and templates a core holds, by address family.",
            MetricType::Gauge,
            rows,
        )?;
        let rows = self.totals.cores.iter().enumerate().flat_map(|(i, r)| {
            xdpvs_api::counters::SessionState::ALL.iter().map(move |&st| {
                let labels = vec![("core".to_string(), i.to_string()), ("state".into(), st.name().into())];
                (labels, r.counters.sessions(st) as f64)
            })
        });
        let help = "Sessions a core holds, by TCP state (and UDP, templates).";
        family(enc, "xdpvs_sessions_by_state", help, MetricType::Gauge, rows)?;
        let rows = self.totals.cores.iter().enumerate().flat_map(|(i, r)| {
            DropReason::ALL.iter().map(move |&d| {
                (
                    vec![("core".to_string(), i.to_string()), ("reason".into(), d.name().into())],
                    r.counters.dropped(d) as f64,
                )
            })
        });
        family(enc, "xdpvs_drops", "Frames dropped, by core and reason.", MetricType::Counter, rows)?;
        let gen = [(Vec::new(), self.view.generation as f64)];
        family(enc, "xdpvs_config_generation", "The configuration generation published.", MetricType::Gauge, gen)?;
        let rows = self.totals.cores.iter().enumerate().map(|(i, r)| (core(i), r.generation as f64));
        family(enc, "xdpvs_worker_generation", "The generation each worker runs.", MetricType::Gauge, rows)?;
        let age = self.totals.cores.iter().map(|r| self.now_ns.saturating_sub(r.adopted_ns)).min().unwrap_or(0);
        let age = [(Vec::new(), age as f64 / 1e9)];
        family(
            enc,
            "xdpvs_config_age_seconds",
            "Seconds since the workers adopted the running generation.",
            MetricType::Gauge,
            age,
        )
    }

    fn health(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.checks.checks.iter().map(|c| {
            let v = match c.state.as_str() {
                "up" => 1.0,
                "down" => 0.0,
                _ => -1.0,
            };
            (
                l(&[
                    ("virtual_server", c.virtual_server.clone()),
                    ("real_server", c.real_server.clone()),
                    ("check", c.check.clone()),
                ]),
                v,
            )
        });
        family(
            enc,
            "xdpvs_healthcheck_up",
            "xdpvs-checker's verdict: 1 up, 0 down, -1 not yet known.",
            MetricType::Gauge,
            rows,
        )?;
        let rows = self.checks.checks.iter().map(|c| {
            (
                l(&[
                    ("virtual_server", c.virtual_server.clone()),
                    ("real_server", c.real_server.clone()),
                    ("check", c.check.clone()),
                ]),
                f64::from(c.failures_in_row),
            )
        });
        family(enc, "xdpvs_healthcheck_failures_in_row", "Failed attempts in a row.", MetricType::Gauge, rows)
    }

    /// What xdpvs tells BIRD (none without `bird_vips`).
    fn bgp(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let b = &self.bgp;
        if b.protocols.is_empty() {
            return Ok(());
        }
        let labels = |p: &xdpvs_api::msg::ProtocolView| l(&[("protocol", p.name.clone()), ("kind", p.kind.clone())]);
        let on = |x: bool| if x { 1.0 } else { 0.0 };
        family(
            enc,
            "xdpvs_bgp_announced",
            "Whether BIRD announces the protocol's routes at xdpvs's word (1) or has withdrawn them (0).",
            MetricType::Gauge,
            b.protocols.iter().map(|p| (labels(p), on(p.announced))),
        )?;
        family(
            enc,
            "xdpvs_bgp_announcements",
            "Times BIRD enabled the protocol at xdpvs's word.",
            MetricType::Counter,
            b.protocols.iter().map(|p| (labels(p), p.announcements as f64)),
        )?;
        family(
            enc,
            "xdpvs_bgp_withdrawals",
            "Times BIRD disabled the protocol at xdpvs's word.",
            MetricType::Counter,
            b.protocols.iter().map(|p| (labels(p), p.withdrawals as f64)),
        )?;
        family(
            enc,
            "xdpvs_bgp_director_healthy",
            "Whether the director can serve (workers fresh, rules loaded, not drained, not stopping).",
            MetricType::Gauge,
            [(Labels::new(), on(b.healthy))],
        )?;
        family(
            enc,
            "xdpvs_bgp_drained",
            "Drained by hand (xdpvsadm --drain).",
            MetricType::Gauge,
            [(Labels::new(), on(b.drained))],
        )?;
        family(
            enc,
            "xdpvs_bgp_errors",
            "Commands BIRD refused or that could not reach it.",
            MetricType::Counter,
            [(Labels::new(), b.errors as f64)],
        )
    }

    fn sync(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let running = [("master", self.sync.master.is_some()), ("backup", self.sync.backup.is_some())]
            .map(|(r, on)| (vec![("role".to_string(), r.to_string())], if on { 1.0 } else { 0.0 }));
        family(
            enc,
            "xdpvs_sync_daemon_running",
            "Connection sync daemons running, by role.",
            MetricType::Gauge,
            running,
        )?;
        let s = &self.sync.stats;
        for (name, v) in [
            ("sent_datagrams", s.sent_datagrams),
            ("sent_records", s.sent_records),
            ("sent_bytes", s.sent_bytes),
            ("send_errors", s.send_errors),
            ("received_datagrams", s.received_datagrams),
            ("received_records", s.received_records),
            ("core_inbox_full", s.core_inbox_full),
            ("bulk_requests_sent", s.bulk_requests_sent),
            ("bulk_requests_received", s.bulk_requests_received),
        ] {
            family(
                enc,
                &format!("xdpvs_sync_{name}"),
                &format!("Connection sync: {name}."),
                MetricType::Counter,
                [(Vec::new(), v as f64)],
            )?;
        }
        let by = |v: &[(String, u64)]| {
            v.iter().map(|(k, n)| (vec![("reason".to_string(), k.clone())], *n as f64)).collect::<Vec<_>>()
        };
        family(
            enc,
            "xdpvs_sync_bad_datagrams",
            "Sync datagrams dropped whole, by reason.",
            MetricType::Counter,
            by(&s.bad_datagrams),
        )?;
        family(
            enc,
            "xdpvs_sync_bad_records",
            "Sync records skipped, by reason.",
            MetricType::Counter,
            by(&s.bad_records),
        )
    }
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.node_ipvs(&mut enc)?;
        self.per_object(&mut enc)?;
        self.cores(&mut enc)?;
        self.health(&mut enc)?;
        self.sync(&mut enc)?;
        self.bgp(&mut enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpvs_api::config::{DestSpec, Fwd, Match, SchedKind, ServiceSpec};
    use xdpvs_api::msg::{DestTotals, DestView, ServiceView};

    fn text(s: Scrape) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(s));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn node_exporters_names_and_labels() {
        let key = ServiceKey::Addr(Match { proto: Proto::Tcp, addr: "198.18.0.10".parse().unwrap(), port: 80 });
        let fw = ServiceKey::Fwmark { mark: 7, v6: false };
        let dest = |a: &str, w| DestSpec {
            addr: a.parse().unwrap(),
            port: 8080,
            weight: w,
            fwd: Fwd::Nat,
            u_threshold: 0,
            l_threshold: 0,
        };
        let svc = |slot, key, d: DestSpec| ServiceView {
            slot,
            serial: 1,
            spec: ServiceSpec::new(key, SchedKind::Rr),
            baseline: Stats::default(),
            dests: vec![DestView { slot, serial: 1, spec: d, baseline: Stats::default() }],
            laddrs: Vec::new(),
        };
        let mut totals = Totals::of(Vec::new());
        let stats = Stats { conns: 4, inpkts: 40, outpkts: 30, inbytes: 4000, outbytes: 3000 };
        totals.services.insert((0, 1), stats);
        totals.dests.insert((0, 1), DestTotals { stats, active: 2, inactive: 1, persist: 0 });
        let s = Scrape {
            view: View {
                services: vec![svc(0, key, dest("198.19.0.11", 3)), svc(1, fw, dest("198.19.0.12", 1))],
                ..View::default()
            },
            totals,
            rates: Rates::default(),
            sync: SyncView::default(),
            bgp: BgpView {
                socket: "/run/bird/bird.ctl".into(),
                healthy: true,
                protocols: vec![xdpvs_api::msg::ProtocolView {
                    name: "vips".into(),
                    kind: "vips".into(),
                    vips: Vec::new(),
                    want: true,
                    announced: true,
                    reason: String::new(),
                    announcements: 2,
                    withdrawals: 1,
                }],
                ..BgpView::default()
            },
            checks: CheckStatus::default(),
            now_ns: 0,
        };
        let t = text(s);
        for line in [
            "node_ipvs_connections_total 4",
            "xdpvs_bgp_announced{protocol=\"vips\",kind=\"vips\"} 1",
            "xdpvs_bgp_withdrawals_total{protocol=\"vips\",kind=\"vips\"} 1",
            "xdpvs_bgp_director_healthy 1",
            "node_ipvs_incoming_bytes_total 4000",
            r#"node_ipvs_backend_weight{local_address="198.18.0.10",local_port="80",remote_address="198.19.0.11",remote_port="8080",proto="TCP",local_mark=""} 3"#,
            r#"node_ipvs_backend_connections_active{local_address="198.18.0.10",local_port="80",remote_address="198.19.0.11",remote_port="8080",proto="TCP",local_mark=""} 2"#,
            r#"node_ipvs_backend_weight{local_address="",local_port="",remote_address="198.19.0.12",remote_port="8080",proto="FWM",local_mark="7"} 1"#,
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line:?} in:\n{t}");
        }
    }
}
