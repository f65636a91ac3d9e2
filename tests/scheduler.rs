//! The tool scheduler, the cancellation tree and process hygiene, end to end.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::{call, tool_results, ModelServer, Reply};

const T: Duration = Duration::from_secs(20);

fn cfg(root: &Path, model: &ModelServer, data: &Path, extra: Value) -> EditorConfig {
    support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        ClientProfile::VsCode,
        root,
        model,
        data,
        extra,
    )
}

fn at_of(ed: &Editor, id: &str, status: &str) -> Instant {
    ed.notifications()
        .iter()
        .find(|n| {
            n.params["kind"] == "toolCall"
                && n.params["toolCallId"] == id
                && n.params["status"] == status
        })
        .map(|n| n.at)
        .unwrap_or_else(|| panic!("no {status} for {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_commands_in_one_response_run_at_the_same_time() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let calls = (0..8)
        .map(|i| {
            call(
                &format!("c{i}"),
                "run_command",
                json!({"command": format!("sleep 0.2 && echo {i}")}),
            )
        })
        .collect();
    let model = ModelServer::start(vec![Reply::ToolCalls(calls), Reply::Text("ok".into())]).await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let r = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "end_turn");
    let last_start = (0..8)
        .map(|i| at_of(&ed, &format!("c{i}"), "running"))
        .max()
        .expect("starts");
    let first_end = (0..8)
        .map(|i| at_of(&ed, &format!("c{i}"), "completed"))
        .min()
        .expect("ends");
    assert!(
        last_start < first_end,
        "all eight were running before the first finished"
    );
    let results = tool_results(&model.requests()[1].body);
    for (i, (id, out)) in results.iter().enumerate() {
        assert_eq!(id, &format!("c{i}"));
        assert!(out.contains(&format!("\n{i}")), "{out}");
    }
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_return_in_model_order_even_when_later_calls_finish_first() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    // c1 waits for a file the test creates only once the editor has seen c2
    // completed: c2 finishes first, whatever the machine's speed.
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call(
                "c1",
                "run_command",
                json!({"command": "while [ ! -f c1.go ]; do sleep 0.02; done; echo one"}),
            ),
            call("c2", "run_command", json!({"command": "echo two"})),
        ]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let (_id, prompt) = ed.request_id("tether/prompt", json!({"text": "go"}));
    ed.wait_update(|u| u["toolCallId"] == "c2" && u["status"] == "completed", T)
        .await;
    std::fs::write(ws.path().join("c1.go"), "").expect("release c1");
    let done = prompt.await.expect("r");
    support::turn_ended(&ed, &done).await;
    assert!(at_of(&ed, "c2", "completed") < at_of(&ed, "c1", "completed"));
    let results = tool_results(&model.requests()[1].body);
    assert_eq!(results[0].0, "c1");
    assert!(results[0].1.contains("one"));
    assert_eq!(results[1].0, "c2");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_write_of_the_same_file_sees_the_write() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call(
                "w",
                "write_file",
                json!({"path": "a.txt", "content": "fresh content\n"}),
            ),
            call("r", "read_file", json!({"path": "a.txt"})),
            call("l", "list_dir", json!({})),
            call("s", "search", json!({"pattern": "fresh"})),
        ]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let done = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &done).await;
    let results = tool_results(&model.requests()[1].body);
    assert!(results[1].1.contains("fresh content"), "{}", results[1].1);
    assert!(results[2].1.contains("a.txt"), "{}", results[2].1);
    assert!(
        results[3].1.contains("a.txt:1: fresh content"),
        "{}",
        results[3].1
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_whole_batch_and_a_pending_approval_and_the_session_goes_on() {
    let ws = support::workspace();
    support::write_file(ws.path(), "keep/x", "x");
    let data = tempfile::tempdir().expect("data");
    let tag = std::process::id();
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call(
                "a",
                "run_command",
                json!({"command": format!("sleep 40.{tag}1; echo a")}),
            ),
            call(
                "b",
                "run_command",
                json!({"command": format!("(sleep 40.{tag}2; echo b) | cat")}),
            ),
            call("d", "run_command", json!({"command": "rm -rf keep"})),
        ]),
        Reply::Text("second turn works".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "go"}));
    let pending = tokio::spawn(fut);
    let dialog = ed.next_server_request("window/showMessageRequest", T).await;
    let markers = [format!("sleep 40.{tag}1"), format!("sleep 40.{tag}2")];
    assert!(
        support::wait_until(
            || markers
                .iter()
                .all(|m| !support::pids_matching(m).is_empty()),
            T
        )
        .await,
        "both commands are running"
    );
    let sid = ed.wait_update(|u| u["kind"] == "approval", T).await["sessionId"]
        .as_str()
        .expect("sid")
        .to_string();
    let t0 = Instant::now();
    ed.notify("tether/cancel", json!({"sessionId": sid})).await;
    let r = pending.await.expect("join").expect("r");
    support::turn_ended(&ed, &r).await;
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(r["stopReason"], "cancelled");
    for m in &markers {
        assert!(support::pids_matching(m).is_empty(), "{m} left behind");
    }
    assert!(
        support::descendants(ed.pid() as i32).is_empty(),
        "no child of the server is left"
    );
    assert!(ws.path().join("keep/x").exists());
    drop(dialog);
    // A cancel with nothing running is a no-op, and the session goes on.
    ed.notify("tether/cancel", json!({"sessionId": sid})).await;
    let r2 = ed
        .request("tether/prompt", json!({"sessionId": sid, "text": "again"}))
        .await
        .expect("r2");
    support::turn_ended(&ed, &r2).await;
    assert_eq!(r2["stopReason"], "end_turn");
    assert_eq!(r2["text"], "second turn works");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_prompt_in_a_busy_session_is_rejected_clearly() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::TextThenHang("working".into())]).await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "one"}));
    let pending = tokio::spawn(fut);
    let sid = ed.wait_update(|u| u["kind"] == "text", T).await["sessionId"]
        .as_str()
        .expect("sid")
        .to_string();
    let err = ed
        .request("tether/prompt", json!({"sessionId": sid, "text": "two"}))
        .await
        .expect_err("busy");
    assert!(
        err.message.contains("already running") && err.message.contains("tether/cancel"),
        "{err}"
    );
    ed.notify("tether/cancel", json!({"sessionId": sid})).await;
    let r = pending.await.expect("join").expect("r");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "cancelled");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backgrounded_grandchild_does_not_hold_the_call() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let tag = std::process::id();
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "bg",
            "run_command",
            json!({"command": format!("sh -c 'sleep 100.{tag} &'; echo done")}),
        )]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(
        ws.path(),
        &model,
        data.path(),
        json!({"tools": {"drainMs": 500}}),
    ))
    .await;
    let t0 = Instant::now();
    let done = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &done).await;
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "returned after about the drain limit: {took:?}"
    );
    let results = tool_results(&model.requests()[1].body);
    assert!(results[0].1.contains("done"), "{}", results[0].1);
    assert!(
        support::pids_matching(&format!("sleep 100.{tag}")).is_empty(),
        "the group was cleaned up"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_never_see_the_api_key_and_secrets_are_redacted() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "env",
            "run_command",
            json!({"command": "env; echo $HOME_TOKEN_CHECK"}),
        )]),
        Reply::Text("ok".into()),
    ])
    .await;
    let config = cfg(ws.path(), &model, data.path(), json!({}))
        .env("TETHER_API_KEY", "sk-tether-very-secret-1")
        .env("DEPLOY_TOKEN", "tok-should-be-hidden-2");
    let (ed, _) = Editor::start(config).await;
    let done = ed
        .request("tether/prompt", json!({"text": "env"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &done).await;
    let reqs = model.chat_requests();
    assert_eq!(
        reqs[0].header("authorization"),
        Some("Bearer sk-tether-very-secret-1")
    );
    let out = &tool_results(&reqs[1].body)[0].1;
    assert!(out.contains("PAGER=cat"), "{out}");
    assert!(
        !out.contains("sk-tether-very-secret-1"),
        "API key visible to commands"
    );
    assert!(
        !out.contains("TETHER_API_KEY"),
        "API key variable visible to commands"
    );
    assert!(
        !out.contains("tok-should-be-hidden-2"),
        "secret not redacted"
    );
    assert!(out.contains("DEPLOY_TOKEN=[REDACTED]"), "{out}");
    assert!(!ed.stderr_text().contains("sk-tether-very-secret-1"));
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_leaves_no_orphan() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let marker = format!("sleep 50.{}", std::process::id());
    let model = ModelServer::start(vec![Reply::ToolCalls(vec![call(
        "s",
        "run_command",
        // Not the last command, so bash forks it as a grandchild.
        json!({"command": format!("{marker}; echo never")}),
    )])])
    .await;
    let (mut ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "go"}));
    let _pending = tokio::spawn(fut);
    assert!(
        support::wait_until(|| !support::pids_matching(&marker).is_empty(), T).await,
        "the command started"
    );
    ed.kill9().await;
    assert!(
        support::wait_until(
            || support::pids_matching(&marker).is_empty(),
            Duration::from_secs(5)
        )
        .await,
        "the sleep died with the server: {:?}",
        support::pids_matching(&marker)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_output_streams_cleanly_to_the_editor() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "p",
            "run_command",
            json!({"command": "printf '\\033[31mline1\\033[0m \\377\\376\\n'; while [ ! -f go ]; do sleep 0.02; done; echo line2"}),
        )]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(ws.path(), &model, data.path(), json!({}))).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "go"}));
    let pending = tokio::spawn(fut);
    let live = ed
        .wait_update(
            |u| {
                u["toolCallId"] == "p"
                    && u["status"] == "running"
                    && u["output"].as_str().is_some_and(|o| o.contains("line1"))
            },
            T,
        )
        .await;
    let shown = live["output"].as_str().unwrap_or("");
    assert!(!shown.contains('\u{1b}'), "ANSI stripped: {shown:?}");
    assert!(
        shown.contains('\u{fffd}'),
        "invalid UTF-8 replaced: {shown:?}"
    );
    support::write_file(ws.path(), "go", "");
    let r = pending.await.expect("join").expect("r");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "end_turn");
    let out = &tool_results(&model.requests()[1].body)[0].1;
    assert!(
        out.contains("line1") && out.contains("line2") && !out.contains('\u{1b}'),
        "{out}"
    );
    // Updates are rate-limited: far fewer than one per byte.
    let live_updates = ed
        .updates()
        .iter()
        .filter(|u| u["toolCallId"] == "p" && u["status"] == "running")
        .count();
    assert!(live_updates < 50, "{live_updates}");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_deadline_cancels_what_is_unfinished_and_the_turn_goes_on() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call("slow", "run_command", json!({"command": "sleep 30"})),
            call("fast", "run_command", json!({"command": "echo quick"})),
        ]),
        Reply::Text("after the deadline".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(
        ws.path(),
        &model,
        data.path(),
        json!({"tools": {"batchDeadlineSecs": 1}}),
    ))
    .await;
    let r = ed
        .request("tether/prompt", json!({"text": "go"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "end_turn");
    let results = tool_results(&model.requests()[1].body);
    assert!(results[0].1.contains("batch deadline"), "{}", results[0].1);
    assert!(results[1].1.contains("quick"));
    ed.shutdown().await;
}
