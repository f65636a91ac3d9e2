//! The session store: SQLite (bundled, WAL, FTS5) with **one writer thread**
//! (docs/DESIGN.md §7).
//!
//! Everything that writes sends a [`Write`] down a channel; the writer thread
//! (`writer`) owns the only write connection, batches what is queued into one
//! `BEGIN IMMEDIATE` transaction and acknowledges each write after commit
//! ([`Store::write`] waits for that; [`Store::submit`] does not). Readers use
//! their own read-only connections (`query`), pooled, off the async threads.
//! Nobody shares a connection. A busy timeout lets a second process (another
//! editor window's server) share the file. The schema is versioned
//! ([`schema`]).
//!
//! **Architecture invariant:** only the writer thread writes the database.
//! If the database cannot be opened or written (read-only dir, full disk),
//! the store keeps working as a no-op and reports it once through
//! [`Store::take_warning`], so a turn is never lost because history is. A file
//! that is not a readable database is moved aside (never deleted) and a new
//! history started ([`Store::take_notice`] says where the old file went).
//!
//! Secrets: everything written here was redacted before (tool output by the
//! tools, messages, tool-call arguments, titles and approvals by the engine;
//! see `tools::redact`). Deleting a session leaves no copy: the writer runs
//! with `secure_delete` (deleted rows and freed pages are zeroed), the delete
//! merges the full-text index (`optimize`, which drops the deleted rows'
//! terms) and the WAL is checkpointed and truncated before the delete is
//! acknowledged.

mod query;
pub mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::protocol::{ActionKind, ApprovalStatus, HistoryMessage, Role, SessionInfo, ToolStatus};
pub use query::{
    fts_query, ApprovalRecord, ExportMessage, SessionExport, SessionRecord, ToolRunRecord,
};
use writer::{Health, Job, Op};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 rendering of a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A session title from its first prompt: the first line, trimmed, at most
/// 80 characters (no model call).
pub fn title_from_prompt(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    let t = crate::text::truncate(line, crate::text::Max::Chars(80), "…");
    if t.is_empty() {
        "untitled".to_string()
    } else {
        t.into_owned()
    }
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
    pub role: Role,
    pub content: String,
    /// The assistant's tool calls as sent to the model (`[{id,type,function}]`).
    pub tool_calls: Option<Value>,
    pub tool_call_id: Option<String>,
    pub created_ms: i64,
}

/// How a stored rule's pattern matches an action's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// The whole text (what "Always allow" stores).
    Exact,
    /// The text starts with the pattern followed by a word boundary
    /// (hand-written rules for commands).
    Prefix,
    /// The text is a path in the pattern's directory or below (what "Always
    /// allow" stores for a read outside the workspace).
    Dir,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Exact => "exact",
            RuleKind::Prefix => "prefix",
            RuleKind::Dir => "dir",
        }
    }

    pub fn parse(s: &str) -> Option<RuleKind> {
        [RuleKind::Exact, RuleKind::Prefix, RuleKind::Dir]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What an approval's answer applies to, as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalScope {
    /// This one action ("Allow once").
    Once,
    /// The same action for the rest of the session ("Allow for session").
    Session,
    /// A stored rule ("Always allow").
    Always,
    /// Denied: nothing was allowed.
    None,
}

impl ApprovalScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalScope::Once => "once",
            ApprovalScope::Session => "session",
            ApprovalScope::Always => "always",
            ApprovalScope::None => "none",
        }
    }
}

/// An allow rule stored by "Always allow".
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AllowRule {
    pub id: i64,
    /// What the rule allows: commands or edits, never both.
    pub action: ActionKind,
    pub kind: RuleKind,
    pub pattern: String,
    pub created_at: String,
}

impl AllowRule {
    /// Whether this rule allows `action` of kind `kind`.
    pub fn allows(&self, kind: ActionKind, action: &str) -> bool {
        if self.action != kind {
            return false;
        }
        match self.kind {
            RuleKind::Exact => self.pattern == action,
            RuleKind::Prefix => {
                action.starts_with(&self.pattern)
                    && (self.pattern.ends_with(' ')
                        || action.len() == self.pattern.len()
                        || action[self.pattern.len()..].starts_with(' '))
            }
            RuleKind::Dir => std::path::Path::new(action).starts_with(&self.pattern),
        }
    }
}

/// One thing to write.
#[derive(Debug)]
pub enum Write {
    /// A new session; an existing id is left as it is. An empty title is
    /// replaced by the first user message's first line.
    CreateSession {
        id: String,
        parent_id: Option<String>,
        title: String,
        workspace: String,
        model: String,
    },
    /// The next message of a session (its `seq` is the session's next).
    AppendMessage {
        session_id: String,
        message: StoredMessage,
    },
    /// A user prompt whose content (what the model sees) has editor context
    /// appended: `display` is what the person typed, shown in history.
    AppendPrompt {
        session_id: String,
        message: StoredMessage,
        display: String,
    },
    ToolRun {
        session_id: String,
        tool_call_id: String,
        tool: String,
        input: String,
        status: ToolStatus,
        output_excerpt: String,
        duration_ms: i64,
    },
    Approval {
        session_id: String,
        approval_id: String,
        request: String,
        /// Spelled as on the wire (`timed_out`).
        decision: ApprovalStatus,
        scope: ApprovalScope,
        /// Who asked: a subagent's label, or `None` for the main agent.
        agent: Option<String>,
    },
    AddRule {
        action: ActionKind,
        kind: RuleKind,
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
    /// Deletes a session with its messages, tool runs, approvals and
    /// subagent sessions.
    DeleteSession {
        id: String,
    },
}

/// How a store is opened. [`Store::open`] uses the defaults; tests and the
/// benchmark use [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a write waits for another process's write lock before the
    /// writer backs off and retries.
    pub busy_timeout: Duration,
    /// Simulates a nearly full disk: the database may grow by at most this
    /// many pages past its size at open (`PRAGMA max_page_count`).
    pub free_pages: Option<u64>,
    /// The most writes committed in one transaction.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            free_pages: None,
            max_batch: 1024,
        }
    }
}

/// Reader connections kept open between reads.
const IDLE_READERS: usize = 4;

/// Handle to the store; cheap to clone, safe to pass to every task.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` when the database could not be opened.
    tx: Option<std_mpsc::Sender<Job>>,
    health: Arc<Health>,
    /// Something the person should hear once (an unreadable file moved aside).
    notice: Mutex<Option<String>>,
    readers: Mutex<Vec<Connection>>,
    busy_timeout: Duration,
}

impl Inner {
    fn unavailable(&self) -> StoreError {
        StoreError::Unavailable(self.health.failure().unwrap_or_default())
    }
}

impl Store {
    /// Opens (creating and migrating) `dir/tether.db` and starts the writer.
    /// Never fails: a store that cannot be opened becomes a no-op that says so.
    pub fn open(dir: &Path) -> Store {
        Store::open_with(dir, StoreOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub fn open_with(dir: &Path, opts: StoreOptions) -> Store {
        let path = dir.join("tether.db");
        let health = Arc::new(Health::default());
        let (tx, notice) = match open_moving_aside(dir, &path, &opts) {
            Ok((conn, notice)) => {
                let (tx, rx) = std_mpsc::channel::<Job>();
                match writer::spawn(conn, rx, health.clone(), opts.max_batch) {
                    Ok(()) => (Some(tx), notice),
                    Err(e) => {
                        health.record(&format!("cannot start the store writer: {e}"));
                        (None, notice)
                    }
                }
            }
            Err(e) => {
                health.record(&e);
                (None, None)
            }
        };
        Store {
            inner: Arc::new(Inner {
                path,
                tx,
                health,
                notice: Mutex::new(notice),
                readers: Mutex::new(Vec::new()),
                busy_timeout: opts.busy_timeout,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A message for the person about how the store was opened (an unreadable
    /// database moved aside), once; afterwards `None`.
    pub fn take_notice(&self) -> Option<String> {
        self.inner.notice.lock().ok().and_then(|mut n| n.take())
    }

    /// The first time history could not be saved, a message for the person;
    /// afterwards `None` (they are told once).
    pub fn take_warning(&self) -> Option<String> {
        self.inner.health.take_warning().map(|why| {
            let dir = self.inner.path.parent().unwrap_or(&self.inner.path);
            format!(
                "Tether: history is not being saved ({why}). Turns still run; \
                     check the free space and write access of {}.",
                dir.display()
            )
        })
    }

    fn send(&self, op: Op, ack: Option<oneshot::Sender<Result<(), String>>>) -> bool {
        match &self.inner.tx {
            Some(tx) => {
                let sent = tx.send(Job { op, ack }).is_ok();
                if !sent {
                    self.inner.health.record("the store writer stopped");
                }
                sent
            }
            None => false,
        }
    }

    /// Queues a write without waiting for it. A failure is recorded for
    /// [`Store::take_warning`].
    pub fn submit(&self, write: Write) {
        self.send(Op::Write(Box::new(write)), None);
    }

    /// Writes and waits until the write is committed.
    pub async fn write(&self, write: Write) -> Result<(), StoreError> {
        self.send_and_wait(Op::Write(Box::new(write))).await
    }

    /// Waits until everything queued before this call is committed (or has
    /// failed).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.send_and_wait(Op::Flush).await
    }

    async fn send_and_wait(&self, op: Op) -> Result<(), StoreError> {
        if self.inner.tx.is_none() {
            return Err(self.inner.unavailable());
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        if !self.send(op, Some(ack_tx)) {
            return Err(StoreError::WriterGone);
        }
        match ack_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(e)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Runs a read on a reader connection (never the writer's), off the
    /// async threads. Connections are reused between reads.
    ///
    /// A read sees every write queued on this store before it, even by
    /// [`Store::submit`] (it waits for the writer to reach that point first),
    /// so "create, then look up" never races.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.inner.tx.is_none() {
            return Err(self.inner.unavailable());
        }
        // A writer that stopped leaves the database readable.
        let _ = self.flush().await;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let idle = inner.readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match idle {
                Some(c) => c,
                None => open_reader(&inner.path, inner.busy_timeout)?,
            };
            let out = f(&conn);
            // A connection that saw an error is dropped, not reused.
            if out.is_ok() {
                if let Ok(mut idle) = inner.readers.lock() {
                    if idle.len() < IDLE_READERS {
                        idle.push(conn);
                    }
                }
            }
            out
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
        self.read(move |c| query::list_sessions(c, query.as_deref(), limit))
            .await
    }

    pub async fn session_exists(&self, id: String) -> Result<bool, StoreError> {
        self.read(move |c| query::session_exists(c, &id)).await
    }

    /// A session's own record, if it exists.
    pub async fn session(&self, id: String) -> Result<Option<SessionRecord>, StoreError> {
        self.read(move |c| query::session(c, &id)).await
    }

    /// Every message of a session in order.
    pub async fn messages(&self, session_id: String) -> Result<Vec<StoredMessage>, StoreError> {
        self.read(move |c| query::load_messages(c, &session_id, query::Text::Model))
            .await
    }

    pub async fn history(&self, session_id: String) -> Result<Vec<HistoryMessage>, StoreError> {
        let msgs = self
            .read(move |c| {
                if !query::session_exists(c, &session_id)? {
                    return Err(StoreError::NoSession(session_id));
                }
                query::load_messages(c, &session_id, query::Text::Person)
            })
            .await?;
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

    /// Everything stored about a session: record, messages, tool runs,
    /// approvals, subagent sessions.
    pub async fn export(&self, id: String) -> Result<SessionExport, StoreError> {
        self.read(move |c| query::export(c, &id)).await
    }

    /// Deletes a session and its subagents' sessions; returns how many
    /// sessions went.
    pub async fn delete_session(&self, id: String) -> Result<usize, StoreError> {
        let sid = id.clone();
        let tree = self.read(move |c| query::session_tree(c, &sid)).await?;
        if tree.is_empty() {
            return Err(StoreError::NoSession(id));
        }
        self.write(Write::DeleteSession { id }).await?;
        Ok(tree.len())
    }

    pub async fn rules(&self) -> Result<Vec<AllowRule>, StoreError> {
        self.read(query::rules).await
    }
}

/// Creates `dir` and opens the write connection to `path`. A file there that is
/// not a readable database is moved aside first; the second value then says so
/// for the person.
fn open_moving_aside(
    dir: &Path,
    path: &Path,
    opts: &StoreOptions,
) -> Result<(Connection, Option<String>), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut notice = None;
    // A file that is not SQLite at all is moved before SQLite opens it (it
    // would discard a WAL it cannot use).
    if let Some(why) = not_sqlite(path) {
        notice = Some(moved_aside(path, &why, &move_aside(path)?));
    }
    let mut opened = writer::open_writer(path, opts);
    if matches!(&opened, Err(e) if unreadable(e)) {
        // Another window's server may have just replaced it: look again
        // before moving anything.
        opened = writer::open_writer(path, opts);
    }
    if let Err(e) = &opened {
        if unreadable(e) {
            notice = Some(moved_aside(path, &e.to_string(), &move_aside(path)?));
            opened = writer::open_writer(path, opts);
        }
    }
    let conn = opened.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((conn, notice))
}

/// Logs a database moved aside and words it for the person.
fn moved_aside(path: &Path, why: &str, aside: &Path) -> String {
    tracing::warn!("{}: {why}; moved to {}", path.display(), aside.display());
    format!(
        "Tether: the history database {} could not be read ({why}); it was moved to {} \
         and a new history was started.",
        path.display(),
        aside.display()
    )
}

/// Why an existing, non-empty `path` is not an SQLite database file (its
/// header), or `None`.
fn not_sqlite(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut header).ok()?;
    if n == 0 || header.get(..n) == b"SQLite format 3\0".get(..n) {
        return None;
    }
    Some("the file does not start with SQLite's header".to_string())
}

/// SQLite says the file is not a (readable) database.
fn unreadable(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// Renames `path` (and its `-wal`/`-shm` files) to `path.corrupt-<ms>...`.
fn move_aside(path: &Path) -> Result<PathBuf, String> {
    let aside = PathBuf::from(format!("{}.corrupt-{}", path.display(), now_ms()));
    std::fs::rename(path, &aside).map_err(|e| {
        format!(
            "{} is not a readable database and could not be moved aside: {e}",
            path.display()
        )
    })?;
    for suffix in ["-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            if let Err(e) = std::fs::rename(&from, &to) {
                tracing::warn!("cannot move {} aside: {e}", from.display());
            }
        }
    }
    Ok(aside)
}

fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: Role, content: &str) -> StoredMessage {
        StoredMessage {
            role,
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
                    message: msg(Role::User, &format!("message {i} about zebras")),
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
    async fn a_read_sees_what_was_submitted_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path());
        for i in 0..50 {
            let id = format!("s{i}");
            store.submit(Write::CreateSession {
                id: id.clone(),
                parent_id: None,
                title: String::new(),
                workspace: String::new(),
                model: String::new(),
            });
            assert!(store.session_exists(id).await.expect("read"));
        }
    }

    #[test]
    fn titles_are_the_first_line_of_the_first_prompt() {
        assert_eq!(
            title_from_prompt("  fix the build \n\nmore"),
            "fix the build"
        );
        assert_eq!(title_from_prompt(" \n "), "untitled");
        let long = "é".repeat(100);
        assert_eq!(title_from_prompt(&long).chars().count(), 81);
    }

    #[tokio::test]
    async fn unwritable_dir_degrades_and_warns_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").expect("write");
        let store = Store::open(&file);
        assert!(store
            .write(Write::AddRule {
                action: ActionKind::Command,
                kind: RuleKind::Exact,
                pattern: "x".into()
            })
            .await
            .is_err());
        assert!(store.take_warning().is_some());
        assert!(store.take_warning().is_none());
    }
}
