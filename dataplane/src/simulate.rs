//! `xdpvs simulate`: the engine over complete conversations.
//!
//! Clients open TCP connections to the VIP, send an HTTP request, receive a
//! response that names the real server, and close. Every frame the engine
//! emits is checked (addresses, ports, MACs, checksums) and, with `--pcap`,
//! written out with the frames that went in, for tcpdump or tshark.

use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, SocketAddr};
use xdpvs::lb::core::{Core, CoreParams};
use xdpvs::lb::frame::Frame;
use xdpvs::lb::{Verdict, TICKS_PER_SEC};
use xdpvs::pcap::PcapWriter;
use xdpvs::testkit::{topo, Pkt, Summary};
use xdpvs::wire::tcp::flags::{ACK, FIN, PSH, SYN};
use xdpvs_api::config::{Config, DestSpec, Fwd, Proto, SchedKind, ServiceKey};

#[derive(clap::Args)]
pub struct Args {
    /// Forwarding method: fullnat, nat, dr or tun.
    #[arg(long, default_value = "fullnat")]
    mode: String,
    /// Scheduler (any of the eleven).
    #[arg(long, default_value = "wrr")]
    sched: String,
    /// Number of client connections.
    #[arg(long, default_value_t = 300)]
    clients: u16,
    /// Use IPv6 addresses.
    #[arg(long)]
    ipv6: bool,
    /// Write every frame in and out to this pcap file.
    #[arg(long)]
    pcap: Option<String>,
}

const HEADROOM: usize = 256;

struct Sim {
    core: Core,
    now: u32,
    micros: u64,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    bad: Vec<String>,
}

impl Sim {
    /// One frame through the engine; the frame out if it was transmitted.
    fn send(&mut self, frame: &[u8]) -> Option<Summary> {
        let mut buf = vec![0u8; HEADROOM + frame.len() + 128];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let mut f = Frame::new(&mut buf, HEADROOM, frame.len()).expect("buffer sized for the frame");
        let v = self.core.process(&mut f, self.now);
        self.micros += 10;
        if let Some(p) = self.pcap.as_mut() {
            let _ = p.write(self.micros, frame);
            if let Verdict::Tx { .. } = v {
                let _ = p.write(self.micros + 1, f.data());
            }
        }
        match v {
            Verdict::Tx { .. } => {
                let s = Summary::parse(f.data());
                match &s {
                    Some(s) if s.ip.ip_csum_ok && s.ip.l4_csum_ok => {}
                    _ => self.bad.push(format!("invalid frame out: {s:?}")),
                }
                s
            }
            other => {
                self.bad.push(format!("frame not forwarded: {other:?}"));
                None
            }
        }
    }
}

fn parse_mode(s: &str) -> Option<Fwd> {
    Some(match s {
        "fullnat" | "b" => Fwd::FullNat,
        "nat" | "masq" | "m" => Fwd::Nat,
        "dr" | "route" | "g" => Fwd::Dr,
        "tun" | "ipip" | "i" => Fwd::Tun,
        _ => return None,
    })
}

pub fn run(a: &Args) -> i32 {
    let Some(fwd) = parse_mode(&a.mode) else {
        eprintln!("xdpvs: unknown mode '{}': use fullnat, nat, dr or tun", a.mode);
        return 2;
    };
    let sched = match SchedKind::from_name(&a.sched) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xdpvs: {e}: '{}'", a.sched);
            return 2;
        }
    };
    let addrs = if a.ipv6 { topo::v6() } else { topo::v4() };
    let (mut cfg, key) = topo::config(a.ipv6, Proto::Tcp, fwd, sched, 0);
    for (i, rs) in addrs.rs[..3].iter().enumerate() {
        let d = DestSpec { addr: *rs, port: 8080, weight: i as u32 + 1, fwd, u_threshold: 0, l_threshold: 0 };
        cfg.add_dest(&key, d).expect("fresh service");
    }
    let pcap = match &a.pcap {
        Some(path) => match File::create(path).and_then(|f| PcapWriter::new(BufWriter::new(f))) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("xdpvs: cannot write {path}: {e}");
                return 1;
            }
        },
        None => None,
    };
    let cfg = topo::snapshot(&cfg);
    let core = Core::new(
        cfg.clone(),
        CoreParams { max_sessions: 1 << 16, reserve_sessions: 1 << 12, ..CoreParams::default() },
        0,
    );
    let mut sim = Sim { core, now: 0, micros: 1_700_000_000_000_000, pcap, bad: Vec::new() };
    let mut answered = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..a.clients {
        let client = if a.ipv6 {
            IpAddr::from(
                [0x2001, 0xdb8, 0x20, 0, 0, 0, i / 256, 1 + i % 256]
                    .map(u16::to_be_bytes)
                    .concat()
                    .try_into()
                    .map(|b: [u8; 16]| b)
                    .expect("16 bytes"),
            )
        } else {
            IpAddr::from([198, 18, 20 + (i / 250) as u8, 1 + (i % 250) as u8])
        };
        if let Some(rs) = conversation(&mut sim, fwd, client, addrs.vip, &addrs.rs) {
            *answered.entry(rs).or_default() += 1;
        }
        sim.now += 1;
    }
    if let Some(p) = sim.pcap.take() {
        let _ = p.into_inner();
    }
    report(&sim, &cfg, &key, &answered);
    // Let every session run out: TIME_WAIT / CLOSE timeouts.
    sim.now += 121 * TICKS_PER_SEC;
    sim.core.housekeep(sim.now);
    println!("\nsessions after 121 s idle: {}", sim.core.session_count().0 + sim.core.session_count().1);
    if sim.bad.is_empty() {
        println!("every frame out carried correct addresses, MACs and checksums");
        0
    } else {
        for b in sim.bad.iter().take(10) {
            eprintln!("xdpvs: {b}");
        }
        eprintln!("xdpvs: {} problems", sim.bad.len());
        1
    }
}

/// One client connection; returns the real server that answered.
fn conversation(sim: &mut Sim, fwd: Fwd, client: IpAddr, vip: IpAddr, rs_ips: &[IpAddr]) -> Option<String> {
    let c = SocketAddr::new(client, 40000);
    let v = SocketAddr::new(vip, 80);
    let from_client = |flags: u8, seq: u32, body: &[u8]| {
        let mut p = Pkt::tcp(c, v, flags).payload(body);
        p.seq = seq;
        p.build()
    };
    let syn = sim.send(&from_client(SYN, 1, b""))?;
    // What the real server sees: its own address and the peer it answers.
    let rs_side = (SocketAddr::new(syn.ip.dst, syn.ip.dport), SocketAddr::new(syn.ip.src, syn.ip.sport));
    let rs_mac = syn.dst_mac;
    // DR leaves the IP packet alone: the real server is the MAC it went to.
    let rs_name = match topo::RS_MACS.iter().position(|m| *m == rs_mac) {
        Some(i) => rs_ips[i].to_string(),
        None => format!("unknown MAC {}", xdpvs::wire::ethernet::fmt_mac(&rs_mac)),
    };
    let from_rs = |flags: u8, seq: u32, body: &[u8]| {
        let mut p = Pkt::tcp(rs_side.0, rs_side.1, flags).payload(body);
        p.seq = seq;
        p.src_mac = rs_mac;
        p.dst_mac = topo::RS_IF_MAC;
        p.build()
    };
    let two_way = fwd.two_way();
    let check_reply = |s: Option<Summary>, bad: &mut Vec<String>| {
        if let Some(s) = s {
            if s.ip.src != vip || s.ip.sport != 80 || s.ip.dst != client || s.ip.dport != 40000 {
                bad.push(format!("reply not from the VIP to the client: {s:?}"));
            }
        }
    };
    if two_way {
        let r = sim.send(&from_rs(SYN | ACK, 100, b""));
        check_reply(r, &mut sim.bad);
    }
    sim.send(&from_client(ACK, 2, b""))?;
    let req = format!("GET / HTTP/1.1\r\nHost: {vip}\r\nUser-Agent: xdpvs-simulate\r\n\r\n");
    sim.send(&from_client(ACK | PSH, 2, req.as_bytes()))?;
    if two_way {
        let body = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{rs_name}\n", rs_name.len() + 1);
        let r = sim.send(&from_rs(ACK | PSH, 101, body.as_bytes()));
        check_reply(r, &mut sim.bad);
        let r = sim.send(&from_rs(FIN | ACK, 200, b""));
        check_reply(r, &mut sim.bad);
    }
    sim.send(&from_client(FIN | ACK, 100, b""))?;
    if two_way {
        let r = sim.send(&from_rs(ACK, 201, b""));
        check_reply(r, &mut sim.bad);
    }
    Some(rs_name)
}

fn report(sim: &Sim, cfg: &Config, key: &ServiceKey, answered: &std::collections::BTreeMap<String, usize>) {
    let svc = cfg.find_service(key).expect("configured");
    let s = cfg.service(svc).expect("configured");
    let st = sim.core.svc_rt(svc).map(|r| r.stats).unwrap_or_default();
    println!(
        "xdpvs engine simulation ({} clients, scheduler {})",
        answered.values().sum::<usize>(),
        s.spec.sched.name()
    );
    println!(
        "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
    );
    println!("  -> RemoteAddress:Port");
    let ServiceKey::Addr(m) = s.spec.key else {
        return;
    };
    let name = xdpvs_api::text::addr_port(m.addr, m.port);
    println!(
        "{:<4} {:<28} {:>8} {:>8} {:>8} {:>8} {:>8}",
        m.proto.name(),
        name,
        st.conns,
        st.inpkts,
        st.outpkts,
        st.inbytes,
        st.outbytes
    );
    for &d in &s.dests {
        let (Some(dc), Some(rt)) = (cfg.dest(d), sim.core.dest_rt(d)) else {
            continue;
        };
        let name = xdpvs_api::text::addr_port(dc.spec.addr, dc.spec.port);
        let x = rt.stats;
        println!(
            "  -> {:<28} {:>8} {:>8} {:>8} {:>8} {:>8}",
            name, x.conns, x.inpkts, x.outpkts, x.inbytes, x.outbytes
        );
    }
    println!(
        "\nper-server split (weights 1:2:3, {} forwarding):",
        s.dests.first().and_then(|&d| cfg.dest(d)).map_or("?", |d| d.spec.fwd.name())
    );
    for (rs, n) in answered {
        println!("  {rs:<24} {n:>5} connections");
    }
    let stats = sim.core.stats();
    println!("\nframes in {}  out {}  passed {}  dropped {}", stats.rx, stats.tx, stats.pass, stats.total_drops());
}
