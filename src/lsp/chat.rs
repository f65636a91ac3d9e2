//! The chat file (`*.tether.md`): a Markdown transcript that works in any LSP
//! editor (and is the way in for Helix). The person writes under the last
//! `## You` heading and runs *Send to Tether*; the reply is appended through
//! `workspace/applyEdit`, coalesced to a few edits per second. Tool activity
//! and approvals appear as short quoted lines. The first line records the
//! session id, so reopening the file continues the session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::docs::EditorBuffers;
use crate::protocol::{ApprovalStatus, ToolStatus, Update, UpdateKind};

/// How often streamed text is flushed into the file.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

const MARKER: &str = "<!-- tether-session: ";
pub const YOU: &str = "## You";
pub const TETHER: &str = "## Tether";

pub fn is_chat_path(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".tether.md"))
}

/// What a chat file says: its session and the person's latest prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub session_id: Option<String>,
    pub prompt: String,
}

/// The marker line for a session.
pub fn marker(session_id: &str) -> String {
    format!("{MARKER}{session_id} -->\n")
}

/// The session a chat file records, if any.
pub fn session_of(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(MARKER)
            .and_then(|r| r.strip_suffix("-->"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
}

/// Reads the session marker and the text under the last `## You`.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let session_id = session_of(text);
    let lines: Vec<&str> = text.lines().collect();
    let last_you = lines.iter().rposition(|l| l.trim() == YOU);
    let last_tether = lines.iter().rposition(|l| l.trim() == TETHER);
    let body: Vec<&str> = match (last_you, last_tether) {
        (Some(y), None) => lines[y + 1..].to_vec(),
        (Some(y), Some(t)) if t < y => lines[y + 1..].to_vec(),
        (_, Some(_)) => {
            return Err(format!(
                "write your prompt under a \"{YOU}\" line after the last reply, then send it again"
            ))
        }
        (None, None) => lines
            .iter()
            .filter(|l| !l.trim().starts_with(MARKER))
            .copied()
            .collect(),
    };
    let prompt = body.join("\n").trim().to_string();
    if prompt.is_empty() {
        return Err(format!(
            "the prompt is empty: write it under the last \"{YOU}\" line"
        ));
    }
    Ok(Parsed { session_id, prompt })
}

/// Finds `ap-…` approval ids on the given lines of a chat file.
pub fn approval_ids(text: &str, first_line: usize, last_line: usize) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(i, _)| *i >= first_line && *i <= last_line)
        .flat_map(|(_, l)| {
            l.split('`')
                .filter(|w| w.starts_with("ap-") && w.len() > 3 && !w.contains(' '))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Formats an update as chat-file text (`None`: nothing to show).
fn render(kind: &UpdateKind) -> Option<String> {
    match kind {
        UpdateKind::Text { delta } => Some(delta.clone()),
        UpdateKind::ToolCall {
            status,
            title,
            agent,
            output,
            ..
        } if status.is_final() => {
            let who = agent
                .as_deref()
                .map(|a| format!(" [{a}]"))
                .unwrap_or_default();
            let mark = match status {
                ToolStatus::Completed => "✓",
                ToolStatus::Failed => "✗",
                ToolStatus::Denied => "⊘ denied:",
                _ => "⊘ cancelled:",
            };
            let detail = match status {
                ToolStatus::Failed => output
                    .as_deref()
                    .and_then(|o| o.lines().find(|l| !l.trim().is_empty()))
                    .map(|l| format!(" — {}", crate::tools::first_line(l, 100)))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            Some(format!("\n> {mark} {title}{who}{detail}\n"))
        }
        UpdateKind::Approval {
            approval_id,
            status,
            command,
            reason,
            agent,
        } => {
            let what = command.as_deref().unwrap_or("");
            let who = agent
                .as_deref()
                .map(|a| format!(" (asked by {a})"))
                .unwrap_or_default();
            Some(match status {
                ApprovalStatus::Asked => format!(
                    "\n> ⚠ **Approval needed** `{approval_id}`: `{what}` — {reason}{who}.\n\
                     > Use the code action *Tether: Approve* or *Tether: Deny* on this line, \
                     or `:lsp-workspace-command tether.approve {approval_id}`.\n"
                ),
                ApprovalStatus::Allowed => format!("\n> ✓ allowed: `{what}`\n"),
                ApprovalStatus::Denied => format!("\n> ✗ denied: `{what}` — {reason}\n"),
                ApprovalStatus::TimedOut => format!("\n> ⏱ timed out, denied: `{what}`\n"),
            })
        }
        UpdateKind::Subagent { goal, status, .. } => Some(format!(
            "\n> ↳ subagent {status}: {}\n",
            crate::tools::first_line(goal, 80)
        )),
        UpdateKind::Compaction {
            tokens_before,
            tokens_after,
            window,
            pruned_outputs,
            summarized_messages,
            ..
        } => Some(format!(
            "\n> ⇲ {}\n",
            crate::engine::context::compaction_line(
                *tokens_before,
                *tokens_after,
                *window,
                *pruned_outputs,
                *summarized_messages
            )
        )),
        UpdateKind::Plan { entries } => Some(
            std::iter::once("\n".to_string())
                .chain(entries.iter().map(|e| {
                    let mark = match e.status.as_str() {
                        "completed" => "x",
                        _ => " ",
                    };
                    format!("> - [{mark}] {}\n", e.content)
                }))
                .collect(),
        ),
        _ => None,
    }
}

/// Starts the writer of one chat turn. It owns every write into the file for
/// that turn, so edits arrive in order.
pub fn start_writer(
    buffers: Arc<EditorBuffers>,
    path: PathBuf,
    session_marker: Option<String>,
) -> mpsc::UnboundedSender<Update> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
    tokio::spawn(async move {
        // Nothing is written unless the turn really started.
        let Some(first) = rx.recv().await else {
            return;
        };
        if let Some(m) = session_marker {
            if let Err(e) = buffers.prepend(&path, &m).await {
                tracing::warn!("chat file {}: {e}", path.display());
            }
        }
        let mut pending = format!("\n\n{TETHER}\n\n");
        let mut at_line_start = true;
        let mut first = Some(first);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut done = false;
        while !done {
            let next = async {
                match first.take() {
                    Some(u) => Some(u),
                    None => rx.recv().await,
                }
            };
            tokio::select! {
                u = next => match u {
                    None => done = true,
                    Some(u) => {
                        if matches!(u.kind, UpdateKind::TurnEnd { .. }) {
                            done = true;
                        } else if let Some(mut text) = render(&u.kind) {
                            // Quoted lines start on a line of their own.
                            if text.starts_with('\n') && (at_line_start || pending.ends_with('\n')) {
                                text.remove(0);
                            }
                            if !text.is_empty() {
                                at_line_start = text.ends_with('\n');
                                pending.push_str(&text);
                            }
                            // Approvals are shown at once: someone is waiting.
                            if matches!(u.kind, UpdateKind::Approval { .. }) {
                                flush(&buffers, &path, &mut pending).await;
                            }
                        }
                    }
                },
                _ = tick.tick() => flush(&buffers, &path, &mut pending).await,
            }
        }
        pending.push_str(&format!("\n\n{YOU}\n\n"));
        flush(&buffers, &path, &mut pending).await;
    });
    tx
}

async fn flush(buffers: &EditorBuffers, path: &std::path::Path, pending: &mut String) {
    if pending.is_empty() {
        return;
    }
    match buffers.append(path, pending).await {
        Ok(()) => pending.clear(),
        Err(e) => tracing::warn!("chat file {}: {e}; will retry", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_session_and_last_prompt() {
        let t = format!(
            "{}## You\n\nfirst\n\n## Tether\n\nanswer\n\n## You\n\nsecond question\nmore\n",
            marker("s-1")
        );
        assert_eq!(
            parse(&t),
            Ok(Parsed {
                session_id: Some("s-1".into()),
                prompt: "second question\nmore".into()
            })
        );
        assert_eq!(
            parse("just a question\n"),
            Ok(Parsed {
                session_id: None,
                prompt: "just a question".into()
            })
        );
        assert!(parse("## You\n\n").is_err());
        assert!(parse("## You\nq\n## Tether\nreply\n").is_err());
    }

    #[test]
    fn finds_approval_ids_on_lines() {
        let t = "x\n> ⚠ **Approval needed** `ap-12ab`: `rm -rf b`\ny\n";
        assert_eq!(approval_ids(t, 1, 1), vec!["ap-12ab".to_string()]);
        assert!(approval_ids(t, 0, 0).is_empty());
    }
}
