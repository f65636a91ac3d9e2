//! Shell words → argument strings, without running anything.
//!
//! Quoting, escapes, ANSI-C strings, `$HOME`/`~`, `$IFS` and variables assigned
//! literally earlier in the same script are resolved; anything that only exists at
//! run time (command substitution, unknown variables, arithmetic) becomes the
//! placeholder [`DYN`] and marks the argument dynamic.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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
    let mut text = String::with_capacity(args.iter().map(|a| a.text.len() + 1).sum());
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(&a.text);
    }
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
///
/// Each script (one syntax tree) has its own `Vars`, which also remembers
/// the outputs of the tree's `$(echo …)` substitutions (see [`echoed`]).
#[derive(Debug, Default)]
pub(super) struct Vars {
    /// Tables of the enclosing scripts, outermost first (at most the nesting depth).
    outer: Vec<Rc<HashMap<String, Option<String>>>>,
    /// This script's own assignments.
    map: Rc<HashMap<String, Option<String>>>,
    /// Outputs of substitutions already evaluated with these variables, by
    /// the substitution's node in the script's tree (which outlives this
    /// `Vars`), with the word depth they were evaluated at. Cleared whenever
    /// a variable changes, and after each top-level command (see
    /// [`Vars::forget_echoes`]). Nested `$(echo $(echo …))` words are walked
    /// once per enclosing level; this makes each substitution evaluated once.
    echoes: RefCell<Echoes>,
}

/// Remembered substitution outputs: (word depth, output) by syntax node.
type Echoes = HashMap<*const List, (usize, String), BuildHasherDefault<AddrHasher>>;

/// Hashes the memo's keys, node addresses: they are not chosen by the
/// script, so SipHash's defence against chosen keys is not needed.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        // The table picks buckets by the low bits; addresses are aligned.
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u8(b);
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.write_u64(u64::from(b));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
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
            echoes: RefCell::default(),
        }
    }
    pub(super) fn assign(&mut self, name: &str, value: Option<String>) {
        self.echoes.get_mut().clear();
        let next = match (self.get(name), value) {
            (None, v) => v,
            (Some(Some(old)), Some(new)) if *old == new => Some(new),
            _ => None,
        };
        Rc::make_mut(&mut self.map).insert(name.to_string(), next);
    }
    /// Drops the remembered substitution outputs (a cache: only what is
    /// evaluated again changes, never a result).
    pub(super) fn forget_echoes(&mut self) {
        self.echoes.get_mut().clear();
    }
    pub(super) fn forget(&mut self, name: &str) {
        self.echoes.get_mut().clear();
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
        // Most values have no separator in them: appended whole.
        if !v.chars().any(|ch| self.ifs.contains(ch)) {
            if !v.is_empty() {
                self.text(v);
            }
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

/// What words are evaluated against: the script's text and variables, and
/// whether the nodes are the script's own tree (whose substitution outputs
/// `vars` may remember) or a backquoted script parsed on the way.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    src: &'a str,
    vars: &'a Vars,
    own: bool,
}

/// Evaluates the words of a command into fields.
pub(super) fn eval_words(src: &str, vars: &Vars, words: &[Word]) -> Vec<Arg> {
    let cx = Ctx {
        src,
        vars,
        own: true,
    };
    let mut f = fields_for(vars);
    for w in words {
        word_into(cx, w, &mut f, 0);
    }
    f.out
}

/// Fields split on the script's `$IFS`.
fn fields_for(vars: &Vars) -> Fields<'_> {
    let ifs = match vars.get("IFS") {
        Some(Some(v)) => v,
        _ => " \t\n",
    };
    Fields::new(ifs)
}

/// Evaluates one word of a command into `f`.
fn word_into(cx: Ctx, w: &Word, f: &mut Fields, depth: usize) {
    for p in &w.parts {
        part(cx, p, UNQUOTED, f, depth);
    }
    f.split();
}

/// Evaluates one word into zero or more fields.
pub(super) fn eval_word(src: &str, vars: &Vars, w: &Word) -> Vec<Arg> {
    eval_words(src, vars, std::slice::from_ref(w))
}

/// Evaluates an assignment value (no field splitting): `None` if not literal.
pub(super) fn eval_value(src: &str, vars: &Vars, w: &Word) -> Option<String> {
    let cx = Ctx {
        src,
        vars,
        own: true,
    };
    let mut f = Fields::new("");
    for p in &w.parts {
        part(cx, p, ASSIGN, &mut f, 0);
    }
    (!f.dynamic).then_some(f.cur)
}

/// Evaluates a word that must stay one string (here-strings, redirection targets).
pub(super) fn eval_joined(src: &str, vars: &Vars, w: &Word) -> Arg {
    join(&eval_word(src, vars, w))
}

fn part(cx: Ctx, p: &Part, mode: Mode, f: &mut Fields, depth: usize) {
    let Ctx { src, vars, .. } = cx;
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
                part(cx, q, QUOTED, f, depth + 1);
            }
        }
        Part::Param {
            name, plain: true, ..
        } => expand_name(vars, name.of(src), mode, f),
        Part::Command(list) => substituted(f, echoed(cx, list, depth), mode),
        Part::Backquote(script) => {
            let tree = syntax::parse(script);
            let inner = Ctx {
                src: script,
                vars,
                own: false,
            };
            let out = match tree.error {
                None => echoed(inner, &tree.list, depth),
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
///
/// Remembered per node in the script's own tree: an output found at word
/// depth `d` holds no run-time part, so it is the same at any depth up to `d`
/// (deeper, the depth limit might cut it), as long as no variable changed.
fn echoed(cx: Ctx, list: &List, depth: usize) -> Option<String> {
    let key: *const List = list;
    if cx.own {
        if let Some((at, out)) = cx.vars.echoes.borrow().get(&key) {
            if depth <= *at {
                return Some(out.clone());
            }
        }
    }
    let out = echo_output(cx, list, depth)?;
    if cx.own {
        cx.vars
            .echoes
            .borrow_mut()
            .insert(key, (depth, out.clone()));
    }
    Some(out)
}

fn echo_output(cx: Ctx, list: &List, depth: usize) -> Option<String> {
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
    let mut f = fields_for(cx.vars);
    let mut rest = words.iter();
    // The command name first: when it is not a literal `echo`/`printf`, the
    // output is unknown whatever the other words are.
    while f.out.is_empty() {
        let Some(w) = rest.next() else {
            break;
        };
        word_into(cx, w, &mut f, depth + 1);
    }
    if f.out
        .first()
        .is_some_and(|a| a.dynamic || !matches!(a.text.as_str(), "echo" | "printf"))
    {
        return None;
    }
    for w in rest {
        word_into(cx, w, &mut f, depth + 1);
    }
    let argv = f.out;
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

#[cfg(test)]
mod tests {
    use super::super::syntax::{self, Cmd, Part, Word};
    use super::*;

    /// The words of the first simple command of a list.
    fn first_words(list: &List) -> &[Word] {
        match list
            .items
            .first()
            .and_then(|i| i.pipelines.first())
            .and_then(|p| p.stages.first())
            .map(|s| &s.cmd)
        {
            Some(Cmd::Simple { words, .. }) => words,
            _ => &[],
        }
    }

    /// The list of the first `$( )` in a command's words.
    fn inner_list(words: &[Word]) -> Option<&List> {
        words
            .iter()
            .flat_map(|w| w.parts.iter())
            .find_map(|p| match p {
                Part::Command(l) => Some(&**l),
                _ => None,
            })
    }

    /// Each level of a deep `$(echo $(echo …))` evaluates the same whether
    /// the outer levels were evaluated first (outputs remembered) or not,
    /// on both sides of the word depth limit.
    #[test]
    fn remembered_substitutions_evaluate_as_fresh_ones() {
        for levels in [1, 3, 20, 23, 24, 25, 26, 30] {
            let mut src = String::from("echo x");
            for _ in 0..levels {
                src = format!("echo $({src})");
            }
            let tree = syntax::parse(&src);
            assert!(tree.error.is_none(), "{levels}: {:?}", tree.error);
            let mut each = vec![first_words(&tree.list)];
            while let Some(inner) = each.last().and_then(|w| inner_list(w)) {
                each.push(first_words(inner));
            }
            assert_eq!(each.len(), levels + 1);
            let fresh: Vec<Vec<Arg>> = each
                .iter()
                .map(|w| eval_words(&src, &Vars::default(), w))
                .collect();
            // Outermost first (as the classifier walks), then innermost first
            // (inner outputs found at a shallow depth, asked for deeper).
            for order in [false, true] {
                let warm = Vars::default();
                for i in 0..each.len() {
                    let level = if order { each.len() - 1 - i } else { i };
                    let remembered = each.get(level).map(|w| eval_words(&src, &warm, w));
                    assert_eq!(
                        remembered.as_ref(),
                        fresh.get(level),
                        "{levels} levels, level {level}, innermost first: {order}"
                    );
                }
            }
            // Past the depth limit the outermost word is not known.
            let outer = fresh.first().is_some_and(|a| a.iter().any(|a| a.dynamic));
            assert_eq!(outer, levels > MAX_WORD_DEPTH, "{levels}");
        }
    }

    /// A variable that changes after a substitution was evaluated changes
    /// what the substitution gives.
    #[test]
    fn a_changed_variable_forgets_remembered_substitutions() {
        let src = "cmd $(echo $x)";
        let tree = syntax::parse(src);
        let words = first_words(&tree.list);
        let mut vars = Vars::default();
        vars.assign("x", Some("a".into()));
        let before = eval_words(src, &vars, words);
        assert_eq!(before.get(1), Some(&Arg::lit("a")));
        // Assigned a different literal: no longer known.
        vars.assign("x", Some("b".into()));
        let after = eval_words(src, &vars, words);
        assert!(after.get(1).is_some_and(|a| a.dynamic), "{after:?}");
        vars.forget("x");
        assert!(eval_words(src, &vars, words)
            .get(1)
            .is_some_and(|a| a.dynamic));
    }
}
