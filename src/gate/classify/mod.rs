//! The command and edit classifier of the approval gate (docs/DESIGN.md §6).
//!
//! **Owns** one decision: how strict the gate must be about a shell command line
//! ([`classify_command`]) or a file edit made by a tool ([`classify_edit`]). The
//! answer is a [`Verdict`]: `Forbidden` never runs whatever the policy, `Ask` needs a
//! person (or the policy), `Safe` runs.
//!
//! **Must never**: do I/O (no filesystem, environment, clock or process access —
//! paths are normalised lexically and `$HOME`/`~` stay symbolic), keep global or
//! thread-local state, or panic/unwrap on any input. Pure function of its
//! arguments.
//!
//! How a command is judged: the script is parsed by `syntax` (a bash parser
//! written for this and checked against `bash -n`), and every simple command
//! anywhere in it is looked at — in pipelines, lists, subshells,
//! functions, loops, command and process substitutions, heredocs fed to a shell,
//! `bash -c`/`sh -c`/`eval`/`su -c`/`watch`/`ssh` strings (parsed again, up to
//! six levels), and behind wrappers (`sudo`, `env`, `nice`, `timeout`,
//! `xargs`, `find -exec`, `nohup`, `time`, `command`, `exec`, `builtin`, `doas`,
//! `stdbuf`, `ionice`, `chroot`, `flock`, `uv run`...). Words are evaluated the way
//! the shell would (quotes, escapes, `$'..'`, `$IFS`, brace lists, `$HOME`, variables
//! assigned a literal earlier in the same script); what is only known at run time
//! is treated as unknown, and an unknown command name is `Ask`. Redirection targets
//! and `tee`/`cp`/`mv`/`dd of=` destinations are checked as writes. The verdict is
//! the strictest over everything found; its reason names the offending command. A
//! script that does not parse cleanly is at least `Ask`.
//!
//! Decisions worth knowing:
//! - Plain `rm file` of relative paths is `Safe`; `-r`/`-f`, absolute or `..`
//!   paths, and run-time file names ask. Deleting `/`, a system directory or a home
//!   directory (also via `cd / && rm -rf *`, `find / -delete`, `mv /`) is forbidden
//!   with any flags.
//! - `pip install` / `uv pip install` into the active environment is `Safe` (the
//!   project's venv; system Pythons refuse it under PEP 668); `--user`,
//!   `--break-system-packages`, `--system`, `--prefix`/`--root`/`--target` ask, as do
//!   `npm -g`, `cargo install`, `gem install`, `go install pkg@version`, `pipx
//!   install` and every system package manager change.
//! - Writing `.env`/`.env.*`, keys, credential files, shell rc files, `.git/` or
//!   system paths asks, even with plain `>`/`cp` (so `cp .env.example .env` asks).
//! - Anything fed to a shell on stdin that is not a literal `echo`/`printf`/heredoc
//!   asks; a literal one is parsed as a script, as is a file the same script wrote
//!   with `echo ... > f` and then runs. Remote or decoded content reaching any shell
//!   or interpreter asks, and so does running a file the script downloaded.
//! - Interpreter code (`python -c`, `perl -e`, `node -e`, `ruby -e`, `php -r`,
//!   awk programs, heredocs fed to an interpreter) is judged by the APIs it
//!   uses (`code`): starting processes, deleting files, decoding data, the
//!   network, forking or killing ask; a quoted shell command is judged only
//!   when the code also starts processes, so `os.system("rm -rf /")` is
//!   forbidden and `print("rm -rf /")` is not.
//! - A program not known to the classifier asks when it is given a command to
//!   run (`-c STRING`, `--run STRING`, `-- CMD`); programs with a table entry
//!   (`table`) say what they run and which verbs destroy.
//! - Commands run remotely by `ssh host 'cmd'` are judged like local ones.
//! - A script bash would reject is `Ask`, and its pieces between separators are
//!   judged on their own as well, so a syntax error hides no forbidden command.
//!   Nesting deeper than the parser reads is `Ask`; NUL bytes ask.
//!
//! Layout: `syntax` parses, this file walks the syntax tree, `words` evaluates
//! words, `wrappers` peels `sudo`/`env`/`xargs`..., `rules` judges core
//! commands, `table` holds one entry per other program (what it runs, which
//! verbs destroy), `programs` covers git, shells, interpreters, SQL clients and
//! package managers, `code` reads interpreter code and sed scripts, `flow`
//! follows secrets, environment injection and persistent writes, `paths` holds
//! the lexical path rules and [`classify_edit`], `args` reads options.
//!
//! Every analysis spends from a work budget ([`WORK_BUDGET`]); past it the
//! answer is `Ask`.

mod args;
mod code;
mod flow;
mod paths;
mod programs;
mod rules;
mod syntax;
mod table;
mod words;
mod wrappers;

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use syntax::{
    AndOr, Assign, AssignValue, Cmd, Heredoc, List, Part, Pipeline, RedirOp, Redirect, Stmt, Word,
};
use words::{Arg, Vars, DYN};

/// How strict the gate must be, ordered from least to most strict.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Safe,
    Ask,
    Forbidden,
}

/// A classification with a human-readable reason naming the offending command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub class: Class,
    pub reason: String,
}

/// Reason given for a command with nothing to ask about.
const SAFE_REASON: &str = "read-only or ordinary build command";
/// How many nested shell strings (`bash -c`, `eval`, heredocs...) are parsed.
const MAX_DEPTH: usize = 6;
/// Longer scripts are not analysed (they ask).
const MAX_SCRIPT_BYTES: usize = 256 * 1024;
/// Work units one classification may spend; past it the walk stops and the
/// answer is `Ask`. Each charge below is set so that a unit costs about the
/// same time whatever the script is made of (`examples/classify_shapes.rs`
/// prints units and ns per unit for ~80 kinds of 100 KB script): the budget
/// is about 8 ms of the slowest kind on the benchmark machine, while 100 KB
/// of ordinary commands (`cargo build && grep -rn TODO src | sort | uniq -c`,
/// repeated) spends 630 thousand and is judged whole.
const WORK_BUDGET: u64 = 768 * 1024;
/// Units charged for each script or piece of interpreter code analysed (on
/// top of its length): setting up its walk costs about as much as judging a
/// few commands.
const SCRIPT_UNITS: usize = 160;
/// Units charged for each command judged (on top of its words' length): a
/// command costs far more than a byte of text, whatever its length.
const STMT_UNITS: usize = 24;
/// Units charged for each command or process substitution walked.
const SUBST_UNITS: usize = 48;
/// Units charged for each word of a command.
const WORD_UNITS: usize = 8;
/// Units charged for each redirection.
const REDIRECT_UNITS: usize = 16;
/// Units charged for each file a command writes (its real place is judged
/// and remembered), on top of the path's length.
const WRITE_UNITS: usize = 48;
/// Units charged for each stage of a pipeline of two or more (a stage is
/// looked at for what flows to the next before it is judged).
const STAGE_UNITS: usize = 24;
/// Units charged for each assignment (its value is evaluated and kept).
const ASSIGN_UNITS: usize = 40;
/// Reason given when the budget runs out.
const OVER_BUDGET: &str = "too much to analyse within the classifier's work budget";
/// Deepest directory (in bytes) a script's `cd`s are followed into.
const MAX_CWD_BYTES: usize = 4096;
/// Longest command text quoted in a reason.
const SNIPPET_CHARS: usize = 100;

/// Classifies a shell command line: the strictest verdict over every simple
/// command found anywhere in it.
pub fn classify_command(script: &str) -> Verdict {
    classify_command_spending(script).0
}

/// [`classify_command`] and the work units it spent (of [`WORK_BUDGET`]),
/// for benchmarks that calibrate the budget.
#[doc(hidden)]
pub fn classify_command_spending(script: &str) -> (Verdict, u64) {
    let mut cx = Cx::new(WORK_BUDGET);
    analyze_script(&mut cx, script, 0, &Vars::default());
    if cx.class == Class::Safe {
        cx.reason = SAFE_REASON.to_string();
    }
    let spent = WORK_BUDGET - cx.budget;
    (
        Verdict {
            class: cx.class,
            reason: cx.reason,
        },
        spent,
    )
}

/// Whether bash would accept the script's syntax, as the classifier reads it
/// (`Err` says what is wrong and where). Classification includes this; it is
/// here on its own for benchmarks and tools.
pub fn check_syntax(script: &str) -> Result<(), String> {
    match syntax::parse(script).error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// File edits by tools: inside one of `roots` → Safe; outside all roots, inside a
/// `.git/` dir, or onto secrets (`.env`, `.env.*`, private keys like
/// id_rsa/id_ed25519/*.pem/*.key, credential files such as .netrc, .npmrc,
/// .pypirc, .aws/credentials, .ssh/*, .git-credentials) → Ask with a reason.
/// Paths are lexically normalised (`..` resolved without touching the disk);
/// relative paths are joined onto `roots[0]`.
pub fn classify_edit(path: &std::path::Path, roots: &[std::path::PathBuf]) -> Verdict {
    paths::classify_edit(path, roots)
}

pub use paths::ReadPlace;

/// Reads by tools, judged on the *real* path (links already followed by the
/// caller): secrets (the names [`classify_edit`] asks about, in any case) →
/// [`ReadPlace::Secret`] wherever they are; inside a root → `Inside`; package
/// caches, toolchains and system headers/docs (`~/.cargo/registry`,
/// `~/.rustup`, `/usr/include`, `/usr/share/doc`, any `node_modules` or
/// `site-packages`, ...) → `Dependency`; anything else → `Outside`. `home` is
/// the user's home directory, for the places below it.
pub fn classify_read(
    real: &std::path::Path,
    roots: &[std::path::PathBuf],
    home: Option<&std::path::Path>,
) -> ReadPlace {
    paths::classify_read(real, roots, home)
}

/// The verdict being accumulated.
struct Cx {
    class: Class,
    reason: String,
    /// Work left before the analysis gives up and asks (see [`WORK_BUDGET`]).
    budget: u64,
}

impl Cx {
    fn new(budget: u64) -> Cx {
        Cx {
            class: Class::Safe,
            reason: String::new(),
            budget,
        }
    }

    /// A fresh verdict for a side analysis that shares this one's budget
    /// (hand the budget back with [`Cx::join_budget`]).
    fn side(&self) -> Cx {
        Cx::new(self.budget)
    }

    fn join_budget(&mut self, side: &Cx) {
        self.budget = side.budget;
        if side.budget == 0 {
            self.hit(Class::Ask, OVER_BUDGET, "");
        }
    }

    /// Spends `units` of work; false (and the verdict at least asks) once the
    /// budget is gone, after which the walk stops.
    fn charge(&mut self, units: usize) -> bool {
        let units = u64::try_from(units).unwrap_or(u64::MAX).max(1);
        if self.budget <= units {
            self.budget = 0;
            self.hit(Class::Ask, OVER_BUDGET, "");
            return false;
        }
        self.budget -= units;
        true
    }

    fn exhausted(&self) -> bool {
        self.budget == 0
    }

    /// Records a finding; `command` is the offending command's source text
    /// (shortened only when it becomes the reason).
    fn hit(&mut self, class: Class, what: &str, command: &str) {
        if class > self.class {
            self.class = class;
            self.reason = format!("{what} ({})", snippet(command));
        }
    }
}

/// Shortens command text for a reason: whitespace collapsed, length capped.
fn snippet(s: &str) -> String {
    let mut out = String::new();
    for (i, w) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
        // Past this many bytes there are more chars than are kept.
        if out.len() > 4 * SNIPPET_CHARS {
            break;
        }
    }
    crate::text::truncate(&out, crate::text::Max::Chars(SNIPPET_CHARS), "…").into_owned()
}

/// Parses and walks one script (the top level or a nested `bash -c` string).
fn analyze_script(cx: &mut Cx, src: &str, depth: usize, vars: &Vars) {
    analyze(cx, src, depth, vars, true);
}

/// Parses and walks a script; when it does not parse and `recover` is set, the
/// pieces between separators are judged on their own so that a syntax error
/// cannot hide a forbidden command.
fn analyze(cx: &mut Cx, src: &str, depth: usize, vars: &Vars, recover: bool) {
    if cx.exhausted() || !cx.charge(SCRIPT_UNITS + src.len()) {
        return;
    }
    if depth > MAX_DEPTH {
        cx.hit(
            Class::Ask,
            "shell strings nested too deeply to analyse",
            src,
        );
        return;
    }
    if src.len() > MAX_SCRIPT_BYTES {
        cx.hit(Class::Ask, "command too long to analyse", src);
        return;
    }
    if src.contains('\0') {
        cx.hit(Class::Ask, "contains a NUL byte", src);
    }
    // Read and walked a few top-level commands at a time (a long script's
    // tree is never held whole); a parse error is known at the end.
    let mut chunks = syntax::Chunks::new(src);
    let mut items = Vec::new();
    let mut script = Script::new(src, Rc::from([]), depth, vars.child(), cx);
    loop {
        let more = chunks.next(&mut items);
        script.docs = chunks.take_heredocs().into();
        script.items(&items);
        if !more || script.cx.class == Class::Forbidden || script.cx.exhausted() {
            break;
        }
    }
    drop(script);
    match chunks.error() {
        // Too big to read, not broken: its pieces are as many.
        Some(error) if error.starts_with(syntax::TOO_MANY_COMMANDS) => {
            cx.hit(Class::Ask, syntax::TOO_MANY_COMMANDS, src);
        }
        Some(error) => {
            let what = format!("could not be parsed as a shell command ({error})");
            cx.hit(Class::Ask, &what, src);
            if recover {
                recover_pieces(cx, src, depth, vars);
            }
        }
        None => {}
    }
}

/// Second look at a script that does not parse.
fn recover_pieces(cx: &mut Cx, src: &str, depth: usize, vars: &Vars) {
    if cx.class == Class::Forbidden {
        return;
    }
    // `{rm,-rf,/}` is a word to bash; in a broken script the pieces around it
    // may not show it as a command.
    if let Some(alt) = rules::expand_brace_commands(src) {
        analyze(cx, &alt, depth + 1, vars, false);
    }
    for piece in rules::pieces(src) {
        if cx.class == Class::Forbidden {
            return;
        }
        let mut inner = cx.side();
        analyze(&mut inner, piece, depth + 1, vars, false);
        cx.join_budget(&inner);
        if inner.class == Class::Forbidden {
            cx.class = Class::Forbidden;
            cx.reason = inner.reason;
        }
    }
}

/// Where a command's standard input comes from (besides a pipe).
enum Stdin {
    /// Heredoc body or literal here-string.
    Text(String),
    /// Produced at run time (process substitution, dynamic here-string).
    Generated,
}

/// What a pipeline stage does, for "is remote content run?" checks.
#[derive(Default)]
struct Stage {
    fetch: bool,
    decode: bool,
    /// Literal text the stage prints (`echo`, `printf`, `cat <<EOF`).
    text: Option<String>,
    consumer: rules::Consumer,
    /// The stage's own words, when it is a simple command.
    argv: Vec<Arg>,
    /// No wrapper peels off its words (they are judged without peeling).
    unwrapped: bool,
    /// Reads a secret file or dumps the environment.
    secret: bool,
    /// Sends data over the network.
    network: bool,
    /// Unpacks an archive (`tar x`, `unzip`, `cpio -i`).
    unpacks: bool,
    /// Writes its output to a file (`> f`, `tee f`).
    to_file: bool,
}

/// One script being walked.
struct Script<'s, 'c> {
    src: &'s str,
    /// The here-documents of the commands being walked, by
    /// [`RedirOp::Heredoc`] index (shared with nested walks of them).
    docs: Rc<[Heredoc]>,
    depth: usize,
    vars: Vars,
    cx: &'c mut Cx,
    /// Nesting of `find -exec` analysis (bounded).
    nest: usize,
    /// How many lists are being walked (1 at the script's top level).
    lists: usize,
    /// Directory after the script's literal `cd`s (`None`: where it started).
    cwd: Option<String>,
    /// Files the script wrote with known content or downloaded, by path.
    files: HashMap<String, FileSrc>,
    /// Symbolic links the script made: link path → target (normalised keys).
    links: HashMap<String, String>,
    /// Variables assigned from secrets (`K=$(cat ~/.ssh/id_rsa)`).
    secret_vars: Vec<String>,
    /// The script unpacked or cloned something downloaded (`curl … | tar x`,
    /// `git clone`): running a local file after that runs downloaded code.
    remote_tree: bool,
}

/// What the script put into a file it later runs.
#[derive(Debug, Clone)]
enum FileSrc {
    Text(String),
    Remote,
}

impl<'s, 'c> Script<'s, 'c> {
    fn new(src: &'s str, docs: Rc<[Heredoc]>, depth: usize, vars: Vars, cx: &'c mut Cx) -> Self {
        Script {
            src,
            docs,
            depth,
            vars,
            cx,
            nest: 0,
            lists: 0,
            cwd: None,
            files: HashMap::new(),
            links: HashMap::new(),
            secret_vars: Vec::new(),
            remote_tree: false,
        }
    }

    /// Every command of a list, in source order (stops once forbidden).
    fn list(&mut self, list: &List) {
        self.items(&list.items);
    }

    fn items(&mut self, items: &[AndOr]) {
        self.lists += 1;
        'items: for item in items {
            for p in &item.pipelines {
                if self.cx.class == Class::Forbidden || self.cx.exhausted() {
                    break 'items;
                }
                self.pipeline(p);
                if self.lists == 1 {
                    // A top-level command's substitutions are all walked:
                    // their remembered outputs are not asked for again.
                    self.vars.forget_echoes();
                }
            }
        }
        self.lists -= 1;
    }

    fn pipeline(&mut self, p: &Pipeline) {
        if p.stages.len() < 2 {
            for s in &p.stages {
                self.stmt(s, None);
            }
            return;
        }
        if !self.cx.charge(p.stages.len() * STAGE_UNITS) {
            return;
        }
        let mut stages: Vec<Stage> = p.stages.iter().map(|s| self.stage(s)).collect();
        self.pipe_check(&stages, p.span.of(self.src));
        for (s, stage) in p.stages.iter().zip(stages.iter_mut()) {
            let argv = std::mem::take(&mut stage.argv);
            self.stmt(s, Some((argv, stage.unwrapped)));
        }
    }

    /// Judges a statement; `argv` is its simple command's words when already
    /// evaluated, and whether they were found to have no wrapper.
    fn stmt(&mut self, s: &Stmt, argv: Option<(Vec<Arg>, bool)>) {
        if self.cx.class == Class::Forbidden {
            return;
        }
        if !self
            .cx
            .charge(STMT_UNITS + s.redirects.len() * REDIRECT_UNITS)
        {
            return;
        }
        let snip = s.span.of(self.src);
        let mut written = None;
        match &s.cmd {
            Cmd::Simple { assigns, words } => {
                if !words.is_empty() {
                    let (argv, mut unwrapped) = argv.unwrap_or_else(|| (self.argv(words), false));
                    let size: usize = argv.iter().map(|a| a.text.len() + WORD_UNITS).sum();
                    if !self.cx.charge(size) {
                        return;
                    }
                    let stdin = self.stdin_of(s);
                    if s.redirects.iter().any(|r| r.op.writes()) {
                        let stage = rules::stage(&argv);
                        unwrapped |= stage.unwrapped;
                        written = written_content(stage.text, &argv, &stdin).map(FileSrc::Text);
                        if written.is_none() && stage.fetch {
                            written = Some(FileSrc::Remote);
                        }
                        if self.reads_secret(&argv, s) {
                            self.secret_to_file(s, snip);
                        }
                    }
                    if unwrapped {
                        rules::analyze_unwrapped(self, argv, &stdin, snip);
                    } else {
                        rules::analyze(self, argv, &stdin, snip);
                    }
                }
                for a in assigns {
                    if !self
                        .cx
                        .charge(ASSIGN_UNITS + a.name.end.saturating_sub(a.name.start))
                    {
                        return;
                    }
                    self.assignment(a, snip);
                }
                for w in words {
                    self.subs(&w.parts);
                }
            }
            Cmd::Subshell(l) | Cmd::Group(l) => self.list(l),
            Cmd::Compound(lists) => {
                for l in lists {
                    self.list(l);
                }
            }
            Cmd::For { var, words, body } => {
                if let Some(v) = var {
                    self.vars.forget(v.of(self.src));
                }
                for w in words {
                    self.subs(&w.parts);
                }
                self.list(body);
            }
            Cmd::Case { subject, arms } => {
                self.subs(&subject.parts);
                for (patterns, body) in arms {
                    for w in patterns {
                        self.subs(&w.parts);
                    }
                    self.list(body);
                }
            }
            Cmd::Function { name, body } => {
                if calls_itself_hot(self.src, name.of(self.src), body, false) {
                    self.cx.hit(Class::Forbidden, "fork bomb", snip);
                    return;
                }
                self.stmt(body, None);
            }
            Cmd::Test(words) => {
                for w in words {
                    self.subs(&w.parts);
                }
            }
        }
        for r in &s.redirects {
            self.redirect(r, snip, written.as_ref());
        }
    }

    /// Commands inside substitutions of word parts.
    fn subs(&mut self, parts: &[Part]) {
        for p in parts {
            match p {
                Part::Double(inner) | Part::Param { parts: inner, .. } | Part::Arith(inner) => {
                    self.subs(inner)
                }
                Part::Command(l) | Part::Process(l) => {
                    if self.cx.charge(SUBST_UNITS) {
                        self.list(l)
                    }
                }
                Part::Backquote(script) => {
                    analyze_script(self.cx, script, self.depth + 1, &self.vars)
                }
                Part::Lit(_) | Part::Single(_) | Part::AnsiC(_) => {}
            }
        }
    }

    /// A path as seen from the directory the script `cd`-ed into (borrowed
    /// when the directory does not change it).
    fn path<'a>(&self, a: &'a Arg) -> Cow<'a, Arg> {
        match &self.cwd {
            Some(c) if !a.text.starts_with(['/', '~', DYN]) => Cow::Owned(Arg {
                text: format!("{c}/{}", a.text),
                dynamic: a.dynamic,
            }),
            _ => Cow::Borrowed(a),
        }
    }

    /// True when the script `cd`-ed to an absolute directory.
    fn cwd_absolute(&self) -> bool {
        self.cwd.as_deref().is_some_and(|c| c.starts_with('/'))
    }

    /// Follows a literal `cd`. Relative steps extend the directory in place
    /// (a script of thousands of `cd`s costs time linear in its length); a
    /// directory deeper than [`MAX_CWD_BYTES`] is not followed and asks.
    fn cd(&mut self, dir: Option<&Arg>) {
        match dir {
            None => self.cwd = Some(paths::key("~")),
            Some(d) if d.dynamic || d.text == "-" => self.cwd = None,
            Some(d) if d.text.starts_with(['/', '~']) => self.cwd = Some(paths::key(&d.text)),
            Some(d) => {
                let mut c = self.cwd.take().unwrap_or_else(|| ".".into());
                for seg in d.text.split('/') {
                    match seg {
                        "" | "." => {}
                        ".." => cwd_up(&mut c),
                        seg if c == "." => seg.clone_into(&mut c),
                        seg => {
                            if !c.ends_with('/') {
                                c.push('/');
                            }
                            c.push_str(seg);
                        }
                    }
                }
                if c.len() > MAX_CWD_BYTES {
                    self.cx.hit(
                        Class::Ask,
                        "changes into a directory too deep to follow",
                        "cd",
                    );
                    self.cwd = None;
                } else {
                    self.cwd = Some(c);
                }
            }
        }
    }

    fn remember(&mut self, file: &Arg, content: Option<FileSrc>) {
        if file.dynamic {
            return;
        }
        let key = paths::key(&self.path(file).text);
        match content {
            Some(c) => self.files.insert(key, c),
            None => self.files.remove(&key),
        };
    }

    fn recall(&self, file: &Arg) -> Option<FileSrc> {
        if file.dynamic {
            return None;
        }
        self.files.get(&paths::key(&self.path(file).text)).cloned()
    }

    /// Running a file written earlier in the script runs what was written.
    fn run_file(&mut self, file: &Arg, snip: &str) {
        match self.recall(file) {
            Some(FileSrc::Text(t)) => self.nested(&Arg::lit(&t), snip),
            Some(FileSrc::Remote) => self.cx.hit(Class::Ask, "runs a downloaded script", snip),
            None if self.remote_tree && !paths::is_system(&file.text) => self.cx.hit(
                Class::Ask,
                "runs a file from something downloaded earlier in the script",
                snip,
            ),
            None => {}
        }
    }

    /// Interpreter code (`python -c`, `node -e`, awk programs, heredocs fed to
    /// an interpreter): judged by the APIs it uses (see `code`). A quoted
    /// string is judged as a shell command only when the code starts
    /// processes, so printing `rm -rf /` is not forbidden but running it is.
    fn code_check(&mut self, code: &str, snip: &str) {
        if !self.cx.charge(code.len()) {
            return;
        }
        let fx = code::effects(code);
        let strings = programs::quoted_strings(code);
        if fx.deletes {
            if strings.iter().any(|l| paths::is_critical(l)) {
                self.cx.hit(
                    Class::Forbidden,
                    "interpreter code deletes /, a system directory or a home directory",
                    snip,
                );
            }
            self.cx
                .hit(Class::Ask, "interpreter code deletes or moves files", snip);
        }
        if fx.runs {
            self.cx.hit(
                Class::Ask,
                "interpreter code starts programs or evaluates code",
                snip,
            );
            let mut candidates = strings.clone();
            if strings.len() > 1 {
                candidates.push(strings.join(" "));
            }
            for lit in candidates {
                if self.cx.class == Class::Forbidden {
                    break;
                }
                let mut inner = self.cx.side();
                analyze_script(&mut inner, &lit, self.depth + 1, &self.vars);
                self.cx.join_budget(&inner);
                if inner.class == Class::Forbidden {
                    self.cx.hit(
                        Class::Forbidden,
                        "interpreter code runs a forbidden command",
                        snip,
                    );
                }
            }
        }
        if fx.decodes {
            self.cx
                .hit(Class::Ask, "interpreter code decodes hidden data", snip);
        }
        if fx.network {
            self.cx
                .hit(Class::Ask, "interpreter code uses the network", snip);
        }
        if fx.processes {
            self.cx.hit(
                Class::Ask,
                "interpreter code forks or kills processes",
                snip,
            );
        }
        if fx.writes || fx.deletes {
            for lit in strings.iter().filter(|l| l.len() < 4096) {
                if let Some((class, what)) = rules::write_danger(self, lit) {
                    let what = format!("interpreter code: {what}");
                    self.cx.hit(class.min(Class::Ask), &what, snip);
                }
            }
        }
        if fx.home && (fx.writes || fx.deletes) {
            self.cx.hit(
                Class::Ask,
                "interpreter code changes files in the home directory",
                snip,
            );
        }
    }

    /// Nested script text (from `bash -c`, `eval`, a heredoc...).
    fn nested(&mut self, script: &Arg, snip: &str) {
        if script.dynamic {
            self.cx
                .hit(Class::Ask, "runs a command string built at run time", snip);
        } else {
            analyze_script(self.cx, &script.text, self.depth + 1, &self.vars);
        }
    }

    fn argv(&self, words: &[Word]) -> Vec<Arg> {
        words::eval_words(self.src, &self.vars, words)
    }

    /// Heredocs, here-strings and `< <(...)` attached to a command.
    fn stdin_of(&self, s: &Stmt) -> Vec<Stdin> {
        let mut out = Vec::new();
        for r in &s.redirects {
            match r.op {
                RedirOp::Heredoc(i) => out.push(Stdin::Text(
                    self.docs
                        .get(i)
                        .map(|h| h.body.of(self.src).to_string())
                        .unwrap_or_default(),
                )),
                RedirOp::HereString => {
                    let a = words::eval_joined(self.src, &self.vars, &r.target);
                    out.push(if a.dynamic {
                        Stdin::Generated
                    } else {
                        Stdin::Text(a.text)
                    });
                }
                RedirOp::Read if matches!(r.target.parts.as_slice(), [Part::Process(_)]) => {
                    out.push(Stdin::Generated)
                }
                _ => {}
            }
        }
        out
    }

    fn assignment(&mut self, a: &Assign, snip: &str) {
        if let AssignValue::Word(w) = &a.value {
            let raw = w.span.of(self.src);
            let name = a.name.of(self.src);
            if (flow::mentions_secret(raw) || flow::mentions_var(raw, &self.secret_vars))
                && self.secret_vars.len() < 64
            {
                self.secret_vars.push(name.to_string());
            }
            let value = words::eval_joined(self.src, &self.vars, w);
            rules::env_assign(self, name, &value, snip);
        }
        match &a.value {
            AssignValue::Word(w) => self.subs(&w.parts),
            AssignValue::Array(words) => {
                for w in words {
                    self.subs(&w.parts);
                }
            }
        }
        if !a.plain {
            return;
        }
        let value = match &a.value {
            _ if a.append => None,
            AssignValue::Word(w) => words::eval_value(self.src, &self.vars, w),
            AssignValue::Array(_) => None,
        };
        if let Some(v) = value.as_deref() {
            let name = a.name.of(self.src);
            if matches!(name, "PS0" | "PS1" | "PS2" | "PS3" | "PS4") {
                // Prompt strings are expanded when shown (`PS4` under `bash -x`).
                self.payload(
                    v,
                    &format!("${name} runs a command when the prompt is shown"),
                );
            } else if v.contains('[') {
                self.payload(
                    v,
                    &format!(
                        "${name} holds a subscript that runs a command when used in arithmetic"
                    ),
                );
            }
        }
        self.vars.assign(a.name.of(self.src), value);
    }

    /// Whether a command reads a secret file (an operand or `< file`) or dumps
    /// the environment.
    fn reads_secret(&self, argv: &[Arg], s: &Stmt) -> bool {
        let name = argv
            .first()
            .map(|a| args::base(&a.text))
            .unwrap_or_default();
        if matches!(name, "env" | "printenv") && argv.len() == 1 {
            return true;
        }
        if matches!(
            name,
            "ls" | "stat"
                | "test"
                | "["
                | "chmod"
                | "chown"
                | "ssh-add"
                | "ssh"
                | "touch"
                | "mkdir"
                | "file"
                | "wc"
                | "du"
                | "echo"
                | "printf"
                | "cp"
                | "mv"
                | "rm"
        ) {
            return false;
        }
        if flow::prints_secret(argv) {
            return true;
        }
        if name.starts_with("gpg")
            && argv
                .iter()
                .any(|a| a.text.starts_with("--export-secret") || a.text == "--export")
        {
            return true;
        }
        argv.iter()
            .skip(1)
            .any(|a| !a.dynamic && (flow::secret_path(&a.text) || a.text.contains("/environ")))
            || s.redirects.iter().any(|r| {
                r.op == RedirOp::Read
                    && flow::secret_path(&words::eval_joined(self.src, &self.vars, &r.target).text)
            })
    }

    /// A secret read by a command whose output goes to a file.
    fn secret_to_file(&mut self, s: &Stmt, snip: &str) {
        let to_file = s.redirects.iter().any(|r| {
            r.op.writes() && {
                let t = words::eval_joined(self.src, &self.vars, &r.target);
                !t.text.starts_with("/dev/") && !t.text.bytes().all(|c| c.is_ascii_digit())
            }
        });
        if to_file {
            self.cx
                .hit(Class::Ask, "copies or encodes a secret into a file", snip);
        }
    }

    /// `written`: what the command puts into the file, if known.
    fn redirect(&mut self, r: &Redirect, snip: &str, written: Option<&FileSrc>) {
        if let RedirOp::Heredoc(i) = r.op {
            let docs = self.docs.clone();
            if let Some(doc) = docs.get(i) {
                self.subs(&doc.parts);
            }
            return;
        }
        self.subs(&r.target.parts);
        let target = words::eval_joined(self.src, &self.vars, &r.target);
        if target.text.starts_with("/dev/tcp/") || target.text.starts_with("/dev/udp/") {
            self.cx.hit(Class::Ask, "opens a network connection", snip);
        }
        let descriptor = !target.dynamic
            && !target.text.is_empty()
            && target.text.bytes().all(|c| c.is_ascii_digit());
        let writes = r.op.writes() && !(r.op == RedirOp::DupOut && descriptor);
        if writes && target.text != "-" {
            rules::write_check(self, &target, snip);
            let append = r.op == RedirOp::Append || r.op == RedirOp::AllAppend;
            // What the script knows of the file, looked up once.
            let Some(key) = (!target.dynamic).then(|| paths::key(&self.path(&target).text)) else {
                return;
            };
            let old = if append { self.files.get(&key) } else { None };
            let content = match (append, written, old) {
                (_, Some(FileSrc::Remote), _) => Some(FileSrc::Remote),
                (true, Some(FileSrc::Text(new)), Some(FileSrc::Text(old))) => {
                    Some(FileSrc::Text(old.clone() + new))
                }
                (true, Some(_), Some(_)) => None,
                (_, Some(new), _) => Some(new.clone()),
                _ => None,
            };
            match content {
                Some(c) => self.files.insert(key, c),
                None => self.files.remove(&key),
            };
        }
    }

    /// Command substitutions in a literal value that bash may expand later:
    /// judged as if they run. Bash evaluates a variable's value as an
    /// expression wherever it is used arithmetically (`$((x))`, `(( x ))`,
    /// `let x`, `[[ $x -eq 1 ]]`, `${a[x]}`...), and a subscript in it runs
    /// command substitutions (`x='a[$(cmd)]'; echo $((x))` runs `cmd`); prompt
    /// strings are expanded when shown.
    fn payload(&mut self, value: &str, what: &str) {
        if !(value.contains("$(") || value.contains('`')) {
            return;
        }
        let tree = syntax::parse_expansions(value);
        let mut inner = self.cx.side();
        let docs: Rc<[Heredoc]> = tree.heredocs.into();
        let mut script = Script::new(
            value,
            docs.clone(),
            self.depth + 1,
            self.vars.child(),
            &mut inner,
        );
        script.cwd = self.cwd.clone();
        for doc in docs.iter() {
            script.subs(&doc.parts);
        }
        self.cx.join_budget(&inner);
        if inner.class > Class::Safe {
            let what = format!("{what}: {}", inner.reason);
            self.cx.hit(inner.class, &what, value);
        }
    }

    fn stage(&self, s: &Stmt) -> Stage {
        if let Cmd::Simple { words, .. } = &s.cmd {
            let argv = self.argv(words);
            let mut stage = rules::stage(&argv);
            if stage.text.is_none() {
                stage.text = cat_input(&argv, &self.stdin_of(s));
            }
            stage.secret = self.reads_secret(&argv, s)
                || flow::mentions_secret_var(s.span.of(self.src))
                || (argv.first().is_some_and(|a| a.is("printenv"))
                    && argv
                        .iter()
                        .skip(1)
                        .any(|a| flow::mentions_secret_var(&format!("${}", a.text))));
            let name = argv.first().map(|a| args::base(&a.text)).unwrap_or("");
            stage.network |= flow::NETWORK.contains(name);
            stage.unpacks = matches!(name, "tar" | "bsdtar" | "unzip" | "cpio" | "7z" | "busybox");
            stage.to_file = name == "tee"
                || s.redirects.iter().any(|r| {
                    r.op.writes() && {
                        let t = words::eval_joined(self.src, &self.vars, &r.target);
                        !t.text.starts_with("/dev/") && !t.text.bytes().all(|c| c.is_ascii_digit())
                    }
                });
            stage.argv = argv;
            return stage;
        }
        // Compound stage: union over the commands inside it.
        let mut out = Stage::default();
        let mut simple = Vec::new();
        simple_commands(s, &mut simple);
        for words in simple {
            let st = rules::stage(&self.argv(words));
            out.fetch |= st.fetch;
            out.decode |= st.decode;
            if out.consumer == rules::Consumer::None {
                out.consumer = st.consumer;
            }
        }
        out
    }

    fn pipe_check(&mut self, stages: &[Stage], snip: &str) {
        for (j, stage) in stages.iter().enumerate() {
            let Some(up) = stages.get(..j).filter(|u| !u.is_empty()) else {
                continue;
            };
            if up.iter().any(|s| s.secret) {
                if stage.network {
                    self.cx.hit(
                        Class::Ask,
                        "sends secrets or the environment over the network",
                        snip,
                    );
                } else if stage.to_file {
                    self.cx
                        .hit(Class::Ask, "copies or encodes a secret into a file", snip);
                }
            }
            if up.iter().any(|s| s.fetch) {
                if stage.unpacks {
                    self.remote_tree = true;
                }
                if stage
                    .argv
                    .first()
                    .is_some_and(|a| args::base(&a.text) == "tee")
                {
                    for t in stage
                        .argv
                        .iter()
                        .skip(1)
                        .filter(|a| !a.text.starts_with('-'))
                    {
                        self.remember(t, Some(FileSrc::Remote));
                    }
                }
            }
            let literal = up.last().and_then(|s| s.text.clone());
            if let Some(argv) = literal
                .as_deref()
                .and_then(|t| wrappers::xargs_fed(&stage.argv, t))
            {
                if !self.cx.charge(STMT_UNITS) {
                    return;
                }
                rules::analyze(self, argv, &[], snip);
            }
            if stage.consumer == rules::Consumer::None {
                continue;
            }
            if up.iter().any(|s| s.fetch) {
                self.cx.hit(
                    Class::Ask,
                    "remote content piped to a shell or interpreter",
                    snip,
                );
            } else if up.iter().any(|s| s.decode) {
                self.cx.hit(Class::Ask, "decoded content is executed", snip);
            }
            match (stage.consumer, literal) {
                (rules::Consumer::Shell, Some(t)) => self.nested(&Arg::lit(&t), snip),
                (rules::Consumer::Shell, None) => {
                    self.cx
                        .hit(Class::Ask, "output of a command is run as a script", snip);
                }
                (rules::Consumer::Sql, Some(t)) => programs::sql_check(self, &Arg::lit(&t), snip),
                (rules::Consumer::Mongo, Some(t)) if table::mongo_danger(&t) => {
                    self.cx
                        .hit(Class::Ask, "destructive database command", snip);
                }
                _ => {}
            }
        }
    }
}

/// One `..` step on a normalised directory key (`/a/b`, `a/b`, `../a`, `.`, `/`).
fn cwd_up(c: &mut String) {
    if c == "." {
        *c = "..".into();
    } else if c == ".." || c.ends_with("/..") {
        c.push_str("/..");
    } else if c != "/" {
        match c.rfind('/') {
            Some(0) => c.truncate(1),
            Some(i) => c.truncate(i),
            None => *c = ".".into(),
        }
    }
}

/// Literal text written by `echo ... > f`, `printf ... > f`, `cat <<EOF > f`.
/// `printed` is what the command prints when literal (`Stage::text`).
fn written_content(printed: Option<String>, argv: &[Arg], stdin: &[Stdin]) -> Option<String> {
    match printed {
        Some(text) => Some(text + "\n"),
        None => cat_input(argv, stdin),
    }
}

/// What a plain `cat` prints: its heredoc or here-string (`cat <<EOF | sh`).
fn cat_input(argv: &[Arg], stdin: &[Stdin]) -> Option<String> {
    let cat = argv.len() == 1 && argv.first().is_some_and(|a| a.is("cat"));
    match stdin.first() {
        Some(Stdin::Text(t)) if cat => Some(t.clone()),
        _ => None,
    }
}

/// The words of every simple command in a statement, outside substitutions.
fn simple_commands<'t>(s: &'t Stmt, out: &mut Vec<&'t [Word]>) {
    if let Cmd::Simple { words, .. } = &s.cmd {
        out.push(words);
        return;
    }
    for l in s.cmd.lists() {
        for item in &l.items {
            for p in &item.pipelines {
                for st in &p.stages {
                    simple_commands(st, out);
                }
            }
        }
    }
}

/// Fork bombs: a function body that calls the function in a pipeline or in the
/// background (`hot`).
fn calls_itself_hot(src: &str, name: &str, s: &Stmt, hot: bool) -> bool {
    let in_list = |l: &List| {
        l.items.iter().any(|item| {
            item.pipelines.iter().any(|p| {
                let hot = hot || item.background || p.stages.len() > 1;
                p.stages
                    .iter()
                    .any(|st| calls_itself_hot(src, name, st, hot))
            })
        })
    };
    match &s.cmd {
        Cmd::Simple { words, .. } => hot && words.first().is_some_and(|w| w.span.of(src) == name),
        cmd => cmd.lists().into_iter().any(in_list),
    }
}
