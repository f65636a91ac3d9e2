//! `tether supervise`: a tiny process that leads a command's process group so
//! that nothing the command started outlives the server.
//!
//! A parent-death signal only reaches the *direct* child, and bash forks
//! grandchildren that would be orphaned if the server were killed with
//! SIGKILL. So every command runs as `tether supervise --parent PID -- bash -c
//! CMD`: the supervisor leads the group, gets `SIGUSR1` when the server dies
//! (`PR_SET_PDEATHSIG`), and then kills its whole group. It ignores SIGTERM so
//! that it outlives its child on a normal cancel and reports the exit status.

use std::process::ExitCode;

/// Signal the supervisor receives when the server dies.
pub const PARENT_DEATH_SIGNAL: libc::c_int = libc::SIGUSR1;

extern "C" fn kill_group(_sig: libc::c_int) {
    // SAFETY: kill(2) is async-signal-safe; 0 = this process group.
    unsafe {
        libc::kill(0, libc::SIGKILL);
    }
}

/// Runs `argv` under supervision; returns its exit status (128+signal when killed).
pub fn run(parent: i32, argv: &[String]) -> ExitCode {
    let Some((prog, args)) = argv.split_first() else {
        eprintln!("tether supervise: nothing to run");
        return ExitCode::from(2);
    };
    // SAFETY: installing handlers before any thread is spawned; the handler
    // only calls kill(2).
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(
            PARENT_DEATH_SIGNAL,
            kill_group as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::prctl(libc::PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL);
        // The server may have died before prctl took effect.
        if parent > 0 && libc::getppid() != parent {
            libc::kill(0, libc::SIGKILL);
        }
    }
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args);
    // SAFETY: restore default dispositions in the command (ignored signals
    // would otherwise be inherited across exec).
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tether supervise: cannot run {prog}: {e}");
            return ExitCode::from(127);
        }
    };
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(c.clamp(0, 255) as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
        _ => ExitCode::from(1),
    }
}
