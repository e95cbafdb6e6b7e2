//! `-L -n [--stats]` in ipvsadm 1.31's layout, from the daemon's stats
//! snapshot (JSON). The shared-memory region will replace the file as the
//! source; the layout stays.

use serde_json::Value;
use std::fmt::Write as _;

/// ipvsadm's `print_largenum`: exact below 100 million (8 columns), then
/// thousands, millions, billions, trillions with a K/M/G/T suffix.
fn largenum(n: u64, exact: bool) -> String {
    match n {
        _ if exact || n < 100_000_000 => n.to_string(),
        _ if n < 1_000_000_000 => format!("{}K", n / 1_000),
        _ if n < 100_000_000_000 => format!("{}M", n / 1_000_000),
        _ if n < 100_000_000_000_000 => format!("{}G", n / 1_000_000_000),
        _ => format!("{}T", n / 1_000_000_000_000),
    }
}

fn num(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Renders the listing; `stats`: the traffic columns instead of weights.
pub fn render(snapshot: &Value, stats: bool, exact: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "IP Virtual Server version 1.2.1 (size=4096)");
    if stats {
        let _ = writeln!(out, "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes");
        let _ = writeln!(out, "  -> RemoteAddress:Port");
    } else {
        let _ = writeln!(out, "Prot LocalAddress:Port Scheduler Flags");
        let _ = writeln!(out, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    }
    for s in snapshot.get("services").and_then(Value::as_array).into_iter().flatten() {
        let name = s.get("service").and_then(Value::as_str).unwrap_or("?");
        let (proto, addr) = name.split_once(' ').unwrap_or(("?", name));
        if stats {
            let row = |v: &Value| {
                ["conns", "inpkts", "outpkts", "inbytes", "outbytes"]
                    .map(|k| format!("{:>8}", largenum(num(v, k), exact)))
                    .join(" ")
            };
            let _ = writeln!(out, "{proto:<4} {addr:<28} {}", row(s));
            for d in s.get("dests").and_then(Value::as_array).into_iter().flatten() {
                let _ = writeln!(out, "  -> {:<28} {}", dest_name(d), row(d));
            }
        } else {
            let _ = writeln!(out, "{proto:<4} {addr} {}", s.get("scheduler").and_then(Value::as_str).unwrap_or("?"));
            for d in s.get("dests").and_then(Value::as_array).into_iter().flatten() {
                let fwd = d.get("forward").and_then(Value::as_str).unwrap_or("?");
                let _ = writeln!(
                    out,
                    "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                    dest_name(d),
                    fwd,
                    num(d, "weight"),
                    num(d, "active"),
                    num(d, "inactive")
                );
            }
        }
    }
    out
}

fn dest_name(d: &Value) -> String {
    let a = d.get("address").and_then(Value::as_str).unwrap_or("?");
    let p = num(d, "port");
    if a.contains(':') {
        format!("[{a}]:{p}")
    } else {
        format!("{a}:{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_layout_matches_ipvsadm() {
        let snap: Value = serde_json::json!({"services": [{"service": "TCP 198.18.0.10:80", "scheduler": "rr",
            "conns": 300, "inpkts": 1800, "outpkts": 1500, "inbytes": 123456, "outbytes": 2345678,
            "dests": [{"address": "198.19.0.11", "port": 8080, "forward": "Masq", "weight": 1, "active": 0, "inactive": 2,
                       "conns": 100, "inpkts": 600, "outpkts": 500, "inbytes": 41152, "outbytes": 781892}]}]});
        let t = render(&snap, true, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1], "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes");
        assert_eq!(lines[3], "TCP  198.18.0.10:80                    300     1800     1500   123456  2345678");
        assert_eq!(lines[4], "  -> 198.19.0.11:8080                  100      600      500    41152   781892");
        let t = render(&snap, false, false);
        assert!(t.contains("TCP  198.18.0.10:80 rr"), "{t}");
        assert!(t.contains("  -> 198.19.0.11:8080             Masq    1      0          2"), "{t}");
        assert_eq!(largenum(123456789, true), "123456789");
        assert_eq!(
            (largenum(123456789, false), largenum(12_345_678_901, false)),
            ("123456K".to_string(), "12345M".to_string())
        );
    }
}
