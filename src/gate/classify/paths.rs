//! Lexical path rules: system directories, home, raw disks, secrets, and the
//! edit classifier. Nothing here touches the disk.

use std::path::{Component, Path, PathBuf};

use super::args::Names;
use super::words::DYN;
use super::{Class, Verdict};

/// Stands for the user's home directory name inside a normalised path.
const HOME_MARK: &str = "\u{2}~";

/// Top-level directories whose removal breaks the machine.
const SYSTEM_TOP: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "etc",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "proc",
    "root",
    "sbin",
    "sys",
    "usr",
    "var",
    "opt",
    "home",
    "srv",
    "snap",
    "Users",
    "System",
    "Library",
    "Applications",
];
/// Second-level directories under `/usr` whose removal breaks the machine.
const USR_SUB: &[&str] = &[
    "bin", "sbin", "lib", "lib32", "lib64", "libexec", "local", "share", "include",
];
/// Top-level directories where a write needs approval.
const SYSTEM_WRITE: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "etc",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "proc",
    "root",
    "sbin",
    "sys",
    "usr",
    "var",
    "opt",
    "srv",
    "snap",
    "System",
    "Library",
    "Applications",
];
/// Device nodes that are harmless to write to.
const BENIGN_DEV: &[&str] = &[
    "null", "zero", "full", "stdout", "stderr", "stdin", "tty", "fd", "random", "urandom", "pts",
    "shm",
];
/// Prefixes of raw block devices under `/dev`.
const RAW_DISK: &[&str] = &[
    "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "disk", "rdisk", "dm-", "md", "mapper", "nbd", "sr",
];
/// File names that hold credentials or run code at login (in lower case).
static SECRET_NAMES: Names = Names::new(&[
    ".env",
    ".envrc",
    ".netrc",
    ".vault-token",
    ".dockercfg",
    "kubeconfig",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".pgpass",
    ".my.cnf",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".zlogout",
    ".kshrc",
    ".cshrc",
    ".tcshrc",
    "config.fish",
    ".gitconfig",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
    "authorized_keys",
]);
/// Directories whose contents are all credentials.
const SECRET_DIRS: &[&str] = &[
    ".ssh", ".gnupg", ".aws", ".kube", ".docker", ".azure", "gcloud",
];
/// Extensions of key and certificate bundles.
const SECRET_EXT: &[&str] = &[".pem", ".key", ".p12", ".pfx"];

/// A path split into components after lexical normalisation.
#[derive(Debug)]
pub(super) struct Norm<'a> {
    /// Absolute (from `/`, or from `~`, which maps to `/home/<user>`).
    pub abs: bool,
    /// Components, borrowed from the text (no copies; most paths fit inline).
    pub comps: smallvec::SmallVec<[&'a str; 8]>,
    /// For relative paths: how many `..` climbed above the start.
    pub up: usize,
}

impl<'a> Norm<'a> {
    pub(super) fn new(text: &'a str) -> Norm<'a> {
        let mut comps: smallvec::SmallVec<[&'a str; 8]> = smallvec::SmallVec::new();
        let (abs, rest) = if let Some(after) = text.strip_prefix('~') {
            let (user, rest) = after.split_once('/').unwrap_or((after, ""));
            comps.push("home");
            comps.push(if user.is_empty() { HOME_MARK } else { user });
            (true, rest)
        } else if text.starts_with('/') {
            (true, text)
        } else {
            (false, text)
        };
        let mut up = 0;
        for seg in rest.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if comps.pop().is_none() && !abs {
                        up += 1;
                    }
                }
                s => comps.push(s),
            }
        }
        Norm { abs, comps, up }
    }
    fn first(&self) -> Option<&'a str> {
        self.comps.first().copied()
    }
    fn is_home_based(&self) -> bool {
        self.comps.get(1).copied() == Some(HOME_MARK)
    }
}

/// Normalised spelling of a path, for comparing paths written differently.
pub(super) fn key(text: &str) -> String {
    let n = Norm::new(text);
    let body_len: usize = n.comps.iter().map(|c| c.len() + 1).sum();
    let mut out = String::with_capacity(body_len + 3 * n.up + 1);
    if n.abs {
        out.push('/');
    } else {
        for _ in 0..n.up {
            out.push_str("../");
        }
        if n.comps.is_empty() && n.up == 0 {
            out.push('.');
        }
    }
    for (i, c) in n.comps.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(c);
    }
    out
}

fn globby(s: &str) -> bool {
    s.contains(['*', '?', '[', DYN]) || (s.contains('{') && s.contains(','))
}

fn critical_exact(c: &[&str]) -> bool {
    match c {
        [] => true,
        [a] => SYSTEM_TOP.contains(a) || globby(a),
        [a, b] => {
            (*a == "usr" && USR_SUB.contains(b))
                || (*a == "var" && *b == "lib")
                || *a == "home"
                || *a == "Users"
        }
        _ => false,
    }
}

/// `/`, a system directory, a home directory, or a glob covering one of them.
pub(super) fn is_critical(text: &str) -> bool {
    let n = Norm::new(text);
    if !n.abs {
        return false;
    }
    let mut end = n.comps.len();
    while end > 0 && n.comps.get(end - 1).is_some_and(|c| globby(c)) {
        end -= 1;
    }
    n.comps.get(..end).is_some_and(critical_exact)
}

/// A relative path that stays inside the current directory.
pub(super) fn is_local(text: &str) -> bool {
    let n = Norm::new(text);
    !n.abs && n.up == 0 && !text.starts_with(DYN)
}

/// Absolute path inside a system directory (where writes need approval).
pub(super) fn is_system(text: &str) -> bool {
    system_norm(&Norm::new(text))
}

fn system_norm(n: &Norm) -> bool {
    if !n.abs || n.is_home_based() {
        return false;
    }
    match n.first() {
        None => true,
        Some("var") => n.comps.get(1).copied() != Some("tmp"),
        Some("dev") => !is_benign_dev(n),
        Some(f) => SYSTEM_WRITE.contains(&f),
    }
}

fn is_benign_dev(n: &Norm) -> bool {
    n.comps.get(1).is_some_and(|d| BENIGN_DEV.contains(d))
}

/// A raw block device such as `/dev/sda` or `/dev/nvme0n1`.
pub(super) fn is_raw_disk(text: &str) -> bool {
    raw_disk_norm(&Norm::new(text))
}

fn raw_disk_norm(n: &Norm) -> bool {
    n.abs
        && n.first() == Some("dev")
        && n.comps
            .get(1)
            .is_some_and(|d| RAW_DISK.iter().any(|p| d.starts_with(p)))
}

/// Secret names are matched without regard to case: macOS and Windows file
/// systems are case-insensitive, so `.ENV` and `ID_RSA` are the same files.
fn secret_comps(comps: &[&str]) -> bool {
    let name = comps.last().copied().unwrap_or("").as_bytes();
    let ends_with = |e: &str| {
        name.len()
            .checked_sub(e.len())
            .and_then(|i| name.get(i..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(e.as_bytes()))
    };
    SECRET_NAMES.contains_ignore_ascii_case(comps.last().copied().unwrap_or(""))
        || name
            .get(..5)
            .is_some_and(|head| head.eq_ignore_ascii_case(b".env."))
        || SECRET_EXT.iter().any(|e| ends_with(e))
        || comps
            .iter()
            .rev()
            .skip(1)
            .any(|c| SECRET_DIRS.iter().any(|d| c.eq_ignore_ascii_case(d)))
}

/// Credentials, keys, `.env` files or shell start-up files.
pub(super) fn is_secret(text: &str) -> bool {
    secret_comps(&Norm::new(text).comps)
}

/// Any component named `.git`, in any case.
pub(super) fn in_git_dir(text: &str) -> bool {
    git_dir_norm(&Norm::new(text))
}

fn git_dir_norm(n: &Norm) -> bool {
    n.comps.iter().any(|c| c.eq_ignore_ascii_case(".git"))
}

/// Why writing to `text` needs approval (or is forbidden), if it does.
pub(super) fn write_danger(text: &str) -> Option<(Class, &'static str)> {
    // One normalisation for every rule below.
    let n = Norm::new(text);
    if raw_disk_norm(&n) {
        return Some((Class::Forbidden, "writes to a raw disk device"));
    }
    if n.abs && n.comps.iter().copied().eq(["proc", "sysrq-trigger"]) {
        return Some((Class::Forbidden, "triggers a kernel sysrq action"));
    }
    if n.abs && n.first() == Some("dev") && matches!(n.comps.get(1).copied(), Some("tcp" | "udp")) {
        return Some((Class::Ask, "opens a network connection"));
    }
    if secret_comps(&n.comps) {
        return Some((
            Class::Ask,
            "writes to credentials, keys or shell start-up files",
        ));
    }
    if system_norm(&n) {
        return Some((Class::Ask, "writes to a system path"));
    }
    if git_dir_norm(&n) {
        return Some((Class::Ask, "writes inside .git"));
    }
    None
}

/// Lexical normalisation of a filesystem path (no disk access).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// See [`super::classify_edit`].
pub(super) fn classify_edit(path: &Path, roots: &[PathBuf]) -> Verdict {
    let joined = match roots.first() {
        Some(r0) if !path.is_absolute() => r0.join(path),
        _ => path.to_path_buf(),
    };
    let norm = normalize(&joined);
    let shown = norm.display().to_string();
    let ask = |what: &str| Verdict {
        class: Class::Ask,
        reason: format!("{what} ({shown})"),
    };
    let names: Vec<String> = norm
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if secret_comps(&names) {
        return ask("edit of credentials, keys or shell start-up files");
    }
    let inside = roots.iter().map(|r| normalize(r)).find(|r| {
        norm.starts_with(r) && norm != *r && !norm.components().any(|c| c == Component::ParentDir)
    });
    let Some(root) = inside else {
        return ask("edit outside the workspace");
    };
    let below_root = norm.strip_prefix(&root).unwrap_or(&norm);
    if below_root
        .components()
        .any(|c| c.as_os_str().eq_ignore_ascii_case(".git"))
    {
        return ask("edit inside .git");
    }
    Verdict {
        class: Class::Safe,
        reason: format!("edit inside the workspace ({shown})"),
    }
}

/// Where a read lands, judged on the real (link-free, absolute) path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPlace {
    /// Keys, credentials, `.env` files, shell start-up files: ask every time,
    /// inside the workspace too.
    Secret,
    /// Inside one of the roots.
    Inside,
    /// A read-only place that holds dependency sources and documentation.
    Dependency,
    /// Anywhere else outside the roots.
    Outside,
}

/// Directories below the home directory that hold dependency sources.
const DEP_HOME: &[&[&str]] = &[
    &[".cargo", "registry"],
    &[".cargo", "git"],
    &[".rustup"],
    &["go", "pkg", "mod"],
    &[".m2", "repository"],
    &[".gradle", "caches"],
    &[".pyenv", "versions"],
    &[".nvm", "versions"],
    &[".rbenv", "versions"],
    &[".gem"],
];
/// Absolute directories that hold headers, sources and documentation.
const DEP_ABS: &[&[&str]] = &[
    &["usr", "include"],
    &["usr", "local", "include"],
    &["usr", "share", "doc"],
    &["usr", "share", "man"],
    &["usr", "src"],
    &["opt", "homebrew", "include"],
];
/// A component with one of these names holds installed packages.
const DEP_ANYWHERE: &[&str] = &["node_modules", "site-packages", "dist-packages"];

fn comps_of(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

fn starts_with_comps(comps: &[String], prefix: &[&str]) -> bool {
    comps.len() >= prefix.len() && comps.iter().zip(prefix).all(|(c, p)| c == p)
}

/// See [`super::classify_read`].
pub(super) fn classify_read(real: &Path, roots: &[PathBuf], home: Option<&Path>) -> ReadPlace {
    let norm = normalize(real);
    let comps = comps_of(&norm);
    let names: Vec<&str> = comps.iter().map(String::as_str).collect();
    if norm.is_absolute() && secret_comps(&names) {
        return ReadPlace::Secret;
    }
    if norm.is_absolute()
        && roots
            .iter()
            .map(|r| normalize(r))
            .any(|r| r.is_absolute() && norm.starts_with(&r))
    {
        return ReadPlace::Inside;
    }
    if !norm.is_absolute() {
        return ReadPlace::Outside;
    }
    if DEP_ABS.iter().any(|d| starts_with_comps(&comps, d))
        || comps.iter().any(|c| DEP_ANYWHERE.contains(&c.as_str()))
        || (comps.len() >= 3
            && ["usr", "usr/local"]
                .iter()
                .any(|pre| norm.starts_with(Path::new("/").join(pre).join("lib")))
            && comps
                .iter()
                .any(|c| c.starts_with("python3") || c.starts_with("python2")))
    {
        return ReadPlace::Dependency;
    }
    if let Some(home) = home.map(normalize).filter(|h| h.is_absolute()) {
        if let Ok(below) = norm.strip_prefix(&home) {
            let below = comps_of(below);
            if DEP_HOME.iter().any(|d| starts_with_comps(&below, d)) {
                return ReadPlace::Dependency;
            }
        }
    }
    ReadPlace::Outside
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secret names are compared without regard to case (written in lower
    /// case, as any other case would never match).
    #[test]
    fn secret_names_are_lower_case() {
        for n in SECRET_NAMES.list() {
            assert_eq!(*n, n.to_ascii_lowercase());
            assert!(is_secret(&format!("a/{}", n.to_ascii_uppercase())), "{n}");
        }
    }

    #[test]
    fn secret_and_git_names_match_in_any_case() {
        let roots = [PathBuf::from("/ws")];
        for p in [
            "/ws/.GIT/hooks/pre-commit",
            "/ws/.Git/config",
            "/ws/.ENV",
            "/ws/.Env.Local",
            "/ws/ID_RSA",
            "/ws/server.KEY",
            "/ws/cert.PEM",
            "/ws/.SSH/config",
            "/ws/.NETRC",
        ] {
            let v = classify_edit(Path::new(p), &roots);
            assert_eq!(v.class, Class::Ask, "{p}: {}", v.reason);
        }
        assert_eq!(
            classify_edit(Path::new("/ws/src/gitlab.rs"), &roots).class,
            Class::Safe
        );
        assert!(is_secret("deploy/.ENV") && in_git_dir("x/.GIT/config"));
    }

    #[test]
    fn reads_are_judged_by_place() {
        let roots = [PathBuf::from("/ws")];
        let home = Some(Path::new("/home/u"));
        let place = |p: &str| classify_read(Path::new(p), &roots, home);
        assert_eq!(place("/ws/src/main.rs"), ReadPlace::Inside);
        assert_eq!(place("/ws"), ReadPlace::Inside);
        assert_eq!(place("/ws/.env"), ReadPlace::Secret);
        assert_eq!(place("/ws/.ENV.production"), ReadPlace::Secret);
        assert_eq!(place("/ws/keys/server.key"), ReadPlace::Secret);
        assert_eq!(place("/home/u/.ssh/id_ed25519"), ReadPlace::Secret);
        assert_eq!(place("/home/u/.aws/credentials"), ReadPlace::Secret);
        assert_eq!(place("/home/u/.docker/config.json"), ReadPlace::Secret);
        assert_eq!(
            place("/home/u/.config/gcloud/credentials.db"),
            ReadPlace::Secret
        );
        assert_eq!(place("/home/u/.kube/config"), ReadPlace::Secret);
        assert_eq!(place("/home/u/.npmrc"), ReadPlace::Secret);
        assert_eq!(place("/home/u/.git-credentials"), ReadPlace::Secret);
        assert_eq!(
            place("/home/u/.cargo/registry/src/x/serde-1/src/lib.rs"),
            ReadPlace::Dependency
        );
        assert_eq!(
            place("/home/u/.rustup/toolchains/x/lib.rs"),
            ReadPlace::Dependency
        );
        assert_eq!(place("/usr/include/stdio.h"), ReadPlace::Dependency);
        assert_eq!(place("/usr/share/doc/bash/README"), ReadPlace::Dependency);
        assert_eq!(
            place("/usr/lib/python3.11/site-packages/x.py"),
            ReadPlace::Dependency
        );
        assert_eq!(
            place("/other/node_modules/x/index.js"),
            ReadPlace::Dependency
        );
        // A secret inside a dependency cache is still a secret.
        assert_eq!(place("/other/node_modules/x/.env"), ReadPlace::Secret);
        assert_eq!(place("/home/u/notes.txt"), ReadPlace::Outside);
        assert_eq!(place("/etc/passwd"), ReadPlace::Outside);
        assert_eq!(
            place("/wsx/a.rs"),
            ReadPlace::Outside,
            "a sibling with a shared prefix"
        );
        assert_eq!(place("relative.txt"), ReadPlace::Outside);
    }
}
