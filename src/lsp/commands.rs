//! `workspace/executeCommand` and code actions: the `tether.*` commands
//! (`tether.ask`, `tether.chat`, `tether.cancel`, `tether.newSession`,
//! `tether.approve`, `tether.deny`) and the actions that offer them.

use super::*;

impl Backend {
    pub(super) async fn run_command(&self, p: ExecuteCommandParams) -> RpcResult<Option<Value>> {
        let ready = self.ready()?;
        match p.command.as_str() {
            "tether.ask" => self.command_ask(p.arguments).await,
            "tether.cancel" => {
                match p.arguments.first().and_then(Value::as_str) {
                    Some(sid) => {
                        ready.engine.cancel_session(sid);
                    }
                    None => ready.engine.cancel_all(),
                }
                Ok(None)
            }
            "tether.newSession" => {
                // Titled by the store from the first prompt.
                let id = ready.engine.new_session(None, "", None).into_string();
                if let Ok(mut s) = self.current_session.lock() {
                    *s = Some(id.clone());
                }
                Ok(Some(json!({"sessionId": id})))
            }
            "tether.approve" | "tether.deny" => {
                let id = asker::approval_id_arg(&p.arguments)
                    .or_else(|| ready.asker.pending_ids().into_iter().next())
                    .ok_or_else(|| failed("no approval is pending".into()))?;
                let answer = if p.command == "tether.approve" {
                    Answer::AllowOnce
                } else {
                    Answer::Deny(DenyCause::Person)
                };
                let found = ready.asker.resolve(&id, answer);
                if !found {
                    // Answered, expired or unknown: the person's choice did nothing.
                    let client = self.client.clone();
                    let msg = format!(
                        "Tether: {} is not pending (already answered, expired or unknown)",
                        crate::term::printable_line(&id)
                    );
                    tokio::spawn(
                        async move { client.show_message(MessageType::WARNING, msg).await },
                    );
                }
                Ok(Some(json!({"approvalId": id, "resolved": found})))
            }
            "tether.chat" => self.command_chat(ready, p.arguments).await,
            other => Err(RpcError::invalid_params(format!(
                "unknown command {other}; known: {}",
                COMMANDS.join(", ")
            ))),
        }
    }
}

impl Backend {
    /// `tether.ask`: starts a turn and returns its ids at once. For a client
    /// that takes no `tether/update`, the turn is also written into the
    /// transcript file, which the editor is asked to open.
    async fn command_ask(&self, args: Vec<Value>) -> RpcResult<Option<Value>> {
        let ready = self.ready()?;
        let (text, context) = match args.first() {
            Some(Value::String(s)) => (s.clone(), vec![]),
            Some(Value::Object(o)) => {
                let text = o
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let context = match o.get("uri").and_then(Value::as_str) {
                    Some(uri) => vec![ContextRef {
                        uri: uri.to_string(),
                        range: o
                            .get("range")
                            .and_then(|r| serde_json::from_value::<Range>(r.clone()).ok())
                            .map(|r| LineRange {
                                start: Pos {
                                    line: r.start.line,
                                    character: r.start.character,
                                },
                                end: Pos {
                                    line: r.end.line,
                                    character: r.end.character,
                                },
                            }),
                    }],
                    None => vec![],
                };
                (text, context)
            }
            _ => return Err(RpcError::invalid_params(ASK_USAGE)),
        };
        if text.trim().is_empty() {
            return Err(RpcError::invalid_params(ASK_USAGE));
        }
        let mut session_id = self.current_session.lock().ok().and_then(|s| s.clone());
        let transcript = if ready.plain {
            // The transcript's marker needs the id before the turn starts.
            let id = match session_id.clone() {
                Some(id) => id,
                None => {
                    let id = ready.engine.new_session(None, "", None).into_string();
                    session_id = Some(id.clone());
                    id
                }
            };
            let path = plain::transcript_path(ready.engine.root());
            let show = self.show_transcript(ready, &path);
            Some((
                path.clone(),
                chat::start_writer(
                    ready.buffers.clone(),
                    path,
                    chat::Opening::Transcript {
                        session_id: id,
                        prompt: text.clone(),
                        show,
                        lock: self.transcript_lock.clone(),
                    },
                ),
            ))
        } else {
            None
        };
        let writer = transcript.as_ref().map(|(_, w)| w.clone());
        let handle = ready
            .engine
            .start_turn(
                PromptParams {
                    session_id,
                    text,
                    context,
                },
                self.turn_sink(ready, writer.clone()),
            )
            .await
            .map_err(|e| self.start_error(e))?;
        if let Ok(mut s) = self.current_session.lock() {
            *s = Some(handle.session_id.clone());
        }
        let out = json!({"sessionId": handle.session_id, "turnId": handle.turn_id});
        // The turn runs on; nobody awaits it here.
        let client = self.client.clone();
        let root = ready.engine.root().to_path_buf();
        let asker = ready.asker.clone();
        let sid = handle.session_id.clone();
        tokio::spawn(async move {
            let result = handle.done.await;
            let Some((path, writer)) = transcript else {
                return;
            };
            finish_writer(&writer, &result);
            // After the writer's last write (and its "answering in" message).
            writer.closed().await;
            let file = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            // A deny the person must not miss (what to change, an expired
            // dialog) outranks the reply, which is in the file.
            let denial = asker.take_denial(&sid);
            let told = match &result {
                _ if denial.is_some() => denial.unwrap_or_default(),
                Ok(r) if r.error.is_some() => format!(
                    "Tether: the turn failed: {} (see {file})",
                    crate::tools::first_line(r.error.as_deref().unwrap_or(""), 60)
                ),
                Ok(r) if r.stop_reason == crate::protocol::StopReason::Cancelled => {
                    format!("Tether: cancelled (see {file})")
                }
                Ok(r) => format!(
                    "Tether: {} (reply in {file})",
                    crate::tools::first_line(r.text.trim(), 50)
                ),
                Err(_) => format!("Tether: the turn stopped (see {file})"),
            };
            client
                .show_message(
                    MessageType::INFO,
                    crate::term::printable_line(&told).into_owned(),
                )
                .await;
        });
        Ok(Some(out))
    }

    /// Shows the transcript: `window/showDocument` where the editor supports
    /// it (awaited, so the file is open before the reply is written), else a
    /// message saying where it is.
    fn show_transcript(
        &self,
        ready: &Ready,
        path: &std::path::Path,
    ) -> futures::future::BoxFuture<'static, ()> {
        let client = self.client.clone();
        let docs = self.docs.clone();
        let path_buf = path.to_path_buf();
        let supported = ready.show_document;
        let rel = path
            .strip_prefix(ready.engine.root())
            .unwrap_or(path)
            .display()
            .to_string();
        let uri = tools::path_to_uri(path);
        Box::pin(async move {
            // Already open (an earlier turn showed it): nothing to do.
            if docs.is_open(&path_buf) {
                return;
            }
            if supported {
                if let Ok(uri) = uri.parse::<Uri>() {
                    let shown = tokio::time::timeout(
                        SHOW_DOCUMENT_TIMEOUT,
                        client.show_document(ShowDocumentParams {
                            uri,
                            external: Some(false),
                            take_focus: Some(true),
                            selection: None,
                        }),
                    )
                    .await;
                    if matches!(shown, Ok(Ok(true))) {
                        return;
                    }
                }
            }
            client
                .show_message(
                    MessageType::INFO,
                    format!("Tether: reply in {rel} (:open {rel})"),
                )
                .await;
        })
    }
}

/// How `tether.ask` is called, for the person who called it wrong.
const ASK_USAGE: &str =
    "tether.ask needs the prompt as one quoted string: :lsp-workspace-command tether.ask \"why does this fail?\"";

/// How long the editor may take to open the transcript.
const SHOW_DOCUMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Tells a chat writer how its turn ended.
fn finish_writer(
    writer: &mpsc::UnboundedSender<chat::ChatEvent>,
    result: &Result<PromptResult, tokio::sync::oneshot::error::RecvError>,
) {
    let _ = writer.send(match result {
        Ok(r) => chat::ChatEvent::Finished {
            stop: r.stop_reason,
            error: r.error.clone(),
        },
        Err(_) => chat::ChatEvent::Finished {
            stop: crate::protocol::StopReason::Error,
            error: Some("the turn stopped without a result".into()),
        },
    });
}

impl Backend {
    /// `tether.chat [uri]`: sends the chat file's latest prompt; the reply is
    /// written into the file. Returns at once.
    async fn command_chat(&self, ready: &Ready, args: Vec<Value>) -> RpcResult<Option<Value>> {
        let uri = match args.first() {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("uri")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            _ => String::new(),
        };
        let path = tools::uri_to_path(&uri).ok_or_else(|| {
            RpcError::invalid_params("tether.chat takes the chat file's file:// uri")
        })?;
        if !chat::is_chat_path(&path) {
            return Err(RpcError::invalid_params(format!(
                "{} is not a chat file: chat files end in .tether.md",
                path.display()
            )));
        }
        let text = match self.docs.open_text(&path) {
            Some(t) => t,
            None => tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?,
        };
        let parsed = match chat::parse(&text) {
            Ok(p) => p,
            Err(msg) => {
                self.sink.notice(format!("Tether: {msg}"));
                return Err(shown(failed(msg)));
            }
        };
        let (session_id, marker) = match parsed.session_id {
            Some(id) => (id, None),
            None => {
                let id = ready.engine.new_session(None, "", None).into_string();
                let m = chat::marker(&id);
                (id, Some(m))
            }
        };
        if let Ok(mut s) = self.chat_sessions.lock() {
            s.insert(session_id.clone());
        }
        let writer = chat::start_writer(ready.buffers.clone(), path, chat::Opening::Chat(marker));
        let handle = ready
            .engine
            .start_turn(
                PromptParams {
                    session_id: Some(session_id),
                    text: parsed.prompt,
                    context: vec![],
                },
                self.turn_sink(ready, Some(writer.clone())),
            )
            .await
            .map_err(|e| {
                self.sink.notice(format!("Tether: {e}"));
                shown(self.start_error(e))
            })?;
        let out = json!({"sessionId": handle.session_id, "turnId": handle.turn_id});
        tokio::spawn(async move {
            let result = handle.done.await;
            finish_writer(&writer, &result);
        });
        Ok(Some(out))
    }

    pub(super) fn code_actions(
        &self,
        ready: &Ready,
        p: &CodeActionParams,
    ) -> Vec<CodeActionOrCommand> {
        let uri = p.text_document.uri.as_str().to_string();
        let Some(path) = tools::uri_to_path(&uri) else {
            return vec![];
        };
        let action = |title: &str, command: &str, args: Vec<Value>| {
            CodeActionOrCommand::CodeAction(CodeAction {
                title: title.to_string(),
                command: Some(Command {
                    title: title.to_string(),
                    command: command.to_string(),
                    arguments: Some(args),
                }),
                ..Default::default()
            })
        };
        let text = self.docs.open_text(&path).unwrap_or_default();
        let (first, last) = (p.range.start.line as usize, p.range.end.line as usize);
        let mut out = Vec::new();
        if chat::is_chat_path(&path) {
            out.push(action("Send to Tether", "tether.chat", vec![json!(uri)]));
            if let Some(sid) = chat::session_of(&text) {
                if ready.engine.running_sessions().contains(&sid) {
                    out.push(action("Tether: Cancel", "tether.cancel", vec![json!(sid)]));
                }
            }
            // Approvals on the selected lines; else every pending approval
            // of this chat's session (the cursor need not be on the line).
            let pending = ready.asker.pending_ids();
            let mut ids: Vec<String> = chat::approval_ids(&text, first, last)
                .into_iter()
                .filter(|id| pending.contains(id))
                .collect();
            if ids.is_empty() {
                if let Some(sid) = chat::session_of(&text) {
                    ids = ready.asker.pending_for(&sid);
                    ids.sort();
                }
            }
            for id in ids {
                out.push(action(
                    &format!("Tether: Approve {id}"),
                    "tether.approve",
                    vec![json!(id)],
                ));
                out.push(action(
                    &format!("Tether: Deny {id}"),
                    "tether.deny",
                    vec![json!(id)],
                ));
            }
            return out;
        }
        let range = json!(p.range);
        if p.range.start != p.range.end {
            out.push(action(
                "Tether: explain",
                "tether.ask",
                vec![json!({"text": "Explain this code.", "uri": uri, "range": range})],
            ));
            let problems: Vec<String> = p
                .context
                .diagnostics
                .iter()
                .map(|d| format!("- line {}: {}", d.range.start.line + 1, d.message))
                .collect();
            let fix = if problems.is_empty() {
                "Fix the problems in this code.".to_string()
            } else {
                format!("Fix these problems in this code:\n{}", problems.join("\n"))
            };
            out.push(action(
                "Tether: fix",
                "tether.ask",
                vec![json!({"text": fix, "uri": uri, "range": range})],
            ));
        }
        let comment = text
            .lines()
            .enumerate()
            .filter(|(i, _)| *i >= first && *i <= last)
            .find_map(|(_, l)| comment_text(l));
        if let Some(c) = comment {
            out.push(action(
                "Tether: do what the comment says",
                "tether.ask",
                vec![json!({"text": format!("Do what this comment says: {c}"), "uri": uri, "range": range})],
            ));
        }
        out
    }
}

/// The text of a comment line (`//`, `#`, `--`, `/*`, `*`, `;`, `<!--`).
fn comment_text(line: &str) -> Option<String> {
    let t = line.trim();
    for prefix in ["///", "//", "#", "--", "/*", "*", ";;", ";", "<!--"] {
        if let Some(rest) = t.strip_prefix(prefix) {
            let rest = rest.trim_end_matches("*/").trim_end_matches("-->").trim();
            if rest.len() >= 3 && !rest.starts_with('!') && !rest.starts_with('[') {
                return Some(rest.to_string());
            }
            return None;
        }
    }
    None
}
