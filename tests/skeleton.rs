//! The walking skeleton, end to end: the real `tether` binary over real LSP
//! framing, a scripted model over real HTTP/SSE, real files and processes.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::editor::{ClientProfile, Editor, EditorConfig};
use support::model::{call, tool_results, ModelServer, Reply};

const T: Duration = Duration::from_secs(20);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tether")
}

fn config(root: &std::path::Path, model: &ModelServer, data: &std::path::Path) -> EditorConfig {
    EditorConfig::new(bin(), ClientProfile::VsCode, root).init_options(json!({
        "model": "scripted",
        "baseUrl": model.base_url(),
        "dataDir": data,
    }))
}

fn kinds(ed: &Editor) -> Vec<String> {
    ed.updates()
        .iter()
        .map(|u| {
            let k = u["kind"].as_str().unwrap_or("").to_string();
            match k.as_str() {
                "toolCall" => format!(
                    "toolCall:{}:{}",
                    u["toolCallId"].as_str().unwrap_or(""),
                    u["status"].as_str().unwrap_or("")
                ),
                _ => k,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_reads_edits_runs_and_answers() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    support::write_file(ws.path(), "notes.txt", "alpha\nbeta\n");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call("c1", "read_file", json!({"path": "notes.txt"})),
            call(
                "c2",
                "edit_file",
                json!({"path": "notes.txt", "old_text": "beta", "new_text": "gamma"}),
            ),
            call(
                "c3",
                "run_command",
                json!({"command": "git --version && echo built"}),
            ),
        ]),
        Reply::Text("Done: beta is now gamma.".into()),
    ])
    .await;
    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let result = ed
        .request("tether/prompt", json!({"text": "rename beta to gamma"}))
        .await
        .expect("prompt result");
    assert_eq!(result["stopReason"], "end_turn", "{result}");
    assert!(result["text"].as_str().unwrap_or("").contains("gamma"));
    assert_eq!(
        std::fs::read_to_string(ws.path().join("notes.txt")).expect("read"),
        "alpha\ngamma\n"
    );

    // The second model request carries the three results in the model's order.
    let reqs = model.requests();
    assert_eq!(reqs.len(), 2);
    let results = tool_results(&reqs[1].body);
    let ids: Vec<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert!(
        results[0].1.contains("beta"),
        "read saw the old text: {}",
        results[0].1
    );
    assert!(results[1].1.contains("Edited"), "{}", results[1].1);
    assert!(
        results[2].1.contains("git version") && results[2].1.contains("built"),
        "{}",
        results[2].1
    );
    assert!(reqs[0].body["stream"] == json!(true));
    let offered = support::model::tool_names(&reqs[0].body);
    for t in [
        "read_file",
        "list_dir",
        "search",
        "write_file",
        "edit_file",
        "run_command",
        "todo",
    ] {
        assert!(offered.iter().any(|o| o == t), "tool {t} offered");
    }

    // Events, in order: each call pending → running → completed, then the text, then turnEnd.
    ed.wait_update(|u| u["kind"] == "turnEnd", T).await;
    let k = kinds(&ed);
    let pos = |s: &str| {
        k.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} missing in {k:?}"))
    };
    for id in ["c1", "c2", "c3"] {
        assert!(pos(&format!("toolCall:{id}:pending")) < pos(&format!("toolCall:{id}:running")));
        assert!(pos(&format!("toolCall:{id}:running")) < pos(&format!("toolCall:{id}:completed")));
    }
    // The edit waited for the read of the same file; the command for the edit.
    assert!(pos("toolCall:c1:completed") < pos("toolCall:c2:running"));
    assert!(pos("toolCall:c2:completed") < pos("toolCall:c3:running"));
    let text_at = pos("text");
    assert!(pos("toolCall:c3:completed") < text_at);
    assert_eq!(k.last().map(String::as_str), Some("turnEnd"));
    let ended = ed
        .updates()
        .into_iter()
        .filter(|u| u["kind"] == "turnEnd")
        .count();
    assert_eq!(ended, 1);
    assert!(ed.problems().is_empty(), "{:?}", ed.problems());
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_is_empty_and_huge_output_is_capped() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call(
                "cat",
                "run_command",
                json!({"command": "cat; echo after-cat"}),
            ),
            call(
                "big",
                "run_command",
                json!({"command": "head -c 2000000 /dev/zero | tr '\\0' x"}),
            ),
        ]),
        Reply::Text("ok".into()),
    ])
    .await;
    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let result = ed
        .request("tether/prompt", json!({"text": "run them"}))
        .await
        .expect("prompt");
    assert_eq!(result["stopReason"], "end_turn");
    let reqs = model.chat_requests();
    let results = tool_results(&reqs[1].body);
    assert!(
        results[0].1.contains("exit code 0") && results[0].1.contains("after-cat"),
        "{}",
        results[0].1
    );
    let big = &results[1].1;
    assert!(big.len() < 40_000, "capped: {} bytes", big.len());
    assert!(big.contains("bytes of output cut"), "says how much was cut");
    // The stream is still valid: another request is answered.
    let s = ed
        .request("tether/sessions", json!({}))
        .await
        .expect("sessions");
    assert_eq!(s["sessions"].as_array().map(Vec::len), Some(1));
    assert!(ed.problems().is_empty(), "{:?}", ed.problems());
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_long_command_and_leaves_no_process() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    // A sleep nobody else runs, so the process can be found by its command line.
    let marker = format!("sleep 30.{}", std::process::id());
    let model = ModelServer::start(vec![Reply::ToolCalls(vec![call(
        "s",
        "run_command",
        json!({"command": format!("echo started; {marker}")}),
    )])])
    .await;
    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let (_id, fut) = ed.request_id("tether/prompt", json!({"text": "sleep"}));
    let pending = tokio::spawn(fut);
    let running = ed
        .wait_update(|u| u["kind"] == "toolCall" && u["status"] == "running", T)
        .await;
    let sid = running["sessionId"]
        .as_str()
        .expect("session id")
        .to_string();
    assert!(
        support::wait_until(|| !support::pids_matching(&marker).is_empty(), T).await,
        "the command started"
    );
    let t0 = Instant::now();
    ed.notify("tether/cancel", json!({"sessionId": sid})).await;
    let result = pending.await.expect("join").expect("prompt result");
    let took = t0.elapsed();
    assert_eq!(result["stopReason"], "cancelled");
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    assert!(
        support::pids_matching(&marker).is_empty(),
        "no sleep left behind"
    );
    let last = ed
        .wait_update(
            |u| u["kind"] == "toolCall" && u["toolCallId"] == "s" && u["status"] == "cancelled",
            T,
        )
        .await;
    assert_eq!(last["status"], "cancelled");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_on_the_prompt_cancels_the_turn() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![Reply::TextThenHang("thinking…".into())]).await;
    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let (id, fut) = ed.request_id("tether/prompt", json!({"text": "hang"}));
    let pending = tokio::spawn(fut);
    ed.wait_update(|u| u["kind"] == "text", T).await;
    let t0 = Instant::now();
    ed.cancel_request(id).await;
    let err = pending.await.expect("join").expect_err("cancelled request");
    assert_eq!(err.code, -32800, "RequestCancelled: {err}");
    ed.wait_update(
        |u| u["kind"] == "turnEnd" && u["stopReason"] == "cancelled",
        T,
    )
    .await;
    model.wait_closed(1, T).await;
    assert!(t0.elapsed() < Duration::from_secs(1));
    // The next prompt in a fresh session still works (the cancel poisoned nothing).
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart_and_resume() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::Text("The answer is 42.".into()),
        Reply::Text("You asked about the answer.".into()),
    ])
    .await;
    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let first = ed
        .request("tether/prompt", json!({"text": "what is the answer?"}))
        .await
        .expect("prompt");
    let sid = first["sessionId"].as_str().expect("sid").to_string();
    ed.shutdown().await;

    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let list = ed
        .request("tether/sessions", json!({}))
        .await
        .expect("sessions");
    let sessions = list["sessions"].as_array().expect("array");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], sid.as_str());
    assert_eq!(sessions[0]["title"], "what is the answer?");
    assert_eq!(sessions[0]["messageCount"], 2);
    let found = ed
        .request("tether/sessions", json!({"query": "answer"}))
        .await
        .expect("search");
    assert_eq!(found["sessions"][0]["id"], sid.as_str());
    let hist = ed
        .request("tether/history", json!({"sessionId": sid}))
        .await
        .expect("history");
    let msgs: Vec<(String, String)> = hist["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or("").into(),
                m["text"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        msgs,
        vec![
            ("user".to_string(), "what is the answer?".to_string()),
            ("assistant".to_string(), "The answer is 42.".to_string())
        ]
    );
    let second = ed
        .request(
            "tether/prompt",
            json!({"sessionId": sid, "text": "what did I ask?"}),
        )
        .await
        .expect("prompt");
    assert_eq!(second["sessionId"], sid.as_str());
    let reqs = model.requests();
    let sent = support::model::messages(&reqs[1].body);
    let texts: Vec<&str> = sent.iter().map(|(_, t)| t.as_str()).collect();
    assert!(texts.contains(&"what is the answer?"));
    assert!(texts.contains(&"The answer is 42."));
    assert!(texts.contains(&"what did I ask?"));
    let unknown = ed
        .request("tether/history", json!({"sessionId": "nope"}))
        .await
        .expect_err("unknown session");
    assert!(unknown.message.contains("nope"));
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_model_configured_is_a_clear_error() {
    let ws = support::workspace();
    let (ed, _) = Editor::start(EditorConfig::new(bin(), ClientProfile::Neovim, ws.path())).await;
    let err = ed
        .request("tether/prompt", json!({"text": "hello"}))
        .await
        .expect_err("no model");
    assert!(err.message.contains("TETHER_MODEL"), "{err}");
    assert!(
        err.message.contains("base_url") || err.message.contains("baseUrl"),
        "{err}"
    );
    let shown = ed
        .wait_notification(|n| n.method == "window/showMessage", T)
        .await;
    assert!(shown.params["message"]
        .as_str()
        .unwrap_or("")
        .contains("TETHER_MODEL"));
    // Still serving.
    ed.request("tether/sessions", json!({}))
        .await
        .expect("sessions");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_params_and_frames_get_errors_and_the_server_keeps_serving() {
    let ws = support::workspace();
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![Reply::Text("fine".into())]).await;
    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let err = ed
        .request("tether/prompt", json!({"text": 42}))
        .await
        .expect_err("invalid params");
    assert_eq!(err.code, -32602, "{err}");
    let err = ed
        .request("tether/prompt", Value::Null)
        .await
        .expect_err("missing params");
    assert_eq!(err.code, -32602, "{err}");
    let err = ed
        .request("tether/history", json!({"session": 1}))
        .await
        .expect_err("invalid params");
    assert_eq!(err.code, -32602, "{err}");
    // A body that is not JSON, inside a valid frame.
    ed.send_raw(b"Content-Length: 9\r\n\r\n{not json").await;
    let ok = ed
        .request("tether/prompt", json!({"text": "still there?"}))
        .await
        .expect("prompt");
    assert_eq!(ok["stopReason"], "end_turn");
    ed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_stdio_and_lsp_arguments_and_prints_a_version() {
    let out = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let ws = support::workspace();
    for args in [&["--stdio"][..], &["lsp"][..], &["lsp", "--stdio"][..]] {
        let (ed, init) =
            Editor::start(EditorConfig::new(bin(), ClientProfile::VsCode, ws.path()).args(args))
                .await;
        assert_eq!(init["serverInfo"]["name"], "tether");
        let cmds = &init["capabilities"]["executeCommandProvider"]["commands"];
        assert!(cmds
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x == "tether.ask")));
        ed.shutdown().await;
    }
}

/// A prompt with editor context: the model gets the context, history and the
/// session's title show what the person typed — also after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_the_prompt_as_typed_and_the_model_gets_the_context() {
    let ws = support::workspace();
    support::write_file(
        ws.path(),
        "src/lib.rs",
        "fn one() {}\nfn two() {}\nfn three() {}\n",
    );
    let data = tempfile::tempdir().expect("data dir");
    let model = ModelServer::start(vec![
        Reply::Text("It is `two`.".into()),
        Reply::Text("You asked which function.".into()),
    ])
    .await;
    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let uri = support::uri(&ws.path().join("src/lib.rs"));
    let first = ed
        .request(
            "tether/prompt",
            json!({
                "text": "which function is this?",
                "context": [{"uri": uri, "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 11}}}]
            }),
        )
        .await
        .expect("prompt");
    let sid = first["sessionId"].as_str().expect("sid").to_string();
    let reqs = model.requests();
    let sent = support::model::messages(&reqs[0].body);
    let prompt = &sent.last().expect("the prompt").1;
    assert!(
        prompt.starts_with("which function is this?") && prompt.contains("fn two() {}"),
        "the model gets the context: {prompt}"
    );
    ed.shutdown().await;

    let (ed, _) = Editor::start(config(ws.path(), &model, data.path())).await;
    let hist = ed
        .request("tether/history", json!({"sessionId": sid}))
        .await
        .expect("history");
    assert_eq!(
        hist["messages"][0]["text"], "which function is this?",
        "{hist}"
    );
    let list = ed
        .request("tether/sessions", json!({}))
        .await
        .expect("sessions");
    assert_eq!(list["sessions"][0]["title"], "which function is this?");
    // Resuming gives the model the context it saw the first time.
    ed.request(
        "tether/prompt",
        json!({"sessionId": sid, "text": "and the one before?"}),
    )
    .await
    .expect("prompt");
    let reqs = model.requests();
    let sent = support::model::messages(&reqs[1].body);
    assert!(
        sent.iter().any(|(_, t)| t.contains("fn two() {}")),
        "the stored content keeps the context: {sent:?}"
    );
    ed.shutdown().await;
}
