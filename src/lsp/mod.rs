//! The LSP frontend on `tower-lsp-server`: the editor's way in.
//!
//! It owns the protocol stream, the document mirror, the approval dialog
//! queue ([`asker`]) and the translation between `tether/*` requests and the
//! engine. It holds no agent logic.
//!
//! **Architecture invariants (docs/DESIGN.md §2):**
//! - only the protocol writer touches the real stdout: at start-up fd 1 is
//!   duplicated for the protocol and pointed at stderr;
//! - a handler never awaits the client: requests to the client are sent from
//!   spawned tasks; `tether/prompt` awaits only its turn's completion;
//! - `workspace/executeCommand` returns at once.

pub mod asker;
pub mod chat;
mod docs;
pub mod framing;
pub mod plain;
mod progress;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc::{Error as RpcError, ErrorCode, Result as RpcResult};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use crate::config::{Config, Sources};
use crate::engine::{Engine, EngineParts, EventSink, StartError};
use crate::gate::{Answer, DenyCause, Gate};
use crate::model::ModelClient;
use crate::protocol::{
    CancelParams, ContextRef, HistoryParams, HistoryResult, LineRange, Pos, PromptParams,
    PromptResult, SessionsParams, SessionsResult, Update, UpdateKind,
};
use crate::store::Store;
use crate::tools::{self, Buffers, Redactor};
use asker::LspAsker;
use docs::{Documents, EditorBuffers, Encoding};

/// The `tether/update` notification.
pub enum TetherUpdate {}

impl notification::Notification for TetherUpdate {
    type Params = Update;
    const METHOD: &'static str = "tether/update";
}

/// Commands offered through `workspace/executeCommand`.
pub const COMMANDS: [&str; 6] = [
    "tether.ask",
    "tether.chat",
    "tether.cancel",
    "tether.newSession",
    "tether.approve",
    "tether.deny",
];

/// Error code for "the request could not be served as asked" (LSP's
/// `RequestFailed`).
const REQUEST_FAILED: i64 = -32803;

enum Outgoing {
    Update(Update),
    Notice(String),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Sends engine events to the editor, in order, from one task.
struct LspSink {
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl EventSink for LspSink {
    fn emit(&self, update: Update) {
        let _ = self.tx.send(Outgoing::Update(update));
    }
    fn notice(&self, message: String) {
        let _ = self.tx.send(Outgoing::Notice(message));
    }
    fn flush(&self) -> futures::future::BoxFuture<'static, ()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.tx.send(Outgoing::Flush(tx)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = rx.await;
            }
        })
    }
}

fn start_sink(client: Client) -> Arc<LspSink> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        let mut held: Option<Outgoing> = None;
        loop {
            let o = match held.take() {
                Some(o) => o,
                None => match rx.recv().await {
                    Some(o) => o,
                    None => break,
                },
            };
            match o {
                Outgoing::Update(mut u) => {
                    // Text that piled up while the editor was being written
                    // to goes out as one update: no added latency, fewer
                    // messages when the model streams faster than the pipe.
                    if let UpdateKind::Text { delta } = &mut u.kind {
                        while let Ok(next) = rx.try_recv() {
                            match next {
                                Outgoing::Update(Update {
                                    session_id,
                                    turn_id,
                                    kind: UpdateKind::Text { delta: more },
                                }) if session_id == u.session_id && turn_id == u.turn_id => {
                                    delta.push_str(&more);
                                }
                                other => {
                                    held = Some(other);
                                    break;
                                }
                            }
                        }
                    }
                    client.send_notification::<TetherUpdate>(u).await
                }
                Outgoing::Notice(m) => {
                    // A terminal editor shows this in its status line.
                    let m = crate::term::printable(&m).into_owned();
                    client.show_message(MessageType::WARNING, m).await
                }
                Outgoing::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    });
    Arc::new(LspSink { tx })
}

/// What `initialize` decided; set once.
struct Ready {
    engine: Arc<Engine>,
    asker: Arc<LspAsker>,
    buffers: Arc<EditorBuffers>,
    /// The client declared `window.workDoneProgress`.
    progress: bool,
    /// The client takes no `tether/update`: `tether.ask` turns are written
    /// into the transcript file ([`plain`]).
    plain: bool,
    /// The client declared `window.showDocument.support`.
    show_document: bool,
    /// What to tell a person whose editor shows no approval dialog.
    advice: Arc<plain::DenialAdvice>,
}

/// The sink of one turn: everything goes to the editor, and copies go to the
/// turn's progress reporter and chat-file writer, if any.
struct TurnSink {
    base: Arc<LspSink>,
    taps: Vec<mpsc::UnboundedSender<Update>>,
    chat: Option<mpsc::UnboundedSender<chat::ChatEvent>>,
}

impl EventSink for TurnSink {
    fn emit(&self, update: Update) {
        for t in &self.taps {
            let _ = t.send(update.clone());
        }
        if let Some(c) = &self.chat {
            let _ = c.send(chat::ChatEvent::Update(update.clone()));
        }
        self.base.emit(update);
    }
    fn notice(&self, message: String) {
        if let Some(c) = &self.chat {
            let _ = c.send(chat::ChatEvent::Notice(message.clone()));
        }
        self.base.notice(message);
    }
    fn flush(&self) -> futures::future::BoxFuture<'static, ()> {
        self.base.flush()
    }
}

pub struct Backend {
    client: Client,
    sink: Arc<LspSink>,
    docs: Arc<Documents>,
    ready: OnceLock<Ready>,
    /// The session `tether.ask` continues (the last one it used).
    current_session: Mutex<Option<String>>,
    /// Sessions driven from a chat file: approvals can be answered there.
    chat_sessions: Arc<Mutex<std::collections::HashSet<String>>>,
    /// One `tether.ask` turn at a time writes the transcript.
    transcript_lock: Arc<tokio::sync::Mutex<()>>,
    env: BTreeMap<String, String>,
    /// The framing guard's size limit, set from the configuration.
    max_message: Arc<AtomicUsize>,
    /// The engine, for `serve_stdio` to stop when the input ends.
    engine_out: Arc<OnceLock<Arc<Engine>>>,
}

impl Backend {
    fn new(
        client: Client,
        env: BTreeMap<String, String>,
        max_message: Arc<AtomicUsize>,
        engine_out: Arc<OnceLock<Arc<Engine>>>,
    ) -> Backend {
        Backend {
            sink: start_sink(client.clone()),
            client,
            docs: Arc::new(Documents::default()),
            ready: OnceLock::new(),
            current_session: Mutex::new(None),
            chat_sessions: Arc::new(Mutex::new(std::collections::HashSet::new())),
            transcript_lock: Arc::new(tokio::sync::Mutex::new(())),
            env,
            max_message,
            engine_out,
        }
    }

    fn ready(&self) -> RpcResult<&Ready> {
        self.ready.get().ok_or_else(|| RpcError {
            code: ErrorCode::ServerError(-32002),
            message: "server not initialized".into(),
            data: None,
        })
    }

    fn start_error(&self, e: StartError) -> RpcError {
        let code = match e {
            StartError::EmptyPrompt => ErrorCode::InvalidParams,
            _ => ErrorCode::ServerError(REQUEST_FAILED),
        };
        let err = RpcError {
            code,
            message: e.to_string().into(),
            data: None,
        };
        if let StartError::NoModel(msg) = &e {
            let client = self.client.clone();
            let msg = format!("Tether: {msg}");
            tokio::spawn(async move { client.show_message(MessageType::ERROR, msg).await });
            return shown(err);
        }
        err
    }

    /// `tether/prompt`: runs a turn; answers when it ends. `$/cancelRequest`
    /// drops this future, and the drop guard cancels the turn.
    /// A sink for a new turn, with progress when the client shows it.
    fn turn_sink(
        &self,
        ready: &Ready,
        chat: Option<mpsc::UnboundedSender<chat::ChatEvent>>,
    ) -> Arc<TurnSink> {
        let mut taps = Vec::new();
        if ready.progress {
            taps.push(progress::start(
                self.client.clone(),
                (!ready.asker_can_show()).then(|| ready.advice.clone()),
            ));
        }
        Arc::new(TurnSink {
            base: self.sink.clone(),
            taps,
            chat,
        })
    }

    async fn prompt(&self, params: PromptParams) -> RpcResult<PromptResult> {
        let ready = self.ready()?;
        let handle = ready
            .engine
            .start_turn(params, self.turn_sink(ready, None))
            .await
            .map_err(|e| self.start_error(e))?;
        let guard = handle.cancel.clone().drop_guard();
        let result = handle.done.await;
        guard.disarm();
        result.map_err(|_| RpcError::internal_error())
    }

    /// Answers a request the framing guard found malformed.
    async fn invalid_request(&self, params: Value) -> RpcResult<Value> {
        let reason = params["reason"].as_str().unwrap_or("malformed request");
        Err(RpcError {
            code: ErrorCode::InvalidRequest,
            message: format!("invalid request: {reason}").into(),
            data: None,
        })
    }

    /// Reports a malformed message that could not be answered.
    async fn invalid_message(&self, params: Value) {
        let reason = params["reason"]
            .as_str()
            .unwrap_or("malformed message")
            .to_string();
        let client = self.client.clone();
        tokio::spawn(async move {
            client
                .log_message(
                    MessageType::ERROR,
                    format!("Tether ignored a malformed message: {reason}"),
                )
                .await
        });
    }

    async fn cancel(&self, params: CancelParams) {
        if let Ok(r) = self.ready() {
            if !r.engine.cancel_session(&params.session_id) {
                tracing::debug!("cancel for {}: nothing running", params.session_id);
            }
        }
    }

    async fn sessions(&self, params: SessionsParams) -> RpcResult<SessionsResult> {
        let ready = self.ready()?;
        let sessions = ready
            .engine
            .store()
            .list_sessions(params.query, params.limit.unwrap_or(50))
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(SessionsResult { sessions })
    }

    async fn history(&self, params: HistoryParams) -> RpcResult<HistoryResult> {
        let ready = self.ready()?;
        let messages = ready
            .engine
            .store()
            .history(params.session_id)
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(HistoryResult { messages })
    }

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

/// Marks an error the person was already shown, so it is not shown twice.
fn shown(mut e: RpcError) -> RpcError {
    e.data = Some(json!({"shown": true}));
    e
}

impl Ready {
    fn asker_can_show(&self) -> bool {
        self.asker.can_show()
    }
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

    fn code_actions(&self, ready: &Ready, p: &CodeActionParams) -> Vec<CodeActionOrCommand> {
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

fn failed(message: String) -> RpcError {
    RpcError {
        code: ErrorCode::ServerError(REQUEST_FAILED),
        message: message.into(),
        data: None,
    }
}

/// The workspace root: first workspace folder, else `rootUri`, else
/// `rootPath`, else the server's working directory.
#[allow(deprecated)]
fn workspace_root(p: &InitializeParams) -> PathBuf {
    let from_folders = p
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .and_then(|f| tools::uri_to_path(f.uri.as_str()));
    let from_uri = || {
        p.root_uri
            .as_ref()
            .and_then(|u| tools::uri_to_path(u.as_str()))
    };
    let from_path = || p.root_path.as_ref().map(PathBuf::from);
    from_folders
        .or_else(from_uri)
        .or_else(from_path)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"))
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> RpcResult<InitializeResult> {
        let root = tools::normalize(&workspace_root(&params));
        let sources = Sources {
            env: self.env.clone(),
            init_options: params.initialization_options.clone(),
            workspace_root: Some(root.clone()),
        };
        let mut cfg =
            Config::load(&sources).map_err(|e| RpcError::invalid_params(e.to_string()))?;
        cfg.tools.supervisor = std::env::current_exe().ok();
        self.max_message
            .store(cfg.max_message_bytes, Ordering::Relaxed);
        let can_show = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.show_message.as_ref())
            .is_some();
        let workspace_caps = params.capabilities.workspace.as_ref();
        let can_apply = workspace_caps.and_then(|w| w.apply_edit).unwrap_or(false);
        let document_changes = workspace_caps
            .and_then(|w| w.workspace_edit.as_ref())
            .and_then(|e| e.document_changes)
            .unwrap_or(false);
        let offered = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.clone())
            .unwrap_or_default();
        let (encoding, encoding_kind) = if offered.contains(&PositionEncodingKind::UTF8) {
            (Encoding::Utf8, PositionEncodingKind::UTF8)
        } else if offered.contains(&PositionEncodingKind::UTF32) {
            (Encoding::Utf32, PositionEncodingKind::UTF32)
        } else {
            (Encoding::Utf16, PositionEncodingKind::UTF16)
        };
        let can_progress = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false);
        let buffers = Arc::new(EditorBuffers {
            docs: self.docs.clone(),
            client: self.client.clone(),
            can_apply,
            document_changes,
            encoding,
        });
        let plain = !plain::takes_updates(
            &serde_json::to_value(&params.capabilities).unwrap_or(Value::Null),
        );
        let show_document = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.show_document.as_ref())
            .is_some_and(|s| s.support);
        let advice = Arc::new(plain::DenialAdvice::new(
            &cfg,
            plain::EditorKind::from_client_name(
                params.client_info.as_ref().map(|c| c.name.as_str()),
            ),
        ));
        let store = Store::open(&cfg.data_dir);
        let asker = LspAsker::start(
            self.client.clone(),
            can_show,
            self.chat_sessions.clone(),
            advice.clone(),
        );
        let gate = Gate::new(
            cfg.approval.clone(),
            cfg.delegation.approvals,
            asker.clone(),
            store.clone(),
            vec![root.clone()],
        );
        let key = cfg.api_key.as_ref().map(|k| k.expose().to_string());
        let redactor = Redactor::from_env(
            &self.env,
            &key.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        for w in &cfg.warnings {
            tracing::warn!("{w}");
            let _ = self.sink.tx.send(Outgoing::Notice(format!("Tether: {w}")));
        }
        for w in [store.take_notice(), store.take_warning()]
            .into_iter()
            .flatten()
        {
            let _ = self.sink.tx.send(Outgoing::Notice(w));
        }
        let model = ModelClient::from_config(&cfg);
        if let Err(e) = &model {
            tracing::info!("model not configured yet: {e}");
        }
        tracing::info!(
            "initialized: root {}, approvals by dialog: {can_show}, data {}",
            root.display(),
            cfg.data_dir.display()
        );
        // MCP servers start now, in the background: the first turn finds
        // them up instead of paying their start-up.
        let mcp = crate::mcp::McpManager::new(crate::mcp::Options::from_config(&cfg, root.clone()));
        mcp.start_background();
        let engine = Engine::new(EngineParts {
            config: Arc::new(cfg),
            store,
            model,
            gate,
            buffers: buffers.clone(),
            root,
            redactor: Arc::new(redactor),
            mcp,
        });
        let _ = self.engine_out.set(engine.clone());
        let _ = self.ready.set(Ready {
            engine,
            asker,
            buffers,
            progress: can_progress,
            plain,
            show_document,
            advice,
        });
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(encoding_kind),
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::FULL,
                )),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: COMMANDS.iter().map(|c| c.to_string()).collect(),
                    work_done_progress_options: Default::default(),
                }),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "tether".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn code_action(&self, p: CodeActionParams) -> RpcResult<Option<CodeActionResponse>> {
        let ready = self.ready()?;
        let actions = self.code_actions(ready, &p);
        Ok((!actions.is_empty()).then_some(actions))
    }

    /// Stops every turn and answers once they have ended — their commands
    /// killed, the kill grace waited out — or after a bounded wait.
    async fn shutdown(&self) -> RpcResult<()> {
        if let Ok(r) = self.ready() {
            let within = stop_within(r.engine.config());
            if !r.engine.stop(within).await {
                tracing::warn!("shutdown: some turns had not ended after {within:?}");
            }
        }
        Ok(())
    }

    async fn did_open(&self, p: DidOpenTextDocumentParams) {
        if let Some(path) = tools::uri_to_path(p.text_document.uri.as_str()) {
            self.docs.open(
                path,
                p.text_document.uri.as_str().to_string(),
                p.text_document.version,
                p.text_document.text,
            );
        }
    }

    async fn did_change(&self, p: DidChangeTextDocumentParams) {
        if let Some(path) = tools::uri_to_path(p.text_document.uri.as_str()) {
            // Full sync: the last change holds the whole text.
            if let Some(change) = p.content_changes.into_iter().last() {
                if change.range.is_none() {
                    self.docs.change(
                        &path,
                        p.text_document.uri.as_str().to_string(),
                        p.text_document.version,
                        change.text,
                    );
                } else {
                    tracing::warn!(
                        "ignored an incremental change (the server asked for full sync)"
                    );
                }
            }
        }
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {
        // Nothing to do: the mirror already has the text; the disk now agrees.
    }

    async fn did_close(&self, p: DidCloseTextDocumentParams) {
        if let Some(path) = tools::uri_to_path(p.text_document.uri.as_str()) {
            self.docs.close(&path);
        }
    }

    /// Runs a command; a failure reaches the person as a message too (a
    /// plain editor only logs the error reply).
    async fn execute_command(&self, p: ExecuteCommandParams) -> RpcResult<Option<Value>> {
        let command = p.command.clone();
        let result = self.run_command(p).await;
        if let Err(e) = &result {
            if e.data != Some(json!({"shown": true})) {
                let client = self.client.clone();
                let msg = crate::term::printable_line(&format!("Tether: {command}: {}", e.message))
                    .into_owned();
                tokio::spawn(async move { client.show_message(MessageType::ERROR, msg).await });
            }
        }
        result
    }
}

impl Backend {
    async fn run_command(&self, p: ExecuteCommandParams) -> RpcResult<Option<Value>> {
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

/// Points fd 1 at stderr and returns a private duplicate of the original
/// stdout for the protocol, so stray prints cannot corrupt the framing.
pub(crate) fn reserve_stdout() -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain fd syscalls; the duplicate is owned by the returned File.
    unsafe {
        let proto = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if proto < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::dup2(2, 1) < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(proto);
            return Err(e);
        }
        Ok(std::fs::File::from_raw_fd(proto))
    }
}

/// How long stopping waits for turns: the kill grace, the supervisor's
/// clean-up, and a margin.
fn stop_within(cfg: &Config) -> Duration {
    Duration::from_millis(cfg.tools.kill_grace_ms) + Duration::from_millis(700)
}

/// `tether lsp`: serve on stdin/stdout until `exit` or EOF. Either ends every
/// turn: they are cancelled and their commands killed before the process
/// exits (the editor is gone: nobody could see or stop them).
pub async fn serve_stdio() -> std::process::ExitCode {
    crate::exec::init_tracing("info");
    let out = match reserve_stdout() {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => {
            tracing::error!("cannot reserve stdout for the protocol: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    // The size limit is needed before `initialize`: from the config file
    // now, from initializationOptions once they arrive.
    let early = Config::load(&Sources {
        env: env.clone(),
        ..Default::default()
    });
    let max_message = Arc::new(AtomicUsize::new(
        early
            .map(|c| c.max_message_bytes)
            .unwrap_or(framing::DEFAULT_MAX_MESSAGE_BYTES),
    ));
    let engine: Arc<OnceLock<Arc<Engine>>> = Arc::new(OnceLock::new());
    let closed = tokio_util::sync::CancellationToken::new();
    let input = framing::guard(tokio::io::stdin(), max_message.clone(), closed.clone());
    let (service, socket) = LspService::build({
        let (max_message, engine) = (max_message.clone(), engine.clone());
        move |client| Backend::new(client, env, max_message, engine)
    })
    .custom_method("tether/prompt", Backend::prompt)
    .custom_method("tether/cancel", Backend::cancel)
    .custom_method("tether/sessions", Backend::sessions)
    .custom_method("tether/history", Backend::history)
    .custom_method(framing::INVALID_REQUEST, Backend::invalid_request)
    .custom_method(framing::INVALID_MESSAGE, Backend::invalid_message)
    .finish();
    // Prompts hold a slot while their turn runs; allow many so replies from
    // the editor are never stuck behind them.
    let serve = Server::new(input, out, socket)
        .concurrency_level(256)
        .serve(service);
    // `serve` alone would wait for every running `tether/prompt` to finish.
    tokio::select! {
        _ = serve => tracing::info!("protocol stream closed; stopping"),
        _ = closed.cancelled() => tracing::info!("the editor closed the input or sent exit; stopping"),
    }
    if let Some(engine) = engine.get() {
        let within = stop_within(engine.config());
        if !engine.stop(within).await {
            tracing::warn!("some turns had not ended after {within:?}; their commands' supervisors finish the clean-up");
        }
    }
    std::process::ExitCode::SUCCESS
}
