//! The `xdpvs` binary: the daemon (default), or `xdpvs simulate`.

mod simulate;

use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use xdpvs::daemon::{self, Options};

#[derive(Parser)]
#[command(
    name = "xdpvs",
    version,
    about = "AF_XDP Virtual Server: a poll-mode userspace L4 load balancer with LVS semantics",
    long_about = "Runs the balancer on the given interfaces: an XDP program steers the traffic xdpvs owns \
(services, FULLNAT local addresses, NAT replies) to AF_XDP sockets, one per (interface, queue), each polled by a \
worker pinned to a core; everything else stays with the kernel. Configure the VIP on the kernel interface, as \
with LVS, so the kernel answers ARP for it.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Print the man page (roff) and exit (for packaging).
    #[arg(long, hide = true)]
    print_man: bool,
    /// Print SHELL's completions and exit (for packaging).
    #[arg(long, hide = true, value_name = "SHELL")]
    print_completions: Option<clap_complete::Shell>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run whole TCP conversations from many clients through the engine in
    /// memory, check every frame, and print what the balancer did.
    Simulate(simulate::Args),
    /// The BGP dead man's switch xdpvs starts for itself (see announce::watchdog).
    #[command(hide = true)]
    BgpWatchdog {
        #[arg(long)]
        pid: u32,
        #[arg(long)]
        bird_socket: PathBuf,
        #[arg(long)]
        protocol: Vec<String>,
    },
}

#[derive(Args, Default)]
struct DaemonArgs {
    /// TOML file with any of the options below (flags override it); see configs/.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Interface to serve: once for one-arm (DR/TUN), twice for client side + server side (NAT, FULLNAT).
    #[arg(long = "iface", value_name = "DEV")]
    ifaces: Vec<String>,
    /// CPUs to pin the workers on, e.g. 1,0 (one worker per queue).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    cores: Vec<usize>,
    /// Queues per device to serve (default: all rx queues).
    #[arg(long, value_name = "N")]
    queues: Option<u32>,
    /// XDP attach mode: native (driver), generic (skb) or auto (native, else generic).
    #[arg(long, value_name = "MODE")]
    xdp_mode: Option<String>,
    /// UMEM size in MiB (default 16 per queue and interface).
    #[arg(long, value_name = "MIB")]
    umem_mb: Option<usize>,
    /// Do not try 2 MiB huge pages for the UMEM.
    #[arg(long)]
    no_hugepages: bool,
    /// Rules to load at start, in ipvsadm -S format (SIGHUP re-reads them).
    #[arg(long, value_name = "FILE")]
    restore: Option<PathBuf>,
    /// Instance name (default: default): the shared-memory region
    /// /dev/shm/xdpvs-NAME that `xdpvsadm --instance NAME` talks to.
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// Let this group (name or number) use xdpvsadm: region mode 0660 instead of 0600.
    #[arg(long, value_name = "GROUP")]
    shm_group: Option<String>,
    /// Sessions per worker and address family (default 1048576).
    #[arg(long, value_name = "N")]
    max_sessions: Option<u32>,
    /// Half-open TCP sessions per worker: past N a new SYN takes the oldest
    /// half-open session's place (default: the session table's size).
    #[arg(long, value_name = "N")]
    max_half_open: Option<u32>,
    /// Half-open TCP sessions per service and worker: past N the service's
    /// new SYNs are refused, counted half_open_service_limit (default: none).
    #[arg(long, value_name = "N")]
    max_half_open_per_service: Option<u32>,
    /// Empty polls before an idle worker sleeps in poll(2) (default 256; 0
    /// with --rt-priority).
    #[arg(long, value_name = "N")]
    idle_spin: Option<u32>,
    /// Run the workers at SCHED_FIFO PRIO (1-99), each sleeping in poll(2) as
    /// soon as its rings are empty: a real-time receive thread (threaded
    /// NAPI) on its CPU then gets the CPU whenever the worker is idle, and a
    /// flood cannot starve either of them. Give a priority above the
    /// receive threads' (a real-time one the workers do not exceed is named
    /// at start).
    #[arg(long, value_name = "PRIO", value_parser = clap::value_parser!(u8).range(1..=99))]
    rt_priority: Option<u8>,
    /// Restart without loss: at a stop, save the sessions and keep the XDP
    /// program dropping (not passing) owned traffic for up to SECS, until the
    /// next xdpvs takes the sessions over (0: detach at stop).
    #[arg(long, value_name = "SECS")]
    handover: Option<u32>,
    /// Where --handover keeps the sessions (default /run/xdpvs/INSTANCE.sessions).
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
    /// IPVS's sync_threshold: send an established connection at its
    /// THRESHOLD-th packet and every PERIOD after (default 3,50).
    #[arg(long, value_name = "THRESHOLD,PERIOD", value_delimiter = ',', num_args = 2)]
    sync_threshold: Vec<u16>,
    /// IPVS's sync_refresh_period in seconds (default 0: off).
    #[arg(long, value_name = "SECS")]
    sync_refresh_period: Option<u32>,
    /// Serve Prometheus metrics on ADDR (off by default), e.g. 127.0.0.1:9595.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Serve the live status page on ADDR (off by default).
    #[arg(long, value_name = "ADDR")]
    status: Option<std::net::SocketAddr>,
    /// The status page's HTTP Basic credentials, USER:PASS (needed off loopback).
    #[arg(long, value_name = "USER:PASS")]
    status_auth: Option<String>,
    /// Let the status page drain, restore and remove real servers.
    #[arg(long)]
    status_admin: bool,
    /// BIRD's control socket (default /run/bird/bird.ctl).
    #[arg(long, value_name = "PATH")]
    bird_socket: Option<PathBuf>,
    /// A BIRD static protocol announcing VIPs (NAME or NAME=VIP,VIP): enabled
    /// while this director can serve them, disabled first at a stop (repeatable).
    #[arg(long, value_name = "NAME[=VIPS]")]
    bird_vips: Vec<String>,
    /// A BIRD static protocol announcing this director's FULLNAT local
    /// addresses: enabled while xdpvs runs (repeatable).
    #[arg(long, value_name = "NAME")]
    bird_laddrs: Vec<String>,
    /// Another director's FULLNAT local address to stand by for (repeatable).
    #[arg(long, value_name = "ADDR")]
    standby_laddr: Vec<std::net::IpAddr>,
    /// At a planned stop, wait at most SECS for the withdrawn VIPs' flows to
    /// leave (default 10).
    #[arg(long, value_name = "SECS")]
    drain_timeout: Option<u32>,
}

fn main() {
    let cli = Cli::parse();
    if cli.print_man {
        let _ = clap_mangen::Man::new(Cli::command()).section("8").render(&mut std::io::stdout());
        return;
    }
    if let Some(shell) = cli.print_completions {
        clap_complete::generate(shell, &mut Cli::command(), "xdpvs", &mut std::io::stdout());
        return;
    }
    xdpvs_api::logs::init();
    let code = match cli.cmd {
        Some(Cmd::Simulate(a)) => simulate::run(&a),
        Some(Cmd::BgpWatchdog { pid, bird_socket, protocol }) => {
            xdpvs::announce::watchdog::run(pid, bird_socket, &protocol)
        }
        None => match options(cli.daemon).and_then(daemon::run) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("xdpvs: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}

fn options(a: DaemonArgs) -> Result<Options, String> {
    let base = match &a.config {
        Some(p) => Options::from_file(p)?,
        None => Options::default(),
    };
    let flags = Options {
        instance: a.instance,
        interfaces: a.ifaces,
        cores: a.cores,
        queues: a.queues,
        xdp_mode: a.xdp_mode,
        umem_mb: a.umem_mb,
        hugepages: a.no_hugepages.then_some(false),
        restore: a.restore,
        shm_group: a.shm_group,
        max_sessions: a.max_sessions,
        max_half_open: a.max_half_open,
        max_half_open_per_service: a.max_half_open_per_service,
        idle_spin: a.idle_spin,
        rt_priority: a.rt_priority,
        handover: a.handover,
        state_file: a.state_file,
        sync_threshold: match a.sync_threshold[..] {
            [t, p] => Some([t, p]),
            _ => None,
        },
        sync_refresh_period: a.sync_refresh_period,
        metrics: a.metrics,
        status: a.status,
        status_auth: a.status_auth,
        status_admin: a.status_admin.then_some(true),
        bird_socket: a.bird_socket,
        bird_vips: a.bird_vips,
        bird_laddrs: a.bird_laddrs,
        standby_laddrs: a.standby_laddr,
        drain_timeout: a.drain_timeout,
    };
    Ok(base.overridden_by(flags))
}
