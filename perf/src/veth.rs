//! `perf veth`: runs perf/veth.sh (the namespaces, the paths, the trials),
//! measures memory per session with 1 M sessions, then writes the results
//! directory: raw.jsonl (every trial), results.json (every figure), a table
//! (stdout and table.txt) and PNG plots (perf/plot.py). Returns the summary
//! object `{"placement_a": {PATH: {...}}, "placement_b": …, "cps": {PATH: N},
//! "generator_max_pps": {"placement_a": N, "placement_b": N},
//! "bytes_per_session": N}`; each path has `cpu_busy` (both CPUs' busy share
//! at a fixed offered rate) and `generator_limited`.

use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const PATHS: [&str; 8] =
    ["xdpvs-fullnat", "xdpvs-nat", "xdpvs-dr", "xdpvs-tun", "xsk-fwd", "nft-dnat", "kernel-fwd", "xdp-redirect"];

pub fn run(quick: bool, out: Option<PathBuf>, again: bool) -> Result<Value, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = out.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        root.join("perf/results").join(t.to_string())
    });
    let (rss, heap, quick) = if again { earlier_memory(&out)? } else { measure(&root, &out, quick)? };
    let raw = std::fs::read_to_string(out.join("raw.jsonl")).map_err(|e| format!("no raw results: {e}"))?;
    let lines: Vec<Value> = raw.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let summary = summarize(&lines, rss);
    let mut full = summary.clone();
    full["heap_bytes_per_session"] = json!(heap);
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

/// Runs perf/veth.sh into `out`, then measures memory per session with 1 M
/// sessions in one core's table: (RSS bytes, heap bytes, quick).
fn measure(root: &Path, out: &Path, quick: bool) -> Result<(f64, f64, bool), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let status = Command::new("bash")
        .arg(root.join("perf/veth.sh"))
        .env("RESULTS", out)
        .env("QUICK", if quick { "1" } else { "0" })
        .status()
        .map_err(|e| format!("cannot run perf/veth.sh: {e}"))?;
    if !status.success() {
        return Err(format!("perf/veth.sh failed ({status}); partial results in {}", out.display()));
    }
    core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
    let (rss, heap) = crate::engine::memory(1_000_000);
    Ok((rss.round(), heap.round(), quick))
}

/// The memory figures and mode of the run already in `out` (`--again`).
fn earlier_memory(out: &Path) -> Result<(f64, f64, bool), String> {
    let path = out.join("results.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e} (--again needs a run)", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let num = |k: &str| v[k].as_f64().ok_or_else(|| format!("{}: no {k}", path.display()));
    Ok((num("bytes_per_session")?, num("heap_bytes_per_session")?, v["quick"] == true))
}

/// The summary object from the raw lines.
fn summarize(lines: &[Value], bytes_per_session: f64) -> Value {
    let mut v = json!({"placement_a": {}, "placement_b": {}, "cps": {}, "generator_max_pps": {},
        "bytes_per_session": bytes_per_session});
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
            Some("generator") => {
                let key = if l["placement"] == "A" { "placement_a" } else { "placement_b" };
                v["generator_max_pps"][key] = l["max_pps"].clone();
            }
            _ => {}
        }
    }
    // The most a path carried in any 64-byte trial of its search, loss or
    // not: a loss-free rate one stall of this VM can sink, this it cannot.
    for l in lines.iter().filter(|l| l["kind"] == "trial" && l["frame"] == "udp64") {
        let key = if l["placement"] == "A" { "placement_a" } else { "placement_b" };
        let rate = match (l["delivered"].as_f64(), l["seconds"].as_f64()) {
            (Some(d), Some(s)) if s > 0.0 => (d / s).round(),
            _ => continue,
        };
        if let Some(p) = l["path"].as_str().filter(|p| v[key][*p].is_object()) {
            let x = &mut v[key][p];
            if x["peak_delivered_pps"].as_f64().is_none_or(|peak| rate > peak) {
                x["peak_delivered_pps"] = json!(rate);
            }
            // What the hypervisor took from the VM during the search.
            if let Some(ms) = l["steal_ms"].as_f64() {
                x["search_steal_ms"] = json!(x["search_steal_ms"].as_f64().unwrap_or(0.0) + ms);
            }
        }
    }
    // After the paths: a CPU line belongs to a path's object.
    for l in lines.iter().filter(|l| l["kind"] == "cpu") {
        let key = if l["placement"] == "A" { "placement_a" } else { "placement_b" };
        if let Some(p) = l["path"].as_str().filter(|p| v[key][*p].is_object()) {
            v[key][p]["cpu_busy"] = json!({
                "offered_pps": l["offered_pps"], "delivered_pps": l["delivered_pps"],
                "cpu0": l["cpu0_busy"], "cpu1": l["cpu1_busy"],
            });
        }
    }
    mark_generator_limited(&mut v);
    v
}

/// A path whose loss-free rate reached 95 % of what the generator sends
/// with nothing behind d0 is marked: its capacity is "≥ generator".
fn mark_generator_limited(v: &mut Value) {
    for key in ["placement_a", "placement_b"] {
        let Some(max) = v["generator_max_pps"][key].as_f64() else { continue };
        if let Some(paths) = v[key].as_object_mut() {
            for x in paths.values_mut() {
                let limited = x["lossless_pps"].as_f64().is_some_and(|l| l >= 0.95 * max);
                x["generator_limited"] = json!(limited);
            }
        }
    }
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
        "{:<14} {:>3} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>11} {:>9} {:>8}",
        "path",
        "pl",
        "lossless",
        "peak",
        "2x->",
        "p50 us",
        "p99 us",
        "p999 us",
        "/nft",
        "/xdp",
        "/xsk",
        "/gen",
        "cpu0/cpu1%",
        "cps",
        "steal ms"
    );
    for pl in ["a", "b"] {
        let key = format!("placement_{pl}");
        let base_nft = &r[&key]["nft-dnat"]["lossless_pps"];
        let base_xdp = &r[&key]["xdp-redirect"]["lossless_pps"];
        let base_xsk = &r[&key]["xsk-fwd"]["lossless_pps"];
        let base_gen = &r["generator_max_pps"][&key];
        for p in PATHS {
            let x = &r[&key][p];
            if x.is_null() {
                continue;
            }
            let lat = |q: &str| x["latency_us"][q].as_f64().map_or("-".into(), |v| format!("{v:.1}"));
            let lossless = if x["generator_limited"] == true {
                format!(">={}", num(&x["lossless_pps"]))
            } else {
                num(&x["lossless_pps"])
            };
            let share = |c: &str| x["cpu_busy"][c].as_f64().map_or("-".into(), |v| format!("{:.0}", v * 100.0));
            let _ = writeln!(
                t,
                "{:<14} {:>3} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>11} {:>9} {:>8}",
                p,
                pl.to_uppercase(),
                lossless,
                num(&x["peak_delivered_pps"]),
                num(&x["overload_delivered_pps"]),
                lat("p50"),
                lat("p99"),
                lat("p999"),
                ratio(&x["lossless_pps"], base_nft),
                ratio(&x["lossless_pps"], base_xdp),
                ratio(&x["lossless_pps"], base_xsk),
                ratio(&x["lossless_pps"], base_gen),
                format!("{}/{}", share("cpu0"), share("cpu1")),
                if pl == "a" { num(&r["cps"][p]) } else { String::new() },
                num(&x["search_steal_ms"])
            );
        }
    }
    for (pl, key) in [("A", "placement_a"), ("B", "placement_b")] {
        let _ = writeln!(
            t,
            "generator alone, placement {pl}: {} pps (>= marks a path that reached 95 % of it)",
            num(&r["generator_max_pps"][key])
        );
    }
    let _ = writeln!(t, "peak: the most delivered in any 64-byte trial of the search, loss or not");
    let _ = writeln!(t, "steal ms: time the hypervisor took from the VM's CPUs during the search's trials");
    let _ = writeln!(t, "cpu0/cpu1%: each CPU's busy share at a fixed offered rate (no idle spinning)");
    let _ = writeln!(t, "memory per session with 1M sessions: {} bytes", r["bytes_per_session"]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(pl: &str, p: &str, lossless: u64) -> Value {
        json!({"kind": "path", "placement": pl, "path": p, "lossless_pps": lossless,
            "overload_delivered_pps": 1, "latency_us": {"p50": 1, "p99": 2, "p999": 3}})
    }

    #[test]
    fn cpu_share_and_the_generator_ceiling_reach_each_path() {
        let lines = vec![
            json!({"kind": "generator", "placement": "A", "max_pps": 600_000}),
            path("A", "xdpvs-nat", 580_000),
            path("A", "nft-dnat", 300_000),
            json!({"kind": "trial", "placement": "A", "path": "xdpvs-nat", "frame": "udp64",
                "offered_pps": 600_000, "sent": 600_000, "delivered": 590_000, "seconds": 1.0}),
            json!({"kind": "trial", "placement": "A", "path": "xdpvs-nat", "frame": "udp64",
                "offered_pps": 300_000, "sent": 300_000, "delivered": 150_000, "seconds": 0.5, "steal_ms": 40}),
            json!({"kind": "trial", "placement": "A", "path": "xdpvs-nat", "frame": "udp512",
                "offered_pps": 900_000, "sent": 900_000, "delivered": 900_000, "seconds": 1.0}),
            json!({"kind": "cpu", "placement": "A", "path": "xdpvs-nat", "offered_pps": 100_000,
                "delivered_pps": 99_990, "cpu0_busy": 0.41, "cpu1_busy": 0.22}),
            // A CPU line for a path with no results is not made up into one.
            json!({"kind": "cpu", "placement": "B", "path": "xdpvs-nat", "offered_pps": 100_000,
                "delivered_pps": 0, "cpu0_busy": 0.1, "cpu1_busy": 0.1}),
        ];
        let v = summarize(&lines, 92.0);
        let nat = &v["placement_a"]["xdpvs-nat"];
        assert_eq!(nat["cpu_busy"]["cpu1"], json!(0.22));
        assert_eq!(nat["cpu_busy"]["delivered_pps"], json!(99_990));
        assert_eq!(nat["generator_limited"], json!(true));
        // The 64-byte trials' best, per second; the 512-byte trial is not one.
        assert_eq!(nat["peak_delivered_pps"], json!(590_000.0));
        assert!(v["placement_a"]["nft-dnat"]["peak_delivered_pps"].is_null());
        assert_eq!(nat["search_steal_ms"], json!(40.0));
        assert_eq!(v["placement_a"]["nft-dnat"]["generator_limited"], json!(false));
        assert!(v["placement_b"]["xdpvs-nat"].is_null());
        let t = table(&v);
        assert!(t.contains(">=580k"), "{t}");
        assert!(t.contains("41/22"), "{t}");
        assert!(t.contains("generator alone, placement A: 600k pps"), "{t}");
    }
}
