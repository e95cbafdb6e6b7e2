//! What the director should be running, from the configuration and the
//! health of every real server: keepalived's rules for who is in a pool —
//! a server that passes its checks is in at its weight (a `misc_dynamic`
//! result's weight if it gave one); one that fails is out, or in at weight 0
//! with `inhibit_on_failure`; a virtual server below its quorum (with
//! hysteresis) that has a sorry server has its real servers out and the
//! sorry server in.

use crate::conf::model::{Conf, GroupMember, Head, RealServer, VirtualServer};
use std::collections::HashMap;
use std::net::IpAddr;
use xdpvs_api::config::{Config, DestSpec, Match, ServiceKey, ServiceSpec};

/// A real server's identity across reloads: its virtual server's header,
/// its address and port.
pub type RsKey = (Head, IpAddr, u16);

/// What the checks say of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub up: bool,
    /// `misc_dynamic`: the weight the script gave.
    pub weight: Option<u32>,
}

/// The services of one virtual server (a group has several).
pub fn service_keys(conf: &Conf, vs: &VirtualServer) -> Vec<ServiceKey> {
    let v6 = vs.reals.first().is_some_and(|r| r.addr.is_ipv6());
    let addr = |a: IpAddr, port: u16| ServiceKey::Addr(Match { proto: vs.proto, addr: a, port });
    match &vs.head {
        Head::Addr(a, p) => vec![addr(*a, *p)],
        Head::Fwmark(m) => vec![ServiceKey::Fwmark { mark: *m, v6 }],
        Head::Group(g) => conf
            .groups
            .get(g)
            .into_iter()
            .flatten()
            .flat_map(|m| match m {
                GroupMember::Addrs { first, last, port } => {
                    crate::conf::model::expand(*first, *last, 256).into_iter().map(|a| addr(a, *port)).collect()
                }
                GroupMember::Fwmark(mark) => vec![ServiceKey::Fwmark { mark: *mark, v6 }],
            })
            .collect(),
    }
}

/// Quorum state per virtual server (its header), kept across evaluations
/// for the hysteresis.
pub type Quorums = HashMap<Head, bool>;

/// The desired configuration of the checker's services, and the messages
/// of whatever in it the daemon's model refuses (a bad address family, a
/// PROXY protocol on a DR server, …), each naming its virtual server.
pub fn render(
    conf: &Conf,
    health: &HashMap<RsKey, Health>,
    quorums: &mut Quorums,
    place: impl Fn(&VirtualServer) -> String,
) -> (Config, Vec<String>) {
    let mut cfg = Config::default();
    let mut errors = Vec::new();
    for vs in &conf.services {
        let pool = pool(vs, health, quorums);
        for key in service_keys(conf, vs) {
            if let Err(e) = add_service(&mut cfg, conf, vs, key, &pool) {
                errors.push(format!("{}: virtual_server {}: {e}", place(vs), key));
            }
        }
    }
    (cfg, errors)
}

/// Whether real server `r` of `vs` is up and the weight it serves at.
fn standing(vs: &VirtualServer, r: &RealServer, health: &HashMap<RsKey, Health>) -> (bool, u32) {
    let state = health.get(&(vs.head.clone(), r.addr, r.port)).copied();
    let up = state.map_or(!r.timing.alpha || r.checks.is_empty(), |h| h.up);
    (up, state.and_then(|h| h.weight).unwrap_or(r.weight))
}

/// The sum of the weights of the real servers that are up (what the
/// quorum is measured against).
pub fn live_weight(vs: &VirtualServer, health: &HashMap<RsKey, Health>) -> u32 {
    vs.reals.iter().map(|r| standing(vs, r, health)).filter(|s| s.0).map(|s| s.1).sum()
}

/// The real servers in the pool now, with their weights.
fn pool(vs: &VirtualServer, health: &HashMap<RsKey, Health>, quorums: &mut Quorums) -> Vec<DestSpec> {
    let up = |r: &RealServer| standing(vs, r, health).0;
    let weight = |r: &RealServer| standing(vs, r, health).1;
    let live = live_weight(vs, health);
    let had = *quorums.get(&vs.head).unwrap_or(&true);
    let ok = if had { live + vs.hysteresis >= vs.quorum } else { live >= vs.quorum + vs.hysteresis };
    quorums.insert(vs.head.clone(), ok);
    let spec = |addr, port, weight, fwd, r: Option<&RealServer>| DestSpec {
        addr,
        port,
        weight,
        fwd,
        u_threshold: r.map_or(0, |r| r.uthreshold),
        l_threshold: r.map_or(0, |r| r.lthreshold),
    };
    // keepalived: a lost quorum takes the real servers out only when a
    // sorry server takes their place.
    let serve = ok || vs.sorry.is_none();
    let mut out = Vec::new();
    if serve {
        for r in &vs.reals {
            if up(r) {
                out.push(spec(r.addr, r.port, weight(r), r.fwd, Some(r)));
            } else if r.timing.inhibit_on_failure {
                out.push(spec(r.addr, r.port, 0, r.fwd, Some(r)));
            }
        }
    }
    if let Some(s) = &vs.sorry {
        if !ok || s.inhibit {
            let w = if ok { 0 } else { 1 };
            out.push(spec(s.addr, s.port, w, s.fwd.unwrap_or(vs.fwd), None));
        }
    }
    out
}

fn add_service(
    cfg: &mut Config,
    conf: &Conf,
    vs: &VirtualServer,
    key: ServiceKey,
    pool: &[DestSpec],
) -> Result<(), xdpvs_api::config::ConfigError> {
    let mut spec = ServiceSpec::new(key, vs.sched);
    spec.flags = vs.sched_flags;
    spec.persistent = vs.persistence;
    if let Some(g) = vs.granularity {
        spec.netmask = if key.is_v6() { g.min(128) } else { g.min(32) };
    }
    spec.ops = vs.ops;
    spec.proxy_protocol = vs.proxy_protocol;
    spec.synproxy = vs.syn_proxy;
    cfg.add_service(spec)?;
    for d in pool {
        // A real server without a port takes the service's (keepalived).
        let port = match key {
            ServiceKey::Addr(m) if d.port == 0 => m.port,
            _ => d.port,
        };
        cfg.add_dest(&key, DestSpec { port, ..*d })?;
    }
    if let Some(g) = vs.laddr_group.as_ref().and_then(|g| conf.laddr_groups.get(g)) {
        for (a, ifname) in g {
            cfg.add_laddr(&key, *a, ifname.clone())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::model::Head;

    /// keepalived.conf text as the model.
    fn conf(text: &str) -> Conf {
        let p = std::env::temp_dir().join(format!("xdpvs-desired-{}-{}.conf", std::process::id(), text.len()));
        std::fs::write(&p, text).unwrap();
        let l = crate::conf::load(&p);
        let _ = std::fs::remove_file(&p);
        assert!(l.ok(), "{:?}", l.diags);
        l.conf
    }

    const TWO: &str = "virtual_server 198.18.0.10 80 {\n lb_kind NAT\n quorum 3\n hysteresis 1\n sorry_server 198.19.0.99 8080\n \
        real_server 198.19.0.11 8080 {\n  weight 2\n  TCP_CHECK {\n  }\n }\n real_server 198.19.0.12 8080 {\n  weight 2\n  inhibit_on_failure\n  TCP_CHECK {\n  }\n }\n}\n";

    fn key(a: &str) -> RsKey {
        (Head::Addr("198.18.0.10".parse().unwrap(), 80), a.parse().unwrap(), 8080)
    }

    fn pool_of(c: &Conf, h: &HashMap<RsKey, Health>, q: &mut Quorums) -> Vec<(String, u32)> {
        let (cfg, errors) = render(c, h, q, |_| String::new());
        assert!(errors.is_empty(), "{errors:?}");
        let (_, s) = cfg.services().next().unwrap();
        let mut v: Vec<(String, u32)> =
            s.dests.iter().map(|&d| cfg.dest(d).unwrap()).map(|d| (d.spec.addr.to_string(), d.spec.weight)).collect();
        v.sort();
        v
    }

    #[test]
    fn inhibit_quorum_hysteresis_and_the_sorry_server() {
        let c = conf(TWO);
        let mut q = Quorums::new();
        let up = |u| Health { up: u, weight: None };
        let mut h = HashMap::new();
        h.insert(key("198.19.0.11"), up(true));
        h.insert(key("198.19.0.12"), up(true));
        assert_eq!(pool_of(&c, &h, &mut q), vec![("198.19.0.11".into(), 2), ("198.19.0.12".into(), 2)]);
        // .12 fails: 2 live, quorum 3 - hysteresis 1 = 2 still holds; .12 inhibited at 0.
        h.insert(key("198.19.0.12"), up(false));
        assert_eq!(pool_of(&c, &h, &mut q), vec![("198.19.0.11".into(), 2), ("198.19.0.12".into(), 0)]);
        // .11 fails too: 0 live, quorum lost: the sorry server alone.
        h.insert(key("198.19.0.11"), up(false));
        assert_eq!(pool_of(&c, &h, &mut q), vec![("198.19.0.99".into(), 1)]);
        // .11 back: 2 live < quorum 3 + hysteresis 1: still lost.
        h.insert(key("198.19.0.11"), up(true));
        assert_eq!(pool_of(&c, &h, &mut q), vec![("198.19.0.99".into(), 1)]);
        // Both back: 4 ≥ 4, gained: the real servers, no sorry server.
        h.insert(key("198.19.0.12"), up(true));
        assert_eq!(pool_of(&c, &h, &mut q), vec![("198.19.0.11".into(), 2), ("198.19.0.12".into(), 2)]);
    }

    #[test]
    fn alpha_starts_down_and_dynamic_weights_apply() {
        let c = conf("virtual_server 198.18.0.10 80 {\n alpha\n real_server 198.19.0.11 8080 {\n  TCP_CHECK {\n  }\n }\n real_server 198.19.0.12 8080 {\n  weight 4\n }\n}\n");
        let mut q = Quorums::new();
        let mut h = HashMap::new();
        // Before any verdict: the checked server is down (alpha); the unchecked one is up.
        assert_eq!(pool_of(&c, &h, &mut q), vec![("198.19.0.12".into(), 4)]);
        h.insert(key("198.19.0.11"), Health { up: true, weight: Some(9) });
        assert_eq!(pool_of(&c, &h, &mut q), vec![("198.19.0.11".into(), 9), ("198.19.0.12".into(), 4)]);
    }

    #[test]
    fn a_lost_quorum_without_a_sorry_server_keeps_the_servers() {
        let c = conf("virtual_server 198.18.0.10 80 {\n quorum 5\n inhibit_on_failure\n real_server 198.19.0.11 8080 {\n  TCP_CHECK {\n  }\n }\n}\n");
        let mut h = HashMap::new();
        h.insert(key("198.19.0.11"), Health { up: false, weight: None });
        assert_eq!(pool_of(&c, &h, &mut Quorums::new()), vec![("198.19.0.11".into(), 0)]);
    }
}
