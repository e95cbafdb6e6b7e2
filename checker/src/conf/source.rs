//! keepalived.conf's text as keepalived reads it: lines, preprocessed as
//! keepalived does (comments, `@ID` conditions, `$NAME` parameters,
//! `~SEQ`/`~LST` blocks: [`super::expand`]), then split into words: `"…"`
//! quoting a word with spaces, `{` and `}` words of their own (also when
//! written against a word); `include GLOB` inlines every file the pattern
//! matches, relative to the including file's directory. Bounded: include
//! depth, total bytes, words per line, and what expansions make.

use super::expand::Expander;
use std::path::{Path, PathBuf};

/// Where a word was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct At {
    /// Index into [`Source::files`].
    pub file: u32,
    pub line: u32,
}

/// One word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub at: At,
}

/// The words of every line, in reading order, includes inlined.
#[derive(Debug, Default)]
pub struct Source {
    pub files: Vec<PathBuf>,
    pub lines: Vec<Vec<Word>>,
    /// Problems found while reading (file:line, message).
    pub problems: Vec<(At, String)>,
    /// keepalived's `-i`/`--config-id`: a line starting `@ID` is read only
    /// on the director of that id, `@^ID` on every other one.
    pub config_id: String,
}

/// The most text read in all (keepalived's own files are kilobytes).
pub const MAX_BYTES: usize = 64 << 20;
/// The deepest include nesting.
pub const MAX_DEPTH: usize = 8;
/// The most words on one line.
pub const MAX_WORDS: usize = 4096;

impl Source {
    /// Reads `path` and what it includes. A file that cannot be read is a
    /// problem at the line that named it (or at line 0 of the top file).
    pub fn read(path: &Path, config_id: &str) -> Source {
        let mut s = Source { config_id: config_id.to_string(), ..Source::default() };
        let mut bytes = 0;
        let mut x = Expander::new(config_id);
        s.file(path, At::default(), &mut Vec::new(), &mut bytes, &mut x);
        x.close();
        s.problems.append(&mut x.problems);
        s.problems.sort_by_key(|p| (p.0.file, p.0.line));
        s
    }

    /// `file:line` of a word, as keepalived's messages name it.
    pub fn place(&self, at: At) -> String {
        let f = self.files.get(at.file as usize).map_or_else(|| "?".into(), |p| p.display().to_string());
        format!("{f}:{}", at.line)
    }

    fn file(&mut self, path: &Path, from: At, stack: &mut Vec<PathBuf>, bytes: &mut usize, x: &mut Expander) {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if stack.contains(&canon) {
            self.problems.push((from, format!("include loop: {} includes itself", path.display())));
            return;
        }
        if stack.len() >= MAX_DEPTH {
            self.problems.push((from, format!("includes nested deeper than {MAX_DEPTH} at {}", path.display())));
            return;
        }
        let text = match read_bounded(path, MAX_BYTES.saturating_sub(*bytes)) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push((from, format!("cannot read {}: {e}", path.display())));
                return;
            }
        };
        *bytes += text.len();
        let file = self.files.len() as u32;
        self.files.push(path.to_path_buf());
        let dir = canon.parent().map(Path::to_path_buf).unwrap_or_default();
        stack.push(canon);
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            lines.clear();
            x.feed(line, At { file, line: n as u32 + 1 }, &dir, &mut lines);
            for (line, at) in lines.drain(..) {
                let words = self.words(&line, at);
                match words.first().map(|w| w.text.as_str()) {
                    Some("include") => {
                        for w in &words[1..] {
                            self.include(path, w, stack, bytes, x);
                        }
                    }
                    Some(_) => self.lines.push(words),
                    None => {}
                }
            }
        }
        stack.pop();
    }

    fn include(&mut self, from: &Path, pattern: &Word, stack: &mut Vec<PathBuf>, bytes: &mut usize, x: &mut Expander) {
        let dir = from.parent().unwrap_or(Path::new("."));
        let full =
            if Path::new(&pattern.text).is_absolute() { PathBuf::from(&pattern.text) } else { dir.join(&pattern.text) };
        let matches: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => {
                self.problems.push((pattern.at, format!("bad include pattern '{}': {e}", pattern.text)));
                return;
            }
        };
        if matches.is_empty() {
            // keepalived: a pattern that matches nothing is reported and skipped.
            self.problems.push((pattern.at, format!("include '{}' matches no file", pattern.text)));
        }
        for m in matches {
            self.file(&m, pattern.at, stack, bytes, x);
        }
    }

    /// The words of one (preprocessed) line: quotes joined, braces apart.
    fn words(&mut self, line: &str, at: At) -> Vec<Word> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let flush = |cur: &mut String, quoted: &mut bool, out: &mut Vec<Word>| {
            if !cur.is_empty() || *quoted {
                out.push(Word { text: std::mem::take(cur), at });
            }
            *quoted = false;
        };
        for c in line.chars() {
            if in_quotes {
                if c == '"' {
                    in_quotes = false;
                } else {
                    cur.push(c);
                }
                continue;
            }
            match c {
                '"' => {
                    in_quotes = true;
                    quoted = true;
                }
                '{' | '}' => {
                    flush(&mut cur, &mut quoted, &mut out);
                    out.push(Word { text: c.to_string(), at });
                }
                c if c.is_whitespace() => flush(&mut cur, &mut quoted, &mut out),
                c => cur.push(c),
            }
            if out.len() > MAX_WORDS {
                self.problems.push((at, format!("more than {MAX_WORDS} words on one line")));
                out.truncate(MAX_WORDS);
                return out;
            }
        }
        flush(&mut cur, &mut quoted, &mut out);
        out
    }
}

/// The file's text, refusing more than `limit` bytes and replacing bytes
/// that are not UTF-8.
fn read_bounded(path: &Path, limit: usize) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err("is a directory".into());
    }
    let mut buf = Vec::new();
    f.take(limit as u64 + 1).read_to_end(&mut buf).map_err(|e| e.to_string())?;
    if buf.len() > limit {
        return Err(format!("the configuration passes {} MiB in all", MAX_BYTES >> 20));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &Source) -> Vec<Vec<&str>> {
        s.lines.iter().map(|l| l.iter().map(|w| w.text.as_str()).collect()).collect()
    }

    fn dir() -> tempdir::Dir {
        tempdir::Dir::new()
    }

    /// A scratch directory removed on drop (no crate needed for this).
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = std::env::temp_dir().join(format!("xdpvs-checker-test-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
                let p = self.0.join(name);
                std::fs::write(&p, text).unwrap();
                p
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn words_comments_quotes_and_braces() {
        let d = dir();
        let p = d.file(
            "k.conf",
            "! comment\nvirtual_server 10.0.0.1 80{ # trailing\n  notify_up \"/bin/echo up now\" x\n}\n\n\"\"\n",
        );
        let s = Source::read(&p, "a");
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(
            texts(&s),
            vec![
                vec!["virtual_server", "10.0.0.1", "80", "{"],
                vec!["notify_up", "/bin/echo up now", "x"],
                vec!["}"],
                vec![""]
            ]
        );
        assert_eq!(s.place(s.lines[1][0].at), format!("{}:3", p.display()));
    }

    #[test]
    fn includes_globs_loops_and_missing_files() {
        let d = dir();
        d.file("a.conf", "include conf.d/*.conf\ninclude missing.conf\ninclude a.conf\nlast\n");
        std::fs::create_dir_all(d.0.join("conf.d")).unwrap();
        d.file("conf.d/1.conf", "one\n");
        d.file("conf.d/2.conf", "two\n");
        let s = Source::read(&d.0.join("a.conf"), "a");
        assert_eq!(texts(&s), vec![vec!["one"], vec!["two"], vec!["last"]]);
        let msgs: Vec<&str> = s.problems.iter().map(|p| p.1.as_str()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("matches no file"));
        assert!(msgs[1].contains("include loop"));
        assert_eq!(s.problems[1].0.line, 3);
    }

    #[test]
    fn conditional_lines_follow_the_config_id() {
        let d = dir();
        let p = d.file("c.conf", "@a one\n@b two\n@^a three\n@^b four\nfive\n");
        let s = Source::read(&p, "a");
        assert_eq!(texts(&s), vec![vec!["one"], vec!["four"], vec!["five"]]);
    }

    #[test]
    fn a_huge_file_is_refused_not_read() {
        let d = dir();
        let p = d.0.join("huge.conf");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_BYTES as u64 + 1).unwrap();
        let s = Source::read(&p, "a");
        assert!(s.lines.is_empty());
        assert!(s.problems[0].1.contains("passes 64 MiB"), "{:?}", s.problems);
    }

    #[test]
    fn garbage_is_read_without_panic() {
        let d = dir();
        let mut junk: Vec<u8> = (0..20000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        junk.extend(b"\"unterminated");
        let p = d.0.join("g.conf");
        std::fs::write(&p, &junk).unwrap();
        let s = Source::read(&p, "a");
        assert!(s.problems.iter().any(|p| p.1 == "unterminated quote"));
    }
}
