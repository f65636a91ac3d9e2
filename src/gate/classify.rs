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
//! - Quoted strings in `python -c`/`perl -e`/`node -e`/`awk` code are parsed as
//!   shell: a forbidden command there (`os.system("rm -rf /")`) is forbidden; other
//!   interpreter code is not judged.
//! - Commands run remotely by `ssh host 'cmd'` are judged like local ones.
//! - A script bash would reject is `Ask`, and its pieces between separators are
//!   judged on their own as well, so a syntax error hides no forbidden command.
//!   Nesting deeper than the parser reads is `Ask`; NUL bytes ask.
//!
//! Layout: `syntax` parses, this file walks the syntax tree, `words` evaluates
//! words, `wrappers` peels `sudo`/`env`/`xargs`..., `rules` judges commands,
//! `programs` covers git,
//! shells, interpreters, SQL clients and package managers, `paths` holds the
//! lexical path rules and [`classify_edit`], `args` reads options.

mod args;
mod paths;
mod programs;
mod rules;
mod syntax;
mod words;
mod wrappers;

use std::collections::HashMap;

use syntax::{
    Assign, AssignValue, Cmd, Heredoc, List, Part, Pipeline, RedirOp, Redirect, Stmt, Word,
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
/// Longest command text quoted in a reason.
const SNIPPET_CHARS: usize = 100;

/// Classifies a shell command line: the strictest verdict over every simple
/// command found anywhere in it.
pub fn classify_command(script: &str) -> Verdict {
    let mut cx = Cx {
        class: Class::Safe,
        reason: String::new(),
    };
    analyze_script(&mut cx, script, 0, &Vars::default());
    if cx.class == Class::Safe {
        cx.reason = SAFE_REASON.to_string();
    }
    Verdict {
        class: cx.class,
        reason: cx.reason,
    }
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

/// The verdict being accumulated.
struct Cx {
    class: Class,
    reason: String,
}

impl Cx {
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
        if out.chars().count() > SNIPPET_CHARS {
            let cut: String = out.chars().take(SNIPPET_CHARS).collect();
            return cut + "…";
        }
    }
    out
}

/// Parses and walks one script (the top level or a nested `bash -c` string).
fn analyze_script(cx: &mut Cx, src: &str, depth: usize, vars: &Vars) {
    analyze(cx, src, depth, vars, true);
}

/// Parses and walks a script; when it does not parse and `recover` is set, the
/// pieces between separators are judged on their own so that a syntax error
/// cannot hide a forbidden command.
fn analyze(cx: &mut Cx, src: &str, depth: usize, vars: &Vars, recover: bool) {
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
    let tree = syntax::parse(src);
    if let Some(error) = &tree.error {
        let what = format!("could not be parsed as a shell command ({error})");
        cx.hit(Class::Ask, &what, src);
    }
    let mut script = Script::new(src, &tree.heredocs, depth, vars.clone(), cx);
    script.list(&tree.list);
    if tree.error.is_some() && recover {
        recover_pieces(script.cx, src, depth, vars);
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
        let mut inner = Cx {
            class: Class::Safe,
            reason: String::new(),
        };
        analyze(&mut inner, piece, depth + 1, vars, false);
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
}

/// One script being walked.
struct Script<'s, 'c> {
    src: &'s str,
    /// The script's here-documents, by [`RedirOp::Heredoc`] index.
    docs: &'s [Heredoc],
    depth: usize,
    vars: Vars,
    cx: &'c mut Cx,
    /// Nesting of `find -exec` analysis (bounded).
    nest: usize,
    /// Directory after the script's literal `cd`s (`None`: where it started).
    cwd: Option<String>,
    /// Files the script wrote with known content or downloaded, by path.
    files: HashMap<String, FileSrc>,
}

/// What the script put into a file it later runs.
#[derive(Debug, Clone)]
enum FileSrc {
    Text(String),
    Remote,
}

impl<'s, 'c> Script<'s, 'c> {
    fn new(src: &'s str, docs: &'s [Heredoc], depth: usize, vars: Vars, cx: &'c mut Cx) -> Self {
        Script {
            src,
            docs,
            depth,
            vars,
            cx,
            nest: 0,
            cwd: None,
            files: HashMap::new(),
        }
    }

    /// Every command of a list, in source order (stops once forbidden).
    fn list(&mut self, list: &List) {
        for item in &list.items {
            for p in &item.pipelines {
                if self.cx.class == Class::Forbidden {
                    return;
                }
                self.pipeline(p);
            }
        }
    }

    fn pipeline(&mut self, p: &Pipeline) {
        if p.stages.len() < 2 {
            for s in &p.stages {
                self.stmt(s, None);
            }
            return;
        }
        let mut stages: Vec<Stage> = p.stages.iter().map(|s| self.stage(s)).collect();
        self.pipe_check(&stages, p.span.of(self.src));
        for (s, stage) in p.stages.iter().zip(stages.iter_mut()) {
            self.stmt(s, Some(std::mem::take(&mut stage.argv)));
        }
    }

    /// Judges a statement; `argv` is its simple command's words when already
    /// evaluated.
    fn stmt(&mut self, s: &Stmt, argv: Option<Vec<Arg>>) {
        if self.cx.class == Class::Forbidden {
            return;
        }
        let snip = s.span.of(self.src);
        let mut written = None;
        match &s.cmd {
            Cmd::Simple { assigns, words } => {
                if !words.is_empty() {
                    let argv = argv.unwrap_or_else(|| self.argv(words));
                    let stdin = self.stdin_of(s);
                    if s.redirects.iter().any(|r| r.op.writes()) {
                        written = written_content(&argv, &stdin);
                    }
                    rules::analyze(self, argv, &stdin, snip);
                }
                for a in assigns {
                    self.assignment(a);
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
            self.redirect(r, snip, written.as_deref());
        }
    }

    /// Commands inside substitutions of word parts.
    fn subs(&mut self, parts: &[Part]) {
        for p in parts {
            match p {
                Part::Double(inner) | Part::Param { parts: inner, .. } | Part::Arith(inner) => {
                    self.subs(inner)
                }
                Part::Command(l) | Part::Process(l) => self.list(l),
                Part::Backquote(script) => {
                    analyze_script(self.cx, script, self.depth + 1, &self.vars)
                }
                Part::Lit(_) | Part::Single(_) | Part::AnsiC(_) => {}
            }
        }
    }

    /// A path as seen from the directory the script `cd`-ed into.
    fn path(&self, a: &Arg) -> Arg {
        match &self.cwd {
            Some(c) if !a.text.starts_with(['/', '~', DYN]) => Arg {
                text: format!("{c}/{}", a.text),
                dynamic: a.dynamic,
            },
            _ => a.clone(),
        }
    }

    /// True when the script `cd`-ed to an absolute directory.
    fn cwd_absolute(&self) -> bool {
        self.cwd.as_deref().is_some_and(|c| c.starts_with('/'))
    }

    fn cd(&mut self, dir: Option<&Arg>) {
        self.cwd = match dir {
            None => Some(paths::key("~")),
            Some(d) if d.dynamic || d.text == "-" => None,
            Some(d) => Some(paths::key(&self.path(d).text)),
        };
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
            None => {}
        }
    }

    /// Shell commands quoted inside interpreter code (`os.system("...")`):
    /// forbidden ones make the code forbidden.
    fn code_check(&mut self, code: &str, snip: &str) {
        let strings = programs::quoted_strings(code);
        let deletes = ["rmtree", "rm_rf", "rmdir", "unlink", "remove"]
            .iter()
            .any(|d| code.contains(d));
        for lit in strings {
            if deletes && paths::is_critical(&lit) {
                self.cx.hit(
                    Class::Forbidden,
                    "interpreter code deletes /, a system directory or a home directory",
                    snip,
                );
            }
            let mut inner = Cx {
                class: Class::Safe,
                reason: String::new(),
            };
            analyze_script(&mut inner, &lit, self.depth + 1, &self.vars);
            if inner.class == Class::Forbidden {
                self.cx.hit(
                    Class::Forbidden,
                    "interpreter code runs a forbidden command",
                    snip,
                );
            }
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

    fn assignment(&mut self, a: &Assign) {
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

    /// `written`: the literal text the command prints, if known.
    fn redirect(&mut self, r: &Redirect, snip: &str, written: Option<&str>) {
        if let RedirOp::Heredoc(i) = r.op {
            if let Some(doc) = self.docs.get(i) {
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
            let content = written.map(str::to_string);
            let append = r.op == RedirOp::Append || r.op == RedirOp::AllAppend;
            let content = match (append, content, self.recall(&target)) {
                (true, Some(new), Some(FileSrc::Text(old))) => Some(FileSrc::Text(old + &new)),
                (true, Some(_), Some(_)) => None,
                (_, Some(new), _) => Some(FileSrc::Text(new)),
                _ => None,
            };
            self.remember(&target, content);
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
        let mut inner = Cx {
            class: Class::Safe,
            reason: String::new(),
        };
        let mut script = Script::new(
            value,
            &tree.heredocs,
            self.depth + 1,
            self.vars.clone(),
            &mut inner,
        );
        script.cwd = self.cwd.clone();
        for doc in &tree.heredocs {
            script.subs(&doc.parts);
        }
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
            let literal = up.last().and_then(|s| s.text.clone());
            if let Some(argv) = literal
                .as_deref()
                .and_then(|t| wrappers::xargs_fed(&stage.argv, t))
            {
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
                _ => {}
            }
        }
    }
}

/// Literal text written by `echo ... > f`, `printf ... > f`, `cat <<EOF > f`.
fn written_content(argv: &[Arg], stdin: &[Stdin]) -> Option<String> {
    match rules::stage(argv).text {
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
