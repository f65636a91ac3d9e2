//! What the model is sent, and keeping it inside the model's context window.
//!
//! The store keeps the whole conversation; the model is sent a **view** of
//! it. A compaction appends a marker message (role [`COMPACTION_ROLE`]) to
//! the session: its content is a hand-off summary (possibly empty) and its
//! `tool_calls` field holds `{"compaction": {"prunedBefore", "summaryFrom",
//! "summaryTo"}}`, indices into the session's messages as loaded. The view
//! builder applies the last marker: tool outputs before `prunedBefore` become
//! stubs (tool, arguments, first and last lines — a command's exit code is
//! its first line), messages in `summaryFrom..summaryTo` are replaced by the
//! summary, and the system prompt, the first request and the recent turns
//! are kept as they are. Because the marker is stored, later turns reuse it.
//!
//! Tokens: the server's `usage.prompt_tokens` calibrates a bytes→tokens ratio
//! (tokens per byte of the serialized messages and tool schemas of the same
//! request); until a server has reported usage, a byte is taken as 1/3 of a
//! token, which over-counts English and JSON (about 4 bytes a token) so that
//! the first estimate errs on the safe side. No tokenizer is bundled: the
//! ratio of the real server's own tokenizer is better than a guess at which
//! tokenizer the model uses.
//!
//! **Invariant:** a compaction only adds a message; nothing stored is changed
//! or deleted, so `tether/history` and the store keep every message.

use crate::protocol::Role;
use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::turn::{to_model_messages, Agent};
use crate::protocol::UpdateKind;
use crate::store::{now_ms, StoredMessage, Write};

/// The conversation as serialized for the model: the system prompt and the
/// view, one JSON text per message, extended as messages are added and
/// rebuilt only after a compaction. The cost of a request does not grow
/// with re-serializing the whole history.
pub(super) struct Sent {
    pub parts: Vec<String>,
    parts_bytes: usize,
    /// The system prompt and the tool schemas.
    fixed: usize,
    /// History messages already serialized.
    upto: usize,
    built: bool,
    cap: usize,
}

impl Sent {
    pub fn new(system: &str, tools: &[Value]) -> Sent {
        let system = json!({"role": "system", "content": system}).to_string();
        let tools_bytes = serde_json::to_vec(tools).map(|v| v.len()).unwrap_or(0);
        Sent {
            fixed: system.len() + 1 + tools_bytes,
            parts_bytes: 0,
            parts: vec![system],
            upto: 0,
            built: false,
            cap: usize::MAX,
        }
    }

    /// Bytes of the request: messages, system prompt and tool schemas.
    pub fn bytes(&self) -> usize {
        self.fixed + self.parts_bytes
    }

    /// Brings the serialized view up to date with `history`.
    fn sync(&mut self, history: &[StoredMessage], cap: usize) {
        if !self.built || history.len() < self.upto {
            self.rebuild(history, cap);
            return;
        }
        for m in &history[self.upto..] {
            if m.role == COMPACTION_ROLE {
                // Only a compaction adds one, and it rebuilds.
                continue;
            }
            let mut m = m.clone();
            if m.content.len() > self.cap {
                m.content = head_tail(&m.content, self.cap);
            }
            for v in to_model_messages(std::slice::from_ref(&m)) {
                let text = v.to_string();
                self.parts_bytes += text.len() + 1;
                self.parts.push(text);
            }
        }
        self.upto = history.len();
    }

    /// Bytes of the longest message part sent.
    fn largest(&self) -> usize {
        self.parts
            .iter()
            .skip(1)
            .map(String::len)
            .max()
            .unwrap_or(0)
    }

    fn rebuild(&mut self, history: &[StoredMessage], cap: usize) {
        self.rebuild_squeezed(history, cap, usize::MAX);
    }

    /// [`Sent::rebuild`], with every message but the newest request cut to
    /// `squeezed` bytes (see [`squeeze`]).
    fn rebuild_squeezed(&mut self, history: &[StoredMessage], cap: usize, squeezed: usize) {
        self.parts.truncate(1);
        self.parts_bytes = 0;
        self.cap = cap;
        let mut view = view(history, cap);
        let newest = view.iter().rposition(|m| m.role == Role::User);
        for (i, m) in view.iter_mut().enumerate() {
            if Some(i) != newest && m.content.len() > squeezed {
                m.content = head_tail(&m.content, squeezed);
            }
        }
        for v in to_model_messages(&view) {
            let text = v.to_string();
            self.parts_bytes += text.len() + 1;
            self.parts.push(text);
        }
        self.upto = history.len();
        self.built = true;
    }
}

impl Agent {
    /// The budget of the next request, from what is known of the window.
    pub(super) fn budget(&self, bytes: usize) -> Budget {
        let _ = bytes;
        let w = self.engine.windows.get(self.model.model());
        let window = w
            .effective(self.engine.config().model_context_window)
            .unwrap_or(0);
        let known = (window > 0).then_some(window);
        Budget {
            window,
            reserve: max_tokens(self.model.configured_max_tokens(), known),
            ratio: w.ratio,
        }
    }

    /// Brings what is sent up to date and compacts it when it would pass
    /// the budget. Asks the server for its window once the conversation is
    /// big enough for it to matter.
    pub(super) async fn prepare(
        &self,
        history: &mut Vec<StoredMessage>,
        sent: &mut Sent,
        out: &mut super::turn::LoopOutcome,
    ) -> Budget {
        let mut budget = self.budget(sent.bytes());
        sent.sync(history, budget.message_cap());
        let name = self.model.model().to_string();
        let w = self.engine.windows.get(&name);
        let big = w.last_prompt > DISCOVER_ABOVE_TOKENS
            || budget.tokens(sent.parts_bytes) > DISCOVER_ABOVE_TOKENS
            || budget.tokens(sent.bytes()) > 4 * DISCOVER_ABOVE_TOKENS;
        if budget.window == 0 && !w.discovered && big {
            let found = self.model.discover_window().await;
            tracing::info!("context window of {name}: {found:?}");
            self.engine
                .windows
                .discovered(&name, found.map(|f| f.tokens));
            budget = self.budget(sent.bytes());
            if budget.window > 0 {
                sent.rebuild(history, budget.message_cap());
            }
        }
        if budget.over(sent.bytes()) {
            self.compact(history, sent, &budget, false, "budget", out)
                .await;
        }
        squeeze(history, sent, &mut budget);
        budget
    }

    /// Compacts what the model is sent (see the module doc) and says so.
    pub(super) async fn compact(
        &self,
        history: &mut Vec<StoredMessage>,
        sent: &mut Sent,
        budget: &Budget,
        force: bool,
        reason: &str,
        out: &mut super::turn::LoopOutcome,
    ) {
        if budget.window == 0 || history.is_empty() {
            return;
        }
        sent.sync(history, budget.message_cap());
        let before = budget.tokens(sent.bytes());
        let plan = plan(history, budget, sent.fixed, force);
        let current = last_compaction(history);
        let current_summary = current.map(|(_, _, s)| s.to_string()).unwrap_or_default();
        let current_cuts = current.map(|(_, c, _)| c).unwrap_or_default();
        let (cuts, summary, summarized) = if plan.summarize {
            match self.summarize(history, &plan, budget, out).await {
                Ok(s) => (plan.cuts, s, plan.summarized_messages),
                Err(e) => {
                    tracing::warn!("compaction: no summary: {e}");
                    if self.depth == 0 {
                        self.sink.notice(format!(
                            "Tether: could not summarise the conversation to fit the context window ({e}); old tool outputs were cut instead"
                        ));
                    }
                    (
                        Cuts {
                            pruned_before: plan.cuts.pruned_before,
                            ..current_cuts
                        },
                        current_summary,
                        0,
                    )
                }
            }
        } else {
            (plan.cuts, current_summary, 0)
        };
        self.append(history, marker(cuts, summary)).await;
        sent.rebuild(history, budget.message_cap());
        let after = budget.tokens(sent.bytes());
        self.events.emit(UpdateKind::Compaction {
            reason: reason.to_string(),
            tokens_before: before,
            tokens_after: after,
            window: budget.window,
            pruned_outputs: plan.pruned_outputs,
            summarized_messages: summarized,
        });
    }

    /// `/compact`: summarises the conversation now, whatever its size.
    pub(super) async fn compact_command(
        &self,
        history: &mut Vec<StoredMessage>,
    ) -> super::turn::LoopOutcome {
        let mut out = super::turn::LoopOutcome::default();
        let tools = self.registry(&self.tool_ctx()).await.specs();
        let mut sent = Sent::new(&self.system_prompt(), &tools);
        let mut budget = self.prepare(history, &mut sent, &mut out).await;
        if budget.window == 0 {
            // Unknown window: compact as if the conversation filled it.
            budget.window = (budget.tokens(sent.bytes()) + budget.reserve).max(2048);
        }
        let before = history.len();
        if history.iter().filter(|m| m.role != COMPACTION_ROLE).count() < 3 {
            out.text = "Nothing to compact yet.".into();
        } else {
            self.compact(history, &mut sent, &budget, true, "command", &mut out)
                .await;
            out.text = if history.len() > before {
                format!(
                    "Compacted: the model is now sent about {} tokens (the full history is kept).",
                    budget.tokens(sent.bytes())
                )
            } else {
                "Nothing was compacted.".into()
            };
        }
        out.stop = Some(if self.cancel.is_cancelled() {
            crate::protocol::StopReason::Cancelled
        } else {
            crate::protocol::StopReason::EndTurn
        });
        out
    }

    /// Asks the model for a hand-off summary of the messages being replaced.
    async fn summarize(
        &self,
        history: &[StoredMessage],
        plan: &Plan,
        budget: &Budget,
        out: &mut super::turn::LoopOutcome,
    ) -> Result<String, String> {
        // An eighth of the window, within the person's own output cap.
        let summary_tokens = (budget.window / 8)
            .min(self.model.configured_max_tokens().unwrap_or(u64::MAX))
            .clamp(64, 2048);
        let room = (budget.window as f64 * TARGET - summary_tokens as f64) / budget.ratio;
        let max_bytes = (room as usize)
            .saturating_sub(HANDOFF_PROMPT.len() + 200)
            .max(1024);
        let text = transcript(history, plan, max_bytes);
        let messages = [
            json!({"role": "system", "content": HANDOFF_PROMPT}),
            json!({"role": "user", "content": text}),
        ];
        let c = self
            .model
            .with_max_tokens(Some(summary_tokens))
            .complete(&messages, &[], &mut |_| {}, &self.cancel)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(u) = c.usage {
            self.add_usage(out, u.prompt_tokens, u.completion_tokens);
        }
        let summary = c.text.trim();
        if summary.is_empty() {
            return Err("the model wrote an empty summary".into());
        }
        Ok(summary.to_string())
    }

    /// Counts a request's usage, tells the frontend, stores it.
    pub(super) fn add_usage(
        &self,
        out: &mut super::turn::LoopOutcome,
        prompt_tokens: u64,
        completion_tokens: u64,
    ) {
        out.prompt_tokens += prompt_tokens;
        out.completion_tokens += completion_tokens;
        self.events.emit(UpdateKind::Usage {
            prompt_tokens,
            completion_tokens,
        });
        self.engine.store().submit(Write::AddUsage {
            session_id: self.session_id.clone(),
            prompt_tokens,
            completion_tokens,
        });
    }

    /// Ends a loop whose stream was repeating itself: the text before the
    /// repetition (and one copy) is kept, the person is told.
    pub(super) async fn stopped_looping(
        &self,
        history: &mut Vec<StoredMessage>,
        out: &mut super::turn::LoopOutcome,
        shown: String,
        l: super::repeat::Loop,
    ) -> super::turn::LoopOutcome {
        let kept = crate::text::prefix(&shown, crate::text::Max::Bytes(l.keep)).to_string();
        out.text.push_str(&kept);
        out.last_text = kept.clone();
        self.append(history, super::turn::assistant(kept, None))
            .await;
        let unit = crate::tools::first_line(l.unit.trim(), 60);
        let msg = format!(
            "the model's reply was stopped because it kept repeating itself (\u{201c}{unit}\u{201d} over and over); \
             the text before the repetition was kept. Ask again or rephrase, or lower model_options.temperature"
        );
        if self.stream_text {
            self.events.emit(UpdateKind::Text {
                delta: "\n\n[Tether stopped the reply: it kept repeating itself.]".into(),
            });
        }
        if self.depth == 0 {
            self.sink.notice(format!("Tether: {msg}"));
        }
        out.stop = Some(crate::protocol::StopReason::Error);
        out.error = Some(msg);
        std::mem::take(out)
    }
}

/// The role of a stored compaction marker.
pub const COMPACTION_ROLE: crate::protocol::Role = crate::protocol::Role::Compaction;

/// A request is compacted once it would pass this share of the window.
pub const THRESHOLD: f64 = 0.85;
/// After a compaction the request should be below this share of the window.
const TARGET: f64 = 0.6;
/// When a window is too small even for the compacted view, messages are cut
/// down to no fewer than this many bytes (see [`squeeze`]).
const MIN_MESSAGE_BYTES: usize = 256;
/// ... and the output cap gives way down to this many tokens.
const MIN_RESERVE: u64 = 64;
/// The recent messages kept verbatim take at most this share of the window.
const KEEP_RECENT: f64 = 0.3;
/// One message never takes more than this share of the window in the view.
const MESSAGE_CAP: f64 = 0.25;
/// The default output cap when the person sets none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Tokens per byte before any usage was reported (conservative).
const DEFAULT_RATIO: f64 = 1.0 / 3.0;
/// Nobody asks the server for its window until the server reports a prompt
/// of more than this many tokens, or the conversation (without the system
/// prompt and tool schemas) is estimated past it, or the whole request past
/// four times it: small exchanges cost no extra round trip.
pub const DISCOVER_ABOVE_TOKENS: u64 = 1024;

/// How the summariser is asked; its first words identify a summary request.
pub const HANDOFF_PROMPT: &str = "You are compacting a coding session so that it fits the model's context window. \
Write a hand-off summary for the agent that continues the work. Use these headings: \
Asked (what the person asked for), Decided, Done (with the exact values, names, numbers and results \
that later steps may need), Files touched, Next. Keep every fact that a later step may need; drop chatter \
and repetition. Output only the summary.";

/// How the summary is shown to the model in place of the messages it replaces.
pub const SUMMARY_HEADER: &str =
    "[Summary of the earlier part of this conversation, written when it was compacted to fit the context window. The full history is kept by Tether.]";

/// Where a compaction's cuts are (indices into the session's messages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cuts {
    pub pruned_before: usize,
    pub summary_from: usize,
    pub summary_to: usize,
}

impl Cuts {
    fn to_json(self) -> Value {
        json!({"compaction": {
            "prunedBefore": self.pruned_before,
            "summaryFrom": self.summary_from,
            "summaryTo": self.summary_to,
        }})
    }

    fn from_message(m: &StoredMessage) -> Option<Cuts> {
        if m.role != COMPACTION_ROLE {
            return None;
        }
        let c = m.tool_calls.as_ref()?.get("compaction")?;
        let get = |k: &str| {
            c.get(k)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        };
        let (p, f, t) = (get("prunedBefore")?, get("summaryFrom")?, get("summaryTo")?);
        Some(Cuts {
            pruned_before: p,
            summary_from: f.min(t),
            summary_to: t,
        })
    }
}

/// The marker message a compaction stores.
pub fn marker(cuts: Cuts, summary: String) -> StoredMessage {
    StoredMessage {
        role: COMPACTION_ROLE,
        content: summary,
        tool_calls: Some(cuts.to_json()),
        tool_call_id: None,
        created_ms: now_ms(),
    }
}

/// The last compaction of a history: its index, cuts and summary.
pub fn last_compaction(history: &[StoredMessage]) -> Option<(usize, Cuts, &str)> {
    history
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, m)| Cuts::from_message(m).map(|c| (i, c, m.content.as_str())))
}

/// What the model knows about one model's window, shared by every turn of
/// an engine (a window learned in one session helps the next).
#[derive(Debug, Default)]
pub struct Windows {
    inner: Mutex<HashMap<String, ModelWindow>>,
}

#[derive(Debug, Clone, Copy)]
pub struct ModelWindow {
    /// Tokens, as the server or the table said; `None`: not known.
    pub tokens: Option<u64>,
    /// Tokens, as an overflow error said (this wins over everything).
    pub learned: Option<u64>,
    /// Whether the server has been asked.
    pub discovered: bool,
    /// Tokens per byte, calibrated by `usage`.
    pub ratio: f64,
    /// The prompt tokens the server last reported.
    pub last_prompt: u64,
}

impl Default for ModelWindow {
    fn default() -> Self {
        ModelWindow {
            tokens: None,
            learned: None,
            discovered: false,
            ratio: DEFAULT_RATIO,
            last_prompt: 0,
        }
    }
}

impl ModelWindow {
    /// The window to fit: learned from an overflow, else configured, else
    /// discovered.
    pub fn effective(&self, configured: Option<u64>) -> Option<u64> {
        self.learned.or(configured).or(self.tokens)
    }
}

impl Windows {
    pub fn get(&self, model: &str) -> ModelWindow {
        self.inner
            .lock()
            .map(|m| m.get(model).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    fn update(&self, model: &str, f: impl FnOnce(&mut ModelWindow)) {
        if let Ok(mut m) = self.inner.lock() {
            f(m.entry(model.to_string()).or_default());
        }
    }

    /// The server (or the table) was asked; `tokens` is what it said.
    pub fn discovered(&self, model: &str, tokens: Option<u64>) {
        self.update(model, |w| {
            w.discovered = true;
            if w.tokens.is_none() {
                w.tokens = tokens;
            }
        });
    }

    /// An overflow error said (or implied) the window: it wins over what
    /// was discovered, and only ever shrinks it.
    pub fn learned(&self, model: &str, tokens: u64) {
        self.update(model, |w| {
            w.learned = Some(w.learned.map_or(tokens, |t| t.min(tokens)).max(64));
        });
    }

    /// A request of `bytes` bytes was `prompt_tokens` tokens.
    pub fn calibrate(&self, model: &str, bytes: usize, prompt_tokens: u64) {
        if bytes < 200 || prompt_tokens == 0 {
            return;
        }
        let r = (prompt_tokens as f64 / bytes as f64).clamp(1.0 / 8.0, 1.0);
        self.update(model, |w| {
            w.ratio = r;
            w.last_prompt = prompt_tokens;
        });
    }
}

/// The budget of one request.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Tokens; 0 when the window is not known (nothing is compacted).
    pub window: u64,
    /// Output tokens reserved (`max_tokens`).
    pub reserve: u64,
    pub ratio: f64,
}

impl Budget {
    pub fn tokens(&self, bytes: usize) -> u64 {
        (bytes as f64 * self.ratio).ceil() as u64
    }

    /// Whether a request of `bytes` (messages and tool schemas) needs compacting.
    pub fn over(&self, bytes: usize) -> bool {
        self.window > 0
            && (self.tokens(bytes) + self.reserve) as f64 > self.window as f64 * THRESHOLD
    }

    /// Bytes of messages the view may hold after compaction.
    fn target_bytes(&self, fixed_bytes: usize) -> usize {
        let tokens = (self.window as f64 * TARGET - self.reserve as f64).max(0.0);
        ((tokens / self.ratio) as usize).saturating_sub(fixed_bytes)
    }

    /// The most bytes one message may take in the view.
    pub fn message_cap(&self) -> usize {
        if self.window == 0 {
            return usize::MAX;
        }
        ((self.window as f64 * MESSAGE_CAP / self.ratio) as usize).max(512)
    }
}

/// The output cap of a request: the person's `max_tokens`, else
/// [`DEFAULT_MAX_TOKENS`]; never more than a quarter (default) or half
/// (configured) of a known window.
pub fn max_tokens(configured: Option<u64>, window: Option<u64>) -> u64 {
    let (want, share) = match configured {
        Some(n) => (n.max(1), 2),
        None => (DEFAULT_MAX_TOKENS, 4),
    };
    match window {
        Some(w) => want.min((w / share).max(16)),
        None => want,
    }
}

/// Cuts a long text to its head and tail, saying how much was left out.
pub fn head_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let half = max / 2;
    let head = crate::model::floor_char_boundary(s, half);
    let mut tail = s.len() - half.min(s.len());
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n[… {} bytes left out to fit the context window …]\n{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

/// The stub a pruned tool output becomes.
fn stub(name: &str, args: &str, output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let n = lines.len();
    let pick = |ls: &[&str]| {
        ls.iter()
            .map(|l| crate::tools::first_line(l, 160))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let body = if n <= 6 {
        pick(&lines)
    } else {
        format!(
            "{}\n[… {} lines left out …]\n{}",
            pick(&lines[..3]),
            n - 6,
            pick(&lines[n - 3..])
        )
    };
    format!(
        "[output pruned to save context: {name}({}), {n} lines, {} bytes]\n{body}",
        crate::tools::first_line(args, 200),
        output.len()
    )
}

/// Names and arguments of the tool calls in a history, by call id.
fn calls_by_id<'a>(
    history: impl Iterator<Item = &'a StoredMessage>,
) -> HashMap<&'a str, (&'a str, &'a str)> {
    let mut map = HashMap::new();
    for m in history {
        if let Some(calls) = m.tool_calls.as_ref().and_then(Value::as_array) {
            for c in calls {
                if let (Some(id), Some(name)) = (
                    c.get("id").and_then(Value::as_str),
                    c.pointer("/function/name").and_then(Value::as_str),
                ) {
                    let args = c
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    map.insert(id, (name, args));
                }
            }
        }
    }
    map
}

/// The messages the model is sent, from the whole history: the last
/// compaction applied, markers dropped, each message capped at `cap` bytes.
pub fn view(history: &[StoredMessage], cap: usize) -> Vec<StoredMessage> {
    let last = last_compaction(history).map(|(_, c, s)| (c, s));
    view_with(history, last, cap)
}

/// The view with the given compaction applied (`None`: none).
fn view_with(
    history: &[StoredMessage],
    last: Option<(Cuts, &str)>,
    cap: usize,
) -> Vec<StoredMessage> {
    let cuts = last.map(|(c, _)| c).unwrap_or_default();
    let summary = last.map(|(_, s)| s).unwrap_or("");
    // Only the calls whose results are sent (not summarised) are looked up.
    let from = cuts.summary_from.min(history.len());
    let to = cuts.summary_to.clamp(from, history.len());
    let calls = calls_by_id(history[..from].iter().chain(history[to..].iter()));
    let mut out = Vec::with_capacity(history.len());
    let summarized = cuts.summary_to > cuts.summary_from;
    for (i, m) in history.iter().enumerate() {
        if i == cuts.summary_from && summarized {
            // Joined to the first request when it is just before, so that
            // roles keep alternating (some chat templates insist).
            match out
                .last_mut()
                .filter(|p: &&mut StoredMessage| p.role == Role::User)
            {
                Some(first) => {
                    first.content.push_str("\n\n");
                    first.content.push_str(&summary_message(summary).content);
                }
                None => out.push(summary_message(summary)),
            }
        }
        if m.role == COMPACTION_ROLE || (cuts.summary_from..cuts.summary_to).contains(&i) {
            continue;
        }
        let mut m = m.clone();
        if m.role == Role::Tool && i < cuts.pruned_before {
            let (name, args) = m
                .tool_call_id
                .as_deref()
                .and_then(|id| calls.get(id).copied())
                .unwrap_or(("tool", ""));
            m.content = stub(name, args, &m.content);
        }
        if m.content.len() > cap {
            m.content = head_tail(&m.content, cap);
        }
        out.push(m);
    }
    super::turn::repair_history(out)
}

fn summary_message(summary: &str) -> StoredMessage {
    StoredMessage {
        role: Role::User,
        content: format!("{SUMMARY_HEADER}\n\n{summary}"),
        tool_calls: None,
        tool_call_id: None,
        created_ms: 0,
    }
}

/// The last resort of a small window: when even the compacted view is over
/// the threshold (the tool schemas and the output cap leave little room, and
/// a kept reply can be as long as the output cap), every message sent but the
/// newest request is cut to a lower cap (head and tail), down to
/// [`MIN_MESSAGE_BYTES`]; then the output cap gives way, down to
/// [`MIN_RESERVE`]. A request that fits beats one the server must refuse,
/// which would end every later turn the same way. Only what is sent is cut:
/// the history keeps every word.
fn squeeze(history: &[StoredMessage], sent: &mut Sent, budget: &mut Budget) {
    if !budget.over(sent.bytes()) {
        return;
    }
    let normal = budget.message_cap();
    let mut cap = normal.min(sent.largest());
    while budget.over(sent.bytes()) && cap > MIN_MESSAGE_BYTES {
        cap = (cap * 3 / 4).max(MIN_MESSAGE_BYTES);
        sent.rebuild_squeezed(history, normal, cap);
    }
    if budget.over(sent.bytes()) {
        let room = (budget.window as f64 * THRESHOLD) as u64;
        let left = room.saturating_sub(budget.tokens(sent.bytes()));
        budget.reserve = budget.reserve.min(left.max(MIN_RESERVE));
    }
    tracing::info!(
        "small window ({} tokens): messages sent cut to {cap} bytes each, output cap {} tokens",
        budget.window,
        budget.reserve
    );
}

/// Serialized size of a message as the model is sent it.
pub fn message_bytes(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len() + 1).unwrap_or(0)
}

/// How a history will be compacted.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cuts: Cuts,
    /// Whether a new summary must be written (else the last one is kept).
    pub summarize: bool,
    /// Tool outputs newly cut to stubs.
    pub pruned_outputs: u64,
    /// Messages newly replaced by the summary.
    pub summarized_messages: u64,
}

fn view_bytes(history: &[StoredMessage], last: Option<(Cuts, &str)>, cap: usize) -> usize {
    super::turn::to_model_messages(&view_with(history, last, cap))
        .iter()
        .map(message_bytes)
        .sum()
}

/// Chooses the cuts: old tool outputs pruned first; when that is not
/// enough (or `force`), the middle summarised too. `fixed_bytes` is the
/// system prompt and tool schemas.
pub fn plan(history: &[StoredMessage], budget: &Budget, fixed_bytes: usize, force: bool) -> Plan {
    let cap = budget.message_cap();
    let current = last_compaction(history)
        .map(|(_, c, _)| c)
        .unwrap_or_default();
    let first_user = history
        .iter()
        .position(|m| m.role == Role::User)
        .unwrap_or(0);
    let summary_from = if current.summary_to > current.summary_from {
        current.summary_from
    } else {
        first_user + 1
    };
    // The recent messages kept verbatim, cut where a model response
    // starts (never between a call and its result; the summary joins the
    // first request, so user and assistant keep alternating).
    // In a small window the tool schemas and the output reserve leave little
    // room: the recent messages then get at most half of what is left, or
    // the kept turn alone would overflow again (a 1.5 K window dead-ended).
    let target = budget.target_bytes(fixed_bytes);
    let keep = ((budget.window as f64 * KEEP_RECENT / budget.ratio) as usize)
        .min(target / 2)
        .max(256);
    let mut cut = history.len();
    let mut used = 0usize;
    for (i, m) in history.iter().enumerate().rev() {
        if m.role == COMPACTION_ROLE {
            continue;
        }
        used += m.content.len().min(cap) + 64;
        if used > keep {
            break;
        }
        if m.role == Role::Assistant {
            cut = i;
        }
    }
    if cut == history.len() {
        // Even the last response is over the share: keep just it.
        cut = history
            .iter()
            .rposition(|m| m.role == Role::Assistant)
            .unwrap_or(history.len());
    }
    let cut = cut.max(summary_from).max(current.pruned_before);
    let count_tools = |from: usize, to: usize| {
        history[from.min(to)..to]
            .iter()
            .filter(|m| m.role == Role::Tool)
            .count() as u64
    };
    let pruned_outputs = count_tools(current.pruned_before.min(cut), cut);
    let pruned = Cuts {
        pruned_before: cut,
        ..current
    };
    let summary = last_compaction(history).map(|(_, _, s)| s).unwrap_or("");
    if !force && view_bytes(history, Some((pruned, summary)), cap) <= target {
        return Plan {
            cuts: pruned,
            summarize: false,
            pruned_outputs,
            summarized_messages: 0,
        };
    }
    let summary_to = cut.max(current.summary_to);
    let summarized_messages = history
        [current.summary_to.max(summary_from).min(summary_to)..summary_to]
        .iter()
        .filter(|m| m.role != COMPACTION_ROLE)
        .count() as u64;
    Plan {
        cuts: Cuts {
            pruned_before: cut,
            summary_from,
            summary_to,
        },
        summarize: summary_to > summary_from,
        pruned_outputs,
        summarized_messages,
    }
}

/// The summariser's input: the last summary and the messages now being
/// summarised, as a transcript of at most `max_bytes` (each message cut to
/// its share, the oldest left out first when that is not enough).
pub fn transcript(history: &[StoredMessage], plan: &Plan, max_bytes: usize) -> String {
    let previous = last_compaction(history)
        .map(|(_, _, s)| s)
        .filter(|s| !s.is_empty());
    let from = last_compaction(history)
        .map(|(_, c, _)| c.summary_to.max(plan.cuts.summary_from))
        .unwrap_or(plan.cuts.summary_from);
    let calls = calls_by_id(
        history
            .get(from.min(plan.cuts.summary_to)..plan.cuts.summary_to)
            .unwrap_or(&[])
            .iter(),
    );
    let mut parts: Vec<String> = Vec::new();
    for m in history
        .get(from.min(plan.cuts.summary_to)..plan.cuts.summary_to)
        .unwrap_or(&[])
    {
        let part = match m.role.as_str() {
            "compaction" => continue,
            "tool" => {
                let name = m
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| calls.get(id))
                    .map(|(n, _)| *n)
                    .unwrap_or("tool");
                format!("[{name} result]\n{}", m.content)
            }
            "assistant" => {
                let mut s = format!("[assistant]\n{}", m.content);
                for c in m
                    .tool_calls
                    .as_ref()
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    s.push_str(&format!(
                        "\n(calls {}({}))",
                        c.pointer("/function/name")
                            .and_then(Value::as_str)
                            .unwrap_or("?"),
                        c.pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    ));
                }
                s
            }
            role => format!("[{role}]\n{}", m.content),
        };
        parts.push(part);
    }
    let head = history
        .iter()
        .find(|m| m.role == Role::User)
        .map(|m| {
            format!(
                "[first request]\n{}\n\n",
                head_tail(&m.content, max_bytes / 8)
            )
        })
        .unwrap_or_default();
    let prev = previous
        .map(|s| format!("[summary so far]\n{}\n\n", head_tail(s, max_bytes / 4)))
        .unwrap_or_default();
    let room = max_bytes.saturating_sub(head.len() + prev.len()).max(1024);
    let total: usize = parts.iter().map(|p| p.len() + 2).sum();
    if total > room && !parts.is_empty() {
        let share = (room / parts.len()).max(200);
        for p in &mut parts {
            *p = head_tail(p, share);
        }
        let mut left_out = 0;
        while parts.iter().map(|p| p.len() + 2).sum::<usize>() > room && parts.len() > 1 {
            parts.remove(0);
            left_out += 1;
        }
        if left_out > 0 {
            parts.insert(0, format!("[{left_out} older messages left out]"));
        }
    }
    format!(
        "{head}{prev}[messages to summarise]\n{}",
        parts.join("\n\n")
    )
}

/// How a compaction is told to the person (chat file, `tether exec`).
pub fn compaction_line(
    tokens_before: u64,
    tokens_after: u64,
    window: u64,
    pruned_outputs: u64,
    summarized_messages: u64,
) -> String {
    let mut what = Vec::new();
    if pruned_outputs > 0 {
        what.push(format!("{pruned_outputs} old tool outputs cut to stubs"));
    }
    if summarized_messages > 0 {
        what.push(format!("{summarized_messages} messages summarised"));
    }
    if what.is_empty() {
        what.push("nothing to cut".to_string());
    }
    format!(
        "context compacted: ~{tokens_before} → ~{tokens_after} tokens of a {window}-token window ({}); the full history is kept",
        what.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> StoredMessage {
        StoredMessage {
            role: Role::parse(role).expect("a role"),
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
            created_ms: 0,
        }
    }

    fn call(id: &str, out: &str) -> [StoredMessage; 2] {
        let mut a = msg("assistant", "");
        a.tool_calls = Some(json!([{"id": id, "type": "function",
            "function": {"name": "run_command", "arguments": "{\"command\":\"ls\"}"}}]));
        let mut t = msg("tool", out);
        t.tool_call_id = Some(id.into());
        [a, t]
    }

    #[test]
    fn output_cap_defaults_and_stays_below_the_window() {
        assert_eq!(max_tokens(None, None), 4096);
        assert_eq!(max_tokens(None, Some(2048)), 512);
        assert_eq!(max_tokens(Some(100), Some(2048)), 100);
        assert_eq!(max_tokens(Some(5000), Some(2048)), 1024);
        assert_eq!(max_tokens(None, Some(128_000)), 4096);
    }

    #[test]
    fn a_compaction_prunes_and_summarises_only_in_the_view() {
        let big = format!("exit code 0\n{}\nlast line", "line\n".repeat(2000));
        let mut h = vec![msg("user", "first request")];
        for i in 0..10 {
            h.extend(call(&format!("c{i}"), &big));
        }
        h.push(msg("assistant", "done"));
        let budget = Budget {
            window: 8192,
            reserve: 1024,
            ratio: 0.25,
        };
        let p = plan(&h, &budget, 0, false);
        assert!(p.pruned_outputs > 0, "{p:?}");
        let stored = h.len();
        h.push(marker(
            p.cuts,
            if p.summarize {
                "SUMMARY".into()
            } else {
                String::new()
            },
        ));
        let v = view(&h, budget.message_cap());
        assert_eq!(h.len(), stored + 1, "nothing stored is removed");
        assert_eq!(v[0].content, "first request");
        assert!(v.iter().all(|m| m.role != COMPACTION_ROLE));
        let bytes: usize = v.iter().map(|m| m.content.len()).sum();
        assert!(bytes < 8192 * 4 * 6 / 10, "{bytes}");
        if let Some(t) = v.iter().find(|m| m.role == Role::Tool) {
            if t.content.starts_with("[output pruned") {
                assert!(t.content.contains("run_command") && t.content.contains("exit code 0"));
                assert!(t.content.contains("last line"), "{}", t.content);
            }
        }
        // A forced compaction summarises the middle; the first request stays.
        let p = plan(&h, &budget, 0, true);
        assert!(p.summarize && p.summarized_messages > 0, "{p:?}");
        let t = transcript(&h, &p, 10_000);
        assert!(
            t.contains("[first request]") && t.len() < 12_000,
            "{}",
            t.len()
        );
        h.push(marker(p.cuts, "the summary".into()));
        let v = view(&h, budget.message_cap());
        assert!(v[0].content.starts_with("first request\n\n"));
        assert!(v[0].content.contains(SUMMARY_HEADER) && v[0].content.contains("the summary"));
        assert_eq!(v[1].role, Role::Assistant, "roles alternate");
        assert_eq!(v.last().map(|m| m.content.as_str()), Some("done"));
    }

    #[test]
    fn markers_read_back_and_bad_ones_are_ignored() {
        let c = Cuts {
            pruned_before: 5,
            summary_from: 1,
            summary_to: 4,
        };
        let m = marker(c, "s".into());
        assert_eq!(Cuts::from_message(&m), Some(c));
        let mut bad = m.clone();
        bad.tool_calls = Some(json!({"compaction": {"prunedBefore": "x"}}));
        assert_eq!(Cuts::from_message(&bad), None);
        let h = vec![msg("user", "a"), bad, msg("assistant", "b")];
        assert_eq!(view(&h, 1000).len(), 2);
    }

    #[test]
    fn head_tail_cuts_on_char_boundaries() {
        let s = "é".repeat(1000);
        let t = head_tail(&s, 101);
        assert!(t.contains("left out") && t.len() < 300);
        assert_eq!(head_tail("short", 100), "short");
    }
}
