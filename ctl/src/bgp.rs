//! `-L --bgp`: what xdpvs tells BIRD and why (our addition; ipvsadm has no
//! routing).

use xdpvs_api::msg::BgpView;

/// One line for the director, one per protocol.
pub fn render(v: &BgpView) -> String {
    if v.protocols.is_empty() {
        return "no BGP announcement (start xdpvs with --bird-vips NAME to drive BIRD)\n".into();
    }
    let mut s = format!(
        "BIRD at {}: director {}{}\n",
        v.socket,
        if v.healthy { "can serve" } else { "withdrawn" },
        if v.healthy { String::new() } else { format!(" ({})", v.reason) }
    );
    s.push_str(&format!("{:<16} {:<7} {:<10} {:>6} {:>6}  {}\n", "Protocol", "Kind", "State", "Ann", "Wdr", "Why"));
    for p in &v.protocols {
        let state = match (p.want, p.announced) {
            (true, true) => "announced",
            (false, false) => "withdrawn",
            (true, false) => "announcing",
            (false, true) => "withdrawing",
        };
        let vips = if p.vips.is_empty() || p.kind != "vips" {
            String::new()
        } else {
            format!(" [{}]", p.vips.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(","))
        };
        s.push_str(&format!(
            "{:<16} {:<7} {:<10} {:>6} {:>6}  {}{vips}\n",
            p.name, p.kind, state, p.announcements, p.withdrawals, p.reason
        ));
    }
    if let Some(e) = &v.last_error {
        s.push_str(&format!("{} error(s) telling BIRD; the last: {e}\n", v.errors));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdpvs_api::msg::ProtocolView;

    #[test]
    fn states_and_reasons_are_shown() {
        let p = |name: &str, want, announced, reason: &str| ProtocolView {
            name: name.into(),
            kind: "vips".into(),
            vips: vec!["198.18.10.10".parse().unwrap()],
            want,
            announced,
            reason: reason.into(),
            announcements: 1,
            withdrawals: 2,
        };
        let v = BgpView {
            socket: "/run/bird/bird.ctl".into(),
            healthy: false,
            reason: "drained by hand (xdpvsadm --drain)".into(),
            drained: true,
            protocols: vec![p("vips", false, false, "drained by hand (xdpvsadm --drain)"), p("web", true, true, "")],
            errors: 1,
            last_error: Some("cannot reach BIRD".into()),
        };
        let s = render(&v);
        assert!(s.starts_with("BIRD at /run/bird/bird.ctl: director withdrawn (drained by hand"), "{s}");
        assert!(s.contains("vips             vips    withdrawn       1      2  drained by hand"), "{s}");
        assert!(s.contains("web              vips    announced       1      2   [198.18.10.10]"), "{s}");
        assert!(s.contains("1 error(s) telling BIRD; the last: cannot reach BIRD"));
        assert!(render(&BgpView::default()).contains("--bird-vips"));
    }
}
