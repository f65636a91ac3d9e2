//! Where a path really leads, and opening exactly that.
//!
//! The file tools judge the file the kernel would reach, not the text the
//! model wrote: [`resolve`] walks the path one component at a time with
//! `lstat`, following links the way the kernel does (a `..` after a link
//! climbs from the link's target), and reports the real, link-free path.
//! What was judged is then opened by that real path with symlinks refused
//! ([`open_nofollow`]: `openat2` with `RESOLVE_NO_SYMLINKS` where the kernel
//! has it, else an `O_NOFOLLOW` walk from `/`), and checked to be the same
//! inode — so a link swapped in after the check makes the call fail instead of
//! landing elsewhere. Writes are atomic ([`write_atomic`]): a temporary file in
//! the target's directory, fsync, rename, with mode and ownership kept.
//!
//! Everything here blocks; call it from `spawn_blocking`.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// The kernel's own limit on links followed while resolving one path.
const MAX_LINKS: usize = 40;

/// Identity and kind of an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub len: u64,
    pub is_file: bool,
    pub is_dir: bool,
}

impl FileId {
    fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            len: m.len(),
            is_file: m.is_file(),
            is_dir: m.is_dir(),
        }
    }
    fn same(&self, m: &std::fs::Metadata) -> bool {
        self.dev == m.dev() && self.ino == m.ino()
    }
}

/// A path as the kernel would resolve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The absolute path as named (not normalised: `link/..` is not `.`).
    pub named: PathBuf,
    /// The real path: absolute, no links, no `.` or `..`. The file may not
    /// exist yet (then its missing tail is kept as named).
    pub real: PathBuf,
    /// At least one symbolic link was followed on the way.
    pub linked: bool,
    /// The last component named is itself a link (its target is what is read
    /// or written; the link stays).
    pub final_link: bool,
    /// The existing file, if any.
    pub file: Option<FileId>,
}

impl Target {
    /// Other names share this file's content (a hard link).
    pub fn hard_links(&self) -> u64 {
        match self.file {
            Some(f) if f.is_file && f.nlink > 1 => f.nlink,
            _ => 0,
        }
    }
}

fn eloop() -> io::Error {
    io::Error::other(format!(
        "too many levels of symbolic links (more than {MAX_LINKS})"
    ))
}

/// Resolves `path` (absolute) like the kernel: every link followed, `..`
/// applied to the real directory reached so far, the final component looked
/// at with `lstat`. A missing tail is allowed (a file to create); a `..` below
/// a missing directory, a non-directory in the middle or a link loop is an
/// error.
pub fn resolve(path: &Path) -> io::Result<Target> {
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not absolute", path.display()),
        ));
    }
    // Components still to walk, in reverse (a stack): a link's target is
    // pushed in front of what remains.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut out = PathBuf::from("/");
    let mut missing = false;
    let mut linked = false;
    let mut final_link = false;
    let mut links = 0usize;
    while let Some(c) = pending.pop() {
        if c == "." {
            continue;
        }
        if c == ".." {
            if missing {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} does not exist", out.display()),
                ));
            }
            out.pop();
            continue;
        }
        let cand = out.join(&c);
        if missing {
            out = cand;
            continue;
        }
        match std::fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(eloop());
                }
                linked = true;
                final_link = pending.is_empty();
                let to = std::fs::read_link(&cand)?;
                if to.is_absolute() {
                    out = PathBuf::from("/");
                }
                push_components(&mut pending, &to);
            }
            Ok(m) => {
                if !m.is_dir() && pending.iter().any(|p| p != ".") {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("{} is not a directory", cand.display()),
                    ));
                }
                out = cand;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                out = cand;
            }
            Err(e) => return Err(e),
        }
    }
    let file = if missing {
        None
    } else {
        std::fs::symlink_metadata(&out).ok().map(|m| FileId::of(&m))
    };
    Ok(Target {
        named: path.to_path_buf(),
        real: out,
        linked,
        final_link,
        file,
    })
}

fn push_components(stack: &mut Vec<OsString>, p: &Path) {
    for c in p.components().rev() {
        match c {
            Component::Normal(s) => stack.push(s.to_os_string()),
            Component::ParentDir => stack.push("..".into()),
            Component::CurDir => stack.push(".".into()),
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a path with a NUL byte cannot be opened",
        )
    })
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens the real path `real` with `flags`, refusing a symbolic link in any
/// component: a link swapped in since the path was resolved fails the open.
pub fn open_nofollow(real: &Path, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        match openat2_no_symlinks(real, flags, mode) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {}
            other => return other.map_err(|e| changed(real, e)),
        }
    }
    walk_nofollow(real, flags, mode, false).map_err(|e| changed(real, e))
}

/// A refused link reads as what it is: the path changed after it was checked.
fn changed(real: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::EXDEV) {
        io::Error::other(format!(
            "{} changed after it was checked (a symbolic link appeared in its path); nothing was done",
            real.display()
        ))
    } else {
        e
    }
}

#[cfg(target_os = "linux")]
fn openat2_no_symlinks(real: &Path, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let c = cstr(real.as_os_str())?;
    // SAFETY: `open_how` is plain integers; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    if flags & libc::O_CREAT != 0 {
        how.mode = mode as u64;
    }
    how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `c` is a valid NUL-terminated string and `how` a valid
    // `open_how` of the size passed; the returned fd is owned below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Opens `real` from `/` one component at a time, each with `O_NOFOLLOW`;
/// with `create_dirs`, missing directories are made on the way (never
/// through a link).
fn walk_nofollow(
    real: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    create_dirs: bool,
) -> io::Result<OwnedFd> {
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let root = cstr(OsStr::new("/"))?;
    // SAFETY: valid C string; the fd is owned below.
    let mut dir = unsafe { OwnedFd::from_raw_fd(check(libc::open(root.as_ptr(), dir_flags))?) };
    let names: Vec<&OsStr> = real
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    let Some((last, middle)) = names.split_last() else {
        return Ok(dir);
    };
    for name in middle {
        let c = cstr(name)?;
        // SAFETY: valid fd and C string.
        let mut r = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), dir_flags) };
        if r < 0 && create_dirs && io::Error::last_os_error().kind() == io::ErrorKind::NotFound {
            // SAFETY: valid fd and C string.
            let made = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o777) };
            if made < 0 && io::Error::last_os_error().kind() != io::ErrorKind::AlreadyExists {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: as above.
            r = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), dir_flags) };
        }
        // SAFETY: a fresh fd from openat, owned from here.
        dir = unsafe { OwnedFd::from_raw_fd(check(r)?) };
    }
    let c = cstr(last)?;
    let last_flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: valid fd and C string; mode is passed as the variadic argument.
    let r = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            last_flags,
            mode as libc::c_uint,
        )
    };
    if r < 0
        && create_dirs
        && flags & libc::O_DIRECTORY != 0
        && io::Error::last_os_error().kind() == io::ErrorKind::NotFound
    {
        // SAFETY: valid fd and C string.
        let made = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o777) };
        if made < 0 && io::Error::last_os_error().kind() != io::ErrorKind::AlreadyExists {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        let r = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), last_flags) };
        // SAFETY: a fresh fd, owned from here.
        return Ok(unsafe { OwnedFd::from_raw_fd(check(r)?) });
    }
    // SAFETY: a fresh fd, owned from here.
    Ok(unsafe { OwnedFd::from_raw_fd(check(r)?) })
}

/// Reads the file `t` resolved to, at most `max` bytes: opened without
/// following links and checked to be the file that was judged.
pub fn read_checked(t: &Target, max: u64) -> io::Result<Vec<u8>> {
    // Non-blocking: a pipe put in the file's place must not hang the call
    // (regular files ignore the flag).
    let fd = open_nofollow(&t.real, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
    let mut f = File::from(fd);
    let m = f.metadata()?;
    if let Some(id) = t.file {
        if !id.same(&m) {
            return Err(io::Error::other(format!(
                "{} was replaced after it was checked; nothing was read",
                t.real.display()
            )));
        }
    }
    if m.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            format!("{} is a directory; use list_dir", t.real.display()),
        ));
    }
    if !m.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file (a {}); not read",
            t.real.display(),
            kind_name(&m)
        )));
    }
    if m.len() > max {
        return Err(io::Error::other(format!(
            "{} is {} bytes, too large to read whole; use search",
            t.real.display(),
            m.len()
        )));
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    Read::by_ref(&mut f).take(max + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn kind_name(m: &std::fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_fifo() {
        "pipe"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

/// Writes `bytes` to the file `t` resolved to, atomically: a temporary file
/// in the same directory (opened without following links), fsync, rename over
/// the real name, fsync of the directory. An existing file keeps its mode and
/// (when permitted) owner; a link named on the way stays a link. The file there
/// must still be the one that was judged.
pub fn write_atomic(t: &Target, bytes: &[u8]) -> io::Result<()> {
    let (Some(parent), Some(name)) = (t.real.parent(), t.real.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", t.real.display()),
        ));
    };
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY;
    let dir = match open_nofollow(parent, dir_flags, 0) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            walk_nofollow(parent, dir_flags, 0, true).map_err(|e| changed(parent, e))?
        }
        other => other?,
    };
    let cname = cstr(name)?;
    // What is there now must be what was judged.
    // SAFETY: zeroed `stat` is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, C string and out-pointer.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    let existing = if r == 0 { Some(st) } else { None };
    if r != 0 && io::Error::last_os_error().kind() != io::ErrorKind::NotFound {
        return Err(io::Error::last_os_error());
    }
    // (`st_dev`/`st_ino` are not u64 on every platform.)
    #[allow(clippy::unnecessary_cast)]
    let same =
        |st: &libc::stat, id: FileId| st.st_dev as u64 == id.dev && st.st_ino as u64 == id.ino;
    match (&existing, t.file) {
        (None, None) => {}
        (Some(st), Some(id)) if same(st, id) => {}
        _ => {
            return Err(io::Error::other(format!(
                "{} changed after it was checked; nothing was written",
                t.real.display()
            )))
        }
    }
    if let Some(st) = &existing {
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::other(format!(
                "{} is not a regular file; nothing was written",
                t.real.display()
            )));
        }
        // A read-only file stays read-only: rename would bypass its mode.
        // SAFETY: valid fd and C string.
        if unsafe { libc::faccessat(dir.as_raw_fd(), cname.as_ptr(), libc::W_OK, 0) } != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is not writable; nothing was written", t.real.display()),
            ));
        }
    }
    let tmp_name = format!(
        ".{}.tether-{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let ctmp = cstr(OsStr::new(&tmp_name))?;
    let create_mode: libc::mode_t = existing.as_ref().map_or(0o666, |st| st.st_mode & 0o777);
    // SAFETY: valid fd and C string; mode passed as the variadic argument.
    let fd = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            ctmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            create_mode as libc::c_uint,
        )
    })?;
    // SAFETY: a fresh fd, owned from here.
    let mut f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let written = (|| -> io::Result<()> {
        f.write_all(bytes)?;
        if let Some(st) = &existing {
            // Owner first (chown clears set-id bits), then the exact mode.
            // SAFETY: valid fd.
            let _ = unsafe { libc::fchown(f.as_raw_fd(), st.st_uid, st.st_gid) };
            // SAFETY: valid fd.
            check(unsafe { libc::fchmod(f.as_raw_fd(), st.st_mode & 0o7777) })?;
        }
        f.sync_all()?;
        // SAFETY: valid fds and C strings.
        check(unsafe {
            libc::renameat(
                dir.as_raw_fd(),
                ctmp.as_ptr(),
                dir.as_raw_fd(),
                cname.as_ptr(),
            )
        })?;
        Ok(())
    })();
    if let Err(e) = written {
        // SAFETY: valid fd and C string.
        unsafe { libc::unlinkat(dir.as_raw_fd(), ctmp.as_ptr(), 0) };
        return Err(e);
    }
    // The rename is durable once the directory is.
    // SAFETY: valid fd.
    unsafe { libc::fsync(dir.as_raw_fd()) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn links_are_followed_like_the_kernel() {
        let d = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(d.path()).expect("canon");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::write(root.join("a/f"), "x").expect("write");
        symlink(root.join("a/b"), root.join("l")).expect("link");
        // `l/..` is `a`, not the root: the kernel climbs from the target.
        let t = resolve(&root.join("l/../f")).expect("resolve");
        assert_eq!(t.real, root.join("a/f"));
        assert!(t.linked && !t.final_link);
        assert!(t.file.is_some_and(|f| f.is_file));
        // A dangling relative link: the real path is where it would create.
        symlink("gone/new.txt", root.join("a/dangle")).expect("link");
        let t = resolve(&root.join("a/dangle")).expect("resolve");
        assert_eq!(t.real, root.join("a/gone/new.txt"));
        assert!(t.final_link && t.file.is_none());
        // A loop is an error, not a hang.
        symlink(root.join("loop2"), root.join("loop1")).expect("link");
        symlink(root.join("loop1"), root.join("loop2")).expect("link");
        assert!(resolve(&root.join("loop1")).is_err());
    }

    #[test]
    fn a_pipe_is_refused_not_waited_on() {
        let d = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(d.path()).expect("canon");
        let fifo = root.join("pipe");
        let c = CString::new(fifo.as_os_str().as_bytes()).expect("cstr");
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = resolve(&fifo).expect("resolve");
        let e = read_checked(&t, 1024).expect_err("not a file");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn open_refuses_a_link_anywhere() {
        let d = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(d.path()).expect("canon");
        std::fs::create_dir_all(root.join("real")).expect("mkdir");
        std::fs::write(root.join("real/f"), "x").expect("write");
        symlink(root.join("real"), root.join("via")).expect("link");
        assert!(open_nofollow(&root.join("real/f"), libc::O_RDONLY, 0).is_ok());
        assert!(open_nofollow(&root.join("via/f"), libc::O_RDONLY, 0).is_err());
        assert!(walk_nofollow(&root.join("via/f"), libc::O_RDONLY, 0, false).is_err());
        assert!(walk_nofollow(&root.join("real/f"), libc::O_RDONLY, 0, false).is_ok());
    }

    #[test]
    fn a_link_swapped_in_after_the_check_fails_the_write_and_the_read() {
        let d = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(d.path()).expect("canon");
        let out = tempfile::tempdir().expect("tmp");
        let out = std::fs::canonicalize(out.path()).expect("canon");
        std::fs::create_dir_all(root.join("dir")).expect("mkdir");
        std::fs::write(root.join("dir/f"), "inside").expect("write");
        std::fs::write(out.join("f"), "outside").expect("write");
        // Judged while `dir` was a real directory inside...
        let t = resolve(&root.join("dir/f")).expect("resolve");
        assert!(!t.linked);
        // ...then `dir` becomes a link out before the write.
        std::fs::rename(root.join("dir"), root.join("moved")).expect("mv");
        symlink(&out, root.join("dir")).expect("link");
        let e = write_atomic(&t, b"evil").expect_err("refused");
        assert!(
            e.to_string().contains("changed after it was checked"),
            "{e}"
        );
        assert!(read_checked(&t, 1024).is_err());
        assert_eq!(
            std::fs::read_to_string(out.join("f")).expect("read"),
            "outside"
        );
        let stray: Vec<_> = std::fs::read_dir(&out).expect("ls").flatten().collect();
        assert_eq!(stray.len(), 1, "no temporary file outside: {stray:?}");
    }

    #[test]
    fn atomic_write_keeps_mode_and_detects_a_swap() {
        let d = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(d.path()).expect("canon");
        let p = root.join("run.sh");
        std::fs::write(&p, "old").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o751)).expect("chmod");
        let t = resolve(&p).expect("resolve");
        write_atomic(&t, b"new").expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "new");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o751);
        // The file judged was replaced by another: refused. The judged file
        // is the one there now (the first write replaced the original, whose
        // inode number the file system may hand out again), and its
        // replacement is made while it still exists, so the two cannot share
        // an inode number.
        let stale = resolve(&p).expect("resolve");
        std::fs::write(root.join("other"), "other").expect("write");
        std::fs::rename(root.join("other"), &p).expect("rename");
        assert!(write_atomic(&stale, b"x").is_err());
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "other");
        // Missing parents are created.
        let t = resolve(&root.join("new/dir/f.txt")).expect("resolve");
        write_atomic(&t, b"hi").expect("write");
        assert_eq!(
            std::fs::read_to_string(root.join("new/dir/f.txt")).expect("read"),
            "hi"
        );
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&root)
            .expect("ls")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("tether-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
