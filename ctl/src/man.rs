//! `xdpvsadm`'s man page and shell completions, built from the grammar's
//! own words (`xdpvs_api::grammar::vocabulary`): a word the grammar gains
//! without a line here fails the test below, so the page cannot drift from
//! the command line.

use clap::{Arg, ArgAction, Command};

/// What each command and option does (ipvsadm's wording where it has one).
const HELP: &[(&str, &str)] = &[
    ("add-service", "Add a virtual service (-t, -u or -f)."),
    ("edit-service", "Edit a virtual service."),
    ("delete-service", "Delete a virtual service, with its real servers."),
    ("clear", "Clear the virtual server table."),
    ("restore", "Restore rules from standard input, as -S writes them (all or nothing)."),
    ("save", "Save the rules to standard output, in a form -R reads."),
    ("add-server", "Add a real server to a virtual service."),
    ("edit-server", "Edit a real server."),
    ("delete-server", "Delete a real server."),
    ("list", "List the virtual server table (with -c: the connections)."),
    ("zero", "Zero the packet, byte and rate counters of a service or all."),
    ("set", "Set connection timeouts: --set TCP TCPFIN UDP (seconds; 0 keeps one)."),
    ("add-laddr", "FULLNAT: add a local address to a service (-z, [-F ifname])."),
    ("del-laddr", "FULLNAT: delete a local address from a service."),
    ("get-laddr", "FULLNAT: list a service's local addresses."),
    ("check", "Check -R input offline and print it as -S would."),
    ("help", "Show the usage."),
    ("version", "Show the version."),
    ("drain", "Withdraw this director's VIPs from BGP (through BIRD) and keep forwarding what still comes."),
    ("undrain", "Announce the VIPs again once the director can serve."),
    ("tcp-service", "A TCP service: address[:port] (IPv6 in brackets)."),
    ("udp-service", "A UDP service: address[:port]."),
    ("sctp-service", "SCTP services: refused (not supported)."),
    ("fwmark-service", "A firewall-mark service: the mark (1 and up)."),
    ("scheduler", "Scheduler: rr wrr lc wlc (default) lblc lblcr dh sh sed nq fo ovf mh."),
    ("persistent", "Persistence, with an optional timeout in seconds (default 300)."),
    ("netmask", "Persistence granularity: a netmask (IPv4) or prefix length."),
    ("sched-flags", "Scheduler flags (-b with -A/-E): sh-fallback, sh-port, mh-fallback, mh-port, flag-1..3."),
    ("real-server", "The real server: address[:port]."),
    ("gatewaying", "Forward by direct routing (DR, the default)."),
    ("ipip", "Forward by IPIP tunnelling (TUN)."),
    ("masquerading", "Forward by masquerading (NAT)."),
    ("fullnat", "Forward by full NAT (-b with -a/-e, as DPVS)."),
    ("weight", "The real server's weight (0 quiesces it)."),
    ("u-threshold", "Upper connection threshold of the real server."),
    ("l-threshold", "Lower connection threshold of the real server."),
    ("numeric", "Numeric output of addresses and ports."),
    ("connection", "List the connections (-L -c)."),
    ("stats", "List with statistics (with --daemon: the sync counters)."),
    ("rate", "List with rates."),
    ("thresholds", "List with thresholds."),
    ("persistent-conn", "List with persistent connections."),
    ("timeout", "List the timeouts."),
    ("exact", "Exact numbers (no K/M/G)."),
    ("sort", "Sort the listing (the default)."),
    ("nosort", "Do not sort the listing."),
    ("ipv6", "The fwmark service is IPv6."),
    ("laddr", "FULLNAT: the local address."),
    ("ifname", "FULLNAT: the local address's interface."),
    ("match", "A fwmark service's ports: PROTO:ADDR:PORT[,PORT...] (without it the mark follows netfilter)."),
    ("json", "Any listing as JSON."),
    ("instance", "The xdpvs instance (default: default): the region /dev/shm/xdpvs-NAME."),
    ("cores", "List per-core counters and drops by reason."),
    ("start-daemon", "Start a connection sync daemon: master or backup."),
    ("stop-daemon", "Stop a connection sync daemon: master or backup."),
    ("mcast-interface", "The sync daemon's multicast interface."),
    ("syncid", "The sync daemon's sync id (0-255, default 255)."),
    ("sync-maxlen", "Largest sync message (default: the interface's MTU - 28, or - 48 for IPv6)."),
    ("mcast-group", "The sync group (default 224.0.0.81; IPv6 groups too)."),
    ("mcast-port", "The sync UDP port (default 8848)."),
    ("mcast-ttl", "The sync multicast TTL (default 1)."),
    ("daemon", "List the sync daemons (-L --daemon)."),
    ("bgp", "List what xdpvs tells BIRD and why (-L --bgp)."),
    ("tun-type", "Tunnel type: ipip (the only one built)."),
    ("tun-port", "GUE tunnel port: refused (GUE not built)."),
    ("tun-nocsum", "GUE checksum option: refused."),
    ("tun-csum", "GUE checksum option: refused."),
    ("tun-remcsum", "GUE checksum option: refused."),
    ("ops", "One-packet scheduling (UDP services)."),
    ("pe", "Persistence engines: refused (persistence is by address and netmask)."),
    ("proxy-protocol", "FULLNAT: send the client's address with PROXY protocol v1 or v2."),
    ("toa", "FULLNAT: send the client's address in the TCP option TOA."),
    ("synproxy", "enable|disable: answer SYNs with syncookies, open the server's connection on the client's ACK (TCP; NAT and FULLNAT)."),
];

fn help(name: &str) -> &'static str {
    HELP.iter().find(|h| h.0 == name).map_or("", |h| h.1)
}

/// xdpvsadm's command line as a clap command, for the page and completions.
pub fn command() -> Command {
    let (commands, options) = xdpvs_api::grammar::vocabulary();
    let mut c = Command::new("xdpvsadm")
        .version(env!("CARGO_PKG_VERSION"))
        .about("ipvsadm's command line for xdpvs, the AF_XDP Virtual Server")
        .long_about(crate::USAGE)
        .disable_help_flag(true)
        .disable_version_flag(true);
    for (name, short, takes) in commands.into_iter().chain(options) {
        let mut a = Arg::new(name).long(name).help(help(name));
        a = if takes { a.action(ArgAction::Set).value_name("VALUE") } else { a.action(ArgAction::SetTrue) };
        if let Some(s) = short {
            a = a.short(s);
        }
        c = c.arg(a);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_of_the_grammar_is_documented_and_nothing_else() {
        let (commands, options) = xdpvs_api::grammar::vocabulary();
        let words: Vec<&str> = commands.iter().chain(options.iter()).map(|w| w.0).collect();
        for w in &words {
            assert!(!help(w).is_empty(), "'{w}' has no help line in man.rs");
        }
        for (h, _) in HELP {
            assert!(words.contains(h), "help for '{h}', which the grammar does not know");
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(command()).render(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("start\\-daemon") && page.contains("ipvsadm"), "{page}");
    }
}
