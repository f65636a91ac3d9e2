//! Crash safety (docs/DESIGN.md §7): a child process writes under load and is killed
//! with SIGKILL at random moments, fifty times, on the same database. After
//! every kill the database opens, passes `PRAGMA integrity_check` (and the
//! FTS index's own check), and holds every message whose append the child
//! had seen acknowledged.
//!
//! The child is this test binary again, running only `child_writer` with
//! `TETHER_CRASH_CHILD` set; without that variable `child_writer` does
//! nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tether::store::{now_ms, schema, Store, StoredMessage, Write};

const CHILD_ENV: &str = "TETHER_CRASH_CHILD";
const WRITERS: usize = 4;
const ROUNDS: usize = 50;

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The text of message `i` of session `sid`: "sid i" and some filler of
/// varying length (so pages split, overflow and the WAL checkpoints).
fn content(sid: &str, i: u64) -> String {
    let words = ["alpha", "build", "cargo", "delta", "error", "fixture"];
    let n = (i * 7919 % 300) as usize;
    let filler: Vec<&str> = (0..n)
        .map(|k| words[(k + i as usize) % words.len()])
        .collect();
    format!("{sid} {i} {}", filler.join(" "))
}

/// Run in the child: append forever from `WRITERS` tasks, printing
/// `ACK <session> <i>` once each append is acknowledged.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = Store::open(Path::new(&dir));
        if let Some(w) = store.take_warning() {
            panic!("child: {w}");
        }
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..WRITERS {
            let store = store.clone();
            let out = out.clone();
            tasks.spawn(async move {
                let sid = format!("w{w}");
                store
                    .write(Write::CreateSession {
                        id: sid.clone(),
                        parent_id: None,
                        title: sid.clone(),
                        workspace: String::new(),
                        model: String::new(),
                    })
                    .await
                    .expect("create");
                // Carry on after whatever the last child committed.
                let mut i = store.messages(sid.clone()).await.expect("resume").len() as u64;
                while Instant::now() < deadline {
                    store.submit(Write::ToolRun {
                        session_id: sid.clone(),
                        tool_call_id: format!("c{i}"),
                        tool: "run_command".into(),
                        input: "{}".into(),
                        status: "completed".into(),
                        output_excerpt: "ok".into(),
                        duration_ms: 1,
                    });
                    store
                        .write(Write::AppendMessage {
                            session_id: sid.clone(),
                            message: StoredMessage {
                                role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
                                content: content(&sid, i),
                                tool_calls: None,
                                tool_call_id: None,
                                created_ms: now_ms(),
                            },
                        })
                        .await
                        .expect("append");
                    let mut o = out.lock().expect("stdout");
                    writeln!(o, "ACK {sid} {i}").expect("print ack");
                    o.flush().expect("flush ack");
                    i += 1;
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("writer task");
        }
    });
}

/// Every acknowledged message is present, and each session's messages are
/// exactly 0..n in order (nothing half-written, nothing out of place).
///
/// A kill during start-up can land after SQLite created the file but before
/// the last migration committed: each migration is its own transaction, so
/// the file is then at an older `user_version` with nothing written yet.
/// That is legitimate; the check is that it holds no message, and that the
/// product opens it, finishes the migration and carries on.
fn verify(db: &Path, acked: &BTreeMap<String, u64>, round: usize) {
    let c = Connection::open(db).unwrap_or_else(|e| panic!("round {round}: open: {e}"));
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("round {round}: integrity_check: {e}"));
    assert_eq!(ok, "ok", "round {round}");
    let version = schema::version(&c).unwrap_or_else(|e| panic!("round {round}: version: {e}"));
    if version < schema::CURRENT_VERSION {
        assert!(
            acked.is_empty(),
            "round {round}: schema v{version} after writes were acknowledged"
        );
        drop(c);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let store = Store::open(db.parent().expect("data dir"));
            assert_eq!(
                store.take_warning(),
                None,
                "round {round}: reopen v{version}"
            );
            let sessions = store.list_sessions(None, 10).await.expect("list");
            assert!(
                sessions.is_empty(),
                "round {round}: v{version} held sessions"
            );
        });
        let c = Connection::open(db).expect("reopen");
        assert_eq!(
            schema::version(&c).expect("version"),
            schema::CURRENT_VERSION,
            "round {round}: the product finished the migration"
        );
        return;
    }
    c.execute(
        "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')",
        [],
    )
    .unwrap_or_else(|e| panic!("round {round}: FTS index out of sync: {e}"));
    for w in 0..WRITERS {
        let sid = format!("w{w}");
        let mut st = c
            .prepare("SELECT seq, content FROM messages WHERE session_id = ?1 ORDER BY seq")
            .expect("prepare");
        let rows: Vec<(i64, String)> = st
            .query_map([&sid], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        for (k, (seq, text)) in rows.iter().enumerate() {
            assert_eq!(*seq, k as i64 + 1, "round {round}: {sid} seq");
            assert_eq!(*text, content(&sid, k as u64), "round {round}: {sid} #{k}");
        }
        if let Some(&max) = acked.get(&sid) {
            assert!(
                rows.len() as u64 > max,
                "round {round}: {sid} acknowledged #{max} but holds only {} messages",
                rows.len()
            );
        }
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_write() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("tether.db");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut total_acks = 0u64;
    for round in 0..ROUNDS {
        // Round 0 and one in eight: kill at once (during start-up, opening or
        // migrating); otherwise after a random number of acknowledgements.
        let wait_for = if round == 0 || rng.next() % 8 == 0 {
            0
        } else {
            1 + rng.next() % 300
        };
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
        let mut record = |line: &str, acked: &mut BTreeMap<String, u64>| -> bool {
            let mut parts = line.split(' ');
            match (
                parts.next(),
                parts.next(),
                parts.next().map(str::parse::<u64>),
            ) {
                (Some("ACK"), Some(sid), Some(Ok(i))) => {
                    let e = acked.entry(sid.to_string()).or_insert(i);
                    *e = (*e).max(i);
                    total_acks += 1;
                    true
                }
                _ => false,
            }
        };
        let mut seen = 0;
        while seen < wait_for {
            match lines.next() {
                Some(Ok(l)) => {
                    if record(&l, &mut acked) {
                        seen += 1;
                    }
                }
                _ => {
                    let status = child.wait().expect("wait");
                    panic!("round {round}: the child stopped by itself ({status})");
                }
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // Acknowledgements printed before the kill are still in the pipe.
        for l in lines.map_while(Result::ok) {
            record(&l, &mut acked);
        }
        if db.exists() {
            verify(&db, &acked, round);
        }
    }
    assert!(
        total_acks > 1000,
        "the children wrote under load ({total_acks} acknowledged appends)"
    );
    // And the product opens it and resumes.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = Store::open(dir.path());
        assert_eq!(store.take_warning(), None);
        let msgs = store.messages("w0".into()).await.expect("messages");
        assert!(msgs.len() as u64 > acked["w0"]);
        store
            .write(Write::AppendMessage {
                session_id: "w0".into(),
                message: StoredMessage {
                    role: "user".into(),
                    content: content("w0", msgs.len() as u64),
                    tool_calls: None,
                    tool_call_id: None,
                    created_ms: now_ms(),
                },
            })
            .await
            .expect("append after the crashes");
    });
}
