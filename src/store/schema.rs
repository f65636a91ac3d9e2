//! Versioned schema. Each migration runs once, in order, inside its own
//! `BEGIN IMMEDIATE` transaction; `PRAGMA user_version` records how far a
//! database has come. The version is read inside that transaction, so two
//! processes opening the same new file at once cannot both apply a step.
//!
//! History:
//! - v1 (the walking skeleton): sessions, messages with a `search_text` copy
//!   of each message for FTS5, tool runs, approvals, allow rules.
//! - v2: FTS5 indexes `content` and `tool_names` straight from `messages`
//!   (no second copy of every message: about half the size), and approvals
//!   are indexed by session (deleting a session no longer scans them all).
//! - v3: `messages.display`, what the person typed when the stored content
//!   (what the model saw) has editor context appended; NULL = the content.
//! - v4: `allow_rules.action` says what a rule allows, `command` or `edit`
//!   (before, a rule allowed any action with its text: "Always allow" on a
//!   write to a path also let a command with that text run). An old rule
//!   keeps what it meant: a prefix rule (only ever hand-written, for
//!   commands) and an exact rule that the approvals and tool runs show was
//!   given to a command become command rules, one shown to be given to an
//!   edit an edit rule; one the history cannot attribute (the session was
//!   deleted) becomes one rule of each kind, exactly what it allowed before
//!   (`tether rules list` shows both; remove the one not meant).
//!   Approval decisions are spelled as on the wire: `timedout` (written
//!   from Rust's `Debug` name before) becomes `timed_out`.

use rusqlite::{Connection, TransactionBehavior};

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
    // v2: index content and tool names directly; drop the duplicate text.
    r#"
    DROP TRIGGER IF EXISTS messages_ai;
    DROP TRIGGER IF EXISTS messages_ad;
    DROP TRIGGER IF EXISTS messages_au;
    DROP TABLE IF EXISTS messages_fts;
    ALTER TABLE messages ADD COLUMN tool_names TEXT NOT NULL DEFAULT '';
    UPDATE messages SET tool_names = COALESCE((
        SELECT group_concat(json_extract(c.value, '$.function.name'), ' ')
        FROM json_each(messages.tool_calls) AS c
    ), '')
    WHERE tool_calls IS NOT NULL AND json_valid(tool_calls)
      AND json_type(tool_calls) = 'array';
    ALTER TABLE messages DROP COLUMN search_text;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, tool_names, content='messages', content_rowid='id'
    );
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content, tool_names)
        VALUES (new.id, new.content, new.tool_names);
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content, tool_names)
        VALUES ('delete', old.id, old.content, old.tool_names);
    END;
    CREATE TRIGGER messages_au AFTER UPDATE OF content, tool_names ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content, tool_names)
        VALUES ('delete', old.id, old.content, old.tool_names);
        INSERT INTO messages_fts(rowid, content, tool_names)
        VALUES (new.id, new.content, new.tool_names);
    END;
    INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
    CREATE INDEX approvals_session ON approvals(session_id);
    "#,
    // v3: the prompt as the person typed it, when the content has more.
    r#"
    ALTER TABLE messages ADD COLUMN display TEXT;
    "#,
    // v4: a rule allows commands or edits, never both.
    r#"
    CREATE TABLE allow_rules_v4 (
        id INTEGER PRIMARY KEY,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        pattern TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        UNIQUE (action, kind, pattern)
    );
    CREATE TEMP TABLE rule_evidence AS
    SELECT r.id AS id,
        EXISTS (
            SELECT 1 FROM approvals a JOIN tool_runs t ON t.session_id = a.session_id
            WHERE a.scope = 'always' AND a.request = r.pattern
              AND t.tool = 'run_command' AND json_valid(t.input)
              AND json_extract(t.input, '$.command') = r.pattern
        ) AS command,
        EXISTS (
            SELECT 1 FROM approvals a JOIN tool_runs t ON t.session_id = a.session_id
            LEFT JOIN sessions s ON s.id = t.session_id
            WHERE a.scope = 'always' AND a.request = r.pattern
              AND t.tool IN ('write_file', 'edit_file') AND json_valid(t.input)
              AND (json_extract(t.input, '$.path') = r.pattern
                   OR rtrim(s.workspace, '/') || '/' || json_extract(t.input, '$.path') = r.pattern)
        ) AS edit
    FROM allow_rules r;
    INSERT INTO allow_rules_v4 (id, action, kind, pattern, created_ms)
    SELECT r.id,
           CASE WHEN r.kind = 'exact' AND e.edit AND NOT e.command THEN 'edit' ELSE 'command' END,
           r.kind, r.pattern, r.created_ms
    FROM allow_rules r JOIN rule_evidence e ON e.id = r.id ORDER BY r.id;
    INSERT OR IGNORE INTO allow_rules_v4 (action, kind, pattern, created_ms)
    SELECT 'edit', r.kind, r.pattern, r.created_ms
    FROM allow_rules r JOIN rule_evidence e ON e.id = r.id
    WHERE r.kind = 'exact' AND NOT e.command AND NOT e.edit ORDER BY r.id;
    DROP TABLE rule_evidence;
    DROP TABLE allow_rules;
    ALTER TABLE allow_rules_v4 RENAME TO allow_rules;
    UPDATE approvals SET decision = 'timed_out' WHERE decision = 'timedout';
    "#,
];

/// The version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version recorded in the database (0 for a new file).
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the database up to [`CURRENT_VERSION`].
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, CURRENT_VERSION)
}

/// Brings the database up to `target` (at most [`CURRENT_VERSION`]), one
/// step per transaction. A database newer than this build is left as is.
/// Tests use a lower `target` to build a database as an older Tether did.
pub fn migrate_to(conn: &mut Connection, target: i64) -> rusqlite::Result<()> {
    let target = target.clamp(0, CURRENT_VERSION);
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = version(&tx)?;
        if current > CURRENT_VERSION {
            tracing::warn!(
                "database schema v{current} is newer than this Tether (v{CURRENT_VERSION}); reading it as is"
            );
            return Ok(());
        }
        if current >= target {
            return Ok(());
        }
        let Some(sql) = usize::try_from(current)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
        tracing::info!("database schema upgraded to v{}", current + 1);
    }
}
