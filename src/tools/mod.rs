//! The tools the model sees (docs/DESIGN.md §4): their JSON schemas and their
//! implementations. Each call gets a [`ToolCtx`] with everything it may use —
//! the workspace, the gate, the cancel token — and returns a [`ToolResult`]
//! whose text goes back to the model.
//!
//! **Invariants:** tools reach a person only through `ctx.gate`; a command
//! never inherits stdin or Tether's secrets; a tool never panics on the
//! model's arguments (bad arguments are a failed result the model can read).

pub mod command;
pub mod fs;
pub mod realpath;
pub mod redact;
pub mod supervise;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::config::ToolsConfig;
use crate::gate::{ApprovalEvents, AskContext, Gate};
use crate::protocol::ToolStatus;
pub use redact::Redactor;

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

/// The tools every agent has.
pub const BASE_TOOLS: [&str; 6] = [
    "read_file",
    "list_dir",
    "search",
    "write_file",
    "edit_file",
    "run_command",
];

/// Which optional tools an agent has: subagents get no `todo`, and no
/// `delegate` beyond `delegation.max_depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub delegate: bool,
    pub todo: bool,
}

impl Allowed {
    pub fn names(self) -> Vec<&'static str> {
        let mut v = BASE_TOOLS.to_vec();
        if self.todo {
            v.push("todo");
        }
        if self.delegate {
            v.push("delegate");
        }
        v
    }
}

/// The `tools` array sent to the model.
pub fn specs(allowed: Allowed) -> Vec<Value> {
    let names = allowed.names();
    all_specs()
        .into_iter()
        .filter(|s| {
            s.pointer("/function/name")
                .and_then(Value::as_str)
                .is_some_and(|n| names.contains(&n))
        })
        .collect()
}

fn all_specs() -> Vec<Value> {
    let f = |name: &str, description: &str, parameters: Value| json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}});
    vec![
        f(
            "read_file",
            "Read a text file of the workspace, with line numbers. Shows the editor's unsaved text when the file is open. Use offset/limit (1-based lines) for large files.",
            json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Path relative to the workspace root, or absolute"},
                "offset": {"type": "integer", "description": "First line to show (1-based)"},
                "limit": {"type": "integer", "description": "How many lines to show (default 2000)"}
            }, "required": ["path"]}),
        ),
        f(
            "list_dir",
            "List a directory of the workspace (gitignore-aware). Directories end with '/'.",
            json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Directory, default the workspace root"}
            }}),
        ),
        f(
            "search",
            "Search the workspace for a regular expression (gitignore-aware). Returns path:line: text.",
            json!({"type": "object", "properties": {
                "pattern": {"type": "string", "description": "Regular expression (Rust regex syntax)"},
                "path": {"type": "string", "description": "Directory or file to search, default the root"},
                "glob": {"type": "string", "description": "Only files matching this glob, e.g. *.rs"}
            }, "required": ["pattern"]}),
        ),
        f(
            "write_file",
            "Create or overwrite a file with the given content. Parent directories are created.",
            json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "content": {"type": "string"}
            }, "required": ["path", "content"]}),
        ),
        f(
            "edit_file",
            "Replace old_text with new_text in a file. old_text must match exactly once unless replace_all is true.",
            json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "old_text": {"type": "string"},
                "new_text": {"type": "string"},
                "replace_all": {"type": "boolean"}
            }, "required": ["path", "old_text", "new_text"]}),
        ),
        f(
            "run_command",
            "Run a shell command (bash) in the workspace, without a terminal or stdin. Dangerous commands need the person's approval. Output is capped.",
            json!({"type": "object", "properties": {
                "command": {"type": "string"},
                "cwd": {"type": "string", "description": "Working directory, default the workspace root"},
                "timeout_secs": {"type": "integer", "description": "Default 120"}
            }, "required": ["command"]}),
        ),
        f(
            "todo",
            "Replace your visible plan: a list of items with status pending, in_progress or completed.",
            json!({"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "content": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}
                }, "required": ["content", "status"]}}
            }, "required": ["items"]}),
        ),
        f(
            "delegate",
            "Hand work to subagents that run in parallel, each with its own fresh context and the same tools. Give each a precise goal and the context it needs (it does not see this conversation). Returns each subagent's status and summary, in task order.",
            json!({"type": "object", "properties": {
                "goal": {"type": "string", "description": "One task (or use tasks)"},
                "context": {"type": "string"},
                "tasks": {"type": "array", "items": {"type": "object", "properties": {
                    "goal": {"type": "string"},
                    "context": {"type": "string"}
                }, "required": ["goal"]}}
            }}),
        ),
    ]
}

#[derive(Deserialize)]
pub struct ReadArgs {
    pub path: String,
    #[serde(default)]
    pub offset: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
}

#[derive(Deserialize)]
pub struct ListArgs {
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Deserialize)]
pub struct SearchArgs {
    pub pattern: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub glob: Option<String>,
}

#[derive(Deserialize)]
pub struct WriteArgs {
    pub path: String,
    pub content: String,
}

#[derive(Deserialize)]
pub struct EditArgs {
    pub path: String,
    pub old_text: String,
    pub new_text: String,
    #[serde(default)]
    pub replace_all: bool,
}

#[derive(Deserialize)]
pub struct CommandArgs {
    pub command: String,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

#[derive(Deserialize)]
pub struct TodoArgs {
    pub items: Vec<crate::protocol::PlanEntry>,
}

/// One subagent task.
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub goal: String,
    #[serde(default)]
    pub context: Option<String>,
}

#[derive(Deserialize)]
pub struct DelegateArgs {
    #[serde(default)]
    pub goal: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub tasks: Option<Vec<Task>>,
}

/// A call whose arguments were read: ready to schedule and run.
#[derive(Debug, Clone)]
pub enum Parsed {
    Read {
        path: String,
        offset: Option<u64>,
        limit: Option<u64>,
    },
    List {
        path: Option<String>,
    },
    Search {
        pattern: String,
        path: Option<String>,
        glob: Option<String>,
    },
    Write {
        path: String,
        content: String,
    },
    Edit {
        path: String,
        old_text: String,
        new_text: String,
        replace_all: bool,
    },
    Command {
        command: String,
        cwd: Option<String>,
        timeout_secs: Option<u64>,
    },
    Todo {
        items: Vec<crate::protocol::PlanEntry>,
    },
    /// Run by the engine (it needs the engine); see `engine::subagents`.
    Delegate {
        tasks: Vec<Task>,
    },
    /// A tool of an MCP server (`SERVER__TOOL`); see `crate::mcp`.
    Mcp(crate::mcp::McpCall),
}

fn args<T: for<'de> Deserialize<'de>>(tool: &str, raw: &str) -> Result<T, String> {
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    serde_json::from_str(raw).map_err(|e| {
        format!(
            "Invalid arguments for `{tool}`: {e}. Send a JSON object matching the tool's schema."
        )
    })
}

/// Reads a call's arguments; the error text goes back to the model.
pub fn parse(tool: &str, raw: &str, allowed: Allowed) -> Result<Parsed, String> {
    Ok(match tool {
        "read_file" => {
            let a: ReadArgs = args(tool, raw)?;
            Parsed::Read {
                path: a.path,
                offset: a.offset,
                limit: a.limit,
            }
        }
        "list_dir" => {
            let a: ListArgs = args(tool, raw)?;
            Parsed::List { path: a.path }
        }
        "search" => {
            let a: SearchArgs = args(tool, raw)?;
            Parsed::Search {
                pattern: a.pattern,
                path: a.path,
                glob: a.glob,
            }
        }
        "write_file" => {
            let a: WriteArgs = args(tool, raw)?;
            Parsed::Write {
                path: a.path,
                content: a.content,
            }
        }
        "edit_file" => {
            let a: EditArgs = args(tool, raw)?;
            Parsed::Edit {
                path: a.path,
                old_text: a.old_text,
                new_text: a.new_text,
                replace_all: a.replace_all,
            }
        }
        "run_command" => {
            let a: CommandArgs = args(tool, raw)?;
            Parsed::Command {
                command: a.command,
                cwd: a.cwd,
                timeout_secs: a.timeout_secs,
            }
        }
        "todo" if allowed.todo => {
            let a: TodoArgs = args(tool, raw)?;
            Parsed::Todo { items: a.items }
        }
        "delegate" if allowed.delegate => {
            let a: DelegateArgs = args(tool, raw)?;
            let mut tasks = a.tasks.unwrap_or_default();
            if let Some(goal) = a.goal {
                tasks.insert(
                    0,
                    Task {
                        goal,
                        context: a.context,
                    },
                );
            }
            tasks.retain(|t| !t.goal.trim().is_empty());
            if tasks.is_empty() {
                return Err(
                    "Invalid arguments for `delegate`: give a goal, or tasks: [{goal, context?}]."
                        .into(),
                );
            }
            Parsed::Delegate { tasks }
        }
        other => {
            return Err(format!(
                "Unknown tool `{other}`. Available tools: {}.",
                allowed.names().join(", ")
            ));
        }
    })
}

impl Parsed {
    /// A short title for the editor.
    pub fn title(&self) -> String {
        match self {
            Parsed::Read { path, .. } => format!("Read {path}"),
            Parsed::List { path } => format!("List {}", path.as_deref().unwrap_or(".")),
            Parsed::Search { pattern, .. } => format!("Search /{pattern}/"),
            Parsed::Write { path, .. } => format!("Write {path}"),
            Parsed::Edit { path, .. } => format!("Edit {path}"),
            Parsed::Command { command, .. } => format!("Run `{}`", first_line(command, 80)),
            Parsed::Todo { .. } => "Update plan".to_string(),
            Parsed::Delegate { tasks } => match tasks.as_slice() {
                [one] => format!("Delegate: {}", first_line(&one.goal, 60)),
                many => format!("Delegate {} tasks", many.len()),
            },
            Parsed::Mcp(call) => call.title(),
        }
    }

    /// What the call touches, resolved against `root`.
    pub fn access(&self, ctx_root: &Path) -> Access {
        let res = |p: &str| {
            let p = Path::new(p);
            normalize(&if p.is_absolute() {
                p.to_path_buf()
            } else {
                ctx_root.join(p)
            })
        };
        match self {
            Parsed::Read { path, .. } => Access::Read(res(path)),
            Parsed::List { path } => Access::Read(res(path.as_deref().unwrap_or("."))),
            Parsed::Search { path, .. } => Access::Read(res(path.as_deref().unwrap_or("."))),
            Parsed::Write { path, .. } | Parsed::Edit { path, .. } => Access::Write(res(path)),
            // An MCP tool may touch anything, like a command.
            Parsed::Command { .. } | Parsed::Delegate { .. } | Parsed::Mcp(_) => Access::Command,
            Parsed::Todo { .. } => Access::Nothing,
        }
    }

    /// Runs the call.
    pub async fn run(self, ctx: &ToolCtx) -> ToolResult {
        if ctx.cancel.is_cancelled() {
            return ToolResult::cancelled();
        }
        let result = match self {
            Parsed::Read {
                path,
                offset,
                limit,
            } => fs::read_file(ctx, &path, offset, limit).await,
            Parsed::List { path } => fs::list_dir(ctx, path.as_deref()).await,
            Parsed::Search {
                pattern,
                path,
                glob,
            } => fs::search(ctx, &pattern, path.as_deref(), glob.as_deref()).await,
            Parsed::Write { path, content } => fs::write_file(ctx, &path, &content).await,
            Parsed::Edit {
                path,
                old_text,
                new_text,
                replace_all,
            } => fs::edit_file(ctx, &path, &old_text, &new_text, replace_all).await,
            Parsed::Command {
                command,
                cwd,
                timeout_secs,
            } => command::run_tool(ctx, &command, cwd.as_deref(), timeout_secs).await,
            Parsed::Todo { items } => {
                ToolResult::ok(format!("Plan updated ({} items).", items.len()))
            }
            Parsed::Delegate { .. } => ToolResult::failed("delegate is run by the engine"),
            Parsed::Mcp(call) => call.run(ctx).await,
        };
        // Every tool's output, not only a command's, is redacted before the
        // model or the store sees it: a file or a search hit can hold a secret.
        ToolResult {
            output: ctx.redactor.redact(&result.output),
            ..result
        }
    }
}

/// The first line of `s`, at most `max` chars, with an ellipsis if cut.
pub fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max || s.trim_end().contains('\n') {
        out.push('…');
    }
    out
}

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
