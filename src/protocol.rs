//! Tether's own wire types: the `tether/*` requests, their results and the
//! `tether/update` events. They are data only, shared by the engine (which
//! produces updates), the frontends (which put them on a wire) and the tests
//! (which read them back). `docs/PROTOCOL.md` documents this file and
//! `editors/vscode/src/protocol.ts` mirrors it in TypeScript; both record a
//! hash of this file, checked by `tests/protocol_doc.rs`: change them with it.
//!
//! **Invariant:** nothing here depends on LSP types; the engine uses these.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A session's id. New ones are minted only by the engine
/// (`Engine::new_session`, which also stores the session), so every session
/// that has an id is in the store with the same fields, whoever started it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    pub(crate) fn mint() -> SessionId {
        SessionId(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

/// A turn's id (`turn-…`), minted only by the engine when a turn starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TurnId(String);

impl TurnId {
    pub(crate) fn mint() -> TurnId {
        TurnId(format!("turn-{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for TurnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<TurnId> for String {
    fn from(id: TurnId) -> String {
        id.0
    }
}

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

/// Who a message of a conversation is from, as the model's API spells it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
    /// Tether's own marker in the history: the conversation was compacted
    /// (the text is the summary; never sent to the model as this role).
    Compaction,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::System,
        Role::User,
        Role::Assistant,
        Role::Tool,
        Role::Compaction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Compaction => "compaction",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryMessage {
    pub role: Role,
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
        status: SubagentStatus,
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

    /// The wire's spelling, also what the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Pending => "pending",
            ToolStatus::Running => "running",
            ToolStatus::Completed => "completed",
            ToolStatus::Failed => "failed",
            ToolStatus::Denied => "denied",
            ToolStatus::Cancelled => "cancelled",
        }
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

impl ApprovalStatus {
    /// The wire's spelling, also what the store keeps as an approval's
    /// decision (`timed_out`, never `timedout`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Asked => "asked",
            ApprovalStatus::Allowed => "allowed",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::TimedOut => "timed_out",
        }
    }
}

/// A subagent's state in a `subagent` update.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SubagentStatus {
    Started,
    Completed,
    Failed,
    Cancelled,
}

impl SubagentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubagentStatus::Started => "started",
            SubagentStatus::Completed => "completed",
            SubagentStatus::Failed => "failed",
            SubagentStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for SubagentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    pub content: String,
    pub status: PlanStatus,
}

/// A plan item's state, as the `todo` tool's schema lists them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Pending,
    InProgress,
    Completed,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Pending => "pending",
            PlanStatus::InProgress => "in_progress",
            PlanStatus::Completed => "completed",
        }
    }
}

impl std::fmt::Display for PlanStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an approval is for. A question, a session allow and a stored rule
/// all carry it: allowing an edit of a path never allows a command with the
/// same text, and the other way round. One spelling on the wire and in the
/// store ([`ActionKind::as_str`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A shell command (`run_command`).
    Command,
    /// A file write (`write_file`, `edit_file`).
    Edit,
    /// A file read outside the workspace or of a secret (`read_file`,
    /// `list_dir`, `search`).
    Read,
    /// A shell command run outside the OS sandbox (`run_command` with
    /// `escalate`): allowing it sandboxed never allows it outside.
    Unsandboxed,
    /// A tool of an MCP server (`SERVER/TOOL`), or starting a server the
    /// workspace's own config adds.
    Mcp,
}

impl ActionKind {
    pub const ALL: [ActionKind; 5] = [
        ActionKind::Command,
        ActionKind::Edit,
        ActionKind::Read,
        ActionKind::Unsandboxed,
        ActionKind::Mcp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Command => "command",
            ActionKind::Edit => "edit",
            ActionKind::Read => "read",
            ActionKind::Unsandboxed => "unsandboxed",
            ActionKind::Mcp => "mcp",
        }
    }

    /// The kind spelled as [`ActionKind::as_str`] spells it, else `None`.
    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exact action titles of an approval dialog, in the order shown
/// ([`ApprovalChoice::title`] of [`ApprovalChoice::ALL`]). The safe choice
/// comes first: an editor pre-selects the first item, so an Enter typed as
/// the dialog appears denies.
pub const APPROVAL_ACTIONS: [&str; 4] = ["Deny", "Allow once", "Allow for session", "Always allow"];

/// A button of the approval dialog: what the person chose. The server reads
/// an answer by the item's `choice` property; a client that drops the extra
/// properties is read by the title.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalChoice {
    AllowOnce,
    AllowSession,
    AlwaysAllow,
    Deny,
}

impl ApprovalChoice {
    /// In the order the dialog offers them.
    pub const ALL: [ApprovalChoice; 4] = [
        ApprovalChoice::Deny,
        ApprovalChoice::AllowOnce,
        ApprovalChoice::AllowSession,
        ApprovalChoice::AlwaysAllow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalChoice::AllowOnce => "allow_once",
            ApprovalChoice::AllowSession => "allow_session",
            ApprovalChoice::AlwaysAllow => "always_allow",
            ApprovalChoice::Deny => "deny",
        }
    }

    /// What the person sees on the button.
    pub fn title(self) -> &'static str {
        match self {
            ApprovalChoice::AllowOnce => "Allow once",
            ApprovalChoice::AllowSession => "Allow for session",
            ApprovalChoice::AlwaysAllow => "Always allow",
            ApprovalChoice::Deny => "Deny",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalChoice> {
        ApprovalChoice::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn from_title(title: &str) -> Option<ApprovalChoice> {
        ApprovalChoice::ALL.into_iter().find(|c| c.title() == title)
    }
}

/// One action item of an approval dialog (`window/showMessageRequest`):
/// besides its title, every item carries what is asked, structured, so a
/// client shows it without reading the English `message` **(addition)**.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalItem {
    pub title: String,
    pub approval_id: String,
    /// The button: the server reads the answer by it.
    pub choice: ApprovalChoice,
    /// `command` or `edit`: what "Allow for session" and "Always allow"
    /// apply to.
    pub kind: ActionKind,
    /// The command that will run, or the path that will be written.
    pub action: String,
    /// The directory the command runs in (the workspace root for an edit).
    pub cwd: String,
    /// Why it was flagged.
    pub reason: String,
    /// The subagent that asks; absent for the main agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

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

    /// Each vocabulary has one spelling: what serde puts on the wire is what
    /// `as_str` gives the store and the logs.
    #[test]
    fn every_vocabulary_is_spelled_the_same_on_the_wire_and_in_the_store() {
        fn same<T: Serialize>(v: T, s: &str) {
            assert_eq!(serde_json::to_value(v).expect("serialize"), s);
        }
        for k in ActionKind::ALL {
            same(k, k.as_str());
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
        }
        for s in [
            ApprovalStatus::Asked,
            ApprovalStatus::Allowed,
            ApprovalStatus::Denied,
            ApprovalStatus::TimedOut,
        ] {
            same(s, s.as_str());
        }
        assert_eq!(ApprovalStatus::TimedOut.as_str(), "timed_out");
        for s in [
            ToolStatus::Pending,
            ToolStatus::Running,
            ToolStatus::Completed,
            ToolStatus::Failed,
            ToolStatus::Denied,
            ToolStatus::Cancelled,
        ] {
            same(s, s.as_str());
        }
        for s in [
            SubagentStatus::Started,
            SubagentStatus::Completed,
            SubagentStatus::Failed,
            SubagentStatus::Cancelled,
        ] {
            same(s, s.as_str());
        }
        for s in [
            PlanStatus::Pending,
            PlanStatus::InProgress,
            PlanStatus::Completed,
        ] {
            same(s, s.as_str());
        }
        for r in Role::ALL {
            same(r, r.as_str());
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for s in [
            StopReason::EndTurn,
            StopReason::Cancelled,
            StopReason::MaxIterations,
            StopReason::Error,
        ] {
            same(s, s.as_str());
        }
    }
}
