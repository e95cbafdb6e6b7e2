//! `perf veth`: runs perf/veth.sh (the namespaces, the paths, the trials),
//! measures memory per session with 1 M sessions, then writes the results
//! directory: raw.jsonl (every trial), results.json (every figure), a table
//! (stdout and table.txt) and PNG plots (perf/plot.py). Returns the summary
//! object `{"placement_a": {PATH: {...}}, "placement_b": …, "cps": {PATH: N},
//! "bytes_per_session": N}`.

use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const PATHS: [&str; 8] =
    ["xdpvs-fullnat", "xdpvs-nat", "xdpvs-dr", "xdpvs-tun", "xsk-fwd", "nft-dnat", "kernel-fwd", "xdp-redirect"];

pub fn run(quick: bool, out: Option<PathBuf>) -> Result<Value, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = out.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        root.join("perf/results").join(t.to_string())
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let status = Command::new("bash")
        .arg(root.join("perf/veth.sh"))
        .env("RESULTS", &out)
        .env("QUICK", if quick { "1" } else { "0" })
        .status()
        .map_err(|e| format!("cannot run perf/veth.sh: {e}"))?;
    if !status.success() {
        return Err(format!("perf/veth.sh failed ({status}); partial results in {}", out.display()));
    }
    let raw = std::fs::read_to_string(out.join("raw.jsonl")).map_err(|e| format!("no raw results: {e}"))?;
    let lines: Vec<Value> = raw.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    // Memory per session: 1 M sessions in one core's table (RSS delta).
    core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
    let (rss, heap) = crate::engine::memory(1_000_000);
    let summary = summarize(&lines, rss.round());
    let mut full = summary.clone();
    full["heap_bytes_per_session"] = json!(heap.round());
    full["quick"] = json!(quick);
    full["trials"] = Value::Array(lines.iter().filter(|l| l["kind"] == "trial").cloned().collect());
    full["paths"] = Value::Array(lines.iter().filter(|l| l["kind"] == "path").cloned().collect());
    full["cps_runs"] = Value::Array(lines.iter().filter(|l| l["kind"] == "cps").cloned().collect());
    let text = table(&full);
    print!("{text}");
    let write = |name: &str, body: String| {
        std::fs::write(out.join(name), body).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write("results.json", serde_json::to_string_pretty(&full).unwrap_or_default())?;
    write("table.txt", text)?;
    let plot = Command::new("/usr/bin/python3").arg(root.join("perf/plot.py")).arg(&out).status();
    match plot {
        Ok(s) if s.success() => {}
        _ => return Err(format!("perf/plot.py could not draw the plots in {}", out.display())),
    }
    println!("results: {}", out.display());
    Ok(summary)
}

/// The summary object from the raw lines.
fn summarize(lines: &[Value], bytes_per_session: f64) -> Value {
    let mut v = json!({"placement_a": {}, "placement_b": {}, "cps": {}, "bytes_per_session": bytes_per_session});
    for l in lines {
        match l["kind"].as_str() {
            Some("path") => {
                let key = if l["placement"] == "A" { "placement_a" } else { "placement_b" };
                let mut m = Map::new();
                for k in ["lossless_pps", "overload_delivered_pps", "latency_us"] {
                    m.insert(k.into(), l[k].clone());
                }
                for k in ["lossless_pps_udp512", "lossless_pps_tcp64"] {
                    if !l[k].is_null() {
                        m.insert(k.into(), l[k].clone());
                    }
                }
                if let Some(p) = l["path"].as_str() {
                    v[key][p] = Value::Object(m);
                }
            }
            Some("cps") => {
                if let Some(p) = l["path"].as_str() {
                    v["cps"][p] = l["result"]["cps"].clone();
                }
            }
            _ => {}
        }
    }
    v
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x >= 1000.0 => format!("{:.0}k", x / 1000.0),
        Some(x) => format!("{x:.0}"),
        None => "-".into(),
    }
}

fn ratio(a: &Value, b: &Value) -> String {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// The table: per path and placement, raw figures and the ratios the
/// targets are stated in.
fn table(r: &Value) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<14} {:>3} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9}",
        "path", "pl", "lossless", "2x->", "p50 us", "p99 us", "p999 us", "/nft", "/xdp", "/xsk", "cps"
    );
    for pl in ["a", "b"] {
        let key = format!("placement_{pl}");
        let base_nft = &r[&key]["nft-dnat"]["lossless_pps"];
        let base_xdp = &r[&key]["xdp-redirect"]["lossless_pps"];
        let base_xsk = &r[&key]["xsk-fwd"]["lossless_pps"];
        for p in PATHS {
            let x = &r[&key][p];
            if x.is_null() {
                continue;
            }
            let lat = |q: &str| x["latency_us"][q].as_f64().map_or("-".into(), |v| format!("{v:.1}"));
            let _ = writeln!(
                t,
                "{:<14} {:>3} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9}",
                p,
                pl.to_uppercase(),
                num(&x["lossless_pps"]),
                num(&x["overload_delivered_pps"]),
                lat("p50"),
                lat("p99"),
                lat("p999"),
                ratio(&x["lossless_pps"], base_nft),
                ratio(&x["lossless_pps"], base_xdp),
                ratio(&x["lossless_pps"], base_xsk),
                if pl == "a" { num(&r["cps"][p]) } else { String::new() }
            );
        }
    }
    let _ = writeln!(t, "memory per session with 1M sessions: {} bytes", r["bytes_per_session"]);
    t
}
