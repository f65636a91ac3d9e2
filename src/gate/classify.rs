//! The command and edit classifier of the approval gate (DESIGN.md §6).
//!
//! **Owns** one decision: how strict the gate must be about a shell command line
//! ([`classify_command`]) or a file edit made by a tool ([`classify_edit`]). The
//! answer is a [`Verdict`]: `Forbidden` never runs whatever the policy, `Ask` needs a
//! person (or the policy), `Safe` runs.
//!
//! **Must never**: do I/O (no filesystem, environment, clock or process access —
//! paths are normalised lexically and `$HOME`/`~` stay symbolic), keep global or
//! thread-local state (one tree-sitter parser per call), or panic/unwrap on any
//! input. Pure function of its arguments.
//!
//! How a command is judged: the script is parsed with tree-sitter-bash and every
//! simple command anywhere in it is looked at — in pipelines, lists, subshells,
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
//! - Non-ASCII characters are parsed as `x` (tree-sitter-bash's scanner is not
//!   safe on them); NUL asks. Parser work is bounded per byte. Where tree-sitter
//!   cannot parse a script, or reads it differently from bash (a line break inside
//!   a command), the pieces between separators are judged on their own as well, so
//!   a parser quirk can lower nothing below `Ask` and hide no forbidden command.
//!
//! Layout: this file walks the syntax tree; `words` evaluates words, `wrappers`
//! peels `sudo`/`env`/`xargs`..., `rules` judges commands, `programs` covers git,
//! shells, interpreters, SQL clients and package managers, `paths` holds the
//! lexical path rules and [`classify_edit`], `args` reads options.

mod args;
mod paths;
mod programs;
mod rules;
mod words;
mod wrappers;

use std::collections::HashMap;

use tree_sitter::{Node, Parser};

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

/// Same bytes for ASCII; every byte of a non-ASCII character becomes `x`, NUL a
/// space.
fn ascii_copy(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for c in src.chars() {
        match c {
            '\0' => out.push(' '),
            c if c.is_ascii() => out.push(c),
            c => out.extend(std::iter::repeat_n('x', c.len_utf8())),
        }
    }
    out
}

/// Parses and walks one script (the top level or a nested `bash -c` string).
fn analyze_script(cx: &mut Cx, src: &str, depth: usize, vars: &Vars) {
    analyze(cx, src, depth, vars, true);
}

/// Parses and walks a script; when tree-sitter cannot parse it cleanly and
/// `recover` is set, the pieces between separators are judged on their own so a
/// parser quirk cannot hide a forbidden command.
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
    // tree-sitter-bash's scanner calls `isdigit` on raw code points (undefined
    // behaviour above 255): parse an ASCII copy with the same byte offsets. Bash
    // names and the paths judged here are ASCII, so nothing judged changes.
    let clean = ascii_copy(src);
    if src.contains('\0') {
        cx.hit(Class::Ask, "contains a NUL byte", &clean);
    }
    let orig = src;
    let src = clean.as_str();
    let mut parser = Parser::new();
    if parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .is_err()
    {
        cx.hit(Class::Ask, "shell parser unavailable", src);
        return;
    }
    // Bound the parser's work (it reports progress every ~100 operations):
    // ordinary scripts need well under 40 checks per KB; error recovery on
    // adversarial input can need far more.
    let mut budget = 64 + src.len() / 8;
    let mut progress = |_: &tree_sitter::ParseState| {
        budget = budget.saturating_sub(1);
        budget == 0
    };
    let options = tree_sitter::ParseOptions::new().progress_callback(&mut progress);
    let bytes = src.as_bytes();
    let mut read = |i: usize, _: tree_sitter::Point| bytes.get(i..).unwrap_or_default();
    let Some(tree) = parser.parse_with_options(&mut read, None, Some(options)) else {
        cx.hit(Class::Ask, "too complex to parse as a shell command", orig);
        if recover {
            recover_pieces(cx, src, depth, vars);
        }
        return;
    };
    let root = tree.root_node();
    let broken = root.has_error();
    if broken {
        cx.hit(Class::Ask, "could not be parsed as a shell command", orig);
    }
    let mut script = Script {
        src,
        orig,
        depth,
        vars: vars.clone(),
        cx,
        nest: 0,
        cwd: None,
        files: HashMap::new(),
        misparsed: false,
    };
    script.walk(root);
    if (broken || script.misparsed) && recover {
        recover_pieces(script.cx, src, depth, vars);
    }
}

/// Second look at a script tree-sitter could not parse cleanly.
fn recover_pieces(cx: &mut Cx, src: &str, depth: usize, vars: &Vars) {
    if cx.class == Class::Forbidden {
        return;
    }
    // `{rm,-rf,/}` is a parse error for tree-sitter but a command for bash.
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
    /// The script as parsed (ASCII, same byte offsets as `orig`).
    src: &'s str,
    /// The script as given, for quoting in reasons.
    orig: &'s str,
    depth: usize,
    vars: Vars,
    cx: &'c mut Cx,
    /// Nesting of `find -exec` analysis (bounded).
    nest: usize,
    /// Directory after the script's literal `cd`s (`None`: where it started).
    cwd: Option<String>,
    /// Files the script wrote with known content or downloaded, by path.
    files: HashMap<String, FileSrc>,
    /// tree-sitter produced a tree bash would not (a line break inside a word).
    misparsed: bool,
}

/// What the script put into a file it later runs.
#[derive(Debug, Clone)]
enum FileSrc {
    Text(String),
    Remote,
}

impl<'s> Script<'s, '_> {
    fn text(&self, n: Node) -> &str {
        words::text(self.src, n)
    }

    /// A node's original text, shortened for a reason.
    fn snip(&self, n: Node) -> &'s str {
        let (orig, src) = (self.orig, self.src);
        orig.get(n.byte_range())
            .unwrap_or_else(|| words::text(src, n))
    }

    /// Depth-first, in source order, with one cursor and no recursion. Parents
    /// are kept on a stack (tree-sitter's `parent()` walks down from the root).
    fn walk(&mut self, root: Node) {
        let mut cursor = root.walk();
        let mut parents: Vec<Node> = Vec::new();
        loop {
            if self.cx.class == Class::Forbidden {
                return;
            }
            let n = cursor.node();
            self.visit(n, parents.last().copied());
            if cursor.goto_first_child() {
                parents.push(n);
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    return;
                }
                parents.pop();
            }
        }
    }

    fn visit(&mut self, n: Node, parent: Option<Node>) {
        let kind = n.kind();
        if matches!(
            kind,
            "command"
                | "command_name"
                | "word"
                | "concatenation"
                | "simple_expansion"
                | "variable_assignment"
                | "file_redirect"
                | "herestring_redirect"
        ) && self.text(n).contains('\n')
        {
            self.check_line_breaks(n);
        }
        match kind {
            "command" => self.command(n, parent),
            "variable_assignment" => self.assignment(n),
            "for_statement" => {
                if let Some(v) = n.child_by_field_name("variable") {
                    let name = self.text(v).to_string();
                    self.vars.forget(&name);
                }
            }
            "function_definition" => self.function(n),
            "file_redirect" => self.redirect(n, parent),
            "pipeline" if parent.is_none_or(|p| p.kind() != "heredoc_redirect") => self.pipeline(n),
            "heredoc_redirect" => self.heredoc_pipeline(n, parent),
            _ => {}
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

    fn argv(&self, n: Node) -> Vec<Arg> {
        words::eval_words(self.src, &self.vars, &self.word_nodes(n))
    }

    /// The name and argument nodes of a command.
    fn word_nodes<'t>(&self, n: Node<'t>) -> Vec<Node<'t>> {
        let mut nodes = Vec::new();
        let mut cursor = n.walk();
        if cursor.goto_first_child() {
            loop {
                if matches!(cursor.field_name(), Some("name" | "argument")) {
                    nodes.push(cursor.node());
                }
                if !cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        nodes
    }

    /// Heredocs, here-strings and `< <(...)` attached to a command.
    fn stdin_of(&self, n: Node, parent: Option<Node>) -> Vec<Stdin> {
        let mut redirects = Vec::new();
        let mut cursor = n.walk();
        redirects.extend(
            n.children(&mut cursor)
                .filter(|c| c.kind().ends_with("redirect")),
        );
        if let Some(p) = parent {
            if p.kind() == "redirected_statement" && p.child_by_field_name("body") == Some(n) {
                let mut cursor = p.walk();
                redirects.extend(
                    p.children(&mut cursor)
                        .filter(|c| c.kind().ends_with("redirect")),
                );
            }
        }
        let mut out = Vec::new();
        for r in redirects {
            match r.kind() {
                "heredoc_redirect" => {
                    let mut cursor = r.walk();
                    let body = r.children(&mut cursor).find(|c| c.kind() == "heredoc_body");
                    out.push(Stdin::Text(
                        body.map(|b| self.text(b).to_string()).unwrap_or_default(),
                    ));
                }
                "herestring_redirect" => {
                    let mut cursor = r.walk();
                    let value = r
                        .named_children(&mut cursor)
                        .find(|c| c.kind() != "file_descriptor");
                    if let Some(v) = value {
                        let a = words::eval_joined(self.src, &self.vars, v);
                        out.push(if a.dynamic {
                            Stdin::Generated
                        } else {
                            Stdin::Text(a.text)
                        });
                    }
                }
                "file_redirect" => {
                    let reads = {
                        let mut cursor = r.walk();
                        let reads = r
                            .children(&mut cursor)
                            .any(|c| !c.is_named() && c.kind() == "<");
                        reads
                    };
                    let dest = r.child_by_field_name("destination");
                    if reads && dest.is_some_and(|d| d.kind() == "process_substitution") {
                        out.push(Stdin::Generated);
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn command(&mut self, n: Node, parent: Option<Node>) {
        let nodes = self.word_nodes(n);
        let argv = words::eval_words(self.src, &self.vars, &nodes);
        // Heredocs, here-strings and `< <(..)` all need a `<`.
        let redirected = parent.filter(|p| p.kind() == "redirected_statement");
        let stdin = if self.text(n).contains('<')
            || redirected.is_some_and(|p| self.text(p).contains('<'))
        {
            self.stdin_of(n, parent)
        } else {
            Vec::new()
        };
        let snip = self.snip(n);
        rules::analyze(self, argv, &stdin, snip);
    }

    fn assignment(&mut self, n: Node) {
        let Some(name) = n.child_by_field_name("name") else {
            return;
        };
        if name.kind() != "variable_name" {
            return;
        }
        let name = self.text(name).to_string();
        let appends = {
            let mut cursor = n.walk();
            let appends = n.children(&mut cursor).any(|c| c.kind() == "+=");
            appends
        };
        let value = match n.child_by_field_name("value") {
            _ if appends => None,
            Some(v) => words::eval_value(self.src, &self.vars, v),
            None => Some(String::new()),
        };
        self.vars.assign(&name, value);
    }

    /// Bash ends a word, an assignment, a simple command or a redirection at an
    /// unescaped line break (outside quotes and substitutions); tree-sitter
    /// sometimes carries on (`a ==<newline>rm`, `><newline>rm`, `x=$<newline>rm`).
    /// Such a tree is not trusted.
    fn check_line_breaks(&mut self, n: Node) {
        let breaks = |text: &str| {
            text.match_indices('\n')
                .any(|(i, _)| !text.get(..i).is_some_and(|before| before.ends_with('\\')))
        };
        let mut spans = false;
        if n.child_count() == 0 {
            spans = breaks(self.text(n));
        } else {
            let mut pos = n.start_byte();
            let mut cursor = n.walk();
            for c in n.children(&mut cursor) {
                if c.kind() == "heredoc_redirect" {
                    break;
                }
                spans |= breaks(self.src.get(pos..c.start_byte()).unwrap_or(""));
                pos = c.end_byte();
            }
            if pos < n.end_byte() {
                spans |= breaks(self.src.get(pos..n.end_byte()).unwrap_or(""));
            }
        }
        if spans {
            self.misparsed = true;
            let snip = self.snip(n);
            self.cx.hit(Class::Ask, "ambiguous line break", snip);
        }
    }

    fn redirect(&mut self, n: Node, parent: Option<Node>) {
        let Some(dest) = n.child_by_field_name("destination") else {
            return;
        };
        let op = {
            let mut cursor = n.walk();
            let op = n
                .children(&mut cursor)
                .find(|c| !c.is_named())
                .map(|c| c.kind())
                .unwrap_or("");
            op
        };
        let target = words::eval_joined(self.src, &self.vars, dest);
        let snip = self.snip(parent.unwrap_or(n));
        if target.text.starts_with("/dev/tcp/") || target.text.starts_with("/dev/udp/") {
            self.cx.hit(Class::Ask, "opens a network connection", snip);
        }
        let writes = op.contains('>') && !(op.contains('&') && dest.kind() == "number");
        if writes && target.text != "-" {
            rules::write_check(self, &target, snip);
            let content = parent.and_then(|p| self.written_content(p));
            let content = match (op, content, self.recall(&target)) {
                (">>", Some(new), Some(FileSrc::Text(old))) => Some(FileSrc::Text(old + &new)),
                (">>", Some(_), Some(_)) => None,
                (_, Some(new), _) => Some(FileSrc::Text(new)),
                _ => None,
            };
            self.remember(&target, content);
        }
    }

    /// Literal text written by `echo ... > f`, `printf ... > f`, `cat <<EOF > f`.
    fn written_content(&self, stmt: Node) -> Option<String> {
        let body = match stmt.kind() {
            "redirected_statement" => stmt.child_by_field_name("body")?,
            "command" => stmt,
            _ => return None,
        };
        if body.kind() != "command" {
            return None;
        }
        let argv = self.argv(body);
        if let Some(text) = rules::stage(&argv).text {
            return Some(text + "\n");
        }
        let cat = argv.len() == 1 && argv.first().is_some_and(|a| a.is("cat"));
        let parent = (stmt != body).then_some(stmt);
        match self.stdin_of(body, parent).into_iter().next() {
            Some(Stdin::Text(t)) if cat => Some(t),
            _ => None,
        }
    }

    /// Fork bombs: a function that calls itself in a pipe or in the background.
    fn function(&mut self, n: Node) {
        let (Some(name), Some(body)) =
            (n.child_by_field_name("name"), n.child_by_field_name("body"))
        else {
            return;
        };
        let src = self.src;
        let name = words::text(src, name);
        // (node, inside a pipeline or a backgrounded statement)
        let mut stack = vec![(body, false)];
        while let Some((m, hot)) = stack.pop() {
            if hot
                && m.kind() == "command"
                && m.child_by_field_name("name").map(|c| words::text(src, c)) == Some(name)
            {
                let snip = self.snip(n);
                self.cx.hit(Class::Forbidden, "fork bomb", snip);
                return;
            }
            let mut cursor = m.walk();
            let kids: Vec<Node> = m.children(&mut cursor).collect();
            for (i, k) in kids.iter().enumerate() {
                let bg = kids.get(i + 1).is_some_and(|next| next.kind() == "&");
                stack.push((*k, hot || bg || m.kind() == "pipeline"));
            }
        }
    }

    fn stage(&self, n: Node) -> Stage {
        let cmd = match n.kind() {
            "command" => Some(n),
            "redirected_statement" => n
                .child_by_field_name("body")
                .filter(|b| b.kind() == "command"),
            _ => None,
        };
        if let Some(c) = cmd {
            let argv = self.argv(c);
            let mut stage = rules::stage(&argv);
            stage.argv = argv;
            return stage;
        }
        // Compound stage: union over the commands inside it.
        let mut out = Stage::default();
        let mut stack = vec![n];
        while let Some(m) = stack.pop() {
            if matches!(m.kind(), "command_substitution" | "process_substitution") {
                continue;
            }
            if m.kind() == "command" {
                let s = rules::stage(&self.argv(m));
                out.fetch |= s.fetch;
                out.decode |= s.decode;
                if out.consumer == rules::Consumer::None {
                    out.consumer = s.consumer;
                }
            }
            let mut cursor = m.walk();
            stack.extend(m.children(&mut cursor));
        }
        out
    }

    fn pipeline(&mut self, n: Node) {
        let mut cursor = n.walk();
        let nodes: Vec<Node> = n
            .named_children(&mut cursor)
            .filter(|c| c.kind() != "comment")
            .collect();
        let stages: Vec<Stage> = nodes.iter().map(|c| self.stage(*c)).collect();
        let snip = self.snip(n);
        self.pipe_check(&stages, snip);
    }

    /// `cat <<EOF | sh`: tree-sitter hangs the pipe under the heredoc.
    fn heredoc_pipeline(&mut self, h: Node, parent: Option<Node>) {
        let mut cursor = h.walk();
        let kids: Vec<Node> = h.children(&mut cursor).collect();
        let Some(pipe) = kids.iter().find(|k| k.kind() == "pipeline") else {
            return;
        };
        let body = kids
            .iter()
            .find(|k| k.kind() == "heredoc_body")
            .map(|b| self.text(*b).to_string())
            .unwrap_or_default();
        let Some(stmt) = parent else {
            return;
        };
        let mut first = match stmt.child_by_field_name("body") {
            Some(b) => self.stage(b),
            None => Stage::default(),
        };
        if first.text.is_none() {
            if let Some(b) = stmt
                .child_by_field_name("body")
                .filter(|b| b.kind() == "command")
            {
                let argv = self.argv(b);
                if argv.len() == 1 && argv.first().is_some_and(|a| a.is("cat")) {
                    first.text = Some(body);
                }
            }
        }
        let mut stages = vec![first];
        let mut cursor = pipe.walk();
        let rest: Vec<Node> = pipe.named_children(&mut cursor).collect();
        stages.extend(rest.iter().map(|c| self.stage(*c)));
        let snip = self.snip(stmt);
        self.pipe_check(&stages, snip);
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
