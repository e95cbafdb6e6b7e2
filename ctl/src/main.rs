//! `xdpvsadm`: ipvsadm's command line for xdpvs.
//!
//! Commands go to the daemon through its shared-memory region (a command
//! slot: the daemon validates, applies and answers with ipvsadm's error
//! texts); once answered, `xdpvsadm` waits until every worker runs the new
//! generation, so when it returns the change is in force on every core.
//! Listings read the region directly: the configuration view, the per-core
//! stats areas and the rate estimates; `-c` streams the workers'
//! connections. Nothing here messages a worker or takes a lock.

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use xdpvs_api::admin::{apply_rules, save};
use xdpvs_api::config::{Config, ServiceKey};
use xdpvs_api::grammar::{parse, Action, Invocation, ListOpts};
use xdpvs_api::msg::{decode_blob, BgpView, Conn, Rates, Request, SyncView, Totals, View, OK};
use xdpvs_api::shm::{monotonic_ns, Region, BLOB_BGP, BLOB_RATES, BLOB_SYNC, BLOB_VIEW};
mod bgp;
mod listing;
mod man;
mod out;
mod sync;
use out::out;

pub(crate) const USAGE: &str = "\
xdpvsadm: ipvsadm's command line for xdpvs
  xdpvsadm -A|E -t|u|f service-address [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o] [--match PROTO:ADDR:PORT[,PORT]]
                 [--proxy-protocol v1|v2] [--toa]     (FULLNAT: the client's address to the real server)
                 [-j|--synproxy enable|disable]      (TCP, NAT/FULLNAT: syncookies answer SYNs)
  xdpvsadm -D -t|u|f service-address
  xdpvsadm -C
  xdpvsadm -R            (commands on standard input, as -S writes them; all or nothing)
  xdpvsadm -S [-n]
  xdpvsadm -a|e -t|u|f service-address -r server-address [-g|i|m|b] [-w weight] [-x upper] [-y lower]
  xdpvsadm -d -t|u|f service-address -r server-address
  xdpvsadm -L|l [-t|u|f service-address] [-n] [-c] [--stats|--rate|--thresholds|--persistent-conn|--timeout] [--exact] [--sort] [--cores] [--json]
  xdpvsadm -Z [-t|u|f service-address]
  xdpvsadm --set tcp tcpfin udp
  xdpvsadm -P|Q -t|u|f service-address -z local-address [-F ifname]     (FULLNAT local addresses)
  xdpvsadm -G -t|u|f service-address
  xdpvsadm --check       (validate -R input offline and print it as -S would)
  xdpvsadm --start-daemon master|backup --mcast-interface IF [--syncid N] [--sync-maxlen N] [--mcast-group ADDR]
                 [--mcast-port N] [--mcast-ttl N]     (IPVS connection sync; master and backup may run at once)
  xdpvsadm --stop-daemon master|backup
  xdpvsadm -L --daemon [--stats] [--json]
  xdpvsadm --drain | --undrain     (withdraw this director's VIPs from BGP and keep forwarding; announce again)
  xdpvsadm -L --bgp [--json]       (what xdpvs tells BIRD, and why)
Forwarding: -g gatewaying (DR, default), -i ipip (TUN), -m masquerading (NAT), -b fullnat.
Schedulers: rr wrr lc wlc (default) lblc lblcr dh sh sed nq fo ovf mh.
Fwmark services name the ports they cover: -A -f 1 -s rr --match tcp:198.18.0.10:80,443
--cores: per-core counters and drops by reason. --json: any listing as JSON.
Every command takes --instance NAME (default: default); the daemon's region is /dev/shm/xdpvs-NAME.
XDPVSADM_TIMING=1 prints how long a change took to reach every core.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Packaging: the man page and completions, from the grammar's words.
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--print-man"] => {
            let _ = clap_mangen::Man::new(man::command()).section("8").render(&mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        ["--print-completions", shell] => {
            let Ok(shell) = shell.parse::<clap_complete::Shell>() else {
                eprintln!("xdpvsadm: unknown shell '{shell}': bash, zsh, fish, elvish or powershell");
                return ExitCode::from(2);
            };
            clap_complete::generate(shell, &mut man::command(), "xdpvsadm", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let inv = match parse(&args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("xdpvsadm: {e}");
            eprintln!("Try `xdpvsadm -h' for more information.");
            return ExitCode::from(2);
        }
    };
    match &inv.action {
        Action::Help => {
            out(&format!(
                "{USAGE}
"
            ));
            return ExitCode::SUCCESS;
        }
        Action::Version => {
            out(&format!("xdpvsadm {} (ipvsadm 1.31 grammar)\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Action::Check => return check(),
        _ => {}
    }
    let region = match Region::open(&inv.instance) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xdpvsadm: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match &inv.action {
        Action::Admin(cmd) => command(&region, Request::Command(cmd.clone())),
        Action::Zero(key) => command(&region, Request::Zero(*key)),
        Action::Restore => {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => restore(&region, text),
                Err(e) => Err(format!("xdpvsadm: cannot read standard input: {e}")),
            }
        }
        Action::Save => view(&region).map(|v| out(&v.save)),
        Action::List(l) => list(&region, &inv, l),
        Action::Laddrs(k) => laddrs(&region, &inv, k),
        Action::Help | Action::Version | Action::Check => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Sends one request; on success waits until every worker has adopted the
/// generation it produced. Errors come back in ipvsadm's words.
fn command(region: &Region, req: Request) -> Result<(), String> {
    let t0 = monotonic_ns();
    let (status, text, generation) =
        region.call(&req.encode(), Duration::from_secs(30)).map_err(|e| format!("xdpvsadm: {e}"))?;
    let answered = monotonic_ns();
    let text = String::from_utf8_lossy(&text).into_owned();
    if status != OK {
        return Err(text);
    }
    for line in text.lines().filter(|l| !l.is_empty()) {
        eprintln!("xdpvsadm: note: {line}");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let n = region.layout().ncores;
    loop {
        let cores =
            (0..n).map(|c| region.read_core(c)).collect::<Result<Vec<_>, _>>().map_err(|e| format!("xdpvsadm: {e}"))?;
        if cores.iter().all(|c| c.generation >= generation) {
            if std::env::var_os("XDPVSADM_TIMING").is_some() {
                let last = cores.iter().map(|c| c.adopted_ns).max().unwrap_or(answered);
                eprintln!(
                    "xdpvsadm: generation {generation}: answered after {} us, in force on all {n} core(s) after {} us",
                    (answered - t0) / 1000,
                    last.saturating_sub(t0) / 1000
                );
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            let late: Vec<String> = cores
                .iter()
                .enumerate()
                .filter(|(_, c)| c.generation < generation)
                .map(|(i, _)| i.to_string())
                .collect();
            return Err(format!(
                "xdpvsadm: applied (generation {generation}), but worker(s) {} have not picked it up within 2 s",
                late.join(",")
            ));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// `-R`: one request, or, for text longer than a command slot holds, parts
/// at line boundaries that the daemon applies all or nothing with the last.
fn restore(region: &Region, text: String) -> Result<(), String> {
    // JSON may escape a byte into six: a part of a sixth of a slot always fits.
    let room = region.layout().slot_bytes / 6;
    if text.len() <= room {
        return command(region, Request::Rules(text));
    }
    let id = u64::from(std::process::id()) << 32 | (monotonic_ns() & 0xffff_ffff);
    let mut rest = text.as_str();
    loop {
        let (part, tail) = rest.split_at(part_end(rest, room));
        let last = tail.is_empty();
        let req = Request::RulesPart { id, text: part.to_string(), last };
        if last {
            return command(region, req);
        }
        let (status, answer, _) =
            region.call(&req.encode(), Duration::from_secs(30)).map_err(|e| format!("xdpvsadm: {e}"))?;
        if status != OK {
            return Err(String::from_utf8_lossy(&answer).into_owned());
        }
        rest = tail;
    }
}

/// Where the first part of `text` ends: at most `room` bytes, after the last
/// whole line that fits (or inside a longer line, at a character boundary).
fn part_end(text: &str, room: usize) -> usize {
    if text.len() <= room {
        return text.len();
    }
    let mut at = room.max(1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text[..at].rfind('\n').map_or(at, |i| i + 1).max(1)
}

fn view(region: &Region) -> Result<View, String> {
    decode_blob("configuration view", &region.read_blob(BLOB_VIEW).map_err(|e| format!("xdpvsadm: {e}"))?)
}

/// The rows, narrowed to one service when asked.
fn rows_for(region: &Region, service: Option<&ServiceKey>) -> Result<(View, Totals, Vec<listing::SvcRow>), String> {
    let v = view(region)?;
    let totals = Totals::read(region).map_err(|e| format!("xdpvsadm: {e}"))?;
    // No estimate yet (the first comes 2 s after start): rates read as zero.
    let rates_blob = region.read_blob(BLOB_RATES).map_err(|e| format!("xdpvsadm: {e}"))?;
    let rates: Rates = decode_blob("rate estimate", &rates_blob).unwrap_or_default();
    let mut rows = listing::rows(&v, &totals, &rates);
    if let Some(k) = service {
        rows.retain(|r| r.key == *k);
        if rows.is_empty() {
            return Err("No such service".into());
        }
    }
    Ok((v, totals, rows))
}

/// `-L --daemon`.
fn list_daemons(region: &Region, inv: &Invocation, l: &ListOpts) -> Result<(), String> {
    let blob = region.read_blob(BLOB_SYNC).map_err(|e| format!("xdpvsadm: {e}"))?;
    let v: SyncView = if blob.is_empty() { SyncView::default() } else { decode_blob("sync view", &blob)? };
    let totals = Totals::read(region).map_err(|e| format!("xdpvsadm: {e}"))?;
    if inv.json {
        out(&format!("{}\n", sync::to_json(&v, &totals)));
    } else {
        out(&sync::render(&v, &totals, l.stats));
    }
    Ok(())
}

/// `-L --bgp`.
fn list_bgp(region: &Region, inv: &Invocation) -> Result<(), String> {
    let blob = region.read_blob(BLOB_BGP).map_err(|e| format!("xdpvsadm: {e}"))?;
    let v: BgpView = if blob.is_empty() { BgpView::default() } else { decode_blob("BGP view", &blob)? };
    if inv.json {
        out(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
    } else {
        out(&bgp::render(&v));
    }
    Ok(())
}

fn list(region: &Region, inv: &Invocation, l: &ListOpts) -> Result<(), String> {
    if l.daemon {
        return list_daemons(region, inv, l);
    }
    if l.bgp {
        return list_bgp(region, inv);
    }
    let (v, totals, mut rows) = rows_for(region, l.service.as_ref())?;
    if l.sort {
        listing::sort(&mut rows);
    }
    let conns = if l.connections {
        let recs = region.dump_connections(Duration::from_secs(60)).map_err(|e| format!("xdpvsadm: {e}"))?;
        let mut c: Vec<_> = recs.iter().map(Conn::decode).collect();
        if l.service.is_some() {
            let slots: Vec<u32> = rows.iter().map(|r| r.slot).collect();
            c.retain(|x| slots.contains(&x.svc));
        }
        if l.sort {
            c.sort_by_key(|x| (x.proto, x.client, x.virt, x.dest));
        }
        Some(c)
    } else {
        None
    };
    if inv.json {
        out(&format!("{}\n", listing::to_json(&rows, &v, &totals, conns.as_deref())));
        return Ok(());
    }
    if l.timeout {
        out(&listing::timeouts(&v));
    } else if let Some(c) = &conns {
        out(&listing::render_conns(c));
    } else if l.cores {
        out(&listing::render_cores(&totals));
    } else {
        out(&listing::render(&rows, l, l.service.is_none()));
    }
    Ok(())
}

fn laddrs(region: &Region, inv: &Invocation, k: &ServiceKey) -> Result<(), String> {
    let (v, totals, rows) = rows_for(region, Some(k))?;
    if inv.json {
        out(&format!("{}\n", listing::to_json(&rows, &v, &totals, None)["services"]));
    } else {
        out(&listing::render_laddrs(&rows));
    }
    Ok(())
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
    let applied = apply_rules(&mut cfg, &text);
    let notes = applied.notes(&cfg).into_iter().map(|(l, n)| (l, format!("note: {n}")));
    let mut said: Vec<(usize, String)> = applied.errors.iter().cloned().chain(notes).collect();
    said.sort_by_key(|(line, _)| *line);
    for (line, text) in said {
        eprintln!("xdpvsadm: line {line}: {text}");
    }
    out(&save(&cfg));
    if applied.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
