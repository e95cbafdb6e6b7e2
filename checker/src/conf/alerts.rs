//! keepalived's e-mail alerts as `global_defs` sets them:
//! `notification_email { ADDR … }`, `notification_email_from ADDR`,
//! `smtp_server HOST [PORT]`, `smtp_helo_name NAME`,
//! `smtp_connect_timeout SECS`, `router_id NAME`, and the defaults of the
//! servers' `smtp_alert`: `smtp_alert [BOOL]`, `smtp_alert_checker [BOOL]`,
//! `no_checker_emails [BOOL]`. Mail goes out only with a server and at
//! least one address, as in keepalived.

use super::model::Diag;
use super::tree::Node;
use std::time::Duration;

/// The alerts' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alerts {
    /// `smtp_server`: host (an address or a name) and port (25).
    pub server: Option<(String, u16)>,
    pub to: Vec<String>,
    /// Default: the user's name at the host's name.
    pub from: String,
    /// Default: the host's name.
    pub helo: String,
    /// Default 30 s.
    pub timeout: Duration,
    /// Default: the host's name.
    pub router_id: String,
    pub smtp_alert: Option<bool>,
    pub smtp_alert_checker: Option<bool>,
    /// Only a real server's up/down, not each checker's, is mailed.
    pub no_checker_emails: bool,
}

impl Default for Alerts {
    fn default() -> Alerts {
        Alerts::defaults()
    }
}

impl Alerts {
    /// keepalived's defaults on this host.
    pub fn defaults() -> Alerts {
        let host = super::host_full_name();
        let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map_or("root".into(), |u| u.name);
        Alerts {
            server: None,
            to: Vec::new(),
            from: format!("{user}@{host}"),
            helo: host.clone(),
            timeout: Duration::from_secs(30),
            router_id: host,
            smtp_alert: None,
            smtp_alert_checker: None,
            no_checker_emails: false,
        }
    }

    /// Mail goes out: a server and an address to send to.
    pub fn on(&self) -> bool {
        self.server.is_some() && !self.to.is_empty()
    }

    /// A real server's `smtp_alert`, unset: the checkers' default, else
    /// the global one, else on (keepalived's, for compatibility).
    pub fn real_server(&self, own: Option<bool>) -> bool {
        own.or(self.smtp_alert_checker).or(self.smtp_alert).unwrap_or(true)
    }

    /// A virtual server's `smtp_alert`, unset: the same chain, else off.
    pub fn virtual_server(&self, own: Option<bool>) -> bool {
        own.or(self.smtp_alert_checker).or(self.smtp_alert).unwrap_or(false)
    }
}

/// keepalived's booleans: none (true), `true`/`on`/`yes`, `false`/`off`/`no`.
pub fn flag(n: &Node, diags: &mut Vec<Diag>) -> Option<bool> {
    match n.arg(0).map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "on" | "yes") => Some(true),
        Some("false" | "off" | "no") => Some(false),
        Some(v) => {
            diags.push(Diag { at: n.at(), msg: format!("'{}': '{v}' is not true or false", n.name()), fatal: true });
            None
        }
    }
}

/// Reads one `global_defs` keyword into `a`; false when it is not an
/// alert's.
pub fn setting(a: &mut Alerts, k: &Node, diags: &mut Vec<Diag>) -> bool {
    let mut bad = |msg: String| diags.push(Diag { at: k.at(), msg, fatal: true });
    match k.name() {
        "notification_email" => {
            a.to = k.kids().iter().map(|e| e.name().to_string()).chain(k.args.iter().map(|w| w.text.clone())).collect()
        }
        "notification_email_from" => match k.arg(0) {
            Some(f) => a.from = f.to_string(),
            None => bad("'notification_email_from' needs an address".into()),
        },
        "smtp_server" => match (k.arg(0), k.arg(1).map(|p| p.parse::<u16>().ok().filter(|&p| p > 0))) {
            (Some(h), None) => a.server = Some((h.to_string(), 25)),
            (Some(h), Some(Some(p))) => a.server = Some((h.to_string(), p)),
            (h, _) => bad(format!("Invalid smtp server {} {}: HOST [PORT]", h.unwrap_or(""), k.arg(1).unwrap_or(""))),
        },
        "smtp_helo_name" => {
            if let Some(h) = k.arg(0) {
                a.helo = h.to_string();
            }
        }
        "smtp_connect_timeout" => match k.arg(0).and_then(|v| v.parse::<u64>().ok()).filter(|&t| t > 0) {
            Some(t) => a.timeout = Duration::from_secs(t),
            None => bad(format!("'smtp_connect_timeout': '{}' is not a number of seconds", k.arg(0).unwrap_or(""))),
        },
        "router_id" => {
            if let Some(r) = k.arg(0) {
                a.router_id = r.to_string();
            }
        }
        "smtp_alert" => a.smtp_alert = flag(k, diags),
        "smtp_alert_checker" => a.smtp_alert_checker = flag(k, diags),
        "no_checker_emails" => a.no_checker_emails = flag(k, diags).unwrap_or(false),
        _ => return false,
    }
    true
}
