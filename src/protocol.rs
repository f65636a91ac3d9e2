//! Tether's own wire types: the `tether/*` requests, their results and the
//! `tether/update` events. They are data only, shared by the engine (which
//! produces updates), the frontends (which put them on a wire) and the tests
//! (which read them back). `docs/PROTOCOL.md` mirrors this file.
//!
//! **Invariant:** nothing here depends on LSP types; the engine uses these.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Params of `tether/prompt`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptParams {
    #[serde(default)]
    pub session_id: Option<String>,
    pub text: String,
    #[serde(default)]
    pub context: Vec<ContextRef>,
}

/// A piece of the editor's state attached to a prompt (a file or a range of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextRef {
    pub uri: String,
    #[serde(default)]
    pub range: Option<LineRange>,
}

/// A range of lines and columns, zero-based as in LSP.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct LineRange {
    pub start: Pos,
    pub end: Pos,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub character: u32,
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    Cancelled,
    MaxIterations,
    Error,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::Cancelled => "cancelled",
            StopReason::MaxIterations => "max_iterations",
            StopReason::Error => "error",
        }
    }
}

/// Result of `tether/prompt`, sent when the turn ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptResult {
    pub session_id: String,
    pub turn_id: String,
    pub stop_reason: StopReason,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Params of the `tether/cancel` notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelParams {
    pub session_id: String,
}

/// Params of `tether/sessions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionsParams {
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub message_count: u64,
    /// For search results: a short excerpt around the match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionsResult {
    pub sessions: Vec<SessionInfo>,
}

/// Params of `tether/history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryParams {
    pub session_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryMessage {
    pub role: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryResult {
    pub messages: Vec<HistoryMessage>,
}

/// One `tether/update` notification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub session_id: String,
    pub turn_id: String,
    #[serde(flatten)]
    pub kind: UpdateKind,
}

/// What happened. One variant per thing that can happen in a turn.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum UpdateKind {
    /// Streamed assistant text.
    Text { delta: String },
    /// A tool call changed state. Every call that started ends in a final status.
    ToolCall {
        tool_call_id: String,
        tool: String,
        title: String,
        status: ToolStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// An approval changed state.
    Approval {
        approval_id: String,
        status: ApprovalStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// A subagent changed state.
    Subagent {
        child_session_id: String,
        goal: String,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// The model's todo list.
    Plan { entries: Vec<PlanEntry> },
    /// Token usage reported by the model for one request.
    Usage {
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// What the model is sent was compacted to fit its context window: old
    /// tool outputs cut to stubs and/or the middle of the conversation
    /// replaced by a summary. The full history stays in the store.
    Compaction {
        /// `budget` (before a request), `overflow` (the server said the
        /// request was too long) or `command` (`/compact`).
        reason: String,
        /// Estimated tokens of the request before and after.
        tokens_before: u64,
        tokens_after: u64,
        /// The context window it had to fit.
        window: u64,
        /// Tool outputs replaced by stubs.
        pruned_outputs: u64,
        /// Messages replaced by the summary (0: no summary was made).
        summarized_messages: u64,
    },
    /// The turn ended.
    TurnEnd { stop_reason: StopReason },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ToolStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Denied,
    Cancelled,
}

impl ToolStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, ToolStatus::Pending | ToolStatus::Running)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Asked,
    Allowed,
    Denied,
    TimedOut,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    pub content: String,
    pub status: String,
}

/// The exact action titles of an approval dialog, in the order shown.
pub const APPROVAL_ACTIONS: [&str; 4] = ["Allow once", "Allow for session", "Always allow", "Deny"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_serialize_flat_with_camel_case_fields() {
        let u = Update {
            session_id: "s".into(),
            turn_id: "t".into(),
            kind: UpdateKind::ToolCall {
                tool_call_id: "c1".into(),
                tool: "read_file".into(),
                title: "read a.txt".into(),
                status: ToolStatus::Running,
                input: None,
                output: None,
                agent: None,
            },
        };
        let v = serde_json::to_value(&u).expect("serialize");
        assert_eq!(v["kind"], "toolCall");
        assert_eq!(v["toolCallId"], "c1");
        assert_eq!(v["status"], "running");
        assert_eq!(v["sessionId"], "s");
        let back: Update = serde_json::from_value(v).expect("roundtrip");
        assert_eq!(back, u);
        let end = serde_json::to_value(UpdateKind::TurnEnd {
            stop_reason: StopReason::EndTurn,
        })
        .expect("serialize");
        assert_eq!(end["stopReason"], "end_turn");
    }
}
