//! The words of an invocation: which command, which options with which
//! values, and the positional values (only `--set` has them). Short options
//! may be bundled (`-Ln`, `-lcn`); an option that takes a value takes the
//! rest of its bundle or the next word (`-s wrr`, `-swrr`); long options
//! take `--opt value` or `--opt=value`; `-p` takes an optional timeout; `-b`
//! is `--sched-flags` with `-A`/`-E` and `--fullnat` elsewhere, as in DPVS.

use super::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmd {
    AddService,
    EditService,
    DelService,
    Clear,
    Restore,
    Save,
    AddServer,
    EditServer,
    DelServer,
    List,
    Zero,
    Set,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Check,
    Help,
    Version,
    StartDaemon,
    StopDaemon,
    Drain,
    Undrain,
}

impl Cmd {
    pub(super) const ALL: [Cmd; 22] = [
        Cmd::AddService,
        Cmd::EditService,
        Cmd::DelService,
        Cmd::Clear,
        Cmd::Restore,
        Cmd::Save,
        Cmd::AddServer,
        Cmd::EditServer,
        Cmd::DelServer,
        Cmd::List,
        Cmd::Zero,
        Cmd::Set,
        Cmd::AddLaddr,
        Cmd::DelLaddr,
        Cmd::GetLaddr,
        Cmd::Check,
        Cmd::Help,
        Cmd::Version,
        Cmd::StartDaemon,
        Cmd::StopDaemon,
        Cmd::Drain,
        Cmd::Undrain,
    ];

    /// The command's short letter, if it has one.
    pub(super) fn short(self) -> Option<char> {
        "AEDCRSaedLZPQGhv".chars().find(|&c| Cmd::from_short(c) == Some(self))
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Cmd::AddService => "add-service",
            Cmd::EditService => "edit-service",
            Cmd::DelService => "delete-service",
            Cmd::Clear => "clear",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::AddServer => "add-server",
            Cmd::EditServer => "edit-server",
            Cmd::DelServer => "delete-server",
            Cmd::List => "list",
            Cmd::Zero => "zero",
            Cmd::Set => "set",
            Cmd::AddLaddr => "add-laddr",
            Cmd::DelLaddr => "del-laddr",
            Cmd::GetLaddr => "get-laddr",
            Cmd::Check => "check",
            Cmd::Help => "help",
            Cmd::Version => "version",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Drain => "drain",
            Cmd::Undrain => "undrain",
        }
    }

    fn from_short(c: char) -> Option<Cmd> {
        Some(match c {
            'A' => Cmd::AddService,
            'E' => Cmd::EditService,
            'D' => Cmd::DelService,
            'C' => Cmd::Clear,
            'R' => Cmd::Restore,
            'S' => Cmd::Save,
            'a' => Cmd::AddServer,
            'e' => Cmd::EditServer,
            'd' => Cmd::DelServer,
            'L' | 'l' => Cmd::List,
            'Z' => Cmd::Zero,
            'P' => Cmd::AddLaddr,
            'Q' => Cmd::DelLaddr,
            'G' => Cmd::GetLaddr,
            'h' => Cmd::Help,
            // ipvsadm's -v; -V kept for those who guess it.
            'v' | 'V' => Cmd::Version,
            _ => return None,
        })
    }

    fn from_long(s: &str) -> Option<Cmd> {
        Some(match s {
            "add-service" => Cmd::AddService,
            "edit-service" => Cmd::EditService,
            "delete-service" => Cmd::DelService,
            "clear" => Cmd::Clear,
            "restore" => Cmd::Restore,
            "save" => Cmd::Save,
            "add-server" => Cmd::AddServer,
            "edit-server" => Cmd::EditServer,
            "delete-server" => Cmd::DelServer,
            "list" => Cmd::List,
            "zero" => Cmd::Zero,
            "set" => Cmd::Set,
            "add-laddr" => Cmd::AddLaddr,
            "del-laddr" => Cmd::DelLaddr,
            "get-laddr" => Cmd::GetLaddr,
            "check" => Cmd::Check,
            "help" => Cmd::Help,
            "version" => Cmd::Version,
            "drain" => Cmd::Drain,
            "undrain" => Cmd::Undrain,
            _ => return None,
        })
    }
}

/// Options, by their long name; the short letter, whether it takes a value.
pub(super) const OPTS: &[(&str, Option<char>, bool)] = &[
    ("tcp-service", Some('t'), true),
    ("udp-service", Some('u'), true),
    ("sctp-service", Some('q'), true),
    ("fwmark-service", Some('f'), true),
    ("scheduler", Some('s'), true),
    ("persistent", Some('p'), false),
    ("netmask", Some('M'), true),
    ("sched-flags", None, true),
    ("real-server", Some('r'), true),
    ("gatewaying", Some('g'), false),
    ("ipip", Some('i'), false),
    ("masquerading", Some('m'), false),
    ("fullnat", None, false),
    ("weight", Some('w'), true),
    ("u-threshold", Some('x'), true),
    ("l-threshold", Some('y'), true),
    ("numeric", Some('n'), false),
    ("connection", Some('c'), false),
    ("stats", None, false),
    ("rate", None, false),
    ("thresholds", None, false),
    ("persistent-conn", None, false),
    ("timeout", None, false),
    ("exact", Some('X'), false),
    ("sort", None, false),
    ("nosort", None, false),
    ("ipv6", Some('6'), false),
    ("laddr", Some('z'), true),
    ("ifname", Some('F'), true),
    ("match", None, true),
    ("json", None, false),
    ("instance", None, true),
    ("cores", None, false),
    ("start-daemon", None, true),
    ("stop-daemon", None, true),
    ("mcast-interface", None, true),
    ("syncid", None, true),
    ("sync-maxlen", None, true),
    ("mcast-group", None, true),
    ("mcast-port", None, true),
    ("mcast-ttl", None, true),
    ("daemon", None, false),
    ("bgp", None, false),
    ("tun-type", None, true),
    ("tun-port", None, true),
    ("tun-nocsum", None, false),
    ("tun-csum", None, false),
    ("tun-remcsum", None, false),
    ("ops", Some('o'), false),
    ("pe", None, true),
    ("proxy-protocol", None, true),
    ("toa", None, false),
    ("synproxy", Some('j'), true),
];

/// One option occurrence.
#[derive(Debug, Clone)]
pub(super) struct Occ {
    pub(super) name: &'static str,
    /// As typed (for messages).
    pub(super) shown: String,
    pub(super) value: Option<String>,
}

/// The words of an invocation, sorted.
pub(super) struct Words {
    pub(super) cmd: Option<Cmd>,
    pub(super) occ: Vec<Occ>,
    pub(super) pos: Vec<String>,
}

fn set_cmd(cmd: &mut Option<Cmd>, c: Cmd) -> Result<(), ParseError> {
    match *cmd {
        Some(x) if x != c => Err(ParseError::MultipleCommands),
        _ => {
            *cmd = Some(c);
            Ok(())
        }
    }
}

/// The command, found first: what `-b` means depends on it.
fn find_command(args: &[String]) -> Result<Option<Cmd>, ParseError> {
    let mut cmd = None;
    for a in args {
        if let Some(long) = a.strip_prefix("--") {
            if let Some(c) = Cmd::from_long(long.split('=').next().unwrap_or(long)) {
                set_cmd(&mut cmd, c)?;
            }
        } else if let Some(bundle) = a.strip_prefix('-') {
            for ch in bundle.chars() {
                if let Some(c) = Cmd::from_short(ch) {
                    set_cmd(&mut cmd, c)?;
                    continue;
                }
                // A value-taking option ends the bundle.
                if OPTS.iter().any(|o| o.1 == Some(ch) && o.2)
                    || (ch == 'b' && matches!(cmd, Some(Cmd::AddService | Cmd::EditService)))
                {
                    break;
                }
            }
        }
    }
    Ok(cmd)
}

/// Reads the words one by one; `i` is the next unread word.
struct Reader<'a> {
    args: &'a [String],
    i: usize,
}

impl Reader<'_> {
    fn next_word(&mut self, shown: &str) -> Result<String, ParseError> {
        let v = self.args.get(self.i).cloned().ok_or_else(|| ParseError::MissingValue(shown.to_string()))?;
        self.i += 1;
        Ok(v)
    }

    /// The next word if it is a number (`-p`'s optional timeout).
    fn next_number(&mut self) -> Option<String> {
        let v = self.args.get(self.i).filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))?;
        self.i += 1;
        Some(v.clone())
    }

    /// `--name[=value] [value]` (`long` is without the dashes).
    fn long(&mut self, long: &str) -> Result<Option<Occ>, ParseError> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        if Cmd::from_long(name).is_some() {
            return Ok(None);
        }
        let Some(&(oname, _, takes)) = OPTS.iter().find(|o| o.0 == name) else {
            return Err(ParseError::UnknownOption(format!("--{long}")));
        };
        let value = match inline {
            Some(v) => Some(v),
            None if takes => Some(self.next_word(&format!("--{long}"))?),
            None if oname == "persistent" => self.next_number(),
            None => None,
        };
        Ok(Some(Occ { name: oname, shown: format!("--{name}"), value }))
    }

    /// A bundle of short options (without the dash).
    fn bundle(&mut self, bundle: &str, b_takes_value: bool, out: &mut Vec<Occ>) -> Result<(), ParseError> {
        let chars: Vec<char> = bundle.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let ch = chars[k];
            k += 1;
            if Cmd::from_short(ch).is_some() {
                continue;
            }
            let (name, takes) = match ch {
                'b' if b_takes_value => ("sched-flags", true),
                'b' => ("fullnat", false),
                _ => match OPTS.iter().find(|o| o.1 == Some(ch)) {
                    Some(o) => (o.0, o.2),
                    None => return Err(ParseError::UnknownOption(format!("-{ch}"))),
                },
            };
            let rest: String = chars[k..].iter().collect();
            let digits = !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit());
            let value = match () {
                _ if takes && !rest.is_empty() || name == "persistent" && digits => {
                    k = chars.len();
                    Some(rest)
                }
                _ if takes => Some(self.next_word(&format!("-{ch}"))?),
                _ if name == "persistent" => self.next_number(),
                _ => None,
            };
            out.push(Occ { name, shown: format!("-{ch}"), value });
        }
        Ok(())
    }
}

/// Splits the words into a command, options and positional values.
/// `--start-daemon ROLE` and `--stop-daemon ROLE` are commands that take a
/// value, as in ipvsadm: read as options, then made the command.
pub(super) fn tokenize(args: &[String]) -> Result<Words, ParseError> {
    let mut cmd = find_command(args)?;
    let b_takes_value = matches!(cmd, Some(Cmd::AddService | Cmd::EditService));
    let mut r = Reader { args, i: 0 };
    let (mut occ, mut pos) = (Vec::new(), Vec::new());
    while let Some(a) = args.get(r.i) {
        r.i += 1;
        if let Some(long) = a.strip_prefix("--") {
            occ.extend(r.long(long)?);
        } else if a.len() > 1 && a.starts_with('-') {
            r.bundle(&a[1..], b_takes_value, &mut occ)?;
        } else {
            pos.push(a.clone());
        }
    }
    for o in &occ {
        let daemon = match o.name {
            "start-daemon" => Cmd::StartDaemon,
            "stop-daemon" => Cmd::StopDaemon,
            _ => continue,
        };
        set_cmd(&mut cmd, daemon)?;
    }
    Ok(Words { cmd, occ, pos })
}

/// Which options each command accepts (beyond --instance, --json, -n).
pub(super) fn allowed(cmd: Cmd, name: &str) -> bool {
    const SVC: &[&str] = &["tcp-service", "udp-service", "sctp-service", "fwmark-service", "ipv6"];
    let extra: &[&str] = match cmd {
        Cmd::AddService | Cmd::EditService => {
            &["scheduler", "persistent", "netmask", "sched-flags", "match", "ops", "proxy-protocol", "toa", "synproxy"]
        }
        Cmd::DelService | Cmd::GetLaddr => &[],
        Cmd::AddServer | Cmd::EditServer => &[
            "real-server",
            "gatewaying",
            "ipip",
            "masquerading",
            "fullnat",
            "weight",
            "u-threshold",
            "l-threshold",
            "tun-type",
            "tun-port",
            "tun-nocsum",
            "tun-csum",
            "tun-remcsum",
        ],
        Cmd::DelServer => &["real-server"],
        Cmd::List => &[
            "connection",
            "stats",
            "rate",
            "thresholds",
            "persistent-conn",
            "timeout",
            "exact",
            "sort",
            "nosort",
            "cores",
            "daemon",
            "bgp",
        ],
        Cmd::StartDaemon => {
            &["start-daemon", "mcast-interface", "syncid", "sync-maxlen", "mcast-group", "mcast-port", "mcast-ttl"]
        }
        Cmd::StopDaemon => &["stop-daemon"],
        Cmd::Zero => &[],
        Cmd::AddLaddr | Cmd::DelLaddr => &["laddr", "ifname"],
        Cmd::Clear
        | Cmd::Restore
        | Cmd::Save
        | Cmd::Set
        | Cmd::Check
        | Cmd::Help
        | Cmd::Version
        | Cmd::Drain
        | Cmd::Undrain => {
            return matches!(name, "numeric" | "json" | "instance");
        }
    };
    matches!(name, "numeric" | "json" | "instance") || SVC.contains(&name) || extra.contains(&name)
}
