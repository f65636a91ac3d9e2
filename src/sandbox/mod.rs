//! The OS sandbox every `run_command` runs in on Linux: the kernel, not the
//! classifier, keeps a command's writes inside the workspace and its sockets
//! off the network.
//!
//! - **Files: Landlock.** The ruleset handles the write rights (write,
//!   truncate, create, remove, rename/link across directories) and grants them
//!   only beneath the workspace roots, the session's temp dir (`TMPDIR`), the
//!   paths the person adds (`[sandbox] writable`) and a few device files
//!   (`/dev/null`, `/dev/zero`, `/dev/full`, `/dev/tty`). Reads and execution
//!   are not handled: they stay allowed everywhere. Landlock judges the file a
//!   path leads to, so links made in the same command, `/proc/self/root/…` and
//!   `..` lead nowhere new; a hard link from outside into a writable tree is
//!   refused (`EXDEV`) because it would gain rights.
//! - **Network: seccomp**, a raw BPF filter (two dozen instructions, so no
//!   crate): `socket(2)` for any family but `AF_UNIX` fails with `EACCES`
//!   (a clean "Permission denied", never a SIGSYS kill), and `io_uring_setup`
//!   fails (io_uring can open sockets without `socket(2)`). On x86_64 the x32
//!   syscall numbers and the i386 `socketcall`/`socket` are refused too. When
//!   the kernel has Landlock ABI ≥ 4 its TCP bind/connect rights are handled
//!   as well (no port allowed), a second lock on the same door. A network
//!   namespace was not chosen: it needs unprivileged user namespaces (which
//!   containers and AppArmor often forbid) and costs more per command.
//! - **Signals and abstract sockets: Landlock scopes** (ABI ≥ 6): a command
//!   cannot signal a process outside its sandbox (the editor, the server, the
//!   person's other programs) nor connect to an abstract Unix socket made
//!   outside it. The supervisor is outside, so it still signals in.
//! - **`.git/hooks` and `.git/config` are not kept read-only.** Landlock only
//!   adds rights beneath a directory, never takes them away below it, and
//!   creating a file in the root needs the create right on the root, which
//!   reaches `.git/hooks` too; granting the root's entries one by one would
//!   still let a new hook be renamed in. A read-only bind mount would do it
//!   but needs a user and mount namespace (the costs above). The classifier
//!   keeps judging writes into `.git` by commands and file tools.
//!
//! The sandbox is applied by `tether supervise` in its child, between `fork`
//! and `exec` (`Prepared::enter`), so the command and everything it starts
//! inherit it while the supervisor itself stays outside: its kill path
//! (`/proc` scan, `kill(2)`, `waitpid`) needs nothing the sandbox removes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

/// `[sandbox] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Write inside the workspace roots, the session temp dir and
    /// `[sandbox] writable` (default).
    #[default]
    WorkspaceWrite,
    /// Write nowhere but the session temp dir.
    ReadOnly,
    /// No sandbox: the classifier is the only gate.
    Off,
}

impl Mode {
    /// Strictness order: off < workspace-write < read-only.
    pub fn strictness(self) -> u8 {
        match self {
            Mode::Off => 0,
            Mode::WorkspaceWrite => 1,
            Mode::ReadOnly => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::WorkspaceWrite => "workspace-write",
            Mode::ReadOnly => "read-only",
            Mode::Off => "off",
        }
    }
}

/// The `[sandbox]` settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SandboxConfig {
    pub mode: Mode,
    /// Whether sandboxed commands may open network sockets.
    pub network: bool,
    /// More paths sandboxed commands may write beneath.
    pub writable: Vec<PathBuf>,
}

/// What the running kernel offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// The Landlock ABI version (0: none).
    pub landlock_abi: i32,
    /// Whether seccomp filters can be installed.
    pub seccomp: bool,
}

impl Support {
    /// Asks the kernel (two syscalls, no side effect).
    pub fn detect() -> Support {
        // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) only returns the ABI.
        let abi = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<u8>(),
                0usize,
                1u32, // LANDLOCK_CREATE_RULESET_VERSION
            )
        };
        // SAFETY: PR_GET_SECCOMP reads this thread's mode; it fails with
        // EINVAL when the kernel has no seccomp.
        let seccomp = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } >= 0;
        Support {
            landlock_abi: if abi > 0 { abi as i32 } else { 0 },
            seccomp,
        }
    }

    /// Whether commands can be sandboxed at all here.
    pub fn usable(&self) -> bool {
        cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))
            && self.landlock_abi >= 1
            && self.seccomp
    }

    /// One line for `tether doctor` and the notice.
    pub fn describe(&self) -> String {
        let landlock = match self.landlock_abi {
            0 => "no Landlock".to_string(),
            n @ 1..=2 => {
                format!("Landlock ABI {n} (truncate(2) outside is not confined below ABI 3)")
            }
            n @ 3 => format!("Landlock ABI {n} (network confined by seccomp only)"),
            n => format!("Landlock ABI {n}"),
        };
        let seccomp = if self.seccomp {
            "seccomp"
        } else {
            "no seccomp"
        };
        format!("{landlock}, {seccomp}")
    }
}

/// The rights one command runs with; travels to the supervisor on its
/// command line ([`Policy::to_args`], [`Policy::from_args`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Directories (or files) the command may write beneath.
    pub writable: Vec<PathBuf>,
    /// Whether the network is on.
    pub network: bool,
}

/// The supervisor's option that turns the sandbox on.
pub const ARG_SANDBOX: &str = "--sandbox";
/// The supervisor's option naming a writable path (repeated).
pub const ARG_WRITE: &str = "--sandbox-write";
/// The supervisor's option that leaves the network on.
pub const ARG_NET: &str = "--sandbox-net";

/// Device files every command may write (discarding output, reading zeros).
const WRITABLE_DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

impl Policy {
    pub fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![ARG_SANDBOX.into()];
        for p in &self.writable {
            v.push(ARG_WRITE.into());
            v.push(p.clone().into_os_string());
        }
        if self.network {
            v.push(ARG_NET.into());
        }
        v
    }
}

/// The sandbox of one server run: settings, what the kernel offers, and the
/// directory that holds each session's temp dir (removed when the last
/// clone is dropped). `None` in `ToolsConfig` means commands run without.
#[derive(Clone)]
pub struct Sandbox {
    pub config: SandboxConfig,
    pub support: Support,
    temp: Arc<TempRoot>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.config)
            .field("support", &self.support)
            .field("temp", &self.temp.0)
            .finish()
    }
}

impl PartialEq for Sandbox {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config && self.support == other.support
    }
}

struct TempRoot(PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Sandbox {
    /// The sandbox for this run, or why there is none (`Err` is a notice for
    /// the person, said once; commands then run with the classifier as the
    /// only gate). `Ok(None)`: the person turned it off.
    pub fn start(config: &SandboxConfig) -> Result<Option<Sandbox>, String> {
        if config.mode == Mode::Off {
            return Ok(None);
        }
        if !cfg!(target_os = "linux") {
            return Err("commands run without an OS sandbox on this system (it needs Linux with Landlock); the approval classifier is the only gate".into());
        }
        let support = Support::detect();
        if !support.usable() {
            return Err(format!(
                "commands run without an OS sandbox: the kernel offers {}; the approval classifier is the only gate",
                support.describe()
            ));
        }
        let temp = make_temp_root().map_err(|e| {
            format!("commands run without an OS sandbox: cannot create its temp dir ({e})")
        })?;
        Ok(Some(Sandbox {
            config: config.clone(),
            support,
            temp: Arc::new(TempRoot(temp)),
        }))
    }

    /// The session's temp dir (created on first use, private to the user).
    pub fn session_tmp(&self, session_id: &str) -> std::io::Result<PathBuf> {
        let name: String = session_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let dir = self.temp.0.join(if name.is_empty() {
            "session".into()
        } else {
            name
        });
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
            Err(e) => Err(e),
        }
    }

    /// The policy of a command of this session in these roots.
    pub fn policy(&self, roots: &[PathBuf], tmp: &Path) -> Policy {
        self.policy_with(roots, tmp, &[])
    }

    /// [`Sandbox::policy`] with more writable paths (an MCP server's own
    /// `writable`; `~` is the home directory). In `read-only` mode they are
    /// ignored like the config's.
    pub fn policy_with(&self, roots: &[PathBuf], tmp: &Path, more: &[PathBuf]) -> Policy {
        let mut writable = vec![tmp.to_path_buf()];
        if self.config.mode == Mode::WorkspaceWrite {
            for r in roots {
                writable.push(r.clone());
                writable.extend(git_dirs(r));
            }
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
            writable.extend(self.config.writable.iter().chain(more).map(|p| {
                match (p.strip_prefix("~"), &home) {
                    (Ok(rest), Some(h)) => PathBuf::from(h).join(rest),
                    _ => p.clone(),
                }
            }));
        }
        // A path that does not exist cannot be opened for a rule (and could
        // be anything by the time it exists): left out.
        writable.retain(|p| p.exists());
        writable.dedup();
        Policy {
            writable,
            network: self.config.network,
        }
    }
}

/// Sets up the sandbox of a server or `exec` run in `cfg.tools.sandbox`;
/// when none is possible, returns what to tell the person (once: every
/// frontend shows the engine's start-up notices).
pub fn install(cfg: &mut crate::config::Config) -> Option<String> {
    match Sandbox::start(&cfg.sandbox) {
        Ok(s) => {
            cfg.tools.sandbox = s;
            None
        }
        Err(notice) => {
            tracing::warn!("{notice}");
            cfg.tools.sandbox = None;
            Some(notice)
        }
    }
}

/// The git directories of a linked worktree or a submodule, whose `.git` is a
/// file (`gitdir: …`) naming a directory outside the root: commits write
/// there, so it is writable with the root.
fn git_dirs(root: &Path) -> Vec<PathBuf> {
    let dotgit = root.join(".git");
    let Ok(meta) = std::fs::symlink_metadata(&dotgit) else {
        return Vec::new();
    };
    if !meta.is_file() {
        return Vec::new();
    }
    let Ok(text) = std::fs::read_to_string(&dotgit) else {
        return Vec::new();
    };
    let Some(dir) = text.lines().next().and_then(|l| l.strip_prefix("gitdir:")) else {
        return Vec::new();
    };
    let dir = root.join(dir.trim());
    let mut out = vec![dir.clone()];
    if let Ok(common) = std::fs::read_to_string(dir.join("commondir")) {
        out.push(dir.join(common.trim()));
    }
    out
}

fn make_temp_root() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    remove_stale_temp_roots(&base);
    let dir = base.join(format!(
        "tether-sandbox-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Removes the temp roots of servers that died without cleaning up (a
/// SIGKILL): ours (same owner), named for a process that no longer exists.
fn remove_stale_temp_roots(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("tether-sandbox-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let ours = std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if ours && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A sandbox built before `fork` and entered in the child before `exec`.
pub struct Prepared {
    ruleset: Option<landlock::RulesetCreated>,
    filter: Option<Vec<libc::sock_filter>>,
}

impl Prepared {
    /// Opens the writable paths and builds the Landlock ruleset and the
    /// seccomp program. Every failure is an error: a command never runs
    /// with less of a sandbox than asked for.
    pub fn new(policy: &Policy) -> Result<Prepared, String> {
        use landlock::{
            Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
            RulesetAttr, RulesetCreatedAttr, Scope, ABI,
        };
        let support = Support::detect();
        if !support.usable() {
            return Err(format!(
                "no sandbox on this kernel ({})",
                support.describe()
            ));
        }
        let write = AccessFs::from_write(ABI::V3);
        let file_write = AccessFs::WriteFile | AccessFs::Truncate;
        let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
        let mut rs = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(write)
            .map_err(|e| err("landlock ruleset", &e))?;
        if support.landlock_abi >= 6 {
            rs = rs
                .scope(Scope::from_all(ABI::V6))
                .map_err(|e| err("landlock scopes", &e))?;
        }
        if !policy.network && support.landlock_abi >= 4 {
            rs = rs
                .handle_access(AccessNet::from_all(ABI::V4))
                .map_err(|e| err("landlock network rights", &e))?;
        }
        let mut created = rs.create().map_err(|e| err("landlock ruleset", &e))?;
        for p in &policy.writable {
            let fd =
                PathFd::new(p).map_err(|e| err(&format!("sandbox path {}", p.display()), &e))?;
            let access = if p.is_dir() {
                write
            } else {
                write & file_write
            };
            created = created
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| err(&format!("sandbox rule for {}", p.display()), &e))?;
        }
        for dev in WRITABLE_DEVICES {
            if let Ok(fd) = PathFd::new(dev) {
                created = created
                    .add_rule(PathBeneath::new(fd, file_write))
                    .map_err(|e| err(&format!("sandbox rule for {dev}"), &e))?;
            }
        }
        Ok(Prepared {
            ruleset: Some(created),
            filter: (!policy.network).then(network_filter),
        })
    }

    /// Restricts the calling process for good: `no_new_privs`, Landlock,
    /// then the seccomp filter. Meant for the child between `fork` and
    /// `exec` of a single-threaded parent (the supervisor): it makes
    /// syscalls and no allocation.
    pub fn enter(&mut self) -> std::io::Result<()> {
        if let Some(rs) = self.ruleset.take() {
            let status = rs
                .restrict_self()
                .map_err(|_| std::io::Error::last_os_error())?;
            if status.ruleset == landlock::RulesetStatus::NotEnforced || !status.no_new_privs {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
            }
        }
        if let Some(filter) = &self.filter {
            let prog = libc::sock_fprog {
                len: filter.len() as libc::c_ushort,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: `prog` points at a live, well-formed BPF program;
            // no_new_privs is already set.
            let r = unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    &prog as *const libc::sock_fprog as libc::c_ulong,
                    0,
                    0,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

// seccomp_data offsets: nr (u32) at 0, arch (u32) at 4, args[0] at 16 (its
// low 32 bits first on these little-endian targets).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0: u32 = 16;
const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO | errno
const RET_KILL_PROCESS: u32 = 0x8000_0000;

#[cfg(target_arch = "x86_64")]
mod arch {
    pub const NATIVE: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    pub const COMPAT: u32 = 0x4000_0003; // AUDIT_ARCH_I386
    pub const SOCKET: u32 = 41;
    pub const IO_URING_SETUP: u32 = 425;
    /// i386: socketcall, socket, io_uring_setup.
    pub const COMPAT_DENY: [u32; 3] = [102, 359, 425];
    pub const X32_BIT: Option<u32> = Some(0x4000_0000);
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub const NATIVE: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    pub const COMPAT: u32 = 0x4000_0028; // AUDIT_ARCH_ARM
    pub const SOCKET: u32 = 198;
    pub const IO_URING_SETUP: u32 = 425;
    /// arm: socketcall (absent on EABI), socket, io_uring_setup.
    pub const COMPAT_DENY: [u32; 3] = [102, 281, 425];
    pub const X32_BIT: Option<u32> = None;
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod arch {
    pub const NATIVE: u32 = 0;
    pub const COMPAT: u32 = 0;
    pub const SOCKET: u32 = u32::MAX;
    pub const IO_URING_SETUP: u32 = u32::MAX;
    pub const COMPAT_DENY: [u32; 3] = [u32::MAX; 3];
    pub const X32_BIT: Option<u32> = None;
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The network filter: `socket(2)` only for `AF_UNIX`, no io_uring.
pub fn network_filter() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ld = BPF_LD | BPF_W | BPF_ABS;
    let jeq = BPF_JMP | BPF_JEQ | BPF_K;
    let ret = BPF_RET | BPF_K;
    let deny = RET_ERRNO | libc::EACCES as u32;
    let mut f = vec![
        stmt(ld, OFF_ARCH),
        // 1: native → 3, else → compat block.
        jump(jeq, arch::NATIVE, 1, 0),
    ];
    // Compat block (placed here so the native block's jumps stay short).
    let compat_start = f.len();
    let mut compat = vec![jump(jeq, arch::COMPAT, 1, 0), stmt(ret, RET_KILL_PROCESS)];
    compat.push(stmt(ld, OFF_NR));
    for nr in arch::COMPAT_DENY {
        compat.push(jump(jeq, nr, 0, 1));
        compat.push(stmt(ret, deny));
    }
    compat.push(stmt(ret, RET_ALLOW));
    // The jump at 1 skips one instruction when native: make it skip the
    // whole compat block instead.
    f[compat_start - 1] = jump(jeq, arch::NATIVE, compat.len() as u8, 0);
    f.extend(compat);
    f.push(stmt(ld, OFF_NR));
    if let Some(bit) = arch::X32_BIT {
        f.push(jump(BPF_JMP | BPF_JGE | BPF_K, bit, 0, 1));
        f.push(stmt(ret, RET_ERRNO | libc::ENOSYS as u32));
    }
    f.push(jump(jeq, arch::IO_URING_SETUP, 0, 1));
    f.push(stmt(ret, deny));
    f.push(jump(jeq, arch::SOCKET, 1, 0));
    f.push(stmt(ret, RET_ALLOW));
    f.push(stmt(ld, OFF_ARG0));
    f.push(jump(jeq, libc::AF_UNIX as u32, 0, 1));
    f.push(stmt(ret, RET_ALLOW));
    f.push(stmt(ret, deny));
    f
}

/// Tell-tale output of a command the sandbox stopped.
const DENIAL_SIGNS: [&str; 7] = [
    "permission denied",
    "failure writing output",
    "operation not permitted",
    "read-only file system",
    "invalid cross-device link",
    "eacces",
    "eperm",
];

/// Output of a command that could not reach the network.
const NETWORK_SIGNS: [&str; 9] = [
    "could not resolve",
    "temporary failure in name resolution",
    "name or service not known",
    "network is unreachable",
    "failed to connect",
    "couldn't connect",
    "connection refused",
    "address family not supported",
    "getaddrinfo",
];

/// Whether a failed command's output suggests the sandbox stopped it.
pub fn looks_denied(output: &str, network: bool) -> bool {
    let lower = output.to_ascii_lowercase();
    DENIAL_SIGNS.iter().any(|s| lower.contains(s))
        || (!network && NETWORK_SIGNS.iter().any(|s| lower.contains(s)))
}

/// What the model is told after a sandboxed command failed that way.
pub fn denial_note(policy: &Policy) -> String {
    let net = if policy.network {
        "the network is on"
    } else {
        "no network"
    };
    format!(
        "sandbox: the command ran in Tether's OS sandbox (writes only inside the workspace and $TMPDIR, {net}) and may have been stopped by it. \
         Prefer a way that stays inside the workspace. If it really needs to write elsewhere or reach the network, call run_command again \
         with the same command, \"escalate\": true and a \"justification\" saying why; the person decides."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_jumps_stay_inside_the_program() {
        let f = network_filter();
        for (i, ins) in f.iter().enumerate() {
            let is_jump = ins.code & libc::BPF_JMP as u16 != 0 && ins.code & 0x07 == 0x05;
            if is_jump {
                assert!(i + 1 + (ins.jt as usize) < f.len(), "jt at {i}");
                assert!(i + 1 + (ins.jf as usize) < f.len(), "jf at {i}");
            }
        }
        assert_eq!(f.last().map(|i| i.k), Some(RET_ERRNO | libc::EACCES as u32));
    }

    #[test]
    fn read_only_writes_only_the_temp_dir_and_paths_must_exist() {
        // A temp root left by a server that was SIGKILLed (no such pid).
        let stale = std::env::temp_dir().join("tether-sandbox-4294967-stale");
        std::fs::create_dir_all(stale.join("session")).expect("stale root");
        let Ok(Some(sb)) = Sandbox::start(&SandboxConfig {
            mode: Mode::ReadOnly,
            network: false,
            writable: vec![PathBuf::from("/")],
        }) else {
            eprintln!("SKIP: no sandbox on this kernel");
            return;
        };
        assert!(!stale.exists(), "a dead server's temp root is removed");
        let ws = tempfile::tempdir().expect("ws");
        let tmp = sb.session_tmp("s/../1").expect("tmp");
        assert!(tmp.starts_with(&sb.temp.0), "a session id cannot climb out");
        let p = sb.policy(&[ws.path().to_path_buf()], &tmp);
        assert_eq!(p.writable, vec![tmp.clone()]);
        let ww = Sandbox {
            config: SandboxConfig {
                mode: Mode::WorkspaceWrite,
                network: true,
                writable: vec![PathBuf::from("/nonexistent-tether-path")],
            },
            ..sb.clone()
        };
        let p = ww.policy(&[ws.path().to_path_buf()], &tmp);
        assert_eq!(p.writable, vec![tmp.clone(), ws.path().to_path_buf()]);
        assert!(p.network);
        let temp_root = sb.temp.0.clone();
        drop((sb, ww));
        assert!(
            !temp_root.exists(),
            "the temp root goes with the last clone"
        );
    }

    #[test]
    fn modes_order_by_strictness() {
        assert!(Mode::Off.strictness() < Mode::WorkspaceWrite.strictness());
        assert!(Mode::WorkspaceWrite.strictness() < Mode::ReadOnly.strictness());
    }

    #[test]
    fn denials_are_recognised() {
        assert!(looks_denied("bash: ../f: Permission denied", true));
        assert!(looks_denied("curl: (7) Couldn't connect to server", false));
        assert!(!looks_denied("curl: (7) Couldn't connect to server", true));
        assert!(!looks_denied("error[E0308]: mismatched types", false));
    }
}
