//! The session store: SQLite (bundled, WAL, FTS5) with **one writer thread**.
//!
//! Everything that writes sends a [`Write`] down a channel; the writer thread
//! owns the only write connection, batches what is queued into one
//! `BEGIN IMMEDIATE` transaction and acknowledges each write after commit.
//! Readers open their own read-only connections. Nobody shares a connection.
//!
//! **Architecture invariant:** only the writer thread writes the database.
//! If the database cannot be opened or written (read-only dir, full disk),
//! the store keeps working as a no-op and reports it once through
//! [`Store::take_warning`], so a turn is never lost because history is.

mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::protocol::{HistoryMessage, SessionInfo};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 rendering of a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("history is not being saved: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store writer stopped")]
    WriterGone,
    #[error("no session {0}")]
    NoSession(String),
    #[error("store task failed: {0}")]
    Join(String),
}

/// A stored chat message (the engine's own format, close to the model's).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub role: String,
    pub content: String,
    /// The assistant's tool calls as sent to the model (`[{id,type,function}]`).
    pub tool_calls: Option<Value>,
    pub tool_call_id: Option<String>,
    pub created_ms: i64,
}

/// An allow rule stored by "Always allow".
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AllowRule {
    pub id: i64,
    /// `exact` or `prefix`.
    pub kind: String,
    pub pattern: String,
    pub created_at: String,
}

/// One thing to write.
#[derive(Debug)]
pub enum Write {
    CreateSession {
        id: String,
        parent_id: Option<String>,
        title: String,
        workspace: String,
        model: String,
    },
    AppendMessage {
        session_id: String,
        message: StoredMessage,
    },
    ToolRun {
        session_id: String,
        tool_call_id: String,
        tool: String,
        input: String,
        status: String,
        output_excerpt: String,
        duration_ms: i64,
    },
    Approval {
        session_id: String,
        approval_id: String,
        request: String,
        decision: String,
        scope: String,
        agent: Option<String>,
    },
    AddRule {
        kind: String,
        pattern: String,
    },
    RemoveRule {
        id: i64,
    },
    AddUsage {
        session_id: String,
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    DeleteSession {
        id: String,
    },
}

struct Job {
    write: Write,
    ack: Option<oneshot::Sender<Result<(), String>>>,
}

/// Handle to the store; cheap to clone, safe to pass to every task.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` when the database could not be opened.
    tx: Mutex<Option<std_mpsc::Sender<Job>>>,
    failure: Mutex<Option<String>>,
    warned: AtomicBool,
}

impl Store {
    /// Opens (creating and migrating) `dir/tether.db` and starts the writer.
    /// Never fails: a store that cannot be opened becomes a no-op that says so.
    pub fn open(dir: &Path) -> Store {
        let path = dir.join("tether.db");
        let opened = std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
            .and_then(|_| open_writer(&path).map_err(|e| format!("{}: {e}", path.display())));
        let (tx, failure) = match opened {
            Ok(conn) => {
                let (tx, rx) = std_mpsc::channel::<Job>();
                let spawned = std::thread::Builder::new()
                    .name("tether-store-writer".into())
                    .spawn(move || writer_loop(conn, rx));
                match spawned {
                    Ok(_) => (Some(tx), None),
                    Err(e) => (None, Some(format!("cannot start the store writer: {e}"))),
                }
            }
            Err(e) => {
                tracing::warn!("session store unavailable: {e}");
                (None, Some(e))
            }
        };
        Store {
            inner: Arc::new(Inner {
                path,
                tx: Mutex::new(tx),
                failure: Mutex::new(failure),
                warned: AtomicBool::new(false),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The first time history could not be saved, a message for the person;
    /// afterwards `None` (they are told once).
    pub fn take_warning(&self) -> Option<String> {
        let failure = self.inner.failure.lock().ok()?.clone()?;
        if self.inner.warned.swap(true, Ordering::SeqCst) {
            None
        } else {
            Some(format!("Tether: history is not being saved ({failure})"))
        }
    }

    fn record_failure(&self, msg: &str) {
        if let Ok(mut f) = self.inner.failure.lock() {
            if f.is_none() {
                tracing::warn!("session store: {msg}");
                *f = Some(msg.to_string());
            }
        }
    }

    fn sender(&self) -> Option<std_mpsc::Sender<Job>> {
        self.inner.tx.lock().ok().and_then(|g| g.clone())
    }

    /// Queues a write without waiting for it.
    pub fn submit(&self, write: Write) {
        if let Some(tx) = self.sender() {
            if tx.send(Job { write, ack: None }).is_err() {
                self.record_failure("the store writer stopped");
            }
        }
    }

    /// Writes and waits until the write is committed.
    pub async fn write(&self, write: Write) -> Result<(), StoreError> {
        let Some(tx) = self.sender() else {
            let why = self
                .inner
                .failure
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_default();
            return Err(StoreError::Unavailable(why));
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        if tx
            .send(Job {
                write,
                ack: Some(ack_tx),
            })
            .is_err()
        {
            self.record_failure("the store writer stopped");
            return Err(StoreError::WriterGone);
        }
        match ack_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.record_failure(&e);
                Err(StoreError::Unavailable(e))
            }
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Runs a read on its own read-only connection, off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let path = self.inner.path.clone();
        if self.sender().is_none() {
            let why = self
                .inner
                .failure
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_default();
            return Err(StoreError::Unavailable(why));
        }
        tokio::task::spawn_blocking(move || {
            let conn = open_reader(&path)?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Sessions, newest first; with a query, ranked full-text matches.
    pub async fn list_sessions(
        &self,
        query: Option<String>,
        limit: u32,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        self.read(move |c| list_sessions(c, query.as_deref(), limit))
            .await
    }

    pub async fn session_exists(&self, id: String) -> Result<bool, StoreError> {
        self.read(move |c| {
            Ok(
                c.query_row("SELECT 1 FROM sessions WHERE id = ?1", [&id], |_| Ok(()))
                    .optional()?
                    .is_some(),
            )
        })
        .await
    }

    /// Every message of a session in order.
    pub async fn messages(&self, session_id: String) -> Result<Vec<StoredMessage>, StoreError> {
        self.read(move |c| load_messages(c, &session_id)).await
    }

    pub async fn history(&self, session_id: String) -> Result<Vec<HistoryMessage>, StoreError> {
        let sid = session_id.clone();
        let exists = self.session_exists(sid).await?;
        if !exists {
            return Err(StoreError::NoSession(session_id));
        }
        let msgs = self.messages(session_id).await?;
        Ok(msgs
            .into_iter()
            .map(|m| HistoryMessage {
                role: m.role,
                text: m.content,
                tool_calls: m.tool_calls,
                tool_call_id: m.tool_call_id,
                created_at: rfc3339(m.created_ms),
            })
            .collect())
    }

    pub async fn rules(&self) -> Result<Vec<AllowRule>, StoreError> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT id, kind, pattern, created_ms FROM allow_rules ORDER BY id")?;
            let rows = st.query_map([], |r| {
                Ok(AllowRule {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    pattern: r.get(2)?,
                    created_at: rfc3339(r.get(3)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

fn open_writer(path: &Path) -> Result<Connection, rusqlite::Error> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// The writer thread: batch what is queued, commit once, acknowledge each.
fn writer_loop(mut conn: Connection, rx: std_mpsc::Receiver<Job>) {
    const MAX_BATCH: usize = 512;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let result = apply_batch(&mut conn, &batch);
        let outcome = match &result {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!("store write failed: {e}");
                Err(e.to_string())
            }
        };
        for job in batch {
            if let Some(ack) = job.ack {
                let _ = ack.send(outcome.clone());
            }
        }
    }
}

fn apply_batch(conn: &mut Connection, batch: &[Job]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for job in batch {
        apply_one(&tx, &job.write)?;
    }
    tx.commit()
}

fn apply_one(tx: &rusqlite::Transaction<'_>, w: &Write) -> Result<(), rusqlite::Error> {
    let now = now_ms();
    match w {
        Write::CreateSession {
            id,
            parent_id,
            title,
            workspace,
            model,
        } => {
            tx.execute(
                "INSERT OR IGNORE INTO sessions (id, parent_id, title, workspace, model, created_ms, updated_ms, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 'active')",
                params![id, parent_id, title, workspace, model, now],
            )?;
        }
        Write::AppendMessage {
            session_id,
            message,
        } => {
            let tool_names = message
                .tool_calls
                .as_ref()
                .and_then(|v| v.as_array())
                .map(|calls| {
                    calls
                        .iter()
                        .filter_map(|c| c.pointer("/function/name").and_then(|n| n.as_str()))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let search_text = if tool_names.is_empty() {
                message.content.clone()
            } else {
                format!("{}\n{}", message.content, tool_names)
            };
            tx.execute(
                "INSERT INTO messages (session_id, seq, role, content, tool_calls, tool_call_id, created_ms, search_text)
                 VALUES (?1, COALESCE((SELECT MAX(seq) FROM messages WHERE session_id = ?1), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    session_id,
                    message.role,
                    message.content,
                    message.tool_calls.as_ref().map(|v| v.to_string()),
                    message.tool_call_id,
                    message.created_ms,
                    search_text
                ],
            )?;
            tx.execute(
                "UPDATE sessions SET updated_ms = ?2 WHERE id = ?1",
                params![session_id, now],
            )?;
        }
        Write::ToolRun {
            session_id,
            tool_call_id,
            tool,
            input,
            status,
            output_excerpt,
            duration_ms,
        } => {
            tx.execute(
                "INSERT INTO tool_runs (session_id, tool_call_id, tool, input, status, output_excerpt, duration_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![session_id, tool_call_id, tool, input, status, output_excerpt, duration_ms, now],
            )?;
        }
        Write::Approval {
            session_id,
            approval_id,
            request,
            decision,
            scope,
            agent,
        } => {
            tx.execute(
                "INSERT INTO approvals (session_id, approval_id, request, decision, scope, agent, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![session_id, approval_id, request, decision, scope, agent, now],
            )?;
        }
        Write::AddRule { kind, pattern } => {
            tx.execute(
                "INSERT OR IGNORE INTO allow_rules (kind, pattern, created_ms) VALUES (?1, ?2, ?3)",
                params![kind, pattern, now],
            )?;
        }
        Write::RemoveRule { id } => {
            tx.execute("DELETE FROM allow_rules WHERE id = ?1", [id])?;
        }
        Write::AddUsage {
            session_id,
            prompt_tokens,
            completion_tokens,
        } => {
            tx.execute(
                "UPDATE sessions SET prompt_tokens = prompt_tokens + ?2, completion_tokens = completion_tokens + ?3 WHERE id = ?1",
                params![session_id, *prompt_tokens as i64, *completion_tokens as i64],
            )?;
        }
        Write::DeleteSession { id } => {
            tx.execute("DELETE FROM messages WHERE session_id = ?1", [id])?;
            tx.execute("DELETE FROM tool_runs WHERE session_id = ?1", [id])?;
            tx.execute("DELETE FROM approvals WHERE session_id = ?1", [id])?;
            tx.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
        }
    }
    Ok(())
}

fn load_messages(c: &Connection, session_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
    let mut st = c.prepare(
        "SELECT role, content, tool_calls, tool_call_id, created_ms FROM messages WHERE session_id = ?1 ORDER BY seq",
    )?;
    let rows = st.query_map([session_id], |r| {
        let tool_calls: Option<String> = r.get(2)?;
        Ok(StoredMessage {
            role: r.get(0)?,
            content: r.get(1)?,
            tool_calls: tool_calls.and_then(|s| serde_json::from_str(&s).ok()),
            tool_call_id: r.get(3)?,
            created_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionInfo> {
    Ok(SessionInfo {
        id: r.get(0)?,
        title: r.get(1)?,
        parent_id: r.get(2)?,
        created_at: rfc3339(r.get(3)?),
        updated_at: rfc3339(r.get(4)?),
        message_count: r.get::<_, i64>(5)? as u64,
        snippet: None,
    })
}

const SESSION_COLUMNS: &str = "s.id, s.title, s.parent_id, s.created_ms, s.updated_ms,
    (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)";

fn list_sessions(
    c: &Connection,
    query: Option<&str>,
    limit: u32,
) -> Result<Vec<SessionInfo>, StoreError> {
    let limit = limit.clamp(1, 10_000) as i64;
    match query.map(str::trim).filter(|q| !q.is_empty()) {
        None => {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s ORDER BY s.updated_ms DESC, s.rowid DESC LIMIT ?1"
            );
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map([limit], session_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        }
        Some(q) => {
            // Best match per session: rank by bm25, keep each session once.
            let sql = format!(
                "WITH hits AS MATERIALIZED (
                   SELECT rowid AS mid, bm25(messages_fts) AS score,
                          snippet(messages_fts, 0, '[', ']', '…', 12) AS snip
                   FROM messages_fts WHERE messages_fts MATCH ?1
                 ), scored AS MATERIALIZED (
                   SELECT m.session_id AS sid, h.score AS score, h.snip AS snip
                   FROM hits h JOIN messages m ON m.id = h.mid
                 ), best AS (
                   SELECT sid, MIN(score) AS score FROM scored GROUP BY sid
                 )
                 SELECT {SESSION_COLUMNS},
                        (SELECT snip FROM scored x WHERE x.sid = s.id ORDER BY x.score LIMIT 1)
                 FROM best b JOIN sessions s ON s.id = b.sid
                 ORDER BY b.score LIMIT ?2"
            );
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(params![fts_query(q), limit], |r| {
                let mut info = session_row(r)?;
                info.snippet = r.get(6)?;
                Ok(info)
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        }
    }
}

/// Turns free text into a safe FTS5 query: each word quoted, all required.
fn fts_query(q: &str) -> String {
    q.split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> StoredMessage {
        StoredMessage {
            role: role.into(),
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
            created_ms: now_ms(),
        }
    }

    #[tokio::test]
    async fn writes_are_read_back_in_order_and_searchable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path());
        store
            .write(Write::CreateSession {
                id: "s1".into(),
                parent_id: None,
                title: "first".into(),
                workspace: "/w".into(),
                model: "m".into(),
            })
            .await
            .expect("create");
        for i in 0..5 {
            store
                .write(Write::AppendMessage {
                    session_id: "s1".into(),
                    message: msg("user", &format!("message {i} about zebras")),
                })
                .await
                .expect("append");
        }
        let msgs = store.messages("s1".into()).await.expect("read");
        assert_eq!(msgs.len(), 5);
        assert_eq!(msgs[3].content, "message 3 about zebras");
        let found = store
            .list_sessions(Some("zebras".into()), 10)
            .await
            .expect("search");
        assert_eq!(found.len(), 1);
        assert!(found[0]
            .snippet
            .as_deref()
            .unwrap_or("")
            .contains("[zebras]"));
        assert!(store
            .list_sessions(Some("giraffes \"".into()), 10)
            .await
            .expect("search")
            .is_empty());
        assert!(store.take_warning().is_none());
    }

    #[tokio::test]
    async fn unwritable_dir_degrades_and_warns_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").expect("write");
        let store = Store::open(&file);
        assert!(store
            .write(Write::AddRule {
                kind: "exact".into(),
                pattern: "x".into()
            })
            .await
            .is_err());
        assert!(store.take_warning().is_some());
        assert!(store.take_warning().is_none());
    }
}
