//! `HTTP_GET`/`SSL_GET` `url { regex … }`: keepalived's pattern search in
//! the returned body (`regex STRING`, `regex_no_match`, `regex_options …`,
//! `regex_min_offset N`, `regex_max_offset N`, `regex_stack START MAX`).
//!
//! keepalived uses PCRE2; xdpvs-checker uses Rust's `regex` crate, whose
//! searches take time linear in the body whatever the pattern (a server's
//! page cannot stall the checker). PCRE2's options that change what
//! matches map to the crate's flags; those that only tune PCRE2 are
//! accepted; a pattern the crate cannot run (look-around,
//! back-references) is refused at load, by name.

use regex::bytes::{Regex, RegexBuilder};

/// A url's compiled pattern and how its match is judged.
#[derive(Debug, Clone)]
pub struct BodyRegex {
    pub pattern: String,
    pub re: Regex,
    /// `regex_no_match`: a match fails the check.
    pub no_match: bool,
    /// The search starts this far into the body.
    pub min_offset: usize,
    /// A match must start at or before this offset.
    pub max_offset: Option<usize>,
}

impl Eq for BodyRegex {}

impl PartialEq for BodyRegex {
    fn eq(&self, o: &Self) -> bool {
        self.re.as_str() == o.re.as_str()
            && (self.no_match, self.min_offset, self.max_offset) == (o.no_match, o.min_offset, o.max_offset)
    }
}

impl BodyRegex {
    /// Whether `body` passes: the pattern found (not found with
    /// `regex_no_match`) within the offsets.
    pub fn passes(&self, body: &[u8]) -> bool {
        let from = self.min_offset.min(body.len());
        let found =
            self.re.find(&body[from..]).is_some_and(|m| self.max_offset.is_none_or(|mx| from + m.start() <= mx));
        found != self.no_match
    }
}

/// PCRE2 options that change what matches, as the crate's flags.
const FLAGS: [&str; 7] = ["caseless", "multiline", "dotall", "extended", "ungreedy", "utf", "ucp"];
/// PCRE2 options that only tune its engine (or that the crate does always).
const TUNING: [&str; 12] = [
    "auto_callout",
    "dupnames",
    "no_auto_capture",
    "no_auto_possess",
    "no_dotstar_anchor",
    "no_start_optimize",
    "never_ucp",
    "never_utf",
    "never_backslash_c",
    "use_offset_limit",
    "alt_verbnames",
    "allow_empty_class",
];
/// PCRE2 options with no equivalent here.
const UNSUPPORTED: [&str; 5] = ["alt_bsux", "alt_circumflex", "dollar_endonly", "firstline", "match_unset_backref"];

/// Checks `regex_options`' words: `Err` names one keepalived does not
/// know; `Ok` with the ones read here but not honoured (to warn about).
pub fn check_options<'a>(words: impl Iterator<Item = &'a str>) -> Result<Vec<&'a str>, String> {
    let mut ignored = Vec::new();
    for w in words {
        if UNSUPPORTED.contains(&w) {
            ignored.push(w);
        } else if !FLAGS.contains(&w) && !TUNING.contains(&w) {
            return Err(format!(
                "regex_options '{w}': one of {}",
                FLAGS.iter().chain(&TUNING).chain(&UNSUPPORTED).copied().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    Ok(ignored)
}

/// Compiles `pattern` with `options` (checked by [`check_options`]).
pub fn compile(pattern: &str, options: &[String]) -> Result<Regex, String> {
    let has = |o: &str| options.iter().any(|x| x == o);
    RegexBuilder::new(pattern)
        .case_insensitive(has("caseless"))
        .multi_line(has("multiline"))
        .dot_matches_new_line(has("dotall"))
        .ignore_whitespace(has("extended"))
        .swap_greed(has("ungreedy"))
        // PCRE2 without UTF reads bytes: `.` is any byte, `\w` ASCII.
        .unicode(has("utf") || has("ucp"))
        .build()
        .map_err(|e| {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or("").trim_start_matches("error: ").to_string();
            format!("regex '{pattern}': {why} (xdpvs-checker's regex has no look-around or back-references)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str, opts: &[&str], no_match: bool, min: usize, max: Option<usize>) -> BodyRegex {
        let o: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        BodyRegex { pattern: p.into(), re: compile(p, &o).unwrap(), no_match, min_offset: min, max_offset: max }
    }

    #[test]
    fn options_offsets_and_the_reversed_sense() {
        assert!(re("Status: OK", &[], false, 0, None).passes(b"<p>Status: OK</p>"));
        assert!(!re("status: ok", &[], false, 0, None).passes(b"Status: OK"));
        assert!(re("status: ok", &["caseless"], false, 0, None).passes(b"Status: OK"));
        assert!(re("^b$", &["multiline"], false, 0, None).passes(b"a\nb\nc"));
        assert!(!re("a.c", &[], false, 0, None).passes(b"a\nc"));
        assert!(re("a.c", &["dotall"], false, 0, None).passes(b"a\nc"));
        assert!(re("a b c", &["extended"], false, 0, None).passes(b"abc"));
        assert!(re("ERROR", &[], true, 0, None).passes(b"all fine"));
        assert!(!re("ERROR", &[], true, 0, None).passes(b"ERROR 42"));
        let offsets = re("OK", &[], false, 4, Some(6));
        assert!(!offsets.passes(b"OK.............."), "before the minimum offset");
        assert!(offsets.passes(b"....xxOK"), "starting at 6");
        assert!(!offsets.passes(b"....xxxOK"), "starting past the maximum");
        assert!(!offsets.passes(b"OK"), "a body shorter than the minimum");
        assert!(re(r"\xff", &[], false, 0, None).passes(&[0, 0xff]), "bytes, as PCRE2 without utf");
    }

    #[test]
    fn what_cannot_run_is_named() {
        let e = compile("(?=x)y", &[]).unwrap_err();
        assert!(e.starts_with("regex '(?=x)y': ") && e.contains("look-around"), "{e}");
        assert!(compile("(a)\\1", &[]).is_err());
        assert_eq!(check_options(["caseless", "no_start_optimize"].into_iter()), Ok(vec![]));
        assert_eq!(check_options(["firstline"].into_iter()), Ok(vec!["firstline"]));
        assert!(check_options(["bogus"].into_iter())
            .unwrap_err()
            .starts_with("regex_options 'bogus': one of caseless"));
    }
}
