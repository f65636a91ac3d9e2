//! Programs that run other code: git (hooks, aliases), shells, interpreters,
//! SQL clients and package managers.

use super::args::{base, is_opt, opt_value, rest, short, split_opts, Names};
use super::rules::Consumer;
use super::words::Arg;
use super::{Class, Script};

use Class::Ask;

pub(super) static SHELLS: Names = Names::new(&[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "fish", "yash", "posh", "tcsh",
    "csh",
]);
pub(super) static SQL_CLIENTS: Names = Names::new(&[
    "psql",
    "mysql",
    "mariadb",
    "sqlite3",
    "duckdb",
    "clickhouse-client",
]);
pub(super) fn git(s: &mut Script, args: &[Arg], snip: &str) {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        match t {
            "-C" | "--git-dir" | "--work-tree" | "--namespace" | "--config-env" => i += 2,
            "-c" => {
                if let Some(kv) = args.get(i + 1) {
                    let (k, v) = kv.text.split_once('=').unwrap_or((kv.text.as_str(), ""));
                    let value = Arg {
                        text: v.to_string(),
                        dynamic: kv.dynamic,
                    };
                    git_config(s, k, &value, snip);
                }
                i += 2;
            }
            _ if is_opt(t) => i += 1,
            _ => break,
        }
    }
    let Some(sub) = args.get(i).map(|a| a.text.as_str()) else {
        return;
    };
    let rest = args.get(i + 1..).unwrap_or(&[]);
    if args.iter().any(|a| {
        let t = a.text.as_str();
        t.starts_with("ext::") || t.contains("::ext::") || t.starts_with("fd::")
    }) {
        s.cx.hit(Ask, "git URL that runs a command (ext::)", snip);
    }
    for v in opt_value(rest, &["-u", "--upload-pack", "--receive-pack", "--exec"]) {
        if matches!(
            sub,
            "clone" | "fetch" | "pull" | "push" | "ls-remote" | "archive"
        ) {
            s.nested(&v, snip);
        }
    }
    let has = |names: &[&str]| rest.iter().any(|a| names.contains(&a.text.as_str()));
    let has_short = |c: char| rest.iter().any(|a| short(&a.text, c));
    let ask = |s: &mut Script, what: &str| s.cx.hit(Ask, what, snip);
    match sub {
        "push" => {
            let forced = rest.iter().any(|a| {
                a.text.starts_with("--force") || a.is("--mirror") || a.text.starts_with('+')
            });
            if has_short('f') || forced {
                ask(s, "force push rewrites remote history");
            } else if has_short('d')
                || has(&["--delete", "--prune"])
                || rest.iter().any(|a| a.text.starts_with(':'))
            {
                ask(s, "deletes remote branches or tags");
            }
        }
        "reset" if has(&["--hard", "--merge", "--keep"]) => {
            ask(s, "git reset --hard discards uncommitted work")
        }
        "clean" if !(has(&["--dry-run"]) || has_short('n')) => {
            ask(s, "git clean deletes untracked files")
        }
        "checkout" if has(&["--", ".", "--force", "-B", ":/"]) || has_short('f') => {
            ask(s, "discards uncommitted changes");
        }
        "restore" => {
            let staged_only = has(&["--staged", "-S"]) && !has(&["--worktree", "-W"]);
            if !staged_only {
                ask(s, "discards uncommitted changes");
            }
        }
        "switch" if has(&["--discard-changes", "--force", "-f", "-C", "--force-create"]) => {
            ask(s, "discards uncommitted changes");
        }
        "branch" => {
            let delete = has_short('d') || has(&["--delete"]);
            if has_short('D') || has_short('M') || (delete && (has_short('f') || has(&["--force"])))
            {
                ask(s, "force-deletes or overwrites a branch");
            } else if !delete && (has_short('f') || has(&["--force"])) {
                ask(s, "force-moves a branch");
            }
        }
        "stash" if has(&["drop", "clear"]) => ask(s, "drops stashed work"),
        "rm" if has_short('f') || has(&["--force"]) => ask(s, "forced delete of files"),
        "filter-branch" | "filter-repo" => ask(s, "rewrites history"),
        "reflog" if has(&["expire", "delete"]) => ask(s, "deletes reflog entries"),
        "gc" if rest.iter().any(|a| a.text.starts_with("--prune")) => {
            ask(s, "prunes unreachable objects")
        }
        "update-ref" if has(&["-d"]) => ask(s, "deletes a ref"),
        "worktree" if has(&["remove"]) && (has_short('f') || has(&["--force"])) => {
            ask(s, "discards a worktree with changes");
        }
        "rebase" => {
            for cmd in opt_value(rest, &["-x", "--exec"]) {
                s.nested(&cmd, snip);
            }
        }
        "submodule" if has(&["foreach"]) => {
            let at = rest.iter().position(|a| a.is("foreach")).unwrap_or(0);
            let cmd: Vec<Arg> = rest
                .get(at + 1..)
                .unwrap_or(&[])
                .iter()
                .filter(|a| !a.is("--recursive") && !a.is("-q") && !a.is("--quiet"))
                .cloned()
                .collect();
            s.nested(&super::words::join(&cmd), snip);
        }
        "bisect" if has(&["run"]) => {
            let at = rest.iter().position(|a| a.is("run")).unwrap_or(0);
            let cmd = rest.get(at + 1..).unwrap_or(&[]).to_vec();
            if !cmd.is_empty() {
                super::rules::analyze_inner(s, cmd, snip);
            }
        }
        "difftool" | "mergetool" => {
            for cmd in opt_value(rest, &["-x", "--extcmd"]) {
                s.nested(&cmd, snip);
            }
        }
        "clone" | "submodule" | "pull" => {
            s.remote_tree = true;
            for c in opt_value(rest, &["-c", "--config"]) {
                let (k, v) = c.text.split_once('=').unwrap_or((c.text.as_str(), ""));
                let value = Arg {
                    text: v.to_string(),
                    dynamic: c.dynamic,
                };
                git_config(s, k, &value, snip);
            }
        }
        "config" => {
            let pos: Vec<&Arg> = split_opts(rest, &["-f", "--file", "--blob", "--type"]).1;
            if let (Some(k), Some(v)) = (pos.first(), pos.get(1)) {
                git_config(s, &k.text, v, snip);
            }
        }
        _ => {}
    }
}

/// `git -c key=value` / `git config key value`: values that are commands are
/// judged as commands; hook locations ask.
pub(super) fn git_config(s: &mut Script, key: &str, value: &Arg, snip: &str) {
    let k = key.to_ascii_lowercase();
    let sub_key = |prefix: &str, suffixes: &[&str]| {
        k.starts_with(prefix) && suffixes.iter().any(|s| k.ends_with(s))
    };
    let command = if k.starts_with("alias.") {
        value.text.trim_start().strip_prefix('!')
    } else if matches!(
        k.as_str(),
        "core.sshcommand"
            | "core.pager"
            | "core.editor"
            | "sequence.editor"
            | "diff.external"
            | "core.gitproxy"
            | "credential.helper"
            | "core.askpass"
            | "gpg.program"
            | "gpg.ssh.program"
            | "gpg.x509.program"
            | "web.browser"
            | "pager.log"
            | "pager.diff"
            | "pager.show"
            | "interactive.difffilter"
            | "ssh.variant"
            | "uploadpack.packobjectshook"
    ) || k.starts_with("pager.")
        || sub_key("filter.", &[".clean", ".smudge", ".process"])
        || sub_key("diff.", &[".textconv", ".command"])
        || sub_key("merge.", &[".driver"])
        || sub_key("difftool.", &[".cmd"])
        || sub_key("mergetool.", &[".cmd"])
        || sub_key("credential.", &[".helper"])
        || sub_key("browser.", &[".cmd"])
        || sub_key("man.", &[".cmd"])
    {
        Some(value.text.trim_start().trim_start_matches('!'))
    } else {
        None
    };
    if let Some(cmd) = command {
        let cmd = Arg {
            text: cmd.to_string(),
            dynamic: value.dynamic,
        };
        if !k.starts_with("alias.") && !super::flow::ordinary_helper(&cmd) {
            s.cx.hit(Ask, "git configuration that runs a command", snip);
        }
        s.nested(&cmd, snip);
    } else if matches!(
        k.as_str(),
        "core.hookspath" | "include.path" | "core.worktree" | "protocol.allow" | "safe.directory"
    ) || k.starts_with("includeif.")
        || (k.starts_with("protocol.") && k.ends_with(".allow") && value.text == "always")
        || (k.starts_with("url.") && k.ends_with("insteadof"))
        || (k == "core.fsmonitor" && !matches!(value.text.as_str(), "true" | "false"))
    {
        s.cx.hit(
            Ask,
            "git configuration that runs hooks or redirects sources",
            snip,
        );
    }
}

pub(super) enum ShellMode {
    Command(Arg),
    File(Arg),
    Stdin,
    Missing,
}

pub(super) fn shell_mode(args: &[Arg]) -> ShellMode {
    let mut c_mode = false;
    let mut s_mode = false;
    let mut i = 0;
    while let Some(t) = args.get(i).map(|a| a.text.as_str()) {
        if t == "--" || t == "-" {
            i += 1;
            break;
        }
        if t.contains(char::is_whitespace) {
            // Not an option (the shell would reject it): judge it as the script.
            break;
        }
        if let Some(cmd) = t.strip_prefix("--command=") {
            return ShellMode::Command(Arg {
                text: cmd.into(),
                dynamic: args.get(i).is_some_and(|a| a.dynamic),
            });
        }
        if t == "--command" {
            c_mode = true;
            i += 1;
            break;
        }
        if matches!(t, "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file") {
            i += 2;
            continue;
        }
        if t.starts_with("--") {
            i += 1;
            continue;
        }
        if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
            c_mode |= short(t, 'c');
            s_mode |= short(t, 's');
            i += 1;
            continue;
        }
        break;
    }
    match (c_mode, args.get(i)) {
        (false, _) if s_mode => ShellMode::Stdin,
        (true, Some(script)) => ShellMode::Command(script.clone()),
        (true, None) => ShellMode::Missing,
        (false, Some(f)) if f.is("/dev/stdin") => ShellMode::Stdin,
        (false, Some(f)) => ShellMode::File(f.clone()),
        (false, None) => ShellMode::Stdin,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    Python,
    Perl,
    Ruby,
    Node,
    Php,
    Lua,
    R,
}

pub(super) fn interp_lang(name: &str) -> Option<Lang> {
    if name.starts_with("python") || name.starts_with("pypy") {
        return Some(Lang::Python);
    }
    Some(match name {
        "perl" => Lang::Perl,
        "ruby" => Lang::Ruby,
        "node" | "nodejs" => Lang::Node,
        "php" => Lang::Php,
        "lua" | "luajit" => Lang::Lua,
        "Rscript" => Lang::R,
        _ => return None,
    })
}

pub(super) enum Prog {
    Code(Vec<Arg>),
    File(Arg),
    Module(Vec<Arg>),
    Stdin,
}

pub(super) fn interp_mode(lang: Lang, args: &[Arg]) -> Prog {
    let (code_flags, value_flags): (&[&str], &[&str]) = match lang {
        Lang::Python => (&["-c"], &["-W", "-X", "-Q"]),
        Lang::Perl => (&["-e", "-E"], &["-I", "-M", "-m"]),
        Lang::Ruby => (&["-e"], &["-r", "-I", "-C"]),
        Lang::Node => (
            &["-e", "--eval", "-p", "--print"],
            &["-r", "--require", "--import", "--loader"],
        ),
        Lang::Php => (&["-r"], &["-d", "-c", "-z"]),
        Lang::Lua => (&["-e"], &["-l"]),
        Lang::R => (&["-e"], &[]),
    };
    let bundles_code = matches!(lang, Lang::Perl | Lang::Ruby);
    let mut code = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        if t == "-" {
            return Prog::Stdin;
        }
        if t == "--" || !is_opt(t) {
            i -= usize::from(t != "--");
            break;
        }
        if lang == Lang::Python && t == "-m" {
            return Prog::Module(rest(args, i));
        }
        if lang == Lang::Php && t == "-f" {
            return args.get(i).cloned().map_or(Prog::Stdin, Prog::File);
        }
        // `-Ic CODE`, `-ne CODE`, `-nr CODE`: a bundle of short flags whose
        // last letter takes the code reads like the separate forms.
        let code_letters: &[char] = match lang {
            Lang::Python => &['c'],
            Lang::Perl => &['e', 'E'],
            Lang::Ruby | Lang::Lua | Lang::R => &['e'],
            Lang::Node => &['e', 'p'],
            Lang::Php => &['r'],
        };
        let short_bundle = !t.starts_with("--")
            && t.len() > 2
            && t.chars().skip(1).all(|c| c.is_ascii_alphabetic());
        let bundled =
            (bundles_code || short_bundle) && !t.starts_with("--") && t.ends_with(code_letters);
        if code_flags.contains(&t) || bundled {
            if let Some(c) = args.get(i) {
                code.push(c.clone());
                i += 1;
            }
        } else if lang == Lang::Python && t.starts_with("-c") {
            code.push(Arg {
                text: t.get(2..).unwrap_or("").into(),
                dynamic: a.dynamic,
            });
        } else if value_flags.contains(&t) {
            i += 1;
        }
    }
    if !code.is_empty() {
        return Prog::Code(code);
    }
    match args.get(i) {
        Some(f) => Prog::File(f.clone()),
        None => Prog::Stdin,
    }
}

pub(super) fn interp(s: &mut Script, lang: Lang, args: &[Arg], snip: &str) {
    match interp_mode(lang, args) {
        Prog::Code(code) if code.iter().any(|c| c.dynamic) => {
            s.cx.hit(Ask, "interpreter runs code built at run time", snip);
        }
        Prog::Code(code) => {
            for c in code {
                s.code_check(&c.text, snip);
            }
        }
        Prog::File(f) if f.dynamic => {
            s.cx.hit(Ask, "interpreter runs a script produced at run time", snip)
        }
        Prog::File(f) => match s.recall(&f) {
            Some(super::FileSrc::Remote) => s.cx.hit(Ask, "runs a downloaded script", snip),
            Some(super::FileSrc::Text(t)) => s.code_check(&t, snip),
            None => {}
        },
        Prog::Module(m) if m.first().is_some_and(|a| a.is("pip")) => {
            if let Some(what) = pip(m.get(1..).unwrap_or(&[])) {
                s.cx.hit(Ask, what, snip);
            }
        }
        Prog::Module(m) if m.first().is_some_and(|a| a.is("http.server")) => {
            let dirs = opt_value(&m, &["-d", "--directory"]);
            let public = opt_value(&m, &["-b", "--bind"])
                .iter()
                .any(|b| b.is("0.0.0.0") || b.is("::"));
            if public
                || dirs.iter().any(|d| {
                    d.dynamic
                        || super::paths::is_critical(&d.text)
                        || super::flow::secret_path(&d.text)
                })
            {
                s.cx.hit(Ask, "serves files over the network", snip);
            }
        }
        _ => {}
    }
}

pub(super) fn consumer(argv: &[Arg]) -> Consumer {
    let Some(first) = argv.first().filter(|a| !a.dynamic) else {
        return Consumer::None;
    };
    let name = base(&first.text);
    let args = argv.get(1..).unwrap_or(&[]);
    if SHELLS.contains(name) {
        if matches!(shell_mode(args), ShellMode::Stdin) {
            return Consumer::Shell;
        }
    } else if name == "source" || name == "." {
        if args
            .first()
            .is_some_and(|a| a.is("/dev/stdin") || a.is("/proc/self/fd/0"))
        {
            return Consumer::Shell;
        }
    } else if let Some(lang) = interp_lang(name) {
        if matches!(interp_mode(lang, args), Prog::Stdin) {
            return Consumer::Interp;
        }
    } else if SQL_CLIENTS.contains(name) && sql_args(name, args).1 {
        return Consumer::Sql;
    } else if matches!(name, "mongo" | "mongosh")
        && !args
            .iter()
            .any(|a| a.is("--eval") || a.text.ends_with(".js"))
    {
        return Consumer::Mongo;
    } else if matches!(name, "at" | "batch")
        && !args.iter().any(|a| {
            matches!(
                a.text.as_str(),
                "-f" | "-l" | "-r" | "-d" | "-c" | "-V" | "--help" | "--version"
            )
        })
    {
        // `at` and `batch` run the script they read on stdin later.
        return Consumer::Shell;
    }
    Consumer::None
}

/// SQL given on the command line, and whether the client reads stdin instead.
pub(super) fn sql_args(name: &str, args: &[Arg]) -> (Vec<Arg>, bool) {
    match name {
        "psql" => {
            let sql = opt_value(args, &["-c", "--command"]);
            let other = args.iter().any(|a| {
                matches!(
                    a.text.as_str(),
                    "-f" | "--file" | "-l" | "--list" | "-V" | "--version"
                )
            });
            let stdin = sql.is_empty() && !other;
            (sql, stdin)
        }
        "mysql" | "mariadb" => {
            let sql = opt_value(args, &["-e", "--execute"]);
            let stdin = sql.is_empty();
            (sql, stdin)
        }
        "clickhouse-client" => {
            let sql = opt_value(args, &["-q", "--query"]);
            let stdin = sql.is_empty();
            (sql, stdin)
        }
        _ => {
            // sqlite3 / duckdb: DB [SQL...]
            let mut sql = opt_value(args, &["-cmd"]);
            let (_, pos) = split_opts(
                args,
                &[
                    "-cmd",
                    "-separator",
                    "-newline",
                    "-nullvalue",
                    "-init",
                    "-c",
                ],
            );
            sql.extend(pos.iter().skip(1).map(|a| (*a).clone()));
            let stdin = sql.is_empty();
            (sql, stdin)
        }
    }
}

pub(super) fn sql_check(s: &mut Script, sql: &Arg, snip: &str) {
    if sql.dynamic {
        s.cx.hit(Ask, "runs SQL built at run time", snip);
    } else if let Some(what) = sql_danger(&sql.text) {
        s.cx.hit(Ask, what, snip);
    }
}

pub(super) fn sql_danger(sql: &str) -> Option<&'static str> {
    // Client meta-commands that reach the shell or the file system.
    for line in sql.lines() {
        let l = line.trim_start().to_ascii_lowercase();
        if l.starts_with("\\!")
            || l.starts_with(".shell")
            || l.starts_with(".system")
            || l.starts_with("system ")
            || l.starts_with("\\system")
            || ((l.starts_with("\\o")
                || l.starts_with("\\g")
                || l.starts_with(".once")
                || l.starts_with(".output")
                || l.starts_with("\\copy")
                || l.starts_with(".import")
                || l.starts_with("\\w")
                || l.starts_with("\\setenv"))
                && l.contains('|'))
            || l.starts_with(".load")
            || l.starts_with("\\lo_export")
        {
            return Some("SQL client runs a shell command or writes files");
        }
    }
    let lower = strip_sql(&sql.to_ascii_lowercase());
    for stmt in lower.split(';') {
        let words: Vec<&str> = stmt
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        let has = |w: &str| words.contains(&w);
        // Skip a leading CTE: `WITH x AS (...) DELETE ...`.
        let verb = words
            .iter()
            .copied()
            .find(|w| {
                matches!(
                    *w,
                    "drop"
                        | "truncate"
                        | "delete"
                        | "update"
                        | "alter"
                        | "copy"
                        | "select"
                        | "insert"
                        | "grant"
                        | "revoke"
                        | "create"
                        | "load"
                        | "vacuum"
                        | "call"
                        | "do"
                        | "merge"
                        | "replace"
                        | "rename"
                        | "shutdown"
                        | "reindex"
                        | "attach"
                )
            })
            .unwrap_or("");
        let narrow = where_narrow(&words);
        match verb {
            "drop" => return Some("destructive SQL (DROP)"),
            "truncate" => return Some("destructive SQL (TRUNCATE)"),
            "delete" if !narrow => return Some("destructive SQL (DELETE without a narrow WHERE)"),
            "update" if !narrow => return Some("destructive SQL (UPDATE without a narrow WHERE)"),
            "alter"
                if has("drop")
                    || has("rename")
                    || has("owner")
                    || has("superuser")
                    || has("password") =>
            {
                return Some("destructive SQL (ALTER ... DROP)")
            }
            "shutdown" => return Some("SQL shuts the server down"),
            "grant" | "revoke" => return Some("SQL changes permissions"),
            "create"
                if has("user")
                    || has("role")
                    || has("extension")
                    || has("function") && has("language") =>
            {
                return Some("SQL creates users, roles, extensions or functions")
            }
            "attach" => return Some("SQL attaches another database file"),
            _ => {}
        }
        if has("program") && (has("copy") || has("to") || has("from")) {
            return Some("SQL runs a shell command (COPY ... PROGRAM)");
        }
        if [
            "pg_read_file",
            "pg_write_file",
            "lo_import",
            "lo_export",
            "load_file",
            "outfile",
            "dumpfile",
            "xp_cmdshell",
            "sys_exec",
            "pg_terminate_backend",
            "dblink",
            "load_extension",
            "writefile",
            "readfile",
        ]
        .iter()
        .any(|f| stmt.contains(f))
        {
            return Some("SQL reaches the file system, processes or the shell");
        }
        if words.windows(2).any(|w| w == ["delete", "from"]) && !narrow {
            return Some("destructive SQL (DELETE without a narrow WHERE)");
        }
    }
    None
}

/// SQL without comments and string literals (lowercase input).
fn strip_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                out.push(' ');
            }
            '\'' => {
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                }
                out.push_str(" 's' ");
            }
            c => out.push(c),
        }
    }
    out
}

/// A WHERE clause that actually narrows (not `1=1`, `true`, `1`, `x=x`, `OR 1=1`).
fn where_narrow(words: &[&str]) -> bool {
    let Some(at) = words.iter().position(|w| *w == "where") else {
        return false;
    };
    let clause: String = words.get(at + 1..).unwrap_or(&[]).join("");
    if clause.is_empty() {
        return false;
    }
    let trivial = [
        "1=1", "true", "1", "0=0", "1<>0", "1!=0", "notfalse", "'s'='s'", "1>0", "2>1",
    ];
    if trivial
        .iter()
        .any(|t| clause == *t || clause.contains(&format!("or{t}")))
    {
        return false;
    }
    if let Some((a, b)) = clause.split_once('=') {
        if a == b {
            return false;
        }
    }
    true
}

pub(super) fn pip(args: &[Arg]) -> Option<&'static str> {
    let verb = split_opts(args, &[]).1.first().map(|a| a.text.as_str());
    if verb == Some("config")
        && args
            .iter()
            .any(|a| a.is("set") || a.is("edit") || a.is("unset"))
    {
        return Some("changes pip configuration (package index)");
    }
    let installs = matches!(
        verb,
        Some("install" | "download" | "wheel" | "add" | "sync" | "compile")
    );
    if installs
        && args.iter().any(|a| {
            let t = a.text.as_str();
            matches!(
                t,
                "-i" | "--index-url"
                    | "--extra-index-url"
                    | "-f"
                    | "--find-links"
                    | "--trusted-host"
                    | "--index"
                    | "--default-index"
            ) || t.starts_with("--index-url=")
                || t.starts_with("--extra-index-url=")
                || t.starts_with("--find-links=")
                || t.starts_with("--trusted-host=")
                || t.starts_with("--index=")
                || t.starts_with("--default-index=")
        })
    {
        return Some("installs from another package index");
    }
    if installs
        && args.iter().any(|a| {
            let t = a.text.as_str();
            t.starts_with("git+")
                || t.contains("://")
                || t.contains(" @ ")
                || t.starts_with("hg+")
                || t.starts_with("svn+")
        })
    {
        return Some("installs a package from a URL or git");
    }
    let system = args.iter().any(|a| {
        matches!(
            a.text.as_str(),
            "--user"
                | "--break-system-packages"
                | "--system"
                | "--prefix"
                | "--root"
                | "--target"
                | "-t"
        ) || a.text.starts_with("--prefix=")
            || a.text.starts_with("--root=")
            || a.text.starts_with("--target=")
    });
    (matches!(verb, Some("install" | "uninstall")) && system)
        .then_some("installs Python packages outside the project environment")
}

/// Installs or removals outside the project (system or user-wide).
pub(super) fn package_install(name: &str, args: &[Arg]) -> Option<&'static str> {
    const SYSTEM: &str = "installs or removes system packages";
    const TOOL: &str = "installs a tool outside the project";
    // Most commands are none of the programs below: no options to read.
    if !(system_package_manager(name)
        || name.starts_with("pip")
        || matches!(
            name,
            "poetry"
                | "pdm"
                | "rye"
                | "uv"
                | "npm"
                | "pnpm"
                | "bun"
                | "yarn"
                | "cargo"
                | "gem"
                | "go"
                | "deno"
        ))
    {
        return None;
    }
    let pos = split_opts(
        args,
        &[
            "-o",
            "-t",
            "-c",
            "--option",
            "--target-release",
            "--config-file",
        ],
    )
    .1;
    let verb = pos.first().map(|a| a.text.as_str()).unwrap_or("");
    let not_in = |safe: &[&str]| !verb.is_empty() && !safe.contains(&verb);
    let global = args
        .iter()
        .any(|a| a.is("-g") || a.is("--global") || a.is("--location=global"));
    let hit = match name {
        "apt" | "apt-get" | "aptitude" => not_in(&[
            "list",
            "search",
            "show",
            "showsrc",
            "policy",
            "depends",
            "rdepends",
            "changelog",
            "help",
            "moo",
            "check",
            "madison",
            "why",
            "why-not",
            "download",
            "source",
        ]),
        "yum" | "dnf" | "microdnf" | "zypper" | "apk" | "snap" | "flatpak" | "port" | "pkg" => {
            not_in(&[
                "list",
                "info",
                "search",
                "se",
                "provides",
                "repolist",
                "check-update",
                "history",
                "deplist",
                "repoquery",
                "lr",
                "repos",
                "lu",
                "list-updates",
                "if",
                "policy",
                "stats",
                "version",
                "find",
                "changes",
                "remotes",
                "installed",
                "outdated",
                "deps",
                "help",
            ])
        }
        "brew" => not_in(&[
            "list",
            "ls",
            "search",
            "info",
            "outdated",
            "deps",
            "uses",
            "doctor",
            "config",
            "--prefix",
            "--version",
            "home",
            "leaves",
            "desc",
            "cat",
            "log",
            "shellenv",
            "help",
            "--cache",
        ]),
        "pacman" | "yay" | "paru" => args.iter().any(|a| {
            let t = a.text.as_str();
            (t.starts_with("-S") && !t.chars().skip(2).all(|c| "silgq".contains(c)))
                || t == "-S"
                || t.starts_with("-R")
                || t.starts_with("-U")
                || t.starts_with("-D")
                || t.starts_with("--sync")
                || t.starts_with("--remove")
                || t.starts_with("--upgrade")
        }),
        "dpkg" => args.iter().any(|a| {
            matches!(
                a.text.as_str(),
                "-i" | "-r"
                    | "-P"
                    | "--install"
                    | "--remove"
                    | "--purge"
                    | "--configure"
                    | "--unpack"
            )
        }),
        "rpm" => args.iter().any(|a| {
            let t = a.text.as_str();
            t.starts_with("-i")
                || t.starts_with("-U")
                || t.starts_with("-F")
                || t.starts_with("-e")
                || matches!(t, "--install" | "--upgrade" | "--erase" | "--freshen")
        }),
        "nix-env" => args.iter().any(|a| {
            matches!(
                a.text.as_str(),
                "-i" | "--install" | "-e" | "--uninstall" | "-u" | "--upgrade"
            )
        }),
        "emerge" => !args.iter().any(|a| {
            matches!(
                a.text.as_str(),
                "-s" | "--search" | "-p" | "--pretend" | "--info"
            )
        }),
        n if n.starts_with("pip") && n != "pipx" && n != "pipenv" => return pip(args),
        "pipx" => matches!(
            verb,
            "install" | "uninstall" | "upgrade" | "reinstall-all" | "uninstall-all"
        ),
        "poetry" | "pdm" | "rye" if verb == "add" => return pip(args),
        "uv" => match verb {
            "pip" => return pip(args.get(1..).unwrap_or(&[])),
            "add" => return pip(args),
            "tool" => pos
                .get(1)
                .is_some_and(|a| matches!(a.text.as_str(), "install" | "uninstall" | "upgrade")),
            _ => false,
        },
        "npm" | "pnpm" | "bun" => {
            global
                && matches!(
                    verb,
                    "install"
                        | "i"
                        | "add"
                        | "uninstall"
                        | "remove"
                        | "rm"
                        | "un"
                        | "update"
                        | "up"
                        | "link"
                        | "ln"
                )
        }
        "yarn" => {
            verb == "global"
                && pos
                    .get(1)
                    .is_some_and(|a| matches!(a.text.as_str(), "add" | "remove" | "upgrade"))
        }
        "cargo" => {
            matches!(verb, "install" | "uninstall" | "binstall")
                || (matches!(verb, "add" | "update" | "build" | "fetch")
                    && args.iter().any(|a| {
                        a.is("--git")
                            || a.text.starts_with("--git=")
                            || a.is("--index")
                            || a.is("--registry")
                    })
                    && verb == "add")
        }
        "gem" => matches!(verb, "install" | "uninstall" | "update"),
        "go" => {
            matches!(verb, "install" | "run") && pos.iter().skip(1).any(|a| a.text.contains('@'))
        }
        "deno" => {
            verb == "install" || (verb == "run" && pos.iter().any(|a| a.text.starts_with("http")))
        }
        _ => false,
    };
    let system_pm = system_package_manager(name);
    hit.then_some(if system_pm { SYSTEM } else { TOOL })
}

/// The system package managers of [`package_install`].
fn system_package_manager(name: &str) -> bool {
    matches!(
        name,
        "apt"
            | "apt-get"
            | "aptitude"
            | "yum"
            | "dnf"
            | "microdnf"
            | "zypper"
            | "apk"
            | "snap"
            | "flatpak"
            | "port"
            | "pkg"
            | "brew"
            | "pacman"
            | "yay"
            | "paru"
            | "dpkg"
            | "rpm"
            | "nix-env"
            | "emerge"
    )
}

/// Contents of the quoted strings ('..', "..", `..`) in program text.
pub(super) fn quoted_strings(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        if !matches!(c, '\'' | '"' | '`') {
            continue;
        }
        let mut lit = String::new();
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == '\\' {
                if let Some(e) = chars.next() {
                    lit.push(e);
                }
            } else if d == c {
                closed = true;
                break;
            } else {
                lit.push(d);
            }
        }
        if closed && !lit.is_empty() {
            out.push(lit);
        }
    }
    out
}
