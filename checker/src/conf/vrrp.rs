//! What the checker reads of keepalived's own blocks: `lvs_sync_daemon` and
//! `lvs_timeouts` in `global_defs`, and each `vrrp_instance`'s virtual router id and
//! addresses (the sync daemon follows an instance's state, learned from
//! whether its addresses are on this host: robust to any missed event).

use super::model::Diag;
use super::tree::Node;
use std::collections::HashMap;
use std::net::IpAddr;
use xdpvs_api::sync::DaemonSpec;

/// `lvs_sync_daemon IF [[inst] INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group ADDR]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    /// The VRRP instance whose state it follows (none: master and backup
    /// both run).
    pub instance: Option<String>,
    /// Its settings; `syncid` defaults to the instance's virtual router id.
    pub spec: DaemonSpec,
    /// `id` was given.
    pub syncid_given: bool,
}

/// `lvs_timeouts [tcp SECS] [tcpfin SECS] [udp SECS]`: IPVS's timeouts
/// (ipvsadm `--set`; 0: left as it is). keepalived's rule: a bad or missing
/// value is reported and that one ignored.
pub fn lvs_timeouts(n: &Node, diags: &mut Vec<Diag>) -> Option<[u32; 3]> {
    const MAX: u32 = 31 * 86_400;
    let warn = |diags: &mut Vec<Diag>, msg: String| diags.push(Diag { at: n.at(), msg, fatal: false });
    if n.args.len() < 2 {
        warn(diags, "lvs_timeouts requires at least one option".into());
        return None;
    }
    let mut t = [0u32; 3];
    let mut i = 0;
    while let Some(w) = n.arg(i) {
        let slot = match w {
            "tcp" => 0,
            "tcpfin" => 1,
            "udp" => 2,
            _ => {
                warn(diags, format!("Unknown option {w} specified for lvs_timeouts"));
                i += 1;
                continue;
            }
        };
        match n.arg(i + 1) {
            None => warn(diags, format!("No value specified for lvs_timeout {w} - ignoring")),
            Some(v) => match v.parse::<u32>().ok().filter(|&x| x <= MAX) {
                Some(x) => t[slot] = x,
                None => warn(diags, format!("Invalid lvs_timeout {w} ({v}) - ignoring")),
            },
        }
        i += 2;
    }
    (t != [0; 3]).then_some(t)
}

/// A `vrrp_instance`: its virtual router id and addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub vrid: Option<u8>,
    pub addrs: Vec<IpAddr>,
}

fn err(n: &Node, msg: String) -> Diag {
    Diag { at: n.at(), msg, fatal: true }
}

/// `lvs_sync_daemon`'s words.
pub fn sync_daemon(n: &Node, diags: &mut Vec<Diag>) -> Option<SyncDaemon> {
    let Some(iface) = n.arg(0) else {
        diags.push(err(n, "'lvs_sync_daemon' needs an interface".into()));
        return None;
    };
    let mut d = SyncDaemon {
        instance: None,
        spec: DaemonSpec { iface: iface.into(), syncid: 0, maxlen: None, group: None, port: None, ttl: None },
        syncid_given: false,
    };
    let mut i = 1;
    while let Some(w) = n.arg(i) {
        let v = n.arg(i + 1);
        let bad = |what: &str| err(n, format!("'lvs_sync_daemon': '{w} {}' is not {what}", v.unwrap_or("")));
        let ok = match (w, v) {
            ("id", Some(v)) => v.parse().map(|x| (d.spec.syncid, d.syncid_given) = (x, true)).map_err(|_| bad("0-255")),
            ("maxlen", Some(v)) => v
                .parse()
                .ok()
                .filter(|&x: &u16| (1..=65507).contains(&x))
                .map(|x| d.spec.maxlen = Some(x))
                .ok_or_else(|| bad("1-65507")),
            ("port", Some(v)) => {
                v.parse().ok().filter(|&x: &u16| x > 0).map(|x| d.spec.port = Some(x)).ok_or_else(|| bad("1-65535"))
            }
            ("ttl", Some(v)) => {
                v.parse().ok().filter(|&x: &u8| x > 0).map(|x| d.spec.ttl = Some(x)).ok_or_else(|| bad("1-255"))
            }
            ("group", Some(v)) => v
                .parse::<IpAddr>()
                .ok()
                .filter(IpAddr::is_multicast)
                .map(|x| d.spec.group = Some(x))
                .ok_or_else(|| bad("a multicast group")),
            ("inst", Some(v)) => {
                d.instance = Some(v.into());
                Ok(())
            }
            (w, _) if i == 1 && !matches!(w, "id" | "maxlen" | "port" | "ttl" | "group" | "inst") => {
                d.instance = Some(w.into());
                i += 1;
                continue;
            }
            _ => Err(bad("a value")),
        };
        if let Err(e) = ok {
            diags.push(e);
            return None;
        }
        i += 2;
    }
    Some(d)
}

/// A `vrrp_instance NAME { … }`'s id and addresses.
pub fn instance(n: &Node) -> Option<(String, Instance)> {
    let name = n.arg(0)?.to_string();
    let mut inst = Instance::default();
    for k in n.kids() {
        match k.name() {
            "virtual_router_id" => inst.vrid = k.arg(0).and_then(|v| v.parse().ok()),
            "virtual_ipaddress" => {
                let first_word = |s: &str| s.split('/').next().and_then(|a| a.parse::<IpAddr>().ok());
                inst.addrs.extend(k.kids().iter().filter_map(|a| first_word(a.name())));
            }
            _ => {}
        }
    }
    Some((name, inst))
}

/// The sync daemon's settings with keepalived's default syncid (the VRRP
/// instance's virtual router id, else 0).
pub fn resolved(d: &SyncDaemon, instances: &HashMap<String, Instance>) -> DaemonSpec {
    let mut spec = d.spec.clone();
    if !d.syncid_given {
        spec.syncid = d.instance.as_ref().and_then(|i| instances.get(i)).and_then(|i| i.vrid).unwrap_or(0);
    }
    spec
}
