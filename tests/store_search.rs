//! Full-text search over sessions (`tether/sessions {query}`): words from
//! tool output, assistant text and tool names are found; the better match
//! ranks first; each session appears once with a snippet of its best
//! message; free text never breaks the FTS query; deleting a session takes
//! its messages out of the index.

use rusqlite::Connection;
use serde_json::json;
use tether::protocol::{Role, ToolStatus};
use tether::store::{now_ms, Store, StoredMessage, Write};

fn message(role: &str, content: &str) -> StoredMessage {
    StoredMessage {
        role: Role::parse(role).expect("a role"),
        content: content.into(),
        tool_calls: None,
        tool_call_id: None,
        created_ms: now_ms(),
    }
}

async fn session(store: &Store, id: &str, parent: Option<&str>, msgs: Vec<StoredMessage>) {
    store
        .write(Write::CreateSession {
            id: id.into(),
            parent_id: parent.map(str::to_string),
            title: String::new(),
            workspace: "/ws".into(),
            model: "m".into(),
        })
        .await
        .expect("create");
    for m in msgs {
        store
            .write(Write::AppendMessage {
                session_id: id.into(),
                message: m,
            })
            .await
            .expect("append");
    }
}

async fn search(store: &Store, q: &str) -> Vec<(String, String)> {
    store
        .list_sessions(Some(q.into()), 50)
        .await
        .unwrap_or_else(|e| panic!("search {q:?}: {e}"))
        .into_iter()
        .map(|s| (s.id, s.snippet.unwrap_or_default()))
        .collect()
}

fn ids(found: &[(String, String)]) -> Vec<&str> {
    found.iter().map(|(id, _)| id.as_str()).collect()
}

/// A session with a prompt, a tool call, the tool's output and an answer.
async fn build_session(store: &Store) {
    let mut call = message("assistant", "Let me build it.");
    call.tool_calls = Some(json!([{"id": "c1", "type": "function",
        "function": {"name": "run_command", "arguments": "{\"command\":\"cargo build\"}"}}]));
    let mut output = message(
        "tool",
        "   Compiling demo v0.1.0\nerror: linker `quokka-cc` not found\nerror: could not compile",
    );
    output.tool_call_id = Some("c1".into());
    session(
        store,
        "build",
        None,
        vec![
            message("user", "Why does the build fail?"),
            call,
            output,
            message(
                "assistant",
                "The build needs the marmot toolchain; install it and retry.",
            ),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_words_from_tool_output_assistant_text_and_tool_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path());
    build_session(&store).await;
    session(
        &store,
        "other",
        None,
        vec![message("user", "Rename beta to gamma in notes.txt")],
    )
    .await;

    let found = search(&store, "quokka").await;
    assert_eq!(ids(&found), ["build"], "a word from a tool's output");
    assert!(found[0].1.contains("[quokka]"), "{}", found[0].1);

    let found = search(&store, "marmot").await;
    assert_eq!(ids(&found), ["build"], "a word from an assistant message");
    assert!(found[0].1.contains("[marmot]"), "{}", found[0].1);

    let found = search(&store, "run_command").await;
    assert_eq!(ids(&found), ["build"], "a tool's name");

    assert_eq!(ids(&search(&store, "MARMOT toolchain").await), ["build"]);
    assert_eq!(ids(&search(&store, "quok*").await), ["build"], "prefix");
    assert!(search(&store, "marmot gamma").await.is_empty(), "all words");
    assert!(search(&store, "ocelot").await.is_empty());

    // Titles come from the first prompt.
    let listed = store.list_sessions(None, 10).await.expect("list");
    let build = listed.iter().find(|s| s.id == "build").expect("listed");
    assert_eq!(build.title, "Why does the build fail?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_better_match_ranks_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path());
    let filler = "the quick brown fox jumps over the lazy dog while the build runs ";
    let long = format!("{} flamingo {}", filler.repeat(20), filler.repeat(20));
    // The strong match is written first, so recency cannot explain the order.
    session(
        &store,
        "strong",
        None,
        vec![
            message("user", "flamingo config"),
            message(
                "assistant",
                "The flamingo setting: flamingo = true, flamingo.level = 3",
            ),
        ],
    )
    .await;
    session(
        &store,
        "weak",
        None,
        vec![message("user", "check the logs"), message("tool", &long)],
    )
    .await;
    session(
        &store,
        "none",
        None,
        vec![message("user", "nothing relevant here")],
    )
    .await;

    let found = search(&store, "flamingo").await;
    assert_eq!(ids(&found), ["strong", "weak"]);
    assert!(found[1].1.contains("[flamingo]"), "{}", found[1].1);
    assert!(
        found[1].1.chars().count() < 200,
        "a snippet, not the message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_session_once_limited_and_safe_with_any_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path());
    for s in 0..5 {
        let msgs = (0..20)
            .map(|i| message("assistant", &format!("pelican note {i} of session {s}")))
            .collect();
        session(&store, &format!("s{s}"), None, msgs).await;
    }
    let found = search(&store, "pelican").await;
    assert_eq!(found.len(), 5, "one row per session");
    let limited = store
        .list_sessions(Some("pelican".into()), 2)
        .await
        .expect("search");
    assert_eq!(limited.len(), 2);
    assert!(limited.iter().all(|s| s.message_count == 20));

    // FTS syntax in the text is taken literally, never an error.
    for q in [
        "\"",
        "pelican \"",
        "NEAR(pelican",
        "pelican OR",
        "*",
        "-pelican",
        "pelican:",
        "^pelican",
        "(",
        "AND",
    ] {
        let _ = search(&store, q).await;
    }
    assert_eq!(search(&store, "pelican OR").await.len(), 0, "OR is a word");
    assert_eq!(search(&store, "\"pelican\"").await.len(), 5);
    // An empty query lists sessions instead.
    assert_eq!(
        store
            .list_sessions(Some("   ".into()), 50)
            .await
            .expect("list")
            .len(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_session_removes_it_and_its_subagents_from_search() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path());
    build_session(&store).await;
    session(
        &store,
        "build-sub",
        Some("build"),
        vec![message("assistant", "the quokka linker lives in /opt")],
    )
    .await;
    session(
        &store,
        "keep",
        None,
        vec![message("user", "a quokka question")],
    )
    .await;
    store.submit(Write::ToolRun {
        session_id: "build".into(),
        tool_call_id: "c1".into(),
        tool: "run_command".into(),
        input: "{}".into(),
        status: ToolStatus::Failed,
        output_excerpt: "error".into(),
        duration_ms: 5,
    });
    assert_eq!(search(&store, "quokka").await.len(), 3);

    assert_eq!(
        store.delete_session("build".into()).await.expect("delete"),
        2
    );
    assert_eq!(ids(&search(&store, "quokka").await), ["keep"]);
    assert!(store.history("build-sub".into()).await.is_err());
    assert!(matches!(
        store.delete_session("build".into()).await,
        Err(tether::store::StoreError::NoSession(_))
    ));
    let c = Connection::open(store.path()).expect("open");
    let left: i64 = c
        .query_row(
            "SELECT (SELECT COUNT(*) FROM messages WHERE session_id LIKE 'build%')
                  + (SELECT COUNT(*) FROM tool_runs WHERE session_id LIKE 'build%')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(left, 0);
    c.execute(
        "INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')",
        [],
    )
    .expect("FTS index in sync after delete");
}
