//! Work-done progress per turn (`$/progress`): "thinking", "running `cargo
//! test`", "waiting for approval", then done. Only for clients that declare
//! `window.workDoneProgress`; the token is created with
//! `window/workDoneProgress/create` from this task, never from a handler.

use std::sync::Arc;
use std::time::Duration;

use super::plain::DenialAdvice;
use tokio::sync::mpsc;
use tower_lsp_server::ls_types::notification::Progress;
use tower_lsp_server::ls_types::request::WorkDoneProgressCreate;
use tower_lsp_server::ls_types::{
    MessageType, NumberOrString, ProgressParams, ProgressParamsValue, WorkDoneProgress,
    WorkDoneProgressBegin, WorkDoneProgressCreateParams, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};
use tower_lsp_server::Client;

use crate::protocol::{ApprovalStatus, SubagentStatus, ToolStatus, Update, UpdateKind};

const CREATE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the progress line says for an update, if it changes it. Text from
/// the model (a command, a goal) is shown with [`crate::term::printable_line`]:
/// a terminal editor's status line must not receive control characters.
pub fn message_for(kind: &UpdateKind) -> Option<String> {
    match kind {
        UpdateKind::Text { .. } => Some("writing".into()),
        UpdateKind::ToolCall {
            status: ToolStatus::Running,
            title,
            ..
        } => Some(format!("running {}", crate::term::printable_line(title))),
        UpdateKind::ToolCall { .. } => Some("thinking".into()),
        UpdateKind::Approval {
            status: ApprovalStatus::Asked,
            ..
        } => Some("waiting for approval".into()),
        UpdateKind::Approval { .. } => Some("thinking".into()),
        UpdateKind::Compaction { .. } => Some("compacting the conversation".into()),
        UpdateKind::Subagent {
            goal,
            status: SubagentStatus::Started,
            ..
        } => Some(format!(
            "subagent: {}",
            crate::term::printable_line(&crate::tools::first_line(goal, 50))
        )),
        _ => None,
    }
}

/// Starts the progress task of one turn; feed it the turn's updates. With
/// `advice` (an editor without dialogs), a command denied for want of a
/// dialog is told again after the progress ends: an editor that shows
/// progress messages in its status line would otherwise replace the advice
/// with "done".
pub fn start(client: Client, advice: Option<Arc<DenialAdvice>>) -> mpsc::UnboundedSender<Update> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
    tokio::spawn(async move {
        let token = NumberOrString::String(format!("tether-{}", uuid::Uuid::new_v4().simple()));
        let created = tokio::time::timeout(
            CREATE_TIMEOUT,
            client.send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                token: token.clone(),
            }),
        )
        .await;
        if !matches!(created, Ok(Ok(()))) {
            tracing::debug!("no work-done progress: the editor did not accept the token");
            while rx.recv().await.is_some() {}
            return;
        }
        let send = |value: WorkDoneProgress| {
            let client = client.clone();
            let token = token.clone();
            async move {
                client
                    .send_notification::<Progress>(ProgressParams {
                        token,
                        value: ProgressParamsValue::WorkDone(value),
                    })
                    .await
            }
        };
        send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
            title: "Tether".into(),
            cancellable: Some(false),
            message: Some("thinking".into()),
            percentage: None,
        }))
        .await;
        let mut last = "thinking".to_string();
        let mut end_message = "done".to_string();
        let mut denied: Option<String> = None;
        while let Some(u) = rx.recv().await {
            if let (
                Some(a),
                UpdateKind::Approval {
                    status: ApprovalStatus::Denied,
                    command,
                    reason,
                    ..
                },
            ) = (&advice, &u.kind)
            {
                if *reason == a.reason {
                    denied = Some(a.status_line(command.as_deref().unwrap_or("")));
                }
            }
            if let UpdateKind::TurnEnd { stop_reason } = &u.kind {
                end_message = match stop_reason.as_str() {
                    "end_turn" => "done".into(),
                    other => other.replace('_', " "),
                };
                break;
            }
            if let Some(m) = message_for(&u.kind) {
                if m != last {
                    last = m.clone();
                    send(WorkDoneProgress::Report(WorkDoneProgressReport {
                        cancellable: None,
                        message: Some(m),
                        percentage: None,
                    }))
                    .await;
                }
            }
        }
        send(WorkDoneProgress::End(WorkDoneProgressEnd {
            message: Some(end_message),
        }))
        .await;
        if let Some(line) = denied {
            client.show_message(MessageType::WARNING, line).await;
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_carries_no_control_characters() {
        let running = message_for(&UpdateKind::ToolCall {
            tool_call_id: "c1".into(),
            tool: "run_command".into(),
            title: "Run `echo \u{1b}]0;pwned\u{7}`".into(),
            status: ToolStatus::Running,
            input: None,
            output: None,
            agent: None,
        });
        assert_eq!(
            running.as_deref(),
            Some("running Run `echo \\u{1b}]0;pwned\\u{7}`")
        );
        let sub = message_for(&UpdateKind::Subagent {
            child_session_id: "s".into(),
            goal: "find \u{9b}2J".into(),
            status: SubagentStatus::Started,
            summary: None,
        });
        assert_eq!(sub.as_deref(), Some("subagent: find \\u{9b}2J"));
    }
}
