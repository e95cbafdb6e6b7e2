//! keepalived's line preprocessing (keepalived.conf(5): "Conditional
//! configuration", "Parameter substitution", "Sequence blocks", "List
//! blocks"), applied to each line before it is split into words:
//!
//! - comments cut (`!`, `#` outside quotes; `\!` and `\#` are the
//!   characters);
//! - `@ID line` / `@^ID line`: the line only on (or off) that config id;
//! - `$NAME=VALUE` defines a parameter (a value ending in `\` continues on
//!   the next lines, up to one that does not or a blank line); `$NAME`
//!   followed by a blank, `,`, `)` or the line's end, and `${NAME}`, are
//!   replaced by its value, again and again while replacements appear; a
//!   multi-line value only at the line's end, its first line there and its
//!   other lines read next. Undefined names stay as written. Predefined:
//!   `${_PWD}` (the file's directory), `${_INSTANCE}` (the config id),
//!   `${_RANDOM [MIN [MAX]]}`, `${_HASH}`, `${_BANG}`;
//! - `~SEQ(VAR, [START,] [STEP,] END) REST`, `~SEQx(…)` (hexadecimal) and
//!   `~LST(VAR, V1, V2 …)` / `~LST({A, B}, {a1, b1}, {a2, b2} …) REST`: REST
//!   read once per value, with the variables set.
//!
//! Bounded, so that no file can make the reader loop or eat the memory:
//! a line's length, the replacements on one line, the nesting of
//! expansions, and the lines produced in all.

use super::source::At;
use std::collections::HashMap;
use std::path::Path;

/// The longest line a replacement may make (bytes).
pub const MAX_LINE: usize = 64 << 10;
/// The most replacements on one line.
const MAX_REPLACEMENTS: usize = 10_000;
/// The deepest nesting of multi-line values, sequences and lists.
const MAX_NESTING: usize = 64;
/// The most lines expansions may produce in all.
pub const MAX_LINES: usize = 1 << 20;

/// A parameter's value.
#[derive(Debug, Clone)]
enum Value {
    Line(String),
    /// A multi-line value: its lines.
    Lines(Vec<String>),
    Pwd,
    Instance,
    Random,
}

/// The parameters defined so far, and a multi-line definition being read.
#[derive(Debug, Default)]
pub struct Expander {
    defs: HashMap<String, Value>,
    /// The parameter whose multi-line value the next lines continue.
    open: Option<String>,
    config_id: String,
    produced: usize,
    pub problems: Vec<(At, String)>,
}

impl Expander {
    pub fn new(config_id: &str) -> Expander {
        let mut defs = HashMap::new();
        defs.insert("_PWD".into(), Value::Pwd);
        defs.insert("_INSTANCE".into(), Value::Instance);
        defs.insert("_RANDOM".into(), Value::Random);
        defs.insert("_HASH".into(), Value::Line("#".into()));
        defs.insert("_BANG".into(), Value::Line("!".into()));
        Expander { defs, config_id: config_id.into(), ..Expander::default() }
    }

    /// One line as read from a file in `dir`, at `at`: the lines it makes,
    /// each pushed to `out`.
    pub fn feed(&mut self, raw: &str, at: At, dir: &Path, out: &mut Vec<(String, At)>) {
        if raw.trim_end_matches(['\r', '\n']).is_empty() {
            self.close();
            return;
        }
        let line = self.decomment(raw, at);
        if line.is_empty() {
            return;
        }
        if let Some(name) = self.open.clone() {
            self.continue_definition(&name, &line);
            return;
        }
        self.process(line, at, dir, 0, out);
    }

    /// Ends a multi-line definition (a blank line, or the file's end).
    pub fn close(&mut self) {
        if let Some(name) = self.open.take() {
            if matches!(self.defs.get(&name), Some(Value::Lines(l)) if l.is_empty()) {
                self.defs.insert(name, Value::Line(String::new()));
            }
        }
    }

    fn continue_definition(&mut self, name: &str, line: &str) {
        let (text, more) = match line.strip_suffix('\\') {
            Some(t) => (t.trim_end(), true),
            None => (line, false),
        };
        if let Some(Value::Lines(l)) = self.defs.get_mut(name) {
            if !text.is_empty() {
                l.push(text.to_string());
            }
        }
        if !more {
            self.close();
        }
    }

    /// Conditions, definitions, sequences and replacements on `buf`, then
    /// the lines it makes to `out`.
    fn process(&mut self, mut buf: String, at: At, dir: &Path, depth: usize, out: &mut Vec<(String, At)>) {
        if depth > MAX_NESTING {
            self.problems.push((at, format!("expansions nested deeper than {MAX_NESTING}")));
            return;
        }
        // Lines of multi-line values, read after this one (innermost first).
        let mut next: Vec<String> = Vec::new();
        let mut keep = true;
        loop {
            if buf.starts_with('@') {
                match self.condition(&buf) {
                    Some(rest) => buf = rest,
                    None => {
                        keep = false;
                        break;
                    }
                }
            }
            if buf.starts_with('$') && self.define(&buf) {
                keep = false;
                break;
            }
            if buf.starts_with("~SEQ") || buf.starts_with("~LST") {
                self.repeat(&buf, at, dir, depth, out);
                keep = false;
                break;
            }
            if buf.starts_with('~') || !buf.contains('$') {
                break;
            }
            match self.replace(&buf, dir) {
                Err(e) => {
                    self.problems.push((at, e));
                    keep = false;
                    break;
                }
                Ok(None) => break,
                Ok(Some((line, tail))) => {
                    buf = self.decomment(&line, at);
                    next.splice(0..0, tail);
                    if !(buf.starts_with('@') || buf.contains('$') || buf.starts_with('~')) {
                        break;
                    }
                }
            }
        }
        if keep && !buf.is_empty() {
            self.emit(buf, at, out);
        }
        for line in next {
            if self.open.is_some() {
                let name = self.open.clone().unwrap_or_default();
                self.continue_definition(&name, &line);
            } else {
                self.process(line, at, dir, depth + 1, out);
            }
        }
    }

    fn emit(&mut self, line: String, at: At, out: &mut Vec<(String, At)>) {
        self.produced += 1;
        if self.produced == MAX_LINES + 1 {
            self.problems.push((at, format!("the configuration expands to more than {MAX_LINES} lines")));
        }
        if self.produced <= MAX_LINES {
            out.push((line, at));
        }
    }

    /// `@ID rest` / `@^ID rest`: `rest` when it applies to this director.
    fn condition(&self, buf: &str) -> Option<String> {
        let (not, word) = match buf[1..].strip_prefix('^') {
            Some(w) => (true, w),
            None => (false, &buf[1..]),
        };
        let (id, rest) = word.split_once([' ', '\t'])?;
        ((id == self.config_id) != not).then(|| rest.trim_start_matches([' ', '\t']).to_string())
    }

    /// `$NAME=VALUE` (blanks allowed before `=`): defines NAME; false for
    /// any other line.
    fn define(&mut self, buf: &str) -> bool {
        let b = buf.as_bytes();
        if !b.get(1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') {
            return false;
        }
        let end = 1 + buf[1..].bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_').count();
        let Some(value) = buf[end..].trim_start_matches([' ', '\t']).strip_prefix('=') else {
            return false;
        };
        let name = buf[1..end].to_string();
        let value = value.trim_start_matches([' ', '\t']);
        match value.strip_suffix('\\') {
            Some(first) => {
                let first = first.trim_end();
                let lines = if first.is_empty() { Vec::new() } else { vec![first.to_string()] };
                self.defs.insert(name.clone(), Value::Lines(lines));
                self.open = Some(name);
            }
            None => {
                self.defs.insert(name, Value::Line(value.to_string()));
            }
        }
        true
    }

    /// `buf` with its parameters replaced: `None` when none is defined;
    /// with a multi-line value, the lines after its first.
    fn replace(&mut self, buf: &str, dir: &Path) -> Result<Option<(String, Vec<String>)>, String> {
        let mut s = buf.to_string();
        let mut tail = Vec::new();
        let mut from = 0;
        let mut count = 0;
        while let Some(off) = s[from..].find('$') {
            let pos = from + off;
            let Some(r) = self.reference(&s[pos..]) else {
                from = pos + 1;
                continue;
            };
            count += 1;
            if count > MAX_REPLACEMENTS {
                return Err(format!("parameter replacement does not end (over {MAX_REPLACEMENTS} on one line)"));
            }
            let text = match &r.value {
                Value::Lines(lines) => {
                    let mut rest = lines.iter().skip(1).cloned().collect::<Vec<_>>();
                    rest.append(&mut tail);
                    tail = rest;
                    lines.first().cloned().unwrap_or_default()
                }
                v => self.text(v, r.params.as_deref(), dir),
            };
            s.replace_range(pos..pos + r.len, &text);
            if s.len() > MAX_LINE {
                return Err(format!("parameter replacement makes a line longer than {} KiB", MAX_LINE >> 10));
            }
            if text.trim_start_matches([' ', '\t']).starts_with('~') {
                break;
            }
            from = pos;
        }
        Ok((count > 0).then_some((s, tail)))
    }

    /// The defined parameter `s` (starting at its `$`) refers to: its value,
    /// the reference's length and `${_RANDOM …}`'s parameters.
    fn reference(&self, s: &str) -> Option<Ref> {
        let braced = s[1..].starts_with('{');
        let name_at = if braced { 2 } else { 1 };
        let b = s.as_bytes();
        if !b.get(name_at).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') {
            return None;
        }
        let name_end = name_at + s[name_at..].bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_').count();
        let name = &s[name_at..name_end];
        let (len, params) = if braced {
            let close = name_end + s[name_end..].find('}')?;
            let params = s[name_end..close].trim_matches(' ');
            if !s[name_end..close].bytes().all(|c| c == b' ' || c.is_ascii_digit())
                || (!params.is_empty() && s[name_end..close].ends_with(' '))
            {
                return None;
            }
            (close + 1, (!params.is_empty()).then(|| params.to_string()))
        } else {
            if !matches!(b.get(name_end), None | Some(b' ' | b'\t' | b',' | b')')) {
                return None;
            }
            (name_end, None)
        };
        let value = self.defs.get(name)?;
        let at_end = len == s.len();
        if matches!(value, Value::Lines(_)) && !at_end {
            return None;
        }
        if params.is_some() && !matches!(value, Value::Random) {
            return None;
        }
        Some(Ref { value: value.clone(), len, params })
    }

    fn text(&self, v: &Value, params: Option<&str>, dir: &Path) -> String {
        match v {
            Value::Line(t) => t.clone(),
            Value::Lines(l) => l.first().cloned().unwrap_or_default(),
            Value::Pwd => dir.display().to_string(),
            Value::Instance => self.config_id.clone(),
            Value::Random => {
                let mut n = params.unwrap_or("").split(' ').filter(|w| !w.is_empty()).map(|w| w.parse::<u64>().ok());
                let min = n.next().flatten().unwrap_or(0);
                let max = n.next().flatten().unwrap_or(32767).max(min);
                (min + random() % (max - min + 1).max(1)).to_string()
            }
        }
    }

    /// `~SEQ…`/`~LST…`: the rest of the line once per value.
    fn repeat(&mut self, buf: &str, at: At, dir: &Path, depth: usize, out: &mut Vec<(String, At)>) {
        let parsed =
            if buf.starts_with("~SEQ") { self.seq(buf, dir) } else { lst(buf).map(|(s, t)| (Sets::List(s), t)) };
        let Some((sets, text)) = parsed else {
            let what = &buf[..4];
            self.problems.push((at, format!("invalid {what} specification '{buf}'")));
            return;
        };
        match sets {
            Sets::List(sets) => {
                for set in sets {
                    for (name, value) in set {
                        self.defs.insert(name, Value::Line(value));
                    }
                    self.again(&text, at, dir, depth, out);
                }
            }
            Sets::Seq { var, start, step, end, hex } => {
                // One value at a time: a sequence of any length costs no memory.
                let mut v = start;
                loop {
                    self.defs.insert(var.clone(), Value::Line(if hex { format!("{v:x}") } else { v.to_string() }));
                    if !self.again(&text, at, dir, depth, out) {
                        return;
                    }
                    match v.checked_add(step) {
                        Some(n) if (step > 0 && n <= end) || (step < 0 && n >= end) => v = n,
                        _ => return,
                    }
                }
            }
        }
    }

    /// One round of a sequence or list: `text` read again; false once the
    /// expansions' bound is passed (the rest would be dropped anyway).
    fn again(&mut self, text: &str, at: At, dir: &Path, depth: usize, out: &mut Vec<(String, At)>) -> bool {
        if self.produced > MAX_LINES {
            return false;
        }
        self.process(text.to_string(), at, dir, depth + 1, out);
        true
    }

    /// `~SEQ[x](VAR, [START,] [STEP,] END) REST` (numbers as C's strtol reads
    /// them, parameters replaced): each value of VAR, and REST.
    fn seq(&mut self, buf: &str, dir: &Path) -> Option<(Sets, String)> {
        let (hex, p) = match buf[4..].strip_prefix('x') {
            Some(p) => (true, p),
            None => (false, &buf[4..]),
        };
        let p = p.trim_start_matches([' ', '\t']).strip_prefix('(')?.trim_start_matches([' ', '\t']);
        let var_len = p.find([' ', '\t', ',', ')']).unwrap_or(p.len());
        let var = &p[..var_len];
        let p = p[var_len..].trim_start_matches([' ', '\t']).strip_prefix(',')?;
        let close = p.find(')')?;
        let args = match self.replace(&p[..close], dir) {
            Ok(Some((a, tail))) if tail.is_empty() => a,
            Ok(None) => p[..close].to_string(),
            _ => return None,
        };
        let nums = args.split(',').map(|a| strtol(a.trim_matches([' ', '\t']))).collect::<Option<Vec<i64>>>()?;
        let (start, step, end) = match nums[..] {
            [end] => ((if end < 0 { -1 } else { 1 }), (if end < 1 { -1 } else { 1 }), end),
            [start, end] => (start, if start <= end { 1 } else { -1 }, end),
            [start, step, end] => {
                if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                    return None;
                }
                (start, step, end)
            }
            _ => return None,
        };
        if var.is_empty() || (hex && (start < 0 || end < 0)) {
            return None;
        }
        let text = p[close + 1..].trim_start_matches([' ', '\t']).to_string();
        Some((Sets::Seq { var: var.to_string(), start, step, end, hex }, text))
    }

    /// Cuts the comment and the leading and trailing blanks (keeping a
    /// final `\`); `\!` and `\#` outside quotes are the characters.
    fn decomment(&mut self, raw: &str, at: At) -> String {
        let raw = raw.trim_end_matches(['\r', '\n']).trim_start_matches([' ', '\t']);
        let mut out = String::with_capacity(raw.len());
        let mut quoted = false;
        let mut chars = raw.chars().peekable();
        let mut cont = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    quoted = !quoted;
                    out.push(c);
                }
                '\\' => match chars.next() {
                    None => {
                        cont = true;
                        break;
                    }
                    Some(n @ ('!' | '#')) if !quoted => out.push(n),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                },
                '!' | '#' if !quoted => break,
                c => out.push(c),
            }
        }
        if quoted {
            self.problems.push((at, "unterminated quote".into()));
        }
        let mut out = out.trim_end_matches([' ', '\t']).to_string();
        if cont {
            out.push('\\');
        }
        out
    }
}

/// What a `~SEQ` or `~LST` sets, round by round.
enum Sets {
    Seq {
        var: String,
        start: i64,
        step: i64,
        end: i64,
        hex: bool,
    },
    /// Each round's (variable, value) pairs.
    List(Vec<Vec<(String, String)>>),
}

struct Ref {
    value: Value,
    len: usize,
    params: Option<String>,
}

/// A number as C's `strtol(s, _, 0)` reads the whole of `s`: decimal,
/// `0x` hexadecimal, `0` octal, with a sign.
fn strtol(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        i64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// `~LST(VAR, V1, V2 …) REST` or `~LST({A, B …}, {a1, b1 …}, V …) REST`:
/// each set of values (missing ones empty), and REST.
#[allow(clippy::type_complexity)]
fn lst(buf: &str) -> Option<(Vec<Vec<(String, String)>>, String)> {
    let blank = [' ', '\t'];
    let p = buf[4..].trim_start_matches(blank).strip_prefix('(')?.trim_start_matches(blank);
    let (vars, mut p): (Vec<&str>, &str) = match p.strip_prefix('{') {
        Some(r) => {
            let close = r.find('}')?;
            (r[..close].split(',').map(|v| v.trim_matches(blank)).collect(), &r[close + 1..])
        }
        None => {
            let n = p.find([',', ')']).unwrap_or(p.len());
            (vec![p[..n].trim_matches(blank)], &p[n..])
        }
    };
    if vars.iter().any(|v| v.is_empty() || v.contains(blank)) {
        return None;
    }
    let mut sets = Vec::new();
    loop {
        p = p.trim_start_matches(blank);
        if let Some(r) = p.strip_prefix(')') {
            p = r;
            break;
        }
        p = p.strip_prefix(',')?.trim_start_matches(blank);
        let values: Vec<&str> = match p.strip_prefix('{') {
            Some(r) => {
                let close = r.find('}')?;
                let v = r[..close].split(',').map(|v| v.trim_matches(blank)).collect();
                p = &r[close + 1..];
                v
            }
            None => {
                let n = p.find([',', ')']).unwrap_or(p.len());
                let v = vec![p[..n].trim_matches(blank)];
                p = &p[n..];
                v
            }
        };
        if values.len() > vars.len() {
            return None;
        }
        let set = vars
            .iter()
            .enumerate()
            .map(|(i, v)| (v.to_string(), values.get(i).map_or(String::new(), |s| s.to_string())))
            .collect();
        sets.push(set);
    }
    if sets.is_empty() {
        return None;
    }
    Some((sets, p.trim_start_matches(blank).to_string()))
}

/// A pseudo-random number for `${_RANDOM}` (std's per-process random keys).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `text` makes as one file in /etc/keepalived, config id "main".
    fn expand(text: &str) -> (Vec<String>, Vec<String>) {
        let mut x = Expander::new("main");
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            x.feed(line, At { file: 0, line: n as u32 + 1 }, Path::new("/etc/keepalived"), &mut out);
        }
        x.close();
        (out.into_iter().map(|l| l.0).collect(), x.problems.into_iter().map(|p| p.1).collect())
    }

    fn lines(text: &str) -> Vec<String> {
        let (l, p) = expand(text);
        assert!(p.is_empty(), "{p:?}");
        l
    }

    #[test]
    fn the_manual_replacement_examples() {
        assert_eq!(
            lines(
                "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n${ADDRESS_BASE}.100/32\n\
                 $ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32\n"
            ),
            ["10.2.0.100/32", "10.2.10.100/32"]
        );
        assert_eq!(
            lines("@main $PRIORITY=240\n@backup $PRIORITY=200\npriority $PRIORITY\n$IF_MAIN=@main\n$IF_MAIN priority 241\n"),
            ["priority 240", "priority 241"]
        );
        assert_eq!(
            lines("script \"/bin/kill $UNDEF ${UNDEF}\"\n$X=1\n$Xy $X, ($X) $X\n"),
            ["script \"/bin/kill $UNDEF ${UNDEF}\"", "$Xy 1, (1) 1"]
        );
    }

    #[test]
    fn multi_line_values_nest_and_take_their_own_definitions() {
        let text = "$RS= \\\n  real_server 192.168.${VS_NUM}.${RS_NUM} 80 { \\\n    weight 1 \\\n\
                    @main  inhibit_on_failure \\\n  }\n\
                    $VS= \\\nvirtual_server 10.0.${VS_NUM}.4 80 { \\\n  $RS_NUM=1 \\\n  $RS \\\n  $RS_NUM=2 \\\n  $RS \\\n}\n\
                    \n$VS_NUM=0\n$VS\n$VS_NUM=1\n$VS\n";
        let want: Vec<String> = (0..2)
            .flat_map(|vs| {
                let mut l = vec![format!("virtual_server 10.0.{vs}.4 80 {{")];
                for rs in 1..=2 {
                    l.extend([
                        format!("real_server 192.168.{vs}.{rs} 80 {{"),
                        "weight 1".into(),
                        "inhibit_on_failure".into(),
                        "}".into(),
                    ]);
                }
                l.push("}".into());
                l
            })
            .collect();
        assert_eq!(lines(text), want);
        assert_eq!(lines("$EMPTY= \\\n\nx $EMPTY\nx ${EMPTY}y\n"), ["x", "x y"], "a value of no lines is empty");
    }

    #[test]
    fn sequences_and_lists_as_the_manual_shows_them() {
        assert_eq!(
            lines("~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1\n"),
            ["ip_address 10.0.0.1", "ip_address 10.0.1.1", "ip_address 10.0.2.1", "ip_address 10.0.3.1"]
        );
        let hex = [
            "ip_address fe80::20:90:1",
            "ip_address fe80::20:a0:1",
            "ip_address fe80::20:b0:1",
            "ip_address fe80::20:c0:1",
        ];
        assert_eq!(lines("~SEQx(SUBNET, 144, 16, 192) ip_address fe80::20:${SUBNET}:1\n"), hex);
        assert_eq!(lines("~SEQx(SUBNET, 0x90, 0x10, 0xc0) ip_address fe80::20:${SUBNET}:1\n"), hex);
        assert_eq!(
            lines("~SEQ(N, 3) a$N\n~SEQ(M, 2, 0) b$M\n~SEQ(K, -2) c$K\n"),
            ["a1", "a2", "a3", "b2", "b1", "b0", "c-1", "c-2"]
        );
        assert_eq!(lines("~SEQ(A, 1, 2) ~SEQ(B, 5, 6) ${A}.${B}\n"), ["1.5", "1.6", "2.5", "2.6"]);
        assert_eq!(lines("~LST({IP, IP1}, {10,1},{20,4}) 192.168.${IP}.${IP1}\n"), ["192.168.10.1", "192.168.20.4"]);
        assert_eq!(lines("~LST(IP, 1, 2) ~LST(IP1, 5,6) ${IP}.${IP1}\n"), ["1.5", "1.6", "2.5", "2.6"]);
        assert_eq!(lines("~LST({A, B}, {x}, {y, z}) [${A}|${B}]\n"), ["[x|]", "[y|z]"], "a missing value is empty");
        assert_eq!(lines("$LO=2\n$HI=4\n~SEQ(I, $LO, $HI) n$I\n"), ["n2", "n3", "n4"], "parameters in the bounds");
        let (_, p) = expand("~SEQ(I, 1, 0, 5) x\n~SEQ(I, 5, 1, 1) x\n~SEQx(I, -1, 3) x\n~SEQ I\n~LST(A) x\n");
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].starts_with("invalid ~SEQ specification '~SEQ(I, 1, 0, 5) x'"), "{p:?}");
    }

    #[test]
    fn predefined_parameters() {
        let l =
            lines("file ${_PWD}/x ${_INSTANCE}\nscript \"echo ${_HASH}${_BANG}\"\nn ${_RANDOM 5 7}\nm ${_RANDOM}\n");
        assert_eq!(l[0], "file /etc/keepalived/x main");
        assert_eq!(l[1], "script \"echo #!\"");
        let n: u64 = l[2][2..].parse().unwrap();
        assert!((5..=7).contains(&n), "{l:?}");
        assert!(l[3][2..].parse::<u64>().unwrap() <= 32767);
        assert_eq!(lines("x ${_HASH} y\n"), ["x"], "outside quotes a replaced # starts a comment, as in keepalived");
    }

    #[test]
    fn comments_escapes_and_conditions() {
        assert_eq!(
            lines("  a b ! c\n# x\nd \"e # f\" # g\nh \\# i\n@main j\n@other k\n@^other l\n@main\n"),
            ["a b", "d \"e # f\"", "h # i", "j", "l"]
        );
    }

    #[test]
    fn nothing_loops_or_grows_without_bound() {
        let (_, p) = expand("$A=$A$A\nx $A\n");
        assert_eq!(p.len(), 1, "{p:?}");
        let (_, p) = expand("$A=x ${A}\nx $A\n");
        assert!(p[0].contains("does not end") || p[0].contains("longer than"), "{p:?}");
        let (_, p) = expand("$L= \\\n$L\n\n$L\n");
        assert!(p.iter().any(|p| p.contains("does not end")), "{p:?}");
        let (l, p) = expand("$L= \\\nx \\\n$L\n\n$L\n");
        assert!(p.iter().any(|p| p.contains("nested deeper")), "{p:?}");
        assert_eq!(l.len(), MAX_NESTING + 1, "one x a level");
        let (l, p) = expand("~SEQ(A, 1, 2000) ~SEQ(B, 1, 2000) x\n");
        assert_eq!(l.len(), MAX_LINES);
        assert!(p.iter().any(|p| p.contains("more than")), "{p:?}");
    }
}
