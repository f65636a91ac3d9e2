//! The tool scheduler for one model response. Calls that cannot interfere run
//! at the same time (reads, searches, commands), up to `tools.max_parallel`;
//! a write waits for earlier calls that touch its path (and for earlier
//! commands, which may touch anything), and a command waits for earlier
//! writes. Results come back in the model's order. Every call that was
//! announced ends in a final status.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::{watch, Semaphore};

use super::turn::Agent;
use crate::model::ToolCall;
use crate::protocol::{ToolStatus, UpdateKind};
use crate::store::Write;
use crate::tools::{self, Access, Parsed, ToolCtx, ToolResult};

/// Whether call `later` must wait for call `earlier`.
fn conflicts(earlier: &Access, later: &Access) -> bool {
    let overlap = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
    match (earlier, later) {
        (Access::Nothing, _) | (_, Access::Nothing) => false,
        (Access::Write(a), Access::Write(b))
        | (Access::Write(a), Access::Read(b))
        | (Access::Read(a), Access::Write(b)) => overlap(a, b),
        (Access::Write(_), Access::Command) | (Access::Command, Access::Write(_)) => true,
        (Access::Read(_), Access::Read(_))
        | (Access::Read(_), Access::Command)
        | (Access::Command, Access::Read(_))
        | (Access::Command, Access::Command) => false,
    }
}

/// Runs one response's calls; returns their results in the model's order.
pub(super) async fn run_batch(
    calls: &[ToolCall],
    ctx: &ToolCtx,
    runner: &Agent,
) -> Vec<ToolResult> {
    let events = &runner.events;
    let store = runner.engine.store();
    let allowed = runner.allowed();
    let parsed: Vec<Result<Parsed, String>> = calls
        .iter()
        .map(|c| match runner.engine.mcp().parse(&c.name, &c.arguments) {
            Some(mcp) => mcp.map(Parsed::Mcp),
            None => tools::parse(&c.name, &c.arguments, allowed),
        })
        .collect();
    let access: Vec<Access> = parsed
        .iter()
        .map(|p| match p {
            Ok(p) => p.access(&ctx.root),
            Err(_) => Access::Nothing,
        })
        .collect();
    let agent = ctx.gate.agent().map(str::to_string);
    // Announce every call first, so the editor sees the whole batch.
    for (call, p) in calls.iter().zip(&parsed) {
        let title = match p {
            Ok(p) => p.title(),
            Err(_) => format!("{} (invalid arguments)", call.name),
        };
        events.emit(UpdateKind::ToolCall {
            tool_call_id: call.id.clone(),
            tool: call.name.clone(),
            title,
            status: ToolStatus::Pending,
            input: serde_json::from_str(&call.arguments).ok(),
            output: None,
            agent: agent.clone(),
        });
    }

    // A batch deadline cancels whatever is still unfinished.
    let batch_cancel = ctx.cancel.child_token();
    let deadline_secs = ctx.tools.batch_deadline_secs;
    let _deadline_guard = if deadline_secs > 0 {
        let t = batch_cancel.clone();
        let h = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(deadline_secs)).await;
            t.cancel();
        });
        Some(AbortOnDrop(h))
    } else {
        None
    };
    let batch_ctx = ToolCtx {
        cancel: batch_cancel.clone(),
        ..ctx.clone()
    };

    let limit = Arc::new(Semaphore::new(ctx.tools.max_parallel.max(1)));
    let (done_tx, done_rx): (Vec<_>, Vec<_>) = calls.iter().map(|_| watch::channel(false)).unzip();
    let futs = calls.iter().zip(parsed).enumerate().map(|(i, (call, p))| {
        let deps: Vec<watch::Receiver<bool>> = (0..i)
            .filter(|&j| conflicts(&access[j], &access[i]))
            .map(|j| done_rx[j].clone())
            .collect();
        let done = &done_tx[i];
        let limit = limit.clone();
        let batch_ctx = &batch_ctx;
        let agent = agent.clone();
        async move {
            let title = match &p {
                Ok(p) => p.title(),
                Err(_) => format!("{} (invalid arguments)", call.name),
            };
            let started = Instant::now();
            let result = match p {
                Err(msg) => ToolResult::failed(msg),
                Ok(p) => {
                    for mut d in deps {
                        tokio::select! {
                            _ = d.wait_for(|v| *v) => {}
                            _ = batch_ctx.cancel.cancelled() => {}
                        }
                    }
                    let permit = tokio::select! {
                        p = limit.acquire_owned() => p.ok(),
                        _ = batch_ctx.cancel.cancelled() => None,
                    };
                    if batch_ctx.cancel.is_cancelled() || permit.is_none() {
                        ToolResult::cancelled()
                    } else {
                        events.emit(UpdateKind::ToolCall {
                            tool_call_id: call.id.clone(),
                            tool: call.name.clone(),
                            title: title.clone(),
                            status: ToolStatus::Running,
                            input: None,
                            output: None,
                            agent: agent.clone(),
                        });
                        if let Parsed::Todo { items } = &p {
                            events.emit(UpdateKind::Plan {
                                entries: items.clone(),
                            });
                        }
                        let live = {
                            let events = events.clone();
                            let id = call.id.clone();
                            let tool = call.name.clone();
                            let title = title.clone();
                            let agent = agent.clone();
                            let redactor = batch_ctx.redactor.clone();
                            Arc::new(move |output: String| {
                                events.emit(UpdateKind::ToolCall {
                                    tool_call_id: id.clone(),
                                    tool: tool.clone(),
                                    title: title.clone(),
                                    status: ToolStatus::Running,
                                    input: None,
                                    output: Some(redactor.redact(&output)),
                                    agent: agent.clone(),
                                });
                            }) as Arc<dyn Fn(String) + Send + Sync>
                        };
                        let call_ctx = ToolCtx {
                            progress: Some(live),
                            ..batch_ctx.clone()
                        };
                        let r = match p {
                            Parsed::Delegate { tasks } => {
                                Box::pin(super::subagents::delegate(runner, tasks, &call_ctx)).await
                            }
                            p => p.run(&call_ctx).await,
                        };
                        drop(permit);
                        r
                    }
                }
            };
            let result = if result.status == ToolStatus::Cancelled
                && !ctx.cancel.is_cancelled()
                && batch_ctx.cancel.is_cancelled()
            {
                ToolResult {
                    status: ToolStatus::Cancelled,
                    output: format!(
                        "Cancelled: the batch deadline ({deadline_secs} s) passed before this call finished."
                    ),
                }
            } else {
                result
            };
            // Tools redact their own output; a subagent's report is the
            // model's text, so every result is redacted here once more.
            let result = ToolResult {
                output: batch_ctx.redactor.redact(&result.output),
                ..result
            };
            let _ = done.send(true);
            events.emit(UpdateKind::ToolCall {
                tool_call_id: call.id.clone(),
                tool: call.name.clone(),
                title,
                status: result.status,
                input: None,
                output: Some(excerpt(&result.output, 4000)),
                agent: agent.clone(),
            });
            store.submit(Write::ToolRun {
                session_id: batch_ctx.session_id.clone(),
                tool_call_id: call.id.clone(),
                tool: call.name.clone(),
                input: batch_ctx.redactor.redact_json_text(&call.arguments),
                status: result.status,
                output_excerpt: excerpt(&result.output, 2000),
                duration_ms: started.elapsed().as_millis() as i64,
            });
            result
        }
    });
    join_all(futs).await
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// At most `max` bytes of `s`, cut at a char boundary.
fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let cut = crate::model::floor_char_boundary(s, max);
    format!("{}…", &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn conflict_rules() {
        let r = |p: &str| Access::Read(PathBuf::from(p));
        let w = |p: &str| Access::Write(PathBuf::from(p));
        assert!(conflicts(&w("/w/a.txt"), &r("/w/a.txt")));
        assert!(conflicts(&r("/w"), &w("/w/a.txt")));
        assert!(!conflicts(&w("/w/a.txt"), &r("/w/b.txt")));
        assert!(!conflicts(&r("/w/a"), &r("/w/a")));
        assert!(!conflicts(&Access::Command, &Access::Command));
        assert!(conflicts(&Access::Command, &w("/w/x")));
        assert!(conflicts(&w("/w/x"), &Access::Command));
        assert!(!conflicts(&Access::Nothing, &w("/w/x")));
    }
}
