//! An emulated LSP editor for integration tests.
//!
//! Spawns the real binary, speaks real `Content-Length` framing on its stdin/stdout,
//! drains its stderr continuously, records every server→client message with a
//! timestamp, and answers server→client requests the way the emulated editor does
//! (see [`ShowMessagePolicy`] and [`Editor::server_requests`]). Buffers are emulated
//! so that `workspace/applyEdit` lands somewhere a test can look at.
//!
//! One background task reads the child's stdout, one writes its stdin (fed by a
//! channel, so the reader never blocks on a write), one drains stderr.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};

use super::uri;

/// Default time a request may take before the test fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which real editor to behave like. The initialize request is the captured one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientProfile {
    /// Helix 25.07.1: no `window.showMessage`; answers showMessageRequest with -32601.
    HelixRelease,
    /// Helix master (079a789e): has showMessageRequest; deferred to the test.
    HelixMaster,
    /// Neovim 0.11.4 (headless): declares showMessage but never answers it.
    Neovim,
    /// VS Code 1.100.3 (code-server): deferred to the test.
    VsCode,
    /// Minimal capabilities `{}`.
    Bare,
}

impl ClientProfile {
    /// File name prefix of the captured initialize request in `tests/clients/`.
    fn capture_prefix(self) -> Option<&'static str> {
        match self {
            ClientProfile::HelixRelease => Some("helix-25.07"),
            ClientProfile::HelixMaster => Some("helix-master-"),
            ClientProfile::Neovim => Some("neovim-"),
            ClientProfile::VsCode => Some("vscode-"),
            ClientProfile::Bare => None,
        }
    }

    /// How this editor answers `window/showMessageRequest` unless told otherwise.
    pub fn default_show_message_policy(self) -> ShowMessagePolicy {
        match self {
            ClientProfile::HelixRelease => ShowMessagePolicy::MethodNotFound,
            ClientProfile::Neovim => ShowMessagePolicy::Never,
            ClientProfile::HelixMaster | ClientProfile::VsCode | ClientProfile::Bare => {
                ShowMessagePolicy::Defer
            }
        }
    }
}

/// How `window/showMessageRequest` is answered.
pub enum ShowMessagePolicy {
    /// Leave it to the test: `next_server_request` + `reply`.
    Defer,
    /// Answer -32601 "Method not found" at once (Helix 25.07).
    MethodNotFound,
    /// Never answer (headless Neovim); a test may still take it and reply.
    Never,
    /// Answer at once with the returned action item, or `null` for `None`.
    AutoAnswer(Box<AnswerFn>),
}

/// Chooses the action item to answer a showMessageRequest with (`None`: `null`).
pub type AnswerFn = dyn Fn(&Value) -> Option<Value> + Send + Sync;

impl ShowMessagePolicy {
    /// Auto-answer with the action whose `title` is `title` (the whole item is sent
    /// back, extra properties such as `approvalId` included); `null` if absent.
    pub fn choose(title: &str) -> ShowMessagePolicy {
        let title = title.to_string();
        ShowMessagePolicy::AutoAnswer(Box::new(move |params| choose_action(params, &title)))
    }
}

/// The action item titled `title` of a showMessageRequest's params, if offered.
pub fn choose_action(params: &Value, title: &str) -> Option<Value> {
    params
        .get("actions")?
        .as_array()?
        .iter()
        .find(|a| a.get("title").and_then(Value::as_str) == Some(title))
        .cloned()
}

pub struct EditorConfig {
    pub bin: PathBuf,
    pub profile: ClientProfile,
    /// Workspace root: sent as rootUri/rootPath/workspaceFolders when `send_root`.
    pub root: PathBuf,
    /// false: rootUri/rootPath null and the captured workspaceFolders (Helix without a
    /// root marker).
    pub send_root: bool,
    /// `initializationOptions`; `Value::Null` leaves the key out.
    pub init_options: Value,
    /// Extra env for the child (applied last, so it can set XDG_* too).
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    /// Working directory of the child; `None` means `root`.
    pub cwd: Option<PathBuf>,
}

impl EditorConfig {
    /// Root sent, no initializationOptions, no args, no extra env, cwd = root.
    pub fn new(bin: impl Into<PathBuf>, profile: ClientProfile, root: impl Into<PathBuf>) -> Self {
        EditorConfig {
            bin: bin.into(),
            profile,
            root: root.into(),
            send_root: true,
            init_options: Value::Null,
            env: Vec::new(),
            args: Vec::new(),
            cwd: None,
        }
    }

    pub fn init_options(mut self, v: Value) -> Self {
        self.init_options = v;
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn no_root(mut self) -> Self {
        self.send_root = false;
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn method_not_found() -> RpcError {
        RpcError::new(-32601, "Method not found")
    }

    fn from_json(v: &Value) -> RpcError {
        RpcError {
            code: v.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            data: v.get("data").filter(|d| !d.is_null()).cloned(),
        }
    }

    fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JSON-RPC error {}: {}", self.code, self.message)?;
        if let Some(d) = &self.data {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// A server→client notification.
#[derive(Clone, Debug)]
pub struct Notification {
    pub method: String,
    pub params: Value,
    pub at: Instant,
}

/// A server→client request and what the editor answered.
#[derive(Clone, Debug)]
pub struct ServerRequest {
    pub id: Value,
    pub method: String,
    pub params: Value,
    pub at: Instant,
    pub answered_at: Option<Instant>,
    pub answer: Option<Result<Value, RpcError>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16,
    Utf32,
}

struct Buffer {
    text: String,
    version: i32,
    open: bool,
}

struct Slot {
    req: ServerRequest,
    /// Not answered automatically on arrival: a test may take it.
    deferred: bool,
    taken: bool,
}

type Pending = HashMap<i64, (String, oneshot::Sender<Result<Value, RpcError>>)>;

struct State {
    notifications: Vec<Notification>,
    slots: Vec<Slot>,
    pending: Pending,
    buffers: HashMap<String, Buffer>,
    problems: Vec<String>,
    show_policy: Arc<ShowMessagePolicy>,
    apply_edit_applied: bool,
    deferred_methods: HashSet<String>,
    encoding: Encoding,
    offered_encodings: Vec<String>,
    /// Set when stdout ended or its framing broke; the reason.
    closed: Option<String>,
}

enum Outgoing {
    Bytes(Vec<u8>, Option<oneshot::Sender<bool>>),
    Close,
}

struct Inner {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    out: mpsc::UnboundedSender<Outgoing>,
    next_id: AtomicI64,
    stderr: Mutex<Vec<u8>>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("editor state lock poisoned")
    }

    fn bump(&self) {
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn send(&self, msg: &Value) {
        let _ = self.out.send(Outgoing::Bytes(frame(msg), None));
    }

    async fn send_acked(&self, bytes: Vec<u8>) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.out.send(Outgoing::Bytes(bytes, Some(tx))).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    fn dump(&self) -> String {
        let st = self.lock();
        let mut s = String::new();
        s.push_str(&format!(
            "--- {} notification(s):\n",
            st.notifications.len()
        ));
        for n in st.notifications.iter().rev().take(60).rev() {
            s.push_str(&format!(
                "  {} {}\n",
                n.method,
                clip(&n.params.to_string(), 300)
            ));
        }
        s.push_str(&format!("--- {} server request(s):\n", st.slots.len()));
        for sl in &st.slots {
            let r = &sl.req;
            s.push_str(&format!(
                "  id={} {} {} answered={:?}\n",
                r.id,
                r.method,
                clip(&r.params.to_string(), 300),
                r.answer.as_ref().map(|a| clip(&format!("{a:?}"), 120))
            ));
        }
        if !st.problems.is_empty() {
            s.push_str(&format!("--- problems: {:#?}\n", st.problems));
        }
        if let Some(c) = &st.closed {
            s.push_str(&format!("--- server stdout closed: {c}\n"));
        }
        drop(st);
        let err = self.stderr_text();
        let tail = tail(&err, 6000);
        s.push_str(&format!(
            "--- server stderr (last {} bytes):\n{tail}",
            tail.len()
        ));
        s
    }

    async fn wait_state<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(v) = f(&mut self.lock()) {
                return Some(v);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return f(&mut self.lock()),
            }
        }
    }
}

/// The emulated editor. Dropping it kills the child.
pub struct Editor {
    inner: Arc<Inner>,
    child: Child,
    pid: u32,
    profile: ClientProfile,
    init_result: Value,
    xdg: tempfile::TempDir,
}

impl Editor {
    /// Spawn the child without any handshake (for tests of what happens before or
    /// instead of `initialize`).
    pub fn spawn(cfg: &EditorConfig) -> Editor {
        let xdg = tempfile::Builder::new()
            .prefix("tether-editor-xdg-")
            .tempdir()
            .expect("create temp dir for XDG_* of the child");
        let mut cmd = Command::new(&cfg.bin);
        cmd.args(&cfg.args)
            .current_dir(cfg.cwd.as_ref().unwrap_or(&cfg.root))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("TETHER_") || k.starts_with("OPENAI_") {
                cmd.env_remove(&*k);
            }
        }
        for sub in ["config", "data", "state", "cache"] {
            std::fs::create_dir_all(xdg.path().join(sub)).expect("create XDG dir");
        }
        cmd.env("XDG_CONFIG_HOME", xdg.path().join("config"))
            .env("XDG_DATA_HOME", xdg.path().join("data"))
            .env("XDG_STATE_HOME", xdg.path().join("state"))
            .env("XDG_CACHE_HOME", xdg.path().join("cache"));
        // The model server is on 127.0.0.1: never send that through a proxy.
        for var in ["NO_PROXY", "no_proxy"] {
            let old = std::env::var(var).unwrap_or_default();
            let sep = if old.is_empty() { "" } else { "," };
            cmd.env(var, format!("{old}{sep}127.0.0.1,localhost"));
        }
        for (k, v) in &cfg.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", cfg.bin.display()));
        let pid = child.id().expect("child pid");
        let stdin = child.stdin.take().expect("child stdin");
        let stdout = child.stdout.take().expect("child stdout");
        let stderr = child.stderr.take().expect("child stderr");

        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (changed, _) = watch::channel(0u64);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                notifications: Vec::new(),
                slots: Vec::new(),
                pending: HashMap::new(),
                buffers: HashMap::new(),
                problems: Vec::new(),
                show_policy: Arc::new(cfg.profile.default_show_message_policy()),
                apply_edit_applied: true,
                deferred_methods: HashSet::new(),
                encoding: Encoding::Utf16,
                offered_encodings: Vec::new(),
                closed: None,
            }),
            changed,
            out: out_tx,
            next_id: AtomicI64::new(1),
            stderr: Mutex::new(Vec::new()),
        });
        tokio::spawn(writer_task(stdin, out_rx));
        tokio::spawn(reader_task(stdout, inner.clone()));
        tokio::spawn(stderr_task(stderr, inner.clone()));
        Editor {
            inner,
            child,
            pid,
            profile: cfg.profile,
            init_result: Value::Null,
            xdg,
        }
    }

    /// Spawn, send the profile's captured `initialize` (patched), wait for the result,
    /// send `initialized`. Panics if initialize fails.
    pub async fn start(cfg: EditorConfig) -> (Editor, Value) {
        let mut ed = Editor::spawn(&cfg);
        let params = initialize_params(&cfg);
        let result = ed
            .initialize(params)
            .await
            .unwrap_or_else(|e| panic!("initialize failed: {e}\n{}", ed.inner.dump()));
        ed.notify("initialized", json!({})).await;
        (ed, result)
    }

    /// Send `initialize` with these params and remember the result's
    /// `capabilities.positionEncoding` (for applying edits). Does not send `initialized`.
    pub async fn initialize(&mut self, params: Value) -> Result<Value, RpcError> {
        let offered: Vec<String> = params
            .pointer("/capabilities/general/positionEncodings")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        self.inner.lock().offered_encodings = offered.clone();
        let result = self.request("initialize", params).await?;
        let chosen = result
            .pointer("/capabilities/positionEncoding")
            .and_then(Value::as_str)
            .map(str::to_string);
        {
            let mut st = self.inner.lock();
            st.encoding = match chosen.as_deref() {
                Some("utf-8") => Encoding::Utf8,
                Some("utf-32") => Encoding::Utf32,
                _ => Encoding::Utf16,
            };
            if let Some(c) = &chosen {
                let ok = if offered.is_empty() {
                    c == "utf-16"
                } else {
                    offered.contains(c)
                };
                if !ok {
                    st.problems.push(format!(
                        "server chose positionEncoding {c:?}, which the client did not offer ({offered:?})"
                    ));
                }
            }
        }
        self.init_result = result.clone();
        Ok(result)
    }

    pub fn initialize_result(&self) -> &Value {
        &self.init_result
    }

    pub fn profile(&self) -> ClientProfile {
        self.profile
    }

    /// Send a request; panics after [`REQUEST_TIMEOUT`] naming the method, or when the
    /// server's stdout ends or its framing breaks first.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.request_with_timeout(method, params, REQUEST_TIMEOUT)
            .await
    }

    pub async fn request_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        self.request_id_with_timeout(method, params, timeout)
            .1
            .await
    }

    /// Sends `tether/prompt` with `text`, in `session` once one is known (a
    /// `Null` session starts one), and keeps the session the result names:
    /// one turn of a conversation. Panics if the request fails.
    pub async fn prompt_in(&self, session: &mut Value, text: &str, timeout: Duration) -> Value {
        let mut params = json!({"text": text});
        if !session.is_null() {
            params["sessionId"] = session.clone();
        }
        let r = self
            .request_with_timeout("tether/prompt", params, timeout)
            .await
            .expect("prompt result");
        *session = r["sessionId"].clone();
        r
    }

    /// Send a request now and return its id with a future for the response, so a test
    /// can send `$/cancelRequest` for it (or spawn the future).
    pub fn request_id(
        &self,
        method: &str,
        params: Value,
    ) -> (
        i64,
        impl Future<Output = Result<Value, RpcError>> + Send + 'static,
    ) {
        self.request_id_with_timeout(method, params, REQUEST_TIMEOUT)
    }

    pub fn request_id_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> (
        i64,
        impl Future<Output = Result<Value, RpcError>> + Send + 'static,
    ) {
        let id = self.inner.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if !params.is_null() {
            msg["params"] = params;
        }
        {
            let mut st = self.inner.lock();
            if st.closed.is_none() {
                st.pending.insert(id, (method.to_string(), tx));
            } // else tx is dropped and the future panics with the reason
        }
        self.inner.send(&msg);
        let inner = self.inner.clone();
        let method = method.to_string();
        let fut = async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => panic!(
                    "request `{method}` (id {id}): no response, the server's stdout is gone\n{}",
                    inner.dump()
                ),
                Err(_) => panic!(
                    "request `{method}` (id {id}): no response within {timeout:?}\n{}",
                    inner.dump()
                ),
            }
        };
        (id, fut)
    }

    /// `$/cancelRequest` for a request id.
    pub async fn cancel_request(&self, id: i64) {
        self.notify("$/cancelRequest", json!({"id": id})).await;
    }

    /// Send a notification; returns once it is written to the child's stdin (or the
    /// write failed because the child is gone).
    pub async fn notify(&self, method: &str, params: Value) {
        let mut msg = json!({"jsonrpc": "2.0", "method": method});
        if !params.is_null() {
            msg["params"] = params;
        }
        self.inner.send_acked(frame(&msg)).await;
    }

    /// Write raw bytes to the child's stdin (for malformed-frame tests).
    pub async fn send_raw(&self, bytes: &[u8]) {
        self.inner.send_acked(bytes.to_vec()).await;
    }

    /// Close the child's stdin (the editor went away without `exit`).
    pub fn close_stdin(&self) {
        let _ = self.inner.out.send(Outgoing::Close);
    }

    // ----- server → client notifications

    pub fn notifications(&self) -> Vec<Notification> {
        self.inner.lock().notifications.clone()
    }

    /// Params of every `tether/update` so far.
    pub fn updates(&self) -> Vec<Value> {
        self.inner
            .lock()
            .notifications
            .iter()
            .filter(|n| n.method == "tether/update")
            .map(|n| n.params.clone())
            .collect()
    }

    /// The first notification (from the start, not only new ones) matching `pred`;
    /// panics on timeout with a dump of what arrived.
    pub async fn wait_notification(
        &self,
        pred: impl Fn(&Notification) -> bool,
        timeout: Duration,
    ) -> Notification {
        match self
            .inner
            .wait_state(timeout, |st| {
                st.notifications.iter().find(|n| pred(n)).cloned()
            })
            .await
        {
            Some(n) => n,
            None => panic!(
                "timed out after {timeout:?} waiting for a matching notification\n{}",
                self.inner.dump()
            ),
        }
    }

    /// Wait until at least `n` notifications match `pred`; returns all matching.
    pub async fn wait_notifications(
        &self,
        pred: impl Fn(&Notification) -> bool,
        n: usize,
        timeout: Duration,
    ) -> Vec<Notification> {
        let found = self
            .inner
            .wait_state(timeout, |st| {
                let v: Vec<Notification> = st
                    .notifications
                    .iter()
                    .filter(|x| pred(x))
                    .cloned()
                    .collect();
                (v.len() >= n).then_some(v)
            })
            .await;
        found.unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for {n} matching notification(s)\n{}",
                self.inner.dump()
            )
        })
    }

    /// The first `tether/update` whose params match `pred`.
    pub async fn wait_update(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        self.wait_notification(|n| n.method == "tether/update" && pred(&n.params), timeout)
            .await
            .params
    }

    // ----- server → client requests

    /// Every server→client request so far, answered or not.
    pub fn server_requests(&self) -> Vec<ServerRequest> {
        self.inner
            .lock()
            .slots
            .iter()
            .map(|s| s.req.clone())
            .collect()
    }

    /// The next not-yet-taken request of `method` that was not answered automatically
    /// (deferred or never-answered by policy); marks it taken. Panics on timeout.
    pub async fn next_server_request(&self, method: &str, timeout: Duration) -> ServerRequest {
        let got = self
            .inner
            .wait_state(timeout, |st| {
                let slot = st
                    .slots
                    .iter_mut()
                    .find(|s| s.req.method == method && s.deferred && !s.taken)?;
                slot.taken = true;
                Some(slot.req.clone())
            })
            .await;
        got.unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for a server request `{method}`\n{}",
                self.inner.dump()
            )
        })
    }

    /// The first server→client request (answered or not, taken or not) matching
    /// `pred`; panics on timeout. Does not mark it taken.
    pub async fn wait_server_request(
        &self,
        pred: impl Fn(&ServerRequest) -> bool,
        timeout: Duration,
    ) -> ServerRequest {
        let got = self
            .inner
            .wait_state(timeout, |st| {
                st.slots.iter().map(|s| &s.req).find(|r| pred(r)).cloned()
            })
            .await;
        got.unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for a matching server request\n{}",
                self.inner.dump()
            )
        })
    }

    /// Answer a server→client request (records `answered_at`). Panics if no such
    /// request is outstanding.
    pub async fn reply(&self, id: Value, result: Result<Value, RpcError>) {
        {
            let mut st = self.inner.lock();
            let Some(slot) = st.slots.iter_mut().rev().find(|s| s.req.id == id) else {
                drop(st);
                panic!(
                    "reply: the server sent no request with id {id}\n{}",
                    self.inner.dump()
                );
            };
            if slot.req.answered_at.is_some() {
                let m = slot.req.method.clone();
                drop(st);
                panic!("reply: request {id} ({m}) was already answered");
            }
            slot.taken = true;
            slot.req.answered_at = Some(Instant::now());
            slot.req.answer = Some(result.clone());
        }
        self.inner.bump();
        self.inner.send_acked(frame(&response(&id, &result))).await;
    }

    pub fn set_show_message_policy(&self, p: ShowMessagePolicy) {
        self.inner.lock().show_policy = Arc::new(p);
    }

    /// `false`: answer `workspace/applyEdit` with `{applied: false, failureReason}`
    /// without touching the buffers.
    pub fn set_apply_edit_answer(&self, applied: bool) {
        self.inner.lock().apply_edit_applied = applied;
    }

    /// Leave requests of `method` unanswered for the test to take (`true`), or go back
    /// to the automatic answer (`false`). Affects requests arriving afterwards.
    pub fn set_deferred(&self, method: &str, deferred: bool) {
        let mut st = self.inner.lock();
        if deferred {
            st.deferred_methods.insert(method.to_string());
        } else {
            st.deferred_methods.remove(method);
        }
    }

    // ----- buffers

    /// Text of every emulated buffer (opened by the test or created by applyEdit).
    pub fn documents(&self) -> HashMap<String, String> {
        self.inner
            .lock()
            .buffers
            .iter()
            .map(|(k, b)| (k.clone(), b.text.clone()))
            .collect()
    }

    pub fn document(&self, uri: &str) -> Option<String> {
        self.inner.lock().buffers.get(uri).map(|b| b.text.clone())
    }

    /// Version of an open document.
    pub fn version(&self, uri: &str) -> Option<i32> {
        self.inner
            .lock()
            .buffers
            .get(uri)
            .filter(|b| b.open)
            .map(|b| b.version)
    }

    /// Wait until the buffer for `uri` exists and satisfies `pred`; returns its text.
    pub async fn wait_document(
        &self,
        uri: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> String {
        let got = self
            .inner
            .wait_state(timeout, |st| {
                st.buffers
                    .get(uri)
                    .filter(|b| pred(&b.text))
                    .map(|b| b.text.clone())
            })
            .await;
        got.unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for document {uri}; now: {:?}\n{}",
                self.document(uri),
                self.inner.dump()
            )
        })
    }

    /// `textDocument/didOpen` with version 1.
    pub async fn open(&self, uri: &str, language_id: &str, text: &str) {
        self.inner.lock().buffers.insert(
            uri.to_string(),
            Buffer {
                text: text.to_string(),
                version: 1,
                open: true,
            },
        );
        self.inner.bump();
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}}),
        )
        .await;
    }

    /// Full-sync `textDocument/didChange` with version + 1.
    pub async fn change(&self, uri: &str, text: &str) {
        let version = {
            let mut st = self.inner.lock();
            let b = st
                .buffers
                .get_mut(uri)
                .filter(|b| b.open)
                .unwrap_or_else(|| panic!("change: {uri} is not open"));
            b.version += 1;
            b.text = text.to_string();
            b.version
        };
        self.inner.bump();
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        )
        .await;
    }

    /// `textDocument/didClose`; the buffer goes away.
    pub async fn close(&self, uri: &str) {
        self.inner.lock().buffers.remove(uri);
        self.inner.bump();
        self.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        )
        .await;
    }

    // ----- diagnostics

    /// What the emulator found wrong with the server's side of the protocol: broken
    /// framing, invalid JSON, responses to unknown ids, invalid edits or positions.
    pub fn problems(&self) -> Vec<String> {
        self.inner.lock().problems.clone()
    }

    pub fn stderr_text(&self) -> String {
        self.inner.stderr_text()
    }

    /// Wait until the child's stderr contains `needle`; panics on timeout.
    pub async fn wait_stderr(&self, needle: &str, timeout: Duration) {
        let inner = self.inner.clone();
        let ok = inner
            .wait_state(timeout, |_| {
                inner.stderr_text().contains(needle).then_some(())
            })
            .await;
        if ok.is_none() {
            panic!(
                "timed out after {timeout:?} waiting for {needle:?} on the server's stderr\n{}",
                self.inner.dump()
            );
        }
    }

    /// Everything recorded so far, for a failure message.
    pub fn dump(&self) -> String {
        self.inner.dump()
    }

    /// XDG_CONFIG_HOME given to the child (unless overridden in `env`).
    pub fn xdg_config_home(&self) -> PathBuf {
        self.xdg.path().join("config")
    }

    /// XDG_DATA_HOME given to the child (unless overridden in `env`).
    pub fn xdg_data_home(&self) -> PathBuf {
        self.xdg.path().join("data")
    }

    // ----- process

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `shutdown` (must succeed), then `exit`; waits for the child, killing it after 5 s.
    pub async fn shutdown(mut self) -> ExitStatus {
        if let Err(e) = self
            .request_with_timeout("shutdown", Value::Null, Duration::from_secs(10))
            .await
        {
            panic!("shutdown request failed: {e}\n{}", self.inner.dump());
        }
        self.notify("exit", Value::Null).await;
        self.close_stdin();
        match self.wait_exit(Duration::from_secs(5)).await {
            Some(s) => s,
            None => {
                let _ = self.child.start_kill();
                self.child.wait().await.expect("wait for killed child")
            }
        }
    }

    /// Wait for the child to exit by itself; `None` on timeout (it keeps running).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(r) => Some(r.expect("wait for child")),
            Err(_) => None,
        }
    }

    /// SIGKILL the child and reap it.
    pub async fn kill9(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid, which is not yet reaped.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGKILL);
        }
        let _ = self.child.wait().await;
    }
}

/// The `initialize` params `Editor::start` sends for this config: the profile's
/// captured request with processId, root and initializationOptions patched in.
pub fn initialize_params(cfg: &EditorConfig) -> Value {
    let mut p = match cfg.profile.capture_prefix() {
        None => json!({"processId": null, "rootPath": null, "rootUri": null, "capabilities": {}}),
        Some(prefix) => load_capture(prefix),
    };
    p["processId"] = json!(std::process::id());
    if cfg.send_root {
        let u = uri(&cfg.root);
        let name = cfg
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "root".to_string());
        p["rootUri"] = json!(u);
        p["rootPath"] = json!(cfg.root.to_string_lossy());
        p["workspaceFolders"] = json!([{"uri": u, "name": name}]);
    } else {
        p["rootUri"] = Value::Null;
        p["rootPath"] = Value::Null;
    }
    if !cfg.init_options.is_null() {
        p["initializationOptions"] = cfg.init_options.clone();
    }
    p
}

/// Directory of the captured initialize requests: `tests/clients` (copied from
/// the project's `shared/clients`, so a clone anywhere has them).
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn load_capture(prefix: &str) -> Value {
    let dir = clients_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "captured client requests not found at {}: {e}",
            dir.display()
        )
    });
    let mut matches: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    matches.sort();
    let path = matches.pop().unwrap_or_else(|| {
        panic!(
            "no captured initialize request {prefix}*.json in {}",
            dir.display()
        )
    });
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    // Either the params themselves or a whole JSON-RPC message.
    match v.get("params") {
        Some(p) if v.get("method").is_some() => p.clone(),
        _ => v,
    }
}

// ---------------------------------------------------------------------------
// Framing and background tasks

fn frame(msg: &Value) -> Vec<u8> {
    let body = msg.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn response(id: &Value, result: &Result<Value, RpcError>) -> Value {
    match result {
        Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_json()}),
    }
}

async fn writer_task(mut stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let mut broken = false;
    while let Some(msg) = rx.recv().await {
        match msg {
            Outgoing::Bytes(bytes, ack) => {
                let ok =
                    !broken && stdin.write_all(&bytes).await.is_ok() && stdin.flush().await.is_ok();
                broken |= !ok;
                if let Some(ack) = ack {
                    let _ = ack.send(ok);
                }
            }
            Outgoing::Close => break,
        }
    }
    // Dropping stdin closes the pipe.
}

async fn stderr_task<R: AsyncRead + Unpin>(mut stderr: R, inner: Arc<Inner>) {
    let echo = std::env::var_os("TETHER_TEST_STDERR").is_some();
    let mut buf = [0u8; 8192];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if echo {
                    eprint!("{}", String::from_utf8_lossy(&buf[..n]));
                }
                inner
                    .stderr
                    .lock()
                    .expect("stderr lock")
                    .extend_from_slice(&buf[..n]);
                inner.bump();
            }
        }
    }
}

/// Read one framed message. `Ok(None)` at a clean EOF between messages.
async fn read_frame<R: AsyncBufReadExt + Unpin>(rd: &mut R) -> Result<Option<Vec<u8>>, String> {
    let mut len: Option<usize> = None;
    let mut first = true;
    loop {
        let mut line = Vec::new();
        let n = rd
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| format!("read error: {e}"))?;
        if n == 0 {
            return if first {
                Ok(None)
            } else {
                Err("EOF inside a header block".to_string())
            };
        }
        first = false;
        if !line.ends_with(b"\r\n") {
            return Err(format!(
                "header line not terminated by CRLF: {:?}",
                String::from_utf8_lossy(&line)
            ));
        }
        let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
        if text.is_empty() {
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(format!("not a header line: {text:?}"));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            len = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad Content-Length: {value:?}"))?,
            );
        }
    }
    let len = len.ok_or("header block without Content-Length")?;
    let mut body = vec![0u8; len];
    rd.read_exact(&mut body)
        .await
        .map_err(|e| format!("EOF inside a {len}-byte body: {e}"))?;
    Ok(Some(body))
}

async fn reader_task<R: AsyncRead + Unpin>(stdout: R, inner: Arc<Inner>) {
    let mut rd = BufReader::new(stdout);
    let reason = loop {
        match read_frame(&mut rd).await {
            Ok(None) => break "EOF".to_string(),
            Err(e) => {
                let e = format!("broken framing on the server's stdout: {e}");
                inner.lock().problems.push(e.clone());
                break e;
            }
            Ok(Some(body)) => match serde_json::from_slice::<Value>(&body) {
                Ok(msg) => handle_message(&inner, msg),
                Err(e) => inner.lock().problems.push(format!(
                    "invalid JSON in a frame: {e}: {}",
                    clip(&String::from_utf8_lossy(&body), 300)
                )),
            },
        }
        inner.bump();
    };
    {
        let mut st = inner.lock();
        st.closed = Some(reason);
        st.pending.clear(); // wakes every waiter with a clear panic
    }
    inner.bump();
}

fn handle_message(inner: &Arc<Inner>, msg: Value) {
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        inner.lock().problems.push(format!(
            "message without jsonrpc 2.0: {}",
            clip(&msg.to_string(), 300)
        ));
    }
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    match (method, msg.get("id")) {
        (Some(method), None) => {
            inner.lock().notifications.push(Notification {
                method,
                params,
                at: Instant::now(),
            });
        }
        (Some(method), Some(id)) => handle_server_request(inner, id.clone(), method, params),
        (None, Some(id)) => {
            let key = id
                .as_i64()
                .or_else(|| id.as_str().and_then(|s| s.parse().ok()));
            let result = match (msg.get("result"), msg.get("error")) {
                (_, Some(e)) if !e.is_null() => Err(RpcError::from_json(e)),
                (Some(r), _) => Ok(r.clone()),
                _ => {
                    inner
                        .lock()
                        .problems
                        .push(format!("response without result or error: {msg}"));
                    Ok(Value::Null)
                }
            };
            let waiter = key.and_then(|k| inner.lock().pending.remove(&k));
            match waiter {
                Some((_, tx)) => {
                    let _ = tx.send(result);
                }
                None => inner.lock().problems.push(format!(
                    "response to an unknown request id {id}: {}",
                    clip(&msg.to_string(), 300)
                )),
            }
        }
        (None, None) => inner.lock().problems.push(format!(
            "message that is neither request, response nor notification: {msg}"
        )),
    }
}

enum Action {
    Answer(Result<Value, RpcError>),
    Defer,
}

fn handle_server_request(inner: &Arc<Inner>, id: Value, method: String, params: Value) {
    let (policy, deferred_by_test) = {
        let st = inner.lock();
        (
            st.show_policy.clone(),
            st.deferred_methods.contains(&method),
        )
    };
    let mut followups: Vec<Value> = Vec::new();
    let action = if deferred_by_test {
        Action::Defer
    } else {
        match method.as_str() {
            "window/workDoneProgress/create"
            | "client/registerCapability"
            | "client/unregisterCapability" => Action::Answer(Ok(Value::Null)),
            "workspace/configuration" => {
                let n = params
                    .get("items")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                Action::Answer(Ok(Value::Array(vec![Value::Null; n])))
            }
            "workspace/applyEdit" => {
                let mut st = inner.lock();
                let answer = if st.apply_edit_applied {
                    match apply_workspace_edit(&mut st, params.get("edit").unwrap_or(&Value::Null))
                    {
                        Ok(changes) => {
                            followups = changes;
                            json!({"applied": true})
                        }
                        Err(reason) => json!({"applied": false, "failureReason": reason}),
                    }
                } else {
                    json!({"applied": false, "failureReason": "rejected by the test"})
                };
                Action::Answer(Ok(answer))
            }
            "window/showMessageRequest" => match &*policy {
                ShowMessagePolicy::Defer | ShowMessagePolicy::Never => Action::Defer,
                ShowMessagePolicy::MethodNotFound => {
                    Action::Answer(Err(RpcError::method_not_found()))
                }
                ShowMessagePolicy::AutoAnswer(f) => {
                    Action::Answer(Ok(f(&params).unwrap_or(Value::Null)))
                }
            },
            _ => Action::Answer(Err(RpcError::method_not_found())),
        }
    };
    let now = Instant::now();
    let (answered_at, answer) = match &action {
        Action::Answer(r) => (Some(now), Some(r.clone())),
        Action::Defer => (None, None),
    };
    inner.lock().slots.push(Slot {
        req: ServerRequest {
            id: id.clone(),
            method,
            params,
            at: now,
            answered_at,
            answer,
        },
        deferred: matches!(action, Action::Defer),
        taken: false,
    });
    // An editor that applied an edit to an open buffer tells the server, before it
    // answers the applyEdit.
    for n in followups {
        inner.send(&n);
    }
    if let Action::Answer(r) = action {
        inner.send(&response(&id, &r));
    }
}

// ---------------------------------------------------------------------------
// WorkspaceEdit application

/// Apply a WorkspaceEdit to the buffers, all or nothing. Returns the didChange
/// notifications to send for open buffers that changed.
fn apply_workspace_edit(st: &mut State, edit: &Value) -> Result<Vec<Value>, String> {
    let enc = st.encoding;
    // Staged: uri -> Some(text) (present) / None (deleted); unchanged uris absent.
    let mut staged: HashMap<String, Option<String>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();

    let current =
        |staged: &HashMap<String, Option<String>>, st: &State, uri: &str| -> Option<String> {
            match staged.get(uri) {
                Some(v) => v.clone(),
                None => st
                    .buffers
                    .get(uri)
                    .map(|b| b.text.clone())
                    .or_else(|| read_uri_from_disk(uri)),
            }
        };

    let mut text_edit = |staged: &mut HashMap<String, Option<String>>,
                         order: &mut Vec<String>,
                         uri: &str,
                         version: Option<i64>,
                         edits: &[Value]|
     -> Result<(), String> {
        if let (Some(v), Some(b)) = (version, st.buffers.get(uri)) {
            if b.open && i64::from(b.version) != v {
                return Err(format!(
                    "version mismatch for {uri}: edit is for version {v}, the buffer is at {}",
                    b.version
                ));
            }
        }
        let text = current(staged, st, uri).unwrap_or_default();
        let new = apply_text_edits(&text, edits, enc, &mut problems)
            .map_err(|e| format!("{uri}: {e}"))?;
        staged.insert(uri.to_string(), Some(new));
        if !order.iter().any(|u| u == uri) {
            order.push(uri.to_string());
        }
        Ok(())
    };

    if let Some(dcs) = edit.get("documentChanges").and_then(Value::as_array) {
        for dc in dcs {
            match dc.get("kind").and_then(Value::as_str) {
                Some("create") => {
                    let uri = str_field(dc, "uri")?;
                    let exists = current(&staged, st, &uri).is_some();
                    let opt = |k: &str| {
                        dc.pointer(&format!("/options/{k}"))
                            .and_then(Value::as_bool)
                            == Some(true)
                    };
                    if exists && !opt("overwrite") {
                        if opt("ignoreIfExists") {
                            continue;
                        }
                        return Err(format!("create: {uri} already exists"));
                    }
                    staged.insert(uri.clone(), Some(String::new()));
                    order.push(uri);
                }
                Some("rename") => {
                    let old = str_field(dc, "oldUri")?;
                    let new = str_field(dc, "newUri")?;
                    let text = current(&staged, st, &old)
                        .ok_or_else(|| format!("rename: {old} does not exist"))?;
                    staged.insert(old.clone(), None);
                    staged.insert(new.clone(), Some(text));
                    order.push(old);
                    order.push(new);
                }
                Some("delete") => {
                    let uri = str_field(dc, "uri")?;
                    staged.insert(uri.clone(), None);
                    order.push(uri);
                }
                Some(other) => return Err(format!("unknown resource operation kind {other:?}")),
                None => {
                    let uri = dc
                        .pointer("/textDocument/uri")
                        .and_then(Value::as_str)
                        .ok_or("TextDocumentEdit without textDocument.uri")?
                        .to_string();
                    let version = dc.pointer("/textDocument/version").and_then(Value::as_i64);
                    let edits = dc
                        .get("edits")
                        .and_then(Value::as_array)
                        .ok_or("TextDocumentEdit without edits")?;
                    text_edit(&mut staged, &mut order, &uri, version, edits)?;
                }
            }
        }
    } else if let Some(changes) = edit.get("changes").and_then(Value::as_object) {
        for (uri, edits) in changes {
            let edits = edits
                .as_array()
                .ok_or_else(|| format!("changes[{uri}] is not an array"))?;
            text_edit(&mut staged, &mut order, uri, None, edits)?;
        }
    } else {
        return Err("WorkspaceEdit has neither documentChanges nor changes".to_string());
    }

    st.problems.extend(problems);
    let mut notes = Vec::new();
    order.dedup();
    for uri in order {
        let Some(new) = staged.remove(&uri) else {
            continue;
        };
        match new {
            None => {
                st.buffers.remove(&uri);
            }
            Some(text) => match st.buffers.get_mut(&uri) {
                Some(b) => {
                    if b.text != text || b.open {
                        b.text = text.clone();
                        if b.open {
                            b.version += 1;
                            notes.push(json!({
                                "jsonrpc": "2.0",
                                "method": "textDocument/didChange",
                                "params": {
                                    "textDocument": {"uri": uri, "version": b.version},
                                    "contentChanges": [{"text": text}],
                                },
                            }));
                        }
                    }
                }
                None => {
                    st.buffers.insert(
                        uri,
                        Buffer {
                            text,
                            version: 0,
                            open: false,
                        },
                    );
                }
            },
        }
    }
    Ok(notes)
}

fn str_field(v: &Value, k: &str) -> Result<String, String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("resource operation without {k}"))
}

fn read_uri_from_disk(uri: &str) -> Option<String> {
    let path = super::path_from_uri(uri)?;
    std::fs::read_to_string(path).ok()
}

/// Apply LSP TextEdits (ranges against the original text) to `text`, with
/// `character` counted in `encoding` ("utf-8", "utf-16" or "utf-32"), as the
/// emulator does for `workspace/applyEdit`. Positions inside a character or past
/// the last line are errors here.
pub fn apply_text_edits_to(text: &str, edits: &[Value], encoding: &str) -> Result<String, String> {
    let enc = match encoding {
        "utf-8" => Encoding::Utf8,
        "utf-32" => Encoding::Utf32,
        _ => Encoding::Utf16,
    };
    let mut problems = Vec::new();
    let r = apply_text_edits(text, edits, enc, &mut problems)?;
    if problems.is_empty() {
        Ok(r)
    } else {
        Err(problems.join("; "))
    }
}

fn apply_text_edits(
    text: &str,
    edits: &[Value],
    enc: Encoding,
    problems: &mut Vec<String>,
) -> Result<String, String> {
    let mut spans: Vec<(usize, usize, usize, &str)> = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        let start = e
            .pointer("/range/start")
            .ok_or_else(|| format!("edit #{i} without range.start"))?;
        let end = e
            .pointer("/range/end")
            .ok_or_else(|| format!("edit #{i} without range.end"))?;
        let new_text = e
            .get("newText")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("edit #{i} without newText"))?;
        let s = offset_of(text, start, enc, problems)?;
        let en = offset_of(text, end, enc, problems)?;
        if en < s {
            return Err(format!("edit #{i}: range end before start"));
        }
        spans.push((s, en, i, new_text));
    }
    spans.sort_by_key(|&(s, _, i, _)| (s, i));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for (s, en, i, new_text) in spans {
        if s < cursor {
            return Err(format!("edit #{i} overlaps an earlier edit"));
        }
        out.push_str(&text[cursor..s]);
        out.push_str(new_text);
        cursor = en;
    }
    out.push_str(&text[cursor..]);
    Ok(out)
}

/// Byte offset of an LSP position. Past the end of a line clamps to the line end (as
/// the spec says); past the last line clamps to the end and is recorded as a problem,
/// as is a position inside a character.
fn offset_of(
    text: &str,
    pos: &Value,
    enc: Encoding,
    problems: &mut Vec<String>,
) -> Result<usize, String> {
    let line = pos
        .get("line")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("bad position {pos}"))?;
    let character = pos
        .get("character")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("bad position {pos}"))?;
    let mut start = 0usize;
    for l in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => {
                problems.push(format!(
                    "position {pos} is past the last line (document has {} lines)",
                    l + 1
                ));
                return Ok(text.len());
            }
        }
    }
    let mut line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    if line_end > start && text.as_bytes()[line_end - 1] == b'\r' {
        line_end -= 1;
    }
    let mut units = 0u64;
    let mut off = start;
    for ch in text[start..line_end].chars() {
        if units >= character {
            break;
        }
        let w = match enc {
            Encoding::Utf8 => ch.len_utf8() as u64,
            Encoding::Utf16 => ch.len_utf16() as u64,
            Encoding::Utf32 => 1,
        };
        if units + w > character {
            problems.push(format!("position {pos} falls inside the character {ch:?}"));
        }
        units += w;
        off += ch.len_utf8();
    }
    Ok(off)
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = s.len() - max;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    &s[cut..]
}
