//! Schema migrations: a database written by the walking skeleton (schema v1,
//! kept here verbatim as it shipped) opens and upgrades with nothing lost; a
//! new or empty file is created at the current version; a database from a
//! newer Tether is read as is, without damage.

use std::path::Path;

use rusqlite::Connection;
use serde_json::{json, Value};
use tether::store::schema::{migrate_to, CURRENT_VERSION};
use tether::store::{now_ms, Store, StoredMessage, Write};

/// Schema v1 exactly as the walking skeleton shipped it (commit 33ca279).
const SKELETON_V1: &str = r#"
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
    "#;

/// Every row of a table as JSON values, in rowid order (columns by name).
fn dump(c: &Connection, table: &str, columns: &str) -> Vec<Value> {
    let mut st = c
        .prepare(&format!("SELECT {columns} FROM {table} ORDER BY rowid"))
        .expect("prepare dump");
    let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
    let rows = st
        .query_map([], |r| {
            let mut obj = serde_json::Map::new();
            for (i, n) in names.iter().enumerate() {
                let v = match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(x) => json!(x),
                    rusqlite::types::ValueRef::Real(x) => json!(x),
                    rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    rusqlite::types::ValueRef::Blob(b) => json!(b),
                };
                obj.insert(n.clone(), v);
            }
            Ok(Value::Object(obj))
        })
        .expect("query dump");
    rows.collect::<Result<Vec<_>, _>>().expect("rows")
}

const SESSION_COLS: &str = "id, parent_id, title, workspace, model, created_ms, updated_ms, \
                            prompt_tokens, completion_tokens, status";
const MESSAGE_COLS: &str =
    "id, session_id, seq, role, content, tool_calls, tool_call_id, created_ms";

fn everything(c: &Connection) -> Vec<Vec<Value>> {
    vec![
        dump(c, "sessions", SESSION_COLS),
        dump(c, "messages", MESSAGE_COLS),
        dump(c, "tool_runs", "*"),
        dump(c, "approvals", "*"),
        dump(c, "allow_rules", "*"),
    ]
}

/// A v1 database with what the skeleton wrote: a session with a subagent,
/// a prompt, a tool call, its output, an answer, token totals, a tool run,
/// an approval by a subagent and an allow rule.
fn skeleton_db(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("tether.db")).expect("create v1 db");
    c.pragma_update(None, "journal_mode", "WAL").expect("wal");
    c.execute_batch(SKELETON_V1).expect("v1 schema");
    c.pragma_update(None, "user_version", 1).expect("version");
    let calls = json!([{"id": "c1", "type": "function",
        "function": {"name": "run_command", "arguments": "{\"command\":\"cargo build\"}"}}]);
    c.execute_batch(&format!(
        r#"
        INSERT INTO sessions VALUES ('s1', NULL, 'why does the build fail?', '/ws', 'gpt', 1000, 5000, 120, 30, 'active');
        INSERT INTO sessions VALUES ('s1-sub', 's1', 'look at the linker', '/ws', 'gpt', 2000, 3000, 0, 0, 'done');
        INSERT INTO messages (session_id, seq, role, content, tool_calls, tool_call_id, created_ms, search_text) VALUES
          ('s1', 1, 'user', 'why does the build fail?', NULL, NULL, 1001, 'why does the build fail?'),
          ('s1', 2, 'assistant', 'Let me build it.', '{calls}', NULL, 1002, 'Let me build it.
run_command'),
          ('s1', 3, 'tool', 'error: linker wombat-ld not found', NULL, 'c1', 1003, 'error: linker wombat-ld not found'),
          ('s1', 4, 'assistant', 'Install the wombat linker.', NULL, NULL, 1004, 'Install the wombat linker.'),
          ('s1-sub', 1, 'user', 'look at the linker', NULL, NULL, 2001, 'look at the linker'),
          ('s1-sub', 2, 'assistant', 'odd', 'not json', NULL, 2002, 'odd');
        INSERT INTO tool_runs (session_id, tool_call_id, tool, input, status, output_excerpt, duration_ms, created_ms)
          VALUES ('s1', 'c1', 'run_command', '{{"command":"cargo build"}}', 'failed', 'error: linker', 42, 1003);
        INSERT INTO approvals (session_id, approval_id, request, decision, scope, agent, created_ms)
          VALUES ('s1-sub', 'a1', 'cargo build', 'allow', 'once', 'linker-agent', 2500);
        INSERT INTO allow_rules (kind, pattern, created_ms) VALUES ('prefix', 'cargo build', 900);
        "#,
        calls = calls.to_string().replace('\'', "''"),
    ))
    .expect("skeleton rows");
    c
}

fn user(content: &str) -> StoredMessage {
    StoredMessage {
        role: "user".into(),
        content: content.into(),
        tool_calls: None,
        tool_call_id: None,
        created_ms: now_ms(),
    }
}

#[test]
fn the_shipped_v1_migration_is_unchanged() {
    let schema = |c: &Connection| -> Vec<(String, String)> {
        let mut st = c
            .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .expect("prepare");
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    };
    let fixture = Connection::open_in_memory().expect("db");
    fixture.execute_batch(SKELETON_V1).expect("fixture");
    let mut migrated = Connection::open_in_memory().expect("db");
    migrate_to(&mut migrated, 1).expect("migrate to v1");
    assert_eq!(schema(&migrated), schema(&fixture));
    let v: i64 = migrated
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skeleton_database_upgrades_with_nothing_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = {
        let c = skeleton_db(dir.path());
        everything(&c)
    };

    let store = Store::open(dir.path());
    assert_eq!(store.take_warning(), None);
    let c = Connection::open(store.path()).expect("open");
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, CURRENT_VERSION);
    assert_eq!(everything(&c), before, "every row survives the upgrade");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(ok, "ok");
    c.execute(
        "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("FTS index rebuilt and in sync");

    // Old messages are searchable: tool output, assistant text, tool names.
    for (query, snippet) in [
        ("wombat-ld", "[wombat-ld]"),
        ("wombat linker", "[wombat"),
        ("run_command", "[run_command]"),
    ] {
        let found = store
            .list_sessions(Some(query.into()), 10)
            .await
            .expect("search");
        assert_eq!(found.len(), 1, "{query}");
        assert_eq!(found[0].id, "s1");
        let got = found[0].snippet.clone().unwrap_or_default();
        assert!(got.contains(snippet), "{query}: {got}");
    }
    assert_eq!(
        store
            .list_sessions(Some("linker".into()), 10)
            .await
            .expect("search")
            .len(),
        2,
        "the subagent's session is found too"
    );

    // Resume: history is whole and the next message takes the next seq.
    let history = store.history("s1".into()).await.expect("history");
    assert_eq!(history.len(), 4);
    assert_eq!(
        history[1]
            .tool_calls
            .as_ref()
            .and_then(|c| c.pointer("/0/function/name")),
        Some(&json!("run_command"))
    );
    store
        .write(Write::AppendMessage {
            session_id: "s1".into(),
            message: user("and now?"),
        })
        .await
        .expect("append");
    let seq: i64 = c
        .query_row(
            "SELECT seq FROM messages WHERE content = 'and now?'",
            [],
            |r| r.get(0),
        )
        .expect("seq");
    assert_eq!(seq, 5);
    let export = store.export("s1".into()).await.expect("export");
    assert_eq!(export.session.prompt_tokens, 120);
    assert_eq!(export.children, vec!["s1-sub".to_string()]);
    assert_eq!(export.tool_runs.len(), 1);
    let rules = store.rules().await.expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].pattern, "cargo build");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_becomes_a_current_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tether.db"), b"").expect("empty file");
    let store = Store::open(dir.path());
    assert_eq!(store.take_warning(), None);
    store
        .write(Write::CreateSession {
            id: "n".into(),
            parent_id: None,
            title: String::new(),
            workspace: String::new(),
            model: String::new(),
        })
        .await
        .expect("create");
    store
        .write(Write::AppendMessage {
            session_id: "n".into(),
            message: user("  first prompt line  \nsecond line"),
        })
        .await
        .expect("append");
    let c = Connection::open(store.path()).expect("open");
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, CURRENT_VERSION);
    let info = store.list_sessions(None, 10).await.expect("list");
    assert_eq!(
        info[0].title, "first prompt line",
        "titled by its first prompt"
    );
}

/// A start-up killed between two migrations (each is its own transaction)
/// leaves a file at an older version with nothing in it yet: the next start
/// finishes the migration and writes as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_up_killed_between_migrations_carries_on() {
    for stopped_at in 0..CURRENT_VERSION {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut c = Connection::open(dir.path().join("tether.db")).expect("create");
            c.pragma_update(None, "journal_mode", "WAL").expect("wal");
            migrate_to(&mut c, stopped_at).expect("partial migration");
        }
        let store = Store::open(dir.path());
        assert_eq!(store.take_warning(), None, "from v{stopped_at}");
        store
            .write(Write::CreateSession {
                id: "n".into(),
                parent_id: None,
                title: String::new(),
                workspace: String::new(),
                model: String::new(),
            })
            .await
            .expect("create");
        store
            .write(Write::AppendMessage {
                session_id: "n".into(),
                message: user("after the crash"),
            })
            .await
            .expect("append");
        let hits = store
            .list_sessions(Some("crash".into()), 10)
            .await
            .expect("search");
        assert_eq!(hits.len(), 1, "from v{stopped_at}: indexed");
        let c = Connection::open(store.path()).expect("open");
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, CURRENT_VERSION, "from v{stopped_at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_database_is_read_as_is_without_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path());
        store
            .write(Write::CreateSession {
                id: "f".into(),
                parent_id: None,
                title: "from the future".into(),
                workspace: String::new(),
                model: String::new(),
            })
            .await
            .expect("create");
        store
            .write(Write::AppendMessage {
                session_id: "f".into(),
                message: user("hello from the future"),
            })
            .await
            .expect("append");
    }
    let newer = CURRENT_VERSION + 1;
    {
        let c = Connection::open(dir.path().join("tether.db")).expect("open");
        c.execute_batch(&format!(
            "CREATE TABLE future_things (x TEXT); INSERT INTO future_things VALUES ('kept');
             PRAGMA user_version = {newer};"
        ))
        .expect("newer schema");
    }
    let store = Store::open(dir.path());
    assert_eq!(store.take_warning(), None);
    let found = store
        .list_sessions(Some("future".into()), 10)
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(store.messages("f".into()).await.expect("read").len(), 1);
    let c = Connection::open(store.path()).expect("open");
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, newer, "not downgraded");
    let kept: String = c
        .query_row("SELECT x FROM future_things", [], |r| r.get(0))
        .expect("future table");
    assert_eq!(kept, "kept");
}
