//! Wrappers (`sudo`, `env`, `nice`, `timeout`, `xargs`, `ssh`...) are peeled off
//! to reach the command they run.

use super::args::{base, is_opt, opt_value, rest, short, skip_opts};
use super::words::{self, Arg, DYN};
use super::Class;

use Class::Ask;

pub(super) type Hit = Option<(Class, &'static str)>;

pub(super) const ROOT: Hit = Some((Ask, "runs with root privileges"));
pub(super) const MAX_WRAPPERS: usize = 32;
/// Most words the wrappers of one command are peeled from, counted once per
/// wrapper (an ordinary command's few words times its one or two wrappers).
const MAX_PEELED_WORDS: usize = 16 * 1024;
pub(super) enum Peel {
    Not,
    /// `env NAME=value… CMD`: the assignments, and the command.
    Env(Hit, Vec<Arg>, Vec<Arg>),
    Argv(Hit, Vec<Arg>),
    Script(Hit, Vec<Arg>),
    NoCommand(Hit),
}

pub(super) fn wrap(hit: Hit, inner: Vec<Arg>) -> Peel {
    if inner.is_empty() {
        Peel::NoCommand(hit)
    } else {
        Peel::Argv(hit, inner)
    }
}

/// The command after peeling wrappers, plus what the wrappers themselves imply.
pub(super) struct Resolved {
    pub(super) argv: Vec<Arg>,
    pub(super) hits: Vec<(Class, &'static str)>,
    pub(super) scripts: Vec<Arg>,
    /// `NAME=value` words set for the command by `env`/`sudo`.
    pub(super) assigns: Vec<Arg>,
}

impl Resolved {
    /// A command with no wrapper: what [`resolve`] gives when nothing peels.
    pub(super) fn unwrapped(argv: Vec<Arg>) -> Resolved {
        Resolved {
            argv,
            hits: Vec::new(),
            scripts: Vec::new(),
            assigns: Vec::new(),
        }
    }
}

pub(super) fn resolve(argv: Vec<Arg>) -> Resolved {
    let mut r = Resolved::unwrapped(argv);
    // Each peel copies the words left: bounded so that a 100 KB chain of
    // wrappers (`sudo sudo sudo …`) is not copied 32 times over.
    let mut copied = 0;
    for _ in 0..MAX_WRAPPERS {
        copied += r.argv.len();
        if copied > MAX_PEELED_WORDS {
            r.hits
                .push((Ask, "too many words behind command wrappers to analyse"));
            return r;
        }
        match peel(&r.argv) {
            Peel::Not => return r,
            Peel::Argv(h, inner) => {
                r.hits.extend(h);
                r.argv = inner;
            }
            Peel::Env(h, assigns, inner) => {
                r.hits.extend(h);
                r.assigns.extend(assigns);
                if inner.is_empty() {
                    r.argv.clear();
                    return r;
                }
                r.argv = inner;
            }
            Peel::Script(h, s) => {
                r.hits.extend(h);
                r.scripts.extend(s);
                r.argv.clear();
                return r;
            }
            Peel::NoCommand(h) => {
                r.hits.extend(h);
                r.argv.clear();
                return r;
            }
        }
    }
    r.hits.push((Ask, "too many nested command wrappers"));
    r
}

pub(super) fn peel(argv: &[Arg]) -> Peel {
    let Some(first) = argv.first().filter(|a| !a.dynamic) else {
        return Peel::Not;
    };
    let args = argv.get(1..).unwrap_or(&[]);
    let find = |names: &[&str]| args.iter().position(|a| names.contains(&a.text.as_str()));
    match base(&first.text) {
        "sudo" => {
            const V: &[&str] = &[
                "-u",
                "-g",
                "-C",
                "-D",
                "-p",
                "-r",
                "-t",
                "-U",
                "-T",
                "--user",
                "--group",
                "--chdir",
                "--prompt",
                "--role",
                "--type",
                "--other-user",
            ];
            let mut i = 0;
            while let Some(t) = args.get(i).map(|a| a.text.as_str()) {
                if t == "--" {
                    i += 1;
                    break;
                }
                if is_opt(t) {
                    i += if V.contains(&t) { 2 } else { 1 };
                } else if t.contains('=') && !t.starts_with('=') {
                    i += 1;
                } else {
                    break;
                }
            }
            let assigns: Vec<Arg> = args
                .get(..i)
                .unwrap_or(&[])
                .iter()
                .filter(|a| !is_opt(&a.text) && a.text.contains('='))
                .cloned()
                .collect();
            if !assigns.is_empty() {
                return Peel::Env(ROOT, assigns, rest(args, i));
            }
            wrap(ROOT, rest(args, i))
        }
        "doas" => wrap(ROOT, rest(args, skip_opts(args, &["-u", "-C"]))),
        "pkexec" => wrap(ROOT, rest(args, skip_opts(args, &["--user"]))),
        "run0" => wrap(
            ROOT,
            rest(args, skip_opts(args, &["-u", "--user", "-D", "--chdir"])),
        ),
        name @ ("su" | "runuser") => {
            if let Some(script) = super::table::opt_values(args, &["-c", "--command"])
                .into_iter()
                .next()
            {
                return Peel::Script(ROOT, vec![script]);
            }
            if name == "runuser" && find(&["-u", "--user"]).is_some() {
                let i = skip_opts(
                    args,
                    &["-u", "--user", "-g", "--group", "-G", "-s", "--shell"],
                );
                return wrap(ROOT, rest(args, i));
            }
            Peel::NoCommand(ROOT)
        }
        "env" => {
            let mut assigns = Vec::new();
            let mut i = 0;
            while let Some(a) = args.get(i) {
                let t = a.text.as_str();
                if let Some(s) = t
                    .strip_prefix("--split-string=")
                    .or_else(|| t.strip_prefix("-S").filter(|s| !s.is_empty()))
                {
                    return split_string(
                        &Arg {
                            text: s.into(),
                            dynamic: a.dynamic,
                        },
                        rest(args, i + 1),
                    );
                }
                match t {
                    "--" => {
                        i += 1;
                        break;
                    }
                    "-S" | "--split-string" => {
                        let s = args.get(i + 1).cloned().unwrap_or_else(|| Arg::lit(""));
                        return split_string(&s, rest(args, i + 2));
                    }
                    "-u" | "--unset" | "-C" | "--chdir" | "-P" => i += 2,
                    _ if is_opt(t) => i += 1,
                    _ if t.contains('=') && !t.starts_with('=') => {
                        assigns.push(a.clone());
                        i += 1;
                    }
                    _ => break,
                }
            }
            Peel::Env(None, assigns, rest(args, i))
        }
        "nice" => wrap(None, rest(args, skip_opts(args, &["-n", "--adjustment"]))),
        "timeout" => {
            let i = skip_opts(args, &["-s", "--signal", "-k", "--kill-after"]);
            wrap(None, rest(args, i + 1))
        }
        "nohup" | "builtin" | "unbuffer" | "chronic" | "setsid" | "valgrind" => {
            wrap(None, rest(args, skip_opts(args, &[])))
        }
        "time" => wrap(
            None,
            rest(args, skip_opts(args, &["-f", "--format", "-o", "--output"])),
        ),
        "command" => {
            let i = skip_opts(args, &[]);
            let query = args
                .get(..i)
                .is_some_and(|o| o.iter().any(|a| short(&a.text, 'v') || short(&a.text, 'V')));
            if query {
                Peel::NoCommand(None)
            } else {
                wrap(None, rest(args, i))
            }
        }
        "exec" => wrap(None, rest(args, skip_opts(args, &["-a"]))),
        "stdbuf" => wrap(
            None,
            rest(
                args,
                skip_opts(args, &["-i", "-o", "-e", "--input", "--output", "--error"]),
            ),
        ),
        "ionice" => {
            if find(&["-p", "-P", "-u", "--pid", "--pgid", "--uid"]).is_some() {
                return Peel::NoCommand(None);
            }
            wrap(
                None,
                rest(
                    args,
                    skip_opts(args, &["-c", "-n", "--class", "--classdata"]),
                ),
            )
        }
        "taskset" => {
            if find(&["-p", "--pid"]).is_some() {
                return Peel::NoCommand(None);
            }
            wrap(None, rest(args, skip_opts(args, &[]) + 1))
        }
        "flock" => {
            if let Some(script) = super::table::opt_values(args, &["-c", "--command"])
                .into_iter()
                .next()
            {
                return Peel::Script(None, vec![script]);
            }
            let i = skip_opts(args, &["-w", "--timeout", "-E", "--conflict-exit-code"]);
            wrap(None, rest(args, i + 1))
        }
        "chroot" => {
            let hit = Some((Ask, "runs in another root directory (chroot)"));
            let i = skip_opts(args, &["--userspec", "--groups"]);
            wrap(hit, rest(args, i + 1))
        }
        "systemd-run" => {
            const V: &[&str] = &[
                "-u",
                "--unit",
                "-p",
                "--property",
                "--description",
                "--slice",
                "-E",
                "--setenv",
                "-M",
                "--machine",
                "-H",
                "--host",
                "--uid",
                "--gid",
                "--working-directory",
                "--on-active",
                "--on-boot",
                "--on-calendar",
                "--timer-property",
                "--path-property",
                "--socket-property",
                "--nice",
            ];
            let user = args.iter().any(|a| a.is("--user"));
            let hit = (!user).then_some((Ask, "runs the command as a system service"));
            wrap(hit, rest(args, skip_opts(args, V)))
        }
        "unshare" => {
            const V: &[&str] = &[
                "--map-user",
                "--map-group",
                "-S",
                "--setuid",
                "-G",
                "--setgid",
                "-R",
                "--root",
                "-w",
                "--wd",
                "--propagation",
                "--setgroups",
            ];
            wrap(None, rest(args, skip_opts(args, V)))
        }
        "script" => match super::table::opt_values(args, &["-c", "--command"])
            .into_iter()
            .next()
        {
            Some(cmd) => Peel::Script(None, vec![cmd]),
            None => Peel::NoCommand(None),
        },
        "xargs" => xargs(args),
        "watch" => {
            let i = skip_opts(args, &["-n", "--interval", "-q"]);
            let exec = args
                .get(..i)
                .is_some_and(|o| o.iter().any(|a| a.is("-x") || a.is("--exec")));
            let cmd = rest(args, i);
            match (exec, cmd.is_empty()) {
                (_, true) => Peel::NoCommand(None),
                (true, false) => Peel::Argv(None, cmd),
                (false, false) => Peel::Script(None, vec![words::join(&cmd)]),
            }
        }
        "ssh" => {
            const V: &[&str] = &[
                "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o",
                "-p", "-Q", "-R", "-S", "-W", "-w", "-B",
            ];
            let mut scripts: Vec<Arg> = opt_value(args, &["-o"])
                .into_iter()
                .filter_map(|o| {
                    let (k, v) = o.text.split_once(['=', ' '])?;
                    let k = k.to_ascii_lowercase();
                    (k == "proxycommand" || k == "localcommand").then(|| Arg {
                        text: v.to_string(),
                        dynamic: o.dynamic,
                    })
                })
                .collect();
            let cmd = rest(args, skip_opts(args, V) + 1);
            if !cmd.is_empty() {
                scripts.push(words::join(&cmd));
            }
            let tunnel = args.iter().any(|a| {
                a.text.starts_with("-R") || (short(&a.text, 'R') && !a.text.starts_with("--"))
            });
            let hit = tunnel.then_some((Ask, "opens a reverse tunnel into this machine"));
            if scripts.is_empty() {
                Peel::NoCommand(hit)
            } else {
                Peel::Script(hit, scripts)
            }
        }
        "busybox" => wrap(None, rest(args, 0)),
        "strace" | "ltrace" => {
            const V: &[&str] = &[
                "-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-P", "-S", "-X",
            ];
            wrap(None, rest(args, skip_opts(args, V)))
        }
        "xvfb-run" => {
            const V: &[&str] = &[
                "-n",
                "--server-num",
                "-s",
                "--server-args",
                "-f",
                "--auth-file",
                "-e",
                "--error-file",
                "-p",
                "--xauth-protocol",
                "-w",
                "--wait",
            ];
            wrap(None, rest(args, skip_opts(args, V)))
        }
        "caffeinate" => wrap(None, rest(args, skip_opts(args, &["-t", "-w"]))),
        "uv" if args.first().is_some_and(|a| a.is("run")) => {
            const V: &[&str] = &[
                "--with",
                "--python",
                "-p",
                "--project",
                "--directory",
                "--package",
                "--extra",
                "--group",
                "--env-file",
                "--index",
                "-w",
            ];
            let sub = args.get(1..).unwrap_or(&[]);
            wrap(None, rest(sub, skip_opts(sub, V)))
        }
        "poetry" | "pipenv" if args.first().is_some_and(|a| a.is("run")) => {
            wrap(None, rest(args, 1))
        }
        "bundle" if args.first().is_some_and(|a| a.is("exec")) => wrap(None, rest(args, 1)),
        name => super::table::peel(name, args).unwrap_or(Peel::Not),
    }
}

pub(super) fn split_string(s: &Arg, tail: Vec<Arg>) -> Peel {
    let mut inner: Vec<Arg> = if s.dynamic {
        vec![Arg::unknown()]
    } else {
        s.text.split_whitespace().map(Arg::lit).collect()
    };
    inner.extend(tail);
    wrap(None, inner)
}

/// `xargs` options parsed: the command it runs and its replace string, if any.
pub(super) fn xargs_parts(args: &[Arg]) -> (Vec<Arg>, Option<String>) {
    const V: &[&str] = &[
        "-a",
        "-d",
        "-E",
        "-L",
        "-n",
        "-P",
        "-s",
        "--arg-file",
        "--delimiter",
        "--eof",
        "--max-lines",
        "--max-args",
        "--max-procs",
        "--max-chars",
        "--process-slot-var",
    ];
    let mut i = 0;
    let mut replace: Option<String> = None;
    while let Some(t) = args.get(i).map(|a| a.text.as_str()) {
        if t == "--" {
            i += 1;
            break;
        }
        if !is_opt(t) {
            break;
        }
        if t == "-I" {
            replace = args.get(i + 1).map(|r| r.text.clone());
            i += 2;
            continue;
        }
        if t == "-i" || t == "--replace" {
            replace = Some("{}".into());
        } else if let Some(r) = t
            .strip_prefix("--replace=")
            .or_else(|| t.strip_prefix("-I"))
            .or_else(|| t.strip_prefix("-i"))
        {
            replace = Some(r.to_string());
        }
        i += if V.contains(&t) { 2 } else { 1 };
    }
    (rest(args, i), replace.filter(|r| !r.is_empty()))
}

/// Substitutes `input` (or the unknown) for what xargs adds to its command.
pub(super) fn xargs_inner(args: &[Arg], input: Option<&str>) -> Vec<Arg> {
    let (mut inner, replace) = xargs_parts(args);
    if inner.is_empty() {
        return inner;
    }
    let fed: Vec<Arg> = match input {
        Some(t) => t.split_whitespace().map(Arg::lit).collect(),
        None => vec![Arg::unknown()],
    };
    match replace {
        Some(r) => {
            let sub = match input {
                Some(t) => t.lines().next().unwrap_or("").trim().to_string(),
                None => DYN.to_string(),
            };
            for a in inner.iter_mut().filter(|a| a.text.contains(r.as_str())) {
                a.text = a.text.replace(r.as_str(), &sub);
                a.dynamic |= input.is_none();
            }
        }
        None => inner.extend(fed),
    }
    inner
}

pub(super) fn xargs(args: &[Arg]) -> Peel {
    wrap(None, xargs_inner(args, None))
}

/// `echo LIST | xargs CMD`: the command xargs would run with the literal input.
pub(super) fn xargs_fed(argv: &[Arg], input: &str) -> Option<Vec<Arg>> {
    let first = argv
        .first()
        .filter(|a| !a.dynamic && base(&a.text) == "xargs")?;
    let _ = first;
    let inner = xargs_inner(argv.get(1..).unwrap_or(&[]), Some(input));
    (!inner.is_empty()).then_some(inner)
}
