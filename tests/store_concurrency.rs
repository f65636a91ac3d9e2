//! The store under concurrent writers (docs/DESIGN.md §7): sixteen tasks standing in
//! for subagents, many writers in one session, two stores (two editor
//! windows' servers) on one file, and a bad write that must fail alone.

use std::path::Path;

use rusqlite::Connection;
use tether::store::{now_ms, Store, StoredMessage, Write};

fn msg(role: &str, content: String) -> StoredMessage {
    StoredMessage {
        role: role.into(),
        content,
        tool_calls: None,
        tool_call_id: None,
        created_ms: now_ms(),
    }
}

fn create(id: &str, parent: Option<&str>) -> Write {
    Write::CreateSession {
        id: id.into(),
        parent_id: parent.map(str::to_string),
        title: id.into(),
        workspace: "/ws".into(),
        model: "m".into(),
    }
}

fn append(session: &str, content: String) -> Write {
    Write::AppendMessage {
        session_id: session.into(),
        message: msg("assistant", content),
    }
}

/// `(seq, content)` of a session, in order, read on a connection of our own.
fn rows(db: &Path, session: &str) -> Vec<(i64, String)> {
    let c = Connection::open(db).expect("open db");
    let mut st = c
        .prepare("SELECT seq, content FROM messages WHERE session_id = ?1 ORDER BY seq")
        .expect("prepare");
    let rows = st
        .query_map([session], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    rows
}

fn checks_pass(db: &Path) {
    let c = Connection::open(db).expect("open db");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok");
    c.execute(
        "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("the FTS index matches the messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_append_a_thousand_messages_each_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path());
    assert!(store.take_warning().is_none());
    store.write(create("main", None)).await.expect("main");
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            let sid = format!("sub-{w:02}");
            store.write(create(&sid, Some("main"))).await?;
            for i in 0..1000 {
                store
                    .write(append(&sid, format!("writer {w} message {i}")))
                    .await?;
            }
            Ok::<_, tether::store::StoreError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task").expect("every append is acknowledged");
    }

    let db = store.path().to_path_buf();
    let total: i64 = store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?))
        .await
        .expect("count");
    assert_eq!(total, 16_000);
    for w in 0..16 {
        let sid = format!("sub-{w:02}");
        let got = rows(&db, &sid);
        let want: Vec<(i64, String)> = (0..1000)
            .map(|i| (i + 1, format!("writer {w} message {i}")))
            .collect();
        assert!(got == want, "session {sid} is out of order or incomplete");
        // The engine's view (used to resume) agrees.
        let msgs = store.messages(sid.clone()).await.expect("messages");
        assert_eq!(msgs.len(), 1000);
        assert_eq!(msgs[999].content, format!("writer {w} message 999"));
    }
    let listed = store.list_sessions(None, 100).await.expect("list");
    assert_eq!(listed.len(), 17);
    assert!(listed
        .iter()
        .filter(|s| s.id != "main")
        .all(|s| s.parent_id.as_deref() == Some("main") && s.message_count == 1000));
    checks_pass(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_in_one_session_keep_each_writers_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path());
    store.write(create("shared", None)).await.expect("create");
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..200 {
                // Half wait for each commit, half only queue: both keep order.
                if w % 2 == 0 {
                    store.write(append("shared", format!("{w} {i}"))).await?;
                } else {
                    store.submit(append("shared", format!("{w} {i}")));
                }
            }
            Ok::<_, tether::store::StoreError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task").expect("appends");
    }
    store.flush().await.expect("flush");

    let got = rows(store.path(), "shared");
    assert_eq!(got.len(), 16 * 200);
    let seqs: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=3200).collect::<Vec<i64>>(), "seq has no gaps");
    let mut next = [0u32; 16];
    for (_, content) in &got {
        let (w, i) = content.split_once(' ').expect("content");
        let (w, i): (usize, u32) = (w.parse().expect("w"), i.parse().expect("i"));
        assert_eq!(i, next[w], "writer {w}'s messages are in its order");
        next[w] += 1;
    }
    assert_eq!(next, [200; 16]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_share_one_file_without_lock_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Both open (create and migrate) the new file at the same moment.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let opens: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            let p = dir.path().to_path_buf();
            std::thread::spawn(move || {
                b.wait();
                Store::open(&p)
            })
        })
        .collect();
    let stores: Vec<Store> = opens
        .into_iter()
        .map(|h| h.join().expect("open thread"))
        .collect();
    for s in &stores {
        assert_eq!(s.take_warning(), None, "both stores opened cleanly");
    }
    stores[0].write(create("both", None)).await.expect("create");

    let mut tasks = tokio::task::JoinSet::new();
    for (k, store) in stores.iter().enumerate() {
        for w in 0..4 {
            let store = store.clone();
            tasks.spawn(async move {
                let own = format!("store{k}-w{w}");
                store.write(create(&own, None)).await?;
                for i in 0..250 {
                    store.write(append(&own, format!("{own} {i}"))).await?;
                    store
                        .write(append("both", format!("store{k}-w{w} {i}")))
                        .await?;
                }
                Ok::<_, tether::store::StoreError>(())
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task")
            .expect("no write fails (no \"database is locked\")");
    }
    for s in &stores {
        assert_eq!(s.take_warning(), None);
    }
    let db = stores[0].path().to_path_buf();
    for k in 0..2 {
        for w in 0..4 {
            let own = format!("store{k}-w{w}");
            let got = rows(&db, &own);
            let want: Vec<(i64, String)> =
                (0..250).map(|i| (i + 1, format!("{own} {i}"))).collect();
            assert!(got == want, "session {own} incomplete or out of order");
        }
    }
    let shared = rows(&db, "both");
    assert_eq!(
        shared.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=2000).collect::<Vec<i64>>(),
        "the two writers never took the same seq"
    );
    // Each store sees the other's writes.
    assert_eq!(
        stores[1]
            .messages("store0-w0".into())
            .await
            .expect("read")
            .len(),
        250
    );
    checks_pass(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_fails_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path());
    store.write(create("s", None)).await.expect("create");
    // Something outside Tether makes one particular insert fail.
    Connection::open(store.path())
        .expect("open")
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN new.content = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom refused'); END;",
        )
        .expect("trigger");
    // Queued together, so they are likely committed in one batch.
    let mut writes: Vec<_> = (0..10)
        .map(|i| append("s", format!("before {i}")))
        .collect();
    writes.push(append("s", "boom".into()));
    writes.extend((0..10).map(|i| append("s", format!("after {i}"))));
    let results = futures::future::join_all(writes.into_iter().map(|w| store.write(w))).await;
    for (i, r) in results.iter().enumerate() {
        if i == 10 {
            let err = r.as_ref().expect_err("the bad write fails");
            assert!(err.to_string().contains("boom refused"), "{err}");
        } else {
            assert!(r.is_ok(), "write {i} around the bad one succeeds: {r:?}");
        }
    }
    let contents: Vec<String> = rows(store.path(), "s").into_iter().map(|r| r.1).collect();
    let want: Vec<String> = (0..10)
        .map(|i| format!("before {i}"))
        .chain((0..10).map(|i| format!("after {i}")))
        .collect();
    assert_eq!(contents, want);
    // The person hears about it once.
    assert!(store.take_warning().is_some());
    assert!(store.take_warning().is_none());
}
