//! The model client: OpenAI-compatible Chat Completions over HTTP with SSE.
//!
//! Owns the HTTP connection pool, request building, the lenient parsing of
//! streamed chunks ([`wire`]), retries with backoff and the idle timeout.
//! It reports streamed text through a callback and returns the assembled
//! completion; it never touches the store, the editor or tools.
//!
//! **Invariant:** the API key goes only into the `Authorization` header; error
//! messages are redacted before they leave this module.

pub mod wire;

use std::time::Duration;

use backon::BackoffBuilder;
use eventsource_stream::Eventsource;
use futures::StreamExt;
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

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cancelled")]
    Cancelled,
    #[error("cannot reach the model at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the model endpoint answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the model sent nothing for {0} s (idle timeout); the request was abandoned")]
    Idle(u64),
    #[error("the model's stream broke after part of the reply was shown: {0}")]
    BrokenAfterOutput(String),
    #[error("the model's response could not be read: {0}")]
    Malformed(String),
}

impl ModelError {
    /// Whether a person must see this (endpoint down, auth, etc.).
    pub fn is_endpoint_problem(&self) -> bool {
        matches!(
            self,
            ModelError::Connect { .. } | ModelError::Status { .. } | ModelError::Idle(_)
        )
    }
}

/// A transient failure that may be retried, with the server's requested delay.
struct Retryable {
    error: ModelError,
    retry_after: Option<Duration>,
}

enum AttemptError {
    Retry(Retryable),
    Fatal(ModelError),
}

/// HTTP client for one model endpoint. Cheap to clone.
#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<Secret>,
    opts: ModelOptions,
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

    pub fn new(
        base_url: String,
        model: String,
        api_key: Option<Secret>,
        opts: ModelOptions,
    ) -> Result<ModelClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(opts.connect_timeout_secs.max(1)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ModelClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            model,
            api_key,
            opts,
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The same endpoint with another model name (subagents).
    pub fn with_model(&self, model: &str) -> ModelClient {
        ModelClient {
            model: model.to_string(),
            ..self.clone()
        }
    }

    fn redact(&self, s: &str) -> String {
        match &self.api_key {
            Some(k) if !k.expose().is_empty() => s.replace(k.expose(), "[REDACTED]"),
            _ => s.to_string(),
        }
    }

    fn body(&self, messages: &[Value], tools: &[Value]) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": messages,
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
    /// failures that happen before any output was shown.
    pub async fn complete(
        &self,
        messages: &[Value],
        tools: &[Value],
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<Completion, ModelError> {
        let body = self.body(messages, tools);
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(20))
            .with_max_times(self.opts.max_retries)
            .with_jitter()
            .build();
        let mut cut_off_retried = false;
        loop {
            let mut emitted = false;
            let result = self.attempt(&body, on_event, &mut emitted, cancel).await;
            match result {
                Ok(c) => {
                    if c.cut_off && !cut_off_retried && !emitted {
                        cut_off_retried = true;
                        tracing::warn!("model response cut off mid tool arguments; retrying once");
                        continue;
                    }
                    return Ok(c);
                }
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Retry(r)) => {
                    if emitted {
                        return Err(ModelError::BrokenAfterOutput(r.error.to_string()));
                    }
                    let Some(backoff) = delays.next() else {
                        return Err(r.error);
                    };
                    let wait = r.retry_after.map(|ra| ra.max(backoff)).unwrap_or(backoff);
                    tracing::info!("model request failed ({}); retrying in {wait:?}", r.error);
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(ModelError::Cancelled),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn attempt(
        &self,
        body: &Value,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        emitted: &mut bool,
        cancel: &CancellationToken,
    ) -> Result<Completion, AttemptError> {
        let url = format!("{}/chat/completions", self.base_url);
        let mut req = self
            .http
            .post(&url)
            .header("Accept", "text/event-stream")
            .json(body);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k.expose());
        }
        for (k, v) in &self.opts.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let idle = Duration::from_secs(self.opts.idle_timeout_secs.max(1));
        let sent = tokio::select! {
            _ = cancel.cancelled() => return Err(AttemptError::Fatal(ModelError::Cancelled)),
            r = tokio::time::timeout(idle, req.send()) => r,
        };
        let resp = match sent {
            Err(_) => {
                return Err(AttemptError::Retry(Retryable {
                    error: ModelError::Idle(idle.as_secs()),
                    retry_after: None,
                }))
            }
            Ok(Err(e)) => {
                return Err(AttemptError::Retry(Retryable {
                    error: ModelError::Connect {
                        url: url.clone(),
                        message: self.redact(&error_chain(&e)),
                    },
                    retry_after: None,
                }))
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(120.0)));
            let text = tokio::select! {
                _ = cancel.cancelled() => return Err(AttemptError::Fatal(ModelError::Cancelled)),
                t = tokio::time::timeout(idle, resp.text()) => t.ok().and_then(|r| r.ok()).unwrap_or_default(),
            };
            let mut body = self.redact(text.trim());
            if body.len() > 2000 {
                let cut = floor_char_boundary(&body, 2000);
                body.truncate(cut);
                body.push('…');
            }
            let error = ModelError::Status {
                status: status.as_u16(),
                body,
            };
            return if status.as_u16() == 429 || status.is_server_error() {
                Err(AttemptError::Retry(Retryable { error, retry_after }))
            } else {
                Err(AttemptError::Fatal(error))
            };
        }
        let is_json = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|ct| ct.contains("application/json"))
            .unwrap_or(false);
        if is_json {
            let text = tokio::select! {
                _ = cancel.cancelled() => return Err(AttemptError::Fatal(ModelError::Cancelled)),
                t = tokio::time::timeout(idle, resp.text()) => t,
            };
            let text = match text {
                Err(_) => {
                    return Err(AttemptError::Retry(Retryable {
                        error: ModelError::Idle(idle.as_secs()),
                        retry_after: None,
                    }))
                }
                Ok(Err(e)) => {
                    return Err(AttemptError::Retry(Retryable {
                        error: ModelError::Connect {
                            url,
                            message: self.redact(&error_chain(&e)),
                        },
                        retry_after: None,
                    }))
                }
                Ok(Ok(t)) => t,
            };
            let c = wire::parse_whole(&text)
                .map_err(|e| AttemptError::Fatal(ModelError::Malformed(e)))?;
            if !c.text.is_empty() {
                *emitted = true;
                on_event(StreamEvent::Text(c.text.clone()));
            }
            return Ok(c);
        }

        let mut asm = wire::Assembler::default();
        let mut stream = resp.bytes_stream().eventsource();
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return Err(AttemptError::Fatal(ModelError::Cancelled)),
                n = tokio::time::timeout(idle, stream.next()) => n,
            };
            match next {
                Err(_) => {
                    return Err(AttemptError::Retry(Retryable {
                        error: ModelError::Idle(idle.as_secs()),
                        retry_after: None,
                    }))
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(AttemptError::Retry(Retryable {
                        error: ModelError::Connect {
                            url,
                            message: self.redact(&e.to_string()),
                        },
                        retry_after: None,
                    }))
                }
                Ok(Some(Ok(ev))) => {
                    let data = ev.data.trim();
                    if data.is_empty() {
                        continue;
                    }
                    if data == "[DONE]" {
                        asm.saw_done = true;
                        break;
                    }
                    match asm.push(data) {
                        Ok(out) => {
                            for e in out {
                                if matches!(e, StreamEvent::Text(_)) {
                                    *emitted = true;
                                }
                                on_event(e);
                            }
                        }
                        Err(wire::ChunkError::Provider(msg)) => {
                            return Err(AttemptError::Fatal(ModelError::Status {
                                status: 200,
                                body: self.redact(&msg),
                            }))
                        }
                        Err(wire::ChunkError::Json(msg)) => {
                            tracing::warn!("skipping unreadable stream chunk: {msg}");
                        }
                    }
                }
            }
        }
        let c = asm.finish();
        if c.stream_incomplete && !c.cut_off && c.text.is_empty() && c.tool_calls.is_empty() {
            return Err(AttemptError::Retry(Retryable {
                error: ModelError::Malformed("the stream ended before any output".into()),
                retry_after: None,
            }));
        }
        Ok(c)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The largest index `<= i` that is a char boundary of `s`.
pub fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    let mut i = i;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
