//! The chat file (`*.tether.md`): a Markdown transcript that works in any LSP
//! editor (and is the way in for Helix). The person writes under the last
//! `## You` heading and runs *Send to Tether*; the reply is appended through
//! `workspace/applyEdit`, coalesced to a few edits per second. Tool activity
//! and approvals appear as short quoted lines. The first line records the
//! session id, so reopening the file continues the session. Control
//! characters from the model are written as visible `\u{…}` text
//! ([`crate::term`]): the file is shown by terminal editors too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::docs::EditorBuffers;
use crate::tools::Buffers;
use futures::future::BoxFuture;

use crate::protocol::{ApprovalStatus, PlanStatus, StopReason, ToolStatus, Update, UpdateKind};
use crate::term::{printable_line as field, PrintableStream};

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

/// The session a chat file records, if any: the last marker (the `tether.ask`
/// transcript starts a new marker when its session changes).
pub fn session_of(text: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
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

/// Formats an update as chat-file text (`None`: nothing to show). The
/// reply's text goes through `text` (its `\r\n` may span two deltas); every
/// other field is shown on one line.
fn render(kind: &UpdateKind, text: &mut PrintableStream) -> Option<String> {
    match kind {
        UpdateKind::Text { delta } => Some(text.push(delta)),
        UpdateKind::ToolCall {
            status,
            title,
            agent,
            output,
            ..
        } if status.is_final() => {
            let who = agent
                .as_deref()
                .map(|a| format!(" [{}]", field(a)))
                .unwrap_or_default();
            let title = field(title);
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
                    .map(|l| format!(" — {}", field(&crate::tools::first_line(l, 100))))
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
            let what = field(command.as_deref().unwrap_or(""));
            let reason = field(reason);
            let who = agent
                .as_deref()
                .map(|a| format!(" (asked by {})", field(a)))
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
            "\n> ↳ subagent {}: {}\n",
            status.as_str(),
            field(&crate::tools::first_line(goal, 80))
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
                    let mark = match e.status {
                        PlanStatus::Completed => "x",
                        PlanStatus::Pending | PlanStatus::InProgress => " ",
                    };
                    format!("> - [{mark}] {}\n", field(&e.content))
                }))
                .collect(),
        ),
        _ => None,
    }
}

/// What the writer of a turn receives: the turn's updates, its notices
/// (warnings, errors) and, last, how it finished.
pub enum ChatEvent {
    Update(Update),
    Notice(String),
    Finished {
        stop: StopReason,
        error: Option<String>,
    },
}

/// How a turn's writing starts.
pub enum Opening {
    /// A chat file the person wrote the prompt in: the session marker to put
    /// on its first line, if it has none yet.
    Chat(Option<String>),
    /// The `tether.ask` transcript: the prompt (and marker) to append, then
    /// the editor is shown the file (`show` runs before any reply is written,
    /// so an editor that opens the file reads it whole). `lock` is held for
    /// the whole turn: turns of other sessions wait, never interleave.
    Transcript {
        session_id: String,
        prompt: String,
        show: BoxFuture<'static, ()>,
        lock: Arc<tokio::sync::Mutex<()>>,
    },
}

/// Counts the newlines a text ends with (at most 2 matter).
fn trailing_newlines(s: &str, before: usize) -> usize {
    let n = s.chars().rev().take_while(|c| *c == '\n').count();
    if n == s.chars().count() {
        (before + n).min(2)
    } else {
        n.min(2)
    }
}

/// Newlines that make the text so far end in exactly one blank line.
fn blank_line_after(trailing: usize) -> &'static str {
    match trailing {
        0 => "\n\n",
        1 => "\n",
        _ => "",
    }
}

/// Starts the writer of one chat turn. It owns every write into the file for
/// that turn, so edits arrive in order. The turn's end is
/// [`ChatEvent::Finished`] (or every sender gone).
pub fn start_writer(
    buffers: Arc<EditorBuffers>,
    path: PathBuf,
    opening: Opening,
) -> mpsc::UnboundedSender<ChatEvent> {
    let (tx, mut rx) = mpsc::unbounded_channel::<ChatEvent>();
    tokio::spawn(async move {
        // The transcript's turns take their turn in the order they were asked.
        let _held = match &opening {
            Opening::Transcript { lock, .. } => Some(lock.clone().lock_owned().await),
            Opening::Chat(_) => None,
        };
        // Nothing is written unless the turn really started.
        let Some(first) = rx.recv().await else {
            return;
        };
        match opening {
            Opening::Chat(Some(m)) => {
                if let Err(e) = buffers.prepend(&path, &m).await {
                    tracing::warn!("chat file {}: {e}", path.display());
                }
            }
            Opening::Chat(None) => {}
            Opening::Transcript {
                session_id,
                prompt,
                show,
                lock: _,
            } => {
                if let Some(dir) = path.parent() {
                    if let Err(e) = tokio::fs::create_dir_all(dir).await {
                        tracing::warn!("transcript {}: {e}", dir.display());
                    }
                }
                let existing = match buffers.docs.open_text(&path) {
                    Some(t) => t,
                    None => tokio::fs::read_to_string(&path).await.unwrap_or_default(),
                };
                let intro = super::plain::transcript_intro(&existing, &session_id, &prompt);
                if let Err(e) = buffers.append(&path, &intro).await {
                    tracing::warn!("transcript {}: {e}", path.display());
                }
                show.await;
            }
        }
        let existing = match buffers.docs.open_text(&path) {
            Some(t) => t,
            None => tokio::fs::read_to_string(&path).await.unwrap_or_default(),
        };
        let mut w = Writer {
            pending: String::new(),
            trailing: trailing_newlines(&existing, 0),
            after_quote: false,
            wrote_body: false,
        };
        let header = format!("{}{TETHER}\n\n", blank_line_after(w.trailing));
        w.push(&header);
        let mut text_stream = PrintableStream::default();
        let mut first = Some(first);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut finished: Option<(StopReason, Option<String>)> = None;
        loop {
            let next = async {
                match first.take() {
                    Some(u) => Some(u),
                    None => rx.recv().await,
                }
            };
            tokio::select! {
                e = next => match e {
                    None => break,
                    Some(ChatEvent::Finished { stop, error }) => {
                        finished = Some((stop, error));
                        break;
                    }
                    Some(ChatEvent::Notice(m)) => {
                        w.push(&text_stream.finish());
                        w.quote(&format!("> ⚠ {}\n", field(&m)));
                        flush(&buffers, &path, &mut w.pending).await;
                    }
                    Some(ChatEvent::Update(u)) => {
                        if !matches!(u.kind, UpdateKind::Text { .. }) {
                            // A `\r` held back from the last delta is shown now.
                            w.push(&text_stream.finish());
                        }
                        if matches!(u.kind, UpdateKind::TurnEnd { .. }) {
                            // The end comes as `Finished`, with its error.
                            continue;
                        }
                        if let Some(text) = render(&u.kind, &mut text_stream) {
                            if matches!(u.kind, UpdateKind::Text { .. }) {
                                w.text(&text);
                            } else {
                                w.quote(text.trim_start_matches('\n'));
                            }
                            // Approvals are shown at once: someone is waiting.
                            if matches!(u.kind, UpdateKind::Approval { .. }) {
                                flush(&buffers, &path, &mut w.pending).await;
                            }
                        }
                    }
                },
                _ = tick.tick() => flush(&buffers, &path, &mut w.pending).await,
            }
        }
        w.push(&text_stream.finish());
        let (stop, error) = finished.unwrap_or((StopReason::Error, None));
        match (stop, error) {
            (_, Some(e)) => w.quote(&format!("> ✗ the turn failed: {}\n", field(&e))),
            (StopReason::Cancelled, None) => {
                if w.wrote_body {
                    w.quote("> ⊘ cancelled\n");
                } else {
                    w.text("(cancelled)");
                }
            }
            (StopReason::MaxIterations, None) => {
                w.quote("> ⊘ stopped: the turn reached its iteration limit\n")
            }
            (StopReason::EndTurn, None) if !w.wrote_body => w.text("(no reply)"),
            _ => {}
        }
        let end = format!("{}{YOU}\n\n", blank_line_after(w.trailing));
        w.push(&end);
        flush(&buffers, &path, &mut w.pending).await;
    });
    tx
}

/// The text a turn still has to write, and what it ends with.
struct Writer {
    pending: String,
    /// Newlines at the end of everything written (0..=2).
    trailing: usize,
    /// The last thing written was a quoted line.
    after_quote: bool,
    /// Anything was written under `## Tether`.
    wrote_body: bool,
}

impl Writer {
    fn push(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.trailing = trailing_newlines(s, self.trailing);
        self.pending.push_str(s);
    }

    /// Reply text: after a quote it starts a new paragraph, or Markdown
    /// would continue the quote with it.
    fn text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.after_quote {
            self.push(blank_line_after(self.trailing));
            self.after_quote = false;
        }
        self.wrote_body = true;
        self.push(s);
    }

    /// A quoted line (or lines), on a line of its own; quotes in a row stay
    /// together.
    fn quote(&mut self, s: &str) {
        if !self.after_quote && self.wrote_body {
            self.push(blank_line_after(self.trailing));
        } else if self.trailing == 0 {
            self.push("\n");
        }
        self.after_quote = true;
        self.wrote_body = true;
        self.push(s);
    }
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
    fn model_text_reaches_the_file_with_its_control_characters_shown() {
        let mut stream = PrintableStream::default();
        let text = |d: &str, s: &mut PrintableStream| {
            render(&UpdateKind::Text { delta: d.into() }, s).unwrap()
        };
        let reply = [
            text("a\u{1b}]52;c;eA==\u{7}\r", &mut stream),
            text("\nb\u{9b}2J\t", &mut stream),
        ]
        .concat();
        assert_eq!(reply, "a\\u{1b}]52;c;eA==\\u{7}\nb\\u{9b}2J\t");
        let tool = render(
            &UpdateKind::ToolCall {
                tool_call_id: "c1".into(),
                tool: "run_command".into(),
                title: "Run `printf '\u{1b}[2J'`".into(),
                status: ToolStatus::Failed,
                input: None,
                output: Some("oops\u{1b}]0;t\u{7}".into()),
                agent: Some("sub\nagent".into()),
            },
            &mut stream,
        )
        .unwrap();
        assert_eq!(
            tool,
            "\n> ✗ Run `printf '\\u{1b}[2J'` [sub\\u{a}agent] — oops\\u{1b}]0;t\\u{7}\n"
        );
        let asked = render(
            &UpdateKind::Approval {
                approval_id: "ap-1".into(),
                status: ApprovalStatus::Asked,
                command: Some("rm -rf x\rls".into()),
                reason: "why\n> fake line".into(),
                agent: None,
            },
            &mut stream,
        )
        .unwrap();
        assert!(
            asked.contains("`rm -rf x\\u{d}ls` — why\\u{a}> fake line"),
            "{asked}"
        );
        assert!(
            !asked.chars().any(|c| c.is_control() && c != '\n'),
            "{asked:?}"
        );
    }

    #[test]
    fn finds_approval_ids_on_lines() {
        let t = "x\n> ⚠ **Approval needed** `ap-12ab`: `rm -rf b`\ny\n";
        assert_eq!(approval_ids(t, 1, 1), vec!["ap-12ab".to_string()]);
        assert!(approval_ids(t, 0, 0).is_empty());
    }
}
