//! Subagents: the `delegate` tool. Each task runs as a child session (with
//! `parentId`) with its own history (goal + context, not the parent's
//! transcript), the parent's gate labelled with the child, the parent's store,
//! and a cancel token below the parent's call. Children run concurrently up to
//! `delegation.max_children`; larger batches queue. A child that fails does
//! not fail its siblings; the parent gets one report per task, in task order.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures::future::{join_all, BoxFuture};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::turn::{Agent, LoopOutcome};
use crate::protocol::{StopReason, SubagentStatus, UpdateKind};
use crate::text::Max;
use crate::tools::registry::{args, function_spec};
use crate::tools::{first_line, Access, Call, Tool, ToolCtx, ToolResult};

/// The `delegate` tool of one agent: it runs subagents of that agent, so the
/// engine adds it to the agent's registry (while `delegation.max_depth`
/// allows).
pub(super) struct Delegate(pub Arc<Agent>);

impl Tool for Delegate {
    fn name(&self) -> &str {
        "delegate"
    }

    fn spec(&self) -> Value {
        function_spec(
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
        )
    }

    fn prepare(&self, raw_args: &str) -> Result<Box<dyn Call>, String> {
        let a: DelegateArgs = args("delegate", raw_args)?;
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
        Ok(Box::new(DelegateCall {
            parent: self.0.clone(),
            tasks,
        }))
    }
}

struct DelegateCall {
    parent: Arc<Agent>,
    tasks: Vec<Task>,
}

impl Call for DelegateCall {
    fn title(&self) -> String {
        match self.tasks.as_slice() {
            [one] => format!("Delegate: {}", first_line(&one.goal, 60)),
            many => format!("Delegate {} tasks", many.len()),
        }
    }

    fn access(&self, _root: &Path) -> Access {
        Access::Command
    }

    fn run<'a>(&'a self, ctx: &'a ToolCtx) -> BoxFuture<'a, ToolResult> {
        Box::pin(delegate(&self.parent, self.tasks.clone(), ctx))
    }
}

/// One subagent task.
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub goal: String,
    #[serde(default)]
    pub context: Option<String>,
}

#[derive(Deserialize)]
struct DelegateArgs {
    #[serde(default)]
    goal: Option<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    tasks: Option<Vec<Task>>,
}

/// Longest summary handed back to the parent; the full transcript stays in
/// the child session.
const SUMMARY_CAP: usize = 4000;

const SUBAGENT_PROMPT: &str = "You are a subagent: another agent gave you one task. \
You do not see its conversation; everything you need is in the task. Do the task with the \
tools, then end with a short, factual summary of what you found or changed (files, results, \
open problems). Your final message is all the other agent will read.";

/// A child's extra system text: the subagent's role first, then what its
/// parent was given (the project's AGENTS.md and the environment), so a child
/// follows the same project rules. A grandchild inherits its parent's text,
/// which already names the role.
fn child_instructions(parent: &Agent) -> String {
    match parent.system_extra.as_deref() {
        Some(p) if p.starts_with(SUBAGENT_PROMPT) => p.to_string(),
        Some(p) if !p.trim().is_empty() => format!("{SUBAGENT_PROMPT}\n\n{p}"),
        _ => SUBAGENT_PROMPT.to_string(),
    }
}

struct Report {
    goal: String,
    child_session_id: String,
    status: SubagentStatus,
    summary: String,
    tool_calls: usize,
    prompt_tokens: u64,
    completion_tokens: u64,
    duration_ms: u128,
}

/// Runs the tasks as subagents of `parent`; the tool result lists them in order.
async fn delegate(parent: &Agent, tasks: Vec<Task>, ctx: &ToolCtx) -> ToolResult {
    let cfg = &parent.engine.config().delegation;
    let n = tasks.len();
    let limit = Semaphore::new(cfg.max_children.max(1));
    let runs = tasks.into_iter().enumerate().map(|(i, task)| {
        let limit = &limit;
        async move {
            let permit = tokio::select! {
                p = limit.acquire() => p.ok(),
                _ = ctx.cancel.cancelled() => None,
            };
            if permit.is_none() || ctx.cancel.is_cancelled() {
                return Report {
                    goal: task.goal,
                    child_session_id: String::new(),
                    status: SubagentStatus::Cancelled,
                    summary: "Cancelled before it started.".into(),
                    tool_calls: 0,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    duration_ms: 0,
                };
            }
            run_child(parent, i, n, task, ctx).await
        }
    });
    let reports = join_all(runs).await;
    if ctx.cancel.is_cancelled() {
        return ToolResult::cancelled();
    }
    let results: Vec<_> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "task": i + 1,
                "goal": r.goal,
                "childSessionId": r.child_session_id,
                "status": r.status.as_str(),
                "summary": r.summary,
                "toolCalls": r.tool_calls,
                "tokens": {"prompt": r.prompt_tokens, "completion": r.completion_tokens},
                "durationMs": r.duration_ms,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({ "results": results }))
        .unwrap_or_else(|_| "{\"results\": []}".into());
    if reports
        .iter()
        .all(|r| r.status == SubagentStatus::Completed)
    {
        ToolResult::ok(text)
    } else {
        ToolResult::failed(text)
    }
}

async fn run_child(parent: &Agent, i: usize, n: usize, task: Task, ctx: &ToolCtx) -> Report {
    let started = Instant::now();
    let engine = &parent.engine;
    let cfg = &engine.config().delegation;
    let label = format!(
        "subagent {} of {}: {}",
        i + 1,
        n,
        first_line(&task.goal, 60)
    );
    let model = match &cfg.model {
        Some(m) if !m.is_empty() => parent.model.with_model(m),
        _ => parent.model.clone(),
    };
    let child_id = engine
        .new_session(
            Some(parent.session_id.clone()),
            &crate::store::title_from_prompt(&engine.parts.redactor.redact(&task.goal)),
            Some(model.model()),
        )
        .into_string();
    parent.events.emit(UpdateKind::Subagent {
        child_session_id: child_id.clone(),
        goal: task.goal.clone(),
        status: SubagentStatus::Started,
        summary: None,
    });
    let child = Agent {
        engine: engine.clone(),
        model,
        session_id: child_id.clone(),
        cancel: ctx.cancel.child_token(),
        events: parent.events.clone(),
        sink: parent.sink.clone(),
        gate: ctx.gate.labelled(label),
        max_iterations: cfg.max_iterations,
        depth: parent.depth + 1,
        stream_text: false,
        system_extra: Some(child_instructions(parent)),
    };
    let mut prompt = task.goal.clone();
    if let Some(c) = task.context.as_deref().filter(|c| !c.trim().is_empty()) {
        prompt.push_str("\n\nContext:\n");
        prompt.push_str(c);
    }
    let mut history = Vec::new();
    child.append(&mut history, super::turn::user(prompt)).await;
    let out: LoopOutcome = Box::pin(child.run_loop(&mut history)).await;
    let status = match out.stop {
        Some(StopReason::EndTurn) => SubagentStatus::Completed,
        Some(StopReason::Cancelled) => SubagentStatus::Cancelled,
        _ => SubagentStatus::Failed,
    };
    let mut summary = if out.last_text.trim().is_empty() {
        out.text.clone()
    } else {
        out.last_text.clone()
    };
    if let Some(e) = &out.error {
        summary = format!("{summary}\n[error: {e}]").trim().to_string();
    }
    if status == SubagentStatus::Cancelled && summary.trim().is_empty() {
        summary = "Cancelled.".into();
    }
    let cut_mark = format!("… [summary cut; full transcript in session {child_id}]");
    let summary = crate::text::truncate(&summary, Max::Bytes(SUMMARY_CAP), &cut_mark).into_owned();
    parent.events.emit(UpdateKind::Subagent {
        child_session_id: child_id.clone(),
        goal: task.goal.clone(),
        status,
        summary: Some(first_line(&summary, 200)),
    });
    Report {
        goal: task.goal,
        child_session_id: child_id,
        status,
        summary,
        tool_calls: out.tool_calls,
        prompt_tokens: out.prompt_tokens,
        completion_tokens: out.completion_tokens,
        duration_ms: started.elapsed().as_millis(),
    }
}
