//! The tools the model sees (docs/DESIGN.md §4): the [`registry`] (one entry
//! per tool: name, schema, title, access, run; the built-in ones in
//! [`builtin`]) and their implementations. Each call gets a [`ToolCtx`] with everything it may use —
//! the workspace, the gate, the cancel token — and returns a [`ToolResult`]
//! whose text goes back to the model.
//!
//! **Invariants:** tools reach a person only through `ctx.gate`; a command
//! never inherits stdin or Tether's secrets; a tool never panics on the
//! model's arguments (bad arguments are a failed result the model can read).

pub mod builtin;
pub mod command;
pub mod fs;
pub mod realpath;
pub mod redact;
pub mod registry;
pub mod supervise;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::ToolsConfig;
use crate::gate::{ApprovalEvents, AskContext, Gate};
use crate::protocol::ToolStatus;
pub use redact::Redactor;
pub use registry::{Call, Registry, Tool, ToolSource};

/// An edit to an open buffer: replace the bytes `start..end` of the text
/// that [`Buffers::open_text`] returned with `new_text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferEdit {
    pub start: usize,
    pub end: usize,
    pub new_text: String,
}

/// The editor's view of documents: open buffers may hold unsaved text.
pub trait Buffers: Send + Sync {
    /// The editor's current text of `path`, if it is open there.
    fn open_text(&self, path: &Path) -> Option<String>;

    /// Whether edits can be applied to open buffers (`workspace.applyEdit`).
    fn can_apply(&self) -> bool {
        false
    }

    /// Whether the editor's Tether plugin saves a buffer that an agent edit
    /// found clean (`capabilities.experimental.tether.savesAgentEdits`).
    fn saves_agent_edits(&self) -> bool {
        false
    }

    /// Applies `edit` to the editor's buffer of `path`, so the person sees it
    /// and can undo it. Fails when the editor refuses or the buffer changed.
    fn apply_edit(
        &self,
        path: &Path,
        edit: BufferEdit,
    ) -> futures::future::BoxFuture<'static, Result<(), String>> {
        let _ = edit;
        let shown = path.display().to_string();
        Box::pin(async move { Err(format!("{shown} is not open in an editor")) })
    }

    /// Whether the client reads files itself (ACP `fs/read_text_file`: it
    /// answers with its unsaved buffer when the file is open there); then
    /// [`Buffers::read_through`] replaces reading the disk.
    fn reads_through(&self) -> bool {
        false
    }

    /// Reads `path` through the client. Called only after the gate allowed
    /// the read, with the real path it judged; `session_id` is the person's
    /// session.
    fn read_through(
        &self,
        session_id: &str,
        path: &Path,
    ) -> futures::future::BoxFuture<'static, Result<String, String>> {
        let _ = session_id;
        let shown = path.display().to_string();
        Box::pin(async move { Err(format!("the client does not read {shown}")) })
    }

    /// Whether the client writes files itself (ACP `fs/write_text_file`:
    /// the edit lands in its buffer); then [`Buffers::write_through`]
    /// replaces writing the disk and the open buffers.
    fn writes_through(&self) -> bool {
        false
    }

    /// Writes `text` as the whole content of `path` through the client.
    /// Called only after the gate allowed the write, with the real path.
    fn write_through(
        &self,
        session_id: &str,
        path: &Path,
        text: &str,
    ) -> futures::future::BoxFuture<'static, Result<(), String>> {
        let _ = (session_id, text);
        let shown = path.display().to_string();
        Box::pin(async move { Err(format!("the client does not write {shown}")) })
    }
}

/// No editor (headless): nothing is open.
pub struct NoBuffers;

impl Buffers for NoBuffers {
    fn open_text(&self, _path: &Path) -> Option<String> {
        None
    }
}

/// Everything one tool call may use. Passed explicitly; never global.
#[derive(Clone)]
pub struct ToolCtx {
    pub root: PathBuf,
    pub buffers: Arc<dyn Buffers>,
    pub gate: Gate,
    pub cancel: CancellationToken,
    pub events: Arc<dyn ApprovalEvents>,
    /// The session this agent stores into (a subagent's own session).
    pub session_id: String,
    /// The session of the turn (the person's), for approvals: "Allow for
    /// session" and the chat file belong to it.
    pub turn_session_id: String,
    pub tools: ToolsConfig,
    /// Environment variables removed from commands (Tether's own secrets).
    pub secret_env: Vec<String>,
    pub redactor: Arc<Redactor>,
    /// Live output of the running call (set per call by the scheduler).
    pub progress: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

impl ToolCtx {
    pub fn ask_ctx<'a>(&'a self, cwd: &'a Path) -> AskContext<'a> {
        AskContext {
            session_id: &self.turn_session_id,
            cwd,
            cancel: &self.cancel,
            events: self.events.as_ref(),
            redactor: &self.redactor,
        }
    }

    /// Resolves a model-given path against the workspace root, lexically.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        };
        normalize(&joined)
    }

    /// A model-given path made absolute against the workspace root, as the
    /// kernel will see it: `..` is *not* resolved here (after a link it climbs
    /// from the link's target). A leading `~/` is the home directory.
    pub fn joined(&self, path: &str) -> PathBuf {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
        let p = match (path.strip_prefix("~/"), home) {
            (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
            _ => PathBuf::from(path),
        };
        if p.is_absolute() {
            p
        } else {
            self.root.join(p)
        }
    }

    /// A path as the person would like to read it: relative to the root when inside.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string())
    }
}

/// Resolves `.` and `..` without touching the disk.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The outcome of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub status: ToolStatus,
    pub output: String,
}

impl ToolResult {
    pub fn ok(output: impl Into<String>) -> Self {
        ToolResult {
            status: ToolStatus::Completed,
            output: output.into(),
        }
    }
    pub fn failed(output: impl Into<String>) -> Self {
        ToolResult {
            status: ToolStatus::Failed,
            output: output.into(),
        }
    }
    pub fn denied(output: impl Into<String>) -> Self {
        ToolResult {
            status: ToolStatus::Denied,
            output: output.into(),
        }
    }
    pub fn cancelled() -> Self {
        ToolResult {
            status: ToolStatus::Cancelled,
            output: "Cancelled: the person stopped this turn before the call finished.".into(),
        }
    }
}

/// What a call does to the workspace, for the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Reads these paths (or the tree under them).
    Read(PathBuf),
    /// Writes this path.
    Write(PathBuf),
    /// Runs a command: may read or write anything.
    Command,
    /// Touches nothing (todo).
    Nothing,
}

pub use crate::text::first_line;

/// `file://` URI → path (percent-decoded). Other schemes → `None`.
pub fn uri_to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    // Drop an authority ("localhost" or empty) before the path.
    let path = match rest.find('/') {
        Some(0) => rest,
        Some(i) => &rest[i..],
        None => return None,
    };
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// Path → `file://` URI, percent-encoding what URIs do not allow.
pub fn path_to_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"/-_.~".contains(&b);
        if keep {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod uri_tests {
    use super::*;

    #[test]
    fn uri_roundtrip() {
        let p = Path::new("/tmp/a dir/ü.rs");
        let u = path_to_uri(p);
        assert_eq!(u, "file:///tmp/a%20dir/%C3%BC.rs");
        assert_eq!(uri_to_path(&u).as_deref(), Some(p));
        assert_eq!(
            uri_to_path("file://localhost/x/y").as_deref(),
            Some(Path::new("/x/y"))
        );
        assert_eq!(uri_to_path("untitled:1"), None);
        assert_eq!(
            uri_to_path("file:///x%2").as_deref(),
            Some(Path::new("/x%2"))
        );
    }
}
