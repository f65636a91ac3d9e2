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
mod commands;
mod convert;
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
use crate::engine::{Assembled, Engine, EventSink, Frontend, StartError};
use crate::gate::{Answer, DenyCause};
use crate::protocol::{
    CancelParams, ContextRef, HistoryParams, HistoryResult, LineRange, Pos, PromptParams,
    PromptResult, SessionsParams, SessionsResult, Update, UpdateKind,
};
use crate::tools::{self, Buffers};
use asker::LspAsker;
use convert::{failed, shown, workspace_root};
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
}

impl Ready {
    fn asker_can_show(&self) -> bool {
        self.asker.can_show()
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> RpcResult<InitializeResult> {
        let root = crate::engine::workspace_root(&workspace_root(&params));
        let sources = Sources {
            env: self.env.clone(),
            init_options: params.initialization_options.clone(),
            workspace_root: Some(root.clone()),
        };
        let cfg = Config::load(&sources).map_err(|e| RpcError::invalid_params(e.to_string()))?;
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
        let caps_json = serde_json::to_value(&params.capabilities).unwrap_or(Value::Null);
        let buffers = Arc::new(EditorBuffers {
            docs: self.docs.clone(),
            client: self.client.clone(),
            can_apply,
            document_changes,
            encoding,
            saves_agent_edits: plain::saves_agent_edits(&caps_json),
        });
        let plain = !plain::takes_updates(&caps_json);
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
        let asker = LspAsker::start(
            self.client.clone(),
            can_show,
            self.chat_sessions.clone(),
            advice.clone(),
        );
        for w in &cfg.warnings {
            tracing::warn!("{w}");
            let _ = self.sink.tx.send(Outgoing::Notice(format!("Tether: {w}")));
        }
        let data_dir = cfg.data_dir.clone();
        let Assembled { engine, notices } = Engine::assemble(
            cfg,
            Frontend {
                root: root.clone(),
                env: self.env.clone(),
                asker: asker.clone(),
                buffers: buffers.clone(),
                tool_sources: Vec::new(),
                store: None,
            },
        );
        for w in notices {
            let _ = self.sink.tx.send(Outgoing::Notice(w));
        }
        tracing::info!(
            "initialized: root {}, approvals by dialog: {can_show}, data {}",
            root.display(),
            data_dir.display()
        );
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
