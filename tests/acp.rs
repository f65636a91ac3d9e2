//! `tether acp` driven by a real ACP client written by others: the official
//! Python SDK (PyPI `agent-client-protocol`, `spawn_agent_process` with a
//! `Client` subclass, in tests/acp/client.py) against the real binary and
//! the scripted model server.
//!
//! Without the SDK these tests say they were skipped; with
//! `TETHER_REQUIRE_ACP=1` (CI) its absence fails them.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use support::model::{call, tool_results, ModelServer, Reply};

const T: Duration = Duration::from_secs(120);

fn python() -> String {
    std::env::var("TETHER_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether the SDK can be imported; without it the test is skipped, unless
/// CI requires it.
fn sdk_available() -> bool {
    let ok = std::process::Command::new(python())
        .args(["-c", "import acp, acp.interfaces"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("TETHER_REQUIRE_ACP").is_none(),
            "TETHER_REQUIRE_ACP is set but the Python ACP SDK is missing (pip install agent-client-protocol)"
        );
        eprintln!(
            "skipped: the Python ACP SDK is not installed (pip install agent-client-protocol)"
        );
    }
    ok
}

struct Env {
    home: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Env {
    fn new(config: &str) -> Env {
        let home = tempfile::tempdir().expect("home");
        let cfg = home.path().join("config/tether/config.toml");
        std::fs::create_dir_all(cfg.parent().expect("parent")).expect("config dir");
        std::fs::write(&cfg, config).expect("config");
        Env {
            home,
            data: tempfile::tempdir().expect("data"),
        }
    }
}

/// Runs one scenario of tests/acp/client.py; returns what the client saw.
async fn client(
    scenario: &str,
    ws: &Path,
    model: &ModelServer,
    env: &Env,
    extra: &[(&str, &str)],
) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acp/client.py");
    let mut cmd = tokio::process::Command::new(python());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.arg(script)
        .arg(scenario)
        .env("TETHER_BIN", env!("CARGO_BIN_EXE_tether"))
        .env("ACP_WORKSPACE", ws)
        .env("HOME", env.home.path())
        .env("XDG_CONFIG_HOME", env.home.path().join("config"))
        .env("TETHER_MODEL", "scripted")
        .env("TETHER_BASE_URL", model.base_url())
        .env("TETHER_DATA_DIR", env.data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(T, cmd.output())
        .await
        .expect("the ACP client finished in time")
        .expect("run the ACP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the ACP client failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("client output is not JSON ({e}): {stdout}\n{stderr}"))
}

/// A streamed text reply with the usage OpenAI and llama.cpp send last.
fn text_with_usage(text: &str) -> Reply {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "scripted",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events: Vec<String> = text
        .split_inclusive(' ')
        .map(|w| chunk(json!({"content": w}), None))
        .collect();
    events.push(chunk(json!({}), Some("stop")));
    events.push(
        json!({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "scripted",
               "choices": [], "usage": {"prompt_tokens": 1200, "completion_tokens": 8, "total_tokens": 1208}})
        .to_string(),
    );
    Reply::RawSse { events, done: true }
}

fn kinds_of<'a>(updates: &'a [Value], kind: &str) -> Vec<&'a Value> {
    updates
        .iter()
        .filter(|u| u["sessionUpdate"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_streams_chunks_and_ends_with_end_turn() {
    if !sdk_available() {
        return;
    }
    let ws = support::workspace();
    let env = Env::new("model_context_window = 32768\n");
    let model = ModelServer::start(vec![text_with_usage("Hello from Tether over ACP")]).await;
    let out = client("stream", ws.path(), &model, &env, &[]).await;

    let init = &out["init"];
    assert_eq!(init["protocolVersion"], 1);
    assert_eq!(init["agentCapabilities"]["loadSession"], true);
    assert_eq!(
        init["agentCapabilities"]["promptCapabilities"]["embeddedContext"],
        true
    );
    assert_eq!(init["agentInfo"]["name"], "tether");

    assert_eq!(out["stopReason"], "end_turn");
    let chunks: Vec<&str> = out["chunks"]
        .as_array()
        .expect("chunks")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        chunks.len() > 1,
        "the reply streams in several chunks: {chunks:?}"
    );
    assert_eq!(chunks.concat(), "Hello from Tether over ACP");
    let commands = out["commands"].as_array().expect("commands");
    for c in ["new", "sessions", "cancel", "compact", "help"] {
        assert!(
            commands.iter().any(|x| x == c),
            "/{c} announced: {commands:?}"
        );
    }
    let usage = out["usage"].as_array().expect("usage");
    assert_eq!(usage.len(), 1, "one usage_update per request: {usage:?}");
    assert_eq!(usage[0]["used"], 1208);
    assert_eq!(usage[0]["size"], 32768);
    // The session's prompt reached the model.
    let reqs = model.chat_requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].raw_body.contains("say hello"));
}

fn rm_build() -> Vec<Reply> {
    vec![
        Reply::ToolCalls(vec![call(
            "rm",
            "run_command",
            json!({"command": "rm -rf build"}),
        )]),
        Reply::text("done"),
    ]
}

fn ws_with_build() -> tempfile::TempDir {
    let ws = support::workspace();
    support::write_file(ws.path(), "build/out.o", "object");
    ws
}

/// The permission request the client saw, checked for what it must show.
fn check_permission(out: &Value) {
    let perms = out["permissions"].as_array().expect("permissions");
    assert_eq!(perms.len(), 1, "asked once: {perms:?}");
    let p = &perms[0];
    let ids: Vec<(&str, &str)> = p["options"]
        .as_array()
        .expect("options")
        .iter()
        .map(|o| {
            (
                o["optionId"].as_str().unwrap_or(""),
                o["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("allow_once", "allow_once"),
            ("allow_session", "allow_always"),
            ("always_allow", "allow_always"),
            ("deny", "reject_once")
        ],
        "Tether's four answers, each with its own option id"
    );
    assert_eq!(p["toolCall"]["toolCallId"], "rm", "about the model's call");
    let shown = p["toolCall"]["content"][0]["content"]["text"]
        .as_str()
        .unwrap_or("");
    assert!(shown.contains("rm -rf build"), "says what runs: {shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dangerous_command_rejected_is_not_run() {
    if !sdk_available() {
        return;
    }
    let ws = ws_with_build();
    let env = Env::new("");
    let model = ModelServer::start(rm_build()).await;
    let out = client(
        "permission",
        ws.path(),
        &model,
        &env,
        &[("ACP_ANSWER", "deny")],
    )
    .await;
    check_permission(&out);
    assert_eq!(out["stopReason"], "end_turn");
    assert!(
        ws.path().join("build/out.o").exists(),
        "rm -rf build did not run"
    );
    let reqs = model.chat_requests();
    let results = tool_results(&reqs[1].body);
    assert!(
        results[0].1.to_lowercase().contains("denied"),
        "the model is told: {results:?}"
    );
    let updates = out["updates"].as_array().expect("updates");
    let last = kinds_of(updates, "tool_call_update")
        .into_iter()
        .rev()
        .find(|u| u["toolCallId"] == "rm")
        .expect("the call's final update");
    assert_eq!(last["status"], "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dangerous_command_allowed_once_runs() {
    if !sdk_available() {
        return;
    }
    let ws = ws_with_build();
    let env = Env::new("");
    let model = ModelServer::start(rm_build()).await;
    let out = client(
        "permission",
        ws.path(),
        &model,
        &env,
        &[("ACP_ANSWER", "allow_once")],
    )
    .await;
    check_permission(&out);
    assert_eq!(out["stopReason"], "end_turn");
    assert!(!ws.path().join("build").exists(), "rm -rf build ran");
    let updates = out["updates"].as_array().expect("updates");
    let announced = kinds_of(updates, "tool_call");
    assert_eq!(announced[0]["kind"], "execute");
    let last = kinds_of(updates, "tool_call_update")
        .into_iter()
        .rev()
        .find(|u| u["toolCallId"] == "rm")
        .expect("the call's final update");
    assert_eq!(last["status"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_option_that_was_not_offered_denies() {
    if !sdk_available() {
        return;
    }
    let ws = ws_with_build();
    let env = Env::new("");
    let model = ModelServer::start(rm_build()).await;
    // `allow_always` is a kind, not one of the ids offered: fail closed.
    let out = client(
        "permission",
        ws.path(),
        &model,
        &env,
        &[("ACP_ANSWER", "allow_always")],
    )
    .await;
    assert_eq!(out["stopReason"], "end_turn");
    assert!(ws.path().join("build/out.o").exists(), "nothing ran");
    let out = {
        let model = ModelServer::start(rm_build()).await;
        client(
            "permission",
            ws.path(),
            &model,
            &env,
            &[("ACP_ANSWER", "cancelled")],
        )
        .await
    };
    assert_eq!(out["stopReason"], "end_turn");
    assert!(
        ws.path().join("build/out.o").exists(),
        "a cancelled outcome runs nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_while_a_permission_is_pending_denies_it() {
    if !sdk_available() {
        return;
    }
    let ws = ws_with_build();
    let env = Env::new("");
    let model = ModelServer::start(rm_build()).await;
    // The client never answers the permission request; it sends
    // session/cancel instead.
    let out = client("cancel", ws.path(), &model, &env, &[]).await;
    assert_eq!(out["stopReason"], "cancelled");
    assert_eq!(out["permissions"].as_array().map(Vec::len), Some(1));
    assert!(ws.path().join("build/out.o").exists(), "nothing ran");
    let updates = out["updates"].as_array().expect("updates");
    let last = kinds_of(updates, "tool_call_update")
        .into_iter()
        .rev()
        .find(|u| u["toolCallId"] == "rm")
        .expect("the call ends");
    assert_eq!(last["status"], "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn session_load_replays_the_stored_conversation() {
    if !sdk_available() {
        return;
    }
    let ws = support::workspace();
    support::write_file(ws.path(), "notes.txt", "the number is 42\n");
    let env = Env::new("");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call("r1", "read_file", json!({"path": "notes.txt"}))]),
        Reply::text("Noted: 42."),
        Reply::text("It was 42."),
    ])
    .await;
    let out = client("load", ws.path(), &model, &env, &[]).await;
    assert_eq!(out["loadSession"], true);
    assert_eq!(out["firstStop"], "end_turn");
    assert_eq!(out["user"], json!(["remember the number 42"]));
    assert_eq!(out["agent"], json!(["Noted: 42."]));
    let replayed = out["replayed"].as_array().expect("replayed");
    let call = kinds_of(replayed, "tool_call");
    assert_eq!(call.len(), 1);
    assert_eq!(call[0]["toolCallId"], "r1");
    assert_eq!(call[0]["kind"], "read");
    let result = kinds_of(replayed, "tool_call_update");
    assert!(
        result[0]["content"][0]["content"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("the number is 42"),
        "the tool's result is replayed: {result:?}"
    );
    // The loaded session goes on: the model sees the earlier turn.
    assert_eq!(out["secondStop"], "end_turn");
    assert_eq!(
        out["secondChunks"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect::<String>()),
        Some("It was 42.".into())
    );
    let reqs = model.chat_requests();
    assert!(
        reqs[2].raw_body.contains("remember the number 42"),
        "history sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_go_through_the_clients_files() {
    if !sdk_available() {
        return;
    }
    let ws = support::workspace();
    support::write_file(ws.path(), "a.txt", "first file\n");
    let env = Env::new("");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "e1",
            "edit_file",
            json!({"path": "a.txt", "old_text": "first", "new_text": "FIRST"}),
        )]),
        Reply::text("edited"),
    ])
    .await;
    let out = client("fs", ws.path(), &model, &env, &[]).await;
    assert_eq!(out["stopReason"], "end_turn");
    let real = std::fs::canonicalize(ws.path().join("a.txt")).expect("real path");
    let real = real.display().to_string();
    assert_eq!(
        out["reads"],
        json!([real]),
        "read through fs/read_text_file"
    );
    assert_eq!(
        out["writes"],
        json!([{"path": real, "content": "FIRST file (unsaved)\n"}]),
        "the edit applies to the editor's unsaved text and lands through fs/write_text_file"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("a.txt")).expect("read"),
        "first file\n",
        "the agent did not write the disk itself"
    );
    let updates = out["updates"].as_array().expect("updates");
    let call = kinds_of(updates, "tool_call");
    assert_eq!(call[0]["kind"], "edit");
    assert_eq!(call[0]["content"][0]["type"], "diff");
    assert_eq!(call[0]["content"][0]["newText"], "FIRST");
    assert_eq!(
        call[0]["locations"][0]["path"],
        ws.path().join("a.txt").display().to_string()
    );
}

/// Bad input gets a clear error and the session goes on: no Python needed,
/// raw lines on the binary's stdin.
#[tokio::test(flavor = "multi_thread")]
async fn bad_lines_get_errors_and_the_agent_keeps_serving() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let env = Env::new("");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("TETHER_") || k.starts_with("OPENAI_") || k.starts_with("XDG_") {
            cmd.env_remove(&*k);
        }
    }
    let mut child = cmd
        .arg("acp")
        .env("HOME", env.home.path())
        .env("XDG_CONFIG_HOME", env.home.path().join("config"))
        .env("TETHER_DATA_DIR", env.data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tether acp");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ws = support::workspace();
    let input = [
        "this is not json".to_string(),
        "[1, 2]".to_string(),
        json!({"jsonrpc": "2.0", "id": 1, "method": "session/unknown", "params": {}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": "relative/dir", "mcpServers": []}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 3, "method": "session/prompt", "params": {"sessionId": "nope", "prompt": []}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 4, "method": "session/new", "params": {"cwd": 7}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": {"protocolVersion": 1}}).to_string(),
        json!({"jsonrpc": "2.0", "id": 6, "method": "session/new", "params": {"cwd": ws.path(), "mcpServers": []}}).to_string(),
    ];
    for l in &input {
        stdin
            .write_all(format!("{l}\n").as_bytes())
            .await
            .expect("write");
    }
    stdin.flush().await.expect("flush");
    let mut by_id = std::collections::BTreeMap::new();
    let mut anonymous = Vec::new();
    while by_id.len() < 6 {
        let line = tokio::time::timeout(T, lines.next_line())
            .await
            .expect("an answer in time")
            .expect("read")
            .expect("the agent is still there");
        let v: Value = serde_json::from_str(&line).expect("every line the agent writes is JSON");
        match v["id"].as_i64() {
            Some(id) => {
                by_id.insert(id, v);
            }
            None if v.get("method").is_none() => anonymous.push(v),
            None => {}
        }
    }
    assert_eq!(
        anonymous.len(),
        2,
        "the two bad lines each get an error: {anonymous:?}"
    );
    assert_eq!(anonymous[0]["error"]["code"], -32700);
    assert_eq!(anonymous[1]["error"]["code"], -32600);
    assert_eq!(by_id[&1]["error"]["code"], -32601);
    assert_eq!(by_id[&2]["error"]["code"], -32602);
    assert!(by_id[&2]["error"]["data"]
        .as_str()
        .unwrap_or("")
        .contains("absolute"));
    assert!(by_id[&3]["error"]["data"]
        .as_str()
        .unwrap_or("")
        .contains("no session nope"));
    assert_eq!(by_id[&4]["error"]["code"], -32602);
    assert_eq!(by_id[&5]["result"]["protocolVersion"], 1);
    assert!(
        by_id[&6]["result"]["sessionId"].is_string(),
        "{:?}",
        by_id[&6]
    );
    // EOF on stdin ends the agent.
    drop(stdin);
    let status = tokio::time::timeout(T, child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_links_and_embedded_resources_reach_the_model() {
    if !sdk_available() {
        return;
    }
    let ws = support::workspace();
    let env = Env::new("");
    let model = ModelServer::start(vec![Reply::text("ok")]).await;
    let out = client("context", ws.path(), &model, &env, &[]).await;
    assert_eq!(out["stopReason"], "end_turn");
    let reqs = model.chat_requests();
    let body = &reqs[0].raw_body;
    assert!(body.contains("explain these"), "{body}");
    assert!(
        body.contains("pub fn add"),
        "the linked file's text is context: {body}"
    );
    assert!(
        body.contains("UNSAVED_MARKER = 1"),
        "the embedded text is context: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_for_session_is_remembered_for_that_session_only() {
    if !sdk_available() {
        return;
    }
    let ws = support::workspace();
    let env = Env::new("");
    let rm = |id: &str| {
        Reply::ToolCalls(vec![call(
            id,
            "run_command",
            json!({"command": "rm -rf build"}),
        )])
    };
    let model = ModelServer::start(vec![
        rm("a"),
        Reply::text("done"),
        rm("b"),
        Reply::text("done again"),
        rm("c"),
        Reply::text("denied here"),
    ])
    .await;
    let out = client("session_allow", ws.path(), &model, &env, &[]).await;
    assert_eq!(out["stops"], json!(["end_turn", "end_turn", "end_turn"]));
    let asked: Vec<&Value> = out["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .map(|p| &p["toolCall"]["toolCallId"])
        .collect();
    assert_eq!(
        asked,
        [&json!("a"), &json!("c")],
        "asked in the first session once, and again in a new session"
    );
}

/// Files through the client are still judged by the gate first: a write
/// outside the workspace and a read of a secrets file, both denied, never
/// reach `fs/*`.
#[tokio::test(flavor = "multi_thread")]
async fn what_the_gate_refuses_never_reaches_the_clients_files() {
    if !sdk_available() {
        return;
    }
    let outer = tempfile::tempdir().expect("outer");
    let ws = outer.path().join("ws");
    std::fs::create_dir_all(&ws).expect("ws");
    support::write_file(&ws, ".env", "API_TOKEN=abc123secretvalue\n");
    let env = Env::new("");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![
            call(
                "w",
                "write_file",
                json!({"path": "../escape.txt", "content": "out"}),
            ),
            call("r", "read_file", json!({"path": ".env"})),
        ]),
        Reply::text("tried"),
    ])
    .await;
    let out = client("fs_boundary", &ws, &model, &env, &[]).await;
    assert_eq!(out["stopReason"], "end_turn");
    assert_eq!(out["writes"], json!([]), "no write reached the client");
    assert_eq!(out["reads"], json!([]), "no read reached the client");
    assert!(!outer.path().join("escape.txt").exists());
    let results = tool_results(&model.chat_requests()[1].body);
    assert_eq!(results.len(), 2);
    for (id, text) in &results {
        assert!(
            !text.contains("abc123secretvalue"),
            "{id}: nothing of the secret file: {text}"
        );
    }
}

/// An MCP server written by others (`mcp-server-time` from PyPI), given by
/// the client in `session/new`, is started and its tool reaches the model.
#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_server_given_in_session_new_is_used() {
    if !sdk_available() {
        return;
    }
    let Some(time) = std::env::var_os("TETHER_MCP_TIME") else {
        assert!(
            std::env::var_os("TETHER_REQUIRE_MCP").is_none(),
            "TETHER_REQUIRE_MCP is set but TETHER_MCP_TIME is not"
        );
        eprintln!("skipped: TETHER_MCP_TIME (an mcp-server-time executable) is not set");
        return;
    };
    let time = time.to_string_lossy().into_owned();
    let ws = support::workspace();
    let env = Env::new("");
    let model = ModelServer::start(vec![
        Reply::ToolCalls(vec![call(
            "t1",
            "time__get_current_time",
            json!({"timezone": "UTC"}),
        )]),
        Reply::text("It is now."),
    ])
    .await;
    let out = client("mcp", ws.path(), &model, &env, &[("ACP_MCP_TIME", &time)]).await;
    assert_eq!(out["mcpCapabilities"]["http"], true);
    assert_eq!(out["stopReason"], "end_turn");
    let reqs = model.chat_requests();
    assert!(
        support::model::tool_names(&reqs[0].body).contains(&"time__get_current_time".to_string()),
        "the server's tool is offered to the model"
    );
    let results = tool_results(&reqs[1].body);
    assert_eq!(results[0].0, "t1");
    assert!(
        results[0].1.contains("UTC") && results[0].1.contains("datetime"),
        "the server answered: {}",
        results[0].1
    );
}
