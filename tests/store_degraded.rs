//! History that cannot be saved (docs/DESIGN.md §7, ARCHITECTURE `store/`): with a
//! full disk or an unusable data dir the turn still runs and the person is
//! told once that history is not being saved.
//!
//! The full disk is simulated two ways: `StoreOptions::free_pages` (SQLite's
//! `max_page_count`, so the database really gets `SQLITE_FULL`) for the
//! store itself, and a file-size limit (`ulimit -f`, with SIGXFSZ ignored so
//! writes fail with EFBIG) on the real binary end to end. Tests may run as
//! root, where a read-only directory is still writable, so the unusable data
//! dir is a path under a regular file.

mod support;

use std::time::Duration;

use serde_json::json;
use support::editor::{ClientProfile, Editor, EditorConfig, Notification};
use support::model::{ModelServer, Reply};
use tether::protocol::{ActionKind, Role};
use tether::store::{now_ms, RuleKind, Store, StoreOptions, StoredMessage, Write};

const T: Duration = Duration::from_secs(20);
const NOT_SAVED: &str = "history is not being saved";

fn message(content: String) -> StoredMessage {
    StoredMessage {
        role: Role::User,
        content,
        tool_calls: None,
        tool_call_id: None,
        created_ms: now_ms(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_warns_once_and_keeps_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            free_pages: Some(0),
            ..StoreOptions::default()
        },
    );
    assert_eq!(store.take_warning(), None, "opening needs no new pages");
    // Small rows fit in the pages the schema already has.
    store
        .write(Write::CreateSession {
            id: "s".into(),
            parent_id: None,
            title: "t".into(),
            workspace: String::new(),
            model: String::new(),
        })
        .await
        .expect("a small write fits");
    let big = "x".repeat(256 * 1024);
    let err = store
        .write(Write::AppendMessage {
            session_id: "s".into(),
            message: message(big.clone()),
        })
        .await
        .expect_err("no room");
    assert!(err.to_string().contains("full"), "{err}");
    let warning = store.take_warning().expect("told");
    assert!(warning.contains(NOT_SAVED), "{warning}");
    assert!(warning.contains("full"), "{warning}");
    // Later failures are not announced again; nothing panics or blocks.
    for _ in 0..3 {
        store.submit(Write::AppendMessage {
            session_id: "s".into(),
            message: message(big.clone()),
        });
        assert!(store
            .write(Write::AppendMessage {
                session_id: "s".into(),
                message: message(big.clone()),
            })
            .await
            .is_err());
    }
    store.flush().await.expect("the writer is still there");
    assert_eq!(store.take_warning(), None);
    // What was saved can still be read, and the database is sound.
    assert_eq!(store.list_sessions(None, 10).await.expect("list").len(), 1);
    assert!(store.messages("s".into()).await.expect("read").is_empty());
    let c = rusqlite::Connection::open(store.path()).expect("open");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_data_dir_is_a_no_op_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("file");
    let store = Store::open(&file.join("data"));
    let w = store
        .write(Write::AddRule {
            action: ActionKind::Command,
            kind: RuleKind::Exact,
            pattern: "ls".into(),
        })
        .await;
    assert!(w.is_err());
    store.submit(Write::RemoveRule { id: 1 });
    assert!(store.flush().await.is_err());
    assert!(store.list_sessions(None, 10).await.is_err());
    let warning = store.take_warning().expect("told");
    assert!(warning.contains(NOT_SAVED), "{warning}");
    assert_eq!(store.take_warning(), None);
}

fn not_saved(n: &Notification) -> bool {
    n.method == "window/showMessage"
        && n.params["message"]
            .as_str()
            .is_some_and(|m| m.contains(NOT_SAVED))
}

/// Two turns with history that cannot be saved: both answer, and exactly
/// one `window/showMessage` says history is not being saved.
async fn two_turns_told_once(
    cfg: EditorConfig,
    model: &ModelServer,
    first_prompt: String,
    why: &str,
) {
    let (ed, _) = Editor::start(cfg).await;
    let first = ed
        .request("tether/prompt", json!({"text": first_prompt}))
        .await
        .expect("first prompt");
    assert_eq!(first["stopReason"], "end_turn", "{first}");
    assert_eq!(first["text"], "first answer");
    ed.wait_notification(not_saved, T).await;
    let second = ed
        .request("tether/prompt", json!({"text": "and again"}))
        .await
        .expect("second prompt");
    assert_eq!(second["stopReason"], "end_turn", "{second}");
    assert_eq!(second["text"], "second answer");
    assert_eq!(model.chat_requests().len(), 2);
    let told: Vec<_> = ed.notifications().into_iter().filter(not_saved).collect();
    assert_eq!(told.len(), 1, "told once: {told:?}");
    let text = told[0].params["message"].as_str().unwrap_or("");
    assert!(text.contains(why), "{text}");
    ed.shutdown().await;
}

fn script() -> Vec<Reply> {
    vec![
        Reply::Text("first answer".into()),
        Reply::Text("second answer".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_an_unusable_data_dir_still_answers_and_tells_once() {
    let ws = support::workspace();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("file");
    let model = ModelServer::start(script()).await;
    let cfg = EditorConfig::new(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        ws.path(),
    )
    .init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": file.join("data"),
    }));
    two_turns_told_once(cfg, &model, "hello".into(), "Not a directory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_a_full_disk_still_answers_and_tells_once() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(script()).await;
    // The server may write files of at most 1 MiB (2048 blocks of 512
    // bytes; bash counts 1024-byte blocks, which only doubles the room); a
    // write past that fails with EFBIG, as on a full disk.
    let cfg = EditorConfig::new("/bin/sh", ClientProfile::VsCode, ws.path())
        .args(&[
            "-c",
            "trap '' XFSZ; ulimit -f 2048 && exec \"$0\"",
            env!("CARGO_BIN_EXE_tether"),
        ])
        .init_options(json!({
            "model": "scripted",
            "baseUrl": model.base_url(),
            "dataDir": data.path(),
        }));
    // A prompt bigger than the room left: its message cannot be stored.
    let prompt = format!(
        "summarise this log:\n{}",
        "line of log output\n".repeat(200_000)
    );
    two_turns_told_once(cfg, &model, prompt, "disk I/O error").await;
    // What could be saved was saved, and the database is sound.
    let c = rusqlite::Connection::open(data.path().join("tether.db")).expect("open");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
}

/// A data dir whose `tether.db` is not a database (a crash of something else,
/// a bad copy): the file and its WAL are kept under a new name, a new history
/// starts at once, and the person is told once where the old file went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_database_is_moved_aside_and_history_starts_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = b"this is not an SQLite database\n".repeat(300);
    std::fs::write(dir.path().join("tether.db"), &garbage).expect("write garbage");
    std::fs::write(dir.path().join("tether.db-wal"), b"stale wal").expect("write wal");

    let store = Store::open(dir.path());
    let notice = store.take_notice().expect("the person is told");
    assert!(
        notice.contains("could not be read") && notice.contains("moved to"),
        "{notice}"
    );
    assert_eq!(store.take_notice(), None, "told once");
    assert_eq!(store.take_warning(), None, "history is being saved");
    store
        .write(Write::CreateSession {
            id: "after".into(),
            parent_id: None,
            title: "new history".into(),
            workspace: String::new(),
            model: String::new(),
        })
        .await
        .expect("the new database takes writes");
    let sessions = store.list_sessions(None, 10).await.expect("list");
    assert_eq!(sessions.len(), 1);

    let mut aside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("tether.db.corrupt-"))
        .collect();
    aside.sort();
    assert_eq!(aside.len(), 2, "{aside:?}");
    let kept = std::fs::read(dir.path().join(&aside[0])).expect("kept");
    assert_eq!(kept, garbage, "the old bytes are kept unchanged");
    assert!(aside[1].ends_with("-wal"), "{aside:?}");
    assert!(notice.contains(&aside[0]), "{notice}");
}

/// Same with SQLite's header but garbage after it: SQLite itself refuses the
/// file, which is then moved aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_database_with_a_valid_header_is_moved_aside_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(b"\xff\xee garbage pages ".repeat(600));
    std::fs::write(dir.path().join("tether.db"), &bytes).expect("write");
    let store = Store::open(dir.path());
    let notice = store.take_notice().expect("the person is told");
    assert!(notice.contains("moved to"), "{notice}");
    assert_eq!(store.take_warning(), None, "history is being saved");
    store
        .write(Write::CreateSession {
            id: "after".into(),
            parent_id: None,
            title: "new history".into(),
            workspace: String::new(),
            model: String::new(),
        })
        .await
        .expect("the new database takes writes");
    let kept = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("tether.db.corrupt-")
        })
        .map(|e| std::fs::read(e.path()).expect("read kept"));
    assert_eq!(kept, Some(bytes), "the old bytes are kept unchanged");
}
