//! A scripted OpenAI-compatible model server for integration tests.
//!
//! Real HTTP/1.1 on `127.0.0.1:0`, written by hand on a tokio `TcpListener` so that
//! faults (resets, hangs, slow streams, error statuses) can be injected exactly.
//! Every request is recorded; `POST /v1/chat/completions` is answered from a
//! script (or a function of the request body), anything else gets 404.
//!
//! Streamed replies use `Transfer-Encoding: chunked` and `Connection: close`, like
//! OpenAI does, so that a connection dropped mid-stream is an error for the client
//! rather than a clean end of body.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// One scripted answer to one chat-completions request.
pub enum Reply {
    /// Streamed SSE assistant text, split into chunks of a few chars each, then
    /// `finish_reason: "stop"` and `data: [DONE]`.
    Text(String),
    /// Streamed tool calls: each `(id, name, arguments_json_string)`, arguments split
    /// across several chunks, `index` set; `finish_reason: "tool_calls"`; `[DONE]`.
    ToolCalls(Vec<(String, String, String)>),
    /// Text followed by tool calls in the same response.
    TextThenTools(String, Vec<(String, String, String)>),
    /// Raw SSE: each string is sent as one `data: <s>\n\n` event exactly as given;
    /// `done` controls whether `data: [DONE]` is sent. The body then ends cleanly.
    RawSse { events: Vec<String>, done: bool },
    /// Non-streaming: 200 with this JSON body (`application/json`), whatever `stream` says.
    Json(Value),
    /// An HTTP error status with extra headers and a body, e.g.
    /// `Status(429, vec![("Retry-After".into(), "1".into())], "{...}".into())`.
    /// `Content-Type: application/json` is added unless given.
    Status(u16, Vec<(String, String)>, String),
    /// Close the TCP connection (with RST) after reading the request, before any byte.
    ResetBeforeFirstByte,
    /// Stream this text in chunks, then reset the connection (no finish_reason, no
    /// `[DONE]`, no terminating chunk).
    TextThenReset(String),
    /// Send headers and the text chunks, then go silent forever with the socket open.
    /// When the client closes the socket it is counted in `closed_connections`.
    TextThenHang(String),
    /// Stream text chunks with a delay before each, then finish normally. If the client
    /// goes away meanwhile, that is counted in `closed_connections`.
    SlowText { text: String, chunk_delay_ms: u64 },
}

impl Reply {
    /// `Reply::Text` from anything string-like.
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Text(s.into())
    }

    /// `Reply::Status` with a JSON error body in OpenAI's shape.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::Status(
            status,
            vec![],
            json!({"error": {"message": message, "type": "scripted_error", "code": status}})
                .to_string(),
        )
    }

    /// 429 with `Retry-After: <secs>` and an OpenAI-shaped body.
    pub fn rate_limited(retry_after_secs: u64) -> Reply {
        Reply::Status(
            429,
            vec![("Retry-After".to_string(), retry_after_secs.to_string())],
            json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
                .to_string(),
        )
    }
}

/// Build one tool call for `Reply::ToolCalls`: `(id, name, args as a JSON string)`.
pub fn call(id: &str, name: &str, args: Value) -> (String, String, String) {
    (id.to_string(), name.to_string(), args.to_string())
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Request target as sent, e.g. `/v1/chat/completions` (query string included).
    pub path: String,
    /// Header names lower-cased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    /// Parsed JSON body, or `Value::Null` when the body is empty or not JSON.
    pub body: Value,
    /// The raw body, lossily decoded.
    pub raw_body: String,
    /// When the request had been read completely.
    pub at: Instant,
}

impl Recorded {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

type ReplyFn = dyn Fn(&Value) -> Reply + Send + Sync;

enum Source {
    Script(Mutex<VecDeque<Reply>>),
    Func(Box<ReplyFn>),
}

struct Shared {
    source: Source,
    /// Model ids served at `GET /v1/models`; `None`: that route is a 404.
    models: Mutex<Option<Vec<String>>>,
    requests: Mutex<Vec<Recorded>>,
    closed: Mutex<Vec<Instant>>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn bump(&self) {
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn record_close(&self) {
        self.closed
            .lock()
            .expect("model server closed-list lock")
            .push(Instant::now());
        self.bump();
    }

    fn next_reply(&self, body: &Value) -> Reply {
        match &self.source {
            Source::Script(q) => q
                .lock()
                .expect("model server script lock")
                .pop_front()
                .unwrap_or_else(|| {
                    Reply::Status(
                        500,
                        vec![("Content-Type".into(), "text/plain".into())],
                        "script exhausted".into(),
                    )
                }),
            Source::Func(f) => f(body),
        }
    }
}

/// The scripted server. Dropping it stops accepting and aborts open connections.
pub struct ModelServer {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl ModelServer {
    /// Serve the replies in order, one per chat-completions request; a request beyond
    /// the script gets HTTP 500 with body `script exhausted` (and is recorded).
    pub async fn start(script: Vec<Reply>) -> ModelServer {
        Self::start_source(Source::Script(Mutex::new(script.into()))).await
    }

    /// Decide each reply from the request body (for concurrent requests whose order
    /// is not deterministic, e.g. subagents).
    pub async fn start_with(f: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> ModelServer {
        Self::start_source(Source::Func(Box::new(f))).await
    }

    async fn start_source(source: Source) -> ModelServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("model server: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("model server: local_addr");
        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            source,
            models: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            closed: Mutex::new(Vec::new()),
            changed,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        ModelServer {
            shared,
            addr,
            accept,
        }
    }

    /// Serve these model ids at `GET /v1/models` (OpenAI's list shape).
    pub fn serve_models(&self, ids: &[&str]) {
        *self.shared.models.lock().expect("models lock") =
            Some(ids.iter().map(|s| s.to_string()).collect());
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .expect("model server requests lock")
            .clone()
    }

    /// The chat-completions requests received so far, in arrival order
    /// (without the `GET`s Tether sends to learn the model's context window
    /// once a conversation grows).
    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/chat/completions"))
            .collect()
    }

    /// Replies of a `start` script not yet consumed (0 for `start_with`).
    pub fn script_remaining(&self) -> usize {
        match &self.shared.source {
            Source::Script(q) => q.lock().expect("model server script lock").len(),
            Source::Func(_) => 0,
        }
    }

    /// Wait until at least `n` requests have been received; panics on timeout.
    pub async fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let ok = self
            .wait_for(timeout, || {
                self.shared.requests.lock().expect("requests lock").len() >= n
            })
            .await;
        let reqs = self.requests();
        if !ok {
            panic!(
                "model server: timed out after {timeout:?} waiting for {n} request(s); got {}:\n{}",
                reqs.len(),
                summarize(&reqs)
            );
        }
        reqs
    }

    /// How many hanging (`TextThenHang`) or slow (`SlowText`) streams the client has
    /// closed before the server ended them.
    pub fn closed_connections(&self) -> usize {
        self.shared.closed.lock().expect("closed lock").len()
    }

    /// Wait until the `n`-th such close and return when it was noticed; panics on timeout.
    pub async fn wait_closed(&self, n: usize, timeout: Duration) -> Instant {
        assert!(n >= 1, "wait_closed: n starts at 1");
        let ok = self
            .wait_for(timeout, || {
                self.shared.closed.lock().expect("closed lock").len() >= n
            })
            .await;
        if !ok {
            panic!(
                "model server: timed out after {timeout:?} waiting for the client to close streaming connection #{n}; closed so far: {}; requests:\n{}",
                self.closed_connections(),
                summarize(&self.requests())
            );
        }
        self.shared.closed.lock().expect("closed lock")[n - 1]
    }

    async fn wait_for(&self, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if cond() {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return cond(),
                Err(_) => return cond(),
            }
        }
    }
}

fn summarize(reqs: &[Recorded]) -> String {
    reqs.iter()
        .enumerate()
        .map(|(i, r)| {
            let mut body = r.raw_body.clone();
            if body.len() > 400 {
                let mut cut = 400;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
                body.push('…');
            }
            format!("  #{i} {} {} {}", r.method, r.path, body)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `role: "tool"` messages of a request body, in order: `(tool_call_id, content)`.
/// Content given as an array of parts is joined from its `text` parts.
pub fn tool_results(body: &Value) -> Vec<(String, String)> {
    messages_of(body)
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .map(|m| {
            let id = m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (id, content_text(m.get("content")))
        })
        .collect()
}

/// The names of the tools offered in a request body (`tools[].function.name`).
pub fn tool_names(body: &Value) -> Vec<String> {
    body.get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `(role, text)` of every message of a request body, in order (text parts joined).
pub fn messages(body: &Value) -> Vec<(String, String)> {
    messages_of(body)
        .iter()
        .map(|m| {
            (
                m.get("role")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                content_text(m.get("content")),
            )
        })
        .collect()
}

fn messages_of(body: &Value) -> Vec<Value> {
    body.get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Server internals

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here so that aborting this task aborts every open connection.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        conns.spawn(handle_connection(stream, shared.clone()));
    }
}

struct RawRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn handle_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Ok(Some(req)) = read_request(&mut stream).await else {
        return; // the client went away before sending a full request
    };
    let raw_body = String::from_utf8_lossy(&req.body).into_owned();
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    shared
        .requests
        .lock()
        .expect("requests lock")
        .push(Recorded {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers,
            body: body.clone(),
            raw_body,
            at: Instant::now(),
        });
    shared.bump();

    let path_only = req.path.split('?').next().unwrap_or_default();
    let models = shared.models.lock().expect("models lock").clone();
    let reply = if req.method == "POST" && path_only == "/v1/chat/completions" {
        shared.next_reply(&body)
    } else if let (Some(ids), true) = (models, req.method == "GET" && path_only == "/v1/models") {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "object": "model", "owned_by": "scripted"}))
            .collect();
        Reply::Status(
            200,
            vec![("Content-Type".into(), "application/json".into())],
            json!({"object": "list", "data": data}).to_string(),
        )
    } else {
        Reply::Status(
            404,
            vec![],
            json!({"error": {"message": format!("no route for {} {}", req.method, req.path)}})
                .to_string(),
        )
    };
    // Write errors mean the client went away; nothing to do about it here.
    let _ = serve_reply(&mut stream, reply, &shared).await;
}

const MAX_HEAD: usize = 64 * 1024;

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<RawRequest>> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let mut tmp = [0u8; 4096];
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    let body = if header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        read_chunked(stream, rest).await?
    } else {
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            let mut tmp = vec![0u8; (len - rest.len()).min(64 * 1024)];
            let n = stream.read(&mut tmp).await?;
            if n == 0 {
                return Ok(None);
            }
            rest.extend_from_slice(&tmp[..n]);
        }
        rest.truncate(len);
        rest
    };
    Ok(Some(RawRequest {
        method,
        path,
        headers,
        body,
    }))
}

async fn read_chunked(stream: &mut TcpStream, mut buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(pos) = find(&buf, b"\r\n") {
                break pos;
            }
            fill(stream, &mut buf).await?;
        };
        let size_str = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("0").trim(), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Ok(body); // trailers, if any, are ignored
        }
        while buf.len() < size + 2 {
            fill(stream, &mut buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut tmp = [0u8; 4096];
    let n = stream.read(&mut tmp).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&tmp[..n]);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

async fn serve_reply(stream: &mut TcpStream, reply: Reply, shared: &Shared) -> std::io::Result<()> {
    match reply {
        Reply::Text(text) => {
            let mut events = text_events(&text, true);
            events.push(finish_event("stop"));
            stream_events(stream, &events, true).await
        }
        Reply::ToolCalls(calls) => {
            let mut events = tool_events(&calls, true);
            events.push(finish_event("tool_calls"));
            stream_events(stream, &events, true).await
        }
        Reply::TextThenTools(text, calls) => {
            let mut events = text_events(&text, true);
            events.extend(tool_events(&calls, text.is_empty()));
            events.push(finish_event("tool_calls"));
            stream_events(stream, &events, true).await
        }
        Reply::RawSse { events, done } => stream_events(stream, &events, done).await,
        Reply::Json(v) => {
            let body = v.to_string();
            write_plain(
                stream,
                200,
                &[("Content-Type".into(), "application/json".into())],
                &body,
            )
            .await
        }
        Reply::Status(code, headers, body) => write_plain(stream, code, &headers, &body).await,
        Reply::ResetBeforeFirstByte => {
            let _ = stream.set_zero_linger();
            Ok(())
        }
        Reply::TextThenReset(text) => {
            stream.write_all(SSE_HEAD.as_bytes()).await?;
            for e in text_events(&text, true) {
                stream.write_all(&chunk(&sse(&e))).await?;
            }
            stream.flush().await?;
            let _ = stream.set_zero_linger();
            Ok(())
        }
        Reply::TextThenHang(text) => {
            stream.write_all(SSE_HEAD.as_bytes()).await?;
            for e in text_events(&text, true) {
                stream.write_all(&chunk(&sse(&e))).await?;
            }
            stream.flush().await?;
            wait_eof(stream).await;
            shared.record_close();
            Ok(())
        }
        Reply::SlowText {
            text,
            chunk_delay_ms,
        } => {
            let (mut rd, mut wr) = stream.split();
            wr.write_all(SSE_HEAD.as_bytes()).await?;
            wr.flush().await?;
            let mut events = text_events(&text, true);
            events.push(finish_event("stop"));
            let delay = Duration::from_millis(chunk_delay_ms);
            for e in events {
                // Pacing, not synchronisation: meanwhile watch for the client leaving.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = wait_eof(&mut rd) => {
                        shared.record_close();
                        return Ok(());
                    }
                }
                if wr.write_all(&chunk(&sse(&e))).await.is_err() {
                    shared.record_close();
                    return Ok(());
                }
                wr.flush().await?;
            }
            wr.write_all(&chunk(b"data: [DONE]\n\n")).await?;
            wr.write_all(b"0\r\n\r\n").await?;
            wr.flush().await?;
            let _ = wr.shutdown().await;
            Ok(())
        }
    }
}

/// Resolves when the peer closes (EOF or error); data it sends meanwhile is ignored.
async fn wait_eof<R: AsyncRead + Unpin>(rd: &mut R) {
    let mut b = [0u8; 1024];
    loop {
        match rd.read(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

async fn write_plain(
    stream: &mut TcpStream,
    code: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await?;
    let _ = stream.shutdown().await;
    Ok(())
}

async fn stream_events(
    stream: &mut TcpStream,
    events: &[String],
    done: bool,
) -> std::io::Result<()> {
    stream.write_all(SSE_HEAD.as_bytes()).await?;
    for e in events {
        stream.write_all(&chunk(&sse(e))).await?;
    }
    if done {
        stream.write_all(&chunk(b"data: [DONE]\n\n")).await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    stream.flush().await?;
    let _ = stream.shutdown().await;
    Ok(())
}

fn sse(event: &str) -> Vec<u8> {
    format!("data: {event}\n\n").into_bytes()
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

fn chunk_json(delta: Value, finish_reason: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
    .to_string()
}

fn finish_event(reason: &str) -> String {
    chunk_json(json!({}), Some(reason))
}

/// Split into pieces of 1..=5 chars (cycling 3,1,4,2,5), on char boundaries.
fn split_pieces(s: &str) -> Vec<String> {
    const SIZES: [usize; 5] = [3, 1, 4, 2, 5];
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < chars.len() {
        let n = SIZES[k % SIZES.len()].min(chars.len() - i);
        out.push(chars[i..i + n].iter().collect());
        i += n;
        k += 1;
    }
    out
}

fn text_events(text: &str, with_role: bool) -> Vec<String> {
    split_pieces(text)
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let delta = if i == 0 && with_role {
                json!({"role": "assistant", "content": piece})
            } else {
                json!({"content": piece})
            };
            chunk_json(delta, None)
        })
        .collect()
}

/// Split arguments into about three pieces (at least two when there are 2+ chars).
fn split_args(args: &str) -> Vec<String> {
    let chars: Vec<char> = args.chars().collect();
    if chars.len() < 2 {
        return vec![args.to_string()];
    }
    let n = chars.len().div_ceil(3).max(1);
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

fn tool_events(calls: &[(String, String, String)], with_role: bool) -> Vec<String> {
    let mut events = Vec::new();
    for (index, (id, name, args)) in calls.iter().enumerate() {
        let pieces = split_args(args);
        for (j, piece) in pieces.iter().enumerate() {
            let call = if j == 0 {
                json!({"index": index, "id": id, "type": "function",
                       "function": {"name": name, "arguments": piece}})
            } else {
                json!({"index": index, "function": {"arguments": piece}})
            };
            let delta = if index == 0 && j == 0 && with_role {
                json!({"role": "assistant", "content": null, "tool_calls": [call]})
            } else {
                json!({"tool_calls": [call]})
            };
            events.push(chunk_json(delta, None));
        }
    }
    events
}
