//! BIRD's control socket (what `birdc` speaks): a greeting, then per
//! command reply lines `NNNN-text` (more follow) or `NNNN text` (the last),
//! continuation lines starting with a space. Codes 8000 and up are errors.
//! xdpvs sends only `enable NAME` and `disable NAME`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long BIRD may take to answer one command.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// One connection to BIRD, opened on first use and again after an error.
pub struct Bird {
    path: PathBuf,
    conn: Option<BufReader<UnixStream>>,
}

/// What BIRD answered to `enable` / `disable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It changed the protocol's state.
    Done,
    /// The protocol was in that state already.
    Already,
}

impl Bird {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf(), conn: None }
    }

    /// `enable NAME` (announce) or `disable NAME` (withdraw).
    pub fn set(&mut self, protocol: &str, enabled: bool) -> Result<Answer, String> {
        let verb = if enabled { "enable" } else { "disable" };
        let r = self.command(&format!("{verb} {protocol}"));
        if r.is_err() {
            self.conn = None;
        }
        let lines = r?;
        answer(protocol, verb, &lines)
    }

    fn connect(&mut self) -> Result<&mut BufReader<UnixStream>, String> {
        if self.conn.is_none() {
            let s = UnixStream::connect(&self.path).map_err(|e| {
                format!(
                    "cannot reach BIRD at {}: {e} (is bird running, with this control socket?)",
                    self.path.display()
                )
            })?;
            s.set_read_timeout(Some(ANSWER_WITHIN)).map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(ANSWER_WITHIN)).map_err(|e| e.to_string())?;
            let mut r = BufReader::new(s);
            let hello = read_reply(&mut r)?;
            if !hello.iter().any(|(code, _)| *code == 1) {
                return Err(format!("{} is not BIRD's control socket (it said {hello:?})", self.path.display()));
            }
            self.conn = Some(r);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn command(&mut self, cmd: &str) -> Result<Vec<(u16, String)>, String> {
        let path = self.path.display().to_string();
        let r = self.connect()?;
        r.get_mut().write_all(format!("{cmd}\n").as_bytes()).map_err(|e| format!("writing to BIRD at {path}: {e}"))?;
        read_reply(r).map_err(|e| format!("BIRD at {path}: {e}"))
    }
}

/// Lines up to the last of one reply, as (code, text); continuation lines
/// carry the code before them.
fn read_reply(r: &mut impl BufRead) -> Result<Vec<(u16, String)>, String> {
    let mut out = Vec::new();
    let mut code = 0;
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return Err("it closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("no answer: {e}")),
        }
        let line = line.trim_end_matches('\n');
        let (c, last, text) = parse_line(line, code).ok_or_else(|| format!("an unreadable reply line {line:?}"))?;
        code = c;
        out.push((c, text.to_string()));
        if last {
            return Ok(out);
        }
    }
}

/// One reply line: its code, whether it ends the reply, its text.
fn parse_line(line: &str, prev: u16) -> Option<(u16, bool, &str)> {
    if let Some(text) = line.strip_prefix(' ') {
        return Some((prev, false, text));
    }
    let code: u16 = line.get(..4)?.parse().ok()?;
    match line.as_bytes().get(4) {
        Some(b'-') => Some((code, false, &line[5..])),
        Some(b' ') => Some((code, true, &line[5..])),
        None => Some((code, true, "")),
        _ => None,
    }
}

/// BIRD's codes for enable/disable (its `cli` replies): 8 already
/// disabled, 9 disabled, 10 already enabled, 11 enabled; 8000+ errors.
fn answer(protocol: &str, verb: &str, lines: &[(u16, String)]) -> Result<Answer, String> {
    if let Some((code, text)) = lines.iter().find(|(c, _)| *c >= 8000) {
        return Err(if *code == 9001 && text.contains("CF_SYM_UNDEFINED") {
            format!("BIRD has no protocol '{protocol}': define `protocol static {protocol} {{ … }}` in bird.conf")
        } else {
            format!("BIRD refused '{verb} {protocol}': {code} {text}")
        });
    }
    match lines.iter().map(|(c, _)| *c).find(|c| (8..=11).contains(c)) {
        Some(9) | Some(11) => Ok(Answer::Done),
        Some(8) | Some(10) => Ok(Answer::Already),
        _ => Err(format!("BIRD's answer to '{verb} {protocol}' names no protocol state: {lines:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> Result<Vec<(u16, String)>, String> {
        read_reply(&mut text.as_bytes())
    }

    #[test]
    fn replies_as_bird_2_0_12_gives_them() {
        let r = reply("0011-vips: enabled\n0000 \n").unwrap();
        assert_eq!(answer("vips", "enable", &r), Ok(Answer::Done));
        let r = reply("0010-vips: already enabled\n0000 \n").unwrap();
        assert_eq!(answer("vips", "enable", &r), Ok(Answer::Already));
        let r = reply("0009-vips: disabled\n0000 \n").unwrap();
        assert_eq!(answer("vips", "disable", &r), Ok(Answer::Done));
        let r = reply("0008-vips: already disabled\n0000 \n").unwrap();
        assert_eq!(answer("vips", "disable", &r), Ok(Answer::Already));
        let r = reply("2002-Name  Proto\n1002-vips  Static\n more\n0000 \n").unwrap();
        assert_eq!(r[2], (1002, "more".to_string()));
        let r =
            reply("9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or ALL\n").unwrap();
        assert!(answer("nosuch", "disable", &r).unwrap_err().contains("protocol static nosuch"));
        let r = reply("8003 Access denied\n").unwrap();
        assert!(answer("vips", "enable", &r).unwrap_err().contains("8003 Access denied"));
    }

    #[test]
    fn broken_replies_are_errors_not_panics() {
        assert!(reply("").is_err());
        assert!(reply("0011-vips: enabled\n").is_err(), "cut short");
        assert!(reply("hello\n").is_err());
        assert!(reply("00x1 what\n").is_err());
        assert!(answer("vips", "enable", &reply("0000 \n").unwrap()).is_err());
    }
}
