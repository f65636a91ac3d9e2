//! What the system prompt says besides Tether's own rules: the project's
//! instructions (`AGENTS.md`) and the environment of the turn.
//!
//! `AGENTS.md` files are read from the person's config dir
//! (`$XDG_CONFIG_HOME/tether/AGENTS.md`, general), then from the repository
//! root down to the workspace root (the directory holding `.git` ends the
//! walk up; without one only the workspace root is read), the most specific
//! last. Each file is cut at [`MAX_FILE_BYTES`], all of them at
//! [`MAX_TOTAL_BYTES`]. Reading is blocking work: callers run it off the
//! async workers.
//!
//! The environment is one compact block per turn: OS, shell, date, the
//! workspace root, the git branch and whether the tree is dirty (one `git
//! status` with a short timeout; a missing or slow git is left out), and the
//! file the person is in when the prompt carries editor context.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::ContextRef;

pub const MAX_FILE_BYTES: usize = 16 * 1024;
pub const MAX_TOTAL_BYTES: usize = 32 * 1024;
const GIT_TIMEOUT: Duration = Duration::from_secs(2);

/// The instruction files found, and the text for the system prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instructions {
    /// Each file read and its size in bytes.
    pub files: Vec<(PathBuf, usize)>,
    pub text: String,
}

/// The `AGENTS.md` files that apply to `root`, general first.
pub fn files(root: &Path, personal: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut dir = Some(root);
    let mut repo_found = false;
    while let Some(d) = dir {
        dirs.push(d.to_path_buf());
        if d.join(".git").exists() {
            repo_found = true;
            break;
        }
        dir = d.parent();
    }
    if !repo_found {
        dirs.truncate(1);
    }
    let mut out: Vec<PathBuf> = personal.map(Path::to_path_buf).into_iter().collect();
    out.extend(dirs.into_iter().rev().map(|d| d.join("AGENTS.md")));
    out.retain(|p| p.is_file());
    out.dedup();
    out
}

/// Reads the instruction files (blocking).
pub fn load(root: &Path, personal: Option<&Path>) -> Instructions {
    let mut inst = Instructions::default();
    let mut total = 0;
    for path in files(root, personal) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let room = MAX_FILE_BYTES.min(MAX_TOTAL_BYTES.saturating_sub(total));
        if room == 0 {
            break;
        }
        let kept = crate::text::prefix(&text, crate::text::Max::Bytes(room));
        let mut body = kept.trim().to_string();
        if kept.len() < text.len() {
            body.push_str(&format!(
                "\n[… cut: the file has {} bytes, Tether reads at most {room}]",
                text.len()
            ));
        }
        if body.is_empty() {
            continue;
        }
        total += body.len();
        inst.files.push((path.clone(), bytes.len()));
        inst.text.push_str(&format!(
            "\n\nInstructions from {}:\n{body}",
            path.display()
        ));
    }
    if !inst.text.is_empty() {
        inst.text = format!(
            "# Project instructions (AGENTS.md; more specific files come later and win){}",
            inst.text
        );
    }
    inst
}

/// The environment block of a turn.
pub async fn environment(root: &Path, context: &[ContextRef]) -> String {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "unknown".into());
    let date = time::OffsetDateTime::now_utc().date();
    let mut s = format!(
        "# Environment\nOS: {} ({}); shell: {shell}; date: {date} (UTC); workspace root: {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        root.display()
    );
    if let Some(git) = git_state(root).await {
        s.push_str(&format!("; git: {git}"));
    }
    if let Some(c) = context.first() {
        let path = crate::tools::uri_to_path(&c.uri)
            .map(|p| {
                p.strip_prefix(root)
                    .map(Path::to_path_buf)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .unwrap_or_else(|| c.uri.clone());
        let lines = c
            .range
            .map(|r| {
                format!(
                    " (selection: lines {}-{})",
                    r.start.line + 1,
                    r.end.line + 1
                )
            })
            .unwrap_or_default();
        s.push_str(&format!("\nThe person is in: {path}{lines}"));
    }
    s
}

/// `branch main, clean` / `branch main, 3 changed files`; `None` outside a
/// repository or when git is missing or slow.
async fn git_state(root: &Path) -> Option<String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(root)
        .args([
            "status",
            "--porcelain=v1",
            "--branch",
            "--untracked-files=normal",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(GIT_TIMEOUT, cmd.output())
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let head = lines.next()?.strip_prefix("## ")?;
    let branch = head
        .split("...")
        .next()
        .unwrap_or(head)
        .trim_start_matches("No commits yet on ")
        .trim();
    let changed = lines.filter(|l| !l.trim().is_empty()).count();
    Some(match changed {
        0 => format!("branch {branch}, clean"),
        n => format!("branch {branch}, {n} changed files (dirty)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_files_from_the_repository_root_down_and_capped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        let ws = repo.join("crates/app");
        std::fs::create_dir_all(&ws).expect("mkdir");
        std::fs::create_dir(repo.join(".git")).expect("mkdir .git");
        std::fs::write(tmp.path().join("AGENTS.md"), "outside the repo").expect("write");
        std::fs::write(repo.join("AGENTS.md"), "repo rule").expect("write");
        std::fs::write(ws.join("AGENTS.md"), "x".repeat(MAX_FILE_BYTES + 100)).expect("write");
        let personal = tmp.path().join("personal.md");
        std::fs::write(&personal, "personal rule").expect("write");
        let inst = load(&ws, Some(&personal));
        let names: Vec<_> = inst.files.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(
            names,
            vec![personal, repo.join("AGENTS.md"), ws.join("AGENTS.md")]
        );
        assert!(!inst.text.contains("outside the repo"));
        let (p, r) = (
            inst.text.find("personal rule").expect("personal"),
            inst.text.find("repo rule").expect("repo"),
        );
        assert!(p < r, "general first");
        assert!(inst.text.contains("[… cut"));
        assert!(inst.text.len() < MAX_TOTAL_BYTES + 1024);
        // Without a repository only the workspace root's file is read.
        let lone = tmp.path().join("lone");
        std::fs::create_dir(&lone).expect("mkdir");
        assert!(load(&lone, None).files.is_empty());
    }
}
