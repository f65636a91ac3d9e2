//! Tether's engine events and stored history as ACP `session/update`s, an
//! ACP prompt as Tether's prompt, and Tether's four answers as ACP
//! permission options. Pure functions: no I/O, easy to test.

use std::path::{Path, PathBuf};

use agent_client_protocol_schema as acp;
use serde_json::Value;

use crate::gate::{ActionKind, Answer, DenyCause, Question};
use crate::protocol::{
    ContextRef, HistoryMessage, PlanStatus, PromptParams, Role, StopReason, ToolStatus, UpdateKind,
};

/// The permission options offered for every question, by option id. The id
/// is what the answer is read by; the kind only tells the client how to
/// show it. "Allow for session" is `allow_always` (it is remembered, for
/// this session) with an id of its own, so it is never mistaken for
/// "Always allow" (remembered in the store).
pub const OPTIONS: [(&str, &str, acp::PermissionOptionKind); 4] = [
    (
        "allow_once",
        "Allow once",
        acp::PermissionOptionKind::AllowOnce,
    ),
    (
        "allow_session",
        "Allow for session",
        acp::PermissionOptionKind::AllowAlways,
    ),
    (
        "always_allow",
        "Always allow",
        acp::PermissionOptionKind::AllowAlways,
    ),
    ("deny", "Deny", acp::PermissionOptionKind::RejectOnce),
];

pub fn permission_options() -> Vec<acp::PermissionOption> {
    OPTIONS
        .iter()
        .map(|(id, name, kind)| acp::PermissionOption::new(*id, *name, *kind))
        .collect()
}

/// The person's answer from a `session/request_permission` response: one
/// of the option ids offered, else a deny with the reason (a cancelled
/// outcome, an unknown id, an unreadable response).
pub fn answer_from(response: &Value) -> Answer {
    let parsed: Result<acp::RequestPermissionResponse, _> =
        serde_json::from_value(response.clone());
    match parsed {
        Ok(r) => match r.outcome {
            acp::RequestPermissionOutcome::Selected(s) => match &*s.option_id.0 {
                "allow_once" => Answer::AllowOnce,
                "allow_session" => Answer::AllowSession,
                "always_allow" => Answer::AlwaysAllow,
                "deny" => Answer::Deny(DenyCause::Person),
                other => Answer::Deny(DenyCause::ClientError(format!(
                    "the client chose an option that was not offered ({other:?})"
                ))),
            },
            acp::RequestPermissionOutcome::Cancelled => Answer::Deny(DenyCause::Cancelled),
            _ => Answer::Deny(DenyCause::ClientError(
                "the client's outcome is not one this agent knows".into(),
            )),
        },
        Err(e) => Answer::Deny(DenyCause::ClientError(format!(
            "unreadable permission response: {e}"
        ))),
    }
}

/// The ACP kind of a Tether tool.
pub fn tool_kind(tool: &str) -> acp::ToolKind {
    match tool {
        "read_file" => acp::ToolKind::Read,
        "list_dir" | "search" => acp::ToolKind::Search,
        "write_file" | "edit_file" => acp::ToolKind::Edit,
        "run_command" => acp::ToolKind::Execute,
        "todo" => acp::ToolKind::Think,
        _ => acp::ToolKind::Other,
    }
}

fn status(s: ToolStatus) -> acp::ToolCallStatus {
    match s {
        ToolStatus::Pending => acp::ToolCallStatus::Pending,
        ToolStatus::Running => acp::ToolCallStatus::InProgress,
        ToolStatus::Completed => acp::ToolCallStatus::Completed,
        ToolStatus::Failed | ToolStatus::Denied | ToolStatus::Cancelled => {
            acp::ToolCallStatus::Failed
        }
    }
}

fn abs(root: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    crate::tools::normalize(&if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    })
}

/// The file a call touches, from its input.
fn locations(root: &Path, input: Option<&Value>) -> Vec<acp::ToolCallLocation> {
    input
        .and_then(|i| i.get("path"))
        .and_then(Value::as_str)
        .map(|p| vec![acp::ToolCallLocation::new(abs(root, p))])
        .unwrap_or_default()
}

/// An edit's diff, from its input (`edit_file`: old and new text;
/// `write_file`: the whole new content).
fn diff(root: &Path, tool: &str, input: Option<&Value>) -> Option<acp::ToolCallContent> {
    let input = input?;
    let path = abs(root, input.get("path")?.as_str()?);
    match tool {
        "edit_file" => Some(acp::ToolCallContent::Diff(
            acp::Diff::new(path, input.get("new_text")?.as_str()?)
                .old_text(input.get("old_text")?.as_str()?.to_string()),
        )),
        "write_file" => Some(acp::ToolCallContent::Diff(acp::Diff::new(
            path,
            input.get("content")?.as_str()?,
        ))),
        _ => None,
    }
}

fn text_block(s: impl Into<String>) -> acp::ContentBlock {
    acp::ContentBlock::Text(acp::TextContent::new(s))
}

fn text_content(s: impl Into<String>) -> acp::ToolCallContent {
    acp::ToolCallContent::Content(acp::Content::new(text_block(s)))
}

/// What the frontend remembers per session to map tool calls: the calls it
/// announced (a later status is an update of that call) and their inputs
/// (to find the call a permission question is about).
#[derive(Default)]
pub struct Calls {
    pub announced: std::collections::HashMap<String, (String, Option<Value>)>,
}

/// The `session/update`s for one engine update.
pub fn updates(root: &Path, calls: &mut Calls, kind: &UpdateKind) -> Vec<acp::SessionUpdate> {
    match kind {
        UpdateKind::Text { delta } if !delta.is_empty() => {
            vec![acp::SessionUpdate::AgentMessageChunk(
                acp::ContentChunk::new(text_block(delta.clone())),
            )]
        }
        UpdateKind::Text { .. } => vec![],
        UpdateKind::ToolCall {
            tool_call_id,
            tool,
            title,
            status: st,
            input,
            output,
            agent,
        } => {
            let title = match agent {
                Some(a) => format!("[{a}] {title}"),
                None => title.clone(),
            };
            let mut content = Vec::new();
            if let Some(d) = diff(root, tool, input.as_ref()) {
                content.push(d);
            }
            if let Some(o) = output.as_ref().filter(|o| !o.is_empty()) {
                content.push(text_content(o.clone()));
            }
            if !calls.announced.contains_key(tool_call_id) {
                calls
                    .announced
                    .insert(tool_call_id.clone(), (tool.clone(), input.clone()));
                let mut call = acp::ToolCall::new(tool_call_id.clone(), title)
                    .kind(tool_kind(tool))
                    .status(status(*st))
                    .locations(locations(root, input.as_ref()))
                    .content(content)
                    .raw_input(input.clone());
                if let Some(o) = output {
                    call = call.raw_output(Value::String(o.clone()));
                }
                return vec![acp::SessionUpdate::ToolCall(call)];
            }
            if input.is_some() {
                if let Some(c) = calls.announced.get_mut(tool_call_id) {
                    c.1 = input.clone();
                }
            }
            let mut fields = acp::ToolCallUpdateFields::new()
                .status(status(*st))
                .title(title);
            if !content.is_empty() {
                fields = fields.content(content);
            }
            if input.is_some() {
                fields = fields
                    .raw_input(input.clone())
                    .locations(locations(root, input.as_ref()));
            }
            if let Some(o) = output {
                fields = fields.raw_output(Value::String(o.clone()));
            }
            if st.is_final() {
                calls.announced.remove(tool_call_id);
            }
            vec![acp::SessionUpdate::ToolCallUpdate(
                acp::ToolCallUpdate::new(tool_call_id.clone(), fields),
            )]
        }
        UpdateKind::Plan { entries } => vec![acp::SessionUpdate::Plan(acp::Plan::new(
            entries
                .iter()
                .map(|e| {
                    acp::PlanEntry::new(
                        e.content.clone(),
                        acp::PlanEntryPriority::Medium,
                        match e.status {
                            PlanStatus::Pending => acp::PlanEntryStatus::Pending,
                            PlanStatus::InProgress => acp::PlanEntryStatus::InProgress,
                            PlanStatus::Completed => acp::PlanEntryStatus::Completed,
                        },
                    )
                })
                .collect(),
        ))],
        UpdateKind::Compaction {
            tokens_before,
            tokens_after,
            window,
            pruned_outputs,
            summarized_messages,
            ..
        } => vec![acp::SessionUpdate::AgentThoughtChunk(
            acp::ContentChunk::new(text_block(crate::engine::context::compaction_line(
                *tokens_before,
                *tokens_after,
                *window,
                *pruned_outputs,
                *summarized_messages,
            ))),
        )],
        // Usage needs the window (the frontend adds it); approvals are
        // the permission requests themselves and the tool call's status;
        // a subagent shows as its `delegate` call; the turn's end is the
        // prompt's response.
        UpdateKind::Usage { .. }
        | UpdateKind::Approval { .. }
        | UpdateKind::Subagent { .. }
        | UpdateKind::TurnEnd { .. } => vec![],
    }
}

/// `usage_update`: tokens in the context after one request, of the window.
pub fn usage(prompt_tokens: u64, completion_tokens: u64, window: u64) -> acp::SessionUpdate {
    acp::SessionUpdate::UsageUpdate(acp::UsageUpdate::new(
        prompt_tokens + completion_tokens,
        window,
    ))
}

/// The stored conversation replayed as updates (`session/load`): the
/// person's prompts as they typed them, the replies, and each tool call
/// with its result.
pub fn replay(root: &Path, history: &[HistoryMessage]) -> Vec<acp::SessionUpdate> {
    let mut out = Vec::new();
    let mut calls: std::collections::HashMap<String, (String, Value)> = Default::default();
    for m in history {
        match m.role {
            Role::User if !m.text.is_empty() => out.push(acp::SessionUpdate::UserMessageChunk(
                acp::ContentChunk::new(text_block(m.text.clone())),
            )),
            Role::Assistant => {
                if !m.text.is_empty() {
                    out.push(acp::SessionUpdate::AgentMessageChunk(
                        acp::ContentChunk::new(text_block(m.text.clone())),
                    ));
                }
                for c in m
                    .tool_calls
                    .as_ref()
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (Some(id), Some(name)) = (
                        c.get("id").and_then(Value::as_str),
                        c.pointer("/function/name").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let input = c
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .and_then(|a| serde_json::from_str::<Value>(a).ok())
                        .unwrap_or(Value::Null);
                    let mut content = Vec::new();
                    if let Some(d) = diff(root, name, Some(&input)) {
                        content.push(d);
                    }
                    out.push(acp::SessionUpdate::ToolCall(
                        acp::ToolCall::new(id.to_string(), name.to_string())
                            .kind(tool_kind(name))
                            .status(acp::ToolCallStatus::Pending)
                            .locations(locations(root, Some(&input)))
                            .content(content)
                            .raw_input(input.clone()),
                    ));
                    calls.insert(id.to_string(), (name.to_string(), input));
                }
            }
            Role::Tool => {
                let Some(id) = m.tool_call_id.as_deref() else {
                    continue;
                };
                if calls.remove(id).is_none() {
                    continue;
                }
                out.push(acp::SessionUpdate::ToolCallUpdate(
                    acp::ToolCallUpdate::new(
                        id.to_string(),
                        acp::ToolCallUpdateFields::new()
                            .status(acp::ToolCallStatus::Completed)
                            .content(vec![text_content(m.text.clone())])
                            .raw_output(Value::String(m.text.clone())),
                    ),
                ));
            }
            Role::Compaction => out.push(acp::SessionUpdate::AgentThoughtChunk(
                acp::ContentChunk::new(text_block("(earlier conversation compacted)")),
            )),
            _ => {}
        }
    }
    out
}

/// The ACP prompt as Tether's: text blocks are the prompt; a resource link
/// to a file is context the engine reads; an embedded resource's text is
/// added as it was given (the client may hold unsaved text); what this
/// agent cannot take (images, audio, binary resources) is named so the
/// model knows something was left out.
pub fn prompt(session_id: &str, blocks: &[acp::ContentBlock]) -> PromptParams {
    let mut text = String::new();
    let mut extra = String::new();
    let mut context = Vec::new();
    for b in blocks {
        match b {
            acp::ContentBlock::Text(t) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&t.text);
            }
            acp::ContentBlock::ResourceLink(l) => {
                if l.uri.starts_with("file://") {
                    context.push(ContextRef {
                        uri: l.uri.clone(),
                        range: None,
                    });
                } else {
                    extra.push_str(&format!("\n\nLink: {} ({})", l.name, l.uri));
                }
            }
            acp::ContentBlock::Resource(r) => match &r.resource {
                acp::EmbeddedResourceResource::TextResourceContents(t) => {
                    let body: String = t.text.chars().take(50_000).collect();
                    let name = crate::tools::uri_to_path(&t.uri)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| t.uri.clone());
                    extra.push_str(&format!("\n\nContext: {name}\n```\n{body}\n```"));
                }
                acp::EmbeddedResourceResource::BlobResourceContents(b) => {
                    extra.push_str(&format!(
                        "\n\n(Attachment {} not shown: binary content is not read by this agent.)",
                        b.uri
                    ));
                }
                _ => {}
            },
            acp::ContentBlock::Image(_) | acp::ContentBlock::Audio(_) => {
                extra.push_str(
                    "\n\n(An image or audio attachment was left out: this agent reads text only.)",
                );
            }
            _ => {}
        }
    }
    text.push_str(&extra);
    PromptParams {
        session_id: Some(session_id.to_string()),
        text,
        context,
    }
}

pub fn stop_reason(s: StopReason) -> Option<acp::StopReason> {
    match s {
        StopReason::EndTurn => Some(acp::StopReason::EndTurn),
        StopReason::Cancelled => Some(acp::StopReason::Cancelled),
        StopReason::MaxIterations => Some(acp::StopReason::MaxTurnRequests),
        // An error ends the prompt with a JSON-RPC error carrying its text.
        StopReason::Error => None,
    }
}

/// The slash commands, as `available_commands_update` lists them.
pub fn commands(
    defs: &std::collections::BTreeMap<String, crate::config::CommandDef>,
) -> Vec<acp::AvailableCommand> {
    let hint =
        |h: &str| acp::AvailableCommandInput::Unstructured(acp::UnstructuredCommandInput::new(h));
    let mut out = vec![
        acp::AvailableCommand::new("new", "start a new session").input(hint("prompt")),
        acp::AvailableCommand::new("sessions", "list (or search) sessions").input(hint("query")),
        acp::AvailableCommand::new("cancel", "cancel the running turn"),
        acp::AvailableCommand::new(
            "compact",
            "summarise the conversation so far to free the model's context",
        ),
        acp::AvailableCommand::new("help", "list the commands"),
    ];
    for (name, def) in defs {
        let what = def.summary();
        let mut c = acp::AvailableCommand::new(name.clone(), what);
        if def.prompt.as_ref().is_some_and(|p| p.contains("{args}")) {
            c = c.input(hint("arguments"));
        }
        out.push(c);
    }
    out
}

/// The tool call a question is about: the announced call of this session
/// whose input names the same command or file. `None` when there is no
/// single such call (then the question is shown as a call of its own).
pub fn call_for_question(root: &Path, calls: &Calls, q: &Question) -> Option<String> {
    let mut found = calls.announced.iter().filter(|(_, (tool, input))| {
        if q.kind == ActionKind::Mcp {
            // `SERVER/TOOL`; the model's call is named `SERVER__TOOL`.
            return q
                .action
                .split_once('/')
                .is_some_and(|(server, t)| *tool == format!("{server}__{t}"));
        }
        let Some(input) = input else { return false };
        match q.kind {
            ActionKind::Command | ActionKind::Unsandboxed => {
                tool == "run_command"
                    && input.get("command").and_then(Value::as_str) == Some(q.action.as_str())
            }
            ActionKind::Mcp => false,
            ActionKind::Edit | ActionKind::Read => {
                input.get("path").and_then(Value::as_str).is_some_and(|p| {
                    let a = abs(root, p);
                    let asked = abs(root, q.action.trim_start_matches("~/"));
                    a == asked || a.ends_with(&q.action) || Path::new(&q.action).ends_with(p)
                })
            }
        }
    });
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some(first.0.clone())
}

/// The tool call shown with a permission request.
pub fn permission_call(root: &Path, calls: &Calls, q: &Question) -> acp::ToolCallUpdate {
    let title = match q.kind {
        ActionKind::Command => format!("Run {}", q.action),
        ActionKind::Unsandboxed => format!("Run outside the sandbox: {}", q.action),
        ActionKind::Edit => format!("Write {}", q.action),
        ActionKind::Read => format!("Read {}", q.action),
        ActionKind::Mcp => format!("Call {}", q.action),
    };
    let fields = acp::ToolCallUpdateFields::new()
        .title(title)
        .content(vec![text_content(q.message())]);
    match call_for_question(root, calls, q) {
        Some(id) => acp::ToolCallUpdate::new(id, fields),
        None => acp::ToolCallUpdate::new(
            q.approval_id.clone(),
            fields
                .kind(match q.kind {
                    ActionKind::Command | ActionKind::Unsandboxed => acp::ToolKind::Execute,
                    ActionKind::Edit => acp::ToolKind::Edit,
                    ActionKind::Read => acp::ToolKind::Read,
                    ActionKind::Mcp => acp::ToolKind::Other,
                })
                .status(acp::ToolCallStatus::Pending),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_answer_maps_by_option_id_and_anything_else_denies() {
        let sel = |id: &str| json!({"outcome": {"outcome": "selected", "optionId": id}});
        assert_eq!(answer_from(&sel("allow_once")), Answer::AllowOnce);
        assert_eq!(answer_from(&sel("allow_session")), Answer::AllowSession);
        assert_eq!(answer_from(&sel("always_allow")), Answer::AlwaysAllow);
        assert_eq!(answer_from(&sel("deny")), Answer::Deny(DenyCause::Person));
        assert!(matches!(
            answer_from(&sel("allow_always")),
            Answer::Deny(DenyCause::ClientError(_))
        ));
        assert_eq!(
            answer_from(&json!({"outcome": {"outcome": "cancelled"}})),
            Answer::Deny(DenyCause::Cancelled)
        );
        for bad in [
            json!(null),
            json!({}),
            json!({"outcome": "selected"}),
            json!({"outcome": {"outcome": "maybe"}}),
            json!({"outcome": {"outcome": "selected"}}),
        ] {
            assert!(
                matches!(answer_from(&bad), Answer::Deny(_)),
                "{bad} must deny"
            );
        }
    }

    #[test]
    fn options_have_distinct_ids_and_session_is_not_always() {
        let opts = permission_options();
        let ids: std::collections::HashSet<_> =
            opts.iter().map(|o| o.option_id.0.clone()).collect();
        assert_eq!(ids.len(), 4);
        let v = serde_json::to_value(&opts).expect("json");
        assert_eq!(v[1]["optionId"], "allow_session");
        assert_eq!(v[1]["kind"], "allow_always");
        assert_eq!(v[3]["kind"], "reject_once");
    }

    #[test]
    fn an_edit_is_announced_with_its_diff_and_location() {
        let mut calls = Calls::default();
        let u = updates(
            Path::new("/ws"),
            &mut calls,
            &UpdateKind::ToolCall {
                tool_call_id: "c1".into(),
                tool: "edit_file".into(),
                title: "Edit a.rs".into(),
                status: ToolStatus::Pending,
                input: Some(json!({"path": "src/a.rs", "old_text": "x", "new_text": "y"})),
                output: None,
                agent: None,
            },
        );
        let v = serde_json::to_value(&u[0]).expect("json");
        assert_eq!(v["sessionUpdate"], "tool_call");
        assert_eq!(v["kind"], "edit");
        assert_eq!(v["locations"][0]["path"], "/ws/src/a.rs");
        assert_eq!(v["content"][0]["type"], "diff");
        assert_eq!(v["content"][0]["oldText"], "x");
        assert_eq!(v["content"][0]["newText"], "y");
        let u = updates(
            Path::new("/ws"),
            &mut calls,
            &UpdateKind::ToolCall {
                tool_call_id: "c1".into(),
                tool: "edit_file".into(),
                title: "Edit a.rs".into(),
                status: ToolStatus::Denied,
                input: None,
                output: Some("denied".into()),
                agent: None,
            },
        );
        let v = serde_json::to_value(&u[0]).expect("json");
        assert_eq!(v["sessionUpdate"], "tool_call_update");
        assert_eq!(v["status"], "failed");
    }

    #[test]
    fn prompt_blocks_become_text_and_context() {
        let blocks: Vec<acp::ContentBlock> = serde_json::from_value(json!([
            {"type": "text", "text": "explain"},
            {"type": "resource_link", "name": "a.rs", "uri": "file:///ws/a.rs"},
            {"type": "resource", "resource": {"uri": "file:///ws/b.rs", "text": "fn b() {}"}},
            {"type": "image", "data": "AAAA", "mimeType": "image/png"}
        ]))
        .expect("blocks");
        let p = prompt("s1", &blocks);
        assert!(p.text.starts_with("explain"));
        assert!(p.text.contains("fn b() {}"));
        assert!(p.text.contains("left out"));
        assert_eq!(p.context.len(), 1);
        assert_eq!(p.context[0].uri, "file:///ws/a.rs");
    }
}
