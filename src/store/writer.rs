//! The writer thread: the only code that writes the database.
//!
//! It owns the one write connection (WAL, `synchronous=NORMAL`, a busy
//! timeout so a second process — another editor window — can share the
//! file), takes everything queued on its channel, applies it in one
//! `BEGIN IMMEDIATE` transaction and acknowledges each job after the commit.
//! An acknowledged write is therefore in the WAL file and survives the
//! process being killed (`kill -9`) at any later moment.
//!
//! Failures are contained: a batch that fails is replayed one job per
//! transaction, so one bad write fails alone; a lock held too long by
//! another process is retried; every failure is recorded in [`Health`] so
//! the person can be told (once) that history is not being saved.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::{now_ms, schema, title_from_prompt, StoreOptions, StoredMessage, Write};
use crate::protocol::Role;

/// What a job asks of the writer.
pub(crate) enum Op {
    Write(Box<Write>),
    /// Nothing to write: its acknowledgement says that everything queued
    /// before it has been committed (or has failed).
    Flush,
}

pub(crate) struct Job {
    pub op: Op,
    pub ack: Option<oneshot::Sender<Result<(), String>>>,
}

/// Whether history is being saved; shared by the handle and the writer.
#[derive(Default)]
pub(crate) struct Health {
    failure: Mutex<Option<String>>,
    warned: AtomicBool,
}

impl Health {
    /// Remembers the first failure (later ones add nothing for the person).
    pub fn record(&self, msg: &str) {
        if let Ok(mut f) = self.failure.lock() {
            if f.is_none() {
                tracing::warn!("session store: {msg}");
                *f = Some(msg.to_string());
            }
        }
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// The failure, the first time it is asked for; afterwards `None`.
    pub fn take_warning(&self) -> Option<String> {
        let failure = self.failure()?;
        if self.warned.swap(true, Ordering::SeqCst) {
            None
        } else {
            Some(failure)
        }
    }
}

/// How often a batch is retried when another process holds the write lock
/// longer than the busy timeout.
const BUSY_RETRIES: u32 = 5;

/// Opens the write connection and brings the schema up to date. A second
/// process opening a new file at the same moment may find it locked while
/// the first converts it to WAL: that is retried like a busy batch.
pub(crate) fn open_writer(path: &Path, opts: &StoreOptions) -> Result<Connection, rusqlite::Error> {
    let mut attempt = 0;
    loop {
        match try_open_writer(path, opts) {
            Err(e) if is_busy(&e) && attempt < BUSY_RETRIES => {
                attempt += 1;
                std::thread::sleep(backoff(attempt));
            }
            r => return r,
        }
    }
}

fn try_open_writer(path: &Path, opts: &StoreOptions) -> Result<Connection, rusqlite::Error> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(opts.busy_timeout)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            "{}: journal mode is {mode}, not WAL; readers may wait for the writer",
            path.display()
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Deleted rows and freed pages are overwritten with zeros, so a deleted
    // session leaves no copy in the file's free space.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // 16 MiB of page cache (the default is 2 MiB): index and FTS merges of a
    // large history touch many pages.
    conn.pragma_update(None, "cache_size", -16 * 1024)?;
    // Keep the WAL file from staying large after a burst of writes.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    schema::migrate(&mut conn)?;
    if let Some(free) = opts.free_pages {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let cap = pages.saturating_add(i64::try_from(free).unwrap_or(i64::MAX));
        let _: i64 = conn.pragma_update_and_check(None, "max_page_count", cap, |r| r.get(0))?;
    }
    Ok(conn)
}

/// Starts the writer thread. It ends when every sender is gone and the
/// queue is drained; dropping the connection then checkpoints the WAL.
pub(crate) fn spawn(
    conn: Connection,
    rx: std_mpsc::Receiver<Job>,
    health: std::sync::Arc<Health>,
    max_batch: usize,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tether-store-writer".into())
        .spawn(move || writer_loop(conn, rx, &health, max_batch.max(1)))
        .map(|_| ())
}

fn writer_loop(
    mut conn: Connection,
    rx: std_mpsc::Receiver<Job>,
    health: &Health,
    max_batch: usize,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let outcomes = commit(&mut conn, &batch);
        let deleted = batch.iter().zip(&outcomes).any(|(j, o)| {
            o.is_ok() && matches!(&j.op, Op::Write(w) if matches!(**w, Write::DeleteSession { .. }))
        });
        if deleted {
            // Before the delete is acknowledged: the WAL still holds the old
            // pages (the deleted text) until they are checkpointed.
            scrub_wal(&conn);
        }
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            if let Err(e) = &outcome {
                health.record(e);
            }
            if let Some(ack) = job.ack {
                let _ = ack.send(outcome);
            }
        }
    }
}

/// Copies the WAL into the database and truncates it to zero bytes, so the
/// pages a delete replaced are gone from the WAL too. Another process reading
/// at that moment can keep it from completing: that is logged and the next
/// checkpoint finishes the job.
fn scrub_wal(conn: &Connection) {
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok((0, _, _)) => {}
        Ok((_, log, done)) => tracing::warn!(
            "after a delete, the WAL could not be emptied ({done} of {log} pages copied; another reader is busy)"
        ),
        Err(e) => tracing::warn!("after a delete, the WAL could not be emptied: {e}"),
    }
}

/// Commits the batch in one transaction; if that fails, each job in its own,
/// so only the jobs that cannot be written fail.
fn commit(conn: &mut Connection, batch: &[Job]) -> Vec<Result<(), String>> {
    let all: Vec<&Job> = batch.iter().collect();
    match apply_with_retry(conn, &all) {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        Err(e) if batch.len() == 1 || is_hopeless(&e) => {
            tracing::warn!("store write failed: {e}");
            batch.iter().map(|_| Err(e.to_string())).collect()
        }
        Err(e) => {
            tracing::debug!("store batch failed ({e}); writing its jobs one by one");
            batch
                .iter()
                .map(|job| {
                    apply_with_retry(conn, &[job]).map_err(|e| {
                        tracing::warn!("store write failed: {e}");
                        e.to_string()
                    })
                })
                .collect()
        }
    }
}

fn apply_with_retry(conn: &mut Connection, jobs: &[&Job]) -> rusqlite::Result<()> {
    let mut attempt = 0;
    loop {
        match apply(conn, jobs) {
            Err(e) if is_busy(&e) && attempt < BUSY_RETRIES => {
                attempt += 1;
                tracing::debug!("database busy, retrying ({attempt}/{BUSY_RETRIES})");
                std::thread::sleep(backoff(attempt));
            }
            r => return r,
        }
    }
}

fn apply(conn: &mut Connection, jobs: &[&Job]) -> rusqlite::Result<()> {
    if jobs.iter().all(|j| matches!(j.op, Op::Flush)) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in jobs {
        if let Op::Write(w) = &job.op {
            apply_one(&tx, w)?;
        }
    }
    tx.commit()
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.min(6))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Errors that no job of the batch could escape: replaying them one by one
/// would only repeat the failure.
fn is_hopeless(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
        )
    )
}

/// Inserts the next message of a session; `display` is what the person typed
/// when it differs from the content.
fn append_message(
    tx: &rusqlite::Transaction,
    session_id: &str,
    message: &StoredMessage,
    display: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    // The next seq of the session, under the write lock: concurrent writers
    // (and a second process) cannot take the same one.
    tx.prepare_cached(
        "INSERT INTO messages (session_id, seq, role, content, tool_calls, tool_call_id, created_ms, tool_names, display)
         VALUES (?1, COALESCE((SELECT MAX(seq) FROM messages WHERE session_id = ?1), 0) + 1,
                 ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        session_id,
        message.role.as_str(),
        message.content,
        message.tool_calls.as_ref().map(|v| v.to_string()),
        message.tool_call_id,
        message.created_ms,
        tool_names(message.tool_calls.as_ref()),
        display,
    ])?;
    tx.prepare_cached("UPDATE sessions SET updated_ms = ?2 WHERE id = ?1")?
        .execute(params![session_id, now])?;
    if message.role == Role::User {
        // A session created without a title takes its first prompt's.
        let typed = display.unwrap_or(&message.content);
        tx.prepare_cached("UPDATE sessions SET title = ?2 WHERE id = ?1 AND title = ''")?
            .execute(params![session_id, title_from_prompt(typed)])?;
    }
    Ok(())
}

/// Names of the tools an assistant message calls, space-separated, for FTS.
fn tool_names(calls: Option<&serde_json::Value>) -> String {
    calls
        .and_then(|v| v.as_array())
        .map(|calls| {
            calls
                .iter()
                .filter_map(|c| c.pointer("/function/name").and_then(|n| n.as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn apply_one(tx: &Transaction<'_>, w: &Write) -> rusqlite::Result<()> {
    let now = now_ms();
    match w {
        Write::CreateSession {
            id,
            parent_id,
            title,
            workspace,
            model,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO sessions (id, parent_id, title, workspace, model, created_ms, updated_ms, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 'active')",
            )?
            .execute(params![id, parent_id, title.trim(), workspace, model, now])?;
        }
        Write::AppendMessage {
            session_id,
            message,
        } => append_message(tx, session_id, message, None, now)?,
        Write::AppendPrompt {
            session_id,
            message,
            display,
        } => append_message(tx, session_id, message, Some(display), now)?,
        Write::ToolRun {
            session_id,
            tool_call_id,
            tool,
            input,
            status,
            output_excerpt,
            duration_ms,
        } => {
            tx.prepare_cached(
                "INSERT INTO tool_runs (session_id, tool_call_id, tool, input, status, output_excerpt, duration_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                session_id,
                tool_call_id,
                tool,
                input,
                status.as_str(),
                output_excerpt,
                duration_ms,
                now
            ])?;
        }
        Write::Approval {
            session_id,
            approval_id,
            request,
            decision,
            scope,
            agent,
        } => {
            tx.prepare_cached(
                "INSERT INTO approvals (session_id, approval_id, request, decision, scope, agent, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                session_id,
                approval_id,
                request,
                decision.as_str(),
                scope.as_str(),
                agent,
                now
            ])?;
        }
        Write::AddRule {
            action,
            kind,
            pattern,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO allow_rules (action, kind, pattern, created_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![action.as_str(), kind.as_str(), pattern, now])?;
        }
        Write::RemoveRule { id } => {
            tx.prepare_cached("DELETE FROM allow_rules WHERE id = ?1")?
                .execute([id])?;
        }
        Write::AddUsage {
            session_id,
            prompt_tokens,
            completion_tokens,
        } => {
            tx.prepare_cached(
                "UPDATE sessions SET prompt_tokens = prompt_tokens + ?2,
                                     completion_tokens = completion_tokens + ?3
                 WHERE id = ?1",
            )?
            .execute(params![
                session_id,
                i64::try_from(*prompt_tokens).unwrap_or(i64::MAX),
                i64::try_from(*completion_tokens).unwrap_or(i64::MAX)
            ])?;
        }
        Write::DeleteSession { id } => {
            // The session and its subagents' sessions, however deep.
            let ids: Vec<String> = tx
                .prepare_cached(
                    "WITH RECURSIVE tree(id) AS (
                       SELECT ?1 UNION SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id
                     ) SELECT id FROM tree",
                )?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for sid in &ids {
                for sql in [
                    "DELETE FROM messages WHERE session_id = ?1",
                    "DELETE FROM tool_runs WHERE session_id = ?1",
                    "DELETE FROM approvals WHERE session_id = ?1",
                    "DELETE FROM sessions WHERE id = ?1",
                ] {
                    tx.prepare_cached(sql)?.execute([sid])?;
                }
            }
            // The full-text index only marks the rows deleted; merging it
            // into one segment drops their words for good (secure_delete
            // zeroes the pages the old segments leave).
            tx.execute(
                "INSERT INTO messages_fts(messages_fts) VALUES ('optimize')",
                [],
            )?;
        }
    }
    Ok(())
}
