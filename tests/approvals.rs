//! The approval gate, end to end: every dangerous command reaches the person
//! through the editor, one dialog at a time, or is denied — and both the
//! person and the model are told.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{choose_action, ClientProfile, Editor, EditorConfig, RpcError};
use support::model::{call, tool_results, ModelServer, Reply};

const T: Duration = Duration::from_secs(20);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tether")
}

fn cfg(
    profile: ClientProfile,
    root: &Path,
    model: &ModelServer,
    data: &Path,
    extra: Value,
) -> EditorConfig {
    support::tether_config(
        env!("CARGO_BIN_EXE_tether"),
        profile,
        root,
        model,
        data,
        extra,
    )
}

/// The workspace of the original bug: a build/ dir and two files to read.
fn ws_with_build() -> tempfile::TempDir {
    let ws = support::workspace();
    support::write_file(ws.path(), "build/out.o", "object");
    support::write_file(ws.path(), "a.txt", "first file\n");
    support::write_file(ws.path(), "b.txt", "second file\n");
    ws
}

fn the_original_bug() -> Vec<Reply> {
    vec![
        Reply::ToolCalls(vec![
            call("r1", "read_file", json!({"path": "a.txt"})),
            call("rm", "run_command", json!({"command": "rm -rf build"})),
            call("r2", "read_file", json!({"path": "b.txt"})),
        ]),
        Reply::Text("done".into()),
    ]
}

fn status_of(ed: &Editor, id: &str) -> Vec<String> {
    ed.updates()
        .iter()
        .filter(|u| u["kind"] == "toolCall" && u["toolCallId"] == id)
        .map(|u| u["status"].as_str().unwrap_or("").to_string())
        .collect()
}

fn approvals(ed: &Editor) -> Vec<(String, String)> {
    ed.updates()
        .iter()
        .filter(|u| u["kind"] == "approval")
        .map(|u| {
            (
                u["command"].as_str().unwrap_or("").to_string(),
                u["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Runs the original bug's batch and answers the dialog with `answer`
/// (`None`: never answer). Returns the editor, the model server and the result.
async fn original_bug(
    answer: Option<&str>,
    extra: Value,
) -> (Editor, ModelServer, Value, tempfile::TempDir) {
    let ws = ws_with_build();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(the_original_bug()).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixMaster,
        ws.path(),
        &model,
        data.path(),
        extra,
    ))
    .await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "clean the build"}));
    let pending = tokio::spawn(fut);
    let dialog = ed.next_server_request("window/showMessageRequest", T).await;
    let msg = dialog.params["message"].as_str().unwrap_or("");
    assert_eq!(dialog.params["type"], 2, "Warning");
    assert!(msg.contains("rm -rf build"), "says what runs: {msg}");
    assert!(
        msg.contains(&ws.path().display().to_string()),
        "says where: {msg}"
    );
    assert!(msg.to_lowercase().contains("recursive"), "says why: {msg}");
    assert!(msg.contains("main agent"), "says who asks: {msg}");
    let titles: Vec<&str> = dialog.params["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["title"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        titles,
        ["Deny", "Allow once", "Allow for session", "Always allow"],
        "the safe choice first: a stray Enter on the pre-selected item denies"
    );
    assert!(dialog.params["actions"][0]["approvalId"].is_string());
    // Each button carries the question structured: a client shows it without
    // reading the English message.
    let root = ws.path().display().to_string();
    for (a, choice) in dialog.params["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .zip(["deny", "allow_once", "allow_session", "always_allow"])
    {
        assert_eq!(a["choice"], choice);
        assert_eq!(a["kind"], "command");
        assert_eq!(a["action"], "rm -rf build");
        assert_eq!(a["cwd"], root.as_str());
        assert!(
            a["reason"].as_str().unwrap_or("").contains("recursive"),
            "{a}"
        );
        assert!(a.get("agent").is_none(), "the main agent asks: {a}");
    }
    // The reads finish while the dialog waits: no worker is stuck behind it.
    ed.wait_update(|u| u["toolCallId"] == "r1" && u["status"] == "completed", T)
        .await;
    ed.wait_update(|u| u["toolCallId"] == "r2" && u["status"] == "completed", T)
        .await;
    assert!(ws.path().join("build").exists());
    if let Some(title) = answer {
        let item = choose_action(&dialog.params, title).expect("action");
        ed.reply(dialog.id.clone(), Ok(item)).await;
    }
    let result = pending.await.expect("join").expect("prompt result");
    support::turn_ended(&ed, &result).await;
    (ed, model, result, ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_bug_allow_once_runs_the_command() {
    let (ed, model, result, ws) = original_bug(Some("Allow once"), json!({})).await;
    assert_eq!(result["stopReason"], "end_turn");
    assert!(!ws.path().join("build").exists(), "build/ is gone");
    let results = tool_results(&model.requests()[1].body);
    let ids: Vec<&str> = results.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(ids, ["r1", "rm", "r2"]);
    assert!(results[1].1.contains("exit code 0"), "{}", results[1].1);
    assert_eq!(
        status_of(&ed, "rm").last().map(String::as_str),
        Some("completed")
    );
    assert_eq!(
        approvals(&ed),
        [
            ("rm -rf build".to_string(), "asked".to_string()),
            ("rm -rf build".to_string(), "allowed".to_string())
        ]
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_bug_deny_keeps_build_and_tells_the_model() {
    let (ed, model, result, ws) = original_bug(Some("Deny"), json!({})).await;
    assert_eq!(result["stopReason"], "end_turn");
    assert!(
        ws.path().join("build/out.o").exists(),
        "build/ still exists"
    );
    let results = tool_results(&model.requests()[1].body);
    assert!(
        results[1].1.contains("Denied") && results[1].1.contains("person denied"),
        "{}",
        results[1].1
    );
    assert!(results[1].1.contains("Do not retry"), "{}", results[1].1);
    assert_eq!(
        status_of(&ed, "rm").last().map(String::as_str),
        Some("denied")
    );
    assert_eq!(approvals(&ed).last().map(|a| a.1.as_str()), Some("denied"));
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_bug_no_answer_times_out_and_denies() {
    let t0 = Instant::now();
    let (ed, model, result, ws) = original_bug(None, json!({"approval": {"timeoutSecs": 2}})).await;
    let took = t0.elapsed();
    assert_eq!(result["stopReason"], "end_turn");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(ws.path().join("build/out.o").exists(), "not run");
    let results = tool_results(&model.requests()[1].body);
    assert!(results[1].1.contains("within 2 s"), "{}", results[1].1);
    assert_eq!(
        approvals(&ed).last().map(|a| a.1.as_str()),
        Some("timed_out")
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_25_07_cannot_show_dialogs_so_it_is_denied_at_once_and_told() {
    let ws = ws_with_build();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(the_original_bug()).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixRelease,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let t0 = Instant::now();
    let result = ed
        .request("tether/prompt", json!({"text": "clean the build"}))
        .await
        .expect("result");
    support::turn_ended(&ed, &result).await;
    assert_eq!(result["stopReason"], "end_turn");
    assert!(ws.path().join("build/out.o").exists());
    let results = tool_results(&model.requests()[1].body);
    assert!(
        results[1].1.contains("cannot show approval dialogs"),
        "{}",
        results[1].1
    );
    let shown = ed
        .wait_notification(|n| n.method == "window/showMessage", T)
        .await;
    let text = shown.params["message"].as_str().unwrap_or("");
    assert!(
        text.contains("rm -rf build") && text.contains("approval.mode"),
        "{text}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "denied at once: {:?}",
        t0.elapsed()
    );
    assert!(ed
        .server_requests()
        .iter()
        .all(|r| r.method != "window/showMessageRequest"));
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_error_reply_is_a_deny() {
    // A client that declares the capability but answers with an error.
    let ws = ws_with_build();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(the_original_bug()).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixMaster,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "clean"}));
    let pending = tokio::spawn(fut);
    let dialog = ed.next_server_request("window/showMessageRequest", T).await;
    ed.reply(dialog.id, Err(RpcError::method_not_found())).await;
    let result = pending.await.expect("join").expect("result");
    support::turn_ended(&ed, &result).await;
    assert_eq!(result["stopReason"], "end_turn");
    assert!(ws.path().join("build/out.o").exists());
    let results = tool_results(&model.requests()[1].body);
    assert!(
        results[1].1.contains("could not show the approval request"),
        "{}",
        results[1].1
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_dangerous_commands_get_one_dialog_at_a_time() {
    let ws = support::workspace();
    for d in ["d1", "d2", "d3"] {
        support::write_file(ws.path(), &format!("{d}/x"), "x");
    }
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call("c1", "run_command", json!({"command": "rm -rf d1"})),
            call("c2", "run_command", json!({"command": "rm -rf d2"})),
            call("c3", "run_command", json!({"command": "rm -rf d3"})),
        ]),
        Reply::Text("done".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::VsCode,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "clean all"}));
    let pending = tokio::spawn(fut);
    let answers = [
        ("d1", "Allow once"),
        ("d2", "Deny"),
        ("d3", "Allow for session"),
    ];
    let mut seen = Vec::new();
    for _ in 0..3 {
        let dialog = ed.next_server_request("window/showMessageRequest", T).await;
        // Every call has been announced; the others are queued, not shown.
        ed.wait_update(|u| u["toolCallId"] == "c3" && u["status"] == "running", T)
            .await;
        let msg = dialog.params["message"].as_str().unwrap_or("").to_string();
        let (dir, title) = answers
            .iter()
            .find(|(d, _)| msg.contains(&format!("rm -rf {d}")))
            .expect("a known command");
        seen.push(dir.to_string());
        let item = choose_action(&dialog.params, title).expect("action");
        ed.reply(dialog.id.clone(), Ok(item)).await;
    }
    let result = pending.await.expect("join").expect("result");
    support::turn_ended(&ed, &result).await;
    assert_eq!(result["stopReason"], "end_turn");
    seen.sort();
    assert_eq!(seen, ["d1", "d2", "d3"], "each command asked exactly once");
    let dialogs: Vec<_> = ed
        .server_requests()
        .into_iter()
        .filter(|r| r.method == "window/showMessageRequest")
        .collect();
    assert_eq!(dialogs.len(), 3);
    for pair in dialogs.windows(2) {
        let answered = pair[0].answered_at.expect("answered");
        assert!(
            pair[1].at > answered,
            "the next dialog came only after the previous was answered"
        );
    }
    assert!(!ws.path().join("d1").exists());
    assert!(ws.path().join("d2/x").exists());
    assert!(!ws.path().join("d3").exists());
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_for_session_and_always_allow_are_remembered_where_they_should_be() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let mk = |d: &str| support::write_file(ws.path(), &format!("{d}/x"), "x");
    mk("s1");
    let rm = |d: &str, id: &str| {
        Reply::ToolCalls(vec![call(
            id,
            "run_command",
            json!({"command": format!("rm -rf {d}")}),
        )])
    };
    let model = ModelServer::start(vec![
        rm("s1", "a"),
        Reply::Text("1".into()),
        rm("s1", "b"),
        Reply::Text("2".into()),
        rm("s1", "c"),
        Reply::Text("3".into()),
        rm("k", "d"),
        Reply::Text("4".into()),
        rm("k", "e"),
        Reply::Text("5".into()),
        rm("k", "f"),
        Reply::Text("6".into()),
    ])
    .await;
    let start = || {
        Editor::start(cfg(
            ClientProfile::Neovim,
            ws.path(),
            &model,
            data.path(),
            json!({}),
        ))
    };
    let dialogs = |ed: &Editor| {
        ed.server_requests()
            .iter()
            .filter(|r| r.method == "window/showMessageRequest")
            .count()
    };

    let (ed, _) = start().await;
    // 1. Allow for session.
    let (_i, fut) = ed.request_id("tether/prompt", json!({"text": "one"}));
    let pending = tokio::spawn(fut);
    let d = ed.next_server_request("window/showMessageRequest", T).await;
    ed.reply(
        d.id.clone(),
        Ok(choose_action(&d.params, "Allow for session").expect("a")),
    )
    .await;
    let r1 = pending.await.expect("join").expect("r1");
    support::turn_ended(&ed, &r1).await;
    let sid = r1["sessionId"].as_str().expect("sid").to_string();
    assert!(!ws.path().join("s1").exists());
    // 2. Same command, same session: no dialog.
    mk("s1");
    let r2 = ed
        .request("tether/prompt", json!({"sessionId": sid, "text": "two"}))
        .await
        .expect("r2");
    support::turn_ended(&ed, &r2).await;
    assert_eq!(r2["stopReason"], "end_turn");
    assert!(!ws.path().join("s1").exists(), "ran without asking");
    assert_eq!(dialogs(&ed), 1);
    // 3. New session: asks again (answer Deny).
    mk("s1");
    let (_i, fut) = ed.request_id("tether/prompt", json!({"text": "three"}));
    let pending = tokio::spawn(fut);
    let d = ed.next_server_request("window/showMessageRequest", T).await;
    ed.reply(d.id.clone(), Ok(Value::Null)).await; // dismissed = Deny
    pending.await.expect("join").expect("r3");
    assert!(ws.path().join("s1/x").exists(), "dismissal denies");
    // 4. Always allow.
    mk("k");
    let (_i, fut) = ed.request_id("tether/prompt", json!({"text": "four"}));
    let pending = tokio::spawn(fut);
    let d = ed.next_server_request("window/showMessageRequest", T).await;
    ed.reply(
        d.id.clone(),
        Ok(choose_action(&d.params, "Always allow").expect("a")),
    )
    .await;
    pending.await.expect("join").expect("r4");
    assert!(!ws.path().join("k").exists());
    ed.shutdown().await;

    // 5. After a restart: no dialog.
    mk("k");
    let (ed, _) = start().await;
    let r5 = ed
        .request("tether/prompt", json!({"text": "five"}))
        .await
        .expect("r5");
    support::turn_ended(&ed, &r5).await;
    assert_eq!(r5["stopReason"], "end_turn");
    assert!(!ws.path().join("k").exists(), "ran under the stored rule");
    assert_eq!(dialogs(&ed), 0);
    ed.shutdown().await;

    // 6. `tether rules remove` → asks again.
    let rules = |args: &[&str]| {
        std::process::Command::new(bin())
            .args(args)
            .env("TETHER_DATA_DIR", data.path())
            .output()
            .expect("run tether rules")
    };
    let list = rules(&["rules", "list"]);
    let listing = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        list.status.success() && listing.contains("rm -rf k"),
        "{listing}"
    );
    let id = listing.split('\t').next().expect("id").trim().to_string();
    let removed = rules(&["rules", "remove", &id]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let missing = rules(&["rules", "remove", "99999"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no rule 99999"));
    mk("k");
    let (ed, _) = start().await;
    let (_i, fut) = ed.request_id("tether/prompt", json!({"text": "six"}));
    let pending = tokio::spawn(fut);
    let d = ed.next_server_request("window/showMessageRequest", T).await;
    ed.reply(
        d.id.clone(),
        Ok(choose_action(&d.params, "Deny").expect("a")),
    )
    .await;
    pending.await.expect("join").expect("r6");
    assert!(ws.path().join("k/x").exists());
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_never_runs_even_under_allow() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "f",
            "run_command",
            json!({"command": "rm -rf /"}),
        )]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::VsCode,
        ws.path(),
        &model,
        data.path(),
        json!({"approval": {"mode": "allow"}}),
    ))
    .await;
    let r = ed
        .request("tether/prompt", json!({"text": "wipe"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "end_turn");
    let results = tool_results(&model.requests()[1].body);
    assert!(results[0].1.contains("forbidden"), "{}", results[0].1);
    assert_eq!(
        status_of(&ed, "f").last().map(String::as_str),
        Some("denied")
    );
    assert!(ed
        .server_requests()
        .iter()
        .all(|r| r.method != "window/showMessageRequest"));
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_cannot_loosen_the_policy() {
    let ws = ws_with_build();
    support::write_file(
        ws.path(),
        ".tether/config.toml",
        "[approval]\nmode = \"allow\"\n",
    );
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(the_original_bug()).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::VsCode,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    ed.wait_stderr("never loosen", T).await;
    let (_i, fut) = ed.request_id("tether/prompt", json!({"text": "clean"}));
    let pending = tokio::spawn(fut);
    let d = ed.next_server_request("window/showMessageRequest", T).await;
    ed.reply(
        d.id.clone(),
        Ok(choose_action(&d.params, "Deny").expect("a")),
    )
    .await;
    pending.await.expect("join").expect("r");
    assert!(
        ws.path().join("build/out.o").exists(),
        "still asked, and Deny held"
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_can_tighten_the_policy() {
    let ws = ws_with_build();
    support::write_file(
        ws.path(),
        ".tether/config.toml",
        "[approval]\nmode = \"deny\"\n",
    );
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(the_original_bug()).await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::VsCode,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let r = ed
        .request("tether/prompt", json!({"text": "clean"}))
        .await
        .expect("r");
    support::turn_ended(&ed, &r).await;
    assert_eq!(r["stopReason"], "end_turn");
    assert!(ws.path().join("build/out.o").exists());
    let results = tool_results(&model.requests()[1].body);
    assert!(
        results[1].1.contains("approval.mode = \"deny\""),
        "{}",
        results[1].1
    );
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_while_a_dialog_is_open_denies_it_and_the_queued_ones() {
    let ws = support::workspace();
    for d in ["q1", "q2"] {
        support::write_file(ws.path(), &format!("{d}/x"), "x");
    }
    let data = tempfile::tempdir().expect("data");
    let model = ModelServer::start(vec![Reply::ToolCalls(vec![
        call("c1", "run_command", json!({"command": "rm -rf q1"})),
        call("c2", "run_command", json!({"command": "rm -rf q2"})),
    ])])
    .await;
    let (ed, _) = Editor::start(cfg(
        ClientProfile::HelixMaster,
        ws.path(),
        &model,
        data.path(),
        json!({}),
    ))
    .await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "clean"}));
    let pending = tokio::spawn(fut);
    let d = ed.next_server_request("window/showMessageRequest", T).await;
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
    // A late answer to the stale dialog changes nothing.
    ed.reply(
        d.id.clone(),
        Ok(choose_action(&d.params, "Allow once").expect("a")),
    )
    .await;
    assert!(ws.path().join("q1/x").exists() && ws.path().join("q2/x").exists());
    for id in ["c1", "c2"] {
        assert_eq!(
            status_of(&ed, id).last().map(String::as_str),
            Some("cancelled"),
            "{id}"
        );
    }
    let denied = approvals(&ed).iter().filter(|a| a.1 == "denied").count();
    assert!(denied >= 1, "{:?}", approvals(&ed));
    assert_eq!(
        ed.server_requests()
            .iter()
            .filter(|r| r.method == "window/showMessageRequest")
            .count(),
        1,
        "the queued approval was never shown"
    );
    // The session still works afterwards.
    let model2_ok = ed.request("tether/sessions", json!({})).await;
    assert!(model2_ok.is_ok());
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tether_exec_decides_by_flags_and_never_reads_stdin() {
    for (flag, runs) in [
        (None, false),
        (Some("--deny"), false),
        (Some("--approve"), true),
    ] {
        let ws = ws_with_build();
        let data = tempfile::tempdir().expect("data");
        let model = ModelServer::start(the_original_bug()).await;
        let mut cmd = tokio::process::Command::new(bin());
        cmd.arg("exec").arg("clean the build");
        if let Some(f) = flag {
            cmd.arg(f);
        }
        // stdin is a pipe we never write to nor close: reading it would hang.
        let child = cmd
            .current_dir(ws.path())
            .env("TETHER_MODEL", "scripted")
            .env("TETHER_BASE_URL", model.base_url())
            .env("TETHER_DATA_DIR", data.path())
            .env_remove("TETHER_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn exec");
        let out = tokio::time::timeout(T, child.wait_with_output())
            .await
            .expect("exec finished without stdin")
            .expect("output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flag:?}: {stderr}");
        assert_eq!(stdout.trim(), "done", "the reply on stdout: {stdout:?}");
        assert!(
            stderr.contains("rm -rf build"),
            "events on stderr: {stderr}"
        );
        assert_eq!(!ws.path().join("build").exists(), runs, "{flag:?}");
        let results = tool_results(&model.requests()[1].body);
        if !runs {
            assert!(results[1].1.contains("--approve"), "{}", results[1].1);
        }
    }
}
