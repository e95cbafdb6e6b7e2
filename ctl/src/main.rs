//! `xdpvsadm`: ipvsadm's command line for xdpvs.
//!
//! Today it parses and validates every ipvsadm command and, with `--check`,
//! applies a rules file (the `-R` format) to a scratch configuration offline.
//! Talking to a running daemon (shared memory, stats, listings) comes with the
//! control-plane issue; until then commands that need the daemon say so.

use std::io::Read;
use std::process::ExitCode;
use xdpvs::admin::{apply, save};
mod listing;

use xdpvs::grammar::{parse, parse_rules, Action};
use xdpvs::lb::config::Config;

const USAGE: &str = "\
xdpvsadm: ipvsadm's command line for xdpvs
  xdpvsadm -A|E -t|u|f service-address [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [--match PROTO:ADDR:PORT[,PORT]]
  xdpvsadm -D -t|u|f service-address
  xdpvsadm -C
  xdpvsadm -R            (commands on standard input, as -S writes them)
  xdpvsadm -S [-n]
  xdpvsadm -a|e -t|u|f service-address -r server-address [-g|i|m|b] [-w weight] [-x upper] [-y lower]
  xdpvsadm -d -t|u|f service-address -r server-address
  xdpvsadm -L|l [-t|u|f service-address] [-n] [-c] [--stats|--rate|--thresholds|--persistent-conn|--timeout] [--exact] [--sort] [--json]
  xdpvsadm -Z [-t|u|f service-address]
  xdpvsadm --set tcp tcpfin udp
  xdpvsadm -P|Q -t|u|f service-address -z local-address [-F ifname]     (FULLNAT local addresses)
  xdpvsadm -G -t|u|f service-address
  xdpvsadm --check       (validate -R input offline and print it as -S would)
Forwarding: -g gatewaying (DR, default), -i ipip (TUN), -m masquerading (NAT), -b fullnat.
Schedulers: rr wrr lc wlc (default) lblc lblcr dh sh sed nq mh.
Fwmark services name the ports they cover: -A -f 1 -s rr --match tcp:198.18.0.10:80,443
Every command takes --instance NAME (default: default).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inv = match parse(&args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("xdpvsadm: {e}");
            eprintln!("Try `xdpvsadm -h' for more information.");
            return ExitCode::from(2);
        }
    };
    match inv.action {
        Action::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Action::Version => {
            println!("xdpvsadm {} (ipvsadm 1.31 grammar)", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Action::Check => check(),
        Action::List(l) if inv.stats_from.is_some() => {
            let path = inv.stats_from.unwrap_or_default();
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            {
                Ok(snap) => {
                    print!("{}", listing::render(&snap, l.stats, l.exact));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xdpvsadm: cannot read the stats snapshot {path}: {e}");
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            let region = format!("/dev/shm/xdpvs-{}", inv.instance);
            eprintln!(
                "xdpvsadm: cannot reach the xdpvs daemon of instance '{}': {region} {} (the shared-memory control plane is not built yet; `xdpvsadm --check` validates rules offline)",
                inv.instance,
                if std::path::Path::new(&region).exists() { "exists but speaks no protocol yet" } else { "does not exist" }
            );
            ExitCode::from(1)
        }
    }
}

/// `--check`: parse and apply standard input to a scratch configuration;
/// print every error with its line, then the result as `-S -n` prints it.
fn check() -> ExitCode {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("xdpvsadm: cannot read standard input: {e}");
        return ExitCode::from(1);
    }
    let mut cfg = Config::default();
    let mut errors = 0;
    for (line, r) in parse_rules(&text) {
        let res = r.map_err(|e| e.to_string()).and_then(|c| apply(&mut cfg, &c).map_err(|e| e.to_string()));
        if let Err(e) = res {
            eprintln!("xdpvsadm: line {line}: {e}");
            errors += 1;
        }
    }
    print!("{}", save(&cfg));
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
