//! What netfilter marks: the MARK rules of the `prerouting` hook, read as
//! the (protocol, address, port) triples xdpvs can steer. XDP sees packets
//! before netfilter, so an fwmark service made without `--match` (IPVS
//! style: `iptables -t mangle -A PREROUTING -d VIP -p tcp --dport 80 -j
//! MARK --set-mark 99` + `ipvsadm -A -f 99`) takes its matches from here.
//!
//! Two sources, as a director's rules come: `iptables-save -t mangle` (and
//! `ip6tables-save`) for iptables rules — whose MARK target nftables' JSON
//! does not spell out — and `nft -j list ruleset` for native nftables rules
//! (`meta mark set N`). A rule setting a mark with a condition xdpvs cannot
//! express (a source address, an interface, connection state…) is named in
//! a warning and left out.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use xdpvs_api::config::{Match, Proto};

/// Marks and what they cover, and the rules left out (one line each).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Marks {
    pub covers: BTreeMap<u32, Vec<Match>>,
    pub warnings: Vec<String>,
}

/// The most ports (or addresses) one rule may expand to.
const MAX_EXPANSION: usize = 1024;

impl Marks {
    fn add(&mut self, mark: u32, m: Match) {
        let v = self.covers.entry(mark).or_default();
        if !v.contains(&m) {
            v.push(m);
        }
    }
}

/// Reads the running system's rules (the tools that are not installed add
/// nothing).
pub fn read() -> Marks {
    let mut out = Marks::default();
    for (tool, v6) in [("iptables-save", false), ("ip6tables-save", true)] {
        if let Some(text) = run(tool, &["-t", "mangle"]) {
            iptables_save(&text, v6, &mut out);
        }
    }
    if let Some(text) = run("nft", &["-j", "list", "ruleset"]) {
        nft_json(&text, &mut out);
    }
    out
}

fn run(tool: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(tool).args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// One rule's conditions, as far as xdpvs can follow them.
#[derive(Debug, Default)]
struct Rule {
    protos: Vec<Proto>,
    addrs: Vec<IpAddr>,
    ports: Vec<u16>,
    mark: Option<u32>,
    /// What xdpvs cannot follow, if anything.
    unfollowable: Option<String>,
}

impl Rule {
    fn emit(self, what: &str, out: &mut Marks) {
        let Some(mark) = self.mark else { return };
        if let Some(why) = self.unfollowable {
            out.warnings.push(format!("{what} sets mark {mark} with {why}, which xdpvs cannot follow: left out"));
            return;
        }
        if self.addrs.is_empty() {
            out.warnings.push(format!(
                "{what} sets mark {mark} for any destination address, which xdpvs cannot steer: left out"
            ));
            return;
        }
        let protos = if self.protos.is_empty() { vec![Proto::Tcp, Proto::Udp] } else { self.protos };
        let ports = if self.ports.is_empty() { vec![0] } else { self.ports };
        for &proto in &protos {
            for &addr in &self.addrs {
                for &port in &ports {
                    out.add(mark, Match { proto, addr, port });
                }
            }
        }
    }
}

/// `iptables-save -t mangle` text: the `-A PREROUTING … -j MARK` rules.
pub fn iptables_save(text: &str, v6: bool, out: &mut Marks) {
    for (n, line) in text.lines().enumerate() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 2 || w[0] != "-A" || w[1] != "PREROUTING" || !w.contains(&"MARK") {
            continue;
        }
        let what = format!("{} rule {} (`{line}`)", if v6 { "ip6tables" } else { "iptables" }, n + 1);
        iptables_rule(&w[2..]).emit(&what, out);
    }
}

fn iptables_rule(w: &[&str]) -> Rule {
    let mut r = Rule::default();
    let mut i = 0;
    let bad = |r: &mut Rule, why: String| {
        r.unfollowable.get_or_insert(why);
    };
    while i < w.len() {
        let arg = w.get(i + 1).copied().unwrap_or("");
        match w[i] {
            "-d" | "--destination" => {
                match prefix_addrs(arg) {
                    Some(a) => r.addrs = a,
                    None => bad(&mut r, format!("destination {arg}")),
                }
                i += 2;
            }
            "-p" | "--protocol" => {
                match arg {
                    "tcp" | "6" => r.protos = vec![Proto::Tcp],
                    "udp" | "17" => r.protos = vec![Proto::Udp],
                    other => bad(&mut r, format!("protocol {other}")),
                }
                i += 2;
            }
            "-m" => i += 2, // tcp, udp, multiport: their options follow
            "--dport" | "--destination-port" => {
                match port_range(arg, ':') {
                    Some(p) => r.ports = p,
                    None => bad(&mut r, format!("ports {arg}")),
                }
                i += 2;
            }
            "--dports" | "--destination-ports" => {
                let ports: Option<Vec<Vec<u16>>> = arg.split(',').map(|p| port_range(p, ':')).collect();
                match ports {
                    Some(p) => r.ports = p.concat(),
                    None => bad(&mut r, format!("ports {arg}")),
                }
                i += 2;
            }
            "-j" => {
                if arg != "MARK" {
                    r.mark = None;
                    return r;
                }
                i += 2;
            }
            "--set-mark" | "--set-xmark" => {
                let (v, mask) = arg.split_once('/').unwrap_or((arg, "0xffffffff"));
                match (number(v), number(mask)) {
                    (Some(v), Some(0xffff_ffff)) => r.mark = Some(v),
                    _ => {
                        r.mark = number(v);
                        bad(&mut r, format!("a masked mark {arg}"));
                    }
                }
                i += 2;
            }
            "-c" => i += 3, // counters of iptables-save -c
            other => {
                bad(&mut r, format!("'{other}'"));
                i += 1;
            }
        }
    }
    r
}

/// `nft -j list ruleset`: the rules of `prerouting` chains that set
/// `meta mark` (an iptables rule's `xt` MARK target is iptables-save's).
pub fn nft_json(text: &str, out: &mut Marks) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else { return };
    let items = v.get("nftables").and_then(|x| x.as_array()).cloned().unwrap_or_default();
    let prerouting: Vec<(String, String, String)> = items
        .iter()
        .filter_map(|i| i.get("chain"))
        .filter(|c| c.get("hook").and_then(|h| h.as_str()) == Some("prerouting"))
        .filter_map(|c| Some((s(c, "family")?, s(c, "table")?, s(c, "name")?)))
        .collect();
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        let (Some(f), Some(t), Some(c)) = (s(rule, "family"), s(rule, "table"), s(rule, "chain")) else { continue };
        if !prerouting.contains(&(f.clone(), t.clone(), c.clone())) {
            continue;
        }
        let exprs = rule.get("expr").and_then(|e| e.as_array()).cloned().unwrap_or_default();
        if exprs.iter().any(|e| e.get("xt").is_some()) {
            continue;
        }
        let handle = rule.get("handle").and_then(|h| h.as_u64()).unwrap_or(0);
        nft_rule(&exprs).emit(&format!("nft rule {f} {t} {c} handle {handle}"), out);
    }
}

fn s(v: &serde_json::Value, k: &str) -> Option<String> {
    v.get(k).and_then(|x| x.as_str()).map(str::to_string)
}

fn nft_rule(exprs: &[serde_json::Value]) -> Rule {
    let mut r = Rule::default();
    for e in exprs {
        if let Some(m) = e.get("match") {
            nft_match(m, &mut r);
        } else if let Some(m) = e.get("mangle") {
            let is_mark = m.pointer("/key/meta/key").and_then(|k| k.as_str()) == Some("mark");
            match (is_mark, m.get("value").and_then(|v| v.as_u64())) {
                (true, Some(v)) if v <= u64::from(u32::MAX) => r.mark = Some(v as u32),
                _ => {
                    r.unfollowable.get_or_insert("a mangle statement".into());
                }
            }
        } else if e.get("counter").is_none() && e.get("accept").is_none() {
            let name = e.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
            r.unfollowable.get_or_insert(format!("a '{name}' statement"));
        }
    }
    r
}

fn nft_match(m: &serde_json::Value, r: &mut Rule) {
    let op = m.get("op").and_then(|o| o.as_str()).unwrap_or("==");
    let right = m.get("right").cloned().unwrap_or_default();
    let field = (
        m.pointer("/left/payload/protocol").and_then(|x| x.as_str()),
        m.pointer("/left/payload/field").and_then(|x| x.as_str()),
    );
    let meta = m.pointer("/left/meta/key").and_then(|x| x.as_str());
    if op != "==" && op != "in" {
        r.unfollowable.get_or_insert(format!("a '{op}' match"));
        return;
    }
    match (field, meta) {
        ((Some("ip" | "ip6"), Some("daddr")), _) => match nft_addrs(&right) {
            Some(a) => r.addrs = a,
            None => {
                r.unfollowable.get_or_insert(format!("destination {right}"));
            }
        },
        ((Some(p @ ("tcp" | "udp")), Some("dport")), _) => {
            r.protos = vec![if p == "tcp" { Proto::Tcp } else { Proto::Udp }];
            match nft_ports(&right) {
                Some(ports) => r.ports = ports,
                None => {
                    r.unfollowable.get_or_insert(format!("ports {right}"));
                }
            }
        }
        (_, Some("l4proto")) | ((Some("ip"), Some("protocol")), _) | ((Some("ip6"), Some("nexthdr")), _) => {
            match right.as_str() {
                Some("tcp") => r.protos = vec![Proto::Tcp],
                Some("udp") => r.protos = vec![Proto::Udp],
                _ => {
                    r.unfollowable.get_or_insert(format!("protocol {right}"));
                }
            }
        }
        _ => {
            r.unfollowable.get_or_insert(format!("the match {}", m.get("left").cloned().unwrap_or_default()));
        }
    }
}

fn nft_addrs(v: &serde_json::Value) -> Option<Vec<IpAddr>> {
    if let Some(a) = v.as_str() {
        return Some(vec![a.parse().ok()?]);
    }
    if let Some(p) = v.get("prefix") {
        let a = p.get("addr")?.as_str()?;
        let len = p.get("len")?.as_u64()?;
        return prefix_addrs(&format!("{a}/{len}"));
    }
    let set = v.get("set")?.as_array()?;
    set.iter().map(nft_addrs).collect::<Option<Vec<_>>>().map(|v| v.concat())
}

fn nft_ports(v: &serde_json::Value) -> Option<Vec<u16>> {
    if let Some(p) = v.as_u64() {
        return Some(vec![u16::try_from(p).ok()?]);
    }
    if let Some(r) = v.get("range").and_then(|r| r.as_array()) {
        let (a, b) = (r.first()?.as_u64()?, r.get(1)?.as_u64()?);
        return port_range(&format!("{a}:{b}"), ':');
    }
    let set = v.get("set")?.as_array()?;
    let all: Vec<u16> = set.iter().map(nft_ports).collect::<Option<Vec<_>>>()?.concat();
    (all.len() <= MAX_EXPANSION).then_some(all)
}

/// `ADDR` or `ADDR/LEN` (at most [`MAX_EXPANSION`] addresses).
fn prefix_addrs(v: &str) -> Option<Vec<IpAddr>> {
    let (a, len) = v.split_once('/').unwrap_or((v, ""));
    let a: IpAddr = a.parse().ok()?;
    let bits = if a.is_ipv6() { 128u32 } else { 32 };
    let len: u32 = if len.is_empty() { bits } else { len.parse().ok()? };
    if len > bits || bits - len > 10 {
        return None;
    }
    let n = 1u128 << (bits - len);
    let base = match a {
        IpAddr::V4(x) => u128::from(u32::from(x) & (u32::MAX.checked_shl(bits - len).unwrap_or(0))),
        IpAddr::V6(x) => u128::from(x) & (u128::MAX.checked_shl(bits - len).unwrap_or(0)),
    };
    Some(
        (0..n)
            .map(|i| match a {
                IpAddr::V4(_) => IpAddr::from(((base + i) as u32).to_be_bytes()),
                IpAddr::V6(_) => IpAddr::from((base + i).to_be_bytes()),
            })
            .collect(),
    )
}

/// `N` or `A<sep>B`.
fn port_range(v: &str, sep: char) -> Option<Vec<u16>> {
    let (a, b) = v.split_once(sep).unwrap_or((v, v));
    let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
    (a <= b && usize::from(b - a) < MAX_EXPANSION).then(|| (a..=b).collect())
}

/// Decimal or `0x` hex.
fn number(v: &str) -> Option<u32> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(proto: Proto, a: &str, port: u16) -> Match {
        Match { proto, addr: a.parse().unwrap(), port }
    }

    #[test]
    fn iptables_save_of_the_tutorial() {
        let text = "# Generated by iptables-save v1.8.9 (nf_tables)\n*mangle\n:PREROUTING ACCEPT [0:0]\n\
            -A PREROUTING -d 198.18.0.10/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x63/0xffffffff\n\
            -A PREROUTING -d 198.18.0.10/32 -p tcp -m tcp --dport 443 -j MARK --set-xmark 0x63/0xffffffff\n\
            -A PREROUTING -s 10.0.0.0/8 -d 198.18.0.11/32 -p udp -m multiport --dports 53,54 -j MARK --set-xmark 0x7/0xffffffff\n\
            -A PREROUTING -d 198.18.0.12/32 -p udp -m multiport --dports 5000:5002,6000 -j MARK --set-mark 8\n\
            -A OUTPUT -d 198.18.0.10/32 -j MARK --set-mark 9\nCOMMIT\n";
        let mut out = Marks::default();
        iptables_save(text, false, &mut out);
        assert_eq!(out.covers[&99], vec![m(Proto::Tcp, "198.18.0.10", 80), m(Proto::Tcp, "198.18.0.10", 443)]);
        assert_eq!(out.covers[&8].len(), 4);
        assert!(!out.covers.contains_key(&7) && !out.covers.contains_key(&9));
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert!(out.warnings[0].contains("sets mark 7 with '-s'"), "{:?}", out.warnings);
    }

    #[test]
    fn nft_native_rules() {
        let text = r#"{"nftables": [
          {"chain": {"family": "inet", "table": "lb", "name": "pre", "hook": "prerouting", "type": "filter"}},
          {"chain": {"family": "inet", "table": "lb", "name": "out", "hook": "output", "type": "filter"}},
          {"rule": {"family": "inet", "table": "lb", "chain": "pre", "handle": 4, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "2001:db8::10"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [80, 443]}}},
            {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 99}}]}},
          {"rule": {"family": "inet", "table": "lb", "chain": "pre", "handle": 5, "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "198.18.0.10"}},
            {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 5}}]}},
          {"rule": {"family": "ip", "table": "mangle", "chain": "PREROUTING", "handle": 2, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "198.18.0.10"}},
            {"xt": {"type": "target", "name": "MARK"}}]}},
          {"rule": {"family": "inet", "table": "lb", "chain": "out", "handle": 6, "expr": [
            {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 6}}]}}
        ]}"#;
        let mut out = Marks::default();
        nft_json(text, &mut out);
        assert_eq!(out.covers[&99], vec![m(Proto::Tcp, "2001:db8::10", 80), m(Proto::Tcp, "2001:db8::10", 443)]);
        assert_eq!(out.covers.len(), 1);
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert!(
            out.warnings[0].starts_with("nft rule inet lb pre handle 5 sets mark 5 with the match"),
            "{:?}",
            out.warnings
        );
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panic(text in ".{0,400}", words in proptest::collection::vec("(-d|-p|-m|--dport|--dports|-j|MARK|--set-mark|[0-9a-f:./,x]{1,12})", 0..20)) {
            let mut out = Marks::default();
            iptables_save(&text, false, &mut out);
            iptables_save(&format!("-A PREROUTING {} MARK", words.join(" ")), true, &mut out);
            nft_json(&text, &mut out);
        }
    }
}
