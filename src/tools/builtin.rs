//! The built-in tools, one [`Entry`] each: name, description, schema, the
//! arguments it reads, its title, what it touches and how it runs. **Adding a
//! tool is adding one entry to [`all`]** (its implementation may live in its
//! own file, as `fs` and `command` do). `delegate` is the engine's own
//! (`engine::subagents`), since it runs the engine.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::registry::{resolve_in, Entry, Tool};
use super::{command, first_line, fs, Access, ToolResult};
use crate::protocol::{PlanEntry, UpdateKind};

/// Every built-in tool, in the order the model is shown them.
pub fn all() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(Entry::<ReadArgs> {
            name: "read_file",
            description: "Read a text file of the workspace, with line numbers. Shows the editor's unsaved text when the file is open. Use offset/limit (1-based lines) for large files.",
            parameters: || json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Path relative to the workspace root, or absolute"},
                "offset": {"type": "integer", "description": "First line to show (1-based)"},
                "limit": {"type": "integer", "description": "How many lines to show (default 2000)"}
            }, "required": ["path"]}),
            check: Entry::accept,
            title: |a| format!("Read {}", a.path),
            access: |a, root| Access::Read(resolve_in(root, &a.path)),
            run: |a, ctx| Box::pin(fs::read_file(ctx, &a.path, a.offset, a.limit)),
        }),
        Arc::new(Entry::<ListArgs> {
            name: "list_dir",
            description: "List a directory of the workspace (gitignore-aware). Directories end with '/'.",
            parameters: || json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Directory, default the workspace root"}
            }}),
            check: Entry::accept,
            title: |a| format!("List {}", a.path.as_deref().unwrap_or(".")),
            access: |a, root| Access::Read(resolve_in(root, a.path.as_deref().unwrap_or("."))),
            run: |a, ctx| Box::pin(fs::list_dir(ctx, a.path.as_deref())),
        }),
        Arc::new(Entry::<SearchArgs> {
            name: "search",
            description: "Search the workspace for a regular expression (gitignore-aware). Returns path:line: text.",
            parameters: || json!({"type": "object", "properties": {
                "pattern": {"type": "string", "description": "Regular expression (Rust regex syntax)"},
                "path": {"type": "string", "description": "Directory or file to search, default the root"},
                "glob": {"type": "string", "description": "Only files matching this glob, e.g. *.rs"}
            }, "required": ["pattern"]}),
            check: Entry::accept,
            title: |a| format!("Search /{}/", a.pattern),
            access: |a, root| Access::Read(resolve_in(root, a.path.as_deref().unwrap_or("."))),
            run: |a, ctx| {
                Box::pin(fs::search(ctx, &a.pattern, a.path.as_deref(), a.glob.as_deref()))
            },
        }),
        Arc::new(Entry::<WriteArgs> {
            name: "write_file",
            description: "Create or overwrite a file with the given content. Parent directories are created.",
            parameters: || json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "content": {"type": "string"}
            }, "required": ["path", "content"]}),
            check: Entry::accept,
            title: |a| format!("Write {}", a.path),
            access: |a, root| Access::Write(resolve_in(root, &a.path)),
            run: |a, ctx| Box::pin(fs::write_file(ctx, &a.path, &a.content)),
        }),
        Arc::new(Entry::<EditArgs> {
            name: "edit_file",
            description: "Replace old_text with new_text in a file. old_text must match exactly once unless replace_all is true.",
            parameters: || json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "old_text": {"type": "string"},
                "new_text": {"type": "string"},
                "replace_all": {"type": "boolean"}
            }, "required": ["path", "old_text", "new_text"]}),
            check: Entry::accept,
            title: |a| format!("Edit {}", a.path),
            access: |a, root| Access::Write(resolve_in(root, &a.path)),
            run: |a, ctx| {
                Box::pin(fs::edit_file(ctx, &a.path, &a.old_text, &a.new_text, a.replace_all))
            },
        }),
        Arc::new(Entry::<CommandArgs> {
            name: "run_command",
            description: "Run a shell command (bash) in the workspace, without a terminal or stdin. Dangerous commands need the person's approval. Output is capped. On Linux it runs in an OS sandbox: it can write only inside the workspace and $TMPDIR, and has no network unless the person turned it on. When the sandbox stops a command that really needs more, call again with escalate: true and a justification; the person decides.",
            parameters: || json!({"type": "object", "properties": {
                "command": {"type": "string"},
                "cwd": {"type": "string", "description": "Working directory, default the workspace root"},
                "timeout_secs": {"type": "integer", "description": "Default 120"},
                "escalate": {"type": "boolean", "description": "Ask the person to run this command outside the sandbox (only after the sandbox stopped it, or when it must write outside the workspace or use the network)"},
                "justification": {"type": "string", "description": "With escalate: why the command must run outside the sandbox, shown to the person"}
            }, "required": ["command"]}),
            check: Entry::accept,
            title: |a| format!("Run `{}`", first_line(&a.command, 80)),
            access: |_, _| Access::Command,
            run: |a, ctx| {
                let escalation = a
                    .escalate
                    .then_some(a.justification.as_deref().unwrap_or(""));
                Box::pin(command::run_tool(
                    ctx,
                    &a.command,
                    a.cwd.as_deref(),
                    a.timeout_secs,
                    escalation,
                ))
            },
        }),
        Arc::new(Entry::<TodoArgs> {
            name: "todo",
            description: "Replace your visible plan: a list of items with status pending, in_progress or completed.",
            parameters: || json!({"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "content": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}
                }, "required": ["content", "status"]}}
            }, "required": ["items"]}),
            check: Entry::accept,
            title: |_| "Update plan".to_string(),
            access: |_, _| Access::Nothing,
            run: |a, ctx| {
                ctx.events.update(UpdateKind::Plan {
                    entries: a.items.clone(),
                });
                let n = a.items.len();
                Box::pin(async move { ToolResult::ok(format!("Plan updated ({n} items).")) })
            },
        }),
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
    /// Run outside the OS sandbox, if the person allows it.
    #[serde(default)]
    pub escalate: bool,
    #[serde(default)]
    pub justification: Option<String>,
}

#[derive(Deserialize)]
pub struct TodoArgs {
    pub items: Vec<PlanEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::Registry;
    use std::path::Path;

    #[test]
    fn titles_and_access_as_the_editor_and_scheduler_see_them() {
        let r = Registry::builtin();
        let root = Path::new("/w");
        let call = |name: &str, args: serde_json::Value| {
            r.prepare(name, &args.to_string()).expect("valid call")
        };
        let c = call("read_file", json!({"path": "src/../a.rs"}));
        assert_eq!(c.title(), "Read src/../a.rs");
        assert_eq!(c.access(root), Access::Read("/w/a.rs".into()));
        let c = call("search", json!({"pattern": "fn x", "path": "/etc"}));
        assert_eq!(c.title(), "Search /fn x/");
        assert_eq!(c.access(root), Access::Read("/etc".into()));
        let c = call("write_file", json!({"path": "b", "content": ""}));
        assert_eq!(
            (c.title(), c.access(root)),
            ("Write b".into(), Access::Write("/w/b".into()))
        );
        let c = call(
            "edit_file",
            json!({"path": "b", "old_text": "x", "new_text": "y"}),
        );
        assert_eq!(
            (c.title(), c.access(root)),
            ("Edit b".into(), Access::Write("/w/b".into()))
        );
        let long = format!("{}\nsecond", "x".repeat(100));
        let c = call("run_command", json!({"command": long}));
        assert_eq!(c.title(), format!("Run `{}…`", "x".repeat(80)));
        assert_eq!(c.access(root), Access::Command);
        let c = call("todo", json!({"items": []}));
        assert_eq!(
            (c.title(), c.access(root)),
            ("Update plan".into(), Access::Nothing)
        );
    }
}
