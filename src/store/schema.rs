//! Versioned schema. Each migration runs once, in order, inside a transaction;
//! `PRAGMA user_version` records how far a database has come.

use rusqlite::Connection;

/// Migrations, index + 1 = the version they produce. Never edit a shipped one:
/// add the next.
const MIGRATIONS: &[&str] = &[
    // v1: sessions, messages with FTS5, tool runs, approvals, allow rules.
    r#"
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        parent_id TEXT,
        title TEXT NOT NULL,
        workspace TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'active'
    );
    CREATE INDEX sessions_parent ON sessions(parent_id);
    CREATE INDEX sessions_updated ON sessions(updated_ms);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        tool_calls TEXT,
        tool_call_id TEXT,
        created_ms INTEGER NOT NULL,
        search_text TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, seq)
    );
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        search_text, content='messages', content_rowid='id'
    );
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
    END;
    CREATE TRIGGER messages_au AFTER UPDATE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
        INSERT INTO messages_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END;
    CREATE TABLE tool_runs (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        tool_call_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        input TEXT NOT NULL,
        status TEXT NOT NULL,
        output_excerpt TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX tool_runs_session ON tool_runs(session_id);
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        approval_id TEXT NOT NULL,
        request TEXT NOT NULL,
        decision TEXT NOT NULL,
        scope TEXT NOT NULL,
        agent TEXT,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE allow_rules (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        pattern TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        UNIQUE (kind, pattern)
    );
    "#,
];

/// The version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`CURRENT_VERSION`].
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT_VERSION {
        tracing::warn!(
            "database schema v{version} is newer than this Tether (v{CURRENT_VERSION}); reading it as is"
        );
        return Ok(());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
