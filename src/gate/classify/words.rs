//! Shell words → argument strings, without running anything.
//!
//! Quoting, escapes, ANSI-C strings, `$HOME`/`~`, `$IFS` and variables assigned
//! literally earlier in the same script are resolved; anything that only exists at
//! run time (command substitution, unknown variables, arithmetic) becomes the
//! placeholder [`DYN`] and marks the argument dynamic.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use super::syntax::{self, Cmd, List, Part, Word};

/// Stands for a part of a word whose value is only known at run time.
pub(super) const DYN: char = '\u{1}';
/// How deep word evaluation descends into nested nodes before giving up.
const MAX_WORD_DEPTH: usize = 24;
/// Upper bound on the fields one brace expansion may produce.
const MAX_BRACE_FIELDS: usize = 64;

/// One argument after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Arg {
    /// Best-effort value; run-time parts are [`DYN`].
    pub text: String,
    /// True when any part is only known at run time.
    pub dynamic: bool,
}

impl Arg {
    pub(super) fn lit(s: &str) -> Arg {
        Arg {
            text: s.to_string(),
            dynamic: false,
        }
    }
    pub(super) fn unknown() -> Arg {
        Arg {
            text: DYN.to_string(),
            dynamic: true,
        }
    }
    pub(super) fn is(&self, s: &str) -> bool {
        !self.dynamic && self.text == s
    }
}

/// Joins arguments with spaces (for `watch`, `ssh`, `eval`...).
pub(super) fn join(args: &[Arg]) -> Arg {
    let text = args
        .iter()
        .map(|a| a.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Arg {
        text,
        dynamic: args.iter().any(|a| a.dynamic),
    }
}

/// Variables assigned in the script being analysed: `Some(value)` when every
/// assignment seen so far gave the same literal, `None` when it is unknowable.
///
/// A nested script (`bash -c`, `eval`, a heredoc fed to a shell...) sees its
/// parent's variables through [`Vars::child`], which shares the parent's tables
/// (reference-counted, frozen while the child lives) instead of copying them, so
/// nesting costs the same however many variables the script has.
#[derive(Debug, Clone, Default)]
pub(super) struct Vars {
    /// Tables of the enclosing scripts, outermost first (at most the nesting depth).
    outer: Vec<Rc<HashMap<String, Option<String>>>>,
    /// This script's own assignments.
    map: Rc<HashMap<String, Option<String>>>,
}

impl Vars {
    /// The variables a nested script starts with: its parent's, shared.
    pub(super) fn child(&self) -> Vars {
        let mut outer = self.outer.clone();
        if !self.map.is_empty() {
            outer.push(Rc::clone(&self.map));
        }
        Vars {
            outer,
            map: Rc::default(),
        }
    }
    pub(super) fn assign(&mut self, name: &str, value: Option<String>) {
        let next = match (self.get(name), value) {
            (None, v) => v,
            (Some(Some(old)), Some(new)) if *old == new => Some(new),
            _ => None,
        };
        Rc::make_mut(&mut self.map).insert(name.to_string(), next);
    }
    pub(super) fn forget(&mut self, name: &str) {
        Rc::make_mut(&mut self.map).insert(name.to_string(), None);
    }
    fn get(&self, name: &str) -> Option<Option<&str>> {
        std::iter::once(&self.map)
            .chain(self.outer.iter().rev())
            .find_map(|m| m.get(name))
            .map(|v| v.as_deref())
    }
}

/// Evaluation context of a word part.
#[derive(Clone, Copy)]
struct Mode {
    /// Inside double quotes: escapes follow double-quote rules.
    dq: bool,
    /// Unquoted expansions undergo field splitting.
    split: bool,
}

const UNQUOTED: Mode = Mode {
    dq: false,
    split: true,
};
const ASSIGN: Mode = Mode {
    dq: false,
    split: false,
};
const QUOTED: Mode = Mode {
    dq: true,
    split: false,
};

/// Fields being built from one word.
struct Fields<'v> {
    out: Vec<Arg>,
    cur: String,
    dynamic: bool,
    quoted: bool,
    started: bool,
    ifs: &'v str,
}

impl<'v> Fields<'v> {
    fn new(ifs: &'v str) -> Self {
        Fields {
            out: Vec::new(),
            cur: String::new(),
            dynamic: false,
            quoted: false,
            started: false,
            ifs,
        }
    }
    fn text(&mut self, s: &str) {
        self.cur.push_str(s);
        self.started = true;
    }
    fn dynamic(&mut self) {
        self.cur.push(DYN);
        self.dynamic = true;
        self.started = true;
    }
    fn quoted(&mut self) {
        self.quoted = true;
        self.started = true;
    }
    fn split(&mut self) {
        if self.started && (!self.cur.is_empty() || self.quoted) {
            let text = std::mem::take(&mut self.cur);
            if !self.quoted && self.out.len() < MAX_BRACE_FIELDS && text.contains('{') {
                for t in brace_expand(&text) {
                    self.out.push(Arg {
                        text: t,
                        dynamic: self.dynamic,
                    });
                }
            } else {
                self.out.push(Arg {
                    text,
                    dynamic: self.dynamic,
                });
            }
        }
        self.cur.clear();
        self.dynamic = false;
        self.quoted = false;
        self.started = false;
    }
    /// Appends a variable's value, splitting on IFS when unquoted.
    fn value(&mut self, v: &str, split: bool) {
        if !split {
            self.text(v);
            return;
        }
        for ch in v.chars() {
            if self.ifs.contains(ch) {
                self.split();
            } else {
                self.cur.push(ch);
                self.started = true;
            }
        }
    }
}

/// Expands the first `{a,b,...}` group of an unquoted word (repeatedly, bounded).
fn brace_expand(word: &str) -> Vec<String> {
    let mut done = Vec::new();
    let mut todo = vec![word.to_string()];
    while let Some(w) = todo.pop() {
        match brace_group(&w) {
            Some((pre, alts, post)) if done.len() + todo.len() + alts.len() <= MAX_BRACE_FIELDS => {
                for alt in alts.iter().rev() {
                    todo.push(format!("{pre}{alt}{post}"));
                }
            }
            _ => done.push(w),
        }
    }
    done
}

/// Finds an innermost `{x,y}` group: (prefix, alternatives, suffix).
fn brace_group(w: &str) -> Option<(&str, Vec<&str>, &str)> {
    let close = w.find('}')?;
    let open = w.get(..close)?.rfind('{')?;
    let inner = w.get(open + 1..close)?;
    if !inner.contains(',') || inner.contains(DYN) {
        return None;
    }
    Some((
        w.get(..open)?,
        inner.split(',').collect(),
        w.get(close + 1..)?,
    ))
}

/// Evaluates the words of a command into fields.
pub(super) fn eval_words(src: &str, vars: &Vars, words: &[Word]) -> Vec<Arg> {
    eval_words_at(src, vars, words, 0)
}

fn eval_words_at(src: &str, vars: &Vars, words: &[Word], depth: usize) -> Vec<Arg> {
    let ifs = match vars.get("IFS") {
        Some(Some(v)) => v,
        _ => " \t\n",
    };
    let mut f = Fields::new(ifs);
    for w in words {
        for p in &w.parts {
            part(src, vars, p, UNQUOTED, &mut f, depth);
        }
        f.split();
    }
    f.out
}

/// Evaluates one word into zero or more fields.
pub(super) fn eval_word(src: &str, vars: &Vars, w: &Word) -> Vec<Arg> {
    eval_words(src, vars, std::slice::from_ref(w))
}

/// Evaluates an assignment value (no field splitting): `None` if not literal.
pub(super) fn eval_value(src: &str, vars: &Vars, w: &Word) -> Option<String> {
    let mut f = Fields::new("");
    for p in &w.parts {
        part(src, vars, p, ASSIGN, &mut f, 0);
    }
    (!f.dynamic).then_some(f.cur)
}

/// Evaluates a word that must stay one string (here-strings, redirection targets).
pub(super) fn eval_joined(src: &str, vars: &Vars, w: &Word) -> Arg {
    join(&eval_word(src, vars, w))
}

fn part(src: &str, vars: &Vars, p: &Part, mode: Mode, f: &mut Fields, depth: usize) {
    if depth > MAX_WORD_DEPTH {
        f.dynamic();
        return;
    }
    match p {
        Part::Lit(s) => f.text(&unescape(s.of(src), mode.dq)),
        Part::Single(s) => {
            f.quoted();
            f.text(s.of(src));
        }
        Part::AnsiC(s) => {
            f.quoted();
            f.text(&decode_c_escapes(s.of(src)));
        }
        Part::Double(inner) => {
            f.quoted();
            for q in inner {
                part(src, vars, q, QUOTED, f, depth + 1);
            }
        }
        Part::Param {
            name, plain: true, ..
        } => expand_name(vars, name.of(src), mode, f),
        Part::Command(list) => substituted(f, echoed(src, vars, list, depth), mode),
        Part::Backquote(script) => {
            let tree = syntax::parse(script);
            let out = match tree.error {
                None => echoed(script, vars, &tree.list, depth),
                Some(_) => None,
            };
            substituted(f, out, mode);
        }
        Part::Param { .. } | Part::Arith(_) | Part::Process(_) => f.dynamic(),
    }
}

/// A command substitution's output when it is known, else a run-time part.
fn substituted(f: &mut Fields, out: Option<String>, mode: Mode) {
    match out {
        Some(out) => f.value(out.trim_end_matches('\n'), mode.split),
        None => f.dynamic(),
    }
}

/// Output of `$(echo WORDS)` / `$(printf TEXT)` when fully literal.
fn echoed(src: &str, vars: &Vars, list: &List, depth: usize) -> Option<String> {
    let [item] = list.items.as_slice() else {
        return None;
    };
    let ([pipeline], false) = (item.pipelines.as_slice(), item.background) else {
        return None;
    };
    let [stmt] = pipeline.stages.as_slice() else {
        return None;
    };
    let Cmd::Simple { assigns, words } = &stmt.cmd else {
        return None;
    };
    if !assigns.is_empty() || !stmt.redirects.is_empty() {
        return None;
    }
    let argv = eval_words_at(src, vars, words, depth + 1);
    if argv.iter().any(|a| a.dynamic) {
        return None;
    }
    let (name, args) = argv.split_first()?;
    match name.text.as_str() {
        "echo" if args.first().is_none_or(|a| !a.text.starts_with('-')) => Some(join(args).text),
        "printf" if args.len() == 1 => args
            .first()
            .filter(|a| !a.text.contains(['%', '\\']))
            .map(|a| a.text.clone()),
        _ => None,
    }
}

fn expand_name(vars: &Vars, name: &str, mode: Mode, f: &mut Fields) {
    match vars.get(name) {
        Some(Some(v)) => f.value(v, mode.split),
        Some(None) => f.dynamic(),
        None => match name {
            "HOME" => f.text("~"),
            "IFS" if mode.split => f.split(),
            "IFS" => f.text(" "),
            _ => f.dynamic(),
        },
    }
}

/// Removes shell backslash escapes (unquoted rules, or double-quote rules).
fn unescape(s: &str, dq: bool) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.peek().copied() {
            Some('\n') => {
                it.next();
            }
            Some(n) if !dq || matches!(n, '$' | '`' | '"' | '\\') => {
                out.push(n);
                it.next();
            }
            _ => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Decodes `$'...'` / `echo -e` / `printf` escapes.
pub(super) fn decode_c_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            out.push('\\');
            break;
        };
        i += 1;
        let simple = match e {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'e' | 'E' => Some('\u{1b}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' | '\'' | '"' | '?' => Some(e),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            continue;
        }
        let (radix, max) = match e {
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            '0'..='7' => {
                i -= 1;
                (8, 3)
            }
            'c' => {
                if let Some(&k) = chars.get(i) {
                    i += 1;
                    out.push(char::from_u32(u32::from(k) & 0x1f).unwrap_or(k));
                }
                continue;
            }
            _ => {
                out.push('\\');
                out.push(e);
                continue;
            }
        };
        let mut value: u32 = 0;
        let mut used = 0;
        while used < max {
            match chars.get(i).and_then(|d| d.to_digit(radix)) {
                Some(d) => {
                    value = value.saturating_mul(radix).saturating_add(d);
                    i += 1;
                    used += 1;
                }
                None => break,
            }
        }
        if used == 0 {
            out.push('\\');
            out.push(e);
        } else if let Some(ch) = char::from_u32(value) {
            out.push(ch);
        }
    }
    out
}
