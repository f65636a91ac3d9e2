//! `run_command`: a child process with no stdin, its own process group, a
//! parent-death signal, a clean environment, capped output and a timeout.
//!
//! **Invariants (docs/DESIGN.md §2.2):** stdin is `/dev/null`; nothing the command
//! starts outlives it. Under `tether supervise` (the server's way) the
//! supervisor kills every descendant when the command exits, on timeout and
//! when the server stops or dies; a cancel sends SIGTERM to the group, then
//! after the grace period asks the supervisor to kill everything. Without a
//! supervisor the group is killed instead. Reading the pipes after exit is
//! time-limited.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{ToolCtx, ToolResult};
use crate::gate::Decision;

/// Keeps the first and last `cap/2` bytes of a stream and counts the rest.
#[derive(Debug)]
pub struct HeadTail {
    cap: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: usize,
}

impl HeadTail {
    pub fn new(cap: usize) -> Self {
        HeadTail {
            cap: cap.max(2),
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len();
        let half = self.cap / 2;
        if self.head.len() < half {
            let n = (half - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        let tail_cap = self.cap - half;
        if data.len() >= tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - tail_cap..]);
        } else {
            let overflow = (self.tail.len() + data.len()).saturating_sub(tail_cap);
            self.tail.drain(..overflow);
            self.tail.extend(data);
        }
    }

    /// The last `max` bytes seen (for live progress), without the word the
    /// cut went through.
    pub fn render_tail(&self, max: usize) -> String {
        let cut = self.total - self.head.len() - self.tail.len();
        let mut bytes: Vec<u8> = if cut == 0 {
            self.head.iter().chain(self.tail.iter()).copied().collect()
        } else {
            self.tail.iter().copied().collect()
        };
        let mut cut_front = cut > 0;
        if bytes.len() > max {
            bytes.drain(..bytes.len() - max);
            cut_front = true;
        }
        let from = if cut_front { after_cut_word(&bytes) } else { 0 };
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// The kept text with a marker saying how much was cut. The words the
    /// cut went through are dropped on both sides: half a secret is not
    /// recognisable as one, so it must not be shown at all.
    pub fn render(&self) -> String {
        let cut = self.total - self.head.len() - self.tail.len();
        let tail_bytes: Vec<u8> = self.tail.iter().copied().collect();
        if cut == 0 {
            let head = String::from_utf8_lossy(&self.head);
            let tail = String::from_utf8_lossy(&tail_bytes);
            return format!("{head}{tail}");
        }
        let head_end = before_cut_word(&self.head);
        let tail_start = after_cut_word(&tail_bytes);
        let dropped = cut + (self.head.len() - head_end) + tail_start;
        let head = String::from_utf8_lossy(&self.head[..head_end]);
        let tail = String::from_utf8_lossy(&tail_bytes[tail_start..]);
        format!("{head}\n[… {dropped} bytes of output cut …]\n{tail}")
    }
}

/// Longest word dropped at a cut; a longer run (minified code) is cut there.
const CUT_WORD_MAX: usize = 4096;

/// Where the text after a cut starts once the word the cut split is dropped.
fn after_cut_word(b: &[u8]) -> usize {
    b.iter()
        .take(CUT_WORD_MAX)
        .position(|c| c.is_ascii_whitespace())
        .unwrap_or(b.len().min(CUT_WORD_MAX))
}

/// Where the text before a cut ends once the word the cut split is dropped.
fn before_cut_word(b: &[u8]) -> usize {
    let window = b.len().saturating_sub(CUT_WORD_MAX);
    b[window..]
        .iter()
        .rposition(|c| c.is_ascii_whitespace())
        .map_or(window, |p| window + p + 1)
}

/// Removes ANSI escape sequences (colours, cursor moves, OSC titles).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                continue;
            }
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                // CSI: parameters and intermediates, then one final byte @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                chars.next();
                // OSC: until BEL or ST (ESC \)
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    out
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut(u64),
    Cancelled,
    SpawnFailed(String),
}

#[derive(Debug)]
pub struct Finished {
    pub exit: Exit,
    pub output: String,
    pub duration: Duration,
}

/// What `spawn_and_wait` needs; separate from [`ToolCtx`] so it can be tested
/// and benchmarked without a gate.
pub struct Spec<'a> {
    pub command: &'a str,
    pub cwd: &'a std::path::Path,
    pub timeout: Duration,
    pub output_cap: usize,
    pub drain: Duration,
    pub kill_grace: Duration,
    pub remove_env: &'a [String],
    /// The `tether` binary, to run the command under `tether supervise`
    /// (orphan-proof even if the server is SIGKILLed). `None`: run directly.
    pub supervisor: Option<&'a std::path::Path>,
    /// Called with the output so far, at most every [`PROGRESS_EVERY`].
    pub progress: Option<&'a (dyn Fn(String) + Send + Sync)>,
    /// Run in the OS sandbox with this policy (needs `supervisor`), with
    /// `TMPDIR` set to the given directory.
    pub sandbox: Option<(&'a crate::sandbox::Policy, &'a std::path::Path)>,
}

/// How often running output is reported to the editor.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Asks the supervisor with this pid to kill everything it leads, unless it
/// was already reaped (its pid may then belong to someone else).
struct SupervisorGuard {
    pid: i32,
    reaped: bool,
}

impl SupervisorGuard {
    fn kill_all(&self) {
        if self.pid > 0 && !self.reaped {
            // SAFETY: kill(2) on our own child, not yet reaped, so its pid is ours.
            unsafe {
                libc::kill(self.pid, super::supervise::KILL_SIGNAL);
            }
        }
    }
}

impl Drop for SupervisorGuard {
    /// The call's future was dropped (runtime shutting down): the supervisor
    /// cleans up on its own; SIGKILLing it would orphan what it leads.
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// How long the server waits for a supervisor that was asked to kill
/// everything before it falls back to SIGKILLing the group.
const SUPERVISOR_CLEANUP: Duration = Duration::from_secs(5);

fn kill_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// The command that runs `program` as Tether runs child processes: under
/// `supervisor` (`tether supervise`, which kills its whole group when Tether
/// dies), inside the OS sandbox when `sandbox` is given (its policy and the
/// temp dir `TMPDIR` points at); without a supervisor, directly, killed when
/// Tether dies. `None`: a sandbox was asked for but there is no supervisor to
/// enter it, so nothing may run.
pub fn supervised(
    supervisor: Option<&std::path::Path>,
    sandbox: Option<(&crate::sandbox::Policy, &std::path::Path)>,
    program: &std::ffi::OsStr,
) -> Option<Command> {
    match supervisor {
        Some(sup) => {
            let mut c = Command::new(sup);
            c.arg("supervise")
                .arg("--parent")
                .arg(std::process::id().to_string());
            if let Some((policy, tmp)) = sandbox {
                c.args(policy.to_args()).env("TMPDIR", tmp);
            }
            c.arg("--").arg(program);
            Some(c)
        }
        None if sandbox.is_some() => None,
        None => {
            let mut c = Command::new(program);
            let parent = std::process::id() as i32;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                c.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    // If Tether already died before prctl, exit now.
                    if libc::getppid() != parent {
                        libc::_exit(137);
                    }
                    Ok(())
                });
            }
            Some(c)
        }
    }
}

/// Runs `spec.command` under bash (sh when bash is missing).
pub async fn spawn_and_wait(spec: Spec<'_>, cancel: &CancellationToken) -> Finished {
    let started = Instant::now();
    let shell = if std::path::Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    let Some(mut cmd) = supervised(spec.supervisor, spec.sandbox, std::ffi::OsStr::new(shell))
    else {
        return Finished {
            exit: Exit::SpawnFailed(
                "the OS sandbox needs the supervisor; the command did not run".into(),
            ),
            output: String::new(),
            duration: started.elapsed(),
        };
    };
    cmd.arg("-c")
        .arg(spec.command)
        .current_dir(spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // A supervisor must not be SIGKILLed on drop: see SupervisorGuard.
        .kill_on_drop(spec.supervisor.is_none())
        .env("PAGER", "cat")
        .env("GIT_PAGER", "cat")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("NO_COLOR", "1")
        .env("TERM", "dumb");
    for name in spec.remove_env {
        cmd.env_remove(name);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Finished {
                exit: Exit::SpawnFailed(format!("cannot start {shell}: {e}")),
                output: String::new(),
                duration: started.elapsed(),
            }
        }
    };
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let mut guard = SupervisorGuard {
        pid: if spec.supervisor.is_some() { pgid } else { 0 },
        reaped: false,
    };
    let buf = Arc::new(Mutex::new(HeadTail::new(spec.output_cap)));
    let mut readers = Vec::new();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let buf = buf.clone();
        readers.push(tokio::spawn(async move {
            let mut pipe = pipe;
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                match pipe.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut b) = buf.lock() {
                            b.push(&chunk[..n]);
                        }
                    }
                }
            }
        }));
    }

    let ticker = async {
        let Some(progress) = spec.progress else {
            return std::future::pending::<()>().await;
        };
        let mut last_total = 0usize;
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let snapshot = buf.lock().ok().and_then(|b| {
                (b.total != last_total).then(|| {
                    last_total = b.total;
                    b.render_tail(2048)
                })
            });
            if let Some(text) = snapshot {
                progress(strip_ansi(&text));
            }
        }
    };
    let exit = tokio::select! {
        _ = ticker => unreachable_exit(),
        status = child.wait() => {
            guard.reaped = true;
            match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (s.code(), s.signal()) {
                        (Some(c), _) => Exit::Code(c),
                        (None, Some(sig)) => Exit::Signal(sig),
                        _ => Exit::Code(-1),
                    }
                }
                Err(e) => Exit::SpawnFailed(format!("waiting for the command failed: {e}")),
            }
        },
        _ = tokio::time::sleep(spec.timeout) => {
            stop_now(&mut child, &mut guard, pgid).await;
            Exit::TimedOut(spec.timeout.as_secs())
        }
        _ = cancel.cancelled() => {
            kill_group(pgid, libc::SIGTERM);
            match tokio::time::timeout(spec.kill_grace, child.wait()).await {
                Ok(_) => guard.reaped = true,
                Err(_) => stop_now(&mut child, &mut guard, pgid).await,
            }
            if guard.pid == 0 {
                kill_group(pgid, libc::SIGKILL);
            }
            Exit::Cancelled
        }
    };
    // Drain what is left, but not forever: a backgrounded grandchild may hold
    // the pipes open. Then make sure nothing of the group survives.
    let drain = if matches!(exit, Exit::Code(_) | Exit::Signal(_)) {
        spec.drain
    } else {
        Duration::from_millis(100)
    };
    let deadline = tokio::time::Instant::now() + drain;
    for r in readers.iter_mut() {
        if tokio::time::timeout_at(deadline, &mut *r).await.is_err() {
            break;
        }
    }
    if guard.pid == 0 {
        // No supervisor: the group is all we can reach.
        kill_group(pgid, libc::SIGKILL);
    }
    for r in readers {
        r.abort();
    }
    let raw = buf.lock().map(|b| b.render()).unwrap_or_default();
    Finished {
        exit,
        output: strip_ansi(&raw),
        duration: started.elapsed(),
    }
}

/// Kills the command and everything it started, now, and reaps it: the
/// supervisor is asked to do it (it reaches daemonised descendants); the
/// group is SIGKILLed when there is no supervisor or it does not finish.
async fn stop_now(child: &mut tokio::process::Child, guard: &mut SupervisorGuard, pgid: i32) {
    if guard.pid > 0 {
        guard.kill_all();
        if tokio::time::timeout(SUPERVISOR_CLEANUP, child.wait())
            .await
            .is_ok()
        {
            guard.reaped = true;
            return;
        }
        tracing::warn!("the command's supervisor did not finish; killing its process group");
    }
    kill_group(pgid, libc::SIGKILL);
    let _ = child.wait().await;
    guard.reaped = true;
}

fn unreachable_exit() -> Exit {
    Exit::SpawnFailed("progress reporting stopped unexpectedly".into())
}

/// The `run_command` tool: gate, run (in the OS sandbox unless the person
/// let this command out), report. `escalation`: the model asks to run it
/// outside the sandbox, with this justification.
pub async fn run_tool(
    ctx: &ToolCtx,
    command: &str,
    cwd: Option<&str>,
    timeout_secs: Option<u64>,
    escalation: Option<&str>,
) -> ToolResult {
    if command.trim().is_empty() {
        return ToolResult::failed("command is empty");
    }
    let dir = cwd
        .map(|c| ctx.resolve(c))
        .unwrap_or_else(|| ctx.root.clone());
    if !dir.is_dir() {
        return ToolResult::failed(format!("cwd {} is not a directory", dir.display()));
    }
    let sandbox = ctx.tools.sandbox.as_ref();
    let escalating = escalation.is_some() && sandbox.is_some();
    if let Some(why) = escalation.filter(|_| escalating) {
        if why.trim().is_empty() {
            return ToolResult::failed(
                "escalate needs a justification: say in `justification` why this command must run outside the sandbox; the person reads it before deciding",
            );
        }
    }
    let decision = match escalation.filter(|_| escalating) {
        Some(why) => {
            ctx.gate
                .check_unsandboxed(command, why, ctx.ask_ctx(&dir))
                .await
        }
        None => ctx.gate.check_command(command, ctx.ask_ctx(&dir)).await,
    };
    match decision {
        Decision::Allow => {}
        Decision::Deny(msg) => {
            return if ctx.cancel.is_cancelled() {
                ToolResult::cancelled()
            } else {
                ToolResult::denied(msg)
            }
        }
    }
    if ctx.cancel.is_cancelled() {
        return ToolResult::cancelled();
    }
    let timeout = Duration::from_secs(
        timeout_secs
            .unwrap_or(ctx.tools.command_timeout_secs)
            .clamp(1, 24 * 3600),
    );
    let confined = match sandbox.filter(|_| !escalating) {
        Some(s) => match s.session_tmp(&ctx.turn_session_id) {
            Ok(tmp) => Some((s.policy(ctx.gate.real_roots(), &tmp), tmp)),
            Err(e) => {
                return ToolResult::failed(format!(
                    "the command did not run: cannot create the sandbox's temp dir ({e})"
                ))
            }
        },
        None => None,
    };
    let f = spawn_and_wait(
        Spec {
            command,
            cwd: &dir,
            timeout,
            output_cap: ctx.tools.output_cap_bytes,
            drain: Duration::from_millis(ctx.tools.drain_ms),
            kill_grace: Duration::from_millis(ctx.tools.kill_grace_ms),
            remove_env: &ctx.secret_env,
            supervisor: ctx.tools.supervisor.as_deref(),
            progress: ctx.progress.as_deref(),
            sandbox: confined.as_ref().map(|(p, t)| (p, t.as_path())),
        },
        &ctx.cancel,
    )
    .await;
    let output = ctx.redactor.redact(&f.output);
    let stopped = confined.as_ref().is_some_and(|(policy, _)| match f.exit {
        Exit::Signal(s) => {
            s == libc::SIGSYS || crate::sandbox::looks_denied(&output, policy.network)
        }
        Exit::Code(c) => c != 0 && crate::sandbox::looks_denied(&output, policy.network),
        _ => false,
    });
    let mut body = if output.trim().is_empty() {
        "(no output)".to_string()
    } else {
        output
    };
    if let (true, Some((policy, _))) = (stopped, &confined) {
        body.push_str("\n\n");
        body.push_str(&crate::sandbox::denial_note(policy));
    }
    match f.exit {
        Exit::Code(0) => ToolResult::ok(format!("exit code 0\n{body}")),
        Exit::Code(c) => ToolResult::failed(format!("exit code {c}\n{body}")),
        Exit::Signal(s) => ToolResult::failed(format!("killed by signal {s}\n{body}")),
        Exit::TimedOut(s) => ToolResult::failed(format!(
            "timed out after {s} s; the command and everything it started were killed\n{body}"
        )),
        Exit::Cancelled => ToolResult::cancelled(),
        Exit::SpawnFailed(e) => ToolResult::failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_tail_keeps_both_ends() {
        let mut h = HeadTail::new(20);
        h.push(b"one two three four five six seven eight nine ten");
        let r = h.render();
        // The words the cut went through go too ("th…", "…e").
        assert_eq!(r, "one two \n[… 31 bytes of output cut …]\n nine ten");
        // Half of a token on either side of a cut is never shown.
        let mut h = HeadTail::new(20);
        h.push(b"token ghp_0123456789abcdefghij0123456789ABCD ok");
        assert!(!h.render().contains("ghp_0123"), "{}", h.render());
        assert!(!h.render().contains("89ABCD"), "{}", h.render());
        assert!(
            !h.render_tail(12).contains("89ABCD"),
            "{}",
            h.render_tail(12)
        );
        // A run longer than the window is cut where the window ends.
        let mut h = HeadTail::new(10);
        h.push(b"0123456789abcdefghij");
        assert!(h.render().contains("bytes of output cut"));
        let mut small = HeadTail::new(100);
        small.push(b"hello ");
        small.push(b"world");
        assert_eq!(small.render(), "hello world");
    }

    #[test]
    fn strips_ansi() {
        assert_eq!(
            strip_ansi("\u{1b}[1;31merror\u{1b}[0m: x\r\n\u{1b}]0;title\u{7}ok"),
            "error: x\nok"
        );
    }

    #[tokio::test]
    async fn stdin_is_null_and_output_is_captured() {
        let dir = std::env::temp_dir();
        let f = spawn_and_wait(
            Spec {
                command: "cat; echo out; echo err >&2; exit 3",
                cwd: &dir,
                timeout: Duration::from_secs(10),
                output_cap: 1024,
                drain: Duration::from_millis(500),
                kill_grace: Duration::from_millis(100),
                remove_env: &[],
                supervisor: None,
                progress: None,
                sandbox: None,
            },
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(f.exit, Exit::Code(3));
        assert!(f.output.contains("out") && f.output.contains("err"));
    }
}
