//! xdpvs benchmarks.
//!
//! `engine`: the forwarding engine alone, on one core, frames in memory:
//! established-flow rate at 10k and 1M sessions, new-connection rate, memory
//! per session, Maglev build time. Each frame is copied into its buffer
//! before processing (as a NIC's DMA would put it there), and that copy is
//! inside the timed loop.
//!
//! `checker`: xdpvs-checker's checks of 1,000 servers at delay_loop 1 on
//! loopback: CPU share and timeout accuracy.
//!
//! `veth`: xdpvs on veth in namespaces, side by side with nftables DNAT,
//! kernel forwarding and an in-kernel XDP redirect (see perf/veth.sh).

mod checker;
mod engine;
mod gen;
mod instructions;
mod metrics;
mod probe;
mod sync;
mod veth;
mod xsk_fwd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "xdpvs benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Paced AF_XDP UDP traffic generator (for the veth benchmarks).
    Gen(gen::Args),
    /// A raw AF_XDP forwarder (xdpvs's xsk layer, no engine): the ceiling
    /// the veth benchmark compares every xdpvs path with.
    XskFwd(xsk_fwd::Args),
    /// UDP receiver with a latency histogram of `gen --stamp` datagrams.
    Recv {
        #[arg(long)]
        bind: std::net::SocketAddr,
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
    /// TCP server for `cps`: accepts, reads to the end, closes (runs until killed).
    CpsServer {
        #[arg(long)]
        bind: std::net::SocketAddr,
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
    /// Whole TCP connections per second to DST.
    Cps {
        #[arg(long)]
        dst: std::net::SocketAddr,
        #[arg(long, default_value_t = 4)]
        threads: usize,
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// The veth benchmark: every path side by side (builds its own namespaces).
    Veth {
        /// Seconds instead of minutes: proves the harness, not the speed.
        #[arg(long)]
        quick: bool,
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Where results go (default perf/results/<time>).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Run nothing: summarize the run in --out again from its raw.jsonl
        /// (its memory figures kept), e.g. after the summary learnt a figure.
        #[arg(long, requires = "out")]
        again: bool,
    },
    /// Benchmark the engine alone (no I/O), one core.
    Engine {
        /// Print one JSON object as the last line of stdout.
        #[arg(long)]
        json: bool,
        /// Smaller runs (seconds): proves the harness works, not the speed.
        #[arg(long)]
        quick: bool,
        /// CPU to pin the benchmark to.
        #[arg(long, default_value_t = 1)]
        cpu: usize,
        /// Profile one case only: established flows over this many sessions
        /// for a few seconds (no report).
        #[arg(long)]
        profile_sessions: Option<usize>,
        /// Profile one case only: this many new connections (no report).
        #[arg(long)]
        profile_new: Option<usize>,
        /// Instructions per packet of every case, counted by callgrind
        /// (deterministic; needs valgrind) instead of the timed benchmark.
        #[arg(long)]
        instructions: bool,
    },
    /// xdpvs-checker at scale: N HTTP_GET checks at delay_loop 1 on loopback
    /// (half the servers hung), CPU share and timeout accuracy, as JSON.
    Checker {
        #[arg(long, default_value_t = 1000)]
        servers: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// The servers of `perf checker` (started by it).
    #[command(hide = true)]
    CheckerServers {
        #[arg(long)]
        n: usize,
    },
    /// Connection sync's cost: master rate with sync on vs off (alternating
    /// runs), records/s a backup installs, bytes per synced connection.
    Sync {
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value_t = 1)]
        cpu: usize,
    },
    /// The engine's rate with the metrics endpoint rendering the region
    /// every second vs not (alternating runs, one process).
    Metrics {
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value_t = 1)]
        cpu: usize,
    },
    /// One case of `engine --instructions` (run under callgrind by it).
    #[command(hide = true)]
    EngineProbe { case: String },
}

fn print_or_exit(what: &str, r: Result<String, String>) {
    match r {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("perf {what}: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    match Cli::parse().cmd {
        Cmd::Recv { bind, seconds } => print_or_exit("recv", probe::recv(bind, seconds)),
        Cmd::CpsServer { bind, threads } => {
            print_or_exit("cps-server", probe::cps_server(bind, threads).map(|_| String::new()))
        }
        Cmd::Cps { dst, threads, seconds } => print_or_exit("cps", probe::cps(dst, threads, seconds)),
        Cmd::Metrics { quick, cpu } => {
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            print_or_exit("metrics", metrics::run(quick))
        }
        Cmd::Sync { quick, cpu } => {
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            print_or_exit("sync", sync::run(quick))
        }
        Cmd::Veth { quick, json, out, again } => match veth::run(quick, out, again) {
            Ok(v) => {
                if json {
                    println!("{v}");
                }
            }
            Err(e) => {
                eprintln!("perf veth: {e}");
                std::process::exit(1);
            }
        },
        Cmd::XskFwd(a) => match xsk_fwd::run(&a) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("perf xsk-fwd: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Gen(a) => match gen::run(&a) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("perf gen: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Checker { servers, seconds } => print_or_exit("checker", checker::run(servers, seconds)),
        Cmd::CheckerServers { n } => print_or_exit("checker-servers", checker::servers(n)),
        Cmd::EngineProbe { case } => print_or_exit("engine-probe", instructions::probe(&case).map(|n| n.to_string())),
        Cmd::Engine { json, instructions: true, .. } => match instructions::run() {
            Ok(figures) => {
                for ((name, what), (_, n)) in instructions::CASES.iter().zip(&figures) {
                    eprintln!("{name:<16} {n:>8.1} instructions per packet  ({what})");
                }
                if json {
                    let m: serde_json::Map<String, serde_json::Value> =
                        figures.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
                    println!("{}", serde_json::Value::Object(m));
                }
            }
            Err(e) => {
                eprintln!("perf engine --instructions: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Engine { json, quick, cpu, profile_sessions, profile_new, .. } => {
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            if let Some(n) = profile_sessions {
                let (b, s) = engine::established(n, 30_000_000 / n);
                eprintln!("{n} sessions: {b:.2} Mpps batched, {s:.2} one at a time");
                return;
            }
            if let Some(n) = profile_new {
                let (create, steady) = engine::new_connections(n);
                eprintln!("{n} new connections: {create:.2} Mpps, {steady:.2} with reaping");
                return;
            }
            let r = engine::run(quick);
            eprintln!("{}", r.table());
            if json {
                println!("{}", r.json());
            }
        }
    }
}
