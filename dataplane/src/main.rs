//! The `xdpvs` binary.
//!
//! Until the AF_XDP daemon lands, `xdpvs simulate` runs the engine over
//! complete client conversations held in memory (see `simulate.rs`).

mod simulate;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xdpvs", version, about = "AF_XDP Virtual Server: a userspace L4 load balancer with LVS semantics")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run whole TCP conversations (handshake, HTTP request and response,
    /// FIN both ways) from many clients through the engine, check every
    /// frame, and print what the balancer did.
    Simulate(simulate::Args),
}

fn main() {
    let code = match Cli::parse().cmd {
        Cmd::Simulate(a) => simulate::run(&a),
    };
    std::process::exit(code);
}
