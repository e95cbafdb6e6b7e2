//! Instructions per packet, counted by callgrind: the same figures on every
//! run of the same binary, whatever the shared VM is doing.
//!
//! `perf engine --instructions` runs this binary once per case under
//! `valgrind --tool=callgrind --toggle-collect=*measured*`: the case's setup
//! (tables, sessions, frames) runs uncounted, then `measured` hands the
//! frames to the engine one at a time and only what the engine executes for
//! them is counted (the frame's copy into its buffer happens outside).

use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;
use xdpvs::lb::core::{Core, CoreParams};
use xdpvs::lb::frame::Frame;
use xdpvs::lb::{Verdict, TICKS_PER_SEC};
use xdpvs::testkit::{topo, Pkt};
use xdpvs::wire::tcp::flags::{ACK, SYN};
use xdpvs_api::config::{Fwd, Proto, ProxyProtocol, SchedKind};

const HEADROOM: usize = 256;

/// Every case: (name, what is measured).
pub const CASES: &[(&str, &str)] = &[
    ("nat_v4_10k", "established NAT, IPv4, 10k sessions"),
    ("fullnat_v4_10k", "established FULLNAT, IPv4, 10k sessions"),
    ("dr_v4_10k", "established DR, IPv4, 10k sessions"),
    ("tun_v4_10k", "established TUN, IPv4, 10k sessions"),
    ("nat_v6_10k", "established NAT, IPv6, 10k sessions"),
    ("fullnat_v6_10k", "established FULLNAT, IPv6, 10k sessions"),
    ("fullnatpp_v4_10k", "established FULLNAT with PROXY protocol v2, IPv4, 10k sessions"),
    ("dr_v6_10k", "established DR, IPv6, 10k sessions"),
    ("tun_v6_10k", "established TUN, IPv6, 10k sessions"),
    ("nat_v4_1m", "established NAT, IPv4, 1M sessions"),
    ("natfull_v4_10k", "established NAT, IPv4, 10k sessions, full-sized segments (1460 bytes of data)"),
    ("new_conn_nat_v4", "a new connection's SYN, NAT, IPv4"),
    ("expire_nat_v4", "one session expiring (the reaper), NAT, IPv4"),
    ("handoff_nat_v4", "a frame for another core, classified and handed over"),
];

fn client(v6: bool, i: usize) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x20, 0, 0, 0, 0, i as u16))
    } else {
        IpAddr::from([198, 18, 16 + (i >> 8) as u8, (i & 0xff) as u8])
    }
}

/// Flow `i`'s frames: a SYN at sequence number 1000, anything else past the
/// client's first data byte (as mid-connection).
fn frames(v6: bool, n: usize, flags: u8, data: usize) -> Vec<Vec<u8>> {
    let vip = if v6 { topo::v6().vip } else { topo::v4().vip };
    let body = vec![0x5a; data];
    (0..n)
        .map(|i| {
            let mut p = Pkt::tcp((client(v6, i / 60000), 1024 + (i % 60000) as u16).into(), (vip, 80).into(), flags);
            p.seq = if flags & SYN != 0 { 1000 } else { 2001 };
            p.payload(&body).build()
        })
        .collect()
}

/// One frame through the engine: what callgrind counts.
#[inline(never)]
fn measured(core: &mut Core, frame: &mut Frame<'_>, now: u32) -> Verdict {
    core.process(frame, now)
}

/// The reaper's work at `now`: what callgrind counts for expiry.
#[inline(never)]
fn measured_reap(core: &mut Core, now: u32) -> usize {
    core.housekeep(now)
}

/// Feeds `frames` to `core`, `rounds` times; counted inside [`measured`] only.
fn feed(core: &mut Core, frames: &[Vec<u8>], rounds: usize, counted: bool) -> usize {
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    for _ in 0..rounds {
        for f in frames {
            buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
            let mut fr = Frame::new(&mut buf, HEADROOM, f.len()).expect("fits");
            let v = if counted { measured(core, &mut fr, 1) } else { core.process(&mut fr, 1) };
            n += usize::from(!matches!(v, Verdict::Drop(_)));
        }
    }
    n
}

fn core_for(v6: bool, mode: &str, sessions: usize, id: u16, ncores: u16) -> Core {
    let fwd = match mode {
        "nat" | "natfull" => Fwd::Nat,
        "fullnat" | "fullnatpp" => Fwd::FullNat,
        "dr" => Fwd::Dr,
        _ => Fwd::Tun,
    };
    let (mut cfg, key) = topo::config(v6, Proto::Tcp, fwd, SchedKind::Rr, 4);
    if mode == "fullnatpp" {
        let mut spec = cfg.service(cfg.find_service(&key).expect("made above")).expect("made above").spec.clone();
        spec.proxy_protocol = Some(ProxyProtocol::V2);
        cfg.edit_service(spec).expect("a FULLNAT service takes the PROXY protocol");
    }
    let cap = (sessions as u32 * 2).next_power_of_two();
    let p = CoreParams { id, ncores, max_sessions: cap, reserve_sessions: cap, ..CoreParams::default() };
    Core::new(topo::snapshot(&cfg), p, 0)
}

/// Runs case `name` (in the child valgrind started); returns the packets
/// (or sessions) the counted part handled.
pub fn probe(name: &str) -> Result<usize, String> {
    let parts: Vec<&str> = name.split('_').collect();
    match parts.as_slice() {
        ["new", "conn", m, fam] => {
            let mut core = core_for(*fam == "v6", m, 100_000, 0, 1);
            Ok(feed(&mut core, &frames(*fam == "v6", 100_000, SYN, 0), 1, true))
        }
        ["expire", m, fam] => {
            let n = 100_000;
            let mut core = core_for(*fam == "v6", m, n, 0, 1);
            feed(&mut core, &frames(*fam == "v6", n, SYN, 0), 1, false);
            // SYN_RECV lives 60 s: well past it, everything is due.
            let later = 1 + 120 * TICKS_PER_SEC;
            let mut done = 0;
            while done < n {
                let k = measured_reap(&mut core, later);
                if k == 0 {
                    break;
                }
                done += k;
            }
            Ok(done)
        }
        ["handoff", m, fam] => {
            let v6 = *fam == "v6";
            let mut core = core_for(v6, m, 10_000, 0, 2);
            let cfg = core.config().clone();
            let vip = if v6 { topo::v6().vip } else { topo::v4().vip };
            let mine: Vec<Vec<u8>> = (0..40_000)
                .map(|i| Pkt::tcp((client(v6, i), 1024).into(), (vip, 80).into(), SYN).build())
                .filter(|f| xdpvs::lb::owner::owner_of(&cfg, 2, f) == 1)
                .take(10_000)
                .collect();
            feed(&mut core, &mine, 1, true);
            Ok(mine.len())
        }
        [m, fam, size] => {
            let v6 = *fam == "v6";
            let n = if *size == "1m" { 1_000_000 } else { 10_000 };
            let mut core = core_for(v6, m, n, 0, 1);
            feed(&mut core, &frames(v6, n, SYN, 0), 1, false);
            let acks = frames(v6, n, ACK, if *m == "natfull" { 1460 } else { 0 });
            // The handshake's last ACK establishes the session: uncounted.
            feed(&mut core, &acks, 1, false);
            let rounds = if n > 100_000 { 1 } else { 10 };
            let before = core.short_way_taken();
            let counted = feed(&mut core, &acks, rounds, true);
            // Every counted packet is an established flow's: the short way.
            let taken = core.short_way_taken() - before;
            if taken != counted as u64 {
                return Err(format!("{name}: {taken} of {counted} packets took the short way"));
            }
            Ok(counted)
        }
        _ => Err(format!("unknown case '{name}'")),
    }
}

/// Every case under callgrind: (name, instructions per packet).
pub fn run() -> Result<Vec<(&'static str, f64)>, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut out = Vec::new();
    for (name, _) in CASES {
        let o = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null", "--toggle-collect=*measured*"])
            .arg(&me)
            .args(["engine-probe", name])
            .output()
            .map_err(|e| format!("cannot run valgrind (apt-get install valgrind): {e}"))?;
        let err = String::from_utf8_lossy(&o.stderr);
        let collected: u64 = err
            .lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("{name}: no count from callgrind: {err}"))?;
        let packets: u64 = String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("{name}: the probe said {:?}", String::from_utf8_lossy(&o.stdout)))?;
        out.push((*name, (collected as f64 / packets.max(1) as f64 * 10.0).round() / 10.0));
    }
    Ok(out)
}
