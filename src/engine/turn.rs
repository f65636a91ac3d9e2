//! One turn: the user's prompt, then model responses and tool batches until
//! the model stops calling tools, the turn is cancelled, or the cap is hit.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::context::Sent;
use super::repeat::{Loop, RepeatGuard};
use super::{Engine, EventSink};
use crate::gate::{ApprovalEvents, Gate};
use crate::model::{ModelClient, ModelError, StreamEvent};
use crate::protocol::{PromptParams, PromptResult, Role, StopReason, Update, UpdateKind};
use crate::store::{now_ms, StoredMessage, Write};
use crate::tools::{self, Redactor, ToolCtx};

pub(super) struct Turn {
    pub engine: Arc<Engine>,
    pub model: ModelClient,
    pub session_id: String,
    pub turn_id: String,
    pub cancel: CancellationToken,
    pub sink: Arc<dyn EventSink>,
    pub gate: Gate,
    pub max_iterations: u32,
    /// `/compact`: compact the session's context and end.
    pub compact_only: bool,
}

/// The sink as the tools and the gate see it: ids bound in, and every
/// update redacted on its way out (streamed text is redacted before, by the
/// agent's [`tools::redact::StreamRedactor`]).
pub(super) struct TurnEvents {
    pub sink: Arc<dyn EventSink>,
    pub session_id: String,
    pub turn_id: String,
    pub redactor: Arc<Redactor>,
}

impl TurnEvents {
    pub fn emit(&self, kind: UpdateKind) {
        self.sink.emit(Update {
            session_id: self.session_id.clone(),
            turn_id: self.turn_id.clone(),
            kind: redact_update(&self.redactor, kind),
        });
    }
}

/// An update with secrets redacted from every text it carries (tool inputs
/// and outputs, titles, commands shown for approval, subagent goals and
/// summaries, plan entries). Streamed text is left to the stream redactor.
fn redact_update(r: &Redactor, kind: UpdateKind) -> UpdateKind {
    match kind {
        UpdateKind::ToolCall {
            tool_call_id,
            tool,
            title,
            status,
            input,
            output,
            agent,
        } => UpdateKind::ToolCall {
            tool_call_id,
            tool,
            title: r.redact(&title),
            status,
            input: input.map(|v| r.redact_json(&v)),
            output: output.map(|o| r.redact(&o)),
            agent: agent.map(|a| r.redact(&a)),
        },
        UpdateKind::Approval {
            approval_id,
            status,
            command,
            reason,
            agent,
        } => UpdateKind::Approval {
            approval_id,
            status,
            command: command.map(|c| r.redact(&c)),
            reason: r.redact(&reason),
            agent: agent.map(|a| r.redact(&a)),
        },
        UpdateKind::Subagent {
            child_session_id,
            goal,
            status,
            summary,
        } => UpdateKind::Subagent {
            child_session_id,
            goal: r.redact(&goal),
            status,
            summary: summary.map(|s| r.redact(&s)),
        },
        UpdateKind::Plan { entries } => UpdateKind::Plan {
            entries: entries
                .into_iter()
                .map(|mut e| {
                    e.content = r.redact(&e.content);
                    e
                })
                .collect(),
        },
        other @ (UpdateKind::Text { .. }
        | UpdateKind::Usage { .. }
        | UpdateKind::Compaction { .. }
        | UpdateKind::TurnEnd { .. }) => other,
    }
}

impl ApprovalEvents for TurnEvents {
    fn approval(&self, update: UpdateKind) {
        self.emit(update);
    }
}

const SYSTEM_PROMPT: &str = "You are Tether, a coding agent working inside the person's editor. \
Use the tools to read, search and edit files and to run commands in the workspace. \
Paths are relative to the workspace root. Commands run without a terminal and without stdin. \
Commands that could destroy work need the person's approval; if one is denied, do not retry it \
or work around the denial — choose a safer approach or explain what you need. \
Prefer small, precise edits (edit_file) over rewriting files. Be brief in your answers.";

/// Converts stored messages to the model's message format.
pub(super) fn to_model_messages(msgs: &[StoredMessage]) -> Vec<Value> {
    msgs.iter()
        .filter_map(|m| match m.role {
            // Tether's own marker: the view builder sends its summary instead.
            Role::Compaction => None,
            Role::Assistant => {
                let mut v = json!({"role": "assistant", "content": m.content});
                if let Some(tc) = m
                    .tool_calls
                    .as_ref()
                    .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
                {
                    v["tool_calls"] = tc.clone();
                    if m.content.is_empty() {
                        v["content"] = Value::Null;
                    }
                }
                Some(v)
            }
            Role::Tool => Some(json!({
                "role": "tool",
                "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
                "content": m.content,
            })),
            role @ (Role::User | Role::System) => {
                Some(json!({"role": role.as_str(), "content": m.content}))
            }
        })
        .collect()
}

/// Makes a stored history valid for the model: every assistant tool call
/// must be followed by its result (a crash may have cut one off).
pub(super) fn repair_history(msgs: Vec<StoredMessage>) -> Vec<StoredMessage> {
    let mut out: Vec<StoredMessage> = Vec::with_capacity(msgs.len());
    let mut pending: Vec<String> = Vec::new();
    let flush = |out: &mut Vec<StoredMessage>, pending: &mut Vec<String>| {
        for id in pending.drain(..) {
            out.push(StoredMessage {
                role: Role::Tool,
                content: "Interrupted: this call did not finish (Tether stopped).".into(),
                tool_calls: None,
                tool_call_id: Some(id),
                created_ms: now_ms(),
            });
        }
    };
    for m in msgs {
        match m.role {
            Role::Tool => {
                if let Some(id) = &m.tool_call_id {
                    if let Some(pos) = pending.iter().position(|p| p == id) {
                        pending.remove(pos);
                        out.push(m);
                    }
                    // A result without its call is dropped: the model rejects it.
                }
            }
            _ => {
                flush(&mut out, &mut pending);
                if m.role == Role::Assistant {
                    if let Some(calls) = m.tool_calls.as_ref().and_then(|t| t.as_array()) {
                        pending = calls
                            .iter()
                            .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
                            .collect();
                    }
                }
                out.push(m);
            }
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// Totals of one agent loop, for the turn result or a subagent's report.
#[derive(Debug, Default)]
pub(super) struct LoopOutcome {
    pub stop: Option<StopReason>,
    pub text: String,
    /// The last response's text (a subagent's summary).
    pub last_text: String,
    pub error: Option<String>,
    pub tool_calls: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One agent: the main agent of a turn or a subagent. Everything it may use
/// is here, passed in; nothing is reached through globals.
#[derive(Clone)]
pub(super) struct Agent {
    pub engine: Arc<Engine>,
    pub model: ModelClient,
    /// The session its messages are stored in.
    pub session_id: String,
    pub cancel: CancellationToken,
    /// Where updates go (a subagent reports under its parent's turn).
    pub events: Arc<TurnEvents>,
    pub sink: Arc<dyn EventSink>,
    pub gate: Gate,
    pub max_iterations: u32,
    /// 0 for the main agent.
    pub depth: u32,
    /// Whether streamed text goes to the editor (not for subagents).
    pub stream_text: bool,
    /// Extra system instructions (subagents).
    pub system_extra: Option<String>,
}

impl Agent {
    pub async fn append(&self, history: &mut Vec<StoredMessage>, msg: StoredMessage) {
        self.store_message(history, msg, None).await;
    }

    /// Appends a prompt whose content has editor context added to what the
    /// person typed (`display`, which history shows).
    pub async fn append_prompt(
        &self,
        history: &mut Vec<StoredMessage>,
        msg: StoredMessage,
        display: String,
    ) {
        self.store_message(history, msg, Some(display)).await;
    }

    /// Stores a message with its secrets redacted. The history the model
    /// sees next keeps the redacted text too, except a person's prompt: what
    /// they typed or attached goes to the model as it is for this turn (they
    /// chose to show it), while the store keeps it redacted.
    async fn store_message(
        &self,
        history: &mut Vec<StoredMessage>,
        msg: StoredMessage,
        display: Option<String>,
    ) {
        let r = &self.engine.parts.redactor;
        let redacted = StoredMessage {
            content: r.redact(&msg.content),
            tool_calls: msg.tool_calls.as_ref().map(|t| r.redact_json(t)),
            ..msg.clone()
        };
        let display = display.map(|d| r.redact(&d));
        history.push(if msg.role == Role::User {
            msg
        } else {
            redacted.clone()
        });
        let msg = redacted;
        let session_id = self.session_id.clone();
        let w = match display {
            Some(display) => Write::AppendPrompt {
                session_id,
                message: msg,
                display,
            },
            None => Write::AppendMessage {
                session_id,
                message: msg,
            },
        };
        if let Err(e) = self.engine.store().write(w).await {
            tracing::warn!("message not stored: {e}");
            if let Some(w) = self.engine.store().take_warning() {
                self.sink.notice(w);
            }
        }
    }

    /// The tools this agent has: the built-in ones (a subagent has no
    /// `todo`), the engine's tool sources', and `delegate` while
    /// `delegation.max_depth` allows.
    pub fn tools(&self) -> tools::Registry {
        let mut registry = tools::Registry::builtin();
        if self.depth > 0 {
            registry.remove("todo");
        }
        for source in &self.engine.parts.tool_sources {
            for tool in source.tools(&self.session_id) {
                if let Err(e) = registry.add(tool) {
                    tracing::warn!("tool not offered to the model: {e}");
                }
            }
        }
        if self.depth < self.engine.config().delegation.max_depth {
            let delegate = super::subagents::Delegate(Arc::new(self.clone()));
            if let Err(e) = registry.add(Arc::new(delegate)) {
                tracing::warn!("delegate not offered to the model: {e}");
            }
        }
        registry
    }

    /// The tools of this agent's next model request: [`Agent::tools`], then
    /// the MCP servers' tools (a workspace's servers are asked about first;
    /// servers still starting are waited for up to their start-up timeout).
    pub async fn registry(&self, ctx: &ToolCtx) -> tools::Registry {
        let mut registry = self.tools();
        let mcp = self.engine.mcp();
        if !mcp.is_empty() {
            mcp.approve_workspace(ctx).await;
            for tool in mcp.tools().await {
                if let Err(e) = registry.add(tool) {
                    tracing::warn!("MCP tool not offered to the model: {e}");
                }
            }
        }
        registry
    }

    pub fn tool_ctx(&self) -> ToolCtx {
        let engine = &self.engine;
        let cfg = engine.config();
        ToolCtx {
            root: engine.root().to_path_buf(),
            buffers: engine.parts.buffers.clone(),
            gate: self.gate.clone(),
            cancel: self.cancel.clone(),
            events: self.events.clone(),
            session_id: self.session_id.clone(),
            turn_session_id: self.events.session_id.clone(),
            tools: cfg.tools.clone(),
            secret_env: cfg.secret_env_names(),
            redactor: engine.parts.redactor.clone(),
            progress: None,
        }
    }

    pub fn system_prompt(&self) -> String {
        let mut system = format!(
            "{SYSTEM_PROMPT}\nWorkspace root: {}",
            self.engine.root().display()
        );
        if let Some(extra) = &self.system_extra {
            system.push_str("\n\n");
            system.push_str(extra);
        }
        system
    }

    /// Model → tools → model, until the model stops calling tools.
    pub async fn run_loop(&self, history: &mut Vec<StoredMessage>) -> LoopOutcome {
        let engine = &self.engine;
        let ctx = self.tool_ctx();
        let registry = self.registry(&ctx).await;
        let tool_specs = registry.specs();
        let mut out = LoopOutcome::default();
        let system = self.system_prompt();
        let mut sent = Sent::new(&system, &tool_specs);
        let mut overflow_retried = false;
        for _iteration in 0..self.max_iterations.max(1) {
            if self.cancel.is_cancelled() {
                out.stop = Some(StopReason::Cancelled);
                return out;
            }
            let budget = self.prepare(history, &mut sent, &mut out).await;
            let model = self.model.with_max_tokens(Some(budget.reserve));
            let ev = self.events.clone();
            let stream_text = self.stream_text;
            let mut shown = String::new();
            // The model may repeat a secret it was shown (or invent one): the
            // editor gets the stream redacted, held back where a secret could
            // still be forming.
            let mut live = engine.parts.redactor.stream();
            let mut guard = RepeatGuard::default();
            let mut looped: Option<Loop> = None;
            let request_cancel = self.cancel.child_token();
            let mut on_event = |e: StreamEvent| {
                if let StreamEvent::Text(delta) = e {
                    if looped.is_some() {
                        return;
                    }
                    shown.push_str(&delta);
                    looped = guard.push(&delta);
                    if looped.is_some() {
                        request_cancel.cancel();
                    }
                    if stream_text {
                        let delta = live.push(&delta);
                        if !delta.is_empty() {
                            ev.emit(UpdateKind::Text { delta });
                        }
                    }
                }
            };
            let completion = model
                .complete_serialized(&sent.parts, &tool_specs, &mut on_event, &request_cancel)
                .await;
            let rest = live.finish();
            if stream_text && !rest.is_empty() {
                self.events.emit(UpdateKind::Text { delta: rest });
            }
            if let Some(l) = looped {
                return self.stopped_looping(history, &mut out, shown, l).await;
            }
            let completion = match completion {
                Ok(c) => c,
                Err(e) if shown.is_empty() && e.overflow().is_some() => {
                    let stated = e.overflow().flatten();
                    let sent_tokens = budget.tokens(sent.bytes());
                    let learned = stated.unwrap_or(sent_tokens * 4 / 5);
                    engine.windows.learned(self.model.model(), learned);
                    if let Some(prompt) = e.overflow_prompt_tokens() {
                        engine
                            .windows
                            .calibrate(self.model.model(), sent.bytes(), prompt);
                    }
                    if overflow_retried {
                        out.stop = Some(StopReason::Error);
                        out.error = Some(format!(
                            "the conversation does not fit the model's context window ({learned} tokens) even after compacting it ({e}). \
                             Start a new session (/new), or use a model or server setting with a larger window \
                             (e.g. llama.cpp's -c); the history is kept"
                        ));
                        if self.depth == 0 {
                            self.sink.notice(format!(
                                "Tether: {}",
                                out.error.clone().unwrap_or_default()
                            ));
                        }
                        return out;
                    }
                    overflow_retried = true;
                    let budget = self.budget(sent.bytes());
                    self.compact(history, &mut sent, &budget, true, "overflow", &mut out)
                        .await;
                    continue;
                }
                Err(e) => {
                    if !shown.is_empty() {
                        out.text.push_str(&shown);
                        out.last_text = shown.clone();
                        self.append(history, assistant(shown, None)).await;
                    }
                    if matches!(e, ModelError::Cancelled) {
                        out.stop = Some(StopReason::Cancelled);
                    } else {
                        let msg = e.to_string();
                        if e.is_endpoint_problem() && self.depth == 0 {
                            self.sink.notice(format!("Tether: {msg}"));
                        }
                        out.stop = Some(StopReason::Error);
                        out.error = Some(msg);
                    }
                    return out;
                }
            };
            if let Some(u) = completion.usage {
                engine
                    .windows
                    .calibrate(self.model.model(), sent.bytes(), u.prompt_tokens);
                self.add_usage(&mut out, u.prompt_tokens, u.completion_tokens);
            }
            out.text.push_str(&completion.text);
            out.last_text = completion.text.clone();
            if completion.tool_calls.is_empty() {
                let cut = completion.finish_reason.as_deref() == Some("length");
                self.append(history, assistant(completion.text, None)).await;
                if cut {
                    let note = format!(
                        "\n\n[Tether: the reply reached the output limit of {} tokens and was cut off. \
                         Say \"continue\" for the rest, or raise model_options.max_tokens.]",
                        budget.reserve
                    );
                    if self.stream_text {
                        self.events.emit(UpdateKind::Text {
                            delta: note.clone(),
                        });
                    }
                    out.text.push_str(&note);
                }
                out.stop = Some(StopReason::EndTurn);
                return out;
            }
            let calls_json: Vec<Value> = completion
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            self.append(
                history,
                assistant(completion.text.clone(), Some(Value::Array(calls_json))),
            )
            .await;
            out.tool_calls += completion.tool_calls.len();
            let results = super::calls::run(
                &completion.tool_calls,
                &registry,
                &ctx,
                &self.events,
                engine.store(),
            )
            .await;
            for (call, result) in completion.tool_calls.iter().zip(results) {
                self.append(
                    history,
                    StoredMessage {
                        role: Role::Tool,
                        content: result.output,
                        tool_calls: None,
                        tool_call_id: Some(call.id.clone()),
                        created_ms: now_ms(),
                    },
                )
                .await;
            }
            if self.cancel.is_cancelled() {
                out.stop = Some(StopReason::Cancelled);
                return out;
            }
            if !completion.text.is_empty() && !out.text.ends_with('\n') {
                out.text.push_str("\n\n");
            }
        }
        out.stop = Some(StopReason::MaxIterations);
        out.error = Some(format!(
            "stopped after {} model calls (max_iterations); say \"continue\" to go on",
            self.max_iterations
        ));
        out
    }
}

impl Turn {
    fn result(&self, stop: StopReason, text: String, error: Option<String>) -> PromptResult {
        PromptResult {
            session_id: self.session_id.clone(),
            turn_id: self.turn_id.clone(),
            stop_reason: stop,
            text,
            error,
        }
    }

    pub async fn run(self, params: PromptParams) -> PromptResult {
        let events = Arc::new(TurnEvents {
            sink: self.sink.clone(),
            session_id: self.session_id.clone(),
            turn_id: self.turn_id.clone(),
            redactor: self.engine.parts.redactor.clone(),
        });
        let agent = Agent {
            engine: self.engine.clone(),
            model: self.model.clone(),
            session_id: self.session_id.clone(),
            cancel: self.cancel.clone(),
            events: events.clone(),
            sink: self.sink.clone(),
            gate: self.gate.clone(),
            max_iterations: self.max_iterations,
            depth: 0,
            stream_text: true,
            system_extra: Some(self.system_extra(&params).await),
        };
        let stored = self
            .engine
            .store()
            .messages(self.session_id.clone())
            .await
            .unwrap_or_default();
        let mut history = repair_history(stored);
        if self.compact_only {
            let out = agent.compact_command(&mut history).await;
            let stop = out.stop.unwrap_or(StopReason::Error);
            events.emit(UpdateKind::Text {
                delta: out.text.clone(),
            });
            events.emit(UpdateKind::TurnEnd { stop_reason: stop });
            self.sink.flush().await;
            return self.result(stop, out.text, out.error);
        }
        let prompt = self.prompt_with_context(&params).await;
        if prompt == params.text {
            agent.append(&mut history, user(prompt)).await;
        } else {
            agent
                .append_prompt(&mut history, user(prompt), params.text.clone())
                .await;
        }
        let out = agent.run_loop(&mut history).await;
        let stop = out.stop.unwrap_or(StopReason::Error);
        events.emit(UpdateKind::TurnEnd { stop_reason: stop });
        // The result goes out after the turn's updates (as far as the
        // frontend can tell; `turnEnd` is the ordering guarantee).
        self.sink.flush().await;
        let r = &self.engine.parts.redactor;
        self.result(stop, r.redact(&out.text), out.error.map(|e| r.redact(&e)))
    }

    /// The project's instructions and the turn's environment.
    async fn system_extra(&self, params: &PromptParams) -> String {
        let personal = self
            .engine
            .config()
            .user_config
            .as_ref()
            .and_then(|p| p.parent())
            .map(|d| d.join("AGENTS.md"));
        let root = self.engine.root().to_path_buf();
        let inst = tokio::task::spawn_blocking(move || {
            super::instructions::load(&root, personal.as_deref())
        })
        .await
        .unwrap_or_default();
        let env = super::instructions::environment(self.engine.root(), &params.context).await;
        if inst.text.is_empty() {
            env
        } else {
            format!("{env}\n\n{}", inst.text)
        }
    }

    /// The prompt text with the editor context it refers to appended.
    async fn prompt_with_context(&self, params: &PromptParams) -> String {
        let mut text = params.text.clone();
        for c in &params.context {
            let Some(path) = tools::uri_to_path(&c.uri) else {
                continue;
            };
            let content = match self.engine.parts.buffers.open_text(&path) {
                Some(t) => t,
                None => match tokio::fs::read_to_string(&path).await {
                    Ok(t) => t,
                    Err(_) => continue,
                },
            };
            let shown = path
                .strip_prefix(self.engine.root())
                .unwrap_or(&path)
                .display()
                .to_string();
            let (body, where_) = match c.range {
                Some(r) => {
                    let lines: Vec<&str> = content.lines().collect();
                    let start = (r.start.line as usize).min(lines.len());
                    let end = (r.end.line as usize + 1).min(lines.len()).max(start);
                    (
                        lines[start..end].join("\n"),
                        format!(" lines {}-{}", start + 1, end),
                    )
                }
                None => (content, String::new()),
            };
            let body = crate::text::prefix(&body, crate::text::Max::Chars(50_000));
            text.push_str(&format!("\n\nContext: {shown}{where_}\n```\n{body}\n```"));
        }
        text
    }
}

/// A user message, as stored.
pub(super) fn user(content: String) -> StoredMessage {
    StoredMessage {
        role: Role::User,
        content,
        tool_calls: None,
        tool_call_id: None,
        created_ms: now_ms(),
    }
}

pub(super) fn assistant(content: String, tool_calls: Option<Value>) -> StoredMessage {
    StoredMessage {
        role: Role::Assistant,
        content,
        tool_calls,
        tool_call_id: None,
        created_ms: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: &str, calls: Option<Value>, id: Option<&str>) -> StoredMessage {
        StoredMessage {
            role: Role::parse(role).expect("a role"),
            content: String::new(),
            tool_calls: calls,
            tool_call_id: id.map(str::to_string),
            created_ms: 0,
        }
    }

    #[test]
    fn repair_fills_missing_results_and_drops_orphans() {
        let msgs = vec![
            m("user", None, None),
            m("assistant", Some(json!([{"id": "a"}, {"id": "b"}])), None),
            m("tool", None, Some("a")),
            m("tool", None, Some("zzz")),
            m("user", None, None),
        ];
        let fixed = repair_history(msgs);
        let roles: Vec<_> = fixed
            .iter()
            .map(|m| (m.role.as_str(), m.tool_call_id.as_deref()))
            .collect();
        assert_eq!(
            roles,
            vec![
                ("user", None),
                ("assistant", None),
                ("tool", Some("a")),
                ("tool", Some("b")),
                ("user", None)
            ]
        );
    }
}
