//! The model client: OpenAI-compatible Chat Completions over HTTP with SSE.
//!
//! Owns the HTTP connection pool, request building (model options, extra
//! headers, `extra_body`), the framing of the response body ([`sse`]), the
//! lenient parsing of its chunks ([`wire`]), retries with jittered exponential
//! backoff that honour `Retry-After`, the connect and per-event idle
//! timeouts, and cancellation. It reports streamed text through a callback
//! and returns the assembled completion; it never touches the store, the
//! editor or tools.
//!
//! Retry rules: 429, 5xx, connect errors, a connection that breaks and a
//! provider error with such a code are retried, but only while nothing has
//! been shown; once text has been streamed to the person, a break is reported
//! ([`ModelError::BrokenAfterOutput`]) rather than retried, so no text is ever
//! shown twice. A stream that just stops (no `finish_reason`, no `[DONE]`)
//! counts as a break: retried when nothing was shown, else an error that keeps
//! the text and says it was cut. Other 4xx are never retried. A response cut off in the middle
//! of tool-call arguments is retried once, then reported. An idle timeout
//! before any output is retried once.
//!
//! **Invariant:** the API key goes only into the `Authorization` header; error
//! messages are redacted before they leave this module.

pub mod sse;
pub mod window;
pub mod wire;

use crate::text::{prefix, truncate, Max};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::BackoffBuilder;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ModelOptions, Secret};
pub use wire::{Completion, ToolCall, Usage};

/// Something the stream produced before it ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Text(String),
    Reasoning(String),
}

/// Why a model request failed. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cancelled")]
    Cancelled,
    #[error("cannot reach the model at {url}: {message}; check that the server is running and that baseUrl is right")]
    Connect { url: String, message: String },
    #[error("the model endpoint answered HTTP {status}: {body}{}", status_hint(.status, .body))]
    Status { status: u16, body: String },
    #[error("the model provider reported an error: {0}")]
    Provider(String),
    #[error("the model sent nothing for {0} s (idle timeout) and the request was abandoned; try again, or raise modelOptions.idleTimeoutSecs for a slow model")]
    Idle(u64),
    #[error("the connection to the model broke: {0}; try again")]
    Broken(String),
    #[error("the model's reply broke off after part of it was shown: {0}. The partial reply was kept; ask again to continue")]
    BrokenAfterOutput(String),
    #[error("the model's response was cut off in the middle of a tool call's arguments, twice; ask again, or raise modelOptions.maxTokens")]
    CutOff,
    #[error("the model's response could not be read: {0}")]
    Malformed(String),
}

fn status_hint(status: &u16, body: &str) -> &'static str {
    if matches!(*status, 400 | 413 | 422) && window::is_overflow_error(body) {
        return " — the conversation is longer than the model's context window; Tether compacts it and retries once. If this persists, start a new session (/new) or set model_context_window to the server's real window";
    }
    match *status {
        401 | 403 => " — check the API key (TETHER_API_KEY, OPENAI_API_KEY or the variable named by apiKeyEnv)",
        404 => " — check baseUrl (it usually ends in /v1) and the model name",
        400 | 422 => " — the server rejected the request; check the model name and modelOptions (extraBody, maxTokens, temperature)",
        413 => " — the request is too large for this server; start a new session",
        429 => " — rate limited; wait a little and try again",
        500..=599 => " — the provider is having trouble; try again later",
        _ => "",
    }
}

impl ModelError {
    /// What went wrong, without the advice (for a break after output).
    fn cause(&self) -> String {
        match self {
            ModelError::Idle(n) => {
                format!(
                    "nothing arrived for {n} s (the idle timeout, modelOptions.idleTimeoutSecs)"
                )
            }
            ModelError::Broken(m) | ModelError::Provider(m) => m.clone(),
            ModelError::Connect { message, .. } => message.clone(),
            ModelError::Status { status, body } => format!("HTTP {status}: {body}"),
            other => other.to_string(),
        }
    }

    /// Whether the server said the request does not fit its context
    /// window; `Some(window)` when its text also states the window.
    pub fn overflow(&self) -> Option<Option<u64>> {
        let text = self.overflow_text()?;
        Some(window::from_overflow_error(text))
    }

    /// The prompt tokens an overflow error states (llama.cpp says them), to
    /// calibrate what a byte costs before the retry.
    pub fn overflow_prompt_tokens(&self) -> Option<u64> {
        window::prompt_tokens_in_overflow_error(self.overflow_text()?)
    }

    fn overflow_text(&self) -> Option<&str> {
        let text = match self {
            ModelError::Status {
                status: 400 | 413 | 422,
                body,
            } => body,
            ModelError::Provider(m) => m,
            _ => return None,
        };
        window::is_overflow_error(text).then_some(text.as_str())
    }

    /// Whether the person must be told (with `window/showMessage`): every
    /// failure except a cancellation they asked for.
    pub fn is_endpoint_problem(&self) -> bool {
        !matches!(self, ModelError::Cancelled)
    }
}

/// The longest `Retry-After` we wait for; beyond it the failure is reported.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Error bodies are cut to this many bytes in messages.
const MAX_ERROR_BODY: usize = 1000;

/// A transient failure that may be retried, with the server's requested delay.
struct Retryable {
    error: ModelError,
    retry_after: Option<Duration>,
}

enum AttemptError {
    Retry(Retryable),
    Fatal(ModelError),
}

fn retry(error: ModelError) -> AttemptError {
    AttemptError::Retry(Retryable {
        error,
        retry_after: None,
    })
}

/// Why a stream without `finish_reason` and `[DONE]` is an error.
const TRUNCATED: &str =
    "the stream ended without a finish_reason or [DONE], so the reply was cut short";

/// Whether the stream said it is finished.
enum Flow {
    More,
    Done,
}

/// HTTP client for one model endpoint. Cheap to clone.
#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<Secret>,
    headers: HeaderMap,
    opts: ModelOptions,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl ModelClient {
    /// Builds a client from the config; fails with the config's own message
    /// when no model is configured.
    pub fn from_config(cfg: &Config) -> Result<ModelClient, String> {
        cfg.check_model()?;
        let model = cfg.model.clone().unwrap_or_default();
        ModelClient::new(
            cfg.effective_base_url(),
            model,
            cfg.api_key.clone(),
            cfg.model_options.clone(),
        )
    }

    /// A client for `{base_url}/chat/completions`. Fails, saying which
    /// setting to fix, on an invalid extra header or a non-object `extra_body`.
    pub fn new(
        base_url: String,
        model: String,
        api_key: Option<Secret>,
        opts: ModelOptions,
    ) -> Result<ModelClient, String> {
        let mut headers = HeaderMap::new();
        for (k, v) in &opts.headers {
            let name = HeaderName::from_bytes(k.trim().as_bytes()).map_err(|_| {
                format!("modelOptions.headers: `{k}` is not a valid HTTP header name")
            })?;
            let mut value = HeaderValue::from_str(v.trim()).map_err(|_| {
                format!("modelOptions.headers: the value of `{k}` is not a valid HTTP header value")
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(extra) = &opts.extra_body {
            if !extra.is_object() {
                return Err(format!(
                    "modelOptions.extraBody must be a JSON object of fields to add to each request (e.g. {{\"top_k\": 20}}), not {extra}"
                ));
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(opts.connect_timeout_secs.max(1)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ModelClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            model,
            api_key: api_key.filter(|k| !k.expose().is_empty()),
            headers,
            opts,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
        })
    }

    /// The same client with other backoff bounds (default 200 ms .. 20 s,
    /// doubled per retry, plus up to 100 % jitter).
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> ModelClient {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The same client with another output cap (`max_tokens` of each request).
    pub fn with_max_tokens(&self, max_tokens: Option<u64>) -> ModelClient {
        let mut c = self.clone();
        c.opts.max_tokens = max_tokens;
        c
    }

    /// The output cap configured by the person (`model_options.max_tokens`).
    pub fn configured_max_tokens(&self) -> Option<u64> {
        self.opts.max_tokens
    }

    /// Asks the server for the model's context window (llama.cpp `/props`,
    /// model lists), then Tether's table of known models. Never fails.
    pub async fn discover_window(&self) -> Option<window::Window> {
        let headers = self.headers.clone();
        let key = self.api_key.clone();
        let auth = move |req: reqwest::RequestBuilder| {
            let mut req = req.headers(headers.clone());
            if let Some(k) = &key {
                if !headers.contains_key(AUTHORIZATION) {
                    req = req.bearer_auth(k.expose());
                }
            }
            req
        };
        window::discover(&self.http, &self.base_url, &self.model, &auth).await
    }

    /// The same endpoint with another model name (subagents).
    pub fn with_model(&self, model: &str) -> ModelClient {
        ModelClient {
            model: model.to_string(),
            ..self.clone()
        }
    }

    /// Removes the API key, and anything shaped like a key or a bearer
    /// token, from text that came from the server or the HTTP stack.
    fn redact(&self, s: &str) -> String {
        let s = match &self.api_key {
            Some(k) => s.replace(k.expose(), "[REDACTED]"),
            None => s.to_string(),
        };
        static PATTERN: OnceLock<Option<regex::Regex>> = OnceLock::new();
        let pattern = PATTERN.get_or_init(|| {
            regex::Regex::new(
                r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{12,}",
            )
            .ok()
        });
        match pattern {
            Some(re) => re
                .replace_all(&s, |c: &regex::Captures<'_>| match c.get(1) {
                    Some(prefix) => format!("{}[REDACTED]", prefix.as_str()),
                    None => "[REDACTED]".to_string(),
                })
                .into_owned(),
            None => s,
        }
    }

    #[cfg(test)]
    fn body(&self, messages: &[Value], tools: &[Value]) -> Value {
        let mut body = self.body_rest(tools);
        body["messages"] = Value::Array(messages.to_vec());
        body
    }

    /// The request body without its messages.
    fn body_rest(&self, tools: &[Value]) -> Value {
        let mut body = json!({
            "model": self.model,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools.to_vec());
        }
        if let Some(t) = self.opts.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(m) = self.opts.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if let Some(Value::Object(extra)) = &self.opts.extra_body {
            for (k, v) in extra {
                body[k] = v.clone();
            }
        }
        body
    }

    /// Sends one chat request and streams its reply. Retries transient
    /// failures that happen before any output was shown (see the module doc).
    pub async fn complete(
        &self,
        messages: &[Value],
        tools: &[Value],
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<Completion, ModelError> {
        let parts: Vec<String> = messages.iter().map(Value::to_string).collect();
        self.complete_serialized(&parts, tools, on_event, cancel)
            .await
    }

    /// [`ModelClient::complete`] with the messages already serialized, one
    /// JSON object each: a long conversation is not serialized again for
    /// every request, only spliced into the body.
    pub async fn complete_serialized(
        &self,
        messages: &[String],
        tools: &[Value],
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<Completion, ModelError> {
        let mut body = self.body_rest(tools);
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            .with_max_times(self.opts.max_retries)
            .with_jitter()
            .build();
        let mut cut_off_retried = false;
        let mut idle_retried = false;
        let mut dropped_stream_options = false;
        loop {
            let mut emitted = false;
            let payload = splice_messages(&body, messages);
            let result = self.attempt(payload, on_event, &mut emitted, cancel).await;
            let r = match result {
                Ok(c) if c.cut_off => {
                    if emitted {
                        return Err(ModelError::BrokenAfterOutput(
                            "the response ended in the middle of a tool call's arguments".into(),
                        ));
                    }
                    if cut_off_retried {
                        return Err(ModelError::CutOff);
                    }
                    cut_off_retried = true;
                    tracing::warn!("model response cut off mid tool arguments; retrying once");
                    continue;
                }
                Ok(c) if c.stream_incomplete => {
                    // No `finish_reason` and no `[DONE]`: the body just
                    // stopped. What arrived may be the whole answer or half
                    // of it; nobody can tell, so it is never passed off as a
                    // finished reply.
                    let error = ModelError::Broken(TRUNCATED.into());
                    if emitted {
                        return Err(ModelError::BrokenAfterOutput(TRUNCATED.into()));
                    }
                    Retryable {
                        error,
                        retry_after: None,
                    }
                }
                Ok(c) => return Ok(c),
                Err(AttemptError::Fatal(ModelError::Status { status, body: text }))
                    if matches!(status, 400 | 422)
                        && !dropped_stream_options
                        && text.contains("stream_options") =>
                {
                    // Some servers reject `stream_options`; usage is optional.
                    tracing::info!("the server rejects stream_options; retrying without it");
                    dropped_stream_options = true;
                    if let Value::Object(m) = &mut body {
                        m.remove("stream_options");
                    }
                    continue;
                }
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Retry(r)) => r,
            };
            if emitted {
                return Err(ModelError::BrokenAfterOutput(r.error.cause()));
            }
            if matches!(r.error, ModelError::Idle(_)) {
                if idle_retried {
                    return Err(r.error);
                }
                idle_retried = true;
            }
            if let Some(ra) = r.retry_after.filter(|ra| *ra > MAX_RETRY_AFTER) {
                return Err(match r.error {
                    ModelError::Status { status, body } => ModelError::Status {
                        status,
                        body: format!("{body} (the server asks to wait {} s)", ra.as_secs()),
                    },
                    e => e,
                });
            }
            let Some(backoff) = delays.next() else {
                return Err(r.error);
            };
            let wait = r.retry_after.map_or(backoff, |ra| ra.max(backoff));
            tracing::info!("model request failed ({}); retrying in {wait:?}", r.error);
            tokio::select! {
                _ = cancel.cancelled() => return Err(ModelError::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn attempt(
        &self,
        body: String,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        emitted: &mut bool,
        cancel: &CancellationToken,
    ) -> Result<Completion, AttemptError> {
        let url = format!("{}/chat/completions", self.base_url);
        let mut req = self
            .http
            .post(&url)
            .header(ACCEPT, "text/event-stream")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .headers(self.headers.clone())
            .body(body);
        if let Some(k) = &self.api_key {
            if !self.headers.contains_key(AUTHORIZATION) {
                req = req.bearer_auth(k.expose());
            }
        }
        let idle = Duration::from_secs(self.opts.idle_timeout_secs.max(1));
        let sent = tokio::select! {
            _ = cancel.cancelled() => return Err(AttemptError::Fatal(ModelError::Cancelled)),
            r = tokio::time::timeout(idle, req.send()) => r,
        };
        let resp = match sent {
            Err(_) => return Err(retry(ModelError::Idle(idle.as_secs()))),
            Ok(Err(e)) => {
                let message = self.redact(&root_cause(&e));
                return Err(if e.is_builder() {
                    AttemptError::Fatal(ModelError::Connect { url, message })
                } else if e.is_connect() || e.is_timeout() {
                    retry(ModelError::Connect { url, message })
                } else {
                    retry(ModelError::Broken(message))
                });
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if !status.is_success() {
            let retry_after = retry_after(resp.headers(), SystemTime::now());
            let text = tokio::select! {
                _ = cancel.cancelled() => return Err(AttemptError::Fatal(ModelError::Cancelled)),
                t = tokio::time::timeout(idle, resp.text()) => t.ok().and_then(|r| r.ok()).unwrap_or_default(),
            };
            let error = ModelError::Status {
                status: status.as_u16(),
                body: self.redact(&error_message(&text, status)),
            };
            return if status.as_u16() == 429 || status.is_server_error() {
                Err(AttemptError::Retry(Retryable { error, retry_after }))
            } else {
                Err(AttemptError::Fatal(error))
            };
        }

        let mut stream = resp.bytes_stream();
        let mut decoder = sse::Decoder::default();
        let mut asm = wire::Assembler::default();
        let mut items = Vec::new();
        'read: loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return Err(AttemptError::Fatal(ModelError::Cancelled)),
                n = tokio::time::timeout(idle, stream.next()) => n,
            };
            let ended = match next {
                Err(_) => return Err(retry(ModelError::Idle(idle.as_secs()))),
                Ok(Some(Err(e))) => {
                    return Err(retry(ModelError::Broken(self.redact(&root_cause(&e)))))
                }
                Ok(Some(Ok(bytes))) => {
                    decoder.feed(&bytes, &mut items);
                    false
                }
                Ok(None) => {
                    decoder.finish(&mut items);
                    true
                }
            };
            for item in items.drain(..) {
                match item {
                    sse::Item::Data(data) => {
                        if let Flow::Done = self.take_data(&data, &mut asm, on_event, emitted)? {
                            break 'read;
                        }
                    }
                    sse::Item::Whole(text) => {
                        return self.take_whole(&text, on_event, emitted);
                    }
                }
            }
            if ended {
                break;
            }
        }
        let c = asm.finish();
        if c.stream_incomplete && c.is_empty() {
            return Err(retry(ModelError::Broken(
                "the response ended before any output".into(),
            )));
        }
        // An incomplete stream is judged by `complete`, which knows whether
        // text was shown.
        Ok(c)
    }

    /// Handles the data of one event.
    fn take_data(
        &self,
        data: &str,
        asm: &mut wire::Assembler,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        emitted: &mut bool,
    ) -> Result<Flow, AttemptError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(Flow::More);
        }
        if data == "[DONE]" {
            asm.saw_done = true;
            return Ok(Flow::Done);
        }
        match asm.push(data) {
            Ok(events) => {
                for e in events {
                    if matches!(e, StreamEvent::Text(_)) {
                        *emitted = true;
                    }
                    on_event(e);
                }
                Ok(Flow::More)
            }
            Err(wire::ChunkError::Provider { message, code }) => {
                Err(self.provider_failure(&message, code))
            }
            Err(wire::ChunkError::Json(_)) if data.contains('\n') => {
                // A server that forgets the blank line between events sends
                // several chunks as one multi-line event.
                for line in data.lines() {
                    if let Flow::Done = self.take_data(line, asm, on_event, emitted)? {
                        return Ok(Flow::Done);
                    }
                }
                Ok(Flow::More)
            }
            Err(wire::ChunkError::Json(msg)) => {
                tracing::warn!(
                    "skipping an unreadable stream chunk ({msg}): {}",
                    self.redact(prefix(data, Max::Bytes(200))).as_str()
                );
                Ok(Flow::More)
            }
        }
    }

    /// Handles a response that was one body instead of a stream.
    fn take_whole(
        &self,
        text: &str,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        emitted: &mut bool,
    ) -> Result<Completion, AttemptError> {
        let c = match wire::parse_whole(text) {
            Ok(c) => c,
            Err(wire::ChunkError::Provider { message, code }) => {
                return Err(self.provider_failure(&message, code))
            }
            Err(wire::ChunkError::Json(msg)) => {
                return Err(AttemptError::Fatal(ModelError::Malformed(format!(
                    "{msg}; the body starts with: {}",
                    self.redact(prefix(text, Max::Bytes(300)))
                ))))
            }
        };
        if !c.reasoning.is_empty() {
            on_event(StreamEvent::Reasoning(c.reasoning.clone()));
        }
        if !c.text.is_empty() {
            *emitted = true;
            on_event(StreamEvent::Text(c.text.clone()));
        }
        Ok(c)
    }

    /// An error the provider reported with a 200: retried when its code says
    /// it is transient.
    fn provider_failure(&self, message: &str, code: Option<u64>) -> AttemptError {
        let shown = match code {
            Some(c) => format!("{} (code {c})", self.redact(message)),
            None => self.redact(message),
        };
        let error = ModelError::Provider(shown);
        match code {
            Some(429) | Some(500..=599) => retry(error),
            _ => AttemptError::Fatal(error),
        }
    }
}

/// The body as JSON text: `rest` with `"messages": [...]` spliced in.
fn splice_messages(rest: &Value, messages: &[String]) -> String {
    let rest = rest.to_string();
    let len = messages.iter().map(|m| m.len() + 1).sum::<usize>() + rest.len() + 16;
    let mut out = String::with_capacity(len);
    out.push_str("{\"messages\":[");
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m);
    }
    out.push(']');
    match rest.strip_prefix('{') {
        Some("}") | None => out.push('}'),
        Some(more) => {
            out.push(',');
            out.push_str(more);
        }
    }
    out
}

/// The readable part of an error body: OpenAI-style `error.message` when
/// there is one, else the text itself, cut short.
fn error_message(text: &str, status: reqwest::StatusCode) -> String {
    let text = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let err = v.get("error").unwrap_or(&v);
        let msg = match err {
            Value::String(s) => Some(s.clone()),
            _ => err
                .get("message")
                .or_else(|| err.get("detail"))
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        if let Some(m) = msg.filter(|m| !m.trim().is_empty()) {
            return truncate(m.trim(), Max::Bytes(MAX_ERROR_BODY), "…").into_owned();
        }
    }
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no error message")
            .to_string();
    }
    truncate(text, Max::Bytes(MAX_ERROR_BODY), "…").into_owned()
}

/// The delay a server asks for: `retry-after-ms` (OpenAI, Azure), else
/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let secs = |s: f64| {
        (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(86_400.0 * 365.0)))
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Some(d) = secs(ms / 1000.0) {
            return Some(d);
        }
    }
    let v = get("retry-after")?;
    if let Ok(s) = v.parse::<f64>() {
        return secs(s);
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    if !zone.eq_ignore_ascii_case("GMT") && !zone.eq_ignore_ascii_case("UTC") {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS.iter().position(|m| month.eq_ignore_ascii_case(m))? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&m)
        || !(0..61).contains(&sec)
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + h * 3600 + m * 60 + sec;
    u64::try_from(t)
        .ok()
        .map(|t| UNIX_EPOCH + Duration::from_secs(t))
}

/// The innermost cause of a transport error ("Connection reset by peer"),
/// which says more than reqwest's outer layers; the whole chain is logged.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut chain = e.to_string();
    let mut last = chain.clone();
    let mut src = e.source();
    while let Some(inner) = src {
        last = inner.to_string();
        chain.push_str(": ");
        chain.push_str(&last);
        src = inner.source();
    }
    tracing::debug!("model transport error: {chain}");
    if last.trim().is_empty() {
        chain
    } else {
        last
    }
}

pub use crate::text::floor_char_boundary;

#[cfg(test)]
mod tests {
    use super::*;

    fn default_opts() -> ModelOptions {
        let sources = crate::config::Sources {
            env: Default::default(),
            init_options: None,
            workspace_root: None,
        };
        match Config::load(&sources) {
            Ok(c) => c.model_options,
            Err(e) => panic!("default config: {e}"),
        }
    }

    fn client(key: Option<&str>) -> ModelClient {
        ModelClient::new(
            "http://127.0.0.1:9/v1/".into(),
            "m".into(),
            key.map(Secret::new),
            default_opts(),
        )
        .expect("client")
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert_eq!(
            retry_after(&h(&[("retry-after", "1")]), now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "0.5")]), now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "2"), ("retry-after-ms", "1500")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "Sun, 06 Nov 1994 08:49:00 GMT")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&h(&[("retry-after", "-3")]), now), None);
        assert_eq!(retry_after(&h(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&h(&[("retry-after", "1e400")]), now), None);
        assert_eq!(retry_after(&h(&[]), now), None);
    }

    #[test]
    fn redaction_and_error_bodies() {
        let c = client(Some("sk-test-secret-123"));
        let r = c.redact("bad key sk-test-secret-123, header Bearer abcdefgh12345678, other sk-proj-ABCDEFGHIJKLMNOP");
        assert!(
            !r.contains("secret-123")
                && !r.contains("abcdefgh1234")
                && !r.contains("ABCDEFGHIJKLMNOP"),
            "{r}"
        );
        assert!(r.contains("Bearer [REDACTED]"), "{r}");
        let s = reqwest::StatusCode::UNAUTHORIZED;
        assert_eq!(
            error_message(r#"{"error":{"message":"Invalid key"}}"#, s),
            "Invalid key"
        );
        assert_eq!(error_message(r#"{"detail":"Not found"}"#, s), "Not found");
        assert_eq!(error_message("", s), "Unauthorized");
        let long = "é".repeat(2000);
        let m = error_message(&long, s);
        assert!(m.len() <= MAX_ERROR_BODY + 3 && m.ends_with('…'));
        let e = ModelError::Status {
            status: 401,
            body: "Invalid key".into(),
        };
        assert!(e.to_string().contains("TETHER_API_KEY"), "{e}");
    }

    #[test]
    fn options_are_checked_and_applied() {
        let mut opts = default_opts();
        opts.headers.insert("bad header".into(), "x".into());
        let e = ModelClient::new("http://x/v1".into(), "m".into(), None, opts.clone())
            .err()
            .unwrap_or_default();
        assert!(e.contains("bad header"), "{e}");
        opts.headers.clear();
        opts.headers.insert("X-Title".into(), "Tether".into());
        opts.extra_body = Some(json!([1]));
        assert!(ModelClient::new("http://x/v1".into(), "m".into(), None, opts.clone()).is_err());
        opts.extra_body = Some(json!({"top_k": 20, "stream_options": null}));
        opts.temperature = Some(0.25);
        opts.max_tokens = Some(64);
        let c = ModelClient::new("http://x/v1/".into(), "m".into(), None, opts).expect("client");
        let b = c.body(&[json!({"role": "user", "content": "hi"})], &[]);
        let spliced: Value = serde_json::from_str(&splice_messages(
            &c.body_rest(&[]),
            &[json!({"role": "user", "content": "hi"}).to_string()],
        ))
        .expect("spliced body is JSON");
        assert_eq!(spliced, b);
        assert_eq!(b["top_k"], 20);
        assert_eq!(b["temperature"], 0.25);
        assert_eq!(b["max_tokens"], 64);
        assert!(b.get("tools").is_none());
        assert_eq!(c.base_url, "http://x/v1");
    }
}
