//! ACP's transport: newline-delimited JSON-RPC 2.0 over stdio (one message
//! per line, no `Content-Length` framing). One writer task owns the real
//! stdout; requests the agent sends to the client (`session/request_permission`,
//! `fs/*`) wait in a pending map for the response the reader hands back.
//!
//! **Invariants:** only the writer task writes the protocol stream; a line
//! that is not JSON-RPC, or longer than [`MAX_LINE_BYTES`], gets an error
//! reply (or is logged) and the session goes on; when stdin ends every
//! pending request resolves as "client gone".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agent_client_protocol_schema as acp;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// A line longer than this is refused without being buffered whole.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

enum Out {
    Line(Vec<u8>),
    /// Resolved once every line queued before it was written.
    Flush(oneshot::Sender<()>),
}

/// Why a request to the client got no result.
#[derive(Debug, Clone)]
pub enum ClientFail {
    /// The client answered with a JSON-RPC error.
    Error(String),
    /// The client went away (stdin closed) before answering.
    Gone,
}

impl std::fmt::Display for ClientFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientFail::Error(e) => write!(f, "the client answered with an error: {e}"),
            ClientFail::Gone => f.write_str("the client went away"),
        }
    }
}

type Waiter = oneshot::Sender<Result<Value, ClientFail>>;

/// The connection to the client: send notifications, responses and requests.
pub struct Conn {
    out: mpsc::UnboundedSender<Out>,
    pending: Mutex<HashMap<u64, Waiter>>,
    next_id: AtomicU64,
    /// Set when stdin ended: later requests fail at once.
    gone: std::sync::atomic::AtomicBool,
}

/// An incoming message from the client.
pub enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
}

/// Removes a request from the pending map when its waiter gives up.
struct PendingGuard<'a> {
    conn: &'a Conn,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.conn.pending.lock() {
            p.remove(&self.id);
        }
    }
}

impl Conn {
    /// Starts the writer task on `output`; returns the connection.
    pub fn start<W: AsyncWrite + Unpin + Send + 'static>(output: W) -> Arc<Conn> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
        tokio::spawn(async move {
            let mut w = output;
            let mut broken = false;
            while let Some(o) = rx.recv().await {
                match o {
                    Out::Line(mut line) => {
                        if broken {
                            continue;
                        }
                        line.push(b'\n');
                        if let Err(e) = w.write_all(&line).await {
                            tracing::warn!("cannot write to the client: {e}");
                            broken = true;
                            continue;
                        }
                        if let Err(e) = w.flush().await {
                            tracing::warn!("cannot write to the client: {e}");
                            broken = true;
                        }
                    }
                    Out::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Arc::new(Conn {
            out: tx,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            gone: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn send(&self, v: &Value) {
        match serde_json::to_vec(v) {
            Ok(line) => {
                let _ = self.out.send(Out::Line(line));
            }
            Err(e) => tracing::error!("cannot encode a message for the client: {e}"),
        }
    }

    /// A notification (`session/update`).
    pub fn notify<P: Serialize>(&self, method: &str, params: &P) {
        match serde_json::to_value(params) {
            Ok(p) => self.send(&json!({"jsonrpc": "2.0", "method": method, "params": p})),
            Err(e) => tracing::error!("cannot encode {method}: {e}"),
        }
    }

    /// The response to the client's request `id`.
    pub fn respond(&self, id: Value, result: Result<Value, acp::Error>) {
        let msg = match result {
            Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
            Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
        };
        self.send(&msg);
    }

    /// Resolves once everything sent so far has been written.
    pub fn flush(&self) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.out.send(Out::Flush(tx)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = rx.await;
            }
        })
    }

    /// Sends a request to the client and waits for its result. Dropping the
    /// returned future forgets the request (a late answer is ignored).
    pub async fn request<P: Serialize>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<Value, ClientFail> {
        let params = serde_json::to_value(params)
            .map_err(|e| ClientFail::Error(format!("cannot encode {method}: {e}")))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let Ok(mut p) = self.pending.lock() else {
                return Err(ClientFail::Gone);
            };
            if self.gone.load(Ordering::SeqCst) {
                return Err(ClientFail::Gone);
            }
            p.insert(id, tx);
        }
        let _guard = PendingGuard { conn: self, id };
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        rx.await.unwrap_or(Err(ClientFail::Gone))
    }

    /// A response from the client to one of our requests.
    fn answer(&self, id: &Value, result: Result<Value, ClientFail>) {
        let Some(id) = id.as_u64() else {
            tracing::debug!("a response for an id we never used: {id}");
            return;
        };
        let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&id));
        match waiter {
            Some(w) => {
                let _ = w.send(result);
            }
            None => tracing::debug!("a late or unknown response (id {id}) ignored"),
        }
    }

    /// The client is gone: every pending request fails.
    fn close(&self) {
        self.gone.store(true, Ordering::SeqCst);
        if let Ok(mut p) = self.pending.lock() {
            for (_, w) in p.drain() {
                let _ = w.send(Err(ClientFail::Gone));
            }
        }
    }

    /// Reads lines from `input` until it ends: responses resolve pending
    /// requests, requests and notifications go to `handle`. Returns when
    /// the input ends (and fails every pending request).
    pub async fn read_loop<R: AsyncRead + Unpin>(
        self: &Arc<Self>,
        input: R,
        mut handle: impl FnMut(Incoming),
    ) {
        let mut reader = tokio::io::BufReader::new(input);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = {
                let mut limited = (&mut reader).take(MAX_LINE_BYTES as u64 + 1);
                match limited.read_until(b'\n', &mut line).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::info!("cannot read from the client: {e}");
                        break;
                    }
                }
            };
            if n == 0 {
                break;
            }
            if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
                // Skip the rest of the line without keeping it.
                let mut rest = Vec::new();
                loop {
                    rest.clear();
                    let mut limited = (&mut reader).take(1024 * 1024);
                    match limited.read_until(b'\n', &mut rest).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) if rest.last() == Some(&b'\n') => break,
                        Ok(_) => {}
                    }
                }
                self.respond(
                    Value::Null,
                    Err(acp::Error::invalid_request().data(json!(format!(
                        "message longer than {MAX_LINE_BYTES} bytes; ignored"
                    )))),
                );
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let msg: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    self.respond(
                        Value::Null,
                        Err(acp::Error::parse_error().data(json!(e.to_string()))),
                    );
                    continue;
                }
            };
            self.dispatch(msg, &mut handle);
        }
        self.close();
    }

    fn dispatch(&self, msg: Value, handle: &mut impl FnMut(Incoming)) {
        let Value::Object(mut m) = msg else {
            self.respond(
                Value::Null,
                Err(acp::Error::invalid_request().data(json!("a message must be a JSON object"))),
            );
            return;
        };
        let method = m.get("method").and_then(Value::as_str).map(str::to_string);
        let id = m.remove("id");
        let params = m.remove("params").unwrap_or(Value::Null);
        match (method, id) {
            (Some(method), Some(id)) => handle(Incoming::Request { id, method, params }),
            (Some(method), None) => handle(Incoming::Notification { method, params }),
            (None, Some(id)) => {
                let result = match (m.remove("result"), m.remove("error")) {
                    (_, Some(e)) if !e.is_null() => Err(ClientFail::Error(
                        e.get("message")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string()),
                    )),
                    (Some(r), _) => Ok(r),
                    (None, _) => Err(ClientFail::Error(
                        "a response with neither result nor error".into(),
                    )),
                };
                self.answer(&id, result);
            }
            (None, None) => self.respond(
                Value::Null,
                Err(acp::Error::invalid_request().data(json!("neither a method nor an id"))),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    /// A connection whose input and output are in-memory pipes.
    async fn pair() -> (
        Arc<Conn>,
        tokio::io::DuplexStream,
        tokio::io::Lines<tokio::io::BufReader<tokio::io::DuplexStream>>,
        tokio::task::JoinHandle<()>,
    ) {
        let (agent_in, client_out) = tokio::io::duplex(1 << 16);
        let (agent_out, client_in) = tokio::io::duplex(1 << 16);
        let conn = Conn::start(agent_out);
        let c = conn.clone();
        let reader = tokio::spawn(async move { c.read_loop(agent_in, |_| {}).await });
        (
            conn,
            client_out,
            tokio::io::BufReader::new(client_in).lines(),
            reader,
        )
    }

    #[tokio::test]
    async fn a_request_gets_the_clients_result_or_error_and_fails_when_the_client_goes() {
        let (conn, mut to_agent, mut from_agent, reader) = pair().await;
        let c = conn.clone();
        let ok = tokio::spawn(async move { c.request("fs/read_text_file", &json!({})).await });
        let sent: Value =
            serde_json::from_str(&from_agent.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(sent["method"], "fs/read_text_file");
        let reply = json!({"jsonrpc": "2.0", "id": sent["id"], "result": {"content": "x"}});
        // An answer to an id never used is ignored.
        to_agent
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":1}\n")
            .await
            .unwrap();
        to_agent
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(ok.await.unwrap().unwrap(), json!({"content": "x"}));

        let c = conn.clone();
        let err = tokio::spawn(async move { c.request("fs/write_text_file", &json!({})).await });
        let sent: Value =
            serde_json::from_str(&from_agent.next_line().await.unwrap().unwrap()).unwrap();
        let reply = json!({"jsonrpc": "2.0", "id": sent["id"], "error": {"code": -32000, "message": "read-only buffer"}});
        to_agent
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .unwrap();
        match err.await.unwrap() {
            Err(ClientFail::Error(m)) => assert_eq!(m, "read-only buffer"),
            other => panic!("expected the client's error, got {other:?}"),
        }

        let c = conn.clone();
        let gone =
            tokio::spawn(async move { c.request("session/request_permission", &json!({})).await });
        from_agent.next_line().await.unwrap().unwrap();
        drop(to_agent);
        reader.await.unwrap();
        assert!(matches!(gone.await.unwrap(), Err(ClientFail::Gone)));
        // After the end, a request fails at once.
        assert!(matches!(
            conn.request("x", &json!({})).await,
            Err(ClientFail::Gone)
        ));
    }
}
