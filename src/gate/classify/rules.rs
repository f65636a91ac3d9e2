//! What each simple command does: after its wrappers are peeled, the command is
//! judged by name and arguments (deletes, writes, disks, processes, services...),
//! and pipelines are checked for content that ends up run as a program.

use super::args::{base, is_opt, opt_value, short, split_opts, Names};
use super::flow::{self, EnvRisk};
use super::paths;
use super::programs::{
    consumer, git, interp, interp_lang, package_install, shell_mode, sql_args, sql_check,
    ShellMode, SHELLS, SQL_CLIENTS,
};
use super::table;
use super::words::{self, Arg, DYN};
use super::wrappers::{peel, resolve, Peel, Resolved};
use super::{Class, Script, Stage, Stdin};

use Class::{Ask, Forbidden};

/// How a command uses its standard input as a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Consumer {
    #[default]
    None,
    /// A shell reading its script from stdin.
    Shell,
    /// An interpreter (python, perl, node...) reading its program from stdin.
    Interp,
    /// An SQL client reading statements from stdin.
    Sql,
    /// A MongoDB shell reading JavaScript from stdin.
    Mongo,
}

static FETCHERS: Names = Names::new(&[
    "curl", "wget", "fetch", "aria2c", "http", "https", "xh", "nc", "ncat", "netcat", "socat",
    "ssh", "lynx", "w3m", "GET",
]);
static ADMIN: Names = Names::new(&[
    "mount",
    "umount",
    "swapon",
    "swapoff",
    "insmod",
    "rmmod",
    "modprobe",
    "iptables",
    "ip6tables",
    "nft",
    "ufw",
    "firewall-cmd",
    "useradd",
    "userdel",
    "usermod",
    "groupadd",
    "groupdel",
    "passwd",
    "chpasswd",
    "chsh",
    "visudo",
    "setenforce",
    "fdisk",
    "sfdisk",
    "parted",
    "gdisk",
    "sgdisk",
    "cfdisk",
    "kexec",
    "fsck",
    "losetup",
    "cryptsetup",
    "mdadm",
    "lvremove",
    "vgremove",
    "pvremove",
    "update-grub",
    "grub-install",
    "efibootmgr",
]);
const MAX_EXEC_NEST: usize = 8;

/// Judges one simple command (after word evaluation).
pub(super) fn analyze(s: &mut Script, argv: Vec<Arg>, stdin: &[Stdin], snip: &str) {
    judge(s, resolve(argv), stdin, snip);
}

/// [`analyze`] for a command already found to have no wrapper (a pipeline
/// stage's [`Stage::unwrapped`]): its words are not peeled a second time.
pub(super) fn analyze_unwrapped(s: &mut Script, argv: Vec<Arg>, stdin: &[Stdin], snip: &str) {
    judge(s, Resolved::unwrapped(argv), stdin, snip);
}

/// Judges a command with its wrappers peeled.
fn judge(s: &mut Script, r: Resolved, stdin: &[Stdin], snip: &str) {
    for (class, what) in &r.hits {
        s.cx.hit(*class, what, snip);
    }
    for script in &r.scripts {
        s.nested(script, snip);
    }
    for a in &r.assigns {
        if let Some((name, value)) = a.text.split_once('=') {
            let value = Arg {
                text: value.to_string(),
                dynamic: a.dynamic,
            };
            env_assign(s, name, &value, snip);
        }
    }
    let Some(first) = r.argv.first() else {
        return;
    };
    if first.text.contains('/') {
        s.run_file(first, snip);
    }
    secrets_leaving(s, &r.argv, snip);
    check(s, &r.argv, snip);
    match consumer(&r.argv) {
        Consumer::Shell => {
            for src in stdin {
                match src {
                    Stdin::Text(t) => s.nested(&Arg::lit(t), snip),
                    Stdin::Generated => {
                        s.cx.hit(Ask, "shell reads a script produced by a command", snip)
                    }
                }
            }
        }
        Consumer::Interp => {
            for src in stdin {
                match src {
                    Stdin::Text(t) => s.code_check(t, snip),
                    Stdin::Generated => {
                        s.cx.hit(Ask, "interpreter reads code produced by a command", snip)
                    }
                }
            }
        }
        Consumer::Sql => {
            for src in stdin {
                if let Stdin::Text(t) = src {
                    sql_check(s, &Arg::lit(t), snip);
                }
            }
        }
        Consumer::Mongo => {
            for src in stdin {
                if let Stdin::Text(t) = src {
                    if table::mongo_danger(t) {
                        s.cx.hit(Ask, "destructive database command", snip);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Most words of a command another command runs that are judged: each
/// nesting level copies them, so `find . -exec find . -exec …` over 100 KB
/// took ~100 ms. A real inner command has a few words.
const MAX_INNER_WORDS: usize = 1024;

/// False (and the verdict asks) when an inner command is too long to judge;
/// otherwise its words are charged to the work budget.
pub(super) fn inner_fits(s: &mut Script, argv: &[Arg], snip: &str) -> bool {
    if argv.len() > MAX_INNER_WORDS {
        s.cx.hit(Ask, "a command run by another is too long to analyse", snip);
        return false;
    }
    let size: usize = argv.iter().map(|a| a.text.len() + 1).sum();
    s.cx.charge(size)
}

/// Judges a command another command runs (`ip netns exec`, `git bisect run`,
/// `X -- CMD`), with the nesting bounded.
pub(super) fn analyze_inner(s: &mut Script, argv: Vec<Arg>, snip: &str) {
    if s.nest >= MAX_EXEC_NEST {
        s.cx.hit(Ask, "commands nested too deeply to analyse", snip);
        return;
    }
    if !inner_fits(s, &argv, snip) {
        return;
    }
    s.nest += 1;
    analyze(s, argv, &[], snip);
    s.nest -= 1;
}

pub(super) fn write_check(s: &mut Script, target: &Arg, snip: &str) {
    if !s.cx.charge(super::WRITE_UNITS + target.text.len()) {
        return;
    }
    let target = s.path(target);
    if let Some((class, what)) = write_danger(s, &target.text) {
        s.cx.hit(class, what, snip);
    }
}

/// What writing to `text` (already joined onto the script's directory) risks:
/// the path rules, persistence, and the same through a link the script made.
pub(super) fn write_danger(s: &Script, text: &str) -> Option<(Class, &'static str)> {
    let key = paths::key(text);
    let mut worst = paths::write_danger(text).or_else(|| flow::persist_danger(&key));
    let mut through_link = |target: &str| {
        let found =
            paths::write_danger(target).or_else(|| flow::persist_danger(&paths::key(target)));
        if let Some(f) = found {
            if worst.is_none_or(|w| f.0 > w.0) {
                worst = Some(f);
            }
        }
    };
    for (link, target) in s.links.iter().take(64) {
        if key == *link {
            through_link(target);
        } else if let Some(rest) = key
            .strip_prefix(link.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            through_link(&format!("{target}/{rest}"));
        }
    }
    worst
}

/// `NAME=value` in a command's environment (`VAR=x cmd`, `env VAR=x cmd`,
/// `export VAR=x`): values run as commands are judged; injections ask.
pub(super) fn env_assign(s: &mut Script, name: &str, value: &Arg, snip: &str) {
    match flow::env_risk(name, &value.text) {
        EnvRisk::None => {}
        EnvRisk::Command => {
            if !flow::ordinary_helper(value) {
                s.cx.hit(Ask, "sets a command that a program will run", snip);
            }
            s.nested(value, snip);
        }
        EnvRisk::Ask(what) => s.cx.hit(Ask, what, snip),
    }
}

/// A network tool whose command line names a secret file, dumps the
/// environment, or uses a variable read from a secret.
fn secrets_leaving(s: &mut Script, argv: &[Arg], snip: &str) {
    let Some(name) = argv.first().filter(|a| !a.dynamic).map(|a| base(&a.text)) else {
        return;
    };
    if !flow::NETWORK.contains(name) {
        return;
    }
    // An identity file names a key without sending it.
    let mut text = snip.to_string();
    if matches!(name, "ssh" | "scp" | "sftp" | "rsync" | "git") {
        for v in opt_value(argv, &["-i"]) {
            text = text.replace(&v.text, " ");
        }
    }
    if flow::mentions_secret(&text) || flow::mentions_var(&text, &s.secret_vars) {
        s.cx.hit(
            Ask,
            "sends secrets or the environment over the network",
            snip,
        );
    }
}

/// Names `check` judges with its own arm (so they are not "unknown").
pub(super) fn handled(name: &str) -> bool {
    static NAMES: Names = Names::new(&[
        "rm",
        "unlink",
        "rmdir",
        "mv",
        "cp",
        "install",
        "ln",
        "rsync",
        "scp",
        "tee",
        "dd",
        "shred",
        "wipe",
        "srm",
        "truncate",
        "sed",
        "chmod",
        "chown",
        "chgrp",
        "find",
        "mkswap",
        "wipefs",
        "blkdiscard",
        "shutdown",
        "reboot",
        "halt",
        "poweroff",
        "init",
        "telinit",
        "systemctl",
        "service",
        "loginctl",
        "kill",
        "pkill",
        "killall",
        "skill",
        "xkill",
        "slay",
        "killall5",
        "git",
        "cd",
        "pushd",
        "awk",
        "gawk",
        "mawk",
        "nawk",
        "eval",
        "source",
        ".",
        "alias",
        "trap",
        "read",
        "mapfile",
        "readarray",
        "crontab",
        "sysctl",
        "curl",
        "wget",
        "tar",
        "unzip",
        "nc",
        "ncat",
        "netcat",
        "socat",
        "export",
        "declare",
        "typeset",
        "local",
        "readonly",
        "at",
        "batch",
        "watch",
        "sudo",
        "doas",
        "env",
        "nice",
        "timeout",
        "nohup",
        "time",
        "command",
        "exec",
        "stdbuf",
        "ionice",
        "taskset",
        "chroot",
        "systemd-run",
        "unshare",
        "script",
        "xargs",
        "ssh",
        "busybox",
        "strace",
        "ltrace",
        "xvfb-run",
        "caffeinate",
        "su",
        "runuser",
        "pkexec",
        "run0",
        "builtin",
        "unbuffer",
        "chronic",
        "setsid",
        "valgrind",
        "uv",
        "poetry",
        "pipenv",
    ]);
    NAMES.contains(name) || ADMIN.contains(name) || name.starts_with("mkfs")
}

fn check(s: &mut Script, argv: &[Arg], snip: &str) {
    let Some(first) = argv.first() else {
        return;
    };
    if first.dynamic {
        s.cx.hit(Ask, "command name is not a literal", snip);
        return;
    }
    let name = base(&first.text);
    if name.contains(['*', '?', '[']) && name != "[" && name != "[[" {
        s.cx.hit(Ask, "command name is a glob", snip);
        return;
    }
    let args = argv.get(1..).unwrap_or(&[]);
    let hit = |s: &mut Script, class: Class, what: &str| s.cx.hit(class, what, snip);
    if let Some(p) = table::find(name) {
        table::apply(s, p, args, snip);
    }
    match name {
        "rm" | "unlink" => rm(s, args, snip),
        "rmdir" => {
            if args.iter().any(|a| paths::is_critical(&a.text)) {
                hit(
                    s,
                    Forbidden,
                    "deletes /, a system directory or a home directory",
                );
            }
        }
        "mv" => mv(s, args, snip),
        "ln" => {
            link(s, args);
            copy(s, args, snip);
        }
        "cp" | "install" => copy(s, args, snip),
        "rsync" | "scp" => {
            let (shell, values): (&[&str], &[&str]) = if name == "rsync" {
                (
                    &["-e", "--rsh"],
                    &[
                        "-e",
                        "--rsh",
                        "-f",
                        "--filter",
                        "--exclude",
                        "--include",
                        "-T",
                        "--temp-dir",
                    ],
                )
            } else {
                (&["-S"], &["-P", "-i", "-F", "-o", "-l", "-c", "-J", "-S"])
            };
            for cmd in opt_value(args, shell) {
                s.nested(&cmd, snip);
            }
            if args
                .iter()
                .any(|a| a.text.starts_with("--delete") || a.is("--remove-source-files"))
            {
                hit(s, Ask, "rsync deletes files");
            }
            let (_, pos) = split_opts(args, values);
            if let Some(dest) = pos
                .last()
                .filter(|d| pos.len() > 1 && !d.text.contains(':'))
            {
                write_check(s, dest, snip);
            }
        }
        "tee" => {
            let (_, pos) = split_opts(args, &[]);
            for t in pos {
                write_check(s, t, snip);
            }
        }
        "dd" => {
            hit(s, Ask, "raw copy with dd");
            for a in args {
                if let Some(of) = a.text.strip_prefix("of=") {
                    write_check(
                        s,
                        &Arg {
                            text: of.into(),
                            dynamic: a.dynamic,
                        },
                        snip,
                    );
                }
            }
        }
        "shred" | "wipe" | "srm" => {
            if args.iter().any(|a| paths::is_raw_disk(&a.text)) {
                hit(s, Forbidden, "overwrites a raw disk device");
            }
            hit(s, Ask, "irreversibly overwrites files");
        }
        "truncate" => {
            let (_, pos) = split_opts(args, &["-s", "--size", "-r", "--reference"]);
            for t in pos {
                write_check(s, t, snip);
            }
        }
        "sed" => {
            let (opts, pos) = split_opts(
                args,
                &["-e", "--expression", "-f", "--file", "-l", "--line-length"],
            );
            if opts
                .iter()
                .any(|o| short(o, 'i') || o.starts_with("--in-place"))
            {
                let scripted = opts
                    .iter()
                    .any(|o| matches!(*o, "-e" | "--expression" | "-f" | "--file"));
                for t in pos.iter().skip(usize::from(!scripted)) {
                    write_check(s, t, snip);
                }
            }
        }
        "chmod" | "chown" | "chgrp" => perms(s, name, args, snip),
        "find" => find(s, args, snip),
        n if n.starts_with("mkfs") || n == "mke2fs" => {
            hit(s, Forbidden, "creates a filesystem (formats a disk)");
        }
        "mkswap" => {
            if args.iter().any(|a| paths::is_raw_disk(&a.text)) {
                hit(s, Forbidden, "creates a filesystem (formats a disk)");
            }
            hit(s, Ask, "creates swap space");
        }
        "wipefs" => {
            let dry = args.iter().any(|a| a.is("-n") || a.is("--no-act"));
            let wipes = args.iter().any(|a| {
                short(&a.text, 'a')
                    || a.is("--all")
                    || short(&a.text, 'o')
                    || a.text.starts_with("--offset")
            });
            if wipes && !dry {
                hit(s, Forbidden, "wipes filesystem signatures from a disk");
            } else if !dry {
                hit(s, Ask, "inspects or wipes disk signatures");
            }
        }
        "blkdiscard" => hit(s, Forbidden, "discards every block of a device"),
        "shutdown" | "reboot" | "halt" | "poweroff" => {
            hit(s, Forbidden, "shuts down or reboots the machine");
        }
        "init" | "telinit" => {
            if args.iter().any(|a| a.is("0") || a.is("6")) {
                hit(s, Forbidden, "shuts down or reboots the machine");
            } else {
                hit(s, Ask, "changes the system runlevel");
            }
        }
        "systemctl" => systemctl(s, args, snip),
        "service" => {
            if args.iter().any(|a| {
                matches!(
                    a.text.as_str(),
                    "start" | "stop" | "restart" | "reload" | "force-reload"
                )
            }) {
                hit(s, Ask, "changes system services");
            }
        }
        "loginctl" => {
            if args
                .iter()
                .any(|a| matches!(a.text.as_str(), "poweroff" | "reboot" | "halt"))
            {
                hit(s, Forbidden, "shuts down or reboots the machine");
            } else if args
                .iter()
                .any(|a| a.text.starts_with("kill-") || a.text.starts_with("terminate-"))
            {
                hit(s, Ask, "kills processes");
            }
        }
        "kill" => kill(s, args, snip),
        "pkill" | "killall" | "skill" | "xkill" | "slay" => hit(s, Ask, "kills processes"),
        "killall5" => hit(s, Forbidden, "kills every process"),
        "git" => git(s, args, snip),
        n if SHELLS.contains(n) => match shell_mode(args) {
            ShellMode::Command(script) => s.nested(&script, snip),
            ShellMode::File(f) if f.dynamic => {
                hit(s, Ask, "shell runs a script produced at run time")
            }
            ShellMode::File(f) => s.run_file(&f, snip),
            _ => {}
        },
        "cd" | "pushd" => {
            let (_, pos) = split_opts(args, &[]);
            s.cd(pos.first().copied());
        }
        "awk" | "gawk" | "mawk" | "nawk" => {
            let (_, pos) = split_opts(
                args,
                &["-f", "-v", "-F", "--file", "--assign", "--field-separator"],
            );
            if let Some(prog) = pos
                .first()
                .filter(|_| !args.iter().any(|a| a.is("-f") || a.is("--file")))
            {
                let prog = prog.text.clone();
                s.code_check(&prog, snip);
            }
        }
        "eval" => {
            if !args.is_empty() {
                s.nested(&words::join(args), snip);
            }
        }
        "source" | "." => match args.first() {
            Some(a) if a.dynamic => hit(s, Ask, "sources a script produced at run time"),
            Some(a) => s.run_file(a, snip),
            None => {}
        },
        "export" | "declare" | "typeset" | "local" | "readonly" => {
            for a in args {
                if let Some((n, v)) = a.text.split_once('=') {
                    let value = Arg {
                        text: v.to_string(),
                        dynamic: a.dynamic,
                    };
                    env_assign(s, n, &value, snip);
                }
            }
        }
        "alias" => {
            for a in args {
                if let Some((_, value)) = a.text.split_once('=') {
                    s.nested(
                        &Arg {
                            text: value.into(),
                            dynamic: a.dynamic,
                        },
                        snip,
                    );
                }
            }
        }
        "trap" => {
            if let Some(action) = args
                .first()
                .filter(|a| !a.text.starts_with('-') && !a.text.is_empty())
            {
                s.nested(action, snip);
            }
        }
        "read" | "mapfile" | "readarray" => {
            // `mapfile -C callback` evaluates the callback as a command.
            if name != "read" {
                for callback in opt_value(args, &["-C"]) {
                    s.nested(&callback, snip);
                }
            }
            for a in split_opts(
                args,
                &[
                    "-p", "-d", "-n", "-N", "-t", "-u", "-a", "-C", "-c", "-s", "-O",
                ],
            )
            .1
            {
                s.vars.forget(&a.text);
            }
        }
        "crontab" => {
            if args.iter().any(|a| short(&a.text, 'r')) {
                hit(s, Ask, "removes the crontab");
            } else if !args.iter().any(|a| a.is("-l")) {
                hit(s, Ask, "replaces the crontab");
            }
        }
        n if ADMIN.contains(n) => hit(s, Ask, "system administration command"),
        "sysctl" => {
            if args
                .iter()
                .any(|a| a.text.contains('=') || short(&a.text, 'w') || short(&a.text, 'p'))
            {
                hit(s, Ask, "changes kernel parameters");
            }
        }
        "curl" | "wget" => {
            let names: &[&str] = if name == "curl" {
                &["-o", "--output"]
            } else {
                &["-O", "--output-document"]
            };
            let mut outs = opt_value(args, names);
            outs.extend(flow::bundled_value(
                args,
                if name == "curl" { 'o' } else { 'O' },
            ));
            let remote_name = if name == "curl" {
                args.iter().any(|a| {
                    a.is("-O")
                        || a.is("--remote-name")
                        || (short(&a.text, 'O') && !a.text.contains('o'))
                })
            } else {
                outs.is_empty()
            };
            if remote_name {
                let urls = split_opts(
                    args,
                    &[
                        "-o", "-H", "-d", "-X", "-u", "-A", "-e", "--header", "--data", "--user",
                    ],
                )
                .1;
                outs.extend(urls.iter().filter_map(|u| {
                    let path = u.text.split(['?', '#']).next().unwrap_or("");
                    path.rsplit('/')
                        .next()
                        .filter(|n| !n.is_empty() && path.contains("://"))
                        .map(Arg::lit)
                }));
            }
            for out in outs.iter().filter(|o| o.text != "-") {
                write_check(s, out, snip);
                s.remember(out, Some(super::FileSrc::Remote));
            }
            // `curl -X DELETE https://api…/users/1`: a request that deletes on
            // a server, which no sandbox on this machine can undo.
            if name == "curl" {
                let mut methods = opt_value(args, &["-X", "--request"]);
                methods.extend(flow::bundled_value(args, 'X'));
                let attached = args.iter().filter_map(|a| {
                    a.text
                        .strip_prefix("--request=")
                        .or_else(|| a.text.strip_prefix("-X"))
                });
                if methods
                    .iter()
                    .map(|m| m.text.as_str())
                    .chain(attached)
                    .any(|m| m.eq_ignore_ascii_case("DELETE"))
                {
                    hit(s, Ask, "sends a DELETE request to a server");
                }
            }
        }
        "tar" | "unzip" => {
            let names: &[&str] = if name == "tar" {
                &["-C", "--directory"]
            } else {
                &["-d"]
            };
            for dir in opt_value(args, names) {
                write_check(s, &dir, snip);
            }
            if args
                .iter()
                .any(|a| matches!(s.recall(a), Some(super::FileSrc::Remote)))
            {
                s.remote_tree = true;
            }
            for cmd in opt_value(
                args,
                &[
                    "--to-command",
                    "--use-compress-program",
                    "-I",
                    "--info-script",
                    "-F",
                    "--new-volume-script",
                ],
            ) {
                s.nested(&cmd, snip);
            }
            for a in args {
                if let Some(cmd) = a.text.strip_prefix("--checkpoint-action=exec=") {
                    s.nested(
                        &Arg {
                            text: cmd.into(),
                            dynamic: a.dynamic,
                        },
                        snip,
                    );
                }
            }
        }
        "nc" | "ncat" | "netcat" => {
            if args
                .iter()
                .any(|a| a.is("-e") || a.is("-c") || a.is("--exec") || a.is("--sh-exec"))
            {
                hit(s, Ask, "serves a shell over the network");
            }
        }
        "socat" => {
            if args.iter().any(|a| {
                let l = a.text.to_ascii_lowercase();
                l.contains("exec:") || l.contains("system:")
            }) {
                hit(s, Ask, "serves a shell over the network");
            }
        }
        n if SQL_CLIENTS.contains(n) => {
            for sql in sql_args(n, args).0 {
                sql_check(s, &sql, snip);
            }
        }
        _ => {
            if let Some(lang) = interp_lang(name) {
                interp(s, lang, args, snip);
            } else if let Some(what) = package_install(name, args) {
                hit(s, Ask, what);
            } else {
                table::unknown(s, name, args, snip);
            }
        }
    }
}

fn rm(s: &mut Script, args: &[Arg], snip: &str) {
    let (opts, targets) = split_opts(args, &[]);
    let targets: Vec<(&Arg, std::borrow::Cow<Arg>)> =
        targets.into_iter().map(|t| (t, s.path(t))).collect();
    if targets.iter().any(|(_, t)| paths::is_critical(&t.text)) {
        s.cx.hit(
            Forbidden,
            "deletes /, a system directory or a home directory",
            snip,
        );
        return;
    }
    if opts
        .iter()
        .any(|o| *o == "--recursive" || short(o, 'r') || short(o, 'R'))
    {
        s.cx.hit(Ask, "recursive delete", snip);
    } else if opts.iter().any(|o| *o == "--force" || short(o, 'f')) {
        s.cx.hit(Ask, "forced delete", snip);
    }
    for (orig, t) in targets {
        let abs = t.text.starts_with(['/', '~']);
        let tmp = t.text.starts_with("/tmp/") || t.text.starts_with("/var/tmp/");
        let outside = if abs {
            // After `cd /some/project`, relative names are fine unless in a system path.
            !tmp && (orig.text.starts_with(['/', '~'])
                || !s.cwd_absolute()
                || paths::is_system(&t.text))
        } else {
            !paths::is_local(&t.text)
        };
        if t.dynamic {
            s.cx.hit(Ask, "deletes files chosen at run time", snip);
        } else if paths::is_secret(&t.text) {
            s.cx.hit(
                Ask,
                "deletes credentials, keys or shell start-up files",
                snip,
            );
        } else if paths::in_git_dir(&t.text) {
            s.cx.hit(Ask, "deletes inside .git", snip);
        } else if outside {
            s.cx.hit(Ask, "deletes outside the working tree", snip);
        }
    }
}

fn mv(s: &mut Script, args: &[Arg], snip: &str) {
    let (_, mut pos) = split_opts(args, &["-t", "--target-directory", "-S", "--suffix"]);
    let dest = match opt_value(args, &["-t", "--target-directory"])
        .into_iter()
        .next()
    {
        Some(d) => Some(d),
        None => pos.pop().cloned(),
    };
    for src in pos {
        let src = s.path(src);
        if paths::is_critical(&src.text) {
            s.cx.hit(
                Forbidden,
                "moves /, a system directory or a home directory",
                snip,
            );
        } else if flow::secret_path(&src.text) {
            s.cx.hit(Ask, "moves credentials, keys or shell start-up files", snip);
        } else if paths::is_system(&src.text) {
            s.cx.hit(Ask, "moves a system path", snip);
        }
    }
    if let Some(d) = dest {
        write_check(s, &d, snip);
    }
}

/// `ln -s TARGET LINK`: later writes through LINK are checked as writes to TARGET.
fn link(s: &mut Script, args: &[Arg]) {
    let (opts, pos) = split_opts(args, &["-t", "--target-directory", "-S", "--suffix"]);
    if !opts.iter().any(|o| short(o, 's') || *o == "--symbolic") || s.links.len() >= 64 {
        return;
    }
    if let [target, link] = pos.as_slice() {
        if !target.dynamic && !link.dynamic {
            let t = paths::key(&s.path(target).text);
            let l = paths::key(&s.path(link).text);
            s.links.insert(l, t);
        }
    }
}

fn copy(s: &mut Script, args: &[Arg], snip: &str) {
    const V: &[&str] = &[
        "-t",
        "--target-directory",
        "-S",
        "--suffix",
        "-m",
        "--mode",
        "-o",
        "--owner",
        "-g",
        "--group",
    ];
    let (_, mut pos) = split_opts(args, V);
    let dest = match opt_value(args, &["-t", "--target-directory"])
        .into_iter()
        .next()
    {
        Some(d) => Some(d),
        None if pos.len() > 1 => pos.pop().cloned(),
        None => None,
    };
    if pos
        .iter()
        .any(|p| paths::is_secret(&p.text) && !p.text.contains(DYN))
    {
        s.cx.hit(Ask, "copies credentials or keys", snip);
    }
    if let Some(d) = dest {
        write_check(s, &d, snip);
    }
}

fn world_writable(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_ascii_digit()) {
        return mode
            .chars()
            .last()
            .and_then(|c| c.to_digit(8))
            .is_some_and(|d| d & 2 != 0);
    }
    mode.split(',').any(|clause| {
        let who: String = clause.chars().take_while(|c| "ugoa".contains(*c)).collect();
        let everyone = who.contains('o') || who.contains('a');
        let mut adding = false;
        let mut world = false;
        for c in clause.chars().skip(who.len()) {
            match c {
                '+' | '=' => adding = true,
                '-' => adding = false,
                'w' if adding && everyone => world = true,
                _ => {}
            }
        }
        world
    })
}

fn perms(s: &mut Script, name: &str, args: &[Arg], snip: &str) {
    let (opts, mut pos) = split_opts(args, &[]);
    let recursive = opts.iter().any(|o| *o == "--recursive" || short(o, 'R'));
    let dash_mode = opts
        .iter()
        .find(|o| o.chars().skip(1).all(|c| "rwxXstugo=+,-".contains(c)) && !matches!(**o, "-R"));
    let reference = opts.iter().any(|o| o.starts_with("--reference"));
    let mode = match dash_mode {
        Some(m) if name == "chmod" => Some(m.to_string()),
        _ if reference => None,
        _ if pos.is_empty() => None,
        _ => Some(pos.remove(0).text.clone()),
    };
    if name == "chmod" && mode.as_deref().is_some_and(world_writable) {
        s.cx.hit(Ask, "makes files world-writable", snip);
    }
    for t in pos {
        let t = s.path(t);
        let usr_local = paths::key(&t.text).starts_with("/usr/local");
        if recursive && paths::is_critical(&t.text) && !usr_local {
            s.cx.hit(
                Forbidden,
                "recursive permission change on /, a system directory or a home directory",
                snip,
            );
        } else if paths::is_critical(&t.text) || paths::is_system(&t.text) {
            s.cx.hit(Ask, "changes permissions of a system path", snip);
        }
    }
}

fn find(s: &mut Script, args: &[Arg], snip: &str) {
    const NEUTRAL: &[&str] = &[
        "-type",
        "-xtype",
        "-maxdepth",
        "-mindepth",
        "-depth",
        "-d",
        "-xdev",
        "-mount",
        "-follow",
        "-noleaf",
        "-print",
        "-print0",
        "-ls",
        "-daystart",
        "-true",
        "-delete",
        "-ignore_readdir_race",
    ];
    let mut i = 0;
    while let Some(t) = args.get(i).map(|a| a.text.as_str()) {
        match t {
            "-H" | "-L" | "-P" => i += 1,
            "-D" => i += 2,
            _ if t.starts_with("-O") => i += 1,
            _ => break,
        }
    }
    let mut starts: Vec<&Arg> = Vec::new();
    while let Some(a) = args.get(i) {
        if a.text.starts_with('-') || matches!(a.text.as_str(), "(" | "!" | ",") {
            break;
        }
        starts.push(a);
        i += 1;
    }
    let (mut filtered, mut delete) = (false, false);
    let mut execs: Vec<Vec<Arg>> = Vec::new();
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        match t {
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                let mut cmd = Vec::new();
                while let Some(c) = args.get(i) {
                    i += 1;
                    if c.is(";") || c.is("+") {
                        break;
                    }
                    cmd.push(c.clone());
                }
                execs.push(cmd);
            }
            "-delete" => delete = true,
            "-fprint" | "-fprint0" | "-fls" | "-fprintf" => {
                if let Some(f) = args.get(i) {
                    write_check(s, f, snip);
                }
            }
            "-maxdepth" | "-mindepth" | "-type" | "-xtype" => i += 1,
            _ if NEUTRAL.contains(&t) => {}
            _ if t.starts_with('-') || t == "!" => filtered = true,
            _ => {}
        }
    }
    let default_start = Arg::lit(".");
    let starts: Vec<Arg> = starts.into_iter().map(|a| s.path(a).into_owned()).collect();
    let critical = starts.iter().find(|a| paths::is_critical(&a.text));
    let start = critical.or(starts.first()).unwrap_or(&default_start);
    if delete {
        if critical.is_some() && !filtered {
            s.cx.hit(
                Forbidden,
                "find -delete on /, a system directory or a home directory",
                snip,
            );
        } else {
            s.cx.hit(Ask, "find -delete deletes files", snip);
        }
    }
    for mut cmd in execs {
        for a in cmd.iter_mut().filter(|a| a.text.contains("{}")) {
            let sub = if filtered {
                DYN.to_string()
            } else {
                start.text.clone()
            };
            a.text = a.text.replace("{}", &sub);
            a.dynamic = true;
        }
        let deletes = cmd
            .first()
            .is_some_and(|c| matches!(base(&c.text), "rm" | "unlink" | "shred" | "rmdir"));
        if deletes {
            s.cx.hit(Ask, "find -exec deletes files", snip);
        }
        if s.nest >= MAX_EXEC_NEST {
            s.cx.hit(Ask, "find -exec nested too deeply to analyse", snip);
            return;
        }
        if !inner_fits(s, &cmd, snip) {
            return;
        }
        s.nest += 1;
        analyze(s, cmd, &[], snip);
        s.nest -= 1;
    }
}

fn systemctl(s: &mut Script, args: &[Arg], snip: &str) {
    const V: &[&str] = &[
        "-H",
        "--host",
        "-M",
        "--machine",
        "-t",
        "--type",
        "-p",
        "--property",
        "-s",
        "--signal",
        "-n",
        "--lines",
        "-o",
        "--output",
        "--state",
        "--root",
    ];
    const SAFE: &[&str] = &[
        "status",
        "show",
        "cat",
        "list-units",
        "list-unit-files",
        "list-timers",
        "list-sockets",
        "list-dependencies",
        "list-jobs",
        "list-machines",
        "is-active",
        "is-enabled",
        "is-failed",
        "is-system-running",
        "help",
        "get-default",
        "show-environment",
    ];
    let (_, pos) = split_opts(args, V);
    let verb = pos.first().map(|a| a.text.as_str());
    let fatal = |t: &str| {
        [
            "poweroff",
            "reboot",
            "halt",
            "kexec",
            "emergency",
            "rescue",
            "soft-reboot",
        ]
        .iter()
        .any(|f| t == *f || t == format!("{f}.target"))
    };
    match verb {
        None => {}
        Some(v) if fatal(v) => {
            s.cx.hit(Forbidden, "shuts down or reboots the machine", snip)
        }
        Some("isolate") if pos.iter().any(|a| fatal(&a.text)) => {
            s.cx.hit(Forbidden, "shuts down or reboots the machine", snip);
        }
        Some(v) if SAFE.contains(&v) => {}
        Some(_) => s.cx.hit(Ask, "changes system services", snip),
    }
}

fn kill(s: &mut Script, args: &[Arg], snip: &str) {
    if args.first().is_some_and(|a| a.is("-l") || a.is("-L")) {
        return;
    }
    let mut i = 0;
    let mut signal_only_minus_one = false;
    while let Some(t) = args.get(i).map(|a| a.text.as_str()) {
        match t {
            "--" => {
                i += 1;
                break;
            }
            "-s" | "-n" => i += 2,
            _ if is_opt(t) && i == 0 => {
                signal_only_minus_one = t == "-1";
                i += 1;
            }
            _ => break,
        }
    }
    let pids = args.get(i..).unwrap_or(&[]);
    if pids.iter().any(|p| p.is("-1")) || (pids.is_empty() && signal_only_minus_one) {
        s.cx.hit(Forbidden, "kills every process", snip);
    } else {
        s.cx.hit(Ask, "kills processes", snip);
    }
}

/// Pipeline role of a command.
pub(super) fn stage(argv: &[Arg]) -> Stage {
    let outer = argv.first().map(|a| base(&a.text)).unwrap_or_default();
    // Most commands have no wrapper: their own words are used, uncopied.
    let peeled;
    let unwrapped = matches!(peel(argv), Peel::Not);
    let argv = if unwrapped {
        argv
    } else {
        peeled = resolve(argv.to_vec()).argv;
        peeled.as_slice()
    };
    let name = argv
        .first()
        .filter(|a| !a.dynamic)
        .map(|a| base(&a.text))
        .unwrap_or("");
    let args = argv.get(1..).unwrap_or(&[]);
    let flag = |names: &[&str]| args.iter().any(|a| names.contains(&a.text.as_str()));
    let decode = match name {
        "base64" | "base32" | "basenc" => flag(&["-d", "--decode", "-D"]),
        "xxd" => {
            flag(&["-r", "-revert", "-r -p", "-rp"]) || args.iter().any(|a| short(&a.text, 'r'))
        }
        "gzip" | "bzip2" | "xz" | "zstd" | "lz4" => {
            flag(&["-d", "--decode", "--decompress", "-dc", "-cd"])
        }
        "openssl" | "uudecode" | "gunzip" | "zcat" | "bzcat" | "xzcat" | "zstdcat" | "lz4cat"
        | "unxz" | "rev" => true,
        _ => false,
    };
    Stage {
        // `xargs curl`, `timeout 5 nc …`: the program a wrapper runs counts.
        network: flow::NETWORK.contains(name),
        fetch: FETCHERS.contains(name) || FETCHERS.contains(outer),
        decode,
        text: literal_output(name, args),
        consumer: consumer(argv),
        argv: Vec::new(),
        unwrapped,
        secret: false,
        unpacks: false,
        to_file: false,
    }
}

/// What `echo`/`printf` print, when fully literal.
fn literal_output(name: &str, args: &[Arg]) -> Option<String> {
    if args.iter().any(|a| a.dynamic) {
        return None;
    }
    match name {
        "echo" => {
            let mut escapes = false;
            let mut i = 0;
            while let Some(a) = args
                .get(i)
                .filter(|a| matches!(a.text.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en"))
            {
                escapes |= a.text.contains('e');
                i += 1;
            }
            let text = words::join(args.get(i..).unwrap_or(&[])).text;
            Some(if escapes {
                words::decode_c_escapes(&text)
            } else {
                text
            })
        }
        "printf" => {
            let fmt = args.first()?;
            if !fmt.text.contains('%') {
                Some(words::decode_c_escapes(&fmt.text))
            } else if matches!(fmt.text.as_str(), "%s" | "%s\\n" | "%s\n") {
                Some(words::join(args.get(1..).unwrap_or(&[])).text)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The pieces of a script between command separators, found by plain text
/// splitting (no quoting rules), each without a leading reserved word.
pub(super) fn pieces(src: &str) -> Vec<&str> {
    const RESERVED: &[&str] = &[
        "then", "do", "else", "elif", "if", "while", "until", "!", "time",
    ];
    let mut out = Vec::new();
    for piece in src.split(['\n', ';', '&', '|', '(', ')', '{', '}', '`']) {
        let mut p = piece.trim();
        while let Some((first, rest)) = p.split_once(char::is_whitespace) {
            if !RESERVED.contains(&first) {
                break;
            }
            p = rest.trim_start();
        }
        if !p.is_empty() && p.len() < src.len() {
            out.push(p);
        }
    }
    out
}

/// `{rm,-rf,/}` at command position becomes `rm -rf /` (for the pieces of a script
/// that does not parse).
pub(super) fn expand_brace_commands(src: &str) -> Option<String> {
    let mut out = String::with_capacity(src.len());
    let mut changed = false;
    let mut rest = src;
    while let Some(open) = rest.find('{') {
        let before = rest.get(..open).unwrap_or("");
        let after = rest.get(open..).unwrap_or("");
        out.push_str(before);
        let at_start = out
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || ";|&(`".contains(c));
        let group = after
            .find('}')
            .and_then(|close| Some((after.get(1..close)?, after.get(close + 1..)?)));
        match group {
            Some((inner, tail))
                if at_start
                    && inner.contains(',')
                    && !inner.contains(|c: char| c.is_whitespace() || "{'\"$".contains(c)) =>
            {
                out.push_str(&inner.replace(',', " "));
                changed = true;
                rest = tail;
            }
            _ => {
                out.push('{');
                rest = after.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}
