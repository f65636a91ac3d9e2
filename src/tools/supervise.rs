//! `tether supervise`: a tiny process between the server and each command, so
//! that nothing a command starts outlives it.
//!
//! Every command runs as `tether supervise --parent PID -- bash -c CMD`. The
//! supervisor
//! - leads the command's process group (the server spawns it with its own
//!   group);
//! - is a **child subreaper** (`PR_SET_CHILD_SUBREAPER`): whatever the command
//!   daemonises — `setsid`, `setsid -f`, `nohup … &`, a double fork, `disown`
//!   — is re-parented to the supervisor when its parent exits, instead of to
//!   init, so it stays reachable even after leaving the process group;
//! - when the command ends (or on [`KILL_SIGNAL`]), kills **every descendant**
//!   and every member of its group with SIGKILL, reaps them, and repeats until
//!   none is left; only then does it exit with the command's status
//!   (128+signal when killed);
//! - gets [`KILL_SIGNAL`] when the server dies (`PR_SET_PDEATHSIG`, backed by
//!   polling `getppid()` in case the thread that forked it is gone), and the
//!   server sends it the same signal on timeout, on a cancel whose grace ran
//!   out, and when the server stops;
//! - ignores SIGTERM, SIGINT and SIGHUP: the server's SIGTERM to the group on a
//!   cancel reaches the command, and the supervisor outlives it to clean up.
//!
//! No runtime and no threads: signals are blocked and taken with
//! `sigtimedwait`, so nothing runs in a signal handler.
//!
//! What it cannot catch: work handed to another service (`at`, `systemd-run`,
//! a daemon's socket), which is not a descendant of the command.

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// "Kill everything now": sent by the kernel when the server dies and by the
/// server on timeout, after a cancel's grace, and when it stops.
pub const KILL_SIGNAL: libc::c_int = libc::SIGUSR1;

/// How often the supervisor checks that the server is still its parent.
const PARENT_POLL: Duration = Duration::from_millis(500);
/// How long the supervisor keeps killing before it gives up (a process stuck
/// in uninterruptible sleep cannot die until the kernel lets it).
const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// Runs `argv` under supervision, in the OS sandbox when `sandbox` is given;
/// returns its exit status (128+signal when killed).
pub fn run(parent: i32, sandbox: Option<&crate::sandbox::Policy>, argv: &[String]) -> ExitCode {
    let Some((prog, args)) = argv.split_first() else {
        eprintln!("tether supervise: nothing to run");
        return ExitCode::from(2);
    };
    // Built before the fork (it opens the writable paths); entered in the
    // child. A sandbox that cannot be built fails the command: it never runs
    // with less confinement than asked for.
    let mut prepared = match sandbox.map(crate::sandbox::Prepared::new).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tether supervise: cannot set up the sandbox ({e}); the command did not run");
            return ExitCode::from(126);
        }
    };
    // SAFETY: plain syscalls before any thread exists; `set` is a local.
    let set = unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
            eprintln!(
                "tether supervise: cannot become a subreaper ({}); daemonised processes may escape",
                std::io::Error::last_os_error()
            );
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, KILL_SIGNAL);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, KILL_SIGNAL);
        set
    };
    if parent_gone(parent) {
        // The server died before prctl took effect; nothing was started.
        return ExitCode::from(137);
    }
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec: restore the
    // dispositions and the mask this process changed (ignored signals and the
    // mask would otherwise be inherited across exec), then enter the sandbox
    // (syscalls on what was prepared before the fork; this process has no
    // other thread).
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if let Some(p) = prepared.as_mut() {
                p.enter()?;
            }
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c.id() as libc::pid_t,
        Err(e) => {
            let how = if sandbox.is_some() {
                " in the sandbox"
            } else {
                ""
            };
            eprintln!("tether supervise: cannot run {prog}{how}: {e}");
            return ExitCode::from(127);
        }
    };
    let mut status: Option<libc::c_int> = None;
    let timeout = libc::timespec {
        tv_sec: PARENT_POLL.as_secs() as libc::time_t,
        tv_nsec: PARENT_POLL.subsec_nanos() as libc::c_long,
    };
    loop {
        // SAFETY: `set` and `timeout` are valid locals; no siginfo is wanted.
        let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &timeout) };
        reap(child, &mut status);
        if status.is_some() || sig == KILL_SIGNAL || parent_gone(parent) {
            break;
        }
    }
    kill_descendants(child, &mut status);
    match status {
        Some(s) if libc::WIFEXITED(s) => ExitCode::from(libc::WEXITSTATUS(s).clamp(0, 255) as u8),
        Some(s) if libc::WIFSIGNALED(s) => {
            ExitCode::from((128 + libc::WTERMSIG(s)).clamp(0, 255) as u8)
        }
        _ => ExitCode::from(137),
    }
}

fn parent_gone(parent: i32) -> bool {
    // SAFETY: getppid(2) cannot fail.
    parent > 0 && unsafe { libc::getppid() } != parent
}

/// Reaps every child that has ended; records the command's own status.
/// Returns whether any child is left.
fn reap(command: libc::pid_t, status: &mut Option<libc::c_int>) -> bool {
    loop {
        let mut s = 0;
        // SAFETY: waitpid(2) with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut s, libc::WNOHANG) };
        if pid == 0 {
            return true;
        }
        if pid < 0 {
            return std::io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD);
        }
        if pid == command {
            *status = Some(s);
        }
    }
}

/// SIGKILLs every descendant and every other member of this process group,
/// reaping as they die, until none is left.
fn kill_descendants(command: libc::pid_t, status: &mut Option<libc::c_int>) {
    // SAFETY: getpid(2) cannot fail.
    let me = unsafe { libc::getpid() };
    let started = Instant::now();
    loop {
        // A subreaper with no child has no descendant: when a process dies
        // its children come to the nearest living subreaper above them, so
        // every live descendant hangs below a live child. The common case (a
        // command that left nothing behind) costs no /proc scan.
        if !reap(command, status) {
            return;
        }
        let victims = descendants(me);
        for &pid in &victims {
            // SAFETY: kill(2) on a pid read from /proc a moment ago.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if victims.is_empty() {
            // Only zombies were left; the next round reaps them.
            if !reap(command, status) {
                return;
            }
        }
        if started.elapsed() > CLEANUP_LIMIT {
            eprintln!(
                "tether supervise: {} process(es) would not die: {victims:?}",
                victims.len()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Live (non-zombie) processes below `me` in the process tree, plus live
/// members of `me`'s process group, from /proc.
pub fn descendants(me: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    // (pid, ppid, pgid, zombie)
    let procs: Vec<(i32, i32, i32, bool)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid pgrp …": comm may hold spaces and ')'.
            let rest = stat.get(stat.rfind(')')? + 2..)?;
            let mut f = rest.split_whitespace();
            let state = f.next()?;
            let ppid = f.next()?.parse().ok()?;
            let pgid = f.next()?.parse().ok()?;
            Some((pid, ppid, pgid, state == "Z" || state == "X"))
        })
        .collect();
    let mut found: Vec<i32> = Vec::new();
    let mut frontier = vec![me];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid, _, _) in &procs {
            if ppid == p && pid != me && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    for &(pid, _, pgid, _) in &procs {
        if pgid == me && pid != me && !found.contains(&pid) {
            found.push(pid);
        }
    }
    found.retain(|pid| procs.iter().any(|&(p, _, _, zombie)| p == *pid && !zombie));
    found
}
