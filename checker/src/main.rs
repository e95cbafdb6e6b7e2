//! `xdpvs-checker`: keepalived's checker for xdpvs. It reads
//! keepalived.conf's `virtual_server` blocks, checks every real server as
//! keepalived does, and keeps a running `xdpvs --instance NAME` serving
//! exactly the servers that pass — through the control interface
//! `xdpvsadm` uses. A separate process: a crash, a hung script or a slow
//! server never touches forwarding, and on exit the last configuration
//! stays in force.

use xdpvs_checker::{conf, director, manager, status};

use clap::{CommandFactory, Parser};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "xdpvs-checker",
    version,
    about = "keepalived's health checker for xdpvs: reads keepalived.conf, drives xdpvs"
)]
struct Cli {
    /// keepalived.conf to read (as `keepalived -f`).
    #[arg(short = 'f', long = "use-file", default_value = "/etc/keepalived/keepalived.conf")]
    file: PathBuf,
    /// The xdpvs instance to drive (`xdpvs --instance NAME`).
    #[arg(long, default_value = "default")]
    instance: String,
    /// Check the file and exit: 0, or 1 with `FILE:LINE: message` per problem.
    #[arg(short = 't', long = "config-test")]
    test: bool,
    /// Read the `@ID` conditional lines of this id (keepalived's `-i`;
    /// default: the host name).
    #[arg(short = 'i', long = "config-id")]
    config_id: Option<String>,
    /// Print the status of every checker of the running instance and exit.
    #[arg(long)]
    status: bool,
    /// With --status: the status as JSON.
    #[arg(long, requires = "status")]
    json: bool,
    /// keepalived's flags that mean nothing here (xdpvs-checker never forks
    /// and always logs to standard error): accepted for unchanged unit files.
    #[arg(short = 'n', long = "dont-fork", hide = true)]
    _dont_fork: bool,
    #[arg(short = 'l', long = "log-console", hide = true)]
    _log_console: bool,
    #[arg(short = 'D', long = "log-detail", hide = true)]
    _log_detail: bool,
    /// Print the man page (roff) and exit (for packaging).
    #[arg(long, hide = true)]
    print_man: bool,
    /// Print SHELL's completions and exit (for packaging).
    #[arg(long, hide = true, value_name = "SHELL")]
    print_completions: Option<clap_complete::Shell>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    xdpvs_api::logs::init();
    if cli.print_man {
        let _ = clap_mangen::Man::new(Cli::command()).section("8").render(&mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if let Some(shell) = cli.print_completions {
        clap_complete::generate(shell, &mut Cli::command(), "xdpvs-checker", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if cli.status {
        return match status::show(&cli.instance, cli.json) {
            Ok(t) => {
                print!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xdpvs-checker: {e}");
                ExitCode::from(1)
            }
        };
    }
    let id = cli.config_id.clone().unwrap_or_else(conf::host_name);
    let loaded = conf::load_as(&cli.file, &id);
    for w in loaded.warnings() {
        eprintln!("{w}");
    }
    for e in loaded.errors() {
        eprintln!("{e}");
    }
    if cli.test || !loaded.ok() {
        return if loaded.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xdpvs-checker: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let director = loop {
            match director::Director::open(&cli.instance) {
                Ok(d) => break d,
                Err(e) => {
                    eprintln!("xdpvs-checker: waiting for xdpvs --instance {}: {e}", cli.instance);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        eprintln!(
            "Starting xdpvs-checker for instance {} ({} virtual servers)",
            cli.instance,
            loaded.conf.services.len()
        );
        match manager::Manager::new(cli.file.clone(), id, cli.instance.clone(), director, loaded).run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xdpvs-checker: {e}");
                ExitCode::from(1)
            }
        }
    })
}
