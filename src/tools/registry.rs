//! The tool registry: the one place a tool is declared. A [`Tool`] is a name,
//! a description and a JSON schema for the model, and a way to read a call's
//! arguments into a [`Call`] — which knows its title for the editor, what it
//! touches (its [`Access`], for the scheduler) and how to run.
//!
//! A [`Registry`] is a value, built per agent: the built-in tools
//! ([`super::builtin`], one [`Entry`] each), the engine's own (`delegate`, which
//! needs the engine) and any dynamic source (a [`ToolSource`], e.g. a tool
//! server's tools discovered at run time) contribute to it. Nothing is global.
//!
//! **Invariants:** a name is registered once (the first wins; a later one is
//! refused with a reason); bad arguments are an `Err` whose text goes back to
//! the model, never a panic; every result leaves [`run`] redacted.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::{normalize, Access, ToolCtx, ToolResult};

/// A tool the model can call.
pub trait Tool: Send + Sync {
    /// The name the model calls it by (`^[A-Za-z0-9_-]{1,64}$`).
    fn name(&self) -> &str;
    /// The `tools` array entry sent to the model
    /// (`{"type": "function", "function": {name, description, parameters}}`).
    fn spec(&self) -> Value;
    /// Reads a call's raw JSON arguments; the error text goes to the model.
    fn prepare(&self, raw_args: &str) -> Result<Box<dyn Call>, String>;
}

/// A call whose arguments were read: ready to schedule and run.
pub trait Call: Send + Sync {
    /// A short title for the editor.
    fn title(&self) -> String;
    /// What the call touches, paths resolved against the workspace `root`.
    fn access(&self, root: &Path) -> Access;
    /// Runs the call. Reaches a person only through `ctx.gate`.
    fn run<'a>(&'a self, ctx: &'a ToolCtx) -> BoxFuture<'a, ToolResult>;
}

/// Something that contributes tools to an agent's registry at run time (a
/// tool server's tools, for one session). Called when a registry is built.
pub trait ToolSource: Send + Sync {
    fn tools(&self, session_id: &str) -> Vec<Arc<dyn Tool>>;
}

/// The tools one agent has, in the order the model is shown them.
#[derive(Clone, Default)]
pub struct Registry {
    tools: Vec<Arc<dyn Tool>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// The built-in tools ([`super::builtin::all`]).
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        for t in super::builtin::all() {
            // Built-in names are distinct (a unit test checks).
            let _ = r.add(t);
        }
        r
    }

    /// Adds a tool after the others. A name already registered, or one the
    /// model's API would reject, is refused with the reason.
    pub fn add(&mut self, tool: Arc<dyn Tool>) -> Result<(), String> {
        let name = tool.name();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(format!(
                "tool name {name:?} is not valid: use 1-64 letters, digits, '_' or '-'"
            ));
        }
        if self.get(name).is_some() {
            return Err(format!("a tool named `{name}` is already registered"));
        }
        self.tools.push(tool);
        Ok(())
    }

    /// Removes the tool `name`, if registered.
    pub fn remove(&mut self, name: &str) {
        self.tools.retain(|t| t.name() != name);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.name() == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// The `tools` array sent to the model.
    pub fn specs(&self) -> Vec<Value> {
        self.tools.iter().map(|t| t.spec()).collect()
    }

    /// Reads a call of tool `name`; the error text goes back to the model.
    pub fn prepare(&self, name: &str, raw_args: &str) -> Result<Box<dyn Call>, String> {
        match self.get(name) {
            Some(t) => t.prepare(raw_args),
            None => Err(format!(
                "Unknown tool `{name}`. Available tools: {}.",
                self.names().join(", ")
            )),
        }
    }
}

/// Runs a prepared call: a cancelled context runs nothing, and the output is
/// redacted before the model or the store sees it (a file or a search hit can
/// hold a secret, not only a command's output).
pub async fn run(call: &dyn Call, ctx: &ToolCtx) -> ToolResult {
    if ctx.cancel.is_cancelled() {
        return ToolResult::cancelled();
    }
    let result = call.run(ctx).await;
    ToolResult {
        output: ctx.redactor.redact(&result.output),
        ..result
    }
}

/// The `tools` array entry for a function tool.
pub fn function_spec(name: &str, description: &str, parameters: Value) -> Value {
    json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}})
}

/// Reads a call's JSON arguments into `T` (empty means `{}`); the error
/// names the tool and goes back to the model.
pub fn args<T: DeserializeOwned>(tool: &str, raw: &str) -> Result<T, String> {
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    serde_json::from_str(raw).map_err(|e| {
        format!(
            "Invalid arguments for `{tool}`: {e}. Send a JSON object matching the tool's schema."
        )
    })
}

/// A model-given path resolved against `root`, lexically (for [`Access`]).
pub fn resolve_in(root: &Path, path: &str) -> std::path::PathBuf {
    let p = Path::new(path);
    normalize(&if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    })
}

/// A statically known tool, declared as one value: its name, description and
/// schema, the arguments type `A` it reads, and what a call of it is called,
/// touches and does. `check` may refine or refuse the arguments once read.
pub struct Entry<A> {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: fn() -> Value,
    pub check: fn(A) -> Result<A, String>,
    pub title: fn(&A) -> String,
    pub access: fn(&A, &Path) -> Access,
    pub run: for<'a> fn(&'a A, &'a ToolCtx) -> BoxFuture<'a, ToolResult>,
}

impl<A> Entry<A> {
    /// The `check` of an entry whose arguments need nothing more than serde.
    pub fn accept(a: A) -> Result<A, String> {
        Ok(a)
    }
}

impl<A: DeserializeOwned + Send + Sync + 'static> Tool for Entry<A> {
    fn name(&self) -> &str {
        self.name
    }

    fn spec(&self) -> Value {
        function_spec(self.name, self.description, (self.parameters)())
    }

    fn prepare(&self, raw_args: &str) -> Result<Box<dyn Call>, String> {
        let a = (self.check)(args(self.name, raw_args)?)?;
        Ok(Box::new(EntryCall {
            args: a,
            title: self.title,
            access: self.access,
            run: self.run,
        }))
    }
}

struct EntryCall<A> {
    args: A,
    title: fn(&A) -> String,
    access: fn(&A, &Path) -> Access,
    run: for<'a> fn(&'a A, &'a ToolCtx) -> BoxFuture<'a, ToolResult>,
}

impl<A: Send + Sync> Call for EntryCall<A> {
    fn title(&self) -> String {
        (self.title)(&self.args)
    }
    fn access(&self, root: &Path) -> Access {
        (self.access)(&self.args, root)
    }
    fn run<'a>(&'a self, ctx: &'a ToolCtx) -> BoxFuture<'a, ToolResult> {
        (self.run)(&self.args, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_are_distinct_and_in_order() {
        let r = Registry::builtin();
        // The tools every agent had before the registry, in their order; a
        // new tool goes after them.
        let first = [
            "read_file",
            "list_dir",
            "search",
            "write_file",
            "edit_file",
            "run_command",
            "todo",
        ];
        assert_eq!(r.names()[..first.len()], first);
        assert_eq!(super::super::builtin::all().len(), r.names().len());
    }

    #[test]
    fn a_second_tool_with_a_taken_or_invalid_name_is_refused() {
        let mut r = Registry::builtin();
        let again = super::super::builtin::all().remove(0);
        let err = r.add(again).expect_err("taken");
        assert!(err.contains("`read_file` is already registered"), "{err}");
        struct Named(&'static str);
        impl Tool for Named {
            fn name(&self) -> &str {
                self.0
            }
            fn spec(&self) -> Value {
                Value::Null
            }
            fn prepare(&self, _: &str) -> Result<Box<dyn Call>, String> {
                Err("never".into())
            }
        }
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            let name: &'static str = Box::leak(bad.to_string().into_boxed_str());
            assert!(r.add(Arc::new(Named(name))).is_err(), "{bad:?} accepted");
        }
        assert!(r.add(Arc::new(Named("mcp__files-read_1"))).is_ok());
        assert_eq!(r.names().last(), Some(&"mcp__files-read_1"));
    }

    #[test]
    fn unknown_tools_and_bad_arguments_are_errors_for_the_model() {
        let mut r = Registry::builtin();
        r.remove("todo");
        let err = r.prepare("todo", "{}").err().expect("unknown");
        assert!(
            err.starts_with(
                "Unknown tool `todo`. Available tools: read_file, list_dir, search, write_file, edit_file, run_command"
            ),
            "{err}"
        );
        assert_eq!(err.matches("todo").count(), 1, "{err}");
        let err = r.prepare("read_file", "{\"path\": 3}").err().expect("bad");
        assert!(
            err.starts_with("Invalid arguments for `read_file`: "),
            "{err}"
        );
        // No arguments at all read as `{}`.
        let err = r.prepare("read_file", "  ").err().expect("missing path");
        assert!(err.contains("missing field `path`"), "{err}");
        let call = r.prepare("list_dir", "").expect("list_dir needs nothing");
        assert_eq!(call.title(), "List .");
        assert_eq!(
            call.access(Path::new("/w")),
            Access::Read(std::path::PathBuf::from("/w"))
        );
    }
}
