//! One model response's tool calls, as the engine runs them: each read by
//! the agent's [`Registry`], announced to the editor, handed to the
//! [`scheduler`] (which decides when each runs), run with live output, and
//! reported, redacted, and recorded in the store.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::scheduler::{self, Job, Limits, Runner};
use super::turn::TurnEvents;
use crate::model::ToolCall;
use crate::protocol::{ToolStatus, UpdateKind};
use crate::store::{Store, Write};
use crate::tools::{self, Call, Registry, ToolCtx, ToolResult};

/// Runs one response's calls; returns their results in the model's order.
pub(super) async fn run(
    calls: &[ToolCall],
    registry: &Registry,
    ctx: &ToolCtx,
    events: &Arc<TurnEvents>,
    store: &Store,
) -> Vec<ToolResult> {
    let prepared: Vec<Result<Box<dyn Call>, String>> = calls
        .iter()
        .map(|c| registry.prepare(&c.name, &c.arguments))
        .collect();
    let titles: Vec<String> = calls
        .iter()
        .zip(&prepared)
        .map(|(call, p)| match p {
            Ok(p) => p.title(),
            Err(_) => format!("{} (invalid arguments)", call.name),
        })
        .collect();
    let agent = ctx.gate.agent().map(str::to_string);
    // Announce every call first, so the editor sees the whole batch.
    for (call, title) in calls.iter().zip(&titles) {
        events.emit(UpdateKind::ToolCall {
            tool_call_id: call.id.clone(),
            tool: call.name.clone(),
            title: title.clone(),
            status: ToolStatus::Pending,
            input: serde_json::from_str(&call.arguments).ok(),
            output: None,
            agent: agent.clone(),
        });
    }
    let jobs = prepared
        .iter()
        .map(|p| match p {
            Ok(p) => Job::Run(p.access(&ctx.root)),
            Err(msg) => Job::Done(ToolResult::failed(msg.clone())),
        })
        .collect();
    let batch = Batch {
        calls,
        prepared,
        titles,
        started: Instant::now(),
        ctx,
        events,
        store,
        agent,
    };
    let limits = Limits {
        max_parallel: ctx.tools.max_parallel,
        deadline_secs: ctx.tools.batch_deadline_secs,
    };
    scheduler::run_batch(jobs, limits, &ctx.cancel, &batch).await
}

struct Batch<'a> {
    calls: &'a [ToolCall],
    prepared: Vec<Result<Box<dyn Call>, String>>,
    titles: Vec<String>,
    /// When the batch began: a call's recorded duration includes its wait.
    started: Instant,
    ctx: &'a ToolCtx,
    events: &'a Arc<TurnEvents>,
    store: &'a Store,
    agent: Option<String>,
}

impl Batch<'_> {
    fn update(&self, i: usize, status: ToolStatus, output: Option<String>) -> UpdateKind {
        UpdateKind::ToolCall {
            tool_call_id: self.calls[i].id.clone(),
            tool: self.calls[i].name.clone(),
            title: self.titles[i].clone(),
            status,
            input: None,
            output,
            agent: self.agent.clone(),
        }
    }
}

impl Runner for Batch<'_> {
    fn run<'a>(&'a self, i: usize, cancel: &'a CancellationToken) -> BoxFuture<'a, ToolResult> {
        Box::pin(async move {
            let Ok(call) = &self.prepared[i] else {
                return ToolResult::failed("not a valid call");
            };
            self.events.emit(self.update(i, ToolStatus::Running, None));
            let live = {
                let events = self.events.clone();
                let redactor = self.ctx.redactor.clone();
                let running = self.update(i, ToolStatus::Running, None);
                Arc::new(move |output: String| {
                    let mut u = running.clone();
                    if let UpdateKind::ToolCall { output: o, .. } = &mut u {
                        *o = Some(redactor.redact(&output));
                    }
                    events.emit(u);
                }) as Arc<dyn Fn(String) + Send + Sync>
            };
            let call_ctx = ToolCtx {
                cancel: cancel.clone(),
                progress: Some(live),
                ..self.ctx.clone()
            };
            tools::registry::run(call.as_ref(), &call_ctx).await
        })
    }

    fn finish(&self, i: usize, result: ToolResult) -> ToolResult {
        // Tools redact their own output; a subagent's report is the
        // model's text, so every result is redacted here once more.
        let r = &self.ctx.redactor;
        let result = ToolResult {
            output: r.redact(&result.output),
            ..result
        };
        self.events
            .emit(self.update(i, result.status, Some(excerpt(&result.output, 4000))));
        let call = &self.calls[i];
        self.store.submit(Write::ToolRun {
            session_id: self.ctx.session_id.clone(),
            tool_call_id: call.id.clone(),
            tool: call.name.clone(),
            input: r.redact_json_text(&call.arguments),
            status: result.status,
            output_excerpt: excerpt(&result.output, 2000),
            duration_ms: self.started.elapsed().as_millis() as i64,
        });
        result
    }
}

/// At most `max` bytes of `s`, marked when cut.
fn excerpt(s: &str, max: usize) -> String {
    crate::text::truncate(s, crate::text::Max::Bytes(max), "…").into_owned()
}
