//! MCP client: the person's tool servers (`[mcp_servers.NAME]`), reached
//! over stdio or streamable HTTP with the official Rust SDK (`rmcp`), shown
//! to the model as `NAME__TOOL` and called through the same scheduler,
//! cancellation tree and gate as every other tool.
//!
//! Lifecycle: every enabled server of the user's config starts in the
//! background when the engine is built (so the first turn does not pay its
//! start-up); a server from the workspace's own config starts only after the
//! person approved it in the dialog. A stdio server runs under `tether
//! supervise` in its own process group (nothing it starts outlives it or
//! Tether), in the command sandbox's policy (writes only in the workspace and
//! its own temp dir, the network as `[sandbox] network` says) unless its entry
//! says `sandbox = false` or `network = true`; its stderr goes to the log. A server that stops is restarted with
//! backoff, and the next call's result says so. `notifications/tools/list_changed`
//! marks the tool list stale; the next turn lists it again.
//!
//! **Invariants:** an MCP call reaches a person only through `ctx.gate`, as
//! [`ActionKind::Mcp`] with the action `SERVER/TOOL` (an allow for it never
//! approves a command, an edit or another tool); only a tool its server marks
//! `readOnlyHint: true` (or one the config sets `approval = "allow"`) runs
//! without asking; a bearer token is read only from the environment variable
//! the config names.

pub mod config;
pub mod naming;
pub mod result;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientInfo, ClientRequest,
    Implementation, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RoleClient, RunningService};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

pub use config::{McpServerConfig, ToolApproval};

use crate::gate::{Class, Decision, Verdict};
use crate::tools::{ToolCtx, ToolResult};

/// Where a server's entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The user's config file or the editor's `initializationOptions`.
    User,
    /// The workspace's `.tether/config.toml`: runs only once the person approves.
    Workspace,
}

/// What the manager is built from.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub servers: BTreeMap<String, McpServerConfig>,
    /// Entries of the workspace's own config (asked about before they run).
    pub workspace: BTreeMap<String, McpServerConfig>,
    pub root: PathBuf,
    /// The `tether` binary that supervises stdio servers; `None` runs them directly.
    pub supervisor: Option<PathBuf>,
    /// Variables removed from a server's environment (Tether's own secrets).
    pub remove_env: Vec<String>,
    /// The environment bearer tokens are read from.
    pub env: BTreeMap<String, String>,
    /// The largest result given to the model, in bytes.
    pub output_cap: usize,
    /// The command sandbox stdio servers run in (unless their entry says
    /// `sandbox = false`); `None`: off or not possible here.
    pub sandbox: Option<crate::sandbox::Sandbox>,
}

/// A server's state, for `tether mcp list`, `tether doctor` and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Disabled,
    /// From the workspace config, not approved (yet).
    NeedsApproval,
    Denied,
    Starting,
    Running,
    /// Stopped or crashed; restarted at the next use (or by its backoff).
    Stopped,
    Failed,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Disabled => "disabled",
            State::NeedsApproval => "needs approval",
            State::Denied => "denied",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

/// One server as `tether mcp list` shows it.
#[derive(Debug, Clone)]
pub struct ServerReport {
    pub name: String,
    pub source: Source,
    pub transport: &'static str,
    pub target: String,
    pub state: State,
    /// Tools shown to the model, by their exposed names.
    pub tools: Vec<String>,
    pub last_error: Option<String>,
    pub restarts: u32,
    /// How long the last start took (spawn + initialize + tools/list).
    pub startup: Option<Duration>,
}

#[derive(Debug, Default)]
struct Status {
    state: Option<State>,
    last_error: Option<String>,
    restarts: u32,
    /// Failed starts in a row (for the backoff).
    failures: u32,
    last_attempt: Option<Instant>,
    startup: Option<Duration>,
    /// Why the server stopped, told with the next call's result.
    note: Option<String>,
    stderr_tail: VecDeque<String>,
    /// Workspace servers: the person's answer.
    approved: Option<bool>,
}

/// The server's notifications the client acts on.
#[derive(Clone)]
struct Handler {
    stale: Arc<AtomicBool>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.stale.store(true, Ordering::SeqCst);
    }

    fn get_info(&self) -> ClientInfo {
        let mut info = ClientInfo::default();
        info.client_info = Implementation::new("tether", env!("CARGO_PKG_VERSION"));
        info
    }
}

/// Kills a stdio server and everything it started when dropped: its
/// supervisor is asked to (SIGUSR1), else its process group gets SIGKILL.
struct ProcGuard {
    pid: i32,
    supervised: bool,
    reaped: Arc<AtomicBool>,
}

impl ProcGuard {
    fn kill(&self) {
        if self.pid <= 0 || self.reaped.load(Ordering::SeqCst) {
            return;
        }
        // SAFETY: kill(2) on our own child (or its group), not yet reaped.
        unsafe {
            if self.supervised {
                libc::kill(self.pid, crate::tools::supervise::KILL_SIGNAL);
            } else {
                libc::kill(-self.pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for ProcGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Live {
    service: RunningService<RoleClient, Handler>,
    _proc: Option<ProcGuard>,
    /// Set when the process exited (stdio).
    exited: Arc<AtomicBool>,
}

impl Live {
    fn alive(&self) -> bool {
        !self.exited.load(Ordering::SeqCst)
            && !self.service.is_closed()
            && !self.service.peer().is_transport_closed()
    }
}

struct Server {
    name: String,
    cfg: McpServerConfig,
    source: Source,
    conn: tokio::sync::Mutex<Option<Arc<Live>>>,
    tools: Mutex<Vec<rmcp::model::Tool>>,
    stale: Arc<AtomicBool>,
    status: Mutex<Status>,
}

impl Server {
    /// How long until the next start may be tried (zero: now).
    fn backoff_left(&self) -> Duration {
        let st = self.status();
        st.last_attempt
            .map(|t| backoff(st.failures).saturating_sub(t.elapsed()))
            .unwrap_or_default()
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_state(&self, s: State) {
        self.status().state = Some(s);
    }
}

/// A model-visible tool and where it leads.
#[derive(Clone)]
struct Route {
    server: Arc<Server>,
    tool: String,
    read_only: bool,
    destructive: bool,
    hinted: bool,
}

struct Inner {
    servers: Vec<Arc<Server>>,
    opts: Options,
    routes: Mutex<HashMap<String, Route>>,
    stop: CancellationToken,
}

/// The MCP servers of one engine. Cheap to clone; passed explicitly.
#[derive(Clone)]
pub struct McpManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for McpManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpManager")
            .field("servers", &self.inner.servers.len())
            .finish()
    }
}

/// The longest wait between restarts of a server that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let ms = 250u64.saturating_mul(1u64 << failures.min(8));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

impl McpManager {
    /// Builds the manager; starts nothing (see [`McpManager::start_background`]).
    pub fn new(opts: Options) -> McpManager {
        let mut servers = Vec::new();
        let mk = |name: &String, cfg: &McpServerConfig, source: Source| {
            let (state, last_error) = if !cfg.enabled {
                (State::Disabled, None)
            } else if let Err(e) = cfg.check(name) {
                (State::Failed, Some(e))
            } else if source == Source::Workspace {
                (State::NeedsApproval, None)
            } else {
                (State::Stopped, None)
            };
            Arc::new(Server {
                name: name.clone(),
                cfg: cfg.clone(),
                source,
                conn: tokio::sync::Mutex::new(None),
                tools: Mutex::new(Vec::new()),
                stale: Arc::new(AtomicBool::new(false)),
                status: Mutex::new(Status {
                    state: Some(state),
                    last_error,
                    ..Default::default()
                }),
            })
        };
        for (name, cfg) in &opts.servers {
            servers.push(mk(name, cfg, Source::User));
        }
        for (name, cfg) in &opts.workspace {
            if opts.servers.contains_key(name) {
                tracing::warn!("the workspace config's MCP server `{name}` is ignored: the user's config has one with that name");
                continue;
            }
            servers.push(mk(name, cfg, Source::Workspace));
        }
        McpManager {
            inner: Arc::new(Inner {
                servers,
                opts,
                routes: Mutex::new(HashMap::new()),
                stop: CancellationToken::new(),
            }),
        }
    }

    /// No servers at all.
    pub fn empty() -> McpManager {
        McpManager::new(Options::default())
    }

    pub fn is_empty(&self) -> bool {
        self.inner.servers.is_empty()
    }

    /// Starts every enabled server of the user's config in the background
    /// (call once, inside a runtime).
    pub fn start_background(&self) {
        for s in &self.inner.servers {
            if s.source == Source::User && s.status().state == Some(State::Stopped) {
                let me = self.clone();
                let s = s.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.ensure(&s).await {
                        tracing::warn!("{e}");
                    }
                });
            }
        }
    }

    /// Stops every server (and what it started). Servers are not restarted after this.
    pub async fn stop(&self) {
        self.inner.stop.cancel();
        for s in &self.inner.servers {
            let live = s.conn.lock().await.take();
            if let Some(live) = live {
                if let Some(p) = &live._proc {
                    p.kill();
                }
            }
        }
    }

    /// Asks the person about servers the workspace's own config adds, once
    /// each (an "Always allow" is remembered for this exact command line in
    /// this workspace).
    pub async fn approve_workspace(&self, ctx: &ToolCtx) {
        for s in &self.inner.servers {
            if s.source != Source::Workspace || s.status().state != Some(State::NeedsApproval) {
                continue;
            }
            let action = format!(
                "start {} from {}: {}",
                s.name,
                self.inner.opts.root.join(".tether/config.toml").display(),
                s.cfg.describe()
            );
            let verdict = Verdict {
                class: Class::Ask,
                reason: format!(
                    "the workspace's own config (.tether/config.toml) adds the MCP server `{}`, which runs `{}` on this machine",
                    s.name,
                    s.cfg.describe()
                ),
            };
            let d = ctx
                .gate
                .check_mcp(&action, verdict, ctx.ask_ctx(&ctx.root))
                .await;
            let mut st = s.status();
            match d {
                Decision::Allow => {
                    st.approved = Some(true);
                    st.state = Some(State::Stopped);
                }
                Decision::Deny(why) => {
                    st.approved = Some(false);
                    st.state = Some(State::Denied);
                    st.last_error = Some(why);
                }
            }
        }
    }

    /// The `tools` entries for the model: every tool of every server that
    /// is up (or starts within its `startup_timeout_secs`), as `NAME__TOOL`.
    pub async fn specs(&self) -> Vec<Value> {
        let usable: Vec<Arc<Server>> = self
            .inner
            .servers
            .iter()
            .filter(|s| {
                let state = s.status().state.clone();
                if state == Some(State::Failed)
                    && s.cfg.check(&s.name).is_ok()
                    && !self.inner.stop.is_cancelled()
                {
                    // Retried in the background; this turn goes on without it.
                    let me = self.clone();
                    let s = (*s).clone();
                    tokio::spawn(async move {
                        if me.ensure(&s).await.is_ok() {
                            tracing::info!("MCP server `{}` is up again", s.name);
                        }
                    });
                }
                matches!(
                    state,
                    Some(State::Running | State::Stopped | State::Starting)
                )
            })
            .cloned()
            .collect();
        let started = futures::future::join_all(usable.iter().map(|s| async move {
            match self.ensure(s).await {
                Ok(live) => {
                    if s.stale.swap(false, Ordering::SeqCst) {
                        if let Err(e) = self.refresh_tools(s, &live).await {
                            tracing::warn!("{e}");
                        }
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    false
                }
            }
        }))
        .await;
        let mut specs = Vec::new();
        let mut routes = HashMap::new();
        for (s, up) in usable.iter().zip(started) {
            if !up {
                continue;
            }
            let tools = s.tools.lock().map(|t| t.clone()).unwrap_or_default();
            for t in tools {
                if !s.cfg.tool_enabled(&t.name) {
                    continue;
                }
                let exposed = naming::exposed(&s.name, &t.name);
                let ann = t.annotations.as_ref();
                let read_only = ann.and_then(|a| a.read_only_hint) == Some(true);
                let destructive = ann.and_then(|a| a.destructive_hint) == Some(true);
                let hinted =
                    ann.is_some_and(|a| a.read_only_hint.is_some() || a.destructive_hint.is_some());
                let description = format!(
                    "[MCP server `{}`] {}",
                    s.name,
                    t.description.as_deref().unwrap_or("")
                );
                specs.push(json!({"type": "function", "function": {
                    "name": exposed,
                    "description": description.trim_end(),
                    "parameters": Value::Object((*t.input_schema).clone()),
                }}));
                routes.insert(
                    exposed,
                    Route {
                        server: s.clone(),
                        tool: t.name.to_string(),
                        read_only,
                        destructive,
                        hinted,
                    },
                );
            }
        }
        if let Ok(mut r) = self.inner.routes.lock() {
            // Keep routes of servers that are down for now: a call to one
            // restarts it instead of being told the tool does not exist.
            r.retain(|_, v| !routes.values().any(|n| Arc::ptr_eq(&n.server, &v.server)));
            r.extend(routes);
        }
        specs
    }

    /// The servers' tools for an agent's registry ([`McpManager::specs`], each
    /// read back through [`McpManager::parse`] when the model calls it).
    ///
    /// A tool of a server that is down right now (restarting after a crash)
    /// stays in the registry under its known name, so a call to it restarts
    /// the server instead of being told the tool does not exist.
    pub async fn tools(&self) -> Vec<Arc<dyn crate::tools::Tool>> {
        let specs = self.specs().await;
        let mut names: Vec<String> = Vec::new();
        let mut out: Vec<Arc<dyn crate::tools::Tool>> = Vec::new();
        for spec in specs {
            let Some(name) = spec.pointer("/function/name").and_then(Value::as_str) else {
                continue;
            };
            names.push(name.to_string());
            out.push(Arc::new(McpTool {
                name: name.to_string(),
                spec: spec.clone(),
                manager: self.clone(),
            }));
        }
        let down: Vec<(String, String)> = self
            .inner
            .routes
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(n, _)| !names.contains(n))
                    .map(|(n, route)| (n.clone(), route.server.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (name, server) in down {
            let spec = json!({"type": "function", "function": {
                "name": name,
                "description": format!("[MCP server `{server}`, restarting] call it to restart the server"),
                "parameters": {"type": "object"},
            }});
            out.push(Arc::new(McpTool {
                name,
                spec,
                manager: self.clone(),
            }));
        }
        out
    }

    /// A call of `name` with `raw` arguments, if `name` is an MCP tool;
    /// the error text goes back to the model.
    pub fn parse(&self, name: &str, raw: &str) -> Option<Result<McpCall, String>> {
        let route = self.inner.routes.lock().ok()?.get(name).cloned()?;
        let raw = if raw.trim().is_empty() { "{}" } else { raw };
        let args = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Some(Err(format!(
                    "Invalid arguments for `{name}`: send a JSON object matching the tool's schema."
                )))
            }
            Err(e) => {
                return Some(Err(format!(
                    "Invalid arguments for `{name}`: {e}. Send a JSON object matching the tool's schema."
                )))
            }
        };
        Some(Ok(McpCall {
            manager: self.clone(),
            route,
            args,
        }))
    }

    /// Every server's state, for `tether mcp list` and `tether doctor`.
    pub fn report(&self) -> Vec<ServerReport> {
        self.inner
            .servers
            .iter()
            .map(|s| {
                let st = s.status();
                let tools = s
                    .tools
                    .lock()
                    .map(|t| {
                        t.iter()
                            .filter(|t| s.cfg.tool_enabled(&t.name))
                            .map(|t| naming::exposed(&s.name, &t.name))
                            .collect()
                    })
                    .unwrap_or_default();
                ServerReport {
                    name: s.name.clone(),
                    source: s.source,
                    transport: if s.cfg.url.is_some() { "http" } else { "stdio" },
                    target: s.cfg.describe(),
                    state: st.state.clone().unwrap_or(State::Stopped),
                    tools,
                    last_error: st.last_error.clone(),
                    restarts: st.restarts,
                    startup: st.startup,
                }
            })
            .collect()
    }

    /// Starts every server that may start now and waits for each (bounded
    /// by its `startup_timeout_secs`); for `tether mcp list`.
    pub async fn start_all_and_wait(&self) {
        futures::future::join_all(self.inner.servers.iter().map(|s| async move {
            if s.status().state == Some(State::Stopped) {
                let _ = self.ensure(s).await;
            }
        }))
        .await;
    }

    /// The running connection to `s`, started (or restarted) if needed.
    /// Boxed: a server's exit watcher restarts it through here.
    fn ensure<'a>(
        &'a self,
        s: &'a Arc<Server>,
    ) -> futures::future::BoxFuture<'a, Result<Arc<Live>, String>> {
        Box::pin(async move {
            let mut conn = s.conn.lock().await;
            if let Some(live) = conn.as_ref() {
                if live.alive() {
                    return Ok(live.clone());
                }
                *conn = None;
                let mut st = s.status();
                let why = st
                    .note
                    .clone()
                    .unwrap_or_else(|| "its connection closed".into());
                st.note = Some(why);
                st.restarts += 1;
            }
            if self.inner.stop.is_cancelled() {
                return Err(format!("MCP server `{}`: Tether is stopping", s.name));
            }
            s.cfg.check(&s.name)?;
            match s.status().state {
                Some(State::Disabled) => {
                    return Err(format!("MCP server `{}` is disabled", s.name))
                }
                Some(State::NeedsApproval | State::Denied) => {
                    return Err(format!(
                        "MCP server `{}` comes from the workspace's config and was not approved",
                        s.name
                    ))
                }
                _ => {}
            }
            let wait = s.backoff_left();
            if !wait.is_zero() {
                // Never wait here: a turn or a call is not held up by a
                // server that keeps failing.
                let last = s.status().last_error.clone().unwrap_or_default();
                return Err(format!(
                    "MCP server `{}` failed ({last}); next try in {} ms",
                    s.name,
                    wait.as_millis()
                ));
            }
            s.set_state(State::Starting);
            s.status().last_attempt = Some(Instant::now());
            let started = Instant::now();
            let timeout = Duration::from_secs(s.cfg.startup_timeout_secs.max(1));
            // Stopping does not wait for a server that is still starting:
            // dropping the start kills what it spawned (its ProcGuard).
            let res = tokio::select! {
                r = tokio::time::timeout(timeout, self.connect(s)) => r,
                _ = self.inner.stop.cancelled() => {
                    return Err(format!("MCP server `{}`: Tether is stopping", s.name));
                }
            };
            let res = match res {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "MCP server `{}` did not start within {} s (startup_timeout_secs)",
                    s.name,
                    timeout.as_secs()
                )),
            };
            let res = match res {
                Ok(live) => {
                    let live = Arc::new(live);
                    match self.refresh_tools(s, &live).await {
                        Ok(()) => Ok(live),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let mut st = s.status();
            match res {
                Ok(live) => {
                    st.state = Some(State::Running);
                    st.failures = 0;
                    st.startup = Some(started.elapsed());
                    tracing::info!(
                        "MCP server `{}` started in {} ms ({} tools)",
                        s.name,
                        started.elapsed().as_millis(),
                        s.tools.lock().map(|t| t.len()).unwrap_or(0)
                    );
                    *conn = Some(live.clone());
                    Ok(live)
                }
                Err(mut e) => {
                    // Say what could not be started, whatever the transport
                    // reported (a spawn error, a closed pipe, a timeout).
                    let target = s.cfg.describe();
                    if !e.contains(&target) {
                        e = format!("{e} (`{target}`)");
                    }
                    if !st.stderr_tail.is_empty() {
                        e = format!(
                            "{e}; its last stderr lines: {}",
                            st.stderr_tail
                                .iter()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(" | ")
                        );
                    }
                    st.state = Some(State::Failed);
                    st.failures += 1;
                    st.last_error = Some(e.clone());
                    Err(e)
                }
            }
        })
    }

    async fn refresh_tools(&self, s: &Server, live: &Live) -> Result<(), String> {
        let timeout = Duration::from_secs(s.cfg.startup_timeout_secs.max(1));
        let tools = tokio::time::timeout(timeout, live.service.peer().list_all_tools())
            .await
            .map_err(|_| format!("MCP server `{}` did not list its tools in time", s.name))?
            .map_err(|e| format!("MCP server `{}` could not list its tools: {e}", s.name))?;
        if let Ok(mut t) = s.tools.lock() {
            *t = tools;
        }
        Ok(())
    }

    async fn connect(&self, s: &Arc<Server>) -> Result<Live, String> {
        let handler = Handler {
            stale: s.stale.clone(),
        };
        if let Some(url) = &s.cfg.url {
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            use rmcp::transport::StreamableHttpClientTransport;
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            if let Some(var) = &s.cfg.bearer_token_env_var {
                match self.inner.opts.env.get(var).filter(|v| !v.is_empty()) {
                    Some(token) => config = config.auth_header(token.clone()),
                    None => {
                        return Err(format!(
                            "MCP server `{}`: the bearer token variable `{var}` (bearer_token_env_var) is not set",
                            s.name
                        ))
                    }
                }
            }
            let mut headers = HashMap::new();
            for (k, v) in &s.cfg.headers {
                let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| format!("MCP server `{}`: header `{k}`: {e}", s.name))?;
                let value = reqwest::header::HeaderValue::from_str(v)
                    .map_err(|e| format!("MCP server `{}`: header `{k}`: {e}", s.name))?;
                headers.insert(name, value);
            }
            config = config.custom_headers(headers);
            let transport = StreamableHttpClientTransport::with_client(http_client()?, config);
            let service = handler
                .serve(transport)
                .await
                .map_err(|e| format!("MCP server `{}` at {url}: {e}", s.name))?;
            return Ok(Live {
                service,
                _proc: None,
                exited: Arc::new(AtomicBool::new(false)),
            });
        }
        let program = s.cfg.command.clone().unwrap_or_default();
        let supervisor = self.inner.opts.supervisor.clone();
        let cwd = match &s.cfg.cwd {
            Some(c) => self.inner.opts.root.join(c),
            None => self.inner.opts.root.clone(),
        };
        let confined = match self.inner.opts.sandbox.as_ref().filter(|_| s.cfg.sandbox) {
            Some(sandbox) => {
                let tmp = sandbox
                    .session_tmp(&format!("mcp-{}", s.name))
                    .map_err(|e| {
                        format!(
                            "MCP server `{}`: cannot create the sandbox's temp dir ({e})",
                            s.name
                        )
                    })?;
                let mut policy = sandbox.policy_with(
                    std::slice::from_ref(&self.inner.opts.root),
                    &tmp,
                    &s.cfg.writable,
                );
                policy.network = s.cfg.network.unwrap_or(policy.network);
                Some((policy, tmp))
            }
            None => None,
        };
        let Some(mut cmd) = crate::tools::command::supervised(
            supervisor.as_deref(),
            confined.as_ref().map(|(p, t)| (p, t.as_path())),
            std::ffi::OsStr::new(&program),
        ) else {
            return Err(format!(
                "MCP server `{}` was not started: the OS sandbox needs the supervisor (or set `sandbox = false` for it)",
                s.name
            ));
        };
        cmd.args(&s.cfg.args)
            .current_dir(&cwd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(supervisor.is_none());
        for name in &self.inner.opts.remove_env {
            cmd.env_remove(name);
        }
        cmd.envs(&s.cfg.env);
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "cannot start MCP server `{}` (`{program}` in {}): {e}",
                s.name,
                cwd.display()
            )
        })?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let reaped = Arc::new(AtomicBool::new(false));
        let guard = ProcGuard {
            pid,
            supervised: supervisor.is_some(),
            reaped: reaped.clone(),
        };
        let (Some(stdout), Some(stdin), Some(stderr)) =
            (child.stdout.take(), child.stdin.take(), child.stderr.take())
        else {
            return Err(format!("MCP server `{}`: no pipes to the process", s.name));
        };
        s.status().stderr_tail.clear();
        {
            let s = s.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(target: "tether::mcp", "{}: {}", s.name, line);
                    let mut st = s.status();
                    if st.stderr_tail.len() >= 5 {
                        st.stderr_tail.pop_front();
                    }
                    st.stderr_tail.push_back(line.chars().take(300).collect());
                }
            });
        }
        let exited = Arc::new(AtomicBool::new(false));
        {
            let s = s.clone();
            let exited = exited.clone();
            let me = self.clone();
            tokio::spawn(async move {
                let status = child.wait().await;
                reaped.store(true, Ordering::SeqCst);
                exited.store(true, Ordering::SeqCst);
                if me.inner.stop.is_cancelled() {
                    return;
                }
                let why = match status {
                    Ok(st) => format!("its process exited ({st})"),
                    Err(e) => format!("its process could not be waited for ({e})"),
                };
                tracing::warn!("MCP server `{}` stopped: {why}; restarting it", s.name);
                {
                    let mut st = s.status();
                    let was_running = st.state == Some(State::Running);
                    if was_running {
                        st.state = Some(State::Stopped);
                    }
                    st.note = Some(why.clone());
                    // A server that never came up keeps its start error
                    // (which names the command), whichever is noticed first.
                    if was_running || st.last_error.is_none() {
                        st.last_error = Some(format!("stopped: {why}"));
                    }
                    st.failures += 1;
                }
                // Restart in the background, after the backoff, so it is up
                // again before the next call needs it.
                let wait = backoff(s.status().failures);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = me.inner.stop.cancelled() => return,
                }
                if let Err(e) = me.ensure(&s).await {
                    tracing::warn!("{e}");
                }
            });
        }
        let service = handler.serve((stdout, stdin)).await.map_err(|e| {
            format!(
                "MCP server `{}` (`{program}`) did not initialize: {e}",
                s.name
            )
        })?;
        Ok(Live {
            service,
            _proc: Some(guard),
            exited,
        })
    }
}

/// One MCP tool in an agent's registry.
struct McpTool {
    name: String,
    spec: Value,
    manager: McpManager,
}

impl crate::tools::Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn spec(&self) -> Value {
        self.spec.clone()
    }

    fn prepare(&self, raw_args: &str) -> Result<Box<dyn crate::tools::Call>, String> {
        match self.manager.parse(&self.name, raw_args) {
            Some(Ok(call)) => Ok(Box::new(call)),
            Some(Err(e)) => Err(e),
            None => Err(format!(
                "The MCP tool `{}` is no longer offered by its server.",
                self.name
            )),
        }
    }
}

/// An MCP call is exclusive, like a command: its server may change anything.
impl crate::tools::Call for McpCall {
    fn title(&self) -> String {
        McpCall::title(self)
    }

    fn access(&self, _root: &Path) -> crate::tools::Access {
        crate::tools::Access::Command
    }

    fn run<'a>(&'a self, ctx: &'a ToolCtx) -> futures::future::BoxFuture<'a, ToolResult> {
        Box::pin(self.clone().run(ctx))
    }
}

/// One call of an MCP tool, ready to run.
#[derive(Clone)]
pub struct McpCall {
    manager: McpManager,
    route: Route,
    args: serde_json::Map<String, Value>,
}

impl std::fmt::Debug for McpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpCall")
            .field("server", &self.route.server.name)
            .field("tool", &self.route.tool)
            .finish()
    }
}

impl McpCall {
    pub fn server(&self) -> &str {
        &self.route.server.name
    }

    pub fn tool(&self) -> &str {
        &self.route.tool
    }

    /// A short title for the editor; it names the server.
    pub fn title(&self) -> String {
        format!("MCP {}: {}", self.route.server.name, self.route.tool)
    }

    /// What the gate is asked, or `None` when the call runs without asking.
    fn verdict(&self) -> Verdict {
        let r = &self.route;
        let over = r.server.cfg.tools.get(&r.tool).and_then(|o| o.approval);
        let args = Value::Object(self.args.clone()).to_string();
        let args = crate::tools::first_line(&args, 400);
        let why = match over {
            Some(ToolApproval::Allow) => {
                return Verdict {
                    class: Class::Safe,
                    reason: "approval = \"allow\" in the config".into(),
                }
            }
            Some(ToolApproval::Ask) => "the config sets approval = \"ask\" for this tool",
            None if r.read_only => {
                return Verdict {
                    class: Class::Safe,
                    reason: "read-only by its server".into(),
                }
            }
            None if r.destructive => "its server marks it destructive",
            None if !r.hinted => "its server says nothing about what it changes",
            None => "its server does not mark it read-only",
        };
        Verdict {
            class: Class::Ask,
            reason: format!("{why}; arguments: {args}"),
        }
    }

    /// Asks the gate, then calls the tool; cancelling `ctx.cancel` sends
    /// MCP's `notifications/cancelled` for the request.
    pub async fn run(self, ctx: &ToolCtx) -> ToolResult {
        let result = self.run_inner(ctx).await;
        ToolResult {
            output: ctx.redactor.redact(&result.output),
            ..result
        }
    }

    async fn run_inner(&self, ctx: &ToolCtx) -> ToolResult {
        let server = &self.route.server;
        let action = format!("{}/{}", server.name, self.route.tool);
        match ctx
            .gate
            .check_mcp(&action, self.verdict(), ctx.ask_ctx(&ctx.root))
            .await
        {
            Decision::Allow => {}
            Decision::Deny(why) => return ToolResult::denied(why),
        }
        if ctx.cancel.is_cancelled() {
            return ToolResult::cancelled();
        }
        let mut live = tokio::select! {
            l = self.manager.ensure(server) => l,
            _ = ctx.cancel.cancelled() => return ToolResult::cancelled(),
        };
        // A server that just crashed is in its first short backoff: this call
        // needs it, so wait that out (a few seconds at most) and try once more
        // rather than fail a call the restart is about to serve.
        if live.is_err() {
            let left = server.backoff_left();
            if !left.is_zero() && left <= Duration::from_secs(5) {
                tokio::select! {
                    _ = tokio::time::sleep(left) => {}
                    _ = ctx.cancel.cancelled() => return ToolResult::cancelled(),
                }
                live = tokio::select! {
                    l = self.manager.ensure(server) => l,
                    _ = ctx.cancel.cancelled() => return ToolResult::cancelled(),
                };
            }
        }
        let live = match live {
            Ok(l) => l,
            Err(e) => {
                return ToolResult::failed(format!(
                    "The MCP server `{}` is not available: {e}",
                    server.name
                ))
            }
        };
        let note = server.status().note.take().map(|why| {
            format!(
                "(The MCP server `{}` had stopped — {why} — and Tether restarted it.)\n",
                server.name
            )
        });
        let params =
            CallToolRequestParams::new(self.route.tool.clone()).with_arguments(self.args.clone());
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let timeout = Duration::from_secs(server.cfg.tool_timeout_secs.max(1));
        let peer = live.service.peer().clone();
        let handle = match peer
            .send_cancellable_request(request, PeerRequestOptions::with_timeout(timeout))
            .await
        {
            Ok(h) => h,
            Err(e) => {
                return ToolResult::failed(format!(
                    "The MCP server `{}` could not be reached: {e}",
                    server.name
                ))
            }
        };
        let id = handle.id.clone();
        tracing::info!(
            "MCP server `{}`: sent request {id} ({})",
            server.name,
            self.route.tool
        );
        let outcome = tokio::select! {
            r = handle.await_response() => r,
            _ = ctx.cancel.cancelled() => {
                let sent = peer
                    .notify_cancelled(CancelledNotificationParam::new(
                        Some(id.clone()),
                        Some("the person stopped the turn".into()),
                    ))
                    .await;
                match sent {
                    Ok(()) => tracing::info!("MCP server `{}`: sent notifications/cancelled for request {id}", server.name),
                    Err(e) => tracing::warn!("MCP server `{}`: could not send the cancellation: {e}", server.name),
                }
                return ToolResult::cancelled();
            }
        };
        let mut out = note.unwrap_or_default();
        match outcome {
            Ok(ServerResult::CallToolResult(r)) => {
                let v = serde_json::to_value(&r).unwrap_or(Value::Null);
                let (text, is_error) = result::to_text(&v);
                out.push_str(&cap(&text, self.manager.inner.opts.output_cap));
                if is_error {
                    ToolResult::failed(out)
                } else {
                    ToolResult::ok(out)
                }
            }
            Ok(_) => ToolResult::failed(format!(
                "{out}The MCP server `{}` answered tools/call with something else than a tool result.",
                server.name
            )),
            Err(rmcp::ServiceError::Timeout { timeout }) => ToolResult::failed(format!(
                "{out}The MCP server `{}` did not answer `{}` within {} s (tool_timeout_secs); the call was cancelled.",
                server.name,
                self.route.tool,
                timeout.as_secs()
            )),
            Err(rmcp::ServiceError::TransportClosed) => ToolResult::failed(format!(
                "{out}The MCP server `{}` stopped during the call of `{}`; Tether restarts it. The call's effect is unknown.",
                server.name, self.route.tool
            )),
            Err(e) => ToolResult::failed(format!(
                "{out}The MCP server `{}` refused `{}`: {e}",
                server.name, self.route.tool
            )),
        }
    }
}

/// The HTTP client of streamable HTTP servers: rustls with ring and the
/// Mozilla roots (as the model client), no pooled idle connections, no
/// redirects (headers and the token are never replayed to another host).
fn http_client() -> Result<reqwest013::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup for MCP servers failed: {e}"))?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
    reqwest013::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest013::redirect::Policy::none())
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| format!("the HTTP client for MCP servers could not be built: {e}"))
}

/// `text` cut to at most `max` bytes (on a character boundary), saying so.
fn cap(text: &str, max: usize) -> String {
    if max == 0 || text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[… cut: the result had {} bytes, {} shown]",
        &text[..end],
        text.len(),
        end
    )
}

impl Options {
    /// The manager's options from the merged config: servers, the
    /// supervisor, the secrets to keep from servers, the output cap.
    pub fn from_config(cfg: &crate::config::Config, root: PathBuf) -> Options {
        Options {
            servers: cfg.mcp_servers.clone(),
            workspace: cfg.workspace_mcp_servers.clone(),
            root,
            supervisor: cfg.tools.supervisor.clone(),
            remove_env: cfg.secret_env_names(),
            env: std::env::vars().collect(),
            output_cap: cfg.tools.output_cap_bytes,
            sandbox: cfg.tools.sandbox.clone(),
        }
    }
}

/// Starts the configured servers (the user's; a workspace's only show that
/// they wait for approval), lists them, and stops them: `tether mcp list`
/// and `tether doctor`.
pub async fn probe(cfg: &crate::config::Config, root: PathBuf) -> Vec<ServerReport> {
    let mut opts = Options::from_config(cfg, root);
    opts.supervisor = std::env::current_exe().ok();
    // Probed like they run: in the sandbox (a server that needs more shows it).
    if opts.sandbox.is_none() {
        opts.sandbox = crate::sandbox::Sandbox::start(&cfg.sandbox).ok().flatten();
    }
    let m = McpManager::new(opts);
    m.start_all_and_wait().await;
    let r = m.report();
    m.stop().await;
    r
}

impl ServerReport {
    /// Whether something is wrong with this server.
    pub fn failed(&self) -> bool {
        self.state == State::Failed
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "source": match self.source { Source::User => "user", Source::Workspace => "workspace" },
            "transport": self.transport,
            "target": self.target,
            "status": self.state.as_str(),
            "tools": self.tools,
            "lastError": self.last_error,
            "restarts": self.restarts,
            "startupMs": self.startup.map(|d| d.as_millis() as u64),
        })
    }

    /// One server as lines of text (run through `term` by the caller).
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} ({} {}{}): {}",
            self.name,
            self.transport,
            self.target,
            if self.source == Source::Workspace {
                ", from the workspace config"
            } else {
                ""
            },
            self.state.as_str()
        );
        if let Some(d) = self.startup {
            s.push_str(&format!(", started in {} ms", d.as_millis()));
        }
        if !self.tools.is_empty() {
            s.push_str(&format!("\n  tools: {}", self.tools.join(", ")));
        }
        if let Some(e) = &self.last_error {
            s.push_str(&format!("\n  last error: {e}"));
        }
        if self.state == State::NeedsApproval {
            s.push_str("\n  runs after the person approves it in the editor's dialog");
        }
        s
    }
}

/// `tether mcp list [--json] [--root DIR]`: every configured server, its
/// status, its tools and its last error. Exits 1 when a server failed.
pub async fn list_cli(json_out: bool, root: Option<PathBuf>) -> crate::term::CliResult {
    use crate::term::{self, CliError};
    let root = root
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    let mut sources = crate::config::Sources::from_process_env();
    sources.workspace_root = Some(root.clone());
    let cfg = crate::config::Config::load(&sources).map_err(|e| CliError::Failed {
        message: e.to_string(),
        code: 2,
    })?;
    let reports = probe(&cfg, root).await;
    let failed = reports.iter().any(ServerReport::failed);
    if json_out {
        let v = Value::Array(reports.iter().map(ServerReport::to_json).collect());
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        term::print_raw(&term::json_for_terminal(text))?;
        term::print_raw("\n")?;
    } else if reports.is_empty() {
        term::print(&format!(
            "No MCP servers configured (add [mcp_servers.NAME] to {}).\n",
            cfg.user_config_display()
        ))?;
    } else {
        for r in &reports {
            term::print(&format!("{}\n", r.render()))?;
        }
    }
    Ok(if failed {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}
