//! The block structure of keepalived.conf: a statement is a keyword and its
//! arguments up to the end of the line, a `{` or a `}`; a `{` (on the same
//! line or the next) opens the block of the statement before it, a `}`
//! closes it. `real_server 10.0.0.2 80 { weight 1 }` is one line, too.

use super::source::{At, Source, Word};

/// One statement, with its block if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kw: Word,
    pub args: Vec<Word>,
    pub kids: Option<Vec<Node>>,
}

impl Node {
    pub fn at(&self) -> At {
        self.kw.at
    }

    pub fn name(&self) -> &str {
        &self.kw.text
    }

    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|w| w.text.as_str())
    }

    pub fn kids(&self) -> &[Node] {
        self.kids.as_deref().unwrap_or_default()
    }
}

/// The deepest nesting accepted (keepalived's grammar needs four).
pub const MAX_NESTING: usize = 16;

/// The statements of `src`; problems (unbalanced braces) go to `problems`.
pub fn build(src: &Source, problems: &mut Vec<(At, String)>) -> Vec<Node> {
    // The open blocks: each a list of statements and the line that opened it.
    let mut stack: Vec<(Vec<Node>, At)> = vec![(Vec::new(), At::default())];
    for line in &src.lines {
        let mut i = 0;
        while i < line.len() {
            let w = &line[i];
            match w.text.as_str() {
                "{" => {
                    let depth = stack.len();
                    let top = &mut stack.last_mut().expect("root stays").0;
                    let opens = top.last().is_some_and(|n| n.kids.is_none());
                    if !opens {
                        problems.push((w.at, "'{' with no keyword before it".into()));
                        // Read the block anyway, under a placeholder.
                        top.push(Node { kw: Word { text: String::new(), at: w.at }, args: Vec::new(), kids: None });
                    } else if depth > MAX_NESTING {
                        problems.push((w.at, format!("blocks nested deeper than {MAX_NESTING}")));
                    }
                    stack.push((Vec::new(), w.at));
                    i += 1;
                }
                "}" => {
                    if stack.len() == 1 {
                        problems.push((w.at, "'}' closes no block".into()));
                    } else {
                        let (kids, _) = stack.pop().expect("more than the root");
                        let parent = stack.last_mut().expect("root stays");
                        if let Some(n) = parent.0.last_mut() {
                            n.kids = Some(kids);
                        }
                    }
                    i += 1;
                }
                _ => {
                    let end =
                        line[i..].iter().position(|w| w.text == "{" || w.text == "}").map_or(line.len(), |p| i + p);
                    let node = Node { kw: w.clone(), args: line[i + 1..end].to_vec(), kids: None };
                    stack.last_mut().expect("root stays").0.push(node);
                    i = end;
                }
            }
        }
    }
    while stack.len() > 1 {
        let (kids, opened) = stack.pop().expect("more than the root");
        problems.push((opened, "block opened here is never closed (missing '}')".into()));
        if let Some(n) = stack.last_mut().expect("root stays").0.last_mut() {
            n.kids = Some(kids);
        }
    }
    stack.pop().map(|(n, _)| n).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> (Vec<Node>, Vec<(At, String)>) {
        let mut src = Source::default();
        for (n, l) in text.lines().enumerate() {
            let words: Vec<Word> = l
                .split_whitespace()
                .map(|t| Word { text: t.to_string(), at: At { file: 0, line: n as u32 + 1 } })
                .collect();
            if !words.is_empty() {
                src.lines.push(words);
            }
        }
        let mut p = Vec::new();
        let t = build(&src, &mut p);
        (t, p)
    }

    #[test]
    fn blocks_on_one_line_and_braces_on_their_own() {
        let (t, p) = tree("virtual_server 10.0.0.1 80\n{\n lb_algo rr\n real_server 10.0.0.2 80 { weight 2 }\n}\nx");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name(), "virtual_server");
        let kids = t[0].kids();
        assert_eq!(kids.len(), 2);
        assert_eq!((kids[1].name(), kids[1].arg(0)), ("real_server", Some("10.0.0.2")));
        assert_eq!(kids[1].kids()[0].arg(0), Some("2"));
        assert_eq!(t[1].name(), "x");
    }

    #[test]
    fn unbalanced_braces_are_named() {
        let (_, p) = tree("a {\n b {\n");
        assert_eq!(p.len(), 2);
        assert!(p[0].1.contains("never closed"));
        let (_, p) = tree("}\n{\n}");
        assert_eq!(p.len(), 2);
    }
}
