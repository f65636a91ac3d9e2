//! `tether acp`: the Agent Client Protocol (v1) frontend — Zed, JetBrains
//! IDEs, Neovim (codecompanion, avante), Emacs agent-shell and other ACP
//! clients host Tether through it. Newline-delimited JSON-RPC over stdio
//! ([`conn`]); the same engine, gate, scheduler and store as `tether lsp`.
//!
//! - `initialize`: protocol version 1, `loadSession`, embedded context in
//!   prompts; the client's `fs` capabilities are remembered.
//! - `session/new`: the `cwd` is the workspace root (one engine per root and
//!   set of MCP servers, one store for all); the client's `mcpServers`
//!   (stdio, streamable HTTP) are started for the session's engine ([`mcp`]).
//! - `session/load`: the stored conversation is replayed as updates.
//! - `session/prompt`: a turn; its events go out as `session/update`s
//!   ([`map`]) and the response carries the stop reason.
//! - `session/cancel`: the turn is cancelled and every pending permission
//!   request of the session resolves as a deny.
//! - Approvals ([`AcpAsker`]): `session/request_permission`; only the option
//!   ids offered allow anything.
//! - Files ([`ClientFiles`]): through `fs/read_text_file` and
//!   `fs/write_text_file` when the client offers them (after the gate).
//!
//! **Invariants:** ACP types stay in this module — the engine sees an
//! [`EventSink`], an [`Asker`] and a [`Buffers`]; only the writer task
//! touches the real stdout (fd 1 points at stderr); handlers never block the
//! reader (each request runs in its own task); when stdin ends, every turn
//! is cancelled and its commands killed before the process exits.

pub mod conn;
pub mod map;
mod mcp;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol_schema as acp;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Sources};
use crate::engine::{Assembled, Engine, EventSink, Frontend};
use crate::gate::{Answer, Asker, DenyCause, Question};
use crate::protocol::{Update, UpdateKind};
use crate::store::Store;
use crate::tools::Buffers;
use conn::{ClientFail, Conn, Incoming};

/// What the client said it can do, from `initialize`.
#[derive(Debug, Clone, Copy, Default)]
struct ClientCaps {
    read: bool,
    write: bool,
}

/// One ACP session: its engine (by workspace root) and what the frontend
/// tracks for it.
struct Session {
    engine: Arc<Engine>,
    root: PathBuf,
    calls: map::Calls,
    /// Cancelled by `session/cancel`: every pending permission request of
    /// the session resolves as a deny. Renewed for each prompt.
    cancel: CancellationToken,
}

#[derive(Default)]
struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        self.map.lock().ok()?.get_mut(id).map(f)
    }
}

struct Server {
    conn: Arc<Conn>,
    /// Read when a file is touched, so an engine made before `initialize`
    /// still follows what the client said.
    caps: Arc<Mutex<ClientCaps>>,
    sessions: Arc<Sessions>,
    /// One engine per workspace root and set of MCP servers the client
    /// gave (sessions that give the same servers share their processes).
    engines: tokio::sync::Mutex<HashMap<(PathBuf, String), Arc<Engine>>>,
    /// The one store every engine shares (one writer thread per file).
    store: Mutex<Option<Store>>,
}

fn err(e: acp::Error, why: impl Into<String>) -> acp::Error {
    e.data(json!(why.into()))
}

fn params<T: serde::de::DeserializeOwned>(p: Value) -> Result<T, acp::Error> {
    serde_json::from_value(p).map_err(|e| err(acp::Error::invalid_params(), e.to_string()))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, acp::Error> {
    serde_json::to_value(v).map_err(|e| err(acp::Error::internal_error(), e.to_string()))
}

impl Server {
    async fn handle_request(self: Arc<Self>, method: &str, p: Value) -> Result<Value, acp::Error> {
        match method {
            m if m == acp::AGENT_METHOD_NAMES.initialize => self.initialize(params(p)?),
            m if m == acp::AGENT_METHOD_NAMES.authenticate => Ok(json!({})),
            m if m == acp::AGENT_METHOD_NAMES.session_new => self.new_session(params(p)?).await,
            m if m == acp::AGENT_METHOD_NAMES.session_load => self.load_session(params(p)?).await,
            m if m == acp::AGENT_METHOD_NAMES.session_prompt => self.prompt(params(p)?).await,
            _ => Err(err(
                acp::Error::method_not_found(),
                format!("{method} is not supported by tether acp"),
            )),
        }
    }

    fn handle_notification(&self, method: &str, p: Value) {
        if method == acp::AGENT_METHOD_NAMES.session_cancel {
            match serde_json::from_value::<acp::CancelNotification>(p) {
                Ok(c) => self.cancel(&c.session_id.0),
                Err(e) => tracing::warn!("unreadable session/cancel: {e}"),
            }
        } else {
            tracing::debug!("notification {method} ignored");
        }
    }

    fn initialize(&self, req: acp::InitializeRequest) -> Result<Value, acp::Error> {
        let fs = &req.client_capabilities.fs;
        if let Ok(mut c) = self.caps.lock() {
            *c = ClientCaps {
                read: fs.read_text_file,
                write: fs.write_text_file,
            };
        }
        // Version 1 is the one this agent speaks; a client asking for
        // another gets 1 and decides.
        let resp = acp::InitializeResponse::new(acp::ProtocolVersion::V1)
            .agent_capabilities(
                acp::AgentCapabilities::new()
                    .load_session(true)
                    .prompt_capabilities(
                        acp::PromptCapabilities::new()
                            .image(false)
                            .audio(false)
                            .embedded_context(true),
                    )
                    // stdio (required) and streamable HTTP; not the old SSE transport.
                    .mcp_capabilities(acp::McpCapabilities::new().http(true).sse(false)),
            )
            .agent_info(
                acp::Implementation::new("tether", env!("CARGO_PKG_VERSION"))
                    .title("Tether".to_string()),
            );
        to_value(&resp)
    }

    /// The workspace root from a session's `cwd`: absolute, an existing
    /// directory.
    fn root_of(cwd: &Path) -> Result<PathBuf, acp::Error> {
        if !cwd.is_absolute() {
            return Err(err(
                acp::Error::invalid_params(),
                format!("cwd must be an absolute path, not {}", cwd.display()),
            ));
        }
        if !cwd.is_dir() {
            return Err(err(
                acp::Error::invalid_params(),
                format!("cwd {} is not a directory", cwd.display()),
            ));
        }
        Ok(crate::tools::normalize(cwd))
    }

    async fn engine_for(
        self: &Arc<Self>,
        root: &Path,
        mcp: &[acp::McpServer],
    ) -> Result<Arc<Engine>, acp::Error> {
        let servers = mcp::servers(mcp);
        let key = (root.to_path_buf(), mcp::key(&servers));
        let mut engines = self.engines.lock().await;
        if let Some(e) = engines.get(&key) {
            return Ok(e.clone());
        }
        let shared = self.store.lock().ok().and_then(|s| s.clone());
        let root2 = root.to_path_buf();
        let built = tokio::task::spawn_blocking(move || load(&root2, shared))
            .await
            .map_err(|e| err(acp::Error::internal_error(), e.to_string()))?
            .map_err(|e| err(acp::Error::internal_error(), e))?;
        let (mut cfg, store) = built;
        // The client's servers join the user's own (same trust: the person
        // configured both); on a name clash the client's wins.
        for (name, server) in servers {
            cfg.mcp_servers.insert(name, server);
        }
        if let Ok(mut s) = self.store.lock() {
            if s.is_none() {
                *s = Some(store.clone());
            }
        }
        let engine = build_engine(
            cfg,
            store,
            root.to_path_buf(),
            Arc::new(AcpAsker {
                conn: self.conn.clone(),
                sessions: self.sessions.clone(),
            }),
            Arc::new(ClientFiles {
                conn: self.conn.clone(),
                caps: self.caps.clone(),
            }),
        );
        engines.insert(key, engine.clone());
        Ok(engine)
    }

    fn add_session(&self, id: &str, engine: Arc<Engine>, root: PathBuf) {
        if let Ok(mut m) = self.sessions.map.lock() {
            m.insert(
                id.to_string(),
                Session {
                    engine,
                    root,
                    calls: map::Calls::default(),
                    cancel: CancellationToken::new(),
                },
            );
        }
    }

    fn announce_commands(&self, id: &str, engine: &Engine) {
        let update = acp::SessionUpdate::AvailableCommandsUpdate(
            acp::AvailableCommandsUpdate::new(map::commands(&engine.config().commands)),
        );
        self.conn.notify(
            acp::CLIENT_METHOD_NAMES.session_update,
            &acp::SessionNotification::new(id.to_string(), update),
        );
    }

    async fn new_session(
        self: &Arc<Self>,
        req: acp::NewSessionRequest,
    ) -> Result<Value, acp::Error> {
        let root = Self::root_of(&req.cwd)?;
        let engine = self.engine_for(&root, &req.mcp_servers).await?;
        let id = engine.new_session(None, "", None).into_string();
        self.add_session(&id, engine.clone(), root);
        let resp = to_value(&acp::NewSessionResponse::new(id.clone()))?;
        // After the response (the client learns the id first).
        let me = self.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            me.announce_commands(&id, &engine);
        });
        Ok(resp)
    }

    async fn load_session(
        self: &Arc<Self>,
        req: acp::LoadSessionRequest,
    ) -> Result<Value, acp::Error> {
        let root = Self::root_of(&req.cwd)?;
        let engine = self.engine_for(&root, &req.mcp_servers).await?;
        let id = req.session_id.0.to_string();
        let history = engine
            .store()
            .history(id.clone())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NoSession(_) => err(
                    acp::Error::resource_not_found(None),
                    format!("no session {id}"),
                ),
                e => err(acp::Error::internal_error(), e.to_string()),
            })?;
        self.add_session(&id, engine.clone(), root.clone());
        for u in map::replay(&root, &history) {
            self.conn.notify(
                acp::CLIENT_METHOD_NAMES.session_update,
                &acp::SessionNotification::new(id.clone(), u),
            );
        }
        self.announce_commands(&id, &engine);
        to_value(&acp::LoadSessionResponse::new())
    }

    async fn prompt(self: &Arc<Self>, req: acp::PromptRequest) -> Result<Value, acp::Error> {
        let id = req.session_id.0.to_string();
        let Some((engine, root, cancel)) = self.sessions.with(&id, |s| {
            s.cancel = CancellationToken::new();
            (s.engine.clone(), s.root.clone(), s.cancel.clone())
        }) else {
            return Err(err(
                acp::Error::resource_not_found(None),
                format!("no session {id}; start one with session/new or session/load"),
            ));
        };
        let params = map::prompt(&id, &req.prompt);
        let sink = Arc::new(AcpSink {
            conn: self.conn.clone(),
            sessions: self.sessions.clone(),
            engine: Arc::downgrade(&engine),
            session_id: id.clone(),
            root,
        });
        let handle = engine
            .start_turn(params, sink)
            .await
            .map_err(|e| err(acp::Error::invalid_params(), e.to_string()))?;
        // A cancel that arrived before the turn was registered.
        if cancel.is_cancelled() {
            handle.cancel.cancel();
        }
        let result = handle.done.await.map_err(|_| {
            err(
                acp::Error::internal_error(),
                "the turn ended without a result",
            )
        })?;
        if cancel.is_cancelled() {
            return to_value(&acp::PromptResponse::new(acp::StopReason::Cancelled));
        }
        match map::stop_reason(result.stop_reason) {
            Some(r) => to_value(&acp::PromptResponse::new(r)),
            None => Err(err(
                acp::Error::internal_error(),
                result.error.unwrap_or_else(|| "the turn failed".into()),
            )),
        }
    }

    fn cancel(&self, id: &str) {
        let engine = self.sessions.with(id, |s| {
            s.cancel.cancel();
            s.engine.clone()
        });
        match engine {
            Some(e) => {
                e.cancel_session(id);
            }
            None => tracing::debug!("session/cancel for unknown session {id}"),
        }
    }

    /// Stops every engine: turns cancelled, their commands killed.
    async fn stop(&self) {
        let engines: Vec<Arc<Engine>> = self.engines.lock().await.values().cloned().collect();
        for e in engines {
            let within =
                Duration::from_millis(e.config().tools.kill_grace_ms) + Duration::from_millis(700);
            if !e.stop(within).await {
                tracing::warn!("some turns had not ended after {within:?}");
            }
        }
    }
}

/// Loads the config for `root` and opens the store (or reuses `shared`).
/// Blocking: file reads and SQLite.
fn load(root: &Path, shared: Option<Store>) -> Result<(Config, Store), String> {
    let mut sources = Sources::from_process_env();
    sources.workspace_root = Some(root.to_path_buf());
    let mut cfg = Config::load(&sources).map_err(|e| e.to_string())?;
    cfg.tools.supervisor = std::env::current_exe().ok();
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let store = match shared {
        Some(s) => s,
        None => {
            let s = Store::open(&cfg.data_dir);
            for n in [s.take_notice(), s.take_warning()].into_iter().flatten() {
                tracing::warn!("{n}");
            }
            s
        }
    };
    Ok((cfg, store))
}

/// One engine for a workspace root and set of MCP servers, wired like every
/// frontend's (`Engine::assemble`: the OS sandbox, the supervisor, the MCP
/// servers started in the background), sharing the connection's store.
fn build_engine(
    cfg: Config,
    store: Store,
    root: PathBuf,
    asker: Arc<dyn Asker>,
    buffers: Arc<dyn Buffers>,
) -> Arc<Engine> {
    let Assembled { engine, notices } = Engine::assemble(
        cfg,
        Frontend {
            root,
            env: std::env::vars().collect(),
            asker,
            buffers,
            tool_sources: Vec::new(),
            store: Some(store),
        },
    );
    for n in notices {
        tracing::warn!("{n}");
    }
    engine
}

/// A turn's events as `session/update` notifications.
struct AcpSink {
    conn: Arc<Conn>,
    sessions: Arc<Sessions>,
    engine: std::sync::Weak<Engine>,
    session_id: String,
    root: PathBuf,
}

impl AcpSink {
    fn send(&self, u: acp::SessionUpdate) {
        self.conn.notify(
            acp::CLIENT_METHOD_NAMES.session_update,
            &acp::SessionNotification::new(self.session_id.clone(), u),
        );
    }
}

impl EventSink for AcpSink {
    fn emit(&self, u: Update) {
        if let UpdateKind::Usage {
            prompt_tokens,
            completion_tokens,
        } = u.kind
        {
            // ACP's usage needs the window; unknown, nothing is claimed.
            if let Some(w) = self.engine.upgrade().and_then(|e| e.context_window()) {
                self.send(map::usage(prompt_tokens, completion_tokens, w));
            }
            return;
        }
        let updates = self
            .sessions
            .with(&self.session_id, |s| {
                map::updates(&self.root, &mut s.calls, &u.kind)
            })
            .unwrap_or_else(|| map::updates(&self.root, &mut map::Calls::default(), &u.kind));
        for x in updates {
            self.send(x);
        }
    }

    fn notice(&self, message: String) {
        self.send(acp::SessionUpdate::AgentMessageChunk(
            acp::ContentChunk::new(acp::ContentBlock::Text(acp::TextContent::new(format!(
                "\n\n_{message}_\n\n"
            )))),
        ));
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        self.conn.flush()
    }
}

/// Approvals through `session/request_permission`. Every doubt is a deny:
/// a cancelled outcome, an option id that was not offered, an error reply,
/// a client that went away, the question's timeout, a cancelled turn or
/// `session/cancel`.
struct AcpAsker {
    conn: Arc<Conn>,
    sessions: Arc<Sessions>,
}

impl Asker for AcpAsker {
    fn ask(&self, q: Question) -> BoxFuture<'static, Answer> {
        let conn = self.conn.clone();
        let found = self.sessions.with(&q.session_id, |s| {
            (
                map::permission_call(&s.root, &s.calls, &q),
                s.cancel.clone(),
            )
        });
        Box::pin(async move {
            let Some((call, session_cancel)) = found else {
                return Answer::Deny(DenyCause::NoCapability(format!(
                    "session {} is not open in this ACP client",
                    q.session_id
                )));
            };
            let req = acp::RequestPermissionRequest::new(
                q.session_id.clone(),
                call,
                map::permission_options(),
            );
            let ask = conn.request(acp::CLIENT_METHOD_NAMES.session_request_permission, &req);
            tokio::select! {
                r = ask => match r {
                    Ok(v) => map::answer_from(&v),
                    Err(ClientFail::Gone) => Answer::Deny(DenyCause::ClientGone),
                    Err(ClientFail::Error(e)) => Answer::Deny(DenyCause::ClientError(e)),
                },
                _ = q.cancel.cancelled() => Answer::Deny(DenyCause::Cancelled),
                _ = session_cancel.cancelled() => Answer::Deny(DenyCause::Cancelled),
                _ = tokio::time::sleep(q.timeout) => Answer::Deny(DenyCause::TimedOut),
            }
        })
    }
}

/// Files through the client (`fs/read_text_file`, `fs/write_text_file`),
/// for what it advertised; the disk otherwise. Nothing is open as an LSP
/// buffer here: the client's unsaved text comes with the read.
struct ClientFiles {
    conn: Arc<Conn>,
    caps: Arc<Mutex<ClientCaps>>,
}

impl ClientFiles {
    fn caps(&self) -> ClientCaps {
        self.caps.lock().map(|c| *c).unwrap_or_default()
    }
}

impl Buffers for ClientFiles {
    fn open_text(&self, _path: &Path) -> Option<String> {
        None
    }

    fn reads_through(&self) -> bool {
        self.caps().read
    }

    fn read_through(
        &self,
        session_id: &str,
        path: &Path,
    ) -> BoxFuture<'static, Result<String, String>> {
        let conn = self.conn.clone();
        let req = acp::ReadTextFileRequest::new(session_id.to_string(), path.to_path_buf());
        Box::pin(async move {
            let v = conn
                .request(acp::CLIENT_METHOD_NAMES.fs_read_text_file, &req)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::from_value::<acp::ReadTextFileResponse>(v)
                .map(|r| r.content)
                .map_err(|e| format!("unreadable fs/read_text_file response: {e}"))
        })
    }

    fn writes_through(&self) -> bool {
        self.caps().write
    }

    fn write_through(
        &self,
        session_id: &str,
        path: &Path,
        text: &str,
    ) -> BoxFuture<'static, Result<(), String>> {
        let conn = self.conn.clone();
        let req = acp::WriteTextFileRequest::new(session_id.to_string(), path.to_path_buf(), text);
        Box::pin(async move {
            conn.request(acp::CLIENT_METHOD_NAMES.fs_write_text_file, &req)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// `tether acp`: serve ACP on stdin/stdout until stdin ends; then every
/// turn is cancelled and its commands killed before the process exits.
pub async fn serve_stdio() -> std::process::ExitCode {
    let out = match crate::lsp::reserve_stdout() {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => {
            tracing::error!("cannot reserve stdout for the protocol: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    serve(tokio::io::stdin(), out).await;
    std::process::ExitCode::SUCCESS
}

/// Serves ACP on `input`/`output` until `input` ends.
pub async fn serve<R, W>(input: R, output: W)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = Conn::start(output);
    let server = Arc::new(Server {
        conn: conn.clone(),
        caps: Arc::new(Mutex::new(ClientCaps::default())),
        sessions: Arc::new(Sessions::default()),
        engines: tokio::sync::Mutex::new(HashMap::new()),
        store: Mutex::new(None),
    });
    let tasks = tokio_util::task::TaskTracker::new();
    conn.read_loop(input, |msg| match msg {
        Incoming::Request { id, method, params } => {
            let server = server.clone();
            tasks.spawn(async move {
                let r = server.clone().handle_request(&method, params).await;
                server.conn.respond(id, r);
            });
        }
        Incoming::Notification { method, params } => server.handle_notification(&method, params),
    })
    .await;
    tracing::info!("the client closed the input; stopping");
    server.stop().await;
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tasks.wait()).await;
    conn.flush().await;
}
