//! The engine: sessions and turns. It owns the conversation loop (model →
//! tools → model), the tool scheduler and the cancellation tree
//! (engine → turn → tool calls → processes). It reports through an
//! [`EventSink`] and reaches a person only through the [`Gate`] it was given.
//!
//! **Architecture invariant:** the engine knows nothing about LSP. A frontend
//! (the LSP server, `tether exec`) plugs in by providing a sink, a gate and
//! the editor's buffers.

mod assemble;
mod calls;
pub mod context;
pub mod instructions;
mod repeat;
mod scheduler;
pub mod slash;
mod subagents;
mod turn;

pub use assemble::{workspace_root, Assembled, Frontend};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gate::Gate;
use crate::model::ModelClient;
use crate::protocol::{PromptParams, PromptResult, SessionId, TurnId, Update};
use crate::store::{Store, Write};
use crate::tools::{Buffers, Redactor, ToolSource};

/// Where the engine reports. Implementations must not block.
pub trait EventSink: Send + Sync {
    /// A `tether/update`, in order.
    fn emit(&self, update: Update);
    /// Something the person must see (e.g. history is not being saved).
    fn notice(&self, message: String);
    /// Resolves once everything emitted so far has been handed to the wire.
    fn flush(&self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Errors that prevent a turn from starting; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    NoModel(String),
    #[error("a turn is already running in session {0}; cancel it first (tether/cancel) or wait for it to end")]
    Busy(String),
    #[error("no session {0}; omit sessionId to start a new one")]
    UnknownSession(String),
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("{0}")]
    BadCommand(String),
}

/// What the engine is built from. Everything is passed in; nothing is global.
pub struct EngineParts {
    pub config: Arc<Config>,
    pub store: Store,
    /// `Err` holds the message that says what to configure.
    pub model: Result<ModelClient, String>,
    pub gate: Gate,
    pub buffers: Arc<dyn Buffers>,
    pub root: PathBuf,
    pub redactor: Arc<Redactor>,
    /// Tools contributed at run time (e.g. a tool server's), added to every
    /// agent's registry after the built-in ones.
    pub tool_sources: Vec<Arc<dyn ToolSource>>,
    /// The MCP tool servers (`McpManager::empty()` for none).
    pub mcp: crate::mcp::McpManager,
}

struct RunningTurn {
    turn_id: String,
    cancel: CancellationToken,
}

/// A started turn: wait on `done` for its result; cancel with `cancel`.
pub struct TurnHandle {
    pub session_id: String,
    pub turn_id: String,
    pub cancel: CancellationToken,
    pub done: oneshot::Receiver<PromptResult>,
}

pub struct Engine {
    parts: EngineParts,
    /// Parent of every turn's token: cancelling it stops everything.
    root_cancel: CancellationToken,
    running: Mutex<HashMap<String, RunningTurn>>,
    /// Every turn's task, so that stopping can wait for them to end (and for
    /// their commands to be killed).
    tasks: tokio_util::task::TaskTracker,
    /// What is known of each model's context window.
    windows: context::Windows,
}

impl Engine {
    pub fn new(parts: EngineParts) -> Arc<Engine> {
        Arc::new(Engine {
            parts,
            root_cancel: CancellationToken::new(),
            running: Mutex::new(HashMap::new()),
            tasks: tokio_util::task::TaskTracker::new(),
            windows: context::Windows::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.parts.config
    }

    pub fn store(&self) -> &Store {
        &self.parts.store
    }

    pub fn mcp(&self) -> &crate::mcp::McpManager {
        &self.parts.mcp
    }

    pub fn root(&self) -> &std::path::Path {
        &self.parts.root
    }

    /// The model's context window as far as it is known: learned from an
    /// overflow, configured, or discovered from the server.
    pub fn context_window(&self) -> Option<u64> {
        let model = self.parts.model.as_ref().ok()?.model().to_string();
        self.windows
            .get(&model)
            .effective(self.parts.config.model_context_window)
    }

    /// Starts a turn in a new or existing session. Long work runs in a
    /// spawned task; this returns at once.
    pub async fn start_turn(
        self: &Arc<Self>,
        mut params: PromptParams,
        sink: Arc<dyn EventSink>,
    ) -> Result<TurnHandle, StartError> {
        let mut compact_only = false;
        match slash::resolve(&params.text, &self.parts.config.commands)
            .map_err(StartError::BadCommand)?
        {
            slash::Resolved::Compact => {
                if params.session_id.as_deref().unwrap_or("").is_empty() {
                    return Ok(immediate(
                        String::new(),
                        "Nothing to compact: /compact works in a session that has a conversation."
                            .into(),
                        sink,
                    ));
                }
                compact_only = true;
            }
            slash::Resolved::Prompt(text) => params.text = text,
            slash::Resolved::New(Some(text)) => {
                params.session_id = None;
                params.text = text;
            }
            slash::Resolved::New(None) => {
                let id = self.new_session(None, "", None);
                return Ok(immediate(
                    id.into_string(),
                    "Started a new session.".into(),
                    sink,
                ));
            }
            slash::Resolved::Help => {
                let sid = params.session_id.clone().unwrap_or_default();
                return Ok(immediate(
                    sid,
                    slash::help(&self.parts.config.commands),
                    sink,
                ));
            }
            slash::Resolved::Cancel => {
                let sid = params.session_id.clone().unwrap_or_default();
                let text = if self.cancel_session(&sid) {
                    "Cancelled the running turn."
                } else {
                    "Nothing is running in this session."
                };
                return Ok(immediate(sid, text.into(), sink));
            }
            slash::Resolved::Sessions(query) => {
                let sid = params.session_id.clone().unwrap_or_default();
                let text = match self.parts.store.list_sessions(query, 20).await {
                    Ok(list) if list.is_empty() => "No sessions found.".to_string(),
                    Ok(list) => list
                        .iter()
                        .map(|s| {
                            format!(
                                "- {} — {} ({} messages, {})",
                                s.id, s.title, s.message_count, s.updated_at
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Err(e) => format!("Cannot list sessions: {e}"),
                };
                return Ok(immediate(sid, text, sink));
            }
        }
        let model = self.parts.model.clone().map_err(StartError::NoModel)?;
        if params.text.trim().is_empty() {
            return Err(StartError::EmptyPrompt);
        }
        let session_id = match params.session_id.as_deref().filter(|s| !s.is_empty()) {
            Some(id) => {
                let known = self.is_running_or_known(id).await;
                if !known {
                    return Err(StartError::UnknownSession(id.to_string()));
                }
                id.to_string()
            }
            None => self
                .new_session(None, &crate::store::title_from_prompt(&params.text), None)
                .into_string(),
        };
        let turn_id = TurnId::mint().into_string();
        let cancel = self.root_cancel.child_token();
        {
            let mut running = self
                .running
                .lock()
                .map_err(|_| StartError::Busy(session_id.clone()))?;
            if running.contains_key(&session_id) {
                return Err(StartError::Busy(session_id));
            }
            running.insert(
                session_id.clone(),
                RunningTurn {
                    turn_id: turn_id.clone(),
                    cancel: cancel.clone(),
                },
            );
        }
        if let Some(w) = self.parts.store.take_warning() {
            sink.notice(w);
        }
        let (tx, rx) = oneshot::channel();
        let engine = self.clone();
        let job = turn::Turn {
            engine: engine.clone(),
            model,
            session_id: session_id.clone(),
            turn_id: turn_id.clone(),
            cancel: cancel.clone(),
            sink,
            gate: self.parts.gate.clone(),
            max_iterations: self.parts.config.max_iterations,
            compact_only,
        };
        let sid = session_id.clone();
        let tid = turn_id.clone();
        self.tasks.spawn(async move {
            let result = job.run(params).await;
            if let Ok(mut running) = engine.running.lock() {
                if running.get(&sid).is_some_and(|r| r.turn_id == tid) {
                    running.remove(&sid);
                }
            }
            let _ = tx.send(result);
        });
        Ok(TurnHandle {
            session_id,
            turn_id,
            cancel,
            done: rx,
        })
    }

    /// Begins a session: mints its id and stores it. The one place a session
    /// id comes from, whatever starts the session (a prompt, `/new`,
    /// `tether.newSession`, a chat file, a subagent). An empty title is filled
    /// from the first prompt; `model` names the model when it is not the
    /// engine's (a subagent's delegation model).
    pub fn new_session(
        &self,
        parent_id: Option<String>,
        title: &str,
        model: Option<&str>,
    ) -> SessionId {
        let id = SessionId::mint();
        let model = match model {
            Some(m) => m.to_string(),
            None => self
                .parts
                .model
                .as_ref()
                .map(|m| m.model().to_string())
                .unwrap_or_default(),
        };
        // Queued, not awaited (commands return at once); every later read
        // of the store waits for it, and a failure is reported once by the
        // store's warning.
        self.parts.store.submit(Write::CreateSession {
            id: id.as_str().to_string(),
            parent_id,
            title: self.parts.redactor.redact(title),
            workspace: self.parts.root.display().to_string(),
            model,
        });
        id
    }

    async fn is_running_or_known(&self, id: &str) -> bool {
        if self
            .running
            .lock()
            .map(|r| r.contains_key(id))
            .unwrap_or(false)
        {
            return true;
        }
        self.parts
            .store
            .session_exists(id.to_string())
            .await
            .unwrap_or(false)
    }

    /// Cancels the running turn of a session. A cancel with nothing running
    /// is a no-op (it does not poison the next prompt).
    pub fn cancel_session(&self, session_id: &str) -> bool {
        match self.running.lock() {
            Ok(r) => match r.get(session_id) {
                Some(t) => {
                    t.cancel.cancel();
                    true
                }
                None => false,
            },
            Err(_) => false,
        }
    }

    /// Cancels every running turn (shutdown, or `tether.cancel` with no session).
    pub fn cancel_all(&self) {
        if let Ok(r) = self.running.lock() {
            for t in r.values() {
                t.cancel.cancel();
            }
        }
    }

    /// Sessions with a running turn.
    pub fn running_sessions(&self) -> Vec<String> {
        self.running
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Stops everything for good (server exit).
    pub fn shutdown(&self) {
        self.root_cancel.cancel();
    }

    /// Stops everything for good and waits, at most `within`, until every
    /// turn has ended — which includes its commands being killed (SIGTERM,
    /// the kill grace, then everything they started). Returns whether all
    /// ended in time. Turns started afterwards are cancelled at once.
    pub async fn stop(&self, within: std::time::Duration) -> bool {
        self.root_cancel.cancel();
        self.tasks.close();
        let ended = tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok();
        // The MCP servers go with the turns that used them.
        self.parts.mcp.stop().await;
        ended
    }
}

/// A turn that needs no model (slash commands): its text and end are
/// emitted at once and its result is ready.
fn immediate(session_id: String, text: String, sink: Arc<dyn EventSink>) -> TurnHandle {
    let turn_id = TurnId::mint().into_string();
    let (tx, rx) = oneshot::channel();
    let emit = |kind| {
        sink.emit(Update {
            session_id: session_id.clone(),
            turn_id: turn_id.clone(),
            kind,
        })
    };
    emit(crate::protocol::UpdateKind::Text {
        delta: text.clone(),
    });
    emit(crate::protocol::UpdateKind::TurnEnd {
        stop_reason: crate::protocol::StopReason::EndTurn,
    });
    let _ = tx.send(PromptResult {
        session_id: session_id.clone(),
        turn_id: turn_id.clone(),
        stop_reason: crate::protocol::StopReason::EndTurn,
        text,
        error: None,
    });
    TurnHandle {
        session_id,
        turn_id,
        cancel: CancellationToken::new(),
        done: rx,
    }
}
