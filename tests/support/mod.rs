//! Test support shared by the integration tests: a scripted model server
//! ([`model`]), an emulated editor ([`editor`]), a workspace fixture, and helpers
//! to look at processes and wait for conditions.
//!
//! Each test binary uses a subset, hence the allow below.
#![allow(dead_code)]

pub mod editor;
pub mod model;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A temporary workspace with a few files:
///
/// ```text
/// .git/               minimal repository skeleton (HEAD, objects/, refs/), so
///                     gitignore rules apply
/// .gitignore          "target/\n"
/// README.md           "# Demo\n\nA small demo project.\n"
/// Cargo.toml          a minimal package
/// src/main.rs         fn main, calls demo::add
/// src/lib.rs          pub fn add
/// src/unicode.txt     "héllo 😀 wörld\nzweite Zeile\n" (multi-byte and astral chars)
/// docs/with space.md  a path that needs percent-encoding in a URI
/// target/debug/build.log  ignored by .gitignore
/// ```
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tether-ws-")
        .tempdir()
        .expect("create workspace temp dir");
    let files: &[(&str, &str)] = &[
        (".git/HEAD", "ref: refs/heads/main\n"),
        (".gitignore", "target/\n"),
        ("README.md", "# Demo\n\nA small demo project.\n"),
        (
            "Cargo.toml",
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        (
            "src/main.rs",
            "fn main() {\n    println!(\"{}\", demo::add(2, 3));\n}\n",
        ),
        (
            "src/lib.rs",
            "/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
        ),
        ("src/unicode.txt", "héllo 😀 wörld\nzweite Zeile\n"),
        (
            "docs/with space.md",
            "# Notes\n\nA file whose path has a space.\n",
        ),
        ("target/debug/build.log", "ignored build output\n"),
    ];
    for (rel, content) in files {
        write_file(dir.path(), rel, content);
    }
    for d in [".git/objects", ".git/refs/heads", ".git/refs/tags"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("create .git skeleton");
    }
    dir
}

/// Write `content` to `root/rel`, creating parent directories.
pub fn write_file(root: &Path, rel: &str, content: &str) -> PathBuf {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

/// `file://` URI of an absolute path, percent-encoding everything outside
/// RFC 3986's unreserved set and `/` (so spaces become `%20`).
pub fn uri(path: &Path) -> String {
    let s = path.to_string_lossy();
    let mut out = String::from("file://");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path of a `file://` URI (percent-decoded); `None` for other schemes.
pub fn path_from_uri(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// Poll `pred` every 20 ms until it holds or `timeout` passes; returns whether it
/// held. For conditions nothing notifies about (processes, files).
pub async fn wait_until(mut pred: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if pred() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A process as /proc shows it.
#[derive(Clone, Debug)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// One-letter state (R, S, D, Z, T, ...).
    pub state: char,
    /// argv joined by spaces (empty for kernel threads and zombies).
    pub cmdline: String,
}

/// Every process currently visible in /proc (skipping ones that vanish meanwhile).
pub fn processes() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_info)
        .collect()
}

/// /proc/<pid> of one process, if it still exists.
pub fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ..." — comm may contain spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 2..];
    let mut f = after.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        state,
        cmdline,
    })
}

/// Live (non-zombie) processes in process group `pgid`.
pub fn processes_in_group(pgid: i32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|p| p.pgid == pgid && p.state != 'Z')
        .map(|p| p.pid)
        .collect()
}

/// Live processes other than this one whose command line contains `needle`.
pub fn pids_matching(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    processes()
        .into_iter()
        .filter(|p| p.pid != me && p.state != 'Z' && p.cmdline.contains(needle))
        .map(|p| p.pid)
        .collect()
}

/// Live descendants of `pid` (children, grandchildren, ...).
pub fn descendants(pid: i32) -> Vec<i32> {
    let all = processes();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for c in all.iter().filter(|c| c.ppid == p) {
            if !out.contains(&c.pid) {
                if c.state != 'Z' {
                    out.push(c.pid);
                }
                frontier.push(c.pid);
            }
        }
    }
    out
}

/// Waits until the `turnEnd` update of the turn that produced `result` (a
/// `tether/prompt` result) has arrived: the ordering guarantee for updates.
pub async fn turn_ended(ed: &editor::Editor, result: &serde_json::Value) {
    let turn = result["turnId"].clone();
    ed.wait_update(
        |u| u["kind"] == "turnEnd" && u["turnId"] == turn,
        std::time::Duration::from_secs(20),
    )
    .await;
}

/// The editor configuration every scenario starts from: the real `tether`
/// binary, the scripted model, a data dir, and `extra` initializationOptions
/// merged on top.
pub fn tether_config(
    bin: &str,
    profile: editor::ClientProfile,
    root: &Path,
    model: &model::ModelServer,
    data: &Path,
    extra: serde_json::Value,
) -> editor::EditorConfig {
    let mut opts = serde_json::json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data,
    });
    if let (Some(o), Some(e)) = (opts.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    editor::EditorConfig::new(bin, profile, root).init_options(opts)
}
