//! xdpvs benchmarks.
//!
//! `engine`: the forwarding engine alone, on one core, frames in memory:
//! established-flow rate at 10k and 1M sessions, new-connection rate, memory
//! per session, Maglev build time. Each frame is copied into its buffer
//! before processing (as a NIC's DMA would put it there), and that copy is
//! inside the timed loop.

mod engine;
mod gen;

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
    },
}

fn main() {
    match Cli::parse().cmd {
        Cmd::Gen(a) => match gen::run(&a) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("perf gen: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Engine { json, quick, cpu, profile_sessions, profile_new } => {
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
